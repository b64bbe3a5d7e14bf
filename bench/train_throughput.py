"""Training throughput, measured in one process, interleaved: the course's loop vs the engine vs the page's job.

    python bench/train_throughput.py [--quick] [--threads N] [--images N] [--rounds N] [--device cpu|cuda]

Same model (the course's CNN), batch 64, SGD lr 0.01, same images, same torch threads, same allocator
treatment (dl_core.devices.tune_allocator() once, for every variant):

  (a) course  — the course's step 17: torchvision-style dataset, per-image ToTensor, DataLoader(shuffle=True)
  (b) engine  — dl_core.training.train(...) iterated headless, precision="auto" (tuned once, fresh: no disk cache)
  (c) page    — the same engine as the Train page runs it: a request to a worker process
                (dl_core.workers.ProcessBackend), polled every 0.25 s (`page_run`); the built-in dataset
                travels by name with `train_subset=N` (the same first N images), as the page sends it
  (raw)       — plain PyTorch loops on preloaded tensors (float, index_select), one per candidate setting the
                autotuner times here (fp32/bf16/tf32 × channels_last on/off); the best of them is "raw"

Each variant trains one epoch over the same N images per round; rounds rotate the order (A B C R…, B C R… A, …)
and each variant's figure is its median images/s. A shared VM's speed drifts by ±10 % from one second to the
next, so every ratio is paired: taken within each round (the two variants measured seconds apart), and the
median over the rounds is printed. The last three lines are exactly
`engine_vs_course=<b/a>`, `page_vs_engine=<c/b>`, `engine_vs_raw=<b/best raw>`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

os.environ["TORCH_CLASSROOM_AUTOTUNE_CACHE"] = "off"  # measure the tuning here, never reuse an old choice

from dl_core.datasets import TensorImageDataset  # noqa: E402
from dl_core.devices import (  # noqa: E402
    Setting, autocast_context, candidate_settings, clear_tuning_cache, math_context, tune_allocator,
)
from dl_core.models import course_cnn  # noqa: E402
from dl_core.training import DoneEvent, StartEvent, TrainConfig, seeded_model, train  # noqa: E402

BATCH = 64
LR = 0.01


class Images:
    """The N training images every variant trains on, and how the page's request names them."""

    def __init__(self, n: int) -> None:
        try:
            from dl_core.classroom import ClassroomConfig
            from dl_core.datasets import data_dir, load_dataset
            name = ClassroomConfig().default_dataset  # the Train page's default (CIFAR-sized Shapes-10)
            full_train = load_dataset(name, train=True)
            full_test = load_dataset(name, train=False)
            self.name, self.root = name, data_dir()
        except Exception:  # noqa: BLE001 - the bench still runs without the dataset module
            g = torch.Generator().manual_seed(0)
            full_train = TensorImageDataset(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                                            torch.randint(0, 10, (n,), generator=g), [str(i) for i in range(10)])
            full_test = full_train
            self.name, self.root = "random", None
        if len(full_train) < n:  # repeat to reach n images: no longer the built-in dataset, the page ships tensors
            reps = -(-n // len(full_train))
            full_train = TensorImageDataset(full_train.images.repeat(reps, 1, 1, 1)[:n],
                                            full_train.targets.repeat(reps)[:n], full_train.classes)
            self.name, self.root = f"{self.name} repeated", None
        self.full_train, self.full_test = full_train, full_test
        self.train, self.test = full_train.subset(n), full_test.subset(BATCH)

    def shipped_as(self) -> str:
        return f"{self.name} by name" if self.root is not None else "tensors in the request (no built-in dataset)"


def course_loop(train_set: TensorImageDataset, device: torch.device) -> float:
    """(a) COURSE.md step 17, verbatim in shape: ToTensor per image, DataLoader, .to(device), SGD. Returns seconds."""
    train_data = train_set.view(torchvision.transforms.ToTensor())
    train_dataloader = DataLoader(train_data, batch_size=BATCH, shuffle=True, num_workers=0)
    tudui = seeded_model(course_cnn(), 0).to(device)
    loss_fn = nn.CrossEntropyLoss().to(device)
    optimizer = torch.optim.SGD(tudui.parameters(), lr=LR)
    total_train_step = 0
    t0 = time.perf_counter()
    tudui.train()
    for data in train_dataloader:
        imgs, targets = data
        imgs, targets = imgs.to(device), targets.to(device)
        outputs = tudui(imgs)
        loss = loss_fn(outputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_train_step += 1
        if total_train_step % 100 == 0:
            loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def engine_config(n: int, device: str) -> TrainConfig:
    """The course's recipe; no live accuracy probes (their cost is measured apart), precision 'auto'."""
    return TrainConfig(epochs=1, batch_size=BATCH, lr=LR, train_subset=n, test_subset=BATCH, log_every=100,
                       device=device, probe_images=0)


def engine(train_set: TensorImageDataset, test_set: TensorImageDataset, device: str,
           starts: list[StartEvent] | None = None) -> float:
    """(b) the engine, headless: iterate train(...). Its StartEvent (the tuned setting) goes to `starts`."""
    model = seeded_model(course_cnn(), 0)
    t0 = time.perf_counter()
    done = None
    for event in train(model, train_set, test_set, engine_config(len(train_set), device)):
        if isinstance(event, StartEvent) and starts is not None:
            starts.append(event)
        done = event
    assert isinstance(done, DoneEvent) and done.status == "finished", done
    return time.perf_counter() - t0


_POOL = []  # the worker pool, started once (outside the timings), as the server starts it once


def page_run(images: Images, n: int, device: str, threads: int) -> float:
    """(c) as the Train page runs a training: a request to a worker process (dl_core.workers.ProcessBackend,
    the server's default), polled like the page (every 0.25 s). Built-in data travels by name as the page
    sends it (`ui.jobs.start_job`: DataRef.of(name, ..., data_dir())); the worker reads it once and keeps it.

    The one place to change when the page's backend changes (anything with submit / events_since / join).
    """
    from dl_core.jobs import DataRef, JobRequest
    from dl_core.workers import ProcessBackend

    if not _POOL:
        _POOL.append(ProcessBackend(max_jobs=1, cores=threads, nice=0))  # alone on the machine: no nice
        _POOL[0].wait_ready(120)
    if images.root is not None:
        data = DataRef.of(images.name, images.full_train, images.full_test, images.root)
    else:
        data = DataRef.of("bench", images.train, images.test, root=None)
    request = JobRequest(course_cnn(), engine_config(n, device), data)
    t0 = time.perf_counter()
    job = _POOL[0].submit(request)
    cursor = 0
    while not job.join(timeout=0.25):
        _, cursor = job.events_since(cursor)
    elapsed = time.perf_counter() - t0
    assert job.done_event is not None and job.done_event.status == "finished", job.done_event
    return elapsed


def raw_loop(train_set: TensorImageDataset, device: torch.device, setting: Setting = Setting()) -> float:
    """(raw) a plain loop in one setting: floats preconverted (not timed), index_select, no DataLoader, no checks."""
    x_all = train_set.images.to(device).float().div_(255).contiguous(memory_format=setting.memory_format)
    y_all = train_set.targets.to(device)
    model = seeded_model(course_cnn(), 0).to(device=device, memory_format=setting.memory_format)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(0)
    n = x_all.shape[0]
    t0 = time.perf_counter()
    model.train()
    perm = torch.randperm(n, generator=g).to(device)
    for i in range(0, n, BATCH):
        idx = perm[i:i + BATCH]
        with math_context(setting.precision, device.type):
            with autocast_context(setting.precision, device.type):
                outputs = model(x_all.index_select(0, idx))
                loss = loss_fn(outputs.float(), y_all.index_select(0, idx))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds (under a minute)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for every variant (default: torch's)")
    parser.add_argument("--images", type=int, default=None, help="images per measurement")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    allocator = tune_allocator()  # once, before anything: every variant below runs under the same malloc settings
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    n = args.images or (1280 if args.quick else 6400)
    rounds = args.rounds or (3 if args.quick else 7)
    images = Images(n)
    train_set, test_set = images.train, images.test
    dev = torch.device(args.device)
    settings = candidate_settings(dev.type)
    raw_names = [f"raw {s.label}" for s in settings]
    variants = {
        "course": lambda: course_loop(train_set, dev),
        "engine": lambda: engine(train_set, test_set, args.device),
        "page": lambda: page_run(images, n, args.device, threads),
        **{name: (lambda s=s: raw_loop(train_set, dev, s)) for name, s in zip(raw_names, settings)},
    }
    print(f"torch {torch.__version__}, device {args.device}, threads {threads}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, tuned allocator {allocator}")
    print(f"data {images.name}: {n} images per measurement, batch {BATCH}, SGD lr {LR}, {rounds} rounds interleaved;"
          f" the page's request carries {images.shipped_as()}")
    small = TensorImageDataset(train_set.images[:BATCH * 2], train_set.targets[:BATCH * 2], train_set.classes)
    clear_tuning_cache()
    starts: list[StartEvent] = []
    engine(small, test_set, args.device, starts)  # warm-up, and the tuning (same batch, shape, threads: cached)
    tuned = starts[0]
    print(f"tuned: {tuned.tuned} in {tuned.tuning_seconds:.2f} s ({tuned.tune_source}); measured "
          + "; ".join(f"{label} {ips:,.0f} img/s" for label, ips in tuned.candidates)
          + (f"; refused (loss differs): {', '.join(tuned.rejected)}" if tuned.rejected else ""))
    course_loop(small, dev)
    for s in settings:
        raw_loop(small, dev, s)  # warm-up: first-call costs (allocator, kernels) out of the timings
    page_run(images, BATCH * 2, args.device, threads)  # the worker's first run reads the data and tunes, as on a server
    rates: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants)
    for r in range(rounds):
        for key in order[r % len(order):] + order[:r % len(order)]:
            seconds = variants[key]()
            rates[key].append(n / seconds)
        print(f"round {r + 1}: " + ", ".join(f"{k} {rates[k][-1]:,.0f}" for k in order), flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    best_raw = max(raw_names, key=lambda k: med[k])
    for k in order:
        print(f"{k:>26}: {med[k]:,.0f} images/s (median of {rounds})")
    print(f"best raw: {best_raw[4:]} ({med[best_raw]:,.0f} images/s); the engine used {tuned.tuned}")

    def paired(a: str, b: str) -> float:
        per_round = [x / y for x, y in zip(rates[a], rates[b])]
        print(f"{a} / {b} per round: " + ", ".join(f"{r:.3f}" for r in per_round)
              + f" (ratio of the medians {med[a] / med[b]:.3f})")
        return statistics.median(per_round)

    ratios = (("engine_vs_course", paired("engine", "course")), ("page_vs_engine", paired("page", "engine")),
              ("engine_vs_raw", paired("engine", best_raw)))
    for label, value in ratios:
        print(f"{label}={value:.3f}")


if __name__ == "__main__":
    main()
