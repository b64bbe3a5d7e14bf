"""Device detection: cuda, then mps, then cpu; CUDA/MPS paths exercised with small fakes."""
import pytest
import torch

from dl_core import devices
from dl_core.errors import CourseError


@pytest.fixture
def no_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)


def test_cpu_when_nothing_else(no_accelerators):
    choice = devices.detect_device()
    assert (choice.type, choice.reason) == ("cpu", "no_accelerator")
    assert choice.torch_device == torch.device("cpu")


def test_cuda_first(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Fake GPU")
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    choice = devices.detect_device("auto")
    assert (choice.type, choice.name, choice.reason) == ("cuda", "Fake GPU", "cuda_available")


def test_mps_when_no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert devices.detect_device("auto").type == "mps"
    assert devices.detect_device("cpu").reason == "requested"


@pytest.mark.parametrize("prefer, code", [("cuda", "device.cuda_missing"), ("mps", "device.mps_missing"),
                                          ("tpu", "device.unknown")])
def test_requested_device_missing_is_a_clear_error(no_accelerators, prefer, code):
    with pytest.raises(CourseError) as exc:
        devices.detect_device(prefer)
    assert exc.value.code == code


def test_report_reads_this_machine():
    report = devices.device_report()
    assert report.torch_version == torch.__version__
    assert report.cuda_available == torch.cuda.is_available()
    assert report.cpu_threads >= 1 and report.cpu_cores >= 1
    assert report.chosen.type in ("cuda", "mps", "cpu")


def test_report_with_a_fake_gpu(monkeypatch):
    class Props:
        name, total_memory = "Fake H100", 80 * 2**30

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: Props)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: Props.name)
    report = devices.device_report()
    assert (report.cuda_name, report.cuda_memory_gb, report.chosen.type) == ("Fake H100", 80.0, "cuda")


# -- platform tuning helpers (the autotuner itself: tests/test_autotune.py) ------------------------------
def test_cuda_math_mode_is_set_for_a_step_and_put_back():
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = (matmul.fp32_precision, conv.fp32_precision)
    with devices.math_context("tf32", "cuda"):
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
    with pytest.raises(ZeroDivisionError), devices.math_context("fp32", "cuda"):
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")  # fp32 means fp32, convs too
        1 / 0
    assert (matmul.fp32_precision, conv.fp32_precision) == before
    with devices.math_context("tf32", "cpu"):  # nothing to set on a CPU
        assert (matmul.fp32_precision, conv.fp32_precision) == before


def test_autocast_only_for_bf16():
    assert isinstance(devices.autocast_context("bf16", "cpu"), torch.autocast)
    assert not isinstance(devices.autocast_context("fp32", "cpu"), torch.autocast)
    with devices.precision_context("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu")
    assert not torch.is_autocast_enabled("cpu")


def test_cuda_candidates(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    labels = [s.label for s in devices.candidate_settings("cuda")]
    assert labels[0] == "fp32 + channels_last" and len(labels) == 6
    assert {"tf32", "bf16 + channels_last", "fp32"} <= set(labels)
