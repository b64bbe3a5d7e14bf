"""The session's training job and its runs: the thread lives in dl_core.jobs, the handles live here.

- `classroom()`: one process-wide `Classroom` (how many jobs may train at once, the queue).
- The running job is held in a session-scoped `st.cache_resource`: when the browser tab closes,
  Streamlit releases it and `on_release` stops the job, so no orphan keeps the CPU busy.
- Finished runs go to `st.session_state["train.runs"]` (config, history, accuracy, seconds, device)
  and the latest model becomes the session's trained Checkpoint (Save and Predict pages use it).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st
import torch

from dl_core.checkpoint import Checkpoint
from dl_core.datasets import TensorImageDataset, data_dir
from dl_core.jobs import Classroom, History, TrainingJob
from dl_core.models import ModelSpec
from dl_core.training import DoneEvent, StartEvent, TrainConfig, preprocessing_for, seeded_model
from ui import state

RUNS = "train.runs"  # list[Run], oldest first
MAX_RUNS = 20
TOKEN = "train.session_token"
OVERLAY_KEY = "train.overlay"  # the page's multiselect of runs to compare
ANALYSIS_KEY = "train.analysis_run"  # the page's selectbox of the run to analyse


@dataclass
class Run:
    """One finished (or stopped) run, kept in the session."""

    number: int
    model_key: str  # 'builder' or a preset name: shown as t(f"train.model.{model_key}")

    dataset: str
    config: TrainConfig
    history: History
    status: str
    reason: str
    device: str
    seconds: float
    final_accuracy: float | None
    classes: list[str]
    predictions: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    logdir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@st.cache_resource(show_spinner=False)
def classroom() -> Classroom:
    """One per server process: all sessions share the CPU cores, so they share this limit."""
    return Classroom()


def _stop_job(slot: dict[str, Any]) -> None:
    job = slot.get("job")
    if job is not None:
        job.stop()


@st.cache_resource(scope="session", on_release=_stop_job, show_spinner=False)
def _session_slot() -> dict[str, Any]:
    # The session's job handle: {'job': TrainingJob | None, 'meta': {...}, 'absorbed': bool, 'token': str}.
    return {"job": None, "meta": {}, "absorbed": True, "token": None}


def _slot() -> dict[str, Any]:
    """The slot, checked against a token in session_state: a slot left from an earlier session under the
    same id (AppTest reuses one id) is stopped and emptied instead of leaking its job into this one."""
    slot = _session_slot()
    token = st.session_state.setdefault(TOKEN, uuid.uuid4().hex)
    if slot["token"] != token:
        _stop_job(slot)
        slot.update(job=None, meta={}, absorbed=True, token=token)
    return slot


def current_job() -> TrainingJob | None:
    return _slot()["job"]


def job_meta() -> dict[str, Any]:
    return _slot()["meta"]


def start_job(spec: ModelSpec, model_key: str, train_set: TensorImageDataset, test_set: TensorImageDataset,
              config: TrainConfig, dataset: str, tensorboard: bool) -> TrainingJob:
    """Build the model from `spec` (seeded), start the job in the background, keep its handle in the session.

    Raises CourseError for a bad config or a network that does not fit the images.
    """
    slot = _slot()
    old = slot["job"]
    if old is not None and old.is_active():
        old.stop()
    model = seeded_model(spec, config.seed)
    number = next_run_number()
    logdir = None
    if tensorboard:
        logdir = data_dir() / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-run{number}-{id(slot) % 10_000:04d}"
    job = TrainingJob(model, train_set, test_set, config, classroom=classroom(), tensorboard_dir=logdir)
    slot["meta"] = {"spec": spec, "model_key": model_key, "dataset": dataset, "number": number,
                    "classes": list(train_set.classes), "logdir": None if logdir is None else str(logdir),
                    "preprocessing": preprocessing_for(train_set, config)}
    slot["job"], slot["absorbed"] = job, False
    job.start()
    return job


def runs() -> list[Run]:
    return st.session_state.setdefault(RUNS, [])


def next_run_number() -> int:
    existing = runs()
    return (existing[-1].number + 1) if existing else 1


def needs_absorb() -> bool:
    """True when the session's job has ended but its run is not in the table yet."""
    slot = _slot()
    return slot["job"] is not None and not slot["absorbed"] and slot["job"].done_event is not None


def absorb_finished() -> Run | None:
    """If the session's job has ended and is not yet in the run table: add it, set the trained model. Once."""
    slot = _slot()
    job: TrainingJob | None = slot["job"]
    if job is None or slot["absorbed"] or job.done_event is None:
        return None
    job.join(timeout=2)
    slot["absorbed"] = True
    done: DoneEvent = job.done_event
    meta = slot["meta"]
    start = job.last(StartEvent)
    cfg = job.config
    run = Run(
        number=meta["number"], model_key=meta["model_key"], dataset=meta["dataset"], config=cfg, history=job.history,
        status=done.status, reason=done.reason, device=start.device if start else done.device,
        seconds=done.seconds, final_accuracy=done.test_accuracy, classes=meta["classes"],
        predictions=done.predictions, targets=done.targets, logdir=meta["logdir"],
    )
    table = runs()
    table.append(run)
    del table[:-MAX_RUNS]
    # The new run joins the comparison chart and becomes the one analysed (widget keys of the Train page).
    kept = {r.number for r in table}
    chosen = [n for n in st.session_state.get(OVERLAY_KEY, []) if n in kept]
    st.session_state[OVERLAY_KEY] = chosen + [run.number]
    st.session_state[ANALYSIS_KEY] = run.number
    if done.epochs_done > 0 and done.status in ("finished", "stopped", "diverged"):
        summary = {"epochs": done.epochs_done, "test_accuracy": done.test_accuracy, "status": done.status,
                   "config": cfg.to_dict(), "train_loss": list(job.history.train_loss),
                   "test_loss_total": list(job.history.test_loss_total),
                   "test_accuracy_per_epoch": list(job.history.test_accuracy)}
        state_dict = {k: v.detach().cpu().contiguous().clone() for k, v in job.model.state_dict().items()}
        state.set_trained(Checkpoint(spec=meta["spec"], state_dict=state_dict, classes=meta["classes"],
                                     preprocessing=meta["preprocessing"], dataset=meta["dataset"], history=summary))
    return run


def logdir_root() -> Path:
    return data_dir() / "runs"
