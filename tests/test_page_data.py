"""AppTest of the data page, both languages: every section, widgets by key, offline, bad zips, the editor."""
import io
import re
import urllib.error
import zipfile

import pytest
from PIL import Image

from dl_core import datasets as D
from dl_core import transforms as T
from ui.i18n import catalog
from ui.state import DEFAULT_DATASET
from tests.conftest import open_link as conftest_open_link, assert_clean, new_app

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


# --- the page's link (issue 14): /data?ds=…&section=…&tf=…, hostile queries, widgets -> URL ---------------

PAGE = "app_pages/data.py"


def open_link(lang: str, **query: str):
    """The app opened on the data page with `query` in its URL (a teacher's link)."""
    return conftest_open_link(lang, PAGE, **query)

def test_a_link_opens_the_dataloader_with_its_settings(lang):
    at = open_link(lang, ds="shapes10", section="loader", batch="100", shuffle="0", drop_last="1", split="train")
    assert_clean(at)
    assert not at.warning
    assert _picked(at) == "shapes10" and at.selectbox(key=f"data.dataset.{lang}").value == "shapes10"
    assert at.segmented_control(key="data.section").value == "loader"
    assert at.number_input(key="data.batch_size").value == 100 and at.toggle(key="data.shuffle").value is False
    assert [m.value for m in at.metric][:3] == ["5,000", "50", "100"]  # 5,000 training images / 100
    printed = "\n".join(c.value for c in at.code)
    assert "DataLoader(train_data, batch_size=100, shuffle=False, num_workers=0, drop_last=True)" in printed
    assert at.query_params["batch"] == "100" and at.query_params["split"] == "train"  # the URL keeps it


def test_a_link_opens_the_transforms_with_its_pipeline(lang):
    tf = "resize_40x48-totensor-normalize_0.4x0.4x0.4_s0.2x0.2x0.2"
    at = open_link(lang, section="transforms", tf=tf, sample="3", draws="2")
    assert_clean(at)
    assert not at.warning
    assert at.number_input(key="data.tf_index").value == 3 and at.number_input(key="data.tf_draws").value == 2
    printed = "\n".join(c.value for c in at.code)
    assert "torch.Size([3, 40, 48])" in printed and "v2.Resize((40, 48))" in printed
    assert "v2.Normalize([0.4, 0.4, 0.4], [0.2, 0.2, 0.2])" in printed
    assert at.radio(key=f"data.tf_2_preset.{lang}").value == "custom"  # the link's own mean and std
    assert at.query_params["tf"] == tf


HOSTILE_QUERIES = [
    {"tf": "resize_0-totensor"}, {"tf": "<script>alert(1)</script>", "section": "transforms"},
    {"section": "loader", "batch": "-1"}, {"ds": "shapes10", "index": "99999"}, {"ds": "user"},
    {"tf": "totensor-" * 400},
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=lambda q: ",".join(q))
def test_a_hostile_link_gives_a_message_and_the_defaults(lang, query):
    at = open_link(lang, **query)
    assert_clean(at)
    assert len(at.warning) == 1 and at.warning[0].value.startswith(catalog()["link.bad"][lang])
    assert at.segmented_control(key="data.section").value == "torchvision"
    assert _picked(at) == DEFAULT_DATASET
    assert all(at.query_params.get(name) != value for name, value in query.items())  # the URL drops it
    _section(at, "transforms")
    assert "tf" not in at.query_params and any("v2.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])" in c.value
                                                for c in at.code)  # the course's pipeline


def test_the_url_follows_the_widgets_and_keeps_them_across_sections(lang):
    at = _section(new_app(lang, PAGE), "loader")
    at.number_input(key="data.batch_size").set_value(100).run()
    assert at.query_params["batch"] == "100" and at.query_params["section"] == "loader"
    _section(at, "transforms")
    assert at.query_params["batch"] == "100"  # another section shown: the DataLoader settings stay
    at.selectbox(key=f"data.tf_add_kind.{lang}").set_value("RandomCrop").run()
    at.button(key="data.tf_add").click().run()
    assert T.read_pipeline(at.query_params["tf"]) == (*T.COURSE_PIPELINE, T.Step.make("RandomCrop"))
    assert any("/data?" in c.value and "batch=100" in c.value and "tf=totensor-normalize" in c.value
               for c in at.code)  # "Copy link"
    at.button(key="data.tf_reset").click().run()
    assert "tf" not in at.query_params
    _section(at, "loader")
    assert at.number_input(key="data.batch_size").value == 100


def test_a_link_survives_a_page_switch(lang):
    at = open_link(lang, section="loader", batch="100")
    at.switch_page("app_pages/home.py").run()
    for name in list(at.query_params):  # a browser's page switch drops the query string
        if name != "lang":
            at.query_params.pop(name)
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert at.segmented_control(key="data.section").value == "loader"  # the last settings are put back
    assert at.number_input(key="data.batch_size").value == 100 and at.query_params["batch"] == "100"


def test_the_students_own_dataset_never_goes_in_the_link(lang):
    entries = {f"{label}/{i}.png": _png((i * 40, 0, 0)) for label in ("ants", "bees") for i in range(5)}
    at = _section(new_app(lang, PAGE), "dataset")
    at.file_uploader(key="data.zip").set_value(("mine.zip", _zip(entries), "application/zip")).run()
    assert _picked(at) == "user"
    assert "ds" not in at.query_params and not any("mine" in str(v) for v in at.query_params.values())
