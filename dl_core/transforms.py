"""Transforms: the course's Compose pipeline as data, run step by step over torchvision.transforms.v2.

A pipeline is a list of `Step`s (frozen, serialisable). `run_pipeline` feeds one PIL image
through it and reports, after every step, what the course's prints and TensorBoard would
show: the picture, its shape, dtype, min/max, layout (PIL HWC vs tensor CHW) and per-channel
histograms. Random steps are drawn N times from a per-call seed; the process's RNG is untouched.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from dl_core import images
from dl_core.errors import CourseError

KINDS = ("ToTensor", "Normalize", "Resize", "CenterCrop", "RandomCrop", "RandomHorizontalFlip",
         "RandomRotation", "ColorJitter", "Grayscale")
RANDOM_KINDS = frozenset({"RandomCrop", "RandomHorizontalFlip", "RandomRotation", "ColorJitter"})
DEFAULTS: dict[str, dict[str, Any]] = {
    "ToTensor": {},
    "Normalize": {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    "Resize": {"size": (64, 64)},
    "CenterCrop": {"size": 24},
    "RandomCrop": {"size": 32, "padding": 4},
    "RandomHorizontalFlip": {"p": 0.5},
    "RandomRotation": {"degrees": 30.0},
    "ColorJitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
    "Grayscale": {"num_output_channels": 1},
}
MAX_SIDE = 1024  # a Resize/crop beyond this would only make the page slow
HIST_BINS = 32


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class Step:
    """One transform: `kind` is the v2 class name (ToTensor = ToImage + ToDtype), `args` its arguments."""

    kind: str
    args: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, kind: str, **args: Any) -> "Step":
        """A step with DEFAULTS for every argument not given, checked."""
        if kind not in KINDS:
            raise CourseError("tf.unknown", "unknown transform {kind}", kind=kind)
        merged = {**DEFAULTS[kind], **args}
        step = cls(kind, tuple(sorted((k, _freeze(v)) for k, v in merged.items())))
        step.check()
        return step

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
        a = self.kwargs

        def bad(arg: str, rule: str) -> CourseError:
            return CourseError("tf.bad_arg", "{kind}: {arg} = {value} is not allowed ({rule})",
                               kind=self.kind, arg=arg, value=a.get(arg), rule=rule)

        if self.kind in ("Resize", "CenterCrop", "RandomCrop"):
            size = a["size"]
            sides = size if isinstance(size, tuple) else (size,)
            if len(sides) not in (1, 2) or any(not isinstance(s, int) or not 1 <= s <= MAX_SIDE for s in sides):
                raise bad("size", f"1..{MAX_SIDE}, one int or (h, w)")
        if self.kind == "RandomCrop" and not (isinstance(a["padding"], int) and 0 <= a["padding"] <= 256):
            raise bad("padding", "0..256")
        if self.kind == "RandomHorizontalFlip" and not 0 <= a["p"] <= 1:
            raise bad("p", "0..1")
        if self.kind == "RandomRotation" and not 0 <= a["degrees"] <= 180:
            raise bad("degrees", "0..180")
        if self.kind == "ColorJitter":
            for k in ("brightness", "contrast", "saturation"):
                if not 0 <= a[k] <= 5:
                    raise bad(k, "0..5")
            if not 0 <= a["hue"] <= 0.5:
                raise bad("hue", "0..0.5")
        if self.kind == "Grayscale" and a["num_output_channels"] not in (1, 3):
            raise bad("num_output_channels", "1 or 3")
        if self.kind == "Normalize":
            mean, std = a["mean"], a["std"]
            if len(mean) != len(std) or len(mean) not in (1, 3):
                raise bad("mean", "mean and std need 1 or 3 values each, the same count")
            if any(s <= 0 for s in std):
                raise bad("std", "every std must be > 0")

    def build(self):
        """The torchvision.transforms.v2 object for this step."""
        a = self.kwargs
        if self.kind == "ToTensor":
            return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
        if self.kind == "Normalize":
            return v2.Normalize(list(a["mean"]), list(a["std"]))
        if self.kind in ("Resize", "CenterCrop"):
            size = list(a["size"]) if isinstance(a["size"], tuple) else a["size"]
            return getattr(v2, self.kind)(size)
        if self.kind == "RandomCrop":
            size = list(a["size"]) if isinstance(a["size"], tuple) else a["size"]
            return v2.RandomCrop(size, padding=a["padding"] or None)
        if self.kind == "RandomHorizontalFlip":
            return v2.RandomHorizontalFlip(p=a["p"])
        if self.kind == "RandomRotation":
            return v2.RandomRotation(a["degrees"])
        if self.kind == "ColorJitter":
            return v2.ColorJitter(brightness=a["brightness"], contrast=a["contrast"],
                                  saturation=a["saturation"], hue=a["hue"])
        return v2.Grayscale(num_output_channels=a["num_output_channels"])

    def code(self) -> str:
        """The step as the course writes it inside `v2.Compose([...])`."""
        a = self.kwargs
        if self.kind == "ToTensor":
            return "v2.ToImage(), v2.ToDtype(torch.float32, scale=True)"
        if self.kind == "Normalize":
            return f"v2.Normalize({list(a['mean'])}, {list(a['std'])})"
        if self.kind in ("Resize", "CenterCrop"):
            return f"v2.{self.kind}({_size_code(a['size'])})"
        if self.kind == "RandomCrop":
            pad = f", padding={a['padding']}" if a["padding"] else ""
            return f"v2.RandomCrop({_size_code(a['size'])}{pad})"
        if self.kind == "RandomHorizontalFlip":
            return f"v2.RandomHorizontalFlip(p={a['p']})"
        if self.kind == "RandomRotation":
            return f"v2.RandomRotation({a['degrees']})"
        if self.kind == "ColorJitter":
            return ("v2.ColorJitter(brightness={brightness}, contrast={contrast}, saturation={saturation}, hue={hue})"
                    .format(**a))
        return f"v2.Grayscale(num_output_channels={a['num_output_channels']})"


def _size_code(size: int | tuple[int, ...]) -> str:
    return f"({size[0]}, {size[1]})" if isinstance(size, tuple) and len(size) == 2 else str(
        size[0] if isinstance(size, tuple) else size)


def compose(steps: list[Step]) -> v2.Compose:
    """The whole pipeline as one v2.Compose (what a Dataset's `transform=` gets)."""
    return v2.Compose([s.build() for s in steps])


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
    if step.kind == "Normalize":
        if isinstance(value, Image.Image):
            raise CourseError("tf.needs_tensor", "step {n} ({kind}) needs a tensor: put ToTensor before it",
                              n=index, kind=step.kind)
        channels = value.shape[0]
        if len(step.kwargs["mean"]) not in (1, channels):
            raise CourseError("tf.channels", "step {n} ({kind}) has {given} values but the image has {channels} channels",
                              n=index, kind=step.kind, given=len(step.kwargs["mean"]), channels=channels)
        if not value.is_floating_point():
            raise CourseError("tf.needs_float", "step {n} (Normalize) needs float values: ToTensor turns 0..255 into 0..1",
                              n=index)
    if step.kind == "RandomCrop":
        size = step.kwargs["size"]
        h, w = (size if isinstance(size, tuple) and len(size) == 2 else (size[0],) * 2 if isinstance(size, tuple)
                else (size, size))
        ih, iw = (value.height, value.width) if isinstance(value, Image.Image) else value.shape[-2:]
        pad = step.kwargs["padding"]
        if h > ih + 2 * pad or w > iw + 2 * pad:
            raise CourseError("tf.crop_too_big",
                              "step {n}: a {h}×{w} crop does not fit in {ih}×{iw} (+ padding {pad}); lower size or raise padding",
                              n=index, h=h, w=w, ih=ih, iw=iw, pad=pad)
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
    step), each under torch.manual_seed(f(seed, step, draw)) inside torch.random.fork_rng(), so the
    same seed shows the same pictures and the process-global RNG state is left as it was.
    """
    if not 1 <= draws <= 64:
        raise CourseError("tf.draws", "draws must be between 1 and 64, got {draws}", draws=draws)
    results = [_result(0, None, img, None, [], None)]
    value: Any = img
    norm = None
    with torch.random.fork_rng(devices=[]):
        for i, step in enumerate(steps, start=1):
            previous = value
            outputs = []
            for d in range(draws if step.random else 1):
                torch.manual_seed(seed * 100_003 + i * 1_009 + d)
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
