"""Training: the course's train/test loop (step 17) as a fast generator of events.

`train(model, train_set, test_set, config)` yields small frozen events (StartEvent, StepEvent,
EpochEvent, NoticeEvent, DoneEvent); the page, the CLI, the benchmark and the tests all just
iterate it. The loop is the course's: `model.train()`, zero_grad → forward → loss → backward →
step, then `model.eval()` + `torch.no_grad()` over the test set with the summed "整体损失" and
accuracy = correct / len(test_data). What makes it fast (see ../shared/PERFORMANCE.md): the data
stays uint8 in memory (on the GPU when there is one), batches are converted and augmented
together on the device, channels_last, bf16 where the hardware has it, no DataLoader.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import nn

from dl_core.datasets import TensorImageDataset
from dl_core.devices import DEVICE_CHOICES, DeviceChoice, detect_device
from dl_core.errors import CourseError
from dl_core.models import ModelSpec, build_model
from dl_core.preprocess import Preprocessing

OPTIMIZERS = ("sgd", "sgd_momentum", "adam")
PRECISIONS = ("auto", "fp32", "bf16")
MAX_BATCH = 4096
MAX_EPOCHS = 100
MAX_LR = 10.0
CROP_PADDING = 4  # the course's RandomCrop(..., padding=...) idea, done for a whole batch at once

StopFlag = Union[threading.Event, Callable[[], bool], None]


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; the defaults are the course's recipe (SGD lr 0.01, batch 64, 10 epochs)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.01
    optimizer: str = "sgd"  # 'sgd' (the course) | 'sgd_momentum' | 'adam'
    momentum: float = 0.9  # only for sgd_momentum
    weight_decay: float = 0.0
    device: str = "auto"  # 'auto' | 'cpu' | 'cuda' | 'mps'
    seed: int = 0
    train_subset: int | None = None  # first N training images (None: all)
    test_subset: int | None = None  # first N test images (None: all)
    augment: bool = False  # random crop (padding 4) + horizontal flip, per batch on the device
    normalize: bool = False  # Normalize([0.5]*C, [0.5]*C) after ToTensor (the course's step 4)
    log_every: int = 100  # the course prints the train loss every 100 steps
    time_limit: float | None = None  # seconds; the run stops (status 'stopped') when it is reached
    precision: str = "auto"  # 'auto' (bf16 where it is fast and measured safe) | 'fp32' | 'bf16'
    channels_last: bool = True
    test_batch_size: int = 1000  # the test pass's chunk; the course's sums are still per batch_size

    def validate(self, n_train: int | None = None, n_test: int | None = None) -> None:
        """Raise CourseError for anything out of range (epochs 1–100, lr in (0, 10], batch 1…min(n_train, 4096))."""
        if not isinstance(self.epochs, int) or not 1 <= self.epochs <= MAX_EPOCHS:
            raise CourseError("train.epochs", "epochs must be between 1 and {max}, got {value}",
                              max=MAX_EPOCHS, value=self.epochs)
        if not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) or not 0 < self.lr <= MAX_LR:
            raise CourseError("train.lr", "the learning rate must be in (0, {max}], got {value}", max=MAX_LR, value=self.lr)
        if self.optimizer not in OPTIMIZERS:
            raise CourseError("train.optimizer", "unknown optimizer {value}; choose sgd, sgd_momentum or adam",
                              value=self.optimizer)
        if not 0 <= self.momentum < 1:
            raise CourseError("train.momentum", "momentum must be in [0, 1), got {value}", value=self.momentum)
        if not math.isfinite(self.weight_decay) or not 0 <= self.weight_decay <= 1:
            raise CourseError("train.weight_decay", "weight decay must be in [0, 1], got {value}", value=self.weight_decay)
        if self.device not in DEVICE_CHOICES:
            raise CourseError("device.unknown", "unknown device {device}; choose auto, cpu, cuda or mps", device=self.device)
        if self.precision not in PRECISIONS:
            raise CourseError("train.precision", "unknown precision {value}; choose auto, fp32 or bf16", value=self.precision)
        for name, size in (("train", self.train_subset), ("test", self.test_subset)):
            if size is not None and size < 1:
                raise CourseError("train.subset", "the {which} subset needs at least 1 image, got {value}",
                                  which=name, value=size)
        if not 1 <= self.log_every <= 100_000:
            raise CourseError("train.log_every", "log every N steps: N must be between 1 and 100000, got {value}",
                              value=self.log_every)
        if self.time_limit is not None and not self.time_limit > 0:
            raise CourseError("train.time_limit", "the time limit must be positive, got {value}", value=self.time_limit)
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise CourseError("train.seed", "the seed must be a whole number ≥ 0, got {value}", value=self.seed)
        n = self.effective_train_size(n_train) if n_train is not None else None
        upper = min(MAX_BATCH, n) if n is not None else MAX_BATCH
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= upper:
            raise CourseError("train.batch_size", "batch size must be between 1 and {max}, got {value}",
                              max=upper, value=self.batch_size)
        if n_train is not None and n_train < 1:
            raise CourseError("train.no_data", "the training set is empty")
        if n_test is not None and n_test < 1:
            raise CourseError("train.no_test_data", "the test set is empty")
        if not 1 <= self.test_batch_size <= 65536:
            raise CourseError("train.test_batch_size", "test batch size must be between 1 and 65536, got {value}",
                              value=self.test_batch_size)

    def effective_train_size(self, n_train: int) -> int:
        return n_train if self.train_subset is None else min(n_train, self.train_subset)

    def effective_test_size(self, n_test: int) -> int:
        return n_test if self.test_subset is None else min(n_test, self.test_subset)

    def steps_per_epoch(self, n_train: int) -> int:
        """len(train_dataloader): ceil(n / batch_size) (drop_last=False, as the course)."""
        return math.ceil(self.effective_train_size(n_train) / self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------
# Events
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StartEvent:
    device: str  # 'cuda' | 'mps' | 'cpu'
    device_name: str
    device_reason: str
    precision: str  # 'fp32' | 'bf16'
    threads: int
    n_train: int
    n_test: int
    epochs: int
    batch_size: int
    steps_per_epoch: int


@dataclass(frozen=True)
class StepEvent:
    """One logged training step: `step` is the course's total_train_step (1-based, across epochs)."""

    epoch: int  # 1-based
    step: int
    epoch_step: int  # 1-based within the epoch
    loss: float
    images_per_sec: float
    seconds: float  # since the start of the run
    progress: float  # 0..1 over all epochs


@dataclass(frozen=True)
class EpochEvent:
    epoch: int  # 1-based
    train_loss: float  # mean over this epoch's steps
    test_loss: float  # mean per test image
    test_loss_total: float  # the course's 整体损失: sum of per-batch mean losses (batch_size as the course)
    test_accuracy: float  # correct / len(test_data)
    seconds: float  # this epoch
    images_per_sec: float  # training images/s this epoch
    elapsed: float  # since the start of the run


@dataclass(frozen=True)
class NoticeEvent:
    """Something the student should know (code has an `error.`-style catalog entry `train.notice.<code>`)."""

    code: str  # 'oom_half_batch' | 'oom_cpu'
    params: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class DoneEvent:
    status: str  # 'finished' | 'stopped' | 'diverged' | 'failed'
    reason: str  # 'completed' | 'stop_requested' | 'time_limit' | 'nan_loss' | 'out_of_memory' | 'error'
    epochs_done: int
    steps: int
    seconds: float
    device: str
    test_accuracy: float | None  # of the last test pass
    message: str = ""  # English detail for 'failed'
    predictions: torch.Tensor | None = None  # argmax of the last test pass, int64 [n_test] on the CPU
    targets: torch.Tensor | None = None  # the test targets in the same order


TrainEvent = Union[StartEvent, StepEvent, EpochEvent, NoticeEvent, DoneEvent]


# ----------------------------------------------------------------------------------------------
# Speed helpers
# ----------------------------------------------------------------------------------------------
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


@functools.cache
def tune_allocator() -> bool:
    """Raise glibc malloc's trim/mmap thresholds once per process (idempotent); True if applied.

    glibc hands big buffers back to the kernel after every step and page-faults them in again:
    2.0 M minor faults per run instead of 156 k, up to 1.4× slower (PERFORMANCE.md).
    """
    if os.name != "posix":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): nothing to tune
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1  # serve big tensors from the heap, not fresh mmaps
    ok &= mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1  # and keep freed memory for the next step
    ok &= mallopt(_M_ARENA_MAX, max(2, os.cpu_count() or 2)) == 1
    return bool(ok)


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AVX512_BF16", "AMX"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_precision(requested: str, device: str) -> str:
    """'bf16' or 'fp32' for this device. 'auto': bf16 only on CPUs with native bf16 (AVX512-BF16/AMX).

    Measured (H100, course CNN + ReLU, Shapes-10, Adam, 12 epochs): bf16 reached the same test accuracy
    as fp32 (0.95 at batch 64, 0.81 at batch 512) but ran *slower* (26k vs 32k img/s at batch 64,
    167k vs 228k at 512): a net this small is bound by kernel launches, not maths, so GPUs stay fp32.
    On CPUs without native bf16 (AVX2 here) autocast emulates it: 15× slower, never chosen.
    """
    if requested in ("fp32", "bf16"):
        return requested
    if device == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"


def augment_batch(images: torch.Tensor, generator: torch.Generator, padding: int = CROP_PADDING) -> torch.Tensor:
    """RandomCrop(size, padding) + RandomHorizontalFlip for a whole uint8 batch [B, C, H, W] at once.

    The random offsets and flips come from `generator` (the job's own, on the CPU); the pixel work
    happens on the images' device.
    """
    b, c, h, w = images.shape
    dev = images.device
    offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=generator).to(dev)
    flips = (torch.rand(b, generator=generator) < 0.5).to(dev)
    padded = F.pad(images, (padding, padding, padding, padding))
    rows = (offsets[0][:, None] + torch.arange(h, device=dev))[:, None, :, None]  # [B,1,H,1]
    cols = offsets[1][:, None] + torch.arange(w, device=dev)  # [B, W]
    cols = torch.where(flips[:, None], cols.flip(1), cols)[:, None, None, :]  # [B,1,1,W]
    return padded[torch.arange(b, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
                  rows, cols]


_INIT_LOCK = threading.Lock()  # fork_rng saves/restores the global RNG: one initialisation at a time


def seeded_model(spec: ModelSpec, seed: int) -> nn.Module:
    """build_model(spec) with weights initialised from `seed`, without disturbing anyone's global RNG."""
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(spec)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The course's torch.optim.SGD(model.parameters(), lr=0.01), or its two classic upgrades."""
    params = model.parameters()
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    momentum = config.momentum if config.optimizer == "sgd_momentum" else 0.0
    return torch.optim.SGD(params, lr=config.lr, momentum=momentum, weight_decay=config.weight_decay)


def oom_next_step(batch_size: int, device: str, halved: bool) -> tuple[str, int]:
    """What to do after a CUDA out-of-memory error: ('half', new batch) once, then ('cpu', batch), else ('fail', batch)."""
    if not halved and batch_size > 1:
        return "half", max(1, batch_size // 2)
    if device != "cpu":
        return "cpu", batch_size
    return "fail", batch_size


def _is_stopped(stop: StopFlag) -> bool:
    if stop is None:
        return False
    if isinstance(stop, threading.Event):
        return stop.is_set()
    return bool(stop())


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and k != "step":
                state[k] = v.to(device)


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    loss_mean: float
    loss_total: float  # the course's 整体损失 with DataLoader(test_data, batch_size=course_batch)
    accuracy: float
    predictions: torch.Tensor  # int64 [n] on the CPU


def evaluate(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, prep: Preprocessing,
             course_batch: int = 64, chunk: int = 1000, precision: str = "fp32",
             channels_last: bool = True) -> Evaluation:
    """The course's test loop: model.eval(), no_grad, summed loss and (argmax(1) == targets).sum() / n.

    `images` uint8 [N, C, H, W] and `targets` [N] on the model's device. Per-image losses are
    computed in big chunks (fast); the course's 整体损失 (sum over batches of each batch's mean
    loss) is rebuilt exactly from them for batches of `course_batch`.
    """
    model.eval()
    n = images.shape[0]
    losses = torch.empty(n, device=images.device)
    preds = torch.empty(n, dtype=torch.long, device=images.device)
    with torch.no_grad(), _autocast(images.device.type, precision):
        for i in range(0, n, chunk):
            x = prep.batch(images[i:i + chunk])
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            outputs = model(x).float()
            losses[i:i + chunk] = F.cross_entropy(outputs, targets[i:i + chunk], reduction="none")
            preds[i:i + chunk] = outputs.argmax(1)
    pad = (-n) % course_batch
    per_batch = F.pad(losses, (0, pad)).view(-1, course_batch).sum(1)
    sizes = torch.full_like(per_batch, course_batch)
    sizes[-1] = course_batch - pad
    total = float((per_batch / sizes).sum())
    correct = int((preds == targets).sum())
    return Evaluation(float(losses.mean()), total, correct / n, preds.cpu())


def _autocast(device_type: str, precision: str):
    if precision != "bf16":
        return contextlib.nullcontext()  # a disabled autocast still costs a few µs per step: skip it
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16)


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """int64 [num_classes, num_classes]: row = true class, column = predicted class."""
    idx = targets.long() * num_classes + predictions.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(cm: torch.Tensor) -> torch.Tensor:
    """float [num_classes]: diagonal / row sums (NaN for a class with no test image)."""
    totals = cm.sum(1).double()
    return torch.where(totals > 0, cm.diag().double() / totals.clamp(min=1), torch.full_like(totals, float("nan")))


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------
def preprocessing_for(dataset: TensorImageDataset, config: TrainConfig) -> Preprocessing:
    """The Preprocessing this run uses (stored in the checkpoint so prediction feeds the model the same way)."""
    c, h, w = dataset.images.shape[1:]
    if config.normalize:
        return Preprocessing(size=(h, w), channels=c, mean=(0.5,) * c, std=(0.5,) * c)
    return Preprocessing(size=(h, w), channels=c)


def check_model_fits(model: nn.Module, dataset: TensorImageDataset) -> None:
    """One image through the model (no_grad, on the CPU copy it has): outputs must be [1, len(classes)].

    Catches a network built for other images (the course's Linear(1024, 64) needs 3×32×32) before a
    job starts, with a message the student can act on.
    """
    c, h, w = dataset.images.shape[1:]
    probe = torch.zeros(1, c, h, w, device=next(model.parameters(), torch.zeros(())).device)
    was_training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(probe)
    except (RuntimeError, ValueError) as exc:
        raise CourseError("train.model_mismatch", "the network does not accept {shape} images: {reason}",
                          shape=f"{c}×{h}×{w}", reason=str(exc).splitlines()[0]) from exc
    finally:
        model.train(was_training)
    if out.dim() != 2 or out.shape[1] != len(dataset.classes):
        raise CourseError("train.model_outputs", "the network gives {got} outputs per image but the dataset has "
                          "{classes} classes", got=list(out.shape[1:]), classes=len(dataset.classes))


def train(model: nn.Module, train_set: TensorImageDataset, test_set: TensorImageDataset, config: TrainConfig,
          stop: StopFlag = None, device: DeviceChoice | None = None) -> Iterator[TrainEvent]:
    """Train `model` in place and yield events; the last event is always a DoneEvent.

    Images come from `train_set.images` (uint8 [N, C, H, W]) and `targets` [N]; the first
    `config.train_subset` / `test_subset` are used. `stop` (an Event or a callable) is checked
    before every step. Invalid configs raise CourseError before anything starts; errors during
    training end the run with status 'failed' instead (the model keeps its last good weights).
    """
    config.validate(len(train_set), len(test_set))
    check_model_fits(model, train_set)
    choice = device or detect_device(config.device)
    precision = choose_precision(config.precision, choice.type)
    n_train, n_test = config.effective_train_size(len(train_set)), config.effective_test_size(len(test_set))
    prep = preprocessing_for(train_set, config)
    dev = choice.torch_device
    generator = torch.Generator().manual_seed(config.seed)  # this job's own randomness, never the global RNG

    # Data converted once: uint8 stays uint8 (4× less memory than floats); on a GPU all of it lives there.
    train_images, train_targets = train_set.images[:n_train].to(dev), train_set.targets[:n_train].to(dev)
    test_images, test_targets = test_set.images[:n_test].to(dev), test_set.targets[:n_test].to(dev)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model.to(device=dev, memory_format=memory_format)
    optimizer = make_optimizer(model, config)
    loss_fn = nn.CrossEntropyLoss()
    params = [p for p in model.parameters()]
    good = [p.detach().clone() for p in params]  # the last weights that gave a finite loss
    check_every = 1 if dev.type == "cpu" else 20  # .item() syncs a GPU; on the CPU it is free

    batch_size = config.batch_size
    steps_per_epoch = math.ceil(n_train / batch_size)
    yield StartEvent(choice.type, choice.name, choice.reason, precision, torch.get_num_threads(), n_train, n_test,
                     config.epochs, batch_size, steps_per_epoch)

    t0 = time.perf_counter()
    step = 0
    halved = False
    last_eval: Evaluation | None = None
    epochs_done = 0

    def done(status: str, reason: str, message: str = "") -> DoneEvent:
        return DoneEvent(status, reason, epochs_done, step, time.perf_counter() - t0, dev.type,
                         None if last_eval is None else last_eval.accuracy, message,
                         None if last_eval is None else last_eval.predictions,
                         test_targets.cpu() if last_eval is not None else None)

    def restore_good() -> None:
        with torch.no_grad():
            for p, g in zip(params, good):
                p.copy_(g)

    for epoch in range(1, config.epochs + 1):
        # ---- training (the course: model.train(), for imgs, targets in train_dataloader) ----
        model.train()
        perm = torch.randperm(n_train, generator=generator).to(dev)  # shuffle=True, from the job's generator
        t_epoch = time.perf_counter()
        pos, epoch_step, loss_sum, loss_count = 0, 0, 0.0, 0
        pending = torch.zeros((), device=dev)  # losses since the last finiteness check (GPU: no sync per step)
        pending_n = 0
        while pos < n_train:
            if _is_stopped(stop):
                yield done("stopped", "stop_requested")
                return
            if config.time_limit is not None and time.perf_counter() - t0 > config.time_limit:
                yield done("stopped", "time_limit")
                return
            idx = perm[pos:pos + batch_size]
            try:
                imgs = train_images.index_select(0, idx)
                if config.augment:
                    imgs = augment_batch(imgs, generator)
                imgs = prep.batch(imgs).contiguous(memory_format=memory_format)
                targets = train_targets.index_select(0, idx)
                with _autocast(dev.type, precision):
                    outputs = model(imgs)
                    loss = loss_fn(outputs.float() if precision == "bf16" else outputs, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if check_every == 1:
                    value = loss.item()
                    if not math.isfinite(value):
                        restore_good()
                        yield done("diverged", "nan_loss")
                        return
                    with torch.no_grad():
                        torch._foreach_copy_(good, params)  # these weights just gave a finite loss
                else:
                    pending = pending + loss.detach().float()
                    pending_n += 1
                optimizer.step()
            except Exception as exc:  # noqa: BLE001 - every failure becomes a clear 'failed' event
                if not _is_oom(exc):
                    restore_good()
                    yield done("failed", "error", f"{type(exc).__name__}: {exc}")
                    return
                action, new_batch = oom_next_step(batch_size, dev.type, halved)
                optimizer.zero_grad(set_to_none=True)
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                if action == "fail":
                    restore_good()
                    yield done("failed", "out_of_memory", str(exc))
                    return
                if action == "half":
                    halved, batch_size = True, new_batch
                    yield NoticeEvent("oom_half_batch", (("batch_size", batch_size),))
                else:
                    dev = torch.device("cpu")
                    precision = choose_precision(config.precision, "cpu")
                    model.to(dev)
                    _move_optimizer_state(optimizer, dev)
                    train_images, train_targets = train_images.cpu(), train_targets.cpu()
                    test_images, test_targets = test_images.cpu(), test_targets.cpu()
                    perm, pending, check_every = perm.cpu(), pending.cpu(), 1
                    good = [g.cpu() for g in good]
                    yield NoticeEvent("oom_cpu", (("batch_size", batch_size),))
                continue  # retry the same images
            pos += idx.shape[0]
            step += 1
            epoch_step += 1
            if check_every == 1:
                loss_sum, loss_count = loss_sum + value, loss_count + 1
            elif pending_n >= check_every or pos >= n_train or step % config.log_every == 0:
                total = pending.item()
                if not math.isfinite(total):
                    restore_good()
                    yield done("diverged", "nan_loss")
                    return
                with torch.no_grad():
                    torch._foreach_copy_(good, params)
                loss_sum, loss_count = loss_sum + total, loss_count + pending_n
                pending, pending_n = torch.zeros((), device=dev), 0
            if step % config.log_every == 0 or pos >= n_train:
                now = time.perf_counter()
                elapsed_epoch = now - t_epoch
                yield StepEvent(epoch, step, epoch_step, float(loss.item() if check_every != 1 else value),
                                pos / max(elapsed_epoch, 1e-9), now - t0,
                                ((epoch - 1) + pos / n_train) / config.epochs)
        train_seconds = time.perf_counter() - t_epoch
        # ---- testing (the course: model.eval(), with torch.no_grad(), 整体损失, 整体正确率) ----
        try:
            last_eval = evaluate(model, test_images, test_targets, prep, course_batch=config.batch_size,
                                 chunk=config.test_batch_size, precision=precision, channels_last=config.channels_last)
        except Exception as exc:  # noqa: BLE001
            yield done("failed", "out_of_memory" if _is_oom(exc) else "error", f"{type(exc).__name__}: {exc}")
            return
        epochs_done = epoch
        yield EpochEvent(epoch, loss_sum / max(loss_count, 1), last_eval.loss_mean, last_eval.loss_total,
                         last_eval.accuracy, time.perf_counter() - t_epoch, n_train / max(train_seconds, 1e-9),
                         time.perf_counter() - t0)
    yield done("finished", "completed")


def run_to_end(model: nn.Module, train_set: TensorImageDataset, test_set: TensorImageDataset,
               config: TrainConfig, stop: StopFlag = None) -> list[TrainEvent]:
    """Every event of a run, as a list (tests, notebooks)."""
    return list(train(model, train_set, test_set, config, stop))


# ----------------------------------------------------------------------------------------------
# Course steps 13–14, computed live: the loss of one example, backward, and why zero_grad
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LossExample:
    x: list[float]
    y: int
    loss: float  # nn.CrossEntropyLoss()(x, y): 1.1019 for the course's x=[[0.1,0.2,0.3]], y=[1]
    by_formula: float  # -x[y] + log(sum(exp(x))), the same number by hand
    grad: list[float]  # d loss / d x = softmax(x) - one_hot(y), what loss.backward() puts in x.grad


def loss_example(x: tuple[float, ...] = (0.1, 0.2, 0.3), y: int = 1) -> LossExample:
    """The course's CrossEntropyLoss example: x=[[0.1,0.2,0.3]], y=[1] → 1.1019, and its gradient."""
    if not 2 <= len(x) <= 20 or not all(math.isfinite(v) for v in x):
        raise CourseError("train.example_x", "x needs 2 to 20 finite numbers")
    if not 0 <= y < len(x):
        raise CourseError("train.example_y", "y must be a class index from 0 to {max}", max=len(x) - 1)
    xt = torch.tensor([list(x)], dtype=torch.float64, requires_grad=True)
    loss = nn.CrossEntropyLoss()(xt, torch.tensor([y]))
    loss.backward()
    by_formula = -x[y] + math.log(sum(math.exp(v) for v in x))
    return LossExample(list(x), y, float(loss.detach()), by_formula, [float(g) for g in xt.grad[0]])


@dataclass(frozen=True)
class ZeroGradDemo:
    grad_once: float  # w.grad after one backward
    grad_twice_without_zero: float  # after a second backward without zero_grad: added, twice as big
    grad_twice_with_zero: float  # zero_grad between: the same as once
    w_before: float
    w_after_step: float  # w - lr * grad (SGD step)
    lr: float


def zero_grad_demo(w0: float = 2.0, x: float = 3.0, lr: float = 0.01) -> ZeroGradDemo:
    """loss = (w·x)²: backward twice without zero_grad doubles w.grad; optimizer.step() does w -= lr·grad."""
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=lr)

    def backward() -> float:
        (w * x).pow(2).backward()
        return float(w.grad.detach())

    once = backward()
    twice = backward()
    opt.zero_grad()
    with_zero = backward()
    opt.step()
    return ZeroGradDemo(once, twice, with_zero, w0, float(w.detach()), lr)


def replace_config(config: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy with some fields changed (frozen dataclasses are never mutated)."""
    return replace(config, **changes)
