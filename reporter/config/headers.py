"""A source's header, read cheaply at validate time (the data preflight), and the DuckDB SQL
that reads a file source, which the sources stage reuses to read it whole."""

from __future__ import annotations

from pathlib import Path

import duckdb

from reporter.config.model import Source
from reporter.config.sqlexpr import scratch
from reporter.errors import SourceError


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
        import pandas as pd

        try:
            frame = pd.read_excel(path, sheet_name=source.sheet or 0, nrows=0)
        except Exception as exc:  # openpyxl raises many kinds; all mean "cannot read"
            raise SourceError(f"cannot read {path}: {exc}") from None
        return [str(c) for c in frame.columns]
    try:
        rows = scratch().execute(f"DESCRIBE SELECT * FROM {file_reader_sql(source, path)}").fetchall()
    except duckdb.Error as exc:
        raise SourceError(f"cannot read {path}: {first_line(exc)}") from None
    return [str(r[0]) for r in rows]


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
