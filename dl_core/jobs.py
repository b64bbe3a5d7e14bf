"""A training run in the background: a thread that iterates `training.train(...)`, never a UI call.

The page starts a `TrainingJob`, then polls `job.events_since(cursor)` about once a second and
draws what it gets; `job.stop()` sets a flag the loop checks before every step. A process-wide
`Classroom` limits how many jobs train at once (torch's thread pool is shared by the whole
process: 16 jobs on default threads each ran 20× slower than one alone) and tells waiting
students their place in the queue.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dl_core.datasets import TensorImageDataset
from dl_core.training import DoneEvent, EpochEvent, StepEvent, TrainConfig, TrainEvent, check_model_fits, train

ENV_MAX_JOBS = "TORCH_CLASSROOM_MAX_JOBS"


def max_jobs_from_env(default: int | None = None) -> int:
    """TORCH_CLASSROOM_MAX_JOBS (a whole number ≥ 1), else the number of CPU cores."""
    fallback = default or os.cpu_count() or 1
    try:
        value = int(os.environ.get(ENV_MAX_JOBS, ""))
    except ValueError:
        return fallback
    return value if value >= 1 else fallback


class Classroom:
    """At most `max_jobs` trainings at once, first come first served; threads = max(1, cores // running)."""

    def __init__(self, max_jobs: int | None = None, cores: int | None = None) -> None:
        self.max_jobs = max_jobs or max_jobs_from_env()
        self.cores = cores or os.cpu_count() or 1
        self._cond = threading.Condition()
        self._running: set[int] = set()
        self._queue: list[int] = []

    def acquire(self, ticket: int, cancelled: Callable[[], bool]) -> int | None:
        """Block until `ticket` may train; returns its thread count, or None if cancelled while waiting."""
        with self._cond:
            self._queue.append(ticket)
            try:
                while not (len(self._running) < self.max_jobs and self._queue[0] == ticket):
                    if cancelled():
                        return None
                    self._cond.wait(timeout=0.1)
                self._running.add(ticket)
                # Set once per job: the cores shared among the jobs running now (this one included).
                return max(1, self.cores // len(self._running))
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()

    def release(self, ticket: int) -> None:
        with self._cond:
            self._running.discard(ticket)
            self._cond.notify_all()

    def position(self, ticket: int) -> int:
        """1-based place in the waiting queue; 0 when not waiting."""
        with self._cond:
            return self._queue.index(ticket) + 1 if ticket in self._queue else 0

    def running(self) -> int:
        with self._cond:
            return len(self._running)


@dataclass
class History:
    """What a run produced, in arrays the charts plot directly."""

    steps: list[int] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    step_ips: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_loss_total: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)

    def add(self, event: TrainEvent) -> None:
        if isinstance(event, StepEvent):
            self.steps.append(event.step)
            self.step_loss.append(event.loss)
            self.step_ips.append(event.images_per_sec)
            self.step_seconds.append(event.seconds)
        elif isinstance(event, EpochEvent):
            self.epochs.append(event.epoch)
            self.train_loss.append(event.train_loss)
            self.test_loss.append(event.test_loss)
            self.test_loss_total.append(event.test_loss_total)
            self.test_accuracy.append(event.test_accuracy)
            self.epoch_seconds.append(event.seconds)

    def to_csv(self) -> str:
        """One row per logged step and per epoch: kind,epoch,step,train_loss,images_per_sec,test_loss,... ."""
        lines = ["kind,epoch,step,train_loss,images_per_sec,seconds,test_loss,test_loss_total,test_accuracy"]
        for s, loss, ips, sec in zip(self.steps, self.step_loss, self.step_ips, self.step_seconds):
            lines.append(f"step,,{s},{loss:.6g},{ips:.1f},{sec:.3f},,,")
        for e, tl, te, tt, acc, sec in zip(self.epochs, self.train_loss, self.test_loss, self.test_loss_total,
                                           self.test_accuracy, self.epoch_seconds):
            lines.append(f"epoch,{e},,{tl:.6g},,{sec:.3f},{te:.6g},{tt:.6g},{acc:.6g}")
        return "\n".join(lines) + "\n"


class TensorBoardLog:
    """The course's SummaryWriter, tags `train_loss` (per logged step), `test_loss` (整体损失), `test_accuracy`."""

    def __init__(self, logdir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # optional dependency, imported only when asked

        self.logdir = logdir
        self.writer = SummaryWriter(str(logdir))

    def add(self, event: TrainEvent) -> None:
        if isinstance(event, StepEvent):
            self.writer.add_scalar("train_loss", event.loss, event.step)
        elif isinstance(event, EpochEvent):
            self.writer.add_scalar("test_loss", event.test_loss_total, event.epoch - 1)
            self.writer.add_scalar("test_accuracy", event.test_accuracy, event.epoch - 1)

    def close(self) -> None:
        self.writer.close()


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


_TICKETS = iter(range(1, 2**62))  # itertools-style counter: next() is atomic under the GIL


class TrainingJob:
    """One training run on a background thread. Poll `events_since`; `stop()` ends it within a step."""

    def __init__(self, model: nn.Module, train_set: TensorImageDataset, test_set: TensorImageDataset,
                 config: TrainConfig, classroom: Classroom | None = None, threads: int | None = None,
                 tensorboard_dir: Path | None = None, meta: dict[str, Any] | None = None) -> None:
        config.validate(len(train_set), len(test_set))  # a bad config is refused before any thread starts
        check_model_fits(model, train_set)
        self.model = model
        self.train_set, self.test_set, self.config = train_set, test_set, config
        self.classroom = classroom
        self.threads = threads
        self.tensorboard_dir = tensorboard_dir
        self.meta = dict(meta or {})
        self.ticket = next(_TICKETS)
        self.history = History()
        self.created = time.time()
        self._events: list[TrainEvent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._state = "new"  # new → queued → running → done
        self._thread = threading.Thread(target=self._run, name=f"train-job-{self.ticket}", daemon=True)

    # -- control -------------------------------------------------------------------------------
    def start(self) -> "TrainingJob":
        self._state = "queued"
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the run to end; the loop checks the flag before every step."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- what the page polls ---------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def is_active(self) -> bool:
        return self._state in ("queued", "running")

    def queue_position(self) -> int:
        return self.classroom.position(self.ticket) if self.classroom and self._state == "queued" else 0

    def events_since(self, cursor: int) -> tuple[list[TrainEvent], int]:
        """Events after `cursor` and the new cursor (the buffer only grows; readers keep their place)."""
        with self._lock:
            new = self._events[cursor:]
            return new, len(self._events)

    def events(self) -> list[TrainEvent]:
        with self._lock:
            return list(self._events)

    def last(self, kind: type) -> Any:
        with self._lock:
            for event in reversed(self._events):
                if isinstance(event, kind):
                    return event
        return None

    @property
    def done_event(self) -> DoneEvent | None:
        return self.last(DoneEvent)

    # -- the thread ------------------------------------------------------------------------------
    def _emit(self, event: TrainEvent) -> None:
        with self._lock:
            self._events.append(event)
            self.history.add(event)

    def _run(self) -> None:
        threads = self.threads
        if self.classroom is not None:
            granted = self.classroom.acquire(self.ticket, self._stop.is_set)
            if granted is None:
                self._emit(DoneEvent("stopped", "stop_requested", 0, 0, 0.0, "cpu", None))
                self._state = "done"
                return
            threads = threads or granted
        self._state = "running"
        board = None
        try:
            if threads:
                torch.set_num_threads(threads)  # this thread's intra-op pool: jobs × threads ≤ cores
            if self.tensorboard_dir is not None:
                board = TensorBoardLog(self.tensorboard_dir)
            for event in train(self.model, self.train_set, self.test_set, self.config, self._stop):
                self._emit(event)
                if board is not None:
                    board.add(event)
        except Exception as exc:  # noqa: BLE001 - the page shows it as a failed run, never a traceback
            self._emit(DoneEvent("failed", "error", 0, 0, 0.0, "cpu", None, f"{type(exc).__name__}: {exc}"))
        finally:
            if board is not None:
                board.close()
            if self.classroom is not None:
                self.classroom.release(self.ticket)
            self._state = "done"
