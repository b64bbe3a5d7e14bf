"""The "show the code" panel: runnable PyTorch code, in the course's style, for the current choices."""
from __future__ import annotations

import streamlit as st

from ui.i18n import t


def show_code(code: str, key: str, filename: str = "course.py", expanded: bool = False,
              explain: str | None = None) -> None:
    """An expander with the code and a download button; `key` is page-prefixed (`data.code`)."""
    with st.expander(t("common.show_code"), expanded=expanded, icon=":material/code:"):
        st.code(code, language="python")
        st.download_button(t("common.download_code"), code, file_name=filename, mime="text/x-python",
                           key=f"{key}.download", icon=":material/download:")
