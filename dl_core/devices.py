"""Which device training uses, and what this machine has (the course's torch.cuda.is_available())."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from dl_core.errors import CourseError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class DeviceChoice:
    """The device to train on: `type` is 'cuda' | 'mps' | 'cpu'; `reason` is a reason code."""

    type: str
    name: str
    reason: str  # 'cuda_available' | 'mps_available' | 'no_accelerator' | 'requested'

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.type)


@dataclass(frozen=True)
class DeviceReport:
    """What the sidebar's device panel shows."""

    torch_version: str
    cuda_available: bool
    cuda_name: str | None
    cuda_memory_gb: float | None
    cuda_version: str | None
    mps_available: bool
    cpu_threads: int
    cpu_cores: int
    chosen: DeviceChoice


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


def detect_device(prefer: str = "auto") -> DeviceChoice:
    """cuda, then mps, then cpu (the course's `"cuda" if torch.cuda.is_available() else "cpu"`, plus mps)."""
    if prefer not in DEVICE_CHOICES:
        raise CourseError("device.unknown", "unknown device {device}; choose auto, cpu, cuda or mps", device=prefer)
    if prefer in ("auto", "cuda") and torch.cuda.is_available():
        reason = "cuda_available" if prefer == "auto" else "requested"
        return DeviceChoice("cuda", torch.cuda.get_device_name(0), reason)
    if prefer == "cuda":
        raise CourseError("device.cuda_missing", "CUDA was requested but torch.cuda.is_available() is False")
    if prefer in ("auto", "mps") and _mps_available():
        return DeviceChoice("mps", "Apple GPU (MPS)", "mps_available" if prefer == "auto" else "requested")
    if prefer == "mps":
        raise CourseError("device.mps_missing", "MPS was requested but torch.backends.mps.is_available() is False")
    return DeviceChoice("cpu", _cpu_name(), "no_accelerator" if prefer == "auto" else "requested")


def device_report() -> DeviceReport:
    """Everything the device panel shows, read now."""
    cuda = torch.cuda.is_available()
    name = memory = None
    if cuda:
        props = torch.cuda.get_device_properties(0)
        name, memory = props.name, round(props.total_memory / 2**30, 1)
    return DeviceReport(
        torch_version=torch.__version__,
        cuda_available=cuda,
        cuda_name=name,
        cuda_memory_gb=memory,
        cuda_version=torch.version.cuda,
        mps_available=_mps_available(),
        cpu_threads=torch.get_num_threads(),
        cpu_cores=os.cpu_count() or 1,
        chosen=detect_device("auto"),
    )
