"""Predict page (AppTest, both languages): the demo or the session model, uploads (one, several, broken),
the camera, a test-set image, the steps with real values, the preprocessing warning."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import dl_core.checkpoint as checkpoint
from dl_core.checkpoint import Checkpoint, to_bytes
from dl_core.datasets import display_classes
from dl_core.models import build_model, course_cnn
from dl_core.predict import load_image, predict
from dl_core.preprocess import Preprocessing
from tests.conftest import assert_clean, new_app

PAGE = "app_pages/predict.py"
SHAPES = ["circle", "ring", "triangle", "square", "hexagon", "star", "cross", "heart", "crescent", "arrow"]


def make_ckpt(seed: int = 0, prep: Preprocessing = Preprocessing()) -> Checkpoint:
    torch.manual_seed(seed)
    return Checkpoint(spec=course_cnn(), state_dict=build_model(course_cnn()).state_dict(), classes=SHAPES,
                      dataset="shapes10", preprocessing=prep, history={"epochs": 1, "accuracy": 0.4})


def png(seed: int, mode: str = "RGB", size=(40, 30)) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB").convert(mode)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(png(seed))).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def demo(tmp_path, monkeypatch):
    path = tmp_path / "demo.pth"
    ckpt = make_ckpt(seed=9)
    path.write_bytes(to_bytes(ckpt))
    monkeypatch.setattr(checkpoint, "DEMO_PATH", path)
    return ckpt


def expected_label(ckpt: Checkpoint, data: bytes, lang: str, prep: Preprocessing | None = None) -> str:
    p = predict(ckpt.build(), load_image(data), prep or ckpt.preprocessing)
    return display_classes(ckpt.classes, lang)[p.index]


def result_text(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("### "))


def test_without_a_model_the_demo_predicts_an_upload(lang, demo):
    at = new_app(lang, PAGE)
    assert_clean(at)
    assert at.info  # says the demo model is used, with links to Train and Load
    data = png(1, "RGBA")
    at.file_uploader(key="predict.upload").set_value(("dog.png", data, "image/png")).run()
    assert_clean(at)
    assert f"**{expected_label(demo, data, lang)}**" in result_text(at)
    page = "\n".join(m.value for m in at.markdown)
    assert "RGBA" in page and "(1, 3, 32, 32)" in page and "argmax(1)" in page
    assert len(at.get("plotly_chart")) == 1
    seen = at.session_state["predict.last_image"]
    assert seen.shape == (3, 32, 32) and seen.dtype == torch.uint8


def test_the_session_model_and_the_demo_can_be_chosen(lang, demo):
    at = new_app(lang, PAGE)
    mine = make_ckpt(seed=3)
    at.session_state["ws.trained"] = mine
    at.run()
    data = jpeg(2)
    at.file_uploader(key="predict.upload").set_value(("cat.jpg", data, "image/jpeg")).run()
    assert_clean(at)
    assert f"**{expected_label(mine, data, lang)}**" in result_text(at)
    at.radio(key="predict.source").set_value("demo").run()
    assert_clean(at)
    assert f"**{expected_label(demo, data, lang)}**" in result_text(at)


def test_several_images_make_a_gallery_and_broken_ones_a_message(lang, demo):
    at = new_app(lang, PAGE)
    files = [("a.png", png(1), "image/png"), ("b.jpg", jpeg(2), "image/jpeg"),
             ("c.png", png(3, "P"), "image/png"), ("notes.png", b"not a picture", "image/png")]
    at.file_uploader(key="predict.upload").set_value(files).run()
    assert_clean(at)
    assert len(at.error) == 1 and "notes.png" in at.error[0].value
    assert len(at.get("image")) == 3 + 3  # the gallery, then the chosen one: result + original + 32×32
    details = at.selectbox(key="predict.details")
    assert details.options == ["a.png", "b.jpg", "c.png"]
    details.set_value("c.png").run()
    assert_clean(at)
    assert f"**{expected_label(demo, png(3, 'P'), lang)}**" in result_text(at)


def test_normalize_different_from_training_warns(lang, demo):
    at = new_app(lang, PAGE)
    at.file_uploader(key="predict.upload").set_value(("a.png", png(4), "image/png")).run()
    assert not at.warning
    at.checkbox(key="predict.normalize").check().run()
    assert_clean(at)
    assert at.warning and "Normalize" in at.warning[0].value
    prep = Preprocessing(mean=(0.5,) * 3, std=(0.5,) * 3)
    assert f"**{expected_label(demo, png(4), lang, prep)}**" in result_text(at)


def test_a_model_trained_with_normalize_uses_it(lang):
    at = new_app(lang, PAGE)
    prep = Preprocessing(mean=(0.5,) * 3, std=(0.5,) * 3)
    ckpt = make_ckpt(seed=5, prep=prep)
    at.session_state["ws.trained"] = ckpt
    at.run()
    assert at.checkbox(key="predict.normalize").value is True
    at.file_uploader(key="predict.upload").set_value(("a.png", png(5), "image/png")).run()
    assert_clean(at)
    assert not at.warning
    assert any("Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])" in m.value for m in at.markdown)


def test_the_camera(lang, demo):
    at = new_app(lang, PAGE)
    at.segmented_control(key="predict.input").set_value("camera").run()
    assert_clean(at)
    data = jpeg(6)
    at.camera_input(key="predict.camera").set_value(("photo.jpg", data, "image/jpeg")).run()
    assert_clean(at)
    assert f"**{expected_label(demo, data, lang)}**" in result_text(at)


def test_a_test_set_image(lang, demo):
    at = new_app(lang, PAGE)
    at.segmented_control(key="predict.input").set_value("test").run()
    assert_clean(at)
    at.number_input(key="predict.test_index").set_value(7).run()
    assert_clean(at)
    assert any(("7" in c.value) for c in at.caption)
    assert result_text(at)


def test_a_one_channel_model_with_normalize_and_a_colour_photo(lang):
    at = new_app(lang, PAGE)
    torch.manual_seed(0)
    spec = course_cnn(in_channels=1)
    at.session_state["ws.trained"] = Checkpoint(spec=spec, state_dict=build_model(spec).state_dict(),
                                                classes=[str(i) for i in range(10)], dataset="mnist",
                                                preprocessing=Preprocessing(channels=1))
    at.run()
    at.checkbox(key="predict.normalize").check().run()
    at.file_uploader(key="predict.upload").set_value(("photo.jpg", jpeg(8), "image/jpeg")).run()
    assert_clean(at)
    assert at.warning and result_text(at)
    assert any("(1, 1, 32, 32)" in m.value for m in at.markdown)


def test_the_enlarged_picture_keeps_each_pixel_a_square():
    from ui.images import enlarged

    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "RGB")
    big = np.asarray(enlarged(small, 192))
    assert big.shape == (192, 192, 3)
    assert np.array_equal(big[::6, ::6], np.asarray(small))  # every 6×6 block is one of the network's pixels
    assert np.array_equal(big[5::6, 5::6], np.asarray(small))


def test_the_top_k_chart_puts_the_most_likely_class_on_top():
    from ui.images import HIGHLIGHT, OTHERS, topk_chart

    fig = topk_chart([(2, 0.7), (0, 0.2), (1, 0.1)], ["a", "b", "c"], "Top 3", "probability")
    bar = fig.data[0]
    assert list(bar.y) == ["b", "a", "c"] and list(bar.x) == [0.1, 0.2, 0.7]  # plotly draws bottom-up
    assert list(bar.marker.color) == [OTHERS, OTHERS, HIGHLIGHT]
    assert fig.layout.title.text == "Top 3"
