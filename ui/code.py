"""The "show the code" panel: runnable PyTorch code, in the course's style, for the current choices."""
from __future__ import annotations

import functools
from pathlib import PurePath

import streamlit as st

from dl_core.notebooks import MIME, page_notebook
from ui.i18n import lang, t


@functools.lru_cache(maxsize=64)  # pages rerun often with the same code: build each notebook once
def notebook_bytes(code: str, explain: str | None, language: str, title: str) -> bytes:
    """The page's notebook (.ipynb): `explain` as Markdown (a generic intro when None), the code as cells."""
    return page_notebook(title, explain, code, language)


def show_code(code: str, key: str, filename: str = "course.py", expanded: bool = False,
              explain: str | None = None) -> None:
    """An expander with the code, a download button for it and one for it as a notebook (`explain` becomes
    its Markdown); `key` is page-prefixed (`data.code`)."""
    with st.expander(t("common.show_code"), expanded=expanded, icon=":material/code:"):
        st.code(code, language="python")
        row = st.container(horizontal=True)
        row.download_button(t("common.download_code"), code, file_name=filename, mime="text/x-python",
                            key=f"{key}.download", icon=":material/download:")
        # Built only when clicked (a callable), and cached: the page's rerun stays cheap.
        build = functools.partial(notebook_bytes, code, explain, lang(), t("notebook.title", file=filename))
        row.download_button(t("notebook.download"), build, file_name=str(PurePath(filename).with_suffix(".ipynb")),
                            mime=MIME, key=f"{key}.notebook", icon=":material/description:", on_click="ignore")
