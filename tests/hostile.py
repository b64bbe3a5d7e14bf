"""Run one hostile input in a forked child with a time and memory limit, and measure it.

The child starts from this (warm) process, resets its peak-RSS counter (Linux `clear_refs`),
runs `fn()`, and reports the CourseError code (or the unexpected exception), the CPU seconds
and wall seconds taken, and the extra peak memory. The 2 s budget is checked on CPU time: on a
shared 2-core CI machine wall time measures the neighbours; a hang still ends at the hard timeout. RLIMIT_AS caps the child's address space so a failure cannot take the
machine down; SIGALRM and the parent's wait end a child that never finishes.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import time
from dataclasses import dataclass
from typing import Any, Callable

from dl_core.errors import CourseError

TIME_LIMIT_S = 2.0  # issue 11: every hostile input ends within 2 s ...
MEMORY_LIMIT_MB = 200  # ... and under 200 MB of extra memory
HARD_TIMEOUT_S = 20  # the child is killed after this, whatever it is doing
ADDRESS_SPACE_SLACK = 1536 * 2**20  # RLIMIT_AS = current virtual size + this


@dataclass
class Outcome:
    code: str | None  # the CourseError code, or None when fn returned normally
    seconds: float  # CPU time of the child (user + system)
    extra_mb: float
    error: str = ""  # an exception that is not a CourseError (a bug), or "timeout"/"killed"
    value: Any = None  # what fn returned (must be JSON-serialisable)
    wall: float = 0.0


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def run_bounded(fn: Callable[[], Any], timeout: float = HARD_TIMEOUT_S) -> Outcome:
    """fn() in a forked child under the limits; the parent is never affected."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_fd)
        result: dict[str, Any] = {}
        try:
            signal.alarm(int(timeout) + 1)
            resource.setrlimit(resource.RLIMIT_AS, (_status("VmSize") + ADDRESS_SPACE_SLACK,) * 2)
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # reset VmHWM (peak RSS) to the current RSS
            except OSError:
                pass
            base = _status("VmRSS")
            start = time.perf_counter()
            cpu = time.process_time()
            try:
                value = fn()
                result = {"code": None, "value": value}
            except CourseError as exc:
                result = {"code": exc.code, "message": str(exc)}
            except BaseException as exc:  # noqa: BLE001 - reported to the parent as a failure
                result = {"code": None, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            result["seconds"] = time.process_time() - cpu
            result["wall"] = time.perf_counter() - start
            result["extra_mb"] = max(_status("VmHWM") - base, 0) / 2**20
            try:
                json.dumps(result)
            except TypeError:
                result["value"] = repr(result.get("value"))[:200]
        finally:
            with os.fdopen(write_fd, "w") as out:
                out.write(json.dumps(result))
            os._exit(0)
    os.close(write_fd)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_fd)
            return Outcome(None, timeout, 0.0, "timeout")
        time.sleep(0.01)
    with os.fdopen(read_fd) as f:
        text = f.read()
    if not text:
        return Outcome(None, 0.0, 0.0, f"killed (status {status})")
    r = json.loads(text)
    return Outcome(r.get("code"), r.get("seconds", 0.0), r.get("extra_mb", 0.0), r.get("error", ""), r.get("value"),
                   r.get("wall", 0.0))


def assert_clear_error(fn: Callable[[], Any], prefix: str | tuple[str, ...], *, seconds: float = TIME_LIMIT_S,
                       memory_mb: float = MEMORY_LIMIT_MB) -> Outcome:
    """fn() must raise a CourseError whose code starts with `prefix`, within the time and memory limits."""
    out = run_bounded(fn)
    assert not out.error, out
    assert out.code is not None, f"no error at all: {out}"
    assert out.code.startswith(prefix), out
    assert out.seconds < seconds, out
    assert out.extra_mb < memory_mb, out
    return out
