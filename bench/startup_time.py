"""Seconds from `streamlit run` to the home page rendered in Chromium (the course map visible).

    python bench/startup_time.py            # 3 cold starts, median
    python bench/startup_time.py --runs 5
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402


def one_start(browser, data_dir: Path) -> tuple[float, float]:
    """(server healthy, home page rendered) in seconds since the process was started."""
    start = time.perf_counter()
    url, proc = start_server(data_dir)
    healthy = time.perf_counter() - start
    try:
        page = browser.new_page()
        page.goto(url)
        # The home page is rendered when its last course step (19, prediction) is on screen.
        page.wait_for_function("() => document.body.innerText.includes('19.')", timeout=120_000)
        rendered = time.perf_counter() - start
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return healthy, rendered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for i in range(args.runs):
            healthy, rendered = one_start(browser, Path(tmp))
            results.append(rendered)
            print(f"run {i + 1}: server healthy {healthy:.2f} s, home page rendered {rendered:.2f} s")
        browser.close()
    results.sort()
    print(f"startup (server start → home page rendered in Chromium): median {results[len(results) // 2]:.2f} s "
          f"over {len(results)} runs")


if __name__ == "__main__":
    main()
