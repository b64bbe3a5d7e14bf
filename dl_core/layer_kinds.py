"""Layer kinds: everything the project knows about one torch.nn layer, in one entry of `KINDS`.

An entry says: the torch class; the arguments the builder supports, with torch's own defaults read
from the class's signature (`inspect.signature`), which are required and their types; the shape
rule `models.check_spec` runs (output shape, multiply-adds and the size formula from
`dl_core.arithmetic`); the printed form (`print(model)`, PyTorch's own) and the code form (as the
course writes it); how a loaded file shows the layer (state_dict tensors, module attributes); what
the builder page edits and how a new layer starts; and its short name in a builder link
(`conv_3_32_5_p2-maxpool_2-...`, see `encode`).

Adding a kind: one `_kind(...)` entry below, plus a `model.arg.*` label in locales/model.json for
each argument the builder edits that no other kind has (docs/DEVELOPING.md).
No Streamlit here; `models`, `codegen.model`, `checkpoint` and the builder page read this module.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dl_core.arithmetic import conv_output_size, size_formula
from dl_core.errors import CourseError

REQUIRED = inspect.Parameter.empty  # the default of an argument torch has no default for


@dataclass(frozen=True)
class Arg:
    """One argument a kind supports: its type, torch's default, and how the builder and links show it."""

    name: str
    type: type  # int, float or bool (ints may also be a [h, w] pair)
    minimum: int | None = None  # ints: the smallest value check_spec accepts
    code: str = ""  # its letters in a builder link (`p` in `conv_3_32_5_p2`); required args go by position
    label: str | None = None  # catalog key of the builder's widget label (None: the builder does not edit it)
    none_means: str | None = None  # None is allowed and means "the same as this argument" (pooling's stride)
    nullable: bool = False  # None is a value of its own (BatchNorm's momentum=None: a cumulative average)
    from_tensors: bool = False  # not an attribute: True when the layer has this parameter tensor (bias)
    default: Any = REQUIRED  # filled in from the torch class's signature

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def widget(self) -> str:
        """How the builder edits it: "int", "opt" (an int or empty), "float" or "bool"."""
        if self.type is bool or self.type is float:
            return self.type.__name__
        return "opt" if self.none_means else "int"


@dataclass(frozen=True)
class Arriving:
    """What reaches layer `index`: one image's shape (no batch dim) and, after Flatten, the C×H×W it came from."""

    index: int
    kind: str
    shape: tuple[int, ...]
    flat_from: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Shaped:
    """What a shape rule says a layer puts out."""

    shape: tuple[int, ...]
    macs: int = 0  # multiply-adds per image
    formula: str = ""  # how the size came out
    flat_from: tuple[int, ...] | None = None


@dataclass(frozen=True)
class LayerKind:
    """One torch.nn layer kind (see the module docstring); build entries with `_kind`."""

    name: str  # the torch.nn class name, also LayerSpec.kind
    code: str  # its name in a builder link
    args: tuple[Arg, ...]  # the arguments check_spec knows the effect of, in the signature's order
    shape: Callable[[Arriving, dict[str, Any]], Shaped]
    params: Callable[[dict[str, Any]], int | None] = lambda a: 0  # trainable numbers, from the arguments alone
    needs: str | None = None  # "image": a C×H×W input; "flat": a vector (after Flatten)
    fits: str | None = None  # the argument that must equal the arriving channels ("image") or features ("flat")
    edit: tuple[str, ...] = ()  # the arguments the builder shows, in order
    start: Mapping[str, Any] = field(default_factory=dict)  # a new layer's arguments in the builder
    recognise: Callable[[dict[str, torch.Tensor]], dict[str, Any] | None] | None = None  # from state_dict tensors
    gap: tuple[str, dict[str, Any]] | None = None  # (role, args) when guessed for a layer without tensors
    torch_defaults: Mapping[str, Any] = field(default_factory=dict)  # every argument torch has a default for
    signature: tuple[str, ...] = ()  # every argument name of the torch class, in order

    @property
    def torch_class(self) -> type[nn.Module]:
        return getattr(nn, self.name)

    @property
    def required(self) -> tuple[str, ...]:
        """The arguments without a default: the course passes them by position (`nn.Conv2d(3, 32, 5)`)."""
        return tuple(a.name for a in self.args if a.required)

    def arg(self, name: str) -> Arg | None:
        return next((a for a in self.args if a.name == name), None)

    def says_nothing(self, name: str, value: Any) -> bool:
        """True when `name=value` is what torch does anyway (its default, or pooling's stride=None)."""
        arg = self.arg(name)
        if value is None and arg is not None and arg.none_means:
            return True
        default = self.torch_defaults.get(name, REQUIRED)
        return default is not REQUIRED and value == default and type(value) is type(default)

    def canonical_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments without those equal to torch's defaults (`stride=1` says nothing)."""
        return {k: v for k, v in args.items() if not self.says_nothing(k, v)}

    def full_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Torch's defaults for the supported arguments, with `args` over them."""
        return {**{a.name: a.default for a in self.args if not a.required}, **args}

    def shown(self, name: str, args: Mapping[str, Any]) -> Any:
        """The value the builder shows: the layer's, else torch's default, else the builder's starting value."""
        if name in args:
            return args[name]
        default = self.torch_defaults.get(name, REQUIRED)
        return self.start.get(name) if default is REQUIRED else default

    def start_args(self, arriving: tuple[int, ...] | None = None) -> dict[str, Any]:
        """A new layer's arguments, fitted to the shape arriving where it goes (its `fits` argument)."""
        args = dict(self.start)
        if self.fits and arriving is not None and len(arriving) == (3 if self.needs == "image" else 1):
            args[self.fits] = int(arriving[0])
        return args

    def build(self, args: Mapping[str, Any]) -> nn.Module:
        """`nn.<Kind>(**args)`; CourseError("model.bad_args") when torch refuses them."""
        try:
            return self.torch_class(**args)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CourseError("model.bad_args", "{kind}: invalid arguments {args} ({reason})",
                              kind=self.name, args=dict(args), reason=str(exc)) from exc

    def printed(self, args: Mapping[str, Any]) -> str:
        """The layer as `print(model)` shows it: PyTorch's own repr, built on the meta device (no memory)."""
        with torch.device("meta"):
            return repr(self.build(args))

    def code_form(self, args: Mapping[str, Any]) -> str:
        """`nn.Conv2d(3, 32, 5, padding=2)`: required arguments by position, defaults left out, as the course writes."""
        rest = dict(args)
        positional = []
        for name in self.required:
            if name not in rest:
                break
            positional.append(repr(rest.pop(name)))
        keywords = [f"{k}={v!r}" for k, v in rest.items() if not self.says_nothing(k, v)]
        return f"nn.{self.name}({', '.join(positional + keywords)})"

    def parameter_count(self, args: Mapping[str, Any]) -> int | None:
        """Parameters from the arguments alone (nothing built); None when a size is not a whole number ≥ 1."""
        return self.params(self.full_args(args))


# ---------------------------------------------------------------------------------------------
# Checking one layer's arguments (check_spec's first step, for every kind alike)

def resolve(index: int, kind: LayerKind, args: Mapping[str, Any]) -> dict[str, Any]:
    """The full arguments of layer `index` (torch's defaults filled in), checked: only supported
    arguments, the required ones present, whole numbers where sizes go, numbers and true/false elsewhere."""
    unknown = sorted(set(kind.canonical_args(args)) - {a.name for a in kind.args})
    if unknown:
        raise CourseError("model.unknown_arg", "layer ({index}) {layer}: the builder does not support {arg}",
                          index=index, layer=kind.name, arg=", ".join(unknown))
    a = kind.full_args(args)
    for spec in kind.args:
        if spec.name not in a:
            raise CourseError("model.missing_arg", "layer ({index}) {layer} needs {arg}",
                              index=index, layer=kind.name, arg=spec.name)
        _check_arg(index, kind.name, spec, a[spec.name])
    return a


def _check_arg(index: int, kind: str, arg: Arg, value: Any) -> None:
    if value is None and (arg.none_means or arg.nullable):
        return
    if arg.type is int:
        minimum = arg.minimum or 0
        if isinstance(value, (list, tuple)):
            values = list(value) if len(value) == 2 else [None]  # an [h, w] pair, nothing else
        else:
            values = [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise CourseError("model.bad_value", "layer ({index}) {layer}: {arg} must be a whole number "
                                  "{minimum} or more, got {value}", index=index, layer=kind, arg=arg.name,
                                  value=value, minimum=minimum)
    elif arg.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise CourseError("model.not_number", "layer ({index}) {layer}: {arg} must be a number, got {value}",
                              index=index, layer=kind, arg=arg.name, value=value)
    elif not isinstance(value, bool):
        raise CourseError("model.not_flag", "layer ({index}) {layer}: {arg} must be True or False, got {value}",
                          index=index, layer=kind, arg=arg.name, value=value)


def check_input(kind: LayerKind, x: Arriving) -> None:
    """The input a kind needs: a C×H×W feature map (conv, pooling, BatchNorm) or a flat vector (Linear)."""
    if kind.needs == "image" and len(x.shape) != 3:
        raise CourseError("model.needs_image", "layer ({index}) {layer} needs a C×H×W feature map, but the "
                          "input is already flat ({features} numbers): move it before Flatten",
                          index=x.index, layer=kind.name, features=x.shape[0])
    if kind.needs == "flat" and len(x.shape) != 1:
        raise CourseError("model.needs_flatten", "layer ({index}) {layer} gets a {shape} feature map: "
                          "put Flatten() before it", index=x.index, layer=kind.name, shape=fmt_shape(x.shape))


FIT_ERRORS = ("model.conv_in", "model.bn_features", "model.linear_in")  # fixed by setting the kind's `fits`


# ---------------------------------------------------------------------------------------------
# Shape rules: what one layer does to one image's shape (arithmetic only, nothing allocated)

def fmt_shape(shape: Iterable[int]) -> str:
    return "×".join(str(int(s)) for s in shape)


def pair(value: Any) -> tuple[int, int]:
    """5 → (5, 5); [3, 5] → (3, 5), as torch reads kernel_size, stride, padding and dilation."""
    if isinstance(value, (list, tuple)):
        return (int(value[0]), int(value[1])) if len(value) == 2 else (int(value[0]), int(value[0]))
    return (int(value), int(value))


def _out(x: Arriving, size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    try:
        return conv_output_size(size, k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    except CourseError as exc:
        if exc.code == "arith.kernel_too_big":
            raise CourseError("model.kernel_too_big", "layer ({index}) {layer}: the kernel reaches {span} cells "
                              "but the feature map (with padding) has only {padded}", index=x.index, layer=x.kind,
                              span=exc.params["span"], padded=exc.params["padded"]) from exc
        raise


def _same(x: Arriving, a: dict[str, Any]) -> Shaped:
    """Activations and Dropout: the shape passes through."""
    return Shaped(x.shape, flat_from=x.flat_from)


def _conv_shape(x: Arriving, a: dict[str, Any]) -> Shaped:
    c, h, w = x.shape
    if a["in_channels"] != c:
        raise CourseError("model.conv_in", "layer ({index}) {layer} expects in_channels = {expected}, got {got}",
                          index=x.index, layer=x.kind, expected=c, got=a["in_channels"])
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (pair(a[n]) for n in ("kernel_size", "stride", "padding", "dilation"))
    oh, ow = _out(x, h, kh, sh, ph, dh, False), _out(x, w, kw, sw, pw, dw, False)
    out = a["out_channels"]
    return Shaped((out, oh, ow), out * oh * ow * c * kh * kw, size_formula(h, kh, sh, ph, dh))


def _pool_shape(x: Arriving, a: dict[str, Any]) -> Shaped:
    c, h, w = x.shape
    k = pair(a["kernel_size"])
    s = k if a["stride"] is None else pair(a["stride"])
    p = pair(a["padding"])
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:  # torch's own rule for pooling
        raise CourseError("model.pool_padding", "layer ({index}) {layer}: padding {padding} must be at most "
                          "half the kernel ({kernel})", index=x.index, layer=x.kind, padding=a["padding"],
                          kernel=a["kernel_size"])
    ceil = bool(a["ceil_mode"])
    d = pair(a.get("dilation", 1))  # AvgPool2d has no dilation
    oh, ow = _out(x, h, k[0], s[0], p[0], d[0], ceil), _out(x, w, k[1], s[1], p[1], d[1], ceil)
    return Shaped((c, oh, ow), formula=size_formula(h, k[0], s[0], p[0], d[0], ceil))


def _batchnorm_shape(x: Arriving, a: dict[str, Any]) -> Shaped:
    if a["num_features"] != x.shape[0]:
        raise CourseError("model.bn_features", "layer ({index}) {layer} expects num_features = {expected}, "
                          "got {got}", index=x.index, layer=x.kind, expected=x.shape[0], got=a["num_features"])
    return Shaped(x.shape)


def _dropout_shape(x: Arriving, a: dict[str, Any]) -> Shaped:
    if not 0 <= a["p"] <= 1:
        raise CourseError("model.dropout_p", "layer ({index}) {layer}: p must be between 0 and 1, got {value}",
                          index=x.index, layer=x.kind, value=a["p"])
    return _same(x, a)


def _flatten_shape(x: Arriving, a: dict[str, Any]) -> Shaped:
    if len(x.shape) != 3:
        return _same(x, a)  # already flat: nothing to do
    flat = x.shape[0] * x.shape[1] * x.shape[2]
    return Shaped((flat,), formula=f"{fmt_shape(x.shape)} = {flat}", flat_from=x.shape)


def _linear_shape(x: Arriving, a: dict[str, Any]) -> Shaped:
    if a["in_features"] != x.shape[0]:
        derivation = fmt_shape(x.flat_from) if x.flat_from is not None else str(x.shape[0])
        raise CourseError("model.linear_in", "layer ({index}) {layer} expects in_features = {expected} = "
                          "{derivation}, got {got}", index=x.index, layer=x.kind, expected=x.shape[0],
                          got=a["in_features"], derivation=derivation)
    return Shaped((a["out_features"],), a["in_features"] * a["out_features"],
                  f"{a['in_features']} → {a['out_features']}")


# ---------------------------------------------------------------------------------------------
# Parameters from the arguments alone (check_spec, a checkpoint's budget, a link's budget)

def _size(value: Any, square: bool = False) -> int | None:
    """A size as a whole number ≥ 1 (a [h, w] pair multiplied out; `square`: 5 means 5×5), or None."""
    parts = list(value) if isinstance(value, (list, tuple)) else [value] * (2 if square else 1)
    if not 1 <= len(parts) <= 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in parts):
        return None
    return math.prod(parts) if len(parts) == 2 or not square else parts[0] ** 2


def _conv_params(a: dict[str, Any]) -> int | None:
    sizes = [_size(a.get("in_channels")), _size(a.get("out_channels")), _size(a.get("kernel_size"), square=True),
             _size(a.get("groups", 1))]
    if None in sizes:
        return None
    c_in, c_out, kernel, groups = sizes
    return c_out * (c_in // groups) * kernel + (c_out if a.get("bias", True) else 0)


def _linear_params(a: dict[str, Any]) -> int | None:
    f_in, f_out = _size(a.get("in_features")), _size(a.get("out_features"))
    if f_in is None or f_out is None:
        return None
    return f_in * f_out + (f_out if a.get("bias", True) else 0)


def _batchnorm_params(a: dict[str, Any]) -> int | None:
    n = _size(a.get("num_features"))
    return None if n is None else 2 * n  # weight and bias; running mean/var are buffers


# ---------------------------------------------------------------------------------------------
# Recognising a layer from its tensors in a plain state_dict (`0.weight`, `0.bias`, ...)

def _conv_from(g: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    w = g.get("weight")
    if w is None or w.dim() != 4 or min(w.shape) < 1:
        return None
    kh, kw = int(w.shape[2]), int(w.shape[3])
    kernel: Any = kh if kh == kw else [kh, kw]
    padding: Any = kh // 2 if kh == kw else [kh // 2, kw // 2]  # the common "same" padding: a guess
    args = {"in_channels": int(w.shape[1]), "out_channels": int(w.shape[0]), "kernel_size": kernel,
            "padding": padding}
    return args if "bias" in g else {**args, "bias": False}


def _linear_from(g: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    w = g.get("weight")
    if w is None or w.dim() != 2 or min(w.shape) < 1:
        return None
    args = {"in_features": int(w.shape[1]), "out_features": int(w.shape[0])}
    return args if "bias" in g else {**args, "bias": False}


def _batchnorm_from(g: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    w = g.get("weight")
    if w is None or w.dim() != 1 or "running_mean" not in g or w.shape[0] < 1:
        return None
    return {"num_features": int(w.shape[0])}


# ---------------------------------------------------------------------------------------------
# The entries

def _a(name: str, type_: type, **kw: Any) -> Arg:
    return Arg(name, type_, **kw)


IN_CHANNELS = _a("in_channels", int, minimum=1, label="model.arg.in_channels")
OUT_CHANNELS = _a("out_channels", int, minimum=1, label="model.arg.out_channels")
KERNEL = _a("kernel_size", int, minimum=1, label="model.arg.kernel_size")
STRIDE = _a("stride", int, minimum=1, code="s", label="model.arg.stride")
POOL_STRIDE = dataclasses.replace(STRIDE, none_means="kernel_size")
PADDING = _a("padding", int, minimum=0, code="p", label="model.arg.padding")
DILATION = _a("dilation", int, minimum=1, code="d")
BIAS = _a("bias", bool, code="bias", from_tensors=True)
CEIL = _a("ceil_mode", bool, code="ceil", label="model.arg.ceil_mode")
INPLACE = _a("inplace", bool, code="inplace")


def _kind(name: str, code: str, args: tuple[Arg, ...] = (), shape=_same, **kw: Any) -> LayerKind:
    """An entry, with each argument's default and the kind's defaults read from torch's signature."""
    params = [p for p in inspect.signature(getattr(nn, name)).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    filled = tuple(dataclasses.replace(a, default=defaults.get(a.name, REQUIRED)) for a in args)
    return LayerKind(name, code, filled, shape, torch_defaults=defaults,
                     signature=tuple(p.name for p in params), **kw)


KINDS: dict[str, LayerKind] = {k.name: k for k in (
    _kind("Conv2d", "conv", (IN_CHANNELS, OUT_CHANNELS, KERNEL, STRIDE, PADDING, DILATION, BIAS), _conv_shape,
          params=_conv_params, needs="image", fits="in_channels",
          edit=("in_channels", "out_channels", "kernel_size", "stride", "padding"),
          start={"in_channels": 3, "out_channels": 32, "kernel_size": 5, "stride": 1, "padding": 2},
          recognise=_conv_from),
    _kind("MaxPool2d", "maxpool", (KERNEL, POOL_STRIDE, PADDING, DILATION, CEIL), _pool_shape, needs="image",
          edit=("kernel_size", "stride", "padding", "ceil_mode"),
          start={"kernel_size": 2, "stride": None, "padding": 0, "ceil_mode": False},
          gap=("pool", {"kernel_size": 2})),
    _kind("AvgPool2d", "avgpool", (KERNEL, POOL_STRIDE, PADDING, CEIL,
                                   _a("count_include_pad", bool, code="incpad")), _pool_shape, needs="image",
          edit=("kernel_size", "stride", "padding", "ceil_mode"),
          start={"kernel_size": 2, "stride": None, "padding": 0, "ceil_mode": False}),
    _kind("ReLU", "relu", (INPLACE,), gap=("activation", {})),
    _kind("Sigmoid", "sigmoid"),
    _kind("Tanh", "tanh"),
    _kind("LeakyReLU", "leakyrelu", (_a("negative_slope", float, code="slope", label="model.arg.negative_slope"),
                                     INPLACE),
          edit=("negative_slope",), start={"negative_slope": 0.01}),
    _kind("ELU", "elu", (_a("alpha", float, code="alpha", label="model.arg.alpha"), INPLACE),
          edit=("alpha",), start={"alpha": 1.0}),
    _kind("Dropout", "dropout", (_a("p", float, code="p", label="model.arg.p"), INPLACE), _dropout_shape,
          edit=("p",), start={"p": 0.5}),
    _kind("BatchNorm2d", "batchnorm", (_a("num_features", int, minimum=1, label="model.arg.num_features"),
                                       _a("eps", float, code="eps"), _a("momentum", float, code="momentum",
                                                                        nullable=True)),
          _batchnorm_shape, params=_batchnorm_params, needs="image", fits="num_features", edit=("num_features",),
          start={"num_features": 32}, recognise=_batchnorm_from),
    _kind("Flatten", "flatten", (), _flatten_shape),
    _kind("Linear", "linear", (_a("in_features", int, minimum=1, label="model.arg.in_features"),
                               _a("out_features", int, minimum=1, label="model.arg.out_features"), BIAS),
          _linear_shape, params=_linear_params, needs="flat", fits="in_features",
          edit=("in_features", "out_features"), start={"in_features": 1024, "out_features": 10},
          recognise=_linear_from),
)}
BY_CODE: dict[str, LayerKind] = {k.code: k for k in KINDS.values()}


def get(name: str) -> LayerKind:
    """The entry for a torch.nn class name; CourseError("model.unknown_kind") for any other."""
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise CourseError("model.unknown_kind", "unknown layer type {kind}", kind=str(name)[:40])
    return kind


def recognise(tensors: dict[str, torch.Tensor]) -> tuple[str, dict[str, Any]] | None:
    """(kind, args) of the layer whose state_dict entries (`weight`, `bias`, ...) these are, or None."""
    for kind in KINDS.values():
        if kind.recognise is not None:
            args = kind.recognise(tensors)
            if args is not None:
                return kind.name, args
    return None


def gap_fillers() -> dict[str, tuple[str, dict[str, Any]]]:
    """role ("pool", "activation") → (kind, args): what a layer without tensors is guessed to be."""
    return {k.gap[0]: (k.name, dict(k.gap[1])) for k in KINDS.values() if k.gap is not None}


# ---------------------------------------------------------------------------------------------
# A builder link: the network as short, URL-safe text.
#
#   conv_3_32_5_p2-maxpool_2-conv_32_32_5_p2-maxpool_2-conv_32_64_5_p2-maxpool_2-flatten-linear_1024_64-linear_64_10
#
# Layers are joined by `-`; in a layer, `_` separates the kind's link name, its required arguments by
# position (as the course writes them) and the others as letters + value (`p2`, `s2`, `ceil1`, `bias0`,
# `p0.2` for Dropout). A pair is `3x5`, true/false `1`/`0`, None the letters alone. A named layer (note
# 003's OrderedDict form) is `conv1~conv_3_32_5_p2`. Only letters, digits and `-_.~`: nothing a URL
# escapes, so the address bar shows it as written. Arguments equal to torch's defaults are left out.

MAX_LINK_CHARS = 2_000
MAX_TOKENS = 12  # per layer: the kind, its required arguments, the others
MAX_LINK_INT = 10**9
MAX_LINK_FLOAT = 1e6
_LAYER_SPLIT = re.compile(r"-(?=[A-Za-z_])")  # a `-` before a digit is a minus sign
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,59}")
_KEYWORD = re.compile(r"([a-z]+)(.*)")
_INT = re.compile(r"\d{1,10}", re.ASCII)
_PAIR = re.compile(r"(\d{1,10})x(\d{1,10})", re.ASCII)
_FLOAT = re.compile(r"-?(\d{1,12}(\.\d{0,17})?|\.\d{1,17})(e-?\d{1,3})?", re.ASCII)


def _value_text(arg: Arg, value: Any) -> str:
    if value is None:
        if arg.none_means or arg.nullable:
            return ""
    elif arg.type is bool and isinstance(value, bool):
        return "1" if value else "0"
    elif isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    elif arg.type is float and isinstance(value, float) and math.isfinite(value):
        text = repr(value).replace("e+", "e")
        return text[:-2] if text.endswith(".0") else text
    elif arg.type is int and isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        return f"{value[0]}x{value[1]}"
    raise ValueError(f"{arg.name}={value!r} cannot be written in a link")


def _layer_text(kind: LayerKind, args: Mapping[str, Any], name: str | None = None) -> str:
    """One layer as link text (`conv_3_32_5_p2`); ValueError for a value a link cannot hold."""
    parts = [kind.code]
    for arg in kind.args:
        if arg.required:
            if arg.name not in args:
                raise ValueError(f"{kind.name} needs {arg.name}")
            parts.append(_value_text(arg, args[arg.name]))
    for key, value in kind.canonical_args(args).items():
        arg = kind.arg(key)
        if arg is None:
            raise ValueError(f"{kind.name} has no link name for {key}")
        if not arg.required:
            parts.append(arg.code + _value_text(arg, value))
    return (f"{name}~" if name else "") + "_".join(parts)


def encode(layers: Iterable[tuple[str, Mapping[str, Any], str | None]]) -> str:
    """(kind, args, name) for each layer → `conv_3_32_5_p2-maxpool_2-...`; ValueError for what a link cannot hold."""
    return "-".join(_layer_text(get(kind), args, name) for kind, args, name in layers)


def _read_value(index: int, kind: LayerKind, arg: Arg, text: str) -> Any:
    if text == "" and (arg.none_means or arg.nullable):
        return None
    if arg.type is bool and text in ("0", "1"):
        return text == "1"
    lowest = arg.minimum or 0  # sizes a link carries are ones check_spec accepts
    if arg.type is int and _INT.fullmatch(text) and lowest <= int(text) <= MAX_LINK_INT:
        return int(text)
    if arg.type is int and _PAIR.fullmatch(text):
        pair_ = [int(v) for v in _PAIR.fullmatch(text).groups()]
        if lowest <= min(pair_) and max(pair_) <= MAX_LINK_INT:
            return pair_
    if arg.type is float and _FLOAT.fullmatch(text):
        value = float(text)
        if math.isfinite(value) and abs(value) <= MAX_LINK_FLOAT:
            return value
    raise CourseError("model.link_value", "layer ({index}) {layer}: {arg} cannot be {value!r}",
                      index=index, layer=kind.name, arg=arg.name, value=text[:24])


def _read_layer(index: int, text: str) -> tuple[str, dict[str, Any], str | None]:
    name, _, body = text.rpartition("~")
    if name and not _NAME.fullmatch(name):
        raise CourseError("model.link_name", "layer ({index}): {label!r} is not a layer name (letters, digits, _)",
                          index=index, label=name[:24])
    tokens = body.split("_")
    kind = BY_CODE.get(tokens[0])
    if kind is None:
        raise CourseError("model.link_kind", "layer ({index}): {word!r} is not a layer type; the types are {kinds}",
                          index=index, word=tokens[0][:24], kinds=", ".join(BY_CODE))
    if len(tokens) > MAX_TOKENS:
        raise CourseError("model.link_token", "layer ({index}) {layer}: {token!r} is not one of its arguments "
                          "({args})", index=index, layer=kind.name, token=tokens[MAX_TOKENS][:24],
                          args=_arg_list(kind))
    args: dict[str, Any] = {}
    required = [a for a in kind.args if a.required]
    by_code = {a.code: a for a in kind.args if not a.required}
    for token in tokens[1:]:
        keyword = _KEYWORD.fullmatch(token)
        arg = by_code.get(keyword.group(1)) if keyword else (required[0] if required else None)
        if arg is None or arg.name in args:
            raise CourseError("model.link_token", "layer ({index}) {layer}: {token!r} is not one of its arguments "
                              "({args})", index=index, layer=kind.name, token=token[:24], args=_arg_list(kind))
        if not keyword:
            required.pop(0)
        args[arg.name] = _read_value(index, kind, arg, keyword.group(2) if keyword else token)
    if required:
        raise CourseError("model.link_missing", "layer ({index}) {layer} needs {args} first",
                          index=index, layer=kind.name, args=", ".join(a.name for a in kind.args if a.required))
    return kind.name, args, name or None


def _arg_list(kind: LayerKind) -> str:
    return ", ".join([a.name for a in kind.args if a.required] + [a.code for a in kind.args if not a.required]) or "–"


def decode(text: str, max_layers: int) -> list[tuple[str, dict[str, Any], str | None]]:
    """Link text → (kind, args, name) for each layer. Length and layer count are checked before anything
    is parsed; CourseError (`model.link_*`, `model.too_many_layers`, `model.empty`) for anything else."""
    if not isinstance(text, str) or len(text) > MAX_LINK_CHARS:
        raise CourseError("model.link_too_long", "the network's text is longer than {limit} characters",
                          limit=MAX_LINK_CHARS)
    text = text.strip()
    if not text:
        raise CourseError("model.empty", "the network has no layers")
    pieces = _LAYER_SPLIT.split(text)
    if len(pieces) > max_layers:
        raise CourseError("model.too_many_layers", "{count} layers is more than the limit of {limit}",
                          count=len(pieces), limit=max_layers)
    layers = [_read_layer(i, piece) for i, piece in enumerate(pieces)]
    seen: set[str] = set()
    for index, (_, _, name) in enumerate(layers):
        if name in seen:
            raise CourseError("model.link_twice", "layer ({index}): the name {label!r} is used twice",
                              index=index, label=name)
        if name:
            seen.add(name)
    return layers
