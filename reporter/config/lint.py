"""Warnings for a configuration that is valid but probably not what its author meant: silent
defaults. ``validate`` prints them (``file:line:col: key: warning: …``) and still exits 0."""

from __future__ import annotations

from pathlib import Path

from reporter.config.loader import load_yaml
from reporter.errors import Problem


def silent_defaults(path: Path) -> list[Problem]:
    """A KPI without ``label`` or ``direction``, an objective without ``actions``."""
    doc, _ = load_yaml(path.read_text(encoding="utf-8"), str(path), {})
    data = doc.data if isinstance(doc.data, dict) else {}
    found: list[Problem] = []

    def warn(at: tuple[str | int, ...], message: str, hint: str, *, key: bool = False) -> None:
        found.append(doc.problem(at, f"warning: {message}", hint, key=key))

    kpis = data.get("kpis")
    for name, kpi in (kpis or {}).items() if isinstance(kpis, dict) else ():
        if not isinstance(kpi, dict):
            continue
        if "label" not in kpi:
            shown = str(name).replace("_", " ")
            warn(("kpis", name), f"no label: the report will call it '{shown}'", "add label: …", key=True)
        if "direction" not in kpi:
            warn(
                ("kpis", name),
                "no direction: up (higher is better) is assumed",
                "add direction: up, down or neutral",
                key=True,
            )
    objectives = data.get("objectives")
    for i, objective in enumerate(objectives if isinstance(objectives, list) else []):
        if isinstance(objective, dict) and not objective.get("actions"):
            warn(
                ("objectives", i),
                "no actions: the report will show the status without an action plan",
                "add actions: [{when: off_track, do: …, owner: …}]",
            )
    return found
