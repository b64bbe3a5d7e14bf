"""The generated save / load / test.py code runs as written, on the files the app itself hands out,
and predicts exactly what the page predicts."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dl_core.checkpoint import Checkpoint, way1_bytes, way2_bytes
from dl_core.codegen.checkpoint import load_code, save_code, tudui_class
from dl_core.codegen.predict import predict_code
from dl_core.models import LayerSpec, ModelSpec, build_model, course_cnn
from dl_core.predict import load_image, predict
from dl_core.preprocess import Preprocessing

CLASSES = ["circle", "ring", "triangle", "square", "hexagon", "star", "cross", "heart", "crescent", "arrow"]


def run(code: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**env, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def ckpt() -> Checkpoint:
    torch.manual_seed(0)
    model = build_model(course_cnn())
    return Checkpoint(spec=course_cnn(), state_dict=model.state_dict(), classes=CLASSES, dataset="shapes10",
                      preprocessing=Preprocessing(mean=(0.5,) * 3, std=(0.5,) * 3))


def test_save_then_load_code_runs_both_ways(tmp_path):
    out = run(save_code(course_cnn()), tmp_path)
    sizes = [int(line.split()[0]) for line in out.splitlines() if "bytes" in line]
    assert sizes[0] == (tmp_path / "tudui_method1.pth").stat().st_size
    assert sizes[1] == (tmp_path / "tudui_method2.pth").stat().st_size
    assert 4 * 145_578 < sizes[1] < sizes[0]
    out = run(load_code(course_cnn()), tmp_path)
    assert out.count("Sequential(") == 2 and "Linear(in_features=1024, out_features=64" in out


def test_the_load_code_reads_the_files_the_app_hands_out(ckpt, tmp_path):
    (tmp_path / "tudui_method1.pth").write_bytes(way1_bytes(ckpt))
    (tmp_path / "tudui_method2.pth").write_bytes(way2_bytes(ckpt))
    run(load_code(ckpt.spec), tmp_path)


def test_named_layers_are_written_as_note_003s_ordered_dict():
    spec = ModelSpec(tuple(LayerSpec(l.kind, l.args, f"layer{i}") for i, l in enumerate(course_cnn().layers)))
    code = tudui_class(spec)
    assert "nn.Sequential(OrderedDict([" in code and "('layer0', nn.Conv2d(3, 32, 5, padding=2))," in code
    code = save_code(spec)
    assert "from collections import OrderedDict" in code
    namespace: dict = {}
    exec(code.split("tudui = Tudui()")[0], namespace)  # the imports and the class, as written
    tudui = namespace["Tudui"]()
    assert list(tudui.state_dict())[0] == "model.layer0.weight"
    assert sum(p.numel() for p in tudui.parameters()) == 145_578


def test_course_shapes_in_the_class():
    code = tudui_class(course_cnn())
    for line in ("nn.Conv2d(3, 32, 5, padding=2)", "nn.MaxPool2d(2)", "nn.Flatten()", "nn.Linear(1024, 64)",
                 "nn.Linear(64, 10)", "self.model = nn.Sequential("):
        assert line in code


@pytest.mark.parametrize("normalize", [True, False])
def test_test_py_predicts_what_the_page_predicts(ckpt, tmp_path, normalize):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (40, 50, 4), dtype=np.uint8), "RGBA").save(tmp_path / "dog.png")
    (tmp_path / "tudui_method2.pth").write_bytes(way2_bytes(ckpt))
    prep = ckpt.preprocessing if normalize else Preprocessing()
    out = run(predict_code(ckpt.spec, prep, ckpt.classes), tmp_path).splitlines()
    # The script's own convert("RGB") drops alpha; the page composites transparency on white first.
    # Both agree on an opaque picture, so compare on the script's view of the file:
    image = Image.open(tmp_path / "dog.png").convert("RGB")
    page = predict(ckpt.build(), image, prep)
    assert out[-1] == CLASSES[page.index]
    assert out[-2] == f"tensor([{page.index}])"
    assert "torch.Size([3, 32, 32])" in out


def test_test_py_on_an_opaque_png_matches_load_image(ckpt, tmp_path):
    rng = np.random.default_rng(2)
    data = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8), "RGB").save(data, "PNG")
    (tmp_path / "dog.png").write_bytes(data.getvalue())
    (tmp_path / "tudui_method2.pth").write_bytes(way2_bytes(ckpt))
    out = run(predict_code(ckpt.spec, ckpt.preprocessing, ckpt.classes), tmp_path).splitlines()
    page = predict(ckpt.build(), load_image(data.getvalue()), ckpt.preprocessing)
    assert out[-1] == CLASSES[page.index]
