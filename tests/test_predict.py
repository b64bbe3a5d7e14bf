"""Image intake (every format and mode, every broken file) and the course's test.py pipeline,
checked against torchvision's classic transforms as the oracle."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from dl_core.checkpoint import Checkpoint
from dl_core.errors import CourseError
from dl_core.models import build_model, course_cnn
from dl_core.predict import (
    load_image, open_image, predict, predict_bytes, predict_checkpoint, preprocessing_differences, to_pil,
)
from dl_core.preprocess import Preprocessing

RNG = np.random.default_rng(0)
PICTURE = Image.fromarray(RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8), "RGB")  # 64 wide, 48 high


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height pixels (a decompression-bomb header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _chunk(b"IEND", b""))


def _rgba_with_transparent_corner() -> Image.Image:
    img = PICTURE.convert("RGBA")
    img.putpixel((0, 0), (10, 20, 30, 0))
    return img


GOOD = {
    "png-rgb": lambda: encode(PICTURE, "PNG"),
    "png-rgba": lambda: encode(_rgba_with_transparent_corner(), "PNG"),
    "png-la": lambda: encode(PICTURE.convert("LA"), "PNG"),
    "png-palette": lambda: encode(PICTURE.convert("P"), "PNG"),
    "png-palette-transparency": lambda: encode(PICTURE.convert("P"), "PNG", transparency=0),
    "png-grey": lambda: encode(PICTURE.convert("L"), "PNG"),
    "png-1bit": lambda: encode(PICTURE.convert("1"), "PNG"),
    "png-16bit": lambda: encode(Image.fromarray(RNG.integers(0, 65536, (48, 64), dtype=np.uint16)), "PNG"),
    "jpeg-rgb": lambda: encode(PICTURE, "JPEG", quality=90),
    "jpeg-grey": lambda: encode(PICTURE.convert("L"), "JPEG"),
    "jpeg-cmyk": lambda: encode(PICTURE.convert("CMYK"), "JPEG"),
    "gif": lambda: encode(PICTURE.convert("P"), "GIF"),
    "bmp": lambda: encode(PICTURE, "BMP"),
    "webp": lambda: encode(PICTURE, "WEBP", lossless=True),
    "webp-rgba": lambda: encode(PICTURE.convert("RGBA"), "WEBP"),
}


@pytest.mark.parametrize("name", list(GOOD))
def test_every_format_and_mode_comes_out_rgb(name):
    img = load_image(GOOD[name]())
    assert img.mode == "RGB" and img.size == (64, 48)


def test_lossless_formats_keep_the_pixels():
    for fmt in ("PNG", "BMP"):
        assert np.array_equal(np.asarray(load_image(encode(PICTURE, fmt))), np.asarray(PICTURE))
    assert np.array_equal(np.asarray(load_image(encode(PICTURE, "WEBP", lossless=True))), np.asarray(PICTURE))


def test_transparent_pixels_become_white_and_the_mode_is_reported():
    img, mode = open_image(GOOD["png-rgba"]())
    assert mode == "RGBA" and img.getpixel((0, 0)) == (255, 255, 255)
    assert img.getpixel((1, 1)) == PICTURE.getpixel((1, 1))


def test_16bit_png_is_scaled_not_clipped():
    arr = np.full((10, 10), 65535, dtype=np.uint16)
    arr[0, 0] = 0
    arr[0, 1] = 32768
    img = load_image(encode(Image.fromarray(arr), "PNG"))
    assert img.getpixel((5, 5)) == (255, 255, 255) and img.getpixel((0, 0)) == (0, 0, 0)
    assert img.getpixel((1, 0))[0] == 128


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = encode(PICTURE, "JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).size == (64, 48)
    assert load_image(data).size == (48, 64)


def test_gif_gives_its_first_frame():
    red, blue = Image.new("RGB", (20, 20), (255, 0, 0)), Image.new("RGB", (20, 20), (0, 0, 255))
    data = encode(red, "GIF", save_all=True, append_images=[blue], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert load_image(data).getpixel((10, 10)) == (255, 0, 0)


def _truncated_jpeg() -> bytes:
    data = encode(PICTURE, "JPEG")
    return data[: len(data) // 2]


BAD = {
    "zero-bytes": (lambda: b"", "image.empty"),
    "text-renamed-png": (lambda: b"this is not a picture\n", "image.not_image"),
    "truncated-jpeg": (_truncated_jpeg, "image.broken"),
    "truncated-png": (lambda: encode(PICTURE, "PNG")[:200], "image.broken"),
    "header-only-jpeg": (lambda: encode(PICTURE, "JPEG")[:20], "image.broken"),
    "bomb-header-50mp": (lambda: png_header_only(10_000, 5_000), "image.too_many_pixels"),
    "bomb-header-10gp": (lambda: png_header_only(100_000, 100_000), "image.bomb"),
    "tiff-not-allowed": (lambda: encode(PICTURE, "TIFF"), "image.not_image"),
    "a-pth-file": (lambda: b"PK\x03\x04" + bytes(100), "image.not_image"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_every_bad_image_gets_one_clear_error(name):
    make, code = BAD[name]
    with pytest.raises(CourseError) as err:
        load_image(make())
    assert err.value.code == code


def test_caps_are_checked_before_decoding(monkeypatch):
    data = encode(PICTURE, "PNG")
    with pytest.raises(CourseError) as err:
        load_image(data, max_bytes=100)
    assert err.value.code == "image.too_big"

    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1))
    with pytest.raises(CourseError) as err:
        load_image(data, max_pixels=1000)
    assert err.value.code == "image.too_many_pixels" and err.value.params == {"width": 64, "height": 48, "limit": 0}
    assert not decoded  # refused from the header alone


# ---------------------------------------------------------------- the test.py pipeline


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(course_cnn()).eval()


@pytest.mark.parametrize("prep", [Preprocessing(), Preprocessing(mean=(0.5,) * 3, std=(0.5,) * 3)],
                         ids=["course", "normalize"])
def test_pipeline_matches_the_course_test_py(model, prep):
    image = load_image(GOOD["png-rgba"]())
    p = predict(model, image, prep)
    # the oracle: the notes' test.py, with torchvision's classic transforms
    steps = [T.Resize((32, 32)), T.ToTensor()] + ([T.Normalize(prep.mean, prep.std)] if prep.mean else [])
    x = torch.reshape(T.Compose(steps)(image.convert("RGB")), (1, 3, 32, 32))
    with torch.no_grad():
        output = model(x)
    assert torch.allclose(p.batch, x, atol=1e-6)
    assert torch.allclose(p.logits, output[0], atol=1e-5)
    assert p.index == int(output.argmax(1))
    assert torch.allclose(p.probs, output.softmax(1)[0], atol=1e-6) and abs(float(p.probs.sum()) - 1) < 1e-5
    assert p.resized.size == (32, 32) and p.tensor.shape == (3, 32, 32)
    assert 0 <= float(p.tensor.min()) and float(p.tensor.max()) <= 1
    assert (p.normalized is not None) == (prep.mean is not None)
    if p.normalized is not None:
        assert torch.allclose(p.normalized, (p.tensor - 0.5) / 0.5, atol=1e-6)
    assert np.array_equal(np.asarray(to_pil(p.tensor)), np.asarray(p.resized))
    assert torch.allclose(p.seen_uint8.float() / 255, p.tensor, atol=1e-6)


def test_top_k_is_sorted_and_starts_with_argmax(model):
    p = predict(model, PICTURE, Preprocessing())
    top = p.top(5)
    assert len(top) == 5 and top[0][0] == p.index
    assert [v for _, v in top] == sorted((v for _, v in top), reverse=True)
    assert len(p.top(50)) == 10


def test_a_grey_model_gets_a_grey_input():
    torch.manual_seed(0)
    spec = course_cnn(in_channels=1)
    grey = build_model(spec).eval()
    p = predict(grey, PICTURE, Preprocessing(channels=1))
    assert p.batch.shape == (1, 1, 32, 32)


def test_predict_checkpoint_uses_the_training_preprocessing(model):
    ckpt = Checkpoint(spec=course_cnn(), state_dict=model.state_dict(), classes=[str(i) for i in range(10)],
                      preprocessing=Preprocessing(mean=(0.5,) * 3, std=(0.5,) * 3))
    image, p = predict_bytes(ckpt, GOOD["jpeg-cmyk"]())
    assert image.mode == "RGB" and p.normalized is not None
    assert predict_checkpoint(ckpt, image, Preprocessing()).normalized is None


def test_preprocessing_differences():
    base = Preprocessing(mean=(0.5,) * 3, std=(0.5,) * 3)
    assert preprocessing_differences(base, base) == []
    assert preprocessing_differences(base, Preprocessing()) == ["normalize"]
    assert preprocessing_differences(Preprocessing(), Preprocessing(size=(28, 28), channels=1)) == ["size", "channels"]
