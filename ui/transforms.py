"""The transforms editor's widgets, drawn from the step registry (dl_core/transforms.py), and a step's histogram.

Each argument's widget follows its registry entry: a size is "one int or (h, w)" plus the numbers, an int
a number box, a float a slider, a choice a radio; Normalize's mean and std are one choice of presets.
Keys are `data.tf_<step id>_<widget>` (the step id stays with the step when it moves).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

import plotly.graph_objects as go
import streamlit as st

from dl_core import transforms as T
from ui.datasets import lang_key
from ui.i18n import t

SIZE_FORMS = {"int": "data.tf.size_form.int", "hw": "data.tf.size_form.hw"}
NORM_PRESETS = {"half": "data.tf.norm.half", "dataset": "data.tf.norm.dataset", "custom": "data.tf.norm.custom"}
Presets = Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]]  # option -> (mean, std)


def _slots(arg: T.Arg) -> int:
    return {"size": 3, "floats": 0}.get(arg.kind, 1)


def edit_step(sid: int, step: T.Step, presets: Presets) -> T.Step:
    """The widgets for one step's arguments; the step they now describe (CourseError if it is not allowed)."""
    args = step.entry.args
    if not args:
        return step
    columns = sum(_slots(a) for a in args)
    cols = iter(st.columns(max(columns, 4))) if columns > 1 else None
    values = dict(step.kwargs)
    prefix = f"data.tf_{sid}_"
    for arg in args:
        if arg.kind == "floats":
            if arg.name == args[0].name:
                values.update(_normalize(prefix, values, presets))
        elif arg.kind == "size":
            values[arg.name] = _size(prefix, arg, values[arg.name], cols)
        else:
            values[arg.name] = _one(prefix, arg, values[arg.name], next(cols) if cols else st)
    return T.Step.make(step.kind, **values)


def _size(prefix: str, arg: T.Arg, value: int | tuple[int, int], cols: Iterator) -> int | tuple[int, int]:
    pair = isinstance(value, tuple)
    form_col, h_col, w_col = next(cols), next(cols), next(cols)
    form = form_col.radio(t("data.tf.size_form"), tuple(SIZE_FORMS), index=1 if pair else 0, horizontal=True,
                          key=lang_key(prefix + "form"), format_func={f: t(k) for f, k in SIZE_FORMS.items()}.get)
    h0, w0 = value if pair else (value, value)
    label = t("data.tf.size_h") if form == "hw" else t("data.tf.size")
    h = int(h_col.number_input(label, int(arg.lo), int(arg.hi), int(h0), key=prefix + "h"))
    if form != "hw":
        return h
    return h, int(w_col.number_input(t("data.tf.size_w"), int(arg.lo), int(arg.hi), int(w0), key=prefix + "w"))


def _one(prefix: str, arg: T.Arg, value, where):
    key = prefix + arg.widget
    if arg.kind == "int":
        return int(where.number_input(arg.name, int(arg.lo), int(arg.hi), int(value), key=key))
    if arg.kind == "float":
        return where.slider(arg.name, float(arg.lo), float(arg.hi), float(value), float(arg.step), key=key)
    return where.radio(arg.name, arg.choices, index=arg.choices.index(value), key=key, horizontal=True)


def _normalize(prefix: str, values: dict, presets: Presets) -> dict:
    """Normalize's mean and std: the course's 0.5, the dataset's own statistics, or a link's values."""
    options = list(presets)
    current = (values["mean"], values["std"])
    index = next((i for i, o in enumerate(options) if presets[o] == current), 0)
    preset = st.radio(t("data.tf.norm_preset"), options, key=lang_key(prefix + "preset"), horizontal=True,
                      index=index, format_func={o: t(NORM_PRESETS[o]) for o in options}.get)
    mean, std = presets[preset]
    st.caption(f"mean = {list(mean)}, std = {list(std)}")
    return {"mean": mean, "std": std}


def hist_figure(res: T.StepResult) -> go.Figure:
    """Per-channel histograms of one step's values (overlaid bars)."""
    centres = (res.hist_edges[:-1] + res.hist_edges[1:]) / 2
    colours = ("#e4572e", "#29bf12", "#3f88c5") if res.hist_counts.shape[0] == 3 else ("#777777",)
    names = ("R", "G", "B") if res.hist_counts.shape[0] == 3 else ("L",)
    fig = go.Figure()
    for counts, colour, name in zip(res.hist_counts, colours, names):
        fig.add_trace(go.Bar(x=centres, y=counts, name=name, marker_color=colour, opacity=0.6))
    fig.update_layout(barmode="overlay", height=170, margin=dict(l=10, r=10, t=10, b=10),
                      showlegend=True, legend=dict(orientation="h", y=1.15),
                      xaxis_title=t("data.tf.hist_x"), yaxis_title=t("data.tf.hist_y"))
    return fig
