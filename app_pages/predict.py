"""Predict (course step 19, test.py): any picture in, every step of the pipeline shown, the class out."""
from dataclasses import replace

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from dl_core.checkpoint import load_demo
from dl_core.codegen.predict import predict_code
from dl_core.datasets import DATASETS, display_classes
from dl_core.errors import CourseError
from dl_core.models import count_parameters
from dl_core.predict import MAX_IMAGE_BYTES, open_image, predict, preprocessing_differences
from ui import state
from ui.code import show_code
from ui.datasets import builtin, current_dataset
from ui.i18n import error_text, lang, prose, t

LIMIT_MB = min(MAX_IMAGE_BYTES // 2**20, int(st.get_option("server.maxUploadSize")))
MAX_IMAGES = 12  # one page run predicts at most this many uploads
LAST_IMAGE = "predict.last_image"  # session key (not a widget): uint8 [C, H, W] seen, for the builder's feature maps


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _prep_text(prep) -> str:
    if prep.mean is None or prep.std is None:
        return t("predict.prep.none")
    return t("predict.prep.with_norm", mean=_fmt(prep.mean), std=_fmt(prep.std))


def _topk_chart(prediction, names: list[str], k: int) -> go.Figure:
    top = prediction.top(k)
    labels = np.array([names[i] for i, _ in top][::-1])
    probs = np.array([p for _, p in top][::-1])
    colors = np.where(np.arange(len(top)) == len(top) - 1, "#e4572e", "#7f8fa6")
    fig = go.Figure(go.Bar(x=probs, y=labels, orientation="h", marker_color=colors,
                           text=[f"{p:.1%}" for p in probs], textposition="auto"))
    fig.update_layout(title=t("predict.topk", k=len(top)), height=60 + 36 * len(top),
                      margin=dict(l=10, r=10, t=40, b=10), xaxis=dict(range=[0, 1.04], dtick=0.2, tickformat=".0%",
                                                                   title=t("predict.prob")))
    return fig


def _big(img, size: int = 192):
    """The 32×32 picture scaled up with NEAREST, so each pixel the network sees stays a visible square."""
    return img.resize((size, size * img.size[1] // img.size[0]), Image.NEAREST)


def _show_steps(name: str, image, prediction, names: list[str], original_mode: str) -> None:
    prep = prediction.preprocessing
    h, w = prep.size
    st.markdown(f"#### {t('predict.steps')}")
    st.markdown(t("predict.step1", width=image.size[0], height=image.size[1], mode=original_mode))
    st.markdown(t("predict.step2", h=h, w=w))
    c1, c2 = st.columns(2)
    c1.image(image, caption=t("predict.original"), width=240)
    c2.image(_big(prediction.resized), caption=t("predict.sees", h=h, w=w))
    x = prediction.tensor
    st.markdown(t("predict.step3", shape=list(x.shape), min=float(x.min()), max=float(x.max()),
                  mean=float(x.mean())))
    st.code(np.array2string(x[0, :4, :4].numpy(), precision=4, suppress_small=True), language="text")
    st.caption(t("predict.pixels_caption"))
    if prediction.normalized is not None:
        n = prediction.normalized
        st.markdown(t("predict.step3n", mean_cfg=_fmt(prep.mean), std_cfg=_fmt(prep.std), min=float(n.min()),
                      max=float(n.max()), mean=float(n.mean())))
    st.markdown(t("predict.step4", shape=tuple(prediction.batch.shape)))
    st.markdown(t("predict.step5", n=prediction.logits.numel()))
    st.dataframe({t("predict.col.class"): names,
                  t("predict.col.logit"): prediction.logits.numpy().round(4),
                  t("predict.col.prob"): prediction.probs.numpy().round(4)},
                 hide_index=True, key=f"predict.table.{name}", height=min(400, 38 + 35 * len(names)))
    st.markdown(t("predict.step6", index=prediction.index, label=names[prediction.index]))


st.title(t("predict.title"))
st.markdown(prose("predict_intro"))

# ------------------------------------------------------------------------------------- the model
session_ckpt = state.trained()
use_demo = session_ckpt is None
if session_ckpt is None:
    st.info(t("predict.no_model"), icon=":material/info:")
    c1, c2 = st.columns(2)
    with c1:
        st.page_link("app_pages/train.py", label=t("predict.go_train"), icon=":material/monitoring:")
    with c2:
        st.page_link("app_pages/save_load.py", label=t("predict.go_load"), icon=":material/upload_file:")
else:
    # Labels are looked up now, not inside format_func: AppTest calls it outside the script run.
    sources = {s: t(f"predict.source.{s}") for s in ("session", "demo")}
    choice = st.radio(t("predict.model_source"), list(sources), key="predict.source", horizontal=True,
                      format_func=sources.get)
    use_demo = choice == "demo"

try:
    ckpt = load_demo() if use_demo else session_ckpt
    model = ckpt.build()
except CourseError as exc:
    st.error(error_text(exc), icon=":material/error:")
    st.stop()
names = display_classes(ckpt.classes, lang())
st.caption(t("predict.model_info", dataset=DATASETS[ckpt.dataset].title if ckpt.dataset in DATASETS else ckpt.dataset or "?", params=count_parameters(model), n=len(names),
             shape="×".join(map(str, ckpt.input_shape))))

# ------------------------------------------------------------------------------------- the inputs
kinds = {s: t(f"predict.input.{s}") for s in ("upload", "camera", "test")}
source = st.segmented_control(t("predict.input"), list(kinds), key="predict.input", default="upload",
                              required=True, format_func=kinds.get)
trained_prep = ckpt.preprocessing
channels = trained_prep.channels
mean, std = ((trained_prep.mean, trained_prep.std) if trained_prep.mean is not None
             else ((0.5,) * channels, (0.5,) * channels))  # the course's Normalize([0.5]*C, [0.5]*C)
normalize = st.checkbox(t("predict.normalize", mean=_fmt(mean), std=_fmt(std)), key="predict.normalize",
                        value=trained_prep.mean is not None)
used_prep = replace(trained_prep, mean=mean if normalize else None, std=std if normalize else None)
diffs = preprocessing_differences(trained_prep, used_prep)
if diffs:
    st.warning(t("predict.prep_warning", what=", ".join(t(f"predict.prep.{d}") for d in diffs),
                 trained=_prep_text(trained_prep)), icon=":material/warning:")

inputs: list[tuple[str, bytes | None, object]] = []  # (name, raw bytes or None, PIL image or None)
caption = ""
if source == "upload":
    files = st.file_uploader(t("predict.upload", limit_mb=LIMIT_MB), key="predict.upload",
                             type=["png", "jpg", "jpeg", "gif", "bmp", "webp"], accept_multiple_files=True,
                             max_upload_size=LIMIT_MB) or []
    if len(files) > MAX_IMAGES:
        st.warning(t("predict.too_many", limit=MAX_IMAGES), icon=":material/warning:")
    inputs = [(f.name, f.getvalue(), None) for f in files[:MAX_IMAGES]]
    if not inputs:
        st.info(t("predict.upload_hint"), icon=":material/upload:")
elif source == "camera":
    photo = st.camera_input(t("predict.camera"), key="predict.camera")
    if photo is not None:
        inputs = [("camera.jpg", photo.getvalue(), None)]
    else:
        st.info(t("predict.camera_hint"), icon=":material/photo_camera:")
else:
    if ckpt.dataset in DATASETS:
        try:
            test_set = builtin(ckpt.dataset, False)
        except CourseError as exc:
            st.error(error_text(exc), icon=":material/error:")
            test_set = current_dataset(False)
    else:
        st.caption(t("predict.test_unavailable", dataset=ckpt.dataset or "?"))
        test_set = current_dataset(False)
    if test_set is None:
        st.stop()
    index = st.number_input(t("predict.test_index"), min_value=0, max_value=len(test_set) - 1, value=0, step=1,
                            key="predict.test_index")
    label = display_classes(test_set.classes, lang())[int(test_set.targets[int(index)])]
    caption = t("predict.test_label", index=int(index), label=label)
    inputs = [(f"test[{int(index)}]", None, test_set.pil(int(index)))]

# ------------------------------------------------------------------------------------- one call per picture
results = []  # (name, image, original mode, Prediction) or (name, None, None, error message)
for name, data, pil in inputs:
    try:
        if data is not None:
            image, mode = open_image(data, max_bytes=LIMIT_MB * 2**20)
        else:
            image, mode = pil.convert("RGB"), pil.mode
        results.append((name, image, mode, predict(model, image, used_prep)))
    except CourseError as exc:
        results.append((name, None, None, error_text(exc)))

for name, image, _, outcome in results:
    if image is None:
        st.error(t("predict.file_error", name=name, message=outcome), icon=":material/error:")
good = [r for r in results if r[1] is not None]
if not good:
    show_code(predict_code(ckpt.spec, used_prep, names), key="predict.code", filename="test.py")
    st.stop()

# ------------------------------------------------------------------------------------- rendering
if len(good) > 1:
    st.subheader(t("predict.gallery"))
    for row in range(0, len(good), 4):
        cols = st.columns(4)
        for col, (name, image, _, p) in zip(cols, good[row:row + 4]):
            col.image(_big(p.resized, 128),
                      caption=t("predict.gallery_item", name=name, label=names[p.index], prob=p.probs[p.index].item()))
    chosen = st.selectbox(t("predict.details_for"), [r[0] for r in good], key="predict.details")
    name, image, mode, prediction = next(r for r in good if r[0] == chosen)
else:
    name, image, mode, prediction = good[0]

if caption:
    st.caption(caption)
with st.container(border=True, key="predict.result"):
    st.markdown("### " + t("predict.result", label=names[prediction.index], index=prediction.index,
                           prob=prediction.probs[prediction.index].item()))
    left, right = st.columns([1, 2])
    left.image(_big(prediction.resized), caption=t("predict.sees", h=used_prep.size[0], w=used_prep.size[1]))
    right.plotly_chart(_topk_chart(prediction, names, 5), key="predict.topk", config={"displayModeBar": False})

_show_steps(name, image, prediction, names, mode)
st.session_state[LAST_IMAGE] = prediction.seen_uint8
st.page_link("app_pages/model.py", label=t("predict.feature_maps"), icon=":material/layers:")
show_code(predict_code(ckpt.spec, used_prep, ckpt.classes), key="predict.code", filename="test.py")
