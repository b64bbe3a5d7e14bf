"""Predict and Save & load in a real browser: upload a picture, read the prediction; use the demo model,
see the two ways; upload a course-style .pth; screenshots in both languages."""
from __future__ import annotations

import io

import pytest
import torch

from dl_core.checkpoint import load_demo, way2_bytes
from dl_core.datasets import display_classes, load_dataset
from dl_core.predict import load_image, predict
from tests.e2e.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def picture(data_dir) -> tuple[bytes, str, str]:
    """A Shapes-10 test image the demo model gets right, as a PNG upscaled to 128×128 (a 'photo')."""
    demo = load_demo()
    test_set = load_dataset("shapes10", train=False, root=data_dir)
    model = demo.build()
    for i in range(50):
        img = test_set.pil(i).resize((128, 128))
        buf = io.BytesIO()
        img.convert("RGBA").save(buf, "PNG")
        p = predict(model, load_image(buf.getvalue()), demo.preprocessing)
        if p.index == int(test_set.targets[i]):
            zh, en = display_classes(demo.classes, "zh")[p.index], demo.classes[p.index]
            return buf.getvalue(), zh, en
    pytest.fail("the demo model got none of the first 50 test images right")


def _open(page, app_url: str, nav_label: str, lang: str = "zh") -> None:
    """Open the app at its root (the router) and follow the sidebar link to a page."""
    page.goto(app_url if lang == "zh" else f"{app_url}/?lang=en")
    wait_for_app(page)
    page.locator("[data-testid='stSidebarNav']").get_by_text(nav_label, exact=True).click()
    wait_for_app(page)


def _upload(page, data: bytes, name: str, mime: str) -> None:
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}])


def test_upload_a_picture_and_read_the_prediction(page, app_url, picture):
    data, zh, en = picture
    _open(page, app_url, "预测")
    page.get_by_text("预测：网络看到了什么").wait_for()
    _upload(page, data, "shape.png", "image/png")
    page.get_by_text(f"预测：{zh}", exact=False).first.wait_for()
    page.get_by_text("网络看到的 32×32").first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    wait_for_app(page)
    screenshot(page, "predict_zh")
    page.get_by_text("test.py 的每一步").first.scroll_into_view_if_needed()
    screenshot(page, "predict_zh_steps")

    page.get_by_text("English", exact=True).click()
    page.get_by_text(f"Prediction: {en}", exact=False).first.wait_for()
    wait_for_app(page)
    screenshot(page, "predict_en")


def test_a_broken_picture_gets_a_message(page, app_url):
    _open(page, app_url, "Predict", "en")
    _upload(page, b"this is text, renamed", "notes.png", "image/png")
    page.get_by_text("notes.png: this is not an image the app can read", exact=False).wait_for()
    screenshot(page, "predict_en_bad")


def test_save_page_with_the_demo_then_load_a_course_file(page, app_url):
    _open(page, app_url, "保存与加载")
    page.get_by_role("button", name="使用演示模型").click()
    page.get_by_text("方式 2：只保存参数（推荐）").wait_for()
    page.get_by_text("GLOBAL __main__.Tudui", exact=False).first.wait_for()
    wait_for_app(page)
    screenshot(page, "save_zh")

    page.get_by_text("English", exact=True).click()
    page.get_by_text("Way 2: save the parameters only (recommended)").wait_for()
    wait_for_app(page)
    screenshot(page, "save_en")

    torch.manual_seed(0)
    data = way2_bytes(load_demo())  # what the course's train.py writes: keys model.0.weight, ...
    _upload(page, data, "tudui_9.pth", "application/octet-stream")
    page.get_by_text("Loaded tudui_9.pth", exact=False).wait_for()
    page.get_by_text("model.", exact=False).first.wait_for()
    wait_for_app(page)
    page.get_by_text("Loaded tudui_9.pth", exact=False).scroll_into_view_if_needed()
    screenshot(page, "save_en_loaded")
