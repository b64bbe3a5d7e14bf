"""Data & transforms: course steps 1, 2, 4, 5 and 6 (environment, Dataset, transforms, torchvision datasets, DataLoader)."""
import io

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dl_core import datasets as D
from dl_core import transforms as T
from dl_core.codegen import data as codegen
from dl_core.devices import device_report
from dl_core.errors import CourseError
from ui import state
from ui.code import show_code
from ui.datasets import USER, builtin, load_current, set_user_dataset, user_dataset
from ui.i18n import error_text, lang, prose, t

SECTIONS = ("env", "dataset", "transforms", "torchvision", "loader")  # the course's steps 1, 2, 4, 5, 6, in order
CHOICES = ("shapes10", "shapes10-full", "cifar10", "mnist", "fashionmnist")
STEPS_KEY = "data.steps"  # session: [(id, Step)] of the transforms editor
NEXT_ID_KEY = "data.next_step_id"
LAST_VALID_KEY = "data.last_valid"  # the last dataset that loaded, kept when a new pick fails
ZIP_DONE_KEY = "data.zip_done"  # (file_id, size, error) of the upload already read: reruns must not re-read it
PICK_ERROR_KEY = "data.pick_error"  # why the last pick could not be loaded (shown until the next pick)
PENDING_KEY = "data.pending_pick"  # set before st.rerun() when the section below changed the picked dataset
UPLOAD_IMAGE_MAX = 10 * 2**20


# ------------------------------------------------------------------ helpers (no classes in pages)

def big(arr: np.ndarray, target: int = 128) -> np.ndarray:
    """Nearest-neighbour upscale of a small uint8 HWC picture, so 32×32 pixels stay sharp."""
    k = max(1, target // max(arr.shape[0], arr.shape[1]))
    return arr.repeat(k, axis=0).repeat(k, axis=1) if k > 1 else arr


def chw_to_hwc(x) -> np.ndarray:
    """uint8 or 0..1 float CHW tensor → uint8 HWC RGB array for st.image."""
    arr = x.detach().float()
    if arr.max() > 1.5:
        arr = arr / 255
    arr = arr.clamp(0, 1)
    if arr.shape[0] == 1:
        arr = arr.expand(3, -1, -1)
    return (arr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def class_names(ds: D.TensorImageDataset) -> list[str]:
    return D.display_classes(ds.classes, lang())


def image_grid(images, labels: list[str], columns: int = 8, target: int = 96) -> None:
    """Pictures in rows of `columns`, each captioned with its label."""
    for start in range(0, len(labels), columns):
        cols = st.columns(columns)
        for col, img, label in zip(cols, images[start:start + columns], labels[start:start + columns]):
            col.image(big(img, target), caption=label)


def dataset_choice_label(name: str) -> str:
    if name == USER:
        own = user_dataset()
        return t("data.choice.user", source=own.source if own else "")
    return t(f"data.choice.{name}")


def lkey(key: str) -> str:
    """A widget key per language for widgets whose option labels are translated.

    Streamlit sends a selectbox's or radio's value as its label: after a language switch the old
    label matches no option. A fresh widget per language starts from the workspace instead.
    """
    return f"{key}.{lang()}"


def on_pick() -> None:
    state.set_dataset_name(st.session_state[lkey("data.dataset")])
    st.session_state.pop(PICK_ERROR_KEY, None)


@st.cache_data(show_spinner=False, max_entries=32)
def sample_png(name: str, train: bool, index: int) -> bytes:
    """One built-in sample as PNG bytes (what the transforms editor feeds in)."""
    buf = io.BytesIO()
    builtin(name, train).pil(index).save(buf, format="PNG")
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
    ds = builtin(name, train)
    return D.first_batches(ds, batch_size, shuffle, drop_last, epochs=2, seed=seed)


def hist_figure(res: T.StepResult) -> go.Figure:
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


# ------------------------------------------------------------------ explanation

st.title(t("data.title"))
st.markdown(prose("data_intro"))

# ------------------------------------------------------------------ the dataset every section uses

own = user_dataset()
choices = list(CHOICES) + ([USER] if own is not None else [])
picked = state.dataset_name() if state.dataset_name() in choices else CHOICES[0]
if st.session_state.pop(PENDING_KEY, None) is not None or st.session_state.get(lkey("data.dataset")) not in choices:
    st.session_state[lkey("data.dataset")] = picked  # the workspace changed below (upload, removal): follow it
st.selectbox(t("data.dataset"), choices, format_func={c: dataset_choice_label(c) for c in choices}.get,
             key=lkey("data.dataset"), on_change=on_pick, help=t("data.dataset_help"))

train_set = test_set = None
try:
    train_set, test_set = load_current(True), load_current(False)
    st.session_state[LAST_VALID_KEY] = state.dataset_name()
except CourseError as exc:
    failed = state.dataset_name()
    last = st.session_state.get(LAST_VALID_KEY, CHOICES[0])
    st.session_state[PICK_ERROR_KEY] = exc
    if last != failed:
        state.set_dataset_name(last)  # every page keeps working with the last dataset that loaded
        st.session_state[PENDING_KEY] = last
        st.rerun()
if PICK_ERROR_KEY in st.session_state:
    st.error(error_text(st.session_state[PICK_ERROR_KEY]), icon=":material/cloud_off:")
    if train_set is not None:
        st.info(t("data.kept_last", name=dataset_choice_label(state.dataset_name())))

section = st.segmented_control(
    t("data.section"), SECTIONS, default="torchvision", format_func={s: t(f"data.section.{s}") for s in SECTIONS}.get,
    key="data.section", required=True,
) or "torchvision"
st.divider()

# ------------------------------------------------------------------ 1. environment

if section == "env":
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

elif section == "dataset":
    st.subheader(t("data.own.title"))
    st.markdown(prose("data_dataset"))
    show_code(codegen.folder_dataset_code("dataset/train", ["ants", "bees"]), key="data.code_mydataset",
              filename="read_data.py")

    st.markdown(f"#### {t('data.own.load')}")
    size = st.number_input(t("data.own.size"), 8, 128, 32, step=4, key="data.own_size",
                           help=t("data.own.size_help"))
    zip_col, folder_col = st.columns(2)
    upload = zip_col.file_uploader(t("data.own.zip"), type=["zip"], key="data.zip", help=t("data.own.zip_help"))
    folder_mode = D.local_folders_mode()  # off | data | any ($TORCH_CLASSROOM_LOCAL_FOLDERS)
    folder, folder_clicked = "", False
    if folder_mode == "off":
        folder_col.caption(t("data.own.folder_off"))
    else:
        folder = folder_col.text_input(t("data.own.folder"), key="data.folder", placeholder="hymenoptera_data/train",
                                       help=t("data.own.folder_help_data", base=str(D.data_dir()))
                                       if folder_mode == "data" else t("data.own.folder_help"))
        folder_clicked = folder_col.button(t("data.own.folder_load"), key="data.folder_load",
                                           icon=":material/folder_open:", disabled=not folder.strip())
    loaded, problem = None, None
    done = st.session_state.get(ZIP_DONE_KEY)
    if upload is not None and (done is None or done[:2] != (upload.file_id, size)):
        try:
            loaded = D.read_zip(upload.getvalue(), source=upload.name, size=(size, size))
        except CourseError as exc:
            problem = exc
        st.session_state[ZIP_DONE_KEY] = (upload.file_id, size, problem)
    elif upload is not None:
        problem = done[2]  # the same file as before: show its verdict again, without re-reading it
    if folder_clicked:
        try:
            loaded = D.read_folder(D.resolve_local_folder(folder), size=(size, size), checked=True)
        except CourseError as exc:
            problem = exc
    if problem is not None:
        st.error(error_text(problem), icon=":material/error:")
    if loaded is not None:
        set_user_dataset(loaded)
        state.set_dataset_name(USER)
        st.session_state[LAST_VALID_KEY] = USER
        st.session_state[PENDING_KEY] = USER
        st.rerun()  # the picker above now offers (and selects) the new dataset

    own = user_dataset()
    if own is not None:
        st.success(t("data.own.loaded", source=own.source, train=len(own.train), test=len(own.test),
                     classes=len(own.train.classes)), icon=":material/check_circle:")
        if own.skipped:
            st.warning(t("data.own.skipped", count=own.skipped))
        st.caption(t("data.own.split_folders") if own.split == "folders" else t("data.own.split_random"))
        st.dataframe({t("data.own.class"): list(own.per_class), t("data.own.count"): list(own.per_class.values())},
                     hide_index=True)
        idx = [int((own.train.targets == k).nonzero()[0, 0]) for k in range(len(own.train.classes))
               if (own.train.targets == k).any()]
        image_grid([own.train.images[i].permute(1, 2, 0).numpy() for i in idx],
                   [own.train.classes[int(own.train.targets[i])] for i in idx])
        if st.button(t("data.own.forget"), key="data.own_forget", icon=":material/delete:"):
            set_user_dataset(None)
            st.session_state.pop(ZIP_DONE_KEY, None)
            if state.dataset_name() == USER:
                state.set_dataset_name(CHOICES[0])
            st.session_state[PENDING_KEY] = state.dataset_name()
            st.rerun()

# ------------------------------------------------------------------ 5. torchvision datasets

elif section == "torchvision":
    st.subheader(t("data.tv.title"))
    st.markdown(prose("data_torchvision"))
    if train_set is None or test_set is None:
        st.stop()
    if len(train_set) == 0:
        st.warning(t("data.tv.empty"))
        st.stop()
    index = st.number_input(t("data.tv.index"), 0, len(train_set) - 1, 0, key="data.index")
    facts = D.dataset_facts(train_set, test_set, int(index))
    names = class_names(train_set)
    left, right = st.columns([3, 1])
    with left:
        st.code(
            f">>> len(train_set)\n{facts.len_train}\n>>> len(test_set)\n{facts.len_test}\n"
            f">>> train_set.classes\n{list(facts.classes)}\n>>> train_set.class_to_idx\n{facts.class_to_idx}\n"
            f">>> img, target = train_set[{facts.index}]\n>>> type(img), img.size, img.mode\n"
            f"({facts.sample_type}, {facts.sample_size}, '{facts.sample_mode}')\n"
            f">>> target, train_set.classes[target]\n({facts.label}, '{facts.label_name}')",
            language="python",
        )
    with right:
        st.image(big(np.asarray(train_set.pil(facts.index).convert("RGB")), 160),
                 caption=f"{facts.label} · {names[facts.label]}")
        st.caption(t("data.tv.pil_note"))
    name = state.dataset_name()
    code_name = name if name != USER else None
    if code_name:
        show_code(codegen.dataset_code(code_name, facts.index), key="data.code_dataset", filename="dataset.py")
    st.markdown(f"#### {t('data.tv.grid')}")
    per_class = 6
    picks: list[int] = []
    for k in range(len(train_set.classes)):
        found = (train_set.targets[:5000] == k).nonzero()[:per_class, 0].tolist()
        picks += found
    image_grid([train_set.images[i].permute(1, 2, 0).numpy() if train_set.images.shape[1] == 3
                else np.repeat(train_set.images[i, 0].numpy()[..., None], 3, axis=2) for i in picks],
               [f"{int(train_set.targets[i])} {names[int(train_set.targets[i])]}" for i in picks],
               columns=per_class * 2 if len(picks) >= per_class * 2 else max(len(picks), 1), target=64)

# ------------------------------------------------------------------ 4. transforms

elif section == "transforms":
    st.subheader(t("data.tf.title"))
    st.markdown(prose("data_transforms"))
    if STEPS_KEY not in st.session_state:
        st.session_state[STEPS_KEY] = [(0, T.Step.make("ToTensor")), (1, T.Step.make("Normalize"))]
        st.session_state[NEXT_ID_KEY] = 2
    steps: list[tuple[int, T.Step]] = st.session_state[STEPS_KEY]

    src_col, seed_col, draws_col = st.columns([2, 1, 1])
    source = src_col.segmented_control(t("data.tf.source"), ("sample", "upload"), default="sample",
                                       format_func={s: t(f"data.tf.source.{s}") for s in ("sample", "upload")}.get, key="data.tf_source",
                                       required=True) or "sample"
    seed = int(seed_col.number_input(t("data.tf.seed"), 0, 10_000, 0, key="data.tf_seed"))
    draws = int(draws_col.number_input(t("data.tf.draws"), 1, 16, 4, key="data.tf_draws",
                                       help=t("data.tf.draws_help")))
    png = None
    name = state.dataset_name()
    if source == "sample":
        if train_set is None or len(train_set) == 0:
            st.stop()
        index = int(st.number_input(t("data.tv.index"), 0, len(train_set) - 1, 0, key="data.tf_index"))
        if name == USER:
            buf = io.BytesIO()
            train_set.pil(index).save(buf, format="PNG")
            png = buf.getvalue()
        else:
            png = sample_png(name, True, index)
    else:
        up = st.file_uploader(t("data.tf.upload"), type=["png", "jpg", "jpeg", "bmp", "webp", "gif"],
                              key="data.tf_upload")
        if up is None:
            st.info(t("data.tf.upload_first"))
        else:
            png = up.getvalue()

    # --- the editor: add, edit, reorder, remove
    st.markdown(f"#### {t('data.tf.pipeline')}")
    add_col, btn_col, preset_col = st.columns([2, 1, 1], vertical_alignment="bottom")
    kind = add_col.selectbox(t("data.tf.add_kind"), T.KINDS, key=lkey("data.tf_add_kind"),
                             format_func={k: f"{k} · {t(f'data.tf.kind.{k}')}" for k in T.KINDS}.get)
    if btn_col.button(t("data.tf.add"), key="data.tf_add", icon=":material/add:"):
        steps.append((st.session_state[NEXT_ID_KEY], T.Step.make(kind)))
        st.session_state[NEXT_ID_KEY] += 1
    if preset_col.button(t("data.tf.reset"), key="data.tf_reset", icon=":material/restart_alt:"):
        st.session_state[STEPS_KEY] = steps = [(0, T.Step.make("ToTensor")), (1, T.Step.make("Normalize"))]
        st.session_state[NEXT_ID_KEY] = 2

    edited: list[tuple[int, T.Step]] = []
    action = None
    for pos, (sid, step) in enumerate(steps):
        with st.container(border=True, key=f"data.tf_row_{sid}"):
            head, up_c, down_c, del_c = st.columns([6, 1, 1, 1], vertical_alignment="center")
            head.markdown(f"**{pos + 1}. `{step.kind}`** · {t(f'data.tf.kind.{step.kind}')}")
            if up_c.button("", key=f"data.tf_up_{sid}", icon=":material/arrow_upward:", disabled=pos == 0,
                           help=t("data.tf.up")):
                action = ("up", pos)
            if down_c.button("", key=f"data.tf_down_{sid}", icon=":material/arrow_downward:",
                             disabled=pos == len(steps) - 1, help=t("data.tf.down")):
                action = ("down", pos)
            if del_c.button("", key=f"data.tf_del_{sid}", icon=":material/delete:", help=t("data.tf.remove")):
                action = ("del", pos)
            a = step.kwargs
            p = f"data.tf_{sid}_"
            try:
                if step.kind in ("Resize", "CenterCrop", "RandomCrop"):
                    c1, c2, c3, c4 = st.columns(4)
                    pair = isinstance(a["size"], tuple)
                    form = c1.radio(t("data.tf.size_form"), ("int", "hw"), index=1 if pair else 0, key=lkey(p + "form"),
                                    format_func={f: t(f"data.tf.size_form.{f}") for f in ("int", "hw")}.get, horizontal=True)
                    h0 = a["size"][0] if pair else a["size"]
                    w0 = a["size"][1] if pair else a["size"]
                    h = int(c2.number_input(t("data.tf.size_h") if form == "hw" else t("data.tf.size"), 1,
                                            T.MAX_SIDE, int(h0), key=p + "h"))
                    size = (h, int(c3.number_input(t("data.tf.size_w"), 1, T.MAX_SIDE, int(w0), key=p + "w"))) \
                        if form == "hw" else h
                    extra = {}
                    if step.kind == "RandomCrop":
                        extra["padding"] = int(c4.number_input("padding", 0, 256, int(a["padding"]), key=p + "pad"))
                    new = T.Step.make(step.kind, size=size, **extra)
                elif step.kind == "Normalize":
                    options = ["half"] + (["dataset"] if name != USER and train_set is not None else [])
                    is_half = all(m == 0.5 for m in a["mean"]) and all(x == 0.5 for x in a["std"])
                    preset = st.radio(t("data.tf.norm_preset"), options, key=lkey(p + "preset"), horizontal=True,
                                      index=0 if is_half or len(options) == 1 else 1,
                                      format_func={o: t(f"data.tf.norm.{o}") for o in options}.get)
                    if preset == "dataset":
                        mean, std = stats_for(name)
                    else:
                        ch = train_set.images.shape[1] if train_set is not None and source == "sample" else 3
                        mean, std = (0.5,) * ch, (0.5,) * ch
                    st.caption(f"mean = {list(mean)}, std = {list(std)}")
                    new = T.Step.make("Normalize", mean=mean, std=std)
                elif step.kind == "RandomHorizontalFlip":
                    new = T.Step.make(step.kind, p=st.slider("p", 0.0, 1.0, float(a["p"]), 0.05, key=p + "p"))
                elif step.kind == "RandomRotation":
                    new = T.Step.make(step.kind, degrees=st.slider("degrees", 0.0, 180.0, float(a["degrees"]), 5.0,
                                                                   key=p + "deg"))
                elif step.kind == "ColorJitter":
                    cols = st.columns(4)
                    vals = {k: cols[i].slider(k, 0.0, 0.5 if k == "hue" else 2.0, float(a[k]), 0.05, key=p + k)
                            for i, k in enumerate(("brightness", "contrast", "saturation", "hue"))}
                    new = T.Step.make(step.kind, **vals)
                elif step.kind == "Grayscale":
                    new = T.Step.make(step.kind, num_output_channels=st.radio(
                        "num_output_channels", (1, 3), index=0 if a["num_output_channels"] == 1 else 1,
                        key=p + "ch", horizontal=True))
                else:
                    new = step
            except CourseError as exc:
                st.error(error_text(exc))
                new = step  # keep the last valid settings of this step
            edited.append((sid, new))
    st.session_state[STEPS_KEY] = edited
    if action is not None:
        verb, pos = action
        if verb == "del":
            edited.pop(pos)
        else:
            other = pos - 1 if verb == "up" else pos + 1
            edited[pos], edited[other] = edited[other], edited[pos]
        st.rerun()

    pipeline = [s for _, s in edited]
    if pipeline:
        show_code(codegen.transforms_code(pipeline, name if (name != USER and source == "sample") else "upload"),
                  key="data.code_tf", filename="transforms.py")
    if png is None:
        st.stop()
    try:
        results = run_steps(png, tuple(pipeline), seed, draws)
    except CourseError as exc:
        st.error(error_text(exc), icon=":material/error:")
        st.stop()

    st.markdown(f"#### {t('data.tf.results')}")
    for res in results:
        with st.container(border=True, key=f"data.tf_result_{res.index}"):
            title = t("data.tf.input") if res.step is None else f"{res.index}. `{res.step.code()}`"
            st.markdown(f"**{title}**")
            if res.layout_changed:
                st.info(t("data.tf.hwc_chw", before=str(results[res.index - 1].shape), after=str(res.shape)),
                        icon=":material/swap_horiz:")
            img_col, info_col, hist_col = st.columns([1, 1.5, 2])
            img_col.image(big(res.display, 160),
                          caption=t("data.tf.denormalized") if res.denormalized else None)
            shape_text = (f"img.size = {res.pil_size}  (W, H)\nnp.array(img).shape = {res.shape}  # HWC"
                          if not res.is_tensor else f"img.shape = torch.Size({list(res.shape)})  # CHW")
            info_col.code(f"{shape_text}\ndtype = {res.dtype}\nmin = {res.vmin:.4g}\nmax = {res.vmax:.4g}",
                          language="python", wrap_lines=True)
            if res.denormalized:
                info_col.caption(t("data.tf.raw_values", vmin=f"{res.vmin:.3f}", vmax=f"{res.vmax:.3f}"))
            hist_col.plotly_chart(hist_figure(res), key=f"data.tf_hist_{res.index}",
                                  config={"displayModeBar": False})
            if res.step is not None and res.step.random and len(res.draws) > 1:
                st.caption(t("data.tf.draws_caption", n=len(res.draws), seed=seed))
                cols = st.columns(min(len(res.draws), 8))
                for k, pic in enumerate(res.draws):
                    cols[k % len(cols)].image(big(pic, 96), caption=f"#{k + 1}")

# ------------------------------------------------------------------ 6. DataLoader

elif section == "loader":
    st.subheader(t("data.dl.title"))
    st.markdown(prose("data_loader"))
    c1, c2, c3, c4, c5 = st.columns(5)
    split = c1.segmented_control(t("data.dl.split"), ("test", "train"), default="test", key="data.dl_split",
                                 format_func={s: t(f"data.split_{s}") for s in ("test", "train")}.get, required=True) or "test"
    batch_size = int(c2.number_input("batch_size", 1, 1024, 64, key="data.batch_size"))
    shuffle = c3.toggle("shuffle", True, key="data.shuffle")
    drop_last = c4.toggle("drop_last", False, key="data.drop_last")
    num_workers = int(c5.selectbox("num_workers", (0, 1, 2), key="data.num_workers"))
    if num_workers:
        st.info(t("data.dl.workers_note", n=num_workers), icon=":material/info:")
    seed = int(st.number_input(t("data.dl.seed"), 0, 10_000, 0, key="data.dl_seed", help=t("data.dl.seed_help")))
    ds = train_set if split == "train" else test_set
    if ds is None:
        st.stop()
    name = state.dataset_name()
    facts = D.loader_facts(len(ds), batch_size, drop_last)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(t("data.dl.len_data"), f"{len(ds):,}")
    m2.metric(t("data.dl.batches"), f"{facts.num_batches:,}")
    m3.metric(t("data.dl.last"), f"{facts.last_size}")
    m4.metric("imgs.shape", f"[{min(batch_size, len(ds))}, "
              f"{', '.join(str(s) for s in ds.images.shape[1:])}]")
    st.markdown(t("data.dl.arith", n=len(ds), b=batch_size, full=len(ds) // batch_size, rest=len(ds) % batch_size,
                  batches=facts.num_batches, last=facts.last_size))
    if name != USER:
        show_code(codegen.dataloader_code(name, batch_size, shuffle, drop_last, num_workers, train=split == "train"),
                  key="data.code_loader", filename="dataloader.py")
    try:
        if name == USER:
            batches = D.first_batches(ds, batch_size, shuffle, drop_last, epochs=2, seed=seed)
        else:
            batches = batches_for(name, split == "train", batch_size, shuffle, drop_last, seed)
    except CourseError as exc:
        st.error(error_text(exc))
        st.stop()
    first = batches[0]
    st.code(f"imgs.shape    = torch.Size({list(first.imgs.shape)})\n"
            f"targets.shape = torch.Size({list(first.targets.shape)})\n"
            f"imgs.dtype    = {first.imgs.dtype}, min = {first.imgs.min().item():.3g}, "
            f"max = {first.imgs.max().item():.3g}", language="python")
    st.markdown(f"#### {t('data.dl.epochs')}")
    st.caption(t("data.dl.shuffle_on") if shuffle else t("data.dl.shuffle_off"))
    names = class_names(ds)
    show = min(16, len(first.targets))
    cols = st.columns(2)
    for col, batch in zip(cols, batches):
        with col:
            st.markdown(t("data.dl.epoch_batch", epoch=batch.epoch, n=len(batch.targets)))
            st.caption("indices: " + str(batch.indices[:show].tolist()))
            for start in range(0, show, 4):
                row = st.columns(4)
                for r, j in zip(row, range(start, min(start + 4, show))):
                    r.image(big(chw_to_hwc(batch.imgs[j]), 64), caption=names[int(batch.targets[j])])
