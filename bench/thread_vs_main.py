"""Is the Train page's cost the job machinery or the thread itself? The same engine run, interleaved:
in the main thread, and in a fresh plain `threading.Thread` (no job, no polling, no events).

    python bench/thread_vs_main.py [--images 6400] [--rounds 4]

Prints images/s for both and `thread_vs_main=<ratio>` last. Compare with bench/train_throughput.py's
`page_vs_engine`: if both ratios agree, the job machinery costs nothing and the gap is the thread.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.train_throughput import engine, load_images  # noqa: E402
from dl_core.training import tune_allocator  # noqa: E402


def in_thread(train_set, test_set, threads: int) -> float:
    out: dict[str, float] = {}

    def run() -> None:
        torch.set_num_threads(threads)
        out["seconds"] = engine(train_set, test_set, "cpu")

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    return out["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=6400)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    tune_allocator()
    threads = torch.get_num_threads()
    train_set, test_set, name = load_images(args.images)
    engine(train_set, test_set, "cpu")  # warm-up, not timed
    main_rates, thread_rates = [], []
    for r in range(args.rounds):
        main_rates.append(len(train_set) / engine(train_set, test_set, "cpu"))
        thread_rates.append(len(train_set) / in_thread(train_set, test_set, threads))
        print(f"round {r + 1}: main {main_rates[-1]:,.0f}, thread {thread_rates[-1]:,.0f} images/s")
    m, t = statistics.median(main_rates), statistics.median(thread_rates)
    print(f"{name}, {len(train_set)} images, threads {threads}: main {m:,.0f}, thread {t:,.0f} images/s (medians)")
    print(f"thread_vs_main={t / m:.3f}")


if __name__ == "__main__":
    main()
