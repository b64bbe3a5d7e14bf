"""The data page in a real browser: walk every section, reach the course's DataLoader numbers, both languages."""
import pytest

from dl_core import datasets as D
from tests.e2e.conftest import copied_link, fresh_browser, screenshot, wait_for_app

pytestmark = pytest.mark.browser

SLOW = 120_000  # the first visit draws Shapes-10 on a shared 2-core machine


def _wait_text(page, text: str, timeout: int = SLOW) -> None:
    """Until `text` is somewhere on the page (code blocks split text into many spans)."""
    page.wait_for_function("t => document.body.innerText.includes(t)", arg=text, timeout=timeout)


def _section(page, label: str, then: str) -> None:
    page.get_by_text(label, exact=True).first.click()
    _wait_text(page, then)
    wait_for_app(page)


def _pick(page, label: str, option: str) -> None:
    page.locator("[data-testid='stSelectbox']").filter(has_text=label).first.click()
    page.get_by_role("option", name=option).click()


def _open_data_page(page, app_url: str, query: str = "", lang: str = "zh") -> None:
    # Through the router (home, then the sidebar link), as a student arrives.
    page.goto(f"{app_url}/{query}")
    _wait_text(page, "语言 / Language")
    page.get_by_role("link", name="数据与变换" if lang == "zh" else "Data & transforms").first.click()


@pytest.fixture(scope="module", autouse=True)
def warm_data(data_dir):
    """Draw Shapes-10 (small and full) into the server's data directory before the browser asks.

    In the test process (one torch thread) this is quick; the server would draw it with a
    progress bar, but on a shared 2-core machine that can take minutes.
    """
    for name in ("shapes10", "shapes10-full"):
        for train in (True, False):
            D.load_dataset(name, train, root=data_dir)


def test_walk_the_data_page_in_chinese_then_english(page, app_url):
    _open_data_page(page, app_url)
    _wait_text(page, "len(train_set)")
    _wait_text(page, "每个类别的样本")
    wait_for_app(page)
    screenshot(page, "data_torchvision_zh")

    _pick(page, "数据集（所有页面都用它）", "Shapes-10 完整（50,000 / 10,000，和 CIFAR10 一样大）")
    _wait_text(page, "\n50000\n")
    _section(page, "6 DataLoader", "两个 epoch 的第一批")
    _wait_text(page, "\n157\n")
    _wait_text(page, "torch.Size([64, 3, 32, 32])")
    screenshot(page, "data_loader_zh")

    _section(page, "4 Transforms 变换", "每一步的结果")
    _wait_text(page, "v2.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])")
    screenshot(page, "data_transforms_zh")

    _section(page, "2 自己的 Dataset", "载入自己的图片")
    screenshot(page, "data_dataset_zh")
    _section(page, "1 环境", "环境：有没有 GPU？")

    page.get_by_text("English", exact=True).click()
    _wait_text(page, "Environment: is there a GPU?")
    page.wait_for_function("() => location.search.includes('lang=en')")
    _section(page, "4 Transforms", "What every step produced")
    page.mouse.wheel(0, 1100)
    page.wait_for_timeout(600)
    screenshot(page, "data_transforms_en")
    _section(page, "6 DataLoader", "The first batch of two epochs, side by side")
    _wait_text(page, "\n157\n")
    screenshot(page, "data_loader_en")
    _section(page, "5 torchvision datasets", "Samples of every class")
    screenshot(page, "data_en")


def test_offline_cifar10_message_in_the_browser(page, app_url):
    _open_data_page(page, app_url, "?lang=en", lang="en")
    _wait_text(page, "Samples of every class")
    wait_for_app(page)
    _pick(page, "Dataset (every page uses it)", "CIFAR10 (the course's dataset, needs a download)")
    _wait_text(page, "cifar-10-python.tar.gz")
    _wait_text(page, "Still using the last dataset that loaded")
    screenshot(page, "data_offline_en")


def test_a_data_link_opens_the_same_state_in_a_fresh_browser(page, app_url, browser):
    """Issue 14: a teacher's link to a pipeline; the URL stays readable; "Copy link" opens the same page elsewhere."""
    tf = "resize_40x48-totensor-normalize_0.5x0.5x0.5"
    page.goto(f"{app_url}/data?lang=en&ds=shapes10-full&section=transforms&tf={tf}")
    _wait_text(page, "torch.Size([3, 40, 48])")
    wait_for_app(page)
    assert f"tf={tf}" in page.url  # nothing escaped: a link a teacher can read on a slide
    page.get_by_text("6 DataLoader", exact=True).first.click()
    _wait_text(page, "The first batch of two epochs, side by side")
    wait_for_app(page)
    page.wait_for_function("() => location.search.includes('section=loader')")
    assert f"tf={tf}" in page.url  # the pipeline stays in the link while another section is shown
    url = copied_link(page)
    assert url.startswith(app_url) and "/data?" in url and "section=loader" in url and f"tf={tf}" in url
    screenshot(page, "data_link_en")

    with fresh_browser(browser) as other:
        other.goto(url)
        _wait_text(other, "\n157\n")  # Shapes-10 full's test split in batches of 64, as in the course
        wait_for_app(other)
        assert other.locator("[data-testid='stAlertContentWarning']").count() == 0  # nothing wrong with the link
        other.get_by_text("4 Transforms", exact=True).first.click()
        _wait_text(other, "torch.Size([3, 40, 48])")  # the same pipeline


def test_a_hostile_data_link_is_a_message_and_the_defaults(page, app_url):
    page.goto(f"{app_url}/data?lang=en&section=transforms&tf=%3Cscript%3Ealert(1)%3C%2Fscript%3E&batch=-1")
    page.get_by_text("Something in this link's settings is wrong").first.wait_for(timeout=SLOW)
    _wait_text(page, "Samples of every class")  # the default section
    wait_for_app(page)
    assert "script" not in page.url and "batch" not in page.url
