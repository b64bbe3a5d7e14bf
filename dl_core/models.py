"""The network as data: a serialisable Sequential spec, the course's CNN, and building it.

Also: presets sized for the selected dataset (`preset`), the shape arithmetic that checks a spec
before anything is allocated (`check_spec`, errors naming the layer and the value it needs, and
the one-click `fix_spec`), the per-layer table from a real forward pass (`summarize`), and
feature maps (`layer_outputs`). What each layer kind is and does (arguments, shape rule, printed
and code form) lives in `dl_core.layer_kinds`; sizes come from `dl_core.arithmetic.conv_output_size`,
the project's one copy of the formula.
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dl_core import layer_kinds, seeding
from dl_core.arithmetic import conv_output_size, size_formula
from dl_core.errors import CourseError
from dl_core.layer_kinds import KINDS, fmt_shape

# Layer kinds a spec may use: torch.nn class names (one entry each in dl_core.layer_kinds.KINDS).
LAYER_KINDS = tuple(KINDS)


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
        layer_kinds.get(kind)  # model.unknown_kind
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

    @property
    def named(self) -> bool:
        """Every layer has a name: the OrderedDict form (`nn.Sequential(OrderedDict(conv1=...))`)."""
        return bool(self.layers) and all(layer.name for layer in self.layers)

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

    def to_text(self) -> str:
        """The network as a builder link's short text (`conv_3_32_5_p2-maxpool_2-...`, see
        `layer_kinds.encode`); ValueError for a value a link cannot hold."""
        return layer_kinds.encode((x.kind, x.args, x.name) for x in self.layers)

    @classmethod
    def from_text(cls, text: str) -> "ModelSpec":
        """A network from a builder link's text. Its length and layer count are checked before it is
        read, its parameter count (from the arguments alone, MAX_PARAMETERS) before anything is built;
        CourseError (`model.link_*`, `model.too_many_layers`, `model.too_big`, ...) for anything wrong."""
        spec = cls(tuple(LayerSpec(kind, args, name) for kind, args, name in layer_kinds.decode(text, MAX_LAYERS)))
        total = 0
        for layer in spec.layers:
            total += max(KINDS[layer.kind].parameter_count(layer.args) or 0, 0)
            if total > MAX_PARAMETERS:
                raise CourseError("model.too_big", "{params} parameters is more than the limit of {limit}",
                                  params=f"{total:,}", limit=f"{MAX_PARAMETERS:,}")
        return spec


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
    """One torch.nn layer from its spec (model.unknown_kind, model.bad_args for what torch refuses)."""
    return layer_kinds.get(layer.kind).build(layer.args)


def build_model(spec: ModelSpec) -> nn.Sequential:
    """nn.Sequential(*layers); the OrderedDict form when every layer has a name (note 003)."""
    if not spec.layers:
        raise CourseError("model.empty", "the network has no layers")
    modules = [build_layer(layer) for layer in spec.layers]
    if spec.named:
        return nn.Sequential(OrderedDict((layer.name, m) for layer, m in zip(spec.layers, modules)))
    return nn.Sequential(*modules)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Sum of numel over parameters (the course's 145,578)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def build_model_seeded(spec: ModelSpec, seed: int = 0) -> nn.Sequential:
    """build_model with its random initial weights drawn from `seed`; the global RNG is left as it was."""
    with seeding.seeded(seed):
        return build_model(spec)


def print_model(spec: ModelSpec) -> str:
    """`print(model)` exactly as PyTorch prints it: each layer's printed form (its kind's), under its name."""
    if not spec.layers:
        raise CourseError("model.empty", "the network has no layers")
    lines = [f"  ({name}): {layer_kinds.get(layer.kind).printed(layer.args)}"
             for name, layer in zip(_layer_names(spec), spec.layers)]
    return "Sequential(\n" + "\n".join(lines) + "\n)"


def canonical(spec: ModelSpec) -> ModelSpec:
    """The same network with arguments equal to torch's defaults left out, so that two specs that
    build the same network compare equal (`Conv2d(..., stride=1)` == `Conv2d(...)`)."""
    layers = []
    for layer in spec.layers:
        kind = KINDS.get(layer.kind)
        args = kind.canonical_args(layer.args) if kind is not None else dict(layer.args)
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
                          shape=fmt_shape((in_channels, *image_size)))
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


@dataclass(frozen=True)
class LayerShape:
    """What one layer does to one image: output shape (no batch dim), parameters, multiply-adds."""

    index: int
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    formula: str = ""  # how the size came out: arithmetic.size_formula (conv, pooling), "64×4×4 = 1024" (Flatten)


def _layer_names(spec: ModelSpec) -> list[str]:
    if spec.named:
        return [str(x.name) for x in spec.layers]
    return [str(i) for i in range(len(spec.layers))]


def _check_network(spec: ModelSpec, input_shape: tuple[int, ...]) -> None:
    if not spec.layers:
        raise CourseError("model.empty", "the network has no layers")
    if len(spec.layers) > MAX_LAYERS:
        raise CourseError("model.too_many_layers", "{count} layers is more than the limit of {limit}",
                          count=len(spec.layers), limit=MAX_LAYERS)
    if len(input_shape) != 3 or min(int(s) for s in input_shape) < 1:
        raise CourseError("model.bad_input", "the input must have at least 1 channel and 1×1 pixels, got {shape}",
                          shape=fmt_shape(input_shape))


def _check_limits(index: int, kind: str, total: int, shape: tuple[int, ...]) -> None:
    if total > MAX_PARAMETERS:
        raise CourseError("model.too_big", "{params} parameters is more than the limit of {limit}",
                          params=f"{total:,}", limit=f"{MAX_PARAMETERS:,}")
    numel = math.prod(shape)
    if numel > MAX_ACTIVATION:
        raise CourseError("model.too_big_activation", "layer ({index}) {layer} outputs {numel} numbers per image, "
                          "more than the limit of {limit}", index=index, layer=kind, numel=f"{numel:,}",
                          limit=f"{MAX_ACTIVATION:,}")


def check_spec(spec: ModelSpec, input_shape: tuple[int, int, int]) -> list[LayerShape]:
    """Every layer's output shape for one C×H×W image, by arithmetic alone (nothing allocated).

    Each layer: its kind's arguments checked (`layer_kinds.resolve`), the input it needs, then its
    kind's shape rule. Raises CourseError naming the layer index and the expected value at the first
    problem, and `model.too_big` when the parameters would exceed MAX_PARAMETERS.
    """
    _check_network(spec, input_shape)
    names = _layer_names(spec)
    shape, flat_from = tuple(int(s) for s in input_shape), None
    rows: list[LayerShape] = []
    total = 0
    for i, layer in enumerate(spec.layers):
        kind = layer_kinds.get(layer.kind)
        args = layer_kinds.resolve(i, kind, layer.args)
        arriving = layer_kinds.Arriving(i, kind.name, shape, flat_from)
        layer_kinds.check_input(kind, arriving)
        out = kind.shape(arriving, args)
        params = kind.params(args) or 0
        total += params
        _check_limits(i, kind.name, total, out.shape)
        rows.append(LayerShape(i, names[i], kind.name, out.shape, params, out.macs, out.formula))
        shape, flat_from = out.shape, out.flat_from
    return rows


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
            if exc.code in layer_kinds.FIT_ERRORS:
                old = layers[i]
                fits = layer_kinds.get(old.kind).fits  # in_channels, num_features, in_features
                layers[i] = LayerSpec(old.kind, {**old.args, fits: exc.params["expected"]}, old.name)
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


def new_layer(kind: str, arriving: tuple[int, ...] | None = None, names: list[str | None] | None = None
              ) -> LayerSpec:
    """A layer to insert: its kind's starting arguments, fitted to the shape `arriving` where it goes
    (a Conv2d after 32 channels gets in_channels=32), and named `conv2d1`, `conv2d2`, ... when every
    layer already there (`names`) has a name (note 003's OrderedDict form)."""
    args = layer_kinds.get(kind).start_args(arriving)
    name = None
    if names and all(names):
        n = 1
        while f"{kind.lower()}{n}" in names:
            n += 1
        name = f"{kind.lower()}{n}"
    return LayerSpec(kind, args, name)


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
        rows.append((padding, out, size_formula(size, kernel_size, stride, padding)))
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
        raise CourseError("model.bad_image", "an image must be C×H×W, got {shape}", shape=fmt_shape(image.shape))
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
        raise CourseError("model.bad_image", "an image must be C×H×W, got {shape}", shape=fmt_shape(fmap.shape))
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
