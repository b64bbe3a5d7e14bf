"""A teacher's lessons (presets/*.toml): every shipped one is valid; a wrong one is named and left out."""
from pathlib import Path

from dl_core import pagelinks
from dl_core.presets import DEFAULT_DIR, load_lessons

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_lessons_are_valid_and_ordered():
    lessons, problems = load_lessons(DEFAULT_DIR, "*")
    assert not problems, [str(p) for p in problems]
    assert len(lessons) >= 4
    assert {lesson.page for lesson in lessons} == set(pagelinks.PAGES)
    assert [lesson.order for lesson in lessons] == sorted(lesson.order for lesson in lessons)
    for lesson in lessons:
        assert lesson.text("title", "zh") and lesson.text("title", "en")
        values, errors = pagelinks.read(lesson.page, lesson.settings)
        assert not errors
        defaults = {p.name: p.default for p in pagelinks.params_for(lesson.page)}
        assert values != defaults, lesson.name  # a lesson that changes nothing is a mistake


def _write(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.toml").write_text(text, encoding="utf-8")


GOOD = 'page = "layers"\ntitle = { zh = "步长", en = "Stride" }\n[settings]\nstride = 2\n'


def test_the_classroom_chooses_which_lessons_show(tmp_path):
    _write(tmp_path, "a", GOOD)
    _write(tmp_path, "b", GOOD.replace("Stride", "Other"))
    assert [x.name for x in load_lessons(tmp_path, "*")[0]] == ["a", "b"]
    assert [x.name for x in load_lessons(tmp_path, "b")[0]] == ["b"]
    assert load_lessons(tmp_path, "") == ([], [])
    lessons, problems = load_lessons(tmp_path, "a, nope")
    assert [x.name for x in lessons] == ["a"] and [p.code for p in problems] == ["preset.missing"]


def test_wrong_lessons_are_named_and_left_out(tmp_path):
    bad = {
        "page": GOOD.replace('"layers"', '"../../etc"'),
        "value": GOOD.replace("stride = 2", "stride = -7"),
        "setting": GOOD.replace("stride = 2", "rm_rf = 1"),
        "toml": "page = [",
        "key": GOOD + "python = 'os.system'\n".replace("python", "[x]\ny"),
        "title": GOOD.replace('title = { zh = "步长", en = "Stride" }', "title = 3"),
        "big": GOOD + "#" * 20_000,
    }
    for name, text in bad.items():
        _write(tmp_path, name, text)
    _write(tmp_path, "good", GOOD)
    lessons, problems = load_lessons(tmp_path, "*")
    assert [x.name for x in lessons] == ["good"]
    assert sorted(p.params["name"] for p in problems) == sorted(bad)
    assert all(p.code.startswith("preset.") for p in problems)
