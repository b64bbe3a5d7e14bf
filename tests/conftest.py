"""Shared test set-up: one torch thread (tests run beside each other on 2 cores), a private data dir."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "streamlit_app.py")

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory) -> Path:
    """Every test session gets its own data directory (TORCH_CLASSROOM_DATA), never the user's."""
    reuse = os.environ.get("TORCH_CLASSROOM_TEST_DATA")  # a developer's folder of generated datasets, to skip
    path = Path(reuse) if reuse else tmp_path_factory.mktemp("data")  # regenerating them on every run
    os.environ["TORCH_CLASSROOM_DATA"] = str(path)
    return path


@pytest.fixture(params=["zh", "en"])
def lang(request) -> str:
    """Run a page test in both languages."""
    return request.param


def new_app(lang: str = "zh", page: str | None = None, timeout: float = 30):
    """An AppTest of the whole app (router + sidebar), in `lang`, optionally switched to `page`."""
    from streamlit.testing.v1 import AppTest

    from ui.warmup import warm_up

    warm_up()  # the app's one-time imports (and worker start) happen here, not inside the first run's timeout
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.session_state["lang"] = lang
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    return at


def open_link(lang: str, page: str, timeout: float = 30, **query: str):
    """The app opened from a link to `page` (its query in the URL before the first run), in `lang`."""
    from streamlit.testing.v1 import AppTest

    from ui.warmup import warm_up

    warm_up()
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.session_state["lang"] = lang
    for name, value in query.items():
        at.query_params[name] = value
    at.switch_page(page)
    at.run()
    return at


def assert_clean(at) -> None:
    """No exception element and no untranslated key (⟦key⟧) anywhere on the page."""
    assert not at.exception, [e.value for e in at.exception]
    texts = [str(getattr(el, "value", "")) for el in at.main] + [str(getattr(el, "label", "")) for el in at.main]
    missing = [x for x in texts if "⟦" in x]
    assert not missing, missing
