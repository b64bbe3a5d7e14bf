"""Layer demos on real numbers and real images: the course's example grids, preset kernels,
feature maps, activations, Flatten/Linear shape walks and safe image uploads.

The arithmetic (sizes, step-by-step traces) lives in `dl_core.arithmetic`; this module only
applies real PyTorch layers and prepares what the layers lab shows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from dl_core import images, seeding
from dl_core.arithmetic import conv_output_size
from dl_core.errors import CourseError

# COURSE.md step 8: every set of notes uses this 5×5 input and 3×3 kernel.
COURSE_INPUT = [[1, 2, 0, 3, 1], [0, 1, 2, 3, 1], [1, 2, 1, 0, 0], [5, 2, 3, 1, 1], [2, 1, 0, 1, 1]]
COURSE_KERNEL = [[1, 2, 1], [0, 1, 0], [2, 1, 0]]
# The three course cases: (stride, padding) → the output the notes print.
COURSE_CASES = {
    "stride1": (1, 0),  # → [[10,12,12],[18,16,16],[13,9,3]]
    "stride2": (2, 0),  # → [[10,12],[13,3]]
    "padding1": (1, 1),  # → 5×5
}

# The multi-channel example: the course grid as the red channel, two small companions, and two
# kernels (so out_channels = 2), each with one 3×3 slice per input channel.
MULTI_INPUT = [
    COURSE_INPUT,
    [[0, 1, 1, 0, 2], [1, 0, 0, 1, 0], [2, 1, 0, 0, 1], [0, 0, 1, 2, 1], [1, 1, 0, 0, 0]],
    [[1, 0, 0, 1, 0], [0, 2, 1, 0, 1], [0, 1, 1, 1, 0], [1, 0, 0, 1, 2], [0, 1, 2, 0, 1]],
]
MULTI_WEIGHT = [
    [COURSE_KERNEL, [[0, 1, 0], [1, -1, 1], [0, 1, 0]], [[1, 0, -1], [1, 0, -1], [1, 0, -1]]],
    [[[0, 0, 0], [0, 1, 0], [0, 0, 0]], [[1, 1, 1], [1, 1, 1], [1, 1, 1]], [[-1, 0, 1], [0, 0, 0], [1, 0, -1]]],
]
MULTI_BIAS = [1, -2]

GRID_MAX = 12  # the lab's editable grids (and a link's): small enough to read every number

KERNEL_PRESETS = ("identity", "edges", "blur", "sharpen", "random")
ACTIVATIONS = ("ReLU", "Sigmoid", "Tanh", "LeakyReLU")

MAX_UPLOAD_BYTES = images.MAX_IMAGE_BYTES  # the app's one set of image limits (dl_core.images)
MAX_UPLOAD_PIXELS = images.MAX_IMAGE_PIXELS
DISPLAY_SIDE = 96  # uploads are shrunk so every layer runs in milliseconds


def preset_weight(name: str, in_channels: int = 3, out_channels: int = 3, kernel_size: int = 3,
                  seed: int = 0) -> torch.Tensor:
    """A Conv2d weight [out_channels, in_channels, k, k] for a named preset.

    identity/blur/sharpen: output channel o looks at input channel o % in_channels only, so
    Conv2d(3, 3, k) with them gives back a (blurred, sharpened) colour picture. edges: output
    channels cycle through horizontal, vertical and all-direction edge detectors on the grey
    image (each slice = kernel / in_channels). random: like nn.Conv2d's own initialisation.
    """
    if name not in KERNEL_PRESETS:
        raise CourseError("layers.preset", "unknown kernel preset {name}", name=name)
    if not (1 <= kernel_size <= 15 and 1 <= out_channels <= 64 and 1 <= in_channels <= 4):
        raise CourseError("layers.conv_settings", "in_channels 1..4, out_channels 1..64, kernel_size 1..15")
    k, k_center = kernel_size, kernel_size // 2
    weight = torch.zeros(out_channels, in_channels, k, k)
    if name == "random":
        gen = seeding.generator(seed)
        bound = 1 / math.sqrt(in_channels * k * k)  # nn.Conv2d's kaiming_uniform(a=√5) bound
        return (torch.rand(out_channels, in_channels, k, k, generator=gen) * 2 - 1) * bound
    for o in range(out_channels):
        if name == "edges":
            kernel = _edge_kernel(o % 3, k)
            weight[o] = kernel / in_channels
            continue
        plane = torch.zeros(k, k)
        if name == "identity":
            plane[k_center, k_center] = 1
        elif name == "blur":
            plane.fill_(1 / (k * k))
        else:  # sharpen: identity + (identity − blur), sums to 1 so flat areas keep their colour
            plane.fill_(-1 / (k * k))
            plane[k_center, k_center] += 2
        weight[o, o % in_channels] = plane
    return weight


def _edge_kernel(kind: int, k: int) -> torch.Tensor:
    if k == 1:
        return torch.ones(1, 1)
    if kind == 2:  # all directions: a Laplacian-like kernel that sums to 0
        plane = -torch.ones(k, k)
        plane[k // 2, k // 2] = k * k - 1
        return plane
    plane = torch.zeros(k, k)
    plane[:, : k // 2] = -1
    plane[:, k - k // 2:] = 1  # left dark → right bright gives a large output (Sobel-like)
    if k == 3:
        plane[1] *= 2
    return plane if kind == 0 else plane.T.contiguous()


def to_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 [C, H, W] → float [C, H, W] in 0..1, what ToTensor() gives."""
    return image.to(torch.float32) / 255


@dataclass(frozen=True, eq=False)
class ImageLayers:
    """One image through the course's layers: input [C,H,W] float 0..1 and each output."""

    input: torch.Tensor
    weight: torch.Tensor  # [out, C, k, k]
    conv: torch.Tensor  # [out, H', W'] Conv2d(C, out, k, padding) output
    conv_shape: tuple[int, ...]  # the batch-of-one shape, [1, out, H', W']
    maxpool: torch.Tensor  # [C, H/k, W/k] MaxPool2d(pool) on the input
    relu: torch.Tensor  # ReLU on the conv output (negative responses cut to 0)
    sigmoid: torch.Tensor  # Sigmoid on the conv output


def image_layers(image: torch.Tensor, preset: str, out_channels: int = 6, kernel_size: int = 3,
                 padding: int = 0, pool: int = 2, seed: int = 0) -> ImageLayers:
    """Conv2d(C, out_channels, kernel_size, padding) with a preset weight, then MaxPool/ReLU/Sigmoid.

    `image` is uint8 [C, H, W] (a dataset sample or an upload).
    """
    if image.dtype != torch.uint8 or image.dim() != 3:
        raise CourseError("layers.image_shape", "expected an image tensor uint8 [C, H, W], got {shape}",
                          shape=list(image.shape))
    x = to_float(image)
    c, h, w = x.shape
    conv_output_size(h, kernel_size, 1, padding)  # raises a clear error when the kernel is too large
    conv_output_size(w, kernel_size, 1, padding)
    conv_output_size(h, pool, pool, 0)
    conv_output_size(w, pool, pool, 0)
    weight = preset_weight(preset, c, out_channels, kernel_size, seed)
    layer = nn.Conv2d(c, out_channels, kernel_size, padding=padding, bias=False)
    with torch.no_grad():
        layer.weight.copy_(weight)
        out = layer(x[None])
        pooled = nn.MaxPool2d(pool)(x[None])[0]
    return ImageLayers(x, weight, out[0], tuple(out.shape), pooled, torch.relu(out[0]), torch.sigmoid(out[0]))


def feature_map_display(fmap: torch.Tensor) -> torch.Tensor:
    """[H, W] any range → [H, W] 0..1 (min-max per map, like TensorBoard's add_images would scale)."""
    lo, hi = float(fmap.min()), float(fmap.max())
    if hi - lo < 1e-12:
        return torch.full_like(fmap, 0.5)
    return (fmap - lo) / (hi - lo)


def course_reshape(conv_out: torch.Tensor) -> torch.Tensor:
    """The notes' `torch.reshape(output, (-1, 3, H, W))`: 6 channels → two 3-channel pictures.

    `conv_out` [out, H, W] with out divisible by 3 → [out/3, 3, H, W] (the channels are not
    colours any more; add_images just needs 3 of them to draw a picture).
    """
    out, h, w = conv_out.shape
    if out % 3:
        raise CourseError("layers.reshape", "{channels} channels cannot be reshaped to (-1, 3, {h}, {w})",
                          channels=out, h=h, w=w)
    return torch.reshape(conv_out, (-1, 3, h, w))


def activation(name: str, negative_slope: float = 0.01) -> nn.Module:
    """The course's activation modules by name."""
    if name == "ReLU":
        return nn.ReLU()
    if name == "Sigmoid":
        return nn.Sigmoid()
    if name == "Tanh":
        return nn.Tanh()
    if name == "LeakyReLU":
        return nn.LeakyReLU(negative_slope)
    raise CourseError("layers.activation", "unknown activation {name}", name=name)


def activation_curves(names: tuple[str, ...] = ACTIVATIONS, lo: float = -5, hi: float = 5, points: int = 201,
                      negative_slope: float = 0.01) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """x [points] and, for each activation, y = act(x) [points]."""
    x = torch.linspace(lo, hi, points)
    with torch.no_grad():
        return x, {n: activation(n, negative_slope)(x) for n in names}


def activation_on_image(image: torch.Tensor, name: str, normalize: bool = True, negative_slope: float = 0.01
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, act(x)) for an image uint8 [C,H,W]: x = ToTensor(img), then Normalize([0.5]*3, [0.5]*3) if asked.

    ToTensor gives 0..1, where ReLU changes nothing; after Normalize (-1..1) the dark half of
    the pixels is negative and ReLU visibly cuts it to 0.
    """
    x = to_float(image)
    if normalize:
        x = (x - 0.5) / 0.5
    with torch.no_grad():
        return x, activation(name, negative_slope)(x)


def inplace_demo() -> tuple[list[float], list[float], list[float], list[float]]:
    """The notes' inplace example: ReLU(inplace=False) keeps `input`, inplace=True overwrites it.

    Returns (input after inplace=False, output, input after inplace=True, output).
    """
    data = [1.0, -0.5, -1.0, 3.0]
    a = torch.tensor(data)
    out_a = nn.ReLU(inplace=False)(a)
    b = torch.tensor(data)
    out_b = nn.ReLU(inplace=True)(b)
    return a.tolist(), out_a.tolist(), b.tolist(), out_b.tolist()


@dataclass(frozen=True)
class ShapeStep:
    """One line of a shape walk: the layer, the shape it gives, its parameter count."""

    layer: str
    shape: tuple[int, ...]
    params: int


def flatten_linear_walk(batch: int = 64, channels: int = 3, height: int = 32, width: int = 32,
                        out_features: int = 10) -> tuple[ShapeStep, ...]:
    """[B,C,H,W] → nn.Flatten() → [B, C·H·W] → Linear(C·H·W, out) → [B, out], run for real on zeros."""
    for name, value in (("batch", batch), ("channels", channels), ("height", height), ("width", width),
                        ("out_features", out_features)):
        if not 1 <= value <= 4096:
            raise CourseError("layers.walk", "{name} must be between 1 and 4096, got {value}", name=name, value=value)
    if channels * height * width > 1_000_000:
        raise CourseError("layers.walk", "{name} must be between 1 and 4096, got {value}",
                          name="channels·height·width", value=channels * height * width)
    imgs = torch.zeros(batch, channels, height, width)
    flat = nn.Flatten()
    linear = nn.Linear(channels * height * width, out_features)
    with torch.no_grad():
        x1 = flat(imgs)
        x2 = linear(x1)
    n = sum(p.numel() for p in linear.parameters())
    return (
        ShapeStep("imgs", tuple(imgs.shape), 0),
        ShapeStep("nn.Flatten()", tuple(x1.shape), 0),
        ShapeStep(f"nn.Linear({channels * height * width}, {out_features})", tuple(x2.shape), n),
    )


def flatten_shapes(shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(torch.flatten(imgs).shape, torch.flatten(imgs, start_dim=1).shape), without allocating imgs."""
    total = math.prod(shape)
    return (total,), (shape[0], total // shape[0])


def decode_image(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, side: int = DISPLAY_SIDE) -> torch.Tensor:
    """An uploaded picture (PNG/JPEG/...) → uint8 [3, H, W], at most `side` pixels on its long side.

    `.convert("RGB")` as the course does (PNG may have 4 channels), through the app's one image
    intake (`dl_core.images`: byte, format and pixel caps before decoding; errors `image.*`).
    """
    rgb = images.read_image(data, max_bytes=max_bytes)
    rgb.thumbnail((side, side))
    pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return pixels.reshape(rgb.height, rgb.width, 3).permute(2, 0, 1).contiguous()


def sample_pattern(size: int = 64) -> torch.Tensor:
    """A built-in picture (uint8 [3, size, size]) with edges in every direction: a sun over a hill."""
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    img = torch.zeros(3, size, size)
    sky = ys < size * 0.6
    img[2] = torch.where(sky, 0.9, 0.2)
    img[1] = torch.where(sky, 0.7 - ys / size * 0.4, 0.6)
    img[0] = torch.where(sky, 0.4, 0.15)
    hill = (ys > size * 0.45 + 0.25 * size * torch.cos((xs / size) * math.pi * 1.5))
    img[:, hill] = torch.tensor([0.2, 0.65, 0.2])[:, None]
    sun = (ys - size * 0.25) ** 2 + (xs - size * 0.72) ** 2 < (size * 0.13) ** 2
    img[:, sun] = torch.tensor([1.0, 0.85, 0.1])[:, None]
    house = (ys > size * 0.55) & (ys < size * 0.85) & (xs > size * 0.15) & (xs < size * 0.4)
    img[:, house] = torch.tensor([0.85, 0.3, 0.25])[:, None]
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)
