"""The one door for pictures: every page and the zip reader decode uploaded images here.

    image = Image.open(path).convert("RGB")   # the course's line, made safe for strangers' files

What a file must pass, in this order, before a pixel is decoded:
1. its byte size (`MAX_IMAGE_BYTES`);
2. its format, from its signature: PNG, JPEG, GIF (first frame), BMP or WEBP only. The list is
   given to `Image.open(..., formats=...)`, so PostScript/EPS/PDF are never tried and never
   handed to Ghostscript, whatever the file's name says;
3. its pixel count, read from the header (`Image.open` is lazy): `MAX_IMAGE_PIXELS`, and far
   beyond it `image.bomb` (decompression bombs), whatever `PIL.Image.MAX_IMAGE_PIXELS` says;
4. JPEG only: the number of scans (a progressive JPEG with thousands of scans decodes for minutes).
Large JPEGs are decoded at 1/2, 1/4 or 1/8 scale (`draft`) so that at most `MAX_DECODED_PIXELS`
are ever held; other formats above that are refused. Then EXIF orientation is applied and every
mode (RGBA, LA, P, PA, 1, L, I;16, I, F, CMYK, YCbCr, ...) becomes RGB, or L when asked.
Every failure is a CourseError whose code starts with `image.`.
"""
from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dl_core.errors import CourseError

# ---------------------------------------------------------------- the limits, all of them, here

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")  # never EPS/PS/PDF or anything Pillow hands to a program
SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")  # what the upload widgets offer
MAX_IMAGE_BYTES = 20 * 2**20  # the file itself
MAX_IMAGE_PIXELS = 40_000_000  # width × height from the header (a 48-megapixel phone photo is refused)
MAX_DECODED_PIXELS = 16_777_216  # 4096 × 4096: the most pixels held after decoding (JPEG is drafted below it)
BOMB_FACTOR = 4  # a header claiming more than this × MAX_IMAGE_PIXELS is a decompression bomb
MAX_JPEG_SCANS = 100  # a progressive JPEG has about 10


@dataclass(frozen=True)
class ImageLimits:
    """The caps one decode runs under (the defaults are the module's constants)."""

    max_bytes: int = MAX_IMAGE_BYTES
    max_pixels: int = MAX_IMAGE_PIXELS
    max_decoded_pixels: int = MAX_DECODED_PIXELS
    max_jpeg_scans: int = MAX_JPEG_SCANS


LIMITS = ImageLimits()


@dataclass(frozen=True)
class Header:
    """What the header says, before any pixel is decoded."""

    format: str  # "PNG", "JPEG", ...
    mode: str  # the file's own mode: "RGBA", "P", "CMYK", "I;16", ...
    width: int
    height: int
    scale: int  # 1, 2, 4 or 8: JPEG's draft reduction so the decoded picture fits MAX_DECODED_PIXELS

    @property
    def decoded_pixels(self) -> int:
        return math.ceil(self.width / self.scale) * math.ceil(self.height / self.scale)


def _limit_mp(pixels: int) -> int | float:
    mp = pixels / 1_000_000
    return int(mp) if mp >= 1 or mp == 0 else round(mp, 3)


def looks_like_image(data: bytes) -> bool:
    """The file starts with the signature of an allowed format."""
    return (data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM"))
            or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"))


def _check_bytes(data: bytes, limits: ImageLimits) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
        raise CourseError("image.empty", "The file is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise CourseError("image.too_big", "the image file is {size_mb} MB; the limit is {limit_mb} MB",
                          size_mb=round(len(data) / 2**20, 1), limit_mb=round(limits.max_bytes / 2**20))


def _open(data: bytes, limits: ImageLimits, reduce_for: tuple[int, int] | None = None) -> tuple[Image.Image, Header]:
    """Image.open (lazy: the header only) with the format allowlist and every cap checked."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(bytes(data)), formats=list(FORMATS))
    width, height = img.size
    pixels = width * height
    if width < 1 or height < 1:
        raise CourseError("image.broken", "the image is damaged or cut off ({reason})", reason=f"{width}×{height}")
    if pixels > BOMB_FACTOR * max(limits.max_pixels, MAX_IMAGE_PIXELS):
        raise CourseError("image.bomb", "the image header claims far too many pixels "
                          "(a decompression bomb?); the limit is {limit} megapixels",
                          limit=_limit_mp(limits.max_pixels))
    if pixels > limits.max_pixels:
        raise CourseError("image.too_many_pixels", "the image is {width}×{height} pixels; "
                          "the limit is {limit} megapixels", width=width, height=height,
                          limit=limits.max_pixels // 1_000_000)
    scale = 1
    if img.format == "JPEG":
        scans = bytes(data).count(b"\xff\xda")  # SOS markers: 0xFF in entropy-coded data is stuffed (FF 00)
        if scans > limits.max_jpeg_scans:
            raise CourseError("image.too_many_scans", "the JPEG has {scans} scans; the limit is {limit} "
                              "(a normal photo has about 10)", scans=scans, limit=limits.max_jpeg_scans)
        while math.ceil(width / scale) * math.ceil(height / scale) > limits.max_decoded_pixels and scale < 8:
            scale *= 2
        if reduce_for is not None:  # only a small picture is needed (a 32×32 dataset): decode just enough
            while (scale < 8 and math.ceil(width / (2 * scale)) >= reduce_for[0]
                   and math.ceil(height / (2 * scale)) >= reduce_for[1]):
                scale *= 2
    header = Header(str(img.format), img.mode, width, height, scale)
    if header.decoded_pixels > limits.max_decoded_pixels:
        raise CourseError("image.too_many_pixels", "the image is {width}×{height} pixels; "
                          "the limit is {limit} megapixels", width=width, height=height,
                          limit=_limit_mp(limits.max_decoded_pixels))
    return img, header


def _errors(data: bytes, exc: BaseException) -> CourseError:
    """The one CourseError for whatever Pillow raised."""
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return CourseError("image.bomb", "the image header claims far too many pixels "
                           "(a decompression bomb?); the limit is {limit} megapixels",
                           limit=_limit_mp(MAX_IMAGE_PIXELS))
    if isinstance(exc, UnidentifiedImageError):
        if looks_like_image(data):  # the right signature but unreadable: a cut-off or damaged file
            return CourseError("image.broken", "the image is damaged or cut off ({reason})",
                               reason="unreadable header")
        return CourseError("image.not_image", "this is not an image the app can read "
                           "(PNG, JPEG, GIF, BMP or WEBP)")
    if isinstance(exc, MemoryError):
        return CourseError("image.broken", "the image is damaged or cut off ({reason})", reason="out of memory")
    reason = str(exc).splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
    return CourseError("image.broken", "the image is damaged or cut off ({reason})", reason=reason)


def read_header(data: bytes, limits: ImageLimits = LIMITS, reduce_for: tuple[int, int] | None = None) -> Header:
    """Format, mode and size from the header alone (nothing decoded); every cap checked. CourseError otherwise.

    `reduce_for` (width, height): the picture will only be used at this size, so a JPEG may be
    decoded at 1/2, 1/4 or 1/8 scale (`Header.scale`, `Header.decoded_pixels`).
    """
    _check_bytes(data, limits)
    try:
        img, header = _open(data, limits, reduce_for)
        img.close()
        return header
    except CourseError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for a hostile file
        raise _errors(bytes(data), exc) from exc


def open_image(data: bytes, *, mode: str = "RGB", limits: ImageLimits = LIMITS,
               max_bytes: int | None = None, max_pixels: int | None = None,
               reduce_for: tuple[int, int] | None = None) -> tuple[Image.Image, str]:
    """(picture in `mode` "RGB" or "L", upright, first frame; the file's own mode) or CourseError `image.*`.

    `max_bytes`/`max_pixels` lower the caps for one call (a page's upload limit); with
    `reduce_for` (width, height) a JPEG is decoded at a reduced scale still at least that big.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be RGB or L, got {mode}")
    if max_bytes is not None or max_pixels is not None:
        limits = ImageLimits(max_bytes=limits.max_bytes if max_bytes is None else max_bytes,
                             max_pixels=limits.max_pixels if max_pixels is None else max_pixels,
                             max_decoded_pixels=min(limits.max_decoded_pixels,
                                                    limits.max_pixels if max_pixels is None else max_pixels),
                             max_jpeg_scans=limits.max_jpeg_scans)
    _check_bytes(data, limits)
    data = bytes(data)
    try:
        img, header = _open(data, limits, reduce_for)
        if header.scale > 1:  # JPEG: decode at 1/scale directly, never the full picture
            img.draft(img.mode, (math.ceil(header.width / header.scale), math.ceil(header.height / header.scale)))
        img.seek(0)  # GIF / animated WEBP: the first frame
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
        try:
            img = ImageOps.exif_transpose(img)  # a phone photo taken sideways comes out upright
        except Exception:  # noqa: BLE001 - a damaged EXIF block: the picture itself is still good
            pass
        out = to_rgb(img)
        return (out.convert("L") if mode == "L" else out), header.mode
    except CourseError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _errors(data, exc) from exc


def read_image(data: bytes, *, mode: str = "RGB", limits: ImageLimits = LIMITS,
               max_bytes: int | None = None, max_pixels: int | None = None,
               reduce_for: tuple[int, int] | None = None) -> Image.Image:
    """The picture alone (see open_image)."""
    return open_image(data, mode=mode, limits=limits, max_bytes=max_bytes, max_pixels=max_pixels,
                      reduce_for=reduce_for)[0]


def _scaled_to_uint8(img: Image.Image) -> Image.Image:
    """16/32-bit grey and float pictures → L, scaled to 0..255 row block by row block (bounded memory)."""
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise ValueError(f"unexpected {img.mode} layout {arr.shape}")
    if img.mode.startswith("I;16"):
        top = 65535.0
    else:
        finite_max = float(np.nanmax(np.where(np.isfinite(arr), arr, 0))) if arr.size else 0.0
        top = 255.0 if finite_max <= 255 else (65535.0 if finite_max <= 65535 else finite_max)
    out = np.empty(arr.shape, dtype=np.uint8)
    step = max(1, 1_000_000 // max(arr.shape[1], 1))
    for r in range(0, arr.shape[0], step):
        block = np.nan_to_num(arr[r:r + step].astype(np.float32), nan=0.0, posinf=top, neginf=0.0)
        out[r:r + step] = np.clip(block * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(out, mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """convert("RGB") as the course does, with the modes it gets wrong fixed:
    16-bit/32-bit/float grey scaled to 0..255 first; transparent pixels white, not what hides under alpha 0."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = _scaled_to_uint8(img)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img if img.mode == "RGB" else img.convert("RGB")
