"""The SQL that validation and the compute stage share: how a file source is read (validation
reads only its header, the sources stage all of it) and each metric's aggregate (validation runs
it over the data once, compute for every period)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from reporter.config.model import Metric, Source
from reporter.config.sqlexpr import scratch
from reporter.errors import SourceError
from reporter.security import check_excel

# A division by zero gives NULL, never inf, NaN or an error, in every engine (docs/numbers.md):
# SQL's ``x / NULLIF(y, 0)``. DuckDB applies it to every division (``/``, ``//``, ``%``,
# ``divide()``, ``fmod()``...) when these two settings are off; a pushed-down query gets the
# NULLIF written into it (``null_divisors``).
NULL_DIVISION: dict[str, str | bool | int | float | list[str]] = {
    "ieee_floating_point_ops": False,
    "error_on_division_by_zero": False,
}


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that follows the division rule (``NULL_DIVISION``): every connection
    that runs the YAML's SQL over data is opened here."""
    return duckdb.connect(":memory:", config=NULL_DIVISION)


def null_divisors(tree: Any) -> Any:
    """``tree`` (a sqlglot expression) with the divisor of each ``/``, ``//`` and ``%`` wrapped in
    ``NULLIF(divisor, 0)``, so that a database that raises (PostgreSQL) or returns infinity
    (DuckDB) on a division by zero gives NULL, as SQLite does. Changed in place and returned."""
    from sqlglot import exp

    for node in list(tree.find_all(exp.Div, exp.IntDiv, exp.Mod)):
        divisor = node.expression
        if isinstance(divisor, exp.Nullif):
            continue
        node.set("expression", exp.Nullif(this=divisor.copy(), expression=exp.Literal.number(0)))
    return tree


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def file_reader_sql(source: Source, path: Path) -> str:
    """The DuckDB table function call that reads a file source."""
    lit = sql_literal(str(path))
    if source.type == "parquet":
        return f"read_parquet({lit})"
    if source.type == "json":
        return f"read_json_auto({lit})"
    opts = source.csv
    args = [lit]
    if opts is not None:
        args += [
            f"delim={sql_literal(opts.delimiter)}",
            f"decimal_separator={sql_literal(opts.decimal)}",
            f"encoding={sql_literal(opts.encoding)}",
            f"header={'true' if opts.header else 'false'}",
            f"quote={sql_literal(opts.quote)}",
            "nullstr=[" + ", ".join(sql_literal(v) for v in opts.null_values) + "]",
        ]
        if opts.date_format:
            args.append(f"dateformat={sql_literal(opts.date_format)}")
            if any(d in opts.date_format for d in ("%H", "%M", "%S", "%z", "%I")):
                args.append(f"timestampformat={sql_literal(opts.date_format)}")
    return f"read_csv({', '.join(args)})"


def read_columns(source: Source, path: Path | None) -> list[str]:
    """Column names of a file source, reading only what the reader needs to find them.

    Raises SourceError with a readable message when the file cannot be read."""
    if source.type == "sql" or path is None:
        return []
    if source.type == "excel":
        import pandas as pd  # heavy: only for an Excel source

        refused = check_excel(path)
        if refused:
            raise SourceError(refused)
        try:
            frame = pd.read_excel(path, sheet_name=source.sheet or 0, nrows=0)
        except Exception as exc:  # openpyxl raises many kinds; all mean "cannot read"
            raise SourceError(f"cannot read {path}: {exc}") from None
        return [str(c) for c in frame.columns]
    try:
        rows = describe_file(scratch(), source, path)
    except duckdb.Error as exc:
        raise SourceError(f"cannot read {path}: {first_line(exc)}") from None
    return [r[0] for r in rows]


# The last answer of ``describe_file`` for each file: (size, mtime, inode) → [(column, type)].
_DESCRIBED: dict[str, tuple[tuple[int, int, int], list[tuple[str, str]]]] = {}


def file_version(path: Path) -> tuple[int, int, int] | None:
    """(size, modification time, inode) of ``path``, which tells a changed file; None when gone."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino)


def describe_file(con: duckdb.DuckDBPyConnection, source: Source, path: Path) -> list[tuple[str, str]]:
    """(column, type) of a file source, as DuckDB reads it. Finding them sniffs the file (for a
    CSV: its dialect and every column's type over a sample), 10-25 ms a file; validation finds
    them as it reads the file's first rows (``remember_described``), then the run's sources stage
    needs them again. The answer is kept for the process, for the file as it is: a file whose
    size, modification time or inode changed is read again.
    Raises duckdb.Error when the file cannot be read."""
    version = file_version(path)
    if version is None:  # gone meanwhile: DuckDB says so, as for any file it cannot read
        return [
            (str(r[0]), str(r[1]))
            for r in con.execute(f"DESCRIBE SELECT * FROM {file_reader_sql(source, path)}").fetchall()
        ]
    key = file_reader_sql(source, path.resolve())
    known = _DESCRIBED.get(key)
    if known is not None and known[0] == version:
        return list(known[1])
    rows = con.execute(f"DESCRIBE SELECT * FROM {file_reader_sql(source, path)}").fetchall()
    found = [(str(r[0]), str(r[1])) for r in rows]
    _DESCRIBED[key] = (version, found)
    return list(found)


def remember_described(
    source: Source, path: Path, version: tuple[int, int, int] | None, found: list[tuple[str, str]]
) -> None:
    """Keep ``found``, the (column, type) of ``path`` as a read of it gave them (DuckDB types a
    table made from a file as it describes the file), for ``describe_file``. ``version``: the
    file's ``file_version`` taken before that read (a file changed since is read again)."""
    if version is not None:
        _DESCRIBED[file_reader_sql(source, path.resolve())] = (version, list(found))


def local_day_sql(col: str, duck_type: str, tz: str) -> str | None:
    """SQL for the local calendar date of a date column in the report's time zone; None when
    the column's type holds no date."""
    t = duck_type.upper()
    if t == "DATE":
        return col
    if t.startswith("TIMESTAMP WITH TIME ZONE") or t == "TIMESTAMPTZ":
        return f"CAST(timezone({sql_literal(tz)}, {col}) AS DATE)"
    if t.startswith("TIMESTAMP"):
        return f"CAST({col} AS DATE)"  # a plain timestamp is already local
    if t in ("VARCHAR", "TEXT"):
        # ISO text with or without an offset; an offset is converted to the report's zone. Text
        # that is no date gives NULL (TRY), counted and reported by its row.
        return (
            f"TRY(CASE WHEN regexp_matches({col}, '([+-]\\d\\d:?\\d\\d|Z)$') "
            f"THEN CAST(timezone({sql_literal(tz)}, CAST({col} AS TIMESTAMPTZ)) AS DATE) "
            f"ELSE CAST(CAST({col} AS TIMESTAMP) AS DATE) END)"
        )
    return None


BAD_DATE_HINT = (
    "dates are read as ISO 8601 (2026-10-31, 2026-10-31T09:30:00+02:00), "
    "another format needs csv: {date_format: '%d/%m/%Y'}"
)


# Python's dates stop at year 9999; DuckDB reads a typing error such as 12026-10-02 as a date.
DATE_RANGE = "BETWEEN DATE '0001-01-01' AND DATE '9999-12-31'"
OUT_OF_RANGE_HINT = "correct the date in the file (a year such as 12026 is a typing error)"


def out_of_range_text(count: int, column: str) -> str:
    """The message's start for ``count`` rows dated outside the years 1 to 9999."""
    rows = "1 row has" if count == 1 else f"{count} rows have"
    return f"{rows} a date outside the years 1 to 9999 in column '{column}'"


def first_row(con: duckdb.DuckDBPyConnection, table: str, condition: str) -> int | None:
    """The 1-based number (after the header, in file order: a table keeps the order its rows were
    read in) of the first row of ``table`` where ``condition`` (SQL) holds, or None. Its values
    are not returned: a message about a value that does not convert names its row, never
    quotes it."""
    try:
        found = con.execute(
            f"SELECT rowid + 1 FROM {table} WHERE {condition} ORDER BY rowid LIMIT 1"
        ).fetchone()
    except duckdb.Error:
        return None
    return int(found[0]) if found else None


def first_bad_date(con: duckdb.DuckDBPyConnection, table: str, day: str) -> int | None:
    """The first row whose local day ``day`` (SQL, see ``local_day_sql``) is NULL: an empty or
    unreadable date."""
    return first_row(con, table, f"({day}) IS NULL")


def find_column(columns: list[str], wanted: str) -> str | None:
    """``wanted`` among ``columns``: the same name, else the same name in another case."""
    if wanted in columns:
        return wanted
    return {c.lower(): c for c in columns}.get(wanted.lower())


def row_text(row: int, source: Source) -> str:
    """Where the ``row``-th data row (1-based) of a file source is, for a message: its line in a
    CSV file ("line 600 of data/sales.csv", the header counted), else "row 599 of data/x.json"."""
    if source.path is None:  # a derived source
        return f"row {row} of its query"
    if source.type == "csv":
        header = source.csv.header if source.csv is not None else True
        return f"line {row + int(header)} of {source.path}"
    return f"row {row} of {source.path}"


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def value_sql(metric: Metric) -> str:
    if metric.expr is not None:
        return f"({metric.expr})"
    if metric.column is not None:
        return quote_ident(metric.column)
    return "1"


def agg_sql(metric: Metric, extra_filter: str | None = None) -> str:
    """The aggregate for one metric, with its ``where`` (and an extra window filter)."""
    conditions = [c for c in (metric.where and f"({metric.where})", extra_filter) if c]
    filt = f" FILTER (WHERE {' AND '.join(conditions)})" if conditions else ""
    value = value_sql(metric)
    if metric.agg == "count":
        inner = "*" if metric.column is None and metric.expr is None else value
        return f"count({inner}){filt}"
    if metric.agg == "count_distinct":
        return f"count(DISTINCT {value}){filt}"
    if metric.agg == "sum":
        return f"CAST(sum({value}){filt} AS DOUBLE)"
    if metric.agg == "avg":
        return f"avg({value}){filt}"
    if metric.agg == "min":
        return f"CAST(min({value}){filt} AS DOUBLE)"
    if metric.agg == "max":
        return f"CAST(max({value}){filt} AS DOUBLE)"
    # last: the value on the latest date; ties broken by source order. arg_max_null keeps a
    # null value on that date (plain arg_max would skip it and return an older value).
    return f"CAST(arg_max_null({value}, {{'d': __day, 'r': rowid}}){filt} AS DOUBLE)"
