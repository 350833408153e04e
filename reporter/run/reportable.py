"""Periods that cannot be reported, refused as usage errors (exit 2) before any file is written:
one that has not begun, one that has not ended while the completeness gate is on (with the gate
off, a period in progress is a flash report on the data so far), and one that ends before every
source's first day of data."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from reporter.config.model import Config
from reporter.errors import UsageError
from reporter.periods import Period
from reporter.results import Results


def refuse_unended(config: Config, period: Period, now: dt.datetime, *, in_progress: bool) -> None:
    """UsageError when ``period`` has not begun at ``now`` in ``report.timezone``, or has not
    ended and ``in_progress`` is false (``run`` with ``quality.require_complete_period``)."""
    tz = config.report.timezone
    today = now.astimezone(ZoneInfo(tz)).date()
    if period.end < today:
        return
    last = Period.last_complete(now, config.report.grain, tz).label
    if period.start > today:
        raise UsageError(
            f"period {period.label} has not begun yet (it starts on {period.start.isoformat()}); "
            f"the last complete period is {last}"
        )
    if not in_progress:
        raise UsageError(
            f"period {period.label} has not ended yet (it ends on {period.end.isoformat()}); "
            f"the last complete period is {last}; to report on a period in progress, "
            "set `quality.require_complete_period: false`"
        )


def refuse_before_data(config: Config, results: Results) -> None:
    """UsageError when the period ends before the first day of data of every source that has
    data (a period covered by some sources only is reported; so is one without any data)."""
    firsts = [s.first_date[:10] for s in results.sources if s.first_date]
    if not firsts or results.period_end >= min(firsts):
        return
    start = dt.date.fromisoformat(min(firsts))
    first = Period.containing(start, config.report.grain).label
    raise UsageError(
        f"no source has data in {results.period}: the data starts on {start.isoformat()}; "
        f"the first period with data is {first}"
    )
