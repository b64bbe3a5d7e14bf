"""TrainConfig.validate: every field checked for type, range and finiteness; only CourseError ever comes out."""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dl_core.errors import CourseError
from dl_core.training import MAX_PROBE_IMAGES, TrainConfig

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("changes, code", [
    ({"epochs": True}, "train.epochs"), ({"epochs": "10"}, "train.epochs"), ({"epochs": None}, "train.epochs"),
    ({"epochs": 10.0}, "train.epochs"), ({"epochs": [10]}, "train.epochs"),
    ({"batch_size": True}, "train.batch_size"), ({"batch_size": 64.0}, "train.batch_size"),
    ({"batch_size": "64"}, "train.batch_size"),
    ({"lr": True}, "train.lr"), ({"lr": "0.01"}, "train.lr"), ({"lr": INF}, "train.lr"), ({"lr": None}, "train.lr"),
    ({"lr": 10**400}, "train.lr"),
    ({"momentum": NAN}, "train.momentum"), ({"momentum": -0.1}, "train.momentum"), ({"momentum": "0.9"}, "train.momentum"),
    ({"weight_decay": INF}, "train.weight_decay"), ({"weight_decay": NAN}, "train.weight_decay"),
    ({"weight_decay": False}, "train.weight_decay"),
    ({"train_subset": NAN}, "train.subset"), ({"train_subset": INF}, "train.subset"),
    ({"test_subset": 1.5}, "train.subset"), ({"test_subset": "5"}, "train.subset"), ({"train_subset": True}, "train.subset"),
    ({"time_limit": NAN}, "train.time_limit"), ({"time_limit": INF}, "train.time_limit"),
    ({"time_limit": "3"}, "train.time_limit"), ({"time_limit": True}, "train.time_limit"),
    ({"time_limit": 0}, "train.time_limit"),
    ({"test_batch_size": 0}, "train.test_batch_size"), ({"test_batch_size": True}, "train.test_batch_size"),
    ({"test_batch_size": NAN}, "train.test_batch_size"), ({"test_batch_size": 65537}, "train.test_batch_size"),
    ({"log_every": True}, "train.log_every"), ({"log_every": 1.5}, "train.log_every"),
    ({"log_every": None}, "train.log_every"),
    ({"seed": True}, "train.seed"), ({"seed": 1.5}, "train.seed"), ({"seed": 2**63}, "train.seed"),
    ({"probe_every": -1}, "train.probe_every"), ({"probe_every": True}, "train.probe_every"),
    ({"probe_every": "3"}, "train.probe_every"), ({"probe_every": 100_001}, "train.probe_every"),
    ({"probe_images": -1}, "train.probe_images"), ({"probe_images": MAX_PROBE_IMAGES + 1}, "train.probe_images"),
    ({"probe_images": True}, "train.probe_images"), ({"probe_images": NAN}, "train.probe_images"),
    ({"optimizer": ["sgd"]}, "train.optimizer"), ({"optimizer": None}, "train.optimizer"),
    ({"device": None}, "device.unknown"), ({"device": ["cpu"]}, "device.unknown"),
    ({"precision": None}, "train.precision"), ({"precision": {"auto": 1}}, "train.precision"),
    ({"augment": "yes"}, "train.flag"), ({"augment": 1}, "train.flag"), ({"normalize": None}, "train.flag"),
    ({"channels_last": 0}, "train.flag"),
])
def test_wrong_types_and_non_finite_values_are_course_errors(changes, code):
    with pytest.raises(CourseError) as info:
        TrainConfig(**changes).validate(1000, 100)
    assert info.value.code == code
    assert str(info.value)  # the English message formats with whatever value came in


def test_good_values_of_other_numeric_types_pass():
    TrainConfig(lr=1, momentum=Fraction(1, 2), weight_decay=0, time_limit=5, train_subset=10**30).validate(1000, 10)
    TrainConfig(probe_every=0, probe_images=0).validate()
    TrainConfig(probe_every=100_000, probe_images=MAX_PROBE_IMAGES).validate()


FIELDS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
GOOD = {
    "epochs": st.integers(1, 100), "batch_size": st.integers(1, 4096), "lr": st.floats(1e-6, 10),
    "optimizer": st.sampled_from(["sgd", "sgd_momentum", "adam"]), "momentum": st.floats(0, 0.99),
    "weight_decay": st.floats(0, 1), "device": st.sampled_from(["auto", "cpu"]), "seed": st.integers(0, 2**63 - 1),
    "train_subset": st.none() | st.integers(1, 10**9), "test_subset": st.none() | st.integers(1, 10**9),
    "augment": st.booleans(), "normalize": st.booleans(), "log_every": st.integers(1, 100_000),
    "time_limit": st.none() | st.floats(0.001, 1e9), "precision": st.sampled_from(["auto", "fp32", "bf16"]),
    "channels_last": st.booleans(), "test_batch_size": st.integers(1, 65536),
    "probe_every": st.integers(0, 100_000), "probe_images": st.integers(0, MAX_PROBE_IMAGES),
}
ANYTHING = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    st.tuples(st.integers()), st.fractions(), st.complex_numbers(allow_nan=True), st.binary(max_size=3),
)


@st.composite
def configs(draw):
    """Each field: usually a valid value, sometimes anything at all (one or several fields broken at once)."""
    values = {name: draw(ANYTHING if draw(st.integers(0, 3)) == 0 else GOOD[name]) for name in FIELDS}
    return TrainConfig(**values)


def test_the_strategies_cover_every_field():
    assert set(GOOD) == set(FIELDS)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), st.none() | st.integers(0, 10**6), st.none() | st.integers(0, 10**6))
def test_any_config_validates_or_raises_course_error(config, n_train, n_test):
    try:
        config.validate(n_train, n_test)
    except CourseError as exc:
        assert exc.code.startswith(("train.", "device.")) and str(exc)
        return
    # what passes is usable: whole numbers in range, finite reals, real flags
    assert isinstance(config.epochs, int) and not isinstance(config.epochs, bool) and 1 <= config.epochs <= 100
    assert math.isfinite(config.lr) and 0 < config.lr <= 10 and math.isfinite(config.momentum)
    assert isinstance(config.augment, bool) and isinstance(config.normalize, bool)
    assert config.time_limit is None or math.isfinite(config.time_limit) and config.time_limit > 0
    if n_train is not None:
        assert 1 <= config.batch_size <= config.effective_train_size(n_train)
        assert config.steps_per_epoch(n_train) >= 1
        assert config.probe_interval(n_train, n_test) >= 0
