"""Checkpoints: our format round-trips; the course's own files load (both ways, both key styles,
both module names); nothing in an uploaded file can run code; every bad file gets one clear error."""
from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from dl_core.checkpoint import (
    CIFAR10_CLASSES, Checkpoint, CheckpointMismatch, Tudui, file_name, load, load_any, load_demo, save,
    save_ways, to_bytes, way1_bytes, way2_bytes,
)
from dl_core.errors import CourseError
from dl_core.models import LayerSpec, ModelSpec, build_model, course_cnn
from dl_core.preprocess import Preprocessing

SHAPES = ["circle", "ring", "triangle", "square", "hexagon", "star", "cross", "heart", "crescent", "arrow"]

# The course's model.py, as the notes write it (positional Conv2d arguments, super(Tudui, self)).
COURSE_MODEL = '''
import torch
from torch import nn
from torch.nn import Conv2d, Flatten, Linear, MaxPool2d, Sequential


class Tudui(nn.Module):
    def __init__(self):
        super(Tudui, self).__init__()
        self.model = Sequential(
            Conv2d(3, 32, 5, 1, 2),
            MaxPool2d(2),
            Conv2d(32, 32, 5, 1, 2),
            MaxPool2d(2),
            Conv2d(32, 64, 5, 1, 2),
            MaxPool2d(2),
            Flatten(),
            Linear(64 * 4 * 4, 64),
            Linear(64, 10),
        )

    def forward(self, x):
        x = self.model(x)
        return x
'''

SAVE_WHOLE = '''
torch.manual_seed(1)
tudui = Tudui()
x = torch.rand(4, 3, 32, 32)
tudui.eval()
with torch.no_grad():
    y = tudui(x)
torch.save(tudui, "tudui_0.pth")  # train_gpu_1.py: torch.save(tudui, "tudui_{}.pth".format(i))
torch.save({"x": x, "y": y}, "expected.pth")
'''


def _seeded_model(spec: ModelSpec = course_cnn(), seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(spec).eval()


def _bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _run(script: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `script` in a fresh interpreter (the student's machine), one torch thread."""
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")}
    proc = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**base, "OMP_NUM_THREADS": "1", **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def ckpt() -> Checkpoint:
    model = _seeded_model()
    return Checkpoint(spec=course_cnn(), state_dict=model.state_dict(), classes=SHAPES, dataset="shapes10",
                      preprocessing=Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
                      history={"epochs": 3, "accuracy": 0.8734})


# ---------------------------------------------------------------- our format


def test_round_trip_gives_the_same_predictions(ckpt, tmp_path):
    model = ckpt.build()
    path = save(tmp_path / "m.pth", model, ckpt.spec, ckpt.classes, ckpt.preprocessing, "shapes10",
                {"epochs": 3, "accuracy": 0.8734})
    assert [p.name for p in tmp_path.iterdir()] == ["m.pth"]  # atomic: no temporary file left behind
    back = load(path)
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(back.build()(x), model(x))
    assert back.classes == SHAPES and back.dataset == "shapes10" and back.preprocessing == ckpt.preprocessing
    assert back.history == {"epochs": 3, "accuracy": 0.8734} and back.input_shape == (3, 32, 32)
    assert back.versions["torch"] == str(torch.__version__)


def test_our_file_is_plain_data_for_torch_load_weights_only(ckpt):
    obj = torch.load(io.BytesIO(to_bytes(ckpt)), weights_only=True)
    assert set(obj) >= {"state_dict", "spec", "classes", "preprocessing", "input_shape", "dataset", "history",
                        "versions"}
    assert obj["input_shape"] == [3, 32, 32] and obj["classes"] == SHAPES


def test_atomic_save_keeps_the_old_file_when_writing_fails(ckpt, tmp_path, monkeypatch):
    path = save(tmp_path / "m.pth", ckpt.build(), ckpt.spec, ckpt.classes, ckpt.preprocessing, "shapes10")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        save(path, _seeded_model(seed=5), ckpt.spec, ckpt.classes, ckpt.preprocessing, "shapes10")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.pth"]


def test_file_name_says_dataset_epochs_and_accuracy(ckpt):
    assert file_name(ckpt) == "shapes10_cnn_e3_acc87.3.pth"
    ckpt.history = {"test_accuracy": 0.5}
    assert file_name(ckpt) == "shapes10_cnn_acc50.0.pth"
    ckpt.history, ckpt.dataset = {}, "../../etc"
    assert file_name(ckpt) == "etc_cnn.pth"


def test_two_ways_sizes_are_real_and_way1_is_refused_by_default(ckpt):
    ways = save_ways(ckpt)
    assert ways.parameters == 145_578
    assert ways.way1_bytes == len(way1_bytes(ckpt)) and ways.way2_bytes == len(way2_bytes(ckpt))
    assert 4 * 145_578 < ways.way2_bytes < ways.way1_bytes < ways.way2_bytes + 10_000
    assert "Unsupported global" in ways.way1_refusal and "Tudui" in ways.way1_refusal
    with pytest.raises(pickle.UnpicklingError):
        torch.load(io.BytesIO(way1_bytes(ckpt)))  # the default is weights_only=True


def test_way2_file_has_the_course_key_names(ckpt):
    sd = torch.load(io.BytesIO(way2_bytes(ckpt)), weights_only=True)
    assert list(sd)[:2] == ["model.0.weight", "model.0.bias"]
    result = load_any(way2_bytes(ckpt), classes=SHAPES)
    assert result.kind == "state_dict" and result.key_prefix == "model." and result.checkpoint.classes == SHAPES


# ---------------------------------------------------------------- the course's own files


@pytest.mark.parametrize("prefix", ["model.", ""], ids=["Tudui-keys", "Sequential-keys"])
def test_course_state_dicts_load_strictly_and_predict_the_same(prefix):
    model = _seeded_model(seed=3)
    wrapped = Tudui(model) if prefix else model
    result = load_any(_bytes(wrapped.state_dict()))
    assert result.kind == "state_dict" and result.matched == "course_cnn" and result.key_prefix == prefix
    assert result.checkpoint.classes == CIFAR10_CLASSES and result.checkpoint.dataset == "cifar10"
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(result.checkpoint.build()(x), model(x))


def test_note_003_ordered_dict_names_load():
    names = ("conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "flatten", "full_connect1", "full_connect2")
    layers = list(course_cnn().layers)
    layers[7] = LayerSpec("Linear", {"in_features": 1024, "out_features": 128})
    layers[8] = LayerSpec("Linear", {"in_features": 128, "out_features": 10})
    spec = ModelSpec(tuple(LayerSpec(l.kind, l.args, n) for l, n in zip(layers, names)))
    model = _seeded_model(spec, seed=4)
    result = load_any(_bytes(Tudui(model).state_dict()))
    assert result.matched == "course_cnn" and result.key_prefix == "model."
    assert [l.name for l in result.checkpoint.spec.layers] == list(names)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(result.checkpoint.build()(x), model(x))


def test_a_spec_is_inferred_from_tensor_shapes():
    spec = ModelSpec((
        LayerSpec("Conv2d", {"in_channels": 3, "out_channels": 16, "kernel_size": 3, "padding": 1}),
        LayerSpec("ReLU"), LayerSpec("MaxPool2d", {"kernel_size": 2}),
        LayerSpec("Conv2d", {"in_channels": 16, "out_channels": 8, "kernel_size": 3, "padding": 1}),
        LayerSpec("MaxPool2d", {"kernel_size": 2}), LayerSpec("Flatten"),
        LayerSpec("Linear", {"in_features": 8 * 8 * 8, "out_features": 5}),
    ))
    model = _seeded_model(spec, seed=6)
    result = load_any(_bytes(model.state_dict()), classes=list("abcde"))
    assert result.matched == "inferred" and result.checkpoint.classes == list("abcde")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(result.checkpoint.build()(x), model(x))


@pytest.mark.parametrize("module", ["__main__", "model"])
def test_whole_model_saved_by_the_course_code_loads_safely_and_predicts_the_same(module, tmp_path):
    if module == "__main__":
        _run(COURSE_MODEL + SAVE_WHOLE, tmp_path)
    else:
        (tmp_path / "model.py").write_text(COURSE_MODEL)
        _run("import torch\nfrom model import *\n" + SAVE_WHOLE, tmp_path)
    data = (tmp_path / "tudui_0.pth").read_bytes()
    assert f"{module}.Tudui" in torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    result = load_any(data)
    assert result.kind == "whole_model" and result.source_class == f"{module}.Tudui"
    assert result.checkpoint.spec == course_cnn()
    expected = torch.load(tmp_path / "expected.pth", weights_only=True)
    with torch.no_grad():
        assert torch.equal(result.checkpoint.build()(expected["x"]), expected["y"])


def test_a_whole_model_with_layers_as_attributes_loads(tmp_path):
    # The notes' earlier Tudui: self.conv1 = Conv2d(...), self.maxpool1 = ..., forward calls them in order.
    script = """
import torch
from torch import nn

class Tudui(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 5, padding=2)
        self.maxpool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(32, 32, 5, padding=2)
        self.maxpool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(32, 64, 5, padding=2)
        self.maxpool3 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.linear1 = nn.Linear(1024, 64)
        self.linear2 = nn.Linear(64, 10)

    def forward(self, x):
        for layer in self.children():
            x = layer(x)
        return x
""" + SAVE_WHOLE
    _run(script, tmp_path)
    result = load_any((tmp_path / "tudui_0.pth").read_bytes())
    assert [l.name for l in result.checkpoint.spec.layers][:2] == ["conv1", "maxpool1"]
    expected = torch.load(tmp_path / "expected.pth", weights_only=True)
    with torch.no_grad():
        assert torch.equal(result.checkpoint.build()(expected["x"]), expected["y"])


def test_a_whole_model_needing_another_class_is_refused_by_name(tmp_path):
    script = COURSE_MODEL + '''
class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)

tudui = Tudui()
tudui.model.insert(1, Swish())
torch.save(tudui, "tudui_swish.pth")
'''
    _run(script, tmp_path)
    with pytest.raises(CourseError) as err:
        load_any((tmp_path / "tudui_swish.pth").read_bytes())
    assert err.value.code == "ckpt.unsafe_globals"
    assert "__main__.Swish" in err.value.params["names"] and "__main__.Tudui" in err.value.params["names"]
    assert "torch.save(model.state_dict(), path)" in str(err.value)


EVIL = '''
import os, torch

class Evil:
    def __reduce__(self):
        return ({func}, ("touch {marker}",))

torch.save({{"model.0.weight": torch.zeros(1), "payload": Evil()}}, "evil.pth")
'''


@pytest.mark.parametrize("force_env", [False, True], ids=["default", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1"])
def test_a_file_that_would_call_os_system_is_refused_and_nothing_runs(tmp_path, monkeypatch, force_env):
    marker = tmp_path / "pwned"
    _run(EVIL.format(func="os.system", marker=marker), tmp_path)
    data = (tmp_path / "evil.pth").read_bytes()
    if force_env:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(CourseError) as err:
        load_any(data)
    assert err.value.code == "ckpt.unsafe_globals" and "system" in err.value.params["names"]
    assert not marker.exists()


def test_the_stand_in_cannot_be_abused_as_a_callable(tmp_path, monkeypatch):
    # One unknown global from a non-stdlib module is mapped to the harmless stand-in; a file that
    # tries to *call* it (REDUCE) instead of building an object from it just fails to load.
    (tmp_path / "evilmod.py").write_text("import os\nclass Payload:\n    def __init__(self, cmd):\n"
                                         "        os.system(cmd)\n")
    script = f'''
import torch, evilmod

class Boom:
    def __reduce__(self):
        return (evilmod.Payload, ("touch {tmp_path / 'pwned'}",))

torch.save({{"w": Boom()}}, "evil.pth")
'''
    _run(script, tmp_path)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(CourseError):
        load_any((tmp_path / "evil.pth").read_bytes())
    assert not (tmp_path / "pwned").exists()


def test_the_loader_always_passes_weights_only_true(monkeypatch, ckpt):
    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    monkeypatch.setattr(torch, "load", spy)
    load_any(to_bytes(ckpt))
    load_any(way1_bytes(ckpt))
    assert seen and all(w is True for w in seen)


# ---------------------------------------------------------------- bad files, one clear error each


def _gpu_file(data: bytes) -> bytes:
    """The same file as if saved from a GPU: every storage location `cpu` becomes `cuda:0`."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename.endswith("data.pkl"):
                content = content.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            dst.writestr(info, content)
    return out.getvalue()


def test_a_gpu_trained_file_loads_on_the_cpu(ckpt):
    data = _gpu_file(way2_bytes(ckpt))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(io.BytesIO(data), weights_only=True)  # what the course hits without map_location
    result = load_any(data)
    assert result.gpu_trained and result.devices == ("cuda:0",)
    assert all(v.device.type == "cpu" for v in result.checkpoint.state_dict.values())


def test_the_legacy_format_loads(ckpt):
    buf = io.BytesIO()
    torch.save(Tudui(ckpt.build()).state_dict(), buf, _use_new_zipfile_serialization=False)
    assert load_any(buf.getvalue()).matched == "course_cnn"


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "PNG")
    return buf.getvalue()


def _zip_without_pickle() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello")
    return buf.getvalue()


@pytest.mark.parametrize("make, code", [
    (lambda c: b"", "ckpt.empty"),
    (lambda c: bytes(range(1, 256)) * 40, "ckpt.not_torch"),
    (lambda c: b"print('hello')\n", "ckpt.not_torch"),
    (lambda c: _png(), "ckpt.not_torch"),
    (lambda c: _zip_without_pickle(), "ckpt.not_torch"),
    (lambda c: to_bytes(c)[: len(to_bytes(c)) // 2], "ckpt.truncated"),
    (lambda c: b"\x80\x02" + os.urandom(64).replace(b"\x80", b"\x00"), "ckpt.unreadable"),
    (lambda c: _bytes({"epoch": 3, "lr": 0.01}), "ckpt.no_weights"),
    (lambda c: _bytes([1, 2, 3]), "ckpt.no_weights"),
    (lambda c: _bytes({**c.to_dict(), "spec": {"nope": 1}}), "ckpt.corrupt"),
], ids=["empty", "random", "text", "png", "zip", "truncated", "bad-pickle", "no-tensors", "list", "corrupt"])
def test_bad_files_get_one_clear_error(ckpt, make, code):
    with pytest.raises(CourseError) as err:
        load_any(make(ckpt))
    assert err.value.code == code
    assert "Traceback" not in str(err.value)


def test_too_big_is_refused_before_unpickling(ckpt):
    with pytest.raises(CourseError) as err:
        load_any(to_bytes(ckpt), limit=1000)
    assert err.value.code == "ckpt.too_big" and err.value.params["limit_mb"] == 0


def test_a_zip_bomb_is_refused_before_unpacking():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("archive/data/0", bytes(50 * 2**20))  # 50 MB of zeros, ~50 kB packed
    assert len(buf.getvalue()) < 2**20
    with pytest.raises(CourseError) as err:
        load_any(buf.getvalue(), limit=10 * 2**20)
    assert err.value.code == "ckpt.too_big"


def test_nan_weights_are_refused(ckpt):
    model = ckpt.build()
    with torch.no_grad():
        model[7].weight[0, 0] = float("nan")
    with pytest.raises(CourseError) as err:
        load_any(_bytes(model.state_dict()))
    assert err.value.code == "ckpt.nan_weights" and err.value.params["key"] == "7.weight"


def test_a_mismatch_gives_the_table_of_keys_and_shapes():
    model = _seeded_model()
    sd = {f"model.{k}": v for k, v in model.state_dict().items()}
    sd["model.7.weight"] = torch.zeros(64, 1000)  # another shape
    del sd["model.8.bias"]  # missing
    sd["model.9.weight"] = torch.zeros(3)  # unexpected
    with pytest.raises(CheckpointMismatch) as err:
        load_any(_bytes(sd))
    rows = {(r.key, r.problem): r for r in err.value.rows}
    assert rows[("7.weight", "shape")].expected == "[64, 1024]" and rows[("7.weight", "shape")].found == "[64, 1000]"
    assert rows[("8.bias", "missing")].expected == "[10]"
    assert rows[("9.weight", "unexpected")].found == "[3]"
    assert err.value.code == "ckpt.mismatch" and err.value.params["missing"] == 1


def test_our_format_with_wrong_weights_is_a_mismatch(ckpt):
    d = ckpt.to_dict()
    d["state_dict"]["0.weight"] = torch.zeros(32, 3, 3, 3)
    with pytest.raises(CheckpointMismatch) as err:
        load_any(_bytes(d))
    assert [(r.key, r.problem) for r in err.value.rows] == [("0.weight", "shape")]


def test_load_refuses_a_bare_state_dict_but_load_any_takes_it(ckpt):
    with pytest.raises(CourseError) as err:
        load(way2_bytes(ckpt))
    assert err.value.code == "ckpt.not_ours"


def test_demo_missing_is_a_clear_error(tmp_path):
    with pytest.raises(CourseError) as err:
        load_demo(tmp_path / "nope.pth")
    assert err.value.code == "ckpt.demo_missing"


def test_the_shipped_demo_model_loads():
    from dl_core.checkpoint import DEMO_PATH

    assert DEMO_PATH.is_file(), "the demo model ships with the app (scripts/make_demo_model.py)"
    demo = load_demo()
    assert demo.dataset == "shapes10-full" and demo.spec == course_cnn() and len(demo.classes) == 10
    assert demo.history["test_accuracy"] > 0.9
    assert DEMO_PATH.stat().st_size < 1_000_000
