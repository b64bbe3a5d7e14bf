"""The training engine: it learns, stops, survives divergence, is reproducible, refuses bad configs."""
from __future__ import annotations

import math
import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dl_core.datasets import TensorImageDataset
from dl_core.devices import DeviceChoice
from dl_core.errors import CourseError
from dl_core.models import LayerSpec, ModelSpec, course_cnn
from dl_core.preprocess import Preprocessing
from dl_core.training import (
    DoneEvent, EpochEvent, NoticeEvent, ProbeEvent, StartEvent, StepEvent, TrainConfig, augment_batch, choose_precision,
    confusion_matrix, evaluate, loss_example, oom_next_step, per_class_accuracy, seeded_model, train,
    tune_allocator, zero_grad_demo,
)


def separable(n: int, seed: int, classes: int = 4, size: int = 16) -> TensorImageDataset:
    """A bright square in a class-specific quadrant/channel on dim noise: easy, but needs learning."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, classes, (n,), generator=g)
    images = torch.randint(0, 60, (n, 3, size, size), generator=g, dtype=torch.uint8)
    half = size // 2
    for c in range(classes):
        m = targets == c
        r, q = divmod(c, 2)
        images[m, c % 3, r * half:(r + 1) * half, q * half:(q + 1) * half] += 180
    return TensorImageDataset(images, targets, [f"c{i}" for i in range(classes)], name="separable")


def small_spec(channels: int = 3, classes: int = 4, size: int = 16) -> ModelSpec:
    return ModelSpec(layers=(
        LayerSpec("Conv2d", {"in_channels": channels, "out_channels": 8, "kernel_size": 3, "padding": 1}),
        LayerSpec("MaxPool2d", {"kernel_size": 4}),
        LayerSpec("Flatten"),
        LayerSpec("Linear", {"in_features": 8 * (size // 4) ** 2, "out_features": classes}),
    ))


@pytest.fixture(scope="module")
def data():
    return separable(384, 0), separable(128, 1)


def shapes10_or_none():
    try:
        from dl_core.datasets import load_dataset
        return load_dataset("shapes10", train=True), load_dataset("shapes10", train=False)
    except Exception:  # the Shapes-10 generator lands in another issue; synthetic data covers the engine
        return None


def test_learns_well_above_chance_in_one_epoch(data):
    train_set, test_set = data
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.05, log_every=5)
    events = list(train(seeded_model(small_spec(), 0), train_set, test_set, cfg))
    assert isinstance(events[0], StartEvent) and events[0].steps_per_epoch == 24
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.status == "finished", done
    assert done.test_accuracy > 0.8  # chance is 0.25
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == [5, 10, 15, 20, 24]  # every 5 steps and the epoch's last
    assert steps[-1].progress == pytest.approx(1.0)
    epoch = next(e for e in events if isinstance(e, EpochEvent))
    assert epoch.test_accuracy == done.test_accuracy and math.isfinite(epoch.train_loss)


def test_runs_the_course_cnn_on_shapes10_subset():
    """The real thing, small: the course's CNN on the first 256 Shapes-10 images, two epochs, overfitting them.

    (Shapes-10's test accuracy stays near chance for the course's linear-only CNN over a few short epochs:
    the separable data above is the "learns" check; here the training loss on a small subset must fall.)
    """
    sets = shapes10_or_none()
    if sets is None:
        pytest.skip("dl_core.datasets.load_dataset('shapes10') is not available")
    train_set, test_set = sets
    cfg = TrainConfig(epochs=4, batch_size=32, lr=0.001, optimizer="adam", train_subset=256, test_subset=64,
                      log_every=1000)
    events = list(train(seeded_model(course_cnn(3, 10), 0), train_set, test_set, cfg))
    losses = [e.train_loss for e in events if isinstance(e, EpochEvent)]
    assert events[-1].status == "finished" and events[-1].predictions.shape == (64,)
    assert losses[-1] < losses[0] - 0.05, losses


def test_same_seed_same_curve_different_seed_different(data):
    train_set, test_set = data
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.05, log_every=1, augment=True, seed=7)

    def curve(c):
        return [e.loss for e in train(seeded_model(small_spec(), c.seed), train_set, test_set, c)
                if isinstance(e, StepEvent)]

    torch.manual_seed(123)
    a = curve(cfg)
    torch.rand(5)  # someone else using the global RNG in between changes nothing
    b = curve(cfg)
    assert a == b
    assert curve(TrainConfig(epochs=1, batch_size=32, lr=0.05, log_every=1, augment=True, seed=8)) != a


def test_global_rng_untouched(data):
    train_set, test_set = data
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    list(train(seeded_model(small_spec(), 1), train_set, test_set, TrainConfig(epochs=1, batch_size=64, augment=True)))
    assert torch.equal(torch.rand(3), expected)


def test_stop_flag_within_one_step(data):
    train_set, test_set = data
    stop = threading.Event()
    events = []
    for e in train(seeded_model(small_spec(), 0), train_set, test_set,
                   TrainConfig(epochs=3, batch_size=8, log_every=1), stop):
        events.append(e)
        if isinstance(e, StepEvent) and e.step == 3:
            stop.set()
    done = events[-1]
    assert done.status == "stopped" and done.reason == "stop_requested"
    assert done.steps == 3  # not one step more


def test_stop_callable_and_time_limit(data):
    train_set, test_set = data
    done = list(train(seeded_model(small_spec(), 0), train_set, test_set, TrainConfig(epochs=1), lambda: True))[-1]
    assert (done.status, done.steps) == ("stopped", 0)
    done = list(train(seeded_model(small_spec(), 0), train_set, test_set,
                      TrainConfig(epochs=100, batch_size=8, time_limit=0.3)))[-1]
    assert (done.status, done.reason) == ("stopped", "time_limit")


def test_divergence_keeps_finite_weights(data):
    train_set, test_set = data
    model = seeded_model(small_spec(), 0)
    events = list(train(model, train_set, test_set, TrainConfig(epochs=5, batch_size=16, lr=10.0, log_every=1)))
    done = events[-1]
    assert (done.status, done.reason) == ("diverged", "nan_loss")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    out = model(Preprocessing(size=(16, 16)).batch(test_set.images[:8]).contiguous(memory_format=torch.channels_last))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("changes, code", [
    ({"epochs": 0}, "train.epochs"), ({"epochs": 101}, "train.epochs"),
    ({"lr": 0.0}, "train.lr"), ({"lr": 10.5}, "train.lr"), ({"lr": float("nan")}, "train.lr"),
    ({"batch_size": 0}, "train.batch_size"), ({"batch_size": 385}, "train.batch_size"),
    ({"batch_size": 4097, "train_subset": None}, "train.batch_size"),
    ({"optimizer": "rmsprop"}, "train.optimizer"), ({"device": "tpu"}, "device.unknown"),
    ({"weight_decay": -1.0}, "train.weight_decay"), ({"train_subset": 0}, "train.subset"),
    ({"log_every": 0}, "train.log_every"), ({"time_limit": -1.0}, "train.time_limit"),
    ({"seed": -3}, "train.seed"), ({"precision": "fp8"}, "train.precision"),
    ({"momentum": 1.0}, "train.momentum"),
])
def test_invalid_configs_rejected(data, changes, code):
    train_set, test_set = data
    cfg = TrainConfig(**changes)
    with pytest.raises(CourseError) as info:
        list(train(seeded_model(small_spec(), 0), train_set, test_set, cfg))
    assert info.value.code == code


def test_batch_limit_follows_subset():
    TrainConfig(batch_size=100, train_subset=100).validate(1000, 10)
    with pytest.raises(CourseError):
        TrainConfig(batch_size=101, train_subset=100).validate(1000, 10)


def test_course_recipe_defaults():
    cfg = TrainConfig()
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.optimizer, cfg.log_every) == (10, 64, 0.01, "sgd", 100)
    assert cfg.steps_per_epoch(50_000) == 782 and cfg.steps_per_epoch(10_000) == 157


class OomAbove(nn.Module):
    """A fake that raises CUDA's out-of-memory error for batches larger than `limit` (or always)."""

    def __init__(self, inner: nn.Module, limit: int) -> None:
        super().__init__()
        self.inner, self.limit, self.calls = inner, limit, 0

    def forward(self, x):
        self.calls += 1
        if x.shape[0] > self.limit and self.training:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(x)


def test_oom_halves_the_batch_then_finishes(data):
    train_set, test_set = data
    model = OomAbove(seeded_model(small_spec(), 0), limit=16)
    events = list(train(model, train_set, test_set, TrainConfig(epochs=1, batch_size=32, lr=0.05, log_every=4)))
    notices = [e for e in events if isinstance(e, NoticeEvent)]
    assert [(n.code, dict(n.params)) for n in notices] == [("oom_half_batch", {"batch_size": 16})]
    assert events[-1].status == "finished" and events[-1].steps == 24  # 384 / 16


def test_oom_twice_on_cpu_fails_clearly(data):
    train_set, test_set = data
    model = OomAbove(seeded_model(small_spec(), 0), limit=0)
    events = list(train(model, train_set, test_set, TrainConfig(epochs=1, batch_size=32)))
    assert [e.code for e in events if isinstance(e, NoticeEvent)] == ["oom_half_batch"]
    assert (events[-1].status, events[-1].reason) == ("failed", "out_of_memory")


def test_oom_decision_table():
    assert oom_next_step(64, "cuda", halved=False) == ("half", 32)
    assert oom_next_step(32, "cuda", halved=True) == ("cpu", 32)
    assert oom_next_step(1, "cuda", halved=False) == ("cpu", 1)
    assert oom_next_step(32, "cpu", halved=True) == ("fail", 32)


def test_device_detection_with_fakes(monkeypatch):
    from dl_core import devices

    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(devices.torch.cuda, "get_device_name", lambda i=0: "Fake GPU")
    assert devices.detect_device("auto") == DeviceChoice("cuda", "Fake GPU", "cuda_available")
    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert devices.detect_device("auto").type == "mps"
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    assert devices.detect_device("auto").reason == "no_accelerator"
    with pytest.raises(CourseError) as info:
        devices.detect_device("cuda")
    assert info.value.code == "device.cuda_missing"


def test_precision_choice_before_measuring(monkeypatch):
    """Explicit requests are kept; 'auto' starts from fp32 whatever the CPU flags say (autotune decides by timing)."""
    assert choose_precision("fp32", "cuda") == "fp32" and choose_precision("bf16", "cpu") == "bf16"
    assert choose_precision("auto", "mps") == "fp32" and choose_precision("auto", "cuda") == "fp32"
    from dl_core import devices
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)  # the Xeon where bf16 was 1.5× slower
    assert choose_precision("auto", "cpu") == "fp32"


def test_platform_tuning_names_stay_importable_from_training():
    from dl_core import devices, training
    for name in ("tune_allocator", "choose_precision", "cpu_has_fast_bf16", "autotune", "precision_context"):
        assert getattr(training, name) is getattr(devices, name)


def test_evaluate_matches_course_loop(data):
    _, test_set = data
    test_set = test_set.subset(100)
    model = seeded_model(small_spec(), 3).eval()
    prep = Preprocessing(size=(16, 16))
    ev = evaluate(model, test_set.images, test_set.targets, prep, course_batch=64, chunk=30)
    # The course: DataLoader(test_data, batch_size=64), total_test_loss += loss.item()
    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, 100, 64):
            imgs, targets = prep.batch(test_set.images[i:i + 64]), test_set.targets[i:i + 64]
            outputs = model(imgs)
            total += nn.CrossEntropyLoss()(outputs, targets).item()
            correct += int((outputs.argmax(1) == targets).sum())
    assert ev.loss_total == pytest.approx(total, rel=1e-5)
    assert ev.accuracy == correct / 100


def test_augment_batch_is_crop_and_flip():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).view(2, 1, 4, 4)
    out = augment_batch(x, g, padding=0)  # no padding: only flips
    for i in range(2):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))
    out = augment_batch(torch.full((3, 3, 8, 8), 200, dtype=torch.uint8), torch.Generator().manual_seed(1), 4)
    assert out.shape == (3, 3, 8, 8) and out.dtype == torch.uint8
    assert set(out.unique().tolist()) <= {0, 200}


def test_confusion_and_per_class():
    cm = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 4)
    assert cm.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    acc = per_class_accuracy(cm)
    assert acc[:3].tolist() == [1.0, 1.0, 0.5] and math.isnan(acc[3])


def test_course_steps_13_14_live():
    ex = loss_example()
    assert round(ex.loss, 4) == 1.1019 and ex.by_formula == pytest.approx(ex.loss)
    torch_grad = torch.softmax(torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64), 0) - F.one_hot(torch.tensor(1), 3)
    assert ex.grad == pytest.approx(torch_grad.tolist())
    demo = zero_grad_demo()
    assert demo.grad_twice_without_zero == 2 * demo.grad_once == 2 * demo.grad_twice_with_zero
    assert demo.w_after_step == pytest.approx(demo.w_before - demo.lr * demo.grad_once)
    with pytest.raises(CourseError):
        loss_example((0.1, 0.2), 5)


def test_tune_allocator_idempotent():
    first = tune_allocator()
    assert tune_allocator() is first


# -- live accuracy (issue 12) -------------------------------------------------------------------------
def test_probes_report_live_accuracy_between_epoch_ends(data):
    train_set, test_set = data
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05, log_every=100, probe_every=5, probe_images=100)
    events = list(train(seeded_model(small_spec(), 0), train_set, test_set, cfg))
    start, probes = events[0], [e for e in events if isinstance(e, ProbeEvent)]
    assert (start.probe_every, start.probe_images) == (5, 100)
    assert [(p.epoch, p.step) for p in probes] == [(1, 5), (1, 10), (1, 15), (1, 20), (2, 29), (2, 34), (2, 39), (2, 44)]
    assert all(p.images == 100 and 0 <= p.accuracy <= 1 and math.isfinite(p.loss) for p in probes)
    assert [p.seconds for p in probes] == sorted(p.seconds for p in probes)
    assert max(p.accuracy for p in probes) > 0.6  # learning is visible inside the first epochs
    # never at an epoch's end (step 24 and 48): the EpochEvent carries that accuracy
    kinds = [type(e).__name__ for e in events]
    assert kinds[kinds.index("EpochEvent") - 1] == "StepEvent"


def test_a_probe_is_the_test_pass_on_the_first_images(data):
    train_set, test_set = data
    model = seeded_model(small_spec(), 0)
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.05, probe_every=23, probe_images=50, precision="fp32")
    probe = next(e for e in train(model, train_set, test_set, cfg) if isinstance(e, ProbeEvent))
    assert probe.step == 23 and probe.images == 50
    # replay: the weights after 23 steps, tested on test_set[:50] as the course does
    replay = seeded_model(small_spec(), 0)
    stop_after = iter(range(10**6))
    for e in train(replay, train_set, test_set, TrainConfig(epochs=1, batch_size=16, lr=0.05, precision="fp32",
                                                                   probe_images=0, log_every=1),
                   lambda: next(stop_after) >= 23):
        pass
    ev = evaluate(replay, test_set.images[:50], test_set.targets[:50], Preprocessing(size=(16, 16)))
    assert probe.accuracy == ev.accuracy and probe.loss == pytest.approx(ev.loss_mean, rel=1e-6)


def test_probes_change_nothing_in_the_training(data):
    train_set, test_set = data

    def run(**probe):
        model = seeded_model(small_spec(), 2)
        cfg = TrainConfig(epochs=2, batch_size=32, lr=0.05, augment=True, seed=9, log_every=1, **probe)
        events = list(train(model, train_set, test_set, cfg))
        return model.state_dict(), [e.loss for e in events if isinstance(e, StepEvent)], events

    off_weights, off_curve, off_events = run(probe_images=0)
    on_weights, on_curve, on_events = run(probe_every=1, probe_images=64)
    assert not any(isinstance(e, ProbeEvent) for e in off_events)
    assert sum(isinstance(e, ProbeEvent) for e in on_events) == 2 * 11  # 12 steps per epoch, none at the end
    assert on_curve == off_curve
    assert all(torch.equal(on_weights[k], off_weights[k]) for k in off_weights)


def test_automatic_probe_interval():
    assert TrainConfig().probe_interval(50_000, 10_000) == 78  # 782 steps per epoch: every 78th, 10 per epoch
    # 10,000 images, batch 64 (157 steps): 500-image probes every 29th step, so they cost ≤ 10 % of the time
    assert TrainConfig(train_subset=10_000).probe_interval(50_000, 10_000) == 29
    assert TrainConfig(train_subset=5_000).probe_interval(50_000, 10_000) == 29  # Shapes-10: 79 steps, 2 probes
    assert TrainConfig(train_subset=10_000).probe_interval(50_000, 100) == 15  # cheap probes: 10 per epoch
    assert TrainConfig(probe_every=7).probe_interval(100) == 7
    assert TrainConfig(probe_images=0, probe_every=7).probe_interval(100) == 0
    assert TrainConfig(batch_size=1, probe_images=1).probe_interval(3, 3) == 4  # never more often than it costs


def test_start_event_keeps_old_constructors_working():
    e = StartEvent("cpu", "CPU", "requested", "fp32", 1, 10, 10, 1, 10, 1)
    assert (e.channels_last, e.candidates, e.tuning_seconds, e.tuned) == (True, (), 0.0, "")
