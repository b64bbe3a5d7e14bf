"""Every page's "Download notebook" (and the whole-course notebook) is a valid .ipynb that runs top to bottom
in a fresh interpreter, offline and WITHOUT dl_core, and prints the page's numbers (PyTorch / dl_core the oracle)."""
from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dl_core import datasets as D
from dl_core import notebooks as N
from dl_core.codegen.checkpoint import load_code, save_code
from dl_core.codegen.data import dataloader_code, dataset_code, folder_dataset_code, transforms_code
from dl_core.codegen.layers import (
    activation_code, conv_code, flatten_code, image_layers_code, multi_conv_code, pool_code,
)
from dl_core.codegen.model import model_code, vgg_code
from dl_core.codegen.predict import predict_code
from dl_core.codegen.train import train_code
from dl_core.existing import modify, vgg16
from dl_core.layers import COURSE_INPUT, COURSE_KERNEL, MULTI_BIAS, MULTI_INPUT, MULTI_WEIGHT
from dl_core.models import build_model_seeded, count_parameters, course_cnn
from dl_core.preprocess import Preprocessing
from dl_core.training import TrainConfig
from dl_core.transforms import Step, compose

SPEC = course_cnn()
TRAIN = TrainConfig(epochs=1, train_subset=128, test_subset=64, log_every=1)
STEPS = [Step.make("ToTensor"), Step.make("Normalize")]

# What each page passes to show_code (app_pages/*.py), with the pages' defaults and a tiny training.
PAGES = {
    "conv": ("conv2d.py", conv_code(COURSE_INPUT, COURSE_KERNEL, 2, 0, 1, 0)),
    "multi": ("conv2d_channels.py", multi_conv_code(MULTI_INPUT, MULTI_WEIGHT, MULTI_BIAS, 1, 0)),
    "pool": ("maxpool.py", pool_code(COURSE_INPUT, 3, True, None, 0, 1)),
    "act": ("activations.py", activation_code(0.01)),
    "flat": ("flatten_linear.py", flatten_code(64, 3, 32, 32, 10)),
    "img": ("conv_on_images.py", image_layers_code("edges", 6, 3, 0, 2, in_channels=3)),
    "folder": ("read_data.py", folder_dataset_code("dataset/train", ["ants", "bees"])),
    "dataset": ("dataset.py", dataset_code("shapes10", 7)),
    "tf": ("transforms.py", transforms_code(STEPS, "shapes10", 3)),
    "tf_upload": ("transforms.py", transforms_code([Step.make("Resize"), Step.make("ToTensor")], "upload")),
    "loader": ("dataloader.py", dataloader_code("shapes10", 64, True, False, 0, train=False)),
    "model": ("model.py", model_code(SPEC, (3, 32, 32), ordered=False)),
    "vgg": ("vgg16.py", vgg_code("classifier_replace", freeze=True, pretrained=False)),
    "train": ("train.py", train_code(SPEC, TRAIN, "shapes10", (3, 32, 32), tensorboard=True, lang="en")),
    "save": ("save.py", save_code(SPEC)),
    "load": ("load.py", load_code(SPEC)),
    "predict": ("test.py", predict_code(SPEC, Preprocessing(), list(D.DATASETS["shapes10"].classes))),
}
EXPLAIN = "**Why** this code: the page's explanation."

# Importing dl_core inside the notebook now fails: the notebook must be self-contained.
BLOCK = 'import sys\nsys.modules["dl_core"] = None\n'
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}


def run_notebook(notebook: bytes, cwd: Path, timeout: float = 240) -> str:
    """All code cells as one script in a fresh interpreter, cwd `cwd`, no PYTHONPATH, offline: its stdout."""
    (cwd / "run_notebook.py").write_text(BLOCK + N.code_of(notebook), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TORCH_CLASSROOM_DATA")}
    env.update(OFFLINE, OMP_NUM_THREADS="1", TORCH_HOME=str(cwd / "torch_home"))
    proc = subprocess.run([sys.executable, "run_notebook.py"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def flat(text: str) -> str:
    return " ".join(text.split())


def prepare_predict(cwd: Path) -> None:
    """The student's files: a trained-like checkpoint (dl_core's seeded model as class Tudui) and a picture."""
    model = build_model_seeded(SPEC, 3)
    torch.save({f"model.{k}": v for k, v in model.state_dict().items()}, cwd / "tudui_method2.pth")
    D.load_dataset("shapes10", False).pil(4).resize((40, 40)).save(cwd / "dog.png")


# Importing torch costs seconds here: a few notebooks share one fresh interpreter, each run as its own
# __main__ module (fresh names, so a missing import still fails) in its own folder, dl_core blocked.
DRIVER = """
import os, sys, traceback, types
sys.modules["dl_core"] = None
for folder in sys.argv[1:]:
    os.chdir(folder)
    print("@@@ notebook in " + folder, flush=True)
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    try:
        exec(compile(open("notebook.py", encoding="utf-8").read(), "notebook.py", "exec"), main.__dict__)
    except BaseException:
        print("!!! FAILED\\n" + traceback.format_exc(), flush=True)
"""


def run_batch(folders: list[Path], timeout: float = 400) -> dict[Path, str]:
    """Each folder's notebook.py run in one fresh interpreter as above: {folder: its stdout}."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TORCH_CLASSROOM_DATA")}
    env.update(OFFLINE, OMP_NUM_THREADS="1", TORCH_HOME=str(folders[0] / "torch_home"))
    proc = subprocess.run([sys.executable, "-c", DRIVER, *map(str, folders)], cwd=folders[0], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parts = proc.stdout.split("@@@ notebook in ")[1:]
    return {Path(p.split("\n", 1)[0]): p.split("\n", 1)[1] for p in parts}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Every page's notebook run once, in two interpreters side by side: {name: (its folder, its stdout)}."""
    folders = {name: tmp_path_factory.mktemp(f"nb_{name}") for name in PAGES}
    prepare_predict(folders["predict"])
    for name, (title, code) in PAGES.items():
        (folders[name] / "notebook.py").write_text(N.code_of(N.page_notebook(title, EXPLAIN, code, "en")),
                                                   encoding="utf-8")
    # The control: the page's own script, which imports dl_core, must fail there.
    folders["control"] = tmp_path_factory.mktemp("nb_control")
    (folders["control"] / "notebook.py").write_text(PAGES["dataset"][1], encoding="utf-8")
    names = [*PAGES, "control"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        halves = pool.map(run_batch, [[folders[n] for n in names[0::2]], [folders[n] for n in names[1::2]]])
        out = {k: v for half in halves for k, v in half.items()}
    return {name: (folders[name], out.get(folders[name], "!!! FAILED: did not run")) for name in names}


def output(runs, name: str) -> tuple[Path, str]:
    folder, text = runs[name]
    assert "!!! FAILED" not in text, f"{name}: {text[-3000:]}"
    return folder, text


# ---------------------------------------------------------------------------------------------
# The notebook file itself

@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_notebook_is_valid_and_cells_stand_alone(name):
    title, code = PAGES[name]
    nb = nbformat.reads(N.page_notebook(title, EXPLAIN, code, "zh").decode("utf-8"), as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {title}")
    assert EXPLAIN in [c.source for c in nb.cells if c.cell_type == "markdown"]
    code_cells = [c.source for c in nb.cells if c.cell_type == "code"]
    for source in code_cells:
        ast.parse(source)  # each cell is whole statements: never cut inside an indented block
        assert N.DATASET_IMPORT not in source
    # Nothing of the page's code is lost: every line of it is in some cell, in order.
    kept = "\n".join(code_cells)
    lines = [line for line in code.splitlines() if line.strip() and N.DATASET_IMPORT not in line]
    position = 0
    for line in lines:
        found = kept.find(line, position)
        assert found >= 0 or line.lstrip().startswith("#"), line
        position = max(position, found)


def test_the_runs_really_lack_dl_core(runs):
    out = runs["control"][1]
    assert "!!! FAILED" in out and "ModuleNotFoundError" in out and "dl_core" in out


def test_same_code_same_file_and_generic_intro():
    a = N.page_notebook("conv2d.py", None, PAGES["conv"][1], "en")
    assert a == N.page_notebook("conv2d.py", None, PAGES["conv"][1], "en")
    sources = [c.source for c in nbformat.reads(a.decode("utf-8"), as_version=4).cells]
    assert N.text("notebook.generic", "en") in sources
    zh = N.page_notebook("conv2d.py", None, PAGES["conv"][1], "zh").decode("utf-8")
    assert N.text("notebook.generic", "zh") in zh and N.text("notebook.intro", "zh") in zh


def test_torchvision_datasets_stay_torchvision():
    code = dataloader_code("cifar10", 64, True, False, 0)
    data = N.page_notebook("dataloader.py", EXPLAIN, code, "en").decode("utf-8")
    assert N.text("notebook.download_note", "en") in data
    assert "torchvision.datasets.CIFAR10" in N.code_of(data) and "def load_dataset(" not in N.code_of(data)
    shapes = N.page_notebook("dataloader.py", EXPLAIN, dataloader_code("shapes10"), "en").decode("utf-8")
    assert N.text("notebook.download_note", "en") not in shapes


def test_split_cells_keeps_blocks_whole_and_imports_together():
    code = ("import torch\n\nfrom torch import nn\n\n# a section\nx = 1\n\n\nfor i in range(2):\n    y = i\n\n"
            "    print(y)\n\n\nclass A:\n    pass\n\n    def f(self):\n        return 1\n\n# the end\n")
    cells = N.split_cells(code)
    assert cells == ["import torch\n\nfrom torch import nn", "# a section\nx = 1",
                     "for i in range(2):\n    y = i\n\n    print(y)",
                     "class A:\n    pass\n\n    def f(self):\n        return 1\n\n# the end"]
    assert N.split_cells("def broken(:\n") == ["def broken(:"]


def test_inlined_shapes10_draws_the_apps_pictures():
    drawing, loader = N.dataset_cells()
    assert "dl_core" not in "".join(line for line in (drawing + loader).splitlines() if line.startswith(("import", "from")))
    namespace: dict = {"__name__": "shapes10_inline"}
    exec(compile(drawing + "\n\n" + loader, "inline.py", "exec", dont_inherit=True), namespace)
    for train in (True, False):
        ours = namespace["load_dataset"]("shapes10", train=train)
        app = D.load_dataset("shapes10", train)
        assert len(ours) == len(app) and list(ours.classes) == list(app.classes)
        assert torch.equal(ours.images, app.images) and torch.equal(ours.targets, app.targets)
    img, target = namespace["load_dataset"]("shapes10", train=False, transform=compose(STEPS))[5]
    want, want_target = D.load_dataset("shapes10", False, transform=compose(STEPS))[5]
    assert torch.equal(img, want) and target == want_target


# ---------------------------------------------------------------------------------------------
# Each page's notebook, run: the page's numbers

def test_layers_notebooks_print_the_course_numbers(runs):
    x = torch.tensor(COURSE_INPUT).reshape(1, 1, 5, 5)
    k = torch.tensor(COURSE_KERNEL).reshape(1, 1, 3, 3)
    out = flat(output(runs, "conv")[1])
    assert "tensor([[[[10, 12], [13, 3]]]])" in out
    assert flat(str(F.conv2d(x, k, stride=2))) in out
    multi = flat(output(runs, "multi")[1])
    want = F.conv2d(torch.tensor(MULTI_INPUT, dtype=torch.float32)[None],
                    torch.tensor(MULTI_WEIGHT, dtype=torch.float32), torch.tensor(MULTI_BIAS, dtype=torch.float32))
    assert flat(str(want)) in multi and "0 True" in multi and "1 True" in multi
    pool = flat(output(runs, "pool")[1])
    assert "tensor([[[[2., 3.], [5., 1.]]]])" in pool
    assert flat(str(torch.nn.MaxPool2d(3, ceil_mode=True)(x.float()))) in pool
    act = flat(output(runs, "act")[1])
    assert flat(str(torch.relu(torch.tensor([[1, -0.5], [-1, 3]]).reshape(-1, 1, 2, 2)))) in act
    assert "tensor([1., 0., 0., 3.])" in act
    fl = flat(output(runs, "flat")[1])
    assert "torch.Size([196608])" in fl and "torch.Size([64, 3072])" in fl and "parameters: 30730" in fl
    img = flat(output(runs, "img")[1])
    assert "torch.Size([64, 6, 30, 30])" in img and "torch.Size([128, 3, 30, 30])" in img
    assert "torch.Size([64, 3, 16, 16])" in img


def test_data_notebooks_print_the_pages_facts(runs):
    train, test = D.load_dataset("shapes10", True), D.load_dataset("shapes10", False)
    facts = D.dataset_facts(train, test, 7)
    out = output(runs, "dataset")[1]
    assert f"len(train_set): {facts.len_train}" in out and f"len(test_set): {facts.len_test}" in out
    assert f"classes: {list(facts.classes)}" in out and f"class_to_idx: {facts.class_to_idx}" in out
    assert f"size: {facts.sample_size}" in out and f"target: {facts.label} {facts.label_name}" in out

    value = compose(STEPS)(train.view()[3][0])
    out = output(runs, "tf")[1]
    assert f"shape: {tuple(value.shape)} dtype: {value.dtype}" in out
    assert f"min: {round(value.min().item(), 4)} max: {round(value.max().item(), 4)}" in out
    assert "shape: (3, 64, 64)" in output(runs, "tf_upload")[1]  # the stand-in picture went through Resize((64, 64))

    loader = D.loader_facts(len(test), 64)
    out = output(runs, "loader")[1]
    assert f"len(test_loader): {loader.num_batches}" in out
    assert f"last imgs: ({loader.last_size}, 3, 32, 32)" in out and "imgs: (64, 3, 32, 32)" in out

    folder, out = output(runs, "folder")
    assert "len(train_dataset): 6" in out and "ants: 3" in out and "bees: 3" in out
    assert sorted(os.listdir(folder / "dataset" / "train")) == ["ants", "bees"]  # the stand-in folders


def test_model_notebooks_print_the_parameter_counts(runs):
    out = output(runs, "model")[1]
    assert f"\n{count_parameters(build_model_seeded(SPEC))}\n" in out and "torch.Size([64, 10])" in out
    vgg = modify(vgg16(), "classifier_replace")
    total = count_parameters(vgg)
    for p in vgg.features.parameters():
        p.requires_grad = False
    assert output(runs, "vgg")[1].split()[-2:] == [str(total), str(count_parameters(vgg, trainable_only=True))]


def _numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", line)]


def test_train_notebook_prints_what_the_apps_dataset_gives(runs, tmp_path, monkeypatch):
    """The same train.py with dl_core's load_dataset (in this process) prints the same numbers."""
    folder, out = output(runs, "train")
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with torch.random.fork_rng(devices=[]), contextlib.redirect_stdout(printed):
        exec(compile(PAGES["train"][1], "train.py", "exec", dont_inherit=True), {"__name__": "__main__"})

    def labelled(text: str) -> list[str]:  # the timing lines (a bare number) differ from run to run
        return [line for line in text.splitlines() if not re.fullmatch(r"[\d.e-]+", line.strip())]

    ours, app = labelled(out), labelled(printed.getvalue())
    assert len(ours) == len(app) and "train_data size: 128" in ours and "test_data size: 64" in ours
    for a, b in zip(ours, app):
        assert re.sub(r"[\d.e-]+", "#", a) == re.sub(r"[\d.e-]+", "#", b)
        assert _numbers(a) == pytest.approx(_numbers(b), rel=1e-4, abs=1e-6)
    assert (folder / "tudui_0.pth").exists() and any((folder / "logs_train").iterdir())


def test_save_load_notebooks_run_with_stand_ins(runs):
    out = output(runs, "save")[1]
    way1, way2 = (int(line.split()[0]) for line in out.splitlines() if "bytes (way" in line)
    assert way2 > 4 * count_parameters(build_model_seeded(SPEC)) and way1 > way2
    folder, out = output(runs, "load")
    assert out.count("Tudui(") == 2 and "Linear(in_features=1024, out_features=64, bias=True)" in out
    assert (folder / "tudui_method1.pth").exists() and (folder / "tudui_method2.pth").exists()


def test_predict_notebook_predicts_what_dl_core_predicts(runs):
    from dl_core.predict import predict

    folder, out = output(runs, "predict")
    model = build_model_seeded(SPEC, 3)
    prediction = predict(model, Image.open(folder / "dog.png").convert("RGB"), Preprocessing())
    lines = out.strip().splitlines()
    classes = list(D.DATASETS["shapes10"].classes)
    assert lines[-1] == classes[prediction.index] and lines[-2] == f"tensor([{prediction.index}])"
    logits = _numbers(flat(out).split("torch.Size([3, 32, 32]) tensor(")[1].split(")")[0])
    assert logits == pytest.approx(prediction.logits.tolist(), abs=1e-4)


# ---------------------------------------------------------------------------------------------
# The whole course

def test_course_notebook_runs_every_step_offline(tmp_path):
    data = N.course_notebook("zh", images=128, epochs=1, test_images=64, dataset="shapes10", sample=2)
    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    nbformat.validate(nb)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for key in ("home.step5", "home.step4", "home.step6", "home.step8", "home.step9", "home.step10", "home.step11",
                "home.step12", "home.step13", "home.step14", "home.step17", "home.step16", "home.step19"):
        assert N.text(key, "zh") in markdown
    order = [markdown.index(N.text(k, "zh")) for k in ("home.step5", "home.step6", "home.step8", "home.step12",
                                                         "home.step17", "home.step16", "home.step19")]
    assert order == sorted(order)
    code = N.code_of(data)
    assert code.count("def load_dataset(") == 1 and N.DATASET_IMPORT not in code

    out = run_notebook(data, tmp_path)
    flat_out = flat(out)
    assert "tensor([[[[10, 12, 12], [18, 16, 16], [13, 9, 3]]]])" in flat_out
    assert "tensor([[[[2., 3.], [5., 1.]]]])" in flat_out
    assert f"\n{count_parameters(build_model_seeded(SPEC))}\n" in out
    assert N.text("code.train.len", "zh").format(128) in out and N.text("code.train.len_test", "zh").format(64) in out
    test = D.load_dataset("shapes10", False)
    label = int(test.targets[2])
    assert f"shape.png: {label} {test.classes[label]}" in out
    assert out.strip().splitlines()[-1] in test.classes  # the trained model's prediction, a class name
    assert (tmp_path / "tudui_0.pth").exists() and (tmp_path / "shape.png").exists()
    assert not (tmp_path / "dog.png").exists()  # the real picture and checkpoint were used: no stand-in


def test_course_notebook_checks_its_settings():
    from dl_core.errors import CourseError

    with pytest.raises(CourseError):
        N.course_notebook("en", epochs=0)
    with pytest.raises(CourseError):
        N.course_notebook("en", images=0)
    for bad in ({"dataset": "cifar10"}, {"dataset": "nope"}, {"sample": 10_000}, {"sample": -1}):
        with pytest.raises(CourseError) as err:
            N.course_notebook("en", **bad)
        assert err.value.code in ("notebook.dataset", "notebook.sample")
    code = N.code_of(N.course_notebook("en"))  # the defaults: documented in COURSE_* and in the Markdown
    assert f"range(min({N.COURSE_IMAGES}, len(train_data)))" in code and f"epoch = {N.COURSE_EPOCHS}" in code
    assert f'load_dataset("{N.COURSE_DATASET}", train=True)' in code
    en = N.course_notebook("en", images=300, epochs=2).decode("utf-8")
    assert N.text("notebook.course.subset", "en", images="300", epochs=2) in en
    assert "range(min(300, len(train_data)))" in en and "epoch = 2" in en


def test_show_code_offers_the_notebook(lang):
    from tests.conftest import assert_clean, new_app
    from ui.code import notebook_bytes

    at = new_app(lang, "app_pages/layers.py")
    assert_clean(at)
    keys = {b.key for b in at.download_button}
    assert {"layers.conv.code.download", "layers.conv.code.notebook"} <= keys
    data = notebook_bytes(PAGES["conv"][1], EXPLAIN, lang, N.text("notebook.title", lang, file="conv2d.py"))
    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].source.startswith(f"# {N.text('notebook.title', lang, file='conv2d.py')}")
    assert notebook_bytes.cache_info().maxsize == 64
