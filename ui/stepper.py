"""Step through a computation one output cell at a time: ⏮ ◀ ▶ ⏭, a slider, and Play.

Everything lives under a page-prefixed `prefix` (`layers.conv`): `<prefix>.step` (1-based, the slider's
key), `<prefix>.n`, `<prefix>.playing`. The page calls `step_through(prefix, n, draw, *args)`; `draw`
runs as a fragment (stepping and autoplay rerun only it, not the whole page) and starts with
`k, n, step = current_step(prefix, steps)`. State changes happen in the buttons' callbacks.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from ui.i18n import t

PLAY_EVERY = 0.8  # seconds per cell while playing: slow enough to read the multiply-add

# (widget key suffix, label key, icon, where on_move goes)
MOVES = (
    ("go_first", "layers.step.first", ":material/first_page:", "first"),
    ("go_prev", "layers.step.prev", ":material/chevron_left:", "prev"),
    ("go_next", "layers.step.next", ":material/chevron_right:", "next"),
    ("go_last", "layers.step.last", ":material/last_page:", "last"),
)


def on_play(prefix: str) -> None:
    ss = st.session_state
    playing = not ss.get(f"{prefix}.playing", False)
    ss[f"{prefix}.playing"] = playing
    if playing:
        ss[f"{prefix}.play_started"] = True
        if ss.get(f"{prefix}.step", 1) >= ss.get(f"{prefix}.n", 1):
            ss[f"{prefix}.step"] = 1


def on_move(prefix: str, where: str) -> None:
    ss = st.session_state
    n = ss.get(f"{prefix}.n", 1)
    step = ss.get(f"{prefix}.step", 1)
    value = {"first": 1, "prev": step - 1, "next": step + 1, "last": n}[where]
    ss[f"{prefix}.step"] = min(max(1, value), n)
    ss[f"{prefix}.playing"] = False


def stop(prefix: str) -> None:
    """Back to the first step, not playing (for a page's reset callbacks)."""
    st.session_state[f"{prefix}.step"] = 1
    st.session_state[f"{prefix}.playing"] = False


def step_controls(prefix: str, n: int) -> None:
    """⏮ ◀ ▶ ⏭ buttons (inside the fragment: only the fragment reruns) and the step slider."""
    cols = st.columns([1.2, 1.2, 1.2, 1.2, 4.5], vertical_alignment="bottom")
    for col, (suffix, label, icon, where) in zip(cols, MOVES):
        col.button(t(label), key=f"{prefix}.{suffix}", icon=icon, on_click=on_move, args=(prefix, where),
                   width="stretch")
    if n > 1:
        cols[4].slider(t("layers.step.slider", n=n), 1, n, key=f"{prefix}.step")
    else:
        cols[4].caption(t("layers.step.only_one"))


def play_button(prefix: str) -> None:
    playing = st.session_state.get(f"{prefix}.playing", False)
    st.button(t("layers.step.pause") if playing else t("layers.step.play"), key=f"{prefix}.play",
              icon=":material/pause:" if playing else ":material/play_arrow:", on_click=on_play, args=(prefix,))


def playing(prefix: str) -> bool:
    return bool(st.session_state.get(f"{prefix}.playing", False))


def advance_if_playing(prefix: str, n: int) -> None:
    """Called at the top of a fragment run: one cell further per timer tick; stop at the end."""
    ss = st.session_state
    if not playing(prefix):
        return
    if ss.pop(f"{prefix}.play_started", False):
        return  # the run the play button caused shows the current cell first
    if ss.get(f"{prefix}.step", 1) >= n:
        ss[f"{prefix}.playing"] = False
        # Not a state change after the fact: the timer belongs to the fragment's registration, and only a
        # full run registers the fragment again without it.
        st.rerun()
    ss[f"{prefix}.step"] = ss.get(f"{prefix}.step", 1) + 1


def current_step(prefix: str, steps: Sequence[Any]) -> tuple[int, int, Any]:
    """Advance when playing, draw the step controls; returns (k, n, the k-th step), k counted from 1."""
    n = len(steps)
    advance_if_playing(prefix, n)
    step_controls(prefix, n)
    k = min(st.session_state.get(f"{prefix}.step", 1), n)
    return k, n, steps[k - 1]


def step_through(prefix: str, n: int, draw: Callable[..., None], *args: Any) -> None:
    """The Play button, then `draw(*args)` as a fragment that reruns every PLAY_EVERY seconds while playing.

    `n` is the number of steps: a step past it (the settings changed) becomes the last one.
    """
    ss = st.session_state
    ss[f"{prefix}.n"] = n
    if ss.get(f"{prefix}.step", 1) > n:
        ss[f"{prefix}.step"] = n
    play_button(prefix)
    st.fragment(draw, run_every=PLAY_EVERY if playing(prefix) else None)(*args)
