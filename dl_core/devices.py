"""Which device training uses, what this machine has, and how to train fastest on it (measured, not assumed).

The course's `"cuda" if torch.cuda.is_available() else "cpu"` (plus Apple's mps), the sidebar's device report,
and platform tuning: glibc's allocator, and `autotune`, which times precision × memory layout candidates on the
real network and batch and keeps the fastest that computes the same loss (see ../shared/PERFORMANCE.md: the same
CPU flags gave opposite answers on two machines of one kind).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from copy import deepcopy
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

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


# ----------------------------------------------------------------------------------------------
# Platform tuning: the allocator, which precision and layout run fastest here (measured, not assumed)
# ----------------------------------------------------------------------------------------------
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


@functools.cache
def tune_allocator() -> bool:
    """Raise glibc malloc's trim/mmap thresholds once per process (idempotent); True if applied.

    glibc hands big buffers back to the kernel after every step and page-faults them in again:
    2.0 M minor faults per run instead of 156 k, up to 1.4× slower (PERFORMANCE.md).
    """
    if os.name != "posix":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): nothing to tune
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1  # serve big tensors from the heap, not fresh mmaps
    ok &= mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1  # and keep freed memory for the next step
    ok &= mallopt(_M_ARENA_MAX, max(2, os.cpu_count() or 2)) == 1
    return bool(ok)


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow.

    Native bf16 is only a reason to *time* bf16 (autotune): on an AVX-512 + avx512_bf16 Xeon it was
    1.5× slower than fp32 + channels_last, on an earlier one of the same kind faster.
    """
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AVX512_BF16", "AMX"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_precision(requested: str, device: str) -> str:
    """The precision before anything is measured: what was requested, else 'fp32' (the safe start).

    'auto' is decided by `autotune` (timing, not CPU flags); this is its starting point and what a
    run uses when tuning cannot measure anything (a model whose single step exceeds the budget).
    """
    del device  # kept for callers: the answer no longer depends on flags
    return requested if requested in ("fp32", "bf16", "tf32") else "fp32"


@dataclass(frozen=True)
class Setting:
    """One way to run the same maths: a precision ('fp32' | 'bf16' | 'tf32') and a memory layout."""

    precision: str = "fp32"
    channels_last: bool = True

    @property
    def label(self) -> str:
        """'fp32 + channels_last', 'bf16', ...: what the CLI and the Train page show."""
        return self.precision + (" + channels_last" if self.channels_last else "")

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format


def candidate_settings(device_type: str) -> tuple[Setting, ...]:
    """What autotune times here; the first (fp32 + channels_last) is the reference for the loss check.

    bf16 only where the hardware has it: emulated bf16 on an AVX2 CPU is ~15× slower, and timing
    even one of its steps would blow the tuning budget.
    """
    precisions = ["fp32"]
    if device_type == "cuda":
        precisions.append("tf32")
        if torch.cuda.is_bf16_supported():
            precisions.append("bf16")
    elif device_type == "cpu" and cpu_has_fast_bf16():
        precisions.append("bf16")
    return tuple(Setting(p, cl) for p in precisions for cl in (True, False))


def autocast_context(precision: str, device_type: str) -> contextlib.AbstractContextManager:
    """The forward pass's context: bf16 autocast, or nothing (even a disabled autocast costs µs per step)."""
    if precision == "bf16":
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def math_context(precision: str, device_type: str) -> contextlib.AbstractContextManager:
    """A whole step's context on CUDA: 'tf32' allows TF32 for convolutions and matmuls, anything else is IEEE fp32.

    (cuDNN uses TF32 for convolutions by default, so without this an 'fp32' run would not be fp32.)
    The flags are process-wide: they are set for the step and put back after it. Elsewhere: nothing.
    """
    if device_type != "cuda":
        return contextlib.nullcontext()
    return _cuda_fp32_precision("tf32" if precision == "tf32" else "ieee")


@contextlib.contextmanager
def precision_context(precision: str, device_type: str) -> Iterator[None]:
    """Both contexts at once, for passes without a backward (the test pass, probes)."""
    with math_context(precision, device_type), autocast_context(precision, device_type):
        yield


@contextlib.contextmanager
def _cuda_fp32_precision(mode: str) -> Iterator[None]:
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = (matmul.fp32_precision, conv.fp32_precision)
    matmul.fp32_precision = conv.fp32_precision = mode  # the new API only: torch refuses a mix with allow_tf32
    try:
        yield
    finally:
        matmul.fp32_precision, conv.fp32_precision = before


@dataclass(frozen=True)
class TuneResult:
    """What a run uses and why: the setting, the measured candidates, and what measuring cost now."""

    precision: str
    channels_last: bool
    candidates: tuple[tuple[str, float], ...] = ()  # (label, images/s), fastest first; only loss-checked ones
    rejected: tuple[str, ...] = ()  # labels whose first loss differed from fp32's by more than the tolerance
    seconds: float = 0.0  # tuning time spent now (0 when the choice came from a cache)
    source: str = "requested"  # 'measured' | 'partial' | 'memory' | 'disk' | 'requested' | 'unmeasured'

    @property
    def setting(self) -> Setting:
        return Setting(self.precision, self.channels_last)

    @property
    def label(self) -> str:
        return self.setting.label


TUNE_BUDGET_S = 2.0  # the most tuning may cost (plus at most one step of the first candidate)
TUNE_MAX_ROUNDS = 5  # timed steps per candidate, interleaved A B C A B C ...; the fastest step counts
TUNE_LOSS_RTOL = 0.02  # a candidate's first loss must be within 2 % of fp32's (same weights, same batch)
TUNE_FP32_MARGIN = 1.05  # another precision must beat the best fp32 by 5 % to be chosen
TUNE_ATTEMPTS = 3  # a busy moment's incomplete measurement is used, and measured again by the next runs this often
StepFn = Callable[[nn.Module, torch.optim.Optimizer, Setting], torch.Tensor]

_TUNED: dict[str, TuneResult] = {}  # this process's choices (issue 15 asks for it); dl_core's one such cache
_TUNE_ATTEMPTS: dict[str, int] = {}  # measurements made per key in this process
_TUNE_LOCK = threading.Lock()  # one tuning at a time: two at once would time each other


def tuning_key(device: DeviceChoice, model: nn.Module, input_shape: tuple[int, ...], batch_size: int,
               threads: int | None = None) -> str:
    """What the choice depends on: device, network (its repr and dtypes), C×H×W, batch size, torch threads."""
    dtypes = sorted({str(p.dtype) for p in model.parameters()})
    network = hashlib.sha256((repr(model) + repr(dtypes)).encode()).hexdigest()[:16]
    threads = torch.get_num_threads() if threads is None else threads
    shape = "x".join(str(int(s)) for s in input_shape)
    return f"{device.type}|{device.name}|{network}|{shape}|b{batch_size}|t{threads}"


def tuning_cache_file() -> Path | None:
    """<data dir>/autotune.json, shared by the server's processes; None when TORCH_CLASSROOM_AUTOTUNE_CACHE=off."""
    if os.environ.get("TORCH_CLASSROOM_AUTOTUNE_CACHE", "").lower() in ("0", "off", "no", "false"):
        return None
    from dl_core.datasets import data_dir  # not at import time: datasets pulls in PIL and numpy

    return data_dir() / "autotune.json"


def clear_tuning_cache(disk: Path | None = None) -> None:
    """Forget every choice made in this process (and delete the disk cache `disk`, when given)."""
    with _TUNE_LOCK:
        _TUNED.clear()
        _TUNE_ATTEMPTS.clear()
        if disk is not None:
            disk.unlink(missing_ok=True)


def autotune(model: nn.Module, device: torch.device, batch_size: int, step: StepFn,
             make_optimizer: Callable[[nn.Module], torch.optim.Optimizer], key: str,
             budget: float = TUNE_BUDGET_S, cache_file: Path | None = None) -> TuneResult:
    """Time each candidate setting for a few steps on copies of `model`, keep the fastest that computes the same loss.

    `step(model, optimizer, setting)` is one real training step on one real batch of `batch_size`
    images (the engine's own step) and returns the loss. Candidates train deep copies of `model`
    with their own optimizers, so neither the model nor any random generator of the run is touched.
    Cached per `key`: in this process, and in `cache_file` (JSON, keyed by torch version and CPU
    model too) when given. A measurement the budget cut short (a busy machine, a fresh process's
    first-call costs) is used, and measured again by the next runs, `TUNE_ATTEMPTS` times at most.
    """
    disk_key = f"torch {torch.__version__}|{_cpu_name()}|{torch.backends.cpu.get_cpu_capability()}|{key}"
    with _TUNE_LOCK:
        known = _TUNED.get(key)
        if known is not None and (known.source in ("measured", "disk") or _TUNE_ATTEMPTS[key] >= TUNE_ATTEMPTS):
            return replace(known, seconds=0.0, source="memory")
        cached = _read_tuning(cache_file, disk_key)
        if cached is not None:
            _TUNED[key] = cached
            return cached
        result = _measure(model, device, batch_size, step, make_optimizer, budget)
        _TUNE_ATTEMPTS[key] = _TUNE_ATTEMPTS.get(key, 0) + 1
        _TUNED[key] = result
        if result.source == "measured":  # on disk only a complete measurement, never a busy moment's 'partial'
            _write_tuning(cache_file, disk_key, result)
        return result


@dataclass
class _Trial:
    """One candidate being timed: its own copy of the network and its own optimizer."""

    setting: Setting
    model: nn.Module
    optimizer: torch.optim.Optimizer
    first_loss: float  # of the warm-up step: the same weights and batch for every candidate
    warm_seconds: float  # includes first-call costs (kernel selection, allocations)
    times: list[float] = field(default_factory=list)

    @property
    def estimate(self) -> float:
        """Seconds one more step will take (the latest: it follows the machine's load)."""
        return self.times[-1] if self.times else self.warm_seconds


def _timed_step(model: nn.Module, optimizer: torch.optim.Optimizer, setting: Setting, step: StepFn,
                device: torch.device) -> tuple[float, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    loss = step(model, optimizer, setting).detach().item()  # .item() waits for the device
    return time.perf_counter() - start, loss


def _time_round(trials: list[_Trial], step: StepFn, device: torch.device) -> bool:
    """One timed step of each candidate (interleaved); a candidate that fails now is dropped. False if none is left."""
    for trial in list(trials):
        try:
            seconds, _ = _timed_step(trial.model, trial.optimizer, trial.setting, step, device)
        except Exception:  # noqa: BLE001 - failed after its warm-up: not a candidate after all
            trials.remove(trial)
            continue
        trial.times.append(seconds)
    return bool(trials)


def _warm_up(model: nn.Module, setting: Setting, step: StepFn, make_optimizer: Callable, device: torch.device,
             ) -> _Trial | None:
    """A copy of `model` in this setting's layout, one step run (first-call costs); None if the setting fails here."""
    try:
        copy = deepcopy(model).to(memory_format=setting.memory_format)
        optimizer = make_optimizer(copy)
        seconds, loss = _timed_step(copy, optimizer, setting, step, device)
    except Exception:  # noqa: BLE001 - a setting this machine cannot run (an op without bf16, out of memory)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return None
    return _Trial(setting, copy, optimizer, loss, seconds)


def _measure(model: nn.Module, device: torch.device, batch_size: int, step: StepFn,
             make_optimizer: Callable[[nn.Module], torch.optim.Optimizer], budget: float) -> TuneResult:
    """Warm each candidate up once, then time interleaved rounds (A B C, A B C, ...) while the budget lasts."""
    start = time.perf_counter()
    deadline = start + budget
    trials: list[_Trial] = []
    complete = True  # every candidate timed (or failed): only then is the choice worth caching
    for setting in candidate_settings(device.type):
        if trials and time.perf_counter() + (len(trials) + 2) * max(t.estimate for t in trials) > deadline:
            complete = False
            break  # no room for this candidate's warm-up and one timed round of all
        trial = _warm_up(model, setting, step, make_optimizer, device)
        if trial is None and not trials:
            break  # the reference (fp32) itself fails: let the run meet the error and report it
        if trial is None:
            continue  # a setting this machine cannot run
        trials.append(trial)
        if len(trials) == 1:  # the reference's first timed step: a realistic estimate (its warm-up paid first calls)
            if time.perf_counter() + trial.warm_seconds > deadline or not _time_round(trials, step, device):
                break
    for _ in range(TUNE_MAX_ROUNDS - 1):
        if not trials or time.perf_counter() + sum(t.estimate for t in trials) > deadline:
            break
        _time_round(trials, step, device)
    complete = complete and all(t.times for t in trials)
    result = _choose(trials, batch_size)
    if result.source == "measured" and not complete:
        result = replace(result, source="partial")
    trials.clear()  # the copies: free their memory now (a GPU needs it for the run)...
    trial = None  # ...the loop's last one included
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return replace(result, seconds=time.perf_counter() - start)


def _choose(trials: list[_Trial], batch_size: int) -> TuneResult:
    """The fastest candidate whose first loss matches fp32's; another precision must beat fp32 by 5 %."""
    if not trials or not trials[0].times or trials[0].setting != Setting():
        return TuneResult("fp32", True, source="unmeasured")
    reference = trials[0].first_loss

    def same_loss(trial: _Trial) -> bool:
        if not math.isfinite(reference):  # fp32 itself diverges at once: only fp32 layouts compare
            return trial.setting.precision == "fp32"
        return (math.isfinite(trial.first_loss)
                and abs(trial.first_loss - reference) <= TUNE_LOSS_RTOL * max(1.0, abs(reference)))

    measured = [t for t in trials if t.times]
    ok = [t for t in measured if same_loss(t)]
    speed = {id(t): batch_size / min(t.times) for t in measured}
    best = max(ok, key=lambda t: speed[id(t)] / (1.0 if t.setting.precision == "fp32" else TUNE_FP32_MARGIN))
    candidates = sorted(((t.setting.label, round(speed[id(t)], 1)) for t in ok), key=lambda c: -c[1])
    return TuneResult(best.setting.precision, best.setting.channels_last, tuple(candidates),
                      tuple(t.setting.label for t in measured if not same_loss(t)), 0.0, "measured")


_PRECISIONS = ("fp32", "bf16", "tf32")
_MAX_DISK_ENTRIES = 200


def _read_tuning(path: Path | None, key: str) -> TuneResult | None:
    if path is None:
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))["entries"][key]
        if entry["precision"] not in _PRECISIONS or not isinstance(entry["channels_last"], bool):
            return None
        return TuneResult(entry["precision"], entry["channels_last"],
                          tuple((str(label), float(ips)) for label, ips in entry["candidates"]),
                          tuple(str(label) for label in entry.get("rejected", ())), 0.0, "disk")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no file, another format, a hand-edited entry: measure again


def _write_tuning(path: Path | None, key: str, result: TuneResult) -> None:
    """Add one entry (atomic replace; a lost race between processes only costs a re-measurement)."""
    if path is None:
        return
    try:
        entries = json.loads(path.read_text(encoding="utf-8")).get("entries", {})
        if not isinstance(entries, dict):
            entries = {}
    except (OSError, ValueError, AttributeError):
        entries = {}
    entries[key] = {"precision": result.precision, "channels_last": result.channels_last,
                    "candidates": [list(c) for c in result.candidates], "rejected": list(result.rejected),
                    "seconds": round(result.seconds, 3), "when": time.time()}
    keep = sorted(entries, key=lambda k: entries[k].get("when", 0) if isinstance(entries[k], dict) else 0)
    entries = {k: entries[k] for k in keep[-_MAX_DISK_ENTRIES:]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({"entries": entries}, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only data directory: the in-memory cache still works
