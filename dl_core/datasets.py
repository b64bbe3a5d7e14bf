"""Datasets: everything in memory as uint8 tensors, indexed like torchvision's CIFAR10.

One entry point, `load_dataset(name, train)`, for the built-in Shapes-10 (generated on first
use, cached on disk) and torchvision's CIFAR10 / MNIST / FashionMNIST (read from the data
directory, downloaded once when the network allows). The course's own Dataset (one folder
per label, the ants/bees pattern) comes from a folder or an uploaded zip, checked first.
"""
from __future__ import annotations

import contextlib
import fcntl
import io
import os
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from dl_core import images, seeding, shapes10
from dl_core.errors import CourseError
from dl_core.i18n import text

Progress = Callable[[int, int], None]


class TensorImageDataset(Dataset):
    """A whole image dataset as `images` uint8 [N, C, H, W] and `targets` int64 [N].

    `dataset[i]` returns `(img, target)` like torchvision's CIFAR10: a PIL image passed
    through `transform` when one is set. Training reads `images`/`targets` directly,
    so the hot loop never touches PIL.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, classes: list[str] | tuple[str, ...],
                 name: str = "", transform=None, target_transform=None) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        if targets.shape != (images.shape[0],):
            raise ValueError(f"targets must be [N]={images.shape[0]}, got {tuple(targets.shape)}")
        self.images = images
        self.targets = targets.long()
        self.classes = list(classes)
        self.name = name
        self.transform = transform
        self.target_transform = target_transform

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return self.images.shape[0]

    def pil(self, index: int) -> Image.Image:
        """Sample `index` as a PIL image (mode RGB, or L for one channel)."""
        x = self.images[index]
        if x.shape[0] == 1:
            return Image.fromarray(x[0].numpy(), mode="L")
        return Image.fromarray(x.permute(1, 2, 0).contiguous().numpy(), mode="RGB")

    def __getitem__(self, index: int):
        img, target = self.pil(index), int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def subset(self, n: int | None) -> "TensorImageDataset":
        """The first n samples (all when n is None or larger), sharing memory."""
        if n is None or n >= len(self):
            return self
        return TensorImageDataset(self.images[:n], self.targets[:n], self.classes, self.name,
                                  self.transform, self.target_transform)

    def view(self, transform=None) -> "TensorImageDataset":
        """The same images (shared memory) with another `transform`: never mutate a shared dataset."""
        return TensorImageDataset(self.images, self.targets, self.classes, self.name, transform)


# ---------------------------------------------------------------------------------------------
# Built-in datasets: metadata known without loading anything.

@dataclass(frozen=True)
class DatasetInfo:
    """One built-in dataset, everything known before loading it: the picture's shape, the classes (each
    with the catalog key of its name in both languages), sizes, where torchvision finds its files, and
    the line that loads it in generated code. Adding a dataset: one entry in DATASETS plus its strings."""

    name: str
    title: str  # as students know it (not translated): "CIFAR10"
    choice_key: str  # catalog key of its entry in the Data page's picker
    channels: int
    size: int  # images are size × size
    train_size: int
    test_size: int
    class_keys: tuple[tuple[str, str], ...]  # (class name as `dataset.classes` holds it, catalog key)
    torchvision_class: str | None = None  # "CIFAR10", "MNIST", "FashionMNIST"; None: drawn by dl_core
    files: tuple[str, ...] = ()  # the archive(s) to put in `folder` when offline
    urls: tuple[str, ...] = ()
    subfolder: str = ""  # where under data_dir() torchvision looks for `files`
    extracted: str = ""  # a folder under data_dir() that exists once the archive is unpacked

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.class_keys)

    @property
    def num_classes(self) -> int:
        return len(self.class_keys)

    @property
    def needs_download(self) -> bool:
        return self.torchvision_class is not None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)

    def code_imports(self) -> list[str]:
        """The import lines generated code needs to load it."""
        if self.torchvision_class is not None:
            return ["import torchvision"]
        return ["", "# Shapes-10 is built into PyTorch 课堂 / Torch Classroom: run this from the app's folder.",
                "from dl_core.datasets import load_dataset"]  # notebooks replace this line with the definition

    def code(self, train: bool, transform: str | None = None) -> str:
        """The expression generated code loads it with: the course's own torchvision line where there is one."""
        tf = f", transform={transform}" if transform else ""
        if self.torchvision_class is None:
            return f'load_dataset("{self.name}", train={train}{tf})'
        return f'torchvision.datasets.{self.torchvision_class}("./dataset", train={train}{tf}, download=True)'


# The CIFAR10 classes, as torchvision's CIFAR10(...).classes holds them (the only place they are written).
CIFAR10_CLASS_KEYS = {
    "airplane": "data.class.cifar10.airplane", "automobile": "data.class.cifar10.automobile",
    "bird": "data.class.cifar10.bird", "cat": "data.class.cifar10.cat", "deer": "data.class.cifar10.deer",
    "dog": "data.class.cifar10.dog", "frog": "data.class.cifar10.frog", "horse": "data.class.cifar10.horse",
    "ship": "data.class.cifar10.ship", "truck": "data.class.cifar10.truck",
}
_MNIST_CLASS_KEYS = {
    "0 - zero": "data.class.mnist.0", "1 - one": "data.class.mnist.1", "2 - two": "data.class.mnist.2",
    "3 - three": "data.class.mnist.3", "4 - four": "data.class.mnist.4", "5 - five": "data.class.mnist.5",
    "6 - six": "data.class.mnist.6", "7 - seven": "data.class.mnist.7", "8 - eight": "data.class.mnist.8",
    "9 - nine": "data.class.mnist.9",
}
_FASHION_CLASS_KEYS = {
    "T-shirt/top": "data.class.fashionmnist.tshirt", "Trouser": "data.class.fashionmnist.trouser",
    "Pullover": "data.class.fashionmnist.pullover", "Dress": "data.class.fashionmnist.dress",
    "Coat": "data.class.fashionmnist.coat", "Sandal": "data.class.fashionmnist.sandal",
    "Shirt": "data.class.fashionmnist.shirt", "Sneaker": "data.class.fashionmnist.sneaker",
    "Bag": "data.class.fashionmnist.bag", "Ankle boot": "data.class.fashionmnist.ankle_boot",
}
_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo("shapes10", "Shapes-10", "data.choice.shapes10", 3, 32, 5_000, 1_000,
                tuple(shapes10.CLASS_KEYS.items())),
    DatasetInfo("shapes10-full", "Shapes-10 (full)", "data.choice.shapes10-full", 3, 32, 50_000, 10_000,
                tuple(shapes10.CLASS_KEYS.items())),
    DatasetInfo("cifar10", "CIFAR10", "data.choice.cifar10", 3, 32, 50_000, 10_000,
                tuple(CIFAR10_CLASS_KEYS.items()), "CIFAR10", ("cifar-10-python.tar.gz",),
                ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",), extracted="cifar-10-batches-py"),
    DatasetInfo("mnist", "MNIST", "data.choice.mnist", 1, 28, 60_000, 10_000, tuple(_MNIST_CLASS_KEYS.items()),
                "MNIST", _MNIST_FILES,
                tuple(f"https://ossci-datasets.s3.amazonaws.com/mnist/{f}" for f in _MNIST_FILES),
                "MNIST/raw"),
    DatasetInfo("fashionmnist", "FashionMNIST", "data.choice.fashionmnist", 1, 28, 60_000, 10_000,
                tuple(_FASHION_CLASS_KEYS.items()), "FashionMNIST", _MNIST_FILES,
                tuple(f"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{f}" for f in _MNIST_FILES),
                "FashionMNIST/raw"),
)}

_CLASS_KEYS = {name: key for info in DATASETS.values() for name, key in info.class_keys}


def display_classes(classes: list[str] | tuple[str, ...], lang: str) -> list[str]:
    """Class names in the user's language ('zh' or 'en'), from the catalogs; names we do not know
    (a student's own folders) stay as they are."""
    return [text(_CLASS_KEYS[c], lang) if c in _CLASS_KEYS else c for c in classes]


def data_dir() -> Path:
    """Where datasets live: $TORCH_CLASSROOM_DATA, default ./data (absolute)."""
    return Path(os.environ.get("TORCH_CLASSROOM_DATA") or "data").expanduser().resolve()


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise CourseError("data.unknown", "unknown dataset {name}; choose one of {choices}",
                          name=name, choices=", ".join(DATASETS))
    return DATASETS[name]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock shared by every process (and thread) of this machine: one download at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _atomic_save(obj: object, path: Path) -> None:
    # Write beside the target, then rename: a reader sees the old file or the whole new one.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# Shapes-10

SHAPES10_VERSION = 1  # bump when the drawing changes: old cache files are then ignored


def shapes10_path(name: str, train: bool, root: Path | None = None, seed: int = shapes10.DEFAULT_SEED) -> Path:
    split = "train" if train else "test"
    return (root or data_dir()) / "shapes10" / f"{name}-v{SHAPES10_VERSION}-seed{seed}-{split}.pt"


def _load_shapes10(name: str, train: bool, root: Path | None, progress: Progress | None) -> TensorImageDataset:
    info = DATASETS[name]
    path = shapes10_path(name, train, root)
    n = info.train_size if train else info.test_size
    if not path.exists():
        with _locked(path.with_suffix(".lock")):
            if not path.exists():  # another process may have finished it while we waited
                images, targets = shapes10.generate(n, train=train, progress=progress)
                _atomic_save({"images": images, "targets": targets, "classes": list(info.classes)}, path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        images, targets = obj["images"], obj["targets"]
        if images.shape != (n, *info.input_shape) or images.dtype != torch.uint8:
            raise ValueError(f"unexpected shape {tuple(images.shape)}")
    except Exception:  # a damaged cache file: draw it again (deterministic, so nothing is lost)
        path.unlink(missing_ok=True)
        images, targets = shapes10.generate(n, train=train, progress=progress)
        _atomic_save({"images": images, "targets": targets, "classes": list(info.classes)}, path)
    return TensorImageDataset(images, targets, info.classes, name)


# ---------------------------------------------------------------------------------------------
# torchvision datasets

def _fetch(url: str, dest: Path, progress: Progress | None) -> None:
    """Download `url` to `dest` atomically, reporting bytes done / total."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=20) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, max(total, done))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _torchvision(info: DatasetInfo, train: bool, root: Path, download: bool, progress: Progress | None):
    import torchvision

    cls = getattr(torchvision.datasets, info.torchvision_class)
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError:  # "Dataset not found or corrupted": fetch the archives, then let torchvision check them
        pass
    offline = CourseError(
        "data.offline",
        "{dataset} is not in {folder} and cannot be downloaded (no network?). Download {archive} from {url} "
        "on a machine with internet and put it in {folder}, then reload.",
        dataset=info.title, archive=", ".join(info.files), url=" ".join(info.urls),
        folder=str(root / info.subfolder) if info.subfolder else str(root),
    )
    if not download:
        raise offline
    with _locked(root / f".{info.name}.lock"):  # one download for all sessions and processes
        try:
            return cls(str(root), train=train, download=False)  # done by another session meanwhile
        except RuntimeError:
            pass
        folder = root / info.subfolder if info.subfolder else root
        try:
            for file, url in zip(info.files, info.urls):
                if not (folder / file).exists():
                    _fetch(url, folder / file, progress)
            # The archives are in place: torchvision verifies their checksums and extracts them.
            return cls(str(root), train=train, download=True)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError; a bad checksum a RuntimeError
            raise offline from exc


def _to_uint8_nchw(data) -> torch.Tensor:
    """torchvision's storage → uint8 [N, C, H, W]: CIFAR keeps numpy HWC, MNIST a tensor [N, H, W]."""
    arr = torch.as_tensor(np.asarray(data))
    if arr.dim() == 3:
        return arr[:, None].contiguous()
    return arr.permute(0, 3, 1, 2).contiguous()


def load_dataset(name: str, train: bool = True, *, root: Path | None = None, download: bool = True,
                 progress: Progress | None = None, transform=None) -> TensorImageDataset:
    """A built-in dataset in memory: images uint8 [N, C, H, W], targets int64 [N].

    Shapes-10 is drawn on first use (`progress(done, total)` per 1,000 images) and cached
    under the data directory; torchvision datasets are read from it and downloaded once.
    Offline and missing → CourseError("data.offline") naming the archive, URL and folder.
    `transform` works as in torchvision's `CIFAR10(..., transform=...)`.
    """
    info = _info(name)
    root = Path(root) if root is not None else data_dir()
    if info.torchvision_class is None:
        ds = _load_shapes10(name, train, root, progress)
    else:
        tv = _torchvision(info, train, root, download, progress)
        targets = torch.as_tensor(np.asarray(tv.targets), dtype=torch.int64)
        ds = TensorImageDataset(_to_uint8_nchw(tv.data), targets, list(tv.classes), name)
    return ds.view(transform) if transform is not None else ds


def is_prepared(name: str, train: bool = True, *, root: Path | None = None) -> bool:
    """True when `load_dataset` will not need to generate or download anything."""
    info = _info(name)
    root = Path(root) if root is not None else data_dir()
    if info.torchvision_class is None:
        return shapes10_path(name, train, root).exists()
    folder = root / info.subfolder if info.subfolder else root
    if info.extracted and (root / info.extracted).is_dir():
        return True
    return all((folder / f).exists() or (folder / f.removesuffix(".gz")).exists() for f in info.files)


# ---------------------------------------------------------------------------------------------
# The course's own Dataset: one folder per label (hymenoptera: train/ants, train/bees)

IMAGE_SUFFIXES = images.SUFFIXES  # what dl_core.images decodes (its one list)


@dataclass(frozen=True)
class ZipLimits:
    """Caps checked before anything is decompressed (bytes, files) or decoded (pixels), and a clock."""

    max_bytes: int = 50 * 2**20  # the upload itself
    max_files: int = 5_000
    max_total_uncompressed: int = 300 * 2**20
    max_ratio: float = 100.0  # uncompressed / compressed, per file and overall (zip bombs reach 1000+)
    max_image_pixels: int = images.MAX_DECODED_PIXELS  # one picture, from its header (4096 × 4096)
    max_total_pixels: int = 250_000_000  # all pictures together, as decoded (JPEGs drafted near `size`)
    max_seconds: float = 60.0  # reading + decoding; a dataset that takes longer is refused
    max_entries_walked: int = 50_000  # a local folder: directory entries looked at before giving up


@dataclass
class FolderDataset:
    """The student's own dataset: a train and a test split, plus what was skipped and why."""

    train: TensorImageDataset
    test: TensorImageDataset
    source: str
    skipped: int = 0  # files that were not images (or could not be decoded)
    split: str = "folders"  # "folders": train/ and val|test/ given; "random": split by us
    per_class: dict[str, int] = field(default_factory=dict)


class _Clock:
    """The time budget of one dataset read."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise CourseError("zip.too_slow", "reading the pictures took more than {seconds} s: "
                              "use fewer or smaller pictures", seconds=round(self.seconds))


def _decode(data: bytes, size: tuple[int, int], limits: ZipLimits) -> torch.Tensor | None:
    """One image file → uint8 [3, h, w] resized to `size`; None when it is not a picture we can read."""
    try:
        rgb = images.read_image(data, limits=_image_limits(limits), reduce_for=(size[1], size[0]))
    except CourseError:
        return None
    rgb = rgb.resize((size[1], size[0]), Image.BILINEAR)
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).contiguous()


def _image_limits(limits: ZipLimits) -> images.ImageLimits:
    return images.ImageLimits(max_bytes=images.MAX_IMAGE_BYTES, max_pixels=images.MAX_IMAGE_PIXELS,
                              max_decoded_pixels=limits.max_image_pixels)


# Split folder names, compared in lower case: the course's train/ + val/, and what students write.
_SPLIT_TRAIN = ("train", "training", "训练", "训练集")
_SPLIT_TEST = ("val", "test", "valid", "validation", "testing", "验证", "验证集", "测试", "测试集")


def _organise(files: dict[PurePosixPath, Any]) -> tuple[dict[str, dict[str, list[Any]]], int, str]:
    """{split: {label: [file]}} from paths like [top/][train/]ants/[more/]x.jpg; also skipped count, layout.

    `files` maps each path to where its bytes can be fetched (a zip entry, a file), or None for a
    file that is not a picture (skipped, never read).

    The class is the first folder under the split folders (train/ + val|test/), or the first folder
    after the common top one; deeper folders inside a class count for that class.
    """
    skipped = 0
    found: dict[PurePosixPath, Any] = {}
    for path, data in files.items():
        if (path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
                and "__MACOSX" not in path.parts and data is not None):
            found[path] = data
        else:
            skipped += 1
    if not found:
        raise CourseError("zip.no_images", "no image files found ({skipped} other files skipped)", skipped=skipped)
    # The folder every picture lies below (zips made by right-click → compress wrap everything in one):
    # the classes, or the split folders, are the next level down.
    paths = list(found)
    common = list(paths[0].parts[:-1])
    for path in paths[1:]:
        folder = path.parts[:-1]
        n = 0
        while n < min(len(common), len(folder)) and common[n] == folder[n]:
            n += 1
        del common[n:]
    parts = [p.parts[len(common):] for p in paths]
    if common and all(len(p) == 1 for p in parts):  # every picture in one folder: that folder is the class
        parts = [(common[-1], *p) for p in parts]
    blobs = list(found.values())
    has_splits = (any(len(p) >= 3 and p[0].lower() in _SPLIT_TRAIN for p in parts)
                  and any(len(p) >= 3 and p[0].lower() in _SPLIT_TEST for p in parts))
    out: dict[str, dict[str, list[Any]]] = {"train": {}, "test": {}}
    for p, blob in zip(parts, blobs):
        if has_splits:
            if len(p) < 3 or p[0].lower() not in _SPLIT_TRAIN + _SPLIT_TEST:
                skipped += 1  # beside the split folders, or directly in one: no label
                continue
            split = "train" if p[0].lower() in _SPLIT_TRAIN else "test"
            label = p[1]
        else:
            if len(p) < 2:
                skipped += 1  # an image beside the class folders has no label
                continue
            split, label = "all", p[0]
        out.setdefault(split, {}).setdefault(label, []).append(blob)
    return out, skipped, "folders" if has_splits else "random"


CACHE_BYTES = 64 * 2**20  # file bytes kept between the header pass and the decoding pass
HEADER_BYTES = 1 << 20  # the header pass reads at most this much of each file


Fetch = Callable[[Any, int | None], bytes]  # (where a file is, at most n bytes or None: all) -> its bytes


Where = tuple[str, str, int]  # (split, label, index in its folder)


def _header_pass(groups: dict[str, dict[str, list[Any]]], size: tuple[int, int], limits: ZipLimits,
                 clock: _Clock, fetch: Fetch) -> tuple[dict[Where, bool], dict[Where, bytes]]:
    """Every picture's header against the pixel budget, before a single one is decoded: which are readable,
    and the small files' bytes kept for the decoding pass (up to CACHE_BYTES)."""
    wanted = (size[1], size[0])
    readable: dict[Where, bool] = {}
    cache: dict[Where, bytes] = {}
    cached = total = 0
    for split, by_label in groups.items():
        for label, items in by_label.items():
            for i, item in enumerate(items):
                clock.check()
                blob = fetch(item, HEADER_BYTES)  # the start of the file: enough for any header
                h = _header(blob, limits, wanted)
                if h is None and len(blob) >= HEADER_BYTES and images.looks_like_image(blob):  # a header past 1 MB?
                    blob = fetch(item, None)
                    h = _header(blob, limits, wanted)
                readable[(split, label, i)] = h is not None
                total += h.decoded_pixels if h is not None else 0
                if total > limits.max_total_pixels:
                    raise CourseError("zip.too_many_pixels", "the pictures hold more than {limit} megapixels "
                                      "together; use fewer or smaller pictures",
                                      limit=limits.max_total_pixels // 1_000_000)
                if h is not None and len(blob) < HEADER_BYTES and cached + len(blob) <= CACHE_BYTES:
                    cache[(split, label, i)] = blob
                    cached += len(blob)
    return readable, cache


def _header(blob: bytes, limits: ZipLimits, wanted: tuple[int, int]) -> images.Header | None:
    try:
        return images.read_header(blob, _image_limits(limits), reduce_for=wanted)
    except CourseError:
        return None


def _decode_pass(groups: dict[str, dict[str, list[Any]]], readable: dict[Where, bool],
                 cache: dict[Where, bytes], size: tuple[int, int], limits: ZipLimits, clock: _Clock,
                 fetch: Fetch) -> tuple[dict[str, dict[str, list[torch.Tensor]]], int]:
    """{split: {label: [uint8 [3, h, w]]}} of the pictures that decode, and how many did not."""
    decoded: dict[str, dict[str, list[torch.Tensor]]] = {}
    failed = 0
    for split, by_label in groups.items():
        for label, items in by_label.items():
            for i, item in enumerate(items):
                clock.check()
                key = (split, label, i)
                x = None
                if readable[key]:
                    blob = cache.pop(key, None)
                    x = _decode(blob if blob is not None else fetch(item, None), size, limits)
                if x is None:
                    failed += 1
                else:
                    decoded.setdefault(split, {}).setdefault(label, []).append(x)
    return decoded, failed


def _split(decoded: dict[str, dict[str, list[torch.Tensor]]], labels: list[str], layout: str,
           test_fraction: float, seed: int) -> tuple[dict[str, list[torch.Tensor]], dict[str, list[torch.Tensor]]]:
    """Train and test pictures per label: the archive's own train/ + val/ folders, or a seeded cut per class."""
    parts = decoded.get("train", {}) if layout == "folders" else decoded.get("all", {})
    empty = [lb for lb in labels if not parts.get(lb)]
    if empty:
        raise CourseError("zip.empty_class", "class folder {label} has no readable image", label=empty[0])
    if layout == "folders":
        return {lb: parts[lb] for lb in labels}, {lb: decoded.get("test", {}).get(lb, []) for lb in labels}
    g = seeding.generator(seed)
    train_parts, test_parts = {}, {}
    for lb in labels:  # split each class the same way: a deterministic shuffle, then cut
        items = parts[lb]
        order = torch.randperm(len(items), generator=g).tolist()
        n_test = int(round(len(items) * test_fraction)) if len(items) > 1 else 0
        test_parts[lb] = [items[i] for i in order[:n_test]]
        train_parts[lb] = [items[i] for i in order[n_test:]]
    return train_parts, test_parts


def _build(groups: dict[str, dict[str, list[Any]]], layout: str, skipped: int, source: str,
           size: tuple[int, int], test_fraction: float, seed: int, limits: ZipLimits,
           clock: _Clock | None = None, fetch: Fetch | None = None) -> FolderDataset:
    """Decode every picture of `groups` (fetched one at a time with `fetch`: memory stays bounded
    whatever the archive unpacks to) into the train and test TensorImageDatasets."""
    labels = sorted({label for split in groups.values() for label in split})
    if not labels:
        raise CourseError("zip.no_classes", "no class folders found: put images in one folder per label")
    if len(labels) < 2:
        raise CourseError("zip.one_class", "only one class folder ({label}) was found; a classifier needs "
                          "at least two (e.g. ants/ and bees/)", label=labels[0])
    clock = clock or _Clock(limits.max_seconds)
    fetch = fetch or (lambda blob, n=None: blob if n is None else blob[:n])
    readable, cache = _header_pass(groups, size, limits, clock, fetch)
    decoded, failed = _decode_pass(groups, readable, cache, size, limits, clock, fetch)
    train_parts, test_parts = _split(decoded, labels, layout, test_fraction, seed)

    def stack(parts: dict[str, list[torch.Tensor]]) -> TensorImageDataset:
        xs = [x for lb in labels for x in parts[lb]]
        ys = [i for i, lb in enumerate(labels) for _ in parts[lb]]
        images_ = torch.stack(xs) if xs else torch.empty(0, 3, *size, dtype=torch.uint8)
        return TensorImageDataset(images_, torch.tensor(ys, dtype=torch.int64), labels, source)

    per_class = {lb: len(train_parts[lb]) + len(test_parts[lb]) for lb in labels}
    return FolderDataset(stack(train_parts), stack(test_parts), source, skipped + failed, layout, per_class)


def zip_name(info: zipfile.ZipInfo) -> str:
    """The entry's real name: by the UTF-8 flag (bit 11); else UTF-8 when the bytes are valid UTF-8
    (Info-ZIP on Linux, macOS); else GBK/cp936 (Windows Explorer on a Chinese system); else cp437."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        raw = info.orig_filename.encode("cp437")  # Python decoded the raw bytes as cp437: undo it exactly
    except UnicodeEncodeError:
        return info.filename
    for encoding in ("utf-8", "gbk"):
        try:
            return raw.decode(encoding).replace("\\", "/")
        except UnicodeDecodeError:
            continue
    return info.filename


def _zip_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_zip(data: bytes, *, source: str = "upload.zip", size: tuple[int, int] = (32, 32),
             test_fraction: float = 0.2, seed: int = 0, limits: ZipLimits = ZipLimits()) -> FolderDataset:
    """The course's folder-per-label dataset from a zip, decoded in memory (nothing written to disk).

    Every check runs on the zip's directory before a single byte is decompressed:
    size, file count, total uncompressed size, compression ratio, absolute and `..` paths;
    then the pictures' headers against the pixel budget before a single one is decoded.
    Names are decoded as their tool wrote them (UTF-8 flag, UTF-8, GBK), so 蚂蚁/蜜蜂 stay readable.
    """
    try:
        return _read_zip(data, source, size, test_fraction, seed, limits)
    except CourseError:
        raise
    except MemoryError as exc:
        raise CourseError("zip.too_big_unpacked", "the zip unpacks to {size_mb} MB; the limit is {limit_mb} MB",
                          size_mb="?", limit_mb=limits.max_total_uncompressed // 2**20) from exc
    except Exception as exc:  # noqa: BLE001 - whatever else a crafted archive provokes: a clear message
        raise CourseError("zip.corrupt", "the zip is damaged or encrypted ({path}: {reason})",
                          path=source, reason=_zip_error(exc)) from exc


def _open_zip(data: bytes, limits: ZipLimits) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """The archive and its directory, after the checks on the upload itself."""
    if not isinstance(data, (bytes, bytearray)) or len(data) == 0:
        raise CourseError("zip.not_zip", "this file is not a zip archive")
    if len(data) > limits.max_bytes:
        raise CourseError("zip.too_big", "the file is {size_mb} MB; the limit is {limit_mb} MB",
                          size_mb=round(len(data) / 2**20, 1), limit_mb=limits.max_bytes // 2**20)
    try:
        zf = zipfile.ZipFile(io.BytesIO(bytes(data)))
        entries = zf.infolist()
    except Exception as exc:  # noqa: BLE001 - BadZipFile, struct.error, ValueError, ... for a hostile file
        raise CourseError("zip.not_zip", "this file is not a zip archive") from exc
    if any(not e.filename for e in entries):  # a crafted directory: a name of 0 bytes
        raise CourseError("zip.corrupt", "the zip is damaged or encrypted ({path}: {reason})",
                          path="?", reason="an entry without a name")
    if not any(not e.is_dir() for e in entries):
        raise CourseError("zip.empty", "the zip archive is empty")
    if len(entries) > limits.max_files:
        raise CourseError("zip.too_many_files", "the zip has {count} files; the limit is {limit}",
                          count=len(entries), limit=limits.max_files)
    return zf, entries


def _check_directory(entries: list[zipfile.ZipInfo], names: dict[int, str], limits: ZipLimits) -> None:
    """Paths (absolute, `..`), total size and compression ratio: from the directory, nothing decompressed."""
    for e in entries:
        name = names[id(e)].replace("\\", "/")
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise CourseError("zip.absolute_path", "the zip contains an absolute path: {path}", path=name)
        if ".." in PurePosixPath(name).parts:
            raise CourseError("zip.traversal", "the zip contains a path leaving its folder: {path}", path=name)
    files = [e for e in entries if not e.is_dir()]
    total = sum(e.file_size for e in files)
    packed = sum(e.compress_size for e in files)
    if total > limits.max_total_uncompressed:
        raise CourseError("zip.too_big_unpacked", "the zip unpacks to {size_mb} MB; the limit is {limit_mb} MB",
                          size_mb=round(total / 2**20, 1), limit_mb=limits.max_total_uncompressed // 2**20)
    worst = max((e.file_size / max(e.compress_size, 1) for e in files), default=0.0)
    if total > 1 << 20 and (total / max(packed, 1) > limits.max_ratio or worst > limits.max_ratio):
        raise CourseError("zip.bomb", "the zip expands {ratio}× when unpacked: refused as a possible zip bomb",
                          ratio=int(max(worst, total / max(packed, 1))))


def _read_zip(data: bytes, source: str, size: tuple[int, int], test_fraction: float, seed: int,
              limits: ZipLimits) -> FolderDataset:
    clock = _Clock(limits.max_seconds)
    zf, entries = _open_zip(data, limits)
    names = {id(e): zip_name(e) for e in entries}
    _check_directory(entries, names, limits)
    files = [e for e in entries if not e.is_dir()]
    contents: dict[PurePosixPath, zipfile.ZipInfo | None] = {}
    for e in files:
        path = PurePosixPath(names[id(e)].replace("\\", "/"))
        if (path.suffix.lower() not in IMAGE_SUFFIXES or "__MACOSX" in path.parts or path.name.startswith(".")
                or e.file_size > images.MAX_IMAGE_BYTES):
            contents[path] = None  # counted as skipped, never decompressed
        else:
            contents[path] = e

    def fetch(e: zipfile.ZipInfo, n: int | None = None) -> bytes:
        try:
            # Read at most the declared size + 1: a lying header cannot make us inflate more.
            with zf.open(e) as f:
                blob = f.read(e.file_size + 1 if n is None else min(n, e.file_size + 1))
        except Exception as exc:  # noqa: BLE001 - zlib.error, LZMAError, BadZipFile (CRC), encrypted, ...
            raise CourseError("zip.corrupt", "the zip is damaged or encrypted ({path}: {reason})",
                              path=names[id(e)], reason=_zip_error(exc)) from exc
        if len(blob) > e.file_size:
            raise CourseError("zip.bomb", "the zip expands {ratio}× when unpacked: refused as a possible zip bomb",
                              ratio=int(len(blob) / max(e.compress_size, 1)))
        return blob

    groups, skipped, layout = _organise(contents)
    return _build(groups, layout, skipped, source, size, test_fraction, seed, limits, clock, fetch)


# ---------------------------------------------------------------- a folder on the server (off when hosted)

LOCAL_FOLDERS_ENV = "TORCH_CLASSROOM_LOCAL_FOLDERS"  # off | data (default) | any
LOCAL_FOLDER_MODES = ("off", "data", "any")


def local_folders_mode() -> str:
    """Which folders on the server the Data page may read: `off` (a hosted classroom), `data` (only
    below the data directory, the default) or `any` (the app runs on the student's own computer).
    An unknown value counts as `off`."""
    value = (os.environ.get(LOCAL_FOLDERS_ENV) or "data").strip().lower()
    return value if value in LOCAL_FOLDER_MODES else "off"


def resolve_local_folder(text: str) -> Path:
    """The folder a student typed, checked against the setting; CourseError `folder.*` otherwise.

    In `data` mode the path is relative to the data directory (an absolute one must lie inside
    it), `..` is refused, and symbolic links are resolved first: a link leading out is refused.
    """
    mode = local_folders_mode()
    if mode == "off":
        raise CourseError("folder.off", "Reading folders on the server is turned off here: upload a zip instead")
    text = str(text).strip()
    if not text or "\0" in text:
        raise CourseError("folder.missing", "folder {path} does not exist", path=text)
    path = Path(text)
    if mode == "any":
        full = path.expanduser().resolve()
        if full == Path(full.anchor):
            raise CourseError("folder.root", "{path} is the whole file system: give the folder of your dataset",
                              path=text)
        return full
    base = data_dir()
    if ".." in path.parts:
        raise CourseError("folder.outside", "Only folders inside the data folder {base} can be read; "
                          "{path} leaves it", base=str(base), path=text)
    full = (path if path.is_absolute() else base / path).resolve()
    if full != base and base not in full.parents:
        raise CourseError("folder.outside", "Only folders inside the data folder {base} can be read; "
                          "{path} leaves it", base=str(base), path=text)
    return full


def _walk(base: Path, limits: ZipLimits, clock: _Clock) -> dict[PurePosixPath, Path]:
    """Regular files below `base`, never following a symbolic link, with the entry and file caps."""
    out: dict[PurePosixPath, Path] = {}
    stack = [base]
    seen = 0
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue  # unreadable: skipped
        for entry in entries:
            seen += 1
            if seen > limits.max_entries_walked:
                raise CourseError("folder.too_many_entries", "the folder holds more than {limit} files and "
                                  "folders: give the folder of your dataset", limit=limits.max_entries_walked)
            if entry.is_symlink():
                continue  # a link may lead anywhere on the server
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                if len(out) >= limits.max_files:
                    raise CourseError("zip.too_many_files", "the zip has {count} files; the limit is {limit}",
                                      count=f"{limits.max_files}+", limit=limits.max_files)
                out[PurePosixPath(Path(entry.path).relative_to(base).as_posix())] = Path(entry.path)
        clock.check()
    return out


def read_folder(root: str | os.PathLike, *, size: tuple[int, int] = (32, 32), test_fraction: float = 0.2,
                seed: int = 0, limits: ZipLimits = ZipLimits(), checked: bool = False) -> FolderDataset:
    """The same dataset from a folder: root/ants/*.jpg, root/bees/*.jpg (or root/train/..., root/val/...).

    `checked=True` means the caller has already passed the student's text through
    `resolve_local_folder` (the Data page does); symbolic links are never followed either way.
    """
    clock = _Clock(limits.max_seconds)
    base = Path(root) if checked else Path(root).expanduser()
    if not base.is_dir():
        raise CourseError("folder.missing", "folder {path} does not exist", path=str(root))
    base = base.resolve()
    found = _walk(base, limits, clock)
    contents: dict[PurePosixPath, Path | None] = {}
    total = 0
    for rel, path in found.items():
        contents[rel] = None
        if rel.suffix.lower() not in IMAGE_SUFFIXES or rel.name.startswith("."):
            continue
        try:
            st_size = path.stat(follow_symlinks=False).st_size
        except OSError:
            continue
        if st_size > images.MAX_IMAGE_BYTES:
            continue
        total += st_size
        if total > limits.max_total_uncompressed:
            raise CourseError("zip.too_big_unpacked", "the zip unpacks to {size_mb} MB; the limit is {limit_mb} MB",
                              size_mb=round(total / 2**20, 1), limit_mb=limits.max_total_uncompressed // 2**20)
        contents[rel] = path
    if not contents:
        raise CourseError("folder.empty", "folder {path} is empty", path=str(root))

    def fetch(path: Path, n: int | None = None) -> bytes:
        try:
            with open(path, "rb") as f:  # at most the image cap, whatever the file became since
                return f.read(images.MAX_IMAGE_BYTES + 1 if n is None else n)
        except OSError:
            return b""

    groups, skipped, layout = _organise(contents)
    return _build(groups, layout, skipped, str(root), size, test_fraction, seed, limits, clock, fetch)


def to_image_folder(ds: TensorImageDataset, root: str | os.PathLike) -> Path:
    """Write `ds` as root/<class>/<index>.png (torchvision's ImageFolder layout, the course's ants/bees)."""
    root = Path(root)
    for i in range(len(ds)):
        folder = root / ds.classes[int(ds.targets[i])]
        folder.mkdir(parents=True, exist_ok=True)
        ds.pil(i).save(folder / f"{i:05d}.png")
    return root


# ---------------------------------------------------------------------------------------------
# What the course prints

@dataclass(frozen=True)
class DatasetFacts:
    """`len(train_set)`, `len(test_set)`, `classes`, `class_to_idx`, and one sample as print shows it."""

    len_train: int
    len_test: int
    classes: tuple[str, ...]
    class_to_idx: dict[str, int]
    index: int
    sample_type: str  # "<class 'PIL.Image.Image'>"
    sample_size: tuple[int, int]  # PIL's (width, height)
    sample_mode: str  # "RGB" | "L"
    label: int
    label_name: str


def dataset_facts(train_set: TensorImageDataset, test_set: TensorImageDataset, index: int = 0) -> DatasetFacts:
    """What `print` shows for the course's dataset lines, from the datasets themselves."""
    if not 0 <= index < len(train_set):
        raise CourseError("data.index", "sample index must be between 0 and {last}, got {index}",
                          last=len(train_set) - 1, index=index)
    img, label = train_set.view()[index]  # the plain PIL sample, whatever transform the caller set
    return DatasetFacts(
        len_train=len(train_set), len_test=len(test_set), classes=tuple(train_set.classes),
        class_to_idx=train_set.class_to_idx, index=index,
        sample_type=str(type(img)),
        sample_size=img.size, sample_mode=img.mode, label=label, label_name=train_set.classes[label],
    )


def channel_stats(ds: TensorImageDataset, chunk: int = 10_000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ToTensor's values (0..1) over the whole dataset, for Normalize."""
    c = ds.images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    sq = torch.zeros(c, dtype=torch.float64)
    for start in range(0, len(ds), chunk):
        x = ds.images[start:start + chunk].to(torch.float64).div_(255)
        total += x.sum(dim=(0, 2, 3))
        sq += (x * x).sum(dim=(0, 2, 3))
    count = len(ds) * ds.images.shape[2] * ds.images.shape[3]
    if count == 0:
        raise CourseError("data.empty", "the dataset has no images")
    mean = total / count
    std = (sq / count - mean * mean).clamp_min(0).sqrt()
    return tuple(round(float(m), 4) for m in mean), tuple(round(float(s), 4) for s in std)


# ---------------------------------------------------------------------------------------------
# DataLoader

@dataclass(frozen=True)
class LoaderFacts:
    """How a DataLoader cuts `n` samples: `len(loader)` batches, the last one `last_size` long."""

    n: int
    batch_size: int
    drop_last: bool
    num_batches: int
    last_size: int


def loader_facts(n: int, batch_size: int, drop_last: bool = False) -> LoaderFacts:
    """10,000 / 64 → 157 batches, the last of 16; drop_last=True → 156 batches of 64."""
    if batch_size < 1:
        raise CourseError("loader.batch_size", "batch_size must be at least 1, got {batch_size}", batch_size=batch_size)
    full, rest = divmod(n, batch_size)
    if drop_last or rest == 0:
        return LoaderFacts(n, batch_size, drop_last, full, batch_size if full else 0)
    return LoaderFacts(n, batch_size, drop_last, full + 1, rest)


@dataclass(frozen=True)
class Batch:
    """One batch as the course's loop sees it: `imgs` float [B, C, H, W] (ToTensor), `targets` [B]."""

    epoch: int
    imgs: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor  # which samples of the dataset, in order


def first_batches(ds: TensorImageDataset, batch_size: int = 64, shuffle: bool = True, drop_last: bool = False,
                  epochs: int = 2, seed: int = 0, last: bool = False) -> list[Batch]:
    """The first (or, with `last`, the final) batch of each of `epochs` epochs from a real DataLoader.

    The loader runs over a view of `ds` with ToTensor (v2.ToImage + ToDtype), num_workers=0,
    and a seeded torch.Generator, so shuffle is reproducible yet differs between epochs.
    """
    from torch.utils.data import DataLoader
    from torchvision.transforms import v2

    facts = loader_facts(len(ds), batch_size, drop_last)
    if facts.num_batches == 0:
        raise CourseError("loader.no_batches", "{n} samples with batch_size {batch_size} and drop_last give no batch",
                          n=len(ds), batch_size=batch_size)
    to_tensor = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    indexed = _Indexed(ds.view(to_tensor))
    loader = DataLoader(indexed, batch_size=batch_size, shuffle=shuffle, num_workers=0, drop_last=drop_last,
                        generator=seeding.generator(seed))
    out = []
    for epoch in range(epochs):
        if not last:
            (imgs, targets, idx) = next(iter(loader))
        else:
            # Only the order is needed to find the last batch: draw it from the sampler, load just that one.
            order = list(iter(loader.batch_sampler))[-1]
            imgs, targets, idx = loader.collate_fn([indexed[i] for i in order])
        out.append(Batch(epoch, imgs, targets, idx))
    return out


class _Indexed(Dataset):
    """(img, target, index): lets the page say which samples a shuffled batch holds."""

    def __init__(self, ds: TensorImageDataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        img, target = self.ds[i]
        return img, target, i
