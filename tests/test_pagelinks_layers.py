"""The layers lab's link (dl_core/pagelinks/layers.py): round trip, cross-field checks, hostile values."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dl_core import links, pagelinks
from dl_core.arithmetic import conv2d_trace, maxpool2d_trace
from dl_core.errors import CourseError
from dl_core.layers import COURSE_CASES, COURSE_INPUT, COURSE_KERNEL, GRID_MAX
from dl_core.pagelinks import layers as link

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEFAULTS = {p.name: p.default for p in link.PARAMS}

cell = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(link.shown)  # as the editor shows them


@st.composite
def grids(draw):
    h, w = draw(st.integers(1, GRID_MAX)), draw(st.integers(1, GRID_MAX))
    return [[draw(cell) for _ in range(w)] for _ in range(h)]


VALUES = st.fixed_dictionaries({
    "tab": st.sampled_from(link.TABS),
    "preset": st.none() | st.sampled_from(sorted(COURSE_CASES)),
    "input": grids(), "kernel": grids(),
    "stride": st.integers(1, 6), "padding": st.integers(0, 6), "dilation": st.integers(1, 4),
    "bias": st.floats(-100, 100, allow_nan=False), "step": st.integers(1, link.MAX_STEP),
    "pool_kernel": st.integers(1, 6), "pool_stride": st.none() | st.integers(1, 6),
    "pool_padding": st.integers(0, 3), "pool_dilation": st.integers(1, 3), "ceil_mode": st.booleans(),
    "pool_step": st.integers(1, link.MAX_STEP),
})


@FAST
@given(VALUES)
def test_every_value_round_trips(values):
    query = links.write(values, link.PARAMS)
    assert all(isinstance(v, str) for v in query.values())
    back, errors = links.read(query, link.PARAMS)
    assert not errors, [str(e) for e in errors]
    assert back == values


@FAST
@given(VALUES)
def test_a_link_is_either_refused_or_runs(values):
    """What check() lets through runs in the lab (traces equal to PyTorch's sizes); what it refuses is a CourseError."""
    try:
        link.check(values)
    except CourseError as exc:
        assert exc.code.startswith(("arith.", "link."))
        return
    conv = link.conv_of(values)
    trace = conv2d_trace(conv.input, conv.kernel, conv.stride, conv.padding, conv.dilation, conv.bias)
    assert values["step"] <= len(trace.steps)
    pool = link.pool_of(values)
    pooled = maxpool2d_trace(conv.input, pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode)
    assert values["pool_step"] <= len(pooled.steps)


@FAST
@given(grids(), grids())
def test_any_two_grids_fit_in_a_link_as_the_editor_shows_them(a, b):
    unrounded = [[v + 1e-7 * (i + 1) for i, v in enumerate(row)] for row in a]
    query = links.write({**DEFAULTS, "input": unrounded, "kernel": b}, link.PARAMS)
    assert all(len(v) <= links.MAX_VALUE_CHARS for v in query.values())
    back, errors = links.read(query, link.PARAMS)
    assert not errors
    assert back["input"] == [[link.shown(v) for v in row] for row in unrounded] and back["kernel"] == b


def test_the_course_link_gives_the_course_numbers():
    values, errors = pagelinks.read("layers", {"stride": "2", "lang": "en"})
    assert not errors and values["stride"] == 2 and values["input"] == COURSE_INPUT
    conv = link.conv_of(values)
    expected = F.conv2d(torch.tensor(COURSE_INPUT)[None, None], torch.tensor(COURSE_KERNEL)[None, None], stride=2)
    assert expected[0, 0].tolist() == [[10, 12], [13, 3]]  # PyTorch is the oracle
    assert conv2d_trace(conv.input, conv.kernel, conv.stride).output.tolist() == [[10, 12], [13, 3]]
    assert links.write(values, link.PARAMS) == {"stride": "2"}  # defaults left out: a short link


def test_presets_expand_and_refuse_a_contradiction():
    values, errors = pagelinks.read("layers", {"preset": "padding1", "step": "25"})
    assert not errors
    conv = link.conv_of(values)
    assert (conv.stride, conv.padding, conv.input) == (1, 1, DEFAULTS["input"])
    assert pagelinks.read("layers", {"preset": "stride2", "stride": "2"})[1] == []  # saying it twice is fine
    values, errors = pagelinks.read("layers", {"preset": "stride2", "padding": "1"})
    assert [e.code for e in errors] == ["link.layers_preset"] and values == DEFAULTS
    assert errors[0].params["name"] == "padding"


@pytest.mark.parametrize("query, code", [
    ({"dilation": "4"}, "arith.kernel_too_big"),  # reaches 9 cells on a 5×5 input
    ({"kernel": "1,1,1,1,1,1"}, "arith.kernel_too_big"),
    ({"step": "10"}, "link.layers_step"),  # 3×3 = 9 output cells
    ({"stride": "2", "step": "5"}, "link.layers_step"),
    ({"pool_padding": "2"}, "arith.pool_padding"),  # more than half of kernel_size 3
    ({"pool_kernel": "6", "ceil_mode": "0"}, "arith.kernel_too_big"),
    ({"ceil_mode": "0", "pool_step": "2"}, "link.layers_step"),  # MaxPool2d(3) floor: one cell
])
def test_settings_that_cannot_work_together_are_refused(query, code):
    values, errors = pagelinks.read("layers", query)
    assert [e.code for e in errors] == [code]
    assert values == DEFAULTS  # the page falls back to its defaults


HOSTILE = {
    "stride": ["-1", "99999999999", "0", "NaN", "2.5", "１００", "", "2;3", "<script>alert(1)</script>"],
    "padding": ["NaN", "inf", "-1", "1e3", "🙂"],
    "bias": ["nan", "inf", "-inf", "1e999", "101", "0x10"],
    "input": ["1,2;3", "", ";", "1,,2", "a,b", "1e999", ";".join([",".join(["1"] * 13)] * 2),
              ";".join(["1"] * 13), "1,2;3,4" * 1000],
    "kernel": ["nan", "1;2;x"],
    "tab": ["../../etc/passwd", "CONV", ""],
    "preset": ["stride3", "'; DROP TABLE"],
    "ceil_mode": ["maybe", "2"],
    "step": ["0", "1000", "-5"],
    "pool_stride": ["0", "7"],
}


@pytest.mark.parametrize("name, text", [(n, v) for n, texts in HOSTILE.items() for v in texts])
def test_hostile_values_are_named_and_give_the_defaults(name, text):
    values, errors = pagelinks.read("layers", {name: text})
    assert errors and all(isinstance(e, CourseError) and e.code.startswith("link.") for e in errors)
    assert values == DEFAULTS


def test_a_100kb_value_is_refused_before_reading():
    values, errors = pagelinks.read("layers", {"input": "1," * 50_000 + "1"})
    assert [e.code for e in errors] == ["link.too_long"] and values == DEFAULTS
    values, errors = pagelinks.read("layers", {f"x{i}": "1" * 100_000 for i in range(3)} | {"stride": "2"})
    assert not errors and values["stride"] == 2  # names the page does not know are left alone


def test_defaults_are_the_pages_defaults():
    assert DEFAULTS["input"] == COURSE_INPUT and DEFAULTS["kernel"] == COURSE_KERNEL
    assert links.write(DEFAULTS, link.PARAMS) == {}
    link.check(DEFAULTS)  # the defaults themselves work together
    assert all(not isinstance(v, float) or math.isfinite(v) for v in DEFAULTS.values())
