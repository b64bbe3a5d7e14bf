"""The Train page in AppTest, both languages: start a tiny run, see its events rendered, runs table, code."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dl_core.models import PRESETS
from dl_core.training import OPTIMIZERS
from tests.conftest import open_link, assert_clean, new_app

ROOT = Path(__file__).resolve().parents[1]


def start_tiny_run(at, epochs: int = 1):
    at.number_input(key="train.epochs").set_value(epochs)
    at.number_input(key="train.batch_size").set_value(16)
    at.number_input(key="train.train_subset").set_value(64)
    at.number_input(key="train.test_subset").set_value(32)
    at.number_input(key="train.log_every").set_value(1)
    submit = next(b for b in at.button if b.key and b.key.startswith("FormSubmitter:train.form"))
    submit.click()
    at.run()


def run_until_done(at, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.4)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if any("train.analysis_run" == getattr(s, "key", None) for s in at.selectbox):
            return
    raise AssertionError("the run did not finish in time")


def test_idle_page(lang):
    at = new_app(lang, "app_pages/train.py")
    assert_clean(at)
    idle = {"zh": "还没有开始训练", "en": "Nothing is training yet"}[lang]
    assert any(idle in i.value for i in at.info)
    assert at.number_input(key="train.epochs").value == 3  # the classroom default: a visible rise in ~a minute
    assert at.number_input(key="train.batch_size").value == 64
    assert at.number_input(key="train.lr").value == pytest.approx(0.01)
    assert at.selectbox(key="train.optimizer").value == "sgd"
    assert any("1.1019" in m.value for m in at.metric)  # course step 13, computed live


def test_start_shows_events_then_results(lang):
    at = new_app(lang, "app_pages/train.py")
    start_tiny_run(at, epochs=2)
    assert_clean(at)
    run_until_done(at)
    assert_clean(at)
    done = {"zh": "训练完成", "en": "Finished"}[lang]
    assert any(done in s.value for s in at.success), [s.value for s in at.success]
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 1
    assert at.session_state["ws.trained"] is not None  # Save / Predict pages see the model
    ckpt = at.session_state["ws.trained"]
    assert ckpt.history["epochs"] == 2 and len(ckpt.classes) == 10
    charts = [c for c in at.get("plotly_chart")]
    assert len(charts) >= 4  # live loss + test, overlays, confusion, per class
    # A second run with Adam joins the table, both overlaid by default.
    at.selectbox(key="train.optimizer").set_value("adam")
    at.number_input(key="train.lr").set_value(0.001)
    start_tiny_run(at, epochs=1)
    deadline = time.monotonic() + 25
    while len(at.dataframe[0].value) < 2 and time.monotonic() < deadline:
        time.sleep(0.4)
        at.run()
    assert len(at.dataframe[0].value) == 2
    assert len(at.multiselect(key="train.overlay").value) == 2
    # The URL follows the submitted form: a teacher can copy this recipe as a link.
    assert at.query_params["optimizer"] == "adam" and at.query_params["lr"] == "0.001"
    assert at.query_params["epochs"] == "1" and at.query_params["batch"] == "16"
    assert_clean(at)
    # Another page and back: the runs and the last settings are still there.
    at.switch_page("app_pages/home.py").run()
    at.switch_page("app_pages/train.py").run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == 2
    assert at.selectbox(key="train.optimizer").value == "adam"
    assert at.number_input(key="train.epochs").value == 1


def test_invalid_input_is_a_message_not_a_traceback(lang):
    at = new_app(lang, "app_pages/train.py")
    at.text_input(key="train.example_x").set_value("0.1, abc").run()
    assert_clean(at)
    assert at.error
    at.text_input(key="train.example_x").set_value("0.1, 0.2").run()
    at.number_input(key="train.example_y").set_value(5).run()
    assert_clean(at)
    assert at.error


def test_stop_button(lang):
    at = new_app(lang, "app_pages/train.py")
    at.number_input(key="train.epochs").set_value(100)
    at.number_input(key="train.batch_size").set_value(4)
    at.number_input(key="train.train_subset").set_value(4000)
    submit = next(b for b in at.button if b.key and b.key.startswith("FormSubmitter:train.form"))
    submit.click()
    at.run()
    at.button(key="train.stop_button").click()
    at.run()
    run_until_done(at)
    assert_clean(at)
    stopped = {"zh": "已停止", "en": "Stopped"}[lang]
    assert any(stopped in w.value for w in at.warning)


def test_every_dynamic_key_exists():
    keys = set()
    for path in (ROOT / "locales").glob("*.json"):
        keys |= set(json.loads(path.read_text(encoding="utf-8")))
    wanted = [f"train.model.{m}" for m in ("builder", *PRESETS)] + [f"train.optimizer.{o}" for o in OPTIMIZERS]
    wanted += [f"train.device.{d}" for d in ("auto", "cpu", "cuda", "mps")]
    wanted += [f"train.{k}.{s}" for k in ("done", "status") for s in ("finished", "stopped", "diverged", "failed")]
    wanted += [f"train.reason.{r}" for r in ("completed", "stop_requested", "time_limit", "nan_loss",
                                             "out_of_memory", "error")]
    wanted += [f"train.notice.{n}" for n in ("oom_half_batch", "oom_cpu")]
    assert not [k for k in wanted if k not in keys]


def test_a_bad_classroom_setting_is_a_warning_and_the_defaults_apply(lang, monkeypatch):
    from ui import student

    monkeypatch.setenv("TORCH_CLASSROOM_MAX_EPOCHS", "lots")
    student._config.clear()
    try:
        at = new_app(lang, "app_pages/train.py")
        assert_clean(at)
        assert any("max_epochs" in w.value for w in at.warning)
        assert at.number_input(key="train.epochs").value == 3
    finally:
        monkeypatch.delenv("TORCH_CLASSROOM_MAX_EPOCHS")
        student._config.clear()


def test_limits_in_force_are_shown(lang):
    at = new_app(lang, "app_pages/train.py")
    text = " ".join(c.value for c in at.caption)
    assert {"zh": "同时最多", "en": "at most"}[lang] in text


# ---- The recipe as a link (issue 14) -----------------------------------------------------------------------
def link_app(lang: str, **query: str):
    """The Train page opened from a link: the query is in the URL before the first run."""
    return open_link(lang, "app_pages/train.py", **query)

def test_a_link_fills_in_the_form_and_starts_nothing(lang):
    at = link_app(lang, lr="0.1", optimizer="adam", batch="32", epochs="2", images="500", augment="1", normalize="1",
                  weight_decay="0.0005", seed="7")
    assert_clean(at)
    assert at.number_input(key="train.lr").value == pytest.approx(0.1)
    assert at.selectbox(key="train.optimizer").value == "adam"
    assert at.number_input(key="train.batch_size").value == 32
    assert at.number_input(key="train.epochs").value == 2
    assert at.number_input(key="train.train_subset").value == 500
    assert at.checkbox(key="train.augment").value and at.checkbox(key="train.normalize").value
    assert at.number_input(key="train.weight_decay").value == pytest.approx(0.0005)
    assert at.number_input(key="train.seed").value == 7
    assert not at.warning  # nothing wrong with this link
    idle = {"zh": "还没有开始训练", "en": "Nothing is training yet"}[lang]
    assert any(idle in i.value for i in at.info)  # a link never starts a run
    assert at.query_params["lr"] == "0.1" and at.query_params["optimizer"] == "adam"  # the URL keeps the recipe
    assert any("/train?" in c.value and "lr=0.1" in c.value and "optimizer=adam" in c.value for c in at.code)
    at.run()  # a rerun keeps what the student sees (the link is applied once)
    assert at.number_input(key="train.lr").value == pytest.approx(0.1)


def test_a_hostile_link_is_a_message_and_the_defaults(lang):
    at = link_app(lang, lr="nan", batch="<script>alert(1)</script>", epochs="9" * 400)
    assert_clean(at)
    text = " ".join(w.value for w in at.warning)
    assert "lr" in text and "batch" in text and "epochs" in text
    assert at.number_input(key="train.lr").value == pytest.approx(0.01)
    assert at.number_input(key="train.batch_size").value == 64
    assert at.number_input(key="train.epochs").value == 3
    assert "lr" not in at.query_params and "batch" not in at.query_params


def test_a_link_beyond_the_classroom_caps_shows_the_cap(lang, monkeypatch):
    from dl_core.i18n import text
    from ui import student

    monkeypatch.setenv("TORCH_CLASSROOM_MAX_EPOCHS", "5")
    student._config.clear()
    try:
        at = link_app(lang, epochs="50", lr="0.05")
        assert_clean(at)
        cap = text("error.classroom.cap_epochs", lang, limit=5)
        assert any(cap in w.value for w in at.warning), [w.value for w in at.warning]
        assert at.number_input(key="train.epochs").value == 5  # within the form's limit: Start works
        assert at.number_input(key="train.lr").value == pytest.approx(0.05)
    finally:
        monkeypatch.delenv("TORCH_CLASSROOM_MAX_EPOCHS")
        student._config.clear()


def test_every_translated_name_table_is_complete():
    """The page's tables of literal keys (MODEL_TITLES, ...) cover every value and name existing keys."""
    import ast

    from dl_core.devices import DEVICE_CHOICES
    from ui.i18n import catalog

    tables = {}
    for node in ast.parse((ROOT / "app_pages" / "train.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and node.targets[0].id.isupper():
            tables[node.targets[0].id] = ast.literal_eval(node.value)
    wanted = {"MODEL_TITLES": ("builder", *PRESETS), "OPTIMIZER_TITLES": OPTIMIZERS, "DEVICE_TITLES": DEVICE_CHOICES,
              "RECIPE_TITLES": ("course", "fast"), "NOTICES": ("oom_half_batch", "oom_cpu"),
              "DONE": ("finished", "stopped", "diverged", "failed"), "STATUS": ("finished", "stopped", "diverged",
                                                                                "failed"),
              "REASONS": ("completed", "stop_requested", "time_limit", "nan_loss", "out_of_memory", "error")}
    for name, values in wanted.items():
        assert set(values) <= set(tables[name]), name
    assert all(key in catalog() for name in (*wanted, "TUNE_SOURCES") for key in tables[name].values())
