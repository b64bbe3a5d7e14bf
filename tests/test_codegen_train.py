"""The Train page's code: the course's train.py, valid Python, and it really trains (tiny subset)."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dl_core.codegen.train import train_code
from dl_core.models import course_cnn
from dl_core.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("dataset", ["cifar10", "shapes10", "mnist"])
def test_course_shape_and_valid_python(lang, dataset):
    cfg = TrainConfig(epochs=10, batch_size=64, lr=0.01)
    code = train_code(course_cnn(), cfg, dataset, lang=lang)
    ast.parse(code)
    for name in ("train_data", "test_data", "DataLoader(train_data, batch_size=64, shuffle=True)", "class Tudui",
                 "loss_fn = nn.CrossEntropyLoss()", "torch.optim.SGD(tudui.parameters(), lr=learning_rate)",
                 "learning_rate = 0.01", "total_train_step % 100 == 0", "tudui.train()", "tudui.eval()",
                 "with torch.no_grad():", "optimizer.zero_grad()", 'writer.add_scalar("train_loss"',
                 'writer.add_scalar("test_accuracy"', "nn.Conv2d(3, 32, 5, padding=2)", "nn.Linear(1024, 64)",
                 "epoch = 10", "(outputs.argmax(1) == targets).sum()"):
        assert name in code, name
    if dataset == "cifar10":
        assert 'torchvision.datasets.CIFAR10(root="./dataset", train=True' in code


def test_options_appear():
    cfg = TrainConfig(optimizer="sgd_momentum", momentum=0.9, weight_decay=0.0005, augment=True, normalize=True,
                      device="cpu", train_subset=100)
    code = train_code(course_cnn(), cfg, "cifar10", tensorboard=False)
    assert "momentum=0.9, weight_decay=0.0005" in code and "v2.RandomCrop((32, 32), padding=4)" in code
    assert "v2.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])" in code and 'torch.device("cpu")' in code
    assert "Subset(train_data, range(min(100" in code and "SummaryWriter" not in code
    assert "torch.optim.Adam(tudui.parameters(), lr=learning_rate)" in train_code(
        course_cnn(), TrainConfig(optimizer="adam", lr=0.001))


def test_generated_code_runs(tmp_path, data_dir):
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.01, train_subset=64, test_subset=40, log_every=1, augment=True)
    code = train_code(course_cnn(), cfg, "shapes10", lang="en")
    (tmp_path / "train.py").write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TORCH_CLASSROOM_DATA": str(data_dir), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "train.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "train_data size: 64" in out.stdout and "total_train_step: 2, Loss" in out.stdout
    assert "total test accuracy:" in out.stdout and (tmp_path / "tudui_0.pth").exists()
    assert any((tmp_path / "logs_train").iterdir())


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_comments_come_from_the_catalog(lang):
    from dl_core.i18n import text

    code = train_code(course_cnn(), TrainConfig(), "cifar10", lang=lang)
    assert "⟦" not in code  # every code.train.* key exists
    assert text("code.train.data", lang) in code and f'print("{text("code.train.saved", lang)}")' in code
    assert "optimizer.zero_grad()  " + text("code.train.zero_grad", lang) in code
    assert train_code(course_cnn(), TrainConfig(), "cifar10", lang="fr") == train_code(
        course_cnn(), TrainConfig(), "cifar10", lang="en")  # a language without a catalog: English
