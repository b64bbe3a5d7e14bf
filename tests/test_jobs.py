"""The background job: events while it runs, stop, queueing in the classroom, TensorBoard, CSV."""
from __future__ import annotations

import time

import pytest
import torch

from dl_core.errors import CourseError
from dl_core.jobs import Classroom, History, TrainingJob, max_jobs_from_env
from dl_core.training import DoneEvent, EpochEvent, StepEvent, TrainConfig, seeded_model
from tests.test_training import separable, small_spec


@pytest.fixture(scope="module")
def data():
    return separable(256, 0), separable(64, 1)


def wait_done(job: TrainingJob, timeout: float = 20) -> DoneEvent:
    assert job.join(timeout), "the job did not end"
    return job.done_event


def test_job_runs_in_background_and_streams_events(data):
    job = TrainingJob(seeded_model(small_spec(), 0), *data, TrainConfig(epochs=2, batch_size=16, lr=0.05, log_every=4))
    assert job.state == "new"
    job.start()
    seen, cursor = [], 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        new, cursor = job.events_since(cursor)
        seen += new
        if any(isinstance(e, DoneEvent) for e in new):
            break
        time.sleep(0.01)
    assert isinstance(seen[-1], DoneEvent) and seen[-1].status == "finished"
    assert seen == job.events()  # polling with a cursor loses nothing, duplicates nothing
    assert job.history.epochs == [1, 2] and len(job.history.steps) == sum(isinstance(e, StepEvent) for e in seen)
    job.join(5)
    assert job.state == "done" and not job.is_active()


def test_job_stop_within_a_step(data):
    job = TrainingJob(seeded_model(small_spec(), 0), *data, TrainConfig(epochs=100, batch_size=4, log_every=1))
    job.start()
    deadline = time.monotonic() + 10
    while job.last(StepEvent) is None and time.monotonic() < deadline:
        time.sleep(0.005)
    job.stop()
    steps_then = job.last(StepEvent).step
    done = wait_done(job)
    assert (done.status, done.reason) == ("stopped", "stop_requested")
    assert done.steps <= steps_then + 2  # the step being computed, at most one more logged


def test_invalid_config_refused_before_the_thread(data):
    with pytest.raises(CourseError):
        TrainingJob(seeded_model(small_spec(), 0), *data, TrainConfig(epochs=0))


def test_a_network_for_other_images_is_refused(data):
    wrong = seeded_model(small_spec(classes=4, size=32), 0)  # Linear sized for 32×32 images
    with pytest.raises(CourseError) as info:
        TrainingJob(wrong, *data, TrainConfig(epochs=1))
    assert info.value.code == "train.model_mismatch" and info.value.params["shape"] == "3×16×16"
    with pytest.raises(CourseError) as info:
        TrainingJob(seeded_model(small_spec(classes=3), 0), *data, TrainConfig(epochs=1))
    assert info.value.code == "train.model_outputs"


def test_errors_in_the_thread_become_a_failed_event(data):
    class Exploding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = seeded_model(small_spec(), 0)

        def forward(self, x):
            if self.training:
                raise ValueError("boom")
            return self.inner(x)

    job = TrainingJob(Exploding(), *data, TrainConfig(epochs=1)).start()
    done = wait_done(job)
    assert (done.status, done.reason) == ("failed", "error") and "boom" in done.message


def test_classroom_queue_and_threads(data):
    room = Classroom(max_jobs=1, cores=2)
    first = TrainingJob(seeded_model(small_spec(), 0), *data, TrainConfig(epochs=100, batch_size=4), classroom=room)
    second = TrainingJob(seeded_model(small_spec(), 0), *data, TrainConfig(epochs=1, batch_size=64), classroom=room)
    first.start()
    deadline = time.monotonic() + 10
    while first.state != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    second.start()
    while second.queue_position() != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert second.state == "queued" and second.queue_position() == 1 and room.running() == 1
    first.stop()
    assert wait_done(first).status == "stopped"
    assert wait_done(second).status == "finished"
    assert room.running() == 0 and second.queue_position() == 0


def test_stop_while_queued(data):
    room = Classroom(max_jobs=1, cores=2)
    blocker = TrainingJob(seeded_model(small_spec(), 0), *data, TrainConfig(epochs=100, batch_size=4), classroom=room)
    waiting = TrainingJob(seeded_model(small_spec(), 0), *data, TrainConfig(epochs=1), classroom=room)
    blocker.start()
    waiting.start()
    deadline = time.monotonic() + 10
    while waiting.queue_position() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    waiting.stop()
    done = wait_done(waiting)
    assert (done.status, done.steps) == ("stopped", 0)
    blocker.stop()
    wait_done(blocker)


def test_thread_budget_is_resplit_when_runs_start_and_end(data):
    room = Classroom(max_jobs=4, cores=2)
    first = TrainingJob(seeded_model(small_spec(), 0), *data, TrainConfig(epochs=100, batch_size=4), classroom=room)
    second = TrainingJob(seeded_model(small_spec(), 0), *data, TrainConfig(epochs=100, batch_size=4), classroom=room)
    first.start()
    assert first.threads_wanted == 2  # alone: all cores
    second.start()
    assert first.threads_wanted == 1 and second.threads_wanted == 1  # two running: one each
    second.stop()
    wait_done(second)
    deadline = time.monotonic() + 5
    while first.threads_wanted != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.threads_wanted == 2  # back to all cores for the one left
    first.stop()
    wait_done(first)


def test_max_jobs_from_env(monkeypatch):
    monkeypatch.setenv("TORCH_CLASSROOM_MAX_JOBS", "3")
    assert max_jobs_from_env() == 3
    monkeypatch.setenv("TORCH_CLASSROOM_MAX_JOBS", "zero")
    assert max_jobs_from_env(default=7) == 7
    monkeypatch.setenv("TORCH_CLASSROOM_MAX_JOBS", "0")
    assert max_jobs_from_env(default=7) == 7


def test_tensorboard_scalars_with_course_tags(data, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = tmp_path / "run1"
    job = TrainingJob(seeded_model(small_spec(), 0), *data, TrainConfig(epochs=2, batch_size=32, log_every=2),
                      tensorboard_dir=logdir).start()
    assert wait_done(job).status == "finished"
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"train_loss", "test_loss", "test_accuracy"}
    assert [s.step for s in acc.Scalars("test_accuracy")] == [0, 1]
    epochs = [e for e in job.events() if isinstance(e, EpochEvent)]
    assert acc.Scalars("test_loss")[1].value == pytest.approx(epochs[1].test_loss_total, rel=1e-5)


def test_history_csv():
    h = History()
    h.add(StepEvent(1, 10, 10, 2.25, 1000.0, 1.5, 0.5))
    h.add(EpochEvent(1, 2.0, 1.9, 30.4, 0.25, 3.0, 900.0, 3.1))
    lines = h.to_csv().splitlines()
    assert lines[0].startswith("kind,epoch,step,train_loss")
    assert lines[1] == "step,,10,2.25,1000.0,1.500,,,"
    assert lines[2] == "epoch,1,,2,,3.000,1.9,30.4,0.25"


def test_job_uses_its_own_thread_count(data):
    before = torch.get_num_threads()
    job = TrainingJob(seeded_model(small_spec(), 0), *data, TrainConfig(epochs=1, batch_size=64), threads=1).start()
    wait_done(job)
    assert torch.get_num_threads() == before


def test_estimated_start_from_measured_speed(data):
    room = Classroom(max_jobs=1, cores=2)
    running = TrainingJob(seeded_model(small_spec(), 0), *data, TrainConfig(epochs=100, batch_size=4, log_every=1),
                          classroom=room).start()
    waiting = TrainingJob(seeded_model(small_spec(), 0), *data, TrainConfig(epochs=1), classroom=room).start()
    deadline = time.monotonic() + 10
    while (running.last(StepEvent) is None or running.progress() < 0.03) and time.monotonic() < deadline:
        time.sleep(0.01)
    eta = room.estimate_start(waiting)
    assert eta is not None and eta > 0  # the running run's own pace says how long it still needs
    assert room.speed() and room.speed() > 0
    running.stop()
    waiting.stop()
    wait_done(running)
    wait_done(waiting)


def test_drive_sends_each_epochs_weights_once_and_a_stopped_runs_latest(data):
    """A finished run's last epoch is serialized once; a run stopped mid-epoch sends the weights it has now."""
    from dl_core.jobs import drive, state_dict_bytes

    config = TrainConfig(epochs=2, batch_size=16, lr=0.05, log_every=4)
    model = seeded_model(small_spec(), 0)
    saved: list[tuple[int, bytes]] = []
    events: list = []
    drive(model, *data, config, stop=lambda: False, threads=lambda: None, emit=events.append,
          save_weights=lambda epoch, blob: saved.append((epoch, blob)))
    assert events[-1].status == "finished"
    assert [epoch for epoch, _ in saved] == [1, 2]
    assert saved[-1][1] == state_dict_bytes(model)  # the last weights sent are the model's final ones

    model = seeded_model(small_spec(), 0)
    saved.clear()
    steps = [0]

    def stop() -> bool:  # read before every step: stop five steps into epoch 2 (256 / 16 = 16 steps an epoch)
        steps[0] += 1
        return steps[0] > 16 + 5

    events.clear()
    drive(model, *data, config, stop=stop, threads=lambda: None, emit=events.append,
          save_weights=lambda epoch, blob: saved.append((epoch, blob)))
    assert events[-1].status == "stopped" and events[-1].epochs_done == 1
    assert [epoch for epoch, _ in saved] == [1, 1]
    assert saved[-1][1] != saved[0][1] and saved[-1][1] == state_dict_bytes(model)  # epoch 2's five steps kept
