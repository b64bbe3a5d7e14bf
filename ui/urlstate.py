"""A page's state in its URL, both ways, and the "Copy link" control (the Streamlit side of dl_core/links.py).

A page calls, in order:
    link = PageLink("layers", keys={"stride": "layers.conv.stride", ...})   # or load=/save= functions
    link.apply()        # before its widgets: a link's values go into the widgets' state (once per new link)
    ... widgets ...
    link.publish()      # after its widgets: their values go into the URL (defaults left out)
    link.copy_button()  # "Copy link": the page's URL with its settings, ready to paste on a slide

A bad or hostile value shows a clear message (each wrong parameter named) and the page keeps its defaults.
Navigation drops the query string on a page switch, so an empty query never resets a page: only a query
that names one of the page's parameters, and differs from what the page last wrote, is applied. Coming
back to a page whose widgets Streamlit forgot (it drops a widget's state when a run does not draw it),
the page's last settings are put back: switching pages loses nothing.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from dl_core import links, pagelinks
from ui.i18n import error_text, t

KEEP = ("lang", "embed", "embed_options")  # never touched by a page's link


class PageLink:
    def __init__(self, page: str, keys: Mapping[str, str] | None = None,
                 load: Callable[[dict[str, Any]], None] | None = None,
                 save: Callable[[], dict[str, Any]] | None = None) -> None:
        """`keys`: URL name -> session-state key of the widget holding it. `load(values)` / `save()` handle
        the names `keys` does not (a grid, a network spec): load puts values in state, save reads them back."""
        self.page = page
        self.params = pagelinks.params_for(page)
        self.keys = dict(keys or {})
        self._load, self._save = load, save
        self._published = f"link.{page}.published"

    def _names(self) -> list[str]:
        return [p.name for p in self.params]

    def apply(self) -> list[str]:
        """Call before the page's widgets. Returns the error messages shown (empty: the link was fine or absent)."""
        query = {n: st.query_params[n] for n in self._names() if n in st.query_params}
        last = st.session_state.get(self._published)
        if not query:
            if not last or all(key in st.session_state for key in self.keys.values()):
                return []
            query = last  # back after a page switch, which dropped the widgets' state: the page's last settings
        elif query == last:
            return []
        values, errors = pagelinks.read(self.page, query)
        st.session_state[self._published] = query  # applied once: the widgets own the values from now on
        for name, key in self.keys.items():
            st.session_state[key] = values[name]
        if self._load is not None:
            self._load({n: v for n, v in values.items() if n not in self.keys})
        messages = [error_text(e) for e in errors]
        if messages:
            st.warning(t("link.bad") + "\n\n" + "\n".join(f"- {m}" for m in messages), icon=":material/link_off:")
        return messages

    def values(self) -> dict[str, Any]:
        """The page's current settings, as link values."""
        values = {p.name: p.default for p in self.params}
        for name, key in self.keys.items():
            if key in st.session_state:
                values[name] = st.session_state[key]
        if self._save is not None:
            values.update(self._save())
        return values

    def query(self) -> dict[str, str]:
        return links.write(self.values(), self.params)

    def publish(self) -> None:
        """Call after the page's widgets: the URL shows the page's settings (and keeps ?lang)."""
        wanted = self.query()
        for name in list(st.query_params):
            if name not in KEEP and name not in wanted:
                del st.query_params[name]
        for name, value in wanted.items():
            if st.query_params.get(name) != value:
                st.query_params[name] = value
        st.session_state[self._published] = wanted

    def url(self) -> str:
        """The full link (scheme, host and path from the browser; relative where no browser told us)."""
        query = dict(self.query())
        if st.query_params.get("lang"):
            query = {"lang": st.query_params["lang"], **query}
        base = (st.context.url or "").rstrip("/")
        if base.endswith(f"/{self.page}"):  # the browser's URL may already name this page
            base = base[: -len(self.page) - 1]
        return f"{base}/{self.page}" + (f"?{urlencode(query)}" if query else "")

    def copy_button(self) -> None:
        """A popover with the page's link (the code box has a copy icon) and what it carries."""
        with st.popover(t("link.copy"), icon=":material/link:"):
            st.code(self.url(), language=None, wrap_lines=True)
            st.caption(t("link.copy_help"))
