"""Checkpoints: one .pth that `torch.load(..., weights_only=True)` reads and that rebuilds its own model."""
from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from dl_core.errors import CourseError
from dl_core.models import ModelSpec, build_model
from dl_core.preprocess import Preprocessing

FORMAT = "torch-classroom/1"


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
            "versions": self.versions or {"torch": torch.__version__, "torchvision": torchvision.__version__},
        }


def to_bytes(ckpt: Checkpoint) -> bytes:
    buf = io.BytesIO()
    torch.save(ckpt.to_dict(), buf)
    return buf.getvalue()


def save(path: str | os.PathLike, model: nn.Module, spec: ModelSpec, classes: list[str],
         preprocessing: Preprocessing, dataset: str, history: dict[str, Any] | None = None) -> Path:
    """Write `model` as our checkpoint, atomically (temporary file, then replace)."""
    ckpt = Checkpoint(spec=spec, state_dict=model.state_dict(), classes=list(classes),
                      preprocessing=preprocessing, dataset=dataset, history=history or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(to_bytes(ckpt))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(source: bytes | str | os.PathLike) -> Checkpoint:
    """Read our format, weights only, onto the CPU (map_location), whatever device trained it."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # every unreadable file ends here, with the reason
        raise CourseError("ckpt.unreadable", "not a readable PyTorch checkpoint ({reason})", reason=str(exc)) from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CourseError("ckpt.not_ours", "this file is not a Torch Classroom checkpoint")
    return Checkpoint(
        spec=ModelSpec.from_dict(obj["spec"]),
        state_dict=obj["state_dict"],
        classes=list(obj["classes"]),
        preprocessing=Preprocessing.from_dict(obj["preprocessing"]),
        dataset=str(obj.get("dataset", "")),
        history=dict(obj.get("history", {})),
        versions=dict(obj.get("versions", {})),
    )
