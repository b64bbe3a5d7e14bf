"""Predict (course step 19, test.py): any picture in, every step of the pipeline shown, the class out.

Explanation → the model → inputs (preprocessing, pictures) → one dl_core call per picture → rendering.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import streamlit as st
from PIL import Image
from torch import nn

from dl_core.checkpoint import Checkpoint, load_demo
from dl_core.codegen.predict import predict_code
from dl_core.datasets import DATASETS, display_classes
from dl_core.errors import CourseError
from dl_core.images import SUFFIXES
from dl_core.models import count_parameters
from dl_core.predict import MAX_IMAGE_BYTES, Prediction, open_image, predict, preprocessing_differences
from dl_core.preprocess import Preprocessing
from ui import state
from ui.code import show_code
from ui.datasets import builtin, current_dataset
from ui.i18n import error_text, lang, prose, t
from ui.images import enlarged, topk_chart

LIMIT_MB = min(MAX_IMAGE_BYTES // 2**20, int(st.get_option("server.maxUploadSize")))
MAX_IMAGES = 12  # one page run predicts at most this many uploads
SOURCES = {"session": "predict.source.session", "demo": "predict.source.demo"}
INPUTS = {"upload": "predict.input.upload", "camera": "predict.input.camera", "test": "predict.input.test"}
DIFFERENCES = {"size": "predict.prep.size", "channels": "predict.prep.channels", "normalize": "predict.prep.normalize"}
COURSE_NORM = 0.5  # the course's Normalize([0.5]*C, [0.5]*C), offered when training used none

# A picture to predict: (name, raw bytes or None, PIL image or None); a result: (name, image, original
# mode, Prediction) or (name, None, None, error message).
Picture = tuple[str, bytes | None, Image.Image | None]
Result = tuple[str, Image.Image | None, str | None, Prediction | str]


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _prep_text(prep: Preprocessing) -> str:
    if prep.mean is None or prep.std is None:
        return t("predict.prep.none")
    return t("predict.prep.with_norm", mean=_fmt(prep.mean), std=_fmt(prep.std))


# ------------------------------------------------------------------------------------- explanation
def explanation() -> None:
    st.title(t("predict.title"))
    st.markdown(prose("predict_intro"))


# ------------------------------------------------------------------------------------- the model
def model_choice() -> tuple[Checkpoint, nn.Module, list[str]]:
    """(checkpoint, its model, class names to show): the session's model or the demo; stops if neither loads."""
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
        labels = {s: t(key) for s, key in SOURCES.items()}
        choice = st.radio(t("predict.model_source"), list(labels), key="predict.source", horizontal=True,
                          format_func=labels.get)
        use_demo = choice == "demo"
    try:
        ckpt = load_demo() if use_demo else session_ckpt
        model = ckpt.build()
    except CourseError as exc:
        st.error(error_text(exc), icon=":material/error:")
        st.stop()
    names = display_classes(ckpt.classes, lang())
    dataset = DATASETS[ckpt.dataset].title if ckpt.dataset in DATASETS else ckpt.dataset or "?"
    st.caption(t("predict.model_info", dataset=dataset, params=count_parameters(model), n=len(names),
                 shape="×".join(map(str, ckpt.input_shape))))
    return ckpt, model, names


# ------------------------------------------------------------------------------------- the inputs
def input_source() -> str:
    labels = {s: t(key) for s, key in INPUTS.items()}
    return st.segmented_control(t("predict.input"), list(labels), key="predict.input", default="upload",
                                required=True, format_func=labels.get)


def preprocessing_choice(trained: Preprocessing) -> Preprocessing:
    """Training's preprocessing, with Normalize on or off as the student ticks it (a warning when it differs)."""
    channels = trained.channels
    mean, std = ((trained.mean, trained.std) if trained.mean is not None
                 else ((COURSE_NORM,) * channels, (COURSE_NORM,) * channels))
    normalize = st.checkbox(t("predict.normalize", mean=_fmt(mean), std=_fmt(std)), key="predict.normalize",
                            value=trained.mean is not None)
    used = replace(trained, mean=mean if normalize else None, std=std if normalize else None)
    diffs = preprocessing_differences(trained, used)
    if diffs:
        st.warning(t("predict.prep_warning", what=", ".join(t(DIFFERENCES[d]) for d in diffs),
                     trained=_prep_text(trained)), icon=":material/warning:")
    return used


def uploads() -> list[Picture]:
    files = st.file_uploader(t("predict.upload", limit_mb=LIMIT_MB), key="predict.upload",
                             type=[s.lstrip(".") for s in SUFFIXES], accept_multiple_files=True,
                             max_upload_size=LIMIT_MB) or []
    if len(files) > MAX_IMAGES:
        st.warning(t("predict.too_many", limit=MAX_IMAGES), icon=":material/warning:")
    pictures = [(f.name, f.getvalue(), None) for f in files[:MAX_IMAGES]]
    if not pictures:
        st.info(t("predict.upload_hint"), icon=":material/upload:")
    return pictures


def camera() -> list[Picture]:
    photo = st.camera_input(t("predict.camera"), key="predict.camera")
    if photo is None:
        st.info(t("predict.camera_hint"), icon=":material/photo_camera:")
        return []
    return [("camera.jpg", photo.getvalue(), None)]


def from_test_set(ckpt: Checkpoint) -> tuple[list[Picture], str]:
    """One image of the model's test set (or the current dataset's), and its caption with the true label."""
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
    index = int(st.number_input(t("predict.test_index"), min_value=0, max_value=len(test_set) - 1, value=0,
                                step=1, key="predict.test_index"))
    label = display_classes(test_set.classes, lang())[int(test_set.targets[index])]
    return [(f"test[{index}]", None, test_set.pil(index))], t("predict.test_label", index=index, label=label)


def pictures(source: str, ckpt: Checkpoint) -> tuple[list[Picture], str]:
    """The pictures to predict and a caption for the result ("" unless a test image)."""
    if source == "upload":
        return uploads(), ""
    if source == "camera":
        return camera(), ""
    return from_test_set(ckpt)


# ------------------------------------------------------------------------------------- one call per picture
def predict_all(model: nn.Module, inputs: list[Picture], prep: Preprocessing) -> list[Result]:
    results: list[Result] = []
    for name, data, pil in inputs:
        try:
            if data is not None:
                image, mode = open_image(data, max_bytes=LIMIT_MB * 2**20)
            else:
                image, mode = pil.convert("RGB"), pil.mode
            results.append((name, image, mode, predict(model, image, prep)))
        except CourseError as exc:
            results.append((name, None, None, error_text(exc)))
    return results


# ------------------------------------------------------------------------------------- rendering
def failures(results: list[Result]) -> list[Result]:
    """Show the pictures that could not be read; return the others."""
    for name, image, _, outcome in results:
        if image is None:
            st.error(t("predict.file_error", name=name, message=outcome), icon=":material/error:")
    return [r for r in results if r[1] is not None]


def chosen(good: list[Result], names: list[str]) -> Result:
    """The one result to show in detail: with several, a gallery of all and a choice."""
    if len(good) == 1:
        return good[0]
    st.subheader(t("predict.gallery"))
    for row in range(0, len(good), 4):
        cols = st.columns(4)
        for col, (name, _, _, p) in zip(cols, good[row:row + 4]):
            col.image(enlarged(p.resized, 128),
                      caption=t("predict.gallery_item", name=name, label=names[p.index], prob=p.probs[p.index].item()))
    name = st.selectbox(t("predict.details_for"), [r[0] for r in good], key="predict.details")
    return next(r for r in good if r[0] == name)


def show_result(prediction: Prediction, names: list[str], caption: str) -> None:
    h, w = prediction.preprocessing.size
    if caption:
        st.caption(caption)
    with st.container(border=True, key="predict.result"):
        st.markdown("### " + t("predict.result", label=names[prediction.index], index=prediction.index,
                               prob=prediction.probs[prediction.index].item()))
        left, right = st.columns([1, 2])
        left.image(enlarged(prediction.resized), caption=t("predict.sees", h=h, w=w))
        top = prediction.top(5)
        right.plotly_chart(topk_chart(top, names, t("predict.topk", k=len(top)), t("predict.prob")),
                           key="predict.topk", config={"displayModeBar": False})


def show_steps(name: str, image: Image.Image, prediction: Prediction, names: list[str], original_mode: str) -> None:
    prep = prediction.preprocessing
    h, w = prep.size
    st.markdown("#### " + t("predict.steps"))
    st.markdown(t("predict.step1", width=image.size[0], height=image.size[1], mode=original_mode))
    st.markdown(t("predict.step2", h=h, w=w))
    c1, c2 = st.columns(2)
    c1.image(image, caption=t("predict.original"), width=240)
    c2.image(enlarged(prediction.resized), caption=t("predict.sees", h=h, w=w))
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


def results_section(results: list[Result], names: list[str], caption: str) -> None:
    good = failures(results)
    if not good:
        return
    name, image, mode, prediction = chosen(good, names)
    show_result(prediction, names, caption)
    show_steps(name, image, prediction, names, mode)
    state.set_seen_image(prediction.seen_uint8)  # the builder draws its feature maps
    st.page_link("app_pages/model.py", label=t("predict.feature_maps"), icon=":material/layers:")


def code_panel(ckpt: Checkpoint, prep: Preprocessing) -> None:
    show_code(predict_code(ckpt.spec, prep, ckpt.classes), key="predict.code", filename="test.py",
              explain=prose("predict_intro"))


explanation()
ckpt, model, names = model_choice()
source = input_source()
used_prep = preprocessing_choice(ckpt.preprocessing)
inputs, caption = pictures(source, ckpt)
results_section(predict_all(model, inputs, used_prep), names, caption)
code_panel(ckpt, used_prep)
