"""Checkpoints: one .pth that `torch.load(..., weights_only=True)` reads and that rebuilds its own model.

Also the safe door for files students bring from home (`load_any`): our format, a bare
state_dict as the course's train.py saves it (way 2), or a whole model (way 1,
`torch.save(tudui)`), always through the weights-only unpickler — never `weights_only=False`.
"""
from __future__ import annotations

import io
import itertools
import math
import os
import re
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from dl_core import layer_kinds
from dl_core.datasets import DATASETS
from dl_core.errors import CourseError
from dl_core.layer_kinds import KINDS
from dl_core.models import MAX_LAYERS, MAX_PARAMETERS, LayerSpec, ModelSpec, build_model, check_spec, course_cnn
from dl_core.preprocess import Preprocessing

FORMAT = "torch-classroom/1"
MAX_CHECKPOINT_BYTES = 100 * 1024 * 1024  # an upload larger than this is refused before unpickling
# Budgets checked before anything is allocated, built or run (a 2 KB file must not cost minutes or gigabytes).
MAX_TENSORS = 512  # entries of a state_dict (the course CNN has 10)
MAX_ELEMENTS = MAX_PARAMETERS  # numbers in all the file's tensors together, from their shapes
MAX_MODULES = 4 * MAX_LAYERS  # modules in a whole-model file's graph, walked with a visited set
MAX_DEPTH = 8  # nesting of modules (Tudui → Sequential → layer is 3)
MAX_INPUT_SIDE = 512  # saved preprocessing: the largest input side a checkpoint may ask for
MAX_HISTORY_ITEMS = 200_000  # values in a checkpoint's history, all lists and dicts together
MAX_INFER_CANDIDATES = 1_024  # spec fillings tried when inferring a network from a state_dict
MAX_INFER_SECONDS = 1.0
CIFAR10_CLASSES = list(DATASETS["cifar10"].classes)  # the course's classes: a file from home predicts them

# torch.nn layer classes a whole-model file (way 1) may contain; nothing else from torch is allowlisted.
ALLOWED_LAYERS: tuple[type[nn.Module], ...] = tuple(k.torch_class for k in KINDS.values()) + (nn.Sequential,)
_ALLOWED_PATHS = {f"{c.__module__}.{c.__qualname__}" for c in ALLOWED_LAYERS}
# Modules whose names may never be mapped to the stand-in (the classic pickle exploits live here).
_NEVER_MAP = set(sys.stdlib_module_names) | {"torch", "torchvision", "numpy", "builtins", "__builtin__"}


@dataclass
class Checkpoint:
    """A trained model in memory: the spec to rebuild it, its weights, and how to feed it."""

    spec: ModelSpec
    state_dict: dict[str, torch.Tensor]
    classes: list[str]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    dataset: str = ""
    history: dict[str, Any] = field(default_factory=dict)  # summary: epochs, accuracy, ...
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.preprocessing.channels, *self.preprocessing.size)

    def build(self) -> nn.Module:
        """The model rebuilt from the spec with these weights, in eval mode, on the CPU."""
        model = build_model(self.spec)
        model.load_state_dict(self.state_dict, strict=True)
        return model.eval()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict.items()},
            "spec": self.spec.to_dict(),
            "classes": list(self.classes),
            "preprocessing": self.preprocessing.to_dict(),
            "input_shape": list(self.input_shape),
            "dataset": self.dataset,
            "history": self.history,
            "versions": {str(k): str(v) for k, v in (self.versions or _versions()).items()},
        }


def _versions() -> dict[str, str]:
    # str(): torch.__version__ is a TorchVersion, a class the weights-only unpickler would refuse
    return {"torch": str(torch.__version__), "torchvision": str(torchvision.__version__)}


def to_bytes(ckpt: Checkpoint) -> bytes:
    buf = io.BytesIO()
    torch.save(ckpt.to_dict(), buf)
    return buf.getvalue()


def _atomic_write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save(path: str | os.PathLike, model: nn.Module, spec: ModelSpec, classes: list[str],
         preprocessing: Preprocessing, dataset: str, history: dict[str, Any] | None = None) -> Path:
    """Write `model` as our checkpoint, atomically (temporary file, then replace)."""
    ckpt = Checkpoint(spec=spec, state_dict=model.state_dict(), classes=list(classes),
                      preprocessing=preprocessing, dataset=dataset, history=history or {})
    return _atomic_write(Path(path), to_bytes(ckpt))


def load(source: bytes | str | os.PathLike) -> Checkpoint:
    """Read our format, weights only, onto the CPU (map_location), whatever device trained it."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    result = load_any(data)
    if result.kind != "ours":
        raise CourseError("ckpt.not_ours", "this file is not a Torch Classroom checkpoint")
    return result.checkpoint


# ---------------------------------------------------------------- the course's two ways to save


class Tudui(nn.Module):
    """The course's model class: `self.model = Sequential(...)`, forward = self.model(x).

    Used here to show way 1 (`torch.save(tudui)`) with the file the course really makes.
    """

    def __init__(self, model: nn.Sequential) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@dataclass(frozen=True)
class SaveWays:
    """Real byte sizes of one model saved the course's two ways (and in our format)."""

    way1_bytes: int  # torch.save(tudui, path): structure + parameters, pickled classes
    way2_bytes: int  # torch.save(tudui.state_dict(), path): parameters only
    ours_bytes: int  # our format: state_dict + spec + classes + preprocessing + history
    way1_refusal: str  # what torch.load(path) (weights_only=True, the default) says about way 1
    parameters: int


def _torch_save_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _as_main_tudui(data: bytes) -> bytes:
    """The way 1 file exactly as the course's train.py makes it: the class recorded as `__main__.Tudui`.

    pickle stores a class by name (GLOBAL opcode: "c<module>\\n<name>\\n"); ours lives in
    dl_core.checkpoint, the student's in their script (__main__). Only that name is rewritten.
    """
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                content = content.replace(f"c{__name__}\nTudui\n".encode(), b"c__main__\nTudui\n")
            dst.writestr(info, content)
    return out.getvalue()


def save_ways(ckpt: Checkpoint) -> SaveWays:
    """Save the checkpoint's model both ways in memory and measure the files."""
    tudui = Tudui(ckpt.build())
    way1 = _as_main_tudui(_torch_save_bytes(tudui))
    way2 = _torch_save_bytes(tudui.state_dict())
    try:  # recent PyTorch's default is weights_only=True: way 1 needs an unknown class
        torch.load(io.BytesIO(way1), map_location="cpu", weights_only=True)
        refusal = ""
    except Exception as exc:  # noqa: BLE001 - we show torch's own words
        refusal = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        refusal = f"Unsupported global: GLOBAL {match.group(1)}" if match else refusal
    return SaveWays(len(way1), len(way2), len(to_bytes(ckpt)), refusal,
                    sum(p.numel() for p in tudui.parameters()))


def way1_bytes(ckpt: Checkpoint) -> bytes:
    """torch.save(tudui): the course's way 1 file for this model, class `__main__.Tudui` as in train.py."""
    return _as_main_tudui(_torch_save_bytes(Tudui(ckpt.build())))


def way2_bytes(ckpt: Checkpoint) -> bytes:
    """torch.save(tudui.state_dict()) with the Tudui key names (`model.0.weight`, ...), way 2."""
    return _torch_save_bytes(Tudui(ckpt.build()).state_dict())


def history_accuracy(ckpt: Checkpoint) -> float | None:
    """The final test accuracy as a fraction 0..1 (`accuracy` or `test_accuracy`; percent accepted), or None."""
    for key in ("accuracy", "test_accuracy"):
        acc = ckpt.history.get(key)
        if isinstance(acc, (int, float)) and not isinstance(acc, bool) and math.isfinite(acc) and 0 <= acc <= 100:
            return float(acc) / 100 if acc > 1 else float(acc)
    return None


def history_epochs(ckpt: Checkpoint) -> int | None:
    epochs = ckpt.history.get("epochs")
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) and 0 < epochs <= 1_000_000 else None


def file_name(ckpt: Checkpoint) -> str:
    """A meaningful download name: dataset, epochs and accuracy (`shapes10_cnn_e5_acc87.3.pth`)."""
    dataset = re.sub(r"[^A-Za-z0-9_-]+", "", ckpt.dataset) or "model"
    parts = [dataset, "cnn"]
    epochs, acc = history_epochs(ckpt), history_accuracy(ckpt)
    if epochs is not None:
        parts.append(f"e{epochs}")
    if acc is not None:
        parts.append(f"acc{100 * acc:.1f}")
    return "_".join(parts) + ".pth"


# ---------------------------------------------------------------- loading any .pth, safely


class LoadedModule(nn.Module):
    """Harmless stand-in for a student's own top-level class (`__main__.Tudui`, `model.Tudui`).

    The weights-only unpickler builds it with `__new__` and fills its `__dict__`; it has no
    forward and runs no code of the file's. We only read its sub-modules and tensors.
    """


@dataclass(frozen=True)
class KeyProblem:
    """One row of the mismatch table."""

    key: str
    problem: str  # "missing" | "unexpected" | "shape"
    expected: str  # shape the model expects ("" when unexpected)
    found: str  # shape in the file ("" when missing)


class CheckpointMismatch(CourseError):
    """The file's tensors do not fit the model: `rows` is the table of keys and shapes."""

    def __init__(self, rows: list[KeyProblem], target: str) -> None:
        self.rows = rows
        counts = {p: sum(r.problem == p for r in rows) for p in ("missing", "unexpected", "shape")}
        super().__init__("ckpt.mismatch", "the weights do not fit {target}: {missing} missing, "
                         "{unexpected} unexpected, {shapes} of another shape",
                         target=target, missing=counts["missing"], unexpected=counts["unexpected"],
                         shapes=counts["shape"])


@dataclass
class LoadResult:
    """What `load_any` found and how it rebuilt the model."""

    checkpoint: Checkpoint
    kind: str  # "ours" | "state_dict" | "whole_model"
    matched: str  # "ours" | "course_cnn" | "inferred" | "modules"
    source_class: str = ""  # the stand-in's original name for a whole-model file (`__main__.Tudui`)
    key_prefix: str = ""  # removed from every key (`model.` for the Tudui class)
    devices: tuple[str, ...] = ()  # where the tensors were saved from (`cuda:0` → mapped to cpu)

    @property
    def gpu_trained(self) -> bool:
        return any(not d.startswith("cpu") for d in self.devices)


def _shape(t: torch.Tensor) -> str:
    return str(list(t.shape))


def mismatch_rows(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> list[KeyProblem]:
    """Missing, unexpected and differently-shaped keys, in the model's order then the file's."""
    rows = [KeyProblem(k, "missing", _shape(v), "") for k, v in expected.items() if k not in found]
    rows += [KeyProblem(k, "unexpected", "", _shape(v)) for k, v in found.items() if k not in expected]
    rows += [KeyProblem(k, "shape", _shape(v), _shape(found[k])) for k, v in expected.items()
             if k in found and tuple(found[k].shape) != tuple(v.shape)]
    return rows


def _check_bytes(data: bytes, limit: int) -> None:
    if not isinstance(data, (bytes, bytearray)) or len(data) == 0:
        raise CourseError("ckpt.empty", "the file is empty (0 bytes)")
    if len(data) > limit:
        raise CourseError("ckpt.too_big", "the file is {size_mb} MB; the limit is {limit_mb} MB",
                          size_mb=round(len(data) / 2**20, 1), limit_mb=round(limit / 2**20))
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                infos = zf.infolist()
        except zipfile.BadZipFile as exc:
            raise CourseError("ckpt.truncated", "the file is cut off: its end is missing "
                              "(the upload or the copy did not finish)") from exc
        except Exception as exc:  # noqa: BLE001 - struct.error, ValueError, ... from a crafted directory
            raise CourseError("ckpt.unreadable", "not a readable PyTorch checkpoint ({reason})",
                              reason=type(exc).__name__) from exc
        if not any(i.filename.endswith("data.pkl") for i in infos):
            raise CourseError("ckpt.not_torch", "this is not a PyTorch file (.pth/.pt made by torch.save)")
        unpacked = sum(info.file_size for info in infos)
        packed = sum(info.compress_size for info in infos if info.compress_type != zipfile.ZIP_STORED)
        inflated = sum(info.file_size for info in infos if info.compress_type != zipfile.ZIP_STORED)
        # torch.save stores entries uncompressed; a zip bomb does not
        if unpacked > limit or (inflated > 2**20 and inflated > 20 * max(packed, 1)):
            raise CourseError("ckpt.too_big", "the file is {size_mb} MB; the limit is {limit_mb} MB",
                              size_mb=round(unpacked / 2**20, 1), limit_mb=round(limit / 2**20))
    elif data[:1] != b"\x80":  # the legacy (pre-1.6) format is a plain pickle stream
        raise CourseError("ckpt.not_torch", "this is not a PyTorch file (.pth/.pt made by torch.save)")


def _plan_globals(data: bytes) -> list[tuple[type, str]]:
    """Allowlist for this file: our torch layers, plus at most one unknown class as the stand-in."""
    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - legacy files cannot be listed; torch.load still refuses them
        needed = []
    unknown = sorted(n for n in needed if n not in _ALLOWED_PATHS)
    if not unknown:
        return []
    refused = [n for n in unknown
               if n.split(".")[0] in _NEVER_MAP or not re.fullmatch(r"[\w.]+\.[A-Z]\w*", n)]
    if refused or len(unknown) > 1:
        raise CourseError(
            "ckpt.unsafe_globals",
            "this file needs classes or functions that are not torch layers: {names}. "
            "Loading them could run any code, so the app refuses. Re-save the weights only with "
            "torch.save(model.state_dict(), path)", names=", ".join(unknown))
    return [(LoadedModule, unknown[0])]


def _torch_load(data: bytes) -> tuple[Any, tuple[str, ...]]:
    """torch.load with weights_only=True passed explicitly (so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
    cannot turn it off: torch only lets the variable override an unset argument), onto the CPU."""
    extra = _plan_globals(data)
    devices: set[str] = set()

    def to_cpu(storage, location):  # map_location: a GPU-trained file loads on a CPU-only machine
        devices.add(str(location))
        return storage

    try:
        with torch.serialization.safe_globals([*ALLOWED_LAYERS, *extra]):
            obj = torch.load(io.BytesIO(data), map_location=to_cpu, weights_only=True, pickle_module=None)
    except CourseError:
        raise
    except Exception as exc:  # noqa: BLE001 - every unreadable file ends here, with the reason
        text = str(exc)
        names = re.findall(r"GLOBAL ([\w.]+)", text)
        if names:
            raise CourseError("ckpt.unsafe_globals", "this file needs classes or functions that are not "
                              "torch layers: {names}. Loading them could run any code, so the app refuses. "
                              "Re-save the weights only with torch.save(model.state_dict(), path)",
                              names=", ".join(dict.fromkeys(names))) from exc
        if "central directory" in text or "truncated" in text.lower() or isinstance(exc, EOFError):
            raise CourseError("ckpt.truncated", "the file is cut off: its end is missing "
                              "(the upload or the copy did not finish)") from exc
        reason = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
        raise CourseError("ckpt.unreadable", "not a readable PyTorch checkpoint ({reason})", reason=reason) from exc
    return obj, tuple(sorted(devices))


_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INTS = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)
_FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _bad_tensor(key: str, reason: str) -> CourseError:
    return CourseError("ckpt.bad_tensor", "The tensor {key} cannot be used: {reason}", key=key, reason=reason)


def _check_tensor(key: str, t: torch.Tensor) -> int:
    """Refuse what cannot be a plain CPU weight, from metadata alone; the tensor's element count."""
    if t.layout != torch.strided:
        raise _bad_tensor(key, f"sparse tensor ({t.layout})")
    if t.is_quantized:
        raise _bad_tensor(key, "quantized tensor")
    if t.is_meta or t.device.type != "cpu":
        raise _bad_tensor(key, f"no data ({t.device.type} tensor)")
    if t.is_complex() or t.dtype not in _FLOATS + _INTS:
        raise _bad_tensor(key, f"dtype {t.dtype}")
    if t.dim() > 8:
        raise _bad_tensor(key, f"{t.dim()} dimensions")
    numel = math.prod(int(s) for s in t.shape)  # from the shape: nothing is materialised
    if numel > MAX_ELEMENTS:
        raise CourseError("ckpt.too_many_numbers", "the file's tensors hold {count} numbers; the limit is {limit}",
                          count=f"{numel:,}", limit=f"{MAX_ELEMENTS:,}")
    if numel > 1:
        # An expanded (stride-0) or overlapping tensor describes far more numbers than the file holds.
        stored = t.untyped_storage().nbytes() // max(t.element_size(), 1)
        if numel > stored or any(st == 0 and sz > 1 for st, sz in zip(t.stride(), t.shape)):
            raise _bad_tensor(key, "an expanded view (stride 0) describing more numbers than the file stores")
    return numel


def _tensors_only(d: Any, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(d, dict) or not d:
        raise CourseError("ckpt.no_weights", "no weights found in this file ({what})", what=what)
    if len(d) > MAX_TENSORS:
        raise CourseError("ckpt.too_many_tensors", "the file holds {count} tensors; the limit is {limit}",
                          count=len(d), limit=MAX_TENSORS)
    out: dict[str, torch.Tensor] = {}
    total = 0
    for k, v in d.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor) or len(k) > 300:
            raise CourseError("ckpt.no_weights", "no weights found in this file ({what})", what=what)
        total += _check_tensor(k, v)
        if total > MAX_ELEMENTS:
            raise CourseError("ckpt.too_many_numbers", "the file's tensors hold {count} numbers; the limit is {limit}",
                              count=f"{total:,}", limit=f"{MAX_ELEMENTS:,}")
        out[k] = v
    return out


def _check_finite(sd: dict[str, torch.Tensor]) -> None:
    """NaN/inf, float64 that would overflow float32, negative BatchNorm variances: chunk by chunk."""
    for k, v in sd.items():
        if not v.is_floating_point():
            continue
        flat = v.detach().reshape(-1)  # a non-contiguous tensor is copied once (its storage is in the file)
        for start in range(0, flat.numel(), 1 << 20):
            chunk = flat[start:start + (1 << 20)]
            if not torch.isfinite(chunk).all() or (
                    chunk.dtype == torch.float64 and chunk.numel() and float(chunk.abs().max()) > _FLOAT32_MAX):
                raise CourseError("ckpt.nan_weights", "the weights contain NaN or infinity (in {key}): "
                                  "training diverged; lower the learning rate and train again", key=k)
            if k.endswith("running_var") and chunk.numel() and float(chunk.min()) < 0:
                raise CourseError("ckpt.bad_running_var", "BatchNorm's running variance {key} has negative "
                                  "values; a variance cannot be below 0", key=k)


def _modules_of(module: Any) -> dict[str, Any]:
    children = vars(module).get("_modules") if isinstance(module, nn.Module) else None
    return children if isinstance(children, dict) else {}


def _walk_modules(top: nn.Module) -> None:
    """Bounded walk of a whole-model file's module graph: cycles, depth and module count refused.

    Every path is walked (a module shared twice counts twice), so the later recursive reads of the
    graph are bounded by the same MAX_MODULES, whatever sharing a crafted file uses."""
    stack: list[tuple[nn.Module, int, tuple[int, ...]]] = [(top, 0, ())]
    count = 0
    while stack:
        module, depth, path = stack.pop()
        if id(module) in path:
            raise CourseError("ckpt.cycle", "the model contains itself (a module refers back to one of its "
                              "parents): it cannot be rebuilt")
        count += 1
        if count > MAX_MODULES:
            raise CourseError("ckpt.too_many_modules", "the model has more than {limit} modules", limit=MAX_MODULES)
        if depth > MAX_DEPTH:
            raise CourseError("ckpt.too_deep", "the model's modules are nested more than {limit} deep",
                              limit=MAX_DEPTH)
        for child in _modules_of(module).values():
            if isinstance(child, nn.Module):
                stack.append((child, depth + 1, path + (id(module),)))


def _module_tensors(module: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """state_dict of an unpickled module, read from its dicts without calling its methods or hooks.

    Only after `_walk_modules` (the graph is a bounded tree)."""
    out: dict[str, torch.Tensor] = {}
    for kind in ("_parameters", "_buffers"):
        params = vars(module).get(kind)
        for name, t in (params.items() if isinstance(params, dict) else ()):
            if isinstance(t, torch.Tensor):
                out[prefix + str(name)] = t.detach()
    for name, child in _modules_of(module).items():
        if isinstance(child, nn.Module):
            out.update(_module_tensors(child, f"{prefix}{name}."))
    return out


_ARG_TYPES = (int, float, bool, type(None))


def _plain(value: Any) -> bool:
    """A layer attribute the spec may hold: a number, bool, None, or a short tuple of them."""
    if isinstance(value, _ARG_TYPES):
        return not isinstance(value, float) or math.isfinite(value)
    if isinstance(value, (tuple, list)) and len(value) <= 4:
        return all(isinstance(v, _ARG_TYPES) and (not isinstance(v, float) or math.isfinite(v)) for v in value)
    return False


def _attribute(kind: str, key: str, value: Any) -> Any:
    """A layer attribute as a spec value: Conv2d stores (5, 5), the course writes 5."""
    if not _plain(value):  # a tensor, a string, a huge nested list: not what torch stores here
        raise CourseError("ckpt.bad_layer", "layer {kind}: its attribute {arg} is not a number", kind=kind, arg=key)
    if isinstance(value, (list, tuple)):
        return value[0] if len(set(value)) == 1 else list(value)
    return value


def _layer_spec(m: nn.Module, name: str | None) -> LayerSpec:
    """The spec of one unpickled torch layer, from its attributes: every argument of the torch class's
    signature it stores (its kind's entry says which), torch's defaults left out."""
    kind = KINDS.get(type(m).__name__)
    if kind is None or type(m) is not kind.torch_class:
        raise CourseError("ckpt.unsupported_layer", "layer {kind} cannot be rebuilt by the app", kind=type(m).__name__)
    attrs = vars(m)
    args: dict[str, Any] = {}
    for key in kind.signature:
        if key not in attrs or (isinstance(attrs[key], str) and attrs[key] == kind.torch_defaults.get(key)):
            continue  # not stored (a bias is a tensor), or a text default such as padding_mode="zeros"
        value = _attribute(kind.name, key, attrs[key])
        arg = kind.arg(key)
        if arg is not None and arg.none_means and value == args.get(arg.none_means):
            continue  # pooling's stride defaults to its kernel size
        if not kind.says_nothing(key, value):
            args[key] = value
    params = attrs.get("_parameters")
    for arg in kind.args:
        if arg.from_tensors and isinstance(params, dict) and params.get(arg.name) is None:
            args[arg.name] = False  # Conv2d(..., bias=False): no bias tensor
    return LayerSpec(kind.name, args, name)


def _spec_from_modules(top: nn.Module) -> tuple[ModelSpec, str]:
    """(spec, key prefix) for a whole model: its layers, in registration order, under one container."""
    _walk_modules(top)
    container, prefix = top, ""
    children = _modules_of(top)
    while len(children) == 1 and isinstance(next(iter(children.values())), nn.Sequential):
        name, container = next(iter(children.items()))  # Tudui: self.model = Sequential(...)
        prefix += f"{name}."
        children = _modules_of(container)
    if not children or any(_modules_of(c) for c in children.values() if isinstance(c, nn.Module)) or not all(
            isinstance(c, nn.Module) for c in children.values()):
        raise CourseError("ckpt.unsupported_structure", "the model is not one chain of layers; "
                          "the app rebuilds Sequential-style models only")
    if len(children) > MAX_LAYERS:
        raise CourseError("model.too_many_layers", "{count} layers is more than the limit of {limit}",
                          count=len(children), limit=MAX_LAYERS)
    numbered = all(n == str(i) for i, n in enumerate(children))
    layers = tuple(_layer_spec(m, None if numbered else str(n)) for n, m in children.items())
    return ModelSpec(layers), prefix


def check_budget(spec: ModelSpec) -> int:
    """The builder's limits (MAX_LAYERS layers, MAX_PARAMETERS parameters) for a spec that came from a
    file, by arithmetic on its arguments alone (each kind's parameter rule), before anything is built.
    Returns the parameter count."""
    if not spec.layers:
        raise CourseError("model.empty", "the network has no layers")
    if len(spec.layers) > MAX_LAYERS:
        raise CourseError("model.too_many_layers", "{count} layers is more than the limit of {limit}",
                          count=len(spec.layers), limit=MAX_LAYERS)
    total = 0
    for layer in spec.layers:
        kind = layer_kinds.get(layer.kind)
        params = kind.parameter_count(layer.args)
        if params is None:
            raise CourseError("ckpt.bad_layer", "layer {kind}: its attribute {arg} is not a number",
                              kind=layer.kind, arg="/".join(kind.required))
        total += params
        if total > MAX_PARAMETERS:
            raise CourseError("model.too_big", "{params} parameters is more than the limit of {limit}",
                              params=f"{total:,}", limit=f"{MAX_PARAMETERS:,}")
    return total


_INDEXED = re.compile(r"^(?P<prefix>(?:[A-Za-z_]\w*\.)*?)(?P<index>\d+)\.(?P<param>\w+)$")


def _split_prefix(sd: dict[str, torch.Tensor]) -> tuple[str, dict[str, torch.Tensor]]:
    """('model.', {'0.weight': ...}) for Tudui keys; ('', sd) for a bare Sequential or named keys."""
    matches = [_INDEXED.match(k) for k in sd]
    if all(matches) and len({m.group("prefix") for m in matches}) == 1:
        prefix = matches[0].group("prefix")
        return prefix, {k[len(prefix):]: v for k, v in sd.items()}
    prefixes = {k.split(".", 1)[0] for k in sd}
    if len(prefixes) == 1 and all(k.count(".") >= 2 for k in sd):  # model.conv1.weight (note 003)
        prefix = f"{prefixes.pop()}."
        return prefix, {k[len(prefix):]: v for k, v in sd.items()}
    if all(k.startswith("module.") for k in sd):  # DataParallel
        return "module.", {k[7:]: v for k, v in sd.items()}
    return "", sd


def _expected(spec: ModelSpec) -> dict[str, torch.Tensor]:
    """The state_dict a spec's model would have, built on the meta device: shapes, no memory."""
    with torch.device("meta"):
        return build_model(spec).state_dict()


def _fits(spec: ModelSpec, sd: dict[str, torch.Tensor]) -> bool:
    try:
        expected = _expected(spec)
    except CourseError:
        return False
    return not mismatch_rows(expected, sd)


def _course_candidates(sd: dict[str, torch.Tensor]) -> list[ModelSpec]:
    """The course CNN with the file's input channels, hidden width and classes (numbered or note 003's names)."""
    first = next(iter(sd.values()))
    in_ch = int(first.shape[1]) if first.dim() == 4 and first.shape[1] > 0 else 3
    linears = [v for k, v in sd.items() if k.endswith("weight") and v.dim() == 2]
    out = int(linears[-1].shape[0]) if linears and linears[-1].shape[0] > 0 else 10
    hidden = int(linears[0].shape[0]) if len(linears) == 2 and linears[0].shape[0] > 0 else 64
    base = course_cnn(in_ch, out).layers
    layers = list(base)
    layers[7] = LayerSpec("Linear", {"in_features": 1024, "out_features": hidden})
    layers[8] = LayerSpec("Linear", {"in_features": hidden, "out_features": out})
    names = ("conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "flatten", "full_connect1", "full_connect2")
    return [ModelSpec(tuple(layers)), ModelSpec(tuple(LayerSpec(l.kind, l.args, n) for l, n in zip(layers, names)))]


def _numbered_groups(sd: dict[str, torch.Tensor]) -> dict[int, dict[str, torch.Tensor]] | None:
    """{0: {"weight": ..., "bias": ...}, 3: {...}} for a Sequential's keys (`0.weight`); None for other keys."""
    groups: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in sd.items():
        idx, _, param = k.partition(".")
        if not idx.isdigit() or len(idx) > 3 or "." in param:
            return None
        groups.setdefault(int(idx), {})[param] = v
    if len(groups) > 24 or max(groups) > 40:
        return None
    return groups


def _gap_roles(fixed: dict[int, LayerSpec], gaps: list[int]) -> tuple[str, ...]:
    """The most likely filling first. Conv → ReLU → MaxPool is the common pattern: the last gap of a
    run pools, earlier ones activate; after a Linear, an activation."""
    def role(i: int) -> str:
        before = max((j for j in fixed if j < i), default=None)
        if (i + 1) in gaps or (before is not None and fixed[before].kind == "Linear"):
            return "activation"
        return "pool"
    return tuple(role(i) for i in gaps)


def _infer_numbered(sd: dict[str, torch.Tensor], input_size: tuple[int, int] = (32, 32)) -> ModelSpec | None:
    """A Sequential spec from numbered keys: layers with tensors recognised from their shapes (each kind's
    `recognise`), the gaps filled with a pooling / an activation / Flatten (the kinds' `gap` guesses) so
    that the first Linear gets exactly its in_features.

    Bounded: each filling is checked by shape arithmetic (`check_spec`, nothing built or run),
    at most MAX_INFER_CANDIDATES of them and for at most MAX_INFER_SECONDS.
    """
    groups = _numbered_groups(sd)
    if groups is None:
        return None
    fixed: dict[int, LayerSpec] = {}
    for i, g in groups.items():
        found = layer_kinds.recognise(g)
        if found is None:
            return None
        fixed[i] = LayerSpec(*found)
    last = max(groups)
    gaps = [i for i in range(last + 1) if i not in fixed]
    first_linear = min((i for i, l in fixed.items() if l.kind == "Linear"), default=None)
    flatten_at = max((i for i in gaps if first_linear is not None and i < first_linear), default=None)
    if flatten_at is None or len(gaps) > 12:
        return None
    try:
        check_budget(ModelSpec(tuple(fixed[i] for i in sorted(fixed))))
    except CourseError:
        return None
    fixed[flatten_at] = LayerSpec("Flatten")
    others = [i for i in gaps if i != flatten_at]
    channels = next((int(l.args["in_channels"]) for i, l in sorted(fixed.items()) if l.kind == "Conv2d"), 3)
    return _fill_gaps(fixed, others, (channels, *input_size))


def _fill_gaps(fixed: dict[int, LayerSpec], gaps: list[int], input_shape: tuple[int, int, int]) -> ModelSpec | None:
    """The first filling of `gaps` (each a pooling or an activation) whose shapes fit, within the budgets."""
    fillers = layer_kinds.gap_fillers()
    roles = tuple(fillers)
    choices = itertools.chain([_gap_roles(fixed, gaps)], itertools.product(roles, repeat=len(gaps)))
    deadline = time.monotonic() + MAX_INFER_SECONDS
    for n, choice in enumerate(choices):
        if n >= MAX_INFER_CANDIDATES or time.monotonic() > deadline:
            return None
        layers = dict(fixed)
        for i, role in zip(gaps, choice):
            layers[i] = LayerSpec(*fillers[role])
        spec = ModelSpec(tuple(layers[i] for i in range(len(layers))))
        try:
            check_spec(spec, input_shape)  # arithmetic only: nothing allocated
        except CourseError:
            continue  # this filling does not fit; try the next one
        return spec
    return None


def match_state_dict(sd: dict[str, torch.Tensor]) -> tuple[ModelSpec, dict[str, torch.Tensor], str, str]:
    """(spec, state_dict with the spec's keys, how it matched, removed prefix) or CheckpointMismatch."""
    prefix, stripped = _split_prefix(sd)
    for spec in _course_candidates(stripped):
        if _fits(spec, stripped):
            return spec, stripped, "course_cnn", prefix
    spec = _infer_numbered(stripped)
    if spec is not None and _fits(spec, stripped):
        return spec, stripped, "inferred", prefix
    target = _course_candidates(stripped)[0]
    raise CheckpointMismatch(mismatch_rows(_expected(target), stripped), "Tudui")


def _default_classes(n: int, classes: list[str] | None, dataset: str = "") -> tuple[list[str], str]:
    """(names, dataset): the given names when they fit; `[]` asks for numbered outputs."""
    if classes is not None and len(classes) == n:
        return list(classes), dataset
    if classes is None and n == 10:  # the course trains on CIFAR10: a model from home predicts its classes
        return list(CIFAR10_CLASSES), "cifar10"
    return [str(i) for i in range(n)], ""


def _bad_prep(reason: str) -> CourseError:
    return CourseError("ckpt.bad_preprocessing", "The saved preprocessing is not usable: {reason}", reason=reason)


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    try:
        value = float(x)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def check_preprocessing(d: Any) -> Preprocessing:
    """A checkpoint's saved preprocessing, validated before it is used for anything (a probe forward
    included): size 1..MAX_INPUT_SIDE, 1 or 3 channels, mean/std with one finite value per channel, std > 0."""
    if not isinstance(d, dict):
        raise _bad_prep("not a dictionary")
    size, channels = d.get("size"), d.get("channels")
    if not isinstance(size, (list, tuple)) or len(size) != 2 or any(
            isinstance(s, bool) or not isinstance(s, int) for s in size):
        raise _bad_prep("size must be two whole numbers [height, width]")
    if not all(1 <= s <= MAX_INPUT_SIDE for s in size):
        raise _bad_prep(f"size {size[0]}×{size[1]} is outside 1..{MAX_INPUT_SIDE}")
    if isinstance(channels, bool) or channels not in (1, 3):
        raise _bad_prep("channels must be 1 or 3")
    mean, std = d.get("mean"), d.get("std")
    if (mean is None) != (std is None):
        raise _bad_prep("mean and std go together")
    if mean is not None:
        for name, values in (("mean", mean), ("std", std)):
            if not isinstance(values, (list, tuple)) or len(values) != channels:
                raise _bad_prep(f"{name} needs {channels} values, one per channel")
            numbers = [_number(v) for v in values]
            if any(v is None or abs(v) > 1e6 for v in numbers):
                raise _bad_prep(f"{name} must hold finite numbers")
        if any(_number(v) <= 0 for v in std):
            raise _bad_prep("std must be above 0 (Normalize divides by it)")
        mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    return Preprocessing(size=(int(size[0]), int(size[1])), channels=int(channels), mean=mean, std=std)


def _history_value(value: Any, depth: int, key: str, budget: list[int]) -> None:
    """One value of a checkpoint's history (recursively), or ckpt.bad_history naming its key."""
    budget[0] -= 1
    damaged = budget[0] < 0 or depth > 4
    if isinstance(value, (list, tuple)):
        items = [("", v) for v in value]
    elif isinstance(value, dict):
        items = list(value.items())
        damaged = damaged or any(not isinstance(k, str) or len(k) > 200 for k, _ in items)
    else:
        items = []
        damaged = damaged or not (
            value is None or isinstance(value, (bool, float))
            or (isinstance(value, int) and abs(value) <= 10**15)
            or (isinstance(value, str) and len(value) <= 10_000))
    if damaged:
        raise CourseError("ckpt.bad_history", "The saved training history is damaged ({key})", key=key)
    for _, v in items:
        _history_value(v, depth + 1, key, budget)


def _check_history(history: Any) -> dict[str, Any]:
    """History as plain, bounded data: str keys; numbers (ints of at most 15 digits), bools, None,
    short strings, and lists/dicts of them, MAX_HISTORY_ITEMS values in all, nested at most 4 deep."""
    if history is None:
        return {}
    if not isinstance(history, dict):
        raise CourseError("ckpt.bad_history", "The saved training history is damaged ({key})", key="history")
    budget = [MAX_HISTORY_ITEMS]
    for k, v in history.items():
        if not isinstance(k, str) or len(k) > 200:
            raise CourseError("ckpt.bad_history", "The saved training history is damaged ({key})", key="history")
        _history_value(v, 1, k, budget)
    return dict(history)


def _short_strings(value: Any, what: str, limit: int = 100_000) -> list[str]:
    if not isinstance(value, (list, tuple)) or len(value) > limit or not all(
            isinstance(c, (str, int)) and not isinstance(c, bool) and len(str(c)) <= 200 for c in value):
        raise CourseError("ckpt.corrupt", "the checkpoint is damaged: {field} is missing or wrong", field=what)
    return [str(c) for c in value]


def _probe(model: nn.Module, spec: ModelSpec, prep: Preprocessing) -> None:
    """The rebuilt network must accept the input it will be given: shape arithmetic (with the
    builder's activation limit) first, then one real forward pass of a zero image."""
    shape = "×".join(map(str, (prep.channels, *prep.size)))
    try:
        check_spec(spec, (prep.channels, *prep.size))
    except CourseError as exc:
        if exc.code in ("model.too_big", "model.too_big_activation", "model.too_many_layers"):
            raise
        raise CourseError("ckpt.bad_input_size", "the network does not accept a {shape} input ({reason})",
                          shape=shape, reason=str(exc).splitlines()[0][:160]) from exc
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, prep.channels, *prep.size))
    except Exception as exc:  # noqa: BLE001
        raise CourseError("ckpt.bad_input_size", "the network does not accept a {shape} input ({reason})",
                          shape=shape, reason=str(exc).splitlines()[0][:160]) from exc


def _finish(spec: ModelSpec, sd: dict[str, torch.Tensor], classes: list[str] | None,
            dataset: str, preprocessing: Preprocessing | None) -> Checkpoint:
    _check_finite(sd)
    check_budget(spec)  # before a single weight is allocated
    rows = mismatch_rows(_expected(spec), sd)
    if rows:
        raise CheckpointMismatch(rows, "nn.Sequential")
    model = build_model(spec)
    model.load_state_dict(sd, strict=True)
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    first = spec.layers[0]
    channels = int(first.args.get("in_channels", 3)) if first.kind == "Conv2d" else 3
    out = next((l.args.get("out_features") for l in reversed(spec.layers) if l.kind == "Linear"), None)
    names, guessed = _default_classes(int(out or 10), classes, dataset)
    prep = preprocessing or Preprocessing(channels=channels if channels in (1, 3) else 3)
    _probe(model, spec, prep)
    return Checkpoint(spec=spec, state_dict=sd, classes=names, preprocessing=prep,
                      dataset=guessed, history={}, versions={})


def load_any(data: bytes, classes: list[str] | None = None, dataset: str = "",
             limit: int = MAX_CHECKPOINT_BYTES) -> LoadResult:
    """Any .pth a student brings, as a ready Checkpoint, never running code from the file.

    `classes`/`dataset` name the outputs of a file that does not carry them (way 1 / way 2);
    with 10 outputs and no names given, the course's CIFAR10 classes are assumed.
    Raises CourseError (one clear code per problem) or CheckpointMismatch (with the table).
    Every budget (tensors, numbers, modules, layers, parameters, input size) is checked from
    shapes and attributes before anything is allocated, built or run.
    """
    _check_bytes(data, limit)
    obj, devices = _torch_load(bytes(data))
    try:
        return _load_object(obj, data, classes, dataset, devices)
    except CourseError:
        raise
    except RecursionError as exc:
        raise CourseError("ckpt.too_deep", "the model's modules are nested more than {limit} deep",
                          limit=MAX_DEPTH) from exc
    except Exception as exc:  # noqa: BLE001 - whatever a crafted file provokes ends as a clear message
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CourseError("ckpt.unreadable", "not a readable PyTorch checkpoint ({reason})", reason=reason) from exc


def _load_object(obj: Any, data: bytes, classes: list[str] | None, dataset: str,
                 devices: tuple[str, ...]) -> LoadResult:
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        try:
            spec = ModelSpec.from_dict(obj["spec"])
            sd = _tensors_only(obj["state_dict"], "state_dict")
            prep = check_preprocessing(obj["preprocessing"])
            names = _short_strings(obj["classes"], "classes")
            history = _check_history(obj.get("history"))
            versions_in = obj.get("versions") or {}
            if not isinstance(versions_in, dict) or len(versions_in) > 50:
                raise ValueError("versions")
            versions = {str(k)[:100]: str(v)[:100] for k, v in versions_in.items()
                        if isinstance(k, str) and isinstance(v, str)}
            saved_dataset = obj.get("dataset", "")
            saved_dataset = saved_dataset[:200] if isinstance(saved_dataset, str) else ""
        except CourseError as exc:
            if exc.code.startswith("model."):  # a malformed spec: the file is damaged
                raise CourseError("ckpt.corrupt", "the checkpoint is damaged: {field} is missing or wrong",
                                  field=f"spec ({exc})"[:120]) from exc
            raise
        except Exception as exc:  # noqa: BLE001
            raise CourseError("ckpt.corrupt", "the checkpoint is damaged: {field} is missing or wrong",
                              field=str(exc)[:80]) from exc
        ckpt = _finish(spec, sd, names, saved_dataset, prep)
        ckpt.history, ckpt.versions = history, versions
        return LoadResult(ckpt, "ours", "ours", devices=devices)

    if isinstance(obj, nn.Module):
        source = "" if type(obj) is not LoadedModule else next(
            (n for n in torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
             if n not in _ALLOWED_PATHS), "")
        spec, prefix = _spec_from_modules(obj)
        check_budget(spec)
        tensors = _tensors_only(_module_tensors(obj), type(obj).__name__)
        sd = {k[len(prefix):]: v for k, v in tensors.items()}
        _check_finite(sd)
        ckpt = _finish(spec, sd, classes, dataset, None)
        return LoadResult(ckpt, "whole_model", "modules", source_class=source or type(obj).__qualname__,
                          key_prefix=prefix, devices=devices)

    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):  # {"state_dict": ..., "epoch": ...}
        obj = obj["state_dict"]
    sd = _tensors_only(obj, type(obj).__name__)
    _check_finite(sd)
    spec, stripped, how, prefix = match_state_dict(sd)
    ckpt = _finish(spec, stripped, classes, dataset, None)
    return LoadResult(ckpt, "state_dict", how, key_prefix=prefix, devices=devices)


# ---------------------------------------------------------------- the demo model that ships

DEMO_PATH = Path(__file__).resolve().parents[1] / "assets" / "demo_shapes10.pth"


def load_demo(path: str | os.PathLike | None = None) -> Checkpoint:
    """The shipped demo model (the course CNN trained on Shapes-10 by scripts/make_demo_model.py)."""
    path = Path(path) if path is not None else DEMO_PATH
    if not path.is_file():
        raise CourseError("ckpt.demo_missing", "the demo model {path} is missing; "
                          "run python scripts/make_demo_model.py", path=str(path))
    return load(path)
