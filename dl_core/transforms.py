"""Transforms: the course's Compose pipeline as data, run step by step over torchvision.transforms.v2.

A pipeline is a list of `Step`s (frozen, serialisable). Every step kind is one entry of `KIND_TABLE`:
its v2 class, its arguments (defaults, limits, the editor's widget, its letter in a link), whether it
is random, how it is built and how the course writes it. The Data page's editor, its link
(`pipeline_text` / `read_pipeline`), generated code and `run_pipeline` all read that table.

`run_pipeline` feeds one PIL image through a pipeline and reports, after every step, what the
course's prints and TensorBoard would show: the picture, its shape, dtype, min/max, layout (PIL HWC
vs tensor CHW) and per-channel histograms. Random steps are drawn N times from a per-call seed
(dl_core.seeding); the process's RNG is untouched.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from dl_core import images, seeding
from dl_core.errors import CourseError

MAX_SIDE = 1024  # a Resize/crop beyond this would only make the page slow
MAX_STEPS = 16  # a pipeline longer than this teaches nothing more (the editor and links stop here)
HIST_BINS = 32
DECIMALS = 6  # float arguments are kept to 6 decimals: sliders' 0.15000000000000002 reads 0.15


# ---------------------------------------------------------------------------------------------
# The step kinds

@dataclass(frozen=True)
class Arg:
    """One argument of a step kind: torchvision's keyword, its default and limits, its widget and link form.

    kind: "size" (an int or (h, w) in lo..hi), "int", "float", "floats" (1 or 3 values, for Normalize),
    "choice" (one of `choices`). Every limit is >= 0, so a link never needs a minus sign.
    """

    name: str
    default: Any
    kind: str
    lo: float = 0
    hi: float = 0
    step: float = 1  # the editor's step (sliders)
    choices: tuple[int, ...] = ()
    tag: str = ""  # its letters in a link (`p` in `randomcrop_32_p4`); "": the step's first, untagged value
    widget: str = ""  # the editor's widget key: data.tf_<id>_<widget>

    def rule(self) -> str:
        """The limits as the error message says them."""
        span = f"{_number_text(self.lo)}..{_number_text(self.hi)}"
        return {"size": f"{span}, one int or (h, w)", "floats": f"1 or 3 values, each {span}",
                "choice": " or ".join(str(c) for c in self.choices)}.get(self.kind, span)

    def clean(self, kind: str, value: Any) -> Any:
        """`value` checked against the limits, in its one stored form (tuples, rounded floats), or CourseError."""
        try:
            cleaned = _CLEAN[self.kind](self, value)
        except (TypeError, ValueError, OverflowError):
            cleaned = None
        if cleaned is None:
            raise CourseError("tf.bad_arg", "{kind}: {arg} = {value} is not allowed ({rule})",
                              kind=kind, arg=self.name, value=str(value)[:40], rule=self.rule())
        return cleaned


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _clean_int(arg: Arg, value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and arg.lo <= value <= arg.hi
    return int(value) if ok else None


def _clean_float(arg: Arg, value: Any) -> float | None:
    return round(float(value), DECIMALS) if _is_number(value) and arg.lo <= value <= arg.hi else None


def _clean_floats(arg: Arg, value: Any) -> tuple[float, ...] | None:
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    cleaned = tuple(_clean_float(arg, v) for v in values)
    return cleaned if len(cleaned) in (1, 3) and None not in cleaned else None


def _clean_size(arg: Arg, value: Any) -> int | tuple[int, int] | None:
    if isinstance(value, (list, tuple)):
        sides = tuple(_clean_int(arg, v) for v in value)
        if None in sides or len(sides) not in (1, 2):
            return None
        return sides[0] if len(sides) == 1 else sides  # (h,) is torchvision's h
    return _clean_int(arg, value)


_CLEAN: dict[str, Callable[[Arg, Any], Any]] = {
    "int": _clean_int, "float": _clean_float, "floats": _clean_floats, "size": _clean_size,
    "choice": lambda arg, value: value if value in arg.choices and not isinstance(value, bool) else None,
}


@dataclass(frozen=True)
class StepKind:
    """One step kind: what the editor, links, generated code and run_pipeline know about it."""

    name: str  # the v2 class name (ToTensor = ToImage + ToDtype, the course's transforms.ToTensor())
    title_key: str  # catalog key of its short description
    args: tuple[Arg, ...]
    random: bool
    build: Callable[[dict[str, Any]], Any]  # kwargs -> the v2 transform
    code: Callable[[dict[str, Any]], str]  # kwargs -> the course's text inside v2.Compose([...])
    rule: Callable[[dict[str, Any]], tuple[str, str] | None] = lambda a: None  # (arg, why) across arguments
    before: Callable[[dict[str, Any], int, Any], None] = lambda a, n, value: None  # checks on the input
    note: str = ""  # a comment beside it in generated code

    @property
    def token(self) -> str:
        """Its name in a link: `randomcrop`."""
        return self.name.lower()

    @property
    def defaults(self) -> dict[str, Any]:
        return {a.name: a.default for a in self.args}


def _size(value: int | tuple[int, int]) -> int | list[int]:
    return list(value) if isinstance(value, tuple) else value


def _size_code(size: int | tuple[int, int]) -> str:
    return f"({size[0]}, {size[1]})" if isinstance(size, tuple) else str(size)


def _normalize_rule(a: dict[str, Any]) -> tuple[str, str] | None:
    if len(a["mean"]) != len(a["std"]):
        return "mean", "mean and std need 1 or 3 values each, the same count"
    if any(s <= 0 for s in a["std"]):
        return "std", "every std must be > 0"
    return None


def _normalize_before(a: dict[str, Any], n: int, value: Any) -> None:
    if isinstance(value, Image.Image):
        raise CourseError("tf.needs_tensor", "step {n} ({kind}) needs a tensor: put ToTensor before it",
                          n=n, kind="Normalize")
    channels = value.shape[0]
    if len(a["mean"]) not in (1, channels):
        raise CourseError("tf.channels", "step {n} ({kind}) has {given} values but the image has {channels} channels",
                          n=n, kind="Normalize", given=len(a["mean"]), channels=channels)
    if not value.is_floating_point():
        raise CourseError("tf.needs_float", "step {n} (Normalize) needs float values: ToTensor turns 0..255 into 0..1",
                          n=n)


def _crop_before(a: dict[str, Any], n: int, value: Any) -> None:
    h, w = a["size"] if isinstance(a["size"], tuple) else (a["size"], a["size"])
    ih, iw = (value.height, value.width) if isinstance(value, Image.Image) else value.shape[-2:]
    pad = a["padding"]
    if h > ih + 2 * pad or w > iw + 2 * pad:
        raise CourseError("tf.crop_too_big",
                          "step {n}: a {h}×{w} crop does not fit in {ih}×{iw} (+ padding {pad}); "
                          "lower size or raise padding",
                          n=n, h=h, w=w, ih=ih, iw=iw, pad=pad)


def _size_arg(default: int | tuple[int, int]) -> Arg:
    return Arg("size", default, "size", 1, MAX_SIDE, widget="size")


def _jitter_arg(name: str, hi: float) -> Arg:
    return Arg(name, 0.1 if name == "hue" else 0.4, "float", 0, hi, 0.05, tag=name[0], widget=name)


KIND_TABLE: tuple[StepKind, ...] = (
    StepKind("ToTensor", "data.tf.kind.ToTensor", (), False,
             lambda a: v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]),
             lambda a: "v2.ToImage(), v2.ToDtype(torch.float32, scale=True)",
             note="= transforms.ToTensor(): PIL HWC 0..255 → tensor CHW 0..1"),
    StepKind("Normalize", "data.tf.kind.Normalize",
             (Arg("mean", (0.5, 0.5, 0.5), "floats", 0, 1, widget="preset"),
              Arg("std", (0.5, 0.5, 0.5), "floats", 0, 10, tag="s", widget="preset")), False,
             lambda a: v2.Normalize(list(a["mean"]), list(a["std"])),
             lambda a: f"v2.Normalize({list(a['mean'])}, {list(a['std'])})", _normalize_rule, _normalize_before),
    StepKind("Resize", "data.tf.kind.Resize", (_size_arg((64, 64)),), False,
             lambda a: v2.Resize(_size(a["size"])), lambda a: f"v2.Resize({_size_code(a['size'])})"),
    StepKind("CenterCrop", "data.tf.kind.CenterCrop", (_size_arg(24),), False,
             lambda a: v2.CenterCrop(_size(a["size"])), lambda a: f"v2.CenterCrop({_size_code(a['size'])})"),
    StepKind("RandomCrop", "data.tf.kind.RandomCrop",
             (_size_arg(32), Arg("padding", 4, "int", 0, 256, tag="p", widget="pad")), True,
             lambda a: v2.RandomCrop(_size(a["size"]), padding=a["padding"] or None),
             lambda a: f"v2.RandomCrop({_size_code(a['size'])}" + (f", padding={a['padding']})" if a["padding"]
                                                                   else ")"),
             before=_crop_before),
    StepKind("RandomHorizontalFlip", "data.tf.kind.RandomHorizontalFlip",
             (Arg("p", 0.5, "float", 0, 1, 0.05, widget="p"),), True,
             lambda a: v2.RandomHorizontalFlip(p=a["p"]), lambda a: f"v2.RandomHorizontalFlip(p={a['p']})"),
    StepKind("RandomRotation", "data.tf.kind.RandomRotation",
             (Arg("degrees", 30.0, "float", 0, 180, 5.0, widget="deg"),), True,
             lambda a: v2.RandomRotation(a["degrees"]), lambda a: f"v2.RandomRotation({a['degrees']})"),
    StepKind("ColorJitter", "data.tf.kind.ColorJitter",
             (_jitter_arg("brightness", 5), _jitter_arg("contrast", 5), _jitter_arg("saturation", 5),
              _jitter_arg("hue", 0.5)), True,
             lambda a: v2.ColorJitter(**a),
             lambda a: "v2.ColorJitter(brightness={brightness}, contrast={contrast}, saturation={saturation}, "
                       "hue={hue})".format(**a)),
    StepKind("Grayscale", "data.tf.kind.Grayscale",
             (Arg("num_output_channels", 1, "choice", choices=(1, 3), widget="ch"),), False,
             lambda a: v2.Grayscale(num_output_channels=a["num_output_channels"]),
             lambda a: f"v2.Grayscale(num_output_channels={a['num_output_channels']})"),
)
STEP_KINDS: dict[str, StepKind] = {k.name: k for k in KIND_TABLE}
KINDS = tuple(STEP_KINDS)
RANDOM_KINDS = frozenset(k.name for k in KIND_TABLE if k.random)
DEFAULTS: dict[str, dict[str, Any]] = {k.name: k.defaults for k in KIND_TABLE}


def step_kind(kind: str) -> StepKind:
    if kind not in STEP_KINDS:
        raise CourseError("tf.unknown", "unknown transform {kind}", kind=str(kind)[:40])
    return STEP_KINDS[kind]


@dataclass(frozen=True)
class Step:
    """One transform: `kind` is the v2 class name (ToTensor = ToImage + ToDtype), `args` its arguments."""

    kind: str
    args: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, kind: str, **args: Any) -> "Step":
        """A step with the kind's defaults for every argument not given, checked (CourseError tf.*)."""
        entry = step_kind(kind)
        unknown = sorted(set(args) - set(entry.defaults))
        if unknown:
            raise CourseError("tf.bad_arg", "{kind}: {arg} = {value} is not allowed ({rule})", kind=kind,
                              arg=unknown[0], value=str(args[unknown[0]])[:40],
                              rule=", ".join(entry.defaults) or "no arguments")
        values = {a.name: a.clean(kind, args.get(a.name, a.default)) for a in entry.args}
        broken = entry.rule(values)
        if broken is not None:
            arg, why = broken
            raise CourseError("tf.bad_arg", "{kind}: {arg} = {value} is not allowed ({rule})",
                              kind=kind, arg=arg, value=values[arg], rule=why)
        return cls(kind, tuple(sorted(values.items())))

    @property
    def entry(self) -> StepKind:
        return step_kind(self.kind)

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.args)

    @property
    def random(self) -> bool:
        return self.kind in RANDOM_KINDS

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "args": {k: list(v) if isinstance(v, tuple) else v for k, v in self.args}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Step":
        return cls.make(str(d["kind"]), **dict(d.get("args", {})))

    def check(self) -> None:
        """CourseError("tf.bad_arg") for an argument torchvision would reject (or that makes no sense here)."""
        Step.make(self.kind, **self.kwargs)

    def build(self):
        """The torchvision.transforms.v2 object for this step."""
        return self.entry.build(self.kwargs)

    def code(self) -> str:
        """The step as the course writes it inside `v2.Compose([...])`."""
        return self.entry.code(self.kwargs)


COURSE_PIPELINE = (Step.make("ToTensor"), Step.make("Normalize"))  # the course's Compose: the editor's start


def compose(steps: Sequence[Step]) -> v2.Compose:
    """The whole pipeline as one v2.Compose (what a Dataset's `transform=` gets)."""
    return v2.Compose([s.build() for s in steps])


# ---------------------------------------------------------------------------------------------
# A pipeline in a link: `resize_64x48-randomcrop_32_p4-totensor-normalize_0.5x0.5x0.5`
#
# Steps are joined by `-`, a step's fields by `_`: its kind in lower case, then its values. The first
# argument is written bare, always; the others with their letter (`p4`: padding 4) when not the default.
# Pairs and lists join with `x` (`64x48`, `0.49x0.48x0.45`). Only letters, digits, `.`, `_` and `-`:
# nothing a browser or a chat program escapes. No value is negative, so `-` only ever separates steps.

NO_STEPS = "none"  # the empty pipeline
_FIELD = re.compile(r"([a-z]*)([0-9.x]*)")
_NUMBER = re.compile(r"[0-9]{1,7}(\.[0-9]{1,12})?")
MAX_STEP_CHARS = 120  # the longest real step, normalize with 3 + 3 six-decimal values, is under 70
MAX_FIELDS = 5  # fields after the kind (ColorJitter has 4 arguments)


def _number_text(value: float) -> str:
    """The shortest text that reads back as the same number, never in exponent form (`1e-05` has a `-`)."""
    value = float(value)
    if value.is_integer():
        return str(int(value))
    text = repr(value)
    return format(Decimal(text), "f") if "e" in text else text


def _value_text(arg: Arg, value: Any) -> str:
    if arg.kind in ("float", "floats"):
        values = value if isinstance(value, tuple) else (value,)
        return "x".join(_number_text(v) for v in values)
    if arg.kind == "size" and isinstance(value, tuple):
        return f"{value[0]}x{value[1]}"
    return str(value)


def pipeline_text(steps: Sequence[Step]) -> str:
    """A pipeline as a link writes it (`read_pipeline` reads it back to the same steps)."""
    if not steps:
        return NO_STEPS
    parts = []
    for step in steps:
        fields = [step.entry.token]
        for arg in step.entry.args:
            value = step.kwargs[arg.name]
            if not arg.tag or value != arg.default:
                fields.append(arg.tag + _value_text(arg, value))
        parts.append("_".join(fields))
    return "-".join(parts)


def _read_value(arg: Arg, text: str) -> Any:
    """The value's text (no letters) as the argument's type, or None; its limits are Step.make's."""
    items = text.split("x")
    if not all(_NUMBER.fullmatch(i) for i in items) or len(items) > (3 if arg.kind == "floats" else 2):
        return None
    if arg.kind in ("float", "floats"):
        values = tuple(float(i) for i in items)
        return values if arg.kind == "floats" else values[0] if len(values) == 1 else None
    if not all(i.isdigit() for i in items):
        return None
    whole = tuple(int(i) for i in items)
    return whole if arg.kind == "size" and len(whole) == 2 else whole[0] if len(whole) == 1 else None


def _read_step(n: int, text: str) -> Step:
    fields = text.split("_")
    entry = next((k for k in KIND_TABLE if k.token == fields[0].lower()), None)
    if entry is None:
        raise CourseError("link.tf_kind", "step {n}: {text!r} is not a transform; one of {known}", n=n,
                          text=fields[0][:20], known=", ".join(k.token for k in KIND_TABLE))
    by_tag = {a.tag: a for a in entry.args}
    given: dict[str, Any] = {}
    for field_text in fields[1:]:
        match = _FIELD.fullmatch(field_text.lower())
        arg = by_tag.get(match.group(1)) if match else None
        if arg is None or arg.name in given:
            raise CourseError("link.tf_arg", "step {n} ({kind}): {field!r} is not one of its arguments ({expected})",
                              n=n, kind=entry.token, field=field_text[:20],
                              expected=" ".join(f"{a.tag}<{a.name}>" for a in entry.args) or "-")
        value = _read_value(arg, match.group(2))
        if value is None:
            raise CourseError("link.tf_value", "step {n} ({kind}): {field!r} is not a valid {arg} ({rule})",
                              n=n, kind=entry.token, field=field_text[:20], arg=arg.name, rule=arg.rule())
        given[arg.name] = value
    return Step.make(entry.name, **given)  # the limits: CourseError tf.bad_arg


def read_pipeline(text: str) -> tuple[Step, ...]:
    """A link's pipeline (`pipeline_text`'s form); CourseError naming what is wrong. Sizes are checked first:
    at most MAX_STEPS steps, each at most a few short fields, ASCII only."""
    text = text.strip()
    if text.lower() == NO_STEPS:
        return ()
    if not text or not text.isascii() or not re.fullmatch(r"[A-Za-z0-9._\-]+", text):
        raise CourseError("link.tf_chars", "a pipeline is written with letters, digits, `.`, `_` and `-` "
                          "(e.g. resize_32-totensor)")
    if text.count("-") >= MAX_STEPS:
        raise CourseError("link.tf_steps", "a pipeline has at most {limit} steps", limit=MAX_STEPS)
    parts = text.split("-")
    for n, part in enumerate(parts, start=1):
        if len(part) > MAX_STEP_CHARS or part.count("_") > MAX_FIELDS:
            raise CourseError("link.tf_long", "step {n} is too long", n=n)
    return tuple(_read_step(n, part) for n, part in enumerate(parts, start=1))


# ---------------------------------------------------------------------------------------------
# Running a pipeline on one picture

@dataclass
class StepResult:
    """What one step produced (index 0 is the input picture itself, `step` None)."""

    index: int
    step: Step | None
    value: Any  # PIL.Image.Image or torch.Tensor, exactly what the step returned
    is_tensor: bool
    shape: tuple[int, ...]  # tensor.shape, or PIL's (H, W, C) as numpy would see it
    pil_size: tuple[int, int] | None  # PIL's img.size (W, H), None for tensors
    layout: str  # "HWC" (PIL) | "CHW" (tensor)
    dtype: str  # "uint8" (PIL) | "torch.float32" ...
    vmin: float
    vmax: float
    display: np.ndarray  # uint8 HWC picture to show (normalized tensors de-normalized with the mean/std)
    denormalized: bool  # display was made with x*std+mean
    hist_edges: np.ndarray  # [bins+1]
    hist_counts: np.ndarray  # [channels, bins]
    draws: list[np.ndarray] = field(default_factory=list)  # uint8 HWC, one per draw (random steps)
    layout_changed: bool = False  # PIL HWC → tensor CHW happened at this step


def _as_display(value: Any, norm: tuple[tuple[float, ...], tuple[float, ...]] | None) -> tuple[np.ndarray, bool]:
    if isinstance(value, Image.Image):
        arr = np.asarray(value.convert("RGB") if value.mode not in ("RGB", "L") else value)
        return (arr if arr.ndim == 3 else np.repeat(arr[..., None], 3, axis=2)), False
    x = value.detach().float()
    if not value.is_floating_point():
        x = x / 255  # a uint8 tensor (ToImage without ToDtype): show it on the same scale
    denorm = False
    if norm is not None:
        mean, std = (torch.tensor(v, dtype=torch.float32).view(-1, 1, 1) for v in norm)
        if mean.shape[0] in (1, x.shape[0]):
            x, denorm = x * std + mean, True  # the course's img * 0.5 + 0.5
    x = x.clamp(0, 1)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), denorm


def _stats(value: Any) -> tuple[tuple[int, ...], tuple[int, int] | None, str, str, np.ndarray]:
    """shape, PIL size, layout, dtype, and the values as float [C, H, W] for min/max/histograms."""
    if isinstance(value, Image.Image):
        arr = np.asarray(value)
        chw = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        return tuple(arr.shape), value.size, "HWC", "uint8", chw.astype(np.float32)
    x = value.detach()
    return tuple(x.shape), None, "CHW", str(x.dtype), x.float().numpy()


def _histograms(chw: np.ndarray, is_float: bool) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = (float(chw.min()), float(chw.max())) if is_float else (0.0, 256.0)
    if hi <= lo:
        hi = lo + 1e-6
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    counts = np.stack([np.histogram(c, bins=edges)[0] for c in chw])
    return edges, counts


def _result(index: int, step: Step | None, value: Any, norm, draws: list[np.ndarray], prev_layout: str | None) -> StepResult:
    shape, pil_size, layout, dtype, chw = _stats(value)
    display, denorm = _as_display(value, norm)
    edges, counts = _histograms(chw, layout == "CHW")
    return StepResult(index, step, value, layout == "CHW", shape, pil_size, layout, dtype,
                      float(chw.min()), float(chw.max()), display, denorm, edges, counts,
                      draws or [display], prev_layout == "HWC" and layout == "CHW")


def _apply(step: Step, index: int, value: Any) -> Any:
    """One step, with torchvision's complaints turned into messages a student can act on."""
    step.entry.before(step.kwargs, index, value)
    try:
        return step.build()(value)
    except CourseError:
        raise
    except Exception as exc:  # anything else torchvision refuses, with its own reason
        raise CourseError("tf.step_failed", "step {n} ({kind}) failed: {reason}",
                          n=index, kind=step.kind, reason=str(exc).splitlines()[0][:200]) from exc


def run_pipeline(img: Image.Image, steps: list[Step], seed: int = 0, draws: int = 1) -> list[StepResult]:
    """The input and every step's output, in order (len(steps) + 1 results).

    Random steps are applied `draws` times to the same input (the first draw flows on to the next
    step), each under `seeding.seeded(f(seed, step, draw))`, so the same seed shows the same pictures
    and the process-global RNG state is left as it was.
    """
    if not 1 <= draws <= 64:
        raise CourseError("tf.draws", "draws must be between 1 and 64, got {draws}", draws=draws)
    results = [_result(0, None, img, None, [], None)]
    value: Any = img
    norm = None
    for i, step in enumerate(steps, start=1):
        previous = value
        outputs = []
        for d in range(draws if step.random else 1):
            with seeding.seeded(seed * 100_003 + i * 1_009 + d):  # random parameters come from the global RNG
                outputs.append(_apply(step, i, previous))
        value = outputs[0]
        if step.kind == "Normalize":
            norm = (step.kwargs["mean"], step.kwargs["std"])
        elif step.kind == "ToTensor":
            norm = None
        pictures = [_as_display(o, norm)[0] for o in outputs] if step.random else []
        results.append(_result(i, step, value, norm, pictures, results[-1].layout))
    return results


def open_image(data: bytes, max_bytes: int = images.MAX_IMAGE_BYTES,
               max_pixels: int = images.MAX_IMAGE_PIXELS) -> Image.Image:
    """An uploaded picture as an RGB PIL image, the course's `Image.open(path).convert("RGB")`,
    through the app's one image intake (`dl_core.images`; errors `image.*`)."""
    return images.read_image(data, max_bytes=max_bytes, max_pixels=max_pixels)


def channel_mean_std(value: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of one CHW tensor (what Normalize(mean, std) would subtract/divide)."""
    x = value.detach().float().flatten(1)
    return x.mean(1).tolist(), x.std(1, unbiased=False).tolist()
