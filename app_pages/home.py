"""Home: the course map. Every step of the course, in both languages, with the page that teaches it."""
import streamlit as st

from ui.i18n import prose, t

# (step number, the page that teaches it); names come from the catalog as home.step<N>.
COURSE_MAP = [
    (1, "app_pages/data.py"), (2, "app_pages/data.py"), (3, "app_pages/train.py"), (4, "app_pages/data.py"),
    (5, "app_pages/data.py"), (6, "app_pages/data.py"), (7, "app_pages/layers.py"), (8, "app_pages/layers.py"),
    (9, "app_pages/layers.py"), (10, "app_pages/layers.py"), (11, "app_pages/layers.py"), (12, "app_pages/model.py"),
    (13, "app_pages/train.py"), (14, "app_pages/train.py"), (15, "app_pages/model.py"), (16, "app_pages/save_load.py"),
    (17, "app_pages/train.py"), (18, "app_pages/train.py"), (19, "app_pages/predict.py"),
]
PAGE_TITLE = {
    "app_pages/data.py": "nav.data", "app_pages/layers.py": "nav.layers", "app_pages/model.py": "nav.model",
    "app_pages/train.py": "nav.train", "app_pages/save_load.py": "nav.save_load", "app_pages/predict.py": "nav.predict",
}

st.title(t("home.title"))
st.markdown(prose("home_intro"))

st.subheader(t("home.map"))
for number, page in COURSE_MAP:
    with st.container(border=True, key=f"home.step{number}"):
        left, right = st.columns([3, 2], vertical_alignment="center")
        left.markdown(f"**{number}. {t(f'home.step{number}')}**  \n{t(f'home.step{number}.what')}")
        right.page_link(page, label=t(PAGE_TITLE[page]), icon=":material/arrow_forward:")
