"""The translation catalogs, readable without Streamlit (the CLI, notebooks, generated code's comments).

Each catalog file under `locales/` is `{key: {"zh": ..., "en": ...}}`: one file per page plus
`common.json` (and `core.json` for what dl_core itself writes). Keys are prefixed by their owner
(`data.title`, `conv.stride`); errors raised by dl_core are `error.<code>`. Every key is a literal in
the code, so tests/test_i18n.py can check each one exists in both languages. `ui/i18n.py` wraps this
with the session's language.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

LANGS = ("zh", "en")
LOCALES = Path(__file__).parents[1] / "locales"


@functools.cache
def catalog() -> dict[str, dict[str, str]]:
    """All catalogs merged; a key defined twice is a bug."""
    merged: dict[str, dict[str, str]] = {}
    for path in sorted(LOCALES.glob("*.json")):
        for key, entry in json.loads(path.read_text(encoding="utf-8")).items():
            if key in merged:
                raise KeyError(f"translation key {key!r} defined twice (again in {path.name})")
            merged[key] = entry
    return merged


def text(key: str, lang: str, **params: object) -> str:
    """The string for `key` in `lang` ('zh' or 'en'; English where a language lacks it), formatted with `params`."""
    entry = catalog().get(key)
    if entry is None:
        return f"⟦{key}⟧"  # visible, and tests look for it
    value = entry.get(lang) or entry.get("en", key)
    return value.format(**params) if params else value


def has(key: str) -> bool:
    return key in catalog()
