"""Save & load (course step 16): the two ways to save side by side, and loading any .pth safely."""
import streamlit as st

from dl_core.checkpoint import (
    MAX_CHECKPOINT_BYTES, CheckpointMismatch, file_name, history_accuracy, history_epochs, load_any, load_demo,
    save_ways, to_bytes, way1_bytes, way2_bytes,
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
LAST_UPLOAD = "save.last_upload"  # session key (not a widget): the upload already handled
LAST_RESULT = "save.last_result"  # what that upload gave: ("ok", info) or ("error", message, rows)


def _use_demo() -> None:
    try:
        state.set_trained(load_demo())
    except CourseError as exc:
        st.session_state["save.demo_error"] = error_text(exc)


st.title(t("save.title"))
st.markdown(prose("save_intro"))

# ------------------------------------------------------------------------------------- save
st.header(t("save.header_save"), anchor="save")
ckpt = state.trained()
if ckpt is None:
    st.info(t("save.no_model"), icon=":material/info:")
    c1, c2, c3 = st.columns(3)
    c1.button(t("save.use_demo"), key="save.use_demo", on_click=_use_demo, icon=":material/smart_toy:",
              type="primary")
    with c2:
        st.page_link("app_pages/train.py", label=t("save.go_train"), icon=":material/monitoring:")
    c3.markdown(t("save.go_load"))
    if "save.demo_error" in st.session_state:
        st.error(st.session_state.pop("save.demo_error"), icon=":material/error:")
else:
    model = ckpt.build()
    params = count_parameters(model)
    acc, epochs = history_accuracy(ckpt), history_epochs(ckpt)
    with st.container(border=True, key="save.summary"):
        st.markdown(f"**{t('save.current')}**")
        m1, m2, m3, m4 = st.columns(4)
        m1.metric(t("save.dataset"), DATASETS[ckpt.dataset].title if ckpt.dataset in DATASETS
                  else ckpt.dataset or t("save.unknown"))
        m2.metric(t("save.params"), f"{params:,}")
        m3.metric(t("save.accuracy"), t("save.unknown") if acc is None else f"{100 * acc:.1f} %")
        m4.metric(t("save.epochs"), t("save.unknown") if epochs is None else epochs)
        st.caption(f"{t('save.classes')}: " + ", ".join(display_classes(ckpt.classes, lang())))
        st.download_button(t("save.download"), to_bytes(ckpt), file_name=file_name(ckpt),
                           mime="application/octet-stream", key="save.download", icon=":material/download:",
                           help=t("save.download_help"), type="primary")

    ways = save_ways(ckpt)
    left, right = st.columns(2)
    with left.container(border=True, key="save.way1"):
        st.subheader(t("save.way1"))
        st.code('torch.save(tudui, "tudui_method1.pth")', language="python")
        st.metric(t("save.size"), t("save.size_value", bytes=ways.way1_bytes, kb=round(ways.way1_bytes / 1024, 1)))
        st.markdown(t("save.way1_needs"))
        st.markdown(t("save.way1_refused"))
        st.code(ways.way1_refusal or "-", language="text")
        st.download_button(t("save.way1_download"), way1_bytes(ckpt), file_name="tudui_method1.pth",
                           mime="application/octet-stream", key="save.way1_download", icon=":material/download:")
    with right.container(border=True, key="save.way2"):
        st.subheader(t("save.way2"))
        st.code('torch.save(tudui.state_dict(), "tudui_method2.pth")', language="python")
        st.metric(t("save.size"), t("save.size_value", bytes=ways.way2_bytes, kb=round(ways.way2_bytes / 1024, 1)))
        st.markdown(t("save.way2_needs"))
        st.download_button(t("save.way2_download"), way2_bytes(ckpt), file_name="tudui_method2.pth",
                           mime="application/octet-stream", key="save.way2_download", icon=":material/download:")
    st.caption(t("save.ours_size", bytes=ways.ours_bytes, params=ways.parameters, raw=4 * ways.parameters))
    st.markdown(prose("save_why"))
    show_code(save_code(ckpt.spec), key="save.code_save", filename="save.py")

# ------------------------------------------------------------------------------------- load
st.header(t("save.header_load"), anchor="load")
st.markdown(t("save.load_accepts", limit_mb=LIMIT_MB))
# A file from home (way 1 / way 2) holds no class names: the student says which dataset it learned.
names_for = {name: info.title for name, info in DATASETS.items() if name != "shapes10-full"}
names_for["numbers"] = t("save.classes_numbers")
classes_from = st.selectbox(t("save.classes_from"), list(names_for), key="save.classes_from",
                            index=list(names_for).index("cifar10"), format_func=names_for.get)
upload = st.file_uploader(t("save.upload"), type=["pth", "pt", "pkl", "bin", "ckpt", "tar"], key="save.upload",
                          max_upload_size=LIMIT_MB)

if upload is not None and st.session_state.get(LAST_UPLOAD) != (upload.file_id, classes_from):
    # Handled once per upload: a later Train run must not be overwritten by a file still in the widget.
    st.session_state[LAST_UPLOAD] = (upload.file_id, classes_from)
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
    st.rerun()  # the save section above now shows the loaded model

outcome = st.session_state.get(LAST_RESULT) if upload is not None else None
if outcome is not None and outcome[0] == "error":
    _, message, rows = outcome
    st.error(message, icon=":material/error:")
    if rows:
        st.markdown(t("save.mismatch_table"))
        st.dataframe(
            {t("save.col.key"): [r.key for r in rows],
             t("save.col.problem"): [t(f"save.problem.{r.problem}") for r in rows],
             t("save.col.expected"): [r.expected for r in rows],
             t("save.col.found"): [r.found for r in rows]},
            hide_index=True, key="save.mismatch")
    if state.trained() is not None:
        st.caption(t("save.kept"))
elif outcome is not None and outcome[0] == "ok":
    _, name, result = outcome
    what = t(f"save.kind.{result.kind}" if result.kind == "ours" else f"save.kind.{result.kind}.{result.matched}",
             **({"cls": f"`{result.source_class}`"} if result.kind == "whole_model" else {}))
    st.success(t("save.loaded", name=name, what=what), icon=":material/check_circle:")
    loaded = result.checkpoint
    if result.key_prefix:
        st.caption(t("save.prefix", prefix=result.key_prefix))
    if result.gpu_trained:
        st.info(t("save.gpu_note", devices=", ".join(result.devices)), icon=":material/memory:")
    if result.kind != "ours":
        st.caption(t("save.classes_named", dataset=names_for.get(loaded.dataset, loaded.dataset))
                   if loaded.dataset else t("save.classes_numbered", last=len(loaded.classes) - 1))
    with st.expander(t("save.structure"), icon=":material/account_tree:"):
        st.code(str(loaded.build()), language="text")
    st.page_link("app_pages/predict.py", label=t("save.go_predict"), icon=":material/image_search:")

current = state.trained()
show_code(load_code(current.spec if current is not None else course_cnn()), key="save.code_load", filename="load.py")
