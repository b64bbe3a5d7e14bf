"""bench/classroom_load.py against a real server: a tiny class (3 students, 1 training a tiny run).

Not a timed test: it checks the load test works (pages load over the websocket protocol, the
Train form is found by its key and started, its live fragment is followed to the end, nothing
raises), not how fast. The dataset is prepared once per machine before the class starts
(`prepare_data`; about a minute the first time on 2 cores, then linked).
"""
from __future__ import annotations

import json
from collections import defaultdict

import pytest

from bench import classroom_load as cl

pytestmark = pytest.mark.slow


def test_template_regex_reads_catalog_parameters():
    rx = cl._template_regex("Waiting in the queue: you are number {position} ({running} trainings are running now).")
    m = rx.search("Waiting in the queue: you are number 3 (2 trainings are running now).")
    assert m is not None and m.group("position") == "3" and m.group("running") == "2"
    assert rx.search("Training on CPU") is None


def test_matchers_recognise_the_train_page_in_both_languages():
    """Built from the Train page's own catalog entries, so the check follows the page's wording."""
    catalog: dict[str, dict[str, str]] = {}
    for path in (cl.ROOT / "locales").glob("*.json"):
        catalog.update(json.loads(path.read_text(encoding="utf-8")))
    queue_keys = [k for k in catalog if k.startswith("train.") and "queue" in k and "{position}" in catalog[k]["en"]]
    assert queue_keys, "the Train page has no queue message with a {position}"
    m = cl.Matchers()
    for lang in ("zh", "en"):
        for key in queue_keys:
            text = catalog[key][lang].format_map(defaultdict(lambda: "2", position=4))
            assert m.queue_position(text) == 4, (key, lang, text)
        progress = catalog["train.progress"][lang].format_map(defaultdict(lambda: "5", step=10))
        assert m.steps_done(progress) == 10 and m.queue_position(progress) is None
        done = catalog["train.done.finished"][lang].format_map(defaultdict(lambda: "1"))
        assert m.done_status(cl.Shown(kind="alert", text=done, fragment_id="f", alert_format=4)) == "finished"


def test_overrides_and_percentiles():
    assert cl.parse_overrides("epochs=1, train_subset=2000,lr=0.05") == {
        "train.epochs": 1, "train.train_subset": 2000, "train.lr": 0.05}
    assert cl.pct([1.0, 2.0, 3.0, 4.0], 50) == 2.5 and cl.pct([], 95) is None
    with pytest.raises(SystemExit):
        cl.check_local("http://example.com:8501")


def test_a_small_class_loads_pages_and_finishes_a_training():
    # The class ends soon after the one-step run is done (about 20 s after the first load on a quiet machine: a
    # worker process starts cold); the generous limits only matter on a machine shared with other work.
    plan = cl.Plan(url="", students=3, trainers=1, duration=90, ramp=0, pages=["home", "layers", "train", "model"],
                   overrides=cl.parse_overrides("epochs=1,train_subset=64,test_subset=64"), think=(1.0, 2.0),
                   page_timeout=90, grace=15, seed=7, auto_rerun="browser", end_when_trained=True)
    # Datasets come from the bench cache (prepared once per machine), not the test session's empty data dir.
    res = cl.run_load(plan, start_server=True, quiet=True, data_from=cl.BENCH_CACHE)

    assert res["first_load"]["n"] == 3, res["errors"]  # every student's first page arrived
    assert res["page_load"]["n"] > 3  # and they moved between pages
    assert res["exceptions"] == 0, res["exception_lines"]
    assert not res["errors"], res["error_examples"]
    assert res["trainings_started"] == 1
    tr = res["trainings"][0]
    assert tr["first_progress_s"] is not None or tr["first_queue_s"] is not None  # the live section answered
    assert tr["live_updates"] >= 1 and res["trainings_without_update"] == 0
    assert res["trainings_finished"] == 1, tr  # one step of 64 images
    assert res["server"]["samples"] >= 2 and res["server"]["rss_max_mib"] > 100  # sampled (1 a second) while it ran
