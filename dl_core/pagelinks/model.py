"""The builder's link: the network itself (`/model?net=conv_3_32_5_p2-maxpool_2-...-linear_64_10`).

`net` is the spec as short text (`ModelSpec.to_text`, each kind's link name in `dl_core.layer_kinds`),
read with its limits (length, MAX_LAYERS, parameters) checked before anything is built. `input` is the
C×H×W the network was built for (the builder's dataset, `1x28x28` for MNIST; 3x32x32 is left out) and
`preset` the builder's preset choice. A link never carries weights or data: only the structure.

`check` runs `check_spec` on the network for its input. A network that does not fit yet (a wrong
in_features, a missing Flatten: what the builder shows in red with its "Fix it" button) is still a
valid link, since a teacher may share one as an exercise; a network over the builder's limits is not.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dl_core import links
from dl_core.errors import CourseError
from dl_core.models import PRESETS, ModelSpec, check_spec

DEFAULT_INPUT = (3, 32, 32)  # CIFAR10 and Shapes-10: the course's pictures
MAX_INPUT_SIDE = 512
MAX_INPUT_CHANNELS = 16
# Problems the builder shows for the student to fix: allowed in a link. Any other (a limit) refuses it.
EXERCISES = ("model.conv_in", "model.bn_features", "model.linear_in", "model.needs_flatten", "model.needs_image",
             "model.kernel_too_big", "model.pool_padding", "model.dropout_p")


def read_net(text: str) -> ModelSpec:
    """`conv_3_32_5_p2-...` → the spec (CourseError `model.*` for anything wrong)."""
    return ModelSpec.from_text(text)


def write_net(spec: ModelSpec) -> str:
    return spec.to_text()


def read_input(text: str) -> tuple[int, int, int]:
    """`3x32x32` → (3, 32, 32): 1..16 channels, sides 1..512."""
    match = re.fullmatch(r"(\d{1,2})x(\d{1,3})x(\d{1,3})", text)
    shape = tuple(int(v) for v in match.groups()) if match else ()
    if not shape or not 1 <= shape[0] <= MAX_INPUT_CHANNELS or not all(1 <= s <= MAX_INPUT_SIDE for s in shape[1:]):
        raise CourseError("model.link_input", "{value!r} is not a picture size C×H×W such as 3x32x32 "
                          "(1..{channels} channels, sides 1..{side})", value=text[:40],
                          channels=MAX_INPUT_CHANNELS, side=MAX_INPUT_SIDE)
    return shape  # type: ignore[return-value]


def write_input(shape: tuple[int, int, int]) -> str:
    return "x".join(str(int(s)) for s in shape)


PARAMS: list[links.Param] = [
    links.Param("net", read_net, write_net, default=None),  # None: the builder's own starting network
    links.Param("input", read_input, write_input, default=DEFAULT_INPUT),
    links.Param("preset", links.choice(PRESETS), default=PRESETS[0]),
]


def check(values: Mapping[str, Any]) -> None:
    """The network for its input, by the builder's own arithmetic; only its limits refuse a link."""
    if values.get("net") is None:
        return
    try:
        check_spec(values["net"], values["input"])
    except CourseError as exc:
        if exc.code not in EXERCISES:
            raise
