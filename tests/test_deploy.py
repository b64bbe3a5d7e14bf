"""deploy/run-local.sh: two Streamlit replicas behind HAProxy, sticky by cookie (HTTP and websocket).

Starts the real thing on free ports (the script takes them from PROXY_PORT / REPLICA_PORT_BASE),
then: a fresh client is given a SERVERID cookie naming a replica; a client that keeps its cookie
always reaches that replica (page loads, health checks, the websocket); fresh clients are spread over
both; a few students of the load test through the proxy see no errors; Ctrl-C (SIGINT) stops every
process the script started.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.classroom_load import run_async

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("haproxy") is None,
                                 reason="HAProxy is not installed (Debian: apt-get install -y haproxy)")]

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "run-local.sh"


def free_ports(count: int) -> list[int]:
    """`count` consecutive free ports on 127.0.0.1 (the replicas' ports follow each other)."""
    for base in range(20500, 60000, 37):
        ok = True
        for port in range(base, base + count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return list(range(base, base + count))
    raise RuntimeError("no free ports")


def get(url: str, cookie: str | None = None) -> tuple[str, str | None]:
    """(the replica that answered, the SERVERID the proxy set, if any)."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        set_cookie = response.headers.get("Set-Cookie") or ""
        match = re.search(r"SERVERID=([^;]+)", set_cookie)
        return response.headers["X-Classroom-Replica"], match.group(1) if match else None


async def websocket_replica(url: str, cookie: str | None) -> str:
    import websockets

    headers = {"Cookie": cookie} if cookie else {}
    async with websockets.connect(url, subprotocols=["streamlit"], additional_headers=headers,
                                  origin=url.replace("ws://", "http://").split("/_stcore")[0]) as ws:
        return ws.response.headers["X-Classroom-Replica"]


@pytest.fixture(scope="module")
def proxy():
    proxy_port, first, second = free_ports(3)
    env = {**os.environ, "PROXY_PORT": str(proxy_port), "REPLICA_PORT_BASE": str(first),
           "TORCH_CLASSROOM_BACKEND": "thread", "PYTHON": sys.executable,
           "TORCH_CLASSROOM_ENV_FILE": os.devnull}
    process = subprocess.Popen(["bash", str(SCRIPT), "2"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    run_dir = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"logs in (\S+)\)", line)
            if line.startswith("Torch Classroom: http://") and match:
                run_dir = Path(match.group(1))
                break
        assert run_dir is not None, "run-local.sh did not start:\n" + "".join(lines)
        assert f"http://127.0.0.1:{proxy_port}" in lines[-1]
        pids = [int(p) for p in (run_dir / "pids").read_text().split()[1:]]
        yield {"url": f"http://127.0.0.1:{proxy_port}", "ports": (first, second), "pids": pids,
               "process": process}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # what Ctrl-C does
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if run_dir is not None:  # whatever the script left behind, by PID
            for pid in [int(p) for p in (run_dir / "pids").read_text().split()[1:]]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def test_a_client_keeping_its_cookie_stays_on_one_replica(proxy):
    url = proxy["url"]
    first, cookie = get(url + "/")
    assert cookie == first and first in ("r1", "r2")  # a fresh client is given its replica
    for path in ("/", "/_stcore/health", "/?lang=en", "/"):
        replica, again = get(url + path, f"SERVERID={cookie}")
        assert replica == first and again is None  # the same replica, no new cookie
    fresh = {get(url + "/")[0] for _ in range(4)}
    assert fresh == {"r1", "r2"}  # clients without a cookie are spread over both (round robin, not IP)
    other = "r2" if first == "r1" else "r1"
    assert {get(url + "/", f"SERVERID={other}")[0] for _ in range(3)} == {other}

    ws = url.replace("http://", "ws://") + "/_stcore/stream"
    for name in ("r1", "r2"):  # the websocket of a tab goes where its cookie says
        assert run_async(websocket_replica(ws, f"SERVERID={name}")) == name


def test_students_of_the_load_test_through_the_proxy_see_no_errors(proxy):
    sys.path.insert(0, str(ROOT))
    from bench import classroom_load as cl

    # Pages that need no dataset (a replica's first dataset load is slow on a busy 2-core machine, and
    # is the same through the proxy or not): what is tested here is the proxy, not the pages.
    result = cl.main(["--url", proxy["url"], "--students", "4", "--trainers", "0", "--duration", "15",
                      "--think", "1,3", "--grace", "60", "--pages", "home,layers,model"])
    assert not result["errors"], result["errors"]
    assert not result.get("exceptions"), result.get("exceptions")
    assert result["page_load"]["n"] >= 4  # every student loaded pages


def test_ctrl_c_stops_everything_the_script_started(proxy):
    process = proxy["process"]
    process.send_signal(signal.SIGINT)
    process.wait(60)
    deadline = time.monotonic() + 10
    alive = proxy["pids"]
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _alive(pid)]
        time.sleep(0.2)
    assert alive == [], f"still running after Ctrl-C: {alive}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours would still answer kill(0): it has exited
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False
