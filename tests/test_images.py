"""dl_core.images: the one image intake (formats, caps before decoding, EXIF, every mode) and its users."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dl_core import images
from dl_core.errors import CourseError
from dl_core.layers import decode_image as layers_decode
from dl_core.models import decode_image as model_decode
from dl_core.predict import load_image
from dl_core.transforms import open_image as transforms_open
from tests.hostile import assert_clear_error

PICTURE = Image.fromarray(np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3) % 251)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_header(width: int, height: int, mode_byte: int = 2, depth: int = 8, idat: bytes = b"") -> bytes:
    """A PNG with the given size: a header, and optionally an IDAT (zlib) chunk."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, mode_byte, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + (chunk(b"IDAT", idat) if idat else b"") + chunk(b"IEND", b"")


def zero_png(width: int, height: int) -> bytes:
    """A real, valid all-black RGB PNG of width × height: tiny on disk, huge once decoded."""
    row = b"\x00" + bytes(3 * width)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return png_header(width, height, idat=body)


EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
       b"%%EndComments\n(%pipe%touch /tmp/pwned) (w) file\nshowpage\n%%EOF\n")


# ---------------------------------------------------------------- formats and modes

@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_every_allowed_format_decodes_to_rgb(fmt):
    img = images.read_image(encode(PICTURE, fmt))
    assert img.mode == "RGB" and img.size == (64, 48)


@pytest.mark.parametrize("name, data", [
    ("eps-named-png", EPS),
    ("eps-binary-header", b"\xc5\xd0\xd3\xc6" + bytes(26) + EPS),
    ("pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"),
    ("tiff", encode(PICTURE, "TIFF")),
    ("ico", encode(PICTURE.resize((32, 32)), "ICO")),
    ("pcx", encode(PICTURE, "PCX")),
])
def test_formats_outside_the_allowlist_are_never_opened(name, data, monkeypatch):
    import subprocess

    called = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: called.append(a))
    monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: called.append(a))
    with pytest.raises(CourseError) as err:
        images.read_image(data)
    assert err.value.code == "image.not_image" and not called


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "PA", "1", "L", "I;16", "I", "F", "CMYK", "YCbCr", "RGB"])
def test_every_mode_becomes_rgb_or_l(mode):
    img = PICTURE.convert("RGBA") if mode in ("RGBA", "PA", "LA") else PICTURE
    if mode in ("I;16", "I", "F"):
        arr = np.asarray(PICTURE.convert("L"), dtype=np.float32)
        src = Image.fromarray((arr * 257).astype(np.uint16)) if mode == "I;16" else \
            Image.fromarray(arr.astype(np.int32)) if mode == "I" else Image.fromarray(arr)
        assert src.mode == mode
    else:
        src = img.convert(mode)
    fmt = "JPEG" if mode in ("CMYK", "YCbCr") else "PNG"
    try:
        data = encode(src, fmt)
    except OSError:  # no allowed format stores this mode (F, PA): test the conversion itself
        out = images.to_rgb(src)
    else:
        out = images.read_image(data)
    assert out.mode == "RGB" and out.size == (64, 48)
    grey = images.read_image(encode(PICTURE, "PNG"), mode="L")
    assert grey.mode == "L"


def test_sixteen_bit_grey_is_scaled_not_clipped():
    arr = np.full((8, 8), 65535, dtype=np.uint16)
    out = images.read_image(encode(Image.fromarray(arr), "PNG"))
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert images.read_image(encode(rgba, "PNG")).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90°: stored 64×48, shown 48×64
    data = encode(PICTURE, "JPEG", exif=exif.tobytes())
    assert images.read_image(data).size == (48, 64)


def test_a_damaged_exif_block_still_gives_the_picture():
    data = encode(PICTURE, "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\xff\xff")
    assert images.read_image(data).size[0] in (48, 64)


def test_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    assert images.read_image(buf.getvalue()).getpixel((0, 0)) == (255, 0, 0)


# ---------------------------------------------------------------- caps before decoding

def test_caps_are_read_from_the_header(monkeypatch):
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1))
    for data, code in [(png_header(10_000, 5_000), "image.too_many_pixels"),
                       (png_header(100_000, 100_000), "image.bomb"),
                       (png_header(5_000, 5_000), "image.too_many_pixels")]:  # 25 MP PNG > 16.7 MP decoded cap
        with pytest.raises(CourseError) as err:
            images.read_image(data)
        assert err.value.code == code
    assert not decoded


def test_the_bomb_check_does_not_depend_on_pillows_global(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(CourseError) as err:
        images.read_image(png_header(100_000, 100_000))
    assert err.value.code == "image.bomb"


def test_a_large_jpeg_is_decoded_at_a_reduced_scale():
    big = Image.new("RGB", (6000, 4000), (10, 200, 30))  # 24 MP, like a recent phone
    data = encode(big, "JPEG", quality=50)
    img = images.read_image(data)
    assert img.size == (3000, 2000) and img.width * img.height <= images.MAX_DECODED_PIXELS
    head = images.read_header(data, reduce_for=(32, 32))
    assert head.scale == 8 and head.decoded_pixels == 750 * 500


def test_a_jpeg_with_thousands_of_scans_is_refused_before_decoding():
    data = encode(PICTURE, "JPEG")
    body = data[:-2] + (b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" * 500) + b"\xff\xd9"
    with pytest.raises(CourseError) as err:
        images.read_image(body)
    assert err.value.code == "image.too_many_scans"


HOSTILE_IMAGES = {
    "16-megapixel-zero-png": (lambda: zero_png(4096, 4096), None),  # allowed: must still be bounded
    "17-megapixel-zero-png": (lambda: zero_png(4200, 4100), "image.too_many_pixels"),
    "bomb-header": (lambda: png_header(200_000, 200_000), "image.bomb"),
    "header-only": (lambda: png_header(64, 64), "image.broken"),
    "eps": (lambda: EPS, "image.not_image"),
    "truncated-jpeg": (lambda: encode(PICTURE, "JPEG")[:300], "image.broken"),
    "many-scans": (lambda: encode(PICTURE, "JPEG")[:-2] + b"\xff\xda\x00\x02" * 5000 + b"\xff\xd9",
                   "image.too_many_scans"),
}


@pytest.mark.parametrize("name", list(HOSTILE_IMAGES))
def test_hostile_images_end_within_the_budget(name):
    from tests.hostile import run_bounded

    make, code = HOSTILE_IMAGES[name]
    data = make()
    if code is None:
        out = run_bounded(lambda: images.read_image(data).size)
        assert not out.error and out.code is None and out.seconds < 2 and out.extra_mb < 200, out
    else:
        assert_clear_error(lambda: images.read_image(data), code)


# ---------------------------------------------------------------- one intake for every page

@pytest.mark.parametrize("decode", [
    lambda d: load_image(d), lambda d: transforms_open(d), lambda d: layers_decode(d),
    lambda d: model_decode(d, 3, (32, 32)),
], ids=["predict", "transforms", "layers", "model"])
def test_every_page_decoder_is_the_one_intake(decode):
    assert isinstance(decode(encode(PICTURE, "PNG")), (Image.Image, torch.Tensor))
    for data, code in [(EPS, "image.not_image"), (b"", "image.empty"), (png_header(100_000, 100_000), "image.bomb"),
                       (encode(PICTURE, "TIFF"), "image.not_image")]:
        with pytest.raises(CourseError) as err:
            decode(data)
        assert err.value.code == code


def test_no_other_module_opens_images_itself():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = [str(p.relative_to(root)) for p in [*root.glob("dl_core/*.py"), *root.glob("app_pages/*.py"),
                                                    *root.glob("ui/*.py")]
                 if p.name != "images.py" and "Image.open(" in p.read_text(encoding="utf-8").replace(
                     'Image.open(path).convert("RGB")', "")]
    assert not offenders, offenders


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=2048),
                 st.binary(max_size=512).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
                 st.binary(max_size=512).map(lambda b: b"\xff\xd8\xff" + b),
                 st.binary(max_size=512).map(lambda b: b"GIF89a" + b),
                 st.binary(max_size=512).map(lambda b: b"BM" + b),
                 st.binary(max_size=512).map(lambda b: b"RIFF\x00\x00\x00\x00WEBP" + b)))
def test_any_bytes_give_a_picture_or_a_course_error(data):
    try:
        img = images.read_image(data)
    except CourseError as exc:
        assert exc.code.startswith("image.")
    else:
        assert img.mode == "RGB"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
       st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP"]))
def test_a_damaged_real_picture_gives_a_picture_or_a_course_error(flips, fmt):
    data = bytearray(encode(PICTURE, fmt))
    for pos, value in flips:
        data[pos % len(data)] = value
    try:
        images.read_image(bytes(data))
    except CourseError as exc:
        assert exc.code.startswith("image.")
