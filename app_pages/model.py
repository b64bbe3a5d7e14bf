"""Build the network (course steps 7, 12, 15): the Sequential CNN layer by layer, shapes, errors that teach,
print(model), the course's code, feature maps, and VGG16 with the course's modifications.

One shape: explanation → inputs (the layer editor) → one dl_core call (`check_partial` / `summarize`) →
rendering, as section functions called at the bottom. Every edit (preset, fix, move, add, remove, keep or
discard a trained model) is a callback. What each layer kind has (arguments, widgets, starting values)
comes from `dl_core.layer_kinds`; the network is in the page's URL (`?net=...`, dl_core/pagelinks/model.py).
"""
import functools
from html import escape

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dl_core.codegen.model import model_code, vgg_code
from dl_core.datasets import DATASETS
from dl_core.errors import CourseError
from dl_core.existing import (
    MODIFICATIONS, freeze_features, load_pretrained, modification_diff, modify, module_tree, pretrained_available,
    pretrained_path, vgg16,
)
from dl_core.layer_kinds import KINDS, fmt_shape
from dl_core.models import (
    PRESETS, LayerSpec, ModelSpec, build_model_seeded, canonical, channel_grid, check_partial, count_parameters,
    decode_image, fix_spec, image_input, layer_outputs, new_layer, padding_table, preset, print_model, same_network,
    summarize,
)
from ui import state
from ui.code import show_code
from ui.datasets import USER, current_dataset, current_title, user_dataset
from ui.i18n import error_text, prose, t
from ui.urlstate import PageLink

ROWS = "model.rows"  # the layers being edited: list of (uid, LayerSpec); uids key the widgets
NEXT_UID = "model.next_uid"
FLASHES = (("model.flash", st.error), ("model.flash_ok", st.success), ("model.flash_info", st.info))
BATCH = 64  # the course's torch.ones((64, 3, 32, 32))
SECTIONS = ("build", "code", "maps", "vgg")
SECTION_TITLES = {"build": "model.tab_build", "code": "model.tab_code", "maps": "model.tab_maps",
                  "vgg": "model.tab_vgg"}
PRESET_TITLES = {"course": "model.preset.course", "course_odict": "model.preset.course_odict",
                 "course_relu": "model.preset.course_relu", "course_bn_dropout": "model.preset.course_bn_dropout",
                 "linear": "model.preset.linear"}
MAPS_WEIGHTS = {"untrained": "model.maps_untrained", "trained": "model.maps_trained"}
MAPS_SOURCES = {"sample": "model.maps_sample", "upload": "model.maps_upload", "predict": "model.maps_predict"}
VGG_TITLES = {"add_linear": "model.vgg_add_linear", "classifier_add": "model.vgg_classifier_add",
              "classifier_replace": "model.vgg_classifier_replace"}


# ----------------------------------------------------------------------------------------------- the input
def dataset_input() -> tuple[tuple[int, int, int], int, str]:
    """(C, H, W), number of classes and title of the dataset picked on the data page (metadata only)."""
    name = state.dataset_name()
    info = DATASETS.get(name)
    if info is not None:
        return info.input_shape, info.num_classes, info.title
    user = user_dataset() if name == USER else None
    if user is not None:
        c, h, w = (int(s) for s in user.test.images.shape[1:])
        return (c, h, w), len(user.test.classes), current_title()
    return (3, 32, 32), 10, "CIFAR10"


def starting_network(name: str, shape: tuple[int, int, int], classes: int) -> ModelSpec:
    """A preset for this dataset; the simplest network where the images are too small for it (said once)."""
    try:
        return preset(name, shape[0], classes, shape[1:])
    except CourseError as exc:
        st.session_state["model.flash"] = error_text(exc)
        return preset("linear", shape[0], classes, shape[1:])


# ----------------------------------------------------------------------------------------------- editor state
def _new_rows(spec: ModelSpec) -> None:
    """Replace the edited layers (fresh uids, so every widget starts from the spec's values)."""
    uid = st.session_state.get(NEXT_UID, 0)
    st.session_state[ROWS] = [(uid + i, layer) for i, layer in enumerate(spec.layers)]
    st.session_state[NEXT_UID] = uid + len(spec.layers)


def _rows() -> list:
    return st.session_state[ROWS]


def start_rows(shape: tuple[int, int, int], classes: int) -> None:
    """The first visit: the network already built, else the loaded model's, else the course's preset."""
    if ROWS in st.session_state:
        return
    start = state.current_spec()
    if start is None and state.trained() is not None:
        start = state.trained().spec  # a loaded model is the starting point, not a preset that would replace it
    if start is None:
        try:
            start = preset("course", shape[0], classes, shape[1:])
        except CourseError:
            start = preset("linear", shape[0], classes, shape[1:])
    _new_rows(start)


def on_preset(shape: tuple[int, int, int], classes: int) -> None:
    try:
        _new_rows(preset(st.session_state["model.preset"], shape[0], classes, shape[1:]))
    except CourseError as exc:
        st.session_state["model.flash"] = error_text(exc)


def on_fix(spec: ModelSpec, shape: tuple[int, int, int]) -> None:
    fixed = fix_spec(spec, shape)
    if fixed is not None:
        _new_rows(fixed)
        st.session_state["model.flash_ok"] = t("model.fixed")


def on_move(uid: int, step: int) -> None:
    rows = _rows()
    i = next(k for k, (u, _) in enumerate(rows) if u == uid)
    j = i + step
    if 0 <= j < len(rows):
        rows[i], rows[j] = rows[j], rows[i]


def on_remove(uid: int) -> None:
    st.session_state[ROWS] = [r for r in _rows() if r[0] != uid]


def on_add(shapes: list[tuple[int, ...]]) -> None:
    """Insert a layer at the chosen position, with arguments that fit the shape arriving there."""
    rows = _rows()
    pos = min(max(int(st.session_state.get("model.add_pos") or len(rows)), 0), len(rows))
    layer = new_layer(st.session_state["model.add_kind"], shapes[pos] if pos < len(shapes) else None,
                      [x.name for _, x in rows])
    uid = st.session_state.get(NEXT_UID, 0)
    st.session_state[NEXT_UID] = uid + 1
    rows.insert(pos, (uid, layer))


def on_keep(spec: ModelSpec) -> None:
    _new_rows(spec)


def on_discard(spec: ModelSpec) -> None:
    state.set_spec(spec)
    state.set_trained(None)
    st.session_state["model.flash_ok"] = t("model.trained_discarded")


# ----------------------------------------------------------------------------------------------- the link
def link_load(shape: tuple[int, int, int], classes: int, values: dict) -> None:
    """A link's network becomes the edited one (the usual checks then run on it); without one, its preset."""
    st.session_state["model.preset"] = values["preset"]
    spec = values["net"]
    if spec is None:
        spec = starting_network(values["preset"], shape, classes)
    elif tuple(values["input"]) != tuple(shape):
        st.session_state["model.flash_info"] = t("model.link_input", link=fmt_shape(values["input"]),
                                                 shape=fmt_shape(shape))
    _new_rows(spec)


def link_save(shape: tuple[int, int, int]) -> dict:
    """The edited network (as it is, broken or not), the dataset's input and the preset, as link values."""
    spec = canonical(ModelSpec(tuple(layer for _, layer in _rows())))
    try:
        net = spec if spec.layers and spec.to_text() else None
    except ValueError:  # a value a link cannot hold: the URL leaves the network out
        net = None
    return {"net": net, "input": tuple(shape), "preset": st.session_state.get("model.preset", PRESETS[0])}


def page_link(shape: tuple[int, int, int], classes: int) -> PageLink:
    return PageLink("model", load=functools.partial(link_load, shape, classes),
                    save=functools.partial(link_save, shape))


# ----------------------------------------------------------------------------------------------- editor widgets
def arg_widget(col, uid: int, kind: str, name: str, value):
    """One argument's widget, as its kind's entry says (whole number, optional, decimal, true/false)."""
    arg = KINDS[kind].arg(name)
    key = f"model.l{uid}.{kind}.{name}"
    label = t(arg.label)
    if arg.widget == "bool":
        return col.checkbox(label, value=bool(value), key=key)
    if arg.widget == "float":
        return col.number_input(label, value=float(value), step=0.05, format="%.2f", key=key)
    if isinstance(value, (list, tuple)):  # a [h, w] pair (from a file or a link): shown, kept as it is
        col.caption(f"{name}={list(value)}")
        return value
    if arg.widget == "opt":
        return col.number_input(label, value=None if value is None else int(value), step=1, key=key,
                                placeholder=t("model.arg.stride_default"))
    shown = int(value) if isinstance(value, int) and not isinstance(value, bool) else 1
    return col.number_input(label, value=shown, step=1, key=key)


def layer_row(i: int, uid: int, layer: LayerSpec, last: bool) -> tuple[LayerSpec, object]:
    """One compact row: index label slot, kind, its arguments, move and remove buttons."""
    with st.container(border=True, key=f"model.row{uid}"):
        cols = st.columns([0.5, 1.4, 1, 1, 1, 1, 1, 1.0], vertical_alignment="bottom")
        slot = cols[0].empty()
        kinds = list(KINDS)
        kind = cols[1].selectbox(t("model.layer_type"), kinds, index=kinds.index(layer.kind)
                                 if layer.kind in kinds else 0, key=f"model.l{uid}.kind")
        entry = KINDS[kind]
        args = dict(layer.args) if kind == layer.kind else dict(entry.start)
        for col, name in zip(cols[2:7], entry.edit):
            # an argument left out means torch's default (Conv2d padding 0), not the builder's starting value
            args[name] = arg_widget(col, uid, kind, name, entry.shown(name, args))
        if not entry.edit:
            cols[2].caption(t("model.no_args"))
        with cols[7].container(horizontal=True, gap=None, horizontal_alignment="right"):
            st.button("↑", key=f"model.l{uid}.up", on_click=on_move, args=(uid, -1), disabled=i == 0,
                      help=t("model.move_up"), type="tertiary")
            st.button("↓", key=f"model.l{uid}.down", on_click=on_move, args=(uid, 1), disabled=last,
                      help=t("model.move_down"), type="tertiary")
            st.button("✕", key=f"model.l{uid}.remove", on_click=on_remove, args=(uid,),
                      help=t("model.remove"), type="tertiary")
    return LayerSpec(kind, args, layer.name), slot


def layer_editor() -> tuple[ModelSpec, list]:
    """Every layer's row; the edited spec (canonical) and a label slot per layer (filled after checking)."""
    rows = _rows()
    edited, slots = [], []
    for i, (uid, layer) in enumerate(rows):
        layer, slot = layer_row(i, uid, layer, i == len(rows) - 1)
        edited.append((uid, layer))
        slots.append(slot)
    st.session_state[ROWS] = edited
    return canonical(ModelSpec(tuple(layer for _, layer in edited))), slots


def add_row(draft: ModelSpec, shapes_at: list[tuple[int, ...]]) -> None:
    with st.container(border=True):
        acol, pos_col, add_col, _ = st.columns([1.5, 1, 1, 2], vertical_alignment="bottom")
        acol.selectbox(t("model.add_kind"), list(KINDS), key="model.add_kind")
        pos_col.number_input(t("model.add_pos"), min_value=0, max_value=len(draft.layers), value=len(draft.layers),
                             step=1, key="model.add_pos")
        add_col.button(t("model.add"), key="model.add", on_click=on_add, args=(shapes_at,), icon=":material/add:")


def label_rows(slots: list, draft: ModelSpec, problem: CourseError | None) -> None:
    """Each row's index as print(model) shows it, red where the network breaks."""
    bad_index = problem.params.get("index") if problem is not None else None
    named = bool(draft.layers) and all(layer.name for layer in draft.layers)
    names = [layer.name if named else str(i) for i, layer in enumerate(draft.layers)]
    for i, slot in enumerate(slots):
        slot.markdown(f":red[**({names[i]}) ⚠**]" if i == bad_index else f"**({names[i]})**")


# ----------------------------------------------------------------------------------------------- pictures
def volume_svg(input_shape: tuple[int, int, int], rows) -> str:
    """Each tensor as a box: height ∝ H (log), depth ∝ channels (log); flat vectors as thin bars. Plain SVG.

    Not a Plotly figure: Plotly's 4 MB of JavaScript kept every widget on this page a grey placeholder
    for seconds in a fresh browser (issue 12). Hovering a box names the layer and its full shape.
    """
    shapes = [("input", "", tuple(input_shape))] + [(r.name, r.kind, r.output_shape) for r in rows]
    colors = {"input": "rgba(127,127,127,0.55)", "map": "rgba(31,119,180,0.55)", "flat": "rgba(214,39,40,0.55)"}
    unit = 34.0  # pixels per unit of the drawing
    boxes, x, top = [], 0.0, 0.0
    for i, (name, kind, shape) in enumerate(shapes):
        if len(shape) == 3:
            c, h, w = shape
            height = 1 + np.log2(max(h, 1))
            width = 0.4 + 0.25 * np.log2(max(w, 1))
            depth = 0.3 + 0.45 * np.log2(max(c, 1))
            group = "map" if i else "input"
        else:
            height, width, depth, group = 1 + np.log2(max(shape[0], 1)), 0.35, 0.0, "flat"
        title = t("model.picture_input") if i == 0 else f"({name}) {kind}"
        boxes.append((x, width, height, depth * 0.5, depth * 0.35, group, title, shape))
        top = max(top, height + depth * 0.35)
        x += width + depth * 0.5 + (1.9 if group == "flat" else 0.9)  # flat bars are thin: room for their labels
    base = (top + 0.3) * unit  # y of the boxes' bottom edge (SVG's y axis points down)
    parts = []
    for bx, width, height, dx, dy, group, title, shape in boxes:
        def pt(px, py):
            return f"{px * unit:.1f},{base - py * unit:.1f}"
        faces = [[(bx, 0), (bx + width, 0), (bx + width, height), (bx, height)]]
        if dx:
            faces += [[(bx, height), (bx + dx, height + dy), (bx + width + dx, height + dy), (bx + width, height)],
                      [(bx + width, 0), (bx + width + dx, dy), (bx + width + dx, height + dy), (bx + width, height)]]
        hover = escape(f"{title} [{', '.join(str(s) for s in (BATCH, *shape))}]")
        polys = "".join(f'<polygon points="{" ".join(pt(*q) for q in face)}"/>' for face in faces)
        cx = (bx + width / 2) * unit
        parts.append(
            f'<g fill="{colors[group]}" stroke="rgba(40,40,40,0.8)" stroke-width="1"><title>{hover}</title>{polys}</g>'
            f'<text x="{cx:.1f}" y="{base + 16:.1f}" text-anchor="middle" font-size="12" fill="currentColor">'
            f'{escape(title)}<tspan x="{cx:.1f}" dy="14" font-weight="bold">{"×".join(map(str, shape))}</tspan></text>')
    width_px, height_px = (x + 0.5) * unit, base + 44
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="-20 0 {width_px + 20:.0f} {height_px:.0f}" '
            f'width="{width_px + 20:.0f}" height="{height_px:.0f}" style="max-width: 100%; height: auto" role="img" '
            f'font-family="sans-serif">{"".join(parts)}</svg>')


def summary_table(rows) -> dict:
    return {
        "#": [f"({r.name})" for r in rows],
        t("model.col_type"): [r.kind for r in rows],
        t("model.col_shape"): ["[" + ", ".join(str(s) for s in (BATCH, *r.output_shape)) + "]" for r in rows],
        t("model.col_params"): [f"{r.params:,}" for r in rows],
        t("model.col_macs"): [f"{r.macs:,}" for r in rows],
        t("model.col_formula"): [r.formula for r in rows],
    }


# ----------------------------------------------------------------------------------------------- VGG16 (cached: read-only)
@st.cache_resource(show_spinner=False)
def _vgg_tree():
    return module_tree(vgg16())


@st.cache_resource(show_spinner=False)
def _vgg_diff(name: str):
    return modification_diff(name)


@st.cache_resource(show_spinner=False, max_entries=1)
def _vgg_pretrained():
    return load_pretrained()  # 528 MB, read-only, shared: loaded once per server, never downloaded


@st.cache_resource(show_spinner=False)
def _vgg_freeze(name: str):
    return freeze_features(modify(vgg16(), name))


# ================================================================================================ sections
def intro(shape: tuple[int, int, int], classes: int, title: str) -> None:
    st.title(t("model.title"))
    st.markdown(prose("model_intro"))
    st.info(t("model.input", dataset=title, c=shape[0], h=shape[1], w=shape[2], classes=classes),
            icon=":material/photo_library:")


def flash_messages() -> None:
    """What a callback (or a link) had to say, once."""
    for key, show in FLASHES:
        if key in st.session_state:
            show(st.session_state.pop(key))


def section_picker():
    """The section shown, and a place for the "Copy link" control (filled at the end, with the final network).
    Only the chosen section runs: VGG16 and the feature maps cost nothing while the student edits layers."""
    left, right = st.columns([5, 1], vertical_alignment="center")
    titles = {k: t(v) for k, v in SECTION_TITLES.items()}
    section = left.segmented_control(t("model.section"), SECTIONS, default="build", required=True,
                                     format_func=titles.get, key="model.section",
                                     label_visibility="collapsed") or "build"
    return section, right.container()


def valid_network(draft: ModelSpec, shape: tuple[int, int, int], classes: int) -> list:
    """A network whose shapes fit: it becomes the current one (asking first if it would replace a trained
    model of another structure), with its totals. Returns its rows."""
    summary = summarize(draft, shape)
    current, ckpt = state.current_spec(), state.trained()
    if not same_network(draft, current):
        if ckpt is not None and not same_network(ckpt.spec, draft):
            st.warning(t("model.trained_warning"), icon=":material/warning:")
            k1, k2, _ = st.columns([1.3, 1, 2])
            k1.button(t("model.discard"), key="model.discard", on_click=on_discard, args=(draft,), type="primary")
            k2.button(t("model.keep"), key="model.keep", on_click=on_keep,
                      args=(current if current is not None else ckpt.spec,))
        else:
            state.set_spec(draft)
    st.success(t("model.valid", params=f"{summary.total_params:,}",
                 shape="[" + ", ".join(str(s) for s in (BATCH, *summary.output_shape)) + "]"),
               icon=":material/check_circle:")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(t("model.total_params"), f"{summary.total_params:,}")
    m2.metric(t("model.trainable"), f"{summary.trainable_params:,}")
    m3.metric(t("model.size_mb"), f"{summary.size_mb:.2f} MB")
    m4.metric(t("model.macs"), f"{summary.total_macs / 1e6:.2f} M")
    if summary.output_shape != (classes,):
        st.warning(t("model.classes_mismatch", out="×".join(map(str, summary.output_shape)), classes=classes),
                   icon=":material/info:")
    return list(summary.rows)


def broken_network(draft: ModelSpec, problem: CourseError, shape: tuple[int, int, int]) -> None:
    """The first problem, in words, and the one-click fix where there is one; the last valid network is kept."""
    st.error(error_text(problem), icon=":material/error:")
    if fix_spec(draft, shape) is not None:
        st.button(t("model.fix"), key="model.fix", on_click=on_fix, args=(draft, shape), type="primary",
                  icon=":material/build:")
    else:
        st.caption(t("model.no_fix"))
    if state.current_spec() is not None:
        st.caption(t("model.kept_last"))


def layer_table(shape: tuple[int, int, int], rows: list) -> None:
    if rows:
        st.subheader(t("model.table"))
        st.table(summary_table(rows), hide_index=True)  # static: no data-grid JavaScript to load first
        with st.container(key="model.volumes"):
            st.markdown(volume_svg(shape, rows), unsafe_allow_html=True)  # st.html drops SVG
        st.caption(t("model.picture_caption"))


def padding_explainer(h_in: int) -> None:
    """Why padding=2 keeps 32×32: the size formula for every padding (dl_core.arithmetic's text)."""
    st.subheader(t("model.padding_title"))
    st.markdown(prose("model_padding"))
    st.latex(r"H_{out} = \left\lfloor \frac{H_{in} + 2\,p - d\,(k-1) - 1}{s} \right\rfloor + 1")
    q1, q2, q3 = st.columns(3)
    pad_h = q1.number_input("H_in", min_value=1, max_value=512, value=h_in, step=1, key="model.pad_h")
    pad_k = q2.number_input(t("model.arg.kernel_size"), min_value=1, max_value=15, value=5, step=1, key="model.pad_k")
    pad_s = q3.number_input(t("model.arg.stride"), min_value=1, max_value=8, value=1, step=1, key="model.pad_s")
    table = padding_table(int(pad_h), int(pad_k), int(pad_s))
    st.table({"padding": [p for p, _, _ in table], "H_out": [o for _, o, _ in table],
              t("model.col_formula"): [f for _, _, f in table]}, hide_index=True)
    same = [p for p, o, _ in table if o == pad_h]
    if same:
        st.markdown(t("model.pad_same", h=int(pad_h), k=int(pad_k), p=same[0]))
    else:
        st.markdown(t("model.pad_none", h=int(pad_h), k=int(pad_k), s=int(pad_s)))


def build_section(shape: tuple[int, int, int], classes: int) -> None:
    """Preset, the layer editor, then the one check (`check_partial`) and what it says."""
    pcol, bcol, _ = st.columns([2, 1, 2], vertical_alignment="bottom")
    pcol.selectbox(t("model.preset"), PRESETS, format_func={p: t(v) for p, v in PRESET_TITLES.items()}.get,
                   key="model.preset")
    bcol.button(t("model.load_preset"), key="model.load_preset", on_click=on_preset, args=(shape, classes),
                icon=":material/restart_alt:")
    st.subheader(t("model.layers"))
    draft, slots = layer_editor()
    rows_ok, problem = check_partial(draft, shape)
    add_row(draft, [tuple(shape)] + [r.output_shape for r in rows_ok])
    label_rows(slots, draft, problem)
    if problem is None:
        rows_ok = valid_network(draft, shape, classes)
    else:
        broken_network(draft, problem, shape)
    layer_table(shape, rows_ok)
    padding_explainer(shape[1])


def code_section(shape: tuple[int, int, int]) -> None:
    """print(model) and the course's model.py for the current network."""
    spec = state.current_spec()
    if spec is None:
        st.info(t("model.no_valid"))
        return
    st.markdown(t("model.print_intro"))
    st.code(print_model(spec), language="text")
    explain = t("model.code_intro", c=shape[0], h=shape[1], w=shape[2])
    st.markdown(explain)
    ordered = st.toggle(t("model.ordered"), key="model.ordered")
    show_code(model_code(spec, shape, ordered=ordered), key="model.code", filename="model.py", expanded=True,
              explain=explain)


def maps_image(shape: tuple[int, int, int]):
    """The picture to send through the network: a test sample, an upload or the last predicted one.
    Returns (uint8 [C, H, W] or None, class names or None)."""
    seen = state.seen_image()  # the last picture the Predict page fed the network
    seen = seen if seen is not None and tuple(seen.shape) == tuple(shape) else None
    sources = ["sample", "upload"] + (["predict"] if seen is not None else [])
    source = st.radio(t("model.maps_source"), sources, format_func={s: t(v) for s, v in MAPS_SOURCES.items()}.get,
                      key="model.maps_source", horizontal=True)
    if source == "predict":
        return seen, None
    if source == "upload":
        up = st.file_uploader(t("model.maps_upload"), type=["png", "jpg", "jpeg", "bmp", "webp"], key="model.maps_file")
        if up is not None:
            try:
                return decode_image(up.getvalue(), shape[0], shape[1:]), None
            except CourseError as exc:
                st.error(error_text(exc), icon=":material/error:")
        return None, None
    if st.toggle(t("model.maps_load"), key="model.maps_on"):
        test_set = current_dataset(train=False)
        if test_set is not None:
            index = int(st.number_input(t("model.maps_index"), min_value=0, max_value=len(test_set) - 1, value=0,
                                        step=1, key="model.maps_index"))
            st.caption(t("model.maps_label", label=test_set.classes[int(test_set.targets[index])]))
            return test_set.images[index], list(test_set.classes)
    return None, None


def show_maps(outs: list, classes: list | None) -> None:
    """Each layer's output: channel pictures for feature maps, a bar chart for a short vector."""
    max_ch = st.slider(t("model.maps_channels"), 4, 32, 8, step=4, key="model.maps_channels")
    maps_box = st.container(key="model.maps_out")
    for name, kind, out in outs:
        shape = "×".join(map(str, out.shape))
        if out.dim() == 3:
            maps_box.markdown(f"**({name}) {kind}** → `{shape}`")
            grid = channel_grid(out, max_channels=int(max_ch)).numpy()
            maps_box.image(list(grid), width=56, caption=[f"{k}" for k in range(grid.shape[0])])
        elif out.numel() <= 64:
            maps_box.markdown(f"**({name}) {kind}** → `{shape}`")
            vals = out.numpy()
            ticks = classes if classes is not None and len(classes) == vals.size else np.arange(vals.size)
            fig = go.Figure(go.Bar(x=ticks, y=vals, marker_color="#1f77b4"))
            fig.update_layout(height=180, margin=dict(l=10, r=10, t=10, b=20))
            maps_box.plotly_chart(fig, key=f"model.maps_bar{name}", config={"displayModeBar": False})
        else:
            maps_box.markdown(f"**({name}) {kind}** → `{shape}` · {t('model.maps_flat')}")


def maps_section(shape: tuple[int, int, int]) -> None:
    """One picture through the current network (untrained, or the trained weights when they fit)."""
    st.markdown(prose("model_maps"))
    spec = state.current_spec()
    if spec is None:
        st.info(t("model.no_valid"))
        return
    ckpt = state.trained()
    usable = ckpt is not None and same_network(ckpt.spec, spec) and ckpt.input_shape == tuple(shape)
    weights = st.radio(t("model.maps_weights"), ["untrained", "trained"] if usable else ["untrained"],
                       format_func={w: t(v) for w, v in MAPS_WEIGHTS.items()}.get, key="model.maps_weights",
                       horizontal=True)
    if not usable:
        st.caption(t("model.maps_no_trained"))
    image, classes = maps_image(shape)
    if image is None:
        return
    trained = weights == "trained" and usable
    try:
        if trained:
            outs = layer_outputs(ckpt.build(), image_input(image, ckpt.preprocessing))
        else:
            outs = layer_outputs(build_model_seeded(spec, 0), image_input(image))
    except CourseError as exc:
        st.error(error_text(exc), icon=":material/error:")
        outs = []
    st.image(image.permute(1, 2, 0).numpy() if shape[0] == 3 else image[0].numpy(), width=96,
             caption=t("model.picture_input"))
    show_maps(outs, list(ckpt.classes) if trained else classes)


def vgg_tree() -> None:
    tree = _vgg_tree()
    st.metric(t("model.vgg_total"), f"{tree.params:,}")
    for child in tree.children:
        with st.expander(f"({child.name}) {child.kind} · {child.params:,} {t('model.params_word')}"):
            if child.children:
                st.dataframe({"#": [f"({g.name})" for g in child.children],
                              t("model.col_type"): [f"{g.kind}({g.line})" for g in child.children],
                              t("model.col_params"): [f"{g.params:,}" for g in child.children]},
                             hide_index=True, width="stretch", key=f"model.vgg_{child.name}")
            else:
                st.code(f"{child.kind}({child.line})", language="text")


def vgg_weights() -> None:
    """The pretrained weights: used from the local torch cache only, never downloaded."""
    if not pretrained_available():
        st.info(t("model.vgg_weights_missing", path=str(pretrained_path())), icon=":material/cloud_off:")
        return
    st.success(t("model.vgg_weights_found", path=str(pretrained_path())), icon=":material/check_circle:")
    if st.button(t("model.vgg_load_weights"), key="model.vgg_load"):
        try:
            loaded = _vgg_pretrained()
            st.success(t("model.vgg_weights_loaded", params=f"{count_parameters(loaded):,}"))
        except CourseError as exc:
            st.error(error_text(exc), icon=":material/error:")


def vgg_section() -> None:
    """Course step 15: VGG16's tree, the course's three modifications, freezing `features`."""
    explain = prose("model_vgg")
    st.markdown(explain)
    vgg_tree()
    st.subheader(t("model.vgg_modify"))
    mod = st.radio(t("model.vgg_which"), MODIFICATIONS, format_func={m: t(v) for m, v in VGG_TITLES.items()}.get,
                   key="model.vgg_mod")
    diff = _vgg_diff(mod)
    st.code(diff.code, language="python")
    d1, d2, d3 = st.columns(3)
    d1.metric(t("model.vgg_before"), f"{diff.params_before:,}")
    d2.metric(t("model.vgg_after"), f"{diff.params_after:,}", delta=f"{diff.params_change:+,}")
    d3.metric(t("model.vgg_output"), str(list(diff.output_after)))
    d3.caption(t("model.vgg_output_before", shape=str(list(diff.output_before))))
    if diff.output_after == diff.output_before:
        st.warning(t("model.vgg_not_called"), icon=":material/info:")
    st.code("\n".join(diff.diff), language="diff")
    freeze = st.toggle(t("model.vgg_freeze"), key="model.vgg_freeze")
    if freeze:
        fr = _vgg_freeze(mod)
        f1, f2, f3 = st.columns(3)
        f1.metric(t("model.vgg_total"), f"{fr.total:,}")
        f2.metric(t("model.vgg_frozen"), f"{fr.frozen:,}")
        f3.metric(t("model.trainable"), f"{fr.trainable:,}")
    vgg_weights()
    show_code(vgg_code(mod, freeze=freeze, pretrained=pretrained_available()), key="model.vgg_code",
              filename="vgg16.py", explain=explain)


def show_section(section: str, shape: tuple[int, int, int], classes: int) -> None:
    if section == "build":
        build_section(shape, classes)
    elif section == "code":
        code_section(shape)
    elif section == "maps":
        maps_section(shape)
    else:
        vgg_section()


def finish(link: PageLink, slot) -> None:
    """The URL follows the network (and the "Copy link" control shows it), after every widget has run."""
    link.publish()
    with slot:
        link.copy_button()


# ================================================================================================ the page
INPUT_SHAPE, NUM_CLASSES, DATASET_TITLE = dataset_input()
intro(INPUT_SHAPE, NUM_CLASSES, DATASET_TITLE)
LINK = page_link(INPUT_SHAPE, NUM_CLASSES)
LINK.apply()  # before the widgets: a link's network becomes the edited one
start_rows(INPUT_SHAPE, NUM_CLASSES)
flash_messages()
SECTION, LINK_SLOT = section_picker()
show_section(SECTION, INPUT_SHAPE, NUM_CLASSES)
finish(LINK, LINK_SLOT)
