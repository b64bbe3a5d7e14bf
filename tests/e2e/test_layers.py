"""The layers lab in a real browser: step through the course example and read the output cells."""
import pytest

from tests.e2e.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def cells(page, grid: str) -> list[str]:
    """The texts of one HTML grid's cells (data-grid=...), row-major (weights in small print dropped)."""
    return page.eval_on_selector_all(
        f"table[data-grid='{grid}'] td",
        "tds => tds.map(td => td.childNodes.length ? td.childNodes[0].textContent.trim() : '')",
    )


def wait_cells(page, grid: str, expected: list[str], timeout: int = 40_000) -> None:
    page.wait_for_function(
        """([grid, expected]) => {
            const tds = [...document.querySelectorAll(`table[data-grid='${grid}'] td`)];
            const got = tds.map(td => td.childNodes.length ? td.childNodes[0].textContent.trim() : '');
            return JSON.stringify(got) === JSON.stringify(expected);
        }""",
        arg=[grid, expected],
        timeout=timeout,
    )


def open_layers(page, app_url, lang: str) -> None:
    # through the router (the sidebar link), as a student does: it keeps the language and the sidebar
    page.goto(f"{app_url}/?lang=en" if lang == "en" else app_url)
    wait_for_app(page)
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Layers lab" if lang == "en" else "网络层实验室").click()
    wait_for_app(page)


def test_step_through_the_course_example(page, app_url):
    open_layers(page, app_url, "zh")
    page.get_by_text("网络层实验室").first.wait_for()
    wait_cells(page, "conv-output", ["10"] + ["?"] * 8)
    page.get_by_text("1×1 + 2×2 + 0×1 + 0×0 + 1×1 + 2×0 + 1×2 + 2×1 + 1×0 = 10").first.wait_for()
    page.get_by_role("button", name="stride=2 → 2×2").wait_for()
    wait_for_app(page)
    screenshot(page, "layers_conv_zh")

    next_button = page.locator(".st-key-layers-conv-go_next button, [class*='st-key-layers'][class*='go_next'] button")
    expected = ["10", "12", "12", "18", "16", "16", "13", "9", "3"]
    for k in range(2, 10):
        next_button.first.click()
        wait_cells(page, "conv-output", expected[:k] + ["?"] * (9 - k))
    assert cells(page, "conv-output") == expected
    page.locator("[data-testid='stAlertContentSuccess']").get_by_text("torch.nn.functional.conv2d", exact=False).wait_for()
    page.locator("table[data-grid='conv-output']").scroll_into_view_if_needed()
    screenshot(page, "layers_conv_done_zh")

    # the stride 2 preset: 2×2, and padding 1: 5×5 with the zeros drawn
    page.get_by_role("button", name="stride=2 → 2×2").click()
    wait_cells(page, "conv-output", ["10", "?", "?", "?"])
    page.get_by_role("button", name="padding=1 → 5×5").click()
    wait_cells(page, "conv-output", ["1"] + ["?"] * 24)
    assert cells(page, "conv-input")[:7] == ["0"] * 7


def test_english_pooling_and_bad_input(page, app_url):
    open_layers(page, app_url, "en")
    page.get_by_text("Layers lab").first.wait_for()
    page.get_by_role("tab", name="Pooling: MaxPool2d").click()
    wait_for_app(page)
    last = page.locator("[class*='go_last'] button")
    last.first.click()
    wait_cells(page, "pool-output", ["2", "3", "5", "1"])
    page.get_by_text("Equals nn.MaxPool2d", exact=False).first.wait_for()
    page.locator("table[data-grid='pool-input']").scroll_into_view_if_needed()
    screenshot(page, "layers_pool_en")

    page.get_by_role("tab", name="Conv2d, cell by cell").click()
    wait_for_app(page)
    stride = page.get_by_label("stride", exact=True)
    stride.fill("0")
    stride.press("Enter")
    page.get_by_text("stride must be at least 1, got 0.").wait_for()
    wait_cells(page, "conv-output", ["10"] + ["?"] * 8)  # the last valid state is still shown
    page.get_by_text("stride must be at least 1, got 0.").scroll_into_view_if_needed()
    screenshot(page, "layers_bad_input_en")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_tab_renders(page, app_url, lang):
    open_layers(page, app_url, lang)
    tabs = page.get_by_role("tab")
    for index, name in ((1, "multi"), (3, "act"), (4, "flat"), (5, "img")):
        tabs.nth(index).click()
        wait_for_app(page)
        page.wait_for_timeout(500)
        assert not page.locator("[data-testid='stException']").count()
        if name == "multi":
            wait_cells(page, "multi-out0", ["13", "?", "?", "?", "?", "?", "?", "?", "?"])
        if name == "flat":
            page.get_by_text("[196608]", exact=False).first.wait_for()
        if name == "img":
            page.locator("[data-testid='stImage']").nth(9).wait_for()  # 4 beside the input + 6 maps
            page.locator("[data-testid='stImage']").nth(4).scroll_into_view_if_needed()
        screenshot(page, f"layers_{name}_{lang}")


def test_autoplay_fills_cells_and_can_be_paused(page, app_url):
    open_layers(page, app_url, "en")
    wait_cells(page, "conv-output", ["10"] + ["?"] * 8)
    page.get_by_role("button", name="Play").click()
    # the timer fragment fills cells on its own, while the rest of the page stays usable
    wait_cells(page, "conv-output", ["10", "12", "12"] + ["?"] * 6)
    page.get_by_role("button", name="Pause").click()
    wait_for_app(page)
    page.wait_for_timeout(300)
    frozen = cells(page, "conv-output")
    page.wait_for_timeout(2000)
    assert cells(page, "conv-output") == frozen
    assert frozen.count("?") < 7


def edit_first_cell(page, text: str) -> None:
    """Type into (or, with "", clear) the input grid's top-left cell.

    st.data_editor draws on a canvas, so the cell is clicked by position; typing on a selected cell replaces
    its number, as a student does it (a double-click + Ctrl+A left the old number in about half the runs on
    an Intel Xeon VM: the grid took the Enter but not the text).
    """
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)  # the data editor's canvas settles before it takes a click
    box = grid.bounding_box()
    x, y = box["x"] + 26, box["y"] + 35 + 16  # below the header row, first column
    if text:
        page.mouse.click(x, y)
        page.wait_for_timeout(300)
        page.keyboard.type(text)
        page.wait_for_timeout(200)
        page.keyboard.press("Enter")
    else:
        page.mouse.click(x, y)
        page.wait_for_timeout(300)
        page.keyboard.press("Delete")  # clears the selected cell
    wait_for_app(page)


def edit_until(page, text: str, expected: list[str]) -> None:
    """Edit the first cell until the output shows `expected`: a double-click on the data editor's canvas
    is sometimes taken before the canvas is ready on a busy machine (seen once in ~5 full runs), so the
    edit is tried again, up to three times; the page's answer is what is asserted."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(2):
        edit_first_cell(page, text)
        try:
            return wait_cells(page, "conv-output", expected, timeout=15_000)
        except PlaywrightTimeout:
            continue
    edit_first_cell(page, text)
    wait_cells(page, "conv-output", expected)


def test_editing_the_grid(page, app_url):
    open_layers(page, app_url, "en")
    wait_cells(page, "conv-output", ["10"] + ["?"] * 8)
    edit_until(page, "3", ["12"] + ["?"] * 8)
    page.get_by_text("3×1 + 2×2 + 0×1", exact=False).first.wait_for()
    edit_first_cell(page, "")
    page.get_by_text("input: row 1, column 1 is empty; put a number there.").wait_for()
    page.get_by_text("input: row 1, column 1 is empty; put a number there.").scroll_into_view_if_needed()
    wait_cells(page, "conv-output", ["12"] + ["?"] * 8)  # the last valid grid is kept
    screenshot(page, "layers_edit_en")


def wait_value(page, label: str, value: str, timeout_ms: int = 20_000) -> None:
    """Wait until the number input labelled `label` shows `value` (its JavaScript may load after the page ran)."""
    box = page.get_by_label(label, exact=True).first
    for _ in range(timeout_ms // 100):
        if box.input_value() == value:
            return
        page.wait_for_timeout(100)
    assert box.input_value() == value


def test_a_teachers_link_opens_the_course_example_with_stride_2(page, app_url):
    # straight to the link, as a student clicking it on a slide (issue 14)
    page.goto(f"{app_url}/layers?lang=en&stride=2")
    wait_for_app(page)
    wait_cells(page, "conv-output", ["10", "?", "?", "?"])
    wait_value(page, "stride", "2")
    page.locator("[class*='layers-conv-go_last'] button").first.click()
    wait_cells(page, "conv-output", ["10", "12", "13", "3"])
    page.wait_for_function("() => new URLSearchParams(location.search).get('step') === '4'")
    assert "stride=2" in page.url and "lang=en" in page.url
    page.locator("table[data-grid='conv-output']").scroll_into_view_if_needed()
    screenshot(page, "layers_link_stride2_en")

    page.goto(f"{app_url}/layers?lang=en&stride=2&step=4")  # the step shown travels too
    wait_for_app(page)
    wait_cells(page, "conv-output", ["10", "12", "13", "3"])


def test_a_hostile_link_gives_a_message_and_the_defaults(page, app_url):
    page.goto(f"{app_url}/layers?lang=en&stride=-1&padding=NaN&input=1,2;3&tab=%E6%AD%A5%E9%95%BF%3Cscript%3E")
    wait_for_app(page)
    page.get_by_text("Something in this link's settings is wrong", exact=False).wait_for()
    wait_cells(page, "conv-output", ["10"] + ["?"] * 8)  # the course defaults
    page.wait_for_function("() => !['stride', 'padding', 'input', 'tab'].some(n => location.search.includes(n + '='))")
    assert not page.locator("[data-testid='stException']").count()
    screenshot(page, "layers_link_hostile_en")


def test_changing_a_widget_updates_the_url(page, app_url):
    page.goto(f"{app_url}/layers?lang=en")
    wait_for_app(page)
    wait_cells(page, "conv-output", ["10"] + ["?"] * 8)
    padding = page.get_by_label("padding", exact=True).first
    padding.fill("1")
    padding.press("Enter")
    wait_cells(page, "conv-output", ["1"] + ["?"] * 24)
    page.wait_for_function("() => new URLSearchParams(location.search).get('padding') === '1'")
    link = page.url
    page.goto(link)  # the same link in a fresh run shows the same state
    wait_for_app(page)
    wait_cells(page, "conv-output", ["1"] + ["?"] * 24)
