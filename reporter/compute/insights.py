"""Insights: what changed, why, what is unusual, and whether each objective will be met.

Every insight is a documented formula over numbers the compute stage already has; each one is
a plain dict that goes to results.json as it is (``type``, the names it is about, its numbers,
``score``). Its sentence (``text``) is written later, by the render stage, from the report's
translated catalogue: compute knows no language.

The seven types and their exact numbers (docs/insights.md says the same with worked examples):

- ``unusual_change``: ``history`` = the KPI's non-null values in the 12 periods before P (6 at
  least); ``median`` m; ``mad`` = median(|x − m|); ``z`` = (value − m) / (1.4826 × mad); emitted
  when |z| ≥ ``insights.z`` (3.5); never when mad is 0. When P − 1 year has a value (and the
  value is not ``seasonal``), the same rule centred on it: ``season_z`` = (value −
  ``prior_year_value``) / (1.4826 × mad); |season_z| < ``insights.z``: in line with its own
  season, no insight (``against_season``).
- ``contributors``: a breakdown's change vs the previous period and vs the prior year, split by
  key so that the parts add up to the change. A KPI that is one additive metric (sum or count):
  part_k = value_k(P) − value_k(base), a missing key counting 0. A KPI ``a / b`` (a additive):
  part_k = a_k(P)/b(P) − a_k(base)/b(base), b the whole KPI's denominator. The three largest
  |part|, each with share = part / change (null when the change is 0). Keys present in one of
  the two periods only sum into group items, ``{group: "new"|"gone", count, part}`` (and
  ``key`` when the group holds one key), ranked with the others; on the previous period, keys
  absent from it but present one year before P are ``returning`` (with ``prior_year``), not
  new; keys in it only, there one year before it and absent one year before P, are
  ``off_season`` (they left the same way last year), not gone. Other shapes: none.
- ``record``: how many consecutive preceding periods with data (null periods skipped, 36 at
  most counted) are all strictly below the value (``high``) or all strictly above (``low``);
  emitted when that is ≥ ``insights.record_min_periods`` (12).
- ``concentration``: a breakdown of a one-metric KPI whose largest key holds ``share`` ≥ 0.5 of
  the KPI's value, with 3 keys at least.
- ``seasonal``: an ``unusual_change`` candidate whose P − 1 year is unusual too, the same way,
  against its own 12 preceding periods (6 known at least): fields ``kpi``, ``value``,
  ``median``, ``z``, ``prior_year_value``, ``prior_year_z``; half the score.
- ``pacing``: each objective due after P; D = the period holding ``due``; ``periods_left`` =
  periods after P up to and including D. Cumulative with a ``{value: v}`` target on a
  one-metric KPI (``method`` run_rate): ``elapsed``, ``run_rate`` = ytd / elapsed,
  ``projected`` = ytd + run_rate × periods_left, ``goal`` = v × (elapsed + periods_left),
  ``needed_per_period`` = (goal − ytd) / periods_left (none when D is in a later fiscal year
  than P: the total restarts). Otherwise ``goal`` = the target of D
  (``goal_of``; none: no pacing) and ``method`` seasonal (``seasonal_at``) when last year's
  numbers allow, else trend (``theil_sen_at`` over the last 6 non-null values, 3 at least, each
  at its own period: a period without a value is a gap, never a zero); ``needed_per_period``
  null. No pacing for an objective whose value in P is null (nothing to pace). No value
  after P is read: a goal or a season that needs one is not known. A seasonal or trend
  projection past what the KPI's formula proves it can be (``kpi_bounds``: an NPS within
  [−100, 100], a share of counts within [0, 1]) is held to that bound, ``limit``: ceiling or
  floor. ``on_pace``: projected ≥ goal (up) or ≤ goal (down).

- ``ratio_parts``: each KPI ``a / b`` (a and b names of metrics or KPIs; a name that is both is
  the metric) whose first objective that is not cumulative is at risk or off track in P, with
  a value in P and in P − 1 that differs: ``value``, ``previous``, ``change`` = value −
  previous, and ``parts``, the numerator then the denominator, each ``{name, role, value,
  previous, change}`` (change = value − previous, in P and P − 1). Not for a KPI in
  ``partial``. It says why a ratio over its cap moved (the spend up, the customers down): the
  takeaways read it; its score is 0, it is never a takeaway of its own.

Score (the ranking): how far past its threshold an insight is, capped, times a weight by type,
so the summary leads with what most needs a reader's eye and one kind cannot crowd out the rest:
unusual_change 3 × min(|z| / z, 3) (3 to 9), seasonal half of it; pacing 4 when off pace, 1 when
on pace; record 2 × min(periods / record_min_periods, 1.5) (2 to 3); contributors min(10 ×
|relative change|, 3) (a 10 % move scores 1); concentration 1.5 × share / 0.5 (1.5 to 3);
ratio_parts 0 (a why, never a takeaway of its own).
Ties (``rank``): KPIs bound to an objective first, then the YAML's order, then the type.
"""

from __future__ import annotations

import ast
import datetime as dt
import math
import statistics
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from reporter.compute.evaluate import change
from reporter.config.model import Config, Objective
from reporter.formulas import parse
from reporter.periods import Period
from reporter.results import ObjectiveResult

Values = Mapping[str, float | None]
Groups = Mapping[Any, Mapping[str, float | None]]

HISTORY = 12  # periods before P for unusual_change
RECORD_LOOKBACK = 72  # periods scanned for a record (null periods are skipped)
RECORD_MAX = 36  # periods counted at most
MAD_SCALE = 1.4826
PACING_POINTS = 6
TYPE_ORDER = (
    "pacing",
    "unusual_change",
    "seasonal",
    "record",
    "contributors",
    "concentration",
    "ratio_parts",
)


def history_periods(period: Period) -> list[Period]:
    """The periods before P that insights may read, oldest first."""
    return [period.shift(-i) for i in range(RECORD_LOOKBACK, 0, -1)]


def record_history_needed(
    config: Config,
    period: Period,
    kpi_by_period: Mapping[Period, Values],
    since: dt.date | None = None,
    *,
    all_left: bool = False,
    skip: Collection[str] = (),
) -> tuple[list[Period], list[str]]:
    """The older periods to compute next for records, and the KPIs that need them: none unless a
    KPI's run of values strictly below (or above) its value reaches back past the periods
    already computed (the report needs about two years anyway). Then only as many periods as
    the longest such run still lacks to be counted in full (``RECORD_MAX``), the nearest first:
    a run that reaches 24 computed periods needs 12 more, whatever the length of the history.
    Called again after those are computed, it asks for more only when a run is still unbroken
    and short of ``RECORD_MAX`` (periods without a value, skipped by ``record``, are not
    counted): with ``all_left``, every period left. Periods that end before ``since`` (the
    first day of data) hold no value and are never asked for; the KPIs in ``skip`` (an
    incomplete period, no record) never ask."""
    before = history_periods(period)
    computed: list[Period] = []
    for p in reversed(before):
        if p not in kpi_by_period:
            break
        computed.append(p)
    reaching = []
    lacking = 0
    for name in config.kpis if len(computed) < len(before) else ():
        if name in skip:
            continue
        value = kpi_by_period[period].get(name)
        seen = [x for x in (kpi_by_period[p].get(name) for p in computed) if x is not None]
        if value is None or not seen or seen[0] == value:
            continue
        high = seen[0] < value
        run = next((i for i, x in enumerate(seen) if (x >= value if high else x <= value)), len(seen))
        if run == len(seen) and run < RECORD_MAX:  # unbroken to the edge of what is computed
            reaching.append(name)
            lacking = max(lacking, RECORD_MAX - run)
    if not reaching:
        return [], []
    left = [p for p in reversed(before) if p not in kpi_by_period and (since is None or p.end >= since)]
    older = left if all_left else left[:lacking]
    if not older:
        return [], []
    return sorted(older), reaching


# --- the formulas, on plain numbers ------------------------------------------------------------


def unusual(value: float | None, history: Sequence[float], z_min: float) -> dict[str, float] | None:
    if value is None or len(history) < 6:
        return None
    m = statistics.median(history)
    mad = statistics.median(abs(x - m) for x in history)
    if mad == 0:
        return None
    z = (value - m) / (MAD_SCALE * mad)
    if abs(z) < z_min:
        return None
    return {"value": value, "median": m, "mad": mad, "z": z}


def against_season(found: dict[str, float], last: float | None, z_min: float) -> dict[str, float] | None:
    """An unusual value (``found``, from ``unusual``) held against the same period one year
    before, by the same rule: ``season_z`` = (value − last) / (1.4826 × mad), mad the spread of
    the 12 periods before P. None when |season_z| < ``z_min``: the value is in line with its own
    season (a trade fair every October), not unusual. Else ``found`` with ``prior_year_value``
    and ``season_z``; ``found`` as it is when last year's value is not known."""
    if last is None:
        return found
    season_z = (found["value"] - last) / (MAD_SCALE * found["mad"])
    if abs(season_z) < z_min:
        return None
    return found | {"prior_year_value": last, "season_z": season_z}


def record(value: float | None, before: Sequence[float | None], min_periods: int) -> dict[str, Any] | None:
    """``before``: the preceding periods' values, the nearest first."""
    if value is None:
        return None
    seen = [x for x in before if x is not None]
    if not seen or seen[0] == value:
        return None
    kind = "high" if seen[0] < value else "low"
    count = 0
    for x in seen:
        if (x < value) if kind == "high" else (x > value):
            count += 1
            if count == RECORD_MAX:
                break
        else:
            break
    return {"kind": kind, "periods": count} if count >= min_periods else None


def split_change(
    now: Groups,
    base: Groups,
    numerator: str,
    scale: tuple[float, float] = (1.0, 1.0),
    year_ago: Groups | None = None,
    base_year_ago: Groups | None = None,
    *,
    ratio: bool = False,
) -> tuple[float, list[dict[str, Any]]]:
    """The parts of a KPI's change by key (see the module's docstring): part_k = a_k(P) × s_P −
    a_k(base) × s_base, a missing key or value counting 0; ``scale`` (1/b(P), 1/b(base)) for a
    ratio, b the whole KPI's denominator. A key present in one of the two periods only is not a
    part of its own: such keys sum into ``{group: "new", count, part}`` (in P only) and
    ``{group: "gone", count, part}`` (in the base only), so that a campaign that simply did not
    recur is not named as the cause of a change (a group of one key also names it, ``key``: a
    trade fair held this month only is the reason for its spend).

    ``year_ago``: the keys in the same period one year before P (given for a change on the
    previous period). A key in P only that is there is not new, it recurs (a trade fair held
    every October): such keys sum into ``{group: "returning", count, part, prior_year}``,
    ``prior_year`` = their a(P − 1 year) summed, the KPI's own value when the KPI is the metric
    itself; null for a ``ratio`` (a key's part of a rate is not a value of its own). Only a key
    absent from both is ``new``.

    ``base_year_ago``: the keys one year before the base period (given with ``year_ago``). A key
    in the base only that was there a year before the base and absent one year before P left
    the same way last year (a trade fair held in October, not in November): it is expected to be
    absent, not gone, and such keys sum into ``{group: "off_season", count, part}``. Only a key
    without that yearly pattern is ``gone`` (a one-off campaign that ended, a weekly send).

    Returns the sum of the parts and every part, largest |part| first; they add up to the change."""
    parts: list[dict[str, Any]] = []
    groups: dict[str, list[tuple[Any, float]]] = {"new": [], "returning": [], "off_season": [], "gone": []}
    for key in sorted({*now, *base}, key=lambda k: (k is None, str(k))):
        a_now = (now.get(key) or {}).get(numerator) or 0.0
        a_base = (base.get(key) or {}).get(numerator) or 0.0
        part = a_now * scale[0] - a_base * scale[1]
        if key not in base:
            groups["returning" if year_ago is not None and key in year_ago else "new"].append((key, part))
        elif key not in now:
            seasonal = (
                year_ago is not None
                and base_year_ago is not None
                and key not in year_ago
                and key in base_year_ago
            )
            groups["off_season" if seasonal else "gone"].append((key, part))
        else:
            parts.append({"key": key, "part": part})
    for group, members in groups.items():
        if members:
            item = {"group": group, "count": len(members), "part": math.fsum(p for _, p in members)}
            if group == "returning":
                before = (((year_ago or {}).get(k) or {}).get(numerator) or 0.0 for k, _ in members)
                item["prior_year"] = math.fsum(before) if not ratio else None
            parts.append(item | ({"key": members[0][0]} if len(members) == 1 else {}))
    whole = math.fsum(p["part"] for p in parts)
    parts.sort(key=lambda p: (-abs(p["part"]), "group" in p, str(p.get("key", p.get("group")))))
    return whole, parts


# --- from the compute stage's numbers ------------------------------------------------------------


def kpi_insights(
    config: Config, period: Period, kpi_by_period: Mapping[Period, Values], partial: Collection[str] = ()
) -> list[dict[str, Any]]:
    """``unusual_change`` (or ``seasonal``) and ``record`` for each KPI, except those in
    ``partial``: their period is incomplete (a source's data stops before its end), or their
    latest values are provisional (``settles_after``); a part of a period, or a number not final
    yet, compared with whole ones would be unusual, or a record low, only for being a part."""
    settings = config.insights
    out: list[dict[str, Any]] = []
    before = history_periods(period)
    for name in config.kpis:
        if name in partial:
            continue
        value = kpi_by_period[period].get(name)
        found = unusual(value, _known(kpi_by_period, name, period, HISTORY), settings.z)
        if found is not None:
            score = 3 * min(abs(found["z"]) / settings.z, 3.0)
            year_ago = season(kpi_by_period, name, period, found["z"], settings.z)
            if year_ago is None:
                last = kpi_by_period.get(period.prior_year(), {}).get(name)
                told = against_season(found, last, settings.z)
                if told is not None:  # else in line with its own season: not unusual
                    out.append({"type": "unusual_change", "kpi": name, **told, "score": score})
            else:
                out.append(
                    {
                        "type": "seasonal",
                        "kpi": name,
                        "value": found["value"],
                        "median": found["median"],
                        "z": found["z"],
                        **year_ago,
                        "score": score / 2,
                    }
                )
        # periods not computed are those no record could reach (record_history_needed)
        nearest_first = [kpi_by_period.get(p, {}).get(name) for p in reversed(before)]
        rec = record(value, nearest_first, settings.record_min_periods)
        if rec is not None:
            score = 2 * min(rec["periods"] / settings.record_min_periods, 1.5)
            out.append({"type": "record", "kpi": name, **rec, "score": score})
    return out


def _known(kpi_by_period: Mapping[Period, Values], name: str, period: Period, n: int) -> list[float]:
    """The KPI's non-null values in the ``n`` periods before ``period``, oldest first."""
    values = (kpi_by_period.get(period.shift(-i), {}).get(name) for i in range(n, 0, -1))
    return [x for x in values if x is not None]


def season(
    kpi_by_period: Mapping[Period, Values], name: str, period: Period, z: float, z_min: float
) -> dict[str, float] | None:
    """When P's unusual value is a season: the same robust z-score for P − 1 year against its own
    12 preceding periods (6 known at least) is past the threshold too, the same way. Returns
    ``prior_year_value`` and ``prior_year_z``, else None."""
    year_ago = period.prior_year()
    value = kpi_by_period.get(year_ago, {}).get(name)
    found = unusual(value, _known(kpi_by_period, name, year_ago, HISTORY), z_min)
    if found is None or (found["z"] > 0) != (z > 0):
        return None
    return {"prior_year_value": found["value"], "prior_year_z": found["z"]}


def one_metric(config: Config, kpi: str, *, additive: bool = True) -> str | None:
    """The metric a KPI is, when its formula is one metric's name (a sum or a count when
    ``additive``: their values by key add up to the whole)."""
    tree = parse(config.kpis[kpi].formula).tree
    if not isinstance(tree, ast.Name) or tree.id not in config.metrics:
        return None
    if additive and config.metrics[tree.id].agg not in ("sum", "count"):
        return None
    return tree.id


def ratio_of(config: Config, kpi: str) -> tuple[str, str] | None:
    """(a, b) when a KPI's formula is ``a / b`` of two metrics, a additive."""
    names = divided(config, kpi)
    if names is None:
        return None
    a, b = names
    if a not in config.metrics or b not in config.metrics or config.metrics[a].agg not in ("sum", "count"):
        return None
    return a, b


def divided(config: Config, kpi: str) -> tuple[str, str] | None:
    """(a, b) when a KPI's formula is ``a / b``, a and b each the name of a metric or a KPI."""
    tree = parse(config.kpis[kpi].formula).tree
    if not (
        isinstance(tree, ast.BinOp)
        and isinstance(tree.op, ast.Div)
        and isinstance(tree.left, ast.Name)
        and isinstance(tree.right, ast.Name)
    ):
        return None
    return tree.left.id, tree.right.id


def ratio_parts(
    config: Config,
    period: Period,
    objectives: Sequence[ObjectiveResult],
    kpi_by_period: Mapping[Period, Values],
    metric_by_period: Mapping[Period, Values],
    partial: Collection[str] = (),
) -> list[dict[str, Any]]:
    """``ratio_parts`` (module docstring): how the numerator and the denominator of a ratio KPI
    whose objective is missed moved since the previous period, so that a CAC that went from 722
    to 1 810 says whether the spend rose or the new customers fell (or both)."""
    out: list[dict[str, Any]] = []
    before = period.shift(-1)
    seen: set[str] = set()
    for objective in objectives:
        kpi = objective.kpi
        if objective.cumulative or kpi in seen or kpi in partial or kpi not in config.kpis:
            continue
        seen.add(kpi)  # the first objective on the KPI that judges P, as results.json's status
        names = divided(config, kpi)
        if objective.status not in ("at_risk", "off_track") or names is None:
            continue
        value, previous = kpi_by_period[period].get(kpi), kpi_by_period[before].get(kpi)
        if value is None or previous is None or value == previous:
            continue

        def at(p: Period, name: str) -> float | None:
            return (metric_by_period if name in config.metrics else kpi_by_period)[p].get(name)

        parts = []
        for role, name in zip(("numerator", "denominator"), names, strict=True):
            now, then = at(period, name), at(before, name)
            if now is None or then is None:
                break
            parts.append({"name": name, "role": role, "value": now, "previous": then, "change": now - then})
        else:
            out.append(
                {
                    "type": "ratio_parts",
                    "kpi": kpi,
                    "objective": objective.id,
                    "vs": "previous",
                    "value": value,
                    "previous": previous,
                    "change": value - previous,
                    "parts": parts,
                    "score": 0.0,
                }
            )
    return out


def breakdown_insights(
    config: Config,
    period: Period,
    kpi_by_period: Mapping[Period, Values],
    metric_by_period: Mapping[Period, Values],
    grouped: Callable[[list[str], str, list[Period]], Mapping[Period, Groups]],
) -> list[dict[str, Any]]:
    """``grouped(metrics, column, periods)``: the metrics per key of ``column`` in each period
    (one query for the three periods a breakdown needs)."""
    out: list[dict[str, Any]] = []
    kpi_values = kpi_by_period[period]
    for bd in config.breakdowns:
        name = f"{bd.kpi}_by_{bd.by}"
        single = one_metric(config, bd.kpi)
        ratio = None if single else ratio_of(config, bd.kpi)
        if single is None and ratio is None:
            continue
        numerator, denominator = (single, None) if single else ratio  # type: ignore[misc]
        bases = (("previous", period.shift(-1)), ("prior_year", period.prior_year()))
        before_last_year = period.shift(-1).prior_year()  # did the keys gone leave last year too?
        wanted = dict.fromkeys([period, *(p for _, p in bases), before_last_year])
        by_period = grouped([numerator], bd.by, list(wanted))
        now = by_period[period]
        for vs, base_period in bases:
            if kpi_values.get(bd.kpi) is None or kpi_by_period[base_period].get(bd.kpi) is None:
                continue  # no data in one of the two periods: nothing changed "from" its keys
            scale = (1.0, 1.0)
            if denominator is not None:
                b_now = metric_by_period[period].get(denominator)
                b_base = metric_by_period[base_period].get(denominator)
                if not b_now or not b_base:
                    continue  # the KPI has no value in one of the two periods
                scale = (1.0 / b_now, 1.0 / b_base)
            year_ago = by_period[period.prior_year()] if vs == "previous" else None
            base_year_ago = by_period[before_last_year] if vs == "previous" else None
            whole, parts = split_change(
                now,
                by_period[base_period],
                numerator,
                scale,
                year_ago,
                base_year_ago,
                ratio=denominator is not None,
            )
            if not parts:
                continue
            items = [p | {"share": None if whole == 0 else p["part"] / whole} for p in parts[:3]]
            relative = change(kpi_values.get(bd.kpi), kpi_by_period[base_period].get(bd.kpi))
            score = min(10 * abs(relative), 3.0) if relative is not None else 0.0
            out.append(
                {
                    "type": "contributors",
                    "breakdown": name,
                    "kpi": bd.kpi,
                    "vs": vs,
                    "change": whole,
                    "items": items,
                    "score": score,
                }
            )
        total = kpi_values.get(bd.kpi)
        if single and total and len(now) >= 3:
            key, top = max(
                ((k, (g.get(single) or 0.0)) for k, g in now.items()), key=lambda kv: (kv[1], str(kv[0]))
            )
            share = top / total
            if share >= 0.5:
                out.append(
                    {
                        "type": "concentration",
                        "breakdown": name,
                        "kpi": bd.kpi,
                        "key": key,
                        "share": share,
                        "score": 1.5 * share / 0.5,
                    }
                )
    return out


def periods_left(period: Period, objective: Objective) -> int:
    due = Period.containing(objective.due, period.grain)
    count, p = 0, period
    while p.start < due.start:
        p = p.shift(1)
        count += 1
    return count


def pacing_periods(config: Config, period: Period) -> set[Period]:
    """The periods pacing reads beyond the report's own: for each objective, the period a year
    before the one holding its due date, and the last periods up to P a year earlier."""
    out: set[Period] = set()
    for objective in config.objectives:
        due = Period.containing(objective.due, period.grain)
        if due.prior_year().start <= period.start:  # never a period after P
            out.add(due.prior_year())
        out |= {p.prior_year() for p in period.series(3 + provisional_periods(config, objective.kpi))}
    return out


def provisional_periods(config: Config, kpi: str) -> int:
    """How many of the latest periods of a KPI are not final yet (``settles_after``)."""
    return config.kpis[kpi].settles_after


def goal_of(
    objective: Objective, due: Period, kpi_by_period: Mapping[Period, Values], period: Period
) -> float | None:
    """The target of ``due`` (the period holding the objective's due date): a ``{value: v}``
    target's v, a ``{by_period}`` target's entry for it, a ``{change_vs_prior_year: x}`` target's
    value of the same period a year earlier × (1 + x); None for ``{change_vs_previous}`` (the
    previous period of a future one has no value yet) or when the number is not known. Pacing
    never reads a value after the report's period P: a year before D that is after P (D more
    than a year ahead) is not known, even when the data holds it (a report run on a past period)."""
    target = objective.target
    if target.value is not None:
        return float(target.value)
    if target.by_period is not None:
        found = target.by_period.get(due.label)
        return None if found is None else float(found)
    if target.change_vs_prior_year is not None:
        if due.prior_year().start > period.start:
            return None  # D − 1 year is after P: not a value the report may read
        base = kpi_by_period.get(due.prior_year(), {}).get(objective.kpi)
        return None if base is None else base * (1.0 + target.change_vs_prior_year)
    return None


def theil_sen_at(points: Sequence[tuple[int, float]], at: int) -> float | None:
    """The Theil–Sen line through ``points`` (x, y), x each value's period counted from P (P is
    0, the month before −1; a period without a value leaves a gap, it is not a zero), read at
    x = ``at``; none under 3 points. slope = the median of (y_j − y_i) / (x_j − x_i) over
    every pair, intercept = the median of (y_k − slope × x_k). One month that reverses the
    trend moves a median of slopes far less than it moves a least-squares line."""
    n = len(points)
    if n < 3:
        return None
    pairs = ((points[i], points[j]) for i in range(n) for j in range(i + 1, n))
    slope = statistics.median((b[1] - a[1]) / (b[0] - a[0]) for a, b in pairs)
    intercept = statistics.median(y - slope * x for x, y in points)
    return intercept + slope * at


def seasonal_at(
    kpi: str, due: Period, kpi_by_period: Mapping[Period, Values], settled: Period
) -> float | None:
    """value(D − 1 year) × (sum of the last 3 periods up to ``settled``) / (sum of the same 3 a
    year earlier), when every one of those 7 values is known and the year-earlier sum is not 0.
    ``settled`` is P, or the last period before P's provisional ones. None when D − 1 year is
    after ``settled``: pacing reads nothing after P (nor P's provisional periods)."""

    def at(p: Period) -> float | None:
        return kpi_by_period[p].get(kpi) if p in kpi_by_period else None

    if due.prior_year().start > settled.start:
        return None
    last = [settled.shift(-i) for i in range(2, -1, -1)]
    now = [at(p) for p in last]
    before = [at(p.prior_year()) for p in last]
    base = at(due.prior_year())
    if base is None or any(v is None for v in (*now, *before)):
        return None
    year_earlier = math.fsum(before)  # type: ignore[arg-type]
    if year_earlier == 0:
        return None
    return base * math.fsum(now) / year_earlier  # type: ignore[arg-type]


def _projected(
    config: Config, kpi: str, period: Period, due: Period, left: int, kpi_by_period: Mapping[Period, Values]
) -> tuple[float | None, str]:
    """The KPI's value projected to D: last year's season when its numbers allow, else the
    Theil–Sen line through the last 6 non-null values at their own periods, read at D;
    neither reads a provisional period."""
    settled = period.shift(-provisional_periods(config, kpi))
    projected = seasonal_at(kpi, due, kpi_by_period, settled)
    if projected is not None:
        return projected, "seasonal"
    points: list[tuple[int, float]] = []
    back = provisional_periods(config, kpi)  # P − settled
    for x in range(-back, -back - RECORD_LOOKBACK, -1):
        p = period.shift(x)
        v = kpi_by_period[p].get(kpi) if p in kpi_by_period else None
        if v is not None:  # a null (a division by zero: no lead at all) is no point, not a zero
            points.insert(0, (x, v))
            if len(points) == PACING_POINTS:
                break
    return theil_sen_at(points, left), "trend"


def pacing(
    config: Config,
    period: Period,
    objective: Objective,
    result: ObjectiveResult,
    ytd_periods: Sequence[Period],
    kpi_by_period: Mapping[Period, Values],
) -> dict[str, Any] | None:
    """The objective's pace (module docstring). A KPI's provisional periods (``settles_after``)
    are left out of the points its projection reads."""
    if objective.due <= period.end:
        return None
    if result.value is None:
        return None  # no value in P (a division by zero: nothing to divide): no pace to tell
    left = periods_left(period, objective)
    direction = config.kpis[objective.kpi].direction
    found: dict[str, Any] = {"type": "pacing", "objective": objective.id, "kpi": objective.kpi}
    if objective.cumulative:
        fy = config.report.fiscal_year_start
        if Period.containing(objective.due, period.grain).fiscal_year_start(fy) != period.fiscal_year_start(
            fy
        ):
            return None  # the year-to-date total restarts before D: P's total says nothing of D's
        if objective.target.value is None or not one_metric(config, objective.kpi, additive=False):
            return None  # no documented projection for this shape
        ytd = result.value
        elapsed = len(ytd_periods)
        if ytd is None:
            return None
        run_rate = ytd / elapsed
        goal = objective.target.value * (elapsed + left)
        found |= {
            "method": "run_rate",
            "elapsed": elapsed,
            "run_rate": run_rate,
            "projected": ytd + run_rate * left,
            "goal": goal,
            "needed_per_period": (goal - ytd) / left,
        }
    else:
        due = Period.containing(objective.due, period.grain)
        target_of_due = goal_of(objective, due, kpi_by_period, period)
        if target_of_due is None:
            return None  # {change_vs_previous}, or a target of D that is not known: no goal to pace
        projected, method = _projected(config, objective.kpi, period, due, left, kpi_by_period)
        if projected is None:
            return None
        # a line (or last year's shape) can run past what the KPI can be: an NPS above 100, a
        # share under 0 %; the projection stops at that bound, and says so (``limit``)
        projected, limit = within_bounds(projected, kpi_bounds(config, objective.kpi))
        if limit is not None:
            found["limit"] = limit
        found |= {
            "method": method,
            "projected": projected,
            "goal": target_of_due,
            "needed_per_period": None,
        }
    goal = found["goal"]
    on_pace = found["projected"] >= goal if direction != "down" else found["projected"] <= goal
    found |= {"periods_left": left, "on_pace": on_pace, "score": 4.0 if on_pace is False else 1.0}
    return found


# --- the range a KPI's values can take ----------------------------------------------------------

Bounds = tuple[float | None, float | None]  # (floor, ceiling); None: no bound known
_NONE: Bounds = (None, None)


def kpi_bounds(config: Config, kpi: str) -> Bounds:
    """The values a KPI can take in any period, as far as its configuration proves them, so that
    no projection says a value the KPI cannot have. Only what the formula proves, never a guess
    from the format or the label: a count (``count``, ``count_distinct``) is ≥ 0; a ratio ``a /
    b`` of counts whose numerator counts a part of what the denominator counts (the same source,
    the denominator with no ``where``; or ``a / (a + c)``) is within [0, 1]; ``(a − c) / b``
    with a and c parts of b within [−1, 1] (an NPS, × 100: [−100, 100]). A sum of amounts
    proves nothing (a budget can be overspent, an amount can be negative): no bound."""
    return _bounds(config, parse(config.kpis[kpi].formula).tree, {kpi})


def _counts(config: Config, name: str) -> bool:
    metric = config.metrics.get(name)
    return metric is not None and metric.agg in ("count", "count_distinct")


def _part_of(config: Config, part: str, whole: str) -> bool:
    """``part`` counts some of the rows (or distinct values) ``whole`` counts, in every period."""
    if part == whole:
        return _counts(config, part)
    if not (_counts(config, part) and _counts(config, whole)):
        return False
    a, b = config.metrics[part], config.metrics[whole]
    if a.source != b.source or b.where is not None or a.agg != b.agg or a.expr or b.expr:
        return False
    if a.agg == "count" and b.column is None:
        return True  # every row: any of them, or their non-null values of a column
    return a.column == b.column  # the non-null (or distinct) values of one column


def _terms(node: ast.expr) -> list[ast.expr]:
    """The terms of a sum (``a + b + c``), or the node itself."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [*_terms(node.left), *_terms(node.right)]
    return [node]


def _number(node: ast.Constant) -> float:
    assert isinstance(node.value, int | float)  # the parser admits numeric constants only
    return float(node.value)


def _scaled(bounds: Bounds, k: float) -> Bounds:
    lo, hi = (None if b is None else b * k for b in bounds)
    return (lo, hi) if k >= 0 else (hi, lo)


def _ratio(config: Config, node: ast.BinOp, seen: set[str]) -> Bounds:
    top, bottom = node.left, node.right
    if isinstance(bottom, ast.Constant):
        return _NONE if _number(bottom) == 0 else _scaled(_bounds(config, top, seen), 1 / _number(bottom))
    terms = _terms(bottom)
    if not all(isinstance(t, ast.Name) and _counts(config, t.id) for t in terms):
        low = _bounds(config, top, seen)[0]
        bottom_low = _bounds(config, bottom, seen)[0]
        return (
            (0.0, None)
            if low is not None and low >= 0 and bottom_low is not None and bottom_low >= 0
            else _NONE
        )
    names = [t.id for t in terms if isinstance(t, ast.Name)]

    def within(x: ast.expr) -> bool:
        return isinstance(x, ast.Name) and any(_part_of(config, x.id, n) for n in names)

    if within(top):
        return (0.0, 1.0)
    if isinstance(top, ast.BinOp) and isinstance(top.op, ast.Sub) and within(top.left) and within(top.right):
        return (-1.0, 1.0)
    low = _bounds(config, top, seen)[0]
    return (0.0, None) if low is not None and low >= 0 else _NONE


def _bounds(config: Config, node: ast.expr, seen: set[str]) -> Bounds:
    if isinstance(node, ast.Constant):
        return (_number(node), _number(node))
    if isinstance(node, ast.Name):
        if node.id in config.metrics:  # a name that is both a metric and a KPI is the metric
            return (0.0, None) if _counts(config, node.id) else _NONE
        if node.id in config.kpis and node.id not in seen:
            return _bounds(config, parse(config.kpis[node.id].formula).tree, seen | {node.id})
        return _NONE
    if isinstance(node, ast.UnaryOp):
        inner = _bounds(config, node.operand, seen)
        return _scaled(inner, -1.0) if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        return _ratio(config, node, seen) if isinstance(node.op, ast.Div) else _arithmetic(config, node, seen)
    return _NONE  # functions, products of signed values: no bound claimed


def _arithmetic(config: Config, node: ast.BinOp, seen: set[str]) -> Bounds:
    """The bounds of a sum, a difference, or a product by a number or of two values ≥ 0."""
    (a, b), (c, d) = _bounds(config, node.left, seen), _bounds(config, node.right, seen)
    if isinstance(node.op, ast.Add):
        return (None if a is None or c is None else a + c, None if b is None or d is None else b + d)
    if isinstance(node.op, ast.Sub):
        return (None if a is None or d is None else a - d, None if b is None or c is None else b - c)
    if isinstance(node.op, ast.Mult):
        for const, other in ((node.right, (a, b)), (node.left, (c, d))):
            if isinstance(const, ast.Constant):
                return _scaled(other, _number(const))
        if a is not None and c is not None and a >= 0 and c >= 0:
            return (a * c, None if b is None or d is None else b * d)
    return _NONE


def within_bounds(value: float, bounds: Bounds) -> tuple[float, str | None]:
    """``value`` held to ``bounds``, and which of them it met (``ceiling``, ``floor``) if any."""
    floor, ceiling = bounds
    if ceiling is not None and value > ceiling:
        return ceiling, "ceiling"
    if floor is not None and value < floor:
        return floor, "floor"
    return value, None


def rank(insights: list[dict[str, Any]], config: Config) -> list[dict[str, Any]]:
    """Best score first; ties go to KPIs bound to an objective, then to the YAML's order (of the
    objectives, of the KPIs, of the breakdowns), then by type, previous before prior year;
    never to the alphabet (a label's first letter says nothing about what matters)."""
    bound = {o.kpi for o in config.objectives}
    kpis = list(config.kpis)
    objectives = [o.id for o in config.objectives]
    breakdowns = [f"{b.kpi}_by_{b.by}" for b in config.breakdowns]

    def order(i: dict[str, Any]) -> tuple[float, bool, int, int, int, int]:
        kpi = i.get("kpi")
        return (
            -i["score"],
            kpi not in bound,
            kpis.index(kpi) if kpi in kpis else len(kpis),
            objectives.index(i["objective"]) if i.get("objective") in objectives else -1,
            breakdowns.index(i["breakdown"]) if i.get("breakdown") in breakdowns else -1,
            TYPE_ORDER.index(i["type"]) * 2 + (i.get("vs") == "prior_year"),
        )

    return sorted(insights, key=order)
