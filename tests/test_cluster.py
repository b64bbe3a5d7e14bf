"""Training on a Ray cluster: a local Ray on 127.0.0.1 started here; the same events and weights as in this
process, Stop, the dataset sent once, a lost actor ending its run as 'worker_lost' with the last epoch kept."""
from __future__ import annotations

import os
import time

import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional dependency: pip install -r requirements-cluster.txt")

import torch

from dl_core.classroom import ClassroomConfig
from dl_core.cluster import RayBackend
from dl_core.jobs import DataRef, JobRequest, ThreadBackend
from dl_core.training import DoneEvent, StartEvent, StepEvent, TrainConfig
from tests.test_training import separable, small_spec


@pytest.fixture(scope="module")
def data():
    return separable(256, 0), separable(64, 1)


@pytest.fixture(scope="module")
def cluster():
    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)
    backend = RayBackend(ClassroomConfig(backend="ray", ray_address="auto", max_jobs=2))
    yield backend
    backend.shutdown()
    ray.shutdown()


def request(data, **config) -> JobRequest:
    cfg = TrainConfig(**{"epochs": 2, "batch_size": 16, "lr": 0.05, "log_every": 4, "precision": "fp32",
                         "channels_last": False, "device": "cpu", **config})
    return JobRequest(small_spec(), cfg, DataRef.of("separable", *data, root=None), {"number": 1})


def follow(job, timeout: float = 60) -> list:
    """Poll the job like the page does, until its DoneEvent."""
    seen, cursor = [], 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new, cursor = job.events_since(cursor)
        seen += new
        if any(isinstance(e, DoneEvent) for e in new):
            return seen
        time.sleep(0.05)
    raise AssertionError("the job did not end")


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_backend_is_sized_to_the_cluster(cluster):
    assert cluster.kind == "ray" and cluster.cpus == 2 and cluster.gpus_per_job == 0
    assert cluster.classroom.max_jobs == 2 and "Ray cluster" in cluster.describe()


def test_a_run_is_a_ray_actor_with_the_same_events_and_weights_as_in_process(cluster, data):
    job = cluster.submit(request(data))
    local = ThreadBackend(max_jobs=1, cores=1).submit(request(data))  # meanwhile, the same run in this process
    seen = follow(job)
    assert job.join(10) and job.state == "done" and local.join(60)
    assert job.where.startswith("Ray actor on ") and f"(pid {os.getpid()})" not in job.where
    assert isinstance(seen[0], StartEvent) and isinstance(seen[-1], DoneEvent), seen[-1]
    assert seen[-1].status == "finished" and seen == job.events()
    assert any(isinstance(e, StepEvent) for e in seen) and job.history.epochs == [1, 2]
    assert job.weights_epoch == 2 and cluster.actor_of(job) is None  # its actor is let go once the run ends

    assert [type(e) for e in local.events()] == [type(e) for e in seen]  # the same stream, event for event
    assert local.history.test_loss == pytest.approx(job.history.test_loss, rel=1e-4, abs=1e-5)
    ours, theirs = job.state_dict(), local.state_dict()
    assert set(ours) == set(theirs)
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-4, atol=1e-5)


def test_stop_and_a_lost_worker(cluster, data):
    """Two runs at once on the same data (sent to the object store once): one stopped, one whose actor is killed."""
    puts = cluster.puts
    stopped = cluster.submit(request(data, epochs=100, batch_size=4, log_every=1))
    lost = cluster.submit(request(data, epochs=100))
    assert cluster.classroom.running() == 2

    wait_for(lambda: stopped.last(StepEvent) is not None)
    steps_before = stopped.last(StepEvent).step
    stopped.stop()
    done = follow(stopped)[-1]
    assert (done.status, done.reason) == ("stopped", "stop_requested")
    assert done.steps <= steps_before + 640 and done.epochs_done < 100  # at once (the poll lags 0.25 s), not at the end

    wait_for(lambda: lost.weights_epoch >= 1 and cluster.actor_of(lost) is not None)
    ray.kill(cluster.actor_of(lost))
    done = follow(lost)[-1]
    assert (done.status, done.reason) == ("failed", "worker_lost")
    assert "lost" in done.message and done.epochs_done == lost.weights_epoch >= 1
    assert lost.state == "done" and set(lost.state_dict()) == {"0.weight", "0.bias", "3.weight", "3.bias"}
    assert len(lost.history.epochs) >= lost.weights_epoch

    assert cluster.puts == puts  # the dataset was already in the object store: reused, not sent again
    wait_for(lambda: cluster.classroom.running() == 0, 10)  # both slots came back


def test_without_ray_the_backend_says_what_to_install(monkeypatch):
    import dl_core.cluster as cluster_module
    from dl_core.errors import CourseError

    monkeypatch.setattr(cluster_module, "ray", None)
    with pytest.raises(CourseError) as info:
        RayBackend(ClassroomConfig(backend="ray", ray_address="auto"))
    assert info.value.code == "classroom.ray_missing" and "requirements-cluster.txt" in str(info.value)
