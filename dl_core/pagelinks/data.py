"""The Data page's link: the dataset, the transform pipeline and the DataLoader settings, never a student's data.

    /data?ds=cifar10&section=transforms&tf=resize_64-randomcrop_64_p8-totensor-normalize_0.5x0.5x0.5
    /data?ds=shapes10-full&section=loader&batch=100&drop_last=1&split=train

`tf` is the transform registry's own text form (dl_core/transforms.py `pipeline_text` / `read_pipeline`).
`ds` names a built-in dataset; a student's zip or folder never goes in a link (a link made while one is
picked leaves `ds` out, and opening it keeps whatever the student has picked). The limits here are the
page's widgets' own: the page reads them from this module.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dl_core import links
from dl_core.datasets import DATASETS
from dl_core.errors import CourseError
from dl_core.transforms import COURSE_PIPELINE, pipeline_text, read_pipeline

SECTIONS = ("env", "dataset", "transforms", "torchvision", "loader")  # the course's steps 1, 2, 4, 5, 6
SPLITS = ("test", "train")
WORKERS = (0, 1, 2)
MAX_BATCH = 1024
MAX_SEED = 10_000
MAX_DRAWS = 16
MAX_INDEX = max(info.train_size for info in DATASETS.values()) - 1  # `check` holds it to the dataset's own

PARAMS: list[links.Param] = [
    links.Param("ds", links.choice(tuple(DATASETS)), default=None),  # None: keep the student's pick
    links.Param("section", links.choice(SECTIONS), default="torchvision"),
    links.Param("index", links.integer(0, MAX_INDEX), default=0),  # the torchvision section's sample
    links.Param("tf", read_pipeline, pipeline_text, default=COURSE_PIPELINE),
    links.Param("sample", links.integer(0, MAX_INDEX), default=0),  # the transforms section's sample
    links.Param("draws", links.integer(1, MAX_DRAWS), default=4),
    links.Param("tf_seed", links.integer(0, MAX_SEED), default=0),
    links.Param("batch", links.integer(1, MAX_BATCH), default=64),
    links.Param("shuffle", links.flag, links.write_flag, default=True),
    links.Param("drop_last", links.flag, links.write_flag, default=False),
    links.Param("num_workers", links.integer(min(WORKERS), max(WORKERS)), default=0),
    links.Param("split", links.choice(SPLITS), default="test"),
    links.Param("seed", links.integer(0, MAX_SEED), default=0),
]


def check(values: Mapping[str, Any]) -> None:
    """A sample index the named dataset has (without `ds`, the page keeps it within the picked one)."""
    info = DATASETS.get(values.get("ds") or "")
    if info is None:
        return
    for name in ("index", "sample"):
        if values[name] > info.train_size - 1:
            raise CourseError("link.out_of_range", "{value} is outside {lo}..{hi}", name=name, value=values[name],
                              lo=0, hi=info.train_size - 1)
