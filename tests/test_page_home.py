"""Home page (the course map) and the shared sidebar, in both languages."""
from tests.conftest import assert_clean, new_app
from ui.i18n import LANG_KEY, LANGS
from ui.sidebar import SWITCH


def test_course_map_lists_every_step_with_a_link(lang):
    at = new_app(lang)
    assert_clean(at)
    title = {"zh": "PyTorch 课堂 · 课程地图", "en": "Torch Classroom · Course map"}[lang]
    assert at.title[0].value == title
    text = " ".join(m.value for m in at.markdown)
    assert "1.1019" not in text  # sanity: the map names steps, it does not compute
    assert ("5×5" in text) and ("145,578" in text)
    links = [link for link in at.get("page_link") if not link.proto.query_string]  # the map's, not lessons'
    for number in range(1, 20):
        assert f"**{number}. " in text, number
    # Consecutive steps on the same page share a card: data, train, data, layers, model, train, model, save,
    # train, predict; each card's link opens the page that teaches its steps.
    pages = [link.proto.page.strip("/") for link in links]
    assert pages == ["data", "train", "data", "layers", "model", "train", "model", "save", "train", "predict"], pages
    cards = [m.value for m in at.markdown if m.value.startswith("**") and ". " in m.value[:6]]
    assert [card.count("**") // 2 for card in cards] == [2, 1, 3, 5, 1, 2, 1, 1, 2, 1]


def test_language_switch_in_sidebar_changes_the_page():
    at = new_app("zh")
    assert at.title[0].value.startswith("PyTorch 课堂")
    at.sidebar.radio(key=SWITCH).set_value("en").run()
    assert at.title[0].value == "Torch Classroom · Course map"
    assert at.query_params.get("lang") == "en"
    assert at.session_state[LANG_KEY] == "en"
    at.sidebar.radio(key=SWITCH).set_value("zh").run()
    assert at.title[0].value.startswith("PyTorch 课堂")
    assert "lang" not in at.query_params
    assert_clean(at)


def test_language_is_a_session_value_not_the_switch_state():
    """Issue 12: a switch whose state vanished or lags (a page clicked before it rendered) changes nothing."""
    at = new_app("en", "app_pages/layers.py")
    radio = at.sidebar.radio(key=SWITCH)
    assert radio.value == "en"
    # A browser that mounts the switch without a value from the server shows its default: the language.
    assert radio.proto.default == LANGS.index("en")
    at.session_state[SWITCH] = "zh"  # a stale switch state on the server ...
    at.run()
    assert at.session_state[LANG_KEY] == "en"  # ... does not change the language
    assert at.sidebar.radio(key=SWITCH).value == "en"  # and the switch is put back in step
    at.switch_page("app_pages/home.py")
    at.run()
    assert at.title[0].value == "Torch Classroom · Course map"
    assert at.query_params.get("lang") == "en"


def test_session_language_wins_over_an_unchanged_url(lang):
    other = "en" if lang == "zh" else "zh"
    at = new_app(lang)
    at.session_state[LANG_KEY] = other  # tests (and the switch's callback) set the language directly
    at.run()
    assert at.sidebar.radio(key=SWITCH).value == other
    assert at.query_params.get("lang") == ("en" if other == "en" else None)


def test_url_language_is_used_on_first_visit():
    from streamlit.testing.v1 import AppTest

    from tests.conftest import APP

    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["lang"] = "en"
    at.run()
    assert at.title[0].value == "Torch Classroom · Course map"
    assert at.sidebar.radio(key=SWITCH).value == "en"


def test_a_new_url_language_in_the_same_session_is_adopted():
    at = new_app("zh")
    at.query_params["lang"] = "en"  # a shared English link opened in the same session
    at.run()
    assert at.title[0].value == "Torch Classroom · Course map"
    at.run()  # and it stays
    assert at.title[0].value == "Torch Classroom · Course map"
    at.query_params["lang"] = "xx"  # a language we do not have: ignored, and the URL put right
    at.run()
    assert at.title[0].value == "Torch Classroom · Course map"
    assert at.query_params.get("lang") == "en"


def test_device_panel_explains_cuda_false(lang):
    at = new_app(lang)
    body = " ".join(str(getattr(e, "value", "")) for e in at.sidebar)
    assert "torch.cuda.is_available()" in body
    assert "torch.device" in body


def test_data_page_sections_follow_the_course_numbers(lang):
    """Issue 12: the Data page's sections read 1, 2, 4, 5, 6 (the course's steps), never 1, 2, 5, 4, 6."""
    at = new_app(lang, "app_pages/data.py", timeout=90)  # the data page's first run reads the dataset: slow on a busy box
    control = at.segmented_control(key="data.section")
    numbers = [int(str(option).split()[0]) for option in control.options]  # the labels as shown
    assert numbers == sorted(numbers) == [1, 2, 4, 5, 6]
    home = new_app(lang)
    data_title = {"zh": "数据与变换", "en": "Data & transforms"}[lang]
    text = " ".join(m.value for m in home.markdown)
    for number in numbers:  # each is a step the course map sends to the Data page
        assert f"**{number}. " in text
    links = [link.proto.label for link in home.get("page_link") if not link.proto.query_string]
    cards = [m.value for m in home.markdown if m.value.startswith("**") and ". " in m.value[:6]]
    assert len(cards) == len(links)
    card_of = {n: next(i for i, card in enumerate(cards) if f"**{n}. " in card) for n in numbers}
    assert [links[card_of[n]] for n in numbers] == [data_title] * len(numbers)


def test_todays_lessons_link_to_pages_in_a_set_state(lang):
    """Issue 14: the teacher's presets are offered on the course map, each a link with the page's settings."""
    from urllib.parse import parse_qsl

    from dl_core.presets import DEFAULT_DIR, load_lessons
    from ui.pages import BY_URL

    lessons, _ = load_lessons(DEFAULT_DIR, "*")
    at = new_app(lang)
    assert_clean(at)
    heading = {"zh": "今天的课", "en": "Today's lesson"}[lang]
    assert heading in [h.value for h in at.subheader]
    links = [link for link in at.get("page_link") if link.proto.query_string]
    assert len(links) == len(lessons)
    text = " ".join(m.value for m in at.markdown)
    for lesson, link in zip(lessons, links):
        assert lesson.text("title", lang) in text
        assert link.proto.page == BY_URL[lesson.page].url_path or link.proto.page.endswith(lesson.page)
        assert dict(parse_qsl(link.proto.query_string)) == lesson.settings


def test_every_shipped_lesson_opens_its_page_without_a_warning():
    """Each lesson's link, opened like a click on the course map: its page applies it, no 'bad link' message."""
    from dl_core import pagelinks
    from dl_core.presets import DEFAULT_DIR, load_lessons
    from ui.pages import BY_URL

    lessons, _ = load_lessons(DEFAULT_DIR, "*")
    for lesson in lessons:
        at = new_app("en")
        for name, value in lesson.settings.items():
            at.query_params[name] = value
        at.switch_page(BY_URL[lesson.page].file)
        at.run(timeout=90)
        assert_clean(at)
        warnings = " ".join(str(w.value) for w in at.warning)
        assert "link's settings is wrong" not in warnings, (lesson.name, warnings)
        # the page took the settings and keeps them in its URL (which leaves out defaults, so compare values)
        shown = {k: v for k, v in at.query_params.items() if k != "lang"}
        now, wanted = pagelinks.read(lesson.page, shown)[0], pagelinks.read(lesson.page, lesson.settings)[0]
        assert {n: now[n] for n in lesson.settings} == {n: wanted[n] for n in lesson.settings}, lesson.name



def test_the_whole_course_notebook_is_offered(lang):
    """Issue 14: one whole-course notebook, in the user's language, from the course map."""
    import nbformat

    from dl_core.notebooks import course_notebook

    at = new_app(lang)
    buttons = [b for b in at.get("download_button") if b.proto.id and "home.notebook_download" in b.proto.id]
    assert len(buttons) == 1
    assert buttons[0].proto.label == {"zh": "下载 Notebook (.ipynb)", "en": "Download notebook (.ipynb)"}[lang]
    notebook = nbformat.reads(course_notebook(lang).decode("utf-8"), as_version=4)
    nbformat.validate(notebook)
    markdown = " ".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    assert {"zh": "完整课程", "en": "the whole course"}[lang] in markdown
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert "from dl_core" not in code and "nn.Sequential(" in code and "torch.save(" in code
