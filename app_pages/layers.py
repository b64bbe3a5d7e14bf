"""Layers lab (course steps 7–11): conv2d arithmetic cell by cell, multi-channel conv, pooling,
activations, Flatten/Linear, and the same layers on real images.

Explanation → inputs → one call into dl_core per section → rendering. The last valid grids and
settings live under `layers.*` session keys, so bad input shows a message and keeps them.
"""
from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dl_core.arithmetic import (
    ConvTrace, PoolTrace, as_grid, avgpool2d_trace, conv2d_multi_trace, conv2d_reference, conv2d_trace,
    format_number, leftover, matches, maxpool2d_trace, multiply_add, parse_grid_text,
    pool_expression, pool_reference, size_formula, tiles_evenly,
)
from dl_core.codegen.layers import (
    activation_code, conv_code, flatten_code, image_layers_code, multi_conv_code, pool_code,
)
from dl_core.errors import CourseError
from dl_core.layers import (
    ACTIVATIONS, COURSE_CASES, COURSE_INPUT, COURSE_KERNEL, KERNEL_PRESETS, MULTI_BIAS, MULTI_INPUT, MULTI_WEIGHT,
    activation_curves, activation_on_image, course_reshape, decode_image, feature_map_display,
    flatten_linear_walk, flatten_shapes, image_layers, inplace_demo, sample_pattern,
)
from ui.code import show_code
from ui.i18n import catalog, error_text, lang, prose, t

PLAY_EVERY = 0.8  # seconds per cell while playing: slow enough to read the multiply-add
GRID_MAX = 12  # editable grid sides: small enough to read every number

# Cell styles for the HTML grids (explicit colours: readable in light and dark themes).
STYLE = {
    "in": "background:#f4f6fa;color:#1f2937;border:1px solid #c9d2de",
    "pad": "background:#e9ecf1;color:#98a2ae;border:1px dashed #aeb8c4",
    "win": "background:#ffe39a;color:#111827;border:2px solid #d99a00",
    "winpad": "background:#fff1c2;color:#8a7a44;border:2px dashed #d99a00",
    "off": "background:#fff7ed;color:#c2410c;border:2px dashed #f59e0b",
    "best": "background:#ffb347;color:#111827;border:2px solid #c2410c;font-weight:700",
    "done": "background:#d7f0e0;color:#14532d;border:1px solid #8cc9a3",
    "cur": "background:#ff9f43;color:#111827;border:2px solid #c2410c;font-weight:700",
    "todo": "background:#f8f8f8;color:#bdbdbd;border:1px dashed #d0d0d0",
    "kernel": "background:#e0ecff;color:#1e3a8a;border:1px solid #93b4f0",
}


# ----------------------------------------------------------------------------------------------
# Small rendering helpers (HTML grids, images)
# ----------------------------------------------------------------------------------------------

def grid_html(cells: list[list[tuple[str, str, str]]], caption: str, name: str) -> str:
    """A grid of (text, style, subscript) cells as an HTML table; `name` tags it for tests."""
    rows = []
    for i, row in enumerate(cells):
        tds = []
        for j, (text, style, sub) in enumerate(row):
            sub_html = f"<div style='font-size:0.62rem;color:#1e40af;line-height:1'>{html.escape(sub)}</div>" if sub else ""
            tds.append(
                f"<td data-cell='{name}-{i}-{j}' style='{STYLE[style]};width:2.6rem;height:2.4rem;"
                f"text-align:center;vertical-align:middle;padding:0 2px;font-family:monospace;"
                f"font-size:0.95rem'>{html.escape(text)}{sub_html}</td>"
            )
        rows.append("<tr>" + "".join(tds) + "</tr>")
    return (f"<div style='overflow-x:auto'><table data-grid='{name}' style='border-collapse:separate;"
            f"border-spacing:3px;margin:0 0 0.3rem 0'><caption style='caption-side:top;text-align:left;"
            f"font-size:0.85rem;color:#6b7280;padding-bottom:2px'>{html.escape(caption)}</caption>"
            f"{''.join(rows)}</table></div>")


def show_grid(cells, caption: str, name: str) -> None:
    st.markdown(grid_html(cells, caption, name), unsafe_allow_html=True)


def plain_cells(grid) -> list[list[tuple[str, str, str]]]:
    values = grid.tolist() if hasattr(grid, "tolist") else grid
    return [[(format_number(v), "kernel", "") for v in row] for row in values]


def output_cells(output, current: int, style_done: str = "done") -> list[list[tuple[str, str, str]]]:
    """Output cells: computed up to step `current` (1-based), the current one highlighted."""
    h, w = output.shape
    cells = []
    for i in range(h):
        row = []
        for j in range(w):
            index = i * w + j + 1
            if index < current:
                row.append((format_number(float(output[i, j])), style_done, ""))
            elif index == current:
                row.append((format_number(float(output[i, j])), "cur", ""))
            else:
                row.append(("?", "todo", ""))
        cells.append(row)
    return cells


def conv_input_cells(trace: ConvTrace, step_index: int) -> list[list[tuple[str, str, str]]]:
    """The padded input: zero padding drawn, the current window highlighted with the kernel's weights."""
    step = trace.steps[step_index]
    weights = {cell: w for cell, w in zip(step.window, step.weights)}
    p = trace.padding
    h, w = trace.padded.shape
    cells = []
    for r in range(h):
        row = []
        for c in range(w):
            is_pad = not (p <= r < h - p and p <= c < w - p)
            text = format_number(float(trace.padded[r, c]))
            if (r, c) in weights:
                row.append((text, "winpad" if is_pad else "win", f"×{format_number(weights[(r, c)])}"))
            else:
                row.append((text, "pad" if is_pad else "in", ""))
        cells.append(row)
    return cells


def pool_input_cells(trace: PoolTrace, step_index: int) -> list[list[tuple[str, str, str]]]:
    """The input with its padding, grown to show a ceil_mode window hanging off the edge."""
    step = trace.steps[step_index]
    window = set(step.window)
    p = trace.padding
    ph, pw = trace.padded_shape
    reach_r = max(r for s in trace.steps for r, _ in s.window) + 1
    reach_c = max(c for s in trace.steps for _, c in s.window) + 1
    cells = []
    for r in range(max(ph, reach_r)):
        row = []
        for c in range(max(pw, reach_c)):
            inside = p <= r < ph - p and p <= c < pw - p
            in_padded = r < ph and c < pw
            if inside:
                text = format_number(float(trace.input[r - p, c - p]))
            elif in_padded:
                text = "0" if trace.mode == "avg" else "-inf"
            else:
                text = "·"
            if (r, c) in window:
                style = "best" if (r, c) == step.argmax else ("win" if inside else ("winpad" if in_padded else "off"))
            else:
                style = "in" if inside else ("pad" if in_padded else "todo")
                if not in_padded:
                    text = ""
            row.append((text, style, ""))
        cells.append(row)
    return cells


def to_image(x) -> np.ndarray:
    """[C,H,W] float tensor (0..1, clipped like add_images) → HWC numpy for st.image."""
    arr = x.clamp(0, 1).permute(1, 2, 0).numpy()
    return arr[:, :, 0] if arr.shape[2] == 1 else arr


def keep_int(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


# ----------------------------------------------------------------------------------------------
# Session state: last valid grids and settings
# ----------------------------------------------------------------------------------------------

def init_state() -> None:
    ss = st.session_state
    ss.setdefault("layers.grid.input", [list(map(float, r)) for r in COURSE_INPUT])
    ss.setdefault("layers.grid.kernel", [list(map(float, r)) for r in COURSE_KERNEL])
    ss.setdefault("layers.grid.ver", 0)
    last = ss.setdefault("layers.conv.valid", {"stride": 1, "padding": 0, "dilation": 1, "bias": 0.0})
    for name in ("stride", "padding", "dilation", "bias"):
        ss.setdefault(f"layers.conv.{name}", last[name])
    for which in ("input", "kernel"):
        grid = ss[f"layers.grid.{which}"]
        ss.setdefault(f"layers.grid.{which}.rows", len(grid))
        ss.setdefault(f"layers.grid.{which}.cols", len(grid[0]))
    ss.setdefault("layers.conv.step", 1)
    ss.setdefault("layers.pool.step", 1)
    ss.setdefault("layers.multi.step", 1)
    pool_last = ss.setdefault("layers.pool.valid", {"kernel": 3, "default_stride": True, "stride": 3,
                                                   "padding": 0, "dilation": 1, "ceil_mode": True})
    for name in ("kernel", "default_stride", "stride", "padding", "dilation", "ceil_mode"):
        ss.setdefault(f"layers.pool.{name}", pool_last[name])


def set_grid(which: str, grid: list[list[float]]) -> None:
    """Callback-only: replace a grid (and the size widgets), and give the editor a fresh key."""
    ss = st.session_state
    ss[f"layers.grid.{which}"] = grid
    ss[f"layers.grid.{which}.rows"] = len(grid)
    ss[f"layers.grid.{which}.cols"] = len(grid[0])
    ss[f"layers.grid.{which}_text"] = str([[keep_int(v) for v in row] for row in grid])
    ss["layers.grid.ver"] += 1


def on_preset(case: str) -> None:
    stride, padding = COURSE_CASES[case]
    set_grid("input", [list(map(float, r)) for r in COURSE_INPUT])
    set_grid("kernel", [list(map(float, r)) for r in COURSE_KERNEL])
    ss = st.session_state
    ss["layers.conv.stride"], ss["layers.conv.padding"] = stride, padding
    ss["layers.conv.dilation"], ss["layers.conv.bias"] = 1, 0.0
    ss["layers.conv.step"] = 1
    ss["layers.conv.playing"] = False


def on_resize(which: str) -> None:
    ss = st.session_state
    rows, cols = int(ss[f"layers.grid.{which}.rows"]), int(ss[f"layers.grid.{which}.cols"])
    old = ss[f"layers.grid.{which}"]
    grid = [[old[i][j] if i < len(old) and j < len(old[0]) else 0.0 for j in range(cols)] for i in range(rows)]
    set_grid(which, grid)


def on_text_apply() -> None:
    ss = st.session_state
    ss.pop("layers.grid.text_error", None)
    try:
        x = parse_grid_text(ss.get("layers.grid.input_text", ""), t("layers.grid.input_name"), GRID_MAX)
        k = parse_grid_text(ss.get("layers.grid.kernel_text", ""), t("layers.grid.kernel_name"), GRID_MAX)
    except CourseError as exc:
        ss["layers.grid.text_error"] = exc
        return
    set_grid("input", x.tolist())
    set_grid("kernel", k.tolist())


def on_play(prefix: str) -> None:
    ss = st.session_state
    playing = not ss.get(f"{prefix}.playing", False)
    ss[f"{prefix}.playing"] = playing
    if playing:
        ss[f"{prefix}.play_started"] = True
        if ss.get(f"{prefix}.step", 1) >= ss.get(f"{prefix}.n", 1):
            ss[f"{prefix}.step"] = 1


def on_move(prefix: str, delta: int | None, to: int | None = None) -> None:
    ss = st.session_state
    n = ss.get(f"{prefix}.n", 1)
    value = to if to is not None else ss.get(f"{prefix}.step", 1) + delta
    ss[f"{prefix}.step"] = min(max(1, value), n)
    ss[f"{prefix}.playing"] = False


def grid_editor(which: str) -> list[list[float]]:
    """An st.data_editor for a grid; returns the edited numbers, or the last valid grid on bad input."""
    ss = st.session_state
    stored = ss[f"layers.grid.{which}"]
    frame = pd.DataFrame(stored, columns=[str(j) for j in range(len(stored[0]))], dtype="float64")
    config = {c: st.column_config.NumberColumn(c, format="%g", width=52) for c in frame.columns}
    edited = st.data_editor(frame, key=f"layers.grid.{which}.editor.{ss['layers.grid.ver']}",
                            column_config=config, hide_index=True, width="content")
    try:
        grid = as_grid(edited.values.tolist(), t(f"layers.grid.{which}_name"), GRID_MAX).tolist()
    except CourseError as exc:
        st.error(error_text(exc))
        return stored
    if grid != stored:
        ss[f"layers.grid.{which}"] = grid
    return grid


def step_controls(prefix: str, n: int, play: bool = True) -> None:
    """⏮ ◀ ▶ ⏭ buttons (inside the fragment: only the fragment reruns) and the step slider."""
    cols = st.columns([1.2, 1.2, 1.2, 1.2, 4.5], vertical_alignment="bottom")
    moves = (("go_first", "first", ":material/first_page:", (prefix, None, 1)),
             ("go_prev", "prev", ":material/chevron_left:", (prefix, -1)),
             ("go_next", "next", ":material/chevron_right:", (prefix, 1)),
             ("go_last", "last", ":material/last_page:", (prefix, None, n)))
    for col, (key, word, icon, args) in zip(cols, moves):
        col.button(t(f"layers.step.{word}"), key=f"{prefix}.{key}", icon=icon, on_click=on_move, args=args,
                   width="stretch")
    if n > 1:
        cols[4].slider(t("layers.step.slider", n=n), 1, n, key=f"{prefix}.step")
    else:
        cols[4].caption(t("layers.step.only_one"))


def play_button(prefix: str) -> None:
    playing = st.session_state.get(f"{prefix}.playing", False)
    st.button(t("layers.step.pause") if playing else t("layers.step.play"), key=f"{prefix}.play",
              icon=":material/pause:" if playing else ":material/play_arrow:", on_click=on_play, args=(prefix,))


def advance_if_playing(prefix: str, n: int) -> None:
    """Called at the top of a fragment run: one cell further per timer tick; stop at the end."""
    ss = st.session_state
    if not ss.get(f"{prefix}.playing", False):
        return
    if ss.pop(f"{prefix}.play_started", False):
        return  # the run the play button caused shows the current cell first
    if ss.get(f"{prefix}.step", 1) >= n:
        ss[f"{prefix}.playing"] = False
        st.rerun()  # a full run, so the fragment is drawn again without its timer
    ss[f"{prefix}.step"] = ss.get(f"{prefix}.step", 1) + 1


# ----------------------------------------------------------------------------------------------
# The conv stepper (a fragment: stepping and autoplay rerun only this part of the page)
# ----------------------------------------------------------------------------------------------

def stepper(prefix: str, steps: tuple) -> tuple:
    """Advance when playing, draw the step controls; returns (k, n, the k-th step), k counted from 1."""
    n = len(steps)
    advance_if_playing(prefix, n)
    step_controls(prefix, n)
    k = min(st.session_state.get(f"{prefix}.step", 1), n)
    return k, n, steps[k - 1]


def conv_stepper(trace: ConvTrace) -> None:
    k, n, step = stepper("layers.conv", trace.steps)
    i, j = step.position
    st.markdown(t("layers.conv.step_title", k=k, n=n, i=i, j=j))
    st.markdown(f"`output[{i}][{j}] = {multiply_add(step)}`")
    left, mid, right = st.columns([3, 2, 2])
    with left:
        show_grid(conv_input_cells(trace, k - 1), t("layers.conv.padded_caption", p=trace.padding), "conv-input")
    with mid:
        show_grid(plain_cells(trace.kernel), t("layers.conv.kernel_caption"), "conv-kernel")
    with right:
        show_grid(output_cells(trace.output, k), t("layers.conv.output_caption", h=trace.out_shape[0],
                                                   w=trace.out_shape[1]), "conv-output")


def pool_stepper(trace: PoolTrace, avg: PoolTrace | None) -> None:
    k, n, step = stepper("layers.pool", trace.steps)
    i, j = step.position
    st.markdown(t("layers.pool.step_title", k=k, n=n, i=i, j=j))
    st.markdown(f"`MaxPool2d: output[{i}][{j}] = {pool_expression(step, 'max')}`")
    if avg is not None and len(avg.steps) == n:
        st.markdown(f"`AvgPool2d: output[{i}][{j}] = {pool_expression(avg.steps[k - 1], 'avg')}`")
    if None in step.values:
        st.caption(t("layers.pool.overhang"))
    left, mid, right = st.columns([3, 2, 2])
    with left:
        show_grid(pool_input_cells(trace, k - 1), t("layers.pool.input_caption", p=trace.padding), "pool-input")
    with mid:
        show_grid(output_cells(trace.output, k), t("layers.pool.max_caption", h=trace.out_shape[0],
                                                   w=trace.out_shape[1]), "pool-output")
    with right:
        if avg is not None:
            show_grid(output_cells(avg.output, k), t("layers.pool.avg_caption"), "pool-avg")
        else:
            st.info(t("layers.pool.avg_no_dilation"))


# ----------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------

def conv_section() -> None:
    st.markdown(prose("layers_conv"))
    st.markdown(f"**{t('layers.conv.presets')}**")
    cols = st.columns(3)
    for col, case in zip(cols, COURSE_CASES):
        col.button(t(f"layers.conv.preset.{case}"), key=f"layers.conv.preset.{case}", on_click=on_preset,
                   args=(case,), width="stretch")

    grid_col, kernel_col, settings_col = st.columns([5, 4, 3])
    with grid_col:
        st.markdown(f"**{t('layers.grid.input_title')}**")
        a, b = st.columns(2)
        a.number_input(t("layers.grid.rows"), 1, GRID_MAX, key="layers.grid.input.rows", on_change=on_resize,
                       args=("input",))
        b.number_input(t("layers.grid.cols"), 1, GRID_MAX, key="layers.grid.input.cols", on_change=on_resize,
                       args=("input",))
        x = grid_editor("input")
    with kernel_col:
        st.markdown(f"**{t('layers.grid.kernel_title')}**")
        a, b = st.columns(2)
        a.number_input(t("layers.grid.rows"), 1, GRID_MAX, key="layers.grid.kernel.rows", on_change=on_resize,
                       args=("kernel",))
        b.number_input(t("layers.grid.cols"), 1, GRID_MAX, key="layers.grid.kernel.cols", on_change=on_resize,
                       args=("kernel",))
        k = grid_editor("kernel")
    with settings_col:
        st.number_input("stride", -1, 6, key="layers.conv.stride", help=t("layers.conv.stride_help"))
        st.number_input("padding", -2, 6, key="layers.conv.padding", help=t("layers.conv.padding_help"))
        st.number_input("dilation", 0, 4, key="layers.conv.dilation", help=t("layers.conv.dilation_help"))
        st.number_input("bias", -100.0, 100.0, step=1.0, format="%g", key="layers.conv.bias", help=t("layers.conv.bias_help"))

    with st.expander(t("layers.grid.text_title"), icon=":material/edit_note:"):
        st.caption(t("layers.grid.text_help"))
        ss = st.session_state
        ss.setdefault("layers.grid.input_text", str([[keep_int(v) for v in r] for r in COURSE_INPUT]))
        ss.setdefault("layers.grid.kernel_text", str([[keep_int(v) for v in r] for r in COURSE_KERNEL]))
        a, b = st.columns(2)
        a.text_area(t("layers.grid.input_name"), key="layers.grid.input_text", height=120)
        b.text_area(t("layers.grid.kernel_name"), key="layers.grid.kernel_text", height=120)
        st.button(t("layers.grid.text_apply"), key="layers.grid.text_apply", on_click=on_text_apply)
        if "layers.grid.text_error" in ss:
            st.error(error_text(ss["layers.grid.text_error"]))

    settings = {name: st.session_state[f"layers.conv.{name}"] for name in ("stride", "padding", "dilation", "bias")}
    try:
        trace = conv2d_trace(x, k, **settings)
        st.session_state["layers.conv.valid"] = {**settings, "input": x, "kernel": k}
    except CourseError as exc:
        st.error(error_text(exc))
        st.caption(t("layers.conv.showing_last"))
        valid = st.session_state["layers.conv.valid"]
        trace = conv2d_trace(valid.get("input", COURSE_INPUT), valid.get("kernel", COURSE_KERNEL),
                             **{name: valid[name] for name in ("stride", "padding", "dilation", "bias")})

    # the size formula, the tiling warning and the live check with PyTorch
    st.markdown(f"**{t('layers.conv.formula_title')}**")
    h_in, w_in = trace.input.shape
    kh, kw = trace.kernel.shape
    st.code(
        f"H_out = ⌊(H_in + 2×padding − dilation×(kernel_size−1) − 1) / stride + 1⌋\n"
        f"H_out = {size_formula(h_in, kh, trace.stride, trace.padding, trace.dilation)}\n"
        f"W_out = {size_formula(w_in, kw, trace.stride, trace.padding, trace.dilation)}",
        language=None,
    )
    for axis, size, ks in ((t("layers.conv.rows_word"), h_in, kh), (t("layers.conv.cols_word"), w_in, kw)):
        if not tiles_evenly(size, ks, trace.stride, trace.padding, trace.dilation):
            st.warning(t("layers.conv.uneven", axis=axis,
                         left=leftover(size, ks, trace.stride, trace.padding, trace.dilation)),
                       icon=":material/warning:")

    n = len(trace.steps)
    st.session_state["layers.conv.n"] = n
    if st.session_state.get("layers.conv.step", 1) > n:
        st.session_state["layers.conv.step"] = n
    play_button("layers.conv")
    playing = st.session_state.get("layers.conv.playing", False)
    st.fragment(conv_stepper, run_every=PLAY_EVERY if playing else None)(trace)

    if matches(trace):
        st.success(t("layers.conv.check_ok"), icon=":material/check_circle:")
    else:
        st.error(t("layers.conv.check_bad"))
    with st.expander(t("layers.conv.torch_says")):
        st.code(f"F.conv2d(...) =\n{number_rows(conv2d_reference(trace))}", language=None)
    show_code(conv_code(trace.input, trace.kernel, trace.stride, trace.padding, trace.dilation, trace.bias),
              key="layers.conv.code", filename="conv2d.py")


def number_rows(grid) -> str:
    """[[10, 12, 12], [18, 16, 16], ...]: a tensor's rows as the notes print them, without dtype noise."""
    return "[" + ", ".join("[" + ", ".join(format_number(v) for v in row) + "]" for row in grid.tolist()) + "]"


def multi_section() -> None:
    st.markdown(prose("layers_multi"))
    a, b, c = st.columns(3)
    stride = a.number_input("stride", 1, 3, value=1, key="layers.multi.stride")
    padding = b.number_input("padding", 0, 2, value=0, key="layers.multi.padding")
    o = c.segmented_control(t("layers.multi.out_channel"), [0, 1], default=0, key="layers.multi.out",
                            required=True, format_func=lambda v: f"out_channel {v}")
    multi = conv2d_multi_trace(MULTI_INPUT, MULTI_WEIGHT, MULTI_BIAS, stride=stride, padding=padding)
    rows = multi.channels[o]
    n = len(rows[0].steps)
    if st.session_state.get("layers.multi.step", 1) > n:
        st.session_state["layers.multi.step"] = n
    k = st.slider(t("layers.step.slider", n=n), 1, n, key="layers.multi.step")
    first = rows[0].steps[k - 1]
    i, j = first.position
    st.markdown(t("layers.multi.step_title", o=o, i=i, j=j))
    cols = st.columns(len(rows))
    partials = []
    for ch, (col, tr) in enumerate(zip(cols, rows)):
        step = tr.steps[k - 1]
        partials.append(step.total)
        with col:
            show_grid(conv_input_cells(tr, k - 1), t("layers.multi.channel_caption", c=ch), f"multi-in{ch}")
            st.caption(f"`{multiply_add(step)}`")
    total = multi.output[o][i, j].item()
    bias = multi.bias[o]
    sums = " + ".join(f"({format_number(p)})" if p < 0 else format_number(p) for p in partials)
    st.markdown(f"`output[{o}][{i}][{j}] = {sums} + {'(' + format_number(bias) + ')' if bias < 0 else format_number(bias)}"
                f" = {format_number(total)}`")
    st.caption(t("layers.multi.partials_explained"))
    out_cols = st.columns(len(multi.channels))
    for oc, col in enumerate(out_cols):
        with col:
            cells = output_cells(multi.output[oc], k if oc == o else multi.output[oc].numel() + 1)
            show_grid(cells, t("layers.multi.output_caption", o=oc), f"multi-out{oc}")
    st.info(t("layers.multi.course_shapes"))
    show_code(multi_conv_code(MULTI_INPUT, MULTI_WEIGHT, MULTI_BIAS, stride, padding), key="layers.multi.code",
              filename="conv2d_channels.py")


def on_pool_preset(ceil_mode: bool) -> None:
    ss = st.session_state
    set_grid("input", [list(map(float, r)) for r in COURSE_INPUT])
    ss["layers.pool.kernel"], ss["layers.pool.default_stride"], ss["layers.pool.stride"] = 3, True, 3
    ss["layers.pool.padding"], ss["layers.pool.dilation"], ss["layers.pool.ceil_mode"] = 0, 1, ceil_mode
    ss["layers.pool.step"], ss["layers.pool.playing"] = 1, False


def pool_section() -> None:
    st.markdown(prose("layers_pool"))
    a, b = st.columns(2)
    a.button(t("layers.pool.preset_ceil"), key="layers.pool.preset_ceil", on_click=on_pool_preset, args=(True,),
             width="stretch")
    b.button(t("layers.pool.preset_floor"), key="layers.pool.preset_floor", on_click=on_pool_preset, args=(False,),
             width="stretch")
    cols = st.columns(6, vertical_alignment="bottom")
    cols[0].number_input("kernel_size", 1, 6, key="layers.pool.kernel")
    default_stride = cols[1].checkbox(t("layers.pool.default_stride"), key="layers.pool.default_stride")
    cols[2].number_input("stride", -1, 6, key="layers.pool.stride", disabled=default_stride)
    cols[3].number_input("padding", -1, 3, key="layers.pool.padding", help=t("layers.pool.padding_help"))
    cols[4].number_input("dilation", 0, 3, key="layers.pool.dilation")
    cols[5].toggle("ceil_mode", key="layers.pool.ceil_mode")
    ss = st.session_state
    settings = {"kernel": ss["layers.pool.kernel"], "default_stride": default_stride, "stride": ss["layers.pool.stride"],
                "padding": ss["layers.pool.padding"], "dilation": ss["layers.pool.dilation"],
                "ceil_mode": ss["layers.pool.ceil_mode"]}
    x = ss["layers.grid.input"]
    st.caption(t("layers.pool.uses_input"))

    def run(s, x):
        stride = None if s["default_stride"] else s["stride"]
        mx = maxpool2d_trace(x, s["kernel"], stride, s["padding"], s["dilation"], s["ceil_mode"])
        avg = avgpool2d_trace(x, s["kernel"], stride, s["padding"], s["ceil_mode"]) if s["dilation"] == 1 else None
        return mx, avg

    try:
        trace, avg = run(settings, x)
        ss["layers.pool.valid"] = {**settings, "input": x}
    except CourseError as exc:
        st.error(error_text(exc))
        st.caption(t("layers.conv.showing_last"))
        valid = ss["layers.pool.valid"]
        trace, avg = run(valid, valid.get("input", COURSE_INPUT))

    h_in, w_in = trace.input.shape
    formula = size_formula(h_in, trace.kernel_size, trace.stride, trace.padding, trace.dilation, trace.ceil_mode)
    st.code(("H_out = ⌈…⌉  (ceil_mode=True)\n" if trace.ceil_mode else "H_out = ⌊…⌋  (ceil_mode=False)\n")
            + f"H_out = {formula}\n"
            + f"W_out = {size_formula(w_in, trace.kernel_size, trace.stride, trace.padding, trace.dilation, trace.ceil_mode)}",
            language=None)
    st.caption(t("layers.pool.stride_is", stride=trace.stride, kernel=trace.kernel_size))
    n = len(trace.steps)
    ss["layers.pool.n"] = n
    if ss.get("layers.pool.step", 1) > n:
        ss["layers.pool.step"] = n
    play_button("layers.pool")
    playing = ss.get("layers.pool.playing", False)
    st.fragment(pool_stepper, run_every=PLAY_EVERY if playing else None)(trace, avg)
    ok = matches(trace) and (avg is None or matches(avg))
    if ok:
        st.success(t("layers.pool.check_ok"), icon=":material/check_circle:")
    else:
        st.error(t("layers.conv.check_bad"))
    with st.expander(t("layers.conv.torch_says")):
        st.code(f"nn.MaxPool2d(...) =\n{number_rows(pool_reference(trace))}", language=None)
    default = trace.stride == trace.kernel_size and ss["layers.pool.valid"]["default_stride"]
    show_code(pool_code(trace.input, trace.kernel_size, trace.ceil_mode, None if default else trace.stride,
                        trace.padding, trace.dilation), key="layers.pool.code", filename="maxpool.py")


def current_image(section: str):
    """The picture a section uses: a dataset sample, an upload or the built-in picture.

    Returns (uint8 [C,H,W], caption). Widget keys carry the section (`layers.img.*`, `layers.act.*`).
    """
    ss = st.session_state
    sources = {t(f"layers.img.source.{s}"): s for s in ("dataset", "upload", "builtin")}
    picked = st.segmented_control(t("layers.img.source"), list(sources), default=list(sources)[0], required=True,
                                  key=f"layers.{section}.source.{lang()}")
    source = sources.get(picked, "dataset")
    if source == "upload":
        up = st.file_uploader(t("layers.img.upload"), type=["png", "jpg", "jpeg", "bmp", "gif", "webp"],
                              key=f"layers.{section}.file", max_upload_size=5)
        if up is not None:
            try:
                ss[f"layers.{section}.uploaded"] = (decode_image(up.getvalue()), up.name)
            except CourseError as exc:
                st.error(error_text(exc))
        if f"layers.{section}.uploaded" in ss:
            image, name = ss[f"layers.{section}.uploaded"]
            return image, name
        st.info(t("layers.img.no_upload"))
        return sample_pattern(), t("layers.img.source.builtin")
    if source == "dataset":
        try:
            from ui.datasets import current_dataset  # written by the data page's engineer
        except ImportError:
            current_dataset = None
        ds = current_dataset(train=False) if current_dataset is not None else None
        if ds is not None and len(ds):
            index = st.number_input(t("layers.img.index"), 0, len(ds) - 1, value=0, key=f"layers.{section}.index")
            label = ds.classes[int(ds.targets[index])] if hasattr(ds, "targets") else ""
            return ds.images[index], f"#{index} {label}"
        if current_dataset is None:
            st.info(t("layers.img.no_dataset"))
    return sample_pattern(), t("layers.img.source.builtin")


def activations_section() -> None:
    st.markdown(prose("layers_act"))
    slope = st.slider("LeakyReLU negative_slope", 0.0, 0.5, 0.1, 0.01, key="layers.act.slope")
    x, curves = activation_curves(negative_slope=slope)
    fig = go.Figure()
    xs = x.numpy()
    styles = {"ReLU": dict(width=5), "Sigmoid": dict(width=2.5), "Tanh": dict(width=2.5),
              "LeakyReLU": dict(width=2, dash="dash")}  # ReLU thick underneath LeakyReLU's dashes
    for name, y in curves.items():
        fig.add_trace(go.Scatter(x=xs, y=y.numpy(), mode="lines", name=f"nn.{name}()", line=styles.get(name)))
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="x", yaxis_title="f(x)",
                      yaxis_range=[-1.5, 5], legend=dict(orientation="h", y=1.1))
    st.plotly_chart(fig, key="layers.act.curves")

    st.markdown(f"**{t('layers.act.on_image')}**")
    image, caption = current_image_for("act")
    a, b = st.columns(2)
    name = a.segmented_control(t("layers.act.which"), list(ACTIVATIONS), default="ReLU", required=True,
                               key="layers.act.name")
    normalize = b.toggle(t("layers.act.normalize"), value=True, key="layers.act.normalize")
    x_img, y_img = activation_on_image(image, name, normalize, slope)
    c1, c2 = st.columns(2)
    shown_in = x_img * 0.5 + 0.5 if normalize else x_img
    c1.image(to_image(shown_in), caption=t("layers.act.input_caption", caption=caption), width=220)
    c2.image(to_image(y_img), caption=t("layers.act.output_caption", name=name), width=220)
    st.caption(t("layers.act.image_note"))

    st.markdown(f"**{t('layers.act.inplace_title')}**")
    kept, out, overwritten, out2 = inplace_demo()
    st.table(pd.DataFrame({
        "": ["input = [1, -0.5, -1, 3]", "ReLU(inplace=False)", "ReLU(inplace=True)"],
        t("layers.act.col_input_after"): ["", str(kept), str(overwritten)],
        t("layers.act.col_output"): ["", str(out), str(out2)],
    }).set_index(""))
    st.markdown(t("layers.act.inplace_explained"))
    show_code(activation_code(slope), key="layers.act.code", filename="activations.py")


def current_image_for(section: str):
    with st.container(border=True, key=f"layers.{section}.image_box"):
        return current_image(section)


def flatten_section() -> None:
    st.markdown(prose("layers_flatten"))
    cols = st.columns(5)
    batch = cols[0].number_input("batch_size", 1, 1024, 64, key="layers.flat.batch")
    channels = cols[1].number_input("C", 1, 64, 3, key="layers.flat.c")
    height = cols[2].number_input("H", 1, 256, 32, key="layers.flat.h")
    width = cols[3].number_input("W", 1, 256, 32, key="layers.flat.w")
    out_features = cols[4].number_input("out_features", 1, 1000, 10, key="layers.flat.out")
    try:
        walk = flatten_linear_walk(batch, channels, height, width, out_features)
    except CourseError as exc:
        st.error(error_text(exc))
        return
    st.table(pd.DataFrame({
        t("layers.flat.col_layer"): [s.layer for s in walk],
        t("layers.flat.col_shape"): [str(list(s.shape)) for s in walk],
        t("layers.flat.col_params"): [f"{s.params:,}" for s in walk],
    }))
    n = channels * height * width
    st.caption(t("layers.flat.params_explained", n=n, out=out_features, weights=f"{n * out_features:,}",
                 total=f"{n * out_features + out_features:,}"))
    whole, kept = flatten_shapes((batch, channels, height, width))
    a, b = st.columns(2)
    with a:
        st.error(t("layers.flat.trap", shape=str(list(whole)), n=n), icon=":material/close:")
        st.code(f"torch.flatten(imgs).shape\n# torch.Size({list(whole)})", language="python")
    with b:
        st.success(t("layers.flat.right", shape=str(list(kept))), icon=":material/check:")
        st.code(f"torch.flatten(imgs, start_dim=1).shape\n# torch.Size({list(kept)})\nnn.Flatten()(imgs).shape\n"
                f"# torch.Size({list(kept)})", language="python")
    show_code(flatten_code(batch, channels, height, width, out_features), key="layers.flat.code",
              filename="flatten_linear.py")


def images_section() -> None:
    st.markdown(prose("layers_images"))
    image, caption = current_image_for("img")
    cols = st.columns(5)
    # options are the translated names (not format_func): the chosen label maps back to the preset
    names = {t(f"layers.img.preset.{p}"): p for p in KERNEL_PRESETS}
    preset = names[cols[0].selectbox(t("layers.img.preset"), list(names), key=f"layers.img.preset.{lang()}")]
    out_channels = cols[1].number_input("out_channels", 1, 12, 6, key="layers.img.out")
    kernel_size = cols[2].selectbox("kernel_size", [1, 3, 5, 7], index=1, key="layers.img.k")
    padding = cols[3].number_input("padding", 0, 3, 0, key="layers.img.padding")
    pool = cols[4].number_input("MaxPool2d", 2, 4, 2, key="layers.img.pool")
    try:
        result = image_layers(image, preset, out_channels, kernel_size, padding, pool)
    except CourseError as exc:
        st.error(error_text(exc))
        return
    c = image.shape[0]
    st.markdown(t("layers.img.shapes", c=c, h=image.shape[1], w=image.shape[2], out=out_channels, k=kernel_size,
                  shape=str(list(result.conv_shape)), wshape=str(list(result.weight.shape))))
    row = st.columns(4)
    row[0].image(to_image(result.input), caption=t("layers.img.input_caption", caption=caption), width=170)
    row[1].image(to_image(result.maxpool), caption=f"MaxPool2d({pool}) → {list(result.maxpool.shape)}", width=170)
    row[2].image(to_image(feature_map_display(result.relu[0])[None]),
                 caption=t("layers.img.relu_caption"), width=170)
    row[3].image(to_image(result.sigmoid[0][None]), caption=t("layers.img.sigmoid_caption"), width=170)

    st.markdown(f"**{t('layers.img.maps_title', out=out_channels)}**")
    per_row = 6
    for start in range(0, out_channels, per_row):
        cols = st.columns(per_row)
        for o in range(start, min(start + per_row, out_channels)):
            cols[o - start].image(to_image(feature_map_display(result.conv[o])[None]),
                                  caption=f"output[0][{o}]", width=120)
    st.caption(t("layers.img.maps_note"))

    st.markdown(f"**{t('layers.img.reshape_title')}**")
    if out_channels % 3 == 0:
        pictures = course_reshape(result.conv)
        st.markdown(t("layers.img.reshape_explained", out=out_channels, n=pictures.shape[0],
                      h=pictures.shape[2], w=pictures.shape[3]))
        cols = st.columns(max(pictures.shape[0], 2))
        for idx in range(pictures.shape[0]):
            cols[idx].image(to_image(feature_map_display(pictures[idx])), caption=f"reshape → [{idx}]", width=150)
    else:
        st.info(t("layers.img.reshape_no", out=out_channels))
    show_code(image_layers_code(preset, out_channels, kernel_size, padding, pool, in_channels=c),
              key="layers.img.code", filename="conv_on_images.py")


# ----------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------

init_state()
st.title(t("layers.title"))
st.markdown(prose("layers_intro"))

TABS = ["conv", "multi", "pool", "act", "flat", "img"]
labels = [t(f"layers.tab.{name}") for name in TABS]
open_label = st.session_state.get("layers.tab")
if open_label is not None and open_label not in labels:
    # the language changed: keep the same tab open, under its label in the new language
    for name, new_label in zip(TABS, labels):
        if open_label in catalog()[f"layers.tab.{name}"].values():
            st.session_state["layers.tab"] = new_label
tabs = st.tabs(labels, key="layers.tab", on_change="rerun")
SECTIONS = {"conv": conv_section, "multi": multi_section, "pool": pool_section, "act": activations_section,
            "flat": flatten_section, "img": images_section}
for name, tab in zip(TABS, tabs):
    with tab:
        if tab.open is not False:  # only the open tab runs: the others cost nothing
            SECTIONS[name]()
