"""Conv and pool arithmetic: the size formula, written once for the whole project."""
from __future__ import annotations

import math

from dl_core.errors import CourseError


def conv_output_size(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """H_out = floor((H_in + 2*padding - dilation*(kernel_size-1) - 1)/stride + 1), PyTorch's rule.

    With ceil_mode (pooling) the division rounds up, but a last window that would start in
    the right padding is dropped, exactly as torch does.
    """
    if stride < 1:
        raise CourseError("arith.stride", "stride must be at least 1, got {stride}", stride=stride)
    if padding < 0:
        raise CourseError("arith.padding", "padding must be 0 or more, got {padding}", padding=padding)
    if dilation < 1:
        raise CourseError("arith.dilation", "dilation must be at least 1, got {dilation}", dilation=dilation)
    if kernel_size < 1 or size < 1:
        raise CourseError(
            "arith.size", "sizes must be at least 1, got input {size} and kernel {kernel}",
            size=size, kernel=kernel_size,
        )
    span = dilation * (kernel_size - 1) + 1  # how far one window reaches
    room = size + 2 * padding - span
    if room < 0:
        raise CourseError(
            "arith.kernel_too_big",
            "the kernel reaches {span} cells but the padded input has only {padded}",
            span=span, padded=size + 2 * padding,
        )
    out = (math.ceil(room / stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # torch: the last pooling window must start inside the input or left padding
    return out


def tiles_evenly(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> bool:
    """True when the windows end exactly at the padded input's edge (nothing floored away)."""
    span = dilation * (kernel_size - 1) + 1
    return (size + 2 * padding - span) % stride == 0
