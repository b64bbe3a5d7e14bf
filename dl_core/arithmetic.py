"""Conv and pool arithmetic: the size formula, written once for the whole project, and step traces.

`conv_output_size` is the one place the output-size formula lives (the model builder, the layers
lab and the tests all call it). The traces replay `F.conv2d`, `nn.MaxPool2d` and `nn.AvgPool2d`
one output cell at a time, so a page can show *why* each number is what it is; their `.output`
equals PyTorch's (the tests check it with hypothesis).
"""
from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real

import torch
import torch.nn.functional as F

from dl_core.errors import CourseError

Cell = tuple[int, int]
GridLike = torch.Tensor | Sequence[Sequence[object]]

MAX_GRID = 32  # the lab steps through every cell: beyond 32×32 a student would not read it anyway


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
    stride, padding, dilation = _check_settings(stride, padding, dilation)
    if kernel_size < 1 or size < 1:
        raise CourseError(
            "arith.size", "sizes must be at least 1, got input {size} and kernel {kernel}",
            size=size, kernel=kernel_size,
        )
    span = dilation * (kernel_size - 1) + 1  # how far one window reaches
    room = size + 2 * padding - span
    # math.ceil/floor on the exact quotient is torch's div_rtn; with ceil_mode a window may hang
    # off the edge, so a slightly too large kernel can still give one output (torch agrees).
    out = (math.ceil(room / stride) if ceil_mode else room // stride) + 1
    if ceil_mode and out > 1 and (out - 1) * stride >= size + padding:
        out -= 1  # torch: the last pooling window must start inside the input or left padding
    if out < 1:
        raise CourseError(
            "arith.kernel_too_big",
            "the kernel reaches {span} cells but the padded input has only {padded}",
            span=span, padded=size + 2 * padding,
        )
    return out


def tiles_evenly(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> bool:
    """True when the windows end exactly at the padded input's edge (nothing floored away)."""
    span = dilation * (kernel_size - 1) + 1
    return (size + 2 * padding - span) % stride == 0


def leftover(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """How many rows (or columns) at the padded input's far edge no window reaches (floor mode)."""
    span = dilation * (kernel_size - 1) + 1
    return (size + 2 * padding - span) % stride


# ---------------------------------------------------------------------------------------------
# Grids: what a student types (nested lists, text, a table) → a 2-D float64 tensor.
# ---------------------------------------------------------------------------------------------

def _number(value: object, row: int, col: int, name: str) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip()):
        raise CourseError("grid.empty_cell", "{name}: row {row}, column {col} is empty", name=name, row=row + 1, col=col + 1)
    if isinstance(value, bool):  # True is an int in Python, but not a number a student meant
        value = str(value)
    if isinstance(value, str):
        text = value.strip().replace("，", ",").replace("－", "-")
        try:
            value = float(text)
        except ValueError:
            raise CourseError("grid.not_number", "{name}: row {row}, column {col} is not a number: {value!r}",
                              name=name, row=row + 1, col=col + 1, value=value) from None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if not isinstance(value, Real):
        try:
            value = float(value)  # numpy scalars
        except (TypeError, ValueError):
            raise CourseError("grid.not_number", "{name}: row {row}, column {col} is not a number: {value!r}",
                              name=name, row=row + 1, col=col + 1, value=str(value)) from None
    value = float(value)
    if not math.isfinite(value):
        raise CourseError("grid.not_number", "{name}: row {row}, column {col} is not a number: {value!r}",
                          name=name, row=row + 1, col=col + 1, value=str(value))
    return value


def as_grid(cells: GridLike, name: str = "input", max_size: int = MAX_GRID) -> torch.Tensor:
    """Nested lists (or a 2-D tensor, or [1,1,H,W]) → float64 [H, W], with clear errors.

    Empty grids, ragged rows, non-numeric or empty cells, NaN/inf and grids larger than
    `max_size` per side raise CourseError (codes grid.*).
    """
    if isinstance(cells, torch.Tensor):
        x = cells.detach()
        while x.dim() > 2 and x.shape[0] == 1:
            x = x[0]
        if x.dim() != 2:
            raise CourseError("grid.not_2d", "{name} must be a 2-D grid, got shape {shape}",
                              name=name, shape=list(cells.shape))
        rows = x.tolist()
    else:
        rows = [list(r) if isinstance(r, (list, tuple)) or hasattr(r, "__iter__") and not isinstance(r, str)
                else r for r in cells]
    if not rows or all(isinstance(r, list) and not r for r in rows):
        raise CourseError("grid.empty", "{name} is empty", name=name)
    if any(not isinstance(r, list) for r in rows):
        raise CourseError("grid.not_2d", "{name} must be a 2-D grid (a list of rows), got shape {shape}",
                          name=name, shape=[len(rows)])
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width or not r:
            raise CourseError("grid.ragged", "{name}: row {row} has {got} numbers, row 1 has {want}",
                              name=name, row=i + 1, got=len(r), want=width)
    if len(rows) > max_size or width > max_size:
        raise CourseError("grid.too_big", "{name} is {h}×{w}; at most {limit}×{limit} here",
                          name=name, h=len(rows), w=width, limit=max_size)
    values = [[_number(v, i, j, name) for j, v in enumerate(r)] for i, r in enumerate(rows)]
    return torch.tensor(values, dtype=torch.float64)


def parse_grid_text(text: str, name: str = "input", max_size: int = MAX_GRID) -> torch.Tensor:
    """A grid typed as text → float64 [H, W].

    Accepts the course's Python literal (`[[1, 2, 0], [0, 1, 2]]`, also wrapped in
    `torch.tensor(...)`) or one row per line with numbers separated by spaces or commas.
    """
    body = text.strip()
    if body.startswith("torch.tensor(") and body.endswith(")"):
        body = body[len("torch.tensor("):-1].strip()
    if not body:
        raise CourseError("grid.empty", "{name} is empty", name=name)
    if body.startswith("["):
        try:
            rows = ast.literal_eval(body)  # literals only: never eval a student's text
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise CourseError("grid.syntax", "{name}: cannot read this as a list of rows", name=name) from None
        if isinstance(rows, (int, float)) or not isinstance(rows, (list, tuple)):
            raise CourseError("grid.syntax", "{name}: cannot read this as a list of rows", name=name)
        if rows and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rows):
            rows = [rows]  # one row written as a flat list
        return as_grid([r if isinstance(r, (list, tuple)) else [r] for r in rows], name, max_size)
    lines = [ln.replace(",", " ").replace("，", " ").split() for ln in body.splitlines() if ln.strip()]
    return as_grid(lines, name, max_size)


def _scalar(value: object, name: str) -> float:
    return _number(value, 0, 0, name)


def _int_setting(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, Real)) or float(value) != int(value):
        raise CourseError("arith.not_int", "{name} must be a whole number, got {value}", name=name, value=value)
    return int(value)


# ---------------------------------------------------------------------------------------------
# Conv2d, one output cell at a time.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvStep:
    """One output cell of a convolution: where it is, what it read, what it added up."""

    position: Cell  # (row, col) in the output
    window: tuple[Cell, ...]  # input cells read, in padded coordinates, row-major over the kernel
    values: tuple[float, ...]  # the padded input at `window` (0 where it is padding)
    weights: tuple[float, ...]  # the kernel, row-major
    products: tuple[float, ...]  # values[i] * weights[i]
    bias: float
    total: float  # sum(products) + bias == output[position]


@dataclass(frozen=True, eq=False)
class ConvTrace:
    """`F.conv2d` on one channel, replayed: `.output` [H_out, W_out], `.steps` row-major."""

    input: torch.Tensor  # [H, W] float64, as given
    padded: torch.Tensor  # [H + 2p, W + 2p], zeros around
    kernel: torch.Tensor  # [kH, kW]
    stride: int
    padding: int
    dilation: int
    bias: float
    output: torch.Tensor  # [H_out, W_out] float64, equal to F.conv2d
    steps: tuple[ConvStep, ...]

    @property
    def out_shape(self) -> tuple[int, int]:
        return tuple(self.output.shape)


def _check_settings(stride: object, padding: object, dilation: object) -> tuple[int, int, int]:
    stride = _int_setting(stride, "stride")
    padding = _int_setting(padding, "padding")
    dilation = _int_setting(dilation, "dilation")
    if stride < 1:
        raise CourseError("arith.stride", "stride must be at least 1, got {stride}", stride=stride)
    if padding < 0:
        raise CourseError("arith.padding", "padding must be 0 or more, got {padding}", padding=padding)
    if dilation < 1:
        raise CourseError("arith.dilation", "dilation must be at least 1, got {dilation}", dilation=dilation)
    return stride, padding, dilation


def conv2d_trace(
    input: GridLike,
    kernel: GridLike,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    bias: float = 0,
) -> ConvTrace:
    """Replay `F.conv2d(input[1,1,H,W], kernel[1,1,kH,kW], bias=[bias], stride, padding, dilation)`.

    `input` [H, W] and `kernel` [kH, kW] may be nested lists or tensors. Each step holds one output
    cell (row-major): its window in padded coordinates, the element-wise products and their sum.
    """
    x = as_grid(input, "input")
    w = as_grid(kernel, "kernel")
    stride, padding, dilation = _check_settings(stride, padding, dilation)
    b = _scalar(bias, "bias")
    h_out = conv_output_size(x.shape[0], w.shape[0], stride, padding, dilation)
    w_out = conv_output_size(x.shape[1], w.shape[1], stride, padding, dilation)
    padded = F.pad(x, (padding, padding, padding, padding))
    weights = tuple(w.flatten().tolist())
    offsets = [(a * dilation, c * dilation) for a in range(w.shape[0]) for c in range(w.shape[1])]
    steps = []
    output = torch.empty(h_out, w_out, dtype=torch.float64)
    for i in range(h_out):
        for j in range(w_out):
            window = tuple((i * stride + da, j * stride + dc) for da, dc in offsets)
            values = tuple(float(padded[r, c]) for r, c in window)
            products = tuple(v * k for v, k in zip(values, weights))
            total = math.fsum(products) + b
            output[i, j] = total
            steps.append(ConvStep((i, j), window, values, weights, products, b, total))
    return ConvTrace(x, padded, w, stride, padding, dilation, b, output, tuple(steps))


@dataclass(frozen=True, eq=False)
class MultiConvTrace:
    """`F.conv2d` with C_in channels and C_out kernels, split into per-channel partial sums.

    output[o] = sum over c of channels[o][c].output + bias[o]: one kernel per output channel,
    each kernel has one [kH, kW] slice per input channel.
    """

    input: torch.Tensor  # [C_in, H, W]
    weight: torch.Tensor  # [C_out, C_in, kH, kW]
    bias: tuple[float, ...]  # [C_out]
    channels: tuple[tuple[ConvTrace, ...], ...]  # [C_out][C_in], each with bias 0
    output: torch.Tensor  # [C_out, H_out, W_out] float64, equal to F.conv2d

    @property
    def partials(self) -> torch.Tensor:
        """[C_out, C_in, H_out, W_out]: what each input channel contributes."""
        return torch.stack([torch.stack([t.output for t in row]) for row in self.channels])


def conv2d_multi_trace(
    input: torch.Tensor | Sequence[GridLike],
    weight: torch.Tensor | Sequence[Sequence[GridLike]],
    bias: Sequence[float] | torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> MultiConvTrace:
    """Replay `F.conv2d(input[1,C_in,H,W], weight[C_out,C_in,kH,kW], bias[C_out])` channel by channel."""
    chans = list(input) if not isinstance(input, torch.Tensor) else list(input.detach().to(torch.float64))
    kernels = list(weight) if not isinstance(weight, torch.Tensor) else list(weight.detach().to(torch.float64))
    if not chans:
        raise CourseError("grid.empty", "{name} is empty", name="input")
    if not kernels:
        raise CourseError("grid.empty", "{name} is empty", name="kernel")
    for o, k in enumerate(kernels):
        if len(k) != len(chans):
            raise CourseError("arith.channels", "kernel {index} has {got} slices but the input has {want} channels",
                              index=o + 1, got=len(k), want=len(chans))
    biases = [0.0] * len(kernels) if bias is None else [_scalar(v, "bias") for v in list(bias)]
    if len(biases) != len(kernels):
        raise CourseError("arith.bias_count", "{got} biases for {want} kernels", got=len(biases), want=len(kernels))
    x = [as_grid(c, f"input[{i}]") for i, c in enumerate(chans)]
    if any(c.shape != x[0].shape for c in x):
        raise CourseError("arith.channel_shapes", "all input channels must have the same size")
    rows = tuple(
        tuple(conv2d_trace(x[c], k[c], stride, padding, dilation, 0) for c in range(len(x)))
        for k in kernels
    )
    shapes = {t.kernel.shape for row in rows for t in row}
    if len(shapes) != 1:
        raise CourseError("arith.kernel_shapes", "all kernel slices must have the same size")
    output = torch.stack([sum(t.output for t in row) + b for row, b in zip(rows, biases)])
    weight_t = torch.stack([torch.stack([t.kernel for t in row]) for row in rows])
    return MultiConvTrace(torch.stack(x), weight_t, tuple(biases), rows, output)


# ---------------------------------------------------------------------------------------------
# Pooling, one output cell at a time.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolStep:
    """One output cell of a pooling layer.

    `window` lists every cell the (dilated) kernel covers, in padded coordinates; with ceil_mode
    it may reach past the padded edge. `values[i]` is None where the window sees no input
    (padding for max pooling, or off the edge); `used` marks the cells that count.
    """

    position: Cell
    window: tuple[Cell, ...]
    values: tuple[float | None, ...]
    result: float
    divisor: int  # avg pooling: what the sum is divided by; max pooling: 1
    argmax: Cell | None  # max pooling: the padded cell the maximum came from


@dataclass(frozen=True, eq=False)
class PoolTrace:
    """`nn.MaxPool2d` / `nn.AvgPool2d` replayed: `.output` [H_out, W_out], `.steps` row-major."""

    mode: str  # "max" or "avg"
    input: torch.Tensor  # [H, W]
    padded_shape: tuple[int, int]
    kernel_size: int
    stride: int
    padding: int
    dilation: int
    ceil_mode: bool
    output: torch.Tensor
    steps: tuple[PoolStep, ...]

    @property
    def out_shape(self) -> tuple[int, int]:
        return tuple(self.output.shape)


def pool_settings(kernel_size: object, stride: object, padding: object, dilation: object = 1
                  ) -> tuple[int, int, int, int]:
    """(kernel_size, stride, padding, dilation) checked as nn.MaxPool2d checks them; stride None → kernel_size."""
    kernel_size = _int_setting(kernel_size, "kernel_size")
    if kernel_size < 1:
        raise CourseError("arith.size", "sizes must be at least 1, got input {size} and kernel {kernel}",
                          size="?", kernel=kernel_size)
    stride = kernel_size if stride is None else stride  # pooling's default, unlike conv's 1
    stride, padding, dilation = _check_settings(stride, padding, dilation)
    if padding > kernel_size // 2:  # PyTorch's own rule for pooling
        raise CourseError("arith.pool_padding", "padding {padding} is more than half the kernel size {kernel}",
                          padding=padding, kernel=kernel_size)
    return kernel_size, stride, padding, dilation


def _pool_trace(mode: str, input: GridLike, kernel_size: int, stride: int | None, padding: int, dilation: int,
                ceil_mode: bool, count_include_pad: bool = True) -> PoolTrace:
    x = as_grid(input, "input")
    k, s, p, d = pool_settings(kernel_size, stride, padding, dilation)
    h, w = x.shape
    h_out = conv_output_size(h, k, s, p, d, ceil_mode)
    w_out = conv_output_size(w, k, s, p, d, ceil_mode)
    output = torch.empty(h_out, w_out, dtype=torch.float64)
    steps = []
    for i in range(h_out):
        for j in range(w_out):
            window = tuple((i * s + a * d, j * s + c * d) for a in range(k) for c in range(k))
            values: list[float | None] = []
            for r, c in window:
                inside = p <= r < h + p and p <= c < w + p
                if inside:
                    values.append(float(x[r - p, c - p]))
                elif mode == "avg" and r < h + 2 * p and c < w + 2 * p:
                    values.append(0.0)  # AvgPool counts zero padding (count_include_pad), never the overhang
                else:
                    values.append(None)
            seen = [(v, cell) for v, cell in zip(values, window) if v is not None]
            if mode == "max":
                best = max(seen, key=lambda vc: vc[0], default=(-math.inf, None))
                result, divisor, arg = best[0], 1, best[1]
            else:
                # torch: the divisor counts padding but not the ceil_mode overhang past it
                if count_include_pad:
                    divisor = (min(i * s + k, h + 2 * p) - i * s) * (min(j * s + k, w + 2 * p) - j * s)
                else:
                    divisor = (min(i * s + k, h + p) - max(i * s, p)) * (min(j * s + k, w + p) - max(j * s, p))
                    values = [v if v is None or (p <= r < h + p and p <= c < w + p) else None
                              for v, (r, c) in zip(values, window)]
                result, arg = math.fsum(v for v in values if v is not None) / divisor, None
            output[i, j] = result
            steps.append(PoolStep((i, j), window, tuple(values), result, divisor, arg))
    return PoolTrace(mode, x, (h + 2 * p, w + 2 * p), k, s, p, d, bool(ceil_mode), output, tuple(steps))


def maxpool2d_trace(
    input: GridLike,
    kernel_size: int,
    stride: int | None = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> PoolTrace:
    """Replay `nn.MaxPool2d(kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)` on [H, W].

    stride defaults to kernel_size (conv's default is 1). Padding counts as -inf: never the maximum.
    """
    return _pool_trace("max", input, kernel_size, stride, padding, dilation, ceil_mode)


def avgpool2d_trace(
    input: GridLike,
    kernel_size: int,
    stride: int | None = None,
    padding: int = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> PoolTrace:
    """Replay `nn.AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad)` on [H, W]."""
    return _pool_trace("avg", input, kernel_size, stride, padding, 1, ceil_mode, count_include_pad)


def format_number(value: float | None, digits: int = 4) -> str:
    """A grid number as a student writes it: 10 not 10.0, 0.3333 not 0.333333333."""
    if value is None:
        return "·"
    if value == -math.inf:
        return "-inf"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def multiply_add(step: ConvStep) -> str:
    """`1×1 + 2×2 + 0×1 + … = 10`: the step written out with its numbers (negatives in brackets)."""
    def num(v: float) -> str:
        text = format_number(v)
        return f"({text})" if v < 0 else text

    terms = " + ".join(f"{num(v)}×{num(k)}" for v, k in zip(step.values, step.weights))
    if step.bias:
        terms += f" + {num(step.bias)}"
    return f"{terms} = {format_number(step.total)}"


def conv2d_reference(trace: ConvTrace) -> torch.Tensor:
    """What PyTorch itself says for the trace's settings: F.conv2d(...)[0, 0], float64 [H_out, W_out]."""
    return F.conv2d(trace.input[None, None], trace.kernel[None, None],
                    torch.tensor([trace.bias], dtype=torch.float64),
                    stride=trace.stride, padding=trace.padding, dilation=trace.dilation)[0, 0]


def pool_reference(trace: PoolTrace) -> torch.Tensor:
    """What nn.MaxPool2d / nn.AvgPool2d say for the trace's settings, float64 [H_out, W_out]."""
    if trace.mode == "max":
        layer = torch.nn.MaxPool2d(trace.kernel_size, trace.stride, trace.padding, trace.dilation,
                                   ceil_mode=trace.ceil_mode)
    else:
        layer = torch.nn.AvgPool2d(trace.kernel_size, trace.stride, trace.padding, ceil_mode=trace.ceil_mode)
    return layer(trace.input[None, None])[0, 0]


def matches(trace: ConvTrace | PoolTrace) -> bool:
    """The live check: does the step-by-step output equal PyTorch's own?"""
    ref = conv2d_reference(trace) if isinstance(trace, ConvTrace) else pool_reference(trace)
    return ref.shape == trace.output.shape and torch.allclose(ref, trace.output, rtol=1e-9, atol=1e-9)


def pool_expression(step: PoolStep, mode: str) -> str:
    """`max(1, 2, 0, …) = 2` or `(1 + 2 + 0 + …) / 9 = 1.1111`; cells off the input are left out."""
    seen = [format_number(v) for v in step.values if v is not None]
    if mode == "max":
        return f"max({', '.join(seen)}) = {format_number(step.result)}"
    return f"({' + '.join(seen)}) / {step.divisor} = {format_number(step.result)}"


def size_rule(ceil_mode: bool = False, pooling: bool = False) -> str:
    """The output-size rule in words (conv_output_size's formula), ⌈…⌉ with ceil_mode; pooling names the mode."""
    lo, hi = ("⌈", "⌉") if ceil_mode else ("⌊", "⌋")
    rule = f"H_out = {lo}(H_in + 2×padding − dilation×(kernel_size−1) − 1) / stride + 1{hi}"
    return f"{rule}  (ceil_mode={ceil_mode})" if pooling else rule


def size_report(in_shape: tuple[int, int], kernel_shape: tuple[int, int], stride: int = 1, padding: int = 0,
                dilation: int = 1, ceil_mode: bool = False, pooling: bool = False) -> str:
    """Three lines: the rule, then H_out and W_out with the numbers plugged in (what the layers lab shows)."""
    (h, w), (kh, kw) = in_shape, kernel_shape
    return "\n".join((size_rule(ceil_mode, pooling),
                      f"H_out = {size_formula(h, kh, stride, padding, dilation, ceil_mode)}",
                      f"W_out = {size_formula(w, kw, stride, padding, dilation, ceil_mode)}"))


def size_formula(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                 ceil_mode: bool = False) -> str:
    """The output-size formula with the numbers plugged in, ending in conv_output_size's answer."""
    lo, hi = ("⌈", "⌉") if ceil_mode else ("⌊", "⌋")
    room = size + 2 * padding - dilation * (kernel_size - 1) - 1
    exact = room / stride + 1
    text = (f"{lo}({size} + 2×{padding} − {dilation}×({kernel_size}−1) − 1) / {stride} + 1{hi}"
            f" = {lo}{format_number(exact)}{hi} = {conv_output_size(size, kernel_size, stride, padding, dilation, ceil_mode)}")
    return text
