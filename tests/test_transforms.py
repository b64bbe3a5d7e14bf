"""Transforms: each step against torchvision v2 itself, seeds, draws, the RNG left alone, errors."""
import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision.transforms import v2

from dl_core.errors import CourseError
from dl_core.transforms import DEFAULTS, KINDS, Step, compose, open_image, run_pipeline


@pytest.fixture(scope="module")
def img() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8), mode="RGB")


def test_to_tensor_is_the_courses_totensor(img):
    res = run_pipeline(img, [Step.make("ToTensor")])
    out = res[1].value
    expected = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])(img)
    assert torch.equal(out, expected)
    assert res[0].layout == "HWC" and res[0].shape == (40, 60, 3) and res[0].pil_size == (60, 40)
    assert res[1].layout == "CHW" and res[1].shape == (3, 40, 60) and res[1].dtype == "torch.float32"
    assert res[1].layout_changed and not res[0].layout_changed
    assert 0.0 <= res[1].vmin and res[1].vmax <= 1.0
    assert res[0].vmin >= 0 and res[0].vmax <= 255


def test_normalize_half_gives_minus_one_to_one_and_is_shown_denormalized(img):
    res = run_pipeline(img, [Step.make("ToTensor"), Step.make("Normalize")])
    x = res[2].value
    assert torch.allclose(x, (res[1].value - 0.5) / 0.5)
    assert res[2].vmin >= -1 and res[2].vmax <= 1 and res[2].denormalized
    # x*0.5+0.5 brings back the ToTensor picture
    assert np.abs(res[2].display.astype(int) - res[1].display.astype(int)).max() <= 1


def test_resize_int_scales_the_short_side_and_pair_is_exact(img):
    short = run_pipeline(img, [Step.make("Resize", size=20)])[1]
    pair = run_pipeline(img, [Step.make("Resize", size=(20, 20))])[1]
    assert short.pil_size == (30, 20)  # 60×40 → short side 20, ratio kept
    assert pair.pil_size == (20, 20)


def test_random_crop_with_padding_and_seeded_draws(img):
    steps = [Step.make("RandomCrop", size=(30, 30), padding=10)]
    a = run_pipeline(img, steps, seed=3, draws=5)
    b = run_pipeline(img, steps, seed=3, draws=5)
    c = run_pipeline(img, steps, seed=4, draws=5)
    assert len(a[1].draws) == 5
    assert all(np.array_equal(x, y) for x, y in zip(a[1].draws, b[1].draws))
    assert any(not np.array_equal(x, y) for x, y in zip(a[1].draws, c[1].draws))
    assert len({d.tobytes() for d in a[1].draws}) > 1  # draws differ from each other
    assert a[1].pil_size == (30, 30)
    # The first draw does not depend on how many draws were asked for.
    assert np.array_equal(run_pipeline(img, steps, seed=3, draws=1)[1].display, a[1].display)


def test_global_rng_state_is_untouched(img):
    before = torch.get_rng_state()
    run_pipeline(img, [Step.make("RandomRotation"), Step.make("ColorJitter")], seed=1, draws=3)
    assert torch.equal(before, torch.get_rng_state())


def test_every_kind_runs_after_totensor_and_matches_v2(img):
    for kind in KINDS:
        steps = [Step.make("ToTensor"), Step.make(kind)] if kind != "ToTensor" else [Step.make(kind)]
        res = run_pipeline(img, steps, seed=0)
        assert len(res) == len(steps) + 1
        if kind not in ("RandomCrop", "RandomHorizontalFlip", "RandomRotation", "ColorJitter"):
            assert torch.allclose(res[-1].value, compose(steps)(img))


def test_grayscale_histogram_has_one_channel(img):
    res = run_pipeline(img, [Step.make("Grayscale"), Step.make("ToTensor")])
    assert res[2].shape == (1, 40, 60) and res[2].hist_counts.shape[0] == 1
    assert res[2].display.shape == (40, 60, 3)
    assert res[2].hist_counts.sum() == 40 * 60


def test_normalize_before_totensor_is_explained(img):
    with pytest.raises(CourseError) as exc:
        run_pipeline(img, [Step.make("Normalize")])
    assert exc.value.code == "tf.needs_tensor"


def test_normalize_channel_mismatch(img):
    with pytest.raises(CourseError) as exc:
        run_pipeline(img, [Step.make("Grayscale"), Step.make("ToTensor"), Step.make("Normalize")])
    assert exc.value.code == "tf.channels"


def test_crop_too_big(img):
    with pytest.raises(CourseError) as exc:
        run_pipeline(img, [Step.make("RandomCrop", size=100, padding=0)])
    assert exc.value.code == "tf.crop_too_big"


@pytest.mark.parametrize("kind,args", [("Resize", {"size": 0}), ("RandomCrop", {"padding": -1}),
                                       ("RandomHorizontalFlip", {"p": 2}), ("Grayscale", {"num_output_channels": 2}),
                                       ("Normalize", {"std": (0, 1, 1)}), ("ColorJitter", {"hue": 0.9})])
def test_bad_arguments_are_course_errors(kind, args):
    with pytest.raises(CourseError) as exc:
        Step.make(kind, **args)
    assert exc.value.code == "tf.bad_arg"


def test_unknown_kind():
    with pytest.raises(CourseError) as exc:
        Step.make("Sharpen")
    assert exc.value.code == "tf.unknown"


def test_steps_round_trip_and_code():
    steps = [Step.make(k) for k in KINDS]
    assert [Step.from_dict(s.to_dict()) for s in steps] == steps
    assert steps[0].code() == "v2.ToImage(), v2.ToDtype(torch.float32, scale=True)"
    assert Step.make("Resize", size=(512, 512)).code() == "v2.Resize((512, 512))"
    assert Step.make("Resize", size=512).code() == "v2.Resize(512)"
    assert Step.make("RandomCrop", size=(100, 100), padding=50).code() == "v2.RandomCrop((100, 100), padding=50)"
    assert set(DEFAULTS) == set(KINDS)
    hash(tuple(steps))  # frozen: usable as a cache key


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 80), w=st.integers(1, 80), size=st.integers(1, 64))
def test_resize_int_matches_torchvision_for_any_shape(h, w, size):
    pic = Image.new("RGB", (w, h), (10, 20, 30))
    res = run_pipeline(pic, [Step.make("Resize", size=size)])
    assert res[1].pil_size == v2.Resize(size)(pic).size


def test_open_image_converts_rgba_and_rejects_junk():
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (1, 2, 3, 4)).save(buf, format="PNG")
    assert open_image(buf.getvalue()).mode == "RGB"
    with pytest.raises(CourseError) as exc:
        open_image(b"not an image at all")
    assert exc.value.code == "image.not_image"
    with pytest.raises(CourseError) as exc:
        open_image(b"x" * 100, max_bytes=10)
    assert exc.value.code == "image.too_big"


def _array(value) -> np.ndarray:
    return value.numpy() if isinstance(value, torch.Tensor) else np.array(value)


def test_every_kind_names_its_strings_and_its_code_builds_the_same_transform(img):
    from dl_core.i18n import has
    from dl_core.seeding import seeded
    from dl_core.transforms import KIND_TABLE

    x = compose([Step.make("ToTensor")])(img)
    for kind in KIND_TABLE:
        assert has(kind.title_key), kind.name
        step = Step.make(kind.name)
        written = eval(f"v2.Compose([{step.code()}])", {"v2": v2, "torch": torch})  # the generated code's line
        source = img if kind.name in ("ToTensor", "Grayscale") else x
        with seeded(0):
            expected = _array(step.build()(source))
        with seeded(0):
            assert np.array_equal(_array(written(source)), expected), kind.name


def test_float_arguments_are_kept_to_six_decimals_and_limits_are_the_registrys():
    assert Step.make("RandomHorizontalFlip", p=0.15000000000000002).kwargs["p"] == 0.15
    assert Step.make("Resize", size=[7]).kwargs["size"] == 7
    assert Step.make("Resize", size=[7, 9]).kwargs["size"] == (7, 9)
    for bad in ({"p": True}, {"p": float("nan")}, {"p": "0.5"}, {"p": -0.1}):
        with pytest.raises(CourseError) as exc:
            Step.make("RandomHorizontalFlip", **bad)
        assert exc.value.code == "tf.bad_arg"
    with pytest.raises(CourseError) as exc:
        Step.make("Resize", sizes=3)
    assert exc.value.code == "tf.bad_arg"
