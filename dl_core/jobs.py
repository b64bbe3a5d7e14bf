"""Training runs as jobs: one handle the pages poll, one queue, whatever runs the steps.

A job is described by data (`JobRequest`: the model spec, the TrainConfig, a dataset reference),
never by live objects, so the same request can run in a thread of this process (`ThreadBackend`,
for tests and notebooks), in a worker process (`dl_core.workers.ProcessBackend`, the server's
default) or on a Ray cluster (`dl_core.cluster`). Every backend iterates `training.train(...)`
through `drive(...)`: one engine. The page holds a `Job`: `events_since(cursor)` returns what
happened since it last looked, `stop()` ends the run within one step.

`Classroom` is the queue: at most `max_jobs` runs at once, first come first served, and the CPU
cores split between the runs going now (processes × torch threads ≤ cores, re-split when a run
starts or ends); it tells a waiting student their place and when their run should start,
from the speed measured on this server.
"""
from __future__ import annotations

import heapq
import io
import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dl_core.datasets import DATASETS, TensorImageDataset, load_dataset
from dl_core.errors import CourseError
from dl_core.models import ModelSpec, build_model
from dl_core.training import (
    DoneEvent, EpochEvent, StepEvent, TrainConfig, TrainEvent, check_model_fits, seeded_model, train,
)

ENV_MAX_JOBS = "TORCH_CLASSROOM_MAX_JOBS"


def max_jobs_from_env(default: int | None = None) -> int:
    """TORCH_CLASSROOM_MAX_JOBS (a whole number ≥ 1), else the number of CPU cores."""
    fallback = default or os.cpu_count() or 1
    try:
        value = int(os.environ.get(ENV_MAX_JOBS, ""))
    except ValueError:
        return fallback
    return value if value >= 1 else fallback


# ----------------------------------------------------------------------------------------------
# What a run produced
# ----------------------------------------------------------------------------------------------
def _is_probe(event: TrainEvent) -> bool:
    return type(event).__name__ == "ProbeEvent"


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
    epoch_steps: list[int] = field(default_factory=list)  # the step count at the end of each epoch
    probe_steps: list[int] = field(default_factory=list)  # live accuracy on a fixed slice, during epochs
    probe_accuracy: list[float] = field(default_factory=list)
    probe_loss: list[float] = field(default_factory=list)

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
            self.epoch_steps.append(self.steps[-1] if self.steps else 0)
        elif _is_probe(event):
            self.probe_steps.append(event.step)
            self.probe_accuracy.append(event.accuracy)
            self.probe_loss.append(event.loss)

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


# ----------------------------------------------------------------------------------------------
# What a job is: data, so any backend can run it
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataRef:
    """Where a run's images come from: a built-in dataset by name (each worker reads it once from the
    data folder), or the tensors themselves (a student's own upload: sent with the job)."""

    name: str
    root: str | None = None
    train: TensorImageDataset | None = None
    test: TensorImageDataset | None = None

    @staticmethod
    def of(name: str, train_set: TensorImageDataset, test_set: TensorImageDataset, root: str | Path | None) -> DataRef:
        if name in DATASETS and root is not None:
            return DataRef(name, str(root), train_set, test_set)
        return DataRef(name, None, train_set, test_set)

    @property
    def builtin(self) -> bool:
        return self.root is not None

    def shipped(self) -> DataRef:
        """What crosses a process boundary: the name only for built-in data, else the tensors."""
        return DataRef(self.name, self.root) if self.builtin else self

    def load(self, cache: dict[tuple[str, str], tuple[TensorImageDataset, TensorImageDataset]] | None = None
             ) -> tuple[TensorImageDataset, TensorImageDataset]:
        if self.train is not None and self.test is not None:
            return self.train, self.test
        key = (self.name, self.root or "")
        if cache is not None and key in cache:
            return cache[key]
        root = Path(self.root) if self.root else None
        pair = (load_dataset(self.name, True, root=root, download=False),
                load_dataset(self.name, False, root=root, download=False))
        if cache is not None:
            while len(cache) >= 2:  # a worker keeps the two datasets used last (~180 MB each at most)
                cache.pop(next(iter(cache)))
            cache[key] = pair
        return pair


@dataclass(frozen=True)
class JobRequest:
    """One training run, as data: rebuilt and run by whichever backend takes it."""

    spec: ModelSpec
    config: TrainConfig
    data: DataRef
    meta: dict[str, Any] = field(default_factory=dict)  # what the page wants back (model key, run number…)

    def images_total(self) -> int:
        """Training images over all epochs plus the test passes: the work to estimate times from."""
        n_train = self.config.effective_train_size(len(self.data.train)) if self.data.train is not None else 0
        n_test = self.config.effective_test_size(len(self.data.test)) if self.data.test is not None else 0
        return self.config.epochs * (n_train + n_test // 3)  # a test image costs about a third of a step


def check_request(request: JobRequest) -> None:
    """Refuse a bad config or a network that does not fit the images, before anything is queued.

    The network is built on the meta device: its shapes are checked without allocating its weights.
    """
    train_set, test_set = request.data.train, request.data.test
    if train_set is None or test_set is None:
        raise CourseError("train.no_data", "the training set is empty")
    request.config.validate(len(train_set), len(test_set))
    with torch.device("meta"):
        model = build_model(request.spec)
    check_model_fits(model, TensorImageDataset(torch.zeros((1, *train_set.images.shape[1:]), dtype=torch.uint8),
                                               torch.zeros(1, dtype=torch.long), train_set.classes))


def state_dict_bytes(model: nn.Module) -> bytes:
    """The weights as torch.save bytes (CPU): cheap to keep, to send between processes, to load back."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def state_dict_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def drive(model: nn.Module, train_set: TensorImageDataset, test_set: TensorImageDataset, config: TrainConfig,
          stop: Callable[[], bool], threads: Callable[[], int | None], emit: Callable[[TrainEvent], None],
          save_weights: Callable[[int, bytes], None]) -> None:
    """Iterate the one engine, `training.train`, for any backend: events out, weights after every epoch.

    `threads()` is read before every step: when the queue re-splits the cores, the run follows.
    Any exception becomes a 'failed' DoneEvent; the weights of the last finished epoch stay saved.
    """
    current: list[int | None] = [None]

    def check() -> bool:
        wanted = threads()
        if wanted and wanted != current[0]:
            torch.set_num_threads(wanted)
            current[0] = wanted
        return stop()

    check()
    saved = 0  # the epoch whose weights went out last: a finished run's are not serialized a second time
    try:
        for event in train(model, train_set, test_set, config, check):
            if isinstance(event, EpochEvent):
                save_weights(event.epoch, state_dict_bytes(model))
                saved = event.epoch
            elif isinstance(event, DoneEvent) and event.epochs_done > 0 and (
                    event.status != "finished" or event.epochs_done != saved):  # stopped mid-epoch: its weights now
                save_weights(event.epochs_done, state_dict_bytes(model))
            emit(event)
    except Exception as exc:  # noqa: BLE001 - the page shows a failed run, never a traceback
        emit(DoneEvent("failed", "error", 0, 0, 0.0, "cpu", None, f"{type(exc).__name__}: {exc}"))


# ----------------------------------------------------------------------------------------------
# The handle the page polls
# ----------------------------------------------------------------------------------------------
_TICKETS = itertools.count(1)  # next() is atomic under the GIL


class Job:
    """One run as the page sees it: state, events (append-only), history, the latest weights, stop."""

    def __init__(self, request: JobRequest | None, tensorboard_dir: Path | None = None) -> None:
        self.request = request
        self.config: TrainConfig = request.config if request is not None else TrainConfig()
        self.meta: dict[str, Any] = dict(request.meta) if request is not None else {}
        self.ticket = next(_TICKETS)
        self.history = History()
        self.created = time.time()
        self.started: float | None = None  # monotonic, when it left the queue
        self.where = ""  # 'thread', 'worker process 1 (pid 1234)', 'Ray actor on 10.0.0.5'
        self.threads_wanted: int | None = None  # set by the Classroom when the cores are re-split
        self.work = request.images_total() if request is not None else 0
        self.weights: bytes | None = None  # the last finished epoch's state_dict (torch.save bytes)
        self.weights_epoch = 0
        self.tensorboard_dir = tensorboard_dir
        self._board: TensorBoardLog | None = None
        self._events: list[TrainEvent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._state = "new"  # new → queued → running → done
        self._on_end: list[Callable[[Job], None]] = []
        self._classroom: Classroom | None = None  # the queue it waits in
        self._on_stop: list[Callable[[Job], None]] = []  # the backend's: reach the running run

    # -- what the page reads --------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def is_active(self) -> bool:
        return self._state in ("queued", "running")

    def events_since(self, cursor: int) -> tuple[list[TrainEvent], int]:
        """Events after `cursor` and the new cursor (the buffer only grows; readers keep their place)."""
        with self._lock:
            return self._events[cursor:], len(self._events)

    def events(self) -> list[TrainEvent]:
        with self._lock:
            return list(self._events)

    def cursor(self) -> int:
        with self._lock:
            return len(self._events)

    def last(self, kind: type) -> Any:
        with self._lock:
            for event in reversed(self._events):
                if isinstance(event, kind):
                    return event
        return None

    @property
    def done_event(self) -> DoneEvent | None:
        return self.last(DoneEvent)

    def state_dict(self) -> dict[str, torch.Tensor] | None:
        """The weights of the last finished epoch (the final weights once the run is done)."""
        data = self.weights
        return None if data is None else state_dict_from_bytes(data)

    def progress(self) -> float:
        step = self.last(StepEvent)
        return step.progress if step is not None else 0.0

    def remaining_seconds(self, speed: float | None) -> float | None:
        """Time left: from this run's own pace once it has one, else its work at the server's speed."""
        if self._state == "done":
            return 0.0
        step = self.last(StepEvent)
        if step is not None and step.progress > 0.02:
            return step.seconds / step.progress * (1 - step.progress)
        return self.work / speed if speed else None

    # -- control -------------------------------------------------------------------------------
    def queue_position(self) -> int:
        """1-based place in the queue while waiting; 0 otherwise."""
        room = self._classroom
        return room.position(self) if room is not None and self._state == "queued" else 0

    def stop(self) -> None:
        """Ask the run to end; the loop checks the flag before every step. A waiting run leaves the queue."""
        self._stop.set()
        if self._state == "queued" and self._classroom is not None and self._classroom.cancel(self):
            self._emit(DoneEvent("stopped", "stop_requested", 0, 0, 0.0, "cpu", None))
            self._end()
            return
        for callback in list(self._on_stop):
            callback(self)

    def on_stop(self, callback: Callable[[Job], None]) -> None:
        """Call `callback(job)` when Stop is pressed on a running job (a backend reaching its worker)."""
        self._on_stop.append(callback)

    def join(self, timeout: float | None = None) -> bool:
        return self._ended.wait(timeout)

    def on_end(self, callback: Callable[[Job], None]) -> None:
        """Call `callback(job)` once the run has ended (at once if it already has)."""
        with self._lock:
            if self._state != "done":
                self._on_end.append(callback)
                return
        callback(self)

    # -- for backends ------------------------------------------------------------------------------
    def _emit(self, event: TrainEvent) -> None:
        if self.tensorboard_dir is not None and self._board is None:
            try:
                self._board = TensorBoardLog(self.tensorboard_dir)
            except Exception:  # noqa: BLE001 - TensorBoard is optional; the run goes on without it
                self.tensorboard_dir = None
        with self._lock:
            self._events.append(event)
            self.history.add(event)
        if self._board is not None:
            self._board.add(event)

    def _set_weights(self, epoch: int, data: bytes) -> None:
        self.weights, self.weights_epoch = data, epoch

    def _running(self, where: str) -> None:
        self.started = time.monotonic()
        self.where = where
        self._state = "running"

    def _end(self) -> None:
        with self._lock:
            if self._state == "done":
                return
            if not any(isinstance(e, DoneEvent) for e in self._events):
                self._events.append(DoneEvent("failed", "error", self.weights_epoch, 0, 0.0, "cpu", None,
                                              "the run ended without a result"))
            self._state = "done"
            callbacks, self._on_end = self._on_end, []
        if self._board is not None:
            self._board.close()
        self._ended.set()
        for callback in callbacks:
            try:
                callback(self)
            except Exception:  # noqa: BLE001 - a listener's bug must not lose the run
                pass


# ----------------------------------------------------------------------------------------------
# The queue
# ----------------------------------------------------------------------------------------------
class Classroom:
    """At most `max_jobs` runs at once, first come first served; each running job gets
    max(1, cores // running) torch threads, re-split whenever a run starts or ends."""

    def __init__(self, max_jobs: int | None = None, cores: int | None = None) -> None:
        self.max_jobs = max_jobs or max_jobs_from_env()
        self.cores = cores or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._running: list[Job] = []
        self._queue: list[tuple[Job, Callable[[int], None]]] = []
        self._speed: float | None = None  # images/s of one run, measured on this server (moving average)

    def submit(self, job: Job, launch: Callable[[int], None]) -> None:
        """Queue `job`; `launch(threads)` is called (here or when a slot frees) once it may run."""
        with self._lock:
            job._state = "queued"
            job._classroom = self
            self._queue.append((job, launch))
        self._pump()

    def release(self, job: Job) -> None:
        """A run has ended: its slot goes to the next in the queue; the cores are re-split."""
        with self._lock:
            if job in self._running:
                self._running.remove(job)
                self._learn_speed(job)
        self._pump()

    def cancel(self, job: Job) -> bool:
        """Take a waiting job out of the queue (True), or False if it is already running or gone."""
        with self._lock:
            for i, (queued, _) in enumerate(self._queue):
                if queued is job:
                    del self._queue[i]
                    return True
        return False

    def _pump(self) -> None:
        launches = []
        with self._lock:
            while self._queue and len(self._running) < self.max_jobs:
                job, launch = self._queue.pop(0)
                self._running.append(job)
                launches.append((job, launch))
            threads = self.threads_now()
            for job in self._running:
                job.threads_wanted = threads
        for job, launch in launches:
            try:
                launch(job.threads_wanted or 1)
            except Exception as exc:  # noqa: BLE001 - a launch that fails ends that run, not the queue
                job._emit(DoneEvent("failed", "error", 0, 0, 0.0, "cpu", None, f"{type(exc).__name__}: {exc}"))
                job._end()
                self.release(job)

    def threads_now(self) -> int:
        return max(1, self.cores // max(1, len(self._running)))

    def position(self, job: Job) -> int:
        """1-based place in the waiting queue; 0 when not waiting."""
        with self._lock:
            for i, (queued, _) in enumerate(self._queue):
                if queued is job:
                    return i + 1
        return 0

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    def _learn_speed(self, job: Job) -> None:
        done = job.done_event
        if done is None or job.started is None or done.steps == 0:
            return
        seconds = time.monotonic() - job.started
        if seconds > 1 and job.work:
            measured = job.work * max(job.progress(), 1e-3) / seconds
            self._speed = measured if self._speed is None else 0.7 * self._speed + 0.3 * measured

    def speed(self) -> float | None:
        """Images/s one run makes on this server now: the running runs' own pace, else past runs'."""
        with self._lock:
            running = list(self._running)
            learned = self._speed
        paces = []
        for job in running:
            step = job.last(StepEvent)
            if step is not None and step.progress > 0.02 and job.work:
                paces.append(job.work * step.progress / max(step.seconds, 1e-3))
        if paces:
            return sum(paces) / len(paces)
        return learned

    def estimate_start(self, job: Job) -> float | None:
        """Seconds until a waiting `job` should start: the running runs' time left, then the runs ahead
        of it in the queue, slot by slot. None while nothing has been measured yet."""
        speed = self.speed()
        with self._lock:
            running = list(self._running)
            ahead = []
            for queued, _ in self._queue:
                if queued is job:
                    break
                ahead.append(queued)
            else:
                return 0.0
        free_at = []
        for other in running:
            left = other.remaining_seconds(speed)
            if left is None:
                return None
            free_at.append(left)
        free_at += [0.0] * max(0, self.max_jobs - len(free_at))
        heapq.heapify(free_at)
        for other in ahead:
            if not speed:
                return None
            heapq.heappush(free_at, heapq.heappop(free_at) + other.work / speed)
        return heapq.heappop(free_at) if free_at else 0.0


class QueuedBackend:
    """What every backend shares: check a request, queue it, launch it when a slot frees.

    Subclasses set `self.classroom` and implement `_launch(job, threads)` and `_stop(job)`.
    """

    classroom: Classroom

    def submit(self, request: JobRequest, tensorboard_dir: Path | None = None) -> Job:
        check_request(request)
        job = Job(request, tensorboard_dir)
        job.on_stop(self._stop)
        self.classroom.submit(job, lambda threads: self._launch(job, threads))
        return job

    def _launch(self, job: Job, threads: int) -> None:
        raise NotImplementedError

    def _stop(self, job: Job) -> None:
        raise NotImplementedError


# ----------------------------------------------------------------------------------------------
# In this process: a thread per run (tests, notebooks, TORCH_CLASSROOM_BACKEND=thread)
# ----------------------------------------------------------------------------------------------
class TrainingJob(Job):
    """One run of a model you already have, on a background thread. Poll `events_since`; `stop()` ends it."""

    def __init__(self, model: nn.Module, train_set: TensorImageDataset, test_set: TensorImageDataset,
                 config: TrainConfig, classroom: Classroom | None = None, threads: int | None = None,
                 tensorboard_dir: Path | None = None, meta: dict[str, Any] | None = None,
                 request: JobRequest | None = None) -> None:
        config.validate(len(train_set), len(test_set))  # a bad config is refused before any thread starts
        check_model_fits(model, train_set)
        super().__init__(request, tensorboard_dir)
        self.config = config
        self.meta.update(meta or {})
        if request is None:
            self.work = config.epochs * (config.effective_train_size(len(train_set))
                                         + config.effective_test_size(len(test_set)) // 3)
        self.model = model
        self.train_set, self.test_set = train_set, test_set
        self.classroom = classroom
        self.threads = threads
        self._thread: threading.Thread | None = None

    def start(self) -> TrainingJob:
        if self.classroom is not None:
            self.classroom.submit(self, self._launch)
        else:
            self._state = "queued"
            self._launch(self.threads or 0)
        return self

    def _launch(self, threads: int) -> None:
        self._running("thread")
        self._thread = threading.Thread(target=self._run, name=f"train-job-{self.ticket}", daemon=True)
        self._thread.start()

    def _threads(self) -> int | None:
        return self.threads or self.threads_wanted

    def _run(self) -> None:
        try:
            drive(self.model, self.train_set, self.test_set, self.config, self._stop.is_set, self._threads,
                  self._emit, self._set_weights)
        finally:
            if self.classroom is not None:
                self.classroom.release(self)
            self._end()


class ThreadBackend:
    """Runs each request on a thread of this process, through the shared queue."""

    kind = "thread"

    def __init__(self, max_jobs: int | None = None, cores: int | None = None) -> None:
        self.classroom = Classroom(max_jobs, cores)

    def submit(self, request: JobRequest, tensorboard_dir: Path | None = None) -> TrainingJob:
        check_request(request)
        train_set, test_set = request.data.load()
        model = seeded_model(request.spec, request.config.seed)
        return TrainingJob(model, train_set, test_set, request.config, classroom=self.classroom,
                           tensorboard_dir=tensorboard_dir, request=request).start()

    def describe(self) -> str:
        return "thread"

    def shutdown(self) -> None:
        pass

