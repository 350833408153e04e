"""Warnings that ``validate`` finds by reading the data (docs/commands.md, "Warnings from the
data"): a ``values`` label that no row has, values without a label, a growth target whose base
period has no data, a source whose rows are sparser than its ``frequency``, sources whose data
share no period. The file is valid; validate still exits 0.

The sources are read as a run reads them (``register_sources`` into an in-memory DuckDB, then
locked) and every check is an aggregate in SQL with a LIMIT: no table comes into Python. A
database source is not read (validate does not connect to databases): the checks that need it
are skipped, with one note. Data that cannot be read skips every check, with one note that says
why: validate never fails on account of these checks.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from typing import Any

import duckdb

from reporter.compute.cadence import spacing
from reporter.compute.metrics import period_metrics
from reporter.compute.report import _Kpis
from reporter.config.model import Config
from reporter.config.sql import find_column, first_line, quote_ident
from reporter.errors import Problem
from reporter.periods import Period
from reporter.sources import SourceInfo, register_derived, register_sources

HISTORY = 13  # periods of data a values label is looked for in: the run's and the 12 before
SHOWN = 5  # values without a label named in the warning
_NEAR = 100  # values without a label fetched to find a misspelt label's likely value


def data_warnings(config: Config, now: dt.datetime) -> list[Problem]:
    """Every warning the data gives (see the module's docstring), for the period a run without
    ``--period`` would report at ``now``; notes (no line) for what could not be read."""
    file = str(config.file)
    skipped = _database_sources(config)
    notes = []
    if skipped:
        names = ", ".join(f"'{n}'" for n in skipped)
        notes.append(
            Problem(
                file,
                None,
                None,
                "",
                f"note: the checks that read the data leave out {names}: validate does not connect "
                "to databases",
            )
        )
    try:
        con = _open(config, skipped)
    except Exception as exc:  # unreadable data is the run's to report; validate only notes it
        return [*notes, _skipped(file, exc)]
    try:
        found = _Checks(config, con[0], con[1], now, set(skipped)).run()
    except Exception as exc:
        return [*notes, _skipped(file, exc)]
    finally:
        con[0].close()
    return [*notes, *found]


def _skipped(file: str, exc: BaseException) -> Problem:
    said = f"note: the checks that read the data were skipped: {first_line(exc)}"
    return Problem(file, None, None, "", said)


def _database_sources(config: Config) -> list[str]:
    """The sql sources, and the derived sources that read one (through others too)."""
    out = [n for n, s in config.sources.items() if s.type == "sql"]
    grew = True
    while grew:
        grew = False
        for name, source in config.sources.items():
            if name not in out and source.type == "derived" and set(source.from_ or []) & set(out):
                out.append(name)
                grew = True
    return out


def _open(config: Config, skip: list[str]) -> tuple[duckdb.DuckDBPyConnection, dict[str, SourceInfo]]:
    """The file sources (and the derived ones over them) read as a run reads them, locked."""
    from reporter.compute.database import lock
    from reporter.config.sql import connect

    con = connect()  # the division rule holds here as in the run (docs/numbers.md)
    try:
        infos = register_sources(con, config, skip=set(skip))
        lock(con)
        register_derived(con, config, infos, skip=set(skip))
    except BaseException:
        con.close()
        raise
    return con, infos


class _Checks:
    def __init__(
        self,
        config: Config,
        con: duckdb.DuckDBPyConnection,
        infos: dict[str, SourceInfo],
        now: dt.datetime,
        skipped: set[str],
    ):
        from reporter.hints import latest_dated

        self.config, self.con, self.infos, self.skipped = config, con, infos, skipped
        report = config.report
        self.period = Period.last_complete(now, report.grain, report.timezone)
        self.word = report.grain  # month, quarter, week
        self.kpis = _Kpis(config)
        self.found: list[Problem] = []
        # Historical data (it stopped before the run's period): check the latest period with
        # data, the one `reporter preview` shows, and say so before any warning found there.
        self.note: Problem | None = None
        lasts = [i.last_date for n, i in infos.items() if i.last_date and n not in skipped]
        latest = latest_dated(config, lasts, self.period.start.isoformat())
        if latest is not None:
            self.note = Problem(
                str(config.file),
                None,
                None,
                "",
                f"note: no data in {self.period.label}, the last complete {self.word}: the checks "
                f"that read the data looked at {latest.label}, the latest {self.word} with data",
            )
            self.period = latest

    def add(self, keys: tuple[str | int, ...], message: str, hint: str) -> None:
        line, col = self.config.position(keys, key=True)
        shown = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")
        self.found.append(Problem(str(self.config.file), line, col, shown, f"warning: {message}", hint))

    def run(self) -> list[Problem]:
        for i, bd in enumerate(self.config.breakdowns):
            if bd.values:
                used = {self.config.metrics[m].source for m in self.kpis.metrics_of(bd.kpi)}
                self._values(("breakdowns", i), bd.by, bd.values, used)
        pf = self.config.portfolio
        if pf is not None and pf.values:
            used = {self.config.metrics[m].source for m in (pf.cost, pf.value)}
            self._values(("portfolio",), pf.by, pf.values, used)
        self._targets()
        if self.config.quality.require_complete_period:
            self._frequencies()
        self._overlap()
        if self.found and self.note is not None:
            return [self.note, *self.found]
        return self.found

    # -- values labels ----------------------------------------------------------------------
    def _values(
        self, keys: tuple[str | int, ...], by: str, labels: Mapping[str, Any], used: set[str]
    ) -> None:
        """Labels no row of the last 13 periods has; values of those periods without a label."""
        if not used or used & self.skipped:
            return
        first = self.period.shift(-(HISTORY - 1))
        parts, params = [], []
        for name in sorted(used):
            info = self.infos[name]
            if find_column(info.columns, by) is None:
                return
            table, col = quote_ident("src_" + name), quote_ident(by)
            kind = str(self.con.execute(f"DESCRIBE SELECT {col} FROM {table}").fetchall()[0][1])
            # the key as the report looks its label up: str() of the value read, a date's isoformat()
            text = f"CAST({col} AS VARCHAR)"
            if kind == "BOOLEAN":
                text = f"CASE WHEN {col} THEN 'True' ELSE 'False' END"
            elif kind == "TIMESTAMP":
                text = f"replace(CAST({col} AS VARCHAR), ' ', 'T')"
            parts.append(f"SELECT {text} AS k FROM {table} WHERE __day BETWEEN ? AND ? AND {col} IS NOT NULL")
            params += [first.start, self.period.end]
        rows = "(" + " UNION ALL ".join(parts) + ")"
        wanted = list(labels)
        marks = ", ".join("?" for _ in wanted)
        query = f"SELECT DISTINCT k FROM {rows} WHERE k IN ({marks})"
        seen = {r[0] for r in self.con.execute(query, [*params, *wanted]).fetchall()}
        others = self.con.execute(
            f"SELECT k, count(*) AS n, count(*) OVER () FROM {rows} WHERE k NOT IN ({marks}) "
            f"GROUP BY k ORDER BY n DESC, k LIMIT {_NEAR}",
            [*params, *wanted],
        ).fetchall()
        if not seen and not others:
            return  # no data in those periods: nothing to compare the labels with
        span = f"the {HISTORY} {self.word}s up to {self.period.label}"
        for label in wanted:
            if label in seen:
                continue
            near = difflib.get_close_matches(label, [str(r[0]) for r in others], n=1, cutoff=0.6)
            hint = (
                f"did you mean '{near[0]}'? (a label must match its value exactly)"
                if near
                else "a label must match its value exactly, case and spaces included"
            )
            self.add((*keys, "values", label), f"no row has {by} '{label}' in {span}", hint)
        if others:
            count = int(others[0][2])
            named = ", ".join(f"'{r[0]}' ({_rows(int(r[1]))})" for r in others[:SHOWN])
            more = ", …" if count > SHOWN else ""
            said = "value has" if count == 1 else "values have"
            self.add(
                (*keys, "values"),
                f"{count} {said} no label in {span} and will show as written: {named}{more}",
                "add a label under values for each that needs one",
            )

    # -- growth targets ---------------------------------------------------------------------
    def _targets(self) -> None:
        """A change_vs_prior_year or change_vs_previous target whose base period has no value
        while the run's period has one: the KPI would show "no target". A cumulative one needs
        the base of every period of the year to date."""
        period = self.period
        local = {m for m, metric in self.config.metrics.items() if metric.source not in self.skipped}
        wanted: list[tuple[int, str, str, list[Period]]] = []
        for i, obj in enumerate(self.config.objectives):
            if not set(self.kpis.metrics_of(obj.kpi)) <= local:
                continue
            periods = period.ytd_periods(self.config.report.fiscal_year_start) if obj.cumulative else [period]
            for key in ("change_vs_prior_year", "change_vs_previous"):
                if getattr(obj.target, key) is not None:
                    wanted.append((i, obj.kpi, key, periods))
        if not wanted:
            return
        names = {m for _, kpi, _, _ in wanted for m in self.kpis.metrics_of(kpi)}
        needed = {period, *(_base(key, p) for _, _, key, periods in wanted for p in periods)}
        metrics, _ = period_metrics(self.con, self.config, self.infos, needed, [], only=names)
        empty = dict.fromkeys(self.config.metrics)
        values = {p: self.kpis.evaluate({**empty, **v}) for p, v in metrics.items()}
        for i, kpi, key, periods in wanted:
            missing = [p for p in periods if values[_base(key, p)][kpi] is None]
            if values[period][kpi] is None or not missing:
                continue
            base = _base(key, missing[0])
            sources = dict.fromkeys(self.config.metrics[m].source for m in self.kpis.metrics_of(kpi))
            spans = [self._span(s) for s in sources if not self._covers(s, base)]
            why = f" ({'; '.join(spans)})" if spans else ""
            whose = f" for {missing[0].label}" if missing[0] != period else ""
            hint = "give a target that needs no earlier data: {value: …}"
            if len(periods) > 1:
                hint = (
                    f"a cumulative target adds up the target of every {self.word} of the year to date; "
                    + hint
                )
            else:
                hint += f" or {{by_period: {{{period.label}: …}}}}"
            self.add(
                ("objectives", i, "target", key),
                f"the KPI '{kpi}' has no value in {base.label}, the base of this target{whose}{why}: "
                f"a run for {period.label} shows no target",
                hint,
            )

    def _covers(self, source: str, period: Period) -> bool:
        info = self.infos[source]
        if info.first_date is None or info.last_date is None:
            return False
        start, end = period.start.isoformat(), period.end.isoformat()
        return info.first_date[:10] <= end and info.last_date[:10] >= start

    def _span(self, source: str) -> str:
        info = self.infos[source]
        if info.first_date is None or info.last_date is None:
            return f"source '{source}' has no rows"
        return f"source '{source}' has data from {info.first_date[:10]} to {info.last_date[:10]}"

    # -- completeness -----------------------------------------------------------------------
    def _frequencies(self) -> None:
        """A source whose rows are sparser than its ``frequency``: the completeness gate would
        wait, each period, for a row the data never has."""
        for name, info in self.infos.items():
            shown = spacing(self.con, self.config, info)
            if shown is None:
                continue
            source = self.config.sources[name]
            declared = source.frequency
            keys: tuple[str, ...] = ("sources", name, "frequency")
            if "frequency" not in source.model_fields_set:
                keys = keys[:2]
            waits = f"in each {self.word}'s last week"
            if declared == "daily":
                waits = f"on each {self.word}'s last day"
            self.add(
                keys,
                f"the data has about one row per {shown[:-2]}; with frequency {declared} the completeness "
                f"gate waits for a row {waits}",
                f"declare `frequency: {shown}` under sources.{name}",
            )

    def _overlap(self) -> None:
        """Sources whose data share no period: every run stops at the gate or at min_rows."""
        from reporter.hints import latest_common

        if self.skipped:
            return
        found, apart = latest_common(self.config, self.infos.values())
        if found is None and apart is not None and apart.name != apart.other:
            self.add(
                ("sources", apart.name),
                f"no {self.word} has data in every source: {apart}",
                "point each source at data of the same periods",
            )


def _base(key: str, period: Period) -> Period:
    """The period a growth target of ``key`` grows from."""
    return period.prior_year() if key == "change_vs_prior_year" else period.shift(-1)


def _rows(n: int) -> str:
    return f"{n:,} row{'s' if n != 1 else ''}"
