"""The student's workspace in `st.session_state`: never shared between sessions.

Widget keys (`data.batch_size`, ...) vanish when their page is not shown, so what must
survive a page switch lives under `ws.*` keys, set only through these functions.
"""
from __future__ import annotations

import streamlit as st

from dl_core.checkpoint import Checkpoint
from dl_core.models import ModelSpec

DATASET = "ws.dataset"  # name of the dataset the student picked (default: Shapes-10)
SPEC = "ws.spec"  # the ModelSpec built on the builder page
TRAINED = "ws.trained"  # the current trained/loaded model, as a Checkpoint (a mirror of the student's)
TRAINED_VERSION = "ws.trained_version"  # which of the student's models the session holds

DEFAULT_DATASET = "shapes10-full"  # CIFAR-sized: the course's numbers (157 batches) and enough images to learn from


def dataset_name() -> str:
    """The dataset the student picked, else the classroom's default (classroom.toml `default_dataset`)."""
    picked = st.session_state.get(DATASET)
    if picked is None:
        from ui.student import classroom_config

        picked = classroom_config().default_dataset or DEFAULT_DATASET
    return picked


def set_dataset_name(name: str) -> None:
    st.session_state[DATASET] = name


def current_spec() -> ModelSpec | None:
    """The network from the builder page, or None if the student has not built one yet."""
    return st.session_state.get(SPEC)


def set_spec(spec: ModelSpec) -> None:
    st.session_state[SPEC] = spec


def trained() -> Checkpoint | None:
    """The student's current trained (or loaded) model: kept server-side with their runs, so a reload
    finds it; a run that ends while the student is on another page becomes it."""
    from ui.student import current

    student = current()
    if TRAINED_VERSION not in st.session_state:  # a new session (a reload): the student's model, if any
        st.session_state[TRAINED_VERSION] = student.model_version
        if student.model is not None:
            st.session_state.setdefault(TRAINED, student.model)
    elif st.session_state[TRAINED_VERSION] != student.model_version:  # a run ended since: its model
        st.session_state[TRAINED_VERSION] = student.model_version
        st.session_state[TRAINED] = student.model
    return st.session_state.get(TRAINED)


def set_trained(ckpt: Checkpoint | None) -> None:
    from ui.student import current

    student = current()
    student.set_model(ckpt, run=0)
    st.session_state[TRAINED] = ckpt
    st.session_state[TRAINED_VERSION] = student.model_version


SEEN_IMAGE = "predict.last_image"  # the last picture the network saw on the Predict page (uint8 [C, H, W])


def seen_image():
    """The last picture the Predict page fed the network (the builder draws its feature maps), or None."""
    return st.session_state.get(SEEN_IMAGE)


def set_seen_image(image) -> None:
    st.session_state[SEEN_IMAGE] = image
