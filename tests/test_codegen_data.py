"""The data page's "show the code": the generated scripts run offline and print what the page shows."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dl_core import datasets as D
from dl_core.codegen import data as codegen
from dl_core.transforms import Step

ROOT = Path(__file__).resolve().parents[1]

# For torchvision datasets the page shows the course's CIFAR10 lines; offline, the test swaps in a
# CIFAR10-shaped dataset that exists here (Shapes-10 full), with the same constructor signature.
CIFAR_STANDIN = '''
import torchvision
from dl_core.datasets import load_dataset
def _standin(root, train=True, transform=None, download=False):
    return load_dataset("shapes10-full", train=train, transform=transform)
torchvision.datasets.CIFAR10 = _standin
'''


def run_script(code: str, data_dir: Path, prelude: str = "", cwd: Path = ROOT) -> dict[str, str]:
    """Run code in a fresh interpreter; returns {"label": "rest of line"} from its `print("label:", ...)` lines."""
    env = {**os.environ, "TORCH_CLASSROOM_DATA": str(data_dir), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", prelude + code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    out = {}
    for line in proc.stdout.splitlines():
        key, _, rest = line.partition(": ")
        out.setdefault(key, rest)
    return out


def test_every_generated_script_is_valid_python():
    steps = [Step.make(k) for k in ("Resize", "ToTensor", "Normalize")]
    for name in D.DATASETS:
        ast.parse(codegen.dataset_code(name, 5))
        ast.parse(codegen.dataloader_code(name, 32, False, True, 0, train=True, steps=steps))
        ast.parse(codegen.transforms_code(steps, name))
    ast.parse(codegen.transforms_code(steps, "upload"))
    ast.parse(codegen.folder_dataset_code("dataset/train", ["ants", "bees", "2 cats"]))


def test_cifar10_code_is_the_courses():
    code = codegen.dataloader_code("cifar10")
    assert 'torchvision.datasets.CIFAR10("./dataset", train=False, transform=dataset_transform, download=True)' in code
    assert "DataLoader(test_data, batch_size=64, shuffle=True, num_workers=0, drop_last=False)" in code


def test_dataset_script_prints_the_pages_facts(data_dir):
    train = D.load_dataset("shapes10", True)
    test = D.load_dataset("shapes10", False)
    facts = D.dataset_facts(train, test, 7)
    out = run_script(codegen.dataset_code("shapes10", 7), data_dir)
    assert out["len(train_set)"] == str(facts.len_train)
    assert out["len(test_set)"] == str(facts.len_test)
    assert out["classes"] == str(list(facts.classes))
    assert out["class_to_idx"] == str(facts.class_to_idx)
    assert out["type"] == facts.sample_type
    assert out["size"] == str(facts.sample_size) and out["mode"] == facts.sample_mode
    assert out["target"] == f"{facts.label} {facts.label_name}"


@pytest.mark.parametrize("drop_last,batches,last", [(False, 157, 16), (True, 156, 64)])
def test_cifar10_loader_script_prints_the_courses_numbers(data_dir, drop_last, batches, last):
    test = D.load_dataset("shapes10-full", False)
    facts = D.loader_facts(len(test), 64, drop_last)
    assert (facts.num_batches, facts.last_size) == (batches, last)
    out = run_script(codegen.dataloader_code("cifar10", 64, True, drop_last), data_dir, prelude=CIFAR_STANDIN)
    assert out["len(test_data)"] == "10000"
    assert out["len(test_loader)"].startswith(str(facts.num_batches))
    assert out["imgs"] == "(64, 3, 32, 32)" and out["targets"] == "(64,)"
    assert f"last imgs: ({facts.last_size}, 3, 32, 32)" in out["epoch 0 batches"]


def test_shapes10_loader_script_with_a_pipeline(data_dir):
    steps = [Step.make("Resize", size=(40, 40)), Step.make("ToTensor"), Step.make("Normalize")]
    out = run_script(codegen.dataloader_code("shapes10", 100, False, False, train=True, steps=steps), data_dir)
    facts = D.loader_facts(5000, 100)
    assert out["len(train_loader)"].startswith(str(facts.num_batches))
    assert out["imgs"] == "(100, 3, 40, 40)"


def test_transforms_script_matches_run_pipeline(data_dir):
    from dl_core.transforms import run_pipeline
    steps = [Step.make("Resize", size=(64, 48)), Step.make("ToTensor"), Step.make("Normalize")]
    res = run_pipeline(D.load_dataset("shapes10", True).pil(2), steps)[-1]
    out = run_script(codegen.transforms_code(steps, "shapes10", 2), data_dir)
    assert out["shape"] == f"{res.shape} dtype: torch.float32"
    assert out["min"] == f"{round(res.vmin, 4)} max: {round(res.vmax, 4)}"


def test_folder_dataset_script_counts_like_read_folder(data_dir, tmp_path):
    ds = D.load_dataset("shapes10", False).subset(40)
    D.to_image_folder(ds, tmp_path / "dataset" / "train")
    labels = sorted({ds.classes[int(t)] for t in ds.targets})
    mine = D.read_folder(tmp_path / "dataset" / "train", test_fraction=0.0)
    out = run_script(codegen.folder_dataset_code("dataset/train", labels), data_dir, cwd=tmp_path)
    assert out["len(train_dataset)"] == str(len(mine.train))
    for label in labels:
        assert out[label] == str(mine.per_class[label])
    assert out["size"].startswith("(32, 32) mode: RGB label:")
