"""Home: the course map. Today's lessons (a teacher's links), then every step of the course with the page
that teaches it, in both languages."""
import functools
import itertools

import streamlit as st

from dl_core.notebooks import MIME, course_notebook
from dl_core.presets import Lesson, load_lessons
from ui.i18n import error_text, lang, prose, t
from ui.pages import BY_URL
from ui.student import classroom_config

# (step number, its name, what it does, the page that teaches it: a url_path from ui/pages.py)
STEPS = (
    (1, "home.step1", "home.step1.what", "data"),
    (2, "home.step2", "home.step2.what", "data"),
    (3, "home.step3", "home.step3.what", "train"),
    (4, "home.step4", "home.step4.what", "data"),
    (5, "home.step5", "home.step5.what", "data"),
    (6, "home.step6", "home.step6.what", "data"),
    (7, "home.step7", "home.step7.what", "layers"),
    (8, "home.step8", "home.step8.what", "layers"),
    (9, "home.step9", "home.step9.what", "layers"),
    (10, "home.step10", "home.step10.what", "layers"),
    (11, "home.step11", "home.step11.what", "layers"),
    (12, "home.step12", "home.step12.what", "model"),
    (13, "home.step13", "home.step13.what", "train"),
    (14, "home.step14", "home.step14.what", "train"),
    (15, "home.step15", "home.step15.what", "model"),
    (16, "home.step16", "home.step16.what", "save"),
    (17, "home.step17", "home.step17.what", "train"),
    (18, "home.step18", "home.step18.what", "train"),
    (19, "home.step19", "home.step19.what", "predict"),
)


@st.cache_resource(show_spinner=False)
def _lessons(folder: str, chosen: str):
    return load_lessons(folder or None, chosen)  # read once per process: presets change with a restart


def intro() -> None:
    st.title(t("home.title"))
    st.markdown(prose("home_intro"))


def todays_lessons() -> None:
    """The teacher's presets (presets/*.toml, chosen in classroom.toml): each a link to a page in a set state."""
    config = classroom_config()
    lessons, problems = _lessons(config.presets_dir, config.lessons)
    if not lessons and not problems:
        return
    st.subheader(t("home.lessons"))
    for lesson in lessons:
        lesson_link(lesson)
    for problem in problems:
        st.warning(t("home.lesson_problem", reason=problem_text(problem)), icon=":material/warning:")


def problem_text(problem) -> str:
    inner = getattr(problem, "inner", None)  # a setting the page refuses: its own message, translated
    if inner is not None:
        return t("error.preset.bad_value", name=problem.params["name"], reason=error_text(inner))
    return error_text(problem)


def lesson_link(lesson: Lesson) -> None:
    page = BY_URL[lesson.page]
    with st.container(border=True, key=f"home.lesson.{lesson.name}"):
        left, right = st.columns([3, 2], vertical_alignment="center")
        note = lesson.text("note", lang())
        left.markdown(f"**{lesson.text('title', lang())}**" + (f"  \n{note}" if note else ""))
        right.page_link(page.file, label=t(page.title_key), icon=":material/play_lesson:",
                        query_params=lesson.settings)


@functools.lru_cache(maxsize=2)  # one per language: the same for every student
def course_notebook_bytes(language: str) -> bytes:
    return course_notebook(language)


def take_home() -> None:
    """The whole course as one notebook, to run at home or in a hosted notebook service."""
    with st.container(border=True, key="home.notebook"):
        left, right = st.columns([3, 2], vertical_alignment="center")
        left.markdown(f"**{t('home.notebook')}**  \n{t('home.notebook_what')}")
        right.download_button(t("notebook.download"), functools.partial(course_notebook_bytes, lang()),
                              file_name=t("home.notebook_file"), mime=MIME, key="home.notebook_download",
                              icon=":material/description:", on_click="ignore")


def course_map() -> None:
    """Every step in course order; consecutive steps taught on the same page share one card and one link.

    Ten cards rather than nineteen: this is the page a whole class opens at the same moment, and every
    element is work for the one server (README, "A class of 30": first load p95 ~1.1 → ~0.8 s).
    """
    st.subheader(t("home.map"))
    for url_path, stretch in itertools.groupby(STEPS, key=lambda step: step[3]):
        steps = list(stretch)
        page = BY_URL[url_path]
        with st.container(border=True, key=f"home.step{steps[0][0]}"):
            left, right = st.columns([3, 2], vertical_alignment="center")
            left.markdown("\n\n".join(f"**{number}. {t(name)}**  \n{t(what)}" for number, name, what, _ in steps))
            right.page_link(page.file, label=t(page.title_key), icon=":material/arrow_forward:")

intro()
todays_lessons()
course_map()
take_home()
