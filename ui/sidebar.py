"""The picture frame around every page: language (kept in the URL) and the device panel."""
from __future__ import annotations

import streamlit as st

from dl_core.devices import DeviceReport, device_report
from ui.i18n import LANG_NAMES, LANGS, lang, t


def init_language() -> None:
    """Language from the URL (?lang=en) on first visit, then from the sidebar switch."""
    if "lang" not in st.session_state:
        wanted = st.query_params.get("lang", "zh")
        st.session_state["lang"] = wanted if wanted in LANGS else "zh"


def _sync_url() -> None:
    # A teacher can share the link: English pages carry ?lang=en, Chinese (default) none.
    if lang() == "en":
        if st.query_params.get("lang") != "en":
            st.query_params["lang"] = "en"
    elif "lang" in st.query_params:
        del st.query_params["lang"]


@st.cache_resource(show_spinner=False)
def _report() -> DeviceReport:
    return device_report()  # read once per process: hardware does not change under a running server


def render_sidebar() -> None:
    with st.sidebar:
        st.radio("语言 / Language", LANGS, format_func=LANG_NAMES.get, key="lang", horizontal=True)
        _sync_url()
        _device_panel(_report())


def _device_panel(r: DeviceReport) -> None:
    icon = {"cuda": "🟢", "mps": "🟢", "cpu": "⚪"}[r.chosen.type]
    with st.expander(f"{icon} {t('device.title')}: {r.chosen.type.upper()}", expanded=False):
        st.markdown(t("device.torch", version=r.torch_version))
        if r.cuda_available:
            st.markdown(t("device.cuda_yes", name=r.cuda_name, memory=r.cuda_memory_gb, cuda=r.cuda_version))
        else:
            st.markdown(t("device.cuda_no"))
            st.code("torch.cuda.is_available()  # False", language="python")
            st.caption(t("device.cuda_no_meaning"))
        st.markdown(t("device.mps_yes") if r.mps_available else t("device.mps_no"))
        st.markdown(t("device.cpu", threads=r.cpu_threads, cores=r.cpu_cores))
        st.markdown(t("device.chosen", device=r.chosen.type, name=r.chosen.name))
        st.code(
            'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")'
            f'\nprint(device)  # {r.chosen.type}',
            language="python",
        )
