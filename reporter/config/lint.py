"""Warnings for a configuration that is valid but probably not what its author meant: silent
defaults. ``validate`` prints them (``file:line:col: key: warning: …``) and still exits 0.

The file has already loaded without error; this reads its YAML nodes again with libyaml when
available (a few milliseconds) only for the keys' positions."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from reporter.config.labels import Labels, fallback_labels, language_of
from reporter.config.model import Config
from reporter.errors import Problem

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _mapping(node: yaml.Node | None) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _at(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def key_position(root: yaml.Node | None, keys: tuple[str | int, ...]) -> tuple[int | None, int | None]:
    """Line and column of the key at ``keys`` in a composed file (a mapping entry's key, a list's
    item); of the deepest one written when the rest is not (a default), else (None, None)."""
    found: tuple[int | None, int | None] = (None, None)
    node = root
    for key in keys:
        if isinstance(key, int):
            items = node.value if isinstance(node, yaml.SequenceNode) else []
            if not 0 <= key < len(items):
                break
            node = items[key]
            found = _at(node)
        else:
            pair = _mapping(node).get(key)
            if pair is None:
                break
            found, node = _at(pair[0]), pair[1]
    return found


def compose(path: Path) -> yaml.Node | None:
    """The file's YAML nodes (with positions) for ``key_position``."""
    node: yaml.Node | None = yaml.compose(path.read_text(encoding="utf-8"), Loader=_Loader)
    return node


def report_id_position(path: Path) -> tuple[int | None, int | None]:
    """Line and column of ``report.id``'s value."""
    root = yaml.compose(path.read_text(encoding="utf-8"), Loader=_Loader)
    found = _mapping(_mapping(root).get("report", (None, None))[1]).get("id")
    return _at(found[1]) if found else (None, None)


def _percent_target(
    file: str, i: int, fields: dict[str, tuple[yaml.Node, yaml.Node]], config: Config, kpi: str
) -> list[Problem]:
    """A target above 1 for a percent KPI: 30 is 3,000 %; 0.30 was probably meant."""
    if kpi not in config.kpis or config.kpis[kpi].format != "percent":
        return []
    target = _mapping(fields.get("target", (None, None))[1])
    values = [("value", target.get("value"))]
    values += [(f"by_period.{k}", v) for k, v in _mapping(target.get("by_period", (None, None))[1]).items()]
    out = []
    for key, pair in values:
        node = pair[1] if pair else None
        if not isinstance(node, yaml.ScalarNode):
            continue
        try:
            number = float(node.value)
        except ValueError:
            continue
        if number > 1:
            line, col = _at(node)
            out.append(
                Problem(
                    file,
                    line,
                    col,
                    f"objectives[{i}].target.{key}",
                    f"warning: {node.value} for the percent KPI '{kpi}' means {number * 100:,.0f} %",
                    f"percentages are written as fractions: {number / 100:g} for {number:g} %",
                )
            )
    return out


def language_warning(path: Path, config: Config) -> Problem | None:
    """``_language_warning`` for a file (``reporter run`` says it once per report)."""
    root = _mapping(yaml.compose(path.read_text(encoding="utf-8"), Loader=_Loader))
    return _language_warning(str(path), root, config)


def _language_warning(
    file: str, root: dict[str, tuple[yaml.Node, yaml.Node]], config: Config
) -> Problem | None:
    """One warning for every label without a text in ``report.locale``'s language: how many, and
    the first three keys (the report shows them in English, else in their first language)."""
    missing = fallback_labels(config)
    if not missing:
        return None
    report = _mapping(root.get("report", (None, None))[1])
    node = report.get("locale", root.get("report"))
    line, col = _at(node[1] if "locale" in report else node[0]) if node else (None, None)
    language, n = language_of(config.report.locale), len(missing)
    shown = ", ".join(missing[:3]) + (", …" if n > 3 else "")
    if n == 1:
        said = f"1 label has no '{language}' text and shows in English (or its first language): {shown}"
    else:
        said = f"{n} labels have no '{language}' text and show in English (or their first language): {shown}"
    return Problem(file, line, col, "report.locale", f"warning: {said}", f"add {language}: … to each")


def silent_defaults(path: Path, config: Config | None = None) -> list[Problem]:
    """A KPI without ``label`` or ``direction``, an objective without ``actions``, a breakdown or
    the portfolio without ``label`` (the report shows the raw column name). ``config``: the file
    as loaded (loaded here when not given)."""
    if config is None:
        from reporter.config.checks import load_config

        config = load_config(path, check_data=False)
    labels = Labels(config)
    root = _mapping(yaml.compose(path.read_text(encoding="utf-8"), Loader=_Loader))
    file = str(path)
    found = [p for p in (_language_warning(file, root, config),) if p is not None]
    for name, (key, kpi) in _mapping(root.get("kpis", (None, None))[1]).items():
        fields = _mapping(kpi)
        if not fields:
            continue
        line, col = _at(key)
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
    objectives = root.get("objectives", (None, None))[1]
    for i, item in enumerate(objectives.value if isinstance(objectives, yaml.SequenceNode) else []):
        fields = _mapping(item)
        actions = fields.get("actions", (None, None))[1]
        if i < len(config.objectives):
            found += _percent_target(file, i, fields, config, config.objectives[i].kpi)
        if fields and (actions is None or (isinstance(actions, yaml.SequenceNode) and not actions.value)):
            line, col = _at(item)
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
    breakdowns = root.get("breakdowns", (None, None))[1]
    items = breakdowns.value if isinstance(breakdowns, yaml.SequenceNode) else []
    for i, (item, bd) in enumerate(zip(items, config.breakdowns, strict=False)):
        if bd.label is None:
            line, col = _at(item)
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
    portfolio = root.get("portfolio")
    if config.portfolio is not None and config.portfolio.label is None and portfolio is not None:
        line, col = _at(portfolio[0])
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
    found += _burst_workers(file, root, config)
    return found


def _burst_workers(file: str, root: dict[str, tuple[yaml.Node, yaml.Node]], config: Config) -> list[Problem]:
    """More worker processes than this machine allows: the run starts only as many."""
    from reporter.config.burst import max_workers

    burst = config.delivery.burst
    cap = max_workers()
    if burst.workers is None or burst.workers <= cap or burst.connection is not None:
        return []  # with a connection, workers is how many of the cluster's to wait for
    delivery = _mapping(root.get("delivery", (None, None))[1])
    node = _mapping(delivery.get("burst", (None, None))[1]).get("workers")
    line, col = _at(node[1]) if node else (None, None)
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
