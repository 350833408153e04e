"""Formulas: parsing refuses anything but arithmetic; evaluation is null-safe."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reporter.compute.evaluate import attainment, change, status
from reporter.formulas import FormulaSyntaxError, parse


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("a / b", {"a": 1, "b": 4}, 0.25),
        ("a / b", {"a": 1, "b": 0}, None),
        ("a / b", {"a": 0, "b": 0}, None),
        ("(a - b) / b * 100", {"a": 150, "b": 100}, 50.0),
        ("-a + 2", {"a": 5}, -3.0),
        ("a + b", {"a": None, "b": 1}, None),
        ("coalesce(a, b, 0)", {"a": None, "b": None}, 0.0),
        ("coalesce(a, 7)", {"a": None}, 7.0),
        ("max(a, b)", {"a": 2, "b": 9}, 9.0),
        ("min(a, b)", {"a": 2, "b": None}, None),
        ("abs(a)", {"a": -3}, 3.0),
        ("round(a, 1)", {"a": 2.26}, 2.3),
        ("a / (b - b)", {"a": 1, "b": 3}, None),
        ("a * 1e308 * 10", {"a": 10}, None),
    ],
)
def test_evaluate(text, values, expected):
    assert parse(text).evaluate(values) == expected


def test_names_in_order():
    assert parse("(mql + sql) / leads - mql").names == ("mql", "sql", "leads")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a ** 2", "operator 'a ** 2' is not allowed; use + - * / and parentheses"),
        (
            "__import__('os').system('x')",
            "unknown function '__import__('os').system'; functions are min, max, abs, round, coalesce",
        ),
        ("a.b", "'a.b' is not allowed; a formula is arithmetic over metric and KPI names"),
        ("'x'", "'x' is not a number"),
        ("a +", "the formula ends with '+'; something is missing after it"),
        ("(a + b", "unbalanced parentheses: 1 '(' and 0 ')'"),
        ("a b", "invalid formula syntax at character 3: 'b'"),
        ("sqrt(a)", "unknown function 'sqrt'; functions are min, max, abs, round, coalesce"),
        ("abs(a, b)", "abs() takes 1 argument(s), got 2"),
        (
            "a if b else c",
            "'a if b else c' is not allowed; a formula is arithmetic over metric and KPI names",
        ),
        ("a < b", "'a < b' is not allowed; a formula is arithmetic over metric and KPI names"),
        ("", "the formula is empty"),
    ],
)
def test_refused(text, message):
    with pytest.raises(FormulaSyntaxError) as exc:
        parse(text)
    assert str(exc.value) == message


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)


@given(finite, finite, st.sampled_from(["up", "down"]))
@example(240_000_000.0, 1.33e-300, "up")  # the ratio overflows with a target above 1e-300
def test_attainment_and_status_properties(value, target, direction):
    a = attainment(value, target, direction)
    s = status(value, target, direction)
    if target == 0:
        assert a is None
        good = value >= 0 if direction == "up" else value <= 0
        assert s == ("on_track" if good else "off_track")
        return
    better = value >= target if direction == "up" else value <= target
    if a is None:  # only when the ratio overflows (a target within a hair of 0)
        assert not math.isfinite(1 + (value - target) / abs(target))
        assert s == ("on_track" if better else "off_track")
        return
    assert math.isclose(
        a, 1 + (1 if direction == "up" else -1) * (value - target) / abs(target), rel_tol=1e-12, abs_tol=1e-12
    )
    # Better than target in the KPI's direction is never worse than on track.
    if better:
        assert s == "on_track"
    assert s == ("on_track" if a >= 1.0 else "at_risk" if a >= 0.9 else "off_track")


@given(finite, finite, finite)
@example(0.0, 438031978.0, 2.4366337566390344e-300)  # the ratio overflows: null, not a crash
def test_attainment_is_monotonic_in_value(v1, v2, target):
    lo, hi = sorted([v1, v2])
    for direction, ordered in (("up", lambda a, b: a <= b), ("down", lambda a, b: a >= b)):
        a_lo, a_hi = attainment(lo, target, direction), attainment(hi, target, direction)
        if target == 0 or a_lo is None or a_hi is None:
            # null by design: no target, or a ratio that overflows (a target near 0)
            assert target == 0 or abs((hi - target) / target) > 1e300 or abs((lo - target) / target) > 1e300
            continue
        assert ordered(a_lo, a_hi)


def test_status_without_value_or_target():
    assert status(None, 10, "up") == "no_data"
    assert status(5, None, "up") == "no_target"
    assert status(None, None, "up") == "no_data"


def test_change():
    assert change(110, 100) == pytest.approx(0.1)
    assert change(-50, -100) == pytest.approx(0.5)
    assert change(1, 0) is None
    assert change(None, 1) is None


def test_the_divisor_of_a_ratio_kpi():
    from reporter.formulas import ratio_base

    formulas = {
        name: parse(text)
        for name, text in {
            "conversion": "won / leads",
            "win_rate": "won / (won + lost)",
            "shown": "conversion",  # another KPI by its name: followed
            "leads": "leads",  # a KPI presenting the metric of its name: not a ratio
            "percent": "won / leads * 100",  # a product at the top, not a division
            "margin": "(revenue - cost) / revenue",
            "thousands": "revenue / 1000",  # a change of unit
            "loop_a": "loop_b",
            "loop_b": "loop_a",
        }.items()
    }
    metrics = {"won", "lost", "leads", "revenue", "cost"}

    def base(name):
        found = ratio_base(name, formulas, metrics)
        return None if found is None else found.text

    assert base("conversion") == "leads"
    assert base("win_rate") == "won + lost"
    assert base("shown") == "leads"
    assert base("margin") == "revenue"
    assert base("leads") is None
    assert base("percent") is None
    assert base("thousands") is None
    assert base("loop_a") is None
    assert base("unknown") is None
