"""Who the student is, across reloads: a random token in a cookie, their things in a server-side registry.

A reload or a dropped connection starts a new Streamlit session; the cookie (set by the page once,
read back by `st.context.cookies` on the next connection) finds the same runs, the same running job
and the same trained model. The token comes only from the server (`secrets`): a cookie naming a
token the server does not know gets a new one, so nobody can pick someone else's.
"""
from __future__ import annotations

import streamlit as st

from dl_core.classroom import ClassroomConfig, load_config
from dl_core.errors import CourseError
from dl_core.students import Student, StudentRegistry

COOKIE = "torch_classroom_student"
TOKEN = "student.token"  # session state: this session's token (not a widget key)
COOKIE_PENDING = "student.cookie_pending"  # session state: the cookie still has to be written


@st.cache_resource(show_spinner=False)
def _config() -> tuple[ClassroomConfig, CourseError | None]:
    try:
        return load_config(), None
    except CourseError as exc:  # every page keeps working on the defaults; the Train page shows why
        return ClassroomConfig(), exc


def classroom_config() -> ClassroomConfig:
    """The teacher's limits (classroom.toml + TORCH_CLASSROOM_* variables), read once per server process."""
    return _config()[0]


def config_error() -> CourseError | None:
    """Why the classroom file or variables were refused (the defaults apply meanwhile), or None."""
    return _config()[1]


@st.cache_resource(show_spinner=False)
def registry() -> StudentRegistry:
    """Every student on this server (one per process: a replica keeps its own; the proxy keeps a student on one)."""
    cfg = classroom_config()
    return StudentRegistry(cfg.student_ttl_hours, cfg.runs_kept, cfg.weights_kept_mb, cfg.max_students)


def current() -> Student:
    """This browser's student: from the session, else the cookie, else a new one (and the cookie is set)."""
    reg = registry()
    student = reg.get(st.session_state.get(TOKEN))
    if student is None:
        student = reg.get(st.context.cookies.get(COOKIE))
        fresh = student is None
        if fresh:
            student = reg.new()
        st.session_state[TOKEN] = student.token
        st.session_state[COOKIE_PENDING] = fresh
    if st.session_state.get(COOKIE_PENDING):
        st.session_state[COOKIE_PENDING] = not _set_cookie(student.token, classroom_config().student_ttl_hours)
    return student


def _set_cookie(token: str, hours: float) -> bool:
    # The token is server-made URL-safe base64 ([A-Za-z0-9_-]): nothing in it can break out of the string.
    script = (f"<script>document.cookie = '{COOKIE}={token}; path=/; max-age={int(hours * 3600)}; "
              "SameSite=Lax';</script>")
    try:
        st.sidebar.html(script, unsafe_allow_javascript=True)
    except st.errors.StreamlitAPIException:
        return False  # inside a fragment the sidebar is out of reach: the next full run sets it
    return True
