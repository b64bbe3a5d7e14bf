"""The generated course code runs and prints what the notes print."""
from __future__ import annotations

import subprocess
import sys

from dl_core.codegen.model import layer_code, model_code, vgg_code
from dl_core.models import LayerSpec, course_cnn, preset


def _run(code: str, tmp_path) -> str:
    path = tmp_path / "model.py"
    path.write_text(code, encoding="utf-8")
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_course_code_shape():
    code = model_code(course_cnn())
    assert "class Tudui(nn.Module):" in code and "self.model = nn.Sequential(" in code
    assert "nn.Conv2d(3, 32, 5, padding=2)," in code and "nn.Linear(1024, 64)," in code
    assert "nn.MaxPool2d(2)," in code and "torch.ones((64, 3, 32, 32))" in code


def test_layer_code():
    assert layer_code(LayerSpec("MaxPool2d", {"kernel_size": 3, "stride": None, "padding": 0, "ceil_mode": True})) \
        == "nn.MaxPool2d(3, ceil_mode=True)"
    assert layer_code(LayerSpec("Dropout", {"p": 0.2})) == "nn.Dropout(p=0.2)"
    assert layer_code(LayerSpec("Flatten")) == "nn.Flatten()"


def test_generated_code_runs_and_prints_the_course_numbers(tmp_path):
    out = _run(model_code(course_cnn()), tmp_path)
    lines = out.strip().splitlines()
    assert lines[-2:] == ["torch.Size([64, 10])", "145578"]
    assert "(7): Linear(in_features=1024, out_features=64, bias=True)" in out


def test_ordered_dict_form_runs(tmp_path):
    out = _run(model_code(preset("course_odict", 1, 10, (28, 28)), (1, 28, 28), ordered=True), tmp_path)
    assert "(full_connect1): Linear(in_features=576, out_features=128, bias=True)" in out
    assert out.strip().splitlines()[-2] == "torch.Size([64, 10])"


def test_vgg_code_mentions_the_course_lines():
    code = vgg_code("classifier_replace", freeze=True)
    assert "vgg16 = torchvision.models.vgg16(weights=None)" in code
    assert "vgg16.classifier[6] = nn.Linear(4096, 10)" in code
    assert "param.requires_grad = False" in code
    compile(code, "vgg.py", "exec")
    compile(vgg_code(pretrained=True), "vgg.py", "exec")
