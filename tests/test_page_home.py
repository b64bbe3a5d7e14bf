"""Home page (the course map) and the shared sidebar, in both languages."""
from tests.conftest import assert_clean, new_app


def test_course_map_lists_every_step_with_a_link(lang):
    at = new_app(lang)
    assert_clean(at)
    title = {"zh": "PyTorch 课堂 · 课程地图", "en": "Torch Classroom · Course map"}[lang]
    assert at.title[0].value == title
    text = " ".join(m.value for m in at.markdown)
    assert "1.1019" not in text  # sanity: the map names steps, it does not compute
    assert ("5×5" in text) and ("145,578" in text)
    links = at.get("page_link")
    assert len(links) == 19
    for number in range(1, 20):
        assert f"**{number}. " in text, number


def test_language_switch_in_sidebar_changes_the_page():
    at = new_app("zh")
    assert at.title[0].value.startswith("PyTorch 课堂")
    at.sidebar.radio(key="lang").set_value("en").run()
    assert at.title[0].value == "Torch Classroom · Course map"
    at.sidebar.radio(key="lang").set_value("zh").run()
    assert at.title[0].value.startswith("PyTorch 课堂")  # the URL part is checked in the browser test
    assert_clean(at)


def test_url_language_is_used_on_first_visit():
    from streamlit.testing.v1 import AppTest

    from tests.conftest import APP

    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["lang"] = "en"
    at.run()
    assert at.title[0].value == "Torch Classroom · Course map"


def test_device_panel_explains_cuda_false(lang):
    at = new_app(lang)
    body = " ".join(str(getattr(e, "value", "")) for e in at.sidebar)
    assert "torch.cuda.is_available()" in body
    assert "torch.device" in body
