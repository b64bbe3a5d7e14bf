"""Jupyter notebooks (.ipynb, nbformat v4) of the generated code: one page's script, or the whole course.

A notebook is the page's explanation as Markdown, then the script cut into code cells at blank lines
between top-level statements (never inside a block). It runs top to bottom in a fresh kernel without
this app:

* Shapes-10's import line (`from dl_core.datasets import load_dataset`) is replaced by its definition:
  dl_core/shapes10.py's own source (torch + stdlib; any dl_core helper it imports is inlined too) and
  a small torchvision-style dataset, so the pictures are the dashboard's, drawn in about a second.
  Torchvision datasets stay torchvision.
* A file the script expects from an earlier step (a checkpoint it loads, a picture it opens, the
  ants/bees folder) gets a stand-in cell before its first use that makes it only when it is missing.
"""
from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
from collections.abc import Iterable

import nbformat
from nbformat import v4

from dl_core import shapes10
from dl_core.codegen.checkpoint import load_code, save_code
from dl_core.codegen.data import dataloader_code, dataset_code, transforms_code
from dl_core.codegen.layers import activation_code, conv_code, flatten_code, pool_code
from dl_core.codegen.model import model_code
from dl_core.codegen.predict import predict_code
from dl_core.codegen.train import train_code
from dl_core.datasets import DATASETS, TensorImageDataset
from dl_core.errors import CourseError
from dl_core.i18n import text
from dl_core.layers import COURSE_INPUT, COURSE_KERNEL
from dl_core.models import course_cnn
from dl_core.preprocess import Preprocessing
from dl_core.training import TrainConfig
from dl_core.transforms import Step

DATASET_IMPORT = "from dl_core.datasets import load_dataset"
MIME = "application/x-ipynb+json"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# The whole-course notebook's default training, the classroom's defaults made smaller: the first 20,000 of
# Shapes-10 (full)'s 50,000 training images for 3 epochs (about 940 steps of 64), tested on 2,000 images:
# 66,000 images through the course's CNN, a minute or two on a laptop CPU. (5,000 images for 3 epochs
# is only about 230 steps: plain SGD at lr 0.01 is still near chance there.)
COURSE_DATASET = "shapes10-full"
COURSE_IMAGES = 20_000
COURSE_EPOCHS = 3
COURSE_TEST_IMAGES = 2_000
_BUILT_IN = tuple(name for name, info in DATASETS.items() if info.torchvision_class is None)


# ---------------------------------------------------------------------------------------------
# Cutting a script into cells

def _paragraphs(code: str) -> list[str] | None:
    """The script's lines grouped at blank lines that lie between top-level statements; None if it
    does not parse (then it stays one cell)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    inside: set[int] = set()
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        inside.update(range(first, (node.end_lineno or node.lineno) + 1))
    paragraphs: list[list[str]] = [[]]
    for number, line in enumerate(code.splitlines(), 1):
        if not line.strip() and number not in inside:
            if paragraphs[-1]:
                paragraphs.append([])
            continue
        paragraphs[-1].append(line)
    return ["\n".join(p) for p in paragraphs if p]


def _kind(paragraph: str) -> str:
    """'import' (only imports), 'comment' (no statement) or 'code'."""
    body = ast.parse(paragraph).body
    if not body:
        return "comment"
    return "import" if all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in body) else "code"


def split_cells(code: str) -> list[str]:
    """The script as code cells: one per top-level paragraph; consecutive imports stay together, a
    paragraph of comments only joins the cell before it (or, at the top, the one after it)."""
    paragraphs = _paragraphs(code)
    if paragraphs is None:
        return [code.strip("\n")] if code.strip() else []
    cells: list[tuple[str, str]] = []  # (kind, text)
    for para in paragraphs:
        kind = _kind(para)
        if cells and cells[-1][0] == "lead":
            cells[-1] = (kind, cells[-1][1] + "\n\n" + para)
        elif cells and (kind == "comment" or kind == "import" == cells[-1][0]):
            cells[-1] = (cells[-1][0], cells[-1][1] + "\n\n" + para)
        else:
            cells.append(("lead" if kind == "comment" else kind, para))
    return [cell for _, cell in cells]


# ---------------------------------------------------------------------------------------------
# Shapes-10, defined inside the notebook

def _module_body(source: str) -> tuple[str, list[tuple[str, str]]]:
    """A module's source without its docstring, `from __future__` line (only legal first) and
    `from dl_core import x` lines; and those imports as (module, name bound)."""
    tree = ast.parse(source)
    drop: set[int] = set()
    imported: list[tuple[str, str]] = []
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        drop.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    for node in tree.body:
        module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
        if module == "__future__" or module.split(".")[0] == "dl_core":
            drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
            imported += [(f"{module}.{alias.name}", alias.asname or alias.name) for alias in node.names
                         if module != "__future__"]
    lines = [line for number, line in enumerate(source.splitlines(), 1) if number not in drop]
    return "\n".join(lines).strip("\n"), imported


def _imports_of(module) -> str:
    """A module's own import lines (not `__future__`, not dl_core): what its functions need."""
    source = inspect.getsource(module)
    keep = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.module != "__future__"
                                            and (node.module or "").split(".")[0] != "dl_core"):
            keep.append(ast.get_source_segment(source, node))
    return "\n".join(dict.fromkeys(keep))


def _inlined_helpers(body: str, imported: list[tuple[str, str]]) -> str:
    """The dl_core helpers a module imports (`from dl_core import seeding` → the `seeding.x` it uses;
    `from dl_core.seeding import generator` → that function), defined here under the same names."""
    used: dict[str, list[str]] = {bound: [] for _, bound in imported}
    for node in ast.walk(ast.parse(body)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in used:
            if node.attr not in used[node.value.id]:
                used[node.value.id].append(node.attr)
    parts = []
    for path, bound in imported:
        parent, _, name = path.rpartition(".")
        thing = getattr(importlib.import_module(parent), name)
        parts.append(_imports_of(thing if inspect.ismodule(thing) else importlib.import_module(parent)))
        if inspect.ismodule(thing):
            functions = [inspect.getsource(getattr(thing, attr)).strip() for attr in used[bound]]
            names = ", ".join(f"{attr}={attr}" for attr in used[bound])
            parts.append(f"# {path}, inlined\n" + "\n\n\n".join(functions))
            parts.append(f"{bound} = types.SimpleNamespace({names})")
        else:
            parts.append(f"# {path}, inlined\n" + inspect.getsource(thing).strip())
            if bound != name:
                parts.append(f"{bound} = {name}")
    return "import types\n" + "\n\n\n".join(parts) if parts else ""


@functools.cache
def dataset_cells() -> tuple[str, str]:
    """(Shapes-10's drawing code, the dataset class + `load_dataset`): what replaces the import line."""
    sizes = {name: (info.train_size, info.test_size) for name, info in DATASETS.items()
             if info.torchvision_class is None}
    loader = f'''from PIL import Image
from torch.utils.data import Dataset


{inspect.getsource(TensorImageDataset).strip()}


SHAPES10_SIZES = {sizes!r}  # name: (train images, test images)


def load_dataset(name, train=True, transform=None):
    """Shapes-10 as Torch Classroom draws it (the same pictures in the same order), like
    torchvision.datasets.CIFAR10: dataset[i] is (PIL image, target), passed through `transform`."""
    n_train, n_test = SHAPES10_SIZES[name]
    images, targets = generate(n_train if train else n_test, train=train)
    return TensorImageDataset(images, targets, CLASSES, name, transform)'''
    body, imported = _module_body(inspect.getsource(shapes10))
    helpers = _inlined_helpers(body, imported)
    return (f"{helpers}\n\n\n{body}" if helpers else body), loader


# ---------------------------------------------------------------------------------------------
# Stand-ins for files an earlier step makes

def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _string(node: ast.AST | None, consts: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return consts.get(node.id)
    return None


def _uses(tree: ast.Module, consts: dict[str, str]) -> dict[str, list]:
    """What a cell reads and writes: checkpoints (state_dict or whole model), pictures, ants/bees folders."""
    found: dict[str, list] = {"state_dict": [], "whole": [], "image": [], "folder": [], "saved": []}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    in_state_dict = {id(c.args[0]) for c in calls if _dotted(c.func).endswith("load_state_dict") and c.args}
    for call in calls:
        name, arg = _dotted(call.func), call.args[0] if call.args else None
        path = _string(arg, consts)
        if name == "torch.load" and path:
            found["state_dict" if id(call) in in_state_dict else "whole"].append(path)
        elif name == "torch.save" and len(call.args) > 1 and _string(call.args[1], consts):
            found["saved"].append(_string(call.args[1], consts))
        elif name == "Image.open" and path and path.lower().endswith(IMAGE_SUFFIXES):
            found["image"].append(path)
        elif name == "MyDataSet" and len(call.args) == 2 and path and _string(call.args[1], consts):
            found["folder"].append((path, _string(call.args[1], consts)))
    return found


def _constants(tree: ast.Module, consts: dict[str, str]) -> None:
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            consts[node.targets[0].id] = node.value.value


_COLOURS = ((150, 90, 40), (230, 190, 40), (60, 120, 200), (90, 170, 90), (200, 80, 120))


def _standin_code(needs: dict[str, list], lang: str) -> str:
    """Code that makes each missing file: an untrained Tudui's checkpoint, a small picture, a few images
    per label folder."""
    q = functools.partial(json.dumps, ensure_ascii=False)  # "double quotes", as the course writes strings
    pictures = needs["image"] or needs["folder"]
    lines = ["import os", ""]
    if needs["state_dict"] or needs["whole"]:
        lines.append("import torch")
    if pictures:
        lines.append("from PIL import Image" + (", ImageDraw" if needs["image"] else ""))
    lines += ["", f"# {text('notebook.standin.comment', lang)}"]
    for path in needs["state_dict"]:
        lines += [f"if not os.path.exists({q(path)}):", f"    torch.save(Tudui().state_dict(), {q(path)})"]
    for path in needs["whole"]:
        lines += [f"if not os.path.exists({q(path)}):", f"    torch.save(Tudui(), {q(path)})"]
    for path in needs["image"]:
        lines += [f"if not os.path.exists({q(path)}):",
                  '    picture = Image.new("RGBA", (48, 40), (30, 60, 120, 255))  # RGBA, like many PNGs',
                  "    ImageDraw.Draw(picture).ellipse((10, 6, 38, 34), fill=(240, 200, 40, 255))",
                  f"    picture.save({q(path)})"]
    for k, (root, label) in enumerate(needs["folder"]):
        folder = q(f"{root.rstrip('/')}/{label}")
        lines += [f"if not os.path.isdir({folder}):",
                  f"    os.makedirs({folder})",
                  "    for i in range(3):",
                  f"        Image.new(\"RGB\", (64 + 16 * i, 48), {_COLOURS[k % len(_COLOURS)]})"
                  f".save(os.path.join({folder}, f\"{{i}}.jpg\"))"]
    return "\n".join(lines)


def _with_standins(items: list[tuple[str, str]], lang: str, made: set[str]) -> list[tuple[str, str]]:
    """The cells, each code cell preceded by a stand-in for the files it needs that no cell before made."""
    out: list[tuple[str, str]] = []
    consts: dict[str, str] = {}
    has_tudui = False
    for kind, cell in items:
        try:
            tree = ast.parse(cell) if kind == "code" else None
        except SyntaxError:
            tree = None
        if tree is None:
            out.append((kind, cell))
            continue
        _constants(tree, consts)
        uses = _uses(tree, consts)
        needs = {
            "state_dict": [p for p in dict.fromkeys(uses["state_dict"]) if p not in made and has_tudui],
            "whole": [p for p in dict.fromkeys(uses["whole"]) if p not in made and has_tudui],
            "image": [p for p in dict.fromkeys(uses["image"]) if p not in made],
            "folder": [f for f in dict.fromkeys(uses["folder"]) if f"{f[0]}/{f[1]}" not in made],
        }
        if any(needs.values()):
            out += [("markdown", text("notebook.standin", lang)), ("code", _standin_code(needs, lang))]
            made.update(needs["state_dict"], needs["whole"], needs["image"])
            made.update(f"{root}/{label}" for root, label in needs["folder"])
        made.update(uses["saved"])
        has_tudui = has_tudui or any(isinstance(n, ast.ClassDef) and n.name == "Tudui" for n in tree.body)
        out.append((kind, cell))
    return out


# ---------------------------------------------------------------------------------------------
# Building notebooks

def _drop_dataset_import(cell: str) -> tuple[str, bool]:
    """The cell without the import line (and the comment right above it, which speaks of the app)."""
    lines = cell.split("\n")
    if DATASET_IMPORT not in (line.strip() for line in lines):
        return cell, False
    i = [line.strip() for line in lines].index(DATASET_IMPORT)
    start = i - 1 if i > 0 and lines[i - 1].lstrip().startswith("#") else i
    kept = lines[:start] + lines[i + 1:]
    return "\n".join(kept).strip("\n"), True


def script_cells(code: str, lang: str, state: dict | None = None) -> list[tuple[str, str]]:
    """[(cell type, source)] for one generated script: its code cells, Shapes-10 defined where it was
    imported (once per notebook: `state` remembers that, and the files made so far, across scripts)."""
    state = state if state is not None else {}
    items: list[tuple[str, str]] = []
    for cell in split_cells(code):
        cell, had = _drop_dataset_import(cell)
        if cell.strip():
            items.append(("code", cell))
        if had and not state.get("dataset"):
            state["dataset"] = True
            drawing, loader = dataset_cells()
            items += [("markdown", text("notebook.dataset", lang)), ("code", drawing), ("code", loader)]
    return _with_standins(items, lang, state.setdefault("made", set()))


def _notebook(cells: Iterable[tuple[str, str]], lang: str) -> bytes:
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["torch_classroom"] = {"lang": lang}
    for kind, source in cells:
        nb.cells.append(v4.new_markdown_cell(source) if kind == "markdown" else v4.new_code_cell(source))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"  # stable ids: the same code gives the same file
    nbformat.validate(nb)
    return nbformat.writes(nb).encode("utf-8")


def page_notebook(title: str, explain_md: str | None, code: str, lang: str) -> bytes:
    """A page's notebook (.ipynb bytes): title, the explanation (Markdown, `lang`), the code as cells."""
    head = f"# {title}\n\n{text('notebook.intro', lang)}"
    if "download=True" in code:
        head += f"\n\n{text('notebook.download_note', lang)}"
    cells = [("markdown", head), ("markdown", explain_md or text("notebook.generic", lang))]
    return _notebook(cells + script_cells(code, lang), lang)


def code_of(notebook: bytes | str) -> str:
    """Every code cell of a notebook, in order, as one script (what "Run all" runs)."""
    nb = nbformat.reads(notebook.decode("utf-8") if isinstance(notebook, bytes) else notebook, as_version=4)
    return "\n\n".join(cell.source for cell in nb.cells if cell.cell_type == "code") + "\n"


# ---------------------------------------------------------------------------------------------
# The whole course

def _step(n: str, lang: str, level: str = "##") -> str:
    """`## title` and its one-line explanation, from locales/home.json's step entries."""
    titles = {"1": "home.step1", "4": "home.step4", "5": "home.step5", "6": "home.step6", "8": "home.step8",
              "9": "home.step9", "10": "home.step10", "11": "home.step11", "12": "home.step12",
              "13": "home.step13", "14": "home.step14", "16": "home.step16", "17": "home.step17",
              "18": "home.step18", "19": "home.step19"}
    whats = {"1": "home.step1.what", "4": "home.step4.what", "5": "home.step5.what", "6": "home.step6.what",
             "8": "home.step8.what", "9": "home.step9.what", "10": "home.step10.what", "11": "home.step11.what",
             "12": "home.step12.what", "13": "home.step13.what", "14": "home.step14.what",
             "16": "home.step16.what", "17": "home.step17.what", "18": "home.step18.what",
             "19": "home.step19.what"}
    return f"{level} {text(titles[n], lang)}\n\n{text(whats[n], lang)}"


# Inside the training script, a step's heading goes before the first cell holding its marker.
_TRAIN_MARKERS = (("18", "torch.device("), ("13", "nn.CrossEntropyLoss()"), ("14", "optimizer = "),
                  ("17", "for i in range(epoch)"))


def _train_cells(code: str, lang: str, state: dict) -> list[tuple[str, str]]:
    cells = script_cells(code, lang, state)
    for n, marker in reversed(_TRAIN_MARKERS):
        at = next((i for i, (kind, src) in enumerate(cells) if kind == "code" and marker in src), None)
        if at is not None:
            cells.insert(at, ("markdown", _step(n, lang, "###")))
    return cells


def course_notebook(lang: str, images: int | None = COURSE_IMAGES, epochs: int = COURSE_EPOCHS,
                    test_images: int | None = COURSE_TEST_IMAGES, dataset: str = COURSE_DATASET,
                    sample: int = 0) -> bytes:  # ~60 lines: the course in order
    """The whole course as one notebook (.ipynb bytes): data → transforms → DataLoader → conv / pool /
    activation / flatten → the course's Sequential model → loss, optimizer, training loop (on the first
    `images` training images of `dataset`, a Shapes-10 size, for `epochs` epochs, tested on the first
    `test_images`; None: all) → save / load → predict (test image `sample`, with the last epoch's checkpoint)."""
    if dataset not in DATASETS or DATASETS[dataset].torchvision_class is not None:
        raise CourseError("notebook.dataset", "the course notebook uses a built-in dataset ({choices}), not {name}",
                          choices=", ".join(_BUILT_IN), name=str(dataset)[:40])
    info = DATASETS[dataset]
    if not 0 <= sample < info.test_size:
        raise CourseError("notebook.sample", "the test picture must be between 0 and {last}, got {sample}",
                          last=info.test_size - 1, sample=sample)
    spec = course_cnn()
    config = TrainConfig(epochs=epochs, train_subset=images, test_subset=test_images)
    config.validate()  # CourseError for 0 epochs or an empty subset
    last = f"tudui_{epochs - 1}.pth"
    picture = "shape.png"
    state: dict = {"made": {last, picture}}
    n_train = min(images or info.train_size, info.train_size)
    subset = text("notebook.course.subset", lang, images=f"{n_train:,}", epochs=epochs)
    intro = f"{text('notebook.course.intro', lang)} {subset}"
    cells: list[tuple[str, str]] = [("markdown", f"# {text('notebook.course.title', lang)}\n\n{intro}"),
                                    ("markdown", _step("1", lang)),
                                    ("code", 'import torch\n\nprint(torch.__version__)\nprint("cuda:", '
                                             'torch.cuda.is_available())')]
    sections = [
        ("5", dataset_code(dataset, sample)),
        ("4", transforms_code([Step.make("ToTensor"), Step.make("Normalize")], dataset, sample)),
        ("6", dataloader_code(dataset, 64, True, False, 0)),
        ("8", conv_code(COURSE_INPUT, COURSE_KERNEL, 1, 0)),
        ("9", pool_code(COURSE_INPUT, 3, True)),
        ("10", activation_code()),
        ("11", flatten_code()),
        ("12", model_code(spec, (3, 32, 32))),
    ]
    for n, code in sections:
        cells.append(("markdown", _step(n, lang)))
        cells += script_cells(code, lang, state)
    cells.append(("markdown", f"## {text('notebook.course.train', lang)}\n\n{subset}"))
    cells += _train_cells(train_code(spec, config, dataset, (3, 32, 32), tensorboard=False, lang=lang), lang, state)
    cells.append(("markdown", _step("16", lang)))
    cells += script_cells(save_code(spec), lang, state)
    cells += script_cells(load_code(spec), lang, state)
    cells += [("markdown", _step("19", lang)),
              ("markdown", text("notebook.course.picture", lang, file=picture, model=last)),
              ("code", f'test_set = load_dataset("{dataset}", train=False)\nimg, target = test_set[{sample}]\n'
                       f'img.save("{picture}")\nprint("{picture}:", target, test_set.classes[target])')]
    cells += script_cells(predict_code(spec, Preprocessing(size=(32, 32), channels=3), list(info.classes),
                                       image_path=picture, model_path=last), lang, state)
    return _notebook(cells, lang)
