"""Train: course steps 13–18. Loss and backward, the optimizer, then the full loop, live, in the background."""
import numpy as np
import streamlit as st

from dl_core.codegen.train import train_code
from dl_core.datasets import display_classes
from dl_core.errors import CourseError
from dl_core.jobs import tensorboard_available
from dl_core.models import PRESETS, preset
from dl_core.training import (
    OPTIMIZERS, DoneEvent, EpochEvent, NoticeEvent, StartEvent, StepEvent, TrainConfig, confusion_matrix,
    loss_example, per_class_accuracy, zero_grad_demo,
)
from ui import charts, jobs, state
from ui.code import show_code
from ui.datasets import current_dataset, current_title
from ui.i18n import error_text, lang, prose, t

BUILDER = "builder"  # the network from the model page
DEFAULT_EPOCHS = 5
DEFAULT_TRAIN_IMAGES = 10000
DEFAULT_TEST_IMAGES = 2000  # the course tests on all 10,000; 2,000 keeps the short run near a minute
DEFAULT_LOG_EVERY = 10
LAST_CONFIG = "train.last_config"  # the config of the last Start (for the code panel)
MAX_WRONG = 24

st.title(t("train.title"))
st.markdown(prose("train_intro"))

# ---- Course steps 13–14: loss, backward, optimizer, computed live --------------------------------
with st.expander(t("train.basics"), icon=":material/school:"):
    st.markdown(prose("train_loss"))
    left, right = st.columns([3, 1])
    x_text = left.text_input(t("train.example_x"), "0.1, 0.2, 0.3", key="train.example_x")
    y_value = right.number_input(t("train.example_y"), min_value=0, max_value=19, value=1, step=1,
                                 key="train.example_y")
    try:
        x_values = tuple(float(v) for v in x_text.replace("[", " ").replace("]", " ").split(",") if v.strip())
    except ValueError:
        x_values = None
        st.error(t("train.example_x_invalid"), icon=":material/error:")
    if x_values is not None:
        try:
            ex = loss_example(x_values, int(y_value))
        except CourseError as exc:
            st.error(error_text(exc), icon=":material/error:")
        else:
            st.code(
                "loss_fn = nn.CrossEntropyLoss()\n"
                f"x = torch.tensor([{list(ex.x)}], requires_grad=True)\n"
                f"y = torch.tensor([{ex.y}])\n"
                f"loss = loss_fn(x, y)\nprint(loss)  # tensor({ex.loss:.4f})\n"
                f"loss.backward()\nprint(x.grad)  # {[round(g, 4) for g in ex.grad]}",
                language="python")
            c1, c2 = st.columns(2)
            c1.metric(t("train.example_loss"), f"{ex.loss:.4f}")
            c2.metric(t("train.example_formula"), f"{ex.by_formula:.4f}")
            st.caption(t("train.example_formula_text", y=ex.y))
    st.markdown(prose("train_optimizer"))
    demo = zero_grad_demo()
    d1, d2, d3, d4 = st.columns(4)
    d1.metric(t("train.grad_once"), f"{demo.grad_once:g}")
    d2.metric(t("train.grad_twice"), f"{demo.grad_twice_without_zero:g}")
    d3.metric(t("train.grad_zeroed"), f"{demo.grad_twice_with_zero:g}")
    d4.metric(t("train.w_after_step"), f"{demo.w_after_step:g}", f"{demo.w_after_step - demo.w_before:+g}")

# ---- What to train on ----------------------------------------------------------------------------
train_set = current_dataset(True)
if train_set is None:
    st.stop()
test_set = current_dataset(False)
if test_set is None:
    st.stop()
dataset_name = state.dataset_name()
c, h, w = train_set.images.shape[1:]
num_classes = len(train_set.classes)
builder_spec = state.current_spec()

jobs.absorb_finished()  # a run that ended while the student was elsewhere joins the table now
job = jobs.current_job()
active = job is not None and job.is_active()

st.subheader(t("train.setup"))
st.markdown(t("train.dataset_line", name=current_title(), n_train=len(train_set), n_test=len(test_set),
              shape=f"{c}×{h}×{w}", classes=num_classes))
model_options = ([BUILDER] if builder_spec is not None else []) + list(PRESETS)
if builder_spec is None:
    st.caption(t("train.no_builder"))
    st.page_link("app_pages/model.py", label=t("nav.model"), icon=":material/account_tree:")
st.caption(t("train.defaults_note", epochs=DEFAULT_EPOCHS, images=min(len(train_set), DEFAULT_TRAIN_IMAGES),
             test=min(len(test_set), DEFAULT_TEST_IMAGES)))
st.caption(t("train.tip_compare"))

# The form starts from the last run's settings (widget keys vanish when the student visits another page).
last = st.session_state.get(LAST_CONFIG)
prev: TrainConfig = last[0] if last else TrainConfig(epochs=DEFAULT_EPOCHS, log_every=DEFAULT_LOG_EVERY,
                                                      train_subset=DEFAULT_TRAIN_IMAGES,
                                                      test_subset=DEFAULT_TEST_IMAGES)
prev_model = last[1] if last and last[1] in model_options else model_options[0]


def _fit(value: int | None, upper: int) -> int:
    return upper if value is None else max(1, min(int(value), upper))


with st.form("train.form", border=True):
    f1, f2, f3 = st.columns(3)
    model_choice = f1.selectbox(t("train.model"), model_options, index=model_options.index(prev_model),
                                key="train.model",
                                format_func={m: t(f"train.model.{m}") for m in model_options}.get)
    epochs = f2.number_input(t("train.epochs"), 1, 100, prev.epochs, key="train.epochs")
    batch_size = f3.number_input(t("train.batch_size"), 1, min(4096, len(train_set)),
                                 _fit(prev.batch_size, min(4096, len(train_set))),
                                 key="train.batch_size")
    f4, f5, f6 = st.columns(3)
    lr = f4.number_input(t("train.lr"), min_value=1e-6, max_value=10.0, value=float(prev.lr), step=0.001, format="%g",
                         key="train.lr")
    optimizer = f5.selectbox(t("train.optimizer"), OPTIMIZERS, index=OPTIMIZERS.index(prev.optimizer),
                             key="train.optimizer",
                             format_func={o: t(f"train.optimizer.{o}") for o in OPTIMIZERS}.get)
    device = f6.selectbox(t("train.device"), ("auto", "cpu", "cuda", "mps"),
                          index=("auto", "cpu", "cuda", "mps").index(prev.device), key="train.device",
                          format_func={d: t(f"train.device.{d}") for d in ("auto", "cpu", "cuda", "mps")}.get)
    f7, f8, f9 = st.columns(3)
    n_train = f7.number_input(t("train.train_subset"), 1, len(train_set), _fit(prev.train_subset, len(train_set)),
                              key="train.train_subset")
    n_test = f8.number_input(t("train.test_subset"), 1, len(test_set), _fit(prev.test_subset, len(test_set)), key="train.test_subset")
    log_every = f9.number_input(t("train.log_every"), 1, 10_000, min(prev.log_every, 10_000), key="train.log_every",
                                help=t("train.log_every_help"))
    with st.expander(t("train.more")):
        m1, m2, m3 = st.columns(3)
        weight_decay = m1.number_input(t("train.weight_decay"), 0.0, 1.0, float(prev.weight_decay), step=0.0001, format="%g",
                                       key="train.weight_decay")
        seed = m2.number_input(t("train.seed"), 0, 2**31 - 1, min(prev.seed, 2**31 - 1), key="train.seed")
        time_limit = m3.number_input(t("train.time_limit"), 0, 24 * 3600, int(prev.time_limit or 0),
                                     key="train.time_limit", help=t("train.time_limit_help"))
        augment = st.checkbox(t("train.augment"), prev.augment, key="train.augment", help=t("train.augment_help"))
        normalize = st.checkbox(t("train.normalize"), prev.normalize, key="train.normalize", help=t("train.normalize_help"))
        tb_ok = tensorboard_available()
        tensorboard = st.checkbox(t("train.tensorboard"), bool(last and last[2]) and tb_ok, key="train.tensorboard",
                                  disabled=not tb_ok,
                                  help=t("train.tensorboard_help") if tb_ok else t("train.tensorboard_missing"))
    started = st.form_submit_button(t("train.start"), type="primary", icon=":material/play_arrow:")

if started:
    config = TrainConfig(epochs=int(epochs), batch_size=int(batch_size), lr=float(lr), optimizer=optimizer,
                         weight_decay=float(weight_decay), device=device, seed=int(seed),
                         train_subset=int(n_train), test_subset=int(n_test), augment=augment, normalize=normalize,
                         log_every=int(log_every), time_limit=float(time_limit) or None)
    try:
        spec = builder_spec if model_choice == BUILDER else preset(model_choice, c, num_classes, (h, w))
        jobs.start_job(spec, model_choice, train_set, test_set, config, dataset_name, tensorboard)
    except CourseError as exc:
        st.error(error_text(exc), icon=":material/error:")
    else:
        st.session_state[LAST_CONFIG] = (config, model_choice, tensorboard)
        job = jobs.current_job()
        active = True


# ---- Live: the fragment polls the background job (the thread never calls Streamlit) ----------------
def render_live() -> None:
    job = jobs.current_job()
    if job is None:
        st.info(t("train.idle"), icon=":material/info:")
        return
    if jobs.needs_absorb():
        st.rerun()  # the run ended: the whole page shows the results and the timer stops
    events = job.events()
    start = next((e for e in events if isinstance(e, StartEvent)), None)
    last_step = job.last(StepEvent)
    last_epoch = job.last(EpochEvent)
    done = job.done_event
    cfg = job.config
    top_left, top_right = st.columns([4, 1], vertical_alignment="center")
    if job.state == "queued":
        top_left.info(t("train.queued", position=job.queue_position(), running=jobs.classroom().running()),
                      icon=":material/hourglass_top:")
    elif done is None:
        top_left.markdown(t("train.running", device=start.device.upper() if start else "…",
                            name=start.device_name if start else "", threads=start.threads if start else "…",
                            precision=start.precision if start else "…"))
    if top_right.button(t("train.stop"), key="train.stop_button", icon=":material/stop:",
                        disabled=done is not None or job.stop_requested):
        job.stop()
        st.toast(t("train.stopping"), icon=":material/stop_circle:")
    for notice in (e for e in events if isinstance(e, NoticeEvent)):
        st.warning(t(f"train.notice.{notice.code}", **dict(notice.params)), icon=":material/memory:")
    if start is not None:
        steps_total = start.steps_per_epoch * start.epochs
        progress = last_step.progress if last_step else 0.0
        if last_step and progress > 0 and done is None:
            eta = f"{last_step.seconds / progress * (1 - progress):.0f}"
        else:
            eta = "…" if done is None else "0"
        st.progress(min(progress, 1.0), text=t("train.progress", epoch=last_step.epoch if last_step else 1,
                                               epochs=cfg.epochs, step=last_step.step if last_step else 0,
                                               steps=steps_total, eta=eta))
        m1, m2, m3, m4 = st.columns(4)
        m1.metric(t("train.metric_loss"), f"{last_step.loss:.4f}" if last_step else "–")
        m2.metric(t("train.metric_acc"), f"{last_epoch.test_accuracy:.1%}" if last_epoch else "–")
        m3.metric(t("train.metric_total_loss"), f"{last_epoch.test_loss_total:.2f}" if last_epoch else "–",
                  help=t("train.metric_total_loss_help"))
        m4.metric(t("train.metric_speed"), f"{last_step.images_per_sec:,.0f}" if last_step else "–")
    if done is not None:
        show_done(done)
    history = job.history
    ch1, ch2 = st.columns(2)
    ch1.plotly_chart(charts.train_loss_figure(history), key="train.chart_loss", width="stretch")
    ch2.plotly_chart(charts.test_figure(history), key="train.chart_test", width="stretch")
    with st.expander(t("train.speed_chart")):
        st.plotly_chart(charts.speed_figure(history), key="train.chart_speed", width="stretch")


def show_done(done: DoneEvent) -> None:
    acc = "–" if done.test_accuracy is None else f"{done.test_accuracy:.1%}"
    text = t(f"train.done.{done.status}", reason=t(f"train.reason.{done.reason}"), epochs=done.epochs_done,
             steps=done.steps, seconds=f"{done.seconds:.1f}", accuracy=acc, device=done.device.upper())
    if done.status == "finished":
        st.success(text, icon=":material/check_circle:")
    elif done.status == "failed":
        st.error(text + (f"  \n`{done.message[:300]}`" if done.message else ""), icon=":material/error:")
    else:
        st.warning(text, icon=":material/pause_circle:")


st.subheader(t("train.live"))
st.fragment(render_live, run_every=1.0 if active else None)()

# ---- Runs: the table, overlays, and what the last run got wrong ---------------------------------------
all_runs = jobs.runs()
if all_runs:
    st.subheader(t("train.runs"))
    by_number = {r.number: r for r in all_runs}

    # Labels made now, in the user's language (format_func gets a plain lookup, not a call into t()).
    run_label = {r.number: f"#{r.number} {t(f'train.model.{r.model_key}')} · {r.config.optimizer} lr={r.config.lr:g}"
                 for r in all_runs}.get

    rows = [{
        t("train.col.run"): run_label(r.number), t("train.col.dataset"): r.dataset,
        t("train.col.model"): t(f"train.model.{r.model_key}"),
        t("train.col.optimizer"): r.config.optimizer, "lr": r.config.lr, "batch": r.config.batch_size,
        t("train.col.epochs"): len(r.history.epochs), t("train.col.augment"): "✓" if r.config.augment else "",
        t("train.col.status"): t(f"train.status.{r.status}"),
        t("train.col.accuracy"): None if r.final_accuracy is None else round(100 * r.final_accuracy, 2),
        t("train.col.seconds"): round(r.seconds, 1), t("train.col.device"): r.device.upper(),
    } for r in all_runs]
    st.dataframe(rows, hide_index=True, width="stretch", key="train.runs_table")
    numbers = list(by_number)
    chosen = st.multiselect(t("train.overlay"), numbers, default=numbers[-3:], key="train.overlay",
                            format_func=run_label)
    picked = [(run_label(n), by_number[n].history) for n in chosen if n in by_number]
    if picked:
        o1, o2 = st.columns(2)
        o1.plotly_chart(charts.overlay_figure(picked, "test_accuracy"), key="train.overlay_acc", width="stretch")
        o2.plotly_chart(charts.overlay_figure(picked, "train_loss"), key="train.overlay_loss", width="stretch")

    st.subheader(t("train.analysis"))
    number = st.selectbox(t("train.analysis_run"), numbers[::-1], key="train.analysis_run", format_func=run_label)
    run = by_number.get(number)
    if run is None or run.predictions is None:
        st.info(t("train.no_analysis"), icon=":material/info:")
    else:
        names = display_classes(run.classes, lang())
        cm = confusion_matrix(run.predictions, run.targets, len(run.classes))
        a1, a2 = st.columns([3, 2])
        a1.plotly_chart(charts.confusion_figure(cm.numpy(), names), key="train.confusion", width="stretch")
        a2.plotly_chart(charts.per_class_figure(per_class_accuracy(cm).numpy(), names), key="train.per_class",
                        width="stretch")
        wrong = (run.predictions != run.targets).nonzero().flatten()
        st.markdown(t("train.wrong_title", wrong=int(wrong.numel()), total=int(run.targets.numel())))
        if run.dataset != dataset_name or run.targets.numel() > len(test_set):
            st.caption(t("train.wrong_other_dataset"))
        elif wrong.numel():
            shown = wrong[:MAX_WRONG].tolist()
            cols = st.columns(8)
            for k, i in enumerate(shown):
                img = test_set.images[i].permute(1, 2, 0).numpy()
                img = img[:, :, 0] if img.shape[2] == 1 else img
                cols[k % 8].image(np.ascontiguousarray(img), width=72,
                                  caption=t("train.wrong_caption", pred=names[int(run.predictions[i])],
                                            true=names[int(run.targets[i])]))
        d1, d2 = st.columns(2)
        d1.download_button(t("train.csv"), run.history.to_csv(), file_name=f"run{run.number}_history.csv",
                           mime="text/csv", key="train.csv", icon=":material/download:")
        if run.logdir:
            d2.markdown(t("train.tensorboard_cmd"))
            d2.code(f"tensorboard --logdir={jobs.logdir_root()}", language="bash")

# ---- The course's code for these settings --------------------------------------------------------------
code_config, code_model, _ = st.session_state.get(LAST_CONFIG) or (prev, prev_model, False)
if code_model == BUILDER and builder_spec is not None:
    code_spec = builder_spec
else:
    try:
        code_spec = preset(code_model if code_model in PRESETS else "course", c, num_classes, (h, w))
    except CourseError:
        code_spec = None
if code_spec is not None:
    show_code(train_code(code_spec, code_config, dataset_name, (c, h, w), tensorboard=True, lang=lang()),
              key="train.code", filename="train.py")
