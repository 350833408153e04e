"""The Results tree: what results.json holds, what templates and the email read.

Plain dataclasses, JSON-serialisable with ``to_json``; numbers are floats or null, never NaN or
inf (``to_json`` refuses them, so a bug cannot leak one into a report).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

# The words results.json uses; templates translate them, never print them.
Status = Literal["on_track", "at_risk", "off_track", "no_data", "no_target"]
Verdict = Literal["keep", "improve", "stop", "review"]


@dataclass
class SeriesPoint:
    period: str
    value: float | None


@dataclass
class KpiResult:
    value: float | None
    previous: float | None
    prior_year: float | None
    change_vs_previous: float | None
    change_vs_prior_year: float | None
    ytd: float | None
    target: float | None
    attainment: float | None
    status: Status
    series: list[SeriesPoint]
    label: str = ""
    format: str = "number"
    direction: str = "up"
    section: str = ""
    owner: str = ""
    description: str = ""
    formula: str = ""
    # A percent KPI's changes in points, as fractions (value − base: 0.058 is +5.8 points);
    # null for other formats, or when either number is null.
    change_pp_vs_previous: float | None = None
    change_pp_vs_prior_year: float | None = None
    # kpis.<id>.settles_after > 0: the value of the period (and of the N − 1 before it) is not
    # final yet; no record, unusual or seasonal insight is claimed for it.
    provisional: bool = False


@dataclass
class ActionResult:
    when: str
    do: str
    owner: str
    due: str | None


@dataclass
class TrendPoint:
    period: str
    value: float | None
    target: float | None


@dataclass
class Move:
    kpi: str
    label: str
    change: float | None  # the relative change, (value − base) / |base|
    value: float | None
    format: str
    change_pp: float | None = None  # a percent KPI's change in points (value − base), else null
    base: float | None = None  # the value compared with (previous or prior_year)
    direction: str = "up"


@dataclass
class Moves:
    favourable: list[Move]
    unfavourable: list[Move]


@dataclass
class ObjectiveResult:
    id: str
    kpi: str
    target: float | None
    value: float | None
    attainment: float | None
    status: Status
    actions: list[ActionResult]
    title: str = ""
    owner: str = ""
    due: str = ""
    cumulative: bool = False
    target_kind: str = ""
    trend: list[TrendPoint] = field(default_factory=list)


@dataclass
class BreakdownRow:
    key: Any
    value: float | None
    other: bool = False
    # a ratio KPI (a division at the top of its formula): its divisor on the same rows, e.g. the
    # leads a conversion rate is out of; null for any other KPI
    base: float | None = None


@dataclass
class FunnelStage:
    label: str
    metric: str
    value: float | None
    step_rate: float | None


@dataclass
class PortfolioRow:
    key: Any
    cost: float | None
    value: float | None
    ratio: float | None
    verdict: Verdict


@dataclass
class QualityCheck:
    check: str
    source: str
    passed: bool
    detail: str
    actual: str | int | None = None  # complete_period: the last date; min_rows: the row count
    required: str | int | None = None  # complete_period: the date needed; min_rows: the minimum


@dataclass
class Quality:
    passed: bool
    checks: list[QualityCheck]


@dataclass
class SourceFile:
    """A file behind a derived source: its path relative to the YAML, its SHA-256."""

    path: str
    sha256: str | None


@dataclass
class SourceResult:
    name: str
    kind: str
    location: str
    rows: int
    first_date: str | None
    last_date: str | None
    sha256: str | None
    # its data reaches the period's end (by its frequency: the last day, the Monday of the last
    # week, the 1st of the last month); null without data
    complete: bool | None = field(default=None, kw_only=True)
    # a derived source: every source behind it (through other derived sources), with its hash
    files: list[SourceFile] = field(default_factory=list, kw_only=True)


@dataclass
class Results:
    report: str
    period: str
    period_start: str
    period_end: str
    kpis: dict[str, KpiResult]
    objectives: list[ObjectiveResult]
    breakdowns: dict[str, list[BreakdownRow]]
    funnel: list[FunnelStage]
    portfolio: list[PortfolioRow]
    quality: Quality
    grain: str = "month"
    generated_at: str = ""
    sources: list[SourceResult] = field(default_factory=list)
    filter: dict[str, Any] = field(default_factory=dict)
    moves: dict[str, Moves] = field(default_factory=dict)
    # Best first; each a plain dict (type, names, numbers, score, text): see compute/insights.py.
    insights: list[dict[str, Any]] = field(default_factory=list)
    # A breakdown longer than its pdf_rows: the "other" row the PDF prints after its first
    # pdf_rows rows (the KPI on all the other rows). Not in results.json, which has every row.
    pdf_other: dict[str, BreakdownRow] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        del data["pdf_other"]
        return data

    def to_json(self) -> str:
        data = self.to_dict()
        _check_finite(data, "results")
        return json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def _check_finite(value: Any, path: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path} is {value}: a non-finite number must never reach results")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, f"{path}[{i}]")
