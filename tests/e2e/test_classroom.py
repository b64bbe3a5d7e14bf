"""A classroom in real browsers: a reload mid-training finds the same run, students never see each other's
runs, and the default run's accuracy curve rises before its first epoch ends."""
import re

import pytest

from tests.e2e.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser

STEP = re.compile(r"total_train_step (\d+)/")


def main_text(page) -> str:
    return page.locator("[data-testid='stMain']").inner_text()


def open_train(page, app_url: str) -> None:
    page.goto(f"{app_url}/train?lang=en")
    wait_for_app(page, timeout=180_000)
    page.get_by_text("Train: watch the network learn").wait_for(timeout=180_000)


def set_number(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Tab")


def wait_for_step_above(page, than: int, timeout_ms: int = 120_000) -> int:
    page.wait_for_function(
        """(than) => {
            const m = document.querySelector("[data-testid='stMain']")?.innerText.match(/total_train_step (\\d+)\\//);
            return m && parseInt(m[1]) > than;
        }""", arg=than, timeout=timeout_ms)
    return int(STEP.search(main_text(page)).group(1))


def test_a_reload_finds_the_same_run_still_going(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        open_train(page, app_url)
        set_number(page, "Epochs", "50")
        set_number(page, "Training images used", "800")
        set_number(page, "batch_size", "16")
        set_number(page, "Log the loss every N steps", "1")
        wait_for_app(page)
        page.get_by_role("button", name="Start training").click()
        first = wait_for_step_above(page, 0)
        assert "#1 " in main_text(page)
        page.reload()  # a new Streamlit session: the cookie finds the student, the job kept running
        wait_for_app(page, timeout=120_000)
        page.get_by_text("training on", exact=False).first.wait_for(timeout=60_000)
        after = wait_for_step_above(page, first)
        assert after > first and "#1 " in main_text(page)
        assert "Nothing is training yet" not in main_text(page)
        screenshot(page, "classroom_after_reload_en")
        page.get_by_role("button", name="Stop").first.click()
        page.get_by_text("you pressed Stop", exact=False).first.wait_for(timeout=60_000)

        # Another student (a fresh browser, no cookie) sees nothing of it.
        other = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            stranger = other.new_page()
            open_train(stranger, app_url)
            stranger.get_by_text("Nothing is training yet").wait_for(timeout=60_000)
            assert "#1 " not in main_text(stranger) and "Runs" not in main_text(stranger).split("\n")
        finally:
            other.close()
    finally:
        context.close()


def test_the_default_run_shows_learning_before_its_first_epoch_ends(browser, app_url):
    """The course's recipe, defaults untouched: the quick-check accuracy climbs well above chance (10 %)
    while the first epoch is still going (no full test pass shown yet)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        open_train(page, app_url)
        page.get_by_role("button", name="Start training").click()
        page.wait_for_function(
            r"""() => {
                const text = document.querySelector("[data-testid='stMain']")?.innerText || "";
                const quick = text.match(/Accuracy \(quick check\)\s+(\d+(?:\.\d+)?)%/);
                const epoch = text.match(/Epoch (\d+)\/\d+ · total_train_step/);
                return quick && epoch && parseInt(epoch[1]) === 1 && parseFloat(quick[1]) >= 20;
            }""", timeout=420_000)
        text = main_text(page)
        assert re.search(r"Test accuracy\s+–", text), "the first full test pass had already happened"
        screenshot(page, "classroom_learning_live_en")
        page.get_by_role("button", name="Stop").first.click()
        page.get_by_text("you pressed Stop", exact=False).first.wait_for(timeout=60_000)
    finally:
        context.close()
