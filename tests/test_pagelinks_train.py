"""The Train page's link (the recipe as query parameters): round trip, TrainConfig's limits, hostile values."""
from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dl_core import links, pagelinks
from dl_core.errors import CourseError
from dl_core.i18n import has
from dl_core.pagelinks import train as recipe
from dl_core.training import MAX_BATCH, MAX_EPOCHS, MAX_LR, OPTIMIZERS, TrainConfig

DEFAULTS = {p.name: p.default for p in recipe.PARAMS}

recipes = st.fixed_dictionaries({
    "optimizer": st.sampled_from(OPTIMIZERS),
    "lr": st.floats(recipe.MIN_LR, MAX_LR, allow_nan=False, allow_infinity=False),
    "batch": st.integers(1, MAX_BATCH),
    "epochs": st.none() | st.integers(1, MAX_EPOCHS),
    "images": st.none() | st.integers(1, recipe.MAX_IMAGES),
    "augment": st.booleans(),
    "normalize": st.booleans(),
    "weight_decay": st.floats(0.0, 1.0, allow_nan=False),
    "seed": st.integers(0, recipe.MAX_SEED),
})


@settings(max_examples=300, deadline=None)
@given(recipes)
def test_write_then_read_gives_the_same_recipe(values):
    assume(values["images"] is None or values["batch"] <= values["images"])
    query = links.write(values, recipe.PARAMS)
    assert all(isinstance(v, str) and len(v) <= 32 for v in query.values())
    read, errors = pagelinks.read("train", query)
    assert errors == []
    assert read == values


@settings(max_examples=200, deadline=None)
@given(recipes)
def test_a_recipe_read_from_a_link_is_a_valid_train_config(values):
    assume(values["images"] is None or values["batch"] <= values["images"])
    config = recipe.to_config(values)
    config.validate()  # what Start checks, before the dataset and the classroom are known
    assert recipe.from_config(config)["lr"] == values["lr"]


def test_short_links_and_readable_names():
    assert links.write(DEFAULTS, recipe.PARAMS) == {}  # the course's recipe: nothing in the URL
    values = {**DEFAULTS, "optimizer": "adam", "lr": 0.001, "batch": 32, "epochs": 5, "augment": True}
    assert links.write(values, recipe.PARAMS) == {"optimizer": "adam", "lr": "0.001", "batch": "32", "epochs": "5",
                                                  "augment": "1"}
    read, errors = pagelinks.read("train", {"lr": "0.1", "normalize": "yes", "images": "500", "lang": "en"})
    assert errors == [] and read["lr"] == 0.1 and read["normalize"] is True and read["images"] == 500


def test_limits_are_train_configs_own():
    course = TrainConfig()
    assert DEFAULTS["optimizer"] == course.optimizer and DEFAULTS["lr"] == course.lr
    assert DEFAULTS["batch"] == course.batch_size and DEFAULTS["seed"] == course.seed
    for name, good, bad in (("epochs", str(MAX_EPOCHS), str(MAX_EPOCHS + 1)), ("lr", str(MAX_LR), "10.5"),
                            ("batch", str(MAX_BATCH), str(MAX_BATCH + 1)), ("weight_decay", "1", "1.01")):
        assert pagelinks.read("train", {name: good})[1] == [], name
        assert [e.code for e in pagelinks.read("train", {name: bad})[1]] == ["link.out_of_range"], name


def test_the_recipe_is_checked_as_a_whole():
    values, errors = pagelinks.read("train", {"batch": "128", "images": "64", "lr": "0.1"})
    assert [e.code for e in errors] == ["train.batch_size"]  # Start would refuse it the same way
    assert values == DEFAULTS
    with pytest.raises(CourseError):
        recipe.check({**DEFAULTS, "batch": 100, "images": 10})
    recipe.check({**DEFAULTS, "batch": 10, "images": 10})


HOSTILE = ["", " ", "9" * 5000, "NaN", "nan", "inf", "-inf", "1e309", "-1", "--1", "1.5.2", "None", "[1]", "{}",
           "<script>alert(1)</script>", "'; DROP TABLE runs; --", "../../etc/passwd", "%00", "\x00", "🔥"]
ODD = ["１２", "٣", "0", "0x10", "1_000", "1e-400", "True", "SGD", "adam\n"]  # refused, or read as a valid recipe


@pytest.mark.parametrize("name", [p.name for p in recipe.PARAMS])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_give_a_message_and_the_defaults(name, value):
    values, errors = pagelinks.read("train", {name: value})
    assert errors and values == DEFAULTS
    assert all(isinstance(e, CourseError) and has(f"error.{e.code}") for e in errors)


@pytest.mark.parametrize("name", [p.name for p in recipe.PARAMS])
@pytest.mark.parametrize("value", ODD)
def test_odd_values_are_refused_or_a_valid_recipe(name, value):
    values, errors = pagelinks.read("train", {name: value})
    if errors:
        assert values == DEFAULTS and all(has(f"error.{e.code}") for e in errors)
    else:
        recipe.to_config(values).validate()


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([p.name for p in recipe.PARAMS] + ["lang", "x"]), st.text(max_size=60)))
def test_any_query_gives_values_or_course_errors(query):
    values, errors = pagelinks.read("train", query)
    assert set(values) == set(DEFAULTS)
    if errors:
        assert values == DEFAULTS and all(isinstance(e, CourseError) for e in errors)
    else:
        recipe.to_config(values).validate()
