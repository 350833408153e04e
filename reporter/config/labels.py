"""The words a reader sees for the YAML's names, in the report's language: one place resolves
every label (KPIs, metrics, sections, objectives, breakdown columns and values, the portfolio's
column and values, funnel stages, sources), so templates print names, never keys or raw values.

A label is text or a map ``{language code: text}``; the entry of ``report.locale``'s language is
chosen, else the English entry, else the map's first entry (``fallback_labels`` lists the labels
that fall back, for validate and run to say so once).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from reporter.config.model import Breakdown, Config, _is_language


def language_of(locale: str) -> str:
    """``fr_FR`` → ``fr`` (also ``de-DE``, ``it``)."""
    return locale.replace("-", "_").split("_")[0].lower()


def pick(label: str | Mapping[str, str] | None, language: str) -> str | None:
    """The text of ``label`` for ``language``: the text itself, the map's entry for the language,
    else its English entry, else its first entry; None for no label."""
    if label is None or isinstance(label, str):
        return label
    if language in label:
        return label[language]
    if "en" in label:
        return label["en"]
    return next(iter(label.values()), None)


def _is_label_map(value: Any) -> bool:
    """A map {language code: text} (validation made sure every label map is one); a recipient's
    filter ({rep: Bob}) is not: its keys are no language."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(_is_language(k) and isinstance(v, str) for k, v in value.items())
    )


def fallback_labels(config: Config) -> list[str]:
    """The key paths (``kpis.sessions.label``) of the labels that have no text in the report's
    language, in the YAML's order: the report shows them in another language (``pick``)."""
    language = language_of(config.report.locale)
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name), f"{path}.{name}" if path else name)
        elif _is_label_map(value):
            if language not in value:
                found.append(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")

    walk(config, "")
    return found


def breakdown_id(bd: Breakdown) -> str:
    """A breakdown's key in results.json: ``<kpi>_by_<column>``."""
    return f"{bd.kpi}_by_{bd.by}"


class Labels:
    """The labels of one configuration in one language (by default the report's)."""

    def __init__(self, config: Config, locale: str | None = None):
        self.config = config
        self.language = language_of(locale or config.report.locale)

    def text(self, label: str | Mapping[str, str] | None) -> str | None:
        return pick(label, self.language)

    def title(self) -> str:
        """The report's title."""
        return self.text(self.config.report.title) or self.config.report.id

    def company(self) -> str:
        return self.text(self.config.report.company) or ""

    def report_fields(self) -> dict[str, Any]:
        """The YAML's ``report`` section as a template string in the YAML (the subject, an
        action) reads it: ``report.title`` and ``report.company`` in this language."""
        fields = self.config.report.model_dump(mode="json")
        return {**fields, "title": self.title(), "company": self.company()}

    def kpi(self, name: str) -> str:
        kpi = self.config.kpis.get(name)
        return (kpi and self.text(kpi.label)) or name.replace("_", " ")

    def metric(self, name: str) -> str:
        """A metric's label, else the label of the KPI of the same name, else its key with spaces."""
        metric = self.config.metrics.get(name)
        own = metric and self.text(metric.label)
        if own:
            return own
        return self.kpi(name)

    def section(self, name: str) -> str:
        """KPI ``name``'s section ("" for none)."""
        return self.text(self.config.kpis[name].section) or ""

    def objective(self, objective_id: str) -> str:
        """An objective's title."""
        for obj in self.config.objectives:
            if obj.id == objective_id:
                return self.text(obj.title) or obj.id
        return objective_id

    def source(self, name: str) -> str:
        source = self.config.sources.get(name)
        return (source and self.text(source.label)) or name

    def source_file(self, name: str) -> str | None:
        """A file source's path as a reader may see it: relative to the YAML's folder, or its name
        alone when it lies outside (never the server's absolute path); None for a database."""
        source = self.config.sources.get(name)
        if source is None or source.path is None:
            return None
        path = self.config.resolve(source.path)
        try:
            return path.resolve().relative_to(self.config.base_dir.resolve()).as_posix()
        except ValueError:
            return Path(path).name

    def breakdown(self, bd: Breakdown) -> str:
        """The heading of a breakdown's column: its label, else the column's name."""
        return self.text(bd.label) or bd.by

    def breakdown_value(self, breakdown: str | Breakdown, key: Any) -> str:
        """A breakdown's row as shown: the value's label, else the value as it is."""
        bd = breakdown
        if isinstance(bd, str):
            bd = next((b for b in self.config.breakdowns if breakdown_id(b) == breakdown), None)  # type: ignore[assignment]
        values = bd.values if isinstance(bd, Breakdown) else {}
        return self._value(values, key)

    def portfolio(self) -> str:
        pf = self.config.portfolio
        if pf is None:
            return ""
        return self.text(pf.label) or pf.by

    def portfolio_value(self, key: Any) -> str:
        pf = self.config.portfolio
        return self._value(pf.values if pf is not None else {}, key)

    def column(self, name: str) -> str:
        """A data column's label: that of a breakdown (else the portfolio) over it, else its name."""
        for label in self._over(name, "label"):
            return self.text(label) or name
        return name

    def column_value(self, name: str, value: Any) -> str:
        """A value of a data column as shown: its label in a breakdown (else the portfolio) over
        that column, else the value as it is."""
        for values in self._over(name, "values"):
            if str(value) in values:
                return self._value(values, value)
        return str(value)

    def _over(self, column: str, field: str) -> list[Any]:
        """``field`` of the breakdowns and portfolio cut by ``column`` that set it, in YAML order."""
        parts: list[Any] = [*self.config.breakdowns, self.config.portfolio]
        return [getattr(p, field) for p in parts if p is not None and p.by == column and getattr(p, field)]

    def funnel(self, index: int) -> str:
        stage = self.config.funnel[index]
        return self.text(stage.label) or stage.metric

    def _value(self, values: Mapping[str, str | Mapping[str, str]], key: Any) -> str:
        raw = str(key)
        label = values.get(raw)
        return (self.text(label) if label is not None else None) or printable(raw)


# Control characters no report can show (tab, line feed and carriage return aside), and the two
# code points XML forbids: a value from the data holding one is shown with U+FFFD in its place.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def printable(text: str) -> str:
    """``text`` with each control character replaced by U+FFFD "�"."""
    return CONTROL.sub("\ufffd", text)
