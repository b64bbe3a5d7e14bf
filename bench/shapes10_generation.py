"""Shapes-10 generation speed: seconds to draw 60,000 images (goal: < 10 s on a 2-core CPU).

    python bench/shapes10_generation.py                 # 60,000 images, 2 torch threads
    python bench/shapes10_generation.py --threads 1
    python bench/shapes10_generation.py --calibrate 10  # the course's recipe on shapes10-full: test accuracy per epoch

The calibration trains the course CNN exactly as the notes do (SGD lr 0.01, batch 64,
CrossEntropyLoss, ToTensor's /255 and no Normalize) on the whole dataset held as tensors,
channels_last on the CPU; on a GPU when one is present.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from dl_core import shapes10  # noqa: E402


def bench_generation(n: int, repeats: int) -> None:
    shapes10.generate(1000)  # warm-up: first calls allocate and load kernels
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        shapes10.generate(n)
        times.append(time.perf_counter() - start)
    times.sort()
    print(f"shapes10: {n:,} images in {times[len(times) // 2]:.2f} s (median of {repeats}; "
          f"{n / times[len(times) // 2]:,.0f} img/s; torch threads {torch.get_num_threads()})")


def calibrate(epochs: int, seeds: list[int]) -> None:
    from dl_core.datasets import load_dataset
    from dl_core.models import build_model, course_cnn

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fmt = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    root = Path(os.environ.get("TORCH_CLASSROOM_DATA") or tempfile.mkdtemp(prefix="shapes10-"))
    train, test = load_dataset("shapes10-full", True, root=root), load_dataset("shapes10-full", False, root=root)
    x = (train.images.float() / 255).to(device, memory_format=fmt)
    y = train.targets.to(device)
    xt = (test.images.float() / 255).to(device, memory_format=fmt)
    yt = test.targets.to(device)
    for seed in seeds:
        torch.manual_seed(seed)
        model = build_model(course_cnn()).to(device, memory_format=fmt)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        loss_fn = nn.CrossEntropyLoss()
        accs = []
        start = time.perf_counter()
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(x), device=device)
            for i in range(0, len(x), 64):
                idx = order[i:i + 64]
                loss = loss_fn(model(x[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                correct = sum(int((model(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum())
                              for i in range(0, len(xt), 1000))
            accs.append(correct / len(xt))
            print(f"  seed {seed} epoch {len(accs)}: test accuracy {accs[-1]:.3f}", flush=True)
        print(f"seed {seed} on {device.type}: " + " ".join(f"{a:.3f}" for a in accs)
              + f"  ({time.perf_counter() - start:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calibrate", type=int, default=0, metavar="EPOCHS")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.calibrate:
        calibrate(args.calibrate, args.seeds)
    else:
        bench_generation(args.n, args.repeats)


if __name__ == "__main__":
    main()
