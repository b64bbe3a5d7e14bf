"""Shapes-10: a built-in, offline, CIFAR-sized dataset of procedurally drawn 32×32 RGB shapes.

Every image is one shape (random colour, size, position, rotation) over a two-colour gradient
background with clutter (thin lines and small blobs) and pixel noise. Generation is vectorised
over whole chunks with torch and deterministic from a seed: chunk k of a split always gets the
same pictures, so the small split is exactly the first images of the full one.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dl_core import seeding

# Class name (what `dataset.classes` holds) -> catalog key of its name in each language (locales/data.json).
CLASS_KEYS = {
    "circle": "data.class.shapes10.circle", "ring": "data.class.shapes10.ring",
    "triangle": "data.class.shapes10.triangle", "square": "data.class.shapes10.square",
    "hexagon": "data.class.shapes10.hexagon", "star": "data.class.shapes10.star",
    "cross": "data.class.shapes10.cross", "heart": "data.class.shapes10.heart",
    "crescent": "data.class.shapes10.crescent", "arrow": "data.class.shapes10.arrow",
}
CLASSES = tuple(CLASS_KEYS)
SIZE = 32
CHUNK = 1000  # images per generator chunk: the unit of determinism and of progress reports
DEFAULT_SEED = 2026
_SS = 2  # supersampling factor: shapes are drawn at 64×64 and averaged down (anti-aliasing)


@dataclass(frozen=True)
class Style:
    """How hard the pictures are: the knobs the difficulty was calibrated with.

    The defaults were chosen so the course's recipe (course CNN, SGD lr 0.01, batch 64, no
    Normalize) reaches about 40-45 % test accuracy after epoch 1 and about 90 % after 6:
    plain SGD sits at chance for epochs on busier pictures (bright backgrounds, shapes anywhere).
    """

    lines: int = 3  # clutter: up to this many thin line segments ...
    line_p: float = 0.6  # ... each present with this probability
    blobs: int = 2  # clutter: small round blobs
    blob_p: float = 0.5
    radius: tuple[float, float] = (9.0, 14.0)  # shape size in pixels
    contrast: float = 0.6  # minimum colour distance between the shape and the background
    noise: float = 0.08  # maximum per-image Gaussian noise (0..1 scale)
    jitter: float | None = 4.0  # max distance (px) of the shape's centre from the image centre; None: anywhere it fits
    rotation: float = 30.0  # rotations drawn from ±rotation degrees
    background: float = 0.45  # background colours are drawn from 0..background (darker = more contrast)
    class_colour: float = 0.0  # share of shapes painted in their class's hue (like CIFAR's blue skies)


def _chunk_generator(seed: int, train: bool, chunk: int) -> torch.Generator:
    # One independent stream per (seed, split, chunk): results do not depend on how many
    # chunks were asked for, so shapes10 (small) is a prefix of shapes10-full.
    return seeding.generator(seed * 1_000_003 + (0 if train else 500_009) + chunk * 7_919)


def _uniform(g: torch.Generator, n: int, low: float, high: float, *shape: int) -> torch.Tensor:
    return torch.rand(n, *shape, generator=g) * (high - low) + low


def _regular_polygon(u: torch.Tensor, v: torch.Tensor, sides: int, radius: float = 1.0) -> torch.Tensor:
    """Inside a regular polygon with circumradius `radius` (one vertex pointing up)."""
    r = torch.sqrt(u * u + v * v)
    theta = torch.atan2(u, -v)  # 0 points up
    sector = 2 * math.pi / sides
    local = torch.remainder(theta, sector) - sector / 2
    return r * torch.cos(local) <= radius * math.cos(math.pi / sides)


def _star(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside a five-pointed star: the radius limit zig-zags between the inner and outer points."""
    r = torch.sqrt(u * u + v * v)
    theta = torch.atan2(u, -v)
    sector = 2 * math.pi / 5
    t = (torch.remainder(theta, sector) / sector - 0.5).abs() * 2  # 0 at a point, 1 between points
    limit = 1.0 - 0.58 * t
    return r <= limit


def _inside(label: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Boolean mask [n, H, W] of class `label`'s shape in canonical coordinates (fits radius 1)."""
    r2 = u * u + v * v
    if label == 0:  # circle
        return r2 <= 0.85**2
    if label == 1:  # ring
        return (r2 <= 0.95**2) & (r2 >= 0.55**2)
    if label == 2:  # triangle
        return _regular_polygon(u, v + 0.15, 3, 1.05)
    if label == 3:  # square
        return (u.abs() <= 0.7) & (v.abs() <= 0.7)
    if label == 4:  # hexagon
        return _regular_polygon(u, v, 6, 0.92)
    if label == 5:  # star
        return _star(u, v)
    if label == 6:  # cross
        return ((u.abs() <= 0.3) & (v.abs() <= 0.95)) | ((v.abs() <= 0.3) & (u.abs() <= 0.95))
    if label == 7:  # heart
        x, y = u * 1.25, -v * 1.25 + 0.25
        return (x * x + y * y - 1) ** 3 - x * x * y**3 <= 0
    if label == 8:  # crescent
        return (r2 <= 0.9**2) & ((u - 0.45) ** 2 + (v + 0.1) ** 2 >= 0.72**2)
    if label == 9:  # arrow
        shaft = (v.abs() <= 0.2) & (u >= -0.95) & (u <= 0.15)
        head = (u >= 0.05) & (u <= 0.95) & (v.abs() <= (0.95 - u) * 0.95)
        return shaft | head
    raise ValueError(f"Shapes-10 has classes 0..9, got {label}")


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """[n] hue, saturation, value in 0..1 → [n, 3] RGB (the textbook formula, vectorised)."""
    k = (torch.tensor([5.0, 3.0, 1.0]) + h[:, None] * 6) % 6
    return v[:, None] - v[:, None] * s[:, None] * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def _grid(ss: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates [1, 32*ss, 32*ss] in 32-pixel units (ss: supersampling)."""
    axis = (torch.arange(SIZE * ss, dtype=torch.float32) + 0.5) / ss
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return x[None], y[None]


def _background(g: torch.Generator, n: int, style: Style) -> tuple[torch.Tensor, torch.Tensor]:
    """A gradient between two random colours in a random direction, then clutter: float [n, 3, 32, 32] and
    each picture's mean background colour [n, 3]."""
    x, y = _grid(1)  # background and clutter at 32×32; only the shape is supersampled
    c1, c2 = torch.rand(n, 3, generator=g) * style.background, torch.rand(n, 3, generator=g) * style.background
    ang = _uniform(g, n, 0, 2 * math.pi)
    ramp = ((x - SIZE / 2) * torch.cos(ang)[:, None, None] + (y - SIZE / 2) * torch.sin(ang)[:, None, None]) / SIZE + 0.5
    ramp = ramp.clamp(0, 1)[:, None]  # [n, 1, H, W]
    img = c1[:, :, None, None] * (1 - ramp) + c2[:, :, None, None] * ramp

    # Clutter: up to 3 thin line segments and 2 small blobs in random colours.
    for _ in range(style.lines):
        present = (torch.rand(n, generator=g) < style.line_p)[:, None, None]
        x0, y0, x1, y1 = (_uniform(g, n, -2, SIZE + 2)[:, None, None] for _ in range(4))
        dx, dy = x1 - x0, y1 - y0
        px, py = x - x0, y - y0
        t = ((px * dx + py * dy) / (dx * dx + dy * dy + 1e-6)).clamp_(0, 1)
        ex, ey = px.sub_(t * dx), py.sub_(t * dy)  # from the pixel to its nearest point on the segment
        width = _uniform(g, n, 0.4, 1.2)[:, None, None]
        mask = (present & (ex.square_().add_(ey.square_()) <= width * width))[:, None]
        img = torch.where(mask, torch.rand(n, 3, 1, 1, generator=g), img)
    for _ in range(style.blobs):
        present = (torch.rand(n, generator=g) < style.blob_p)[:, None, None]
        bx, by = (_uniform(g, n, 0, SIZE)[:, None, None] for _ in range(2))
        br = _uniform(g, n, 1.0, 3.0)[:, None, None]
        mask = (present & ((x - bx) ** 2 + (y - by) ** 2 <= br * br))[:, None]
        img = torch.where(mask, torch.rand(n, 3, 1, 1, generator=g), img)
    return img, (c1 + c2) / 2


def _shape_mask(g: torch.Generator, targets: torch.Tensor, style: Style) -> torch.Tensor:
    """Where each picture's shape is, supersampled: bool [n, 64, 64]. Random size, position and rotation."""
    n = targets.shape[0]
    radius = _uniform(g, n, *style.radius)
    if style.jitter is None:  # anywhere it fits (a little may leave the frame)
        cx = radius * 0.8 + torch.rand(n, generator=g) * (SIZE - 1.6 * radius)
        cy = radius * 0.8 + torch.rand(n, generator=g) * (SIZE - 1.6 * radius)
    else:
        cx = SIZE / 2 + _uniform(g, n, -style.jitter, style.jitter)
        cy = SIZE / 2 + _uniform(g, n, -style.jitter, style.jitter)
    rot = _uniform(g, n, -math.radians(style.rotation), math.radians(style.rotation))
    cos, sin = torch.cos(rot)[:, None, None], torch.sin(rot)[:, None, None]
    xs, ys = _grid(_SS)
    inside = torch.zeros(n, SIZE * _SS, SIZE * _SS, dtype=torch.bool)
    for label in range(len(CLASSES)):
        idx = (targets == label).nonzero(as_tuple=True)[0]
        if idx.numel():
            # Canonical coordinates (u, v) of every supersampled pixel, for this class's images only.
            dx, dy = xs - cx[idx, None, None], ys - cy[idx, None, None]
            r = radius[idx, None, None]
            u = (cos[idx] * dx + sin[idx] * dy) / r
            v = (cos[idx] * dy - sin[idx] * dx) / r
            inside[idx] = _inside(label, u, v)
    return inside


def _draw_chunk(g: torch.Generator, n: int, style: Style) -> tuple[torch.Tensor, torch.Tensor]:
    """n images uint8 [n, 3, 32, 32] and balanced labels int64 [n]."""
    targets = (torch.arange(n) % len(CLASSES))[torch.randperm(n, generator=g)]
    img, bg_mean = _background(g, n, style)
    inside = _shape_mask(g, targets, style)
    # Shape colour: random, pushed away from the background so the shape stays visible.
    colour = torch.rand(n, 3, generator=g)
    hue = (targets.float() / len(CLASSES) + _uniform(g, n, -0.04, 0.04)) % 1.0
    tinted = _hsv_to_rgb(hue, _uniform(g, n, 0.6, 1.0), _uniform(g, n, 0.5, 1.0))
    colour = torch.where((torch.rand(n, generator=g) < style.class_colour)[:, None], tinted, colour)
    weak = (colour - bg_mean).norm(dim=1, keepdim=True) < style.contrast
    colour = torch.where(weak, (bg_mean + 0.5) % 1.0, colour)
    # Coverage of each 32×32 pixel by the 64×64 mask: anti-aliased edges.
    alpha = torch.nn.functional.avg_pool2d(inside[:, None].float(), _SS)
    img = img + (colour[:, :, None, None] - img) * alpha

    # Noise of a random strength per image.
    sigma = _uniform(g, n, 0.0, style.noise)[:, None, None, None]
    img = img + torch.randn(img.shape, generator=g) * sigma
    return (img.clamp(0, 1) * 255).round_().to(torch.uint8), targets


def generate(n: int, train: bool = True, seed: int = DEFAULT_SEED,
             progress: Callable[[int, int], None] | None = None,
             style: Style = Style()) -> tuple[torch.Tensor, torch.Tensor]:
    """Shapes-10 images uint8 [n, 3, 32, 32] and targets int64 [n], deterministic from `seed`.

    `progress(done, total)` is called after every chunk of 1,000 images.
    """
    images = torch.empty(n, 3, SIZE, SIZE, dtype=torch.uint8)
    targets = torch.empty(n, dtype=torch.int64)
    for k, start in enumerate(range(0, n, CHUNK)):
        count = min(CHUNK, n - start)
        imgs, tgts = _draw_chunk(_chunk_generator(seed, train, k), CHUNK, style)
        images[start:start + count], targets[start:start + count] = imgs[:count], tgts[:count]
        if progress is not None:
            progress(start + count, n)
    return images, targets
