"""A browserless Streamlit 1.67 client: one websocket session that behaves like one browser tab.

It speaks the protocol the bundled frontend speaks (read from streamlit/static and the server in
site-packages), so a load test can open many sessions from one process:

- Connect to ``ws://host:port/_stcore/stream`` with subprotocol ``streamlit`` (the second and third
  entries of Sec-WebSocket-Protocol, an XSRF token and a session id to resume, are only used by
  the browser for auth cookies and reconnects; a fresh tab sends neither), the same-origin Origin
  header a page of the server would send, and the permessage-deflate offer a browser makes (the
  server declines it unless `server.enableWebsocketCompression`). 1.67 serves with Starlette/uvicorn
  (Tornado is gone); the route and the handshake are in web/server/starlette/starlette_websocket.py.
- Every script run is asked for with a ``BackMsg.rerun_script`` (a ``ClientState``): the first one
  carries the URL's query string and path (``page_name``); later ones carry the page's
  ``page_script_hash`` (from the ``navigation`` message) and the query string the server last set
  (``page_info_changed``).
- The server answers each run with ``new_session`` (its run id and, for a fragment run, the
  fragment ids in ``metadata.run``), then deltas, then ``script_finished``.
- Widgets are found by their keys: a keyed widget's id is ``$$ID-<hash>-<user key>``; a form's
  submit button has ``is_form_submitter`` and ``form_id`` = the form's key. A click is a
  ``WidgetState`` with ``trigger_value=True``; a widget inside a fragment is sent as a rerun of that
  fragment (``ClientState.fragment_id``), as the browser does. Widgets the client did not touch are
  not sent: the server keeps their previous values (``SessionState._old_state``), which for a
  freshly drawn page are the page's defaults.
- ``st.fragment(run_every=...)``: the server only announces it (``ForwardMsg.auto_rerun``: interval,
  fragment id). The browser (``handleAutoRerun`` in the bundle) then calls ``setInterval`` and asks
  for a fragment rerun (``is_auto_rerun=True``) on every tick, **whether or not the previous run has
  finished**; it drops every timer when a full run starts or the page changes, and one timer when
  ``stop_auto_rerun`` names it. ``auto_rerun="browser"`` imitates exactly that;
  ``auto_rerun="gated"`` skips a tick while that fragment's last run is still going (what a
  well-behaved client could do; useful to tell server-side queuing from client pile-up).
- Cacheable messages are kept like the browser's ForwardMsgCache (hashes sent back in
  ``cached_message_hashes``, dropped after ``max_cached_message_age`` runs), so the server may send
  ``ref_hash`` references, resolved here.

Nothing here imports the app or torch; only ``streamlit.proto`` and ``websockets`` (both installed
with streamlit).
"""
from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import streamlit  # noqa: F401  (import the package first: streamlit.proto relies on it being initialised)
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

STREAM_PATH = "/_stcore/stream"
ID_PREFIX = "$$ID"
FINISHED_OK = ForwardMsg.FINISHED_SUCCESSFULLY
FINISHED_COMPILE_ERROR = ForwardMsg.FINISHED_WITH_COMPILE_ERROR
FINISHED_EARLY = ForwardMsg.FINISHED_EARLY_FOR_RERUN
FINISHED_FRAGMENT_OK = ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
STATUS_NAMES = {v: ForwardMsg.ScriptFinishedStatus.Name(v) for v in ForwardMsg.ScriptFinishedStatus.values()}
TEXT_FIELDS = ("body", "text", "label", "message", "title", "value")
MAX_RECORDED_ELEMENTS = 2000  # per run: bounds memory on pages with many elements


class ClientError(Exception):
    """The session could not do what was asked (closed socket, no such widget, timeout)."""


class RunTimeout(ClientError):
    pass


def user_key(element_id: str) -> str | None:
    """The user key in a widget id `$$ID-<hash>-<key>` (None for an unkeyed widget)."""
    if not element_id.startswith(ID_PREFIX):
        return None
    key = element_id.split("-", 2)[-1]
    return None if key == "None" else key


def ws_url(base_url: str) -> str:
    parts = urlsplit(base_url if "://" in base_url else f"http://{base_url}")
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{STREAM_PATH}"


def _origin(base_url: str) -> str:
    """The Origin a browser sends from a page of this server (same origin: accepted without XSRF)."""
    parts = urlsplit(base_url if "://" in base_url else f"http://{base_url}")
    return f"{parts.scheme or 'http'}://{parts.netloc}"


@dataclass
class Widget:
    id: str
    kind: str  # the Element oneof name: button, number_input, selectbox, ...
    proto: Any
    form_id: str
    fragment_id: str


@dataclass
class Shown:
    """One element as the session received it (kept small: kind, a text, where it went)."""
    kind: str
    text: str
    fragment_id: str
    alert_format: int = 0  # Alert.Format for kind == "alert" (ERROR 1, WARNING 2, INFO 3, SUCCESS 4)
    at: float = 0.0


@dataclass
class Run:
    """One script run as the client saw it, from `new_session` to `script_finished`."""
    run_id: str
    fragment_ids: tuple[str, ...]
    page_hash: str
    started: float  # monotonic time of its new_session
    request_seq: int  # how many full-run requests had been sent when it started
    finished: float | None = None
    status: int | None = None
    deltas: int = 0
    fragment_deltas: int = 0
    first_delta: float | None = None
    last_delta: float | None = None
    elements: list[Shown] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)

    @property
    def is_fragment_run(self) -> bool:
        return bool(self.fragment_ids)

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, "UNFINISHED") if self.status is not None else "UNFINISHED"


def _table_text(el: Any, max_rows: int = 200) -> str:
    """The cells of a st.dataframe / st.table (Arrow IPC) as one string: 'a | b | c'."""
    try:
        import pyarrow as pa  # installed with streamlit

        table = pa.ipc.open_stream(el.arrow_data.data).read_all()
        rows = table.slice(0, max_rows).to_pylist()
    except Exception:  # noqa: BLE001 - an undecodable table has no text for us
        return ""
    return " | ".join(str(v) for row in rows for v in row.values())


def _element_text(kind: str, el: Any) -> str:
    if kind in ("dataframe", "table") and hasattr(el, "arrow_data"):
        return _table_text(el)
    parts = []
    for name in TEXT_FIELDS:
        value = getattr(el, name, None)
        if isinstance(value, str) and value:
            parts.append(value)
    return " ".join(parts)


# ---- what a fresh browser downloads before it opens the websocket --------------------------------------
ASSET_RE = re.compile(r'(?:src|href)="\./((?:static/|favicon)[^"]+)"')
BROWSER_ACCEPT_ENCODING = "gzip, deflate, br, zstd"


async def _http_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str,
                    path: str) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 GET on a kept-alive connection: (status, body, server closes)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: {BROWSER_ACCEPT_ENCODING}\r\n"
                 "Connection: keep-alive\r\n\r\n".encode("latin-1"))
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ClientError(f"GET {path}: connection closed")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    for _ in range(200):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        for _ in range(1_000_000):
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                break
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        body = b"".join(chunks)
    else:
        body = await reader.read()
        return status, body, True
    return status, body, headers.get("connection", "").lower() == "close"


async def fetch_assets(base_url: str, connections: int = 6, timeout: float = 60.0) -> tuple[int, int, list[str]]:
    """Download what a fresh browser tab loads before its websocket: index.html, the scripts, styles and font it
    names, `/_stcore/health` and `/_stcore/host-config`, over `connections` kept-alive HTTP/1.1 connections (a
    browser opens six per host). Returns (files, bytes, problems)."""
    parts = urlsplit(base_url if "://" in base_url else f"http://{base_url}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    prefix = parts.path.rstrip("/")
    problems: list[str] = []

    async def get_all(paths: list[str]) -> tuple[int, int, list[bytes]]:
        files = size = 0
        bodies: list[bytes] = []
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for path in paths:
                status, body, closes = await _http_get(reader, writer, parts.netloc, path)
                files, size = files + 1, size + len(body)
                bodies.append(body)
                if status >= 400:
                    problems.append(f"GET {path}: HTTP {status}")
                if closes:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()
        return files, size, bodies

    async def run() -> tuple[int, int, list[str]]:
        files, size, (index,) = await get_all([f"{prefix}/"])
        names = list(dict.fromkeys(ASSET_RE.findall(index.decode("utf-8", "replace"))))
        paths = [f"{prefix}/{n}" for n in names] + [f"{prefix}/_stcore/health", f"{prefix}/_stcore/host-config"]
        shares = [paths[i::connections] for i in range(connections) if paths[i::connections]]
        for f, b, _ in await asyncio.gather(*(get_all(share) for share in shares)):
            files, size = files + f, size + b
        return files, size, problems

    return await asyncio.wait_for(run(), timeout)


class Session:
    """One browser tab. Use `await s.open()`, `await s.goto("train")`, `await s.submit_form(...)`, `await s.close()`.

    Listeners: `on_run_finished(session, run)` after every run; `on_element(session, run, shown)` per element.
    Every wait is bounded by its `timeout`.
    """

    def __init__(self, base_url: str, query_string: str = "", *, auto_rerun: str = "browser",
                 on_run_finished: Callable[[Session, Run], None] | None = None,
                 on_element: Callable[[Session, Run, Shown], None] | None = None,
                 open_timeout: float = 30.0) -> None:
        if auto_rerun not in ("browser", "gated", "off"):
            raise ValueError("auto_rerun must be 'browser', 'gated' or 'off'")
        self.base_url = base_url
        self.query_string = query_string
        self.auto_rerun_mode = auto_rerun
        self.on_run_finished = on_run_finished
        self.on_element = on_element
        self.open_timeout = open_timeout
        self.ws: Any = None
        self.session_id = ""
        self.pages: dict[str, str] = {}  # url_pathname ('' = default page) -> page_script_hash
        self.page_names: dict[str, str] = {}  # page_script_hash -> title
        self.current_page_hash = ""
        self.widgets: dict[str, Widget] = {}  # user key -> widget, for the page shown now
        self.current: Run | None = None
        self.last_full_run: Run | None = None
        self.closed = False
        self.closed_by_client = False
        self.close_reason = ""  # set when the connection ended without close() from us
        self.messages = 0
        self.bytes = 0
        self.fragment_requests = 0
        self.fragment_runs_early = 0
        self._requests = 0  # full-run requests sent
        self._finished = asyncio.Condition()
        self._receiver: asyncio.Task | None = None
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}
        self._fragment_in_flight: dict[str, bool] = {}
        self._cache: dict[str, tuple[bytes, int, str]] = {}  # hash -> (message, run count, fragment id)
        self._last_fragment_run: dict[str, Run] = {}
        self._run_count = 0
        self._max_age = 2

    # ---- connection ---------------------------------------------------------------------------------
    async def open(self, page: str = "", timeout: float = 60.0) -> Run:
        """Connect (a fresh tab on URL path `page`) and wait for the first full run to finish."""
        # Like a browser: same-origin Origin, permessage-deflate offered (websockets' default), no pings.
        connect = websockets.connect(ws_url(self.base_url), subprotocols=["streamlit"], max_size=None,
                                     origin=_origin(self.base_url), ping_interval=None,
                                     open_timeout=self.open_timeout)
        self.ws = await asyncio.wait_for(connect, timeout=min(timeout, self.open_timeout))
        self._receiver = asyncio.create_task(self._receive())
        # A fresh tab asks for the page in its URL path; the server picks the page by name.
        return await self._full_run(self._client_state(page_name=page), page_hash=None, timeout=timeout)

    async def close(self) -> None:
        self.closed_by_client = not self.closed
        self.closed = True
        self._clear_timers()
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:  # noqa: BLE001 - closing a broken socket: nothing more to do
                pass
        if self._receiver is not None:
            self._receiver.cancel()
            try:
                await self._receiver
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass

    # ---- actions ------------------------------------------------------------------------------------
    async def goto(self, page: str, timeout: float = 60.0) -> Run:
        """Switch page like a click in the sidebar navigation (`page` = url path: 'train', '' for home)."""
        if page not in self.pages:
            raise ClientError(f"no page {page!r} in the app's navigation ({sorted(self.pages)})")
        page_hash = self.pages[page]
        self._clear_timers()  # onPageChange: cleanupAutoReruns()
        self.current_page_hash = page_hash
        return await self._full_run(self._client_state(page_hash=page_hash), page_hash=page_hash, timeout=timeout)

    async def rerun(self, timeout: float = 60.0) -> Run:
        return await self._full_run(self._client_state(page_hash=self.current_page_hash), page_hash=None,
                                    timeout=timeout)

    def find(self, key: str) -> Widget:
        widget = self.widgets.get(key)
        if widget is None:
            raise ClientError(f"no widget with key {key!r} on this page")
        return widget

    def form_submitter(self, form_key: str) -> Widget:
        for widget in self.widgets.values():
            if widget.kind == "button" and widget.proto.is_form_submitter and widget.form_id == form_key:
                return widget
        raise ClientError(f"no submit button for form {form_key!r} on this page")

    async def submit_form(self, form_key: str, values: dict[str, Any] | None = None, timeout: float = 60.0) -> Run:
        """Press the form's submit button, sending `values` ({widget key: value}) for its widgets."""
        submit = self.form_submitter(form_key)
        states = [self._widget_state(self.find(k), v) for k, v in (values or {}).items()]
        states.append(WidgetState(id=submit.id, trigger_value=True))
        if submit.fragment_id:
            return await self._fragment_request(submit.fragment_id, states, timeout=timeout)
        return await self._full_run(self._client_state(page_hash=self.current_page_hash, states=states),
                                    page_hash=None, timeout=timeout)

    async def click(self, key: str, timeout: float = 60.0) -> Run:
        """Click the button with this key (a fragment rerun when the button lives in a fragment)."""
        button = self.find(key)
        state = WidgetState(id=button.id, trigger_value=True)
        if button.fragment_id:
            return await self._fragment_request(button.fragment_id, [state], timeout=timeout)
        return await self._full_run(self._client_state(page_hash=self.current_page_hash, states=[state]),
                                    page_hash=None, timeout=timeout)

    @staticmethod
    def _widget_state(widget: Widget, value: Any) -> WidgetState:
        state = WidgetState(id=widget.id)
        if widget.kind == "number_input":
            if widget.proto.data_type == widget.proto.INT:
                state.int_value = int(value)
            else:
                state.double_value = float(value)
        elif widget.kind in ("checkbox", "toggle"):
            state.bool_value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        elif widget.kind in ("text_input", "text_area", "selectbox", "radio"):
            state.string_value = str(value)
        else:
            raise ClientError(f"setting a {widget.kind} ({user_key(widget.id)}) is not supported")
        return state

    # ---- requests -----------------------------------------------------------------------------------
    def _client_state(self, *, page_hash: str = "", page_name: str = "", fragment_id: str = "",
                      auto: bool = False, states: list[WidgetState] | None = None) -> BackMsg:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query_string
        cs.page_script_hash = page_hash
        cs.page_name = page_name
        cs.fragment_id = fragment_id
        cs.is_auto_rerun = auto
        cs.widget_states.widgets.extend(states or [])
        cs.cached_message_hashes.extend(self._cache.keys())
        cs.context_info.timezone = "UTC"
        cs.context_info.timezone_offset = 0
        cs.context_info.locale = "en-US"
        cs.context_info.url = f"{self.base_url.rstrip('/')}/{page_name}" + (
            f"?{self.query_string}" if self.query_string else "")
        cs.context_info.is_embedded = False
        return msg

    async def _send(self, msg: BackMsg) -> None:
        if self.closed or self.ws is None:
            raise ClientError("session closed" + (f": {self.close_reason}" if self.close_reason else ""))
        await self.ws.send(msg.SerializeToString())

    async def _full_run(self, msg: BackMsg, *, page_hash: str | None, timeout: float) -> Run:
        self._requests += 1
        seq = self._requests
        await self._send(msg)

        def done() -> Run | None:
            run = self.last_full_run
            if run is not None and run.request_seq >= seq and run.status not in (None, FINISHED_EARLY) and (
                    page_hash is None or run.page_hash == page_hash):
                return run
            return None

        return await self._wait(done, timeout)

    async def _fragment_request(self, fragment_id: str, states: list[WidgetState], timeout: float) -> Run:
        sent_at = time.monotonic()
        await self._send(self._client_state(page_hash=self.current_page_hash, fragment_id=fragment_id,
                                            states=states))
        self._fragment_in_flight[fragment_id] = True

        def done() -> Run | None:
            run = self._last_fragment_run.get(fragment_id)
            if run is not None and run.started >= sent_at and run.status not in (None, FINISHED_EARLY):
                return run
            full = self.last_full_run  # the click may have led to a full rerun (st.rerun)
            if full is not None and full.started >= sent_at and full.status not in (None, FINISHED_EARLY):
                return full
            return None

        return await self._wait(done, timeout)

    async def _wait(self, done: Callable[[], Run | None], timeout: float) -> Run:
        deadline = time.monotonic() + max(0.0, timeout)
        async with self._finished:
            while True:
                run = done()
                if run is not None:
                    return run
                if self.closed:
                    raise ClientError("session closed" + (f": {self.close_reason}" if self.close_reason else ""))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RunTimeout(f"no finished run within {timeout:.0f} s")
                try:
                    await asyncio.wait_for(self._finished.wait(), left)
                except TimeoutError:
                    pass

    # ---- auto-rerun fragments (st.fragment(run_every=...)) -------------------------------------------
    def _set_timer(self, fragment_id: str, interval: float) -> None:
        if self.auto_rerun_mode == "off" or interval <= 0:
            return
        old = self._timers.get(fragment_id)
        if old is not None and old[0] == interval:
            return  # the browser keeps a running timer with the same interval
        self._clear_timer(fragment_id)
        self._timers[fragment_id] = (interval, asyncio.create_task(self._tick(fragment_id, interval)))

    def _clear_timer(self, fragment_id: str) -> None:
        entry = self._timers.pop(fragment_id, None)
        if entry is not None:
            entry[1].cancel()

    def _clear_timers(self) -> None:
        for fragment_id in list(self._timers):
            self._clear_timer(fragment_id)

    async def _tick(self, fragment_id: str, interval: float) -> None:
        # setInterval: fires every `interval` seconds from when it was set. Ends when cancelled or closed.
        next_at = time.monotonic() + interval
        while not self.closed:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            if next_at < time.monotonic():  # a stalled event loop: the browser does not catch up either
                next_at = time.monotonic() + interval
            if self.auto_rerun_mode == "gated" and self._fragment_in_flight.get(fragment_id):
                continue
            self.fragment_requests += 1
            self._fragment_in_flight[fragment_id] = True
            try:
                await self._send(self._client_state(page_hash=self.current_page_hash, fragment_id=fragment_id,
                                                    auto=True))
            except Exception:  # noqa: BLE001 - the socket went away: the receiver records why
                return

    # ---- receiving ----------------------------------------------------------------------------------
    async def _receive(self) -> None:
        try:
            async for data in self.ws:
                if isinstance(data, str):
                    continue
                self.messages += 1
                self.bytes += len(data)
                msg = ForwardMsg()
                msg.ParseFromString(data)
                msg = self._resolve(msg, data)
                if msg is not None:
                    await self._handle(msg)
            if not self.closed_by_client:
                self.close_reason = self.close_reason or "closed by the server"
        except asyncio.CancelledError:
            raise
        except websockets.ConnectionClosed as exc:
            if not self.closed_by_client:
                self.close_reason = f"connection closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
        except Exception as exc:  # noqa: BLE001 - any protocol surprise ends the tab, and is reported
            self.close_reason = f"{type(exc).__name__}: {exc}"
        finally:
            if not self.closed:
                self.closed = True
                self._clear_timers()
            async with self._finished:
                self._finished.notify_all()

    def _resolve(self, msg: ForwardMsg, data: bytes) -> ForwardMsg | None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            cached = self._cache.get(msg.ref_hash)
            if cached is None:
                raise ClientError(f"cached message {msg.ref_hash} missing")
            full = ForwardMsg()
            full.ParseFromString(cached[0])
            full.metadata.CopyFrom(msg.metadata)
            self._cache[msg.ref_hash] = (cached[0], self._run_count, cached[2])
            return full
        if msg.metadata.cacheable and msg.hash and msg.hash not in self._cache:
            self._cache[msg.hash] = (data, self._run_count, msg.delta.fragment_id if kind == "delta" else "")
        return msg

    async def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        now = time.monotonic()
        if kind == "script_finished":
            await self._on_finished(msg.script_finished, now)
        elif kind == "delta":
            self._on_delta(msg, now)
        elif kind == "new_session":
            self._on_new_session(msg, now)
        elif kind == "navigation":
            nav = msg.navigation
            self.pages = {p.url_pathname: p.page_script_hash for p in nav.app_pages}
            self.page_names = {p.page_script_hash: p.page_name for p in nav.app_pages}
            self.current_page_hash = nav.page_script_hash or self.current_page_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string  # the browser's URL follows st.query_params
        elif kind == "auto_rerun":
            self._set_timer(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids:
                self._clear_timer(fragment_id)

    def _on_new_session(self, msg: ForwardMsg, now: float) -> None:
        ns = msg.new_session
        self.session_id = ns.initialize.session_id or self.session_id
        self._max_age = ns.config.max_cached_message_age or self._max_age
        fragment_ids = tuple(msg.metadata.run.fragment_ids)
        if not fragment_ids:
            self._clear_timers()  # handleNewSession: a full run drops every auto-rerun timer
            self.widgets = {}
            self.current_page_hash = ns.page_script_hash or self.current_page_hash
        self.current = Run(run_id=msg.metadata.run.script_run_id, fragment_ids=fragment_ids,
                           page_hash=ns.page_script_hash, started=now, request_seq=self._requests)

    def _on_delta(self, msg: ForwardMsg, now: float) -> None:
        run = self.current
        if run is None:
            return
        delta = msg.delta
        run.deltas += 1
        run.first_delta = run.first_delta or now
        run.last_delta = now
        if delta.fragment_id:
            run.fragment_deltas += 1
        if delta.WhichOneof("type") != "new_element":
            return
        element = delta.new_element
        el_kind = element.WhichOneof("type")
        if el_kind is None:
            return
        el = getattr(element, el_kind)
        element_id = getattr(el, "id", "")
        if isinstance(element_id, str) and element_id:
            key = user_key(element_id) or element_id
            self.widgets[key] = Widget(id=element_id, kind=el_kind, proto=el,
                                       form_id=getattr(el, "form_id", "") or "", fragment_id=delta.fragment_id)
        if el_kind == "exception":
            first = (el.message or "").strip().splitlines()
            run.exceptions.append(f"{el.type}: {first[0] if first else ''}"[:300])
        shown = Shown(kind=el_kind, text=_element_text(el_kind, el), fragment_id=delta.fragment_id,
                      alert_format=el.format if el_kind == "alert" else 0, at=now)
        if len(run.elements) < MAX_RECORDED_ELEMENTS:
            run.elements.append(shown)
        if self.on_element is not None:
            self.on_element(self, run, shown)

    async def _on_finished(self, status: int, now: float) -> None:
        run = self.current
        if run is None:
            return
        run.finished, run.status = now, status
        self.current = None
        if run.is_fragment_run:
            for fragment_id in run.fragment_ids:
                self._fragment_in_flight[fragment_id] = False
                self._last_fragment_run[fragment_id] = run
            if status == FINISHED_EARLY:
                self.fragment_runs_early += 1
        else:
            self._fragment_in_flight.clear()
            self.last_full_run = run
        if status != FINISHED_EARLY:  # the browser ages its message cache only on runs that finished
            self._run_count += 1
            for h, (_, count, fragment_id) in list(self._cache.items()):
                if run.is_fragment_run and (not fragment_id or fragment_id not in run.fragment_ids):
                    continue
                if self._run_count - count > self._max_age:
                    del self._cache[h]
        if self.on_run_finished is not None:
            self.on_run_finished(self, run)
        async with self._finished:
            self._finished.notify_all()
