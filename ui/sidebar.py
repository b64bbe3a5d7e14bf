"""The picture frame around every page: language (kept in the URL) and the device panel."""
from __future__ import annotations

import streamlit as st

from dl_core.devices import DeviceReport, device_report
from ui.i18n import LANG_KEY, LANG_NAMES, LANGS, lang, t

SWITCH = "sidebar.lang"  # the radio's own key: its state may vanish or lag, the language does not
URL_SEEN = "sidebar.url_lang"  # the language the URL last named (None: no ?lang), to notice a new one


def _url_lang() -> str | None:
    wanted = st.query_params.get("lang")
    return wanted if wanted in LANGS else None


def init_language() -> None:
    """Call once per run before anything is translated: the language is a session value; the URL mirrors it.

    The URL seeds the language on a first visit, and again whenever it names a language it did not name
    on the last run (a shared link opened in the same session); otherwise the session value wins.
    """
    wanted = _url_lang()
    if st.session_state.get(LANG_KEY) not in LANGS:
        st.session_state[LANG_KEY] = wanted or "zh"
    elif wanted is not None and wanted != st.session_state.get(URL_SEEN):
        st.session_state[LANG_KEY] = wanted


def _sync_url() -> None:
    # A teacher can share the link: English pages carry ?lang=en, Chinese (default) none.
    if lang() == "en":
        if st.query_params.get("lang") != "en":
            st.query_params["lang"] = "en"
    elif "lang" in st.query_params:
        del st.query_params["lang"]
    st.session_state[URL_SEEN] = _url_lang()


def _on_switch() -> None:
    # Runs before the script: the whole rerun (page titles included) is in the new language, and
    # _sync_url then moves the URL along.
    choice = st.session_state.get(SWITCH)
    if choice in LANGS:
        st.session_state[LANG_KEY] = choice


def language_switch() -> None:
    """The sidebar radio, drawn from the language (never the other way round)."""
    current = lang()
    # `index` is what a browser shows when it mounts the radio without a value from the server (a page
    # clicked before the switch first rendered): the current language, never a fixed default.
    index = LANGS.index(current)
    if st.session_state.get(SWITCH, current) != current:
        st.session_state[SWITCH] = current  # sent to the browser; a second default beside it only logs a warning
        index = 0
    st.radio("语言 / Language", LANGS, index=index, format_func=LANG_NAMES.get, key=SWITCH,
             on_change=_on_switch, horizontal=True)


@st.cache_resource(show_spinner=False)
def _report() -> DeviceReport:
    return device_report()  # read once per process: hardware does not change under a running server


def render_sidebar() -> None:
    with st.sidebar:
        language_switch()
        _sync_url()  # after st.navigation, which may drop the query string on a page switch
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
