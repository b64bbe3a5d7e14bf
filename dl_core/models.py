"""The network as data: a serialisable Sequential spec, the course's CNN, and building it."""
from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from dl_core.errors import CourseError

# Layer kinds a spec may use: torch.nn class names, built with their own keyword arguments.
LAYER_KINDS = (
    "Conv2d", "MaxPool2d", "AvgPool2d", "ReLU", "Sigmoid", "Tanh", "LeakyReLU",
    "Dropout", "BatchNorm2d", "Flatten", "Linear",
)


@dataclass(frozen=True)
class LayerSpec:
    """One layer: `kind` is the torch.nn class name, `args` its keyword arguments."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    name: str | None = None  # set for the OrderedDict form ('conv1', ...)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "args": dict(self.args)}
        if self.name:
            d["name"] = self.name
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LayerSpec":
        return cls(kind=str(d["kind"]), args=dict(d.get("args", {})), name=d.get("name"))


@dataclass(frozen=True)
class ModelSpec:
    """A Sequential network: its layers in order."""

    layers: tuple[LayerSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        return cls(layers=tuple(LayerSpec.from_dict(x) for x in d["layers"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "ModelSpec":
        return cls.from_dict(json.loads(text))


def course_cnn(in_channels: int = 3, num_classes: int = 10) -> ModelSpec:
    """The course's CIFAR10 network (all five notes agree): 145,578 parameters for 3×32×32 → 10."""
    return ModelSpec(layers=(
        LayerSpec("Conv2d", {"in_channels": in_channels, "out_channels": 32, "kernel_size": 5, "padding": 2}),
        LayerSpec("MaxPool2d", {"kernel_size": 2}),
        LayerSpec("Conv2d", {"in_channels": 32, "out_channels": 32, "kernel_size": 5, "padding": 2}),
        LayerSpec("MaxPool2d", {"kernel_size": 2}),
        LayerSpec("Conv2d", {"in_channels": 32, "out_channels": 64, "kernel_size": 5, "padding": 2}),
        LayerSpec("MaxPool2d", {"kernel_size": 2}),
        LayerSpec("Flatten"),
        LayerSpec("Linear", {"in_features": 1024, "out_features": 64}),
        LayerSpec("Linear", {"in_features": 64, "out_features": num_classes}),
    ))


def build_layer(layer: LayerSpec) -> nn.Module:
    """One torch.nn layer from its spec."""
    if layer.kind not in LAYER_KINDS:
        raise CourseError("model.unknown_kind", "unknown layer type {kind}", kind=layer.kind)
    try:
        return getattr(nn, layer.kind)(**layer.args)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CourseError(
            "model.bad_args", "{kind}: invalid arguments {args} ({reason})",
            kind=layer.kind, args=layer.args, reason=str(exc),
        ) from exc


def build_model(spec: ModelSpec) -> nn.Sequential:
    """nn.Sequential(*layers); the OrderedDict form when every layer has a name (note 003)."""
    if not spec.layers:
        raise CourseError("model.empty", "the network has no layers")
    modules = [build_layer(layer) for layer in spec.layers]
    if all(layer.name for layer in spec.layers):
        return nn.Sequential(OrderedDict((layer.name, m) for layer, m in zip(spec.layers, modules)))
    return nn.Sequential(*modules)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Sum of numel over parameters (the course's 145,578)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
