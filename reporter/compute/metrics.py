"""Metrics: one aggregate of one source per window, computed in few scans.

Per source, one grouped query computes every metric of that source for every period the report
needs (the periods do not overlap, so each row is read once), and one more query computes the
windows that span several periods (year to date), where partial results cannot be combined
(``count_distinct``, ``last``). Breakdowns and the portfolio group the same aggregates by a
dimension column instead of by period.

Coverage (docs/numbers.md): a window wholly outside a source's first..last date is null for every metric
of that source; inside it, sum and count over no rows are 0, the others null.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import duckdb

from reporter.compute.pushdown import RemoteInfo
from reporter.config.model import Config, Metric
from reporter.config.sql import agg_sql, quote_ident, sql_literal, value_sql
from reporter.errors import RunError
from reporter.periods import Period
from reporter.sources import SourceInfo

P = ParamSpec("P")
R = TypeVar("R")

_BUCKET = {"month": "month", "quarter": "quarter", "week": "week"}


@dataclass(frozen=True)
class Window:
    start: dt.date
    end: dt.date


def _clean(value: Any, agg: str) -> float | None:
    if value is None:
        return 0.0 if agg in ("sum", "count", "count_distinct") else None
    number = float(value)
    return number if math.isfinite(number) else None


def _covered(info: SourceInfo, start: dt.date, end: dt.date) -> bool:
    if info.first_date is None or info.last_date is None:
        return False
    first = dt.date.fromisoformat(info.first_date)
    last = dt.date.fromisoformat(info.last_date)
    return not (end < first or start > last)


# DuckDB has no statement timeout: a timer interrupts the connection (DuckDB stops at the end
# of the row group it is working on, every 122,880 rows). The operator's REPORTER_QUERY_TIMEOUT.
QUERY_TIMEOUT = 600.0


def query_timeout() -> float:
    """REPORTER_QUERY_TIMEOUT seconds, default QUERY_TIMEOUT."""
    from reporter.config.operator import env_seconds

    return env_seconds("REPORTER_QUERY_TIMEOUT", QUERY_TIMEOUT)


class Watch:
    """Stops a DuckDB query that outlives ``query_timeout()``: one thread watches every query run
    through ``_run`` while it is active (``watching``), instead of a timer thread per query
    (starting one cost 1.3 ms of each of a report's ~50 small queries).

    A query records its deadline in ``current``; the thread sleeps until the running query's
    deadline, or one timeout ahead when none runs, and interrupts the connection only when the
    query it slept for is still the one running. Every query has the same timeout, so one that
    starts while the thread sleeps ends its deadline no earlier than the thread wakes: it never
    has to be woken, and a query costs two assignments."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.current: tuple[float, duckdb.DuckDBPyConnection] | None = None
        self.fired: set[int] = set()  # id of each connection interrupted by the watch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="reporter-query-watch", daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        wake = time.monotonic() + self.seconds
        while not self._stop.wait(max(0.0, wake - time.monotonic())):
            query, now = self.current, time.monotonic()
            if query is not None and query[0] <= now:
                self.fired.add(id(query[1]))
                query[1].interrupt()
                query = None
            wake = query[0] if query is not None else now + self.seconds


_watches = threading.local()


@contextmanager
def watching() -> Iterator[Watch]:
    """Every query that ``_run`` runs in DuckDB in this thread meanwhile is watched by one
    ``Watch`` (the compute stage of one report). Outside it, a query has a watch of its own."""
    with Watch(query_timeout()) as watch:
        before, _watches.active = getattr(_watches, "active", None), watch
        try:
            yield watch
        finally:
            _watches.active = before


def watched(func: Callable[P, R]) -> Callable[P, R]:
    """``func`` run ``watching()``: one watch for all the queries it runs."""

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with watching():
            return func(*args, **kwargs)

    return run


def _run(
    con: duckdb.DuckDBPyConnection, info: SourceInfo, sql: str, params: list[Any]
) -> list[tuple[Any, ...]]:
    """Run a query over ``src_<name>``: in the source's database when it is pushed down, else in
    DuckDB, interrupted after ``query_timeout()`` seconds."""
    if isinstance(info, RemoteInfo) and info.warehouse is not None:
        return info.warehouse.run(sql, params)
    watch = getattr(_watches, "active", None)
    if watch is None:
        with watching():
            return _run(con, info, sql, params)
    watch.current = (time.monotonic() + watch.seconds, con)
    try:
        return con.execute(sql, params).fetchall()
    except duckdb.InterruptException:
        if id(con) not in watch.fired:
            raise  # Ctrl-C
        raise RunError(
            f"source '{info.name}': computing its metrics took longer than {watch.seconds:g} s and was "
            "stopped; simplify the metrics' expr and where, or allow more time with REPORTER_QUERY_TIMEOUT"
        ) from None
    finally:
        watch.current = None


def _bucket_sql(info: SourceInfo, grain: str, periods: list[Period]) -> tuple[str, list[Any]]:
    """SQL for the start of the period holding a row's ``__day``, and its parameters."""
    if isinstance(info, RemoteInfo):  # the databases have no common date_trunc
        bucket = "CASE " + " ".join("WHEN __day BETWEEN ? AND ? THEN ?" for _ in periods) + " END"
        return bucket, [v for p in periods for v in (p.start, p.end, p.start)]
    return f"CAST(date_trunc('{_BUCKET[grain]}', __day) AS DATE)", []


def _agg(info: SourceInfo, metric: Metric, extra_filter: str | None = None) -> str:
    """The aggregate of ``metric`` in a query over ``src_<name>``. Pushed down, ``last`` becomes
    the latest value of the date column among the window's rows (``__latest``, see
    :meth:`Warehouse.translate`); :func:`_last_values` then reads the rows on that date."""
    if metric.agg != "last" or not isinstance(info, RemoteInfo):
        return agg_sql(metric, extra_filter)
    conditions = [c for c in (metric.where and f"({metric.where})", extra_filter) if c]
    filt = f" FILTER (WHERE {' AND '.join(conditions)})" if conditions else ""
    return f"max(__latest){filt}"


def _pushed_last(info: SourceInfo, metric: Metric) -> bool:
    return metric.agg == "last" and isinstance(info, RemoteInfo) and info.warehouse is not None


def _last_values(
    con: duckdb.DuckDBPyConnection,
    info: SourceInfo,
    metric: Metric,
    asks: Mapping[Any, tuple[Any, Any]],
    extra: str,
    column: str | None = None,
) -> dict[Any, Any]:
    """``last`` of a pushed-down source: ``asks`` maps a window to (its latest value of the date
    column, its group key). One query returns the rows on these latest days (of the asked keys,
    tagged with their day): one row per window unless rows tie on its latest date; the last row
    returned per day and key wins, as the pull path keeps the last row in the query's order."""
    assert isinstance(info, RemoteInfo)
    assert info.warehouse is not None
    by_day: dict[dt.date, dict[Any, Any]] = {}
    for slot, (latest, key) in asks.items():
        day = info.warehouse.local_day(latest)
        if day is not None:
            by_day.setdefault(day, {})[slot] = key
    if not by_day:
        return {}
    days = sorted(by_day)
    col = quote_ident(column) if column is not None else "NULL"
    picks: list[str] = []
    params: list[Any] = []
    for day in days:
        pick = "__day BETWEEN ? AND ?"
        params += [day, day]
        if column is not None:
            keys = set(by_day[day].values())
            parts = [f"{col} IS NULL"] if None in keys else []
            known = [literal(k) for k in keys if k is not None]
            if known:
                parts.append(f"{col} IN ({', '.join(known)})")
            pick += f" AND ({' OR '.join(parts)})"
        picks.append(f"({pick})")
    which = " ".join(f"WHEN __day BETWEEN ? AND ? THEN {i}" for i in range(len(days)))
    cond = f" AND ({metric.where})" if metric.where else ""
    sql = (
        f"SELECT CASE {which} END AS __d, {col} AS __key, {value_sql(metric)} AS __value "
        f"FROM {quote_ident('src_' + info.name)} WHERE ({' OR '.join(picks)}){cond}{extra}"
    )
    last: dict[tuple[int, Any], Any] = {}
    for d, key, value in _run(con, info, sql, [v for day in days for v in (day, day)] + params):
        last[(int(d), key)] = value
    out: dict[Any, Any] = {}
    for i, day in enumerate(days):
        for slot, key in by_day[day].items():
            out[slot] = last.get((i, key if column is not None else None))
    return out


def _by_source(config: Config, names: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in names:
        out.setdefault(config.metrics[name].source, []).append(name)
    return out


def period_metrics(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: Mapping[str, SourceInfo],
    periods: Iterable[Period],
    windows: Iterable[Window] = (),
    *,
    where: Mapping[str, str] | None = None,
    only: Iterable[str] | None = None,
) -> tuple[dict[Period, dict[str, float | None]], dict[Window, dict[str, float | None]]]:
    """Every metric (or the ``only`` ones) for each period and each (multi-period) window.

    ``where`` maps a source to an extra SQL condition on its rows (used for bursting)."""
    periods = sorted(set(periods))
    windows = sorted(set(windows), key=lambda w: (w.start, w.end))
    by_period: dict[Period, dict[str, float | None]] = {p: {} for p in periods}
    by_window: dict[Window, dict[str, float | None]] = {w: {} for w in windows}
    if not periods and not windows:
        return by_period, by_window
    grain = periods[0].grain if periods else config.report.grain
    lo = min([p.start for p in periods] + [w.start for w in windows])
    hi = max([p.end for p in periods] + [w.end for w in windows])
    for source, names in _by_source(config, config.metrics if only is None else list(only)).items():
        base_filter = f" AND ({where[source]})" if where and where.get(source) else ""
        info = infos[source]
        view = quote_ident("src_" + source)
        metrics = [config.metrics[n] for n in names]
        rows: dict[dt.date, tuple[Any, ...]] = {}
        if periods:
            cols = ", ".join(_agg(info, m) for m in metrics)
            bucket, params = _bucket_sql(info, grain, periods)
            sql = (
                f"SELECT {bucket} AS __bucket, {cols} "
                f"FROM {view} WHERE __day BETWEEN ? AND ?{base_filter} GROUP BY __bucket"
            )
            found = [f for f in _run(con, info, sql, [*params, lo, hi]) if f[0] is not None]
            for got in _pushed_last_rows(con, info, metrics, found, 1, base_filter):
                rows[_as_date(got[0])] = got[1:]
        for period in periods:
            covered = _covered(info, period.start, period.end)
            row = rows.get(period.start)
            for i, (name, metric) in enumerate(zip(names, metrics, strict=True)):
                if not covered:
                    by_period[period][name] = None
                else:
                    by_period[period][name] = _clean(row[i] if row else None, metric.agg)
        if windows:
            cols = ", ".join(
                _agg(info, m, f"__day BETWEEN DATE '{w.start}' AND DATE '{w.end}'")
                for w in windows
                for m in metrics
            )
            wlo = min(w.start for w in windows)
            whi = max(w.end for w in windows)
            sql = f"SELECT {cols} FROM {view} WHERE __day BETWEEN ? AND ?{base_filter}"
            result = _window_lasts(
                con, info, metrics, next(iter(_run(con, info, sql, [wlo, whi])), ()), base_filter
            )
            k = 0
            for w in windows:
                covered = _covered(info, w.start, w.end)
                for name, metric in zip(names, metrics, strict=True):
                    by_window[w][name] = _clean(result[k], metric.agg) if covered else None
                    k += 1
    return by_period, by_window


def grouped_metrics(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: Mapping[str, SourceInfo],
    names: Iterable[str],
    column: str,
    period: Period,
    *,
    where: Mapping[str, str] | None = None,
    exclude: list[Any] | None = None,
    only: list[str | None] | None = None,
) -> dict[Any, dict[str, float | None]]:
    """The named metrics for ``period`` grouped by the value of ``column``.

    With ``exclude``, rows whose key is in that list are dropped and everything else is
    aggregated into one group keyed ``None`` (the "other" row of a top-N breakdown). With
    ``only``, just the groups of these keys are computed (the best keys of a top-N breakdown, as
    :func:`ranked_keys` gives them: each key's text; only for sources DuckDB holds).
    A key present in one source but not another gets 0 for sums and counts of the other."""
    if exclude is None:
        return grouped_metrics_at(con, config, infos, names, column, [period], where=where, only=only)[period]
    names = list(dict.fromkeys(names))
    groups: dict[Any, dict[str, float | None]] = {}
    col = quote_ident(column)
    for source, src_names in _by_source(config, names).items():
        extra = f" AND ({where[source]})" if where and where.get(source) else ""
        metrics = [config.metrics[n] for n in src_names]
        view = quote_ident("src_" + source)
        cols = ", ".join(_agg(infos[source], m) for m in metrics)
        keys = [k for k in exclude if k is not None]
        cond = ""
        params: list[Any] = [period.start, period.end]
        if keys and isinstance(infos[source], RemoteInfo):
            cond += f" AND ({col} IS NULL OR {col} NOT IN ({', '.join(literal(k) for k in keys)}))"
        elif keys:
            cond += f" AND ({col} IS NULL OR {col} NOT IN (SELECT unnest(?)))"
            params.append(keys)
        if any(k is None for k in exclude):
            cond += f" AND {col} IS NOT NULL"
        sql = f"SELECT NULL AS __key, {cols} FROM {view} WHERE __day BETWEEN ? AND ?{extra}{cond}"
        for row in _pushed_last_rows(
            con, infos[source], metrics, _run(con, infos[source], sql, params), 1, f"{extra}{cond}"
        ):
            for i, name in enumerate(src_names):
                groups.setdefault(row[0], {})[name] = _clean(row[i + 1], metrics[i].agg)
    _fill_missing(config, infos, names, period, groups)
    return groups


def grouped_metrics_at(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: Mapping[str, SourceInfo],
    names: Iterable[str],
    column: str,
    periods: list[Period],
    *,
    where: Mapping[str, str] | None = None,
    only: list[str | None] | None = None,
) -> dict[Period, dict[Any, dict[str, float | None]]]:
    """``grouped_metrics`` for several periods, in one query per source (each row counted in the
    first of ``periods`` that holds its day); with ``only``, for these keys alone."""
    names = list(dict.fromkeys(names))
    out: dict[Period, dict[Any, dict[str, float | None]]] = {p: {} for p in periods}
    col = quote_ident(column)
    which = " ".join(f"WHEN __day BETWEEN ? AND ? THEN {i}" for i in range(len(periods)))
    inside = " OR ".join("__day BETWEEN ? AND ?" for _ in periods)
    bounds = [d for p in periods for d in (p.start, p.end)]
    for source, src_names in _by_source(config, names).items():
        extra = f" AND ({where[source]})" if where and where.get(source) else ""
        if only is not None:
            extra += _only_keys(col, only)
        metrics = [config.metrics[n] for n in src_names]
        view = quote_ident("src_" + source)
        cols = ", ".join(_agg(infos[source], m) for m in metrics)
        sql = (
            f"SELECT CASE {which} END AS __p, {col} AS __key, {cols} FROM {view} "
            f"WHERE ({inside}){extra} GROUP BY __p, __key"
        )
        found = _run(con, infos[source], sql, bounds + bounds)
        for row in _pushed_last_rows(con, infos[source], metrics, found, 2, extra, column):
            if row[0] is None:
                continue
            if isinstance(row[1], list | dict):  # a source validation could not read (SQL): an array
                kind = "lists" if isinstance(row[1], list) else "structures"
                raise RunError(
                    f"source '{source}': column '{column}' holds {kind}, which cannot be grouped; "
                    "group by a column of text, numbers or dates"
                )
            groups = out[periods[int(row[0])]]
            for i, name in enumerate(src_names):
                groups.setdefault(row[1], {})[name] = _clean(row[i + 2], metrics[i].agg)
    for period, groups in out.items():
        _fill_missing(config, infos, names, period, groups)
    return out


def _only_keys(col: str, keys: list[str | None]) -> str:
    """A condition keeping the rows whose ``col``, as DuckDB writes it in text, is one of
    ``keys`` (None: a null key). Text compares any type exactly (an interval, a timestamp...)."""
    listed = [sql_literal(k) for k in keys if k is not None]
    parts = [f"CAST({col} AS VARCHAR) IN ({', '.join(listed)})"] if listed else []
    if any(k is None for k in keys):
        parts.append(f"{col} IS NULL")
    return f" AND ({' OR '.join(parts) or 'FALSE'})"


def distinct_keys(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: Mapping[str, SourceInfo],
    names: Iterable[str],
    column: str,
    period: Period,
    *,
    where: Mapping[str, str] | None = None,
) -> tuple[int, str]:
    """How many distinct values (a null counted as one) ``column`` holds among ``period``'s rows
    in each source of the named metrics: the largest count and its source. One count per source,
    in the source's database, before any group is fetched."""
    col = quote_ident(column)
    best = (0, "")
    for source in _by_source(config, list(dict.fromkeys(names))):
        extra = f" AND ({where[source]})" if where and where.get(source) else ""
        view = quote_ident("src_" + source)
        sql = (
            f"SELECT count(DISTINCT {col}), count(*) - count({col}) FROM {view} "
            f"WHERE __day BETWEEN ? AND ?{extra}"
        )
        found = _run(con, infos[source], sql, [period.start, period.end])
        distinct, nulls = found[0] if found else (0, 0)
        count = int(distinct or 0) + (1 if nulls else 0)
        if count > best[0]:
            best = (count, source)
    return best


def ranked_keys(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: Mapping[str, SourceInfo],
    formula_sql: Callable[[Callable[[str], str]], str],
    names: Iterable[str],
    column: str,
    period: Period,
    descending: bool,
    limit: int,
    *,
    where: Mapping[str, str] | None = None,
) -> list[str | None] | None:
    """The first ``limit`` keys of ``column`` in ``period`` (each as its text, None for the null
    key), best first: ranked inside DuckDB by the KPI's formula (``formula_sql(operand)``, see
    :func:`reporter.formulas.to_sql`) over each key's metrics, ties by the key's text, so only
    these keys leave the database. None when a source is pushed down to another database (each
    source's groups then come back whole), or when the KPI's sources give the column different
    types (1 and 1.0 are one key to Python, two texts to SQL)."""
    names = list(dict.fromkeys(names))
    sources = _by_source(config, names)
    if any(isinstance(infos[s], RemoteInfo) for s in sources):
        return None
    col = quote_ident(column)
    kinds = {
        str(con.execute(f"DESCRIBE SELECT {col} FROM {quote_ident('src_' + s)}").fetchall()[0][1])
        for s in sources
    }
    if len(kinds) > 1:
        return None
    parts: list[str] = []
    params: list[Any] = []
    operands: dict[str, str] = {}
    for n, (source, src_names) in enumerate(sources.items()):
        extra = f" AND ({where[source]})" if where and where.get(source) else ""
        metrics = [config.metrics[m] for m in src_names]
        cols = ", ".join(f"{_agg(infos[source], m)} AS __m{i}" for i, m in enumerate(metrics))
        view = quote_ident("src_" + source)
        parts.append(
            f"__s{n} AS (SELECT {col} AS __key, {cols} FROM {view} "
            f"WHERE __day BETWEEN ? AND ?{extra} GROUP BY 1)"
        )
        params += [period.start, period.end]
        covered = _covered(infos[source], period.start, period.end)
        for i, name in enumerate(src_names):
            value = f"CAST(__s{n}.__m{i} AS DOUBLE)"
            if metrics[i].agg in ("sum", "count", "count_distinct") and covered:
                value = f"coalesce({value}, 0)"  # as _clean and _fill_missing: none is 0
            operands[name] = f"(CASE WHEN isfinite({value}) THEN {value} END)"
    keys = " UNION ".join(f"SELECT __key FROM __s{n}" for n in range(len(sources)))
    joins = " ".join(
        f"LEFT JOIN __s{n} ON __k.__key IS NOT DISTINCT FROM __s{n}.__key" for n in range(len(sources))
    )
    value = formula_sql(lambda name: operands.get(name, "CAST(NULL AS DOUBLE)"))
    order = "DESC" if descending else "ASC"
    sql = (
        f"WITH {', '.join(parts)}, __k AS ({keys}) "
        f"SELECT CAST(__key AS VARCHAR) FROM (SELECT __k.__key, {value} AS __v FROM __k {joins}) "
        f"ORDER BY __v IS NULL, __v {order}, coalesce(CAST(__key AS VARCHAR), '') LIMIT {int(limit)}"
    )
    return [row[0] for row in con.execute(sql, params).fetchall()]


def _window_lasts(
    con: duckdb.DuckDBPyConnection,
    info: SourceInfo,
    metrics: list[Metric],
    result: tuple[Any, ...],
    extra: str,
) -> tuple[Any, ...]:
    """The windows' row (each window's metrics in turn) with each pushed-down ``last`` column's
    latest date replaced by its value."""
    out = list(result)
    for j, metric in enumerate(metrics):
        if _pushed_last(info, metric):
            at = range(j, len(out), len(metrics))
            values = _last_values(con, info, metric, {k: (out[k], None) for k in at}, extra)
            for k in at:
                out[k] = values.get(k)
    return tuple(out)


def _pushed_last_rows(
    con: duckdb.DuckDBPyConnection,
    info: SourceInfo,
    metrics: list[Metric],
    found: list[tuple[Any, ...]],
    skip: int,
    extra: str,
    column: str | None = None,
) -> list[tuple[Any, ...]]:
    """Grouped rows (``skip`` leading columns, the group key at ``skip - 1`` when ``column`` is
    given) with each pushed-down ``last`` column's latest date replaced by its value."""
    rows = [list(r) for r in found]
    for i, metric in enumerate(metrics):
        if _pushed_last(info, metric):
            asks = {n: (r[skip + i], r[skip - 1] if column is not None else None) for n, r in enumerate(rows)}
            values = _last_values(con, info, metric, asks, extra, column)
            for n, r in enumerate(rows):
                r[skip + i] = values.get(n)
    return [tuple(r) for r in rows]


def _fill_missing(
    config: Config,
    infos: Mapping[str, SourceInfo],
    names: list[str],
    period: Period,
    groups: dict[Any, dict[str, float | None]],
) -> None:
    """A key present in one source but not another: 0 for sums and counts of the other (null
    when the period is outside that source's span)."""
    for values in groups.values():
        for name in names:
            if name not in values:
                agg = config.metrics[name].agg
                covered = _covered(infos[config.metrics[name].source], period.start, period.end)
                values[name] = _clean(None, agg) if covered else None


def period_rows(
    con: duckdb.DuckDBPyConnection, info: SourceInfo, period: Period, where: str | None = None
) -> int:
    extra = f" AND ({where})" if where else ""
    rows = _run(
        con,
        info,
        f"SELECT count(*) FROM {quote_ident('src_' + info.name)} WHERE __day BETWEEN ? AND ?{extra}",
        [period.start, period.end],
    )
    return int(rows[0][0])


def _as_date(value: Any) -> dt.date:
    """A bucket's start as returned by the database (SQLite returns dates as text)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return sql_literal(str(value))
