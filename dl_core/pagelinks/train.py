"""The Train page's link: the recipe (`/train?optimizer=adam&lr=0.001&epochs=5`), never a model or data.

Names are the course's words; each reader's limits are TrainConfig's own (dl_core/training.py), and
`check` runs TrainConfig.validate on the whole recipe, so a link is refused for exactly what Start would
refuse. `epochs` and `images` default to None: "the classroom's default" (classroom.toml), which the page
fills in; the classroom's caps are the page's to apply (a link may ask for more than one classroom allows).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dl_core import links
from dl_core.training import MAX_BATCH, MAX_EPOCHS, MAX_LR, OPTIMIZERS, TrainConfig

MIN_LR = 1e-6  # the smallest learning rate the form offers (TrainConfig only needs lr > 0)
MAX_SEED = 2**31 - 1  # what the form's number box holds (TrainConfig allows up to 2**63 - 1)
MAX_IMAGES = 10**9  # more than any dataset: "all of it", as TrainConfig.train_subset reads it

_DEFAULT = TrainConfig()

PARAMS: list[links.Param] = [
    links.Param("optimizer", links.choice(OPTIMIZERS), default=_DEFAULT.optimizer),
    links.Param("lr", links.number(MIN_LR, MAX_LR), links.write_number, default=_DEFAULT.lr),
    links.Param("batch", links.integer(1, MAX_BATCH), default=_DEFAULT.batch_size),
    links.Param("epochs", links.integer(1, MAX_EPOCHS), default=None),
    links.Param("images", links.integer(1, MAX_IMAGES), default=None),  # the first N training images
    links.Param("augment", links.flag, links.write_flag, default=_DEFAULT.augment),
    links.Param("normalize", links.flag, links.write_flag, default=_DEFAULT.normalize),
    links.Param("weight_decay", links.number(0.0, 1.0), links.write_number, default=_DEFAULT.weight_decay),
    links.Param("seed", links.integer(0, MAX_SEED), default=_DEFAULT.seed),
]


def to_config(values: Mapping[str, Any], base: TrainConfig = _DEFAULT) -> TrainConfig:
    """`base` with the link's recipe in it (None for epochs / images: base's own)."""
    changes: dict[str, Any] = {
        "optimizer": values["optimizer"], "lr": values["lr"], "batch_size": values["batch"],
        "augment": values["augment"], "normalize": values["normalize"], "weight_decay": values["weight_decay"],
        "seed": values["seed"],
    }
    if values.get("epochs") is not None:
        changes["epochs"] = values["epochs"]
    if values.get("images") is not None:
        changes["train_subset"] = values["images"]
    return replace(base, **changes)


def from_config(config: TrainConfig) -> dict[str, Any]:
    """The link values of a recipe (epochs and images always given: the caller drops classroom defaults)."""
    return {"optimizer": config.optimizer, "lr": config.lr, "batch": config.batch_size, "epochs": config.epochs,
            "images": config.train_subset, "augment": config.augment, "normalize": config.normalize,
            "weight_decay": config.weight_decay, "seed": config.seed}


def check(values: Mapping[str, Any]) -> None:
    """The recipe as a whole, by TrainConfig's own rules: a batch larger than `images` is refused, as on Start."""
    config = to_config(values)
    config.validate(config.train_subset)
