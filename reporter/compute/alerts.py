"""Alert rules evaluated on the period to date (``alerts.rules``), one observation per rule.

On a day D (the evaluation's local date), the last complete day is D − 1 and the period is the
one holding it; the window runs from the period's first day to D − 1, ``elapsed`` days of the
period's ``days``.

- An objective's value is its KPI over that window (the year to date up to D − 1 for a
  cumulative objective). Its target is the period's target (as in the report); for a KPI that
  is one additive metric (a sum or a count) it is pro-rated by ``elapsed / days`` (a cumulative
  objective: the targets of the year's earlier periods, plus that share of this one's); a ratio
  is judged as it stands. The status follows from the objective's thresholds, as in the report.
- ``off_track`` fires while that status is off track; ``at_risk`` while it is at risk or off
  track; ``pacing_off`` while the pace misses the period's target: for an additive KPI the value
  to date ÷ (elapsed / days), projected to the period's end, is below it (above, direction down);
  for a ratio the value to date is on the wrong side of it.
- ``above: X`` / ``below: X`` fire while the value to date is above / below X.
- ``unusual`` fires on a day whose value (the KPI over D − 1 alone) is unusual against the 28
  days before it, by the insights' test (robust z-score ≥ ``insights.z``, 6 known days at least).

A KPI that reads a source whose ``frequency`` is coarser than daily (a monthly statement dated
the 1st) cannot be cut at D − 1: on the 2nd, a month's spend over one day's customers is no cost
per customer at all. Such a KPI is judged, like the report's completeness gate, on the latest
period every source it reads covers to its end (``last_expected_date``): a KPI of monthly data
only on the current month as soon as its row is in, a KPI mixing monthly and daily data on the
previous month until the current one is over. That period is judged whole (its target is not
pro-rated, there is no pace), and ``unusual`` does not apply to it (its days are no days).

A rule whose evaluation fails gives an observation with ``error`` set; the others go on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from reporter.compute import insights
from reporter.compute.evaluate import cumulative_target, period_target, status
from reporter.compute.metrics import Window, period_metrics
from reporter.compute.report import _Kpis, _target_kind
from reporter.config.model import AlertRule, Config, Objective
from reporter.periods import Period, last_expected_date
from reporter.sources import SourceInfo

UNUSUAL_DAYS = 28  # days before D − 1 the unusual test compares with


@dataclass
class Observation:
    rule: str
    firing: bool
    state: str  # off_track | at_risk | on_track | no_data | no_target | above | below | normal | unusual
    kpi: str
    objective: str | None
    period: str
    period_start: str  # its first day (ISO)
    day: str  # the last complete day (ISO)
    elapsed: int
    days: int
    value: float | None = None
    target: float | None = None  # an objective's target to date (pro-rated when additive)
    period_target: float | None = None  # the period's whole target (an objective's)
    projected: float | None = None  # the pace's value at the period's end (an additive KPI)
    median: float | None = None  # unusual: the 28 days' median
    error: str | None = None
    coarse: str | None = None  # judged on a whole period: the coarsest frequency the KPI reads
    threshold: float | None = None  # above / below: the rule's X
    status: str | None = None  # an objective's status to date (whatever the condition)
    additive: bool = False  # an objective's KPI is one sum or count: its value grows day by day
    cumulative: bool = False  # an objective judged on the year to date
    earlier_target: float | None = None  # cumulative: the targets of the year's earlier periods
    period_value: float | None = None  # cumulative: the KPI over this period to date alone


def frequencies(config: Config, kpis: _Kpis, kpi: str) -> set[str]:
    """The ``frequency`` of each source ``kpi`` reads (through its metrics and other KPIs)."""
    return {config.sources[config.metrics[m].source].frequency for m in kpis.metrics_of(kpi)}


def covered_period(period: Period, day: dt.date, freqs: set[str]) -> Period:
    """The latest period, ``period`` or an earlier one, whose data every source of frequencies
    ``freqs`` has reached by ``day`` (the report's completeness gate)."""
    while any(last_expected_date(period, f) > day for f in freqs):
        period = period.shift(-1)
    return period


def evaluation_day(config: Config, now: dt.datetime) -> dt.date:
    """The last complete day at ``now`` in the report's zone."""
    return now.astimezone(ZoneInfo(config.report.timezone)).date() - dt.timedelta(days=1)


def evaluate(
    config: Config,
    now: dt.datetime,
    con: duckdb.DuckDBPyConnection,
    infos: Mapping[str, SourceInfo],
) -> list[Observation]:
    """Every rule of ``config.alerts`` at ``now`` (over the database ``con`` already opened)."""
    if config.alerts is None:
        return []
    day = evaluation_day(config, now)
    period = Period.containing(day, config.report.grain)
    fy = config.report.fiscal_year_start
    kpis = _Kpis(config)
    to_date = Window(period.start, day)
    ytd = Window(period.ytd_window(fy)[0], day)
    rules = config.alerts.rules
    unusual = any(r.condition == "unusual" for r in rules)
    days = [Window(day - dt.timedelta(days=i), day - dt.timedelta(days=i)) for i in range(UNUSUAL_DAYS + 1)]
    needed = {period.shift(-1), period.prior_year()}
    cumulative = any(r.objective and _objective(config, r).cumulative for r in rules)
    for p in period.ytd_periods(fy) if cumulative else []:
        needed |= {p, p.shift(-1), p.prior_year()}
    windows = [to_date, *([ytd] if cumulative else []), *(days if unusual else [])]
    judged: dict[str, tuple[Period, str]] = {}  # KPI reading coarser data → (period judged, frequency)
    for rule in rules:
        kpi = rule.kpi or _objective(config, rule).kpi
        freqs = frequencies(config, kpis, kpi)
        if kpi in judged or freqs <= {"daily"}:
            continue
        whole = covered_period(period, day, freqs)
        judged[kpi] = (whole, "monthly" if "monthly" in freqs else "weekly")
        needed |= {whole, whole.shift(-1), whole.prior_year()}
        windows.append(Window(whole.start, whole.end))
        if cumulative:
            for p in whole.ytd_periods(fy):
                needed |= {p, p.shift(-1), p.prior_year()}
            windows.append(Window(whole.ytd_window(fy)[0], whole.end))
    by_period, by_window = period_metrics(con, config, infos, needed, windows)
    kpi_by_period = {p: kpis.evaluate(v) for p, v in by_period.items()}
    kpi_window = {w: kpis.evaluate(v) for w, v in by_window.items()}
    base: dict[str, Any] = {
        "period": period.label,
        "period_start": period.start.isoformat(),
        "day": day.isoformat(),
        "elapsed": (day - period.start).days + 1,
        "days": period.days,
    }
    out = []
    for rule in config.alerts.rules:
        kpi = rule.kpi or _objective(config, rule).kpi
        try:
            if kpi in judged:
                whole, coarse = judged[kpi]
                found = _observe(
                    config,
                    rule,
                    whole,
                    kpi_by_period,
                    kpi_window,
                    Window(whole.start, whole.end),
                    Window(whole.ytd_window(fy)[0], whole.end),
                    [],
                    {
                        "period": whole.label,
                        "period_start": whole.start.isoformat(),
                        "day": whole.end.isoformat(),
                        "elapsed": whole.days,
                        "days": whole.days,
                        "coarse": coarse,
                    },
                )
            else:
                found = _observe(config, rule, period, kpi_by_period, kpi_window, to_date, ytd, days, base)
        except Exception as exc:  # a failing rule never stops the others
            found = Observation(
                rule.rule_id,
                False,
                "error",
                kpi,
                rule.objective,
                error=f"{type(exc).__name__}: {exc}",
                **base,
            )
        out.append(found)
    return out


def _objective(config: Config, rule: AlertRule) -> Objective:
    return next(o for o in config.objectives if o.id == rule.objective)


def _observe(
    config: Config,
    rule: AlertRule,
    period: Period,
    kpi_by_period: Mapping[Period, Mapping[str, float | None]],
    kpi_window: Mapping[Window, Mapping[str, float | None]],
    to_date: Window,
    ytd: Window,
    days: list[Window],
    base: dict[str, Any],
) -> Observation:
    kpi = rule.kpi or _objective(config, rule).kpi
    direction = config.kpis[kpi].direction
    condition = rule.condition
    if condition == "unusual" and not days:  # coarser than daily: a day of it is no day
        return Observation(rule.rule_id, False, "no_data", kpi, rule.objective, **base)
    if condition == "unusual":
        value = kpi_window[days[0]][kpi]
        history = [v for w in days[1:] if (v := kpi_window[w][kpi]) is not None]
        found = insights.unusual(value, history, config.insights.z)
        return Observation(
            rule.rule_id,
            found is not None,
            "unusual" if found is not None else ("no_data" if value is None else "normal"),
            kpi,
            rule.objective,
            value=value,
            median=found["median"] if found else None,
            **base,
        )
    if rule.objective is None:  # above / below on a KPI
        value = kpi_window[to_date][kpi]
        return _threshold(rule, kpi, value, base)
    obj = _objective(config, rule)
    kind, amount = _target_kind(obj)
    fraction = base["elapsed"] / base["days"]

    def target_for(p: Period) -> float | None:
        return period_target(
            kind, amount, p.label, kpi_by_period[p.shift(-1)][obj.kpi], kpi_by_period[p.prior_year()][obj.kpi]
        )

    additive = insights.one_metric(config, obj.kpi) is not None
    goal = target_for(period)
    share = goal * fraction if (goal is not None and additive) else goal
    if obj.cumulative:
        value = kpi_window[ytd][obj.kpi]
        earlier = cumulative_target(
            [target_for(p) for p in period.ytd_periods(config.report.fiscal_year_start)[:-1]]
        )
        whole = cumulative_target(
            [target_for(p) for p in period.ytd_periods(config.report.fiscal_year_start)]
        )
        target = None if share is None else (earlier or 0.0) + share
        goal = whole
    else:
        value = kpi_window[to_date][obj.kpi]
        target = share
    state = status(value, target, direction, obj.thresholds.on_track, obj.thresholds.at_risk)
    # the pace to the period's end: an additive KPI's value to date ÷ the share elapsed (a
    # cumulative objective's pace is judged against its pro-rated target instead)
    projected = (
        value / fraction if (value is not None and additive and not obj.cumulative and fraction < 1) else None
    )
    # what the alert's words need to say what the period to date means for the target
    about: dict[str, Any] = {"additive": additive, "cumulative": obj.cumulative}
    if obj.cumulative:
        about["earlier_target"] = earlier
        about["period_value"] = kpi_window[to_date][obj.kpi]
    if condition in ("above", "below"):  # on the objective's KPI, with its target and status beside
        seen = _threshold(rule, kpi, value, base)
        seen.target, seen.period_target, seen.projected, seen.status = target, goal, projected, state
        for name, v in about.items():
            setattr(seen, name, v)
        return seen
    if condition == "pacing_off":
        pace, against = (projected, goal) if projected is not None else (value, target)
        firing = (
            pace is not None
            and against is not None
            and (pace < against if direction != "down" else pace > against)
        )
    elif condition == "at_risk":
        firing = state in ("at_risk", "off_track")
    else:
        firing = state == "off_track"
    return Observation(
        rule.rule_id,
        firing,
        state,
        kpi,
        obj.id,
        value=value,
        target=target,
        period_target=goal,
        projected=projected,
        status=state,
        **about,
        **base,
    )


def _threshold(rule: AlertRule, kpi: str, value: float | None, base: dict[str, Any]) -> Observation:
    when = rule.when
    assert not isinstance(when, str)
    limit = when.above if when.above is not None else when.below
    assert limit is not None
    above = when.above is not None
    firing = value is not None and (value > limit if above else value < limit)
    state = ("above" if above else "below") if firing else ("no_data" if value is None else "normal")
    return Observation(rule.rule_id, firing, state, kpi, rule.objective, value=value, threshold=limit, **base)
