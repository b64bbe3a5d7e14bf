"""The page's handle on training: the server's backend, the student's jobs and runs.

- `backend()`: one per server process, chosen by the classroom configuration: worker processes
  (the default), threads of this process (tests, `backend = "thread"`) or a Ray cluster.
- A student's jobs and runs live in the server-side student registry (`ui.student`), not in the
  Streamlit session: a reload, a page switch or a dropped connection finds them again, and a running
  job keeps running. When a job ends, the registry turns it into a Run and the student's model.
"""
from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from dl_core.classroom import ClassroomConfig
from dl_core.datasets import TensorImageDataset, data_dir
from dl_core.errors import CourseError
from dl_core.jobs import DataRef, Job, JobRequest, ThreadBackend
from dl_core.models import ModelSpec
from dl_core.students import Run, Student
from dl_core.training import TrainConfig, preprocessing_for
from ui import student as students

OVERLAY_KEY = "train.overlay"  # the page's multiselect of runs to compare
ANALYSIS_KEY = "train.analysis_run"  # the page's selectbox of the run to analyse
SEEN_KEY = "train.seen_run"  # session state: the newest run this session has put into those widgets
JOBS_PER_STUDENT = 2  # a comparison of two recipes runs side by side


def _make_backend(cfg: ClassroomConfig, data_root: str):
    if cfg.backend == "thread":
        return ThreadBackend(cfg.jobs_limit())
    if cfg.backend == "ray":
        from dl_core.cluster import RayBackend  # optional dependency, imported only when configured

        return RayBackend(cfg)
    from dl_core.workers import ProcessBackend

    return ProcessBackend(cfg.jobs_limit(), cfg.workers_count(), preload=(cfg.default_dataset, data_root),
                          nice=cfg.worker_nice)


@st.cache_resource(show_spinner=False)
def _backend(kind: str, max_jobs: int, data_root: str):
    return _make_backend(students.classroom_config(), data_root)


def backend():
    """The server's training backend (kept per kind and data folder: tests switch between them)."""
    cfg = students.classroom_config()
    return _backend(cfg.backend, cfg.jobs_limit(), str(data_dir()))


def classroom():
    return backend().classroom


def limits() -> ClassroomConfig:
    return students.classroom_config()


def config_error() -> CourseError | None:
    return students.config_error()


def me() -> Student:
    return students.current()


def jobs() -> list[Job]:
    """The student's jobs still going or just ended (not yet in the runs table), oldest first."""
    return list(me().jobs)


def active_jobs() -> list[Job]:
    return me().active_jobs()


def current_job() -> Job | None:
    """The student's newest job still in flight, or None."""
    pending = jobs()
    return pending[-1] if pending else None


def check_caps(config: TrainConfig, n_train: int) -> None:
    """The teacher's per-run caps, refused with a message naming the limit."""
    cfg = limits()
    if config.epochs > cfg.max_epochs:
        raise CourseError("classroom.cap_epochs", "this classroom allows at most {limit} epochs per run",
                          limit=cfg.max_epochs)
    if cfg.max_train_images and config.effective_train_size(n_train) > cfg.max_train_images:
        raise CourseError("classroom.cap_images", "this classroom allows at most {limit} training images per epoch",
                          limit=cfg.max_train_images)


def start_job(spec: ModelSpec, model_key: str, train_set: TensorImageDataset, test_set: TensorImageDataset,
              config: TrainConfig, dataset: str, tensorboard: bool, recipe: str | None = None) -> Job:
    """Queue a run for this student. Raises CourseError for a bad config, a network that does not fit the
    images, a limit of the classroom, or when the student already has as many runs going as allowed."""
    student = me()
    if len(student.active_jobs()) >= JOBS_PER_STUDENT:
        raise CourseError("train.busy", "{count} runs of yours are still going: stop one or wait for it to end",
                          count=len(student.active_jobs()))
    check_caps(config, len(train_set))
    logdir = None
    if tensorboard:
        logdir = logdir_root() / f"{time.strftime('%Y%m%d-%H%M%S')}-run{student.next_number}-{student.token[:6]}"
    meta = {"spec": spec, "model_key": model_key, "dataset": dataset, "classes": list(train_set.classes),
            "logdir": None if logdir is None else str(logdir), "preprocessing": preprocessing_for(train_set, config),
            "recipe": recipe}
    request = JobRequest(spec, config, DataRef.of(dataset, train_set, test_set, data_dir()), meta)
    job = backend().submit(request, tensorboard_dir=logdir)
    students.registry().track(student, job)
    return job


def runs() -> list[Run]:
    return list(me().runs)


def adopt_new_runs() -> None:
    """Runs that ended since this session last looked join the comparison chart; the newest is analysed.

    Called before the widgets that show them are drawn (they are widget keys of the Train page).
    """
    table = runs()
    seen = st.session_state.get(SEEN_KEY, 0)
    new = [r.number for r in table if r.number > seen]
    if not new:
        return
    kept = {r.number for r in table}
    chosen = [n for n in st.session_state.get(OVERLAY_KEY, []) if n in kept]
    st.session_state[OVERLAY_KEY] = list(dict.fromkeys(chosen + new))[-6:]  # a run the table showed first is not doubled
    st.session_state[ANALYSIS_KEY] = new[-1]
    st.session_state[SEEN_KEY] = new[-1]


def logdir_root() -> Path:
    return data_dir() / "runs"
