"""Save & load (course step 16): the two ways to save side by side, and loading any .pth safely.

Explanation → save (the current model, both ways) → load (an upload, handled once in its on_change
callback: one dl_core call, `load_any`) → what the file held → the code.
"""
from __future__ import annotations

import streamlit as st

from dl_core.checkpoint import (
    MAX_CHECKPOINT_BYTES, Checkpoint, CheckpointMismatch, LoadResult, file_name, history_accuracy, history_epochs,
    load_any, load_demo, save_ways, to_bytes, way1_bytes, way2_bytes,
)
from dl_core.codegen.checkpoint import load_code, save_code
from dl_core.datasets import DATASETS, display_classes
from dl_core.errors import CourseError
from dl_core.models import count_parameters, course_cnn
from ui import state
from ui.code import show_code
from ui.i18n import error_text, lang, prose, t

# dl_core's cap, or the server's (server.maxUploadSize, enforced on every upload) when lower.
LIMIT_MB = min(MAX_CHECKPOINT_BYTES // 2**20, int(st.get_option("server.maxUploadSize")))
UPLOAD = "save.upload"  # the file uploader's key
CLASSES_FROM = "save.classes_from"  # which dataset's class names a file from home gets
LAST_RESULT = "save.last_result"  # what the last upload gave: ("ok", name, LoadResult) or ("error", message, rows)
DEMO_ERROR = "save.demo_error"  # a message from the "use the demo" callback, shown once
DEFAULT_CLASSES = "cifar10"  # the course trains on CIFAR10
# The course's two ways: (title, what loading needs, download label, the course's line, bytes of the file).
WAYS = {
    "way1": ("save.way1", "save.way1_needs", "save.way1_download", 'torch.save(tudui, "tudui_method1.pth")',
             way1_bytes),
    "way2": ("save.way2", "save.way2_needs", "save.way2_download",
             'torch.save(tudui.state_dict(), "tudui_method2.pth")', way2_bytes),
}
PROBLEMS = {"missing": "save.problem.missing", "unexpected": "save.problem.unexpected", "shape": "save.problem.shape"}
KINDS = {  # (LoadResult.kind, LoadResult.matched) → what the file was
    ("ours", "ours"): "save.kind.ours",
    ("state_dict", "course_cnn"): "save.kind.state_dict.course_cnn",
    ("state_dict", "inferred"): "save.kind.state_dict.inferred",
    ("whole_model", "modules"): "save.kind.whole_model.modules",
}


def class_sources() -> dict[str, str]:
    """Where a file from home (way 1 / way 2, no class names) gets its classes: dataset → label."""
    names = {name: info.title for name, info in DATASETS.items() if name != "shapes10-full"}
    names["numbers"] = t("save.classes_numbers")
    return names


# ------------------------------------------------------------------------------------- callbacks
def on_use_demo() -> None:
    try:
        state.set_trained(load_demo())
    except CourseError as exc:
        st.session_state[DEMO_ERROR] = error_text(exc)


def on_upload() -> None:
    """A new file, or new class names for it: the one dl_core call, before the page draws the saved model."""
    upload = st.session_state.get(UPLOAD)
    if upload is None:
        st.session_state.pop(LAST_RESULT, None)
        return
    classes_from = st.session_state.get(CLASSES_FROM, DEFAULT_CLASSES)
    known = DATASETS.get(classes_from)
    try:
        result = load_any(upload.getvalue(), classes=list(known.classes) if known else [],
                          dataset=classes_from if known else "", limit=LIMIT_MB * 2**20)
    except CheckpointMismatch as exc:
        st.session_state[LAST_RESULT] = ("error", error_text(exc), exc.rows)
    except CourseError as exc:
        st.session_state[LAST_RESULT] = ("error", error_text(exc), [])
    else:
        state.set_trained(result.checkpoint)
        st.session_state[LAST_RESULT] = ("ok", upload.name, result)


# ------------------------------------------------------------------------------------- explanation
def explanation() -> None:
    st.title(t("save.title"))
    st.markdown(prose("save_intro"))


# ------------------------------------------------------------------------------------- save
def no_model() -> None:
    st.info(t("save.no_model"), icon=":material/info:")
    c1, c2, c3 = st.columns(3)
    c1.button(t("save.use_demo"), key="save.use_demo", on_click=on_use_demo, icon=":material/smart_toy:",
              type="primary")
    with c2:
        st.page_link("app_pages/train.py", label=t("save.go_train"), icon=":material/monitoring:")
    c3.markdown(t("save.go_load"))
    if DEMO_ERROR in st.session_state:
        st.error(st.session_state.pop(DEMO_ERROR), icon=":material/error:")


def summary(ckpt: Checkpoint) -> None:
    acc, epochs = history_accuracy(ckpt), history_epochs(ckpt)
    with st.container(border=True, key="save.summary"):
        st.markdown("**" + t("save.current") + "**")
        m1, m2, m3, m4 = st.columns(4)
        m1.metric(t("save.dataset"), DATASETS[ckpt.dataset].title if ckpt.dataset in DATASETS
                  else ckpt.dataset or t("save.unknown"))
        m2.metric(t("save.params"), f"{count_parameters(ckpt.build()):,}")
        m3.metric(t("save.accuracy"), t("save.unknown") if acc is None else f"{100 * acc:.1f} %")
        m4.metric(t("save.epochs"), t("save.unknown") if epochs is None else epochs)
        st.caption(t("save.classes") + ": " + ", ".join(display_classes(ckpt.classes, lang())))
        st.download_button(t("save.download"), to_bytes(ckpt), file_name=file_name(ckpt),
                           mime="application/octet-stream", key="save.download", icon=":material/download:",
                           help=t("save.download_help"), type="primary")


def way_card(way: str, ckpt: Checkpoint, size: int, refusal: str | None) -> None:
    """One of the course's two ways: its line, the file's real size, what loading it needs, the file."""
    title, needs, download, line, to_file = WAYS[way]
    with st.container(border=True, key=f"save.{way}"):
        st.subheader(t(title))
        st.code(line, language="python")
        st.metric(t("save.size"), t("save.size_value", bytes=size, kb=round(size / 1024, 1)))
        st.markdown(t(needs))
        if way == "way1":
            st.markdown(t("save.way1_refused"))
            st.code(refusal or "-", language="text")
        st.download_button(t(download), to_file(ckpt), file_name=f"tudui_method{way[-1]}.pth",
                           mime="application/octet-stream", key=f"save.{way}_download", icon=":material/download:")


def save_section() -> None:
    st.header(t("save.header_save"), anchor="save")
    ckpt = state.trained()
    if ckpt is None:
        no_model()
        return
    summary(ckpt)
    ways = save_ways(ckpt)
    left, right = st.columns(2)
    with left:
        way_card("way1", ckpt, ways.way1_bytes, ways.way1_refusal)
    with right:
        way_card("way2", ckpt, ways.way2_bytes, None)
    st.caption(t("save.ours_size", bytes=ways.ours_bytes, params=ways.parameters, raw=4 * ways.parameters))
    st.markdown(prose("save_why"))
    show_code(save_code(ckpt.spec), key="save.code_save", filename="save.py", explain=prose("save_intro"))


# ------------------------------------------------------------------------------------- load
def load_inputs(sources: dict[str, str]) -> bool:
    """The class-name choice and the uploader (both hand a file to on_upload); whether a file is there."""
    st.header(t("save.header_load"), anchor="load")
    st.markdown(t("save.load_accepts", limit_mb=LIMIT_MB))
    st.selectbox(t("save.classes_from"), list(sources), key=CLASSES_FROM, index=list(sources).index(DEFAULT_CLASSES),
                 format_func=sources.get, on_change=on_upload)
    upload = st.file_uploader(t("save.upload"), type=["pth", "pt", "pkl", "bin", "ckpt", "tar"], key=UPLOAD,
                              max_upload_size=LIMIT_MB, on_change=on_upload)
    return upload is not None


def show_refusal(message: str, rows: list) -> None:
    st.error(message, icon=":material/error:")
    if rows:
        st.markdown(t("save.mismatch_table"))
        st.dataframe(
            {t("save.col.key"): [r.key for r in rows],
             t("save.col.problem"): [t(PROBLEMS[r.problem]) for r in rows],
             t("save.col.expected"): [r.expected for r in rows],
             t("save.col.found"): [r.found for r in rows]},
            hide_index=True, key="save.mismatch")
    if state.trained() is not None:
        st.caption(t("save.kept"))


def show_loaded(name: str, result: LoadResult, sources: dict[str, str]) -> None:
    params = {"cls": f"`{result.source_class}`"} if result.kind == "whole_model" else {}
    st.success(t("save.loaded", name=name, what=t(KINDS[result.kind, result.matched], **params)),
               icon=":material/check_circle:")
    loaded = result.checkpoint
    if result.key_prefix:
        st.caption(t("save.prefix", prefix=result.key_prefix))
    if result.gpu_trained:
        st.info(t("save.gpu_note", devices=", ".join(result.devices)), icon=":material/memory:")
    if result.kind != "ours":
        st.caption(t("save.classes_named", dataset=sources.get(loaded.dataset, loaded.dataset))
                   if loaded.dataset else t("save.classes_numbered", last=len(loaded.classes) - 1))
    with st.expander(t("save.structure"), icon=":material/account_tree:"):
        st.code(str(loaded.build()), language="text")
    st.page_link("app_pages/predict.py", label=t("save.go_predict"), icon=":material/image_search:")


def load_section() -> None:
    sources = class_sources()
    if not load_inputs(sources):
        return
    outcome = st.session_state.get(LAST_RESULT)
    if outcome is not None and outcome[0] == "error":
        show_refusal(outcome[1], outcome[2])
    elif outcome is not None:
        show_loaded(outcome[1], outcome[2], sources)


def code_panel() -> None:
    current = state.trained()
    show_code(load_code(current.spec if current is not None else course_cnn()), key="save.code_load",
              filename="load.py", explain=prose("save_why"))


explanation()
save_section()
load_section()
code_panel()
