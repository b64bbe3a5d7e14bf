"""Train: course steps 13–18. Loss and backward, the optimizer, then the full loop, live, out of the web process."""
from dataclasses import replace
from typing import Any

import numpy as np
import streamlit as st

from dl_core.codegen.train import train_code
from dl_core.datasets import DATASETS, TensorImageDataset, display_classes
from dl_core.errors import CourseError
from dl_core.jobs import Job, tensorboard_available
from dl_core.models import PRESETS, ModelSpec, preset
from dl_core.pagelinks import train as recipe_link
from dl_core.students import Run
from dl_core.training import (
    MAX_BATCH, MAX_LR, OPTIMIZERS, EpochEvent, NoticeEvent, StartEvent, StepEvent, TrainConfig, confusion_matrix,
    loss_example, per_class_accuracy, zero_grad_demo,
)
from ui import charts, jobs, state
from ui.code import show_code
from ui.datasets import current_dataset, current_title
from ui.i18n import error_text, lang, prose, t
from ui.urlstate import PageLink

BUILDER = "builder"  # the network from the model page
DEFAULT_LOG_EVERY = 10
LAST_CONFIG = "train.last_config"  # the config of the last Start (for the code panel and the form)
LIVE_KEY = "train.live_tickets"  # session state: the jobs the live section showed last time
NOTICE_KEY = "train.flash"  # session state: a message for the next run of the page (set by callbacks)
STOPPING_KEY = "train.stop_pressed"  # session state: Stop was pressed (the live section says so)
MAX_WRONG = 24
FAST_RECIPE = {"optimizer": "sgd_momentum", "normalize": True}  # the course's recipe plus its two classic upgrades
DEVICES = ("auto", "cpu", "cuda", "mps")
RECIPE_KEYS = {"optimizer": "train.optimizer", "lr": "train.lr", "batch": "train.batch_size", "epochs": "train.epochs",
               "images": "train.train_subset", "augment": "train.augment", "normalize": "train.normalize",
               "weight_decay": "train.weight_decay", "seed": "train.seed"}  # the link's names -> the form's widgets

# Translated names, one literal key each (the catalog test sees every key).
MODEL_TITLES = {"builder": "train.model.builder", "course": "train.model.course",
                "course_odict": "train.model.course_odict", "course_relu": "train.model.course_relu",
                "course_bn_dropout": "train.model.course_bn_dropout", "linear": "train.model.linear"}
OPTIMIZER_TITLES = {"sgd": "train.optimizer.sgd", "sgd_momentum": "train.optimizer.sgd_momentum",
                    "adam": "train.optimizer.adam"}
DEVICE_TITLES = {"auto": "train.device.auto", "cpu": "train.device.cpu", "cuda": "train.device.cuda",
                 "mps": "train.device.mps"}
RECIPE_TITLES = {"course": "train.recipe.course", "fast": "train.recipe.fast"}
TUNE_SOURCES = {"measured": "train.tune_source.measured", "partial": "train.tune_source.partial",
                "memory": "train.tune_source.memory", "disk": "train.tune_source.disk",
                "requested": "train.tune_source.requested", "unmeasured": "train.tune_source.unmeasured",
                "": "train.tune_source."}
NOTICES = {"oom_half_batch": "train.notice.oom_half_batch", "oom_cpu": "train.notice.oom_cpu"}
DONE = {"finished": "train.done.finished", "stopped": "train.done.stopped", "diverged": "train.done.diverged",
        "failed": "train.done.failed"}
STATUS = {"finished": "train.status.finished", "stopped": "train.status.stopped",
          "diverged": "train.status.diverged", "failed": "train.status.failed"}
REASONS = {"completed": "train.reason.completed", "stop_requested": "train.reason.stop_requested",
           "time_limit": "train.reason.time_limit", "nan_loss": "train.reason.nan_loss",
           "out_of_memory": "train.reason.out_of_memory", "error": "train.reason.error",
           "worker_lost": "train.reason.worker_lost"}


def title(table: dict[str, str], value: str | None, **params: object) -> str:
    """`value`'s translated name from `table` (the value itself where the table has none)."""
    key = table.get(value or "")
    return t(key, **params) if key is not None else str(value)


def basics() -> None:
    """Course steps 13–14: the loss of one example, backward, the optimizer, computed live."""
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


def dataset_title(name: str) -> str:
    info = DATASETS.get(name)
    return info.title if info is not None else t("data.user_title") if name == "user" else name


def limits_line(n_train: int) -> None:
    """The teacher's limits in force and how busy the server is, in one caption."""
    cfg, room = jobs.limits(), jobs.classroom()
    speed = room.speed()
    st.caption(t("train.limits", jobs=room.max_jobs, running=room.running(), queued=room.queued(),
                 epochs=cfg.max_epochs, images=cfg.max_train_images or n_train,
                 speed="–" if speed is None else f"{speed:,.0f}"))


def _fit(value: int | None, upper: int) -> int:
    return upper if value is None else max(1, min(int(value), upper))


def max_images(n_train: int) -> int:
    """The most training images a run may use here: the dataset, or the classroom's cap if lower."""
    return min(n_train, jobs.limits().max_train_images or n_train)


def default_config() -> TrainConfig:
    """The page's recipe before any Start: the course's, sized by the classroom (classroom.toml)."""
    defaults = jobs.limits()
    return TrainConfig(epochs=defaults.default_epochs, log_every=DEFAULT_LOG_EVERY,
                       train_subset=defaults.default_train_images, test_subset=defaults.default_test_images)


# ---- The recipe: a form, its link, and Start / Compare (callbacks) ------------------------------------
def load_recipe(values: dict[str, Any], n_train: int) -> None:
    """A link's recipe into the form's widgets. What this dataset or classroom cannot run is said (the
    message Start would give) and brought within the form's limits; a link never starts a run."""
    config = recipe_link.to_config(values, default_config())
    for check in (lambda: config.validate(n_train), lambda: jobs.check_caps(config, n_train)):
        try:
            check()
        except CourseError as exc:
            st.warning(error_text(exc), icon=":material/link_off:")
    most = max_images(n_train)
    config = replace(config, epochs=min(config.epochs, jobs.limits().max_epochs),
                     batch_size=_fit(config.batch_size, min(MAX_BATCH, most)),
                     train_subset=_fit(config.train_subset, most))
    st.session_state.update({RECIPE_KEYS[name]: value for name, value in recipe_link.from_config(config).items()})


def saved_recipe(n_train: int) -> dict[str, Any]:
    """The form's recipe as link values; epochs and images left out (None) where they are the classroom's default."""
    values = {name: st.session_state.get(key) for name, key in RECIPE_KEYS.items()}
    default = default_config()
    if values["epochs"] == default.epochs:
        values["epochs"] = None
    if values["images"] == _fit(default.train_subset, max_images(n_train)):
        values["images"] = None
    return values


def form_config() -> TrainConfig:
    """The recipe the form holds (its widgets' values, as a Start callback sees them)."""
    s = st.session_state
    return TrainConfig(epochs=int(s["train.epochs"]), batch_size=int(s["train.batch_size"]), lr=float(s["train.lr"]),
                       optimizer=s["train.optimizer"], weight_decay=float(s["train.weight_decay"]),
                       device=s["train.device"], seed=int(s["train.seed"]), train_subset=int(s["train.train_subset"]),
                       test_subset=int(s["train.test_subset"]), augment=s["train.augment"],
                       normalize=s["train.normalize"], log_every=int(s["train.log_every"]),
                       time_limit=float(s["train.time_limit"]) or None)


def training_form(model_options: list[str], prev: TrainConfig, prev_model: str, n_train: int, n_test: int,
                  context: dict[str, Any]) -> None:
    """The recipe; Start and Compare call `submit_runs` with the form's values and `context` (the data, the models)."""
    cfg = jobs.limits()
    most = max_images(n_train)
    with st.form("train.form", border=True):
        f1, f2, f3 = st.columns(3)
        f1.selectbox(t("train.model"), model_options, index=model_options.index(prev_model), key="train.model",
                     format_func={m: title(MODEL_TITLES, m) for m in model_options}.get)
        f2.number_input(t("train.epochs"), 1, cfg.max_epochs, min(prev.epochs, cfg.max_epochs), key="train.epochs")
        f3.number_input(t("train.batch_size"), 1, min(MAX_BATCH, most), _fit(prev.batch_size, min(MAX_BATCH, most)),
                        key="train.batch_size")
        f4, f5, f6 = st.columns(3)
        f4.number_input(t("train.lr"), min_value=recipe_link.MIN_LR, max_value=MAX_LR, value=float(prev.lr), step=0.001,
                        format="%g", key="train.lr")
        f5.selectbox(t("train.optimizer"), OPTIMIZERS, index=OPTIMIZERS.index(prev.optimizer), key="train.optimizer",
                     format_func={o: title(OPTIMIZER_TITLES, o) for o in OPTIMIZERS}.get)
        f6.selectbox(t("train.device"), DEVICES, index=DEVICES.index(prev.device), key="train.device",
                     format_func={d: title(DEVICE_TITLES, d) for d in DEVICES}.get)
        f7, f8, f9 = st.columns(3)
        f7.number_input(t("train.train_subset"), 1, most, _fit(prev.train_subset, most), key="train.train_subset")
        f8.number_input(t("train.test_subset"), 1, n_test, _fit(prev.test_subset, n_test), key="train.test_subset")
        f9.number_input(t("train.log_every"), 1, 10_000, min(prev.log_every, 10_000), key="train.log_every",
                        help=t("train.log_every_help"))
        more_settings(prev)
        b1, b2 = st.columns([1, 2])
        b1.form_submit_button(t("train.start"), type="primary", icon=":material/play_arrow:", on_click=submit_runs,
                              args=("start", context))
        b2.form_submit_button(t("train.compare"), icon=":material/compare_arrows:", help=t("train.compare_help"),
                              on_click=submit_runs, args=("compare", context))


def more_settings(prev: TrainConfig) -> None:
    """The form's folded part: weight decay, seed, time limit, augmentation, Normalize, TensorBoard."""
    with st.expander(t("train.more")):
        m1, m2, m3 = st.columns(3)
        m1.number_input(t("train.weight_decay"), 0.0, 1.0, float(prev.weight_decay), step=0.0001, format="%g",
                        key="train.weight_decay")
        m2.number_input(t("train.seed"), 0, recipe_link.MAX_SEED, min(prev.seed, recipe_link.MAX_SEED), key="train.seed")
        m3.number_input(t("train.time_limit"), 0, 24 * 3600, int(prev.time_limit or 0), key="train.time_limit",
                        help=t("train.time_limit_help"))
        st.checkbox(t("train.augment"), prev.augment, key="train.augment", help=t("train.augment_help"))
        st.checkbox(t("train.normalize"), prev.normalize, key="train.normalize", help=t("train.normalize_help"))
        tb_ok = tensorboard_available()
        last = st.session_state.get(LAST_CONFIG)
        st.checkbox(t("train.tensorboard"), bool(last and last[2]) and tb_ok, key="train.tensorboard",
                    disabled=not tb_ok, help=t("train.tensorboard_help") if tb_ok else t("train.tensorboard_missing"))


def submit_runs(action: str, context: dict[str, Any]) -> None:
    """Start / Compare (a callback): one run, or the course recipe and the faster one side by side.

    A refusal (a network that does not fit, a classroom limit, too many runs going) becomes a message
    that `recipe_section` shows after the form.
    """
    config, model_choice = form_config(), st.session_state["train.model"]
    tensorboard = bool(st.session_state.get("train.tensorboard"))
    if action == "compare":
        course = replace(config, optimizer="sgd", normalize=False)
        plans = [("course", course), ("fast", replace(course, **FAST_RECIPE))]
    else:
        plans = [(None, config)]
    active = len(jobs.active_jobs())
    if active and active + len(plans) > jobs.JOBS_PER_STUDENT:
        st.session_state[NOTICE_KEY] = ("busy", active)
        return
    train_set = context["train_set"]
    c, h, w = train_set.images.shape[1:]
    try:
        spec = context["builder"] if model_choice == BUILDER else preset(model_choice, c, len(train_set.classes), (h, w))
        for recipe, cfg in plans:
            jobs.start_job(spec, model_choice, train_set, context["test_set"], cfg, context["dataset"], tensorboard,
                           recipe)
    except CourseError as exc:
        st.session_state[NOTICE_KEY] = ("error", exc)
    else:
        st.session_state[LAST_CONFIG] = (config, model_choice, tensorboard)


def show_notice() -> None:
    """What the last Start / Compare callback had to say, once."""
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice is None:
        return
    kind, detail = notice
    if kind == "busy":
        st.warning(t("train.busy", count=detail), icon=":material/hourglass_top:")
    else:
        st.error(error_text(detail), icon=":material/error:")


# ---- Live: the fragment polls the jobs (the worker processes never call Streamlit) ------------------
def job_label(job: Job) -> str:
    recipe = job.meta.get("recipe")
    model_key = job.meta.get("model_key", "course")
    base = f"#{job.meta.get('number', '?')} {title(MODEL_TITLES, model_key)}"
    return f"{base} · {title(RECIPE_TITLES, recipe)}" if recipe else f"{base} · {job.config.optimizer} lr={job.config.lr:g}"


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    seconds = max(0, int(seconds))
    if seconds >= 60:
        return t("train.eta_minutes", m=seconds // 60, s=f"{seconds % 60:02d}")
    return t("train.eta_seconds", s=seconds)


def stop_job(job: Job) -> None:
    """Stop (a callback): the toast comes with the redraw, as a callback does not draw."""
    job.stop()
    st.session_state[STOPPING_KEY] = True


def job_status(job: Job, index: int) -> None:
    """One job's line: its place in the queue and expected start, or where it trains and how far it is."""
    room = jobs.classroom()
    start = job.last(StartEvent)
    last_step = job.last(StepEvent)
    last_epoch = job.last(EpochEvent)
    top_left, top_right = st.columns([4, 1], vertical_alignment="center")
    if job.state == "queued":
        top_left.info(t("train.queued", label=job_label(job), position=job.queue_position(), running=room.running(),
                        eta=eta_text(room.estimate_start(job))), icon=":material/hourglass_top:")
    else:
        top_left.markdown(t("train.running", label=job_label(job), device=start.device.upper() if start else "…",
                            name=start.device_name if start else "", threads=start.threads if start else "…",
                            precision=start.precision if start else "…", where=job.where or "…"))
    if start is not None and start.tuned:
        measured = "; ".join(f"{label}: {ips:,.0f} img/s" for label, ips in start.candidates)
        top_left.caption(t("train.tuned", choice=start.tuned, measured=measured or "–",
                           seconds=f"{start.tuning_seconds:.1f}", source=title(TUNE_SOURCES, start.tune_source)))
    key = "train.stop_button" if index == 0 else f"train.stop_button_{index + 1}"
    top_right.button(t("train.stop"), key=key, icon=":material/stop:", disabled=job.stop_requested, on_click=stop_job,
                     args=(job,))
    for notice in (e for e in job.events() if isinstance(e, NoticeEvent)):
        st.warning(title(NOTICES, notice.code, **dict(notice.params)), icon=":material/memory:")
    if start is None:
        return
    steps_total = start.steps_per_epoch * start.epochs
    progress = last_step.progress if last_step else 0.0
    st.progress(min(progress, 1.0), text=t("train.progress", epoch=last_step.epoch if last_step else 1,
                                           epochs=job.config.epochs, step=last_step.step if last_step else 0,
                                           steps=steps_total, eta=eta_text(job.remaining_seconds(room.speed()))))
    probe = getattr(job.history, "probe_accuracy", [])
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(t("train.metric_loss"), f"{last_step.loss:.4f}" if last_step else "–")
    m2.metric(t("train.metric_live_acc"), f"{probe[-1]:.1%}" if probe else "–", help=t("train.metric_live_acc_help"))
    m3.metric(t("train.metric_acc"), f"{last_epoch.test_accuracy:.1%}" if last_epoch else "–")
    m4.metric(t("train.metric_speed"), f"{last_step.images_per_sec:,.0f}" if last_step else "–")


def render_live() -> None:
    pending = jobs.jobs()
    shown = st.session_state.get(LIVE_KEY, [])
    tickets = [j.ticket for j in pending]
    if any(ticket not in tickets for ticket in shown):
        st.session_state[LIVE_KEY] = tickets
        st.rerun()  # a run ended: the whole page shows its results, and the refresh timer changes
    was_queued = st.session_state.get("train.live_queued", False)
    now_queued = bool(pending) and all(j.state == "queued" for j in pending)
    st.session_state["train.live_queued"] = now_queued
    if was_queued and not now_queued:
        st.rerun()  # out of the queue: refresh every second from now on
    st.session_state[LIVE_KEY] = tickets
    if st.session_state.pop(STOPPING_KEY, False):
        st.toast(t("train.stopping"), icon=":material/stop_circle:")
    if not pending:
        st.info(t("train.idle"), icon=":material/info:")
        return
    for index, job in enumerate(pending):
        with st.container(border=True):
            job_status(job, index)
    series = [(job_label(j), j.history) for j in pending if j.state != "queued"]
    if series:
        ch1, ch2 = st.columns(2)
        ch1.plotly_chart(charts.live_loss_figure(series), key="train.chart_loss", width="stretch")
        ch2.plotly_chart(charts.live_accuracy_figure(series), key="train.chart_test", width="stretch")
        with st.expander(t("train.speed_chart")):
            st.plotly_chart(charts.speed_figure(series[-1][1]), key="train.chart_speed", width="stretch")


def refresh_interval() -> float | None:
    """Once a second while a run trains, every few seconds while only waiting in the queue, never when idle."""
    pending = jobs.jobs()
    if not pending:
        return None
    return 1.0 if any(j.state == "running" for j in pending) else 3.0


# ---- Runs: the table, overlays, and what a run got wrong ------------------------------------------------
def show_done(run: Run) -> None:
    acc = "–" if run.final_accuracy is None else f"{run.final_accuracy:.1%}"
    text = title(DONE, run.status, reason=title(REASONS, run.reason), epochs=len(run.history.epochs),
             steps=run.history.steps[-1] if run.history.steps else 0, seconds=f"{run.seconds:.1f}", accuracy=acc,
             device=run.device.upper())
    if run.status == "finished":
        st.success(text, icon=":material/check_circle:")
    elif run.status == "failed":
        message = run.extra.get("message") or ""
        st.error(text + (f"  \n`{message[:300]}`" if message else ""), icon=":material/error:")
    else:
        st.warning(text, icon=":material/pause_circle:")


def run_label(run: Run) -> str:
    recipe = run.extra.get("recipe")
    what = title(RECIPE_TITLES, recipe) if recipe else f"{run.config.optimizer} lr={run.config.lr:g}"
    return f"#{run.number} {title(MODEL_TITLES, run.model_key)} · {what}"


def runs_table(all_runs: list[Run]) -> None:
    """One row per run; what the label already says (optimizer, lr) is not repeated, so every column fits."""
    rows = [{
        t("train.col.run"): run_label(r) + (" · aug" if r.config.augment else ""),
        t("train.col.dataset"): dataset_title(r.dataset), t("train.col.status"): title(STATUS, r.status),
        t("train.col.accuracy"): None if r.final_accuracy is None else round(100 * r.final_accuracy, 2),
        t("train.col.epochs"): len(r.history.epochs), t("train.col.seconds"): round(r.seconds, 1),
        t("train.col.device"): r.device.upper(), "batch": r.config.batch_size,
    } for r in all_runs]
    st.dataframe(rows, hide_index=True, width="stretch", key="train.runs_table",
                 column_config={t("train.col.run"): st.column_config.TextColumn(width="medium"),
                                t("train.col.accuracy"): st.column_config.NumberColumn(format="%.2f %%")})


def overlays(all_runs: list[Run]) -> None:
    by_number = {r.number: r for r in all_runs}
    labels = {r.number: run_label(r) for r in all_runs}.get
    numbers = list(by_number)
    default = [n for n in st.session_state.get(jobs.OVERLAY_KEY, numbers[-3:]) if n in by_number]
    st.session_state[jobs.OVERLAY_KEY] = default
    chosen = st.multiselect(t("train.overlay"), numbers, key=jobs.OVERLAY_KEY, format_func=labels)
    picked = [(labels(n), by_number[n].history) for n in chosen if n in by_number]
    if picked:
        o1, o2 = st.columns(2)
        o1.plotly_chart(charts.overlay_figure(picked, "test_accuracy"), key="train.overlay_acc", width="stretch")
        o2.plotly_chart(charts.overlay_figure(picked, "train_loss"), key="train.overlay_loss", width="stretch")


def analysis(all_runs: list[Run], test_set, dataset_name: str) -> None:
    by_number = {r.number: r for r in all_runs}
    st.subheader(t("train.analysis"))
    numbers = list(by_number)
    if st.session_state.get(jobs.ANALYSIS_KEY) not in by_number:
        st.session_state[jobs.ANALYSIS_KEY] = numbers[-1]
    number = st.selectbox(t("train.analysis_run"), numbers[::-1], key=jobs.ANALYSIS_KEY,
                          format_func={r.number: run_label(r) for r in all_runs}.get)
    run = by_number.get(number)
    if run is None or run.predictions is None:
        st.info(t("train.no_analysis"), icon=":material/info:")
        return
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
        cols = st.columns(8)
        for k, i in enumerate(wrong[:MAX_WRONG].tolist()):
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


def code_panel(prev: TrainConfig, prev_model: str, builder_spec: ModelSpec | None, dataset_name: str,
               shape: tuple[int, int, int], num_classes: int) -> None:
    code_config, code_model, _ = st.session_state.get(LAST_CONFIG) or (prev, prev_model, False)
    c, h, w = shape
    if code_model == BUILDER and builder_spec is not None:
        code_spec = builder_spec
    else:
        try:
            code_spec = preset(code_model if code_model in PRESETS else "course", c, num_classes, (h, w))
        except CourseError:
            return
    show_code(train_code(code_spec, code_config, dataset_name, shape, tensorboard=True, lang=lang()),
              key="train.code", filename="train.py", explain=t("train.code_explain"))


# ---- The page's sections ----------------------------------------------------------------------------------
def datasets_or_stop() -> tuple[TensorImageDataset, TensorImageDataset]:
    """The current dataset's train and test parts (the data page's choice); the page stops without them."""
    train_set = current_dataset(True)
    if train_set is None:
        st.stop()
    test_set = current_dataset(False)
    if test_set is None:
        st.stop()
    return train_set, test_set


def backend_or_stop() -> None:
    """The student, the classroom's settings and the training backend; runs that ended meanwhile join the page."""
    jobs.me()  # the student (and their cookie) before anything reads their runs
    if jobs.config_error() is not None:
        st.warning(t("train.config_ignored", reason=error_text(jobs.config_error())), icon=":material/warning:")
    try:
        jobs.backend()  # a cluster that cannot be reached is a message, not a traceback
    except CourseError as exc:
        st.error(error_text(exc), icon=":material/error:")
        st.stop()
    jobs.adopt_new_runs()  # runs that ended while the student was away join the charts below


def setup_section(train_set: TensorImageDataset, test_set: TensorImageDataset, builder_spec: ModelSpec | None) -> None:
    """What will be trained on, the classroom's limits and defaults, and where a network of one's own comes from."""
    c, h, w = train_set.images.shape[1:]
    st.subheader(t("train.setup"))
    st.markdown(t("train.dataset_line", name=current_title(), n_train=len(train_set), n_test=len(test_set),
                  shape=f"{c}×{h}×{w}", classes=len(train_set.classes)))
    limits_line(len(train_set))
    if builder_spec is None:
        st.caption(t("train.no_builder"))
        st.page_link("app_pages/model.py", label=t("nav.model"), icon=":material/account_tree:")
    defaults = jobs.limits()
    st.caption(t("train.defaults_note", epochs=defaults.default_epochs,
                 images=min(len(train_set), defaults.default_train_images),
                 test=min(len(test_set), defaults.default_test_images)))
    st.caption(t("train.tip_compare"))


def recipe_section(train_set: TensorImageDataset, test_set: TensorImageDataset, builder_spec: ModelSpec | None,
                   dataset_name: str) -> tuple[TrainConfig, str]:
    """The recipe form, in step with the URL (a teacher's link fills it in); returns what the code panel shows."""
    n_train = len(train_set)
    link = PageLink("train", load=lambda values: load_recipe(values, n_train), save=lambda: saved_recipe(n_train))
    link.apply()
    model_options = ([BUILDER] if builder_spec is not None else []) + list(PRESETS)
    last = st.session_state.get(LAST_CONFIG)
    prev = last[0] if last else default_config()
    prev_model = last[1] if last and last[1] in model_options else model_options[0]
    context = {"train_set": train_set, "test_set": test_set, "builder": builder_spec, "dataset": dataset_name}
    training_form(model_options, prev, prev_model, n_train, len(test_set), context)
    show_notice()
    link.publish()  # after the form: the URL follows what the form holds (its values change on submit)
    link.copy_button()
    return prev, prev_model


def live_section() -> None:
    st.subheader(t("train.live"))
    st.fragment(render_live, run_every=refresh_interval())()


def runs_section(test_set: TensorImageDataset, dataset_name: str) -> None:
    all_runs = jobs.runs()
    state.trained()  # after reading the runs: the newest run's model becomes the session's (Save and Predict use it)
    if not all_runs:
        return
    st.subheader(t("train.runs"))
    show_done(all_runs[-1])
    runs_table(all_runs)
    overlays(all_runs)
    analysis(all_runs, test_set, dataset_name)


# ---- The page ---------------------------------------------------------------------------------------------
st.title(t("train.title"))
st.markdown(prose("train_intro"))
basics()
train_set, test_set = datasets_or_stop()
dataset_name = state.dataset_name()
builder_spec = state.current_spec()
backend_or_stop()
setup_section(train_set, test_set, builder_spec)
prev, prev_model = recipe_section(train_set, test_set, builder_spec, dataset_name)
live_section()
runs_section(test_set, dataset_name)
code_panel(prev, prev_model, builder_spec, dataset_name, tuple(train_set.images.shape[1:]), len(train_set.classes))
