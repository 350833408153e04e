"""The Results tree: what results.json holds, what templates and the email read.

Plain dataclasses, JSON-serialisable with ``to_json``; numbers are floats or null, never NaN or
inf (``to_json`` refuses them, so a bug cannot leak one into a report).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import json
import math
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

# The words results.json uses; templates translate them, never print them.
Status = Literal["on_track", "at_risk", "off_track", "no_data", "no_target"]
Verdict = Literal["keep", "improve", "stop", "review"]
ActionState = Literal["open", "done", "dropped", "not_needed"]


def doc(text: str, **kwargs: Any) -> Any:
    """A field with its help text (what the template guide says about it: render/view.py)."""
    return field(metadata={"help": text}, **kwargs)


# -- type-checked dataclasses ------------------------------------------------------------------

_TYPES: dict[type[Any], dict[str, Any]] = {}


def field_types(cls: type[Any]) -> dict[str, Any]:
    """A dataclass's field types, resolved once per process (not once per KPI)."""
    if cls not in _TYPES:
        _TYPES[cls] = get_type_hints(cls)  # each base's fields in its own module
    return _TYPES[cls]


def type_name(tp: Any) -> str:
    """A type as it is written in Python: ``float | None``, ``list[SeriesPoint]``."""
    origin = get_origin(tp)
    if tp is type(None):
        return "None"
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in get_args(tp))
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin is collections.abc.Callable:
        return "a function"
    if origin is not None:
        return f"{getattr(origin, '__name__', origin)}[{', '.join(type_name(a) for a in get_args(tp))}]"
    return str(getattr(tp, "__name__", tp))


def conforms(value: Any, tp: Any) -> bool:
    """Is ``value`` of type ``tp`` (an int is a float, a bool is neither; nested lists, mappings
    and tuples are checked item by item; a dataclass by ``isinstance``, its own fields having been
    checked when it was built)?"""
    return _test(tp)(value)


Test = Callable[[Any], bool]


def _always(value: Any) -> bool:
    return True


@functools.cache
def _test(tp: Any) -> Test:
    """The test of ``tp``, made once per type (a report builds thousands of parts)."""
    if tp is Any:
        return _always
    if tp is type(None) or tp is None:
        return lambda value: value is None
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (Union, types.UnionType):
        options = [_test(a) for a in args]
        return lambda value: any(test(value) for test in options)
    if origin is Literal:
        allowed = frozenset((type(a), a) for a in args)

        def literal(value: Any) -> bool:
            try:
                return (type(value), value) in allowed
            except TypeError:  # unhashable: a list or a mapping is no literal
                return False

        return literal
    if origin is not None:
        return _generic_test(origin, args)
    if tp is float:
        return lambda value: isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return lambda value: isinstance(value, tp)
    return _always  # a type this check does not know: accepted


def _generic_test(origin: Any, args: tuple[Any, ...]) -> Test:
    """``_test`` of a list, dict, tuple or callable type."""
    if origin is list:
        item = _test(args[0])
        return lambda value: isinstance(value, list) and all(map(item, value))
    if origin is dict:
        key, item = _test(args[0]), _test(args[1])
        return lambda value: isinstance(value, dict) and all(key(k) and item(v) for k, v in value.items())
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _test(args[0])
        return lambda value: isinstance(value, tuple) and all(map(item, value))
    if origin is tuple:
        parts = [_test(a) for a in args]
        return lambda value: (
            isinstance(value, tuple)
            and len(value) == len(parts)
            and all(t(v) for t, v in zip(parts, value, strict=True))
        )
    if origin is collections.abc.Callable:
        return callable
    return (lambda value: isinstance(value, origin)) if isinstance(origin, type) else _always


class Checked:
    """Base of a dataclass whose fields are checked against their declared types when it is
    built: a wrong type is a TypeError naming the class, the field, the type expected and the
    value got (a programming error, caught where the value is made, not in a template)."""

    def __getitem__(self, key: str) -> Any:
        """A field by its name, as a template may read it (``k["value"]``)."""
        if key not in field_types(type(self)):
            raise KeyError(key)
        return getattr(self, key)

    def __post_init__(self) -> None:
        for name, tp in field_types(type(self)).items():
            value = getattr(self, name)
            if not _test(tp)(value):
                shown = repr(value)
                shown = shown if len(shown) <= 60 else shown[:57] + "..."
                raise TypeError(
                    f"{type(self).__name__}.{name}: expected {type_name(tp)}, "
                    f"got {type(value).__name__} {shown}"
                )


# -- the results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesPoint(Checked):
    """One period of a KPI's series (results.json and the template view alike)."""

    period: str = doc("the period's code (`2026-10`)")
    value: float | None = doc("the KPI's value in that period, or none")


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
    # The changes in points of a KPI whose changes are in points (kpis.<id>.change; by default a
    # percent KPI's): value − base, a fraction for a percent KPI (0.058 is +5.8 points), a
    # score's own unit otherwise (−0.8 points of NPS); null for the others, or when either
    # number is null. The report shows a change in points when it has one.
    change_pp_vs_previous: float | None = None
    change_pp_vs_prior_year: float | None = None
    # kpis.<id>.settles_after > 0: the value of the period (and of the N − 1 before it) is not
    # final yet; no record, unusual or seasonal insight is claimed for it.
    provisional: bool = False


@dataclass(frozen=True)
class Action(Checked):
    """An action of an objective's plan, chosen by its status or alive by its id (results.json
    and the view alike; the view's ``do`` is rendered)."""

    when: str = doc("when the action applies: `always` or a status (`off_track`…)")
    do: str = doc("what to do, already rendered (see below)")
    owner: str = doc("who does it")
    due: str | None = doc("by when (an ISO date), or none")
    # An action with an id has a life (compute/followup.py); the others have null here.
    id: str | None = doc(
        "its `id` in the YAML; none for an action without one (it has no life)", default=None
    )
    state: ActionState | None = doc(
        "a followed action's state: `open`, `done` or `dropped` (from the check-ins), or `not_needed` "
        "(closed by itself: the objective was back on track and no check-in kept it open); "
        "none without an id",
        default=None,
    )
    comment: str = doc("the latest check-in's comment on it, or empty", default="")
    since: str | None = doc("the period that opened it (its code), or none", default=None)
    age: int | None = doc("periods since it was opened (0: this period), or none", default=None)
    overdue: bool = doc("true when it is open and its due date is before the period's end", default=False)


ActionResult = Action  # its name in compute


@dataclass(frozen=True)
class TrendPoint(Checked):
    """One period of an objective's trend."""

    period: str = doc("the period's code")
    value: float | None = doc("the KPI's value")
    target: float | None = doc("the objective's target in that period")


@dataclass
class Move:
    kpi: str
    label: str
    change: float | None  # the relative change, (value − base) / |base|
    value: float | None
    format: str
    change_pp: float | None = None  # the change in points (value − base) of a KPI in points, else null
    base: float | None = None  # the value compared with (previous or prior_year)
    direction: str = "up"


@dataclass
class Moves:
    favourable: list[Move]
    unfavourable: list[Move]
    # changes of KPIs with no preferred direction (neutral), by size, in the places the
    # favourable and unfavourable ones leave: a report whose KPIs are all neutral still has moves
    neutral: list[Move] = field(default_factory=list)


@dataclass
class ObjectiveResult:
    id: str
    kpi: str
    target: float | None
    value: float | None
    attainment: float | None
    status: Status
    actions: list[Action]
    title: str = ""
    owner: str = ""
    due: str = ""
    cumulative: bool = False
    target_kind: str = ""
    trend: list[TrendPoint] = field(default_factory=list)
    note: str = ""  # the owner's note from the period's check-in (checkins/<period>.yaml)
    past_due: bool = False  # its due date is before the period's last day: the report says so


@dataclass(frozen=True)
class BreakdownRow(Checked):
    """A row of a breakdown: a key and the KPI on its rows (the view's row adds how to show it)."""

    key: Any = doc("the raw key (none for rows without one)")
    value: float | None = doc("the KPI on that key's rows")
    other: bool = doc("true for the 'Other' row of a top-N breakdown", default=False)
    base: float | None = doc(
        "for a ratio KPI (a division at the top of its formula): its divisor on the same rows, e.g. "
        "the leads a conversion rate is out of; none for any other KPI",
        default=None,
    )


@dataclass(frozen=True)
class FunnelStage(Checked):
    """A stage of the funnel as computed (results.json and the view alike; the view's label is
    in the language of the render)."""

    label: str = doc("the stage's label, in the report's language")
    metric: str = doc("its metric's key")
    value: float | None = doc("the metric in the period")
    step_rate: float | None = doc("value ÷ the previous stage's value (none for the first)")


@dataclass(frozen=True)
class PortfolioRow(Checked):
    """A row of the portfolio: a key, its cost and value, their ratio and the verdict (the view's
    row adds its label)."""

    key: Any = doc("the raw key")
    cost: float | None = doc("the cost metric on that key")
    value: float | None = doc("the value metric on that key")
    ratio: float | None = doc("value ÷ cost")
    verdict: Verdict = doc("`keep`, `improve`, `stop` or `review`")


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
    # A source short of the period's end whose rows are a week or a month apart while its
    # ``frequency`` says denser: the frequency its data shows (weekly, monthly), for the gate's
    # hint. Not in results.json.
    sparse: dict[str, str] = field(default_factory=dict)
    # The check-in files read (checkins/<period>.yaml), each with its SHA-256: the evidence of the
    # notes and action states; the PDF/A carries each file.
    checkins: list[SourceFile] = field(default_factory=list)
    # Not in results.json: those files' bytes (attached to the PDF as read), and each objective's
    # note as written (text or per language), so a render in another language picks its own.
    checkin_files: dict[str, bytes] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for private in ("pdf_other", "sparse", "checkin_files", "notes"):
            del data[private]
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
