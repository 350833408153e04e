"""The rules that need the data: each file source's header (columns, the date column; a CSV,
Parquet or JSON file is read once, its first rows into ``guards.Sample``, and its columns are
that table's), the derived sources' columns, each metric's column, ``expr`` and ``where``
against its source's columns, the breakdowns' and recipients' columns; then
``guards.check_data`` runs the metrics over the rows. ``checks._Checker`` inherits these
methods (``DataRules``)."""

from __future__ import annotations

import dataclasses
import graphlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reporter.config import derived, guards, sqlexpr
from reporter.config import model as m
from reporter.config.explain import did_you_mean
from reporter.config.loader import Path_
from reporter.config.sql import describe_file, read_columns
from reporter.config.sqlexpr import ExpressionError, bound_problem, check_expression, scratch
from reporter.errors import Problem, SourceError
from reporter.formulas import Formula
from reporter.security import check_named_file

FILE_KINDS = ("csv", "parquet", "excel", "json")
SAMPLED = ("csv", "parquet", "json")  # the kinds DuckDB reads itself (an Excel sheet: pandas)


class DataRules:
    """The part of the checker that reads the data's headers and rows (mixed into
    ``checks._Checker``, which holds the state below)."""

    parts: dict[str, Any]
    problems: list[Problem]
    base_dir: Path
    outside: set[Path_]
    unparsed: set[Path_]
    formulas: dict[str, Formula]
    kpi_order: list[str]

    if TYPE_CHECKING:

        def add(self, path: Path_, message: str, hint: str = "", *, key: bool = False) -> None: ...

    def _check_data(self) -> None:
        sample = guards.Sample()  # each file source read once: its header and its rows
        try:
            self._check_sampled(sample)
        except BaseException:
            sample.close()
            raise
        if self.problems:
            sample.close()
        else:
            guards.keep(sample)  # the run's sources stage takes its tables (guards.take)

    def _check_sampled(self, sample: guards.Sample) -> None:
        sources: dict[str, m.Source] = self.parts.get("sources") or {}
        base_dir = self.base_dir
        columns: dict[str, list[str] | None] = {}
        metrics: dict[str, m.Metric] = self.parts.get("metrics") or {}
        with sqlexpr.lending(sample.con):  # parsing and headers on the sample's connection, not locked yet
            for name, src in sources.items():
                columns[name] = self._source_columns(name, src, sample)
            self._derived_columns(sources, columns)
            for name, metric in metrics.items():
                found = columns.get(metric.source)
                if found is not None:
                    self._check_metric_columns(name, metric, found)

        kpi_sources = self.kpi_sources(metrics)
        dimensions: list[tuple[Path_, str, set[str]]] = [
            (("breakdowns", i, "by"), bd.by, kpi_sources.get(bd.kpi, set()))
            for i, bd in enumerate(self.parts.get("breakdowns") or [])
        ]
        pf: m.Portfolio | None = self.parts.get("portfolio")
        if pf is not None:
            used = {metrics[n].source for n in (pf.cost, pf.value) if n in metrics}
            dimensions.append((("portfolio", "by"), pf.by, used))
        guards.check_data(self, sample, sources, columns, metrics, base_dir, dimensions)
        for path, column, used in dimensions:
            self._check_dimension(path, column, used, columns)
        delivery: m.Delivery | None = self.parts.get("delivery")
        if delivery is not None and delivery.email is not None:
            self._check_filters(delivery.email, sources, columns)

    def _source_columns(self, name: str, src: m.Source, sample: guards.Sample) -> list[str] | None:
        """The columns of a file source, or None (with a problem added) when they cannot be read.
        A CSV, Parquet or JSON file is read once, into ``sample``: its columns come from the rows
        read; only when those cannot be read is the header read alone, to tell an unreadable
        header (reported here) from rows that do not fit it (reported by ``check_data``)."""
        if src.type not in FILE_KINDS or src.path is None or ("sources", name, "path") in self.outside:
            return None
        path = src.path if src.path.is_absolute() else self.base_dir / src.path
        special = check_named_file(path) if path.exists() else None
        if special:
            self.add(("sources", name, "path"), special, "name a data file")
            return None
        if not path.is_file():
            self.add(
                ("sources", name, "path"),
                f"file not found: {path}",
                "paths are relative to the configuration file's folder",
            )
            return None
        try:
            found = sample.read(name, src, path) if src.type in SAMPLED else None
            if found is None:
                found = read_columns(src, path)
        except SourceError as exc:
            self.add(
                ("sources", name, "path"),
                str(exc),
                "check the csv options (delimiter, encoding) or the file itself",
            )
            return None
        cols = found or []
        if src.date_column is not None and src.date_column not in cols:  # None: reported already
            self.add(
                ("sources", name, "date_column"),
                f"column '{src.date_column}' not found in {path.name}",
                did_you_mean(src.date_column, cols, known_label="columns are"),
            )
        return found

    def _derived_columns(self, sources: Mapping[str, m.Source], columns: dict[str, list[str] | None]) -> None:
        """Each derived source's columns, found by DuckDB describing its query over empty tables
        of its inputs' columns and types (nothing runs on the data): None while an input's
        columns are unknown (a database, an Excel sheet, a problem reported already)."""
        graph = {n: list(s.from_ or []) for n, s in sources.items() if s.type == "derived"}
        try:
            ordered = derived.order(graph)
        except graphlib.CycleError:
            return  # reported by _check_sources
        types: dict[str, list[tuple[str, str]]] = {}
        for name in ordered:
            src = sources.get(name)
            if src is None or src.type != "derived" or not src.from_ or src.sql is None:
                continue
            if any(p.key.startswith(f"sources.{name}.") for p in self.problems):
                columns[name] = None
                self._columns_unknown(name)
                continue
            inputs: dict[str, list[tuple[str, str]]] = {}
            for dep in src.from_:
                found = types.get(dep) if dep in types else self._typed_columns(dep, sources.get(dep))
                if found is None or columns.get(dep) is None:
                    break
                inputs[dep] = found
            else:
                try:
                    described = derived.describe(src.sql, inputs)
                except derived.DerivedSqlError as exc:
                    known = "; ".join(
                        f"{dep}: {', '.join(c for c, _ in cols)}" for dep, cols in inputs.items()
                    )
                    self.add(("sources", name, "sql"), str(exc), exc.hint or f"the columns are {known}")
                    columns[name] = None
                    continue
                types[name] = described
                cols = [c for c, _ in described]
                columns[name] = cols
                if src.date_column not in cols:
                    self.add(
                        ("sources", name, "date_column"),
                        f"column '{src.date_column}' is not among the query's columns",
                        did_you_mean(src.date_column, cols, known_label="columns are"),
                    )
                continue
            columns[name] = None

    def _columns_unknown(self, name: str) -> None:
        """Say, on the source's reported problem (its sql's, else its first), that what needs its
        columns (its date column, the metrics over it...) waits: one round names all it can."""
        own = [i for i, p in enumerate(self.problems) if p.key.startswith(f"sources.{name}.")]
        i = next((i for i in own if self.problems[i].key == f"sources.{name}.sql"), own[0])
        what = "its sql" if self.problems[i].key == f"sources.{name}.sql" else "the source"
        note = f"the columns of sources.{name} are checked once {what} is valid"
        hint = self.problems[i].hint
        self.problems[i] = dataclasses.replace(self.problems[i], hint=f"{hint}; {note}" if hint else note)

    def _typed_columns(self, name: str, src: m.Source | None) -> list[tuple[str, str]] | None:
        """(column, DuckDB type) of a csv, parquet or json source as the run reads it, or None."""
        if src is None or src.type not in ("csv", "parquet", "json") or src.path is None:
            return None
        path = src.path if src.path.is_absolute() else self.base_dir / src.path
        try:
            return describe_file(scratch(), src, path)
        except Exception:  # reported by the header check already
            return None

    def _check_metric_columns(self, name: str, metric: m.Metric, cols: list[str]) -> None:
        if metric.column is not None and metric.column not in cols:
            self.add(
                ("metrics", name, "column"),
                f"column '{metric.column}' not found in source '{metric.source}'",
                did_you_mean(metric.column, cols, known_label="columns are"),
            )
        for key in ("expr", "where"):
            text = getattr(metric, key)
            if text is None or ("metrics", name, key) in self.unparsed or bound_problem(text) is not None:
                continue  # over a limit: said already
            try:
                check_expression(text, cols)
            except ExpressionError as exc:
                hint = (
                    "write a condition on this source's columns, e.g. stage = 'won'"
                    if key == "where"
                    else "write an expression over this source's columns, e.g. quantity * unit_price"
                )
                unknown = re.match(r"unknown column '(.*)'", str(exc))
                if unknown:
                    hint = did_you_mean(unknown.group(1), cols, known_label="columns are")
                hint = exc.hint or hint
                self.add(("metrics", name, key), str(exc), hint)

    def _check_filters(
        self, email: m.Email, sources: Mapping[str, m.Source], columns: Mapping[str, list[str] | None]
    ) -> None:
        """Each recipient's filter column must be in every source that is not shared. A column
        in no source at all is most likely a typo: the hint then names the closest column
        rather than sending the manager off to mark sources shared."""
        known = sorted({c for cols in columns.values() if cols is not None for c in cols})
        for i, rcpt in enumerate(email.recipients):
            for col in rcpt.filter:
                lacking = [
                    s for s, c in columns.items() if c is not None and col not in c and not sources[s].shared
                ]
                if lacking:
                    hint = "mark sources that every recipient shares with shared: true"
                    if col not in known:
                        close = did_you_mean(col, known)
                        if close.startswith("did you mean"):
                            hint = close
                    self.add(
                        ("delivery", "email", "recipients", i, "filter", col),
                        f"column '{col}' is not in source(s) {', '.join(sorted(lacking))}",
                        hint,
                        key=True,
                    )

    def _check_dimension(
        self, path: Path_, column: str, used: set[str], columns: Mapping[str, list[str] | None]
    ) -> None:
        for source in sorted(used):
            cols = columns.get(source)
            if cols is not None and column not in cols:
                self.add(
                    path,
                    f"column '{column}' not found in source '{source}'",
                    did_you_mean(column, cols, known_label="columns are"),
                )

    def kpi_sources(self, metrics: Mapping[str, m.Metric]) -> dict[str, set[str]]:
        """The sources each KPI reads, through metrics and other KPIs."""
        out: dict[str, set[str]] = {}
        for name in self.kpi_order:
            formula = self.formulas.get(name)
            found: set[str] = set()
            for ref in formula.names if formula else ():
                if ref in metrics:
                    found.add(metrics[ref].source)
                elif ref in out:
                    found |= out[ref]
            out[name] = found
        return out
