"""Each page's link vocabulary: `dl_core/pagelinks/<page>.py` holds `PARAMS` (a list of `links.Param`)
and, where values depend on each other, `check(values)` (raises CourseError).

Kept out of the page files so the course map, teachers' presets and tests can validate a link without
running a page. `<page>` is the page's `url_path` (`layers`, `data`, `model`, `train`).
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from dl_core import links
from dl_core.errors import CourseError

PAGES = ("data", "layers", "model", "train")  # the pages whose state a link can carry


def params_for(page: str) -> list[links.Param]:
    """The page's parameters ([] for a page a link cannot set)."""
    if page not in PAGES:
        return []
    return list(importlib.import_module(f"dl_core.pagelinks.{page}").PARAMS)


def read(page: str, query: Mapping[str, str]) -> tuple[dict[str, Any], list[CourseError]]:
    """The page's values from a query, checked one by one and then together; defaults where anything is wrong."""
    params = params_for(page)
    values, errors = links.read(query, params)
    if not errors and page in PAGES:
        check = getattr(importlib.import_module(f"dl_core.pagelinks.{page}"), "check", None)
        if check is not None:
            try:
                check(values)
            except CourseError as exc:
                errors.append(exc)
    if errors:
        values = {p.name: p.default for p in params}
    return values, errors
