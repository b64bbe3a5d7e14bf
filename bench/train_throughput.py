"""Training throughput, measured in one process, interleaved: the course's loop vs the engine vs the page's job.

    python bench/train_throughput.py [--quick] [--threads N] [--images N] [--rounds N] [--device cpu|cuda]

Same model (the course's CNN), batch 64, SGD lr 0.01, same images, same torch threads, same allocator
treatment (dl_core.devices.tune_allocator() once, for every variant):

  (a) course  — the course's step 17: torchvision-style dataset, per-image ToTensor, DataLoader(shuffle=True)
  (b) engine  — dl_core.training.train(...) iterated headless, precision="auto" (tuned once, fresh: no disk cache)
  (c) page    — the same engine as the Train page runs it: a request to a worker process
                (dl_core.workers.ProcessBackend), polled every 0.25 s (`page_run`)
  (raw)       — plain PyTorch loops on preloaded tensors (float, index_select), one per candidate setting the
                autotuner times here (fp32/bf16/tf32 × channels_last on/off); the best of them is "raw"

Each variant trains one epoch over the same N images per round; rounds rotate the order (A B C R…, B C R… A, …)
and the figure is the median images/s. The last three lines are exactly
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


def load_images(n: int) -> tuple[TensorImageDataset, TensorImageDataset, str]:
    try:
        from dl_core.datasets import load_dataset
        train_set = load_dataset("shapes10", train=True)
        test_set = load_dataset("shapes10", train=False)
        name = "shapes10"
    except Exception:  # noqa: BLE001 - the bench still runs without the dataset module
        g = torch.Generator().manual_seed(0)
        train_set = TensorImageDataset(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                                       torch.randint(0, 10, (n,), generator=g), [str(i) for i in range(10)])
        test_set = train_set
        name = "random"
    if len(train_set) < n:  # repeat to reach n images
        reps = -(-n // len(train_set))
        train_set = TensorImageDataset(train_set.images.repeat(reps, 1, 1, 1)[:n], train_set.targets.repeat(reps)[:n],
                                       train_set.classes)
    return train_set.subset(n), test_set.subset(BATCH), name


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


def page_run(train_set: TensorImageDataset, test_set: TensorImageDataset, device: str, threads: int) -> float:
    """(c) as the Train page runs a training: a request to a worker process (dl_core.workers.ProcessBackend,
    the server's default), polled like the page (every 0.25 s); the dataset travels with the request.

    The one place to change when the page's backend changes (anything with submit / events_since / join).
    """
    from dl_core.jobs import DataRef, JobRequest
    from dl_core.workers import ProcessBackend

    if not _POOL:
        _POOL.append(ProcessBackend(max_jobs=1, cores=threads, nice=0))  # alone on the machine: no nice
        _POOL[0].wait_ready(120)
    request = JobRequest(course_cnn(), engine_config(len(train_set), device),
                         DataRef.of("bench", train_set, test_set, root=None))
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
    rounds = args.rounds or (2 if args.quick else 4)
    train_set, test_set, name = load_images(n)
    dev = torch.device(args.device)
    settings = candidate_settings(dev.type)
    raw_names = [f"raw {s.label}" for s in settings]
    variants = {
        "course": lambda: course_loop(train_set, dev),
        "engine": lambda: engine(train_set, test_set, args.device),
        "page": lambda: page_run(train_set, test_set, args.device, threads),
        **{name: (lambda s=s: raw_loop(train_set, dev, s)) for name, s in zip(raw_names, settings)},
    }
    print(f"torch {torch.__version__}, device {args.device}, threads {threads}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, tuned allocator {allocator}")
    print(f"data {name}: {n} images per measurement, batch {BATCH}, SGD lr {LR}, {rounds} rounds interleaved")
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
    page_run(small, test_set, args.device, threads)  # the worker's first run tunes, as the server's first run does
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
    print(f"engine_vs_course={med['engine'] / med['course']:.3f}")
    print(f"page_vs_engine={med['page'] / med['engine']:.3f}")
    print(f"engine_vs_raw={med['engine'] / med[best_raw]:.3f}")


if __name__ == "__main__":
    main()
