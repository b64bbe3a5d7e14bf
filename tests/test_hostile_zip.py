"""Issue 11: zip datasets that work for Chinese students and the course's folders, and hostile zips and
folders that end as a clear CourseError in bounded time and memory."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dl_core import datasets as D
from dl_core.errors import CourseError
from tests.hostile import assert_clear_error, run_bounded


def _png(colour=(200, 10, 10), size=(12, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _jpg(colour=(10, 200, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buf, format="JPEG")
    return buf.getvalue()


def _zip(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


class _GbkInfo(zipfile.ZipInfo):
    """A ZipInfo written as Windows Explorer on a Chinese system does: GBK bytes, no UTF-8 flag."""

    def _encodeFilenameFlags(self):  # noqa: N802 - zipfile's own name
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def _gbk_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = _GbkInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


HYMENOPTERA_ZH = {
    **{f"hymenoptera_data/train/蚂蚁/{i}.jpg": _jpg((20 * i, 0, 0)) for i in range(4)},
    **{f"hymenoptera_data/train/蜜蜂/{i}.jpg": _jpg((0, 0, 20 * i)) for i in range(4)},
    **{f"hymenoptera_data/val/蚂蚁/{i}.jpg": _jpg() for i in range(2)},
    **{f"hymenoptera_data/val/蜜蜂/{i}.jpg": _jpg() for i in range(2)},
}


def _check_hymenoptera(ds: D.FolderDataset) -> None:
    assert ds.split == "folders"
    assert ds.train.classes == ["蚂蚁", "蜜蜂"]
    assert len(ds.train) == 8 and len(ds.test) == 4
    assert ds.per_class == {"蚂蚁": 6, "蜜蜂": 6}


# ---------------------------------------------------------------- names as real tools write them

def test_python_zipfile_names_with_the_utf8_flag():
    data = _zip(HYMENOPTERA_ZH)
    assert all(i.flag_bits & 0x800 for i in zipfile.ZipFile(io.BytesIO(data)).infolist())
    _check_hymenoptera(D.read_zip(data))


def test_gbk_names_without_the_flag_as_windows_explorer_writes_them():
    data = _gbk_zip(HYMENOPTERA_ZH)
    raw = zipfile.ZipFile(io.BytesIO(data)).infolist()[0]
    assert not raw.flag_bits & 0x800 and "蚂蚁" not in raw.filename  # garbled without our decoding
    _check_hymenoptera(D.read_zip(data))


@pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP `zip` is not installed (apt-get install zip)")
def test_info_zip_on_linux_with_lang_c_the_courses_layout_loads_as_two_classes(tmp_path):
    for name, blob in HYMENOPTERA_ZH.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")} | {"LANG": "C", "LC_ALL": "C"}
    subprocess.run(["zip", "-q", "-r", "ants.zip", "hymenoptera_data"], cwd=tmp_path, env=env, check=True)
    data = (tmp_path / "ants.zip").read_bytes()
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert not any(i.flag_bits & 0x800 for i in infos)  # no UTF-8 flag: the case that used to be garbled
    _check_hymenoptera(D.read_zip(data))


def test_the_courses_english_layout_and_nested_folders():
    entries = {f"hymenoptera_data/train/ants/{i}.jpg": _jpg() for i in range(3)}
    entries |= {f"hymenoptera_data/train/bees/more/deeper/{i}.jpg": _jpg() for i in range(3)}
    entries |= {"hymenoptera_data/val/ants/x.jpg": _jpg(), "hymenoptera_data/val/bees/y.jpg": _jpg(),
                "hymenoptera_data/README.jpg": _jpg()}  # beside the split folders: no label
    ds = D.read_zip(_zip(entries))
    assert ds.split == "folders" and ds.train.classes == ["ants", "bees"]
    assert ds.per_class == {"ants": 4, "bees": 4} and ds.skipped == 1
    # without split folders, a nested folder still counts for its class
    flat = {f"data/ants/{i}.png": _png() for i in range(3)} | {f"data/bees/sub/{i}.png": _png() for i in range(3)}
    ds = D.read_zip(_zip(flat))
    assert ds.split == "random" and ds.per_class == {"ants": 3, "bees": 3}


def test_chinese_split_folder_names():
    entries = {f"训练集/{c}/{i}.png": _png() for c in ("猫", "狗") for i in range(2)}
    entries |= {f"测试集/{c}/0.png": _png() for c in ("猫", "狗")}
    ds = D.read_zip(_zip(entries))
    assert ds.split == "folders" and len(ds.train) == 4 and len(ds.test) == 2


def test_a_one_class_zip_is_refused():
    with pytest.raises(CourseError) as err:
        D.read_zip(_zip({f"ants/{i}.png": _png() for i in range(5)}))
    assert err.value.code == "zip.one_class" and err.value.params["label"] == "ants"


# ---------------------------------------------------------------- hostile zips

def _corrupt_deflate() -> bytes:
    data = bytearray(_zip({"ants/a.png": _png() * 20, "bees/b.png": _png()}))
    start = data.index(b"ants/a.png") + len(b"ants/a.png")
    for i in range(start + 5, start + 60):
        data[i] ^= 0x5A  # the compressed stream, not the headers
    return bytes(data)


def _corrupt_lzma() -> bytes:
    data = bytearray(_zip({"ants/a.png": _png() * 20, "bees/b.png": _png()}, compression=zipfile.ZIP_LZMA))
    start = data.index(b"ants/a.png") + len(b"ants/a.png")
    for i in range(start + 9, start + 60):
        data[i] ^= 0x5A
    return bytes(data)


def _many_big_pictures() -> bytes:
    """Thousands of tiny PNGs that each decode to 16 megapixels: ~15 min of decoding before issue 11."""
    row = b"\x00" + bytes(3 * 4000)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(4000)) + comp.flush()
    import struct

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4000, 4000, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return _zip({f"{c}/{i}.png": png for c in ("ants", "bees") for i in range(300)}, compression=zipfile.ZIP_STORED)


def _encrypted_flag() -> bytes:
    """The 'encrypted' bit set in every header, as a password-protected zip has it."""
    data = bytearray(_zip({"ants/a.png": _png(), "bees/b.png": _png()}))
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = data.find(sig)
        while i >= 0:
            data[i + offset] |= 1
            i = data.find(sig, i + 4)
    return bytes(data)


def _expands_to_300_mb() -> bytes:
    """A 4 MB zip of 15 'pictures' of 19 MB each (80× compression, under the bomb ratio): 285 MB unpacked."""
    blob = b"".join(os.urandom(420) + bytes(40_000) for _ in range(19 * 2**20 // 40_420))
    return _zip({f"{('ants', 'bees')[i % 2]}/{i}.png": blob for i in range(15)})


HOSTILE = {
    "expands-to-285-mb": (_expands_to_300_mb, "zip.empty_class"),
    "corrupt-deflate": (_corrupt_deflate, "zip.corrupt"),
    "corrupt-lzma": (_corrupt_lzma, "zip.corrupt"),
    "bad-crc": (lambda: _zip({"ants/a.png": _png(), "bees/b.png": _png()}, zipfile.ZIP_STORED).replace(
        _png()[20:40], bytes(20), 1), "zip."),
    "many-16-megapixel-pictures": (_many_big_pictures, "zip.too_many_pixels"),
    "one-class": (lambda: _zip({f"ants/{i}.png": _png() for i in range(3)}), "zip.one_class"),
    "truncated": (lambda: _zip({"ants/a.png": _png(), "bees/b.png": _png()})[:-30], "zip.not_zip"),
    "encrypted-flag": (lambda: _encrypted_flag(), "zip.corrupt"),
    "gbk-traversal": (lambda: _gbk_zip({"蚂蚁/../../../etc/x.png": _png(), "b/y.png": _png()}), "zip.traversal"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_zip_is_a_clear_error_in_bounded_time_and_memory(name):
    make, code = HOSTILE[name]
    data = make()
    assert_clear_error(lambda: D.read_zip(data), code)


def test_a_slow_read_stops_at_the_time_budget():
    entries = {f"{c}/{i}.png": _png() for c in ("ants", "bees") for i in range(50)}
    with pytest.raises(CourseError) as err:
        D.read_zip(_zip(entries), limits=D.ZipLimits(max_seconds=0.0))
    assert err.value.code == "zip.too_slow"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=2048), st.binary(max_size=512).map(lambda b: b"PK\x03\x04" + b)))
def test_any_bytes_give_a_dataset_or_a_course_error(data):
    try:
        D.read_zip(data)
    except CourseError:
        pass


_GOOD = _zip({f"{c}/{i}.png": _png() for c in ("ants", "bees") for i in range(3)})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_a_damaged_real_zip_gives_a_dataset_or_a_course_error(flips):
    data = bytearray(_GOOD)
    for pos, value in flips:
        data[pos] = value
    out = run_bounded(lambda: len(D.read_zip(bytes(data)).train), timeout=10)
    assert not out.error, out


# ---------------------------------------------------------------- no server paths from the browser

@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    for c in ("ants", "bees"):
        (root / "mine" / c).mkdir(parents=True)
        for i in range(3):
            (root / "mine" / c / f"{i}.png").write_bytes(_png())
    monkeypatch.setenv("TORCH_CLASSROOM_DATA", str(root))
    monkeypatch.delenv(D.LOCAL_FOLDERS_ENV, raising=False)
    return root


def test_a_folder_below_the_data_directory_loads(data_root):
    path = D.resolve_local_folder("mine")
    assert path == (data_root / "mine").resolve()
    assert D.read_folder(path, checked=True).train.classes == ["ants", "bees"]
    assert D.resolve_local_folder(str(data_root / "mine")) == path  # absolute, but inside


@pytest.mark.parametrize("text", ["/", "..", "../..", "mine/../..", "/etc", "/tmp", "~"])
def test_paths_outside_the_data_directory_are_refused(data_root, text):
    with pytest.raises(CourseError) as err:
        D.read_folder(D.resolve_local_folder(text), checked=True)
    assert err.value.code in ("folder.outside", "folder.missing")
    if text in ("/", "..", "/etc"):
        assert err.value.code == "folder.outside"


def test_symbolic_links_never_lead_out(data_root, tmp_path):
    outside = tmp_path / "secret"
    for c in ("x", "y"):
        (outside / c).mkdir(parents=True)
        (outside / c / "0.png").write_bytes(_png())
    (data_root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(CourseError) as err:
        D.resolve_local_folder("link")
    assert err.value.code == "folder.outside"
    # a link inside a dataset folder is skipped, not followed
    (data_root / "mine" / "ants" / "escape").symlink_to(outside, target_is_directory=True)
    (data_root / "mine" / "bees" / "f.png").symlink_to(outside / "x" / "0.png")
    ds = D.read_folder(D.resolve_local_folder("mine"), checked=True)
    assert ds.per_class == {"ants": 3, "bees": 3}


def test_the_setting_turns_folders_off_or_allows_any(data_root, monkeypatch, tmp_path):
    monkeypatch.setenv(D.LOCAL_FOLDERS_ENV, "off")
    with pytest.raises(CourseError) as err:
        D.resolve_local_folder("mine")
    assert err.value.code == "folder.off"
    monkeypatch.setenv(D.LOCAL_FOLDERS_ENV, "nonsense")
    assert D.local_folders_mode() == "off"
    monkeypatch.setenv(D.LOCAL_FOLDERS_ENV, "any")
    assert D.resolve_local_folder(str(data_root / "mine")) == (data_root / "mine").resolve()
    with pytest.raises(CourseError) as err:
        D.resolve_local_folder("/")
    assert err.value.code == "folder.root"


def test_walking_a_huge_tree_stops_at_the_entry_cap(data_root):
    big = data_root / "big"
    for i in range(60):
        (big / f"d{i}").mkdir(parents=True)
    with pytest.raises(CourseError) as err:
        D.read_folder(D.resolve_local_folder("big"), checked=True, limits=D.ZipLimits(max_entries_walked=50))
    assert err.value.code == "folder.too_many_entries"
