"""The builder's link (issue 14): the network as short URL-safe text that reads back as the same network,
and hostile values that end as clear messages (and the page's defaults), never exceptions or work."""
from __future__ import annotations

import time
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_core import links, pagelinks
from dl_core.errors import CourseError
from dl_core.layer_kinds import KINDS, MAX_LINK_CHARS
from dl_core.models import (
    MAX_LAYERS, PRESETS, LayerSpec, ModelSpec, build_model, canonical, count_parameters, course_cnn, preset,
)
from dl_core.pagelinks.model import PARAMS, check, read_input
from tests.test_layer_kinds import valid_specs

COURSE_TEXT = ("conv_3_32_5_p2-maxpool_2-conv_32_32_5_p2-maxpool_2-conv_32_64_5_p2-maxpool_2-flatten-"
               "linear_1024_64-linear_64_10")


def test_the_course_network_reads_as_the_course_writes_it():
    assert course_cnn().to_text() == COURSE_TEXT
    assert ModelSpec.from_text(COURSE_TEXT) == course_cnn()
    assert count_parameters(build_model(ModelSpec.from_text(COURSE_TEXT))) == 145_578


@settings(max_examples=80, deadline=None)
@given(valid_specs())
def test_round_trip_spec_text_spec(case):
    """Any network the builder accepts → text → the same canonical network, the same parameter count."""
    spec, _ = case
    text = spec.to_text()
    again = ModelSpec.from_text(text)
    assert canonical(again) == canonical(spec)
    assert again.to_text() == text
    assert count_parameters(build_model(again)) == count_parameters(build_model(spec))
    assert quote(text, safe="") == quote_plus(text) == text  # nothing a URL escapes: the address bar shows it
    assert len(text) <= MAX_LINK_CHARS


def test_every_preset_round_trips_through_the_page_parameters():
    for name in PRESETS:
        for shape, classes in (((3, 32, 32), 10), ((1, 28, 28), 10)):
            spec = preset(name, shape[0], classes, shape[1:])
            query = links.write({"net": spec, "input": shape, "preset": name}, PARAMS)
            assert query.get("input") == (None if shape == (3, 32, 32) else "1x28x28")
            values, errors = pagelinks.read("model", query)
            assert not errors and values["net"] == spec and tuple(values["input"]) == shape
            assert values["preset"] == name


def test_every_kind_and_argument_can_be_written_and_read():
    layers = []
    for kind in KINDS.values():
        args = dict(kind.start)
        for arg in kind.args:
            if arg.name not in args and not arg.required:
                args[arg.name] = {bool: True, float: 0.25, int: 2}[arg.type] if arg.default is not True else False
        layers.append(LayerSpec(kind.name, args))
    spec = ModelSpec(tuple(layers))
    assert canonical(ModelSpec.from_text(spec.to_text())) == canonical(spec)


def test_a_network_that_does_not_fit_yet_is_an_exercise_not_an_error():
    wrong = ModelSpec(course_cnn().layers[:7] + (LayerSpec("Linear", {"in_features": 4096, "out_features": 64}),)
                      + course_cnn().layers[8:])
    values, errors = pagelinks.read("model", {"net": wrong.to_text()})
    assert not errors and values["net"] == wrong  # the builder shows it in red, with "Fix it"
    check({"net": course_cnn(), "input": (3, 32, 32), "preset": "course"})
    with pytest.raises(CourseError) as e:  # over the limits: refused
        check({"net": ModelSpec.from_text("conv_3_20000_1-flatten-linear_1_1"), "input": (3, 32, 32),
               "preset": "course"})
    assert e.value.code == "model.too_big_activation"


HOSTILE = {
    "empty": "",
    "spaces": "   ",
    "huge": "relu-" * 5000,
    "too many layers": "-".join(["relu"] * (MAX_LAYERS + 1)),
    "too many parameters": "flatten-linear_999999999_999999999",
    "parameters over several layers": "-".join(["linear_5000_5000"] * 3),
    "unicode": "conv_３_32_5",
    "emoji": "conv_3_32_5-😀",
    "injection": "<script>alert(1)</script>",
    "sql": "conv'; DROP TABLE students; --",
    "path": "../../etc/passwd",
    "nan": "dropout_pnan",
    "nan value": "dropout_p-nan",
    "inf": "leakyrelu_slope1e999",
    "huge float": "leakyrelu_slope1e300",
    "negative sizes": "linear_-5_-3",
    "huge int": "linear_99999999999999999999_1",
    "unknown kind": "conv3d_3_3_3",
    "unknown argument": "conv_3_32_5_groups2",
    "missing required": "conv_3_32",
    "extra positional": "linear_1_2_3",
    "argument twice": "conv_3_32_5_p1_p2",
    "bool as number": "linear_2_2_bias7",
    "bad name": "1x~relu",
    "name twice": "a~relu-a~relu",
    "too many tokens": "conv_3_32_5" + "_p1" * 20,
    "triple": "conv_3_32_5x5x5",
    "separators only": "---___~~~",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_networks_are_a_message_and_the_defaults(name):
    started = time.monotonic()
    values, errors = pagelinks.read("model", {"net": HOSTILE[name]})
    assert errors and all(isinstance(e, CourseError) for e in errors), name
    assert values == {p.name: p.default for p in PARAMS}
    assert time.monotonic() - started < 1.0  # nothing was built or run


@pytest.mark.parametrize("value", ["", "3x32", "0x32x32", "3x0x32", "3x9999x32", "-3x32x32", "3x32x32x1", "abc",
                                   "3×32×32", "99x32x32", "3x32x32; DROP"])
def test_hostile_input_sizes(value):
    with pytest.raises(CourseError) as e:
        read_input(value)
    assert e.value.code == "model.link_input"
    values, errors = pagelinks.read("model", {"input": value, "net": COURSE_TEXT})
    assert errors and values["net"] is None


def test_a_preset_alone_and_a_wrong_preset():
    values, errors = pagelinks.read("model", {"preset": "course_relu"})
    assert not errors and values == {"net": None, "input": (3, 32, 32), "preset": "course_relu"}
    values, errors = pagelinks.read("model", {"preset": "vgg16"})
    assert errors and values["preset"] == "course"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_network_or_a_course_error(text):
    try:
        spec = ModelSpec.from_text(text)
    except CourseError:
        return
    assert 1 <= len(spec.layers) <= MAX_LAYERS
    assert canonical(ModelSpec.from_text(spec.to_text())) == canonical(spec)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcdefghilmnoprstuvxyz0123456789_-.~", max_size=120))
def test_near_misses_are_a_network_or_a_course_error(text):
    try:
        ModelSpec.from_text(text)
    except CourseError:
        pass
