"""dl_core/links.py: a page's settings as query parameters, read strictly (hypothesis for the readers)."""
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dl_core import links
from dl_core.errors import CourseError

HOSTILE = ["", " ", "-", "1e999", "nan", "NaN", "inf", "-inf", "0x10", "１２", "2" * 5000, "<script>", "1;2",
           "'; DROP TABLE", "\x00", "../../etc/passwd", "٣", "1_000", "+-1", "1.5.2", "true!", "🙂"]


@given(st.integers(-50, 50), st.integers(0, 100))
def test_integer_round_trip_and_range(lo, span):
    read = links.integer(lo, lo + span)
    for value in (lo, lo + span, lo + span // 2):
        assert read(str(value)) == value
    with pytest.raises(CourseError) as exc:
        read(str(lo + span + 1))
    assert exc.value.code == "link.out_of_range"


@given(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
def test_number_round_trip(value):
    assert links.number(-1e6, 1e6)(links.write_number(value)) == value


@given(st.lists(st.lists(st.integers(-99, 99), min_size=3, max_size=3), min_size=1, max_size=7))
def test_grid_round_trip(rows):
    assert links.grid(7, 7)(links.write_grid(rows)) == rows


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_values_are_course_errors(text):
    for read in (links.integer(0, 10), links.number(0, 10), links.choice(["sgd", "adam"]), links.flag,
                 links.grid(5, 5)):
        try:
            value = read(text)
        except CourseError as exc:
            assert exc.code.startswith("link.")
        else:  # what passes is a real, bounded value
            assert not isinstance(value, float) or math.isfinite(value)


def test_ragged_or_huge_grids_are_refused():
    for text in ("1,2;3", "1,2,3,4,5,6", ";".join(["1"] * 9), "1,,2", "a,b"):
        with pytest.raises(CourseError):
            links.grid(8, 5)(text)


PARAMS = [links.Param("stride", links.integer(1, 5), default=1),
          links.Param("lr", links.number(1e-6, 10), links.write_number, 0.01),
          links.Param("bias", links.flag, links.write_flag, False)]


def test_read_names_each_wrong_parameter_and_keeps_defaults():
    values, errors = links.read({"stride": "-1", "lr": "nan", "bias": "1", "lang": "en", "other": "x"}, PARAMS)
    assert sorted(e.params["name"] for e in errors) == ["lr", "stride"]
    assert values["stride"] == 1 and values["bias"] is True


def test_write_leaves_defaults_out_and_reads_back():
    query = links.write({"stride": 2, "lr": 0.01, "bias": True}, PARAMS)
    assert query == {"stride": "2", "bias": "1"}
    values, errors = links.read(query, PARAMS)
    assert not errors and values == {"stride": 2, "lr": 0.01, "bias": True}


def test_a_huge_query_is_refused_before_reading():
    calls = []
    params = [links.Param(f"p{i}", lambda text: calls.append(text)) for i in range(10)]
    values, errors = links.read({f"p{i}": "x" * 1_999 for i in range(10)}, params)
    assert errors and errors[0].code == "link.too_long" and not calls


def test_only_plain_ascii_numbers():
    for text in ("１２", "1_000", "٣", "1e", "e5", "--1", "1.2.3", " 1", "0x1f", "1e9999"):
        with pytest.raises(CourseError):
            links.number(-1e300, 1e300)(text)
    for text in ("１", "1_0", "+-1", "٣"):
        with pytest.raises(CourseError):
            links.integer(-100, 100)(text)
    assert links.number(0, 1)(".5") == 0.5 and links.number(0, 1)("1e-3") == 0.001
