"""The Data page's link (issue 14): the pipeline's text round-trips, hostile values are CourseErrors, limits first."""
import re
import time
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_core import links, pagelinks
from dl_core import transforms as T
from dl_core.datasets import DATASETS
from dl_core.errors import CourseError
from dl_core.pagelinks import data as data_link


def _values(arg: T.Arg):
    if arg.kind == "int":
        return st.integers(int(arg.lo), int(arg.hi))
    if arg.kind == "float":
        return st.floats(arg.lo, arg.hi, allow_nan=False)
    if arg.kind == "size":
        side = st.integers(int(arg.lo), int(arg.hi))
        return side | st.tuples(side, side)
    return st.sampled_from(arg.choices)


def _step(kind: T.StepKind):
    if kind.name == "Normalize":  # mean and std: the same count, std > 0
        return st.sampled_from([1, 3]).flatmap(lambda n: st.builds(
            lambda mean, std: T.Step.make("Normalize", mean=mean, std=std),
            st.lists(st.floats(0, 1), min_size=n, max_size=n), st.lists(st.floats(1e-5, 10), min_size=n, max_size=n)))
    return st.fixed_dictionaries({a.name: _values(a) for a in kind.args}).map(lambda kw: T.Step.make(kind.name, **kw))


STEPS = st.sampled_from(T.KIND_TABLE).flatmap(_step)


@settings(max_examples=300, deadline=None)
@given(st.lists(STEPS, max_size=T.MAX_STEPS))
def test_pipeline_text_round_trips_and_is_url_safe(steps):
    text = T.pipeline_text(steps)
    assert T.read_pipeline(text) == tuple(steps)
    assert quote(text, safe="") == text  # nothing a browser or chat program escapes
    assert len(text) <= links.MAX_VALUE_CHARS


@settings(max_examples=100, deadline=None)
@given(STEPS)
def test_a_step_reads_back_whatever_case_its_kind_is_written_in(step):
    text = T.pipeline_text([step])
    kind, _, rest = text.partition("_")
    assert T.read_pipeline(step.kind + ("_" + rest if rest else "")) == (step,)


def test_the_text_is_readable():
    steps = [T.Step.make("Resize", size=32), T.Step.make("RandomCrop", size=32, padding=4), T.Step.make("ToTensor"),
             T.Step.make("Normalize")]
    assert T.pipeline_text(steps) == "resize_32-randomcrop_32-totensor-normalize_0.5x0.5x0.5"
    assert T.pipeline_text([T.Step.make("RandomCrop", size=(28, 30), padding=8)]) == "randomcrop_28x30_p8"
    assert T.pipeline_text([T.Step.make("ColorJitter", hue=0.00001)]) == "colorjitter_h0.00001"  # never 1e-05
    assert T.pipeline_text([]) == "none" and T.read_pipeline("none") == ()
    assert T.read_pipeline("normalize_s0.25x0.25x0.25") == (T.Step.make("Normalize", std=(0.25,) * 3),)  # mean: 0.5


def test_the_registry_keeps_links_unambiguous():
    assert len({k.token for k in T.KIND_TABLE}) == len(T.KIND_TABLE)
    for kind in T.KIND_TABLE:
        tags = [a.tag for a in kind.args]
        assert len(set(tags)) == len(tags), kind.name
        assert "" not in tags[1:], kind.name  # only the first argument may be written bare
        assert all(a.lo >= 0 for a in kind.args), kind.name  # no minus sign: `-` only separates steps
        assert all(re.fullmatch("[a-z]*", tag) and "x" not in tag for tag in tags)


HOSTILE_PIPELINES = [
    "", " ", "-", "resize_-1", "resize_0", "resize_1025", "resize_1e3", "resize_99999999999999", "resize(32)",
    "normalize_nanxnan", "normalize_infx1x1", "normalize_0.5x0.5", "normalize_0.5x0.5x0.5x0.5", "normalize_s0",
    "randomcrop_32_p4_p4", "randomcrop_32_32", "grayscale_2", "colorjitter_b0.4_c_h", "colorjitter_b99",
    "ｒｅｓｉｚｅ_32", "resize_３２", "<script>alert(1)</script>", "../../etc/passwd", "\x00",
    "totensor--totensor",
    "-".join(["totensor"] * (T.MAX_STEPS + 1)), "totensor_" + "1" * 500, "resize_" + "9" * 1000,
    "'; DROP TABLE", "🙂", "sharpen_2", "resize_32_", "resize_1.5", "totensor_1",
]


@pytest.mark.parametrize("text", HOSTILE_PIPELINES)
def test_hostile_pipelines_are_course_errors_quickly(text):
    start = time.perf_counter()
    with pytest.raises(CourseError) as exc:
        T.read_pipeline(text)
    assert exc.value.code.startswith(("link.tf_", "tf."))
    assert time.perf_counter() - start < 0.5


def test_too_many_steps_are_refused_before_any_is_read(monkeypatch):
    calls = []
    monkeypatch.setattr(T, "_read_step", lambda n, text: calls.append(n))
    with pytest.raises(CourseError) as exc:
        T.read_pipeline("-".join(["totensor"] * 1000))
    assert exc.value.code == "link.tf_steps" and not calls


# ------------------------------------------------------------------ the page's parameters together

VALUES = st.fixed_dictionaries({
    "ds": st.sampled_from(tuple(DATASETS)), "section": st.sampled_from(data_link.SECTIONS),
    "index": st.integers(0, 999), "tf": st.lists(STEPS, max_size=5).map(tuple), "sample": st.integers(0, 999),
    "draws": st.integers(1, data_link.MAX_DRAWS), "tf_seed": st.integers(0, data_link.MAX_SEED),
    "batch": st.integers(1, data_link.MAX_BATCH), "shuffle": st.booleans(), "drop_last": st.booleans(),
    "num_workers": st.sampled_from(data_link.WORKERS), "split": st.sampled_from(data_link.SPLITS),
    "seed": st.integers(0, data_link.MAX_SEED),
})


@settings(max_examples=100, deadline=None)
@given(VALUES)
def test_the_page_link_round_trips(values):
    query = links.write(values, data_link.PARAMS)
    read, errors = pagelinks.read("data", query)
    assert not errors and read == values
    assert all(quote(v, safe="") == v for v in query.values())


def test_a_link_without_ds_keeps_the_students_pick_and_defaults_are_left_out():
    defaults = {p.name: p.default for p in data_link.PARAMS}
    assert defaults["ds"] is None and defaults["tf"] == T.COURSE_PIPELINE
    assert links.write(defaults, data_link.PARAMS) == {}
    assert links.write({**defaults, "ds": "shapes10-full"}, data_link.PARAMS) == {"ds": "shapes10-full"}


def test_a_sample_index_the_dataset_does_not_have_is_refused():
    values, errors = pagelinks.read("data", {"ds": "shapes10", "index": "5000"})
    assert [e.code for e in errors] == ["link.out_of_range"] and values["index"] == 0 and values["ds"] is None
    values, errors = pagelinks.read("data", {"ds": "shapes10-full", "sample": "49999"})
    assert not errors and values["sample"] == 49_999
    values, errors = pagelinks.read("data", {"index": "59999"})  # no dataset named: the page keeps it in range
    assert not errors


# (Full-width digits, "１２", are links.integer's to refuse: it reads them as 12, in range.)
HOSTILE = ["", "-1", "1e999", "nan", "NaN", "inf", "99999999999999999999", "<script>", "🙂", "\x00", "١٢x",
           "'; DROP TABLE", "../../etc", "user", "x" * 5000, "0x10", "1.5"]


@pytest.mark.parametrize("name", [p.name for p in data_link.PARAMS])
def test_hostile_values_give_messages_and_the_defaults(name):
    defaults = {p.name: p.default for p in data_link.PARAMS}
    for text in HOSTILE:
        values, errors = pagelinks.read("data", {name: text})
        assert errors and all(isinstance(e, CourseError) and e.code.startswith(("link.", "tf.")) for e in errors)
        assert values == defaults


def test_the_user_dataset_is_not_a_link_value():
    values, errors = pagelinks.read("data", {"ds": "user"})
    assert errors and values["ds"] is None
