"""Period arithmetic: properties checked against the calendar itself (hypothesis)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reporter.periods import Period

days = st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2900, 12, 31))
grains = st.sampled_from(["month", "quarter", "week"])


@given(days, grains)
def test_containing_holds_the_day_and_tiles_the_calendar(day, grain):
    p = Period.containing(day, grain)
    assert p.start <= day <= p.end
    assert p.shift(1).start == p.end + dt.timedelta(days=1)
    assert p.shift(-1).end == p.start - dt.timedelta(days=1)
    if grain == "month":
        assert (p.start.day, (p.end + dt.timedelta(days=1)).day) == (1, 1)
        assert p.start.month == p.end.month
    elif grain == "quarter":
        assert p.start.month in (1, 4, 7, 10)
        assert p.start.day == 1
        assert 90 <= p.days <= 92
    else:
        assert p.start.isoweekday() == 1
        assert p.days == 7


@given(days, grains)
def test_label_round_trips(day, grain):
    p = Period.containing(day, grain)
    assert Period.parse(p.label, grain) == p


@given(days, grains, st.integers(-200, 200), st.integers(-200, 200))
def test_shift_is_additive(day, grain, a, b):
    p = Period.containing(day, grain)
    assert p.shift(a).shift(b) == p.shift(a + b)


@given(days, grains)
def test_series_is_twelve_consecutive_periods_ending_with_p(day, grain):
    p = Period.containing(day, grain)
    s = p.series(12)
    assert len(s) == 12
    assert s[-1] == p
    for older, newer in itertools.pairwise(s):
        assert older.end + dt.timedelta(days=1) == newer.start


@given(days, st.sampled_from(["month", "quarter"]))
def test_prior_year_is_same_period_one_year_earlier(day, grain):
    p = Period.containing(day, grain)
    py = p.prior_year()
    assert py.start == p.start.replace(year=p.start.year - 1)
    assert py.label[4:] == p.label[4:]


@given(days)
def test_prior_year_of_a_week_is_the_same_iso_week_number(day):
    p = Period.containing(day, "week")
    py = p.prior_year()
    year, week, _ = p.start.isocalendar()
    pyear, pweek, _ = py.start.isocalendar()
    assert pyear == year - 1
    weeks_last_year = dt.date(year - 1, 12, 28).isocalendar().week
    assert pweek == min(week, weeks_last_year)


@given(days, grains, st.integers(1, 12))
def test_ytd_window_starts_at_fiscal_year_and_ends_with_period(day, grain, fy):
    p = Period.containing(day, grain)
    start, end = p.ytd_window(fy)
    assert end == p.end
    assert start.day == 1
    assert start.month == fy
    assert start <= p.end
    assert (p.end - start).days < 366
    periods = p.ytd_periods(fy)
    assert periods[-1] == p
    assert periods[0].start <= start < periods[0].end + dt.timedelta(days=1)


def test_examples():
    assert Period.parse("2026-10", "month").end == dt.date(2026, 10, 31)
    assert Period.parse("2024-02", "month").end == dt.date(2024, 2, 29)
    assert Period.parse("2026-Q4", "quarter").start == dt.date(2026, 10, 1)
    assert Period.parse("2026-W43", "week").start == dt.date(2026, 10, 19)
    assert Period.parse("2020-W53", "week").prior_year().label == "2019-W52"
    assert Period.parse("2026-W53", "week").start == dt.date(2026, 12, 28)
    assert Period.parse("2026-01", "month").shift(-1).label == "2025-12"


@pytest.mark.parametrize(
    ("label", "grain", "message"),
    [
        ("2026-13", "month", "'2026-13': month 13 does not exist"),
        ("2026-Q4", "month", "'2026-Q4' is not a month label; write it like 2026-10"),
        ("2025-W53", "week", "'2025-W53': 2025 has 52 ISO weeks"),
        ("26-10", "month", "'26-10' is not a month label; write it like 2026-10"),
    ],
)
def test_bad_labels(label, grain, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(") + "$"):
        Period.parse(label, grain)


@given(
    st.datetimes(
        min_value=dt.datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=dt.datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(dt.UTC),
    ),
    grains,
    st.sampled_from(["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC"]),
)
def test_last_complete_has_ended_in_the_zone(now, grain, zone):
    from zoneinfo import ZoneInfo

    p = Period.last_complete(now, grain, zone)
    today = now.astimezone(ZoneInfo(zone)).date()
    assert p.end < today
    assert p.shift(1).start <= today <= p.shift(1).end
