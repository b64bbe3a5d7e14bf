"""Training: the course's train/test loop (step 17) as a fast generator of events.

`train(model, train_set, test_set, config)` yields small frozen events (StartEvent, StepEvent,
ProbeEvent, EpochEvent, NoticeEvent, DoneEvent); the page, the CLI, the benchmark and the tests all
just iterate it. The loop is the course's: `model.train()`, forward → loss → zero_grad → backward →
step, then `model.eval()` + `torch.no_grad()` over the test set with the summed "整体损失" and
accuracy = correct / len(test_data). What makes it fast (see ../shared/PERFORMANCE.md): the data
stays uint8 in memory (on the GPU when there is one), batches are converted and augmented together
on the device, no DataLoader, and the precision and memory layout that `devices.autotune` measured
fastest here (precision="auto"). tests/test_equivalence.py checks that the fast step is the course's maths.
"""
from __future__ import annotations

import math
import numbers
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import nn

from dl_core.datasets import TensorImageDataset
from dl_core.devices import (  # noqa: F401 - platform tuning lives in devices; these names stay importable here
    DEVICE_CHOICES, DeviceChoice, Setting, TuneResult, autocast_context, autotune, candidate_settings, choose_precision,
    clear_tuning_cache, cpu_has_fast_bf16, detect_device, math_context, precision_context, tune_allocator,
    tuning_cache_file, tuning_key,
)
from dl_core.errors import CourseError
from dl_core.models import ModelSpec, build_model
from dl_core.preprocess import Preprocessing
from dl_core.seeding import generator as job_generator, seeded

OPTIMIZERS = ("sgd", "sgd_momentum", "adam")
PRECISIONS = ("auto", "fp32", "bf16")
MAX_BATCH = 4096
MAX_EPOCHS = 100
MAX_LR = 10.0
MAX_PROBE_IMAGES = 100_000
CROP_PADDING = 4  # the course's RandomCrop(..., padding=...) idea, done for a whole batch at once
PROBES_PER_EPOCH = 10  # probe_every=0: about this many live accuracy checks per epoch...
PROBE_MAX_SHARE = 0.10  # ...as long as they cost at most this share of the training time
# A test image costs this share of a training image: the FLOP ratio, 24.7 of 69.2 MFLOP; measured 0.33 (course
# CNN, AVX2, 1 thread: a probe of 500 images = 2.64 steps of 64).
PROBE_IMAGE_COST = 0.36

StopFlag = Union[threading.Event, Callable[[], bool], None]


def _whole(value: Any, lo: float, hi: float) -> bool:
    """A whole number in [lo, hi]; True/False are not numbers here (Python counts bool as int)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and lo <= value <= hi


def _real(value: Any, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> bool:
    """A finite real number in [lo, hi] (or open at either end); no bool, no NaN, no inf."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        v = float(value)
    except (OverflowError, ValueError):
        return False
    if not math.isfinite(v):
        return False
    return (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)


def _subset_ok(value: Any) -> bool:
    return value is None or _whole(value, 1, math.inf)  # larger than the dataset: all of it


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
    precision: str = "auto"  # 'auto' (timed here: devices.autotune, layout included) | 'fp32' | 'bf16'
    channels_last: bool = True  # the layout when precision is 'fp32' or 'bf16'; 'auto' times both
    test_batch_size: int = 1000  # the test pass's chunk; the course's sums are still per batch_size
    probe_every: int = 0  # steps between live accuracy probes (0: about 10 per epoch)
    probe_images: int = 500  # a probe tests the first N test images (0: no probes)

    def validate(self, n_train: int | None = None, n_test: int | None = None) -> None:
        """Raise CourseError for any field of the wrong type or out of range, never another exception.

        epochs 1–100, lr in (0, 10], batch 1…min(n_train, 4096); numbers must be finite and a bool is
        not a number (True for epochs is refused).
        """
        self._validate_numbers()
        self._validate_choices()
        n = self.effective_train_size(n_train) if n_train is not None else None
        upper = min(MAX_BATCH, n) if n is not None else MAX_BATCH
        if not _whole(self.batch_size, 1, upper):
            raise CourseError("train.batch_size", "batch size must be between 1 and {max}, got {value}",
                              max=upper, value=self.batch_size)
        if n_train is not None and n_train < 1:
            raise CourseError("train.no_data", "the training set is empty")
        if n_test is not None and n_test < 1:
            raise CourseError("train.no_test_data", "the test set is empty")

    def _validate_numbers(self) -> None:
        if not _whole(self.epochs, 1, MAX_EPOCHS):
            raise CourseError("train.epochs", "epochs must be between 1 and {max}, got {value}",
                              max=MAX_EPOCHS, value=self.epochs)
        if not _real(self.lr, 0, MAX_LR, lo_open=True):
            raise CourseError("train.lr", "the learning rate must be in (0, {max}], got {value}", max=MAX_LR, value=self.lr)
        if not _real(self.momentum, 0, 1, hi_open=True):
            raise CourseError("train.momentum", "momentum must be in [0, 1), got {value}", value=self.momentum)
        if not _real(self.weight_decay, 0, 1):
            raise CourseError("train.weight_decay", "weight decay must be in [0, 1], got {value}", value=self.weight_decay)
        for name, size in (("train", self.train_subset), ("test", self.test_subset)):
            if not _subset_ok(size):
                raise CourseError("train.subset", "the {which} subset needs at least 1 image, got {value}",
                                  which=name, value=size)
        if not _whole(self.log_every, 1, 100_000):
            raise CourseError("train.log_every", "log every N steps: N must be between 1 and 100000, got {value}",
                              value=self.log_every)
        if self.time_limit is not None and not _real(self.time_limit, 0, math.inf, lo_open=True):
            raise CourseError("train.time_limit", "the time limit must be positive, got {value}", value=self.time_limit)
        if not _whole(self.seed, 0, 2**63 - 1):
            raise CourseError("train.seed", "the seed must be a whole number ≥ 0, got {value}", value=self.seed)
        if not _whole(self.test_batch_size, 1, 65536):
            raise CourseError("train.test_batch_size", "test batch size must be between 1 and 65536, got {value}",
                              value=self.test_batch_size)
        if not _whole(self.probe_every, 0, 100_000):
            raise CourseError("train.probe_every", "probe every N steps: N must be between 0 (automatic) and "
                              "100000, got {value}", value=self.probe_every)
        if not _whole(self.probe_images, 0, MAX_PROBE_IMAGES):
            raise CourseError("train.probe_images", "probe images must be between 0 (no probes) and {max}, "
                              "got {value}", max=MAX_PROBE_IMAGES, value=self.probe_images)

    def _validate_choices(self) -> None:
        if not isinstance(self.optimizer, str) or self.optimizer not in OPTIMIZERS:
            raise CourseError("train.optimizer", "unknown optimizer {value}; choose sgd, sgd_momentum or adam",
                              value=self.optimizer)
        if not isinstance(self.device, str) or self.device not in DEVICE_CHOICES:
            raise CourseError("device.unknown", "unknown device {device}; choose auto, cpu, cuda or mps", device=self.device)
        if not isinstance(self.precision, str) or self.precision not in PRECISIONS:
            raise CourseError("train.precision", "unknown precision {value}; choose auto, fp32 or bf16", value=self.precision)
        for name in ("augment", "normalize", "channels_last"):
            if not isinstance(getattr(self, name), bool):
                raise CourseError("train.flag", "{name} must be True or False, got {value}",
                                  name=name, value=getattr(self, name))

    def effective_train_size(self, n_train: int) -> int:
        return n_train if self.train_subset is None else min(n_train, self.train_subset)

    def effective_test_size(self, n_test: int) -> int:
        return n_test if self.test_subset is None else min(n_test, self.test_subset)

    def steps_per_epoch(self, n_train: int) -> int:
        """len(train_dataloader): ceil(n / batch_size) (drop_last=False, as the course)."""
        return math.ceil(self.effective_train_size(n_train) / self.batch_size)

    def probe_interval(self, n_train: int, n_test: int | None = None) -> int:
        """Steps between ProbeEvents; 0 when probes are off (probe_images 0).

        probe_every when set; automatic (0): about 10 per epoch, max(1, steps_per_epoch // 10), but never
        so often that probes cost more than PROBE_MAX_SHARE of the training time: a probe image costs
        about PROBE_IMAGE_COST of a training image (a forward pass without backward or update).
        """
        images = self.probe_images if n_test is None else min(self.probe_images, self.effective_test_size(n_test))
        if images <= 0:
            return 0
        if self.probe_every:
            return self.probe_every
        affordable = math.ceil(PROBE_IMAGE_COST * images / (self.batch_size * PROBE_MAX_SHARE))
        return max(1, self.steps_per_epoch(n_train) // PROBES_PER_EPOCH, affordable)

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
    precision: str  # 'fp32' | 'bf16' | 'tf32' (CUDA)
    threads: int
    n_train: int
    n_test: int
    epochs: int
    batch_size: int
    steps_per_epoch: int
    # What devices.autotune chose and why (precision='auto'); new fields keep defaults so old constructors work.
    channels_last: bool = True
    candidates: tuple[tuple[str, float], ...] = ()  # ('fp32 + channels_last', images/s), fastest first
    tuning_seconds: float = 0.0  # what measuring cost in this run (0 when the choice was cached or requested)
    tuned: str = ""  # the chosen setting's label, e.g. 'fp32 + channels_last'
    # 'measured' | 'partial' (the budget ran out before every candidate was timed; not kept on disk) | 'memory' |
    # 'disk' (cached) | 'requested' (precision fp32/bf16) | 'unmeasured' (one step exceeds the budget: fp32 default)
    tune_source: str = ""
    rejected: tuple[str, ...] = ()  # labels timed but refused: their loss differed from fp32's
    probe_every: int = 0  # steps between ProbeEvents (0: no probes)
    probe_images: int = 0  # images each probe tests (the first N test images)


@dataclass(frozen=True)
class StepEvent:
    """One logged training step: `step` is the course's total_train_step (1-based, across epochs)."""

    epoch: int  # 1-based
    step: int
    epoch_step: int  # 1-based within the epoch
    loss: float
    images_per_sec: float  # training speed this epoch so far (probe time left out)
    seconds: float  # since the start of the run
    progress: float  # 0..1 over all epochs


@dataclass(frozen=True)
class ProbeEvent:
    """Live accuracy inside an epoch: the model tested (eval, no_grad) on the same first `images` test images.

    Emitted every `probe_every` steps, never at an epoch's end (the EpochEvent covers that).
    """

    epoch: int  # 1-based
    step: int  # total_train_step at the probe
    accuracy: float  # correct / images
    loss: float  # mean per image
    images: int
    seconds: float  # since the start of the run


@dataclass(frozen=True)
class EpochEvent:
    epoch: int  # 1-based
    train_loss: float  # mean over this epoch's steps
    test_loss: float  # mean per test image
    test_loss_total: float  # the course's 整体损失: sum of per-batch mean losses (batch_size as the course)
    test_accuracy: float  # correct / len(test_data)
    seconds: float  # this epoch
    images_per_sec: float  # training images/s this epoch (probe time left out)
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


TrainEvent = Union[StartEvent, StepEvent, ProbeEvent, EpochEvent, NoticeEvent, DoneEvent]


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
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


def seeded_model(spec: ModelSpec, seed: int) -> nn.Module:
    """build_model(spec) with weights initialised from `seed`, without disturbing anyone's global RNG."""
    with seeded(seed):  # nn.Module initialisation only takes the global RNG
        return build_model(spec)


def warm_up_kernels(spec: ModelSpec, input_shape: tuple[int, ...], batch_size: int = 64) -> float:
    """One course step of `spec` in every CPU setting the autotuner times, on a batch of zeros; returns seconds.

    A new process pays first-call costs (kernel selection, JIT code) on its first steps; a worker does this
    when it starts, so its first run's autotune times steps instead of start-up (a fresh worker measured
    too slow to finish: fp32 chosen where bf16 is 2x faster). Touches no random generator.
    """
    start = time.perf_counter()
    imgs = torch.zeros(batch_size, *input_shape)
    targets = torch.zeros(batch_size, dtype=torch.int64)
    model = seeded_model(spec, 0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    for setting in candidate_settings("cpu"):
        try:
            model.to(memory_format=setting.memory_format)
            course_step(model, optimizer, imgs.contiguous(memory_format=setting.memory_format), targets,
                        setting.precision)
        except Exception:  # noqa: BLE001 - a setting this machine cannot run: the autotuner skips it too
            continue
    return time.perf_counter() - start


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
    with torch.no_grad(), precision_context(precision, images.device.type):
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


_LOSS_FN = nn.CrossEntropyLoss()  # the course's loss_fn


def course_step(model: nn.Module, optimizer: torch.optim.Optimizer, imgs: torch.Tensor, targets: torch.Tensor,
                precision: str = "fp32", before_update: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
    """The course's step (14, 17): outputs = model(imgs); loss = loss_fn(outputs, targets);
    optimizer.zero_grad(); loss.backward(); optimizer.step(). Returns the loss tensor (no device sync).

    `precision` 'bf16' runs the forward in autocast (the loss itself is fp32), 'tf32' allows TF32 on
    CUDA. `before_update(loss)` runs between backward and step: the divergence guard, which may raise.
    """
    with math_context(precision, imgs.device.type):
        with autocast_context(precision, imgs.device.type):
            outputs = model(imgs)
            loss = _LOSS_FN(outputs.float(), targets)  # .float() is a no-op in fp32
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if before_update is not None:
            before_update(loss)
        optimizer.step()
    return loss


class _Diverged(Exception):
    """The loss became NaN or inf; the guard has already put the last good weights back."""


class DivergenceGuard:
    """Keeps the last weights that gave a finite loss, and puts them back when the loss turns NaN or inf.

    On the CPU each loss is read before its update (`.item()` costs nothing there). On a GPU `.item()`
    waits for the device, so losses are summed there and checked every `every` steps, and whenever
    the loop needs the number anyway (a logged step, an epoch's end).
    """

    def __init__(self, params: list[torch.Tensor], device: torch.device) -> None:
        self.params = params
        self.good = [p.detach().clone() for p in params]
        self.every = 1 if device.type == "cpu" else 20
        self.value = math.nan  # the last loss read (CPU)
        self.pending: torch.Tensor | None = None  # GPU: the losses since the last check, summed on the device
        self.pending_n = 0
        self.loss_sum, self.loss_count = 0.0, 0  # this epoch's checked losses

    def new_epoch(self) -> None:
        self.loss_sum, self.loss_count = 0.0, 0

    @property
    def epoch_loss(self) -> float:
        return self.loss_sum / max(self.loss_count, 1)

    def before_update(self, loss: torch.Tensor) -> None:
        """Between backward and step. CPU: a non-finite loss restores the good weights and raises _Diverged."""
        if self.every == 1:
            self.value = loss.item()
            if not math.isfinite(self.value):
                self.restore()
                raise _Diverged
            self._keep()  # these weights just gave a finite loss
        else:
            detached = loss.detach().float()
            self.pending = detached if self.pending is None else self.pending + detached
            self.pending_n += 1

    def after_update(self, force: bool) -> None:
        """After the step: count the loss; on a GPU check the pending sum every `every` steps or when `force`d."""
        if self.every == 1:
            self.loss_sum, self.loss_count = self.loss_sum + self.value, self.loss_count + 1
        elif self.pending is not None and (self.pending_n >= self.every or force):
            total = self.pending.item()
            if not math.isfinite(total):
                self.restore()
                raise _Diverged
            self._keep()
            self.loss_sum, self.loss_count = self.loss_sum + total, self.loss_count + self.pending_n
            self.pending, self.pending_n = None, 0

    def last_loss(self, loss: torch.Tensor) -> float:
        return self.value if self.every == 1 else float(loss.item())

    def restore(self) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.good)

    def _keep(self) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.good, self.params)

    def to(self, device: torch.device) -> None:
        """Follow the model to another device (the OOM fallback); unchecked GPU losses count if finite."""
        if self.pending is not None:
            total = self.pending.item()
            if math.isfinite(total):
                self.loss_sum, self.loss_count = self.loss_sum + total, self.loss_count + self.pending_n
        self.pending, self.pending_n = None, 0
        self.good = [g.to(device) for g in self.good]
        self.every = 1 if device.type == "cpu" else 20


class _Run:
    """One run's state between events: data on the device, the tuned setting, optimizer, guard, counters."""

    def __init__(self, model: nn.Module, train_set: TensorImageDataset, test_set: TensorImageDataset,
                 config: TrainConfig, choice: DeviceChoice) -> None:
        self.model, self.config, self.choice = model, config, choice
        self.dev = choice.torch_device
        self.n_train = config.effective_train_size(len(train_set))
        self.n_test = config.effective_test_size(len(test_set))
        self.prep = preprocessing_for(train_set, config)
        self.generator = job_generator(config.seed)  # this job's own randomness, never the global RNG
        # Data converted once: uint8 stays uint8 (4× less memory than floats); on a GPU all of it lives there.
        self.train_images = train_set.images[:self.n_train].to(self.dev)
        self.train_targets = train_set.targets[:self.n_train].to(self.dev)
        self.test_images = test_set.images[:self.n_test].to(self.dev)
        self.test_targets = test_set.targets[:self.n_test].to(self.dev)
        model.to(self.dev)
        self.tune = self._choose_setting()
        model.to(memory_format=self.tune.setting.memory_format)
        self.optimizer = make_optimizer(model, config)
        self.guard = DivergenceGuard(list(model.parameters()), self.dev)
        self.batch_size, self.halved = config.batch_size, False
        self.steps_per_epoch = math.ceil(self.n_train / self.batch_size)
        self.probe_every = config.probe_interval(len(train_set), len(test_set))
        self.probe_n = min(config.probe_images, self.n_test) if self.probe_every else 0
        self.steps = self.epochs_done = 0
        self.last_eval: Evaluation | None = None
        self.t0 = self.t_epoch = time.perf_counter()
        self.train_seconds = self.probe_seconds = 0.0

    def _choose_setting(self) -> TuneResult:
        """precision='auto': devices.autotune on this run's own step and first batch; otherwise what was asked."""
        config = self.config
        if config.precision != "auto":
            return TuneResult(choose_precision(config.precision, self.dev.type), config.channels_last)
        imgs, targets = self.train_images[:config.batch_size], self.train_targets[:config.batch_size]

        def step(model: nn.Module, optimizer: torch.optim.Optimizer, setting: Setting) -> torch.Tensor:
            x = self.prep.batch(imgs).contiguous(memory_format=setting.memory_format)  # as the loop does it
            return course_step(model, optimizer, x, targets, setting.precision)

        device = self.choice if self.dev.type == self.choice.type else detect_device(self.dev.type)
        key = tuning_key(device, self.model, tuple(imgs.shape[1:]), imgs.shape[0])
        return autotune(self.model, self.dev, imgs.shape[0], step, lambda m: make_optimizer(m, config), key,
                        cache_file=tuning_cache_file())

    def start_event(self) -> StartEvent:
        t = self.tune
        return StartEvent(self.choice.type, self.choice.name, self.choice.reason, t.precision, torch.get_num_threads(),
                          self.n_train, self.n_test, self.config.epochs, self.batch_size, self.steps_per_epoch,
                          t.channels_last, t.candidates, t.seconds, t.label, t.source, t.rejected,
                          self.probe_every, self.probe_n)

    def done(self, status: str, reason: str, message: str = "") -> DoneEvent:
        ev = self.last_eval
        return DoneEvent(status, reason, self.epochs_done, self.steps, time.perf_counter() - self.t0, self.dev.type,
                         None if ev is None else ev.accuracy, message, None if ev is None else ev.predictions,
                         None if ev is None else self.test_targets.cpu())

    def stop_reason(self, stop: StopFlag) -> str:
        if _is_stopped(stop):
            return "stop_requested"
        if self.config.time_limit is not None and time.perf_counter() - self.t0 > self.config.time_limit:
            return "time_limit"
        return ""

    def step(self, idx: torch.Tensor) -> torch.Tensor:
        """The course's step on the training images `idx`: one batch, converted (and augmented) on the device."""
        imgs = self.train_images.index_select(0, idx)
        if self.config.augment:
            imgs = augment_batch(imgs, self.generator)
        imgs = self.prep.batch(imgs).contiguous(memory_format=self.tune.setting.memory_format)
        targets = self.train_targets.index_select(0, idx)
        return course_step(self.model, self.optimizer, imgs, targets, self.tune.precision, self.guard.before_update)

    def train_epoch(self, epoch: int, stop: StopFlag) -> Iterator[TrainEvent]:
        """The course's `model.train(); for imgs, targets in train_dataloader: step`; returns a DoneEvent to end early."""
        self.model.train()
        perm = torch.randperm(self.n_train, generator=self.generator).to(self.dev)  # shuffle=True, the job's generator
        self.guard.new_epoch()
        self.t_epoch, self.probe_seconds = time.perf_counter(), 0.0
        pos = epoch_step = 0
        while pos < self.n_train:
            if reason := self.stop_reason(stop):
                return self.done("stopped", reason)
            idx = perm[pos:pos + self.batch_size]
            try:
                loss = self.step(idx)
            except _Diverged:
                return self.done("diverged", "nan_loss")
            except Exception as exc:  # noqa: BLE001 - every failure becomes a clear event
                event = self.fall_back(exc)
                if isinstance(event, DoneEvent):
                    return event
                perm = perm.to(self.dev)
                yield event
                continue  # retry the same images
            pos, epoch_step, self.steps = pos + idx.shape[0], epoch_step + 1, self.steps + 1
            last = pos >= self.n_train
            logged = last or self.steps % self.config.log_every == 0
            try:
                self.guard.after_update(force=logged)
            except _Diverged:
                return self.done("diverged", "nan_loss")
            if logged:
                yield self.step_event(epoch, epoch_step, pos, loss)
            if self.probe_every and epoch_step % self.probe_every == 0 and not last:
                yield from self.probe(epoch)
        self.train_seconds = time.perf_counter() - self.t_epoch - self.probe_seconds
        return None

    def step_event(self, epoch: int, epoch_step: int, pos: int, loss: torch.Tensor) -> StepEvent:
        now = time.perf_counter()
        training = max(now - self.t_epoch - self.probe_seconds, 1e-9)
        return StepEvent(epoch, self.steps, epoch_step, self.guard.last_loss(loss), pos / training, now - self.t0,
                         ((epoch - 1) + pos / self.n_train) / self.config.epochs)

    def probe(self, epoch: int) -> Iterator[ProbeEvent]:
        """Live accuracy: test the first probe_n test images (eval, no_grad), then back to model.train().

        Touches no weights and no random generator, so a run gives the same result with probes on or off.
        A probe that fails (out of memory on a GPU) turns probes off instead of ending the run.
        """
        start = time.perf_counter()
        n = self.probe_n
        try:
            ev = evaluate(self.model, self.test_images[:n], self.test_targets[:n], self.prep, course_batch=n,
                          chunk=self.config.test_batch_size, precision=self.tune.precision,
                          channels_last=self.tune.channels_last)
        except Exception:  # noqa: BLE001
            self.probe_every = 0
            return
        finally:
            self.model.train()
            self.probe_seconds += time.perf_counter() - start
        yield ProbeEvent(epoch, self.steps, ev.accuracy, ev.loss_mean, n, time.perf_counter() - self.t0)

    def test_epoch(self, epoch: int) -> EpochEvent | DoneEvent:
        """The course's `model.eval(); with torch.no_grad():` pass: 整体损失 and 整体正确率."""
        try:
            ev = evaluate(self.model, self.test_images, self.test_targets, self.prep, course_batch=self.config.batch_size,
                          chunk=self.config.test_batch_size, precision=self.tune.precision,
                          channels_last=self.tune.channels_last)
        except Exception as exc:  # noqa: BLE001
            return self.done("failed", "out_of_memory" if _is_oom(exc) else "error", f"{type(exc).__name__}: {exc}")
        self.last_eval, self.epochs_done = ev, epoch
        now = time.perf_counter()
        return EpochEvent(epoch, self.guard.epoch_loss, ev.loss_mean, ev.loss_total, ev.accuracy, now - self.t_epoch,
                          self.n_train / max(self.train_seconds, 1e-9), now - self.t0)

    def fall_back(self, exc: Exception) -> NoticeEvent | DoneEvent:
        """After a failed step: out of memory → half the batch once, then the CPU; anything else ends the run."""
        if not _is_oom(exc):
            self.guard.restore()
            return self.done("failed", "error", f"{type(exc).__name__}: {exc}")
        action, new_batch = oom_next_step(self.batch_size, self.dev.type, self.halved)
        self.optimizer.zero_grad(set_to_none=True)
        if self.dev.type == "cuda":
            torch.cuda.empty_cache()
        if action == "fail":
            self.guard.restore()
            return self.done("failed", "out_of_memory", str(exc))
        if action == "half":
            self.halved, self.batch_size = True, new_batch
            return NoticeEvent("oom_half_batch", (("batch_size", self.batch_size),))
        self._move_to_cpu()
        return NoticeEvent("oom_cpu", (("batch_size", self.batch_size),))

    def _move_to_cpu(self) -> None:
        cpu = self.dev = torch.device("cpu")
        self.model.to(cpu)
        _move_optimizer_state(self.optimizer, cpu)
        self.train_images, self.train_targets = self.train_images.cpu(), self.train_targets.cpu()
        self.test_images, self.test_targets = self.test_images.cpu(), self.test_targets.cpu()
        self.guard.to(cpu)
        self.tune = self._choose_setting()  # what is fastest on the CPU (timed again for 'auto')
        self.model.to(memory_format=self.tune.setting.memory_format)


def train(model: nn.Module, train_set: TensorImageDataset, test_set: TensorImageDataset, config: TrainConfig,
          stop: StopFlag = None, device: DeviceChoice | None = None) -> Iterator[TrainEvent]:
    """Train `model` in place and yield events; the last event is always a DoneEvent.

    Images come from `train_set.images` (uint8 [N, C, H, W]) and `targets` [N]; the first
    `config.train_subset` / `test_subset` are used. `stop` (an Event or a callable) is checked
    before every step. Invalid configs raise CourseError before anything starts; errors during
    training end the run with status 'failed' instead (the model keeps its last good weights).
    precision='auto' first times the candidate settings (devices.autotune, cached per setting).
    """
    config.validate(len(train_set), len(test_set))
    check_model_fits(model, train_set)
    run = _Run(model, train_set, test_set, config, device or detect_device(config.device))
    yield run.start_event()
    run.t0 = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        # ---- training (the course: model.train(), for imgs, targets in train_dataloader) ----
        ended = yield from run.train_epoch(epoch, stop)
        if ended is not None:
            yield ended
            return
        # ---- testing (the course: model.eval(), with torch.no_grad(), 整体损失, 整体正确率) ----
        tested = run.test_epoch(epoch)
        yield tested
        if isinstance(tested, DoneEvent):
            return
    yield run.done("finished", "completed")


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
