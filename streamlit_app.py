"""Torch Classroom / PyTorch 课堂: the router and the shared sidebar. Nothing else."""
import streamlit as st

from dl_core.training import tune_allocator
from ui.pages import navigation_pages
from ui.sidebar import init_language, render_sidebar
from ui.warmup import warm_up

warm_up()  # heavy imports once, then gc.freeze(): cheap post-run garbage collection (ui/warmup.py)
tune_allocator()  # glibc malloc thresholds, once per process (PERFORMANCE.md: up to 1.4x)
st.set_page_config(page_title="PyTorch 课堂 · Torch Classroom", page_icon="🔥", layout="wide")
init_language()

page = st.navigation(navigation_pages())
render_sidebar()
page.run()
