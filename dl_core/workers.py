"""Training out of the web process: a few worker processes, started once, each running one job at a time.

Why: a training step holds the GIL for much of its Python work; in threads of the Streamlit process
every run competed with every page of every student (PERFORMANCE.md: the server never used more
than ~1 core of 2, and the live charts of a busy class stalled for minutes). A worker process has its
own interpreter and trains in its main thread (OpenMP in a non-main thread ran 0.76× as fast here).

A worker is `python -m dl_core.workers`, started with `subprocess` rather than `multiprocessing`:
Streamlit runs each page as the `__main__` module, and multiprocessing's spawn re-runs `__main__`
in the child, which would start the whole app again inside every worker. Messages are
length-prefixed pickles (standard pickler: tensors by value) on the worker's stdin and on a copy
of its stdout (its own stdout goes to stderr, so a stray print cannot break the stream):

    web → worker: ("run", job id, JobRequest with the dataset by name) | ("stop", job id) | ("threads", n) | ("quit",)
    worker → web: ("ready", pid) | ("event", job id, TrainEvent) | ("weights", job id, epoch, bytes) | ("end", job id)

A reader thread in the worker takes Stop and thread counts while the main thread trains, so Stop ends a
run within one step and a re-split of the cores reaches a running job at once. A worker that dies
(killed, out of memory) ends its run as 'failed' with the last finished epoch's weights kept, and is
replaced.
"""
from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from dl_core.jobs import Classroom, DataRef, Job, JobRequest, QueuedBackend, drive
from dl_core.training import DoneEvent

ROOT = Path(__file__).resolve().parents[1]
_HEADER = struct.Struct("!Q")
MAX_MESSAGE = 1 << 31  # 2 GiB: a message claiming more is a broken stream, not a real one


def send(stream: IO[bytes], lock: threading.Lock, message: tuple) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    with lock:
        stream.write(_HEADER.pack(len(data)) + data)
        stream.flush()


def receive(stream: IO[bytes]) -> tuple | None:
    """The next message, or None at the end of the stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_MESSAGE:
        return None
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)  # noqa: S301 - our own process on the other end of a private pipe


# ----------------------------------------------------------------------------------------------
# The worker process
# ----------------------------------------------------------------------------------------------
class _Control:
    """What the worker's reader thread hears while the main thread trains."""

    def __init__(self) -> None:
        self.runs: queue.Queue = queue.Queue()
        self.stop_id = 0
        self.threads = 0
        self.closed = False  # the web process is gone: stop the run, then exit


def _listen(stream: IO[bytes], control: _Control) -> None:
    while True:
        message = receive(stream)
        if message is None or message[0] == "quit":
            control.closed = True
            control.runs.put(None)
            return
        if message[0] == "run":
            control.runs.put(message)
        elif message[0] == "stop":
            control.stop_id = message[1]
        elif message[0] == "threads":
            control.threads = int(message[1])


def worker_main(preload: tuple[str, str] | None = None, nice: int = 0) -> None:
    """Wait for runs on stdin, iterate the engine, send events back; until told to quit or stdin closes.

    `nice` lowers the worker's CPU priority: on a server where training keeps every core busy, the web
    process (students' pages, live charts) still gets the CPU the moment it needs it, and training
    takes the rest (pages cost milliseconds; a run costs minutes).
    """
    if nice > 0 and hasattr(os, "nice"):
        os.nice(nice)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # prints from anywhere go to stderr, not into the stream
    lock = threading.Lock()
    import torch

    from dl_core.models import course_cnn
    from dl_core.training import seeded_model, tune_allocator, warm_up_kernels

    tune_allocator()
    try:
        torch.set_num_interop_threads(1)  # no inter-op pool: cores are split between runs, not within one
    except RuntimeError:
        pass
    control = _Control()
    threading.Thread(target=_listen, args=(sys.stdin.buffer, control), name="listen", daemon=True).start()
    cache: dict[tuple[str, str], Any] = {}
    if preload is not None:
        try:
            train_set, _ = DataRef(preload[0], preload[1]).load(cache)  # the default dataset, before the first run
            warm_up_kernels(course_cnn(), tuple(train_set.images.shape[1:]))  # first-call costs, before a run's tuning
        except Exception:  # noqa: BLE001 - not there yet: the first run reads it
            pass
    send(out, lock, ("ready", os.getpid()))
    while True:
        message = control.runs.get()
        if message is None:
            return
        job_id, request, control.threads = message[1], message[2], message[3]
        try:
            train_set, test_set = request.data.load(cache)
            model = seeded_model(request.spec, request.config.seed)
        except Exception as exc:  # noqa: BLE001 - e.g. the data folder changed under the server
            send(out, lock, ("event", job_id, DoneEvent("failed", "error", 0, 0, 0.0, "cpu", None,
                                                         f"{type(exc).__name__}: {exc}")))
        else:
            drive(model, train_set, test_set, request.config,
                  stop=lambda: control.closed or control.stop_id == job_id,  # noqa: B023 - read now, for this run
                  threads=lambda: control.threads or None,
                  emit=lambda event: send(out, lock, ("event", job_id, event)),  # noqa: B023
                  save_weights=lambda epoch, data: send(out, lock, ("weights", job_id, epoch, data)))  # noqa: B023
        send(out, lock, ("end", job_id))


# ----------------------------------------------------------------------------------------------
# The web process's side
# ----------------------------------------------------------------------------------------------
class _Worker:
    """One worker process and the thread in the web process that reads what it sends."""

    def __init__(self, index: int, backend: ProcessBackend) -> None:
        self.index = index
        self.backend = backend
        self.job: Job | None = None
        self.pid: int | None = None
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._start_process()

    def _start_process(self) -> None:
        args = [sys.executable, "-m", "dl_core.workers", "--nice", str(self.backend.nice)]
        if self.backend.preload is not None:
            args += ["--preload", *self.backend.preload]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        # Idle OpenMP threads spin a while, then sleep. Spinning without end (OMP_WAIT_POLICY=ACTIVE) on
        # cores shared with the pages measured 15-20x slower; never spinning (PASSIVE) cost 12-20 % per step
        # alone (1,880 vs 1,640 ms an epoch of 6,400 images, bf16, 2 threads, AMD EPYC AVX-512). libgomp's
        # GOMP_SPINCOUNT counts `pause`s, whose length differs by CPU: 10,000 was as fast as the default on
        # the AMD EPYC, but 3 % slower than 100,000 on an Intel Xeon with AMX (page/engine 0.952 vs 0.983,
        # median of 20 paired runs); 100,000 left a class of 30 with 30 runs no slower (pages, live charts,
        # every run done in 51 s). KMP_BLOCKTIME (ms) is the same for LLVM/Intel OpenMP builds of torch.
        env.setdefault("GOMP_SPINCOUNT", "100000")
        env.setdefault("KMP_BLOCKTIME", "1")
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(ROOT), env=env,
                                        start_new_session=True)  # Ctrl-C reaches the server, which ends us
        self.pid = self.process.pid
        self._reader = threading.Thread(target=self._read, args=(self.process,), name=f"worker-{self.index}-reader",
                                        daemon=True)
        self._reader.start()

    def label(self) -> str:
        return f"worker process {self.index + 1} (pid {self.pid})"

    def _send(self, message: tuple) -> None:
        try:
            send(self.process.stdin, self._write_lock, message)
        except (BrokenPipeError, OSError, ValueError):
            pass  # the reader sees the process gone and ends its run

    def run(self, job: Job, threads: int) -> None:
        with self._lock:
            self.job = job
            job._running(self.label())
            self._send(("run", job.ticket, _shippable(job.request), threads))

    def stop(self, job: Job) -> None:
        with self._lock:
            if self.job is job:
                self._send(("stop", job.ticket))

    def set_threads(self, threads: int) -> None:
        self._send(("threads", threads))

    def _read(self, process: subprocess.Popen) -> None:
        while True:
            try:
                message = receive(process.stdout)
            except (OSError, ValueError, pickle.UnpicklingError, EOFError):
                message = None
            if message is None:
                break
            self._handle(message)
        process.wait()
        if not self.backend.closing:
            self._lost(process.returncode)

    def _handle(self, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            self.ready.set()
            return
        job = self.job
        if job is None or message[1] != job.ticket:
            return  # a message from a run that has been given up on
        if kind == "event":
            job._emit(message[2])
        elif kind == "weights":
            job._set_weights(message[2], message[3])
        elif kind == "end":
            with self._lock:
                self.job = None
            self.backend._ended(job)

    def _lost(self, exitcode: int | None) -> None:
        """The process died: end its run with a clear message (weights of the last epoch kept), replace it."""
        with self._lock:
            job, self.job = self.job, None
        self.ready.clear()
        self._start_process()
        if job is not None:
            job._emit(DoneEvent("failed", "worker_lost", job.weights_epoch, 0,
                                time.monotonic() - (job.started or time.monotonic()), "cpu", None,
                                f"the training process stopped (exit code {exitcode})"))
            self.backend._ended(job)

    def quit(self) -> None:
        self._send(("quit",))
        try:
            self.process.stdin.close()
        except OSError:
            pass


def _shippable(request: JobRequest) -> JobRequest:
    return JobRequest(request.spec, request.config, request.data.shipped(), {})


class ProcessBackend(QueuedBackend):
    """The server's default: `workers` processes kept ready, at most that many runs at once."""

    kind = "process"

    def __init__(self, max_jobs: int | None = None, workers: int | None = None, cores: int | None = None,
                 preload: tuple[str, str] | None = None, nice: int = 10) -> None:
        self.classroom = Classroom(max_jobs, cores)
        self.preload = preload
        self.nice = max(0, min(int(nice), 19))
        self.closing = False
        count = max(1, min(workers or self.classroom.max_jobs, self.classroom.max_jobs))
        self.classroom.max_jobs = count  # a run only starts where a worker is free
        self._lock = threading.Lock()
        self._workers = [_Worker(i, self) for i in range(count)]

    def _launch(self, job: Job, threads: int) -> None:
        with self._lock:
            worker = next((w for w in self._workers if w.job is None), None)
            if worker is None:  # cannot happen while max_jobs == workers; refuse rather than lose the run
                raise RuntimeError("no free worker")
            worker.run(job, threads)
        if job.stop_requested:
            worker.stop(job)
        self._resplit()

    def _stop(self, job: Job) -> None:
        for worker in self._workers:
            worker.stop(job)

    def _ended(self, job: Job) -> None:
        self.classroom.release(job)
        job._end()
        self._resplit()

    def _resplit(self) -> None:
        for worker in self._workers:
            current = worker.job
            if current is not None and current.threads_wanted:
                worker.set_threads(current.threads_wanted)

    def wait_ready(self, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        return all(w.ready.wait(max(0.0, deadline - time.monotonic())) for w in self._workers)

    def pids(self) -> list[int]:
        return [w.pid for w in self._workers if w.pid is not None]

    def describe(self) -> str:
        return f"{len(self._workers)} worker processes"

    def shutdown(self, timeout: float = 5) -> None:
        self.closing = True
        for worker in self._workers:
            worker.quit()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()


def _main(argv: list[str]) -> None:
    preload = (argv[argv.index("--preload") + 1], argv[argv.index("--preload") + 2]) if "--preload" in argv else None
    nice = int(argv[argv.index("--nice") + 1]) if "--nice" in argv else 0
    try:
        worker_main(preload, nice)
    finally:
        sys.stderr.flush()
        os._exit(0)  # the listening thread is blocked reading stdin: no interpreter shutdown dance


if __name__ == "__main__":
    _main(sys.argv[1:])
