"""Data & transforms: course steps 1, 2, 4, 5 and 6 (environment, Dataset, transforms, torchvision datasets,
DataLoader).

Shape: explanation → the dataset every page uses → one section's inputs → one dl_core call → its rendering.
State changes (a pick, an upload, the editor's add/move/remove) happen in callbacks. The page's settings
are its link (dl_core/pagelinks/data.py): `?ds=…&section=…&tf=…&batch=…`, never the student's own data.
"""
import io

import numpy as np
import streamlit as st

from dl_core import datasets as D
from dl_core import transforms as T
from dl_core.codegen import data as codegen
from dl_core.devices import device_report
from dl_core.errors import CourseError
from dl_core.pagelinks import data as data_link
from ui import state
from ui.code import show_code
from ui.datasets import (USER, big, builtin, choice_label, chw_to_hwc, class_names, image_grid, lang_key,
                         load_current, set_user_dataset, uint8_hwc, user_dataset)
from ui.i18n import error_text, prose, t
from ui.transforms import edit_step, hist_figure
from ui.urlstate import PageLink

SECTIONS = data_link.SECTIONS
SECTION_TITLES = {"env": "data.section.env", "dataset": "data.section.dataset", "transforms": "data.section.transforms",
                  "torchvision": "data.section.torchvision", "loader": "data.section.loader"}
SOURCES = {"sample": "data.tf.source.sample", "upload": "data.tf.source.upload"}
SPLIT_TITLES = {"test": "data.split_test", "train": "data.split_train"}
CHOICES = tuple(D.DATASETS)
STEPS_KEY = "data.steps"  # session: [(id, Step)] of the transforms editor
NEXT_ID_KEY = "data.next_step_id"
CUSTOM_KEY = "data.tf_custom"  # session: {step id: (mean, std)} of a Normalize a link brought
LAST_VALID_KEY = "data.last_valid"  # the last dataset that loaded, kept when a new pick fails
ZIP_DONE_KEY = "data.zip_done"  # (file_id, size, error) of the upload already read: reruns must not re-read it
PICK_ERROR_KEY = "data.pick_error"  # why the last pick could not be loaded (shown until the next pick)
FOLDER_ERROR_KEY = "data.folder_error"  # why the folder could not be read (shown once)
# The link's names for the widgets that hold them (dl_core/pagelinks/data.py); `ds` and `tf` go through load/save.
LINK_KEYS = {"section": "data.section", "index": "data.index", "sample": "data.tf_index", "draws": "data.tf_draws",
             "tf_seed": "data.tf_seed", "batch": "data.batch_size", "shuffle": "data.shuffle",
             "drop_last": "data.drop_last", "num_workers": "data.num_workers", "split": "data.dl_split",
             "seed": "data.dl_seed"}


# ------------------------------------------------------------------ cached computations

@st.cache_data(show_spinner=False, max_entries=32)
def sample_png(name: str, train: bool, index: int) -> bytes:
    """One built-in sample as PNG bytes (what the transforms editor feeds in)."""
    return png_of(builtin(name, train), index)


def png_of(ds: D.TensorImageDataset, index: int) -> bytes:
    buf = io.BytesIO()
    ds.pil(index).save(buf, format="PNG")
    return buf.getvalue()


@st.cache_data(show_spinner=False, max_entries=16)
def stats_for(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The dataset's own per-channel mean/std (train split), for Normalize's second preset."""
    return D.channel_stats(builtin(name, True))


@st.cache_data(show_spinner=False, max_entries=64)
def run_steps(png: bytes, steps: tuple[T.Step, ...], seed: int, draws: int) -> list[T.StepResult]:
    return T.run_pipeline(T.open_image(png), list(steps), seed=seed, draws=draws)


@st.cache_data(show_spinner=False, max_entries=32)
def batches_for(name: str, train: bool, batch_size: int, shuffle: bool, drop_last: bool, seed: int):
    return D.first_batches(builtin(name, train), batch_size, shuffle, drop_last, epochs=2, seed=seed)


# ------------------------------------------------------------------ state: the editor's steps, the link

def steps() -> list[tuple[int, T.Step]]:
    if STEPS_KEY not in st.session_state:
        set_pipeline(T.COURSE_PIPELINE)
    return st.session_state[STEPS_KEY]


def set_pipeline(pipeline) -> None:
    """A new pipeline in the editor, each step with a fresh id (no widget keeps an old step's values)."""
    first = st.session_state.get(NEXT_ID_KEY, 0)
    st.session_state[STEPS_KEY] = [(first + i, step) for i, step in enumerate(pipeline)]
    st.session_state[NEXT_ID_KEY] = first + len(pipeline)


def load_link(values: dict) -> None:
    """A link's dataset and pipeline into the workspace (the widgets' values PageLink puts in itself)."""
    if values["ds"] is not None:
        state.set_dataset_name(values["ds"])
        st.session_state.pop(PICK_ERROR_KEY, None)
    set_pipeline(values["tf"])
    custom = {sid: (s.kwargs["mean"], s.kwargs["std"]) for sid, s in steps() if s.kind == "Normalize"
              and any(v != 0.5 for v in s.kwargs["mean"] + s.kwargs["std"])}
    st.session_state[CUSTOM_KEY] = custom  # shown as "the link's values" unless they are a preset's


def save_link() -> dict:
    name = state.dataset_name()
    return {"ds": name if name in D.DATASETS else None, "tf": tuple(s for _, s in steps())}


def keep_settings() -> None:
    """Streamlit forgets a widget's value on a run that does not draw it (another section): keep them."""
    for key in LINK_KEYS.values():
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def fit_state(key: str, hi: int) -> None:
    """A number box's value within 0..hi before it is drawn (the dataset may have changed under it)."""
    if st.session_state.get(key, 0) > hi:
        st.session_state[key] = hi


# ------------------------------------------------------------------ callbacks

def on_pick() -> None:
    state.set_dataset_name(st.session_state[lang_key("data.dataset")])
    st.session_state.pop(PICK_ERROR_KEY, None)


def use_own(loaded: D.FolderDataset) -> None:
    """The student's dataset becomes the picked one (the picker offers it from now on)."""
    set_user_dataset(loaded)
    state.set_dataset_name(USER)
    st.session_state[LAST_VALID_KEY] = USER
    st.session_state.pop(PICK_ERROR_KEY, None)


def on_upload() -> None:
    """Read the uploaded zip once per file and size (its verdict is kept for the reruns after)."""
    upload = st.session_state.get("data.zip")
    size = int(st.session_state.get("data.own_size", 32))
    done = st.session_state.get(ZIP_DONE_KEY)
    if upload is None or (done is not None and done[:2] == (upload.file_id, size)):
        return
    problem = None
    try:
        use_own(D.read_zip(upload.getvalue(), source=upload.name, size=(size, size)))
    except CourseError as exc:
        problem = exc
    st.session_state[ZIP_DONE_KEY] = (upload.file_id, size, problem)


def on_folder() -> None:
    size = int(st.session_state.get("data.own_size", 32))
    try:
        folder = D.resolve_local_folder(st.session_state.get("data.folder", ""))
        use_own(D.read_folder(folder, size=(size, size), checked=True))
    except CourseError as exc:
        st.session_state[FOLDER_ERROR_KEY] = exc


def on_forget() -> None:
    set_user_dataset(None)
    st.session_state.pop(ZIP_DONE_KEY, None)
    if state.dataset_name() == USER:
        state.set_dataset_name(CHOICES[0])


def on_add() -> None:
    kind = st.session_state[lang_key("data.tf_add_kind")]
    sid = st.session_state[NEXT_ID_KEY]
    steps().append((sid, T.Step.make(kind)))
    st.session_state[NEXT_ID_KEY] = sid + 1


def on_reset() -> None:
    set_pipeline(T.COURSE_PIPELINE)


def on_move(sid: int, delta: int) -> None:
    """Move step `sid` by delta (-1 up, +1 down); delta 0 removes it."""
    rows = steps()
    pos = next(i for i, (s, _) in enumerate(rows) if s == sid)
    if delta == 0:
        rows.pop(pos)
    elif 0 <= pos + delta < len(rows):
        rows[pos], rows[pos + delta] = rows[pos + delta], rows[pos]


# ------------------------------------------------------------------ explanation and the dataset every section uses

def explanation() -> None:
    st.title(t("data.title"))
    st.markdown(prose("data_intro"))


def load_picked() -> tuple[D.TensorImageDataset | None, D.TensorImageDataset | None]:
    """The picked dataset's two splits; when it cannot be had, why (kept in session) and the last one that loaded."""
    for _ in range(2):
        try:
            train_set, test_set = load_current(True), load_current(False)
            st.session_state[LAST_VALID_KEY] = state.dataset_name()
            return train_set, test_set
        except CourseError as exc:
            st.session_state[PICK_ERROR_KEY] = exc
            last = st.session_state.get(LAST_VALID_KEY, CHOICES[0])
            if last == state.dataset_name():
                break
            state.set_dataset_name(last)  # every page keeps working with the last dataset that loaded
    return None, None


def dataset_picker() -> tuple[D.TensorImageDataset | None, D.TensorImageDataset | None]:
    """The picker (above) and the loading with its progress bar (below it), loaded first: the picker shows
    the dataset actually in use."""
    picker, below = st.container(), st.container()
    with below:
        train_set, test_set = load_picked()
    own = user_dataset()
    choices = list(CHOICES) + ([USER] if own is not None else [])
    picked = state.dataset_name() if state.dataset_name() in choices else CHOICES[0]
    key = lang_key("data.dataset")
    if st.session_state.get(key) != picked:
        st.session_state[key] = picked  # the workspace changed (a failed pick, an upload, a link): follow it
    picker.selectbox(t("data.dataset"), choices, format_func={c: choice_label(c) for c in choices}.get, key=key,
                     on_change=on_pick, help=t("data.dataset_help"))
    if PICK_ERROR_KEY in st.session_state:
        below.error(error_text(st.session_state[PICK_ERROR_KEY]), icon=":material/cloud_off:")
        if train_set is not None:
            below.info(t("data.kept_last", name=choice_label(state.dataset_name())))
    return train_set, test_set


def section_picker():
    """The section control and, beside it, the slot the "Copy link" button goes in once the page is drawn."""
    left, right = st.columns([5, 1], vertical_alignment="bottom")
    titles = {s: t(k) for s, k in SECTION_TITLES.items()}
    section = left.segmented_control(t("data.section"), SECTIONS, default="torchvision", key="data.section",
                                     format_func=titles.get, required=True) or "torchvision"
    st.divider()
    return section, right.container()


# ------------------------------------------------------------------ 1. environment

def env_section(train_set, test_set) -> None:
    st.subheader(t("data.env.title"))
    report = device_report()
    cuda, choice = report.cuda_available, report.chosen
    st.code(f"import torch\nprint(torch.cuda.is_available())  # {cuda}\n"
            'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")\n'
            f"print(device)  # {choice.type}", language="python")
    st.markdown(t("data.env.cuda_yes") if cuda else t("data.env.cuda_no"))
    st.info(t("data.env.sidebar"), icon=":material/left_panel_open:")
    st.markdown(prose("data_env"))


# ------------------------------------------------------------------ 2. the course's own Dataset

def dataset_section(train_set, test_set) -> None:
    st.subheader(t("data.own.title"))
    st.markdown(prose("data_dataset"))
    show_code(codegen.folder_dataset_code("dataset/train", ["ants", "bees"]), key="data.code_mydataset",
              filename="read_data.py", explain=prose("data_dataset"))
    st.markdown(f"#### {t('data.own.load')}")
    st.number_input(t("data.own.size"), 8, 128, 32, step=4, key="data.own_size", help=t("data.own.size_help"),
                    on_change=on_upload)
    zip_col, folder_col = st.columns(2)
    upload = zip_col.file_uploader(t("data.own.zip"), type=["zip"], key="data.zip", help=t("data.own.zip_help"),
                                   on_change=on_upload)
    folder_mode = D.local_folders_mode()  # off | data | any ($TORCH_CLASSROOM_LOCAL_FOLDERS)
    if folder_mode == "off":
        folder_col.caption(t("data.own.folder_off"))
    else:
        folder = folder_col.text_input(t("data.own.folder"), key="data.folder", placeholder="hymenoptera_data/train",
                                       help=t("data.own.folder_help_data", base=str(D.data_dir()))
                                       if folder_mode == "data" else t("data.own.folder_help"))
        folder_col.button(t("data.own.folder_load"), key="data.folder_load", icon=":material/folder_open:",
                          disabled=not folder.strip(), on_click=on_folder)
    done = st.session_state.get(ZIP_DONE_KEY)
    problem = done[2] if upload is not None and done is not None and done[0] == upload.file_id else None
    problem = st.session_state.pop(FOLDER_ERROR_KEY, None) or problem
    if problem is not None:
        st.error(error_text(problem), icon=":material/error:")
    own_dataset()


def own_dataset() -> None:
    """What the student's own dataset holds: counts, the split, one picture per class."""
    own = user_dataset()
    if own is None:
        return
    st.success(t("data.own.loaded", source=own.source, train=len(own.train), test=len(own.test),
                 classes=len(own.train.classes)), icon=":material/check_circle:")
    if own.skipped:
        st.warning(t("data.own.skipped", count=own.skipped))
    st.caption(t("data.own.split_folders") if own.split == "folders" else t("data.own.split_random"))
    st.dataframe({t("data.own.class"): list(own.per_class), t("data.own.count"): list(own.per_class.values())},
                 hide_index=True)
    idx = [int((own.train.targets == k).nonzero()[0, 0]) for k in range(len(own.train.classes))
           if (own.train.targets == k).any()]
    image_grid([uint8_hwc(own.train.images[i]) for i in idx],
               [own.train.classes[int(own.train.targets[i])] for i in idx])
    st.button(t("data.own.forget"), key="data.own_forget", icon=":material/delete:", on_click=on_forget)


# ------------------------------------------------------------------ 5. torchvision datasets

def torchvision_section(train_set, test_set) -> None:
    st.subheader(t("data.tv.title"))
    st.markdown(prose("data_torchvision"))
    if train_set is None or test_set is None:
        return
    if len(train_set) == 0:
        st.warning(t("data.tv.empty"))
        return
    fit_state("data.index", len(train_set) - 1)
    index = st.number_input(t("data.tv.index"), 0, len(train_set) - 1, 0, key="data.index")
    facts = D.dataset_facts(train_set, test_set, int(index))
    names = class_names(train_set)
    left, right = st.columns([3, 1])
    left.code(
        f">>> len(train_set)\n{facts.len_train}\n>>> len(test_set)\n{facts.len_test}\n"
        f">>> train_set.classes\n{list(facts.classes)}\n>>> train_set.class_to_idx\n{facts.class_to_idx}\n"
        f">>> img, target = train_set[{facts.index}]\n>>> type(img), img.size, img.mode\n"
        f"({facts.sample_type}, {facts.sample_size}, '{facts.sample_mode}')\n"
        f">>> target, train_set.classes[target]\n({facts.label}, '{facts.label_name}')",
        language="python",
    )
    right.image(big(np.asarray(train_set.pil(facts.index).convert("RGB")), 160),
                caption=f"{facts.label} · {names[facts.label]}")
    right.caption(t("data.tv.pil_note"))
    name = state.dataset_name()
    if name in D.DATASETS:
        show_code(codegen.dataset_code(name, facts.index), key="data.code_dataset", filename="dataset.py",
                  explain=prose("data_torchvision"))
    st.markdown(f"#### {t('data.tv.grid')}")
    per_class = 6
    picks: list[int] = []
    for k in range(len(train_set.classes)):
        picks += (train_set.targets[:5000] == k).nonzero()[:per_class, 0].tolist()
    image_grid([uint8_hwc(train_set.images[i]) for i in picks],
               [f"{int(train_set.targets[i])} {names[int(train_set.targets[i])]}" for i in picks],
               columns=per_class * 2 if len(picks) >= per_class * 2 else max(len(picks), 1), target=64)


# ------------------------------------------------------------------ 4. transforms

def transforms_section(train_set, test_set) -> None:
    st.subheader(t("data.tf.title"))
    st.markdown(prose("data_transforms"))
    src_col, seed_col, draws_col = st.columns([2, 1, 1])
    source = src_col.segmented_control(t("data.tf.source"), tuple(SOURCES), default="sample", key="data.tf_source",
                                       format_func={s: t(k) for s, k in SOURCES.items()}.get, required=True) or "sample"
    seed = int(seed_col.number_input(t("data.tf.seed"), 0, data_link.MAX_SEED, 0, key="data.tf_seed"))
    draws = int(draws_col.number_input(t("data.tf.draws"), 1, data_link.MAX_DRAWS, 4, key="data.tf_draws",
                                       help=t("data.tf.draws_help")))
    png = input_picture(source, train_set)
    pipeline = pipeline_editor(train_set, source)
    name = state.dataset_name()
    if pipeline:
        show_code(codegen.transforms_code(pipeline, name if (name in D.DATASETS and source == "sample") else "upload"),
                  key="data.code_tf", filename="transforms.py", explain=prose("data_transforms"))
    if png is None:
        return
    try:
        results = run_steps(png, tuple(pipeline), seed, draws)
    except CourseError as exc:
        st.error(error_text(exc), icon=":material/error:")
        return
    step_results(results, seed)


def input_picture(source: str, train_set) -> bytes | None:
    """The picture the pipeline runs on: a dataset sample, or the student's upload."""
    if source == "upload":
        up = st.file_uploader(t("data.tf.upload"), type=["png", "jpg", "jpeg", "bmp", "webp", "gif"],
                              key="data.tf_upload")
        if up is None:
            st.info(t("data.tf.upload_first"))
            return None
        return up.getvalue()
    if train_set is None or len(train_set) == 0:
        return None
    fit_state("data.tf_index", len(train_set) - 1)
    index = int(st.number_input(t("data.tv.index"), 0, len(train_set) - 1, 0, key="data.tf_index"))
    name = state.dataset_name()
    return sample_png(name, True, index) if name in D.DATASETS else png_of(train_set, index)


def normalize_presets(train_set, source: str, sid: int) -> dict:
    """Normalize's choices here: the course's 0.5 per channel, this dataset's statistics, a link's values."""
    name = state.dataset_name()
    channels = train_set.images.shape[1] if train_set is not None and source == "sample" else 3
    presets = {"half": ((0.5,) * channels, (0.5,) * channels)}
    if name in D.DATASETS and train_set is not None:
        presets["dataset"] = stats_for(name)
    custom = st.session_state.get(CUSTOM_KEY, {})
    if sid in custom:
        presets["custom"] = custom[sid]
    return presets


def pipeline_editor(train_set, source: str) -> list[T.Step]:
    """Add, edit, reorder, remove: the pipeline as the widgets now describe it."""
    st.markdown(f"#### {t('data.tf.pipeline')}")
    rows = steps()
    add_col, btn_col, reset_col = st.columns([2, 1, 1], vertical_alignment="bottom")
    add_col.selectbox(t("data.tf.add_kind"), T.KINDS, key=lang_key("data.tf_add_kind"),
                      format_func={k: f"{k} · {t(T.STEP_KINDS[k].title_key)}" for k in T.KINDS}.get)
    btn_col.button(t("data.tf.add"), key="data.tf_add", icon=":material/add:", on_click=on_add,
                   disabled=len(rows) >= T.MAX_STEPS)
    reset_col.button(t("data.tf.reset"), key="data.tf_reset", icon=":material/restart_alt:", on_click=on_reset)
    edited = []
    for pos, (sid, step) in enumerate(rows):
        with st.container(border=True, key=f"data.tf_row_{sid}"):
            head, up_c, down_c, del_c = st.columns([6, 1, 1, 1], vertical_alignment="center")
            head.markdown(f"**{pos + 1}. `{step.kind}`** · {t(step.entry.title_key)}")
            up_c.button("", key=f"data.tf_up_{sid}", icon=":material/arrow_upward:", disabled=pos == 0,
                        help=t("data.tf.up"), on_click=on_move, args=(sid, -1))
            down_c.button("", key=f"data.tf_down_{sid}", icon=":material/arrow_downward:",
                          disabled=pos == len(rows) - 1, help=t("data.tf.down"), on_click=on_move, args=(sid, 1))
            del_c.button("", key=f"data.tf_del_{sid}", icon=":material/delete:", help=t("data.tf.remove"),
                         on_click=on_move, args=(sid, 0))
            try:
                step = edit_step(sid, step, normalize_presets(train_set, source, sid))
            except CourseError as exc:
                st.error(error_text(exc))  # the step keeps its last valid settings
            edited.append((sid, step))
    st.session_state[STEPS_KEY] = edited
    return [s for _, s in edited]


def step_results(results: list[T.StepResult], seed: int) -> None:
    """Every step's output: the picture, shape, dtype, min/max, histogram, and the draws of random steps."""
    st.markdown(f"#### {t('data.tf.results')}")
    for res in results:
        with st.container(border=True, key=f"data.tf_result_{res.index}"):
            title = t("data.tf.input") if res.step is None else f"{res.index}. `{res.step.code()}`"
            st.markdown(f"**{title}**")
            if res.layout_changed:
                st.info(t("data.tf.hwc_chw", before=str(results[res.index - 1].shape), after=str(res.shape)),
                        icon=":material/swap_horiz:")
            img_col, info_col, hist_col = st.columns([1, 1.5, 2])
            img_col.image(big(res.display, 160), caption=t("data.tf.denormalized") if res.denormalized else None)
            shape_text = (f"img.size = {res.pil_size}  (W, H)\nnp.array(img).shape = {res.shape}  # HWC"
                          if not res.is_tensor else f"img.shape = torch.Size({list(res.shape)})  # CHW")
            info_col.code(f"{shape_text}\ndtype = {res.dtype}\nmin = {res.vmin:.4g}\nmax = {res.vmax:.4g}",
                          language="python", wrap_lines=True)
            if res.denormalized:
                info_col.caption(t("data.tf.raw_values", vmin=f"{res.vmin:.3f}", vmax=f"{res.vmax:.3f}"))
            hist_col.plotly_chart(hist_figure(res), key=f"data.tf_hist_{res.index}", config={"displayModeBar": False})
            if res.step is not None and res.step.random and len(res.draws) > 1:
                st.caption(t("data.tf.draws_caption", n=len(res.draws), seed=seed))
                cols = st.columns(min(len(res.draws), 8))
                for k, pic in enumerate(res.draws):
                    cols[k % len(cols)].image(big(pic, 96), caption=f"#{k + 1}")


# ------------------------------------------------------------------ 6. DataLoader

def loader_section(train_set, test_set) -> None:
    st.subheader(t("data.dl.title"))
    st.markdown(prose("data_loader"))
    c1, c2, c3, c4, c5 = st.columns(5)
    split = c1.segmented_control(t("data.dl.split"), data_link.SPLITS, default="test", key="data.dl_split",
                                 format_func={s: t(k) for s, k in SPLIT_TITLES.items()}.get, required=True) or "test"
    batch_size = int(c2.number_input("batch_size", 1, data_link.MAX_BATCH, 64, key="data.batch_size"))
    shuffle = c3.toggle("shuffle", True, key="data.shuffle")
    drop_last = c4.toggle("drop_last", False, key="data.drop_last")
    num_workers = int(c5.selectbox("num_workers", data_link.WORKERS, key="data.num_workers"))
    if num_workers:
        st.info(t("data.dl.workers_note", n=num_workers), icon=":material/info:")
    seed = int(st.number_input(t("data.dl.seed"), 0, data_link.MAX_SEED, 0, key="data.dl_seed",
                               help=t("data.dl.seed_help")))
    ds = train_set if split == "train" else test_set
    if ds is None:
        return
    loader_facts(ds, batch_size, drop_last)
    name = state.dataset_name()
    if name in D.DATASETS:
        show_code(codegen.dataloader_code(name, batch_size, shuffle, drop_last, num_workers, train=split == "train"),
                  key="data.code_loader", filename="dataloader.py", explain=prose("data_loader"))
    try:
        if name in D.DATASETS:
            batches = batches_for(name, split == "train", batch_size, shuffle, drop_last, seed)
        else:
            batches = D.first_batches(ds, batch_size, shuffle, drop_last, epochs=2, seed=seed)
    except CourseError as exc:
        st.error(error_text(exc))
        return
    two_epochs(batches, class_names(ds), shuffle)


def loader_facts(ds: D.TensorImageDataset, batch_size: int, drop_last: bool) -> None:
    """len(dataset), len(loader), the last batch and the course's division."""
    facts = D.loader_facts(len(ds), batch_size, drop_last)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(t("data.dl.len_data"), f"{len(ds):,}")
    m2.metric(t("data.dl.batches"), f"{facts.num_batches:,}")
    m3.metric(t("data.dl.last"), f"{facts.last_size}")
    m4.metric("imgs.shape", f"[{min(batch_size, len(ds))}, {', '.join(str(s) for s in ds.images.shape[1:])}]")
    st.markdown(t("data.dl.arith", n=len(ds), b=batch_size, full=len(ds) // batch_size, rest=len(ds) % batch_size,
                  batches=facts.num_batches, last=facts.last_size))


def two_epochs(batches: list[D.Batch], names: list[str], shuffle: bool) -> None:
    """The first batch's shapes, then the first batch of two epochs side by side."""
    first = batches[0]
    st.code(f"imgs.shape    = torch.Size({list(first.imgs.shape)})\n"
            f"targets.shape = torch.Size({list(first.targets.shape)})\n"
            f"imgs.dtype    = {first.imgs.dtype}, min = {first.imgs.min().item():.3g}, "
            f"max = {first.imgs.max().item():.3g}", language="python")
    st.markdown(f"#### {t('data.dl.epochs')}")
    st.caption(t("data.dl.shuffle_on") if shuffle else t("data.dl.shuffle_off"))
    show = min(16, len(first.targets))
    for col, batch in zip(st.columns(2), batches):
        with col:
            st.markdown(t("data.dl.epoch_batch", epoch=batch.epoch, n=len(batch.targets)))
            st.caption("indices: " + str(batch.indices[:show].tolist()))
            for start in range(0, show, 4):
                for r, j in zip(st.columns(4), range(start, min(start + 4, show))):
                    r.image(big(chw_to_hwc(batch.imgs[j]), 64), caption=names[int(batch.targets[j])])


# ------------------------------------------------------------------ the page

SECTION_VIEWS = {"env": env_section, "dataset": dataset_section, "transforms": transforms_section,
                 "torchvision": torchvision_section, "loader": loader_section}


def main() -> None:
    link = PageLink("data", keys=LINK_KEYS, load=load_link, save=save_link)
    explanation()
    link.apply()
    keep_settings()
    train_set, test_set = dataset_picker()
    section, link_slot = section_picker()
    SECTION_VIEWS[section](train_set, test_set)
    link.publish()
    with link_slot:
        link.copy_button()


main()
