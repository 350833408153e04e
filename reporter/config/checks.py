"""From YAML text to a checked ``Config``, collecting every problem before reporting.

Order: YAML (syntax, duplicates, tags, ${ENV}) → schema, section by section and item by item,
so one bad metric does not hide the next → rules across keys (names, formulas, cycles, targets,
cron, locale...) → rules that need the data's header (files, columns, SQL expressions).
Names are resolved against what the file *declares*, so a metric with a bad ``agg`` does not
also make every formula that uses it "unknown".
"""

from __future__ import annotations

import datetime as dt
import difflib
import graphlib
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import TypeAdapter, ValidationError

from reporter.assets import builtin_templates, catalogue_languages, resolve_template
from reporter.config import connections as conns
from reporter.config import derived, guards, sqlexpr
from reporter.config import model as m
from reporter.config import paths as confine
from reporter.config.cron import plainly_fires
from reporter.config.data_rules import FILE_KINDS, DataRules
from reporter.config.explain import (
    SchemaErrors,
    _show,
    did_you_mean,
)
from reporter.config.loader import Document, Path_, format_path, load_yaml
from reporter.config.scripts import mixed_scripts
from reporter.config.sqlbounds import (
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_FILE_SQL,
    MAX_QUERY_LENGTH,
    too_deep,
    too_long,
)
from reporter.errors import ConfigError, Problem
from reporter.formulas import Formula, FormulaSyntaxError, parse
from reporter.periods import Period

_QUERY_LENGTH_HINT = (
    "keep long lists of values in a table of the database and join it, or make the query a view in "
    "the database and name it with table:"
)
_QUERY_DEPTH_HINT = (
    f"write the inner parts as CTEs (WITH part AS (select ...) select ... from part), or make the "
    f"query a view in the database and name it with table:, so that no part nests more than "
    f"{MAX_DEPTH} levels"
)
_DERIVED_HINT = "a derived source is one SELECT over the sources in 'from' (see Joining sources in the docs)"

ExtraCheck = Callable[[m.Config], list[tuple[Path_, str, str]]]

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# An address: a dot-atom before the @ (RFC 5322: letters, digits and !#$%&*+/=?^_`{|}~- in runs
# joined by single dots; non-ASCII letters too), a host name after it (labels of letters, digits
# and inner hyphens, at least two). No "..", no leading or trailing dot, nothing a path could use
# to climb out of a folder (a "/" alone is valid, and names no folder: see files.recipient_name).
# The atom's characters are written as what they are not (ASCII controls, space and the
# specials "'(),.:;<>@[\] and DEL): the same set as [A-Za-z0-9!#$%&*+/=?^_`{|}~\-\u0080-\U0010ffff],
# which Python's re takes 6 ms to compile at every start.
_ATOM = r"""[^\x00-\x20"'(),.:;<>@\[\\\]\x7f]+"""
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_ADDRESS = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$")


# The longest duration each key accepts: a longer one is a mistake (or a way to make the
# scheduler hold a report forever), and past ~10**9 days no timedelta can hold it at all.
DURATION_MAX = {
    "retry_every": dt.timedelta(days=366),
    "give_up_after": dt.timedelta(days=366),
    "schedule_timeout": dt.timedelta(days=1),
}


def parse_duration(text: str) -> dt.timedelta:
    """'90m', '1h', '3d' → timedelta; ValueError otherwise (also for more than a year)."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0 or len(match.group(1)) > 9:
        raise ValueError(text)
    seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds > 366 * 86400:
        raise ValueError(text)
    return dt.timedelta(seconds=seconds)


def _duration_words(value: dt.timedelta) -> str:
    return f"{value.days}d" if value.days else f"{int(value.total_seconds()) // 3600}h"


# --------------------------------------------------------------------------------------
# entry points


def load_configs(
    path: Path, env: Mapping[str, str] | None = None, *, extra: ExtraCheck | None = None
) -> list[m.Config]:
    """A file, or every ``*.yaml``/``*.yml`` in a folder; problems of all files together.
    ``extra``: see ``load_config``."""
    if path.is_dir():
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        if not files:
            raise ConfigError([Problem(str(path), None, None, "", "no *.yaml file in this folder")])
    else:
        files = [path]
    configs: list[m.Config] = []
    problems: list[Problem] = []
    for file in files:
        try:
            configs.append(load_config(file, env, extra=extra))
        except ConfigError as exc:
            problems.extend(exc.problems)
    problems.extend(_duplicate_ids(configs))
    if problems:
        raise ConfigError(problems)
    return configs


def _duplicate_ids(configs: list[m.Config]) -> list[Problem]:
    """Two files of one folder with the same report.id would share output folders and ledger
    entries (the second PDF replacing the first): an error naming both files."""
    first: dict[str, m.Config] = {}
    problems = []
    for config in configs:
        seen = first.setdefault(config.report.id, config)
        if seen is config:
            continue
        line, col = config.position(("report", "id"))
        problems.append(
            Problem(
                str(config.file),
                line,
                col,
                "report.id",
                f"'{config.report.id}' is also the id of {seen.file}",
                "give each report in a folder its own id (it names the output folders and ledger entries)",
            )
        )
    return problems


def load_config(
    path: Path,
    env: Mapping[str, str] | None = None,
    *,
    check_data: bool = True,
    base_dir: Path | None = None,
    extra: ExtraCheck | None = None,
    shown: str | None = None,
    before: Callable[[Document], list[Problem]] | None = None,
) -> m.Config:
    """Read, validate and cross-check one report file; raise ConfigError with every problem.
    ``base_dir``: the folder relative paths start from (default: the file's folder). ``extra``:
    a check of a layer above this one (the renderer's of the YAML's templates) run on a valid
    configuration; it gives (key path, message, hint), placed here at the key's line.
    ``shown``: how messages name the file (default: its path). ``before``: a check (which may
    also rewrite values) of the parsed YAML before anything it names is read; its problems stop
    the loading there (``reproduce`` confines an embedded configuration's paths this way)."""
    shown = str(path) if shown is None else shown
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(shown, None, None, "", "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError([Problem(shown, None, None, "", "is a folder, not a file")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                Problem(
                    shown,
                    None,
                    None,
                    "",
                    f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                    "save the file as UTF-8",
                )
            ]
        ) from None
    doc, problems = load_yaml(text, shown, env)
    if doc.data is None:
        raise ConfigError(problems)
    if before is not None:
        refused = before(doc)
        if refused:
            raise ConfigError(problems + refused)
    config = _Checker(doc, path, problems, base_dir, env).run(check_data=check_data)
    if config is not None and not problems and extra is not None:
        problems.extend(doc.problem(key, message, hint) for key, message, hint in extra(config))
    if problems or config is None:
        raise ConfigError(problems)
    return config


# --------------------------------------------------------------------------------------


class _Checker(SchemaErrors, DataRules):
    def __init__(
        self,
        doc: Document,
        path: Path,
        problems: list[Problem],
        base_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
    ):
        self.doc = doc
        self.env = env
        self.connections: dict[str, str] = {}  # name → URL, of the connections the YAML names
        self.migrated: set[Path_] = set()  # keys refused with a migration hint (no second error)
        self.path = path
        self.base_dir = (base_dir or path.resolve().parent).resolve()
        self.problems = problems
        self.warnings: list[Problem] = []  # allowed, but worth saying (validate prints them)
        self.parts: dict[str, Any] = {}
        self.partial: set[Path_] = set()  # items that failed the schema: only partly checked
        self.formulas: dict[str, Formula] = {}
        self.kpi_order: list[str] = []  # empty while the KPIs' formulas have a problem
        self.absent: set[str] = set()  # sections whose names cannot be checked (missing)
        self.outside: set[Path_] = set()  # keys naming a path outside the allowed folders: not read
        self.unparsed: set[Path_] = set()  # SQL beyond the file's budget: no parser reads it

    def add(self, path: Path_, message: str, hint: str = "", *, key: bool = False) -> None:
        self.problems.append(self.doc.problem(path, message, hint, key=key))

    # -- schema -------------------------------------------------------------------------
    def run(self, *, check_data: bool) -> m.Config | None:
        data = self.doc.data
        if not isinstance(data, dict):
            self.add(
                (),
                "the file must be a mapping of sections (report:, sources:, ...)",
                "start from config/example.yaml",
            )
            return None
        from reporter.config.migration import removed_keys

        for where, message, hint in removed_keys(data):
            self.add(where, message, hint, key=True)
            self.migrated.add(where)
        misspelt: set[str] = set()
        for key in data:
            if key not in m.SECTIONS:
                self.add((key,), "unknown section", did_you_mean(key, m.SECTIONS), key=True)
                misspelt.update(difflib.get_close_matches(str(key), m.SECTIONS, n=1))
        for key in m.REQUIRED_SECTIONS:
            if key not in data and key not in misspelt:  # a misspelt one is named above
                self.add((), f"missing section '{key}'", f"add a '{key}:' section")
        # Names in a section that is not there cannot be checked: without 'metrics', every
        # formula would name "unknown" metrics (and a KPI named like a metric, a cycle).
        self.absent = {key for key in ("sources", "metrics", "kpis") if not isinstance(data.get(key), dict)}
        for key, spec in m.SECTIONS.items():
            if key in data:
                self.parts[key] = self._validate_section(key, spec, data[key])
        self.declared_metrics = set(_keys(data.get("metrics")))
        self.declared_kpis = set(_keys(data.get("kpis")))
        self.declared_sources = set(_keys(data.get("sources")))

        self._check_report()
        self._check_sql_budget()
        self._check_sources()
        self._check_metrics()
        self._check_kpis()
        self._check_objectives()
        self._check_analyses()
        self._check_delivery()
        self._check_alerts()
        self._check_paths()
        self._check_connections()
        guards.check_static(self)
        if not self.problems:
            from reporter.config.checkins import check_folder

            self.problems.extend(
                check_folder(
                    self.base_dir,
                    self.parts.get("objectives") or [],
                    self.parts["report"],
                    self.path.resolve(),
                )
            )
        if check_data:
            self._check_data()
        if self.problems:
            return None
        config = m.Config(
            report=self.parts["report"],
            sources=self.parts["sources"],
            metrics=self.parts["metrics"],
            kpis=self.parts["kpis"],
            objectives=self.parts.get("objectives") or [],
            breakdowns=self.parts.get("breakdowns") or [],
            funnel=self.parts.get("funnel") or [],
            portfolio=self.parts.get("portfolio"),
            quality=self.parts.get("quality") or m.Quality(),
            delivery=self.parts.get("delivery") or m.Delivery(),
            insights=self.parts.get("insights") or m.Insights(),
            alerts=self.parts.get("alerts"),
            file=self.path,
            base_dir=self.base_dir,
            kpi_order=self.kpi_order,
            connections=self.connections,
        )
        config._warnings.extend(self.warnings)
        config._document = self.doc
        return config

    # -- rules ------------------------------------------------------------------------------
    def _check_report(self) -> None:
        data = self.doc.data.get("report")
        report: m.Report | None = self.parts.get("report")
        if report is None or not isinstance(data, dict):
            return
        from babel import Locale, UnknownLocaleError
        from babel.numbers import list_currencies

        if "locale" in data:
            try:
                Locale.parse(report.locale)
            except (UnknownLocaleError, ValueError, TypeError):
                self.add(
                    ("report", "locale"),
                    f"unknown locale '{report.locale}'",
                    "use a language_COUNTRY code such as fr_FR, en_US, de_DE",
                )
            else:
                language = Locale.parse(report.locale).language
                if language not in catalogue_languages():
                    self.add(
                        ("report", "locale"),
                        f"no translation for '{language}' ({report.locale})",
                        f"catalogues: {', '.join(catalogue_languages())}",
                    )
        if report.currency not in list_currencies():
            self.add(
                ("report", "currency"),
                f"unknown currency '{report.currency}'",
                "use an ISO 4217 code such as EUR, USD, GBP, CHF",
            )
        if "template" in data:
            found = resolve_template(report.template, self.base_dir)
            if isinstance(found, str):
                self.add(
                    ("report", "template"),
                    found,
                    f"built-in templates: {', '.join(builtin_templates())}, or a folder path",
                )
        try:
            ZoneInfo(report.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.add(
                ("report", "timezone"),
                f"unknown timezone '{report.timezone}'",
                did_you_mean(report.timezone, available_timezones())
                if "/" in report.timezone
                else "use an IANA name such as Europe/Paris",
            )
        if report.url is not None:
            self._check_report_url(report.url)

    def _check_report_url(self, url: str) -> None:
        """``report.url`` is printed as a link in the digest: a web address, nothing else."""
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
            has_password = parts.password is not None
        except ValueError:  # e.g. a port that is not a number
            parts, has_password = None, False
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            self.add(
                ("report", "url"),
                f"{_show(url)} is not a web address",
                "write it with http:// or https://, e.g. https://intranet.acme.fr/reports/marketing",
            )
        elif any(c.isspace() or ord(c) < 32 for c in url):
            self.add(
                ("report", "url"), "the address contains a space or a line break", "write %20 for a space"
            )
        elif has_password:
            self.add(
                ("report", "url"),
                "the address contains a password",
                "every recipient would read it: link to a page that asks them to sign in instead",
            )

    def _check_sql_rows(self, base: Path_, src: m.Source) -> None:
        """A sql source reads a ``query`` or a ``table``: one of them."""
        if src.query is None and src.table is None:
            self.add(base, "a sql source needs 'query' or 'table'", "query: select ... or table: orders")
        if src.query is not None and src.table is not None:
            self.add((*base, "table"), "'table' and 'query' cannot be used together", "keep one of them")
        if src.query is not None and (*base, "query") not in self.unparsed:
            # measured before sqlglot reads it (a run composing a derived source parses it)
            long = too_long(src.query, "the query", MAX_QUERY_LENGTH)
            deep = too_deep(src.query, "the query") if long is None else None
            if long is not None or deep is not None:
                hint = _QUERY_LENGTH_HINT if long is not None else _QUERY_DEPTH_HINT
                self.add((*base, "query"), long or deep or "", hint)
                return
            found = conns.lookup(src.connection, self.env) if src.connection else None
            refused = conns.query_problem(src.query, found.backend if found else "")
            if refused:
                self.add(
                    (*base, "query"),
                    refused,
                    "write one SELECT (or WITH … SELECT), without ';' between statements",
                )

    def _check_derived(self, base: Path_, src: m.Source) -> bool:
        """A derived source: its ``from`` names sources of this file, its ``sql`` is one SELECT
        over them (reporter.config.derived says what is refused). True for a derived source;
        for any other, False once its ``from`` or ``sql`` (not its kind's) are reported."""
        if src.type != "derived":
            for key, value in (("from", src.from_), ("sql", src.sql)):
                if value is not None:
                    self.add((*base, key), f"'{key}' is only for type derived")
            return False
        for key in ("path", "connection", "query", "table", "csv", "sheet"):
            if getattr(src, key) is not None:
                self.add((*base, key), f"'{key}' is not for type derived", "use from and sql")
        if not src.from_:
            self.add(base, "a derived source needs 'from'", "from: [leads, deals], the sources its sql reads")
        for name in src.from_ or []:
            if name not in self.declared_sources and "sources" not in self.absent:
                self.add(
                    (*base, "from"),
                    f"unknown source '{name}'",
                    did_you_mean(name, self.declared_sources - {base[-1]}, known_label="sources are"),
                )
        if src.sql is None:
            self.add(
                base, "a derived source needs 'sql'", "sql: select ... from one of the sources in 'from'"
            )
        elif src.from_:
            self._check_derived_sql(base, src.sql, src.from_)
        return True

    def _check_sql_budget(self) -> None:
        """All the SQL of the file that its own limits let a parser read (derived ``sql``,
        ``query``, ``expr``, ``where``, in the file's order) within MAX_FILE_SQL characters: each
        text is bounded, and so is the sum of their parsing. The text that crosses it is refused;
        it and the SQL after it are not parsed."""
        texts: list[tuple[Path_, str]] = []
        for name, src in (self.parts.get("sources") or {}).items():
            texts += [
                (("sources", name, k), t) for k in ("sql", "query") if (t := getattr(src, k)) is not None
            ]
        for name, metric in (self.parts.get("metrics") or {}).items():
            texts += [
                (("metrics", name, k), t) for k in ("expr", "where") if (t := getattr(metric, k)) is not None
            ]
        total = 0
        for path, text in texts:
            longest = MAX_QUERY_LENGTH if path[0] == "sources" else MAX_EXPRESSION_LENGTH
            if len(text) > longest or too_deep(text, "") is not None:
                continue  # refused by its own limits, unparsed
            total += len(text)
            if total > MAX_FILE_SQL and not self.unparsed:
                self.add(
                    path,
                    f"the SQL of this file reaches {total:,} characters here, more than the limit of "
                    f"{MAX_FILE_SQL:,} for one file; it and the SQL after it are not checked",
                    "split the report into several files, or keep long lists of values in the data",
                )
            if total > MAX_FILE_SQL:
                self.unparsed.add(path)

    def _check_derived_sql(self, base: Path_, sql: str, inputs: list[str]) -> None:
        """Every refusal of a derived source's ``sql``, each a problem of its own."""
        if (*base, "sql") in self.unparsed:
            return
        try:
            derived.check_sql(sql, inputs)
        except derived.DerivedSqlError as exc:
            for message in exc.messages:
                self.add((*base, "sql"), message, exc.hint or _DERIVED_HINT)

    def _check_derived_cycles(self, sources: Mapping[str, m.Source]) -> None:
        graph = {n: list(s.from_ or []) for n, s in sources.items() if s.type == "derived"}
        try:
            derived.order(graph)
        except graphlib.CycleError as exc:
            ring = derived.cycle_text(exc.args[1])
            self.add(
                ("sources", min(exc.args[1]), "from"),
                f"derived sources read each other in a cycle: {ring}",
                "a derived source may read another derived source, never itself through others",
            )

    def _check_sources(self) -> None:
        sources: dict[str, m.Source] = self.parts.get("sources") or {}
        self._check_derived_cycles(sources)
        for name, src in sources.items():
            base: Path_ = ("sources", name)
            if self._check_derived(base, src):
                continue
            if src.type in FILE_KINDS:
                if src.path is None:
                    self.add(base, f"a {src.type} source needs 'path'", "path: data/file." + src.type)
                for key in ("connection", "query", "table"):
                    if getattr(src, key) is not None:
                        self.add((*base, key), f"'{key}' is only for type sql")
            else:
                migrated = (*base, "url") in self.migrated  # its URL was refused, with what to write
                if src.connection is None and base not in self.partial and not migrated:
                    self.add(
                        base,
                        "a sql source needs 'connection'",
                        f"connection: {name} (a database the operator defines) and query: select ...",
                    )
                self._check_sql_rows(base, src)
                if src.path is not None:
                    self.add((*base, "path"), "'path' is not for type sql", "use connection and query")
            if src.csv is not None and src.type != "csv":
                self.add((*base, "csv"), "'csv' options are only for type csv")
            if src.sheet is not None and src.type != "excel":
                self.add((*base, "sheet"), "'sheet' is only for type excel")

    def _check_metrics(self) -> None:
        sources: dict[str, m.Source] = self.parts.get("sources") or {}
        for name, metric in (self.parts.get("metrics") or {}).items():
            base: Path_ = ("metrics", name)
            if (
                metric.source is not None
                and metric.source not in self.declared_sources
                and "sources" not in self.absent
            ):
                self.add(
                    (*base, "source"),
                    f"unknown source '{metric.source}'",
                    did_you_mean(metric.source, self.declared_sources, known_label="sources are"),
                )
            if metric.column is not None and metric.expr is not None:
                self.add((*base, "expr"), "give 'column' or 'expr', not both")
            elif (
                metric.agg not in ("count", None)
                and metric.column is None
                and metric.expr is None
                and base not in self.partial
            ):
                self.add(base, f"agg '{metric.agg}' needs 'column' or 'expr'", "e.g. column: amount")
            source = sources.get(metric.source) if metric.source else None
            pushed = source is not None and source.type in ("sql", "derived")  # sqlglot may translate it
            for key in ("expr", "where"):  # measured before DuckDB reads them, columns known or not
                text = getattr(metric, key)
                if text is None or (*base, key) in self.unparsed:
                    continue
                bound = sqlexpr.bound_problem(text, pushed=pushed)
                if bound is not None:
                    self.add((*base, key), *bound)

    def _check_kpis(self) -> None:
        kpis: dict[str, m.Kpi] = self.parts.get("kpis") or {}
        # Without 'metrics' every name would be unknown (said once, as the missing section).
        checked = "metrics" not in self.absent
        names = self.declared_metrics | self.declared_kpis
        graph: dict[str, set[str]] = {}
        for name, kpi in kpis.items():
            if kpi.change == "points" and kpi.format in ("currency", "integer", "days"):
                self.add(
                    ("kpis", name, "change"),
                    f"a {kpi.format} KPI's changes cannot be in points",
                    "points are for a rate or a score (format percent, number or ratio); remove change",
                )
            path: Path_ = ("kpis", name, "formula")
            if kpi.formula is None:
                continue
            try:
                formula = parse(kpi.formula)
            except FormulaSyntaxError as exc:
                self.add(
                    path,
                    str(exc),
                    "a formula uses + - * / ( ), numbers and metric or KPI names, e.g. leads / sessions",
                )
                continue
            self.formulas[name] = formula
            for ref in formula.names:
                if checked and ref not in names:
                    self.add(
                        path,
                        f"unknown name '{ref}'",
                        did_you_mean(ref, names, known_label="metrics and KPIs are"),
                    )
            # A name that is both a metric and a KPI means the metric.
            graph[name] = (
                set()
                if not checked
                else {r for r in formula.names if r in self.declared_kpis and r not in self.declared_metrics}
            )
        from graphlib import CycleError, TopologicalSorter

        try:
            self.kpi_order = list(TopologicalSorter(graph).static_order())
        except CycleError as exc:
            cycle = list(exc.args[1])
            self.add(
                ("kpis", cycle[0], "formula"),
                "formulas form a cycle: " + " → ".join(cycle),
                "a KPI cannot depend on itself; compute one of them from metrics",
            )

    def _check_objectives(self) -> None:
        kpis: dict[str, m.Kpi] = self.parts.get("kpis") or {}
        report: m.Report | None = self.parts.get("report")
        grain = report.grain if report else "month"
        seen: dict[str, int] = {}
        raw = self.doc.data.get("objectives") or []
        for i, obj in enumerate(self.parts.get("objectives") or []):
            index = _index_of(raw, obj.id, i)
            base: Path_ = ("objectives", index)
            if obj.id in seen:
                self.add(
                    (*base, "id"),
                    f"duplicate objective id '{obj.id}' (also objectives[{seen[obj.id]}])",
                    "give each objective its own id",
                )
            seen.setdefault(obj.id, index)
            if obj.kpi is None:
                pass
            elif obj.kpi not in self.declared_kpis and "kpis" not in self.absent:
                self.add(
                    (*base, "kpi"),
                    f"unknown KPI '{obj.kpi}'",
                    did_you_mean(obj.kpi, self.declared_kpis, known_label="KPIs are"),
                )
            elif obj.kpi in kpis and kpis[obj.kpi].direction == "neutral":
                self.add(
                    (*base, "kpi"),
                    f"KPI '{obj.kpi}' has direction neutral, so it has no target",
                    f"set kpis.{obj.kpi}.direction to up or down",
                )
            forms = [
                k
                for k in ("value", "change_vs_prior_year", "change_vs_previous", "by_period")
                if getattr(obj.target, k, None) is not None
            ]
            if obj.target is not None and len(forms) != 1:
                self.add(
                    (*base, "target"),
                    "a target needs exactly one of value, change_vs_prior_year, "
                    f"change_vs_previous, by_period (found {len(forms) or 'none'})",
                    "e.g. target: {value: 120000}",
                )
            for label in getattr(obj.target, "by_period", None) or {}:
                try:
                    Period.parse(str(label), grain)
                except ValueError as exc:
                    self.add(
                        (*base, "target", "by_period", label),
                        str(exc),
                        f"the report's grain is {grain}",
                        key=True,
                    )
            self._check_action_ids(base, obj)
            if obj.thresholds is not None and obj.thresholds.at_risk > obj.thresholds.on_track:
                self.add(
                    (*base, "thresholds"),
                    f"at_risk ({obj.thresholds.at_risk:g}) is above on_track ({obj.thresholds.on_track:g})",
                    "at_risk must be ≤ on_track, e.g. {on_track: 1.0, at_risk: 0.9}",
                )

    def _check_action_ids(self, base: Path_, obj: m.Objective) -> None:
        action_ids: dict[str, int] = {}
        for j, action in enumerate(obj.actions or []):
            if action is None or getattr(action, "id", None) is None:
                continue
            if action.id in action_ids:
                self.add(
                    (*base, "actions", j, "id"),
                    f"duplicate action id '{action.id}' (also actions[{action_ids[action.id]}])",
                    "give each action of an objective its own id",
                )
            action_ids.setdefault(str(action.id), j)

    def _check_analyses(self) -> None:
        for i, bd in enumerate(self.parts.get("breakdowns") or []):
            if bd.kpi is not None and bd.kpi not in self.declared_kpis and "kpis" not in self.absent:
                self.add(
                    ("breakdowns", i, "kpi"),
                    f"unknown KPI '{bd.kpi}'",
                    did_you_mean(bd.kpi, self.declared_kpis, known_label="KPIs are"),
                )
        for i, stage in enumerate(self.parts.get("funnel") or []):
            if (
                stage.metric is not None
                and stage.metric not in self.declared_metrics
                and "metrics" not in self.absent
            ):
                self.add(
                    ("funnel", i, "metric"),
                    f"unknown metric '{stage.metric}'",
                    did_you_mean(stage.metric, self.declared_metrics, known_label="metrics are"),
                )
        pf: m.Portfolio | None = self.parts.get("portfolio")
        if pf is not None:
            for key in ("cost", "value"):
                name = getattr(pf, key)
                if name is not None and name not in self.declared_metrics and "metrics" not in self.absent:
                    self.add(
                        ("portfolio", key),
                        f"unknown metric '{name}'",
                        did_you_mean(name, self.declared_metrics, known_label="metrics are"),
                    )
            if pf.rules is not None and pf.rules.improve > pf.rules.keep:
                self.add(
                    ("portfolio", "rules"),
                    f"improve ({pf.rules.improve:g}) is above keep ({pf.rules.keep:g})",
                    "improve must be ≤ keep, e.g. {keep: 1.5, improve: 0.8}",
                )

    # -- paths -------------------------------------------------------------------------------
    def _check_paths(self) -> None:
        """Every path the YAML names, ``..`` and symbolic links resolved, lies in the
        configuration's folder, the output folder or a folder the operator allows (see
        ``config/paths.py``); a path outside is an error and is never read."""
        delivery: m.Delivery | None = self.parts.get("delivery")
        allowed = confine.allowed_dirs()
        output = confine.output_folder(self._output_dir(allowed))
        folders = [self.base_dir, *([output] if output is not None else []), *allowed]
        where = "the configuration's folder" + (" and the output folder" if output is not None else "")
        hint = f"put it in {self.base_dir}" + (" or the output folder" if output is not None else "")
        hint += ", " + confine.allow_hint()
        for key, value in self._named_paths():
            if not confine.inside(self._resolve(value), folders):
                self._outside(key, value, where, hint)
        archive = delivery.archive.dir if delivery is not None else None
        if archive is None or output is None:
            return
        if not confine.inside(self._resolve(archive), [output, *allowed]):
            hint = "leave it out (the archive is then the output folder's archive/), " + confine.allow_hint()
            self._outside(("delivery", "archive", "dir"), archive, f"the output folder ({output})", hint)

    def _output_dir(self, allowed: list[Path]) -> Path | None:
        """``report.output_dir`` resolved, when the YAML sets it and no ``--output`` replaces it;
        an error when it lies outside the configuration's folder and the allowed ones."""
        report: m.Report | None = self.parts.get("report")
        if report is None or report.output_dir is None or confine.output_given():
            return None
        folder = self._resolve(report.output_dir)
        if confine.inside(folder, [self.base_dir, *allowed]):
            return folder
        self._outside(
            ("report", "output_dir"),
            report.output_dir,
            "the configuration's folder",
            f"write a folder inside {self.base_dir}, give --output on the command line, "
            + confine.allow_hint(),
        )
        return None

    def _named_paths(self) -> Iterator[tuple[Path_, Path]]:
        """The paths the YAML names that are read: template folder, sources, CA file."""
        report: m.Report | None = self.parts.get("report")
        if report is not None:  # the logo: see guards (the configuration's or the template's folder)
            found = resolve_template(report.template, self.base_dir)
            if isinstance(found, list) and len(found) > 1:  # a folder of the user's, not a built-in
                yield ("report", "template"), Path(report.template)
        for name, source in (self.parts.get("sources") or {}).items():
            if source.path is not None:
                yield ("sources", name, "path"), source.path
        delivery: m.Delivery | None = self.parts.get("delivery")
        smtp = delivery.email.smtp if delivery is not None and delivery.email is not None else None
        if smtp is not None and smtp.ca_file is not None:
            yield ("delivery", "email", "smtp", "ca_file"), smtp.ca_file

    def _resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.base_dir / path

    def _outside(self, key: Path_, value: Path, where: str, hint: str) -> None:
        self.outside.add(key)
        self.add(key, f"{value} is outside {where}", hint)

    def _check_delivery(self) -> None:
        delivery: m.Delivery | None = self.parts.get("delivery")
        report: m.Report | None = self.parts.get("report")
        if delivery is None:
            return
        if delivery.schedule is not None:
            self._check_schedule(delivery.schedule, report.timezone if report else "UTC")
        for key, most in DURATION_MAX.items():
            text = getattr(delivery, key)
            match = _DURATION.match(text)
            if match and int(match.group(1)) > 0:
                too_long = len(match.group(1)) > 9
                if not too_long:
                    too_long = (
                        dt.timedelta(seconds=int(match.group(1)) * _DURATION_UNITS[match.group(2)]) > most
                    )
                if too_long:
                    self.add(
                        ("delivery", key),
                        f"'{text}' is too long: at most {_duration_words(most)}",
                        f"a number and a unit s, m, h, d or w up to {_duration_words(most)}, e.g. 1h or 3d",
                    )
                    continue
            try:
                parse_duration(text)
            except ValueError:
                self.add(
                    ("delivery", key),
                    f"invalid duration '{text}'",
                    "a number and a unit s, m, h, d or w, e.g. 1h or 3d",
                )
        for i, address in enumerate(delivery.alerts_to):
            self._check_address(("delivery", "alerts_to", i), address)
        if delivery.email is not None:
            self._check_email(delivery.email)
        self._check_burst(delivery.burst)
        self._check_retention(delivery.archive)

    def _check_retention(self, archive: m.Archive) -> None:
        """``retention.keep`` is a number of years or days; each ``legal_hold`` a period label of
        any grain (a month, quarter, ISO week or year: it holds every period sharing a day with it)."""
        from reporter.periods import span

        if archive.retention is not None:
            from reporter.periods import kept_since

            try:
                kept_since(archive.retention.keep, dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
            except ValueError as exc:
                self.add(("delivery", "archive", "retention", "keep"), str(exc), "e.g. 7y, or 400d")
        for i, label in enumerate(archive.legal_hold):
            try:
                span(str(label))
            except ValueError as exc:
                self.add(
                    ("delivery", "archive", "legal_hold", i),
                    str(exc),
                    "name each period the hold covers: a month, a quarter, an ISO week or a year",
                )

    def _check_alerts(self) -> None:
        """Each rule names one objective or one KPI that exists, a condition that fits it, and
        somewhere to send; rule ids are unique (``reporter alerts snooze`` names them)."""
        alerts: m.Alerts | None = self.parts.get("alerts")
        if alerts is None:
            return
        report: m.Report | None = self.parts.get("report")
        self._check_schedule(alerts.schedule, report.timezone if report else "UTC", ("alerts", "schedule"))
        objectives = {o.id for o in self.parts.get("objectives") or [] if o is not None}
        delivery: m.Delivery = self.parts.get("delivery") or m.Delivery()
        kinds: set[str] = {str(c.kind) for c in delivery.chat}
        seen: dict[str, int] = {}
        for i, rule, failed in _rules(self.doc.data.get("alerts")):
            base: Path_ = ("alerts", "rules", i)
            if (rule.objective is None) == (rule.kpi is None):
                if not failed & {"objective", "kpi"}:
                    self.add(base, "a rule names exactly one of objective or kpi", "e.g. objective: cut-cac")
            elif rule.objective is not None and rule.objective not in objectives:
                self.add(
                    (*base, "objective"),
                    f"unknown objective '{rule.objective}'",
                    did_you_mean(rule.objective, objectives, known_label="objectives are"),
                )
            elif rule.kpi is not None and rule.kpi not in self.declared_kpis:
                self.add(
                    (*base, "kpi"),
                    f"unknown KPI '{rule.kpi}'",
                    did_you_mean(rule.kpi, self.declared_kpis, known_label="KPIs are"),
                )
            elif (
                "when" not in failed
                and rule.kpi is not None
                and rule.condition in ("off_track", "at_risk", "pacing_off")
            ):
                self.add(
                    (*base, "when"),
                    f"'{rule.condition}' is about an objective; a kpi rule takes unusual, above or below",
                    "name the objective instead (objective: ...), or write when: {above: ...}",
                )
            self._check_rule_targets(base, rule, kinds, nowhere=not failed & {"to", "chat"})
            if failed:  # its id may be made of what failed: checked once the rule is valid
                continue
            if rule.rule_id in seen:
                self.add(
                    (*base, "id"),
                    f"duplicate rule id '{rule.rule_id}' (also alerts.rules[{seen[rule.rule_id]}])",
                    "give one of them an id: of its own",
                )
            seen.setdefault(rule.rule_id, i)

    def _check_rule_targets(self, base: Path_, rule: m.AlertRule, kinds: set[str], *, nowhere: bool) -> None:
        if nowhere and not rule.to and not rule.chat:
            self.add(base, "the rule sends nowhere", "add to: [address] and/or chat: [slack]")
        for j, address in enumerate(rule.to):
            self._check_address((*base, "to", j), address)
        for j, kind in enumerate(rule.chat):
            if kind not in kinds:
                self.add(
                    (*base, "chat", j),
                    f"no '{kind}' channel in delivery.chat",
                    "add it to delivery.chat (kind and webhook_env), or leave it out",
                )

    def _check_burst(self, burst: m.Burst | None) -> None:
        from reporter.config.burst import burst_problems

        for key, message, hint in burst_problems(burst):
            self.add(("delivery", "burst", key), message, hint)

    def _check_schedule(self, schedule: str, tz: str, key: Path_ = ("delivery", "schedule")) -> None:
        if plainly_fires(schedule):  # "0 7 2 * *" and the like: no need to load APScheduler
            return
        from apscheduler.triggers.cron import CronTrigger

        fields = schedule.split()
        try:
            if len(fields) != 5:
                raise ValueError(f"expected 5 fields, got {len(fields)}")
            cron = CronTrigger.from_crontab(schedule, timezone=_zone_or_utc(tz))
        except ValueError as exc:
            self.add(
                key,
                f"invalid cron expression '{schedule}' ({exc})",
                '5 fields: minute hour day month weekday, e.g. "0 7 2 * *"',
            )
            return
        # A day that no month has (31 February, 31 April): no fire time up to the year 9999.
        # (29 February is fine: it fires in leap years.)
        if cron.get_next_fire_time(None, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) is None:
            self.add(
                key,
                f"the cron expression '{schedule}' never fires: no date matches it",
                'use a day that exists in that month, e.g. "0 7 28 2 *" '
                "(29 February fires in leap years only)",
            )

    def _check_email(self, email: m.Email) -> None:
        base: Path_ = ("delivery", "email")
        self._check_address((*base, "from"), email.from_, named=True)
        for key in ("to", "cc"):
            for i, address in enumerate(getattr(email, key)):
                self._check_address((*base, key, i), address, named=True)
        if "\r" in email.subject or "\n" in email.subject:
            self.add(
                (*base, "subject"),
                "the subject contains a line break",
                "write the subject on one line",
            )
        from jinja2 import TemplateSyntaxError
        from jinja2.sandbox import SandboxedEnvironment

        try:
            SandboxedEnvironment().parse(email.subject)
        except TemplateSyntaxError as exc:
            self.add(
                (*base, "subject"),
                f"template error: {exc.message}",
                "use {{ report.title }} and {{ period.label }}",
            )
        if not email.to and not email.recipients:
            self.add(base, "no recipient", "add to: [someone@example.com] or recipients:")
        if email.smtp is not None:
            self._check_smtp(email.smtp)
        for i, rcpt in enumerate(email.recipients):
            self._check_address((*base, "recipients", i, "email"), rcpt.email, named=True)
        if email.unsubscribe is not None:
            self._check_address((*base, "unsubscribe"), email.unsubscribe)
        self._check_allowed_domains(email)

    def _check_allowed_domains(self, email: m.Email) -> None:
        """With ``allowed_domains``, every recipient's domain is one of them or a subdomain."""
        from email.utils import parseaddr

        base: Path_ = ("delivery", "email")
        allowed: list[str] = []
        for i, given in enumerate(email.allowed_domains):
            domain = given.strip().lower().strip(".")
            if re.fullmatch(rf"{_LABEL}(?:\.{_LABEL})+", domain):
                allowed.append(domain)
                continue
            self.add(
                (*base, "allowed_domains", i),
                f"'{given}' is not a domain",
                "write the part after the @, e.g. acme.fr",
            )
        if not allowed:
            return
        wanted: list[tuple[Path_, str]] = [(("to", i), text) for i, text in enumerate(email.to)]
        wanted += [(("cc", i), text) for i, text in enumerate(email.cc)]
        wanted += [(("recipients", i, "email"), r.email) for i, r in enumerate(email.recipients)]
        for where, text in wanted:
            address = parseaddr(text)[1]
            if "@" not in address:
                continue  # named by the address check
            domain = address.rsplit("@", 1)[1].lower().rstrip(".")
            if not any(domain == d or domain.endswith(f".{d}") for d in allowed):
                self.add(
                    (*base, *where),
                    f"'{address}': the domain {domain} is not in delivery.email.allowed_domains "
                    f"({', '.join(allowed)})",
                    "send only to the company's addresses, or add the domain to allowed_domains if "
                    "this recipient may receive the report",
                )

    def _check_smtp(self, smtp: m.Smtp) -> None:
        """A server with a login is a connection; ``host`` is a relay without one. With a
        connection, the server, port and security are the connection's."""
        base: Path_ = ("delivery", "email", "smtp")
        raw: Any = self.doc.data
        for key in ("delivery", "email", "smtp"):
            raw = raw.get(key) if isinstance(raw, dict) else None
        raw = raw if isinstance(raw, dict) else {}
        if smtp.connection is not None:
            for key in ("host", "port", "security"):
                if key in raw:
                    self.add(
                        (*base, key),
                        f"'{key}' comes from the connection '{smtp.connection}'",
                        f"remove {key}: the operator's connection says it",
                        key=True,
                    )
        elif smtp.host is None and (*base,) not in self.partial:
            self.add(
                base,
                "the smtp block needs 'connection' (a server with a login) or 'host' (a relay without one)",
                "connection: smtp, which the operator defines; or host: relay.example.com",
            )

    def _check_connections(self) -> None:
        """Each connection the YAML names must be one the operator defined, and fit its use. The
        messages name the connection and where it is defined, never its URL."""
        wanted: list[tuple[Path_, str, str]] = []
        for name, src in (self.parts.get("sources") or {}).items():
            if src.type == "sql" and src.connection:
                wanted.append((("sources", name, "connection"), src.connection, "database"))
        delivery: m.Delivery | None = self.parts.get("delivery")
        if delivery is not None:
            if delivery.ledger:
                wanted.append((("delivery", "ledger"), delivery.ledger, "ledger"))
            smtp = delivery.email.smtp if delivery.email is not None else None
            if smtp is not None and smtp.connection:
                wanted.append((("delivery", "email", "smtp", "connection"), smtp.connection, "smtp"))
            burst = delivery.burst
            if burst is not None and burst.connection and burst.executor == "dask":
                wanted.append((("delivery", "burst", "connection"), burst.connection, "dask"))
        for path, name, use in wanted:
            found = conns.lookup(name, self.env)
            if found is None:
                close = difflib.get_close_matches(name, conns.defined(self.env), n=1, cutoff=0.6)
                hint = f"did you mean '{close[0]}'? " if close else ""
                self.add(path, f"connection '{name}' is not defined", hint + conns.where_to_define(name))
                continue
            refused = conns.problem_for(found, use)
            if refused:
                self.add(path, refused, "the operator corrects the connection's URL")
                continue
            self.connections[name] = found.url

    def _check_address(self, path: Path_, text: str, *, named: bool = False) -> None:
        from email.utils import parseaddr

        if "\r" in text or "\n" in text:
            self.add(path, "the address contains a line break", "write it on one line")
            return
        if guards.invisible_character(text) is not None:
            return  # named by the invisible-character check, the more useful message
        display, address = parseaddr(text)
        if not _ADDRESS.match(address or "") or (display and not named):
            self.add(
                path,
                f"'{text}' is not a valid email address",
                "write name@example.com" + (" or Name <name@example.com>" if named else ""),
            )
        elif (mixed := mixed_scripts(address, self._mixed_script_domains())) is not None:
            self.add(
                path,
                f"'{address}' {mixed}",
                "a look-alike letter makes it another address: retype it; if the domain is really "
                "written so, add it to delivery.email.allow_mixed_scripts",
            )

    def _mixed_script_domains(self) -> list[str]:
        delivery: m.Delivery | None = self.parts.get("delivery")
        if delivery is None or delivery.email is None:
            return []
        return delivery.email.allow_mixed_scripts


# --------------------------------------------------------------------------------------
# helpers


def _rules(raw: Any) -> Iterator[tuple[int, m.AlertRule, set[str]]]:
    """The rules of ``alerts`` with their index and the keys that failed the schema (reported
    already). A rule with such keys is checked on the others, those left out (a failed ``when``
    stands in as ``unusual``, never judged), so that one validate names every mistake."""
    rules = raw.get("rules") if isinstance(raw, dict) else None
    adapter = TypeAdapter(m.AlertRule)
    for i, item in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(item, dict):
            continue
        try:
            yield i, adapter.validate_python(item), set()
            continue
        except ValidationError as exc:
            errors = exc.errors()
        if any(not e["loc"] for e in errors):
            continue
        failed = {str(e["loc"][0]) for e in errors}
        kept = {k: v for k, v in item.items() if str(k) not in failed}
        if "when" not in kept:
            failed.add("when")
            kept["when"] = "unusual"
        try:
            yield i, adapter.validate_python(kept), failed
        except ValidationError:
            continue


def _keys(value: Any) -> list[str]:
    return [str(k) for k in value] if isinstance(value, dict) else []


def _index_of(raw: Any, obj_id: str, fallback: int) -> int:
    if isinstance(raw, list):
        for i, item in enumerate(raw):
            if isinstance(item, dict) and item.get("id") == obj_id:
                return i
    return fallback


def _zone_or_utc(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


__all__ = ["format_path", "load_config", "load_configs", "parse_duration"]
