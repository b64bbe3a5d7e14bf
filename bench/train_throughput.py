"""Training throughput, measured in one process, interleaved: the course's loop vs the engine vs the page's job.

    python bench/train_throughput.py [--quick] [--threads N] [--images N] [--rounds N] [--device cpu|cuda]

Same model (the course's CNN), batch 64, SGD lr 0.01, same images, same torch threads, same allocator
treatment (dl_core.training.tune_allocator() once, for every variant):

  (a) course  — the course's step 17: torchvision-style dataset, per-image ToTensor, DataLoader(shuffle=True)
  (b) engine  — dl_core.training.train(...) iterated headless
  (c) page    — the same engine driven as the Train page drives it: a TrainingJob thread, polled
  (raw)       — the best plain PyTorch loop on preloaded tensors (float, channels_last, index_select)

Each variant trains one epoch over the same N images per round; rounds rotate the order (A B C R, B C R A, …)
and the figure is the median images/s. The last three lines are exactly
`engine_vs_course=<b/a>`, `page_vs_engine=<c/b>`, `engine_vs_raw=<b/raw>`.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from dl_core.datasets import TensorImageDataset  # noqa: E402
from dl_core.jobs import TrainingJob  # noqa: E402
from dl_core.models import course_cnn  # noqa: E402
from dl_core.training import DoneEvent, TrainConfig, seeded_model, train, tune_allocator  # noqa: E402

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
    return TrainConfig(epochs=1, batch_size=BATCH, lr=LR, train_subset=n, test_subset=BATCH, log_every=100,
                       device=device)


def engine(train_set: TensorImageDataset, test_set: TensorImageDataset, device: str) -> float:
    """(b) the engine, headless: iterate train(...)."""
    model = seeded_model(course_cnn(), 0)
    t0 = time.perf_counter()
    done = None
    for event in train(model, train_set, test_set, engine_config(len(train_set), device)):
        done = event
    assert isinstance(done, DoneEvent) and done.status == "finished", done
    return time.perf_counter() - t0


def page_job(train_set: TensorImageDataset, test_set: TensorImageDataset, device: str, threads: int) -> float:
    """(c) as the page does it: a TrainingJob thread, polled like the fragment (here every 0.25 s)."""
    model = seeded_model(course_cnn(), 0)
    job = TrainingJob(model, train_set, test_set, engine_config(len(train_set), device), threads=threads)
    t0 = time.perf_counter()
    job.start()
    cursor = 0
    while not job.join(timeout=0.25):
        _, cursor = job.events_since(cursor)
    elapsed = time.perf_counter() - t0
    assert job.done_event is not None and job.done_event.status == "finished", job.done_event
    return elapsed


def raw_loop(train_set: TensorImageDataset, device: torch.device) -> float:
    """(raw) the best plain loop: floats preconverted (not timed), channels_last, index_select, no DataLoader."""
    x_all = train_set.images.to(device).float().div_(255).contiguous(memory_format=torch.channels_last)
    y_all = train_set.targets.to(device)
    model = seeded_model(course_cnn(), 0).to(device=device, memory_format=torch.channels_last)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(0)
    n = x_all.shape[0]
    t0 = time.perf_counter()
    model.train()
    perm = torch.randperm(n, generator=g).to(device)
    for i in range(0, n, BATCH):
        idx = perm[i:i + BATCH]
        outputs = model(x_all.index_select(0, idx))
        loss = loss_fn(outputs, y_all.index_select(0, idx))
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
    variants = {
        "course": lambda: course_loop(train_set, dev),
        "engine": lambda: engine(train_set, test_set, args.device),
        "page": lambda: page_job(train_set, test_set, args.device, threads),
        "raw": lambda: raw_loop(train_set, dev),
    }
    print(f"torch {torch.__version__}, device {args.device}, threads {threads}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, tuned allocator {allocator}")
    print(f"data {name}: {n} images per measurement, batch {BATCH}, SGD lr {LR}, {rounds} rounds interleaved")
    small = TensorImageDataset(train_set.images[:BATCH * 2], train_set.targets[:BATCH * 2], train_set.classes)
    for fn in (lambda: course_loop(small, dev), lambda: engine(small, test_set, args.device),
               lambda: raw_loop(small, dev)):
        fn()  # warm-up: first-call costs (allocator, kernels) out of the timings
    rates: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants)
    for r in range(rounds):
        for key in order[r % len(order):] + order[:r % len(order)]:
            seconds = variants[key]()
            rates[key].append(n / seconds)
        print(f"round {r + 1}: " + ", ".join(f"{k} {rates[k][-1]:,.0f}" for k in order), flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    for k in order:
        print(f"{k:>7}: {med[k]:,.0f} images/s (median of {rounds})")
    print(f"engine_vs_course={med['engine'] / med['course']:.3f}")
    print(f"page_vs_engine={med['page'] / med['engine']:.3f}")
    print(f"engine_vs_raw={med['engine'] / med['raw']:.3f}")


if __name__ == "__main__":
    main()
