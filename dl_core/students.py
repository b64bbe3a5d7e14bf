"""Students across reloads: an anonymous token → that student's runs, jobs and current model.

A Streamlit session ends with a reload or a dropped connection; a student should not lose a run
with it. The page keeps a random token in a cookie; this registry maps the token to the student's
things, server-side, bounded in time (`ttl_hours` after the last visit) and memory (`runs_kept`
runs of history, final weights for the newest runs within `weights_kept_mb`, at most
`max_students` tokens). A token is never derived from anything guessable, and one student's runs
are never listed for another: the only way in is the exact token.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from dl_core.checkpoint import Checkpoint
from dl_core.jobs import History, Job
from dl_core.training import DoneEvent, StartEvent, TrainConfig

TOKEN_BYTES = 18  # 144 random bits, URL-safe: 24 characters


@dataclass
class Run:
    """One finished (or stopped) run: what the runs table, the charts and the analysis show."""

    number: int
    model_key: str  # 'builder' or a preset name
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
    where: str = ""
    weights: bytes | None = None  # torch.save bytes of the final state_dict (dropped beyond the budget)
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What a checkpoint keeps of its run (the page and the CLI write the same summary)."""
        return run_summary(self.config, self.history, len(self.history.epochs), self.final_accuracy, self.status)


def run_summary(config: TrainConfig, history: History, epochs: int, accuracy: float | None, status: str
                ) -> dict[str, Any]:
    return {"epochs": epochs, "test_accuracy": accuracy, "status": status, "config": config.to_dict(),
            "train_loss": list(history.train_loss), "test_loss_total": list(history.test_loss_total),
            "test_accuracy_per_epoch": list(history.test_accuracy)}


def run_from_job(job: Job, number: int) -> Run:
    """The Run a finished job leaves behind (meta: model_key, dataset, classes, logdir)."""
    done: DoneEvent = job.done_event
    start = job.last(StartEvent)
    meta = job.meta
    return Run(number=number, model_key=meta.get("model_key", "course"), dataset=meta.get("dataset", ""),
               config=job.config, history=job.history, status=done.status, reason=done.reason,
               device=start.device if start else done.device, seconds=done.seconds,
               final_accuracy=done.test_accuracy, classes=list(meta.get("classes", [])),
               predictions=done.predictions, targets=done.targets, logdir=meta.get("logdir"), where=job.where,
               weights=job.weights if done.epochs_done > 0 else None,
               extra={"recipe": meta.get("recipe"), "message": done.message})


@dataclass
class Student:
    """One student's things on this server."""

    token: str
    runs: list[Run] = field(default_factory=list)  # oldest first
    jobs: list[Job] = field(default_factory=list)  # started and not yet turned into runs
    model: Checkpoint | None = None  # the current trained (or loaded) model: Save and Predict use it
    model_run: int = 0  # the run number the current model came from (0: loaded, or none)
    model_version: int = 0  # counts changes of `model`, so every session sees a new one
    last_seen: float = field(default_factory=time.monotonic)
    next_number: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_model(self, model: Checkpoint | None, run: int = 0) -> None:
        self.model, self.model_run = model, run
        self.model_version += 1

    def active_jobs(self) -> list[Job]:
        return [j for j in self.jobs if j.is_active()]


class StudentRegistry:
    """token → Student, thread-safe, bounded in time and count."""

    def __init__(self, ttl_hours: float = 2.0, runs_kept: int = 10, weights_kept_mb: int = 64,
                 max_students: int = 500) -> None:
        self.ttl = ttl_hours * 3600
        self.runs_kept = max(1, runs_kept)
        self.weights_budget = weights_kept_mb * 2**20
        self.max_students = max(1, max_students)
        self._students: dict[str, Student] = {}
        self._lock = threading.Lock()

    def new(self) -> Student:
        """A new student with a fresh random token."""
        with self._lock:
            self._purge(time.monotonic(), room=1)
            token = secrets.token_urlsafe(TOKEN_BYTES)
            student = Student(token)
            self._students[token] = student
            return student

    def get(self, token: str | None) -> Student | None:
        """The student with exactly this token (and it counts as a visit), or None."""
        if not token or not isinstance(token, str) or len(token) > 64:
            return None
        now = time.monotonic()
        with self._lock:
            self._purge(now)
            student = self._students.get(token)
            if student is not None:
                student.last_seen = now
            return student

    def __len__(self) -> int:
        with self._lock:
            return len(self._students)

    def _purge(self, now: float, room: int = 0) -> None:
        """Forget students gone longer than the TTL, then the longest-unseen beyond the cap (leaving `room`)."""
        expired = [t for t, s in self._students.items() if now - s.last_seen > self.ttl]
        over = len(self._students) - len(expired) - self.max_students + room
        if over > 0:
            by_age = sorted((s.last_seen, t) for t, s in self._students.items() if t not in expired)
            expired += [t for _, t in by_age[:over]]
        for token in expired:
            student = self._students.pop(token)
            for job in student.jobs:
                job.stop()  # nobody will come back for it

    # -- runs -------------------------------------------------------------------------------------
    def track(self, student: Student, job: Job) -> int:
        """Follow a job the student started; when it ends it becomes a Run. Returns its run number."""
        with student.lock:
            number = student.next_number
            student.next_number += 1
            student.jobs.append(job)
        job.meta["number"] = number
        job.on_end(lambda j: self._finish(student, j))
        return number

    def _finish(self, student: Student, job: Job) -> None:
        run = run_from_job(job, job.meta["number"])
        with student.lock:
            # The model first, then the run: a page that sees the run also finds its model.
            if run.weights is not None and run.status in ("finished", "stopped", "diverged"):
                student.set_model(checkpoint_of(run, job.meta), run.number)
            student.runs.append(run)
            del student.runs[:-self.runs_kept]
            self._trim_weights(student)
            if job in student.jobs:
                student.jobs.remove(job)

    def _trim_weights(self, student: Student) -> None:
        """Keep final weights for the newest runs within the budget; older runs keep their history."""
        used = 0
        for run in reversed(student.runs):
            if run.weights is None:
                continue
            used += len(run.weights)
            if used > self.weights_budget:
                run.weights = None


def checkpoint_of(run: Run, meta: dict[str, Any]) -> Checkpoint | None:
    """The run's final model as a Checkpoint (spec and preprocessing from the job's meta)."""
    if run.weights is None or "spec" not in meta:
        return None
    from dl_core.jobs import state_dict_from_bytes

    return Checkpoint(spec=meta["spec"], state_dict=state_dict_from_bytes(run.weights), classes=list(run.classes),
                      preprocessing=meta["preprocessing"], dataset=run.dataset, history=run.summary())
