"""Start-up work done once per server process, before any page runs: heavy imports, then `gc.freeze()`.

Measured here (README, "A classroom on one server"): with torch, torchvision, pandas and plotly imported
there are ~420,000 objects the garbage collector tracks, and Streamlit runs a full collection after
every script run (`runner.postScriptGC`): 0.2 s of CPU per run, so a whole class shared about four
page runs a second. `gc.freeze()` moves everything alive after the imports into a generation the
collector never scans: the same collection then costs microseconds, and garbage made by the pages is
still collected (memory stays bounded, unlike `postScriptGC = false`).

Importing every heavy module here, under one lock, also ends the import race seen on a cold server
(two sessions importing pandas at once: "partially initialized module 'pandas'" in plotly).
"""
from __future__ import annotations

import functools
import gc
import importlib
import threading
import time

HEAVY = ("numpy", "pandas", "PIL.Image", "plotly.graph_objects", "plotly.io", "torch", "torchvision",
         "torchvision.transforms.v2", "pyarrow",
         "dl_core.arithmetic", "dl_core.checkpoint", "dl_core.codegen.data", "dl_core.codegen.layers",
         "dl_core.codegen.model", "dl_core.codegen.train", "dl_core.codegen.checkpoint", "dl_core.codegen.predict",
         "dl_core.datasets", "dl_core.existing", "dl_core.jobs", "dl_core.layers", "dl_core.models",
         "dl_core.predict", "dl_core.students", "dl_core.training", "dl_core.transforms", "dl_core.workers",
         "ui.charts", "ui.datasets", "ui.jobs")
_LOCK = threading.Lock()


@functools.cache
def _warm() -> float:
    started = time.perf_counter()
    for name in HEAVY:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # an optional one (pyarrow comes with Streamlit; the rest are ours or required)
    gc.collect()
    gc.freeze()
    try:
        from ui.jobs import backend

        backend()  # worker processes start importing torch now, not when the first student presses Start
    except Exception:  # noqa: BLE001 - a bad classroom file is shown on the Train page, where it matters
        pass
    return time.perf_counter() - started


def warm_up() -> float:
    """Import everything heavy once and freeze it out of the collector's way; seconds it took (once)."""
    with _LOCK:
        return _warm()
