"""Shapes-10: shapes, balance, determinism, prefix property, and that every class is drawn."""
import torch

from dl_core import shapes10
from dl_core.i18n import text


def test_shapes_dtype_and_balanced_labels():
    images, targets = shapes10.generate(2000, train=True)
    assert images.shape == (2000, 3, 32, 32) and images.dtype == torch.uint8
    assert targets.dtype == torch.int64
    assert torch.bincount(targets, minlength=10).tolist() == [200] * 10


def test_deterministic_from_seed_and_split():
    a = shapes10.generate(300, train=True, seed=7)
    b = shapes10.generate(300, train=True, seed=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    other_seed = shapes10.generate(300, train=True, seed=8)
    other_split = shapes10.generate(300, train=False, seed=7)
    assert not torch.equal(a[0], other_seed[0])
    assert not torch.equal(a[0], other_split[0])


def test_small_split_is_a_prefix_of_the_full_one():
    small = shapes10.generate(1500)
    large = shapes10.generate(2500)
    assert torch.equal(small[0], large[0][:1500]) and torch.equal(small[1], large[1][:1500])


def test_progress_reports_every_chunk_up_to_total():
    calls = []
    shapes10.generate(2500, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1000, 2500), (2000, 2500), (2500, 2500)]


def test_every_class_mask_is_a_real_shape_of_distinct_area():
    # Drawn in canonical coordinates, each class covers a different, non-trivial share of the square.
    axis = torch.linspace(-1, 1, 101)
    v, u = torch.meshgrid(axis, axis, indexing="ij")
    areas = [shapes10._inside(label, u[None], v[None]).float().mean().item() for label in range(10)]
    assert all(0.1 < a < 0.8 for a in areas), areas
    assert len({round(a, 3) for a in areas}) == 10


def test_the_shape_stands_out_from_its_background():
    images, _ = shapes10.generate(200)
    x = images.float()
    # Pictures are not flat: every image has a spread of values well beyond the noise.
    assert (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3)) > 60).all()


def test_class_names_in_both_languages():
    zh = [text(shapes10.CLASS_KEYS[c], "zh") for c in shapes10.CLASSES]
    assert len(shapes10.CLASSES) == len(zh) == 10
    assert len(set(shapes10.CLASSES)) == 10 and len(set(zh)) == 10
    assert [text(shapes10.CLASS_KEYS[c], "en") for c in shapes10.CLASSES] == list(shapes10.CLASSES)
