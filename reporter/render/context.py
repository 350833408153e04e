"""Formatting for templates: every number, currency, percentage and date through Babel.

Templates never compute; they call these filters to *format* what ``Results`` holds. The rules
(documented in the README):

- null is "—";
- ``integer``: no decimals; ``number``: 2 decimals under 10, 1 under 100, none above;
- ``currency``: the locale's currency format, 2 decimals under 1,000, none above (nor for 0);
- ``percent``: one decimal ("12,5 %"); ``ratio``: 2 decimals; ``days``: one decimal and a unit;
- a KPI's ``decimals`` overrides the number of decimals;
- changes are signed percentages ("+4,7 %", "−3,0 %"); a percent KPI's changes are signed
  points ("+5,8 pts"), its value minus the base;
- a change shows two signals (``Formatter.delta``): an arrow for its sign (▲ up, ▼ down) and a
  tone for its judgement by the KPI's direction (better / worse, grey for a neutral KPI), the
  tone as a colour class and as a mark (✓ / ✗) for readers who cannot tell the colours apart;
- every date in one style, the locale's medium date ("31 déc. 2026", "Dec 31, 2026").
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import Translations
from markupsafe import Markup

from reporter.assets import LOCALE_DIR
from reporter.config.model import Report

DASH = "—"
MINUS = "−"
NBSP = "\u00a0"
# Holds a sign to a currency symbol at a line end: "+€34,460" may otherwise break after the "+"
# (both are prefixes to a line breaker; a sign before a digit is held by the rules themselves).
WORD_JOINER = "\u2060"
DATE_STYLE = "medium"  # the one style of every date a report prints
UP, DOWN = "▲", "▼"  # the sign of a change, never a judgement
# the judgement, besides the colour; a provisional change (``settles_after``) is not judged
MARKS = {"better": "✓", "worse": "✗", "neutral": "", "flat": "", "provisional": ""}


def _with_decimals(pattern: str, decimals: int) -> str:
    """Give a Babel number pattern exactly ``decimals`` fraction digits."""
    pattern = pattern.split(";")[0]
    match = re.search(r"[#0,]*0(\.0*#*)?", pattern)
    if not match:
        return pattern
    integer = match.group(0).split(".")[0]
    fraction = ("." + "0" * decimals) if decimals else ""
    return pattern[: match.start()] + integer + fraction + pattern[match.end() :]


@cache
def translations(language: str) -> Translations:
    """The template words for ``language`` from ``templates/locale/<language>.po`` (English,
    the source language, when there is no catalog)."""
    po = LOCALE_DIR / f"{language}.po"
    if not po.is_file():
        return Translations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def join_sign(sign: str, figure: str) -> str:
    """A sign before a figure, that no line end parts: "+" and "€34,460" joined by a word joiner
    (invisible); a figure that starts with a digit ("34 460 €", "4.7%") holds to its sign as is."""
    return sign + (figure if figure[:1].isdigit() else WORD_JOINER + figure)


def lcfirst(text: str) -> str:
    """A label inside a sentence ("2 nicht im Plan"): only its first letter lowered, since
    ``lower`` would also lower German nouns and acronyms."""
    return text[:1].lower() + text[1:]


class Formatter:
    """Locale-aware formatting, exposed to templates as filters."""

    def __init__(self, locale: str, currency: str, timezone: str = "UTC"):
        self.locale = Locale.parse(locale)
        self.currency = currency
        self.timezone = timezone
        self._ = translations(self.locale.language).gettext

    @classmethod
    def for_report(cls, report: Report) -> Formatter:
        """The formatter of a report's locale, currency and time zone."""
        return cls(report.locale, report.currency, report.timezone)

    # numbers ------------------------------------------------------------------------
    def value(self, v: float | None, fmt: str = "number", decimals: int | None = None) -> str:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return DASH
        loc = self.locale
        if fmt == "percent":
            pattern = _with_decimals(loc.percent_formats[None].pattern, 1 if decimals is None else decimals)
            return self._minus(format_percent(v, pattern, locale=loc))
        if fmt == "currency":
            d = decimals if decimals is not None else self.sized_decimals(v, fmt)
            pattern = _with_decimals(loc.currency_formats["standard"].pattern, d)
            text = self._minus(format_currency(v, self.currency, pattern, locale=loc, currency_digits=False))
            return join_sign(text[0], text[1:]) if text.startswith(MINUS) else text
        if fmt == "integer":
            d = 0 if decimals is None else decimals
        elif fmt == "ratio":
            d = 2 if decimals is None else decimals
        elif fmt == "days":
            d = 1 if decimals is None else decimals
        else:
            d = decimals if decimals is not None else self.sized_decimals(v, fmt)
        pattern = _with_decimals(loc.decimal_formats[None].pattern, d)
        text = self._minus(format_decimal(v, pattern, locale=loc))
        if fmt == "days":
            text += " " + self._("days")
        return text

    @staticmethod
    def sized_decimals(v: float, fmt: str) -> int:
        """The decimals of a format whose decimals follow the size of the number: currency
        (2 under 1,000, none above nor for 0), number (2 under 10, 1 under 100, none above)."""
        if fmt == "currency":
            return 0 if abs(v) >= 1000 or v == 0 else 2
        return 2 if abs(v) < 10 else 1 if abs(v) < 100 else 0

    def change(self, v: float | None) -> str:
        """A signed percentage: +4.7 %, −3.0 %."""
        if v is None:
            return DASH
        pattern = _with_decimals(self.locale.percent_formats[None].pattern, 1)
        text = self._minus(format_percent(abs(v), pattern, locale=self.locale))
        if round(v, 3) == 0:
            return text
        return join_sign("+" if v > 0 else MINUS, text)

    def attainment(self, v: float | None) -> str:
        if v is None:
            return DASH
        pattern = _with_decimals(self.locale.percent_formats[None].pattern, 0)
        return self._minus(format_percent(v, pattern, locale=self.locale))

    def points(self, v: float | None, fmt: str = "percent") -> str:
        """A change in points (value − base), one decimal: of a percent KPI ``v`` is a fraction
        (0.058 → "+5,8 pts"), of a score in its own unit (−0.8 → "−0,8 pts")."""
        if v is None:
            return DASH
        pattern = _with_decimals(self.locale.decimal_formats[None].pattern, 1)
        scale = 100 if fmt == "percent" else 1
        number = format_decimal(abs(v) * scale, pattern, locale=self.locale)
        if round(v * scale, 1) != 0:
            number = join_sign("+" if v > 0 else MINUS, number)
        # a rate's points are percentage points ("Pp." in German), a score's plain points ("Pkt.")
        words = self._("%(points)s pts") if fmt == "percent" else self._("%(points)s score points")
        return (words % {"points": number}).replace(" ", NBSP)

    def shift(self, relative: float | None, points: float | None, fmt: str) -> str:
        """A KPI's change as the report writes it: in points when it has them (a KPI whose
        ``change`` is points: by default a percent KPI), else relative."""
        return self.points(points, fmt) if points is not None else self.change(relative)

    @staticmethod
    def signal(relative: float | None, points: float | None, fmt: str, direction: str) -> tuple[str, str]:
        """The two signals of a change: its arrow (▲ up, ▼ down, "" none or unchanged as printed)
        and its tone: better or worse by ``direction``, neutral for a neutral KPI, flat when none."""
        v: float | None = relative
        digits = 3
        if points is not None:  # printed with one decimal of a point
            v, digits = points, 3 if fmt == "percent" else 1
        if v is None or round(v, digits) == 0:
            return "", "flat"
        arrow = UP if v > 0 else DOWN
        if direction not in ("up", "down"):
            return arrow, "neutral"
        return arrow, "better" if (v > 0) == (direction == "up") else "worse"

    def delta_text(self, item: Any, base: str | None = None) -> str:
        """A change with its arrow and judgement mark, as plain text: "▲ +5,8 pts ✓".
        ``item``: a KPI of results.json with ``base`` (previous or prior_year), or a move.
        A provisional KPI's change (its value is not final: ``settles_after``) is not judged:
        its arrow and "(provisional)", never ✓ or ✗ ("▲ +631,5 % (provisoire)")."""
        relative, points, fmt, _ = _change_of(item, base)
        arrow, tone = self._tone(item, base)
        text = self.shift(relative, points, fmt)
        if tone == "provisional":
            return NBSP.join(p for p in (arrow, text) if p) + " " + self._("(provisional)")
        return NBSP.join(p for p in (arrow, text, MARKS[tone]) if p)

    def delta(self, item: Any, base: str | None = None) -> Markup:
        """``delta_text`` in a span whose class is the tone (better, worse, neutral, flat); a
        provisional change with "provisional" under it, as its value has in the table."""
        arrow, tone = self._tone(item, base)
        if tone == "provisional":
            relative, points, fmt, _ = _change_of(item, base)
            text = NBSP.join(p for p in (arrow, self.shift(relative, points, fmt)) if p)
            return Markup('<span class="delta provisional">{}</span><div class="sub">{}</div>').format(
                text, self._("provisional")
            )
        return Markup('<span class="delta {}">{}</span>').format(tone, self.delta_text(item, base))

    def _tone(self, item: Any, base: str | None) -> tuple[str, str]:
        """``signal`` of a change, its tone ``provisional`` when the item's value is not final
        (a KPI with ``settles_after``: its value in P is provisional, so is any change of it)."""
        relative, points, fmt, direction = _change_of(item, base)
        arrow, tone = self.signal(relative, points, fmt, direction)
        shown = points if points is not None else relative
        if shown is not None and _field(item, "provisional", False):
            return arrow, "provisional"
        return arrow, tone

    def delta_legend(self) -> str:
        """What the two signals mean, for a legend under the tables that show changes."""
        return self._(
            "▲ ▼ up or down · ✓ better · ✗ worse (by the indicator's direction) · "
            "grey: no preferred direction"
        )

    @staticmethod
    def _minus(text: str) -> str:
        return text.replace("-", MINUS)

    # dates ----------------------------------------------------------------------------
    def date(self, value: str | dt.date | None, style: str | None = None) -> str:
        """A date in the report's one style (``DATE_STYLE``); ``style`` is accepted for templates
        written before, and ignored, so that no date prints in another style."""
        if not value:
            return DASH
        day = dt.date.fromisoformat(value) if isinstance(value, str) else value
        return format_date(day, DATE_STYLE, locale=self.locale)

    def timestamp(self, value: str | None) -> str:
        """A moment in the report's time zone: its date as ``date`` writes it, then the time
        ("26 nov. 2026, 07:00"), joined as the locale joins a medium date and time."""
        if not value:
            return DASH
        from zoneinfo import ZoneInfo

        moment = dt.datetime.fromisoformat(value).astimezone(ZoneInfo(self.timezone))
        day = self.date(moment.date())
        time = format_time(moment, "HH:mm", tzinfo=ZoneInfo(self.timezone), locale=self.locale)
        glue = str(self.locale.datetime_formats[DATE_STYLE]).replace("'", "")
        return glue.replace("{1}", day).replace("{0}", time)

    def period(self, label: str, start: str, grain: str) -> str:
        """The period in words: "octobre 2026", "T4 2026", "semaine 43 de 2026"."""
        day = dt.date.fromisoformat(start)
        if grain == "month":
            # The locale's own pattern: "octobre 2026", but "octubre de 2026" in Spanish.
            return format_skeleton("yMMMM", day, locale=self.locale)
        if grain == "quarter":
            return format_skeleton("yQQQ", day, locale=self.locale)
        year, week = label.split("-W")
        return self._("week %(week)s of %(year)s") % {"week": int(week), "year": year}

    def short_period(self, label: str, grain: str) -> str:
        """A series point's label for chart axes: "oct.", "T4", "S43"."""
        if grain == "month":
            year, month = label.split("-")
            return format_date(dt.date(int(year), int(month), 1), "LLL", locale=self.locale)
        return label.split("-", 1)[1]

    def filters(self) -> dict[str, Any]:
        return {
            "fmt": self.value,
            "change": self.change,
            "attainment": self.attainment,
            "points": self.points,
            "delta": self.delta,
            "delta_text": self.delta_text,
            "date": self.date,
            "timestamp": self.timestamp,
            "lcfirst": lcfirst,
        }


def _field(item: Any, key: str, default: Any = None) -> Any:
    """A field of a mapping (a move of ``r.moves``) or of a typed view's KPI."""
    if isinstance(item, Mapping):
        return item.get(key, default)
    return getattr(item, key, default)


def _change_of(item: Any, base: str | None) -> tuple[float | None, float | None, str, str]:
    """(relative change, change in points, format, direction) of a KPI against ``base``, or of
    a move (``base`` None). ``item`` is a mapping (a move of ``r.moves``) or a typed view's KPI."""

    def get(key: str, default: Any = None) -> Any:
        return _field(item, key, default)

    if base is None:
        return get("change"), get("change_pp"), get("format"), get("direction", "up")
    return get(f"change_vs_{base}"), get(f"change_pp_vs_{base}"), get("format"), get("direction", "up")
