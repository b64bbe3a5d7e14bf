"""A teacher's lessons: named links to a page in a chosen state, offered on the course map as "Today's lesson".

One lesson per TOML file in `presets/` (or the folder `classroom.toml` names in `presets_dir`); the file's
name (without .toml) is the lesson's name, which `classroom.toml` `lessons` uses to choose which show:

    page = "layers"                          # a page that links can set: data, layers, model, train
    order = 1                                # smaller first (then by name)
    [title]                                  # both languages; a missing one falls back to the other
    zh = "步长 2：输出变小"
    en = "Stride 2: a smaller output"
    [note]                                   # optional: one line under the title
    zh = "…"
    en = "…"
    [settings]                               # the page's link parameters, exactly as in its URL
    stride = "2"

Every lesson is checked when read, with the page's own link rules (dl_core/pagelinks): a wrong one is
reported by file name and reason and left out, never shown half-working.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dl_core import pagelinks
from dl_core.errors import CourseError

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "presets"
MAX_FILES = 100
MAX_FILE_BYTES = 16_384
MAX_TEXT = 200


@dataclass(frozen=True)
class Lesson:
    name: str  # the file's stem
    page: str  # url_path of the page
    title: dict[str, str]  # lang -> text
    note: dict[str, str]
    settings: dict[str, str]  # query parameters, already checked by the page's link rules
    order: int = 0

    def text(self, field: str, lang: str) -> str:
        values = getattr(self, field)
        return values.get(lang) or next(iter(values.values()), "")


def _texts(name: str, table: Any, required: bool) -> dict[str, str]:
    if table is None and not required:
        return {}
    if isinstance(table, str):
        table = {"en": table, "zh": table}
    if not isinstance(table, dict) or not table or not all(
            k in ("zh", "en") and isinstance(v, str) and 0 < len(v) <= MAX_TEXT for k, v in table.items()):
        raise CourseError("preset.bad_text", "Lesson {name}: title/note must be zh/en texts of 1..{limit} characters",
                          name=name, limit=MAX_TEXT)
    return dict(table)


def read_lesson(path: Path) -> Lesson:
    """One lesson file, checked. Raises CourseError (preset.*) naming the file and what is wrong."""
    name = path.stem
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CourseError("preset.too_big", "Lesson {name}: the file is over {limit} bytes", name=name,
                              limit=MAX_FILE_BYTES)
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CourseError("preset.unreadable", "Lesson {name}: cannot read it ({reason})", name=name,
                          reason=str(exc).splitlines()[0][:160]) from exc
    unknown = set(data) - {"page", "order", "title", "note", "settings"}
    if unknown:
        raise CourseError("preset.unknown_key", "Lesson {name}: unknown key {key}", name=name, key=sorted(unknown)[0])
    page = data.get("page")
    if page not in pagelinks.PAGES:
        raise CourseError("preset.bad_page", "Lesson {name}: page must be one of {pages}", name=name,
                          pages=", ".join(pagelinks.PAGES))
    settings = data.get("settings", {})
    if not isinstance(settings, dict) or not all(isinstance(v, (str, int, float, bool)) for v in settings.values()):
        raise CourseError("preset.bad_settings", "Lesson {name}: settings must be name = value pairs", name=name)
    query = {str(k): _as_query(v) for k, v in settings.items()}
    known = {p.name for p in pagelinks.params_for(page)}
    stray = sorted(set(query) - known)
    if stray:
        raise CourseError("preset.unknown_setting", "Lesson {name}: the {page} page has no setting {key}",
                          name=name, page=page, key=stray[0])
    _, errors = pagelinks.read(page, query)
    if errors:
        problem = CourseError("preset.bad_value", "Lesson {name}: {reason}", name=name, reason=str(errors[0]))
        problem.inner = errors[0]  # the page's own message, for showing in the user's language
        raise problem
    order = data.get("order", 0)
    if not isinstance(order, int) or isinstance(order, bool):
        raise CourseError("preset.bad_order", "Lesson {name}: order must be a whole number", name=name)
    return Lesson(name, page, _texts(name, data.get("title"), True), _texts(name, data.get("note"), False),
                  query, order)


def _as_query(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def chosen(spec: str) -> set[str] | None:
    """`lessons` from classroom.toml: "*" (every lesson, the default), "" (none) or "name, name" (these)."""
    spec = spec.strip()
    if spec == "*":
        return None
    return {part.strip() for part in spec.split(",") if part.strip()}


def load_lessons(folder: Path | None = None, lessons: str = "*") -> tuple[list[Lesson], list[CourseError]]:
    """The lessons to show, in order, and the problems found (each a CourseError naming its file)."""
    folder = Path(folder) if folder else DEFAULT_DIR
    wanted = chosen(lessons)
    if wanted == set() or not folder.is_dir():
        return [], []
    found, problems = [], []
    for path in sorted(folder.glob("*.toml"))[:MAX_FILES]:
        if wanted is not None and path.stem not in wanted:
            continue
        try:
            found.append(read_lesson(path))
        except CourseError as exc:
            problems.append(exc)
    missing = sorted((wanted or set()) - {p.stem for p in folder.glob("*.toml")})
    problems += [CourseError("preset.missing", "Lesson {name} is named in classroom.toml but has no file",
                             name=m) for m in missing]
    return sorted(found, key=lambda lesson: (lesson.order, lesson.name)), problems
