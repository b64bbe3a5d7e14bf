"""Make the demo model that ships with the app: the course CNN trained on Shapes-10 by the CLI.

    python scripts/make_demo_model.py            # writes assets/demo_shapes10.pth
    python scripts/make_demo_model.py --check    # trains again into a temp file and compares the weights

Reproducible: a fixed seed, the CPU, one thread; the course's settings (SGD lr 0.01, batch 64) plus
momentum 0.9 and Normalize([0.5]*3, [0.5]*3), 3 epochs on the CIFAR-sized Shapes-10 (50,000 images:
the small 5,000-image split is too little for this network to generalise).
The Predict page uses this model before a student has trained one.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assets" / "demo_shapes10.pth"
SETTINGS = ["--dataset", "shapes10-full", "--model", "course", "--epochs", "3", "--batch-size", "64",
            "--lr", "0.01", "--optimizer", "sgd_momentum", "--normalize", "--device", "cpu", "--seed", "0",
            "--threads", "1", "--precision", "fp32", "--quiet"]


def train(out: Path) -> None:
    """One run of `python -m dl_core train ... --out OUT` (the same CLI students can run)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "dl_core", "train", *SETTINGS, "--out", str(out)]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="train again and compare with the shipped file")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from dl_core.checkpoint import load, load_demo

    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            again = Path(tmp) / "again.pth"
            train(again)
            shipped, fresh = load_demo(OUT), load(again)
            same = all(torch.equal(shipped.state_dict[k], fresh.state_dict[k]) for k in shipped.state_dict)
            print("identical weights" if same else "DIFFERENT weights")
            sys.exit(0 if same else 1)

    train(OUT)
    demo = load_demo(OUT)
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size:,} bytes, dataset {demo.dataset}, "
          f"history {demo.history}")


if __name__ == "__main__":
    main()
