"""Existing models (course step 15): torchvision's VGG16, the course's three modifications, freezing.

VGG16 has 138 M parameters (528 MB of float32). Everything here that only needs structure and
counts builds it on the meta device: shapes and parameter counts, no memory, a few milliseconds.
Pretrained weights are used only when already in the torch hub cache: nothing is ever downloaded.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from dl_core.errors import CourseError
from dl_core.models import count_parameters

# The three ways the course turns VGG16's 1000 ImageNet classes into CIFAR10's 10.
MODIFICATIONS = ("add_linear", "classifier_add", "classifier_replace")
MODIFICATION_CODE = {
    "add_linear": "vgg16.add_module('add_linear', nn.Linear(1000, 10))",
    "classifier_add": "vgg16.classifier.add_module('7', nn.Linear(1000, 10))",
    "classifier_replace": "vgg16.classifier[6] = nn.Linear(4096, 10)",
}
IMAGENET_INPUT = (3, 224, 224)


def vgg16(device: str | torch.device = "meta") -> nn.Module:
    """`torchvision.models.vgg16(weights=None)`; on the meta device by default (structure only)."""
    with torch.device(device):
        return torchvision.models.vgg16(weights=None)


@dataclass(frozen=True)
class ModuleNode:
    """One module of a tree: its attribute name, class, own repr line, parameter count, children."""

    name: str
    kind: str
    line: str
    params: int
    children: tuple["ModuleNode", ...] = ()


def module_tree(model: nn.Module, name: str = "") -> ModuleNode:
    """The model as a tree (what print(model) shows), each node with the parameters below it."""
    children = tuple(module_tree(child, child_name) for child_name, child in model.named_children())
    line = model.extra_repr() if not children else ""
    return ModuleNode(name=name or type(model).__name__, kind=type(model).__name__, line=line,
                      params=count_parameters(model), children=children)


def modify(model: nn.Module, name: str) -> nn.Module:
    """Apply one of the course's modifications in place (as the course does) and return the model."""
    if name not in MODIFICATIONS:
        raise CourseError("existing.unknown_modification", "unknown modification {name}", name=name)
    device = next(model.parameters()).device
    with torch.device(device):
        if name == "add_linear":
            model.add_module("add_linear", nn.Linear(1000, 10))
        elif name == "classifier_add":
            model.classifier.add_module("7", nn.Linear(1000, 10))
        else:
            model.classifier[6] = nn.Linear(4096, 10)
    return model


def output_shape(model: nn.Module, input_shape: tuple[int, int, int] = IMAGENET_INPUT) -> tuple[int, ...]:
    """The model's output shape for a batch of 1 (run on the model's device; meta costs nothing)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return tuple(model(torch.zeros((1, *input_shape), device=device)).shape)


@dataclass(frozen=True)
class ModificationDiff:
    """Before and after one modification: print(model) lines, the diff, parameters, output shape."""

    name: str
    code: str
    diff: tuple[str, ...]
    params_before: int
    params_after: int
    output_before: tuple[int, ...]
    output_after: tuple[int, ...]

    @property
    def params_change(self) -> int:
        return self.params_after - self.params_before


def modification_diff(name: str) -> ModificationDiff:
    """What `MODIFICATION_CODE[name]` changes in `vgg16(weights=None)` (computed on the meta device).

    Note the first one: `add_module` appends a layer that VGG's `forward` never calls, so the
    output stays [1, 1000] although the printout shows the new layer.
    """
    before = vgg16()
    text_before, params_before, out_before = str(before), count_parameters(before), output_shape(before)
    after = modify(vgg16(), name)
    text_after = str(after)
    diff = tuple(difflib.unified_diff(text_before.splitlines(), text_after.splitlines(),
                                      "print(vgg16)", "print(vgg16)  # after", n=2, lineterm=""))
    return ModificationDiff(name, MODIFICATION_CODE[name], diff, params_before, count_parameters(after),
                            out_before, output_shape(after))


@dataclass(frozen=True)
class FreezeReport:
    """Freezing `features` for transfer learning: what is left to train."""

    total: int
    frozen: int
    trainable: int


def freeze_features(model: nn.Module) -> FreezeReport:
    """`for param in model.features.parameters(): param.requires_grad = False`, and the counts after."""
    for param in model.features.parameters():
        param.requires_grad = False
    total = count_parameters(model)
    trainable = count_parameters(model, trainable_only=True)
    return FreezeReport(total=total, frozen=total - trainable, trainable=trainable)


def pretrained_path() -> Path:
    """Where torchvision keeps VGG16's ImageNet weights once downloaded (the torch hub cache)."""
    url = torchvision.models.VGG16_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def pretrained_available() -> bool:
    return pretrained_path().is_file()


def load_pretrained() -> nn.Module:
    """VGG16 with ImageNet weights from the local cache only (weights_only); never downloads."""
    path = pretrained_path()
    if not path.is_file():
        raise CourseError("existing.no_weights", "the pretrained weights are not on this machine ({path}); "
                          "it is offline, so they cannot be downloaded", path=str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = vgg16("cpu")
        model.load_state_dict(state)
    except Exception as exc:  # a truncated or foreign file: say so, never a traceback
        raise CourseError("existing.bad_weights", "the file {path} is not VGG16's weights ({reason})",
                          path=str(path), reason=str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    return model.eval()
