"""The home page in a real browser: both languages, the course map, the URL keeps the language."""
import pytest

from tests.e2e.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def test_home_in_chinese_then_english(page, app_url):
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_text("PyTorch 课堂 · 课程地图").wait_for()
    page.get_by_text("5×5 输入、3×3 卷积核").first.wait_for()
    screenshot(page, "home_zh")

    page.get_by_text("English", exact=True).click()
    page.get_by_text("Torch Classroom · Course map").wait_for()
    page.wait_for_function("() => location.search.includes('lang=en')")
    screenshot(page, "home_en")


def test_shared_link_opens_in_english(page, app_url):
    page.goto(f"{app_url}/?lang=en")
    wait_for_app(page)
    page.get_by_text("Torch Classroom · Course map").wait_for()


def test_sidebar_device_panel(page, app_url):
    page.goto(f"{app_url}/?lang=en")
    wait_for_app(page)
    page.get_by_text("Device:", exact=False).first.click()
    page.get_by_text("torch.cuda.is_available()", exact=False).first.wait_for()


@pytest.mark.parametrize("path, title", [("layers", "Layers lab"), ("train", "Train"), ("predict", "Predict")])
def test_deep_link_keeps_the_router_and_the_language(page, app_url, path, title):
    """A shared link straight to a page still gets the sidebar, the language and the page list."""
    page.goto(f"{app_url}/{path}?lang=en")
    wait_for_app(page)
    nav = page.locator("[data-testid='stSidebarNav']")
    nav.get_by_text("Course map").wait_for()
    nav.get_by_text(title, exact=True).wait_for()
    page.locator("[data-testid='stSidebar']").get_by_text("English", exact=True).wait_for()
    assert "streamlit app" not in nav.inner_text().lower()
    screenshot(page, f"deep_link_{path}_en")


def test_a_lesson_on_the_course_map_opens_its_page_in_that_state(page, app_url):
    """Issue 14: the teacher's "Today's lesson" (presets/conv-stride.toml) is a link to the layers lab at stride 2."""
    from tests.e2e.test_layers import wait_cells, wait_value

    page.goto(f"{app_url}/?lang=en")
    wait_for_app(page)
    page.get_by_text("Today's lesson").wait_for()
    lesson = page.locator("[class*='home-lesson-conv-stride']")
    lesson.get_by_text("Convolution: stride 2 makes a 2×2 output").wait_for()
    screenshot(page, "home_lessons_en")
    lesson.locator("a").first.click()
    page.wait_for_function("() => location.pathname.endsWith('/layers') && location.search.includes('stride=2')")
    wait_for_app(page)
    wait_value(page, "stride", "2")
    wait_cells(page, "conv-output", ["10", "?", "?", "?"])
    assert "lang=en" in page.url or page.get_by_text("Layers lab").count()
