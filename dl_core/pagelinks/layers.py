"""The layers lab's link: `/layers?stride=2&padding=1`, `/layers?tab=pool&ceil_mode=0`, `/layers?preset=stride2`.

Conv tab: `input` and `kernel` (rows split by `;`, numbers by `,`: `1,2,0;0,1,2`), `stride`, `padding`,
`dilation`, `bias` and the `step` shown (1 = the first output cell). `preset` is a teacher's shortcut for one
of the course's three cases (`stride1`, `stride2`, `padding1`): the course's grids and that case's stride and
padding. Pooling tab: `pool_kernel`, `pool_stride` (absent: kernel_size, pooling's default), `pool_padding`,
`pool_dilation`, `ceil_mode` and `pool_step`. `tab` opens a tab (`conv`, `multi`, `pool`, `act`, `flat`,
`img`). Pooling uses the same `input` grid as the conv tab. Grid numbers travel as the grid editor shows
them (6 significant digits), so the largest grids fit in a link.

`check` refuses settings that cannot work together (a kernel larger than the padded input, a step past the
last output cell, a preset contradicted by the link) with the rules of `dl_core.arithmetic`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dl_core import links
from dl_core.arithmetic import conv_output_size, pool_settings
from dl_core.errors import CourseError
from dl_core.layers import COURSE_CASES, COURSE_INPUT, COURSE_KERNEL, GRID_MAX

TABS = ("conv", "multi", "pool", "act", "flat", "img")
MAX_STEP = 999  # more than any grid the lab allows has cells (check() holds the exact bound)
GRID_LIMIT = 1e6  # a cell's value: anything a student would type, nothing that overflows a product


def _floats(grid: list[list[int]]) -> list[list[float]]:
    return [[float(v) for v in row] for row in grid]


def shown(value: float) -> float:
    """A grid number as the lab's editor shows it (`%g`: 6 significant digits)."""
    return float(f"{float(value):.6g}")


def write_grid(rows: Sequence[Sequence[float]]) -> str:
    """`1,2,0;0,1,2`, each number as the editor shows it: a full 12×12 grid stays within one value's limit."""
    return links.write_grid([[shown(v) for v in row] for row in rows])


PARAMS: list[links.Param] = [
    links.Param("tab", links.choice(TABS), default="conv"),
    links.Param("preset", links.choice(tuple(COURSE_CASES)), default=None),
    links.Param("input", links.grid(GRID_MAX, GRID_MAX, -GRID_LIMIT, GRID_LIMIT), write_grid,
                _floats(COURSE_INPUT)),
    links.Param("kernel", links.grid(GRID_MAX, GRID_MAX, -GRID_LIMIT, GRID_LIMIT), write_grid,
                _floats(COURSE_KERNEL)),
    links.Param("stride", links.integer(1, 6), default=1),
    links.Param("padding", links.integer(0, 6), default=0),
    links.Param("dilation", links.integer(1, 4), default=1),
    links.Param("bias", links.number(-100, 100), links.write_number, 0.0),
    links.Param("step", links.integer(1, MAX_STEP), default=1),
    links.Param("pool_kernel", links.integer(1, 6), default=3),
    links.Param("pool_stride", links.integer(1, 6), default=None),  # None: stride = kernel_size
    links.Param("pool_padding", links.integer(0, 3), default=0),
    links.Param("pool_dilation", links.integer(1, 3), default=1),
    links.Param("ceil_mode", links.flag, links.write_flag, True),  # the notes' MaxPool2d(3, ceil_mode=True)
    links.Param("pool_step", links.integer(1, MAX_STEP), default=1),
]
DEFAULTS: dict[str, Any] = {p.name: p.default for p in PARAMS}
CONV_NAMES = ("input", "kernel", "stride", "padding", "dilation", "bias")


@dataclass(frozen=True)
class ConvLink:
    """The conv tab's settings a link names (a preset already expanded)."""

    input: list[list[float]]  # [H, W]
    kernel: list[list[float]]  # [kH, kW]
    stride: int
    padding: int
    dilation: int
    bias: float


@dataclass(frozen=True)
class PoolLink:
    """The pooling tab's settings; `stride` None means kernel_size (pooling's default)."""

    kernel_size: int
    stride: int | None
    padding: int
    dilation: int
    ceil_mode: bool


def preset_values(preset: str) -> dict[str, Any]:
    """What a course case sets: the course's grids, its stride and padding, dilation 1 and no bias."""
    stride, padding = COURSE_CASES[preset]
    return {**{n: DEFAULTS[n] for n in CONV_NAMES}, "stride": stride, "padding": padding}


def conv_of(values: Mapping[str, Any]) -> ConvLink:
    """The conv settings of read link values; a preset contradicted by another value raises link.layers_preset."""
    chosen = {n: values.get(n, DEFAULTS[n]) for n in CONV_NAMES}
    preset = values.get("preset")
    if preset is not None:
        wanted = preset_values(preset)
        for name in CONV_NAMES:
            if chosen[name] != DEFAULTS[name] and chosen[name] != wanted[name]:
                raise CourseError("link.layers_preset", "preset={preset} sets {name} itself; leave {name} out of "
                                  "the link", preset=preset, name=name)
        chosen = wanted
    return ConvLink(**chosen)


def pool_of(values: Mapping[str, Any]) -> PoolLink:
    return PoolLink(values.get("pool_kernel", 3), values.get("pool_stride"), values.get("pool_padding", 0),
                    values.get("pool_dilation", 1), bool(values.get("ceil_mode", True)))


def conv_cells(conv: ConvLink) -> int:
    """How many output cells (steps) the conv settings give; raises arith.* when the kernel does not fit."""
    h, w = len(conv.input), len(conv.input[0])
    kh, kw = len(conv.kernel), len(conv.kernel[0])
    return (conv_output_size(h, kh, conv.stride, conv.padding, conv.dilation)
            * conv_output_size(w, kw, conv.stride, conv.padding, conv.dilation))


def pool_cells(pool: PoolLink, input: list[list[float]]) -> int:
    """How many output cells MaxPool2d gives on `input`; raises arith.* for settings torch refuses."""
    k, s, p, d = pool_settings(pool.kernel_size, pool.stride, pool.padding, pool.dilation)
    return (conv_output_size(len(input), k, s, p, d, pool.ceil_mode)
            * conv_output_size(len(input[0]), k, s, p, d, pool.ceil_mode))


def _check_step(name: str, step: int, cells: int) -> None:
    if step > cells:
        raise CourseError("link.layers_step", "{name}={step}, but these settings give only {n} output cells",
                          name=name, step=step, n=cells)


def check(values: Mapping[str, Any]) -> None:
    """Raise CourseError when the link's values cannot work together (each one alone is already checked)."""
    conv = conv_of(values)
    _check_step("step", values.get("step", 1), conv_cells(conv))
    _check_step("pool_step", values.get("pool_step", 1), pool_cells(pool_of(values), conv.input))
