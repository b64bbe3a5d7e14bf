"""The one page list: the router (streamlit_app.py), the course map (app_pages/home.py), links and presets read it."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from ui.i18n import t


@dataclass(frozen=True)
class PageInfo:
    file: str  # the script, relative to the app's root
    url_path: str  # /<url_path> in the browser; links and presets name pages by it
    title_key: str  # catalog key of its title
    icon: str


PAGES = (
    PageInfo("app_pages/home.py", "home", "nav.home", ":material/map:"),
    PageInfo("app_pages/data.py", "data", "nav.data", ":material/photo_library:"),
    PageInfo("app_pages/layers.py", "layers", "nav.layers", ":material/grid_on:"),
    PageInfo("app_pages/model.py", "model", "nav.model", ":material/account_tree:"),
    PageInfo("app_pages/train.py", "train", "nav.train", ":material/monitoring:"),
    PageInfo("app_pages/save_load.py", "save", "nav.save_load", ":material/save:"),
    PageInfo("app_pages/predict.py", "predict", "nav.predict", ":material/image_search:"),
)
BY_URL = {p.url_path: p for p in PAGES}


def navigation_pages() -> list[st.Page]:
    """The router's pages, titled in the user's language (the first is the default)."""
    return [st.Page(p.file, title=t(p.title_key), icon=p.icon, url_path=p.url_path, default=i == 0)
            for i, p in enumerate(PAGES)]
