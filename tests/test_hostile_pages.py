"""Issue 11 on the pages (AppTest, both languages): hostile uploads give a translated error, never an
exception, the page script ends quickly, and the student's model is kept."""
from __future__ import annotations

import io
import re
import time

import pytest
import torch
from PIL import Image
from torch import nn

import dl_core.checkpoint as checkpoint
from dl_core.checkpoint import Checkpoint, to_bytes
from dl_core.models import build_model_seeded, course_cnn
from dl_core.preprocess import Preprocessing
from tests.conftest import assert_clean, new_app
from tests.test_images import EPS, png_header

CJK = re.compile(r"[\u4e00-\u9fff]")


def _ckpt() -> Checkpoint:
    return Checkpoint(course_cnn(), build_model_seeded(course_cnn(), 1).state_dict(), [str(i) for i in range(10)],
                      Preprocessing(), "shapes10", {"epochs": 1, "accuracy": 0.5})


def _save(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _cycle() -> bytes:
    m = nn.Sequential()
    m._modules["0"] = m
    return _save(m)


def _expanded() -> bytes:
    return _save({k: torch.zeros(1).expand(*v.shape) for k, v in _ckpt().state_dict.items()})


def _big_prep() -> bytes:
    d = _ckpt().to_dict()
    d["preprocessing"] = {"size": [12000, 12000], "channels": 3, "mean": None, "std": None}
    return _save(d)


@pytest.mark.parametrize("kind", ["cycle", "expanded", "prep-12000"])
def test_save_load_page_shows_an_error_for_hostile_checkpoints(lang, kind):
    data = {"cycle": _cycle, "expanded": _expanded, "prep-12000": _big_prep}[kind]()
    at = new_app(lang, "app_pages/save_load.py")
    before = _ckpt()
    at.session_state["ws.trained"] = before
    at.run()
    start = time.perf_counter()
    at.file_uploader(key="save.upload").set_value((f"{kind}.pth", data, "application/octet-stream")).run()
    assert time.perf_counter() - start < 10  # the page script ends (it used to run forever on the cycle)
    assert_clean(at)
    assert len(at.error) == 1 and bool(CJK.search(at.error[0].value)) == (lang == "zh"), at.error
    assert at.session_state["ws.trained"] is before


@pytest.fixture
def demo(tmp_path, monkeypatch):
    path = tmp_path / "demo.pth"
    path.write_bytes(to_bytes(_ckpt()))
    monkeypatch.setattr(checkpoint, "DEMO_PATH", path)


def _good_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_predict_page_shows_an_error_for_hostile_images(lang, demo):
    at = new_app(lang, "app_pages/predict.py")
    files = [("eps.png", EPS, "image/png"), ("bomb.png", png_header(100_000, 100_000), "image/png"),
             ("ok.png", _good_png(), "image/png")]
    at.file_uploader(key="predict.upload").set_value(files).run()
    assert_clean(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 2 and all(bool(CJK.search(e)) == (lang == "zh") for e in errors), errors
    assert "eps.png" in errors[0] and "bomb.png" in errors[1]
    assert any(m.value.startswith("### ") for m in at.markdown)  # the good picture is still predicted
