"""The dataset the student picked, for every page: loaded once, with a progress bar, never a traceback.

Built-in datasets (Shapes-10, CIFAR10, MNIST, FashionMNIST) are read-only and shared by every
session through `st.cache_resource`: nobody sets `.transform` on them (use `.view(transform)`).
A dataset the student uploads (a zip or folder of class folders) lives in their session only.
"""
from __future__ import annotations

import time

import numpy as np
import streamlit as st

from dl_core.datasets import (DATASETS, FolderDataset, TensorImageDataset, data_dir, display_classes, is_prepared,
                              load_dataset)
from dl_core.errors import CourseError
from ui import state
from ui.i18n import error_text, lang, t

USER = "user"  # ui.state.dataset_name() when the student's own dataset is selected
USER_KEY = "data.user_dataset"  # session state: the student's FolderDataset (not a widget key)
FAILED_KEY = "data.failed_loads"  # session state: {name: (monotonic time, CourseError)} of failed downloads
RETRY_AFTER_S = 30.0


@st.cache_resource(show_spinner=False, max_entries=8)
def _cached(name: str, train: bool, root: str) -> TensorImageDataset:
    # Only reached once the files are on disk (prepare() below): no download, no progress here.
    from pathlib import Path

    return load_dataset(name, train, root=Path(root), download=False)


def builtin(name: str, train: bool) -> TensorImageDataset:
    """A built-in dataset, generated or downloaded first (with a progress bar) when needed.

    Raises CourseError (e.g. data.offline); the caller shows it.
    """
    root = data_dir()
    failed = st.session_state.setdefault(FAILED_KEY, {})
    if name in failed and time.monotonic() - failed[name][0] < RETRY_AFTER_S:
        raise failed[name][1]  # offline a moment ago: do not wait for the network on every rerun
    if not is_prepared(name, train, root=root):
        info = DATASETS[name]
        split = t("data.split_train") if train else t("data.split_test")
        bar = st.progress(0.0, text=t("data.preparing", name=info.title, split=split))

        def report(done: int, total: int) -> None:
            frac = min(done / total, 1.0) if total else 0.0
            bar.progress(frac, text=t("data.preparing_pct", name=info.title, split=split, pct=int(frac * 100)))

        try:
            load_dataset(name, train, root=root, progress=report)  # writes the on-disk cache
        except CourseError as exc:
            failed[name] = (time.monotonic(), exc)
            raise
        finally:
            bar.empty()
        failed.pop(name, None)
    return _cached(name, train, str(root))


def user_dataset() -> FolderDataset | None:
    """The student's own (zip or folder) dataset in this session, if any."""
    return st.session_state.get(USER_KEY)


def set_user_dataset(ds: FolderDataset | None) -> None:
    st.session_state[USER_KEY] = ds


def load_current(train: bool) -> TensorImageDataset:
    """The picked dataset, or CourseError: for pages that show errors their own way."""
    name = state.dataset_name()
    if name == USER:
        user = user_dataset()
        if user is None:
            raise CourseError("data.no_user_dataset", "no dataset of your own is loaded yet")
        return user.train if train else user.test
    if name not in DATASETS:
        raise CourseError("data.unknown", "unknown dataset {name}; choose one of {choices}",
                          name=name, choices=", ".join(DATASETS))
    return builtin(name, train)


def current_dataset(train: bool) -> TensorImageDataset | None:
    """The dataset the student picked on the data page (train or test split), or None.

    When it cannot be had (CIFAR10 offline, no upload yet, ...) the translated reason is
    shown with a link to the data page, and None is returned: the caller then `st.stop()`s.
    """
    try:
        return load_current(train)
    except CourseError as exc:
        st.error(error_text(exc), icon=":material/error:")
        st.page_link("app_pages/data.py", label=t("data.go_pick"), icon=":material/photo_library:")
        return None


def current_title() -> str:
    """The picked dataset's name as the student saw it in the picker."""
    name = state.dataset_name()
    if name == USER:
        user = user_dataset()
        return user.source if user is not None else t("data.user_title")
    info = DATASETS.get(name)
    return info.title if info is not None else name


def choice_label(name: str) -> str:
    """A dataset as the picker names it, in the user's language."""
    if name == USER:
        own = user_dataset()
        return t("data.choice.user", source=own.source if own else "")
    return t(DATASETS[name].choice_key)


def class_names(ds: TensorImageDataset) -> list[str]:
    """The dataset's class names in the user's language (a student's own folder names as they are)."""
    return display_classes(ds.classes, lang())


# ---- pictures

def big(arr: np.ndarray, target: int = 128) -> np.ndarray:
    """Nearest-neighbour upscale of a small uint8 HWC picture, so 32×32 pixels stay sharp."""
    k = max(1, target // max(arr.shape[0], arr.shape[1]))
    return arr.repeat(k, axis=0).repeat(k, axis=1) if k > 1 else arr


def uint8_hwc(x) -> np.ndarray:
    """A dataset's uint8 [C, H, W] picture as uint8 HWC RGB (one channel repeated three times)."""
    arr = x.permute(1, 2, 0).numpy()
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr


def chw_to_hwc(x) -> np.ndarray:
    """uint8 or 0..1 float CHW tensor → uint8 HWC RGB array for st.image."""
    arr = x.detach().float()
    if arr.max() > 1.5:
        arr = arr / 255
    arr = arr.clamp(0, 1)
    if arr.shape[0] == 1:
        arr = arr.expand(3, -1, -1)
    return (arr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def image_grid(pictures, labels: list[str], columns: int = 8, target: int = 96) -> None:
    """Pictures (uint8 HWC) in rows of `columns`, each captioned with its label."""
    for start in range(0, len(labels), columns):
        cols = st.columns(columns)
        for col, img, label in zip(cols, pictures[start:start + columns], labels[start:start + columns]):
            col.image(big(img, target), caption=label)


def lang_key(key: str) -> str:
    """A widget key per language for widgets whose option labels are translated.

    Streamlit sends a selectbox's or radio's value as its label: after a language switch the old
    label matches no option. A fresh widget per language starts from the workspace instead.
    """
    return f"{key}.{lang()}"
