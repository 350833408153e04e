"""Whether a plain crontab expression is valid and fires, told without APScheduler.

Importing APScheduler's cron trigger loads asyncio, a fair part of a run's start, only to check
the schedule of a YAML that ``reporter run`` does not schedule. ``plainly_fires`` accepts the
usual numeric forms (``*``, ``N``, ``N-M``, each with an optional ``/step``, joined by commas)
under exactly the rules APScheduler 3's ``CronTrigger.from_crontab`` applies to them; anything
else (names such as ``mon``, ``last``, an error, a date no month has) returns False and is
judged by APScheduler itself, so every message about a schedule is still its own.
"""

from __future__ import annotations

import re

# minute, hour, day of month, month, day of week (APScheduler 3 counts 0 as Monday, 6 Sunday)
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
# At most 9 digits: no field goes past 59, and int() refuses a 5,000-digit string.
_ITEM = re.compile(r"(?:\*|(?P<first>[0-9]{1,9})(?:-(?P<last>[0-9]{1,9}))?)(?:/(?P<step>[0-9]{1,9}))?")
_LONGEST = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # days of each month, leap years too


def _values(field: str, low: int, high: int) -> set[int] | None:
    """The values ``field`` selects, or None where APScheduler would refuse it or this module
    does not know the form (APScheduler's ``AllExpression`` and ``RangeExpression``, checks
    included)."""
    found: set[int] = set()
    for item in field.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            return None
        first, last, step = match["first"], match["last"], match["step"]
        every = int(step) if step is not None else None
        if every == 0 or (every is not None and every > high - low):
            return None
        if first is None:  # "*" or "*/step"
            found.update(range(low, high + 1, every or 1))
            continue
        start = int(first)
        end = int(last) if last is not None else (start if every is None else None)
        if end is not None and start > end:
            return None
        if start < low or (end is not None and end > high):
            return None
        if every is not None and every > (end or high) - start:  # APScheduler's own test
            return None
        found.update(range(start, (high if end is None else end) + 1, every or 1))
    return found


def plainly_fires(schedule: str) -> bool:
    """True when ``schedule`` is five numeric fields APScheduler accepts and some date matches
    (a day that exists in one of its months); False means: ask APScheduler."""
    fields = schedule.split()
    if len(fields) != 5:
        return False
    values = [_values(field, low, high) for field, (low, high) in zip(fields, _BOUNDS, strict=True)]
    minutes, hours, days, months, weekdays = values
    if minutes is None or hours is None or days is None or months is None or weekdays is None:
        return False
    # Every weekday falls on each date in some year, and 29 February comes back every 4 years.
    return any(day <= _LONGEST[month - 1] for month in months for day in days)
