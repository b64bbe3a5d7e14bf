"""The network as data: a serialisable Sequential spec, the course's CNN, and building it.

Also: presets sized for the selected dataset (`preset`), the shape arithmetic that checks a spec
before anything is allocated (`check_spec`, errors naming the layer and the value it needs, and
the one-click `fix_spec`), the per-layer table from a real forward pass (`summarize`), and
feature maps (`layer_outputs`). Sizes come from `dl_core.arithmetic.conv_output_size`, the
project's one copy of the formula.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dl_core.arithmetic import conv_output_size
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
        """A layer from its dict form; CourseError("model.bad_spec") for anything malformed."""
        if not isinstance(d, dict) or not isinstance(d.get("kind"), str):
            raise _bad_spec("a layer must be {\"kind\": ..., \"args\": {...}}")
        kind = d["kind"]
        if kind not in LAYER_KINDS:
            raise CourseError("model.unknown_kind", "unknown layer type {kind}", kind=kind[:40])
        args = d.get("args", {})
        if args is None:
            args = {}
        if not isinstance(args, dict) or len(args) > 16:
            raise _bad_spec(f"{kind}: args must be a dictionary")
        for key, value in args.items():
            if not isinstance(key, str) or not key.isidentifier() or len(key) > 40:
                raise _bad_spec(f"{kind}: argument names must be words")
            if not _spec_value(value):
                raise _bad_spec(f"{kind}: {key} must be a number, true/false or null")
        name = d.get("name")
        if name is not None and (not isinstance(name, str) or not name.isidentifier() or len(name) > 60):
            raise _bad_spec(f"{kind}: name must be a short word")
        return cls(kind=kind, args=dict(args), name=name or None)


@dataclass(frozen=True)
class ModelSpec:
    """A Sequential network: its layers in order."""

    layers: tuple[LayerSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        """A spec from its dict form, checked: CourseError (`model.bad_spec`, `model.unknown_kind`,
        `model.too_many_layers`) for anything malformed, never a raw exception."""
        if not isinstance(d, dict) or not isinstance(d.get("layers"), (list, tuple)):
            raise _bad_spec("it must be {\"layers\": [...]}")
        if not d["layers"]:
            raise CourseError("model.empty", "the network has no layers")
        if len(d["layers"]) > MAX_LAYERS:
            raise CourseError("model.too_many_layers", "{count} layers is more than the limit of {limit}",
                              count=len(d["layers"]), limit=MAX_LAYERS)
        return cls(layers=tuple(LayerSpec.from_dict(x) for x in d["layers"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> "ModelSpec":
        """from_dict(json.loads(text)); CourseError("model.bad_spec") for text that is not such JSON."""
        if not isinstance(text, (str, bytes, bytearray)) or len(text) > 1_000_000:
            raise _bad_spec("not JSON text (or longer than 1 MB)")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, absurd nesting
            raise _bad_spec(f"not valid JSON ({str(exc)[:80]})") from exc
        return cls.from_dict(data)


def _bad_spec(reason: str) -> CourseError:
    return CourseError("model.bad_spec", "The network description is malformed: {reason}", reason=reason)


def _spec_value(value: Any) -> bool:
    """An argument value a spec may hold: a finite number, bool, None, a short string, or a short list of numbers."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return abs(value) <= 10**12
    if isinstance(value, float):
        return value == value and abs(value) != float("inf")
    if isinstance(value, str):
        return len(value) <= 40
    if isinstance(value, (list, tuple)) and len(value) <= 4:
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) and _spec_value(v) for v in value)
    return False


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


def build_model_seeded(spec: ModelSpec, seed: int = 0) -> nn.Sequential:
    """build_model with its random initial weights drawn from `seed`; the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(spec)


def print_model(spec: ModelSpec) -> str:
    """`print(model)` exactly as PyTorch prints it; built on the meta device (no memory for weights)."""
    with torch.device("meta"):
        return str(build_model(spec))


# torch's own defaults: an argument equal to one of these says nothing, so the canonical form leaves it out
TORCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "Conv2d": {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True},
    "MaxPool2d": {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False},
    "AvgPool2d": {"stride": None, "padding": 0, "ceil_mode": False},
    "ReLU": {"inplace": False},
    "LeakyReLU": {"negative_slope": 0.01, "inplace": False},
    "Dropout": {"p": 0.5, "inplace": False},
    "Linear": {"bias": True},
    "Flatten": {"start_dim": 1, "end_dim": -1},
}


def canonical(spec: ModelSpec) -> ModelSpec:
    """The same network with arguments equal to torch's defaults left out, so that two specs that
    build the same network compare equal (`Conv2d(..., stride=1)` == `Conv2d(...)`)."""
    layers = []
    for layer in spec.layers:
        defaults = TORCH_DEFAULTS.get(layer.kind, {})
        args = {k: v for k, v in layer.args.items()
                if not (k in defaults and v == defaults[k] and type(v) is type(defaults[k]))}
        layers.append(LayerSpec(layer.kind, args, layer.name))
    return ModelSpec(tuple(layers))


def same_network(a: ModelSpec | None, b: ModelSpec | None) -> bool:
    """True when both specs build the same network (names included)."""
    if a is None or b is None:
        return a is b
    return canonical(a) == canonical(b)


# ---------------------------------------------------------------------------------------------
# Presets: the course's networks, sized for the selected dataset.

PRESETS = ("course", "course_odict", "course_relu", "course_bn_dropout", "linear")
_ODICT_NAMES = ("conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "flatten", "full_connect1", "full_connect2")


def preset(name: str, in_channels: int = 3, num_classes: int = 10,
           image_size: tuple[int, int] = (32, 32)) -> ModelSpec:
    """A named preset for a C×H×W dataset with `num_classes` outputs.

    The first Linear's in_features is derived from the image size through the layers
    (conv_output_size, the project's one size formula): 3×32×32 → 64·4·4 = 1024, 1×28×28 → 64·3·3 = 576.
    """
    if name not in PRESETS:
        raise CourseError("model.preset_unknown", "unknown preset {name}", name=name)
    if in_channels < 1 or num_classes < 1 or min(image_size) < 1:
        raise CourseError("model.bad_input", "the input must have at least 1 channel and 1×1 pixels, got {shape}",
                          shape=_fmt_shape((in_channels, *image_size)))
    input_shape = (int(in_channels), int(image_size[0]), int(image_size[1]))
    if name == "linear":
        layers = [LayerSpec("Flatten"), LayerSpec("Linear", {"in_features": 1, "out_features": num_classes})]
    else:
        base = course_cnn(in_channels, num_classes).layers
        layers = list(base)
        if name == "course_odict":
            layers[7] = LayerSpec("Linear", {"in_features": 1024, "out_features": 128})
            layers[8] = LayerSpec("Linear", {"in_features": 128, "out_features": num_classes})
            layers = [LayerSpec(x.kind, x.args, n) for x, n in zip(layers, _ODICT_NAMES)]
        elif name == "course_relu":
            layers = _after_convs(layers, lambda conv: [LayerSpec("ReLU")])
        elif name == "course_bn_dropout":
            layers = _after_convs(layers, lambda conv: [
                LayerSpec("BatchNorm2d", {"num_features": conv.args["out_channels"]}), LayerSpec("ReLU")])
            i = next(i for i, x in enumerate(layers) if x.kind == "Linear")
            layers[i + 1:i + 1] = [LayerSpec("ReLU"), LayerSpec("Dropout", {"p": 0.5})]
    spec = ModelSpec(tuple(layers))
    try:
        fixed = fix_spec(spec, input_shape)
    except CourseError:
        fixed = None
    if fixed is None:
        raise CourseError("model.preset_too_small", "the preset {name} needs bigger images than {size}",
                          name=name, size=f"{image_size[0]}×{image_size[1]}")
    return canonical(fixed)


def _after_convs(layers: list[LayerSpec], extra) -> list[LayerSpec]:
    out: list[LayerSpec] = []
    for layer in layers:
        out.append(layer)
        if layer.kind == "Conv2d":
            out.extend(extra(layer))
    return out


# ---------------------------------------------------------------------------------------------
# Shapes without running anything: the arithmetic that checks a spec before a tensor is allocated.

MAX_PARAMETERS = 50_000_000  # a beginner's network has far fewer; this keeps memory safe
MAX_ACTIVATION = 16_000_000  # elements of one layer's output, per image
MAX_LAYERS = 64

# The arguments the builder edits, with their defaults; None means "same as kernel_size" (pool stride).
LAYER_ARGS: dict[str, dict[str, Any]] = {
    "Conv2d": {"in_channels": 3, "out_channels": 32, "kernel_size": 5, "stride": 1, "padding": 2},
    "MaxPool2d": {"kernel_size": 2, "stride": None, "padding": 0, "ceil_mode": False},
    "AvgPool2d": {"kernel_size": 2, "stride": None, "padding": 0, "ceil_mode": False},
    "ReLU": {},
    "Sigmoid": {},
    "Tanh": {},
    "LeakyReLU": {"negative_slope": 0.01},
    "Dropout": {"p": 0.5},
    "BatchNorm2d": {"num_features": 32},
    "Flatten": {},
    "Linear": {"in_features": 1024, "out_features": 10},
}
_INT_ARGS = {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
             "num_features", "in_features", "out_features"}
_ZERO_OK = {"padding"}
# Arguments whose effect on shapes and parameters check_spec knows (others, e.g. groups or
# return_indices, would make its arithmetic wrong, so they are refused with a clear message).
_SUPPORTED: dict[str, set[str]] = {
    "Conv2d": {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "bias"},
    "MaxPool2d": {"kernel_size", "stride", "padding", "dilation", "ceil_mode"},
    "AvgPool2d": {"kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"},
    "ReLU": {"inplace"}, "Sigmoid": set(), "Tanh": set(), "LeakyReLU": {"negative_slope", "inplace"},
    "Dropout": {"p", "inplace"}, "BatchNorm2d": {"num_features", "eps", "momentum"}, "Flatten": set(),
    "Linear": {"in_features", "out_features", "bias"},
}
_REQUIRED = {
    "Conv2d": ("in_channels", "out_channels", "kernel_size"), "MaxPool2d": ("kernel_size",),
    "AvgPool2d": ("kernel_size",), "BatchNorm2d": ("num_features",), "Linear": ("in_features", "out_features"),
}


@dataclass(frozen=True)
class LayerShape:
    """What one layer does to one image: output shape (no batch dim), parameters, multiply-adds."""

    index: int
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    formula: str = ""  # how the size came out, e.g. "⌊(32 + 2×2 − 5)/1⌋ + 1 = 32"


def _fmt_shape(shape) -> str:
    return "×".join(str(int(s)) for s in shape)


def _layer_names(spec: ModelSpec) -> list[str]:
    if spec.layers and all(x.name for x in spec.layers):
        return [str(x.name) for x in spec.layers]
    return [str(i) for i in range(len(spec.layers))]


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return (int(value[0]), int(value[1])) if len(value) == 2 else (int(value[0]), int(value[0]))
    return (int(value), int(value))


def _check_value(index: int, layer: LayerSpec, arg: str, value: Any) -> None:
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        bad = isinstance(v, bool) or not isinstance(v, int) or v < (0 if arg in _ZERO_OK else 1)
        if bad:
            raise CourseError("model.bad_value", "layer ({index}) {layer}: {arg} must be a whole number "
                              "{minimum} or more, got {value}", index=index, layer=layer.kind, arg=arg,
                              value=value, minimum=0 if arg in _ZERO_OK else 1)


def check_spec(spec: ModelSpec, input_shape: tuple[int, int, int]) -> list[LayerShape]:
    """Every layer's output shape for one C×H×W image, by arithmetic alone (nothing allocated).

    Raises CourseError naming the layer index and the expected value at the first problem,
    and `model.too_big` when the parameters would exceed MAX_PARAMETERS.
    """
    if not spec.layers:
        raise CourseError("model.empty", "the network has no layers")
    if len(spec.layers) > MAX_LAYERS:
        raise CourseError("model.too_many_layers", "{count} layers is more than the limit of {limit}",
                          count=len(spec.layers), limit=MAX_LAYERS)
    if len(input_shape) != 3 or min(int(s) for s in input_shape) < 1:
        raise CourseError("model.bad_input", "the input must have at least 1 channel and 1×1 pixels, got {shape}",
                          shape=_fmt_shape(input_shape))
    names = _layer_names(spec)
    shape: tuple[int, ...] = tuple(int(s) for s in input_shape)
    flat_from: tuple[int, ...] | None = None  # the C×H×W a flat vector came from (for "64×4×4")
    rows: list[LayerShape] = []
    total = 0
    for i, layer in enumerate(spec.layers):
        kind = layer.kind
        if kind not in LAYER_KINDS:
            raise CourseError("model.unknown_kind", "unknown layer type {kind}", kind=kind)
        unknown = sorted(set(canonical(ModelSpec((layer,))).layers[0].args) - _SUPPORTED[kind])
        if unknown:
            raise CourseError("model.unknown_arg", "layer ({index}) {layer}: the builder does not support {arg}",
                              index=i, layer=kind, arg=", ".join(unknown))
        a = {**TORCH_DEFAULTS.get(kind, {}), **layer.args}  # what torch fills in for arguments left out
        for arg in _REQUIRED.get(kind, ()):
            if arg not in a:
                raise CourseError("model.missing_arg", "layer ({index}) {layer} needs {arg}",
                                  index=i, layer=kind, arg=arg)
        for arg, value in a.items():
            if arg in _INT_ARGS and not (arg == "stride" and value is None and kind in ("MaxPool2d", "AvgPool2d")):
                _check_value(i, layer, arg, value)
        params = macs = 0
        formula = ""
        if kind in ("Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm2d") and len(shape) != 3:
            raise CourseError("model.needs_image", "layer ({index}) {layer} needs a C×H×W feature map, but the "
                              "input is already flat ({features} numbers): move it before Flatten",
                              index=i, layer=kind, features=shape[0])
        if kind == "Conv2d":
            c, h, w = shape
            if a["in_channels"] != c:
                raise CourseError("model.conv_in", "layer ({index}) {layer} expects in_channels = {expected}, got {got}",
                                  index=i, layer=kind, expected=c, got=a["in_channels"])
            (kh, kw), (sh, sw), (ph, pw) = _pair(a["kernel_size"]), _pair(a["stride"]), _pair(a["padding"])
            dh, dw = _pair(a.get("dilation", 1))
            oh = _out(i, kind, h, kh, sh, ph, dh, False)
            ow = _out(i, kind, w, kw, sw, pw, dw, False)
            groups = int(a.get("groups", 1))
            bias = bool(a.get("bias", True))
            params = a["out_channels"] * (c // groups) * kh * kw + (a["out_channels"] if bias else 0)
            shape = (a["out_channels"], oh, ow)
            macs = a["out_channels"] * oh * ow * (c // groups) * kh * kw
            formula = _formula(h, kh, sh, ph, dh, oh)
        elif kind in ("MaxPool2d", "AvgPool2d"):
            c, h, w = shape
            k = _pair(a["kernel_size"])
            s = k if a["stride"] is None else _pair(a["stride"])
            p = _pair(a["padding"])
            if p[0] > k[0] // 2 or p[1] > k[1] // 2:
                raise CourseError("model.pool_padding", "layer ({index}) {layer}: padding {padding} must be at most "
                                  "half the kernel ({kernel})", index=i, layer=kind, padding=a["padding"],
                                  kernel=a["kernel_size"])
            ceil = bool(a.get("ceil_mode", False))
            d = _pair(a.get("dilation", 1)) if kind == "MaxPool2d" else (1, 1)
            oh = _out(i, kind, h, k[0], s[0], p[0], d[0], ceil)
            ow = _out(i, kind, w, k[1], s[1], p[1], d[1], ceil)
            shape = (c, oh, ow)
            formula = _formula(h, k[0], s[0], p[0], d[0], oh, ceil)
        elif kind == "BatchNorm2d":
            if a["num_features"] != shape[0]:
                raise CourseError("model.bn_features", "layer ({index}) {layer} expects num_features = {expected}, "
                                  "got {got}", index=i, layer=kind, expected=shape[0], got=a["num_features"])
            params = 2 * shape[0]
        elif kind == "Flatten":
            if len(shape) == 3:
                flat_from = shape
                shape = (shape[0] * shape[1] * shape[2],)
                formula = f"{_fmt_shape(flat_from)} = {shape[0]}"
        elif kind == "Linear":
            if len(shape) == 3:
                raise CourseError("model.needs_flatten", "layer ({index}) {layer} gets a {shape} feature map: "
                                  "put Flatten() before it", index=i, layer=kind, shape=_fmt_shape(shape))
            if a["in_features"] != shape[0]:
                derivation = _fmt_shape(flat_from) if flat_from is not None else str(shape[0])
                raise CourseError("model.linear_in", "layer ({index}) {layer} expects in_features = {expected} = "
                                  "{derivation}, got {got}", index=i, layer=kind, expected=shape[0],
                                  got=a["in_features"], derivation=derivation)
            bias = bool(a.get("bias", True))
            params = a["in_features"] * a["out_features"] + (a["out_features"] if bias else 0)
            macs = a["in_features"] * a["out_features"]
            formula = f"{a['in_features']} → {a['out_features']}"
            shape, flat_from = (a["out_features"],), None
        elif kind == "Dropout":
            p = a.get("p", 0.5)
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise CourseError("model.dropout_p", "layer ({index}) {layer}: p must be between 0 and 1, got {value}",
                                  index=i, layer=kind, value=p)
        elif kind == "LeakyReLU":
            slope = a.get("negative_slope", 0.01)
            if isinstance(slope, bool) or not isinstance(slope, (int, float)):
                raise CourseError("model.bad_value", "layer ({index}) {layer}: {arg} must be a whole number "
                                  "{minimum} or more, got {value}", index=i, layer=kind, arg="negative_slope",
                                  value=slope, minimum=0)
        total += params
        if total > MAX_PARAMETERS:
            raise CourseError("model.too_big", "{params} parameters is more than the limit of {limit}",
                              params=f"{total:,}", limit=f"{MAX_PARAMETERS:,}")
        numel = 1
        for s in shape:
            numel *= s
        if numel > MAX_ACTIVATION:
            raise CourseError("model.too_big_activation", "layer ({index}) {layer} outputs {numel} numbers per image, "
                              "more than the limit of {limit}", index=i, layer=kind, numel=f"{numel:,}",
                              limit=f"{MAX_ACTIVATION:,}")
        rows.append(LayerShape(i, names[i], kind, shape, params, macs, formula))
    return rows


def _out(index: int, kind: str, size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    try:
        return conv_output_size(size, k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    except CourseError as exc:
        if exc.code == "arith.kernel_too_big":
            raise CourseError("model.kernel_too_big", "layer ({index}) {layer}: the kernel reaches {span} cells but the "
                              "feature map (with padding) has only {padded}", index=index, layer=kind,
                              span=exc.params["span"], padded=exc.params["padded"]) from exc
        raise


def _formula(size: int, k: int, s: int, p: int, d: int, out: int, ceil: bool = False) -> str:
    reach = f"{d}×({k} − 1)" if d != 1 else f"({k} − 1)"
    left, right = ("⌈", "⌉") if ceil else ("⌊", "⌋")
    return f"{left}({size} + 2×{p} − {reach} − 1)/{s}{right} + 1 = {out}"


def fix_spec(spec: ModelSpec, input_shape: tuple[int, int, int]) -> ModelSpec | None:
    """The one-click fix: the spec with in_channels / num_features / in_features set to what the
    shapes need and Flatten inserted before a Linear that gets a feature map; None when the
    problem is not one of those (a kernel too big, a bad value: the student decides)."""
    layers = list(spec.layers)
    for _ in range(2 * len(layers) + 2):
        try:
            check_spec(ModelSpec(tuple(layers)), input_shape)
            return ModelSpec(tuple(layers))
        except CourseError as exc:
            i = exc.params.get("index")
            arg = {"model.conv_in": "in_channels", "model.bn_features": "num_features",
                   "model.linear_in": "in_features"}.get(exc.code)
            if arg is not None:
                old = layers[i]
                layers[i] = LayerSpec(old.kind, {**old.args, arg: exc.params["expected"]}, old.name)
            elif exc.code == "model.needs_flatten":
                named = all(x.name for x in layers)
                layers.insert(i, LayerSpec("Flatten", {}, _unique_name("flatten", layers) if named else None))
            else:
                return None
    return None


def _unique_name(base: str, layers: list[LayerSpec]) -> str:
    taken = {x.name for x in layers}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}{n}"
    return name


def check_partial(spec: ModelSpec, input_shape: tuple[int, int, int]) -> tuple[list[LayerShape], CourseError | None]:
    """The rows that work and the first error (None when the whole spec is valid): for showing a
    broken network up to the layer that breaks it."""
    try:
        return check_spec(spec, input_shape), None
    except CourseError as exc:
        index = exc.params.get("index")
        if not isinstance(index, int) or index <= 0:
            return [], exc
        try:
            return check_spec(ModelSpec(spec.layers[:index]), input_shape), exc
        except CourseError:
            return [], exc


def padding_table(size: int, kernel_size: int, stride: int = 1) -> list[tuple[int, int, str]]:
    """(padding, output size, the formula with numbers) for padding 0..kernel_size-1, from conv_output_size.

    Shows why padding=2 keeps 32×32 with kernel 5: (32 + 2×2 − (5 − 1) − 1)/1 + 1 = 32.
    """
    rows = []
    for padding in range(kernel_size):
        try:
            out = conv_output_size(size, kernel_size, stride, padding)
        except CourseError:
            continue  # kernel larger than the padded input: no output for this padding
        rows.append((padding, out, _formula(size, kernel_size, stride, padding, 1, out)))
    return rows


# ---------------------------------------------------------------------------------------------
# The summary: a real forward pass (on the meta device: shapes, no memory, no maths).

@dataclass(frozen=True)
class ModelSummary:
    """One row per layer (index, name, type, output shape, parameters, multiply-adds) and totals."""

    input_shape: tuple[int, int, int]
    rows: tuple[LayerShape, ...]
    total_params: int
    trainable_params: int
    total_macs: int

    @property
    def size_mb(self) -> float:
        """float32 parameters in MB (10^6 bytes)."""
        return self.total_params * 4 / 1e6

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.rows[-1].output_shape if self.rows else self.input_shape


def summarize(model_or_spec: ModelSpec | nn.Module, input_shape: tuple[int, int, int]) -> ModelSummary:
    """The per-layer table for one C×H×W image; shapes recorded by forward hooks on a batch of 1.

    A spec is checked by arithmetic first (clear errors, the parameter cap before anything is
    allocated), then built and run on the meta device. A module runs on its own device.
    """
    input_shape = tuple(int(s) for s in input_shape)  # type: ignore[assignment]
    if isinstance(model_or_spec, ModelSpec):
        arithmetic = check_spec(model_or_spec, input_shape)
        with torch.device("meta"):
            model = build_model(model_or_spec)
        device = torch.device("meta")
    else:
        arithmetic = None
        model = model_or_spec
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    seen: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    current: list[int] = []
    handles = []
    for idx, (name, module) in enumerate(leaves):
        def pre(mod, args, idx=idx):
            current.append(idx)

        def post(mod, args, out, name=name):
            seen.append((name, mod, tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else ()))
        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    except (RuntimeError, ValueError, IndexError) as exc:
        idx = current[-1] if current else 0
        name, module = leaves[idx] if leaves else ("", model)
        raise CourseError("model.forward_failed", "layer ({index}) {layer} failed: {reason}",
                          index=name, layer=type(module).__name__, reason=str(exc).splitlines()[0]) from exc
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    rows = []
    for i, (name, module, shape) in enumerate(seen):
        params = sum(p.numel() for p in module.parameters(recurse=False))
        if arithmetic is not None:
            macs, formula = arithmetic[i].macs, arithmetic[i].formula
        else:
            macs, formula = _macs(module, shape), ""
        rows.append(LayerShape(i, name, type(module).__name__, shape, params, macs, formula))
    return ModelSummary(
        input_shape=input_shape,  # type: ignore[arg-type]
        rows=tuple(rows),
        total_params=count_parameters(model),
        trainable_params=count_parameters(model, trainable_only=True),
        total_macs=sum(r.macs for r in rows),
    )


def _macs(module: nn.Module, out_shape: tuple[int, ...]) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        numel = 1
        for s in out_shape:
            numel *= s
        return numel * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        lead = 1
        for s in out_shape[:-1]:
            lead *= s
        return lead * module.in_features * module.out_features
    return 0


# ---------------------------------------------------------------------------------------------
# Feature maps: one image through every layer.

def layer_outputs(model: nn.Module, image: torch.Tensor) -> list[tuple[str, str, torch.Tensor]]:
    """(name, type, output) for every layer of a Sequential, for one image [C, H, W] → outputs without the batch dim."""
    if image.dim() != 3:
        raise CourseError("model.bad_image", "an image must be C×H×W, got {shape}", shape=_fmt_shape(image.shape))
    outs: list[tuple[str, str, torch.Tensor]] = []
    x = image.unsqueeze(0).float()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for name, module in model.named_children():
                try:
                    x = module(x)
                except (RuntimeError, ValueError) as exc:
                    raise CourseError("model.forward_failed", "layer ({index}) {layer} failed: {reason}",
                                      index=name, layer=type(module).__name__,
                                      reason=str(exc).splitlines()[0]) from exc
                outs.append((name, type(module).__name__, x[0].detach().clone()))
    finally:
        model.train(was_training)
    return outs


def channel_grid(fmap: torch.Tensor, max_channels: int = 16) -> torch.Tensor:
    """A C×H×W feature map → [min(C, max_channels), H, W] uint8 images, each channel scaled to 0..255 on its own."""
    if fmap.dim() != 3:
        raise CourseError("model.bad_image", "an image must be C×H×W, got {shape}", shape=_fmt_shape(fmap.shape))
    x = fmap[:max_channels].float()
    lo = x.amin(dim=(1, 2), keepdim=True)
    hi = x.amax(dim=(1, 2), keepdim=True)
    x = (x - lo) / (hi - lo).clamp_min(1e-12)
    return (x * 255).round().to(torch.uint8)


def image_input(image: torch.Tensor, preprocessing=None) -> torch.Tensor:
    """uint8 [C, H, W] → the float [C, H, W] the network sees: ToTensor's /255, then the
    checkpoint's Normalize when a `dl_core.preprocess.Preprocessing` is given."""
    if preprocessing is not None:
        return preprocessing.batch(image.unsqueeze(0))[0]
    return image.float() / 255


MAX_UPLOAD_BYTES = 20 << 20  # = dl_core.images.MAX_IMAGE_BYTES, the app's one set of image limits


def decode_image(data: bytes, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """An uploaded picture → uint8 [channels, H, W], resized like the course's Resize((h, w)).

    Through the app's one image intake (`dl_core.images`: byte, format and pixel caps before
    decoding, errors `image.*`); PNG's alpha channel dropped (`.convert("RGB")`, as the course
    does), or grey ("L") for one-channel datasets.
    """
    from torchvision.transforms.v2 import functional as F

    from dl_core import images

    img = images.read_image(data, mode="L" if channels == 1 else "RGB")
    x = F.pil_to_tensor(img)
    return F.resize(x, list(size), antialias=True)
