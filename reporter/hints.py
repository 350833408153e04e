"""What to do when the completeness gate fails: the latest period the data does cover, and the
two ways out (declare a sparse source's ``frequency``, or relax the gate), or for a period
without any row, that, with the day the data ends (relaxing the gate would not help); which
period a ``preview`` without ``--period`` shows when the last complete one has no data, and
what a ``preview --period`` of a period without data says."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from reporter.config.model import Config
from reporter.formulas import parse
from reporter.periods import Period, last_expected_date
from reporter.results import QualityCheck, Results, SourceResult

GRAIN_WORDS = {"month": "month", "quarter": "quarter", "week": "week"}


def latest_complete(config: Config, results: Results) -> Period | None:
    """The latest period that every source covers to its end (by its ``frequency``) and has
    begun by, or None when a source has no dated row or no period has data in every source."""
    return latest_common(config, results.sources)[0]


@dataclass(frozen=True)
class Gap:
    """Sources whose data share no period: ``name`` starts on ``first``, after ``other``'s data
    ends (complete up to ``period``); or, when ``name`` is ``other``, a source without one whole
    period of data."""

    name: str
    first: str
    other: str
    period: Period

    def __str__(self) -> str:
        return (
            f"source '{self.name}' starts on {self.first}, after the end of source '{self.other}' "
            f"(complete up to {self.period.label})"
        )


def latest_common(config: Config, sources: Iterable[SourceResult]) -> tuple[Period | None, Gap | None]:
    """``latest_complete`` over ``sources`` (each source's first and last day); when it is None
    because the sources' data share no period, the ``Gap`` that says why."""
    grain = config.report.grain
    latest: tuple[Period, str] | None = None
    starts: list[tuple[str, str]] = []
    for source in sources:
        if source.last_date is None or source.first_date is None:
            return None, None
        last = dt.date.fromisoformat(source.last_date[:10])
        period = Period.containing(last, grain)
        if last < last_expected_date(period, config.sources[source.name].frequency):
            period = period.shift(-1)
        latest = (period, source.name) if latest is None or period < latest[0] else latest
        starts.append((source.first_date[:10], source.name))
    if latest is None:
        return None, None
    first, name = max(starts)
    if first > latest[0].end.isoformat():  # that source has no data in it, nor in any before
        return None, Gap(name, first, latest[1], latest[0])
    return latest[0], None


def latest_with_data(config: Config, results: Results) -> Period | None:
    """When no source has a row in ``results``' period or after it (the data stopped earlier):
    the latest period that every source with data reaches (the earliest of their last dates'
    periods), so that a ratio of two sources is not shown on one of them alone. None when some
    source has data in the period or later, or none has a dated row."""
    return latest_dated(config, [s.last_date for s in results.sources if s.last_date], results.period_start)


def latest_dated(config: Config, last_dates: list[str], start: str) -> Period | None:
    """``latest_with_data`` from the sources' last dates (ISO texts) and the period's first day."""
    lasts = [dt.date.fromisoformat(d[:10]) for d in last_dates]
    if not lasts or max(lasts).isoformat() >= start[:10]:
        return None
    return Period.containing(min(lasts), config.report.grain)


def blank_note(config: Config, results: Results) -> str | None:
    """What ``preview --period P`` says when P has no row in any source (or in any the KPIs
    read): the page shows no numbers; when the data ends and the period to preview instead."""
    lines = no_data_hint(config, results, "preview", "the preview shows no numbers")
    return f"{config.report.id}: {'; '.join(lines)}" if lines else None


def preview_note(config: Config, default: Period, chosen: Period) -> str:
    """What ``preview`` says when it shows ``chosen`` instead of the last complete period."""
    word = GRAIN_WORDS[config.report.grain]
    return (
        f"{config.report.id}: no data in {default.label}, the last complete {word}; "
        f"the latest {word} with data is {chosen.label}: previewed instead "
        f"(`reporter preview {config.file} --period P` for another)"
    )


def gate_hint(config: Config, results: Results) -> list[str]:
    """The lines added to a failed gate's message: for a period without a row in any source (or
    in any the KPIs read), ``no_data_hint``; else, for a failed completeness check, the latest
    complete period, a sparser ``frequency`` to declare and how to relax the gate; else none."""
    empty = no_data_hint(config, results)
    if empty:
        return empty
    if not any(_short(c) for c in results.quality.checks):
        return []
    word = GRAIN_WORDS[config.report.grain]
    found, apart = latest_common(config, results.sources)
    lines = []
    if found is not None and found.label < results.period:
        lines.append(
            f"the latest complete {word} in the data is {found.label}: "
            f"`reporter run {config.file} --period {found.label}`"
        )
    elif apart is not None and apart.name != apart.other:  # else: one source, not a whole period yet
        lines.append(f"no {word} has data in every source: {apart}")
    # Only for a short source whose rows the data shows to be a week or a month apart.
    for name in dict.fromkeys(c.source for c in results.quality.checks if _short(c)):
        sparser = results.sparse.get(name)
        if sparser is not None:
            lines.append(
                f"source '{name}' has about one row per {sparser[:-2]}: "
                f"declare it with `frequency: {sparser}` under sources.{name}"
            )
    return [*lines, "to run on incomplete data: `quality.require_complete_period: false`"]


def no_data_hint(config: Config, results: Results, command: str = "run", then: str = "") -> list[str]:
    """When no source has a row in the period, or none of those the KPIs read: that, said
    plainly, with the day the data ends (when it ends before the period; in parentheses before
    ``then``, what follows from it) and the latest complete period to ``command`` (run, preview)
    instead. Relaxing the gate would only send a blank report: not suggested. [] when some
    source the KPIs read has a row in the period."""
    empty = _empty_sources(results)
    read = _kpi_sources(config)
    period, sources = results.period, results.sources
    if {s.name for s in sources} <= empty:
        subject, whose = f"no source has data in {period}", "the data ends"
    elif read and read <= empty:
        names = ", ".join(f"'{n}'" for n in sorted(read))
        subject, whose = f"no source the KPIs read ({names}) has data in {period}", "their data ends"
        sources = [s for s in sources if s.name in read]
    else:
        return []
    lasts = [s.last_date[:10] for s in sources if s.last_date]
    ends = f"{whose} on {max(lasts)}" if lasts and max(lasts) < results.period_start else ""
    if then:
        lines = [f"{subject} ({ends}): {then}" if ends else f"{subject}: {then}"]
    else:
        lines = [f"{subject}: {ends}" if ends else subject]
    found, apart = latest_common(config, results.sources)  # the gate judges every source
    word = GRAIN_WORDS[config.report.grain]
    if found is not None and found.label < period:
        lines.append(
            f"the latest complete {word} in the data is {found.label}: "
            f"`reporter {command} {config.file} --period {found.label}`"
        )
    elif apart is not None and apart.name != apart.other:
        lines.append(f"no {word} has data in every source: {apart}")
    return lines


def _empty_sources(results: Results) -> set[str]:
    """The sources without a row in the period: by the min_rows check's count when there is one
    (a recipient's slice counts their rows), else by the source's first and last dates."""
    counted = {c.source: c.actual == 0 for c in results.quality.checks if c.check == "min_rows"}
    start, end = results.period_start[:10], results.period_end[:10]
    out = set()
    for source in results.sources:
        first, last = source.first_date, source.last_date
        if source.name in counted:
            none = counted[source.name]
        else:
            none = first is None or last is None or last[:10] < start or first[:10] > end
        if none:
            out.add(source.name)
    return out


def _kpi_sources(config: Config) -> set[str]:
    """The sources of the metrics the KPIs' formulas name (every KPI is shown, so the names
    of all formulas together are the metrics read, through other KPIs too)."""
    names = {n for kpi in config.kpis.values() for n in parse(kpi.formula).names}
    return {config.metrics[n].source for n in names if n in config.metrics}


def _short(check: QualityCheck) -> bool:
    return check.check == "complete_period" and not check.passed
