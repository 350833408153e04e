"""Warnings for a configuration that is valid but probably not what its author meant: silent
defaults. ``validate`` prints them (``file:line:col: key: warning: …``) and still exits 0.

The file has already loaded without error; the keys' positions come from that one reading of
its YAML (``Config.position``), never from a second parser."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from reporter.config.labels import Labels, fallback_labels, language_of
from reporter.config.model import Config
from reporter.errors import Problem
from reporter.periods import Period


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _percent_target(file: str, i: int, fields: dict[str, Any], config: Config, kpi: str) -> list[Problem]:
    """A target above 1 for a percent KPI: 30 is 3,000 %; 0.30 was probably meant."""
    if kpi not in config.kpis or config.kpis[kpi].format != "percent":
        return []
    target = _mapping(fields.get("target"))
    values: list[tuple[str, Any]] = [("value", target["value"])] if "value" in target else []
    values += [(f"by_period.{k}", v) for k, v in _mapping(target.get("by_period")).items()]
    out = []
    for key, value in values:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if number > 1:
            line, col = config.position(("objectives", i, "target", *key.split(".", 1)))
            out.append(
                Problem(
                    file,
                    line,
                    col,
                    f"objectives[{i}].target.{key}",
                    f"warning: {value} for the percent KPI '{kpi}' means {number * 100:,.0f} %",
                    f"percentages are written as fractions: {number / 100:g} for {number:g} %",
                )
            )
    return out


def language_warning(config: Config) -> Problem | None:
    """One warning for every label without a text in ``report.locale``'s language: how many, and
    the first three keys (the report shows them in English, else in their first language).
    ``reporter run`` says it once per report, ``validate`` with the other warnings."""
    missing = fallback_labels(config)
    if not missing:
        return None
    report = _mapping(_mapping(config.yaml_data).get("report"))
    line, col = (
        config.position(("report", "locale"))
        if "locale" in report
        else config.position(("report",), key=True)
    )
    language, n = language_of(config.report.locale), len(missing)
    shown = ", ".join(missing[:3]) + (", …" if n > 3 else "")
    if n == 1:
        said = f"1 label has no '{language}' text and shows in English (or its first language): {shown}"
    else:
        said = f"{n} labels have no '{language}' text and show in English (or their first language): {shown}"
    return Problem(
        str(config.file), line, col, "report.locale", f"warning: {said}", f"add {language}: … to each"
    )


def silent_defaults(path: Path, config: Config | None = None) -> list[Problem]:
    """A KPI without ``label`` or ``direction``, an objective without ``actions``, a breakdown or
    the portfolio without ``label`` (the report shows the raw column name). ``config``: the file
    as loaded (loaded here when not given)."""
    if config is None:
        from reporter.config.checks import load_config

        config = load_config(path, check_data=False)
    labels = Labels(config)
    root = _mapping(config.yaml_data)
    file = str(path)
    found = [p for p in (language_warning(config),) if p is not None]
    for name, kpi in _mapping(root.get("kpis")).items():
        fields = _mapping(kpi)
        if not fields:
            continue
        line, col = config.position(("kpis", name), key=True)
        if "label" not in fields:
            shown = name.replace("_", " ")
            found.append(
                Problem(
                    file,
                    line,
                    col,
                    f"kpis.{name}",
                    f"warning: no label: the report will call it '{shown}'",
                    "add label: …",
                )
            )
        if "direction" not in fields:
            found.append(
                Problem(
                    file,
                    line,
                    col,
                    f"kpis.{name}",
                    "warning: no direction: up (higher is better) is assumed",
                    "add direction: up, down or neutral",
                )
            )
    objectives = root.get("objectives")
    for i, item in enumerate(objectives if isinstance(objectives, list) else []):
        fields = _mapping(item)
        actions = fields.get("actions")
        if i < len(config.objectives):
            found += _percent_target(file, i, fields, config, config.objectives[i].kpi)
        if fields and (actions is None or (isinstance(actions, list) and not actions)):
            line, col = config.position(("objectives", i))
            found.append(
                Problem(
                    file,
                    line,
                    col,
                    f"objectives[{i}]",
                    "warning: no actions: the report will show the status without an action plan",
                    "add actions: [{when: off_track, do: …, owner: …}]",
                )
            )
    breakdowns = root.get("breakdowns")
    items = breakdowns if isinstance(breakdowns, list) else []
    for i, (_, bd) in enumerate(zip(items, config.breakdowns, strict=False)):
        if bd.label is None:
            line, col = config.position(("breakdowns", i))
            shown = labels.breakdown(bd)
            found.append(
                Problem(
                    file,
                    line,
                    col,
                    f"breakdowns[{i}]",
                    f"warning: no label: the report will call the column '{shown}' "
                    "(in the heading and the table's first column)",
                    "add label: …",
                )
            )
    if config.portfolio is not None and config.portfolio.label is None and "portfolio" in root:
        line, col = config.position(("portfolio",), key=True)
        found.append(
            Problem(
                file,
                line,
                col,
                "portfolio",
                f"warning: no label: the report will call the column '{labels.portfolio()}' "
                "(the table's first column)",
                "add label: …",
            )
        )
    found += _burst_workers(file, config)
    return found


def _burst_workers(file: str, config: Config) -> list[Problem]:
    """More worker processes than this machine allows: the run starts only as many."""
    from reporter.config.burst import max_workers

    burst = config.delivery.burst
    cap = max_workers()
    if burst.workers is None or burst.workers <= cap or burst.connection is not None:
        return []  # with a connection, workers is how many of the cluster's to wait for
    written = "workers" in _mapping(_mapping(_mapping(config.yaml_data).get("delivery")).get("burst"))
    line, col = config.position(("delivery", "burst", "workers")) if written else (None, None)
    why = "(one per core)" if os.environ.get("REPORTER_MAX_WORKERS") is None else "(REPORTER_MAX_WORKERS)"
    return [
        Problem(
            file,
            line,
            col,
            "delivery.burst.workers",
            f"warning: {burst.workers} worker processes asked for; this machine starts at most {cap} {why}",
            "the operator may allow more with the environment variable REPORTER_MAX_WORKERS",
        )
    ]


def past_due(config: Config, now: dt.datetime) -> list[Problem]:
    """Objectives whose due date is before the last day of the period a run without
    ``--period`` reports at ``now``: that report marks them "past due"."""
    report = config.report
    period = Period.last_complete(now, report.grain, report.timezone)
    found = []
    for i, obj in enumerate(config.objectives):
        if obj.due < period.end:
            line, col = config.position(("objectives", i, "due"))
            found.append(
                Problem(
                    str(config.file),
                    line,
                    col,
                    f"objectives[{i}].due",
                    f"warning: {obj.due.isoformat()} is before the end of {period.label}, the period a run "
                    "reports now: the report marks the objective past due",
                    "set its new due date, or remove the objective once it is over",
                )
            )
    return found
