"""Conv/pool arithmetic against PyTorch: the course's numbers exactly, then hypothesis over settings."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dl_core.arithmetic import (
    as_grid, avgpool2d_trace, conv2d_multi_trace, conv2d_trace, conv_output_size, format_number,
    leftover, maxpool2d_trace, multiply_add, parse_grid_text, tiles_evenly,
)
from dl_core.errors import CourseError

INPUT = [[1, 2, 0, 3, 1], [0, 1, 2, 3, 1], [1, 2, 1, 0, 0], [5, 2, 3, 1, 1], [2, 1, 0, 1, 1]]
KERNEL = [[1, 2, 1], [0, 1, 0], [2, 1, 0]]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the course's numbers (COURSE.md steps 8 and 9) -------------------------------------------

@pytest.mark.parametrize("stride, padding, expected", [
    (1, 0, [[10, 12, 12], [18, 16, 16], [13, 9, 3]]),
    (2, 0, [[10, 12], [13, 3]]),
    (1, 1, [[1, 3, 4, 10, 8], [5, 10, 12, 12, 6], [7, 18, 16, 16, 8], [11, 13, 9, 3, 4], [14, 13, 9, 7, 4]]),
])
def test_course_conv_numbers(stride, padding, expected):
    trace = conv2d_trace(INPUT, KERNEL, stride=stride, padding=padding)
    assert trace.output.tolist() == expected
    assert len(trace.steps) == len(expected) * len(expected[0])
    assert [s.position for s in trace.steps][:2] == [(0, 0), (0, 1)]  # row-major


def test_course_first_step_written_out():
    step = conv2d_trace(INPUT, KERNEL).steps[0]
    assert step.window == ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2))
    assert step.products == (1, 4, 0, 0, 1, 0, 2, 2, 0)
    assert step.total == 10
    assert multiply_add(step) == "1×1 + 2×2 + 0×1 + 0×0 + 1×1 + 2×0 + 1×2 + 2×1 + 1×0 = 10"


def test_padding_window_in_padded_coordinates():
    trace = conv2d_trace(INPUT, KERNEL, padding=1)
    assert trace.padded.shape == (7, 7)
    first = trace.steps[0]
    assert first.window[0] == (0, 0) and first.values[0] == 0  # zero padding
    assert first.total == 1


def test_course_maxpool_numbers():
    assert maxpool2d_trace(INPUT, 3, ceil_mode=True).output.tolist() == [[2, 3], [5, 1]]
    assert maxpool2d_trace(INPUT, 3, ceil_mode=False).output.tolist() == [[2]]
    trace = maxpool2d_trace(INPUT, 3, ceil_mode=True)
    assert trace.stride == 3  # stride defaults to kernel_size
    hanging = trace.steps[1]  # the window hangs off the right edge: those cells are None
    assert hanging.values.count(None) == 3 and hanging.result == 3


def test_course_conv_on_images_shape():
    assert conv_output_size(32, 3) == 30  # Conv2d(3, 6, 3): [64,3,32,32] → [64,6,30,30]
    assert conv_output_size(32, 5, padding=2) == 32  # the course CNN keeps 32×32
    assert conv_output_size(32, 2, stride=2) == 16


def test_multi_channel_partial_sums_and_bias():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(-3, 4, (3, 5, 5), generator=gen).double()
    w = torch.randint(-2, 3, (2, 3, 3, 3), generator=gen).double()
    b = torch.tensor([1.0, -2.0], dtype=torch.float64)
    trace = conv2d_multi_trace(x, w, b, stride=1, padding=1)
    expected = F.conv2d(x[None], w, b, padding=1)[0]
    assert torch.allclose(trace.output, expected)
    assert trace.partials.shape == (2, 3, 5, 5)
    assert torch.allclose(trace.partials.sum(1) + b[:, None, None], expected)


# --- errors a student can make -----------------------------------------------------------------

@pytest.mark.parametrize("kwargs, code", [
    ({"stride": 0}, "arith.stride"),
    ({"padding": -1}, "arith.padding"),
    ({"dilation": 0}, "arith.dilation"),
    ({"dilation": 3}, "arith.kernel_too_big"),
    ({"stride": 1.5}, "arith.not_int"),
])
def test_conv_bad_settings(kwargs, code):
    with pytest.raises(CourseError) as exc:
        conv2d_trace(INPUT, KERNEL, **kwargs)
    assert exc.value.code == code


@pytest.mark.parametrize("grid, code", [
    ([], "grid.empty"),
    ([[]], "grid.empty"),
    ([[1, 2], [3]], "grid.ragged"),
    ([[1, "x"], [3, 4]], "grid.not_number"),
    ([[1, None], [3, 4]], "grid.empty_cell"),
    ([[1, float("nan")], [3, 4]], "grid.empty_cell"),
    ([[1, float("inf")], [3, 4]], "grid.not_number"),
    ([[1] * 40], "grid.too_big"),
    ([1, 2, 3], "grid.not_2d"),
])
def test_bad_grids(grid, code):
    with pytest.raises(CourseError) as exc:
        as_grid(grid)
    assert exc.value.code == code


def test_not_number_message_names_the_cell():
    with pytest.raises(CourseError) as exc:
        conv2d_trace([[1, 2], [3, "a"]], [[1]])
    assert exc.value.params["row"] == 2 and exc.value.params["col"] == 2
    assert "row 2, column 2" in str(exc.value)


def test_kernel_larger_than_padded_input():
    with pytest.raises(CourseError) as exc:
        conv2d_trace([[1, 2], [3, 4]], KERNEL)
    assert exc.value.code == "arith.kernel_too_big"
    assert conv2d_trace([[1, 2], [3, 4]], KERNEL, padding=1).output.shape == (2, 2)


def test_pool_padding_more_than_half_the_kernel():
    with pytest.raises(CourseError) as exc:
        maxpool2d_trace(INPUT, 2, padding=2)
    assert exc.value.code == "arith.pool_padding"
    with pytest.raises(RuntimeError):  # PyTorch refuses the same setting
        torch.nn.MaxPool2d(2, padding=2)(torch.zeros(1, 1, 5, 5))


def test_parse_grid_text_forms():
    course = "[[1, 2, 0, 3, 1],\n [0, 1, 2, 3, 1],\n [1, 2, 1, 0, 0],\n [5, 2, 3, 1, 1],\n [2, 1, 0, 1, 1]]"
    assert parse_grid_text(course).tolist() == INPUT
    assert parse_grid_text("torch.tensor([[1, 2], [3, 4]])").tolist() == [[1, 2], [3, 4]]
    assert parse_grid_text("1 2\n3, 4").tolist() == [[1, 2], [3, 4]]
    assert parse_grid_text("[1, 2, 3]").tolist() == [[1, 2, 3]]
    for text, code in [("", "grid.empty"), ("[[1, 2], [3", "grid.syntax"), ("1 2\n3", "grid.ragged"),
                       ("1 a", "grid.not_number"), ("[[1, __import__('os')]]", "grid.syntax")]:
        with pytest.raises(CourseError) as exc:
            parse_grid_text(text)
        assert exc.value.code == code, text


def test_format_number_and_tiling():
    assert [format_number(v) for v in (10.0, -2.0, 1 / 3, None)] == ["10", "-2", "0.3333", "·"]
    assert tiles_evenly(5, 3, 1) and tiles_evenly(5, 3, 2) and not tiles_evenly(6, 3, 2)
    assert leftover(6, 3, 2) == 1


# --- hypothesis: the traces and the formula equal PyTorch ---------------------------------------

@st.composite
def conv_case(draw):
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, padding, dilation = draw(st.integers(1, 3)), draw(st.integers(0, 2)), draw(st.integers(1, 2))
    values = st.integers(-5, 5)
    x = draw(st.lists(st.lists(values, min_size=w, max_size=w), min_size=h, max_size=h))
    k = draw(st.lists(st.lists(values, min_size=kw, max_size=kw), min_size=kh, max_size=kh))
    bias = draw(st.integers(-3, 3))
    return x, k, stride, padding, dilation, bias


@FAST
@given(conv_case())
def test_conv2d_trace_equals_torch(case):
    x, k, stride, padding, dilation, bias = case
    xt = torch.tensor(x, dtype=torch.float64)[None, None]
    kt = torch.tensor(k, dtype=torch.float64)[None, None]
    try:
        expected = F.conv2d(xt, kt, torch.tensor([float(bias)], dtype=torch.float64),
                            stride=stride, padding=padding, dilation=dilation)[0, 0]
    except RuntimeError:
        with pytest.raises(CourseError) as exc:
            conv2d_trace(x, k, stride, padding, dilation, bias)
        assert exc.value.code == "arith.kernel_too_big"
        return
    trace = conv2d_trace(torch.tensor(x), k, stride, padding, dilation, bias)  # tensors work too
    assert torch.equal(trace.output, expected)
    assert trace.out_shape == (conv_output_size(len(x), len(k), stride, padding, dilation),
                               conv_output_size(len(x[0]), len(k[0]), stride, padding, dilation))
    for step in trace.steps:
        assert step.total == math.fsum(step.products) + bias
        assert all(trace.padded[r, c] == v for (r, c), v in zip(step.window, step.values))


@st.composite
def pool_case(draw):
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    k = draw(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), st.integers(1, 4)))
    padding = draw(st.integers(0, k // 2))
    dilation = draw(st.integers(1, 2))
    ceil_mode = draw(st.booleans())
    x = draw(st.lists(st.lists(st.integers(-9, 9), min_size=w, max_size=w), min_size=h, max_size=h))
    return x, k, stride, padding, dilation, ceil_mode


@FAST
@given(pool_case())
def test_maxpool2d_trace_equals_torch(case):
    x, k, stride, padding, dilation, ceil_mode = case
    layer = torch.nn.MaxPool2d(k, stride, padding, dilation, ceil_mode=ceil_mode)
    try:
        expected = layer(torch.tensor(x, dtype=torch.float64)[None, None])[0, 0]
    except RuntimeError:
        with pytest.raises(CourseError):
            maxpool2d_trace(x, k, stride, padding, dilation, ceil_mode)
        return
    trace = maxpool2d_trace(x, k, stride, padding, dilation, ceil_mode)
    assert torch.equal(trace.output, expected)
    s = k if stride is None else stride
    assert trace.out_shape == tuple(conv_output_size(n, k, s, padding, dilation, ceil_mode) for n in (len(x), len(x[0])))


@FAST
@given(pool_case())
def test_avgpool2d_trace_equals_torch(case):
    x, k, stride, padding, _, ceil_mode = case
    layer = torch.nn.AvgPool2d(k, stride, padding, ceil_mode=ceil_mode)
    try:
        expected = layer(torch.tensor(x, dtype=torch.float64)[None, None])[0, 0]
    except RuntimeError:
        with pytest.raises(CourseError):
            avgpool2d_trace(x, k, stride, padding, ceil_mode)
        return
    assert torch.allclose(avgpool2d_trace(x, k, stride, padding, ceil_mode).output, expected)


@FAST
@given(st.integers(-2, 12), st.integers(-1, 6), st.integers(-1, 4), st.integers(-1, 3), st.integers(0, 3),
       st.booleans())
def test_conv_output_size_equals_torch_or_both_refuse(size, kernel, stride, padding, dilation, ceil_mode):
    if ceil_mode:
        assume(kernel < 1 or padding <= kernel // 2)  # pooling's own padding rule is maxpool2d_trace's job
    def torch_size():
        x = torch.zeros(1, 1, size, size)
        if ceil_mode:
            return torch.nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=True)(x).shape[-1]
        return F.conv2d(x, torch.zeros(1, 1, kernel, kernel), stride=stride, padding=padding,
                        dilation=dilation).shape[-1]

    try:
        expected = torch_size()
        ok = expected >= 1
    except (RuntimeError, ValueError):
        ok = False
    if ok:
        assert conv_output_size(size, kernel, stride, padding, dilation, ceil_mode) == expected
    else:
        with pytest.raises(CourseError):
            conv_output_size(size, kernel, stride, padding, dilation, ceil_mode)


def test_live_check_against_torch():
    from dl_core.arithmetic import matches
    assert matches(conv2d_trace(INPUT, KERNEL, 2, 1, 1, 3))
    assert matches(maxpool2d_trace(INPUT, 3, ceil_mode=True))
    assert matches(avgpool2d_trace(INPUT, 2, 1, 1, ceil_mode=True))


# --- the formula as the lab shows it: one owner (size_rule/size_report call conv_output_size) ---------

def test_size_report_plugs_in_the_numbers_and_matches_torch():
    from dl_core.arithmetic import size_report, size_rule
    assert size_rule() == "H_out = ⌊(H_in + 2×padding − dilation×(kernel_size−1) − 1) / stride + 1⌋"
    assert size_rule(True, pooling=True).startswith("H_out = ⌈(") and size_rule(True, True).endswith(
        "(ceil_mode=True)")
    lines = size_report((5, 6), (3, 3), stride=2).splitlines()
    assert lines[0] == size_rule()
    assert lines[1] == "H_out = ⌊(5 + 2×0 − 1×(3−1) − 1) / 2 + 1⌋ = ⌊2⌋ = 2"
    w_out = F.conv2d(torch.zeros(1, 1, 5, 6), torch.zeros(1, 1, 3, 3), stride=2).shape[-1]
    assert lines[2].endswith(f"= {w_out}") and lines[2].startswith("W_out = ⌊(6 + ")
    pooled = size_report((5, 5), (3, 3), 3, 0, 1, ceil_mode=True, pooling=True).splitlines()
    assert pooled[1].endswith(f"= {torch.nn.MaxPool2d(3, ceil_mode=True)(torch.zeros(1, 1, 5, 5)).shape[-1]}")
    with pytest.raises(CourseError):
        size_report((2, 2), (3, 3))  # the kernel does not fit: the same error as conv_output_size


def test_pool_settings_is_torchs_rule():
    from dl_core.arithmetic import pool_settings
    assert pool_settings(3, None, 1, 1) == (3, 3, 1, 1)  # pooling's stride defaults to kernel_size
    assert pool_settings(2, 1, 1, 2) == (2, 1, 1, 2)
    for args, code in (((3, None, 2, 1), "arith.pool_padding"), ((0, None, 0, 1), "arith.size"),
                       ((3, 0, 0, 1), "arith.stride"), ((3, None, 0, 0), "arith.dilation")):
        with pytest.raises(CourseError) as exc:
            pool_settings(*args)
        assert exc.value.code == code
    with pytest.raises(RuntimeError):  # torch refuses what pool_settings refuses
        torch.nn.MaxPool2d(3, padding=2)(torch.zeros(1, 1, 5, 5))
