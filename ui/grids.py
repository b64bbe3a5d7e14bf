"""Small number grids, drawn and edited: HTML tables a student reads cell by cell, and an editable grid.

Drawing: a grid is rows of `(text, style, subscript)` cells; `show_grid` draws them as an HTML table tagged
`data-grid=<name>` (tests and browser checks read the cells by it). The `*_cells` builders turn a conv or
pool trace (dl_core.arithmetic) into such cells for one step.

Editing: a grid lives in session state under a page-prefixed key (`layers.grid.input`) with its size
widgets (`<key>.rows`, `<key>.cols`), its text (`<key>_text`) and a version (`<key>.ver`) that gives the
data editor a fresh key whenever the grid is replaced, so the editor shows the new numbers.
"""
from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd
import streamlit as st

from dl_core.arithmetic import ConvTrace, PoolTrace, as_grid, format_number
from dl_core.errors import CourseError
from ui.i18n import error_text

Cells = list[list[tuple[str, str, str]]]

# Cell styles (explicit colours: readable in light and dark themes).
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
# Drawing
# ----------------------------------------------------------------------------------------------

def grid_html(cells: Cells, caption: str, name: str) -> str:
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


def show_grid(cells: Cells, caption: str, name: str) -> None:
    st.markdown(grid_html(cells, caption, name), unsafe_allow_html=True)


def plain_cells(grid) -> Cells:
    """Every number of a grid (a tensor or nested lists) in the kernel's colour."""
    values = grid.tolist() if hasattr(grid, "tolist") else grid
    return [[(format_number(v), "kernel", "") for v in row] for row in values]


def output_cells(output, current: int, style_done: str = "done") -> Cells:
    """Output cells: computed up to step `current` (1-based), the current one highlighted, the rest `?`."""
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


def conv_input_cells(trace: ConvTrace, step_index: int) -> Cells:
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


def _pool_cell(trace: PoolTrace, r: int, c: int, window: set, best) -> tuple[str, str, str]:
    p = trace.padding
    ph, pw = trace.padded_shape
    inside = p <= r < ph - p and p <= c < pw - p
    in_padded = r < ph and c < pw
    if inside:
        text = format_number(float(trace.input[r - p, c - p]))
    elif in_padded:
        text = "0" if trace.mode == "avg" else "-inf"
    else:
        text = "·"
    if (r, c) in window:
        style = "best" if (r, c) == best else ("win" if inside else ("winpad" if in_padded else "off"))
    else:
        style = "in" if inside else ("pad" if in_padded else "todo")
        if not in_padded:
            text = ""
    return text, style, ""


def pool_input_cells(trace: PoolTrace, step_index: int) -> Cells:
    """The input with its padding, grown to show a ceil_mode window hanging off the edge."""
    step = trace.steps[step_index]
    window = set(step.window)
    ph, pw = trace.padded_shape
    reach_r = max(r for s in trace.steps for r, _ in s.window) + 1
    reach_c = max(c for s in trace.steps for _, c in s.window) + 1
    return [[_pool_cell(trace, r, c, window, step.argmax) for c in range(max(pw, reach_c))]
            for r in range(max(ph, reach_r))]


def number_rows(grid) -> str:
    """[[10, 12, 12], [18, 16, 16], ...]: a tensor's rows as the notes print them, without dtype noise."""
    return "[" + ", ".join("[" + ", ".join(format_number(v) for v in row) + "]" for row in grid.tolist()) + "]"


def keep_int(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def as_text(grid: Sequence[Sequence[float]]) -> str:
    """A grid as the course's Python literal, whole numbers without `.0`: `[[1, 2], [0, 1]]`."""
    return str([[keep_int(v) for v in row] for row in grid])


# ----------------------------------------------------------------------------------------------
# Editing: one grid under a page-prefixed session key
# ----------------------------------------------------------------------------------------------

def init_grid(key: str, grid: Sequence[Sequence[float]]) -> None:
    """Give the grid at `key` (and its size widgets, text and version) a first value; keeps what is there."""
    ss = st.session_state
    stored = ss.setdefault(key, [list(map(float, r)) for r in grid])
    ss.setdefault(f"{key}.ver", 0)
    ss.setdefault(f"{key}.rows", len(stored))
    ss.setdefault(f"{key}.cols", len(stored[0]))
    ss.setdefault(f"{key}_text", as_text(stored))


def set_grid(key: str, grid: Sequence[Sequence[float]]) -> None:
    """Replace a grid (and its size widgets and text) and give its editor a fresh key.

    Call from a callback or before the grid's widgets are drawn (Streamlit refuses a drawn widget's state).
    """
    ss = st.session_state
    grid = [list(map(float, r)) for r in grid]
    ss[key] = grid
    ss[f"{key}.rows"] = len(grid)
    ss[f"{key}.cols"] = len(grid[0])
    ss[f"{key}_text"] = as_text(grid)
    ss[f"{key}.ver"] = ss.get(f"{key}.ver", 0) + 1


def on_resize(key: str) -> None:
    """Callback of the size widgets: keep the numbers that still fit, fill new cells with 0."""
    ss = st.session_state
    rows, cols = int(ss[f"{key}.rows"]), int(ss[f"{key}.cols"])
    old = ss[key]
    set_grid(key, [[old[i][j] if i < len(old) and j < len(old[0]) else 0.0 for j in range(cols)]
                   for i in range(rows)])


def size_inputs(key: str, max_size: int, rows_label: str, cols_label: str) -> None:
    """Two number inputs (rows, columns) that resize the grid at `key`."""
    a, b = st.columns(2)
    a.number_input(rows_label, 1, max_size, key=f"{key}.rows", on_change=on_resize, args=(key,))
    b.number_input(cols_label, 1, max_size, key=f"{key}.cols", on_change=on_resize, args=(key,))


def grid_editor(key: str, name: str, max_size: int) -> list[list[float]]:
    """An st.data_editor for the grid at `key`; returns the edited numbers, or the last valid grid on bad input.

    `name` is the grid's name in messages (`input: row 1, column 1 is empty`).
    """
    ss = st.session_state
    stored = ss[key]
    frame = pd.DataFrame(stored, columns=[str(j) for j in range(len(stored[0]))], dtype="float64")
    config = {c: st.column_config.NumberColumn(c, format="%g", width=52) for c in frame.columns}
    edited = st.data_editor(frame, key=f"{key}.editor.{ss.get(f'{key}.ver', 0)}", column_config=config,
                            hide_index=True, width="content")
    try:
        grid = as_grid(edited.values.tolist(), name, max_size).tolist()
    except CourseError as exc:
        st.error(error_text(exc))
        return stored
    if grid != stored:
        ss[key] = grid
    return grid
