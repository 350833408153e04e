"""Compute a whole report for one period: metrics → KPIs → objectives → analyses → quality."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import statistics
from collections.abc import Callable, Mapping
from typing import Any

import duckdb

from reporter.compute import insights
from reporter.compute.evaluate import (
    attainment,
    change,
    change_points,
    cumulative_target,
    period_target,
    status,
)
from reporter.compute.followup import follow_up
from reporter.compute.metrics import (
    Window,
    distinct_keys,
    grouped_metrics,
    grouped_metrics_at,
    literal,
    period_metrics,
    period_rows,
    ranked_keys,
    watched,
)
from reporter.config.checkins import load_checkins
from reporter.config.labels import Labels
from reporter.config.model import Breakdown, Config, Objective
from reporter.config.sql import quote_ident
from reporter.errors import RunError
from reporter.formulas import Formula, parse, ratio_base, to_sql
from reporter.periods import Period, last_expected_date
from reporter.results import (
    ActionResult,
    BreakdownRow,
    FunnelStage,
    KpiResult,
    Move,
    Moves,
    ObjectiveResult,
    PortfolioRow,
    Quality,
    QualityCheck,
    Results,
    SeriesPoint,
    SourceFile,
    SourceResult,
    Status,
    TrendPoint,
    Verdict,
)
from reporter.sources import SourceInfo

Values = dict[str, float | None]
log = logging.getLogger("reporter")
_MAX_RANK_SQL = 100_000  # characters of a KPI's formula written out in SQL (KPIs inside KPIs)


class _TooLong(Exception):
    """A KPI's formula, written out in SQL, is too long to rank keys in the query."""


class _Kpis:
    """KPI formulas in dependency order, evaluated over a window's metric values."""

    def __init__(self, config: Config):
        self.config = config
        self.formulas: dict[str, Formula] = {n: parse(k.formula) for n, k in config.kpis.items()}
        self.order = config.kpi_order  # validation sorted them once
        self.bases = {n: ratio_base(n, self.formulas, config.metrics) for n in config.kpis}

    def evaluate(self, metrics: Values) -> Values:
        kpis: Values = {}
        for name in self.order:
            scope = {**kpis, **metrics}  # a name that is both means the metric
            kpis[name] = self.formulas[name].evaluate(scope)
        return kpis

    def row(self, key: Any, kpi: str, metrics: Values, *, other: bool = False) -> BreakdownRow:
        """A breakdown's row: KPI ``kpi`` on ``metrics`` (one key's), and its divisor when it
        is a ratio."""
        kpis = self.evaluate(metrics)
        base = self.bases[kpi]
        divisor = None if base is None else base.evaluate({**kpis, **metrics})
        return BreakdownRow(key, kpis[kpi], other=other, base=divisor)

    def sql_of(self, kpi: str) -> Callable[[Callable[[str], str]], str]:
        """The KPI's formula as SQL over its metrics (other KPIs written out in place), given the
        SQL of each metric: ``to_sql`` with the scope ``evaluate`` uses. Raises ``_TooLong`` when
        the KPIs it reads through other KPIs make the expression too long for the database."""

        def sql(operand: Callable[[str], str]) -> str:
            written: dict[str, str] = {}  # each KPI written once (a KPI read twice is copied)

            def name(ref: str) -> str:
                if ref in self.config.metrics:  # a name that is both means the metric
                    return operand(ref)
                if ref not in self.formulas:
                    return "CAST(NULL AS DOUBLE)"
                if ref not in written:
                    written[ref] = to_sql(self.formulas[ref], name)
                    if len(written[ref]) > _MAX_RANK_SQL:  # KPIs that read KPIs twice, doubling
                        raise _TooLong
                return written[ref]

            text = to_sql(self.formulas[kpi], name)  # its formula, even when a metric has its name
            if len(text) > _MAX_RANK_SQL:
                raise _TooLong
            return text

        return sql

    def metrics_of(self, kpi: str) -> list[str]:
        """The metrics a KPI reads, directly or through other KPIs."""
        out: list[str] = []
        for ref in self.formulas[kpi].names:
            if ref in self.config.metrics:
                out.append(ref)
            elif ref in self.formulas:
                out.extend(self.metrics_of(ref))
        return list(dict.fromkeys(out))


@watched
def compute_results(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: Mapping[str, SourceInfo],
    period: Period,
    now: dt.datetime,
    *,
    filter: Mapping[str, Any] | None = None,
) -> Results:
    """The report's Results for ``period`` over the sources read into ``con``; every DuckDB
    query of it is watched by one ``Watch`` (``REPORTER_QUERY_TIMEOUT`` for each)."""
    fy = config.report.fiscal_year_start
    where = _filter_sql(config, filter) if filter else None
    kpis = _Kpis(config)

    series = period.series(12)
    ytd_periods = period.ytd_periods(fy)
    needed = set(series) | {period.prior_year(), period.shift(-1)}
    for p in ytd_periods + (series if config.objectives else []):
        needed |= {p, p.shift(-1), p.prior_year()}  # per-period targets need both
    if config.insights.enabled:
        needed |= set(period.series(insights.HISTORY + 1))  # the 12 periods before P
        needed |= set(period.prior_year().series(insights.HISTORY + 1))  # the same, a year earlier
        needed |= insights.pacing_periods(config, period)
    ytd = Window(*period.ytd_window(fy))
    windows = [ytd, *_followed_windows(config, series, needed)]
    metric_by_period, metric_by_window = period_metrics(con, config, infos, needed, windows, where=where)
    kpi_by_period = {p: kpis.evaluate(v) for p, v in metric_by_period.items()}
    complete = _completeness(config, infos, period)
    partial = _partial_kpis(config, kpis, complete) if config.insights.enabled else set()
    partial |= {name for name, k in config.kpis.items() if k.settles_after}  # provisional values
    if config.insights.enabled:
        kpi_by_period |= _record_lookback(con, config, infos, kpis, period, kpi_by_period, where, partial)
    kpi_ytd = kpis.evaluate(metric_by_window[ytd])

    prev, prior = period.shift(-1), period.prior_year()
    first_objective: dict[str, ObjectiveResult] = {}
    objectives: list[ObjectiveResult] = []
    for obj in config.objectives:
        result = _objective(config, obj, period, ytd_periods, series, kpi_by_period, kpi_ytd)
        objectives.append(result)
        first_objective.setdefault(obj.kpi, result)
    checkins = load_checkins(config, period, series[0])
    names = Labels(config)
    for obj, result in zip(config.objectives, objectives, strict=True):
        history = _history(config, obj, series, kpi_by_period, metric_by_window, kpis)
        follow_up(obj, result, series, history, checkins, names)

    kpi_results: dict[str, KpiResult] = {}
    labels = Labels(config)  # words in the report's language
    for name, kpi in config.kpis.items():
        value = kpi_by_period[period][name]
        previous = kpi_by_period[prev][name]
        prior_year = kpi_by_period[prior][name]
        obj_result = first_objective.get(name)
        target = obj_result.target if obj_result else None
        rate = kpi.in_points  # its changes are also given in points (and shown so)
        kpi_results[name] = KpiResult(
            value=value,
            previous=previous,
            prior_year=prior_year,
            change_vs_previous=change(value, previous),
            change_vs_prior_year=change(value, prior_year),
            ytd=kpi_ytd[name],
            target=target,
            attainment=obj_result.attainment if obj_result else None,
            status=obj_result.status if obj_result else ("no_data" if value is None else "no_target"),
            series=[SeriesPoint(p.label, kpi_by_period[p][name]) for p in series],
            label=labels.kpi(name),
            format=kpi.format,
            direction=kpi.direction,
            section=labels.section(name),
            owner=labels.text(kpi.owner) or "",
            description=labels.text(kpi.description) or "",
            formula=kpi.formula,
            change_pp_vs_previous=change_points(value, previous) if rate else None,
            change_pp_vs_prior_year=change_points(value, prior_year) if rate else None,
            provisional=kpi.settles_after > 0,
        )

    raw_keys: dict[str, dict[Any, Any]] = {}  # per breakdown: each row's key → its key as read
    breakdowns = _breakdowns(con, config, infos, kpis, period, where, raw_keys)
    found: list[dict[str, Any]] = []
    if config.insights.enabled:

        def grouped(names: list[str], column: str, at: list[Period]) -> Mapping[Period, insights.Groups]:
            return grouped_metrics_at(con, config, infos, names, column, at, where=where)

        found = insights.kpi_insights(config, period, kpi_by_period, partial)
        found += insights.breakdown_insights(config, period, kpi_by_period, metric_by_period, grouped)
        for obj, result in zip(config.objectives, objectives, strict=True):
            pace = insights.pacing(config, period, obj, result, ytd_periods, kpi_by_period)
            if pace is not None:
                found.append(pace)
        found += insights.ratio_parts(config, period, objectives, kpi_by_period, metric_by_period, partial)

    quality = _quality(con, config, infos, period, where, complete)
    return Results(
        sparse=_sparse(con, config, infos, quality),
        report=config.report.id,
        period=period.label,
        period_start=period.start.isoformat(),
        period_end=period.end.isoformat(),
        kpis=kpi_results,
        objectives=objectives,
        breakdowns=breakdowns,
        funnel=_funnel(config, metric_by_period[period]),
        portfolio=_portfolio(con, config, infos, period, where),
        quality=quality,
        grain=period.grain,
        generated_at=now.isoformat(timespec="seconds"),
        sources=[
            SourceResult(
                i.name,
                i.kind,
                i.location,
                i.rows,
                i.first_date,
                i.last_date,
                i.sha256,
                complete=complete[i.name],
                files=list(i.files),
            )
            for i in infos.values()
        ],
        filter=dict(filter or {}),
        pdf_other=_pdf_other(con, config, infos, kpis, period, where, breakdowns, raw_keys),
        moves={
            "vs_previous": _moves(kpi_results, "previous", config.insights.moves_min_base),
            "vs_prior_year": _moves(kpi_results, "prior_year", config.insights.moves_min_base),
        },
        insights=insights.rank(found, config),
        checkins=[
            SourceFile(name, hashlib.sha256(content).hexdigest()) for name, content in checkins.files.items()
        ],
        checkin_files=dict(checkins.files),
        notes={
            obj.id: entry.note
            for obj in config.objectives
            if (entry := checkins.objective(period.label, obj.id)) is not None and entry.note
        },
    )


def _followed_windows(config: Config, series: list[Period], needed: set[Period]) -> list[Window]:
    """The year-to-date windows (and the periods, added to ``needed``) that judge a cumulative
    objective with followed actions in each period of ``series``."""
    fy = config.report.fiscal_year_start
    followed = [o for o in config.objectives if o.cumulative and any(a.id is not None for a in o.actions)]
    if not followed:
        return []
    for p in series:
        for q in p.ytd_periods(fy):
            needed |= {q, q.shift(-1), q.prior_year()}
    return [Window(*p.ytd_window(fy)) for p in series]


def _history(
    config: Config,
    obj: Objective,
    series: list[Period],
    kpi_by_period: Mapping[Period, Values],
    metric_by_window: Mapping[Window, Values],
    kpis: _Kpis,
) -> dict[str, Status]:
    """The objective's status in each period of ``series``, as that period's report judged it."""
    direction = config.kpis[obj.kpi].direction
    fy = config.report.fiscal_year_start
    kind, amount = _target_kind(obj)

    def target_for(p: Period) -> float | None:
        return period_target(
            kind, amount, p.label, kpi_by_period[p.shift(-1)][obj.kpi], kpi_by_period[p.prior_year()][obj.kpi]
        )

    out: dict[str, Status] = {}
    for p in series:
        if obj.cumulative:
            window = Window(*p.ytd_window(fy))
            if window not in metric_by_window:
                continue
            value = kpis.evaluate(metric_by_window[window])[obj.kpi]
            goal = cumulative_target([target_for(q) for q in p.ytd_periods(fy)])
        else:
            value, goal = kpi_by_period[p][obj.kpi], target_for(p)
        out[p.label] = status(value, goal, direction, obj.thresholds.on_track, obj.thresholds.at_risk)
    return out


def _target_kind(obj: Objective) -> tuple[str, Any]:
    target = obj.target
    return next(
        (k, getattr(target, k))
        for k in ("value", "change_vs_prior_year", "change_vs_previous", "by_period")
        if getattr(target, k) is not None
    )


def _record_lookback(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: Mapping[str, SourceInfo],
    kpis: _Kpis,
    period: Period,
    kpi_by_period: Mapping[Period, dict[str, float | None]],
    where: Mapping[str, str] | None,
    partial: set[str],
) -> dict[Period, dict[str, float | None]]:
    """The KPIs of the older periods a record reaches (``insights.record_history_needed``):
    none unless a record reaches back past the periods already computed, then only as many as
    its count still needs, with only the metrics of the KPIs that reach (the others are null
    there); a second query, for all the rest, only when periods without values were skipped
    (two queries at most). Periods before the first day of data are never read, nor are the
    KPIs of an incomplete period (``partial``, no record for them)."""
    found = dict(kpi_by_period)
    firsts = [dt.date.fromisoformat(i.first_date) for i in infos.values() if i.first_date]
    since = min(firsts, default=None)
    older, reaching = insights.record_history_needed(config, period, found, since, skip=partial)
    for again in (True, False):
        if not older:
            break
        wanted = {m for name in reaching for m in kpis.metrics_of(name)}
        more, _ = period_metrics(con, config, infos, older, [], where=where, only=wanted)
        found |= {p: kpis.evaluate(v) for p, v in more.items()}
        if again:
            older, reaching = insights.record_history_needed(
                config, period, found, since, all_left=True, skip=partial
            )
    return {p: v for p, v in found.items() if p not in kpi_by_period}


def _completeness(config: Config, infos: Mapping[str, SourceInfo], period: Period) -> dict[str, bool | None]:
    """Per source: whether its data reaches the end of ``period`` (the test of
    ``quality.require_complete_period``, made whether that gate is on or not); None without data."""
    return {
        name: None
        if info.last_date is None
        else info.last_date >= last_expected_date(period, config.sources[name].frequency).isoformat()
        for name, info in infos.items()
    }


def _partial_kpis(config: Config, kpis: _Kpis, complete: Mapping[str, bool | None]) -> set[str]:
    """The KPIs that read a source whose data stops before the period's end: a half-month is
    not "the lowest in 35 months", nor unusual against whole months, so ``record`` and
    ``unusual_change`` are not claimed for them (docs/insights.md)."""
    short = {name for name, ok in complete.items() if ok is False}
    if not short:
        return set()
    return {k for k in config.kpis if any(config.metrics[m].source in short for m in kpis.metrics_of(k))}


def _moves(kpis: Mapping[str, KpiResult], base: str, min_base: float, n: int = 3) -> Moves:
    """The n biggest favourable and unfavourable changes against ``base`` (``previous`` or
    ``prior_year``), judged by each KPI's direction (docs/numbers.md, "Biggest moves"); the
    biggest changes of neutral KPIs (no preferred direction, so neither) fill the places left
    of the 2 × n, unjudged: a report whose KPIs are all neutral (as ``init --source`` writes
    them) still says what moved most.

    A rate (format percent) whose changes are in points is ranked by its change in points, any
    other KPI (a score shown in points too) by its relative change, both by size. A change
    whose base is under ``min_base`` × the median of the KPI's 12-period |values| is left out:
    from a near-zero base any change looks huge; so is every change of a KPI whose median is 0
    (see ``_too_small``). ``min_base`` 0 keeps them all.
    A provisional KPI (``settles_after``) is left out too: its latest value is not final, so
    its "biggest fall" is mostly the quotes still open."""
    scored = []
    for name, k in kpis.items():
        if k.provisional:
            continue
        relative = getattr(k, f"change_vs_{base}")
        points = getattr(k, f"change_pp_vs_{base}")
        score = points if k.format == "percent" and points is not None else relative
        if score is None or score == 0:
            continue
        base_value = getattr(k, base)
        if base_value is None or (min_base > 0 and _too_small(base_value, k.series, min_base)):
            continue
        signed = score if k.direction == "up" else -score
        move = Move(name, k.label, relative, k.value, k.format, points, base_value, k.direction)
        scored.append((signed, name, move))
    judged = [s for s in scored if s[2].direction != "neutral"]
    good = sorted((s for s in judged if s[0] > 0), key=lambda s: (-s[0], s[1]))[:n]
    bad = sorted((s for s in judged if s[0] < 0), key=lambda s: (s[0], s[1]))[:n]
    unjudged = sorted((s for s in scored if s[2].direction == "neutral"), key=lambda s: (-abs(s[0]), s[1]))
    left = 2 * n - len(good) - len(bad)
    return Moves([m for _, _, m in good], [m for _, _, m in bad], [m for _, _, m in unjudged[:left]])


def _too_small(base: float, series: list[SeriesPoint], min_base: float) -> bool:
    """Whether ``base`` is under ``min_base`` × the median of the KPI's known |values| over its
    12 periods. A median of 0 (zero or unknown in half the periods or more: a KPI that only
    just started) gives no typical size, and every base counts as too small."""
    known = [abs(p.value) for p in series if p.value is not None]
    median = statistics.median(known) if known else 0.0
    return median == 0 or abs(base) < min_base * median


def _objective(
    config: Config,
    obj: Objective,
    period: Period,
    ytd_periods: list[Period],
    series: list[Period],
    kpi_by_period: Mapping[Period, Values],
    kpi_ytd: Values,
) -> ObjectiveResult:
    kind, amount = _target_kind(obj)

    def target_for(p: Period) -> float | None:
        return period_target(
            kind,
            amount,
            p.label,
            kpi_by_period[p.shift(-1)][obj.kpi],
            kpi_by_period[p.prior_year()][obj.kpi],
        )

    if obj.cumulative:
        value = kpi_ytd[obj.kpi]
        goal = cumulative_target([target_for(p) for p in ytd_periods])
    else:
        value = kpi_by_period[period][obj.kpi]
        goal = target_for(period)
    direction = config.kpis[obj.kpi].direction
    state = status(value, goal, direction, obj.thresholds.on_track, obj.thresholds.at_risk)
    names = Labels(config)  # words in the report's language
    actions = [
        ActionResult(
            when=a.when,
            do=names.text(a.do) or "",
            owner=names.text(a.owner) or names.text(obj.owner) or "",
            due=(period.end + dt.timedelta(days=a.due_in_days)).isoformat()
            if a.due_in_days is not None
            else None,
        )
        for a in obj.actions
        if a.when == state or a.when == "always"
    ]
    return ObjectiveResult(
        id=obj.id,
        kpi=obj.kpi,
        target=goal,
        value=value,
        attainment=attainment(value, goal, direction),
        status=state,
        actions=actions,
        title=names.text(obj.title) or obj.id,
        owner=names.text(obj.owner) or "",
        due=obj.due.isoformat(),
        past_due=obj.due < period.end,
        cumulative=obj.cumulative,
        target_kind=kind,
        trend=[TrendPoint(p.label, kpi_by_period[p][obj.kpi], target_for(p)) for p in series],
    )


def _sort_rows(rows: list[BreakdownRow], direction: str) -> list[BreakdownRow]:
    known = [r for r in rows if r.value is not None]
    unknown = [r for r in rows if r.value is None]
    reverse = direction != "down"
    known.sort(key=lambda r: (r.value, _key_text(r.key)) if not reverse else (-r.value, _key_text(r.key)))  # type: ignore[operator]
    unknown.sort(key=lambda r: _key_text(r.key))
    return known + unknown


def _key_text(key: Any) -> str:
    return "" if key is None else str(key)


def _breakdowns(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: Mapping[str, SourceInfo],
    kpis: _Kpis,
    period: Period,
    where: Mapping[str, str] | None,
    raw_keys: dict[str, dict[Any, Any]],
) -> dict[str, list[BreakdownRow]]:
    """Each breakdown's rows (and, in ``raw_keys``, each row's key as the database gave it: a
    date or an interval, where results.json holds text). First its distinct keys are counted
    in the database (more than ``max_keys`` stops the run before any group is fetched); with
    ``top``, the keys are ranked by the KPI inside DuckDB and only the best 2 × ``top`` come
    back, whose values are then computed exactly as any other (so the ranking's float rounding
    never shows)."""
    out: dict[str, list[BreakdownRow]] = {}
    for i, bd in enumerate(config.breakdowns):
        names = kpis.metrics_of(bd.kpi)
        count, source = distinct_keys(con, config, infos, names, bd.by, period, where=where)
        if count > bd.max_keys:
            raise RunError(
                f"{config.file.name}: breakdowns[{i}]: {bd.kpi} by {bd.by}: column '{bd.by}' holds "
                f"{count:,} distinct values in {period.label} (source '{source}'), more than max_keys "
                f"({bd.max_keys:,}); "
                f"break down by a column with fewer values, or raise breakdowns[{i}].max_keys"
            )
        only = _best_keys(con, config, infos, kpis, bd, period, where) if bd.top is not None else None
        groups = grouped_metrics(con, config, infos, names, bd.by, period, where=where, only=only)
        raw = raw_keys.setdefault(f"{bd.kpi}_by_{bd.by}", {})
        raw.update({_plain(k): k for k in groups})
        rows = [kpis.row(_plain(k), bd.kpi, v) for k, v in groups.items()]
        rows = _sort_rows(rows, config.kpis[bd.kpi].direction)
        if bd.top is not None and len(rows) > bd.top:
            kept = rows[: bd.top]
            rows = [*kept, _other(con, config, infos, kpis, period, where, bd, kept, raw)]
        out[f"{bd.kpi}_by_{bd.by}"] = rows
    return out


def _best_keys(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: Mapping[str, SourceInfo],
    kpis: _Kpis,
    bd: Breakdown,
    period: Period,
    where: Mapping[str, str] | None,
) -> list[str | None] | None:
    """The keys worth computing for a ``top`` breakdown: the best 2 × ``top`` by the KPI, ranked
    in DuckDB; None (every key's groups come back) when a source is pushed down to another
    database, the KPI's SQL would be too long, or DuckDB refuses the ranking (a double that
    overflows is an error there, and null in the report)."""
    assert bd.top is not None
    name = f"{bd.kpi}_by_{bd.by}"
    try:
        best = ranked_keys(
            con,
            config,
            infos,
            kpis.sql_of(bd.kpi),
            kpis.metrics_of(bd.kpi),
            bd.by,
            period,
            config.kpis[bd.kpi].direction != "down",
            2 * bd.top,
            where=where,
        )
    except _TooLong:
        log.debug("breakdown %s: keys ranked after fetching every group (the KPI is too long in SQL)", name)
        return None
    except duckdb.Error as exc:
        log.debug("breakdown %s: keys ranked after fetching every group (DuckDB: %s)", name, exc)
        return None
    if best is None:
        log.debug(
            "breakdown %s: keys ranked after fetching every group (pushed down, or key types differ)",
            name,
        )
    else:
        log.debug("breakdown %s: the best %d keys ranked in the query", name, len(best))
    return best


def _other(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: Mapping[str, SourceInfo],
    kpis: _Kpis,
    period: Period,
    where: Mapping[str, str] | None,
    bd: Breakdown,
    kept: list[BreakdownRow],
    raw: Mapping[Any, Any],
) -> BreakdownRow:
    """The "other" row after ``kept``: the KPI evaluated on the metrics of every other row
    together (a ratio is the ratio of the sums, not a sum of ratios). ``raw``: each key as read
    (a date stays a date, so that the database compares it with the column's dates)."""
    names = kpis.metrics_of(bd.kpi)
    excluded = [raw.get(r.key, r.key) for r in kept]
    rest = grouped_metrics(con, config, infos, names, bd.by, period, where=where, exclude=excluded)
    other_metrics = rest.get(None, {})
    if not other_metrics:
        return BreakdownRow("other", None, other=True)
    return kpis.row("other", bd.kpi, other_metrics, other=True)


def _pdf_other(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: Mapping[str, SourceInfo],
    kpis: _Kpis,
    period: Period,
    where: Mapping[str, str] | None,
    breakdowns: Mapping[str, list[BreakdownRow]],
    raw_keys: Mapping[str, Mapping[Any, Any]],
) -> dict[str, BreakdownRow]:
    """For each breakdown longer than its ``pdf_rows``: the "other" row the PDF prints after
    its first ``pdf_rows`` rows."""
    out = {}
    for bd in config.breakdowns:
        key = f"{bd.kpi}_by_{bd.by}"
        rows = breakdowns[key]
        if len(rows) > bd.pdf_rows:
            out[key] = _other(con, config, infos, kpis, period, where, bd, rows[: bd.pdf_rows], raw_keys[key])
    return out


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _funnel(config: Config, metrics: Values) -> list[FunnelStage]:
    stages: list[FunnelStage] = []
    before: float | None = None
    for i, stage in enumerate(config.funnel):
        value = metrics.get(stage.metric)
        rate = None
        if i > 0 and value is not None and before not in (None, 0):
            rate = value / before
        stages.append(FunnelStage(Labels(config).funnel(i), stage.metric, value, rate))
        before = value
    return stages


def _portfolio(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: Mapping[str, SourceInfo],
    period: Period,
    where: Mapping[str, str] | None,
) -> list[PortfolioRow]:
    pf = config.portfolio
    if pf is None:
        return []
    groups = grouped_metrics(con, config, infos, [pf.cost, pf.value], pf.by, period, where=where)
    rows: list[PortfolioRow] = []
    for key, values in groups.items():
        cost, value = values.get(pf.cost), values.get(pf.value)
        verdict: Verdict
        ratio = None if cost in (None, 0) or value is None else value / cost
        if ratio is None:
            verdict = "review"
        elif ratio >= pf.rules.keep:
            verdict = "keep"
        elif ratio >= pf.rules.improve:
            verdict = "improve"
        else:
            verdict = "stop"
        rows.append(PortfolioRow(_plain(key), cost, value, ratio, verdict))
    rows.sort(key=lambda r: (r.ratio is None, -(r.ratio or 0.0), _key_text(r.key)))
    return rows


def _quality(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: Mapping[str, SourceInfo],
    period: Period,
    where: Mapping[str, str] | None,
    complete: Mapping[str, bool | None],
) -> Quality:
    """The gate's checks; ``complete``: each source's completeness (``_completeness``)."""
    checks: list[QualityCheck] = []
    q = config.quality
    for name, info in infos.items():
        if q.require_complete_period:
            due = last_expected_date(period, config.sources[name].frequency)
            ok = complete[name] is True  # no data: not complete
            detail = (
                f"source '{name}' has data up to {info.last_date or 'nothing'}; "
                f"the period ends {period.end.isoformat()}"
            )
            if due != period.end:
                detail += f" ({config.sources[name].frequency} data: needs {due.isoformat()})"
            checks.append(QualityCheck("complete_period", name, ok, detail, info.last_date, due.isoformat()))
        if q.min_rows:
            rows = period_rows(con, info, period, (where or {}).get(name))
            checks.append(
                QualityCheck(
                    "min_rows",
                    name,
                    rows >= q.min_rows,
                    f"source '{name}' has {rows} row(s) in {period.label}; at least {q.min_rows} required",
                    rows,
                    q.min_rows,
                )
            )
    return Quality(all(c.passed for c in checks), checks)


def _sparse(
    con: duckdb.DuckDBPyConnection, config: Config, infos: Mapping[str, SourceInfo], quality: Quality
) -> dict[str, str]:
    """Per source that fails the completeness gate, the sparser frequency its rows show, if any
    (the gate's hint suggests declaring it; docs/commands.md)."""
    from reporter.compute.cadence import spacing

    short = [c.source for c in quality.checks if c.check == "complete_period" and not c.passed]
    found = {name: spacing(con, config, infos[name]) for name in dict.fromkeys(short)}
    return {name: shown for name, shown in found.items() if shown is not None}


def _filter_sql(config: Config, filter: Mapping[str, Any]) -> dict[str, str]:
    """Per source, the SQL condition of a recipient's filter (shared sources are not filtered)."""
    sql = " AND ".join(f"{quote_ident(col)} = {literal(value)}" for col, value in filter.items())
    return {name: sql for name, src in config.sources.items() if not src.shared}
