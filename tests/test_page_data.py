"""AppTest of the data page, both languages: every section, widgets by key, offline, bad zips, the editor."""
import io
import re
import urllib.error
import zipfile

import pytest
from PIL import Image

from dl_core import datasets as D
from ui.state import DEFAULT_DATASET
from tests.conftest import assert_clean, new_app

CJK = re.compile(r"[\u4e00-\u9fff]")


def _png(colour=(200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 12), colour).save(buf, format="PNG")
    return buf.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _section(at, name):
    at.segmented_control(key="data.section").set_value(name).run()
    assert_clean(at)
    return at


def _picked(at) -> str:
    """ui.state.dataset_name() as the other pages will read it."""
    return at.session_state["ws.dataset"] if "ws.dataset" in at.session_state else DEFAULT_DATASET


def _in_language(text: str, lang: str) -> bool:
    return bool(CJK.search(text)) == (lang == "zh")


def test_every_section_renders(lang):
    at = new_app(lang, "app_pages/data.py")
    assert_clean(at)
    for name in ("env", "dataset", "torchvision", "transforms", "loader"):
        _section(at, name)
    _section(at, "env")
    assert any("torch.cuda.is_available()" in c.value for c in at.code)


def test_torchvision_facts_follow_the_index(lang):
    at = _section(new_app(lang, "app_pages/data.py"), "torchvision")
    at.number_input(key="data.index").set_value(3).run()
    assert_clean(at)
    facts = D.dataset_facts(D.load_dataset(DEFAULT_DATASET, True), D.load_dataset(DEFAULT_DATASET, False), 3)
    printed = "\n".join(c.value for c in at.code)
    assert f"\n{facts.len_train}\n" in printed and f"\n{facts.len_test}\n" in printed
    assert str(facts.class_to_idx) in printed and f"({facts.label}, '{facts.label_name}')" in printed
    assert "<class 'PIL.Image.Image'>, (32, 32), 'RGB'" in printed


def test_dataloader_shows_the_courses_numbers(lang):
    at = new_app(lang, "app_pages/data.py")
    at.selectbox(key=f"data.dataset.{lang}").set_value("shapes10-full").run()
    _section(at, "loader")
    metrics = [m.value for m in at.metric]
    assert metrics[:3] == ["10,000", "157", "16"] and metrics[3] == "[64, 3, 32, 32]"
    printed = "\n".join(c.value for c in at.code)
    assert "torch.Size([64, 3, 32, 32])" in printed and "torch.Size([64])" in printed
    at.toggle(key="data.drop_last").set_value(True).run()
    assert [m.value for m in at.metric][:3] == ["10,000", "156", "64"]
    at.number_input(key="data.batch_size").set_value(100).run()
    at.toggle(key="data.shuffle").set_value(False).run()
    at.selectbox(key="data.num_workers").set_value(2).run()
    at.number_input(key="data.dl_seed").set_value(5).run()
    at.segmented_control(key="data.dl_split").set_value("train").run()
    assert_clean(at)
    assert [m.value for m in at.metric][:3] == ["50,000", "500", "100"]
    assert _picked(at) == "shapes10-full"  # the other pages see the pick


def test_offline_dataset_shows_the_message_and_keeps_the_last_one(lang, monkeypatch):
    def offline(*_a, **_k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(D, "_fetch", offline)
    at = new_app(lang, "app_pages/data.py")
    at.selectbox(key=f"data.dataset.{lang}").set_value("cifar10").run()
    assert_clean(at)
    errors = [e.value for e in at.error]
    assert errors and "cifar-10-python.tar.gz" in errors[0] and _in_language(errors[0], lang)
    assert _picked(at) == DEFAULT_DATASET
    assert at.selectbox(key=f"data.dataset.{lang}").value == DEFAULT_DATASET
    _section(at, "loader")
    assert [m.value for m in at.metric][:2] == ["10,000", "157"]  # still working, on the last good dataset


BAD_ZIPS = {
    "not_zip": b"this is not a zip",
    "empty": _zip({}),
    "traversal": _zip({"../../evil.png": _png()}),
    "absolute": _zip({"/tmp/evil.png": _png()}),
    "no_images": _zip({"ants/a.txt": b"a", "bees/b.txt": b"b"}),
    "bomb": _zip({"ants/a.png": b"\0" * (20 * 2**20), "bees/b.png": _png()}),
}


@pytest.mark.parametrize("case", sorted(BAD_ZIPS))
def test_bad_zip_gets_a_clear_message_and_the_app_keeps_working(lang, case):
    at = _section(new_app(lang, "app_pages/data.py"), "dataset")
    at.file_uploader(key="data.zip").set_value((f"{case}.zip", BAD_ZIPS[case], "application/zip")).run()
    assert_clean(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and _in_language(errors[0], lang), errors
    at.number_input(key="data.own_size").set_value(16).run()  # the page still responds
    assert_clean(at)
    assert _picked(at) == DEFAULT_DATASET


def test_good_zip_becomes_the_picked_dataset(lang):
    entries = {f"train/{label}/{i}.png": _png((i * 30, 0, 0)) for label in ("ants", "bees") for i in range(5)}
    entries |= {f"val/{label}/{i}.png": _png() for label in ("ants", "bees") for i in range(2)}
    entries["train/readme.txt"] = b"notes"
    at = _section(new_app(lang, "app_pages/data.py"), "dataset")
    at.file_uploader(key="data.zip").set_value(("hymenoptera.zip", _zip(entries), "application/zip")).run()
    assert_clean(at)
    assert _picked(at) == "user"
    assert at.selectbox(key=f"data.dataset.{lang}").value == "user"
    assert at.success and "hymenoptera.zip" in at.success[0].value
    assert at.warning  # one non-image skipped
    _section(at, "loader")
    assert [m.value for m in at.metric][:3] == ["4", "1", "4"]
    _section(at, "torchvision")
    _section(at, "transforms")
    _section(at, "dataset")
    at.button(key="data.own_forget").click().run()
    assert_clean(at)
    assert _picked(at) == "shapes10"


def test_folder_dataset(lang, tmp_path):
    ds = D.load_dataset("shapes10", False).subset(30)
    D.to_image_folder(ds, D.data_dir() / f"mine-{lang}" / "train")  # only below the data folder (issue 11)
    at = _section(new_app(lang, "app_pages/data.py"), "dataset")
    at.text_input(key="data.folder").set_value(str(tmp_path / "nowhere")).run()
    at.button(key="data.folder_load").click().run()
    assert_clean(at)
    assert at.error and _in_language(at.error[0].value, lang)
    at.text_input(key="data.folder").set_value(f"mine-{lang}/train").run()
    at.button(key="data.folder_load").click().run()
    assert_clean(at)
    assert _picked(at) == "user"


def test_transforms_editor(lang):
    at = _section(new_app(lang, "app_pages/data.py"), "transforms")
    # The course default: ToTensor, Normalize → input + 2 results, the HWC→CHW note, de-normalized picture.
    assert at.info, "the HWC → CHW explanation"
    at.selectbox(key=f"data.tf_add_kind.{lang}").set_value("RandomCrop").run()
    at.button(key="data.tf_add").click().run()
    assert_clean(at)
    at.number_input(key="data.tf_2_pad").set_value(8).run()
    at.number_input(key="data.tf_draws").set_value(6).run()
    at.number_input(key="data.tf_seed").set_value(9).run()
    at.number_input(key="data.tf_index").set_value(4).run()
    assert_clean(at)
    # Move Normalize (id 1) above ToTensor: a clear message, not a traceback.
    at.button(key="data.tf_up_1").click().run()
    assert_clean(at)
    assert at.error and _in_language(at.error[0].value, lang)
    at.button(key="data.tf_down_1").click().run()
    assert_clean(at)
    assert not at.error
    at.radio(key=f"data.tf_1_preset.{lang}").set_value("dataset").run()
    assert_clean(at)
    at.selectbox(key=f"data.tf_add_kind.{lang}").set_value("Resize").run()
    at.button(key="data.tf_add").click().run()
    at.radio(key=f"data.tf_3_form.{lang}").set_value("hw").run()
    at.number_input(key="data.tf_3_w").set_value(48).run()
    assert_clean(at)
    assert any("torch.Size([3, 64, 48])" in c.value for c in at.code)
    at.button(key="data.tf_del_2").click().run()
    at.button(key="data.tf_reset").click().run()
    assert_clean(at)
    at.segmented_control(key="data.tf_source").set_value("upload").run()
    assert_clean(at)
    buf = io.BytesIO()
    Image.new("RGBA", (50, 30), (10, 200, 30, 128)).save(buf, format="PNG")
    at.file_uploader(key="data.tf_upload").set_value(("dog.png", buf.getvalue(), "image/png")).run()
    assert_clean(at)
    assert any("torch.Size([3, 30, 50])" in c.value for c in at.code)
    at.file_uploader(key="data.tf_upload").set_value(("junk.png", b"not a picture", "image/png")).run()
    assert_clean(at)
    assert at.error and _in_language(at.error[0].value, lang)


def test_language_switch_keeps_every_choice(lang):
    other = "en" if lang == "zh" else "zh"
    at = new_app(lang, "app_pages/data.py")
    at.selectbox(key=f"data.dataset.{lang}").set_value("shapes10").run()
    _section(at, "transforms")
    at.radio(key=f"data.tf_1_preset.{lang}").set_value("dataset").run()
    at.sidebar.radio(key="sidebar.lang").set_value(other).run()  # the switch; the language is session "lang"
    assert_clean(at)
    assert _picked(at) == "shapes10"
    assert at.selectbox(key=f"data.dataset.{other}").value == "shapes10"
    assert at.radio(key=f"data.tf_1_preset.{other}").value == "dataset"
    assert at.segmented_control(key="data.section").value == "transforms"
