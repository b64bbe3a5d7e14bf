"""Home: the course map. Every step of the course, in both languages, with the page that teaches it."""
import streamlit as st

from ui.i18n import prose, t

# (step number, the page that teaches it); names come from the catalog as home.step<N>.
COURSE_MAP = [
    (1, "pages/data.py"), (2, "pages/data.py"), (3, "pages/train.py"), (4, "pages/data.py"),
    (5, "pages/data.py"), (6, "pages/data.py"), (7, "pages/layers.py"), (8, "pages/layers.py"),
    (9, "pages/layers.py"), (10, "pages/layers.py"), (11, "pages/layers.py"), (12, "pages/model.py"),
    (13, "pages/train.py"), (14, "pages/train.py"), (15, "pages/model.py"), (16, "pages/save_load.py"),
    (17, "pages/train.py"), (18, "pages/train.py"), (19, "pages/predict.py"),
]
PAGE_TITLE = {
    "pages/data.py": "nav.data", "pages/layers.py": "nav.layers", "pages/model.py": "nav.model",
    "pages/train.py": "nav.train", "pages/save_load.py": "nav.save_load", "pages/predict.py": "nav.predict",
}

st.title(t("home.title"))
st.markdown(prose("home_intro"))

st.subheader(t("home.map"))
for number, page in COURSE_MAP:
    with st.container(border=True, key=f"home.step{number}"):
        left, right = st.columns([3, 2], vertical_alignment="center")
        left.markdown(f"**{number}. {t(f'home.step{number}')}**  \n{t(f'home.step{number}.what')}")
        right.page_link(page, label=t(PAGE_TITLE[page]), icon=":material/arrow_forward:")
