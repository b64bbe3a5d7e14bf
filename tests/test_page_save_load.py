"""Save & load page (AppTest, both languages): the two ways with real sizes, and every upload flow."""
from __future__ import annotations

import io

import pytest
import torch

import dl_core.checkpoint as checkpoint
from dl_core.checkpoint import Checkpoint, Tudui, to_bytes, way1_bytes, way2_bytes
from dl_core.models import build_model, course_cnn
from dl_core.preprocess import Preprocessing
from tests.conftest import assert_clean, new_app

PAGE = "app_pages/save_load.py"
SHAPES = ["circle", "ring", "triangle", "square", "hexagon", "star", "cross", "heart", "crescent", "arrow"]


def make_ckpt(seed: int = 0, history: dict | None = None) -> Checkpoint:
    torch.manual_seed(seed)
    return Checkpoint(spec=course_cnn(), state_dict=build_model(course_cnn()).state_dict(), classes=SHAPES,
                      dataset="shapes10", preprocessing=Preprocessing(),
                      history=history if history is not None else {"epochs": 4, "accuracy": 0.912})


@pytest.fixture
def demo(tmp_path, monkeypatch):
    """The shipped demo model, replaced by a small made-up one so the test does not depend on the asset."""
    path = tmp_path / "demo.pth"
    path.write_bytes(to_bytes(make_ckpt(seed=9, history={"epochs": 1, "accuracy": 0.3})))
    monkeypatch.setattr(checkpoint, "DEMO_PATH", path)
    return path


def texts(at) -> str:
    parts = [str(getattr(el, "value", "")) for el in at.main] + [str(getattr(el, "label", "")) for el in at.main]
    return "\n".join(parts)


def test_no_model_offers_the_demo_train_and_load(lang, demo):
    at = new_app(lang, PAGE)
    assert_clean(at)
    assert "ws.trained" not in at.session_state
    assert at.button(key="save.use_demo")
    assert at.file_uploader(key="save.upload")
    at.button(key="save.use_demo").click().run()
    assert_clean(at)
    assert at.session_state["ws.trained"].history == {"epochs": 1, "accuracy": 0.3}
    assert [m.value for m in at.metric][:4] == ["Shapes-10", "145,578", "30.0 %", "1"]


def test_missing_demo_is_a_clear_message(lang, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "DEMO_PATH", tmp_path / "gone.pth")
    at = new_app(lang, PAGE)
    at.button(key="save.use_demo").click().run()
    assert_clean(at)
    assert at.error and "make_demo_model.py" in at.error[0].value


def test_the_two_ways_side_by_side_with_real_sizes(lang):
    at = new_app(lang, PAGE)
    ckpt = make_ckpt()
    at.session_state["ws.trained"] = ckpt
    at.run()
    assert_clean(at)
    sizes = [m.value for m in at.metric][4:]
    n1, n2 = len(way1_bytes(ckpt)), len(way2_bytes(ckpt))
    assert f"{n1:,}" in sizes[0] and f"{n2:,}" in sizes[1]
    downloads = {b.key for b in at.download_button}
    assert {"save.download", "save.way1_download", "save.way2_download", "save.code_save.download"} <= downloads
    page = texts(at)
    assert "GLOBAL __main__.Tudui" in page  # torch's own words for way 1
    assert "weights_only=True" in page


def upload(at, name: str, data: bytes):
    at.file_uploader(key="save.upload").set_value((name, data, "application/octet-stream")).run()
    assert_clean(at)
    return at


@pytest.mark.parametrize("kind", ["ours", "tudui-state-dict", "sequential-state-dict", "whole-model"])
def test_uploads_that_load(lang, kind):
    source = make_ckpt(seed=2)
    model = source.build()
    data = {
        "ours": to_bytes(source),
        "tudui-state-dict": way2_bytes(source),
        "sequential-state-dict": _bytes(model.state_dict()),
        "whole-model": way1_bytes(source),
    }[kind]
    at = new_app(lang, PAGE)
    at.session_state["ws.trained"] = make_ckpt(seed=1)
    at.run()
    upload(at, f"{kind}.pth", data)
    assert at.success, texts(at)
    loaded = at.session_state["ws.trained"]
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.build()(x), model(x))
    if kind == "whole-model":
        assert "__main__.Tudui" in at.success[0].value
    if kind == "ours":
        assert loaded.classes == SHAPES
    else:
        assert loaded.dataset == "cifar10"


def _bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def _mismatch() -> bytes:
    torch.manual_seed(0)
    sd = Tudui(build_model(course_cnn())).state_dict()
    sd["model.7.weight"] = torch.zeros(64, 999)
    return _bytes(sd)


@pytest.mark.parametrize("kind, needle", [
    ("empty", {"zh": "0 字节", "en": "0 bytes"}),
    ("random", {"zh": "不是 PyTorch 文件", "en": "not a PyTorch file"}),
    ("evil", {"zh": "system", "en": "system"}),
    ("mismatch", {"zh": "形状不同 1 个", "en": "1 of another shape"}),
])
def test_bad_uploads_get_a_message_and_keep_the_model(lang, kind, needle):
    data = {"empty": b"", "random": bytes(range(1, 200)) * 10, "evil": _bytes({"x": _Evil()}),
            "mismatch": _mismatch()}[kind]
    at = new_app(lang, PAGE)
    before = make_ckpt(seed=1)
    at.session_state["ws.trained"] = before
    at.run()
    upload(at, f"{kind}.pth", data)
    assert at.error and needle[lang] in at.error[0].value
    assert at.session_state["ws.trained"] is before
    if kind == "mismatch":
        table = at.dataframe[0].value
        assert list(table.iloc[:, 0]) == ["7.weight"] and list(table.iloc[:, 3]) == ["[64, 999]"]


def test_the_student_names_the_classes_of_a_file_from_home(lang):
    source = make_ckpt(seed=2)
    at = new_app(lang, PAGE)
    at.selectbox(key="save.classes_from").set_value("shapes10").run()
    upload(at, "tudui_9.pth", way2_bytes(source))
    loaded = at.session_state["ws.trained"]
    assert loaded.classes == SHAPES and loaded.dataset == "shapes10"
    at.selectbox(key="save.classes_from").set_value("numbers").run()  # the same file, named again
    assert_clean(at)
    assert at.session_state["ws.trained"].classes == [str(i) for i in range(10)]


def test_a_removed_file_takes_its_message_away_and_keeps_the_loaded_model(lang):
    at = new_app(lang, PAGE)
    upload(at, "tudui.pth", way2_bytes(make_ckpt(seed=2)))
    assert at.success
    loaded = at.session_state["ws.trained"]
    at.file_uploader(key="save.upload").set_value(None).run()
    assert_clean(at)
    assert not at.success and not at.error
    assert at.session_state["ws.trained"] is loaded
