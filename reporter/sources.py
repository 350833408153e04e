"""Read each source into DuckDB (reading a source's header for validation is config.headers).

Files (csv, parquet, json) are read by DuckDB itself; Excel and SQL results come through pandas.
Every source becomes a table ``src_<name>`` with the columns the report uses and ``__day`` (the
row's local date in the report's timezone); its ``rowid`` is the row's position in the source.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from reporter.config.model import Config, Source
from reporter.config.sql import (
    BAD_DATE_HINT,
    DATE_RANGE,
    OUT_OF_RANGE_HINT,
    describe_file,
    file_reader_sql,
    find_column,
    first_bad_date,
    first_line,
    first_row,
    local_day_sql,
    out_of_range_text,
    quote_ident,
    row_text,
)
from reporter.errors import SourceError
from reporter.files import sha256_file
from reporter.results import SourceFile, SourceResult


@dataclass
class SourceInfo(SourceResult):
    """What was read from a source (the fields results.json shows), plus its columns."""

    columns: list[str]


def redact_url(url: str) -> str:
    """A database URL without its password or secret query values (``?pw=``, ``token=``...)."""
    from sqlalchemy.engine import make_url

    from reporter.security import redact

    try:
        return redact(make_url(url).render_as_string(hide_password=True))
    except Exception:  # an unparsable URL is shown without anything after the scheme
        return url.split("://", 1)[0] + "://…"


def location(config: Config, source: Source) -> str:
    """Where a source's rows come from, as the provenance records it: a file relative to the
    YAML's folder (``data/sales.csv``: the same wherever the folder is copied, which is what
    ``reporter reproduce --data DIR`` reads), or its absolute path when it lies outside that
    folder (a folder the operator allows); a database's redacted URL; a derived source's inputs."""
    if source.type == "derived":
        return ", ".join(source.from_ or [])  # the sources it reads
    if source.type == "sql":
        return redact_url(config.connection_url(source.connection or ""))
    assert source.path is not None
    path = config.resolve(source.path)
    try:
        return path.resolve().relative_to(config.base_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def needed_columns(config: Config, name: str, columns: list[str]) -> list[str]:
    """The columns of source ``name`` that the report reads: metric columns and the columns
    their ``expr``/``where`` use, dimensions (breakdowns, portfolio, recipient filters)."""
    from reporter.config.sqlexpr import ExpressionError, check_expression

    wanted: list[str] = []
    for metric in config.metrics.values():
        if metric.source != name:
            continue
        if metric.column is not None:
            wanted.append(metric.column)
        for text in (metric.expr, metric.where):
            if text:
                try:
                    wanted.extend(check_expression(text, columns))
                except ExpressionError as exc:
                    raise SourceError(f"source '{name}': {exc}") from None
    dims = [b.by for b in config.breakdowns]
    if config.portfolio is not None:
        dims.append(config.portfolio.by)
    if config.delivery.email is not None:
        for rcpt in config.delivery.email.recipients:
            dims.extend(rcpt.filter)
    wanted.extend(d for d in dims if d in columns)
    missing = [c for c in wanted if find_column(columns, c) is None]
    if missing:
        raise SourceError(
            f"source '{name}': column '{missing[0]}' not found; columns are: {', '.join(columns)}"
        )
    return list(dict.fromkeys(find_column(columns, c) or c for c in wanted))


def register_sources(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    skip: set[str] | frozenset[str] = frozenset(),
    tables: Mapping[str, tuple[str, list[tuple[str, str]]]] | None = None,
) -> dict[str, SourceInfo]:
    """Read each source once into a table ``src_<name>`` holding the columns the report uses
    and ``__day``, the row's local date in the report's timezone. Rows keep their source order
    (DuckDB preserves insertion order), so ``rowid`` is the position used by ``last``.
    ``tables``: a file source's every row, read by validation into a table of ``con`` (name →
    (table, its columns and types)), copied from there instead of read again."""
    infos: dict[str, SourceInfo] = {}
    for name, source in config.sources.items():
        if name in skip or source.type == "derived":  # pushed down (compute.pushdown), or derived
            continue  # (register_derived, once the database is locked)
        sha: str | None = None
        frame_name = f"df_{name}"
        try:
            if source.type in ("csv", "parquet", "json"):
                path = config.resolve(source.path)  # type: ignore[arg-type]
                if not path.is_file():
                    raise SourceError(f"source '{name}': file not found: {path}")
                sha = sha256_file(path)
                reader = tables[name][0] if tables and name in tables else file_reader_sql(source, path)
            else:
                frame = _read_with_pandas(config, name, source)
                if source.type == "excel":
                    sha = sha256_file(config.resolve(source.path))  # type: ignore[arg-type]
                else:
                    sha = _hash_frame(frame)
                con.register(frame_name, frame)
                reader = frame_name
            if tables and name in tables:
                described = tables[name][1]
            elif source.type in ("csv", "parquet", "json"):
                described = describe_file(con, source, path)  # validation read it: not sniffed again
            else:
                described = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
        except duckdb.Error as exc:
            raise SourceError(f"source '{name}': cannot read: {first_line(exc)}") from None
        try:
            columns, rows, first, last = _table(
                con,
                config,
                name,
                described,
                reader,
                lambda column, exc: f"cannot read dates in column '{column}': {first_line(exc)}",
            )
        finally:
            if reader == frame_name:
                con.unregister(frame_name)
        infos[name] = SourceInfo(
            name=name,
            kind=source.type,
            location=location(config, source),
            rows=int(rows),
            first_date=first.isoformat() if first else None,
            last_date=last.isoformat() if last else None,
            sha256=sha,
            columns=columns,
        )
    return infos


def _table(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    name: str,
    described: list[Any],
    reader: str,
    failed: Callable[[str, BaseException], str],
) -> tuple[list[str], int, dt.date | None, dt.date | None]:
    """The table ``src_<name>`` from ``reader`` (a table, a view or a subquery that DuckDB
    ``described``): the columns the report uses (all of them for a derived source's input) and
    ``__day``, the row's local date; returns the columns, the rows and the first and last days.
    ``failed(date column, error)`` says why the table could not be made."""
    source = config.sources[name]
    columns = [str(r[0]) for r in described]
    types = {str(r[0]): str(r[1]) for r in described}
    date_col = find_column(columns, source.date_column)
    if date_col is None:
        raise SourceError(
            f"source '{name}': date column '{source.date_column}' not found; "
            f"columns are: {', '.join(columns)}"
        )
    if name in derived_inputs(config):  # a derived source's query may read any of them
        keep = [c for c in columns if c != "__day"]
    else:
        keep = [c for c in needed_columns(config, name, columns) if c != "__day"]
    day_sql = _day_sql(name, date_col, types[date_col], config.report.timezone)
    select = "".join(f"{quote_ident(c)}, " for c in keep) + f"{day_sql} AS __day"
    table = quote_ident("src_" + name)
    try:
        con.execute(f"CREATE TABLE {table} AS SELECT {select} FROM {reader}").fetchall()
        rows, first, last = _days(con, name, source, table, date_col)
    except duckdb.Error as exc:
        raise SourceError(f"source '{name}': {failed(date_col, exc)}") from None
    return columns, int(rows), first, last


def derived_inputs(config: Config, skip: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """The sources that a derived source (other than those in ``skip``) reads."""
    return {
        n
        for name, s in config.sources.items()
        if s.type == "derived" and name not in skip
        for n in s.from_ or []
    }


def register_derived(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    infos: dict[str, SourceInfo],
    skip: set[str] | frozenset[str] = frozenset(),
) -> dict[str, SourceInfo]:
    """Each derived source as a table ``src_<name>``, from its query over its inputs' tables
    (each read through a view ``in_<name>`` of its columns, without ``__day``). Runs once the
    database is locked: the query can read nothing but the declared sources."""
    from reporter.config import derived

    graph = {n: list(s.from_ or []) for n, s in config.sources.items() if s.type == "derived"}
    views: set[str] = set()
    for name in derived.order(graph):
        if name in skip:  # composed into its database's query (compute.database)
            continue
        source = config.sources[name]
        inputs = list(source.from_ or [])
        try:
            for dep in inputs:
                if dep not in views:
                    con.execute(
                        f"CREATE VIEW {quote_ident(derived.input_view(dep))} AS "
                        f"SELECT * EXCLUDE (__day) FROM {quote_ident('src_' + dep)}"
                    )
                    views.add(dep)
            query = derived.rewrite(source.sql or "", inputs)
            described = con.execute(f"DESCRIBE {query}").fetchall()
        except duckdb.Error as exc:
            raise SourceError(f"source '{name}': the query failed: {first_line(exc)}") from None
        columns, rows, first, last = _table(
            con,
            config,
            name,
            described,
            f"({query}) AS __derived",
            lambda column, exc: f"the query failed: {first_line(exc)}",
        )
        files = [
            SourceFile(path=file_label(config, dep), sha256=infos[dep].sha256)
            for dep in derived.files_behind(name, config.sources)
            if dep in infos
        ]
        infos[name] = SourceInfo(
            name=name,
            kind="derived",
            location=location(config, source),
            rows=int(rows),
            first_date=first.isoformat() if first else None,
            last_date=last.isoformat() if last else None,
            sha256=None,
            columns=columns,
            files=files,
        )
    return infos


def file_label(config: Config, name: str) -> str:
    """A source's file relative to the YAML's folder (its name alone when it lies outside),
    or a database's redacted URL: never the server's absolute path."""
    source = config.sources[name]
    if source.path is None:
        return location(config, source)
    path = config.resolve(source.path)
    try:
        return path.resolve().relative_to(config.base_dir.resolve()).as_posix()
    except ValueError:
        return path.name


def _days(
    con: duckdb.DuckDBPyConnection, name: str, source: Source, table: str, date_col: str
) -> tuple[int, Any, Any]:
    """The table's row count, first and last day; a SourceError naming the first row whose date
    is empty or unreadable, or outside the years 1 to 9999 (which Python's dates cannot hold)."""
    rows, bad, outside = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE __day IS NULL), "
        f"count(*) FILTER (WHERE __day NOT {DATE_RANGE}) FROM {table}"
    ).fetchall()[0]
    if bad:
        row = first_bad_date(con, table, "__day")
        where = f" (the first: {row_text(row, source)})" if row else ""
        raise SourceError(
            f"source '{name}': {bad} row(s) have an empty or unreadable date in '{date_col}'{where}; "
            f"{BAD_DATE_HINT}"
        )
    if outside:
        row = first_row(con, table, f"__day NOT {DATE_RANGE}")
        where = f" (the first: {row_text(row, source)})" if row else ""
        raise SourceError(
            f"source '{name}': {out_of_range_text(outside, date_col)}{where}; {OUT_OF_RANGE_HINT}"
        )
    first, last = con.execute(f"SELECT min(__day), max(__day) FROM {table}").fetchall()[0]
    return int(rows), first, last


def _day_sql(name: str, column: str, duck_type: str, tz: str) -> str:
    day = local_day_sql(quote_ident(column), duck_type, tz)
    if day is None:
        raise SourceError(f"source '{name}': date column {column} has type {duck_type}, not a date")
    return day


def _read_with_pandas(config: Config, name: str, source: Source) -> Any:
    import pandas as pd

    if source.type == "excel":
        path = config.resolve(source.path)  # type: ignore[arg-type]
        if not path.is_file():
            raise SourceError(f"source '{name}': file not found: {path}")
        from reporter.security import check_excel

        refused = check_excel(path)
        if refused:
            raise SourceError(f"source '{name}': {refused}")
        try:
            return pd.read_excel(path, sheet_name=source.sheet or 0)
        except Exception as exc:  # openpyxl raises many kinds; all mean "cannot read"
            raise SourceError(f"source '{name}': cannot read {path}: {exc}") from None
    import sqlalchemy as sa

    from reporter.config.connections import query_problem, table_sql
    from reporter.readonly import read_only_engine

    url = config.connection_url(source.connection or "")
    backend = url.split(":", 1)[0].split("+", 1)[0]
    if source.query is not None and (refused := query_problem(source.query, backend)):
        raise SourceError(f"source '{name}': {refused}")
    try:
        engine = read_only_engine(url)
        try:
            with engine.connect() as conn:
                query = source.query or f"SELECT * FROM {table_sql(source.table or '', backend)}"
                frame = pd.read_sql_query(sa.text(query), conn)
        finally:
            engine.dispose()
    except Exception as exc:  # drivers raise their own kinds; all mean "cannot read"
        raise query_failed(name, url, exc) from None
    return frame


def query_failed(name: str, url: str, exc: BaseException) -> SourceError:
    """A SQL source's database refused or failed a query (pulled or pushed down): the error's
    first line, the URL without its password."""
    return SourceError(f"source '{name}': query failed on {redact_url(url)}: {first_line(exc)}")


def _hash_frame(frame: Any) -> str:
    digest = hashlib.sha256()
    digest.update(frame.to_csv(index=False).encode())
    return digest.hexdigest()
