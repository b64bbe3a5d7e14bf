"""A teacher's limits for one server: a TOML file plus environment variables, read once per process.

`classroom.toml` beside the app (or the file named by TORCH_CLASSROOM_CONFIG) holds a `[classroom]`
table; any key can be overridden by an environment variable `TORCH_CLASSROOM_<KEY>` (upper case).
Unknown keys and bad values are refused with a message naming the key, so a typo never silently
falls back to a default. The page shows the student the limits in force.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from dl_core.errors import CourseError

CONFIG_ENV = "TORCH_CLASSROOM_CONFIG"
DEFAULT_FILE = Path(__file__).resolve().parents[1] / "classroom.toml"
BACKENDS = ("process", "thread", "ray")


@dataclass(frozen=True)
class ClassroomConfig:
    """The limits in force on this server (defaults: a laptop or one 2-core server)."""

    backend: str = "process"  # 'process' (worker processes), 'thread' (in the web process), 'ray' (a cluster)
    max_jobs: int = 0  # trainings at once; 0 = the number of CPU cores
    workers: int = 0  # worker processes kept ready; 0 = max_jobs
    worker_nice: int = 10  # CPU priority of training below the web pages (0 = the same, 19 = the lowest)
    ray_address: str = ""  # 'auto', 'ray://host:10001', ... (backend 'ray' only)
    ray_gpus_per_job: float = 0.1  # a fraction of a GPU per run when the cluster has GPUs
    max_epochs: int = 100  # per run
    max_train_images: int = 0  # per epoch; 0 = no cap beyond the dataset
    runs_kept: int = 10  # per student (history); older runs are forgotten
    weights_kept_mb: int = 64  # per student: final weights kept for the newest runs within this budget
    student_ttl_hours: float = 2.0  # a student's runs are kept this long after their last visit
    max_students: int = 500  # tokens kept at once; the longest-unseen are forgotten first
    default_dataset: str = "shapes10-full"
    default_epochs: int = 3
    default_train_images: int = 50_000  # the course's whole epoch: a visible rise before it ends
    default_test_images: int = 2_000
    lessons: str = "*"  # the course map's "Today's lesson": "*" every preset, "" none, or "name, name"
    presets_dir: str = ""  # the teacher's lesson files (presets/*.toml); "" = presets/ beside the app

    def jobs_limit(self) -> int:
        return self.max_jobs or os.cpu_count() or 1

    def workers_count(self) -> int:
        return self.workers or self.jobs_limit()


_INT_KEYS = {f.name for f in fields(ClassroomConfig) if f.type in ("int", int)}
_FLOAT_KEYS = {f.name for f in fields(ClassroomConfig) if f.type in ("float", float)}


def _coerce(key: str, value: Any) -> Any:
    if key in _INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise CourseError("classroom.bad_value", "classroom setting {key} must be a whole number, got {value}",
                              key=key, value=value)
        try:
            number = int(value)
        except ValueError as exc:
            raise CourseError("classroom.bad_value", "classroom setting {key} must be a whole number, got {value}",
                              key=key, value=value) from exc
        if number < 0:
            raise CourseError("classroom.bad_value", "classroom setting {key} must be a whole number, got {value}",
                              key=key, value=value)
        return number
    if key in _FLOAT_KEYS:
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise CourseError("classroom.bad_value", "classroom setting {key} must be a number, got {value}",
                              key=key, value=value) from exc
        if not 0 <= number < float("inf"):
            raise CourseError("classroom.bad_value", "classroom setting {key} must be a number, got {value}",
                              key=key, value=value)
        return number
    if not isinstance(value, str):
        raise CourseError("classroom.bad_value", "classroom setting {key} must be text, got {value}",
                          key=key, value=value)
    return value


def load_config(path: Path | None = None, environ: dict[str, str] | None = None) -> ClassroomConfig:
    """The file's `[classroom]` table, then TORCH_CLASSROOM_<KEY> variables on top. Raises CourseError."""
    environ = os.environ if environ is None else environ
    path = Path(environ[CONFIG_ENV]) if path is None and environ.get(CONFIG_ENV) else (path or DEFAULT_FILE)
    values: dict[str, Any] = {}
    if path.is_file():
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("classroom", {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CourseError("classroom.bad_file", "cannot read the classroom file {path}: {reason}",
                              path=str(path), reason=str(exc)) from exc
        known = {f.name for f in fields(ClassroomConfig)}
        for key, value in table.items():
            if key not in known:
                raise CourseError("classroom.unknown_key", "unknown classroom setting {key} in {path}",
                                  key=key, path=str(path))
            values[key] = _coerce(key, value)
    for f in fields(ClassroomConfig):
        env = environ.get(f"TORCH_CLASSROOM_{f.name.upper()}")
        if env is not None and env != "":
            values[f.name] = _coerce(f.name, env)
    config = replace(ClassroomConfig(), **values)
    if config.backend not in BACKENDS:
        raise CourseError("classroom.bad_value", "classroom setting {key} must be one of {choices}, got {value}",
                          key="backend", value=config.backend, choices=", ".join(BACKENDS))
    if config.backend == "ray" and not config.ray_address:
        raise CourseError("classroom.ray_address", "the ray backend needs ray_address (e.g. auto)")
    return config
