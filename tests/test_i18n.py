"""Both language catalogs: same keys, no empty strings, same placeholders, every used key exists."""
import re
import string
from pathlib import Path

from ui.i18n import LANGS, catalog

ROOT = Path(__file__).resolve().parents[1]


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_has_both_languages_and_no_empty_string():
    for key, entry in catalog().items():
        assert set(entry) == set(LANGS), key
        for lang in LANGS:
            assert isinstance(entry[lang], str) and entry[lang].strip(), (key, lang)


def test_placeholders_match_between_languages():
    for key, entry in catalog().items():
        assert _fields(entry["zh"]) == _fields(entry["en"]), key


def test_every_literal_key_used_in_code_exists():
    used = set()
    for path in [ROOT / "streamlit_app.py", *ROOT.glob("app_pages/*.py"), *ROOT.glob("ui/*.py")]:
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", path.read_text(encoding="utf-8")))
    missing = sorted(k for k in used if k not in catalog())
    assert not missing, missing


def test_every_course_error_code_is_translated():
    codes = set()
    for path in ROOT.glob("dl_core/**/*.py"):
        codes |= set(re.findall(r"""CourseError\(\s*["']([a-z0-9_.]+)["']""", path.read_text(encoding="utf-8")))
    assert codes, "no CourseError found: the scan is broken"
    missing = sorted(c for c in codes if f"error.{c}" not in catalog())
    assert not missing, missing


def test_prose_exists_in_both_languages():
    zh = {p.name for p in (ROOT / "content" / "zh").glob("*.md")}
    en = {p.name for p in (ROOT / "content" / "en").glob("*.md")}
    assert zh == en and zh
