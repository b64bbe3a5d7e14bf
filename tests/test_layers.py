"""Layer demos on real images: preset kernels, feature maps, activations, shape walks, uploads."""
import io

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dl_core.errors import CourseError
from dl_core.layers import (
    ACTIVATIONS, KERNEL_PRESETS, MULTI_BIAS, MULTI_INPUT, MULTI_WEIGHT, activation_curves, activation_on_image,
    course_reshape, decode_image, feature_map_display, flatten_linear_walk, flatten_shapes, image_layers,
    inplace_demo, preset_weight, sample_pattern, to_float,
)


@pytest.mark.parametrize("preset", KERNEL_PRESETS)
def test_presets_are_conv_weights_and_match_torch(preset):
    img = sample_pattern(32)
    result = image_layers(img, preset, out_channels=6, kernel_size=3)
    assert result.weight.shape == (6, 3, 3, 3)
    assert result.conv_shape == (1, 6, 30, 30)  # Conv2d(3, 6, 3): 32 → 30, as in the course
    expected = F.conv2d(to_float(img)[None], result.weight)[0]
    assert torch.allclose(result.conv, expected, atol=1e-6)
    assert result.maxpool.shape == (3, 16, 16)
    assert result.relu.min() >= 0 and 0 < result.sigmoid.min() and result.sigmoid.max() < 1


def test_identity_gives_the_picture_back_and_blur_keeps_flat_colour():
    img = sample_pattern(24)
    same = image_layers(img, "identity", out_channels=3, kernel_size=3, padding=1)
    assert torch.allclose(same.conv, to_float(img))
    flat = torch.full((3, 8, 8), 100, dtype=torch.uint8)
    for preset in ("blur", "sharpen"):
        out = image_layers(flat, preset, out_channels=3, kernel_size=3).conv
        assert torch.allclose(out, torch.full_like(out, 100 / 255), atol=1e-5)
    edges = image_layers(flat, "edges", out_channels=3, kernel_size=3).conv
    assert torch.allclose(edges, torch.zeros_like(edges), atol=1e-5)  # no edges in a flat picture


def test_random_preset_is_seeded():
    assert torch.equal(preset_weight("random", 3, 6, 3, seed=4), preset_weight("random", 3, 6, 3, seed=4))
    assert not torch.equal(preset_weight("random", 3, 6, 3, seed=4), preset_weight("random", 3, 6, 3, seed=5))


def test_random_preset_uses_a_private_generator():
    state = torch.random.get_rng_state()
    weight = preset_weight("random", 3, 6, 3, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is never touched
    bound = 1 / 27 ** 0.5  # nn.Conv2d(3, 6, 3)'s initialisation bound
    expected = (torch.rand(6, 3, 3, 3, generator=torch.Generator().manual_seed(4)) * 2 - 1) * bound
    assert torch.allclose(weight, expected)
    assert weight.abs().max() <= bound


def test_bad_image_settings():
    with pytest.raises(CourseError) as exc:
        image_layers(sample_pattern(8), "blur", kernel_size=11)
    assert exc.value.code == "arith.kernel_too_big"
    with pytest.raises(CourseError) as exc:
        preset_weight("wavy")
    assert exc.value.code == "layers.preset"


def test_course_reshape_six_channels_to_two_pictures():
    assert course_reshape(torch.zeros(6, 30, 30)).shape == (2, 3, 30, 30)
    with pytest.raises(CourseError) as exc:
        course_reshape(torch.zeros(4, 30, 30))
    assert exc.value.code == "layers.reshape"


def test_activation_curves_equal_torch():
    x, curves = activation_curves()
    assert set(curves) == set(ACTIVATIONS)
    assert torch.equal(curves["ReLU"], torch.relu(x))
    assert torch.allclose(curves["Sigmoid"], torch.sigmoid(x))
    assert torch.allclose(curves["LeakyReLU"], F.leaky_relu(x, 0.01))
    shifted, out = activation_on_image(sample_pattern(8), "ReLU")
    assert shifted.min() < 0 and out.min() == 0


def test_inplace_overwrites_the_input():
    kept, out, overwritten, out2 = inplace_demo()
    assert kept == [1.0, -0.5, -1.0, 3.0] and out == [1.0, 0.0, 0.0, 3.0]
    assert overwritten == out2 == [1.0, 0.0, 0.0, 3.0]


def test_flatten_linear_walk_course_numbers():
    walk = flatten_linear_walk()
    assert [s.shape for s in walk] == [(64, 3, 32, 32), (64, 3072), (64, 10)]
    assert walk[2].params == 3072 * 10 + 10
    assert flatten_shapes((64, 3, 32, 32)) == ((196608,), (64, 3072))
    with pytest.raises(CourseError):
        flatten_linear_walk(batch=0)


def test_feature_map_display_range():
    shown = feature_map_display(torch.tensor([[-2.0, 0.0], [2.0, 1.0]]))
    assert shown.min() == 0 and shown.max() == 1
    assert torch.all(feature_map_display(torch.ones(2, 2)) == 0.5)


def test_multi_example_is_consistent():
    w = torch.tensor(MULTI_WEIGHT, dtype=torch.float32)
    assert w.shape == (2, 3, 3, 3) and len(MULTI_BIAS) == 2
    assert torch.tensor(MULTI_INPUT).shape == (3, 5, 5)


def _png(mode="RGBA", size=(300, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, "PNG")
    return buf.getvalue()


def test_decode_image_rgb_and_capped():
    img = decode_image(_png())
    assert img.dtype == torch.uint8 and img.shape[0] == 3 and max(img.shape[1:]) <= 96
    assert decode_image(_png("L", (20, 10))).shape == (3, 10, 20)


@pytest.mark.parametrize("data, code", [
    (b"", "image.empty"), (b"not a picture", "image.not_image"), (b"x" * 100, "image.not_image"),
])
def test_decode_image_bad_files(data, code):
    with pytest.raises(CourseError) as exc:
        decode_image(data)
    assert exc.value.code == code


def test_decode_image_too_big():
    with pytest.raises(CourseError) as exc:
        decode_image(b"\0" * 2048, max_bytes=1024)
    assert exc.value.code == "image.too_big"
