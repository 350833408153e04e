"""How often a source's rows come: the frequency its data shows when it is sparser than the one
it declares (the completeness gate's hint and validate's warning both ask)."""

from __future__ import annotations

import datetime as dt

import duckdb

from reporter.compute.pushdown import RemoteInfo
from reporter.config.model import Config
from reporter.config.sql import quote_ident
from reporter.periods import Grain, Period, last_expected_date
from reporter.sources import SourceInfo

_DENSER = ("daily", "weekly", "monthly")  # densest first
_BUCKET = {"month": "month", "quarter": "quarter", "week": "week"}


def spacing(con: duckdb.DuckDBPyConnection, config: Config, info: SourceInfo) -> str | None:
    """The frequency a source's rows show (weekly or monthly) when it is sparser than the one the
    source declares, else None: in most of the (up to 12) whole periods before its last one, is
    its last row on the period's last day (daily), in its last week (weekly), or only in its last
    month (monthly)? None for a source in another database, or with too little data to tell."""
    if isinstance(info, RemoteInfo) or info.last_date is None:
        return None
    grain = config.report.grain
    last = Period.containing(dt.date.fromisoformat(info.last_date[:10]), grain)
    rows = con.execute(
        f"SELECT max(__day) FROM {quote_ident('src_' + info.name)} WHERE __day >= ? AND __day < ? "
        f"GROUP BY date_trunc('{_BUCKET[grain]}', __day) LIMIT 12",
        [last.shift(-12).start, last.start],
    ).fetchall()
    shown = shown_frequency([row[0] for row in rows if row[0] is not None], grain)
    if shown is None:
        return None
    declared = config.sources[info.name].frequency
    return shown if _DENSER.index(shown) > _DENSER.index(declared) else None


def shown_frequency(lasts: list[dt.date], grain: Grain) -> str | None:
    """The densest frequency (daily, weekly, monthly) that the last row of most periods
    reaches, given each whole period's last date (``lasts``); None without any."""
    if not lasts:
        return None
    for frequency in _DENSER:
        reached = sum(day >= last_expected_date(Period.containing(day, grain), frequency) for day in lasts)
        if 2 * reached >= len(lasts):
            return frequency
    return _DENSER[-1]
