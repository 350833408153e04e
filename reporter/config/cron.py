"""A quick yes for the usual cron expressions, without APScheduler's parser (which imports
asyncio: 30-40 ms of every ``reporter run``, where nothing else needs it).

``surely_fires(fields)`` is True only when each of the five fields (minute hour day month
weekday) is of a plain form that APScheduler 3 accepts as well, and some date matches the
expression: ``*`` or ``*/step``; a number, ``a-b``, ``a/step`` or ``a-b/step`` within the
field's range; a month or weekday name or a range of names; ``last`` for the day; lists of these.
Anything else (an error, a rarer form, a day that only some months have) gives False, and the
caller asks APScheduler, whose messages are the ones a person reads: this module never writes
one, so a check is never weaker or worded differently than APScheduler's own.
"""

from __future__ import annotations

import re

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # APScheduler 3: 0 is Monday
# (name, lowest, highest, the names it takes) for the fields of a crontab line, in order.
FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day_of_week", 0, 6, WEEKDAYS),
)
_NUMBERS = re.compile(r"(?:(\*)|([0-9]{1,4})(?:-([0-9]{1,4}))?)(?:/([0-9]{1,4}))?")
_NAMES = re.compile(r"([a-z]{3})(?:-([a-z]{3}))?")
LAST = 32  # ``last`` in the day field: the last day of each month


def surely_fires(fields: list[str]) -> bool:
    """True when ``fields`` (a crontab line split on blanks) is valid for APScheduler and fires;
    False when that is not sure without APScheduler (see the module's docstring)."""
    if len(fields) != len(FIELDS):
        return False
    found: list[set[int]] = []
    for text, (name, low, high, names) in zip(fields, FIELDS, strict=True):
        values: set[int] = set()
        for item in text.split(","):
            more = _item(item, name, low, high, names)
            if not more:
                return False
            values |= more
        found.append(values)
    # Every month has the days 1 to 28 and a last day, each of them on every weekday in some
    # year: such a day fires. Only the days 29 to 31 may match no date: APScheduler decides.
    return any(day <= 28 or day == LAST for day in found[2])


def _item(item: str, name: str, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    """The values of one item of a field, as APScheduler reads it; empty when unsure."""
    if name == "day" and item == "last":
        return {LAST}
    if names:
        named = _NAMES.fullmatch(item.lower()) if item.isascii() else None
        if named is not None:
            offset = 1 if names is MONTHS else 0
            first, last = named.group(1), named.group(2) or named.group(1)
            if first not in names or last not in names:
                return set()
            start, end = names.index(first) + offset, names.index(last) + offset
            return set(range(start, end + 1))  # empty when start > end: APScheduler refuses it
    plain = _NUMBERS.fullmatch(item)
    if plain is None:
        return set()
    star, first, last, step = plain.groups()
    every = int(step) if step is not None else 1
    if star is not None:
        start, end = low, high
    else:
        start = int(first)
        end = int(last) if last is not None else (high if step is not None else start)
    # APScheduler's own rules: a step of at least 1 and at most the range's width, a range in
    # order and within the field's bounds.
    if every < 1 or start < low or end > high or start > end:
        return set()
    if step is not None and every > end - start:
        return set()
    return set(range(start, end + 1, every))
