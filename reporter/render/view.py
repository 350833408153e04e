"""What a template may read: the typed view of a report, each field with its help text.

Every part is a frozen dataclass whose fields are checked against their declared types when it
is built (``reporter.results.Checked``): ``build_context`` (render/html.py) and the digest make
them straight from the ``Results``, and a value of the wrong type is a TypeError naming the
class, the field, the type expected and the value got. Where the view shows a part of the
results as it is (a series point, a trend point, an action, a funnel stage), it is the results'
own class. So this module is the contract with template authors: the context section of
docs/templates.md is generated from it (``python -m reporter.render.view``; a test fails when
the page is stale), and a field cannot be added, removed or renamed without the guide changing.

Templates read fields as ``k.value`` or ``k["value"]`` (Jinja falls back to the attribute).
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from markupsafe import Markup

from reporter import results
from reporter.results import (
    Checked,
    FunnelStage,
    SeriesPoint,
    Status,
    TrendPoint,
    doc,
    field_types,
)

__all__ = ["Action", "Checked", "FunnelStage", "SeriesPoint", "TrendPoint"]


# -- the results, as the template sees them ---------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Kpi(Checked):
    name: str = doc("the KPI's key in the YAML")
    label: str = doc("the KPI's label, in the report's language")
    value: float | None = doc("the value in the period")
    previous: float | None = doc("the value in the previous period")
    prior_year: float | None = doc("the value in the same period a year before")
    change_vs_previous: float | None = doc("relative change against the previous period (0.047 is +4.7 %)")
    change_vs_prior_year: float | None = doc("relative change against the same period a year before")
    change_pp_vs_previous: float | None = doc(
        "for a KPI whose changes are in points (`change`, by default a `percent` KPI's): value − previous, "
        "a fraction for a percent KPI (0.058 is +5.8 points), in its own unit for a score; none for "
        "the others"
    )
    change_pp_vs_prior_year: float | None = doc(
        "for a KPI whose changes are in points: value − prior_year, as `change_pp_vs_previous`"
    )
    ytd: float | None = doc("the value over the fiscal year to date")
    target: float | None = doc("the target in the period, or none")
    attainment: float | None = doc("value ÷ target (for direction up) or target ÷ value (down)")
    status: Status = doc("`on_track`, `at_risk`, `off_track`, `no_data` or `no_target`")
    series: list[SeriesPoint] = doc("the last 12 periods, oldest first")
    format: str = doc("`number`, `integer`, `currency`, `percent`, `ratio` or `days`")
    direction: str = doc("`up`, `down` or `neutral`")
    section: str = doc("the scorecard section, in the report's language, or empty")
    owner: str = doc("who answers for it")
    description: str = doc("what it measures, from the YAML")
    formula: str = doc("its formula as written in the YAML")
    provisional: bool = doc("true when its latest values are not final yet (`settles_after`)")
    cumulative: bool = doc(
        "true when its target is a cumulative objective's (the year to date's): show `ytd_text` beside it"
    )
    ytd_text: str = doc("the year-to-date value written in the KPI's format")
    value_text: str = doc("the value written in the KPI's format")
    target_text: str = doc("the target written in the KPI's format")
    sparkline: Markup = doc("the last 12 periods as an inline SVG")
    bullet: Markup = doc(
        "the attainment bar as an inline SVG; for a KPI without a target, a dash that is an artifact "
        "(not read aloud)"
    )
    words: str = doc("the formula with labels and signs: `Prospects ÷ Sessions`")
    unusual: str | None = doc("the sentence of the KPI's `unusual_change` insight, or none")


@dataclass(frozen=True, kw_only=True)
class Action(results.Action):
    """An action as the template shows it: the results' action (its ``do`` rendered) and its life
    in words."""

    state_text: str = doc(
        "its state in words, in the report's language (`Overdue` for an overdue one); empty without an id",
        default="",
    )
    age_text: str = doc("an open action's age in words (`open for 2 months`), else empty", default="")


@dataclass(frozen=True, kw_only=True)
class Objective(Checked):
    id: str = doc("the objective's id in the YAML")
    title: str = doc("its title, in the report's language")
    kpi: str = doc("the KPI's key")
    kpi_label: str = doc("the KPI's label")
    target: float | None = doc("the target in the period")
    value: float | None = doc("the KPI's value (the year to date for a cumulative objective)")
    attainment: float | None = doc("value ÷ target (direction up) or target ÷ value (down)")
    status: Status = doc("`on_track`, `at_risk`, `off_track`, `no_data` or `no_target`")
    owner: str = doc("who answers for it")
    due: str = doc("its due date (ISO)")
    past_due: bool = doc(
        "true when its due date is before the period's last day: the objectives table and the digest "
        'say "past due"'
    )
    cumulative: bool = doc("true when judged on the year to date")
    target_kind: str = doc("how the target is given: `value`, `change_vs_previous`, `change_vs_prior_year`…")
    actions: list[Action] = doc("its action plan")
    trend: list[TrendPoint] = doc("the last 12 periods with their targets")
    value_text: str = doc("the value written in the KPI's format")
    target_text: str = doc("the target written in the KPI's format")
    chart: Markup = doc("the trend and target line as an inline SVG")
    pacing: str | None = doc("the sentence of its `pacing` insight, or none")
    provisional: bool = doc("true when its KPI's value is not final yet (`settles_after`)")
    note: str = doc("the owner's note from the period's check-in (`checkins/<period>.yaml`), or empty")
    followed: bool = doc("true when one of its actions has a life (an `id`): show their states")
    overdue: int = doc("how many of its actions are overdue")
    cid: str = doc(
        "*email only*: the `cid:` of its trend image (a PNG part: mail clients show no SVG), "
        "its target as a dashed line",
        default="",
    )


@dataclass(frozen=True, kw_only=True)
class BreakdownRow(results.BreakdownRow):
    """A breakdown's row as the PDF shows it: the results' row, its label, value and bar."""

    label: str = doc(
        "the key's label from `breakdowns[].values`, else the key as text; 'Other', "
        "or '(none)' for the null key"
    )
    value_text: str = doc("the value written in the KPI's format")
    base_text: str = doc("the divisor written as a number (empty when the KPI is not a ratio)")
    width: int = doc("0–100, the bar's width against the largest value: use the class `w{{ row.width }}`")


@dataclass(frozen=True, kw_only=True)
class Breakdown(Checked):
    id: str = doc("`<kpi>_by_<column>`, its key in results.json")
    kpi: str = doc("the KPI's label")
    by: str = doc("the column's label (`breakdowns[].label`, else its name)")
    by_words: str = doc(
        "the same inside a heading (first letter lowered, except in German or before an acronym)"
    )
    base: str | None = doc(
        "when the KPI is a ratio (a division at the top of its formula): its divisor in words, the title of "
        "the column of each row's `base_text`; else none"
    )
    rows: list[BreakdownRow] = doc(
        "the rows the PDF prints (top rows, then 'Other' when longer than `shown`)"
    )
    total: int = doc("how many rows results.json has")
    shown: int = doc("the breakdown's `pdf_rows`")
    attachment: str | None = doc("the name of the CSV attached inside the PDF (PDF/A only), or none")
    insights: list[str] = doc("the sentences of its `contributors` and `concentration` insights")


@dataclass(frozen=True, kw_only=True)
class PortfolioRow(results.PortfolioRow):
    """A portfolio row as the report shows it: the results' row and its label."""

    label: str = doc("the key's label (`portfolio.values`), the key as it is, or '(none)'")


@dataclass(frozen=True, kw_only=True)
class ReportInfo(Checked):
    id: str = doc("the report's id")
    title: str = doc("its title")
    company: str = doc("the company's name")
    locale: str = doc("the locale, e.g. `fr_FR`")
    lang: str = doc("its language, e.g. `fr`")
    logo: str | None = doc("the logo as a `data:` URL, or none")
    url: str | None = doc("`report.url`, where the report lives (the digest links it), or none")


@dataclass(frozen=True, kw_only=True)
class PeriodInfo(Checked):
    label: str = doc("the period's code: `2026-10`")
    words: str = doc(
        "the period in words in the report's language: `octobre 2026`, `Q4 2026`, `week 43 of 2026`"
    )


@dataclass(frozen=True, kw_only=True)
class DueAction(Checked):
    objective: str = doc("the objective's title")
    when: str = doc("as in an objective's actions")
    do: str = doc("what to do, rendered")
    owner: str = doc("who does it")
    due: str | None = doc("by when, or none")
    id: str | None = doc("as in an objective's actions", default=None)
    state: str | None = doc("as in an objective's actions", default=None)
    comment: str = doc("as in an objective's actions", default="")
    since: str | None = doc("as in an objective's actions", default=None)
    age: int | None = doc("as in an objective's actions", default=None)
    overdue: bool = doc("as in an objective's actions", default=False)
    state_text: str = doc("as in an objective's actions", default="")
    age_text: str = doc("as in an objective's actions", default="")


# -- the whole context ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReportContext(Checked):
    """What ``report.html`` (the PDF and the preview) reads."""

    r: dict[str, Any] = doc(
        "the whole `results.json`, as a mapping (`r.period`, `r.kpis`, `r.quality.checks`, `r.sources`, "
        "`r.moves`, `r.insights`, `r.filter`…); each of `r.sources` also has `label` "
        "(`sources.<name>.label`, else its name), `file` (a file's path relative to the YAML, a "
        "database's redacted URL: never the server's absolute path; a derived source's `from` names) and "
        "`files` (a derived source: each file behind it, `path` relative to the YAML and `sha256`), "
        "each of `r.quality.checks` "
        "`source_label`; `r.filter` (a burst report's filter) names its columns and values by their labels"
    )
    report: ReportInfo = doc("the report")
    period: PeriodInfo = doc("the period")
    generated: str = doc("when the results were computed, in the report's locale and time zone")
    version: str = doc("reporter's version")
    kpis: dict[str, Kpi] = doc("KPI name → KPI, in the order of the YAML")
    sections: list[tuple[str, list[Kpi]]] = doc(
        "`(section name, [kpi, …])` pairs in the order of the YAML; "
        "KPIs without a section go under 'Indicators'"
    )
    objectives: list[Objective] = doc(
        "the objectives, in the order of the YAML; in the email, in the digest's order: off track, "
        "at risk, on track, then without data or target, the furthest from its target first within each"
    )
    breakdowns: list[Breakdown] = doc("the breakdowns, in the order of the YAML")
    funnel: list[FunnelStage] = doc("the funnel's stages (empty without a funnel)")
    funnel_chart: Markup | None = doc("the funnel as an inline SVG, or none")
    portfolio: list[PortfolioRow] = doc("the portfolio's rows (empty without a portfolio)")
    portfolio_key: str = doc(
        "the heading of the portfolio's key column: `portfolio.label`, else the column's name"
    )
    portfolio_chart: Markup | None = doc("the portfolio as an inline SVG, or none")
    portfolio_rules: dict[str, float] | None = doc("the `keep` and `improve` ratios, or none")
    symbols: dict[str, str] = doc(
        "status → symbol: `on_track` ✔, `at_risk` ◆, `off_track` ✖, `no_data` –, `no_target` ○ "
        "(no triangle: ▲ and ▼ only say that a change went up or down)"
    )
    tally: list[tuple[str, int]] = doc(
        "`(status, count)` pairs of the objectives, for the statuses that occur; in the email, "
        "off track first (off track, at risk, on track, no data, no target)"
    )
    takeaways: list[str] = doc(
        "the sentences that open the summary: the best-scored insights, one per event "
        "(`insights.max_summary`, at most two of a kind, none on a metric already told; what happened and "
        "why in one sentence; the digest and the chat card show the first three)"
    )
    incomplete: list[str] = doc(
        "a warning sentence for each source whose data stops before the period's end (possible when "
        "`quality.require_complete_period` is false), shown at the top of the summary and of the digest"
    )
    colours: dict[str, str] = doc(
        "the chart palette: a colour per status and verdict, and `ink`, `muted`, `grid`, `accent`"
    )
    fmt_kpi: Callable[[str, float | None], str] = doc(
        "a function: `fmt_kpi(name, value)` writes `value` in KPI `name`'s format and decimals"
    )
    delta_legend: str = doc(
        "the legend of the `delta` filter's signals, in the report's language: \"▲ ▼ up or down · "
        "✓ better · ✗ worse (by the indicator's direction) · grey: no preferred direction\""
    )
    for_browser: bool = doc(
        "true in the preview (one self-contained HTML file), false for the PDF", default=False
    )
    inline_css: str = doc("the stylesheet's text in the preview, empty for the PDF", default="")


@dataclass(frozen=True, kw_only=True)
class DigestContext(ReportContext):
    """What ``email.html`` and ``email.txt`` read: the report's context and these."""

    due_actions: list[DueAction] = doc("the actions due by the end of the next period (or without a date)")
    recipient: str = doc("the recipient's address for a burst report; empty otherwise")
    attached: list[str] = doc(
        "the names of the files attached to the message (`delivery.email.attach`: the PDF, the workbook)"
    )
    preheader: str = doc(
        "the inbox's preview line, hidden in the message: the tally and the objective "
        "furthest from its target"
    )


# -- the view as Jinja reads it ------------------------------------------------------------------


def as_mapping(obj: Any) -> dict[str, Any]:
    """A view's top-level fields as the mapping Jinja renders with."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


# -- the template guide's context section -----------------------------------------------------


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return str(getattr(tp, "__name__", tp))
    if origin is list:
        return f"list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return f"mapping of {_type_name(get_args(tp)[1])}"
    if origin is tuple:
        return "(" + ", ".join(_type_name(a) for a in get_args(tp)) + ")"
    if origin in (Union, types.UnionType):
        return " or ".join("none" if a is type(None) else _type_name(a) for a in get_args(tp))
    if origin is typing.Literal:
        return "text"
    if tp is Markup:
        return "SVG"
    names = {str: "text", float: "number", int: "integer", bool: "true/false"}
    if tp in names:
        return names[tp]
    if origin is Callable:
        return "function"
    return "any"


def _table(cls: type[Any], skip: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    hints = field_types(cls)
    lines = ["| field | type | what it is |", "|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        help_text = f.metadata["help"].replace("|", "\\|")
        lines.append(f"| `{f.name}` | {_type_name(hints[f.name])} | {help_text} |")
    return lines


PARTS: list[type[Any]] = [
    ReportInfo,
    PeriodInfo,
    Kpi,
    SeriesPoint,
    Objective,
    Action,
    TrendPoint,
    Breakdown,
    BreakdownRow,
    FunnelStage,
    PortfolioRow,
    DueAction,
]


def reference() -> str:
    """The context section of docs/templates.md, in Markdown."""
    lines = [
        "<!-- generated from reporter/render/view.py by `make docs-gen`: edit the help texts there -->",
        "",
        "`report.html` reads a **ReportContext**; `email.html` and `email.txt` read a **DigestContext**,",
        "which is the same plus four fields. Each part below is a type a field above names.",
        "",
        "### ReportContext",
        "",
        *_table(ReportContext),
        "",
        "### DigestContext",
        "",
        "Every field of ReportContext, and:",
        "",
        *_table(DigestContext, {f.name for f in dataclasses.fields(ReportContext)}),
    ]
    for part in PARTS:
        lines += ["", f"### {part.__name__}", "", *_table(part)]
    return "\n".join(lines) + "\n"


START, END = "<!-- context:start -->", "<!-- context:end -->"


def with_reference(page: str) -> str:
    """The template guide ``page`` with its context section (between START and END) rewritten."""
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{reference()}{END}{tail}"


if __name__ == "__main__":  # python -m reporter.render.view docs/templates.md (make docs-gen)
    from pathlib import Path

    guide = Path(sys.argv[1])
    guide.write_text(with_reference(guide.read_text(encoding="utf-8")), encoding="utf-8")
