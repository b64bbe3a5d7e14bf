"""Shareable links: a page's state as readable query parameters (`/layers?stride=2&padding=1`).

No Streamlit here: a `Param` names one URL parameter, how to read it (strictly, with limits checked
before any work) and how to write it back; `read` turns a query string's values into a page's values
or the list of what was wrong. `ui/urlstate.py` does the Streamlit side (widgets <-> URL, "Copy link").
A link never carries a student's data or model: only settings a page can rebuild from.

Readers raise `CourseError("link.<why>", ...)` (translated as `error.link.<why>`); the page then shows
the message and falls back to its defaults.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dl_core.errors import CourseError

MAX_VALUE_CHARS = 2_000  # one parameter's value (a network spec, a 8x8 grid) fits easily
MAX_QUERY_CHARS = 8_000  # all of a page's parameters together
MAX_GRID_CELLS = 256
_INTEGER = re.compile(r"-?[0-9]{1,12}")  # ASCII digits only: no full-width digits, underscores or signs twice
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")


@dataclass(frozen=True)
class Param:
    """One URL parameter: `read` turns the text into a value (or raises), `write` the value into text."""

    name: str
    read: Callable[[str], Any]
    write: Callable[[Any], str] = str
    default: Any = None


def _checked(name: str, text: str) -> str:
    if len(text) > MAX_VALUE_CHARS:
        raise CourseError("link.too_long", "{name}: the value is too long ({n} characters, at most {limit})",
                          name=name, n=len(text), limit=MAX_VALUE_CHARS)
    return text.strip()


def integer(lo: int, hi: int) -> Callable[[str], int]:
    """A whole number in [lo, hi]."""
    def read(text: str) -> int:
        if not _INTEGER.fullmatch(text):
            raise CourseError("link.not_integer", "{value!r} is not a whole number", value=text[:40])
        value = int(text)
        if not lo <= value <= hi:
            raise CourseError("link.out_of_range", "{value} is outside {lo}..{hi}", value=value, lo=lo, hi=hi)
        return value
    return read


def number(lo: float, hi: float) -> Callable[[str], float]:
    """A finite decimal number in [lo, hi] (`0.01`, `1e-3`)."""
    def read(text: str) -> float:
        value = float(text) if len(text) <= 32 and _NUMBER.fullmatch(text) else math.nan
        if not math.isfinite(value):
            raise CourseError("link.not_number", "{value!r} is not a number", value=text[:40])
        if not lo <= value <= hi:
            raise CourseError("link.out_of_range", "{value} is outside {lo}..{hi}", value=text, lo=lo, hi=hi)
        return value
    return read


def choice(options: Sequence[str]) -> Callable[[str], str]:
    """One of `options` (exact spelling)."""
    allowed = tuple(options)

    def read(text: str) -> str:
        if text not in allowed:
            raise CourseError("link.not_choice", "{value!r} is not one of {options}", value=text[:40],
                              options=", ".join(allowed))
        return text
    return read


def flag(text: str) -> bool:
    """`1`/`0` (also true/false, yes/no, on/off)."""
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise CourseError("link.not_flag", "{value!r} is not 1 or 0", value=text[:40])


def write_flag(value: bool) -> str:
    return "1" if value else "0"


def write_number(value: float) -> str:
    """The shortest text that reads back as the same float (`0.01`, `10`, `1e-05`)."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def grid(max_rows: int, max_cols: int, lo: float = -1e6, hi: float = 1e6) -> Callable[[str], list[list[float]]]:
    """A rectangular grid of numbers: rows split by `;` (or `_`), cells by `,` — `1,2,0;0,1,2`."""
    read_cell = number(lo, hi)

    def read(text: str) -> list[list[float]]:
        rows = [r for r in text.replace("_", ";").split(";")]
        if len(rows) > max_rows or not text:
            raise CourseError("link.grid_shape", "a grid of 1..{rows} rows, each of 1..{cols} numbers",
                              rows=max_rows, cols=max_cols)
        cells = [r.split(",") for r in rows]
        widths = {len(r) for r in cells}
        if len(widths) != 1 or not 1 <= widths.pop() <= max_cols or len(rows) * len(cells[0]) > MAX_GRID_CELLS:
            raise CourseError("link.grid_shape", "a grid of 1..{rows} rows, each of 1..{cols} numbers",
                              rows=max_rows, cols=max_cols)
        return [[read_cell(c.strip()) for c in r] for r in cells]
    return read


def write_grid(rows: Sequence[Sequence[float]]) -> str:
    return ";".join(",".join(write_number(v) for v in r) for r in rows)


def read(query: Mapping[str, str], params: Sequence[Param]) -> tuple[dict[str, Any], list[CourseError]]:
    """The page's values from `query` (absent names: their defaults), and what was wrong (empty if nothing).

    Names the page does not know are left alone (`lang`, another page's). Sizes are checked first.
    """
    known = [p for p in params if p.name in query]
    total = sum(len(str(query[p.name])) for p in known)
    if total > MAX_QUERY_CHARS:
        too_long = CourseError("link.too_long", "{name}: the value is too long ({n} characters, at most {limit})",
                               name="?", n=total, limit=MAX_QUERY_CHARS)
        return {p.name: p.default for p in params}, [too_long]
    values: dict[str, Any] = {p.name: p.default for p in params}
    errors: list[CourseError] = []
    for p in known:
        try:
            values[p.name] = p.read(_checked(p.name, str(query[p.name])))
        except CourseError as exc:
            exc.params.setdefault("name", p.name)
            errors.append(exc)
        except (ValueError, TypeError, OverflowError) as exc:  # a reader built on a library's parser
            errors.append(CourseError("link.bad_value", "{name}: {reason}", name=p.name,
                                      reason=str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__))
    return values, errors


def write(values: Mapping[str, Any], params: Sequence[Param]) -> dict[str, str]:
    """The query parameters for `values`: only those that differ from their defaults (short links)."""
    out: dict[str, str] = {}
    for p in params:
        value = values.get(p.name, p.default)
        if value is None or value == p.default:
            continue
        out[p.name] = p.write(value)
    return out
