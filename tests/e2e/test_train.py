"""The Train page in a real browser: start, watch the chart move, switch page and back (still moving), stop."""
import re

import pytest

from tests.e2e.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser

PROGRESS = re.compile(r"total_train_step (\d+)/")


def progress_step(page) -> int:
    text = page.locator("[data-testid='stMain']").inner_text()
    match = PROGRESS.search(text)
    return int(match.group(1)) if match else -1


def wait_for_more_steps(page, than: int, timeout_ms: int = 90_000) -> int:
    page.wait_for_function(
        """(than) => {
            const el = document.querySelector("[data-testid='stMain']");
            const m = el && el.innerText.match(/total_train_step (\\d+)\\//);
            return m && parseInt(m[1]) > than;
        }""", arg=than, timeout=timeout_ms)
    return progress_step(page)


def nav(page, title: str) -> None:
    """Click a page in the router's sidebar navigation (a client-side switch: the session and its job stay)."""
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()


def set_number(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Tab")


def test_train_live_switch_back_and_stop(page, app_url):
    page.goto(f"{app_url}/?lang=en")  # through the router (the sidebar's language, the navigation)
    wait_for_app(page)
    page.get_by_text("Torch Classroom · Course map").wait_for()
    nav(page, "Train")
    page.get_by_text("Nothing is training yet").wait_for(timeout=120_000)  # Shapes-10 is generated on first use
    set_number(page, "Epochs", "50")
    set_number(page, "Training images used", "800")
    set_number(page, "batch_size", "16")  # small steps: the chart moves often even on a busy machine
    set_number(page, "Log the loss every N steps", "1")
    wait_for_app(page)
    page.get_by_role("button", name="Start training").click()
    try:
        page.get_by_text("Training on", exact=False).first.wait_for(timeout=90_000)
    except Exception:
        screenshot(page, "train_start_failed_en")
        raise
    first = wait_for_more_steps(page, 0)
    second = wait_for_more_steps(page, first)  # the fragment redraws by itself: the run is live
    assert second > first
    page.wait_for_timeout(1500)
    screenshot(page, "train_live_en")

    # Another page, then back: the job kept running in the background and the chart still moves.
    nav(page, "Course map")
    page.get_by_text("Torch Classroom · Course map").wait_for()
    page.wait_for_timeout(1500)
    nav(page, "Train")
    page.get_by_text("Training on", exact=False).first.wait_for(timeout=30_000)
    back = wait_for_more_steps(page, second)
    assert back > second
    wait_for_more_steps(page, back)
    # One epoch's test pass done (accuracy shown as a percentage), then Stop.
    page.wait_for_function(
        r"""() => /Test accuracy\s+\d+(\.\d+)?%/.test(document.querySelector("[data-testid='stMain']").innerText)""",
        timeout=120_000)
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("you pressed Stop", exact=False).first.wait_for(timeout=30_000)
    page.get_by_text("Runs", exact=True).wait_for(timeout=30_000)
    page.get_by_text("Where the model goes wrong").wait_for()
    page.wait_for_timeout(1500)
    screenshot(page, "train_stopped_en")
    page.get_by_text("Misclassified test images", exact=False).first.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    screenshot(page, "train_analysis_en")


def test_train_page_in_chinese(page, app_url):
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_text("PyTorch 课堂 · 课程地图").wait_for()
    nav(page, "训练")
    page.get_by_text("训练：看着网络学习").wait_for()
    page.get_by_text("还没有开始训练", exact=False).wait_for()
    page.get_by_text("第 13–14 步", exact=False).first.click()
    page.get_by_text("1.1019").first.wait_for()
    page.wait_for_timeout(800)
    screenshot(page, "train_idle_zh")


def test_a_recipe_link_opens_the_form_filled_in(page, app_url):
    """A teacher's link in a fresh browser: the recipe is in the form, nothing trains, the link can be copied."""
    page.goto(f"{app_url}/train?lang=en&lr=0.05&optimizer=adam&epochs=2&augment=1")
    wait_for_app(page)
    page.get_by_text("Nothing is training yet").wait_for(timeout=120_000)
    from playwright.sync_api import expect

    # The number box first mounts with its default and shows the link's value a moment later: wait for it.
    expect(page.get_by_label("Learning rate", exact=True)).to_have_value("0.05", timeout=15_000)
    expect(page.get_by_label("Epochs", exact=True)).to_have_value("2")
    expect(page.get_by_label("Optimizer", exact=True)).to_have_value("Adam")
    assert "lr=0.05" in page.url and "optimizer=adam" in page.url and "lang=en" in page.url
    page.get_by_role("button", name="Copy link").click()
    page.get_by_text("/train?", exact=False).first.wait_for(timeout=10_000)
    screenshot(page, "train_link_en")
