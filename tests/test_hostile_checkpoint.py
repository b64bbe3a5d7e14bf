"""Issue 11: hostile .pth files end as a CourseError within 2 s and 200 MB, never a hang or a raw exception.

Every file is generated here, each in a forked child with a time and memory limit (tests/hostile.py).
"""
from __future__ import annotations

import io
import struct
import zipfile

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from dl_core.checkpoint import Checkpoint, load_any, to_bytes
from dl_core.errors import CourseError
from dl_core.models import LayerSpec, ModelSpec, build_model_seeded, course_cnn
from dl_core.preprocess import Preprocessing
from tests.hostile import assert_clear_error, run_bounded


def _save(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


def _ckpt(spec: ModelSpec | None = None) -> Checkpoint:
    spec = spec or course_cnn()
    model = build_model_seeded(spec, 0)
    return Checkpoint(spec, model.state_dict(), [str(i) for i in range(10)], Preprocessing(), "shapes10",
                      {"epochs": 1, "test_accuracy": 0.5})


def _ours(**changes) -> bytes:
    d = _ckpt().to_dict()
    d.update(changes)
    return _save(d)


def _rewrite_pickle(data: bytes, old: bytes, new: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename.endswith("data.pkl"):
                assert old in content
                content = content.replace(old, new)
            dst.writestr(info, content)
    return out.getvalue()


def _self_containing() -> bytes:
    m = nn.Sequential()
    m._modules["0"] = m  # the graph refers to itself
    return _save(m)


def _two_step_cycle() -> bytes:
    a, b = nn.Sequential(), nn.Sequential()
    a._modules["inner"] = b
    b._modules["0"] = a
    return _save(a)


def _deep_chain(depth: int = 60) -> bytes:
    m: nn.Module = nn.Linear(2, 2)
    for _ in range(depth):
        m = nn.Sequential(m)
    return _save(m)


def _shared_fanout(levels: int = 6, width: int = 8) -> bytes:
    """A small DAG whose paths number width**levels: a naive recursive walk never ends."""
    m: nn.Module = nn.Linear(2, 2)
    for _ in range(levels):
        parent = nn.Sequential()
        for i in range(width):
            parent._modules[str(i)] = m
        m = parent
    return _save(m)


def _huge_attributes() -> bytes:
    """A whole-model file whose layer attributes describe 10^12 parameters, with tiny tensors."""
    lin = nn.Linear(2, 2)
    lin.in_features = lin.out_features = 1_000_000
    return _save(nn.Sequential(nn.Flatten(), lin))


def _huge_spec_ours() -> bytes:
    spec = {"layers": [{"kind": "Flatten", "args": {}},
                       {"kind": "Linear", "args": {"in_features": 3072, "out_features": 200_000}},
                       {"kind": "Linear", "args": {"in_features": 200_000, "out_features": 10}}]}
    return _ours(spec=spec)


def _too_many_layers_ours() -> bytes:
    return _ours(spec={"layers": [{"kind": "ReLU", "args": {}}] * 65})


def _expanded(shape=(100_000, 100_000)) -> bytes:
    return _save({"0.weight": torch.zeros(1).expand(*shape)})


def _expanded_course_shapes() -> bytes:
    """Every tensor of the course CNN as a stride-0 view of one number: 4 bytes stored, 145 k described."""
    sd = {k: torch.zeros(1).expand(*v.shape) for k, v in build_model_seeded(course_cnn()).state_dict().items()}
    return _save(sd)


def _inference_explosion() -> bytes:
    """Numbered keys with 12 gaps and a Linear no filling fits: 2^11 candidate networks (~5 KB)."""
    return _save({"0.weight": torch.zeros(8, 3, 3, 3), "0.bias": torch.zeros(8),
                  "13.weight": torch.zeros(10, 7), "13.bias": torch.zeros(10)})


def _course_sd(**tweaks) -> dict:
    sd = {k: v.clone() for k, v in build_model_seeded(course_cnn()).state_dict().items()}
    sd.update(tweaks)
    return sd


def _float64_overflow() -> bytes:
    sd = {k: v.double() for k, v in _course_sd().items()}
    sd["7.weight"][0, 0] = 1e300  # finite in float64, inf in float32
    return _save(sd)


def _complex() -> bytes:
    return _save(_course_sd(**{"0.weight": torch.zeros(32, 3, 5, 5, dtype=torch.complex64)}))


def _quantized() -> bytes:
    q = torch.quantize_per_tensor(torch.zeros(32, 3, 5, 5), 0.1, 0, torch.qint8)
    return _save(_course_sd(**{"0.weight": q}))


def _meta() -> bytes:
    return _save(_course_sd(**{"0.weight": torch.zeros(32, 3, 5, 5, device="meta")}))


def _sparse() -> bytes:
    return _save(_course_sd(**{"7.weight": torch.zeros(64, 1024).to_sparse()}))


def _negative_running_var() -> bytes:
    spec = ModelSpec((LayerSpec("Conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1}),
                      LayerSpec("BatchNorm2d", {"num_features": 4}), LayerSpec("Flatten"),
                      LayerSpec("Linear", {"in_features": 4096, "out_features": 10})))
    ck = _ckpt(spec)
    d = ck.to_dict()
    d["state_dict"]["1.running_var"] = torch.full((4,), -1.0)
    return _save(d)


def _nested(depth: int):
    """A list whose printed form doubles at every level (shared references, a few bytes pickled)."""
    x: list = [0]
    for _ in range(depth):
        x = [x, x]
    return x


def _numel_claim() -> bytes:
    data = _save({"w": torch.zeros(4)})
    return _rewrite_pickle(data, b"cpuq\x06K\x04t", b"cpuq\x06J" + struct.pack("<i", 2**30) + b"t")


def _legacy_numel_claim() -> bytes:
    data = _save({"w": torch.zeros(4)}, _use_new_zipfile_serialization=False)
    assert b"cpuq\x06K\x04N" in data
    return data.replace(b"cpuq\x06K\x04N", b"cpuq\x06J" + struct.pack("<i", 2**31 - 1) + b"N", 1)


def _deflated_zeros() -> bytes:
    """A torch zip whose storage entry is DEFLATE-compressed: 90 MB of zeros in ~90 kB."""
    data = _save({"w": torch.zeros(4)})
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            if info.filename.endswith("data/0"):
                dst.writestr(info.filename, bytes(90 * 2**20), compress_type=zipfile.ZIP_DEFLATED)
            else:
                dst.writestr(info, src.read(info.filename))
    return out.getvalue()


HOSTILE = {
    "self-containing-module": (_self_containing, "ckpt.cycle"),
    "two-step-cycle": (_two_step_cycle, "ckpt.cycle"),
    "deep-chain": (_deep_chain, "ckpt.too_deep"),
    "shared-fanout-dag": (_shared_fanout, "ckpt.too_many_modules"),
    "huge-layer-attributes": (_huge_attributes, "model.too_big"),
    "huge-spec-ours": (_huge_spec_ours, "model.too_big"),
    "65-layers-ours": (_too_many_layers_ours, "ckpt.corrupt"),
    "expanded-10-billion": (_expanded, "ckpt.too_many_numbers"),
    "expanded-course-shapes": (_expanded_course_shapes, "ckpt.bad_tensor"),
    "inference-explosion": (_inference_explosion, "ckpt.mismatch"),
    "float64-overflows-float32": (_float64_overflow, "ckpt.nan_weights"),
    "complex-weights": (_complex, "ckpt."),
    "quantized-weights": (_quantized, "ckpt."),
    "meta-weights": (_meta, "ckpt."),
    "sparse-weights": (_sparse, "ckpt."),
    "negative-running-var": (_negative_running_var, "ckpt.bad_running_var"),
    "preprocessing-12000px": (lambda: _ours(preprocessing={"size": [12000, 12000], "channels": 3,
                                                            "mean": None, "std": None}), "ckpt.bad_preprocessing"),
    "preprocessing-std-0": (lambda: _ours(preprocessing={"size": [32, 32], "channels": 3, "mean": [0.5] * 3,
                                                         "std": [0.5, 0.0, 0.5]}), "ckpt.bad_preprocessing"),
    "preprocessing-wrong-length": (lambda: _ours(preprocessing={"size": [32, 32], "channels": 3, "mean": [0.5],
                                                                "std": [0.5]}), "ckpt.bad_preprocessing"),
    "preprocessing-strings": (lambda: _ours(preprocessing={"size": ["32", "x"], "channels": 3}),
                              "ckpt.bad_preprocessing"),
    "history-huge-int": (lambda: _ours(history={"epochs": 10**400}), "ckpt.bad_history"),
    "history-exponential-list": (lambda: _ours(history={"train_loss": _nested(60)}), "ckpt.bad_history"),
    "classes-exponential-list": (lambda: _ours(classes=_nested(60)), "ckpt.corrupt"),
    "spec-not-a-list": (lambda: _ours(spec={"layers": "Conv2d"}), "ckpt.corrupt"),
    "spec-unknown-kind": (lambda: _ours(spec={"layers": [{"kind": "os.system", "args": {}}]}), "ckpt.corrupt"),
    "zip-numel-claim": (_numel_claim, "ckpt.unreadable"),
    "legacy-numel-claim": (_legacy_numel_claim, "ckpt."),
    "deflated-zeros": (_deflated_zeros, "ckpt.too_big"),
    "too-many-tensors": (lambda: _save({f"k{i}": torch.zeros(1) for i in range(600)}), "ckpt.too_many_tensors"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_checkpoint_is_a_clear_error_in_bounded_time_and_memory(name):
    make, code = HOSTILE[name]
    data = make()
    assert len(data) < 2 * 2**20  # small files (the course CNN's own weights are 0.6 MB)
    assert_clear_error(lambda: load_any(data), code)


def test_the_course_files_still_load_after_the_budgets():
    ck = _ckpt()
    assert load_any(to_bytes(ck)).kind == "ours"
    sd = {f"model.{k}": v for k, v in ck.state_dict.items()}
    assert load_any(_save(sd)).matched == "course_cnn"
    # float64 weights that fit float32 are converted, not refused
    result = load_any(_save({k: v.double() for k, v in ck.state_dict.items()}))
    assert result.checkpoint.state_dict["0.weight"].dtype == torch.float32
    # a non-contiguous (transposed) weight is fine: its storage holds every number
    sd = dict(ck.state_dict)
    sd["7.weight"] = sd["7.weight"].t().contiguous().t()
    assert not sd["7.weight"].is_contiguous()
    assert load_any(_save(sd)).kind == "state_dict"


def test_a_model_with_batchnorm_loads_with_its_positive_variance():
    spec = ModelSpec((LayerSpec("Conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1}),
                      LayerSpec("BatchNorm2d", {"num_features": 4}), LayerSpec("Flatten"),
                      LayerSpec("Linear", {"in_features": 4096, "out_features": 10})))
    assert load_any(to_bytes(_ckpt(spec))).checkpoint.spec == spec


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_any_bytes_give_a_checkpoint_or_a_course_error(data):
    try:
        load_any(data)
    except CourseError:
        pass


_VALID = to_bytes(_ckpt())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_a_damaged_real_checkpoint_gives_a_checkpoint_or_a_course_error(flips):
    data = bytearray(_VALID)
    for pos, value in flips:
        data[pos] = value
    out = run_bounded(lambda: load_any(bytes(data)) and None, timeout=10)
    assert not out.error, out
    assert out.seconds < 2 and out.extra_mb < 200, out
