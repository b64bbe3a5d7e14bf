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


# A first word that is code may stay lower-case: `x`, batch_size, nn.Module, shuffle=True:, {n}, 5×5, torch.
_CODE_CHARS = re.compile(r"[_.()\[\]=/:<>{}`0-9]")


def _starts_like_a_sentence(text: str) -> bool:
    text = text.lstrip()
    if not text[:1].isalpha() or text[0].isupper():
        return True  # a placeholder, a number, a symbol (×, →, …), code in backticks, or a capital
    return bool(_CODE_CHARS.search(text.split()[0]))


def _is_sentence(key: str, text: str) -> bool:
    return key.startswith("error.") or text.rstrip().endswith((".", "!", "?", "…"))


def test_english_sentences_start_with_a_capital():
    """Issue 12: "this file needs classes…" → "This file needs classes…" (every error and every sentence)."""
    lower = sorted(key for key, entry in catalog().items()
                   if _is_sentence(key, entry["en"]) and not _starts_like_a_sentence(entry["en"]))
    assert not lower, lower


def test_the_sentence_check_itself():
    assert not _starts_like_a_sentence("this file needs classes")
    assert not _starts_like_a_sentence("stride must be at least 1")
    for fine in ("This file", "`stride` must be", "{n} draws", "batch_size must", "nn.Module: __init__", "5×5 input",
                 "× 2", "shuffle=True: every epoch", "PyTorch"):
        assert _starts_like_a_sentence(fine), fine
    assert _is_sentence("error.zip.empty", "the zip archive is empty")
    assert _is_sentence("data.note", "Shown below.") and not _is_sentence("data.hist_x", "value")


def test_error_text_translates_and_falls_back_to_an_english_sentence():
    from dl_core.errors import CourseError
    from ui.i18n import as_sentence, error_text

    # a known code: the catalog's sentence (the session has no language here: Chinese, the default)
    exc = CourseError("zip.empty", "the zip archive is empty.")
    assert error_text(exc) == catalog()["error.zip.empty"]["zh"]
    # no catalog entry (a code added without one): dl_core's English message, as a sentence
    assert error_text(CourseError("nowhere.new", "the thing {x} broke.", x=3)) == "The thing 3 broke."
    # a catalog entry whose {params} the error does not carry: the English message, never a KeyError
    exc = CourseError("arith.stride", "stride must be at least 1, got nothing.")
    assert error_text(exc) == "Stride must be at least 1, got nothing."
    assert as_sentence("batch_size must be at least 1") == "batch_size must be at least 1"
    assert as_sentence("`x` needs numbers") == "`x` needs numbers"
    assert as_sentence("") == ""


SOURCES = ("streamlit_app.py", "app_pages/*.py", "ui/*.py", "dl_core/**/*.py")


def _sources() -> list[Path]:
    return [p for pattern in SOURCES for p in ROOT.glob(pattern)]


def test_every_translation_key_is_a_literal():
    """Issue 13: a key built at run time (t(f"x.{y}")) is invisible to the catalog checks: use a dict of literals."""
    built = []
    for path in _sources():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"""\b(t|text)\(\s*f["']|\b(t|text)\(\s*["'][^"']*["']\s*\+""", line):
                built.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not built, built


def test_every_key_used_in_dl_core_exists():
    used = set()
    for path in ROOT.glob("dl_core/**/*.py"):
        used |= set(re.findall(r"""\btext\(\s*["']([a-z0-9_.]+)["']""", path.read_text(encoding="utf-8")))
    missing = sorted(k for k in used if k not in catalog())
    assert not missing, missing


def test_every_catalog_entry_is_used():
    """Issue 13 (dead code): an entry no code names is a string nobody sees, or a key someone misspelt."""
    code = "\n".join(p.read_text(encoding="utf-8") for p in _sources())
    raised = set(re.findall(r"""(?:CourseError|__init__)\(\s*["']([a-z0-9_.]+)["']""", code))
    unused = sorted(k for k in catalog() if not (k.startswith("error.") and k[6:] in raised)
                    and f'"{k}"' not in code and f"'{k}'" not in code)
    assert not unused, unused
