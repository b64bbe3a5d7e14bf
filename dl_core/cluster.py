"""Training on a Ray cluster: each run is a Ray actor iterating the same engine (`jobs.drive` → `training.train`).

Chosen by the classroom configuration (`backend = "ray"`, `ray_address = "auto"` or `"ray://host:10001"`);
`import ray` happens only here, and this module is imported only when that backend is configured
(`ui.jobs._make_backend`), so without Ray installed nothing changes.

- One actor per run: a threaded actor (`max_concurrency` 4), so `stop`, `set_threads` and
  `events_since` are served while its `run` method trains. With GPUs in the cluster the actor asks
  for a fraction of one (`ray_gpus_per_job`, e.g. 0.1: ten small runs share a GPU); otherwise it
  trains on CPU threads, as many as the queue gives it (re-split when a run starts or ends).
- The dataset goes to the object store once per dataset (`ray.put`, cached here by name and data
  folder for the built-in sets, by object identity for a student's own images), not once per run.
- A poller thread in the web process asks the actor for its new events every `POLL_SECONDS` and feeds
  them to the `Job` in order, with the weights of each finished epoch. Stop reaches the actor at once
  (the engine checks it before every step).
- A worker lost mid-run (the node went away, the actor was killed, out of memory) ends the run as
  'failed' / 'worker_lost' with a clear message; the last finished epoch's weights stay with the job.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from dl_core.classroom import ClassroomConfig
from dl_core.errors import CourseError
from dl_core.jobs import Classroom, DataRef, Job, JobRequest, QueuedBackend, drive
from dl_core.training import DoneEvent, StartEvent, StepEvent

POLL_SECONDS = 0.25  # how often the web process asks a running actor for its new events
CALL_TIMEOUT = 60.0  # seconds to wait for one answer from an actor before the run counts as lost
PLACE_TIMEOUT = 600.0  # seconds a new actor may wait for the cluster to find it a place
DATASETS_KEPT = 4  # object-store references kept for reuse (each dataset is ~180 MB at most)
PACKAGE_DIR = Path(__file__).resolve().parent

try:
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError, RayError
except ImportError:  # pragma: no cover - exercised where Ray is not installed
    ray = None


class RunActor:
    """One run on the cluster (wrapped with `ray.remote` when the backend starts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Any] = []
        self._weights: tuple[int, bytes] | None = None  # the last finished epoch's, once its event is out
        self._pending: tuple[int, bytes] | None = None
        self._stop = False
        self._threads = 0
        self._finished = False

    def where(self) -> str:
        import ray as _ray

        gpus = _ray.get_gpu_ids()
        node_id = _ray.get_runtime_context().get_node_id()
        address = next((n["NodeManagerAddress"] for n in _ray.nodes() if n.get("NodeID") == node_id),
                       _ray.util.get_node_ip_address())  # the address the cluster knows this node by
        place = f"Ray actor on {address} (pid {os.getpid()})"
        return place + (f", GPU {', '.join(str(g) for g in gpus)}" if gpus else "")

    def run(self, request: JobRequest, datasets: tuple, threads: int) -> None:
        import torch

        from dl_core.training import seeded_model

        self._threads = self._threads or threads
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        try:
            train_set, test_set = datasets
            model = seeded_model(request.spec, request.config.seed)
        except Exception as exc:  # noqa: BLE001 - reported as a failed run, never a traceback
            self._emit(DoneEvent("failed", "error", 0, 0, 0.0, "cpu", None, f"{type(exc).__name__}: {exc}"))
        else:
            drive(model, train_set, test_set, request.config, stop=lambda: self._stop,
                  threads=lambda: self._threads or None, emit=self._emit, save_weights=self._save)
        with self._lock:
            self._finished = True

    def _emit(self, event: Any) -> None:
        with self._lock:
            self._events.append(event)
            if self._pending is not None:  # an epoch's weights go out with its event, never before it
                self._weights, self._pending = self._pending, None

    def _save(self, epoch: int, data: bytes) -> None:
        with self._lock:
            self._pending = (epoch, data)

    def events_since(self, cursor: int, weights_epoch: int = 0) -> tuple[list, int, tuple[int, bytes] | None, bool]:
        """New events, the new cursor, the newest weights if newer than `weights_epoch`, and whether the run
        has ended (read together: once it says ended, these are the last events)."""
        with self._lock:
            weights = self._weights if self._weights is not None and self._weights[0] > weights_epoch else None
            return self._events[cursor:], len(self._events), weights, self._finished

    def stop(self) -> None:
        self._stop = True

    def set_threads(self, threads: int) -> None:
        self._threads = int(threads)


def _require_ray() -> Any:
    if ray is None:
        raise CourseError("classroom.ray_missing",
                          "the ray backend needs Ray installed: pip install -r requirements-cluster.txt")
    return ray


class RayBackend(QueuedBackend):
    """Runs each request as an actor on a Ray cluster, through the shared queue (same shape as ProcessBackend)."""

    kind = "ray"

    def __init__(self, cfg: ClassroomConfig) -> None:
        _require_ray()
        self.cfg = cfg
        self.address = cfg.ray_address or "auto"
        self._owns_ray = False
        if not ray.is_initialized():
            try:
                # py_modules ships this package to the cluster's workers (torch must be installed there).
                ray.init(address=self.address, namespace="torch_classroom", log_to_driver=False,
                         runtime_env={"py_modules": [str(PACKAGE_DIR)]})
            except Exception as exc:
                raise CourseError("classroom.ray_unreachable", "cannot reach the Ray cluster at {address}: {reason}",
                                  address=self.address, reason=f"{type(exc).__name__}: {exc}") from exc
            self._owns_ray = True
        resources = ray.cluster_resources()
        self.cpus = max(1, int(resources.get("CPU", 1)))
        self.gpus = float(resources.get("GPU", 0))
        self.gpus_per_job = cfg.ray_gpus_per_job if self.gpus > 0 and cfg.ray_gpus_per_job > 0 else 0.0
        if cfg.max_jobs:
            max_jobs = cfg.max_jobs
        elif self.gpus_per_job:
            max_jobs = max(1, min(self.cpus, int(self.gpus / self.gpus_per_job + 1e-9)))  # each actor holds 1 CPU
        else:
            max_jobs = self.cpus
        self.classroom = Classroom(max_jobs, self.cpus)
        self.closing = False
        self._actor_class = ray.remote(RunActor)
        self._lock = threading.Lock()
        self._actors: dict[int, Any] = {}  # job ticket → its actor, while it runs
        self._jobs: dict[int, Job] = {}
        self._data: OrderedDict[tuple, tuple[Any, tuple]] = OrderedDict()  # key → (object ref, what pins the key)
        self.puts = 0  # datasets sent to the object store (tests: once per dataset, not once per run)

    # -- the object store ------------------------------------------------------------------------
    def _dataset_ref(self, data: DataRef) -> Any:
        """The object-store reference of a run's (train, test) pair: put once per dataset, then reused."""
        train_set, test_set = data.train, data.test
        if data.builtin:
            key: tuple = ("builtin", data.name, data.root, len(train_set), len(test_set))
        else:  # a student's own images: the same objects are the same data (kept pinned below while cached)
            key = ("own", id(train_set), id(test_set))
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key][0]
        ref = ray.put((train_set, test_set))
        with self._lock:
            self.puts += 1
            self._data[key] = (ref, (train_set, test_set))
            while len(self._data) > DATASETS_KEPT:
                self._data.popitem(last=False)  # a run still using it keeps its object alive (Ray counts refs)
        return ref

    # -- runs --------------------------------------------------------------------------------------
    def _launch(self, job: Job, threads: int) -> None:
        job._running("Ray actor (starting)")
        options: dict[str, Any] = {"max_concurrency": 4, "num_cpus": 1}
        if self.gpus_per_job:
            options["num_gpus"] = self.gpus_per_job
        actor = self._actor_class.options(**options).remote()
        with self._lock:
            self._actors[job.ticket] = actor
            self._jobs[job.ticket] = job
        if job.stop_requested:
            actor.stop.remote()
        threading.Thread(target=self._follow, args=(job, actor, threads), name=f"ray-run-{job.ticket}",
                         daemon=True).start()
        self._resplit()

    def _follow(self, job: Job, actor: Any, threads: int) -> None:
        """The poller: the run's events, in order, and its weights after each epoch, until it ends or is lost."""
        cursor, started = 0, time.monotonic()
        try:
            request = JobRequest(job.request.spec, job.request.config, DataRef(job.request.data.name), {})
            actor.run.remote(request, self._dataset_ref(job.request.data), threads)
            job.where = ray.get(actor.where.remote(), timeout=PLACE_TIMEOUT)
            while True:
                events, cursor, weights, finished = ray.get(actor.events_since.remote(cursor, job.weights_epoch),
                                                            timeout=CALL_TIMEOUT)
                if weights is not None:
                    job._set_weights(*weights)
                for event in events:
                    job._emit(event)
                if finished:
                    break
                time.sleep(POLL_SECONDS)
        except (RayActorError, GetTimeoutError, RayError) as exc:
            if not self.closing and job.done_event is None:
                job._emit(self._lost_event(job, started, exc))
        except Exception as exc:  # noqa: BLE001 - the page shows a failed run, never a traceback
            if job.done_event is None:
                job._emit(DoneEvent("failed", "error", job.weights_epoch, 0, time.monotonic() - started, "cpu", None,
                                    f"{type(exc).__name__}: {exc}"))
        finally:
            with self._lock:
                self._actors.pop(job.ticket, None)
                self._jobs.pop(job.ticket, None)
            with contextlib.suppress(Exception):  # already gone
                ray.kill(actor)  # its resources (a CPU, a fraction of a GPU) go back to the cluster
            self.classroom.release(job)
            job._end()
            self._resplit()

    @staticmethod
    def _lost_event(job: Job, started: float, exc: BaseException) -> DoneEvent:
        step = job.last(StepEvent)
        start = job.last(StartEvent)
        reason = type(exc).__name__
        return DoneEvent("failed", "worker_lost", job.weights_epoch, step.step if step is not None else 0,
                         time.monotonic() - started, start.device if start is not None else "cpu", None,
                         f"the Ray worker running this training was lost ({reason}); "
                         f"the weights of epoch {job.weights_epoch} are kept")

    def _stop(self, job: Job) -> None:
        with self._lock:
            actor = self._actors.get(job.ticket)
        if actor is not None:
            actor.stop.remote()

    def _resplit(self) -> None:
        with self._lock:
            pairs = [(self._jobs[t], a) for t, a in self._actors.items() if t in self._jobs]
        for job, actor in pairs:
            if job.threads_wanted:
                actor.set_threads.remote(job.threads_wanted)

    def actor_of(self, job: Job) -> Any:
        """The actor running `job` (None once it has ended): for tests and the teacher's tools."""
        with self._lock:
            return self._actors.get(job.ticket)

    def describe(self) -> str:
        gpu = f", {self.gpus:g} GPUs ({self.gpus_per_job:g} GPU per run)" if self.gpus_per_job else ""
        return f"Ray cluster at {self.address}: {self.cpus} CPUs{gpu}, up to {self.classroom.max_jobs} runs at once"

    def shutdown(self) -> None:
        """Stop the runs going now and let their actors go; disconnect if this backend connected."""
        self.closing = True
        with self._lock:
            actors = list(self._actors.values())
        for actor in actors:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(actor)
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
