"""Issue 11 on a real server: one student's hostile uploads do not slow another student's page load.

`streamlit run streamlit_app.py` on a free loopback port; student A (one browser context) uploads
hostile files on the Save & load and Data pages, student B (another context) loads a page at the
same time. The server is stopped by its PID in a `finally`.
"""
from __future__ import annotations

import io
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from dl_core import datasets as D
from tests.e2e.conftest import start_server
from ui.i18n import catalog

pytestmark = pytest.mark.browser


def _cycle_pth(path: Path) -> Path:
    m = nn.Sequential()
    m._modules["0"] = m
    buf = io.BytesIO()
    torch.save(m, buf)
    path.write_bytes(buf.getvalue())
    return path


def _inference_pth(path: Path) -> Path:
    buf = io.BytesIO()
    torch.save({"0.weight": torch.zeros(8, 3, 3, 3), "13.weight": torch.zeros(10, 7)}, buf)
    path.write_bytes(buf.getvalue())
    return path


def _big_pixels_zip(path: Path) -> Path:
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(b"\x00" + bytes(3 * 4000)) for _ in range(4000)) + comp.flush()
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4000, 4000, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for c in ("ants", "bees"):
            for i in range(100):
                zf.writestr(f"{c}/{i}.png", png)
    return path


def _load_time(browser, url: str) -> float:
    context = browser.new_context()
    try:
        page = context.new_page()
        start = time.perf_counter()
        page.goto(f"{url}/home?lang=en")
        page.wait_for_selector("h1", timeout=60_000)
        return time.perf_counter() - start
    finally:
        context.close()


def test_a_hostile_upload_does_not_slow_another_students_page(tmp_path, data_dir, browser):
    files = [_cycle_pth(tmp_path / "cycle.pth"), _inference_pth(tmp_path / "guess.pth")]
    zip_path = _big_pixels_zip(tmp_path / "pixels.zip")
    # Drawn here (one quick thread; shared with tests/e2e), not by the server while B is timed.
    for name in ("shapes10", "shapes10-full"):
        for train in (True, False):
            D.load_dataset(name, train, root=data_dir)
    url, proc = start_server(data_dir)
    try:
        baseline = min(_load_time(browser, url) for _ in range(2))
        a = browser.new_context()
        page_a = a.new_page()
        page_a.goto(f"{url}/save?lang=en")
        page_a.wait_for_selector('[data-testid="stFileUploaderDropzoneInput"]', state="attached", timeout=60_000)
        timings = []
        for f in files:
            page_a.locator('[data-testid="stFileUploaderDropzoneInput"]').last.set_input_files(str(f))
            timings.append(_load_time(browser, url))  # B loads while A's upload is handled
            page_a.wait_for_selector('[data-testid="stAlertContentError"]', timeout=30_000)
        # The Data page: thousands of megapixels in a 1 MB zip, refused from the headers.
        page_a.goto(f"{url}/data?lang=en")
        page_a.get_by_text(catalog()["data.section.dataset"]["en"], exact=True).first.click(timeout=120_000)
        page_a.wait_for_selector('[data-testid="stFileUploaderDropzoneInput"]', state="attached", timeout=60_000)
        page_a.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(zip_path))
        timings.append(_load_time(browser, url))
        page_a.wait_for_selector('[data-testid="stAlertContentError"]', timeout=30_000)
        assert "megapixels" in page_a.locator('[data-testid="stAlertContentError"]').first.inner_text()
        a.close()
        print(f"page load alone {baseline:.2f} s; during A's hostile uploads {[round(x, 2) for x in timings]} s")
        assert proc.poll() is None, "the server died"
        # generous: two cores shared with other work; a hang or minutes of work would blow far past this
        assert max(timings) < 3 * baseline + 5, (baseline, timings)
        assert zip_path.stat().st_size < 10 * 2**20
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
