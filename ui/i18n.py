"""Both languages everywhere: `t(key)` looks a string up in the catalogs under locales/ (dl_core/i18n.py).

Each catalog file is `{key: {"zh": ..., "en": ...}}`; one file per page (plus common.json),
so every page owns its strings. Keys are prefixed by page (`data.title`, `conv.stride`);
errors raised by dl_core are `error.<code>`. Long prose lives in content/<lang>/<name>.md.
"""
from __future__ import annotations

import functools
from pathlib import Path

import streamlit as st

from dl_core.errors import CourseError
from dl_core.i18n import LANGS, LOCALES, catalog, has, text

__all__ = ["LANGS", "LOCALES", "catalog", "has", "t", "lang", "error_text", "as_sentence", "prose"]

LANG_NAMES = {"zh": "中文", "en": "English"}
# The one source of truth for the language: a plain session value, never a widget key (Streamlit drops a
# widget's state when a rerun does not render it, e.g. a page clicked before the sidebar switch rendered).
# The URL (?lang=en) and the sidebar switch only mirror it; ui/sidebar.py keeps them in step.
LANG_KEY = "lang"
CONTENT = Path(__file__).parents[1] / "content"


def lang() -> str:
    """The user's language: 'zh' (default) or 'en'."""
    value = st.session_state.get(LANG_KEY, "zh")
    return value if value in LANGS else "zh"


def t(key: str, **params: object) -> str:
    """The string for `key` in the user's language, formatted with `params`."""
    return text(key, lang(), **params)


def error_text(exc: CourseError) -> str:
    """A dl_core error in the user's language (the English message, as a sentence, if no translation fits)."""
    entry = catalog().get(f"error.{exc.code}")
    if entry is not None:
        text = entry.get(lang()) or entry.get("en", "")
        try:
            return text.format(**exc.params)  # always formatted: a {param} the error lacks must not show raw
        except (KeyError, IndexError, ValueError):
            pass
    return as_sentence(str(exc))


def as_sentence(text: str) -> str:
    """`text` with a capital first letter, unless it starts with code (`batch_size`, `nn.Module`, `x:`)."""
    first = text.split(maxsplit=1)[0] if text.strip() else ""
    if text[:1].islower() and first.isalpha():
        return text[:1].upper() + text[1:]
    return text


@functools.cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def prose(name: str, **params: object) -> str:
    """Markdown from content/<lang>/<name>.md (long explanations live in files, not code)."""
    text = _read(CONTENT / lang() / f"{name}.md")
    return text.format(**params) if params else text
