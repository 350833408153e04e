"""What to do when the completeness gate fails: the latest period the data does cover, and the
two ways out (declare a sparse source's ``frequency``, or relax the gate); and which period a
``preview`` without ``--period`` shows when the last complete one has no data."""

from __future__ import annotations

import datetime as dt

from reporter.compute.report import _last_expected_date
from reporter.config.model import Config
from reporter.periods import Period
from reporter.results import QualityCheck, Results

GRAIN_WORDS = {"month": "month", "quarter": "quarter", "week": "week"}


def latest_complete(config: Config, results: Results) -> Period | None:
    """The latest period that every source covers to its end (by its ``frequency``), or None
    when a source has no dated row at all."""
    grain = config.report.grain
    latest: Period | None = None
    for source in results.sources:
        if source.last_date is None:
            return None
        last = dt.date.fromisoformat(source.last_date[:10])
        period = Period.containing(last, grain)
        if last < _last_expected_date(period, config.sources[source.name].frequency):
            period = period.shift(-1)
        latest = period if latest is None or period < latest else latest
    return latest


def latest_with_data(config: Config, results: Results) -> Period | None:
    """When no source has a row in ``results``' period or after it (the data stopped earlier):
    the latest period that every source with data reaches (the earliest of their last dates'
    periods), so that a ratio of two sources is not shown on one of them alone. None when some
    source has data in the period or later, or none has a dated row."""
    lasts = [dt.date.fromisoformat(s.last_date[:10]) for s in results.sources if s.last_date]
    if not lasts or max(lasts).isoformat() >= results.period_start:
        return None
    return Period.containing(min(lasts), config.report.grain)


def preview_note(config: Config, default: Period, chosen: Period) -> str:
    """What ``preview`` says when it shows ``chosen`` instead of the last complete period."""
    word = GRAIN_WORDS[config.report.grain]
    return (
        f"{config.report.id}: no data in {default.label}, the last complete {word}; "
        f"the latest {word} with data is {chosen.label}: previewed instead "
        f"(`reporter preview {config.file} --period P` for another)"
    )


def gate_hint(config: Config, results: Results) -> list[str]:
    """The lines added to a failed completeness gate's message (none for other checks)."""
    if not any(c.check == "complete_period" and not c.passed for c in results.quality.checks):
        return []
    word = GRAIN_WORDS[config.report.grain]
    found = latest_complete(config, results)
    lines = []
    if found is not None and found.label < results.period:
        lines.append(
            f"the latest complete {word} in the data is {found.label}: "
            f"`reporter run {config.file} --period {found.label}`"
        )
    # Suggest only a frequency sparser than the one each short source already declares.
    short = {config.sources[c.source].frequency for c in results.quality.checks if _short(c)}
    if "daily" in short:
        lines.append(
            "a source with one row per week or month: declare it with `frequency: weekly` or "
            "`frequency: monthly` under sources.<name>"
        )
    elif "weekly" in short:
        lines.append(
            "a source with one row per month: declare it with `frequency: monthly` under sources.<name>"
        )
    return [*lines, "to run on incomplete data: `quality.require_complete_period: false`"]


def _short(check: QualityCheck) -> bool:
    return check.check == "complete_period" and not check.passed
