"""Layers lab (course steps 7–11): conv2d arithmetic cell by cell, multi-channel conv, pooling,
activations, Flatten/Linear, and the same layers on real images.

Each section: explanation → inputs → one call into dl_core → rendering. The last valid grids and
settings live under `layers.*` session keys, so bad input shows a message and keeps them. The page's
state is in its URL (`/layers?stride=2`, dl_core/pagelinks/layers.py): read before the widgets, written
after them. Grids and the stepper are drawn by ui/grids.py and ui/stepper.py.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dl_core.arithmetic import (
    avgpool2d_trace, conv2d_multi_trace, conv2d_reference, conv2d_trace, format_number, leftover, matches,
    maxpool2d_trace, multiply_add, parse_grid_text, pool_expression, pool_reference, size_report, tiles_evenly,
)
from dl_core.codegen.layers import (
    activation_code, conv_code, flatten_code, image_layers_code, multi_conv_code, pool_code,
)
from dl_core.errors import CourseError
from dl_core.layers import (
    ACTIVATIONS, COURSE_CASES, COURSE_INPUT, COURSE_KERNEL, GRID_MAX, KERNEL_PRESETS, MULTI_BIAS, MULTI_INPUT,
    MULTI_WEIGHT, activation_curves, activation_on_image, course_reshape, decode_image, feature_map_display,
    flatten_linear_walk, flatten_shapes, image_layers, inplace_demo, sample_pattern,
)
from dl_core.pagelinks import layers as layers_link
from ui import stepper
from ui.code import show_code
from ui.grids import (
    conv_input_cells, grid_editor, init_grid, number_rows, output_cells, plain_cells, pool_input_cells, set_grid,
    show_grid, size_inputs,
)
from ui.i18n import catalog, error_text, lang, prose, t
from ui.urlstate import PageLink

INPUT, KERNEL = "layers.grid.input", "layers.grid.kernel"  # the two editable grids' session keys
CONV, POOL = "layers.conv", "layers.pool"  # the two steppers' prefixes

# Translated names, each key a literal (the catalog test sees them).
TAB_LABELS = {"conv": "layers.tab.conv", "multi": "layers.tab.multi", "pool": "layers.tab.pool",
              "act": "layers.tab.act", "flat": "layers.tab.flat", "img": "layers.tab.img"}
PRESET_LABELS = {"stride1": "layers.conv.preset.stride1", "stride2": "layers.conv.preset.stride2",
                 "padding1": "layers.conv.preset.padding1"}
GRID_NAMES = {INPUT: "layers.grid.input_name", KERNEL: "layers.grid.kernel_name"}
SOURCE_LABELS = {"dataset": "layers.img.source.dataset", "upload": "layers.img.source.upload",
                 "builtin": "layers.img.source.builtin"}
KERNEL_LABELS = {"identity": "layers.img.preset.identity", "edges": "layers.img.preset.edges",
                 "blur": "layers.img.preset.blur", "sharpen": "layers.img.preset.sharpen",
                 "random": "layers.img.preset.random"}
CONV_SETTINGS = ("stride", "padding", "dilation", "bias")
POOL_SETTINGS = ("kernel", "default_stride", "stride", "padding", "dilation", "ceil_mode")


def to_image(x) -> np.ndarray:
    """[C,H,W] float tensor (0..1, clipped like add_images) → HWC numpy for st.image."""
    arr = x.clamp(0, 1).permute(1, 2, 0).numpy()
    return arr[:, :, 0] if arr.shape[2] == 1 else arr


# ----------------------------------------------------------------------------------------------
# Session state: last valid grids and settings; callbacks
# ----------------------------------------------------------------------------------------------

def init_state() -> None:
    ss = st.session_state
    init_grid(INPUT, COURSE_INPUT)
    init_grid(KERNEL, COURSE_KERNEL)
    last = ss.setdefault(f"{CONV}.valid", {"stride": 1, "padding": 0, "dilation": 1, "bias": 0.0,
                                           "input": ss[INPUT], "kernel": ss[KERNEL]})
    for name in CONV_SETTINGS:
        ss.setdefault(f"{CONV}.{name}", last[name])
    for prefix in (CONV, POOL, "layers.multi"):
        ss.setdefault(f"{prefix}.step", 1)
    pool_last = ss.setdefault(f"{POOL}.valid", {"kernel": 3, "default_stride": True, "stride": 3, "padding": 0,
                                                "dilation": 1, "ceil_mode": True, "input": ss[INPUT]})
    for name in POOL_SETTINGS:
        ss.setdefault(f"{POOL}.{name}", pool_last[name])


def on_preset(case: str) -> None:
    ss = st.session_state
    set_grid(INPUT, COURSE_INPUT)
    set_grid(KERNEL, COURSE_KERNEL)
    ss[f"{CONV}.stride"], ss[f"{CONV}.padding"] = COURSE_CASES[case]
    ss[f"{CONV}.dilation"], ss[f"{CONV}.bias"] = 1, 0.0
    stepper.stop(CONV)


def on_text_apply() -> None:
    ss = st.session_state
    ss.pop("layers.grid.text_error", None)
    try:
        x = parse_grid_text(ss.get(f"{INPUT}_text", ""), t(GRID_NAMES[INPUT]), GRID_MAX)
        k = parse_grid_text(ss.get(f"{KERNEL}_text", ""), t(GRID_NAMES[KERNEL]), GRID_MAX)
    except CourseError as exc:
        ss["layers.grid.text_error"] = exc
        return
    set_grid(INPUT, x.tolist())
    set_grid(KERNEL, k.tolist())


def on_pool_preset(ceil_mode: bool) -> None:
    ss = st.session_state
    set_grid(INPUT, COURSE_INPUT)
    ss[f"{POOL}.kernel"], ss[f"{POOL}.default_stride"], ss[f"{POOL}.stride"] = 3, True, 3
    ss[f"{POOL}.padding"], ss[f"{POOL}.dilation"], ss[f"{POOL}.ceil_mode"] = 0, 1, ceil_mode
    stepper.stop(POOL)


def compute_or_last(prefix: str, compute, settings: dict[str, Any]):
    """compute(settings), remembered as the last valid settings; on a CourseError the message and the last valid."""
    try:
        result = compute(settings)
    except CourseError as exc:
        st.error(error_text(exc))
        st.caption(t("layers.conv.showing_last"))
        return compute(st.session_state[f"{prefix}.valid"])
    st.session_state[f"{prefix}.valid"] = settings
    return result


# ----------------------------------------------------------------------------------------------
# The page's link (dl_core/pagelinks/layers.py): what is shown, never a half-typed setting
# ----------------------------------------------------------------------------------------------

def open_tab() -> str:
    label = st.session_state.get("layers.tab")
    for name, key in TAB_LABELS.items():
        if label in catalog()[key].values():
            return name
    return "conv"


def load_link(values: dict[str, Any]) -> None:
    """A link's values (already checked) into the widgets' state and the last valid settings."""
    ss = st.session_state
    conv, pool = layers_link.conv_of(values), layers_link.pool_of(values)
    set_grid(INPUT, conv.input)
    set_grid(KERNEL, conv.kernel)
    settings = {"stride": conv.stride, "padding": conv.padding, "dilation": conv.dilation, "bias": float(conv.bias)}
    pool_settings = {"kernel": pool.kernel_size, "default_stride": pool.stride is None,
                     "stride": pool.kernel_size if pool.stride is None else pool.stride, "padding": pool.padding,
                     "dilation": pool.dilation, "ceil_mode": pool.ceil_mode}
    for prefix, values_now in ((CONV, settings), (POOL, pool_settings)):
        for name, value in values_now.items():
            ss[f"{prefix}.{name}"] = value
        ss[f"{prefix}.playing"] = False
    ss[f"{CONV}.valid"] = {**settings, "input": ss[INPUT], "kernel": ss[KERNEL]}
    ss[f"{POOL}.valid"] = {**pool_settings, "input": ss[INPUT]}
    ss["layers.tab"] = t(TAB_LABELS[values.get("tab", "conv")])


def save_link() -> dict[str, Any]:
    """The settings shown (the last valid ones), as link values."""
    ss = st.session_state
    conv, pool = ss[f"{CONV}.valid"], ss[f"{POOL}.valid"]
    return {"tab": open_tab(), "input": conv["input"], "kernel": conv["kernel"], "stride": conv["stride"],
            "padding": conv["padding"], "dilation": conv["dilation"], "bias": conv["bias"],
            "pool_kernel": pool["kernel"], "pool_stride": None if pool["default_stride"] else pool["stride"],
            "pool_padding": pool["padding"], "pool_dilation": pool["dilation"], "ceil_mode": pool["ceil_mode"]}


def page_link() -> PageLink:
    return PageLink("layers", keys={"step": f"{CONV}.step", "pool_step": f"{POOL}.step"}, load=load_link,
                    save=save_link)


def publish_unless_playing(prefix: str) -> None:
    """From inside a stepper's fragment: the step shown goes into the URL (not on every autoplay tick)."""
    if not stepper.playing(prefix):
        page_link().publish()


# ----------------------------------------------------------------------------------------------
# The steppers (fragments: stepping and autoplay rerun only this part of the page)
# ----------------------------------------------------------------------------------------------

def conv_stepper(trace) -> None:
    k, n, step = stepper.current_step(CONV, trace.steps)
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
    publish_unless_playing(CONV)


def pool_stepper(trace, avg) -> None:
    k, n, step = stepper.current_step(POOL, trace.steps)
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
    publish_unless_playing(POOL)


# ----------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------

def conv_inputs() -> dict[str, Any]:
    """The presets, both grids, the settings and the typed-grid box; returns the settings to try."""
    st.markdown(f"**{t('layers.conv.presets')}**")
    for col, case in zip(st.columns(3), COURSE_CASES):
        col.button(t(PRESET_LABELS[case]), key=f"{CONV}.preset.{case}", on_click=on_preset, args=(case,),
                   width="stretch")
    grids = {}
    grid_col, kernel_col, settings_col = st.columns([5, 4, 3])
    for col, key, title in ((grid_col, INPUT, t("layers.grid.input_title")),
                            (kernel_col, KERNEL, t("layers.grid.kernel_title"))):
        with col:
            st.markdown(f"**{title}**")
            size_inputs(key, GRID_MAX, t("layers.grid.rows"), t("layers.grid.cols"))
            grids[key] = grid_editor(key, t(GRID_NAMES[key]), GRID_MAX)
    with settings_col:
        st.number_input("stride", -1, 6, key=f"{CONV}.stride", help=t("layers.conv.stride_help"))
        st.number_input("padding", -2, 6, key=f"{CONV}.padding", help=t("layers.conv.padding_help"))
        st.number_input("dilation", 0, 4, key=f"{CONV}.dilation", help=t("layers.conv.dilation_help"))
        st.number_input("bias", -100.0, 100.0, step=1.0, format="%g", key=f"{CONV}.bias",
                        help=t("layers.conv.bias_help"))
    with st.expander(t("layers.grid.text_title"), icon=":material/edit_note:"):
        st.caption(t("layers.grid.text_help"))
        a, b = st.columns(2)
        a.text_area(t(GRID_NAMES[INPUT]), key=f"{INPUT}_text", height=120)
        b.text_area(t(GRID_NAMES[KERNEL]), key=f"{KERNEL}_text", height=120)
        st.button(t("layers.grid.text_apply"), key="layers.grid.text_apply", on_click=on_text_apply)
        if "layers.grid.text_error" in st.session_state:
            st.error(error_text(st.session_state["layers.grid.text_error"]))
    ss = st.session_state
    return {**{name: ss[f"{CONV}.{name}"] for name in CONV_SETTINGS}, "input": grids[INPUT], "kernel": grids[KERNEL]}


def conv_trace(s: dict[str, Any]):
    return conv2d_trace(s["input"], s["kernel"], s["stride"], s["padding"], s["dilation"], s["bias"])


def conv_section() -> None:
    st.markdown(prose("layers_conv"))
    settings = conv_inputs()
    trace = compute_or_last(CONV, conv_trace, settings)

    # the size formula, the tiling warning and the live check with PyTorch
    st.markdown(f"**{t('layers.conv.formula_title')}**")
    (h_in, w_in), (kh, kw) = trace.input.shape, trace.kernel.shape
    st.code(size_report((h_in, w_in), (kh, kw), trace.stride, trace.padding, trace.dilation), language=None)
    for axis, size, ks in ((t("layers.conv.rows_word"), h_in, kh), (t("layers.conv.cols_word"), w_in, kw)):
        if not tiles_evenly(size, ks, trace.stride, trace.padding, trace.dilation):
            st.warning(t("layers.conv.uneven", axis=axis,
                         left=leftover(size, ks, trace.stride, trace.padding, trace.dilation)),
                       icon=":material/warning:")
    stepper.step_through(CONV, len(trace.steps), conv_stepper, trace)
    if matches(trace):
        st.success(t("layers.conv.check_ok"), icon=":material/check_circle:")
    else:
        st.error(t("layers.conv.check_bad"))
    with st.expander(t("layers.conv.torch_says")):
        st.code(f"F.conv2d(...) =\n{number_rows(conv2d_reference(trace))}", language=None)
    show_code(conv_code(trace.input, trace.kernel, trace.stride, trace.padding, trace.dilation, trace.bias),
              key=f"{CONV}.code", filename="conv2d.py", explain=prose("layers_conv"))


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
    i, j = rows[0].steps[k - 1].position
    st.markdown(t("layers.multi.step_title", o=o, i=i, j=j))
    partials = []
    for ch, (col, tr) in enumerate(zip(st.columns(len(rows)), rows)):
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
    for oc, col in enumerate(st.columns(len(multi.channels))):
        with col:
            cells = output_cells(multi.output[oc], k if oc == o else multi.output[oc].numel() + 1)
            show_grid(cells, t("layers.multi.output_caption", o=oc), f"multi-out{oc}")
    st.info(t("layers.multi.course_shapes"))
    show_code(multi_conv_code(MULTI_INPUT, MULTI_WEIGHT, MULTI_BIAS, stride, padding), key="layers.multi.code",
              filename="conv2d_channels.py", explain=prose("layers_multi"))


def pool_inputs() -> dict[str, Any]:
    """The two course presets and MaxPool2d's settings; returns the settings to try (on the input grid)."""
    a, b = st.columns(2)
    a.button(t("layers.pool.preset_ceil"), key=f"{POOL}.preset_ceil", on_click=on_pool_preset, args=(True,),
             width="stretch")
    b.button(t("layers.pool.preset_floor"), key=f"{POOL}.preset_floor", on_click=on_pool_preset, args=(False,),
             width="stretch")
    cols = st.columns(6, vertical_alignment="bottom")
    cols[0].number_input("kernel_size", 1, 6, key=f"{POOL}.kernel")
    default_stride = cols[1].checkbox(t("layers.pool.default_stride"), key=f"{POOL}.default_stride")
    cols[2].number_input("stride", -1, 6, key=f"{POOL}.stride", disabled=default_stride)
    cols[3].number_input("padding", -1, 3, key=f"{POOL}.padding", help=t("layers.pool.padding_help"))
    cols[4].number_input("dilation", 0, 3, key=f"{POOL}.dilation")
    cols[5].toggle("ceil_mode", key=f"{POOL}.ceil_mode")
    st.caption(t("layers.pool.uses_input"))
    ss = st.session_state
    return {**{name: ss[f"{POOL}.{name}"] for name in POOL_SETTINGS}, "input": ss[INPUT]}


def pool_traces(s: dict[str, Any]):
    """(MaxPool2d trace, AvgPool2d trace or None: AvgPool2d has no dilation)."""
    stride = None if s["default_stride"] else s["stride"]
    mx = maxpool2d_trace(s["input"], s["kernel"], stride, s["padding"], s["dilation"], s["ceil_mode"])
    avg = avgpool2d_trace(s["input"], s["kernel"], stride, s["padding"], s["ceil_mode"]) if s["dilation"] == 1 else None
    return mx, avg


def pool_section() -> None:
    st.markdown(prose("layers_pool"))
    settings = pool_inputs()
    trace, avg = compute_or_last(POOL, pool_traces, settings)

    h_in, w_in = trace.input.shape
    st.code(size_report((h_in, w_in), (trace.kernel_size,) * 2, trace.stride, trace.padding, trace.dilation,
                        trace.ceil_mode, pooling=True), language=None)
    st.caption(t("layers.pool.stride_is", stride=trace.stride, kernel=trace.kernel_size))
    stepper.step_through(POOL, len(trace.steps), pool_stepper, trace, avg)
    if matches(trace) and (avg is None or matches(avg)):
        st.success(t("layers.pool.check_ok"), icon=":material/check_circle:")
    else:
        st.error(t("layers.conv.check_bad"))
    with st.expander(t("layers.conv.torch_says")):
        st.code(f"nn.MaxPool2d(...) =\n{number_rows(pool_reference(trace))}", language=None)
    default = trace.stride == trace.kernel_size and st.session_state[f"{POOL}.valid"]["default_stride"]
    show_code(pool_code(trace.input, trace.kernel_size, trace.ceil_mode, None if default else trace.stride,
                        trace.padding, trace.dilation), key=f"{POOL}.code", filename="maxpool.py",
              explain=prose("layers_pool"))


def current_image(section: str):
    """The picture a section uses: a dataset sample, an upload or the built-in picture.

    Returns (uint8 [C,H,W], caption). Widget keys carry the section (`layers.img.*`, `layers.act.*`).
    """
    ss = st.session_state
    sources = {t(key): s for s, key in SOURCE_LABELS.items()}
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


def current_image_for(section: str):
    with st.container(border=True, key=f"layers.{section}.image_box"):
        return current_image(section)


def activation_figure(x, curves) -> go.Figure:
    fig = go.Figure()
    xs = x.numpy()
    styles = {"ReLU": dict(width=5), "Sigmoid": dict(width=2.5), "Tanh": dict(width=2.5),
              "LeakyReLU": dict(width=2, dash="dash")}  # ReLU thick underneath LeakyReLU's dashes
    for name, y in curves.items():
        fig.add_trace(go.Scatter(x=xs, y=y.numpy(), mode="lines", name=f"nn.{name}()", line=styles.get(name)))
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="x", yaxis_title="f(x)",
                      yaxis_range=[-1.5, 5], legend=dict(orientation="h", y=1.1))
    return fig


def activations_section() -> None:
    st.markdown(prose("layers_act"))
    slope = st.slider("LeakyReLU negative_slope", 0.0, 0.5, 0.1, 0.01, key="layers.act.slope")
    x, curves = activation_curves(negative_slope=slope)
    st.plotly_chart(activation_figure(x, curves), key="layers.act.curves")

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
    show_code(activation_code(slope), key="layers.act.code", filename="activations.py",
              explain=prose("layers_act") + "\n\n" + t("layers.act.inplace_explained"))


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
    explained = t("layers.flat.params_explained", n=n, out=out_features, weights=f"{n * out_features:,}",
                  total=f"{n * out_features + out_features:,}")
    st.caption(explained)
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
              filename="flatten_linear.py", explain=prose("layers_flatten") + "\n\n" + explained)


def images_section() -> None:
    st.markdown(prose("layers_images"))
    image, caption = current_image_for("img")
    cols = st.columns(5)
    # options are the translated names (not format_func): the chosen label maps back to the preset
    names = {t(KERNEL_LABELS[p]): p for p in KERNEL_PRESETS}
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
              key="layers.img.code", filename="conv_on_images.py", explain=prose("layers_images"))


# ----------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------

SECTIONS = {"conv": conv_section, "multi": multi_section, "pool": pool_section, "act": activations_section,
            "flat": flatten_section, "img": images_section}


def keep_tab_across_languages() -> None:
    """The language changed: keep the same tab open, under its label in the new language."""
    open_label = st.session_state.get("layers.tab")
    if open_label is not None and open_label != t(TAB_LABELS[open_tab()]):
        st.session_state["layers.tab"] = t(TAB_LABELS[open_tab()])


def main() -> None:
    st.title(t("layers.title"))
    link = page_link()
    link.apply()  # before the widgets: a shared link's settings (or a clear message and the defaults)
    init_state()
    link.copy_button()
    st.markdown(prose("layers_intro"))
    keep_tab_across_languages()
    tabs = st.tabs([t(TAB_LABELS[name]) for name in SECTIONS], key="layers.tab", on_change="rerun")
    for name, tab in zip(SECTIONS, tabs):
        with tab:
            if tab.open is not False:  # only the open tab runs: the others cost nothing
                SECTIONS[name]()
    link.publish()  # after the widgets: the URL shows what the page shows


main()
