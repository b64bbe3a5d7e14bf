"""Students across reloads: random tokens, runs kept server-side, bounded in time, count and memory."""
from __future__ import annotations

import time

import pytest

from dl_core.classroom import ClassroomConfig, load_config
from dl_core.errors import CourseError
from dl_core.jobs import DataRef, JobRequest, ThreadBackend
from dl_core.students import StudentRegistry
from dl_core.training import TrainConfig, preprocessing_for
from tests.test_training import separable, small_spec


@pytest.fixture(scope="module")
def data():
    return separable(128, 0), separable(32, 1)


def finished_job(data, backend, **config):
    cfg = TrainConfig(**{"epochs": 1, "batch_size": 16, **config})
    meta = {"spec": small_spec(), "model_key": "course", "dataset": "separable", "classes": data[0].classes,
            "preprocessing": preprocessing_for(data[0], cfg)}
    return backend.submit(JobRequest(small_spec(), cfg, DataRef.of("separable", *data, root=None), meta))


def test_tokens_are_random_and_only_the_exact_token_finds_a_student():
    reg = StudentRegistry()
    a, b = reg.new(), reg.new()
    assert a.token != b.token and len(a.token) >= 24
    assert reg.get(a.token) is a and reg.get(b.token) is b
    for guess in (None, "", a.token[:-1], a.token + "x", "x" * 1000, 42):
        assert reg.get(guess) is None


def test_a_finished_job_becomes_a_run_and_the_students_model(data):
    reg, backend = StudentRegistry(), ThreadBackend(max_jobs=2)
    alice, bob = reg.new(), reg.new()
    job = finished_job(data, backend)
    number = reg.track(alice, job)
    assert job.join(30)
    deadline = time.monotonic() + 5
    while not alice.runs and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.number for r in alice.runs] == [number] and alice.runs[0].status == "finished"
    assert alice.model is not None and alice.model_version == 1 and not alice.jobs
    assert bob.runs == [] and bob.model is None  # nothing of Alice's is Bob's


def test_runs_and_weights_are_bounded(data):
    reg, backend = StudentRegistry(runs_kept=2, weights_kept_mb=0), ThreadBackend(max_jobs=1)
    student = reg.new()
    for _ in range(3):
        job = finished_job(data, backend)
        reg.track(student, job)
        assert job.join(30)
    deadline = time.monotonic() + 5
    while student.next_number <= 3 or student.jobs and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert [r.number for r in student.runs] == [2, 3]  # the oldest run is forgotten
    assert all(r.weights is None for r in student.runs)  # no budget for weights: history only
    assert student.model is not None  # the current model is kept all the same


def test_students_expire_after_the_ttl_and_their_jobs_stop(data):
    reg, backend = StudentRegistry(ttl_hours=1 / 3600), ThreadBackend(max_jobs=1)
    student = reg.new()
    job = finished_job(data, backend, epochs=100)
    reg.track(student, job)
    student.last_seen -= 10  # gone for longer than the TTL
    assert reg.get(student.token) is None
    assert job.join(30) and job.done_event.status == "stopped"


def test_too_many_students_forgets_the_longest_unseen():
    reg = StudentRegistry(max_students=2)
    first = reg.new()
    first.last_seen -= 100
    second = reg.new()
    third = reg.new()
    assert reg.get(first.token) is None and reg.get(second.token) is second and reg.get(third.token) is third


def test_classroom_config_file_and_environment(tmp_path):
    path = tmp_path / "classroom.toml"
    path.write_text('[classroom]\nmax_jobs = 3\nmax_epochs = 5\ndefault_dataset = "shapes10"\n', encoding="utf-8")
    cfg = load_config(path, environ={"TORCH_CLASSROOM_MAX_EPOCHS": "7", "TORCH_CLASSROOM_BACKEND": "thread"})
    assert (cfg.max_jobs, cfg.max_epochs, cfg.default_dataset, cfg.backend) == (3, 7, "shapes10", "thread")
    assert load_config(tmp_path / "missing.toml", environ={}) == ClassroomConfig()


@pytest.mark.parametrize("text, env, code", [
    ("[classroom]\nmax_jobz = 3\n", {}, "classroom.unknown_key"),
    ("[classroom]\nmax_jobs = -1\n", {}, "classroom.bad_value"),
    ("[classroom]\nmax_jobs = true\n", {}, "classroom.bad_value"),
    ("[classroom]\nstudent_ttl_hours = \"soon\"\n", {}, "classroom.bad_value"),
    ("[classroom\n", {}, "classroom.bad_file"),
    ("", {"TORCH_CLASSROOM_BACKEND": "gpu-farm"}, "classroom.bad_value"),
    ("", {"TORCH_CLASSROOM_BACKEND": "ray"}, "classroom.ray_address"),
    ("", {"TORCH_CLASSROOM_MAX_EPOCHS": "lots"}, "classroom.bad_value"),
])
def test_bad_classroom_settings_are_named(tmp_path, text, env, code):
    path = tmp_path / "classroom.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CourseError) as info:
        load_config(path, environ=env)
    assert info.value.code == code
