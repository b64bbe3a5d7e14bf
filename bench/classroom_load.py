"""A classroom on one server: N simulated students over Streamlit's own websocket, K of them training.

    python bench/classroom_load.py --start-server --students 30 --trainers 4 --duration 240
    python bench/classroom_load.py --url http://127.0.0.1:8501 --students 5 --trainers 1 --duration 60

Each student is a fresh browser tab without a browser (bench/st_client.py): it opens the link
(`?lang=en` or `?lang=zh`, drawn with a fixed seed), waits for the first script run to finish
(a *page load*: connect → `script_finished`), then moves between pages (`--pages`) with think
time, every page switch timed the same way. The first `--trainers` students go to the Train page,
set `--train-overrides` in the form `train.form` (widgets found by their keys) and press its submit
button, then keep the page open and follow its live fragment exactly as the browser does
(`st.fragment(run_every=...)` is re-requested by the client on a timer; see st_client.py). For
them it records the time to a queue position or the first progress, the gaps between live
updates, and whether the run finished (the page's done message, or a finished row in the runs
table) within `--duration`. Exceptions shown on any page count as errors (first lines printed).

The server's process tree (the Streamlit process and every child, e.g. training workers) is sampled
once a second from /proc: RSS (sum) and CPU %. A final line `RESULT {...}` holds every figure.

Data (`--start-server`): the server gets a temporary TORCH_CLASSROOM_DATA into which the dataset
files of `--data-from` are hard-linked. `--data-from` defaults to
$TORCH_CLASSROOM_DATA, else ./data if it holds datasets, else ~/.cache/torch-classroom/bench-data.
(Across file systems the files are symbolic links: the server only reads dataset files that exist.)
If the default dataset is not there yet it is generated into `--data-from` first (Shapes-10 full,
about a minute on 2 cores, once per machine), so no student's page load includes it. Datasets the
server creates during the run are moved back to `--data-from` at the end; the temporary folder is
removed. `--data-dir DIR` uses DIR as it is instead (nothing linked, nothing removed).

Traffic goes to 127.0.0.1/localhost only; every loop is bounded by count and time; the server is
stopped by its PID (and any children still alive, by theirs) in a `finally`. This is a benchmark,
not a timed test: the machine it runs on is shared, so quote figures with the load they ran under.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.st_client import (  # noqa: E402
    FINISHED_COMPILE_ERROR, ClientError, Run, RunTimeout, Session, Shown, fetch_assets,
)

PAGES = ("home", "data", "layers", "model", "train", "save", "predict")
PAGE_PATHS = {"home": ""}  # url path of each page; others are their own name
TRAIN_PAGE = "train"
TRAIN_FORM = "train.form"
STOP_KEY = "train.stop_button"
DEFAULT_DATASET = "shapes10-full"  # used only when ui.state cannot tell (prepare_data)
BENCH_CACHE = Path.home() / ".cache" / "torch-classroom" / "bench-data"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
DONE_STATUSES = ("finished", "stopped", "diverged", "failed")


# ---- what the Train page says, in both languages, from its own catalogs ---------------------------------
def _template_regex(template: str) -> re.Pattern[str]:
    """'you are number {position} ({running} …' → a regex with a named group per parameter."""
    out, seen = [], set()
    for literal, name in re.findall(r"([^{]*)(?:\{([a-zA-Z_]\w*)[^}]*\}|$)", template):
        out.append(re.escape(literal))
        if name:
            out.append(f"(?P<{name}>.*?)" if name not in seen else ".*?")
            seen.add(name)
    return re.compile("".join(out), re.DOTALL)


class Matchers:
    """Recognises the Train page's queue / running / done messages by their catalog keys, not their wording."""

    def __init__(self, root: Path = ROOT) -> None:
        catalog: dict[str, dict[str, str]] = {}
        for path in sorted((root / "locales").glob("*.json")):
            try:
                catalog.update(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        texts = lambda key: [v for v in catalog.get(key, {}).values() if isinstance(v, str) and v]  # noqa: E731
        self.queue = [_template_regex(x) for k in catalog if k.startswith("train.") and "queue" in k
                      for x in texts(k)]
        self.queue_fallback = re.compile(r"\bqueue\b|排队", re.IGNORECASE)
        self.running = [_template_regex(x) for k in ("train.running", "train.progress") for x in texts(k)]
        self.progress = [_template_regex(x) for x in texts("train.progress")]
        self.done = [(k.rsplit(".", 1)[-1], _template_regex(x)) for k in catalog
                     if k.startswith("train.done.") for x in texts(k)]
        self.table_status = {x: s for s in DONE_STATUSES for x in texts(f"train.status.{s}")}

    def queue_position(self, text: str) -> int | None:
        """The queue position shown in `text` (0 when it is a queue message without a number); None if not one."""
        for rx in self.queue:
            m = rx.search(text)
            if m:
                pos = m.groupdict().get("position")
                return int(pos) if pos and pos.strip().isdigit() else 0
        # Only when the catalogs name no queue message: the zh limits line ("…个在排队") is not one.
        return 0 if not self.queue and self.queue_fallback.search(text) else None

    def steps_done(self, text: str) -> int | None:
        """The `{step}` of the page's progress line ('… total_train_step 10/16 …'), or None."""
        for rx in self.progress:
            m = rx.search(text)
            step = m.groupdict().get("step") if m else None
            if step and step.strip().isdigit():
                return int(step)
        return None

    def is_running(self, shown: Shown) -> bool:
        return shown.kind == "progress" or any(rx.search(shown.text) for rx in self.running)

    def done_status(self, shown: Shown) -> str | None:
        if shown.kind == "alert":
            for status, rx in self.done:
                if rx.search(shown.text):
                    return status
        if shown.kind in ("dataframe", "table") and shown.text:
            cells = {c.strip() for c in shown.text.split("|")}
            for text, status in self.table_status.items():
                if text in cells:
                    return f"{status} (runs table)"
        return None


# ---- statistics ---------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": _r(pct(values, 50)), "p95": _r(pct(values, 95)),
            "max": _r(max(values) if values else None)}


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def fmt(s: dict[str, Any], unit: str = "s") -> str:
    if not s["n"]:
        return "–"
    return f"p50 {s['p50']:.2f} / p95 {s['p95']:.2f} / max {s['max']:.2f} {unit} (n={s['n']})"


# ---- the server's process tree from /proc ---------------------------------------------------------------
def _proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, cpu ticks incl. reaped children, rss bytes) of a process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    ppid = int(fields[1])
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ppid, ticks, int(statm[1]) * PAGE_SIZE


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[19])  # field 22: starttime


def process_tree(root: int) -> dict[int, tuple[int, int]]:
    """{pid: (cpu ticks, rss bytes)} for `root` and all its descendants alive now."""
    stats: dict[int, tuple[int, int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st is not None:
                stats[int(entry)] = st
    if root not in stats:
        return {}
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _, _) in stats.items():
        children[ppid].append(pid)
    tree, todo = {}, [root]
    while todo and len(tree) < 10_000:
        pid = todo.pop()
        if pid in stats and pid not in tree:
            tree[pid] = stats[pid][1:]
            todo.extend(children.get(pid, ()))
    return tree


def _pss(pid: int) -> int | None:
    """Proportional set size in bytes (shared pages split between the processes sharing them), or None."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class Sampler(threading.Thread):
    """Once a second: RSS (sum over the tree) and CPU % of the server process tree."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        super().__init__(daemon=True, name="server-sampler")
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int, float, int]] = []  # (t, rss bytes, cpu %, processes)
        self.pss: list[int] = []  # the tree's PSS per sample: RSS counts shared library pages once per process
        self._halt = threading.Event()

    def run(self) -> None:
        prev: tuple[float, int] | None = None
        while not self._halt.is_set():
            now = time.monotonic()
            tree = process_tree(self.pid)
            if not tree:
                break
            ticks = sum(t for t, _ in tree.values())
            # A child that ended and was reaped moved its ticks into its parent's cutime: no double count.
            # One that ended but is not reaped yet drops out for a sample: clamp at 0.
            rss = sum(r for _, r in tree.values())
            cpu = 0.0 if prev is None else max(0.0, (ticks - prev[1]) / CLK_TCK / (now - prev[0]) * 100)
            self.samples.append((now, rss, cpu, len(tree)))
            pss = [_pss(pid) for pid in tree]
            if all(x is not None for x in pss):
                self.pss.append(sum(pss))
            prev = (now, ticks)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def report(self, since: float | None = None) -> dict[str, Any]:
        s = [x for x in self.samples if since is None or x[0] >= since] or self.samples
        if not s:
            return {"samples": 0}
        mib = 1024 * 1024
        cpus = [c for _, _, c, _ in s[1:]] or [0.0]
        first = [x[1] for x in s if x[0] - s[0][0] < 60]
        last = [x[1] for x in s if s[-1][0] - x[0] < 60]
        return {"samples": len(s), "rss_start_mib": round(s[0][1] / mib, 1),
                # flat memory over a long class: the first minute's mean against the last minute's
                "rss_first_minute_mib": round(sum(first) / len(first) / mib, 1),
                "rss_last_minute_mib": round(sum(last) / len(last) / mib, 1),
                "rss_max_mib": round(max(x[1] for x in s) / mib, 1), "rss_end_mib": round(s[-1][1] / mib, 1),
                "cpu_mean_pct": round(sum(cpus) / len(cpus), 1), "cpu_max_pct": round(max(cpus), 1),
                "processes_max": max(x[3] for x in s),
                "pss_max_mib": round(max(self.pss) / mib, 1) if self.pss else None,
                "pss_end_mib": round(self.pss[-1] / mib, 1) if self.pss else None}


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP `port` (state 0A in /proc/net/tcp and tcp6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for cols in (line.split() for line in lines):
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    return inodes


def find_listener_pid(port: int) -> int | None:
    """The PID listening on TCP `port`, or None (a server we did not start: sample it if we can see it)."""
    inodes = _listening_inodes(port)
    for entry in os.listdir("/proc") if inodes else ():
        if not entry.isdigit():
            continue
        try:
            links = [os.readlink(f"/proc/{entry}/fd/{fd}") for fd in os.listdir(f"/proc/{entry}/fd")]
        except OSError:
            continue
        if any(link.startswith("socket:[") and link[8:-1] in inodes for link in links):
            return int(entry)
    return None


# ---- data and the server -----------------------------------------------------------------------------
def default_data_from(app_dir: Path = ROOT) -> Path:
    """$TORCH_CLASSROOM_DATA, else the app's ./data if it holds datasets (*.pt), else the bench cache."""
    env = os.environ.get("TORCH_CLASSROOM_DATA")
    if env:
        return Path(env).expanduser().resolve()
    local = app_dir / "data"
    if local.is_dir() and next(local.rglob("*.pt"), None) is not None:
        return local.resolve()
    return BENCH_CACHE


def default_dataset(app_dir: Path = ROOT) -> str:
    """The app's default dataset name, read from ui/state.py's text (no import: this process stays light)."""
    try:
        m = re.search(r'^DEFAULT_DATASET\s*=\s*["\']([\w.-]+)["\']', (app_dir / "ui" / "state.py").read_text(), re.M)
    except OSError:
        m = None
    return m.group(1) if m else DEFAULT_DATASET


def prepare_data(source: Path, app_dir: Path = ROOT, timeout: float = 900) -> None:
    """Make sure the app's default dataset is in `source`: generated once, in a subprocess running the app's code."""
    name = default_dataset(app_dir)
    if all(next(source.rglob(f"{name}-*-{split}.pt"), None) is not None for split in ("train", "test")):
        return  # already there (Shapes-10 files are <name>-v<version>-seed<seed>-<split>.pt)
    source.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from dl_core.datasets import is_prepared, load_dataset\n"
        "name, root = sys.argv[1], Path(sys.argv[2])\n"
        "for train in (True, False):\n"
        "    if not is_prepared(name, train, root=root):\n"
        "        print(f'preparing {name} ({\"train\" if train else \"test\"}) in {root} (once) ...', flush=True)\n"
        "        load_dataset(name, train, root=root)\n"
    )
    env = {**os.environ, "TORCH_CLASSROOM_DATA": str(source)}
    subprocess.run([sys.executable, "-c", code, name, str(source)], cwd=app_dir, env=env, check=True,
                   timeout=timeout)


def link_tree(src: Path, dst: Path) -> int:
    """Hard-link every file of `src` into `dst` (a symbolic link across file systems: the server only reads
    dataset files that exist, so nothing is copied); returns the number of files."""
    n = 0
    if not src.is_dir():
        return 0
    for path in src.rglob("*"):
        if path.is_file() and not path.name.endswith(".lock"):
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                os.symlink(path.resolve(), target)
            n += 1
    return n


def keep_new_datasets(tmp: Path, source: Path) -> list[str]:
    """Move dataset files the server made in `tmp` back to `source` (so the next run reuses them)."""
    moved = []
    for path in tmp.rglob("*.pt"):
        target = source / path.relative_to(tmp)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), target)
            moved.append(str(target))
    return moved


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen | None, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not become healthy within {timeout:.0f} s")


class Server:
    """`streamlit run streamlit_app.py` on 127.0.0.1:<free port>, stopped by PID (and its children by theirs)."""

    def __init__(self, extra_args: list[str], data_dir: Path, log_path: Path, port: int | None = None,
                 app_dir: Path = ROOT) -> None:
        self.app_dir = app_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args, self.data_dir, self.log_path = extra_args, data_dir, log_path
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 120) -> float:
        cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(self.port),
               "--server.address", "127.0.0.1", "--server.headless", "true",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", *self.extra_args]
        env = {**os.environ, "TORCH_CLASSROOM_DATA": str(self.data_dir)}
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=self.app_dir, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        return wait_healthy(self.url, self.proc, timeout)

    def stop(self) -> None:
        if self.proc is None:
            return
        # Children (e.g. training workers) are remembered with their start time, so a PID reused meanwhile
        # by someone else's process is never signalled.
        children = {pid: _start_time(pid) for pid in process_tree(self.proc.pid) if pid != self.proc.pid}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid, started in sorted(children.items()):  # workers that outlived their server
            if started is not None and _start_time(pid) == started:
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


# ---- the simulated class -------------------------------------------------------------------------------
@dataclass
class PageLoad:
    student: int
    page: str
    seconds: float
    first: bool
    lang: str


@dataclass
class Training:
    student: int
    lang: str
    start_sent: float | None = None
    start_response: float | None = None  # submit → that run finished
    first_queue: float | None = None  # seconds after the submit
    queue_positions: list[int] = field(default_factory=list)
    first_progress: float | None = None  # the page shows the job running (not queued)
    first_step: float | None = None  # the progress line counts at least one step
    done: float | None = None
    done_status: str | None = None
    updates: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, phase) of live updates
    fragment_requests: int = 0
    fragment_runs_early: int = 0
    stopped_at_end: bool = False
    note: str = ""

    def feedback(self) -> float | None:
        options = [x for x in (self.first_queue, self.first_progress) if x is not None]
        return min(options) if options else None


@dataclass
class Stats:
    loads: list[PageLoad] = field(default_factory=list)
    trainings: list[Training] = field(default_factory=list)
    exceptions: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # kind -> count
    error_examples: dict[str, str] = field(default_factory=dict)
    interactions: list[float] = field(default_factory=list)
    assets: list[float] = field(default_factory=list)  # seconds to download index.html + its files
    first_with_assets: list[float] = field(default_factory=list)
    asset_bytes: int = 0
    warmup: float | None = None

    def error(self, kind: str, detail: str = "") -> None:
        self.errors[kind] += 1
        if detail and kind not in self.error_examples:
            self.error_examples[kind] = detail[:300]


@dataclass
class Plan:
    url: str
    students: int
    trainers: int
    duration: float
    ramp: float
    pages: list[str]
    overrides: dict[str, Any]
    think: tuple[float, float]
    page_timeout: float
    grace: float
    seed: int
    auto_rerun: str
    stop_at_end: bool = True
    assets: bool = True
    end_when_trained: bool = False  # end the class (after a last think time) once every trainer's run is done


class Classroom:
    def __init__(self, plan: Plan, matchers: Matchers) -> None:
        self.plan, self.m = plan, matchers
        self.stats = Stats()
        self.t0 = 0.0
        self.end = 0.0  # no new page loads after this
        self.hard_end = 0.0  # every wait ends by this

    def left(self, hard: bool = True) -> float:
        return (self.hard_end if hard else self.end) - time.monotonic()

    def _timeout(self) -> float:
        return max(0.1, min(self.plan.page_timeout, self.left()))

    def _count_run(self, session: Session, run: Run) -> None:
        for text in run.exceptions:
            self.stats.exceptions[text] += 1
        if run.status == FINISHED_COMPILE_ERROR:
            self.stats.error("compile_error", f"page {run.page_hash}")

    async def _timed(self, student: int, lang: str, page: str, first: bool, coro) -> Run | None:
        t = time.monotonic()
        try:
            run = await coro
        except RunTimeout as exc:
            cut = self.left() <= 0.2
            self.stats.error("cut_off_at_end" if cut else "page_timeout", f"{page}: {exc}")
            return None
        except (ClientError, OSError, asyncio.TimeoutError) as exc:
            self.stats.error("websocket" if not isinstance(exc, ClientError) else "client",
                             f"{page}: {type(exc).__name__}: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - e.g. websockets.InvalidStatus: count, keep the class going
            self.stats.error("websocket", f"{page}: {type(exc).__name__}: {exc}")
            return None
        self.stats.loads.append(PageLoad(student, page, time.monotonic() - t, first, lang))
        return run

    def _path(self, page: str) -> str:
        return PAGE_PATHS.get(page, page)

    async def student(self, i: int, trainer: bool) -> None:
        rng = random.Random(self.plan.seed * 1_000 + i)
        lang = rng.choice(("en", "zh"))
        await asyncio.sleep(self.plan.ramp * i / max(1, self.plan.students))
        training = Training(i, lang) if trainer else None
        if training is not None:
            self.stats.trainings.append(training)
        session = Session(self.plan.url, f"lang={lang}", auto_rerun=self.plan.auto_rerun,
                          on_run_finished=lambda s, r: self._on_run(s, r, training),
                          on_element=(lambda s, r, e: self._on_element(s, r, e, training)) if training else None)
        try:
            if self.left(hard=False) <= 0 or not await self._first_load(session, i, lang):
                return
            page = "home"
            if training is not None:
                await asyncio.sleep(rng.uniform(*self.plan.think))
                if await self._timed(i, lang, TRAIN_PAGE, False, session.goto(self._path(TRAIN_PAGE), self._timeout())):
                    page = TRAIN_PAGE
                    await self._train(session, training)
            await self._wander(session, rng, i, lang, page)
        finally:
            if training is not None:
                training.fragment_requests = session.fragment_requests
                training.fragment_runs_early = session.fragment_runs_early
            if session.close_reason:  # the connection ended without us closing it
                self.stats.error("websocket", f"student {i}: {session.close_reason}")
            await session.close()

    async def _first_load(self, session: Session, i: int, lang: str) -> bool:
        """Open the link: the page and its scripts (unless --no-assets), then the websocket's first run."""
        assets = 0.0
        if self.plan.assets:  # a fresh browser first downloads the page and its scripts
            t = time.monotonic()
            try:
                _, size, problems = await fetch_assets(self.plan.url, timeout=self._timeout())
            except (ClientError, OSError, ValueError, asyncio.TimeoutError) as exc:
                self.stats.error("http", f"assets: {type(exc).__name__}: {exc}")
            else:
                assets = time.monotonic() - t
                self.stats.assets.append(assets)
                self.stats.asset_bytes += size
                for problem in problems:
                    self.stats.error("http", problem)
        t = time.monotonic()
        if await self._timed(i, lang, "home", True, session.open("", timeout=self._timeout())) is None:
            return False
        if self.plan.assets:
            self.stats.first_with_assets.append(assets + time.monotonic() - t)
        return True

    async def _wander(self, session: Session, rng: random.Random, i: int, lang: str, page: str) -> None:
        max_moves = int(self.plan.duration / max(0.1, self.plan.think[0])) + 2
        for _ in range(max_moves):
            pause = rng.uniform(*self.plan.think)
            if self.left(hard=False) <= pause or session.closed:
                return
            await asyncio.sleep(pause)
            choices = [p for p in self.plan.pages if p != page] or self.plan.pages
            page = rng.choice(choices)
            if self._path(page) not in session.pages:
                self.stats.error("client", f"no page {page!r} in the navigation")
                continue
            await self._timed(i, lang, page, False, session.goto(self._path(page), self._timeout()))

    async def _train(self, session: Session, tr: Training) -> None:
        tr.start_sent = time.monotonic()
        try:
            await session.submit_form(TRAIN_FORM, self.plan.overrides, timeout=self._timeout())
            tr.start_response = time.monotonic() - tr.start_sent
            self.stats.interactions.append(tr.start_response)
        except RunTimeout as exc:
            self.stats.error("page_timeout", f"start training: {exc}")
        except ClientError as exc:
            tr.note = str(exc)
            self.stats.error("client", f"start training: {exc}")
            tr.start_sent = None
            return
        # Follow the live section until the run is done or the class ends (bounded by both).
        while tr.done is None and self.left(hard=False) > 0 and not session.closed:
            await asyncio.sleep(min(0.5, max(0.05, self.left(hard=False))))
        if tr.done is None and self.plan.stop_at_end and not session.closed:
            try:  # free the server's CPU for whoever runs next: press Stop (a fragment widget) like a student
                await session.click(STOP_KEY, timeout=min(10.0, max(0.5, self.left())))
                tr.stopped_at_end = True
            except (ClientError, RunTimeout):
                pass

    # ---- listeners (called from each session's receiver) ----
    def _on_run(self, session: Session, run: Run, tr: Training | None) -> None:
        self._count_run(session, run)
        if tr is None or tr.start_sent is None or tr.done is not None:
            return
        on_train_page = session.current_page_hash == session.pages.get(TRAIN_PAGE)
        if run.fragment_deltas and run.finished is not None and on_train_page:
            phase = "running" if tr.first_progress is not None else "queued"
            tr.updates.append((run.finished, phase))

    def _on_element(self, session: Session, run: Run, shown: Shown, tr: Training | None) -> None:
        if tr is None or tr.start_sent is None or tr.done is not None:
            return
        since = shown.at - tr.start_sent
        pos = self.m.queue_position(shown.text) if shown.kind in ("alert", "markdown", "text", "progress") else None
        if pos is not None:
            tr.first_queue = tr.first_queue if tr.first_queue is not None else since
            if len(tr.queue_positions) < 1000:
                tr.queue_positions.append(pos)
        if tr.first_progress is None and self.m.is_running(shown):
            tr.first_progress = since
        if tr.first_step is None and (self.m.steps_done(shown.text) or 0) > 0:
            tr.first_step = since
        status = self.m.done_status(shown)
        if status is not None:
            tr.done, tr.done_status = since, status
            if self.plan.end_when_trained and all(t.done is not None for t in self.stats.trainings) and (
                    len(self.stats.trainings) == self.plan.trainers):
                self.end = min(self.end, time.monotonic() + self.plan.think[1])
                self.hard_end = min(self.hard_end, self.end + self.plan.grace)

    async def warmup(self, timeout: float) -> None:
        session = Session(self.plan.url, "lang=zh", auto_rerun="off",
                          on_run_finished=lambda s, r: self._count_run(s, r))
        t = time.monotonic()
        try:
            await session.open("", timeout=timeout)
            self.stats.warmup = time.monotonic() - t
        except Exception as exc:  # noqa: BLE001
            self.stats.error("warmup", f"{type(exc).__name__}: {exc}")
        finally:
            await session.close()

    async def run(self) -> None:
        self.t0 = time.monotonic()
        self.end = self.t0 + self.plan.ramp + self.plan.duration
        self.hard_end = self.end + self.plan.grace
        tasks = [asyncio.create_task(self.student(i, i < self.plan.trainers)) for i in range(self.plan.students)]
        done, pending = await asyncio.wait(tasks, timeout=max(1.0, self.hard_end - time.monotonic() + 15))
        for task in pending:
            task.cancel()
            self.stats.error("cut_off_at_end", "a student still busy at the hard end")
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task.exception() is not None:
                exc = task.exception()
                self.stats.error("client", f"{type(exc).__name__}: {exc}")


# ---- report ----------------------------------------------------------------------------------------------
def build_result(c: Classroom, sampler: Sampler | None, client_cpu: float, wall: float) -> dict[str, Any]:
    st, plan = c.stats, c.plan
    loads = [x.seconds for x in st.loads]
    per_page = {p: summary([x.seconds for x in st.loads if x.page == p]) for p in plan.pages + ["home"]}
    trainings = []
    gaps_all, gaps_running, gaps_queued, feedback, queue_wait, first_step, finish = [], [], [], [], [], [], []
    for tr in st.trainings:
        times = [t for t, _ in tr.updates]
        gaps = [b - a for a, b in zip(times, times[1:])]
        gaps_all += gaps
        gaps_running += [b[0] - a[0] for a, b in zip(tr.updates, tr.updates[1:]) if b[1] == "running"]
        gaps_queued += [b[0] - a[0] for a, b in zip(tr.updates, tr.updates[1:]) if b[1] == "queued"]
        if tr.feedback() is not None:
            feedback.append(tr.feedback())
        if tr.first_progress is not None:
            queue_wait.append(tr.first_progress)
        if tr.first_step is not None:
            first_step.append(tr.first_step)
        if tr.done is not None:
            finish.append(tr.done)
        trainings.append({
            "student": tr.student, "lang": tr.lang, "start_response_s": _r(tr.start_response),
            "first_queue_s": _r(tr.first_queue),
            "first_queue_position": tr.queue_positions[0] if tr.queue_positions else None,
            "first_progress_s": _r(tr.first_progress), "first_step_s": _r(tr.first_step), "done_s": _r(tr.done),
            "done_status": tr.done_status,
            "live_updates": len(tr.updates), "gap_max_s": _r(max(gaps) if gaps else None),
            "fragment_requests": tr.fragment_requests, "fragment_runs_early": tr.fragment_runs_early,
            "stopped_at_end": tr.stopped_at_end, "note": tr.note})
    started = sum(1 for tr in st.trainings if tr.start_response is not None)
    finished = sum(1 for tr in st.trainings if tr.done_status and tr.done_status.startswith("finished"))
    server = sampler.report(c.t0) if sampler is not None else {"samples": 0}
    return {
        "plan": {"url": plan.url, "students": plan.students, "trainers": plan.trainers, "duration_s": plan.duration,
                 "ramp_s": plan.ramp, "pages": plan.pages, "train_overrides": plan.overrides,
                 "think_s": list(plan.think), "page_timeout_s": plan.page_timeout, "seed": plan.seed,
                 "auto_rerun": plan.auto_rerun, "assets": plan.assets, "end_when_trained": plan.end_when_trained},
        "wall_s": round(wall, 1), "client_cpu_s": round(client_cpu, 1), "load_avg": list(os.getloadavg()),
        "warmup_first_load_s": _r(st.warmup),
        "page_load": summary(loads), "first_load": summary([x.seconds for x in st.loads if x.first]),
        "assets": summary(st.assets),
        "asset_mib_per_student": round(st.asset_bytes / max(1, len(st.assets)) / 2**20, 2),
        "first_load_with_assets": summary(st.first_with_assets),
        "page_load_by_page": {p: s for p, s in per_page.items() if s["n"]},
        "start_press_response": summary(st.interactions),
        "live_update_gap": summary(gaps_all), "live_update_gap_running": summary(gaps_running),
        "live_update_gap_queued": summary(gaps_queued),
        "time_to_queue_or_progress": summary(feedback), "time_to_first_progress": summary(queue_wait),
        "time_to_first_step": summary(first_step),
        "time_to_done": summary(finish),
        "trainings_started": started, "trainings_finished": finished,
        "trainings_done_any": sum(1 for tr in st.trainings if tr.done_status),
        "trainings_without_update": sum(1 for tr in st.trainings if tr.start_sent is not None and not tr.updates),
        "trainings": trainings,
        "errors": {**st.errors, **({"exception_shown": sum(st.exceptions.values())} if st.exceptions else {})},
        "error_examples": st.error_examples,
        "exceptions": sum(st.exceptions.values()), "exception_lines": dict(st.exceptions.most_common(10)),
        "server": server,
    }


def print_report(res: dict[str, Any]) -> None:
    p = res["plan"]
    print(f"\n=== classroom load: {p['students']} students, {p['trainers']} training, {p['duration_s']:.0f} s, "
          f"ramp {p['ramp_s']:.0f} s, auto-rerun {p['auto_rerun']} (wall {res['wall_s']} s, "
          f"load average {res['load_avg'][0]:.1f}, client CPU {res['client_cpu_s']} s) ===")
    if res["warmup_first_load_s"] is not None:
        print(f"warm-up (the teacher opens the link first): {res['warmup_first_load_s']:.2f} s")
    print(f"page load          {fmt(res['page_load'])}")
    print(f"first load         {fmt(res['first_load'])}  (websocket: connect → script finished)")
    if res["assets"]["n"]:
        print(f"  page + scripts   {fmt(res['assets'])}  "
              f"({res['asset_mib_per_student']} MiB each, before the websocket)")
        print(f"  both             {fmt(res['first_load_with_assets'])}")
    for page, s in res["page_load_by_page"].items():
        print(f"  {page:<16} {fmt(s)}")
    if p["trainers"]:
        print(f"start pressed → page back   {fmt(res['start_press_response'])}")
        print(f"time to queue position / first progress   {fmt(res['time_to_queue_or_progress'])}")
        print(f"queue wait (start → shown running)        {fmt(res['time_to_first_progress'])}")
        print(f"start → first step counted                 {fmt(res['time_to_first_step'])}")
        print(f"live update gap    {fmt(res['live_update_gap'])}")
        print(f"  while running    {fmt(res['live_update_gap_running'])}")
        print(f"  while queued     {fmt(res['live_update_gap_queued'])}")
        print(f"time to done       {fmt(res['time_to_done'])}")
        print(f"trainings started {res['trainings_started']} / finished {res['trainings_finished']} of {p['trainers']}"
              f" (any end: {res['trainings_done_any']}; {res['trainings_without_update']} never got a live update)")
        for tr in res["trainings"]:
            print(f"  student {tr['student']:>2} ({tr['lang']}): start {tr['start_response_s']} s, queue at "
                  f"{tr['first_queue_s']} s (#{tr['first_queue_position']}), running at {tr['first_progress_s']} s, "
                  f"first step at {tr['first_step_s']} s, "
                  f"done at {tr['done_s']} s [{tr['done_status']}], {tr['live_updates']} updates, max gap "
                  f"{tr['gap_max_s']} s, {tr['fragment_requests']} fragment requests, "
                  f"{tr['fragment_runs_early']} ended early" + (" (stopped at end)" if tr["stopped_at_end"] else "")
                  + (f" — {tr['note']}" if tr["note"] else ""))
    errors = res["errors"]
    print(f"errors: {sum(errors.values())}" + (f" {errors}" if errors else "")
          + f" (exceptions shown on pages: {res['exceptions']})")
    for kind, example in res["error_examples"].items():
        print(f"  {kind}: {example}")
    for line, n in res["exception_lines"].items():
        print(f"  exception ×{n}: {line}")
    s = res["server"]
    if s.get("samples"):
        print(f"server RSS start {s['rss_start_mib']} / max {s['rss_max_mib']} / end {s['rss_end_mib']} MiB "
              f"(first minute {s['rss_first_minute_mib']}, last minute {s['rss_last_minute_mib']}); "
              f"CPU mean {s['cpu_mean_pct']} % (max {s['cpu_max_pct']} %, 100 % = one core); "
              f"up to {s['processes_max']} processes"
              + (f"; PSS max {s['pss_max_mib']} / end {s['pss_end_mib']} MiB" if s.get("pss_max_mib") else ""))
    else:
        print("server RSS/CPU: not sampled (server PID unknown: use --start-server or --server-pid)")
    print("RESULT " + json.dumps(res, ensure_ascii=False, sort_keys=True))


# ---- entry points ----------------------------------------------------------------------------------------
def parse_overrides(text: str) -> dict[str, Any]:
    """'epochs=1,train_subset=2000' → {'train.epochs': 1, 'train.train_subset': 2000} (keys of the Train form)."""
    out: dict[str, Any] = {}
    for item in filter(None, (x.strip() for x in (text or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--train-overrides: expected key=value, got {item!r}")
        key = key.strip() if key.strip().startswith("train.") else f"train.{key.strip()}"
        v = value.strip()
        out[key] = int(v) if re.fullmatch(r"-?\d+", v) else float(v) if re.fullmatch(r"-?\d*\.\d+(e-?\d+)?", v) else v
    return out


def check_local(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.hostname not in LOCAL_HOSTS:
        raise SystemExit(f"refusing {url}: this load test talks to 127.0.0.1/localhost only")
    return f"{parts.scheme or 'http'}://{parts.netloc}"


def run_load(plan: Plan, *, start_server: bool = False, server_args: list[str] | None = None,
             cold: bool = False, data_dir: Path | None = None, data_from: Path | None = None,
             server_pid: int | None = None, quiet: bool = False, app_dir: Path = ROOT) -> dict[str, Any]:
    """Run one class against `plan.url` (or a server started here) and return the result dict (also printed).

    `app_dir`: the checkout whose `streamlit_app.py` is served and whose catalogs name the Train page's messages.
    """
    server: Server | None = None
    tmp: Path | None = None
    sampler: Sampler | None = None
    app_dir = Path(app_dir).resolve()
    source = data_from or default_data_from(app_dir)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    try:
        if start_server:
            tmp = Path(tempfile.mkdtemp(prefix="classroom-load-"))
            server = _start_server(tmp, data_dir, source, server_args or [], app_dir, say)
            plan.url, server_pid = server.url, server.proc.pid
        else:
            plan.url = check_local(plan.url)
            if server_pid is None:
                server_pid = find_listener_pid(urlsplit(plan.url).port or 80)
        if server_pid is not None:
            sampler = Sampler(server_pid)
            sampler.start()
        result = _run_class(plan, app_dir, cold, sampler, say)
        if not quiet:
            print_report(result)
        if server is not None and (result["exceptions"] or result["errors"]) and not quiet:
            print("--- server log (tail) ---\n" + server.log_tail())
        return result
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        if server is not None:
            server.stop()
        if tmp is not None:
            _keep_and_remove(tmp, source, say)


def run_async(coro) -> Any:
    """asyncio.run(coro), in a thread of its own when this thread already runs an event loop
    (Playwright's sync API keeps one running for a whole pytest session)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="classroom-load", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _run_class(plan: Plan, app_dir: Path, cold: bool, sampler: Sampler | None, say: Any) -> dict[str, Any]:
    classroom = Classroom(plan, Matchers(app_dir))
    if not cold:
        run_async(classroom.warmup(timeout=max(60.0, plan.page_timeout)))
        warm = classroom.stats.warmup
        say(f"warm-up: the teacher's first load took {'–' if warm is None else f'{warm:.2f}'} s; the class arrives now")
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    run_async(classroom.run())
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if sampler is not None:
        sampler.stop()
    return build_result(classroom, sampler, client_cpu, time.monotonic() - t0)


def _start_server(tmp: Path, data_dir: Path | None, source: Path, server_args: list[str], app_dir: Path,
                  say: Any) -> Server:
    if data_dir is None:
        try:
            prepare_data(source, app_dir)
        except (subprocess.SubprocessError, OSError) as exc:
            say(f"data: could not prepare the default dataset in {source} ({exc}); the first page that "
                "needs it will prepare it during the class")
        data = tmp / "data"
        data.mkdir()
        say(f"data: {link_tree(source, data)} files from {source} linked into {data}")
    else:
        data = data_dir
        say(f"data: {data} (used as it is)")
    server = Server(server_args, data, tmp / "streamlit.log", app_dir=app_dir)
    try:
        healthy = server.start()
    except Exception:
        say("--- server log (tail) ---\n" + server.log_tail())
        server.stop()
        raise
    say(f"server: pid {server.proc.pid} at {server.url}, healthy after {healthy:.1f} s "
        f"(args: {' '.join(server_args) or 'none'})")
    return server


def _keep_and_remove(tmp: Path, source: Path, say: Any) -> None:
    try:
        moved = keep_new_datasets(tmp / "data", source) if (tmp / "data").is_dir() else []
        if moved:
            say(f"kept new dataset files in {source}: {moved}")
    except OSError as exc:
        say(f"could not keep new dataset files: {exc}")
    shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8501", help="a running server (127.0.0.1/localhost only)")
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--trainers", type=int, default=4, help="how many of the students press Start on the Train page")
    ap.add_argument("--duration", type=float, default=240, help="seconds of class after the ramp")
    ap.add_argument("--ramp", type=float, default=0, help="seconds over which students arrive (0: all at once)")
    ap.add_argument("--pages", default=",".join(PAGES), help="pages students move between")
    ap.add_argument("--train-overrides", default="",
                    help="Train form values by widget key (train. prefix optional), e.g. epochs=1,train_subset=2000; "
                         "a selectbox or radio takes the label the student sees")
    ap.add_argument("--think", default="2,8", help="think time between pages: min,max seconds")
    ap.add_argument("--page-timeout", type=float, default=180)
    ap.add_argument("--grace", type=float, default=30, help="seconds after the end for page loads still in flight")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--auto-rerun", choices=("browser", "gated"), default="browser",
                    help="fragment refreshes: 'browser' = a timer that fires regardless (what the 1.67 frontend does); "
                         "'gated' = skip a tick while the last refresh is still running")
    ap.add_argument("--no-assets", action="store_true",
                    help="skip downloading index.html and its scripts before each student's websocket")
    ap.add_argument("--end-when-trained", action="store_true",
                    help="end the class early once every trainer's run is done (for quick checks)")
    ap.add_argument("--no-stop", action="store_true", help="leave unfinished trainings running at the end")
    ap.add_argument("--start-server", action="store_true",
                    help="start streamlit here on a free port, stop it at the end")
    ap.add_argument("--server-args", action="append", default=[],
                    help="extra `streamlit run` options, e.g. --server-args='--runner.postScriptGC false' (repeatable)")
    ap.add_argument("--cold", action="store_true", help="no warm-up session before the class arrives")
    ap.add_argument("--data-dir", type=Path, help="TORCH_CLASSROOM_DATA for the server, used as it is")
    ap.add_argument("--data-from", type=Path, help="where datasets are linked from (see the module docstring)")
    ap.add_argument("--app-dir", type=Path, default=ROOT,
                    help="the checkout to serve (default: this one), e.g. an exported older commit to compare")
    ap.add_argument("--server-pid", type=int, help="PID of a server started elsewhere (default: found by its port)")
    args = ap.parse_args(argv)
    pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    unknown = [p for p in pages if p not in PAGES]
    if unknown:
        ap.error(f"unknown pages {unknown}; choose from {', '.join(PAGES)}")
    if not (0 <= args.trainers <= args.students) or args.students < 1:
        ap.error("need 1 ≤ students and 0 ≤ trainers ≤ students")
    lo, _, hi = args.think.partition(",")
    think = (float(lo), float(hi or lo))
    plan = Plan(url=args.url, students=args.students, trainers=args.trainers, duration=args.duration,
                ramp=args.ramp, pages=pages, overrides=parse_overrides(args.train_overrides), think=think,
                page_timeout=args.page_timeout, grace=args.grace, seed=args.seed, auto_rerun=args.auto_rerun,
                stop_at_end=not args.no_stop, assets=not args.no_assets, end_when_trained=args.end_when_trained)
    server_args = [a for s in args.server_args for a in shlex.split(s)]
    return run_load(plan, start_server=args.start_server, server_args=server_args, cold=args.cold,
                    data_dir=args.data_dir, data_from=args.data_from, server_pid=args.server_pid,
                    app_dir=args.app_dir)


if __name__ == "__main__":
    main()
