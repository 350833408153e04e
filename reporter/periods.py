"""Reporting periods: a month, a calendar quarter or an ISO week, as local dates.

A ``Period`` is a closed range of local calendar dates ``[start, end]`` in the report's
timezone. Labels: ``2026-10`` (month), ``2026-Q4`` (quarter), ``2026-W43`` (ISO week).
``shift(n)`` moves by whole periods; ``prior_year()`` is the same period one year earlier (for
a week: the same ISO week number of the previous ISO year, or its last week when that year has
no week 53).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

Grain = Literal["month", "quarter", "week"]

_LABELS = {
    "month": re.compile(r"^(\d{4})-(\d{2})$"),
    "quarter": re.compile(r"^(\d{4})-Q([1-4])$"),
    "week": re.compile(r"^(\d{4})-W(\d{2})$"),
}
EXAMPLES = {"month": "2026-10", "quarter": "2026-Q4", "week": "2026-W43"}


def _weeks_in_iso_year(year: int) -> int:
    return dt.date(year, 12, 28).isocalendar().week


@dataclass(frozen=True, order=True)
class Period:
    start: dt.date
    end: dt.date
    grain: Grain

    # -- construction -------------------------------------------------------------------
    @classmethod
    def parse(cls, label: str, grain: Grain) -> Period:
        """The period named ``label``; ValueError with a hint when it is not one."""
        match = _LABELS[grain].match(label.strip())
        if not match:
            raise ValueError(f"'{label}' is not a {grain} label; write it like {EXAMPLES[grain]}")
        year, num = int(match.group(1)), int(match.group(2))
        if year < 1900 or year > 2999:
            raise ValueError(f"'{label}': year {year} is out of range")
        if grain == "month":
            if not 1 <= num <= 12:
                raise ValueError(f"'{label}': month {num} does not exist")
            return cls.containing(dt.date(year, num, 1), grain)
        if grain == "quarter":
            return cls.containing(dt.date(year, 3 * num - 2, 1), grain)
        if not 1 <= num <= _weeks_in_iso_year(year):
            raise ValueError(f"'{label}': {year} has {_weeks_in_iso_year(year)} ISO weeks")
        return cls.containing(dt.date.fromisocalendar(year, num, 1), grain)

    @classmethod
    def containing(cls, day: dt.date, grain: Grain) -> Period:
        if grain == "month":
            start = day.replace(day=1)
            return cls(start, _add_months(start, 1) - dt.timedelta(days=1), grain)
        if grain == "quarter":
            start = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
            return cls(start, _add_months(start, 3) - dt.timedelta(days=1), grain)
        start = day - dt.timedelta(days=day.isoweekday() - 1)
        return cls(start, start + dt.timedelta(days=6), grain)

    @classmethod
    def last_complete(cls, now: dt.datetime, grain: Grain, timezone: str) -> Period:
        """The last period that has wholly ended at ``now`` (aware) in ``timezone``."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        today = now.astimezone(ZoneInfo(timezone)).date()
        return cls.containing(today, grain).shift(-1)

    # -- naming ---------------------------------------------------------------------------
    @property
    def label(self) -> str:
        if self.grain == "month":
            return f"{self.start.year:04d}-{self.start.month:02d}"
        if self.grain == "quarter":
            return f"{self.start.year:04d}-Q{(self.start.month - 1) // 3 + 1}"
        iso = self.start.isocalendar()
        return f"{iso.year:04d}-W{iso.week:02d}"

    def __str__(self) -> str:
        return self.label

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    # -- arithmetic -----------------------------------------------------------------------
    def shift(self, n: int) -> Period:
        if self.grain == "month":
            return Period.containing(_add_months(self.start, n), "month")
        if self.grain == "quarter":
            return Period.containing(_add_months(self.start, 3 * n), "quarter")
        return Period.containing(self.start + dt.timedelta(weeks=n), "week")

    def prior_year(self) -> Period:
        if self.grain == "week":
            iso = self.start.isocalendar()
            week = min(iso.week, _weeks_in_iso_year(iso.year - 1))
            return Period.containing(dt.date.fromisocalendar(iso.year - 1, week, 1), "week")
        return self.shift(-12 if self.grain == "month" else -4)

    def series(self, n: int = 12) -> list[Period]:
        """The ``n`` periods ending with this one, oldest first."""
        return [self.shift(i) for i in range(-(n - 1), 1)]

    def fiscal_year_start(self, first_month: int) -> dt.date:
        """First day of the fiscal year that contains this period's end.

        Weeks use the fiscal year of their last day, so a year-to-date window always ends
        with the period and starts on the 1st of ``first_month``."""
        end = self.end
        year = end.year if end.month >= first_month else end.year - 1
        return dt.date(year, first_month, 1)

    def ytd_periods(self, first_month: int) -> list[Period]:
        """The periods of the fiscal year to date, ending with this one (the first may start
        before the fiscal year for weeks; the window itself is ``ytd_window``)."""
        start = self.fiscal_year_start(first_month)
        out = [self]
        while out[0].start > start:
            out.insert(0, out[0].shift(-1))
        return out

    def ytd_window(self, first_month: int) -> tuple[dt.date, dt.date]:
        return (self.fiscal_year_start(first_month), self.end)


def _add_months(day: dt.date, n: int) -> dt.date:
    index = day.year * 12 + (day.month - 1) + n
    return dt.date(index // 12, index % 12 + 1, 1)


def last_expected_date(period: Period, frequency: str) -> dt.date:
    """The date a source's data must reach for ``period`` to be complete: the period's last
    day for daily data, the Monday of its last week for weekly data, the 1st of its last month
    for monthly data (a monthly statement dated the 1st covers that month)."""
    if frequency == "monthly":
        return period.end.replace(day=1)
    if frequency == "weekly":
        return period.end - dt.timedelta(days=period.end.isoweekday() - 1)
    return period.end


_KEEP = re.compile(r"^\s*(\d{1,4})\s*([yd])\s*$")


def kept_since(keep: str, now: dt.datetime) -> dt.datetime:
    """The oldest time a file must still be kept at ``now`` under ``keep`` (``7y``: 7 calendar
    years; ``400d``: 400 days); ValueError with what is wrong."""
    match = _KEEP.match(keep)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"'{keep}' is not a retention: a number and y (years) or d (days)")
    count = int(match.group(1))
    if match.group(2) == "d":
        return now - dt.timedelta(days=count)
    year = now.year - count
    if year < 1:
        raise ValueError(f"'{keep}' is longer than the calendar")
    day = min(now.day, calendar.monthrange(year, now.month)[1])  # 29 February → 28
    return now.replace(year=year, day=day)


HOLD_EXAMPLES = "2025-03, 2025-Q1, 2025-W12 or 2025"


def span(label: str) -> tuple[dt.date, dt.date]:
    """The first and last day a label of any grain names — a month, a quarter, an ISO week, or a
    whole calendar year (``2025``): what a legal hold covers. ValueError with a hint otherwise."""
    text = label.strip()
    if re.fullmatch(r"\d{4}", text):
        year = int(text)
        if year < 1900 or year > 2999:
            raise ValueError(f"'{label}': year {year} is out of range")
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    grains: tuple[Grain, ...] = ("month", "quarter", "week")
    for grain in grains:
        if _LABELS[grain].match(text):
            period = Period.parse(text, grain)
            return period.start, period.end
    raise ValueError(f"'{label}' is not a period label; write it like {HOLD_EXAMPLES}")


def held_by(label: str, holds: Iterable[str]) -> str | None:
    """The first of ``holds`` (labels of any grain, see ``span``) that shares a day with the
    period ``label`` names, else None: a hold on 2025-03 holds the quarter 2025-Q1 and every
    week that has a day in March; a hold on 2025-Q1 holds its months and weeks."""
    try:
        start, end = span(label)
    except ValueError:  # not a label: only the very same text holds it
        return label if label in holds else None
    for hold in holds:
        try:
            first, last = span(hold)
        except ValueError:
            continue
        if first <= end and start <= last:
            return hold
    return None
