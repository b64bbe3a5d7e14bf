"""`python -m dl_core train ...` in a subprocess: progress, a checkpoint that loads, clear errors."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dl_core import checkpoint

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], cwd: Path, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TORCH_CLASSROOM_DATA": str(data_dir), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "dl_core", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_help_lists_the_subcommands(tmp_path, data_dir):
    out = run_cli(["--help"], tmp_path, data_dir)
    assert out.returncode == 0 and "train" in out.stdout and "devices" in out.stdout and "notebook" in out.stdout
    out = run_cli(["train", "--help"], tmp_path, data_dir)
    assert "--batch-size" in out.stdout and "--out" in out.stdout and "--tensorboard" in out.stdout


def test_train_writes_a_checkpoint(tmp_path, data_dir):
    out = run_cli(["train", "--dataset", "shapes10", "--epochs", "2", "--batch-size", "64", "--lr", "0.01",
                   "--device", "auto", "--out", "model.pth", "--train-subset", "128", "--test-subset", "64",
                   "--log-every", "1", "--threads", "1", "--tensorboard", "tb"], tmp_path, data_dir)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "epoch 2/2" in out.stderr and "ETA" in out.stderr and "整体损失" in out.stderr
    assert out.stdout.strip().startswith("test_accuracy=")
    ckpt = checkpoint.load(tmp_path / "model.pth")
    assert ckpt.dataset == "shapes10" and len(ckpt.classes) == 10 and ckpt.history["epochs"] == 2
    model = ckpt.build()
    assert sum(p.numel() for p in model.parameters()) == 145_578  # the course's CNN
    assert any((tmp_path / "tb").iterdir())


def test_invalid_arguments_give_a_clear_error(tmp_path, data_dir):
    out = run_cli(["train", "--epochs", "0", "--train-subset", "64"], tmp_path, data_dir)
    assert out.returncode == 2 and "epochs must be between 1 and 100" in out.stderr
    assert "Traceback" not in out.stderr
    out = run_cli(["train", "--optimizer", "rmsprop"], tmp_path, data_dir)
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_devices(tmp_path, data_dir):
    out = run_cli(["devices"], tmp_path, data_dir)
    assert out.returncode == 0 and "training uses:" in out.stdout


def test_notebook_writes_the_whole_course(tmp_path, data_dir):
    import nbformat

    out = run_cli(["notebook", "--lang", "en", "--out", "course.ipynb", "--images", "64", "--epochs", "1"],
                  tmp_path, data_dir)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "course.ipynb" in out.stderr and "64 training images, 1 epochs" in out.stderr
    nb = nbformat.read(tmp_path / "course.ipynb", as_version=4)
    nbformat.validate(nb)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "range(min(64, len(train_data)))" in code and "epoch = 1" in code
    assert "def load_dataset(" in code and "from dl_core" not in code
    assert nb.cells[0].source.startswith("# Torch Classroom: the whole course")
    out = run_cli(["notebook", "--epochs", "0", "--out", "x.ipynb"], tmp_path, data_dir)
    assert out.returncode == 2 and "epochs must be between 1 and 100" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "x.ipynb").exists()
