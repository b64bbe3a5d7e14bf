"""Runnable, course-style code for the data page's current choices (datasets, transforms, DataLoader).

Every function returns a complete script. Shapes-10 ships with this app, so its scripts load it
with `dl_core.datasets.load_dataset` (run them from the app's folder); torchvision datasets use
the course's own `torchvision.datasets.CIFAR10("./dataset", ...)` lines.
"""
from __future__ import annotations

from dl_core.datasets import DATASETS
from dl_core.transforms import Step


def _imports(name: str, transforms: bool = True, loader: bool = False) -> list[str]:
    info = DATASETS.get(name)
    lines = ["import torch"]
    if info is not None and info.torchvision_class:
        lines += info.code_imports()
    if loader:
        lines.append("from torch.utils.data import DataLoader")
    if transforms:
        lines.append("from torchvision.transforms import v2")
    if info is not None and not info.torchvision_class:
        lines += info.code_imports()
    return lines


def _dataset_line(var: str, name: str, train: bool, transform: str | None) -> str:
    return f"{var} = {DATASETS[name].code(train, transform)}"


def _compose(steps: list[Step], var: str = "dataset_transform") -> list[str]:
    lines = [f"{var} = v2.Compose(["]
    for step in steps:
        note = f"  # {step.entry.note}" if step.entry.note else ""
        lines.append(f"    {step.code()},{note}")
    lines.append("])")
    return lines


def dataset_code(name: str, index: int = 0) -> str:
    """The course's torchvision-dataset lines: lengths, classes, class_to_idx, one sample."""
    lines = _imports(name, transforms=False)
    lines += [
        "",
        "# Without a transform every sample is a PIL image, as in the course.",
        _dataset_line("train_set", name, True, None),
        _dataset_line("test_set", name, False, None),
        "",
        'print("len(train_set):", len(train_set))',
        'print("len(test_set):", len(test_set))',
        'print("classes:", train_set.classes)',
        'print("class_to_idx:", train_set.class_to_idx)',
        "",
        f"img, target = train_set[{index}]",
        'print("type:", type(img))',
        'print("size:", img.size)  # PIL: (width, height)',
        'print("mode:", img.mode)',
        'print("target:", target, train_set.classes[target])',
        "# img.show()  # opens the picture in your image viewer",
    ]
    return "\n".join(lines) + "\n"


def folder_dataset_code(root_dir: str, labels: list[str], index: int = 0) -> str:
    """The course's own Dataset (the ants/bees pattern) over `root_dir/<label>/`, one dataset per label."""
    names = [f"{_identifier(label)}_dataset" for label in labels]
    lines = [
        "import os",
        "",
        "from PIL import Image",
        "from torch.utils.data import Dataset",
        "",
        "",
        "class MyDataSet(Dataset):",
        "    def __init__(self, root_dir, label_dir):",
        "        self.root_dir = root_dir",
        "        self.label_dir = label_dir",
        "        self.path = os.path.join(self.root_dir, self.label_dir)",
        "        self.img_path_list = sorted(os.listdir(self.path))",
        "",
        "    def __getitem__(self, idx):",
        "        img_name = self.img_path_list[idx]",
        "        img_path = os.path.join(self.path, img_name)",
        '        img = Image.open(img_path).convert("RGB")',
        "        label = self.label_dir",
        "        return img, label",
        "",
        "    def __len__(self):",
        "        return len(self.img_path_list)",
        "",
        "",
        f"root_dir = {root_dir!r}",
    ]
    for var, label in zip(names, labels):
        lines.append(f"{var} = MyDataSet(root_dir, {label!r})")
    lines += [
        f"train_dataset = {' + '.join(names)}  # Dataset + Dataset concatenates them",
        "",
        'print("len(train_dataset):", len(train_dataset))',
    ]
    for var, label in zip(names, labels):
        lines.append(f'print("{label}:", len({var}))')
    lines += [
        f"img, label = train_dataset[{index}]",
        'print("size:", img.size, "mode:", img.mode, "label:", label)',
    ]
    return "\n".join(lines) + "\n"


def _identifier(label: str) -> str:
    ident = "".join(ch if ch.isalnum() else "_" for ch in label.lower()).strip("_") or "label"
    return ident if ident.isidentifier() and not ident[0].isdigit() else f"class_{ident}"


def transforms_code(steps: list[Step], name: str = "shapes10", index: int = 0) -> str:
    """The pipeline as `v2.Compose([...])`, applied to one dataset sample, printing what the page shows."""
    lines = _imports(name) if name in DATASETS else ["import torch", "from PIL import Image",
                                                     "from torchvision.transforms import v2"]
    lines.append("")
    lines += _compose(steps)
    lines.append("")
    if name in DATASETS:
        lines += [_dataset_line("train_set", name, True, None), f"img, target = train_set[{index}]"]
    else:
        lines += ['img = Image.open("your_image.png").convert("RGB")  # PNG can have 4 channels (RGBA)']
    lines += [
        "out = dataset_transform(img)",
        "if isinstance(out, torch.Tensor):",
        '    print("shape:", tuple(out.shape), "dtype:", out.dtype)',
        '    print("min:", round(out.min().item(), 4), "max:", round(out.max().item(), 4))',
        "else:",
        '    print("PIL image, size:", out.size, "mode:", out.mode)',
    ]
    if any(s.kind == "Normalize" for s in steps):  # the page shows normalized pictures this way too
        lines += ["# To look at a normalized image, undo Normalize: x * std + mean (the course's img * 0.5 + 0.5)."]
    return "\n".join(lines) + "\n"


def dataloader_code(name: str, batch_size: int = 64, shuffle: bool = True, drop_last: bool = False,
                    num_workers: int = 0, train: bool = False, steps: list[Step] | None = None) -> str:
    """The course's DataLoader lines over the test (or train) split: len(loader), batch shapes, two epochs."""
    steps = steps or [Step.make("ToTensor")]
    var = "train_data" if train else "test_data"
    lines = _imports(name, loader=True)
    lines.append("")
    lines += _compose(steps)
    lines += [
        "",
        _dataset_line(var, name, train, "dataset_transform"),
        "",
        f"test_loader = DataLoader({var}, batch_size={batch_size}, shuffle={shuffle}, "
        f"num_workers={num_workers}, drop_last={drop_last})" if not train else
        f"train_loader = DataLoader({var}, batch_size={batch_size}, shuffle={shuffle}, "
        f"num_workers={num_workers}, drop_last={drop_last})",
    ]
    loader = "train_loader" if train else "test_loader"
    lines += [
        f'print("len({var}):", len({var}))',
        f'print("len({loader}):", len({loader}))  # number of batches',
        "",
        "for epoch in range(2):",
        "    step = 0",
        f"    for data in {loader}:",
        "        imgs, targets = data",
        "        if step == 0:",
        '            print("epoch", epoch, "first targets:", targets[:8].tolist())',
        "        step = step + 1",
        '    print("epoch", epoch, "batches:", step, "last imgs:", tuple(imgs.shape), "last targets:", tuple(targets.shape))',
        "",
        f"imgs, targets = next(iter({loader}))",
        'print("imgs:", tuple(imgs.shape))',
        'print("targets:", tuple(targets.shape))',
    ]
    return "\n".join(lines) + "\n"
