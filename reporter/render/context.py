"""Formatting for templates: every number, currency, percentage and date through Babel.

Templates never compute; they call these filters to *format* what ``Results`` holds. The rules
(documented in the README):

- null is "—";
- ``integer``: no decimals; ``number``: 2 decimals under 10, 1 under 100, none above;
- ``currency``: the locale's currency format, 2 decimals under 1,000, none above;
- ``percent``: one decimal ("12,5 %"); ``ratio``: 2 decimals; ``days``: one decimal and a unit;
- a KPI's ``decimals`` overrides the number of decimals;
- changes are signed percentages ("+4,7 %", "−3,0 %").
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from functools import cache
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import Translations

from reporter.assets import LOCALE_DIR
from reporter.config.model import Report

DASH = "—"
MINUS = "−"


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
            d = decimals if decimals is not None else (0 if abs(v) >= 1000 else 2)
            pattern = _with_decimals(loc.currency_formats["standard"].pattern, d)
            return self._minus(format_currency(v, self.currency, pattern, locale=loc, currency_digits=False))
        if fmt == "integer":
            d = 0 if decimals is None else decimals
        elif fmt == "ratio":
            d = 2 if decimals is None else decimals
        elif fmt == "days":
            d = 1 if decimals is None else decimals
        else:
            d = decimals if decimals is not None else (2 if abs(v) < 10 else 1 if abs(v) < 100 else 0)
        pattern = _with_decimals(loc.decimal_formats[None].pattern, d)
        text = self._minus(format_decimal(v, pattern, locale=loc))
        if fmt == "days":
            text += " " + self._("days")
        return text

    def change(self, v: float | None) -> str:
        """A signed percentage: +4.7 %, −3.0 %."""
        if v is None:
            return DASH
        pattern = _with_decimals(self.locale.percent_formats[None].pattern, 1)
        text = self._minus(format_percent(abs(v), pattern, locale=self.locale))
        if round(v, 3) == 0:
            return text
        return ("+" if v > 0 else MINUS) + text

    def attainment(self, v: float | None) -> str:
        if v is None:
            return DASH
        pattern = _with_decimals(self.locale.percent_formats[None].pattern, 0)
        return self._minus(format_percent(v, pattern, locale=self.locale))

    @staticmethod
    def _minus(text: str) -> str:
        return text.replace("-", MINUS)

    # dates ----------------------------------------------------------------------------
    def date(self, value: str | dt.date | None, style: str = "long") -> str:
        if not value:
            return DASH
        day = dt.date.fromisoformat(value) if isinstance(value, str) else value
        return format_date(day, style, locale=self.locale)

    def timestamp(self, value: str | None) -> str:
        if not value:
            return DASH
        from zoneinfo import ZoneInfo

        moment = dt.datetime.fromisoformat(value).astimezone(ZoneInfo(self.timezone))
        return format_datetime(moment, "d MMMM y HH:mm", tzinfo=ZoneInfo(self.timezone), locale=self.locale)

    def period(self, label: str, start: str, grain: str) -> str:
        """The period in words: "octobre 2026", "T4 2026", "semaine 43 de 2026"."""
        day = dt.date.fromisoformat(start)
        if grain == "month":
            return format_date(day, "LLLL y", locale=self.locale)
        if grain == "quarter":
            return format_date(day, "QQQ y", locale=self.locale)
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
            "date": self.date,
            "timestamp": self.timestamp,
            "lcfirst": lcfirst,
        }
