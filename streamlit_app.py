"""Torch Classroom / PyTorch 课堂: the router and the shared sidebar. Nothing else."""
import streamlit as st

from dl_core.training import tune_allocator
from ui.i18n import t
from ui.sidebar import init_language, render_sidebar
from ui.warmup import warm_up

warm_up()  # heavy imports once, then gc.freeze(): cheap post-run garbage collection (ui/warmup.py)
tune_allocator()  # glibc malloc thresholds, once per process (PERFORMANCE.md: up to 1.4x)
st.set_page_config(page_title="PyTorch 课堂 · Torch Classroom", page_icon="🔥", layout="wide")
init_language()

PAGES = [
    st.Page("app_pages/home.py", title=t("nav.home"), icon=":material/map:", url_path="home", default=True),
    st.Page("app_pages/data.py", title=t("nav.data"), icon=":material/photo_library:", url_path="data"),
    st.Page("app_pages/layers.py", title=t("nav.layers"), icon=":material/grid_on:", url_path="layers"),
    st.Page("app_pages/model.py", title=t("nav.model"), icon=":material/account_tree:", url_path="model"),
    st.Page("app_pages/train.py", title=t("nav.train"), icon=":material/monitoring:", url_path="train"),
    st.Page("app_pages/save_load.py", title=t("nav.save_load"), icon=":material/save:", url_path="save"),
    st.Page("app_pages/predict.py", title=t("nav.predict"), icon=":material/image_search:", url_path="predict"),
]

page = st.navigation(PAGES)
render_sidebar()
page.run()
