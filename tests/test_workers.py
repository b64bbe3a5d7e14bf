"""Training in worker processes: the same events and weights as in this process, Stop, a queue, a worker lost."""
from __future__ import annotations

import os
import signal
import time

import pytest
import torch

from dl_core.errors import CourseError
from dl_core.jobs import DataRef, JobRequest, ThreadBackend
from dl_core.training import DoneEvent, EpochEvent, StartEvent, StepEvent, TrainConfig
from dl_core.workers import ProcessBackend
from tests.test_training import separable, small_spec


@pytest.fixture(scope="module")
def data():
    return separable(256, 0), separable(64, 1)


@pytest.fixture(scope="module")
def pool():
    backend = ProcessBackend(max_jobs=2, cores=2)
    assert backend.wait_ready(120), "the worker processes did not start"
    yield backend
    backend.shutdown()
    for pid in backend.pids():  # every worker we started is gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def request(data, **config) -> JobRequest:
    cfg = TrainConfig(**{"epochs": 2, "batch_size": 16, "lr": 0.05, "log_every": 4, "precision": "fp32",
                         "channels_last": False, **config})
    return JobRequest(small_spec(), cfg, DataRef.of("separable", *data, root=None), {"number": 1})


def wait(job, timeout: float = 60) -> DoneEvent:
    assert job.join(timeout), "the job did not end"
    return job.done_event


def test_a_run_happens_in_a_worker_process_and_streams_events(pool, data):
    job = pool.submit(request(data))
    seen, cursor = [], 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new, cursor = job.events_since(cursor)
        seen += new
        if any(isinstance(e, DoneEvent) for e in new):
            break
        time.sleep(0.02)
    assert isinstance(seen[0], StartEvent) and isinstance(seen[-1], DoneEvent) and seen[-1].status == "finished"
    assert seen == job.events() and job.history.epochs == [1, 2]
    assert job.where.startswith("worker process") and str(os.getpid()) not in job.where
    pid = int(job.where.split("pid ")[1].rstrip(")"))
    assert pid in pool.pids()
    assert job.weights_epoch == 2 and set(job.state_dict()) == {"0.weight", "0.bias", "3.weight", "3.bias"}


def test_same_final_weights_as_in_this_process(pool, data):
    """The one engine: a worker and a thread of this process train the same numbers for the same seed."""
    req = request(data, seed=7)
    here = ThreadBackend(max_jobs=1, cores=1).submit(req)
    there = pool.submit(req)
    assert wait(here).status == "finished" and wait(there).status == "finished"
    a, b = here.state_dict(), there.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)  # thread counts may differ: sums reorder
    assert [e.test_accuracy for e in here.events() if isinstance(e, EpochEvent)] == \
        [e.test_accuracy for e in there.events() if isinstance(e, EpochEvent)]


def test_stop_within_a_step(pool, data):
    job = pool.submit(request(data, epochs=100, batch_size=4, log_every=1))
    deadline = time.monotonic() + 60
    while job.last(StepEvent) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    job.stop()
    steps_then = job.last(StepEvent).step
    done = wait(job)
    assert (done.status, done.reason) == ("stopped", "stop_requested")
    assert done.steps <= steps_then + 5  # the steps computed while the Stop message travelled


def test_queue_positions_and_stop_while_waiting(pool, data):
    busy = [pool.submit(request(data, epochs=100, batch_size=4)) for _ in range(2)]
    waiting = pool.submit(request(data, epochs=1))
    assert waiting.state == "queued" and waiting.queue_position() == 1 and pool.classroom.queued() == 1
    waiting.stop()
    done = wait(waiting, 5)
    assert (done.status, done.steps) == ("stopped", 0) and pool.classroom.queued() == 0
    for job in busy:
        job.stop()
        wait(job)


def test_a_lost_worker_ends_its_run_with_a_message_and_is_replaced(pool, data):
    job = pool.submit(request(data, epochs=100, batch_size=4, log_every=1))
    deadline = time.monotonic() + 60
    while job.weights is None and time.monotonic() < deadline:  # one finished epoch, so weights are kept
        time.sleep(0.02)
    pid = int(job.where.split("pid ")[1].rstrip(")"))
    os.kill(pid, signal.SIGKILL)
    done = wait(job, 30)
    assert (done.status, done.reason) == ("failed", "worker_lost") and done.epochs_done >= 1
    assert job.state_dict() is not None  # the last finished epoch's weights survive
    assert pool.wait_ready(120) and pid not in pool.pids()
    again = pool.submit(request(data, epochs=1))
    assert wait(again).status == "finished"


def test_bad_requests_are_refused_before_queueing(pool, data):
    with pytest.raises(CourseError):
        pool.submit(request(data, epochs=0))
    with pytest.raises(CourseError) as info:
        pool.submit(JobRequest(small_spec(size=32), TrainConfig(epochs=1), DataRef.of("separable", *data, root=None)))
    assert info.value.code == "train.model_mismatch"
    assert pool.classroom.queued() == 0


def test_workers_train_below_the_pages_priority(pool):
    """Training yields the CPU to the web process (students' pages) whenever it needs it."""
    for pid in pool.pids():
        assert os.getpriority(os.PRIO_PROCESS, pid) >= os.getpriority(os.PRIO_PROCESS, 0) + 10
