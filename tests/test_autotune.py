"""devices.autotune: times candidate settings, keeps the fastest with fp32's loss, bounded, cached, side-effect free."""
from __future__ import annotations

import dataclasses
import json
import time

import pytest
import torch
from torch import nn

from dl_core import devices
from dl_core.devices import DeviceChoice, Setting, TuneResult, _choose, _Trial, autotune, clear_tuning_cache, tuning_key
from dl_core.training import StartEvent, StepEvent, TrainConfig, seeded_model, train
from tests.test_training import separable, small_spec

CPU = torch.device("cpu")
FOUR = (Setting("fp32", True), Setting("fp32", False), Setting("bf16", True), Setting("bf16", False))


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_tuning_cache(devices.tuning_cache_file())
    yield
    clear_tuning_cache(devices.tuning_cache_file())


def trial(setting: Setting, loss: float, *times: float) -> _Trial:
    return _Trial(setting, nn.Linear(1, 1), None, loss, max(times, default=0.1), list(times))  # type: ignore[arg-type]


def fake_step(costs: dict[str, float], losses: dict[str, float] | None = None, calls: list | None = None):
    """A step that takes `costs[label]` seconds and returns `losses[label]` (default 2.3)."""
    def step(model, optimizer, setting):
        if calls is not None:
            calls.append(setting.label)
        cost = costs[setting.label]
        if cost < 0:
            raise RuntimeError(f"{setting.label} is not implemented here")
        time.sleep(cost)
        return torch.tensor((losses or {}).get(setting.label, 2.3))
    return step


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)


# -- the choice -----------------------------------------------------------------------------------
def test_fastest_candidate_with_the_same_loss_wins():
    trials = [trial(FOUR[0], 2.30, 0.020, 0.021), trial(FOUR[1], 2.30, 0.030), trial(FOUR[2], 2.31, 0.010),
              trial(FOUR[3], 2.30, 0.015)]
    r = _choose(trials, 64)
    assert (r.precision, r.channels_last, r.label, r.source) == ("bf16", True, "bf16 + channels_last", "measured")
    assert [label for label, _ in r.candidates] == ["bf16 + channels_last", "bf16", "fp32 + channels_last", "fp32"]
    assert r.candidates[0][1] == pytest.approx(64 / 0.010, rel=0.01)  # images/s from the fastest step
    assert r.rejected == ()


def test_a_candidate_whose_loss_differs_is_refused():
    trials = [trial(FOUR[0], 2.30, 0.020), trial(FOUR[2], 2.60, 0.005)]  # 13 % off: beyond the 2 % tolerance
    r = _choose(trials, 64)
    assert r.label == "fp32 + channels_last" and r.rejected == ("bf16 + channels_last",)
    assert [label for label, _ in r.candidates] == ["fp32 + channels_last"]


def test_another_precision_must_beat_fp32_by_five_percent():
    assert _choose([trial(FOUR[0], 2.3, 0.0200), trial(FOUR[2], 2.3, 0.0195)], 64).precision == "fp32"
    assert _choose([trial(FOUR[0], 2.3, 0.0200), trial(FOUR[2], 2.3, 0.0180)], 64).precision == "bf16"
    # layouts of the same precision: simply the fastest
    assert _choose([trial(FOUR[0], 2.3, 0.0200), trial(FOUR[1], 2.3, 0.0195)], 64).label == "fp32"


def test_fp32_diverging_at_once_keeps_fp32():
    nan = float("nan")
    r = _choose([trial(FOUR[0], nan, 0.02), trial(FOUR[1], nan, 0.03), trial(FOUR[2], nan, 0.001)], 64)
    assert r.label == "fp32 + channels_last" and r.rejected == ("bf16 + channels_last",)


def test_nothing_measured_means_the_safe_default():
    assert _choose([], 64) == TuneResult("fp32", True, source="unmeasured")
    assert _choose([trial(FOUR[1], 2.3, 0.01)], 64).source == "unmeasured"  # the reference is missing


def test_candidates_time_what_the_hardware_has(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)
    assert devices.candidate_settings("cpu") == FOUR[:2]
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)
    assert devices.candidate_settings("cpu") == FOUR
    assert devices.candidate_settings("mps") == FOUR[:2]
    assert [s.label for s in FOUR] == ["fp32 + channels_last", "fp32", "bf16 + channels_last", "bf16"]


# -- measuring: bounded, robust, cached -------------------------------------------------------------
def test_autotune_measures_interleaved_and_picks_the_fastest(monkeypatch):
    monkeypatch.setattr(devices, "candidate_settings", lambda device_type: FOUR)
    calls: list[str] = []
    costs = {"fp32 + channels_last": 0.02, "fp32": 0.04, "bf16 + channels_last": 0.008, "bf16": 0.03}
    r = autotune(nn.Linear(2, 2), CPU, 32, fake_step(costs, calls=calls), sgd, "k1", budget=2.0)
    assert r.source == "measured" and r.label == "bf16 + channels_last"
    assert {label for label, _ in r.candidates} == set(costs)
    assert calls[:3] == ["fp32 + channels_last"] * 2 + ["fp32"]  # warm-up, a timed step (the estimate), the next
    assert calls[-4:] == ["fp32 + channels_last", "fp32", "bf16 + channels_last", "bf16"]  # an interleaved round
    assert 0 < r.seconds <= 2.0 + 0.04 + 0.3


def test_the_budget_bounds_the_cost(monkeypatch, tmp_path):
    monkeypatch.setattr(devices, "candidate_settings", lambda device_type: FOUR)
    step = fake_step(dict.fromkeys([s.label for s in FOUR], 0.1))
    start = time.perf_counter()
    r = autotune(nn.Linear(2, 2), CPU, 32, step, sgd, "k2", budget=0.5)
    assert time.perf_counter() - start <= 0.5 + 0.1 + 0.25  # the budget, plus at most one step (and slack)
    assert r.source == "partial" and r.label == "fp32 + channels_last"  # not all four fit in 0.5 s
    assert len(r.candidates) < 4
    cache = tmp_path / "autotune.json"
    autotune(nn.Linear(2, 2), CPU, 32, step, sgd, "k2b", budget=0.5, cache_file=cache)
    assert not cache.exists()  # a partial measurement is kept for this process only


def test_a_step_longer_than_the_budget_is_not_tuned(monkeypatch, tmp_path):
    monkeypatch.setattr(devices, "candidate_settings", lambda device_type: FOUR)
    calls: list[str] = []
    r = autotune(nn.Linear(2, 2), CPU, 32, fake_step(dict.fromkeys([s.label for s in FOUR], 0.3), calls=calls),
                 sgd, "k3", budget=0.2)
    assert (r.source, r.label, r.candidates) == ("unmeasured", "fp32 + channels_last", ())
    assert calls == ["fp32 + channels_last"]  # one step spent, no more
    slow = fake_step(dict.fromkeys([s.label for s in FOUR], 0.3), calls=calls)
    for _ in range(devices.TUNE_ATTEMPTS - 1):  # the next runs measure again (a busy moment passes)...
        assert autotune(nn.Linear(2, 2), CPU, 32, slow, sgd, "k3", budget=0.2).source == "unmeasured"
    assert len(calls) == devices.TUNE_ATTEMPTS
    again = autotune(nn.Linear(2, 2), CPU, 32, fake_step(dict.fromkeys([s.label for s in FOUR], 0.01)), sgd, "k3",
                     budget=0.2, cache_file=tmp_path / "autotune.json")
    assert again.source == "memory" and again.label == "fp32 + channels_last"  # ...a bounded number of times
    assert not (tmp_path / "autotune.json").exists()  # and never on disk: another process measures again


def test_a_measurement_cut_short_is_taken_again_by_the_next_run(monkeypatch, tmp_path):
    """A fresh worker's first run on a busy server: cut short, fp32 used; the next run measures it properly."""
    monkeypatch.setattr(devices, "candidate_settings", lambda device_type: FOUR)
    cache = tmp_path / "autotune.json"
    busy = autotune(nn.Linear(2, 2), CPU, 32, fake_step(dict.fromkeys([s.label for s in FOUR], 0.1)), sgd, "k7",
                    budget=0.5, cache_file=cache)
    assert busy.source == "partial" and not cache.exists()
    costs = {"fp32 + channels_last": 0.02, "fp32": 0.04, "bf16 + channels_last": 0.008, "bf16": 0.03}
    quiet = autotune(nn.Linear(2, 2), CPU, 32, fake_step(costs), sgd, "k7", budget=2.0, cache_file=cache)
    assert quiet.source == "measured" and quiet.label == "bf16 + channels_last" and cache.exists()
    calls: list[str] = []
    later = autotune(nn.Linear(2, 2), CPU, 32, fake_step(costs, calls=calls), sgd, "k7", budget=2.0, cache_file=cache)
    assert (later.source, later.label, calls) == ("memory", "bf16 + channels_last", [])  # complete: kept for good


def test_settings_that_fail_here_are_skipped(monkeypatch):
    monkeypatch.setattr(devices, "candidate_settings", lambda device_type: FOUR)
    costs = {"fp32 + channels_last": 0.01, "fp32": 0.01, "bf16 + channels_last": -1, "bf16": -1}
    r = autotune(nn.Linear(2, 2), CPU, 32, fake_step(costs), sgd, "k4", budget=1.0)
    assert {label for label, _ in r.candidates} == {"fp32 + channels_last", "fp32"} and r.rejected == ()
    costs["fp32 + channels_last"] = -1  # the reference itself fails: nothing to compare with
    r = autotune(nn.Linear(2, 2), CPU, 32, fake_step(costs), sgd, "k5", budget=1.0)
    assert r.source == "unmeasured"


def test_cached_in_memory_then_on_disk(monkeypatch, tmp_path):
    monkeypatch.setattr(devices, "candidate_settings", lambda device_type: FOUR[:2])
    calls: list[str] = []
    step = fake_step({"fp32 + channels_last": 0.01, "fp32": 0.03}, calls=calls)
    cache = tmp_path / "autotune.json"
    first = autotune(nn.Linear(2, 2), CPU, 32, step, sgd, "k6", cache_file=cache)
    n = len(calls)
    again = autotune(nn.Linear(2, 2), CPU, 32, step, sgd, "k6", cache_file=cache)
    assert len(calls) == n and (again.source, again.seconds) == ("memory", 0.0)
    assert (again.setting, again.candidates) == (first.setting, first.candidates)
    entry_keys = list(json.loads(cache.read_text())["entries"])
    assert len(entry_keys) == 1 and torch.__version__ in entry_keys[0] and "k6" in entry_keys[0]
    clear_tuning_cache()  # a new process: the disk remembers
    from_disk = autotune(nn.Linear(2, 2), CPU, 32, step, sgd, "k6", cache_file=cache)
    assert len(calls) == n and from_disk.source == "disk" and from_disk.setting == first.setting
    clear_tuning_cache()
    cache.write_text("{not json")  # a damaged file is measured over, never an error
    assert autotune(nn.Linear(2, 2), CPU, 32, step, sgd, "k6", cache_file=cache).source == "measured"
    clear_tuning_cache()
    cache.write_text(json.dumps({"entries": {entry_keys[0]: {"precision": "fp64", "channels_last": True,
                                                             "candidates": []}}}))
    assert autotune(nn.Linear(2, 2), CPU, 32, step, sgd, "k6", cache_file=cache).source == "measured"


def test_cache_file_location_and_switch(monkeypatch, data_dir):
    monkeypatch.delenv("TORCH_CLASSROOM_AUTOTUNE_CACHE", raising=False)
    assert devices.tuning_cache_file() == data_dir.resolve() / "autotune.json"
    monkeypatch.setenv("TORCH_CLASSROOM_AUTOTUNE_CACHE", "off")
    assert devices.tuning_cache_file() is None


def test_key_names_what_the_choice_depends_on():
    cpu = DeviceChoice("cpu", "Some CPU", "no_accelerator")
    model = seeded_model(small_spec(), 0)
    key = tuning_key(cpu, model, (3, 16, 16), 64, threads=2)
    assert key == tuning_key(cpu, seeded_model(small_spec(), 5), (3, 16, 16), 64, threads=2)  # weights don't matter
    assert len({key, tuning_key(cpu, model, (3, 16, 16), 32, threads=2), tuning_key(cpu, model, (3, 16, 16), 64, 1),
                tuning_key(cpu, model, (3, 32, 32), 64, 2), tuning_key(cpu, nn.Linear(3, 4), (3, 16, 16), 64, 2),
                tuning_key(DeviceChoice("cuda", "GPU", "x"), model, (3, 16, 16), 64, 2)}) == 6


# -- in a run -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    return separable(256, 0), separable(64, 1)


def test_real_tuning_touches_neither_the_model_nor_any_rng(data):
    train_set, _ = data
    model = seeded_model(small_spec(), 0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    imgs, targets = train_set.images[:32].float().div(255), train_set.targets[:32]

    def step(m, optimizer, setting):
        from dl_core.training import course_step
        return course_step(m, optimizer, imgs.contiguous(memory_format=setting.memory_format), targets, setting.precision)

    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    r = autotune(model, CPU, 32, step, sgd, "real", budget=1.0)
    assert torch.equal(torch.rand(3), expected)  # the global RNG stream goes on as if nothing happened
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert r.source == "measured" and r.setting in devices.candidate_settings("cpu")
    assert all(ips > 0 for _, ips in r.candidates)


def test_start_event_reports_the_choice_and_it_is_cached(data):
    train_set, test_set = data
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.05, log_every=1, augment=True, seed=7)
    first = next(iter(train(seeded_model(small_spec(), 7), train_set, test_set, cfg)))
    assert isinstance(first, StartEvent) and first.tune_source == "measured" and first.tuning_seconds > 0
    assert first.tuned in [label for label, _ in first.candidates]
    assert first.tuned == Setting(first.precision, first.channels_last).label
    second = next(iter(train(seeded_model(small_spec(), 7), train_set, test_set, cfg)))
    assert (second.tune_source, second.tuning_seconds, second.tuned) == ("memory", 0.0, first.tuned)
    asked = next(iter(train(seeded_model(small_spec(), 7), train_set, test_set,
                            TrainConfig(epochs=1, batch_size=32, precision="fp32", channels_last=False))))
    assert (asked.tune_source, asked.tuned, asked.candidates, asked.tuning_seconds) == ("requested", "fp32", (), 0.0)


def test_same_curve_whether_tuning_ran_or_was_cached(data):
    """Tuning works on copies with no random generator of the run: the curve is the chosen setting's own."""
    train_set, test_set = data
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.05, log_every=1, augment=True, seed=7)

    def run(c):
        events = list(train(seeded_model(small_spec(), 7), train_set, test_set, c))
        return events[0], [e.loss for e in events if isinstance(e, StepEvent)]

    start, tuned = run(cfg)
    assert start.tune_source == "measured"
    start2, cached = run(cfg)
    assert start2.tune_source == "memory" and cached == tuned
    _, explicit = run(TrainConfig(epochs=1, batch_size=32, lr=0.05, log_every=1, augment=True, seed=7,
                                  precision=start.precision, channels_last=start.channels_last))
    assert explicit == tuned


def test_the_cli_says_what_was_chosen_and_why():
    from dl_core.__main__ import describe_tuning

    base = StartEvent("cpu", "AMD EPYC", "no_accelerator", "fp32", 2, 100, 10, 1, 64, 2)
    measured = dataclasses.replace(base, candidates=(("fp32 + channels_last", 3110.4), ("fp32", 2092.0)),
                                   tuning_seconds=0.84, tuned="fp32 + channels_last", tune_source="measured",
                                   rejected=("bf16",))
    assert describe_tuning(measured) == ("setting: fp32 + channels_last (measured now in 0.8 s: fp32 + channels_last "
                                         "3,110 img/s; fp32 2,092 img/s); refused (loss differs from fp32): bf16")
    cached = dataclasses.replace(measured, tune_source="disk", rejected=())
    assert "measured earlier on this machine: fp32 + channels_last 3,110 img/s" in describe_tuning(cached)
    asked = dataclasses.replace(base, tuned="bf16", precision="bf16", channels_last=False, tune_source="requested")
    assert describe_tuning(asked) == "setting: bf16 (requested)"


def test_warm_up_kernels_runs_every_setting_and_touches_no_rng(monkeypatch):
    """A worker's start-up warm-up: each candidate setting stepped once; the global RNG untouched; never raises."""
    from dl_core import training
    from dl_core.models import course_cnn

    monkeypatch.setattr(training, "candidate_settings", lambda device_type: FOUR)
    seen: list[str] = []
    real_step = training.course_step
    monkeypatch.setattr(training, "course_step", lambda m, o, x, y, precision: seen.append(precision) or
                        real_step(m, o, x, y, precision))
    state = torch.random.get_rng_state()
    assert training.warm_up_kernels(course_cnn(), (3, 32, 32), batch_size=4) > 0
    assert seen == ["fp32", "fp32", "bf16", "bf16"]
    assert torch.equal(torch.random.get_rng_state(), state)
    assert training.warm_up_kernels(course_cnn(), (1, 28, 28), batch_size=4) >= 0  # a shape it cannot take: no error
