"""The builder page in a real browser: build, break and fix the course network, in both languages."""
import pytest

from tests.e2e.conftest import copied_link, fresh_browser, screenshot, wait_for_app

pytestmark = pytest.mark.browser

CASES = {
    "en": ("?lang=en", "Build the network", "Every shape fits", "Linear expects in_features = 1024 = 64×4×4, got 4096"),
    "zh": ("", "搭建网络", "形状全部对得上", "需要 in_features = 1024 = 64×4×4，但现在是 4096"),
}


def open_builder(page, app_url, query: str, link: str) -> None:
    """Start at the course map (the router sets the language), then follow the sidebar link."""
    page.goto(f"{app_url}/{query}")
    wait_for_app(page)
    page.get_by_role("link", name=link).first.click()
    page.wait_for_url("**/model**")
    wait_for_app(page)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_build_break_and_fix_the_course_network(page, app_url, lang):
    query, link, ok, broken = CASES[lang]
    open_builder(page, app_url, query, link)
    page.get_by_text(ok).first.wait_for()
    page.get_by_text("145,578").first.wait_for()
    screenshot(page, f"model_build_{lang}")

    # layer (7) is Linear(1024, 64): type the classic wrong value
    box = page.locator("[class*='-Linear-in_features'] input").first
    box.fill("4096")
    box.press("Enter")
    wait_for_app(page)
    page.get_by_text(broken).first.wait_for()
    page.get_by_text(broken).first.scroll_into_view_if_needed()
    screenshot(page, f"model_broken_{lang}")

    page.locator(".st-key-model-fix button").click()
    wait_for_app(page)
    page.get_by_text(ok).first.wait_for()
    assert page.get_by_text(broken).count() == 0
    assert page.locator("[class*='-Linear-in_features'] input").first.input_value() == "1024"
    screenshot(page, f"model_fixed_{lang}")
    page.locator(".st-key-model-volumes").scroll_into_view_if_needed()
    page.locator(".st-key-model-volumes svg polygon").first.wait_for()
    assert page.locator(".st-key-model-volumes svg title").count() == 10  # the input and the 9 layers
    screenshot(page, f"model_volumes_{lang}")


def test_widgets_do_not_wait_for_plotly(page, app_url):
    """Issue 12: the build section loads no Plotly (its 4 MB of JavaScript kept every widget a grey placeholder)."""
    scripts = []
    page.on("request", lambda r: scripts.append(r.url.rsplit("/", 1)[-1]) if r.resource_type == "script" else None)
    page.goto(f"{app_url}/model?lang=en")
    wait_for_app(page)
    page.locator("[class*='-Linear-in_features'] input").first.wait_for()
    page.get_by_text("Every shape fits").first.wait_for()
    page.wait_for_timeout(1000)
    assert page.locator("[data-testid='stSkeleton']").count() == 0
    heavy = [name for name in scripts if name.startswith(("PlotlyChart", "DataFrame."))]
    assert not heavy, heavy


def test_vgg_tab_and_code_tab(page, app_url):
    open_builder(page, app_url, "?lang=en", "Build the network")
    page.get_by_text("print(model) & code", exact=True).click()
    page.get_by_text("class Tudui(nn.Module):").first.wait_for()
    screenshot(page, "model_code_en")
    page.get_by_text("Existing models: VGG16", exact=True).click()
    page.get_by_text("138,357,544").first.wait_for()
    page.get_by_text("vgg16.classifier[6] = ...").click()
    wait_for_app(page)
    page.get_by_text("134,301,514").first.wait_for()
    screenshot(page, "model_vgg_en")


def test_feature_maps_of_a_test_sample(page, app_url):
    open_builder(page, app_url, "?lang=en", "Build the network")
    page.get_by_text("Feature maps", exact=True).click()
    page.get_by_text("Read the test set and show the feature maps").click()
    wait_for_app(page)
    maps = page.locator(".st-key-model-maps_out")
    maps.get_by_text("(0) Conv2d").wait_for(timeout=120_000)
    from playwright.sync_api import expect
    expect(maps.locator("img")).to_have_count(8 * 6)  # 8 channels for each of the six conv/pool layers
    maps.scroll_into_view_if_needed()
    screenshot(page, "model_maps_en")


def test_a_builder_link_rebuilds_the_same_network_in_a_fresh_browser(page, app_url, browser):
    """Issue 14: change the network, copy its link, open it in another browser session: the same network."""
    page.goto(f"{app_url}/model?lang=en")
    wait_for_app(page)
    page.get_by_text("Every shape fits").first.wait_for()
    box = page.locator("[class*='-Linear-out_features'] input").first  # layer (7): Linear(1024, 64)
    box.fill("32")
    box.press("Enter")
    wait_for_app(page)
    page.locator(".st-key-model-fix button").click()  # layer (8) now needs in_features = 32
    wait_for_app(page)
    made = page.get_by_text("Every shape fits").first.inner_text()
    assert "112,458" in made  # 79,328 in the convs + 1024×32+32 + 32×10+10
    assert "linear_1024_32-linear_32_10" in page.url and "lang=en" in page.url  # the URL follows the network
    url = copied_link(page)
    assert url.startswith(app_url) and "/model?" in url and "net=" in url
    screenshot(page, "model_link_en")

    with fresh_browser(browser) as other:
        other.goto(url)
        wait_for_app(other)
        other.get_by_text("Every shape fits").first.wait_for(timeout=60_000)
        assert other.get_by_text("Every shape fits").first.inner_text() == made
        assert other.locator("[class*='-Linear-out_features'] input").first.input_value() == "32"
        assert other.locator("[data-testid='stAlertContentWarning']").count() == 0  # nothing wrong with the link


def test_a_hostile_builder_link_is_a_message_and_the_course_network(page, app_url):
    page.goto(f"{app_url}/model?lang=en&net=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    wait_for_app(page)
    page.get_by_text("Something in this link's settings is wrong").first.wait_for()
    page.get_by_text("145,578").first.wait_for()
    assert "script" not in page.url  # the URL now shows the network the page fell back to
