"""dl_core.datasets: built-ins, the on-disk cache, offline errors, the course's folder Dataset, zips, facts, loaders."""
import io
import struct
import threading
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from dl_core import datasets as D
from dl_core.errors import CourseError


# ------------------------------------------------------------------ metadata, names, data_dir

def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_CLASSROOM_DATA", str(tmp_path / "x"))
    assert D.data_dir() == (tmp_path / "x").resolve()
    monkeypatch.delenv("TORCH_CLASSROOM_DATA")
    assert D.data_dir() == Path("data").resolve() and D.data_dir().is_absolute()


def test_metadata_for_every_builtin():
    assert set(D.DATASETS) == {"shapes10", "shapes10-full", "cifar10", "mnist", "fashionmnist"}
    assert D.DATASETS["cifar10"].input_shape == (3, 32, 32) and D.DATASETS["cifar10"].needs_download
    assert D.DATASETS["mnist"].input_shape == (1, 28, 28)
    assert (D.DATASETS["shapes10-full"].train_size, D.DATASETS["shapes10-full"].test_size) == (50_000, 10_000)
    assert not D.DATASETS["shapes10"].needs_download
    assert all(info.num_classes == len(info.classes) == 10 for info in D.DATASETS.values())


def test_display_classes():
    cifar = list(D.DATASETS["cifar10"].classes)
    assert D.display_classes(cifar, "zh") == ["飞机", "汽车", "鸟", "猫", "鹿", "狗", "青蛙", "马", "船", "卡车"]
    assert D.display_classes(cifar, "en") == cifar
    assert D.display_classes(["ants", "circle"], "zh") == ["ants", "圆形"]
    assert len(set(D.display_classes(list(D.DATASETS["fashionmnist"].classes), "zh"))) == 10


def test_every_dataset_entry_names_its_strings_and_its_code():
    from dl_core.i18n import has, text

    for info in D.DATASETS.values():
        assert has(info.choice_key), info.name
        for name, key in info.class_keys:
            assert has(key) and text(key, "en") == name, key  # English shows torchvision's own names
        code = info.code(False, "tf")
        if info.torchvision_class:
            assert code == (f'torchvision.datasets.{info.torchvision_class}("./dataset", train=False, transform=tf, '
                            'download=True)')
            assert info.code_imports() == ["import torchvision"]
        else:
            assert code == f'load_dataset("{info.name}", train=False, transform=tf)'
            assert "from dl_core.datasets import load_dataset" in info.code_imports()  # notebooks replace this line
    assert D.DATASETS["cifar10"].classes == tuple(D.CIFAR10_CLASS_KEYS)


def test_unknown_dataset_name():
    with pytest.raises(CourseError) as exc:
        D.load_dataset("imagenet")
    assert exc.value.code == "data.unknown"


# ------------------------------------------------------------------ Shapes-10 on disk

def test_shapes10_generated_once_then_read_from_disk(tmp_path):
    calls = []
    ds = D.load_dataset("shapes10", False, root=tmp_path, progress=lambda d, n: calls.append((d, n)))
    assert len(ds) == 1000 and ds.images.shape == (1000, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert calls[-1] == (1000, 1000)
    assert D.is_prepared("shapes10", False, root=tmp_path)
    again = D.load_dataset("shapes10", False, root=tmp_path, progress=lambda d, n: calls.append("again"))
    assert "again" not in calls and torch.equal(ds.images, again.images)
    assert not [p for p in (tmp_path / "shapes10").iterdir() if p.suffix == ".tmp"]
    img, target = ds[0]
    assert img.mode == "RGB" and img.size == (32, 32) and 0 <= target < 10


def test_two_loaders_at_once_share_one_generation(tmp_path):
    results = []
    threads = [threading.Thread(target=lambda: results.append(D.load_dataset("shapes10", False, root=tmp_path)))
               for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(results) == 2 and torch.equal(results[0].images, results[1].images)
    files = [p.name for p in (tmp_path / "shapes10").iterdir() if not p.name.endswith(".lock")]
    assert files == [D.shapes10_path("shapes10", False, tmp_path).name]


def test_damaged_cache_is_redrawn(tmp_path):
    path = D.shapes10_path("shapes10", False, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")
    ds = D.load_dataset("shapes10", False, root=tmp_path)
    assert len(ds) == 1000


def test_transform_like_torchvision(tmp_path):
    from torchvision.transforms import v2
    tf = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    ds = D.load_dataset("shapes10", False, root=tmp_path, transform=tf)
    img, _ = ds[0]
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32
    assert D.load_dataset("shapes10", False, root=tmp_path).transform is None  # shared data never mutated


# ------------------------------------------------------------------ torchvision datasets, offline

def _fail(*_args, **_kwargs):
    raise urllib.error.URLError("network is unreachable")


def test_offline_cifar10_names_archive_url_and_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(D, "_fetch", _fail)
    with pytest.raises(CourseError) as exc:
        D.load_dataset("cifar10", root=tmp_path)
    err = exc.value
    assert err.code == "data.offline"
    assert err.params["archive"] == "cifar-10-python.tar.gz"
    assert err.params["url"] == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert err.params["folder"] == str(tmp_path)
    assert not D.is_prepared("cifar10", root=tmp_path)


def test_offline_mnist_points_to_raw_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(D, "_fetch", _fail)
    with pytest.raises(CourseError) as exc:
        D.load_dataset("mnist", root=tmp_path)
    assert exc.value.params["folder"] == str(tmp_path / "MNIST" / "raw")
    assert "train-images-idx3-ubyte.gz" in exc.value.params["archive"]


def test_no_download_allowed_is_the_offline_message(tmp_path):
    with pytest.raises(CourseError) as exc:
        D.load_dataset("fashionmnist", train=False, root=tmp_path, download=False)
    assert exc.value.code == "data.offline"


def _idx(path: Path, array: np.ndarray) -> None:
    code = 0x08  # unsigned byte
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_from_local_files_becomes_uint8_nchw(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        _idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    assert D.is_prepared("mnist", root=tmp_path)
    ds = D.load_dataset("mnist", root=tmp_path, download=False)
    assert ds.images.shape == (12, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.targets.tolist() == [i % 10 for i in range(12)]
    assert ds.classes[0] == "0 - zero"
    assert ds.pil(0).mode == "L"


# ------------------------------------------------------------------ the course's own Dataset: zips and folders

def _png(colour=(200, 10, 10), size=(20, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _zip(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_of_class_folders_with_deterministic_split():
    entries = {f"hymenoptera/{label}/{i}.png": _png((i * 20, 0, 0)) for label in ("ants", "bees") for i in range(10)}
    entries["hymenoptera/readme.txt"] = b"hello"
    entries["hymenoptera/ants/notes.doc"] = b"x"
    a = D.read_zip(_zip(entries))
    b = D.read_zip(_zip(entries))
    assert a.train.classes == ["ants", "bees"] and a.train.class_to_idx == {"ants": 0, "bees": 1}
    assert len(a.train) == 16 and len(a.test) == 4 and a.split == "random"
    assert a.skipped == 2 and a.per_class == {"ants": 10, "bees": 10}
    assert a.train.images.shape == (16, 3, 32, 32)
    assert torch.equal(a.train.images, b.train.images)


def test_zip_with_train_and_val_folders_and_custom_size():
    entries = {f"train/{label}/{i}.png": _png() for label in ("ants", "bees") for i in range(3)}
    entries |= {f"val/{label}/{i}.jpg": _png() for label in ("ants", "bees") for i in range(2)}
    ds = D.read_zip(_zip(entries), size=(16, 16))
    assert ds.split == "folders" and len(ds.train) == 6 and len(ds.test) == 4
    assert ds.test.images.shape[1:] == (3, 16, 16)


@pytest.mark.parametrize("data,code", [
    (b"PK\x03\x04 definitely not a zip", "zip.not_zip"),
    (b"hello world", "zip.not_zip"),
    (_zip({}), "zip.empty"),
    (_zip({"ants/a.txt": b"a", "bees/b.csv": b"b"}), "zip.no_images"),
    (_zip({"../evil/a.png": _png()}), "zip.traversal"),
    (_zip({"ants/../../a.png": _png()}), "zip.traversal"),
    (_zip({"/etc/a.png": _png()}), "zip.absolute_path"),
    (_zip({"ants/a.png": _png(), "bees/b.png": b"\x89PNG broken"}), "zip.empty_class"),
    (_zip({"a.png": _png()}), "zip.no_classes"),
])
def test_bad_zips_each_get_their_own_code(data, code):
    with pytest.raises(CourseError) as exc:
        D.read_zip(data)
    assert exc.value.code == code


def test_zip_bomb_is_refused_before_decompressing():
    bomb = _zip({"ants/a.png": b"\0" * (20 * 2**20), "bees/b.png": _png()})
    assert len(bomb) < 100_000
    with pytest.raises(CourseError) as exc:
        D.read_zip(bomb)
    assert exc.value.code == "zip.bomb" and exc.value.params["ratio"] > 100


def test_zip_caps_on_size_files_and_unpacked_size():
    entries = {f"ants/{i}.png": _png() for i in range(6)}
    data = _zip(entries, compression=zipfile.ZIP_STORED)
    for limits, code in ((D.ZipLimits(max_bytes=100), "zip.too_big"), (D.ZipLimits(max_files=5), "zip.too_many_files"),
                         (D.ZipLimits(max_total_uncompressed=100), "zip.too_big_unpacked")):
        with pytest.raises(CourseError) as exc:
            D.read_zip(data, limits=limits)
        assert exc.value.code == code


def test_read_folder_and_image_folder_round_trip(tmp_path):
    ds = D.load_dataset("shapes10", False, root=tmp_path / "data").subset(30)
    D.to_image_folder(ds, tmp_path / "train")
    back = D.read_folder(tmp_path / "train", test_fraction=0.0)
    assert len(back.train) == 30 and len(back.test) == 0
    assert back.train.classes == sorted({ds.classes[int(t)] for t in ds.targets})
    with pytest.raises(CourseError) as exc:
        D.read_folder(tmp_path / "nowhere")
    assert exc.value.code == "folder.missing"


# ------------------------------------------------------------------ facts, stats, DataLoader

def test_dataset_facts_as_print_shows_them(tmp_path):
    train = D.load_dataset("shapes10", True, root=tmp_path)
    test = D.load_dataset("shapes10", False, root=tmp_path)
    f = D.dataset_facts(train, test, 3)
    img, target = train[3]
    assert (f.len_train, f.len_test) == (5000, 1000)
    assert f.sample_type == str(type(img)) == "<class 'PIL.Image.Image'>"
    assert f.sample_size == img.size == (32, 32) and f.sample_mode == "RGB"
    assert f.label == target and f.label_name == train.classes[target]
    with pytest.raises(CourseError):
        D.dataset_facts(train, test, 5000)


def test_channel_stats_match_torch():
    images = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    ds = D.TensorImageDataset(images, torch.zeros(50, dtype=torch.int64), ["a"])
    mean, std = D.channel_stats(ds, chunk=7)
    x = images.double() / 255
    assert np.allclose(mean, x.mean(dim=(0, 2, 3)).numpy(), atol=1e-4)
    assert np.allclose(std, x.std(dim=(0, 2, 3), unbiased=False).numpy(), atol=1e-4)


def test_loader_facts_course_numbers():
    assert (D.loader_facts(10_000, 64).num_batches, D.loader_facts(10_000, 64).last_size) == (157, 16)
    assert (D.loader_facts(10_000, 64, True).num_batches, D.loader_facts(10_000, 64, True).last_size) == (156, 64)
    with pytest.raises(CourseError):
        D.loader_facts(10, 0)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 300), b=st.integers(1, 70), drop=st.booleans())
def test_loader_facts_match_torch_dataloader(n, b, drop):
    loader = DataLoader(TensorDataset(torch.arange(n)), batch_size=b, drop_last=drop)
    facts = D.loader_facts(n, b, drop)
    assert facts.num_batches == len(loader)
    sizes = [len(x[0]) for x in loader]
    assert facts.last_size == (sizes[-1] if sizes else 0)


def test_first_batches_shapes_and_shuffle(tmp_path):
    test = D.load_dataset("shapes10", False, root=tmp_path)
    shuffled = D.first_batches(test, 64, shuffle=True, seed=1)
    assert shuffled[0].imgs.shape == (64, 3, 32, 32) and shuffled[0].targets.shape == (64,)
    assert shuffled[0].imgs.dtype == torch.float32 and shuffled[0].imgs.max() <= 1
    assert not torch.equal(shuffled[0].indices, shuffled[1].indices)
    assert torch.equal(shuffled[0].targets, test.targets[shuffled[0].indices])
    again = D.first_batches(test, 64, shuffle=True, seed=1)
    assert torch.equal(again[1].indices, shuffled[1].indices)
    plain = D.first_batches(test, 64, shuffle=False)
    assert plain[0].indices.tolist() == list(range(64)) == plain[1].indices.tolist()
    last = D.first_batches(test, 64, shuffle=False, last=True)
    assert last[0].imgs.shape == (1000 % 64, 3, 32, 32)
    with pytest.raises(CourseError) as exc:
        D.first_batches(test.subset(10), 64, drop_last=True)
    assert exc.value.code == "loader.no_batches"
