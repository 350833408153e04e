"""Pushdown: a ``type: sql`` source's aggregates run in its own database.

The compute stage writes every query once, in DuckDB's SQL, over a table ``src_<name>`` whose
``__day`` column is the row's local date. For a source read locally that table exists in DuckDB.
For a pushed-down source, :meth:`Warehouse.run` rewrites the same query for the database:

- the table becomes the source's ``table`` or its ``query`` as a subquery;
- each ``__day BETWEEN a AND b`` becomes a range predicate on the date column, with bounds
  computed here: the local midnights of ``a`` and ``b + 1 day`` in the report's timezone as UTC
  instants (a timestamp with a time zone), as local timestamps (a timestamp without one) or as
  dates (a date). No timezone function of the database is needed, so every dialect gets the same
  predicate and the database can use an index on the column;
- ``__latest`` (a pushed-down ``agg: last``: ``max(__latest)`` per window) becomes the date
  column, so that the rows on each window's latest date can be read next (metrics.py);
- sqlglot translates the rest (aggregates, ``FILTER``, casts, the YAML's ``where`` and ``expr``)
  from DuckDB to the database's dialect, each divisor wrapped in ``NULLIF(divisor, 0)``: a
  division by zero gives NULL in every database, as it does in DuckDB (docs/numbers.md).

A source is read whole (``pushdown: false``, or one of the reasons in :func:`pull_reason`) when
the rewrite cannot give the same numbers; the reason is kept in :attr:`Warehouse.pulled`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from reporter.config.model import Config, Source
from reporter.config.sql import null_divisors, sql_literal
from reporter.errors import SourceError
from reporter.sources import SourceInfo, location, needed_columns, query_failed

# SQLAlchemy backend name → sqlglot dialect. PostgreSQL, SQLite and DuckDB are tested against
# real databases; the others are translated by sqlglot and untested.
DIALECTS = {
    "postgresql": "postgres",
    "sqlite": "sqlite",
    "duckdb": "duckdb",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mssql": "tsql",
    "oracle": "oracle",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "redshift": "redshift",
    "trino": "trino",
    "databricks": "databricks",
    "clickhouse": "clickhouse",
}
TESTED = ("postgresql", "sqlite", "duckdb")
_SRC = "__reporter_src"


def pull_reason(config: Config, source: Source) -> str | None:
    """Why a sql source is read whole instead of pushed down, or None when it is pushed down."""
    if not source.pushdown:
        return "pushdown: false"
    backend = config.connection_url(source.connection or "").split(":", 1)[0].split("+", 1)[0]
    if backend not in DIALECTS:
        return f"no SQL dialect known for '{backend}'"
    return None


@dataclass
class RemoteInfo(SourceInfo):
    """A source whose aggregates run in its database (see :class:`Warehouse`)."""

    warehouse: Warehouse | None = field(default=None, repr=False, compare=False)


@dataclass
class Warehouse:
    """One pushed-down source: its engine, dialect and date column's kind."""

    name: str
    engine: Any  # sqlalchemy.engine.Engine
    dialect: str  # sqlglot's name
    source_sql: str  # "table" or "(query)"
    date_column: str
    kind: str  # instant | local | date | text-instant | text-local | text-date
    tz: ZoneInfo
    url: str

    # -- the rewrite ------------------------------------------------------------------------
    def translate(self, sql: str, params: Sequence[Any] = ()) -> str:
        """``sql`` (DuckDB, over ``src_<name>`` and ``__day``) in the database's dialect."""
        import sqlglot
        from sqlglot import exp

        tree = sqlglot.parse_one(_inline(sql, params), read="duckdb")
        table = "src_" + self.name
        for node in list(tree.find_all(exp.Table)):
            if node.name == table:
                node.replace(exp.to_table(_SRC))
        for between in list(tree.find_all(exp.Between)):
            if isinstance(between.this, exp.Column) and between.this.name == "__day":
                low, high = _date_of(between.args["low"]), _date_of(between.args["high"])
                between.replace(self._range(low, high))
        for column in list(tree.find_all(exp.Column)):
            if column.name == "__latest":  # the date column, for max(): the latest date (agg: last)
                column.replace(self._latest())
        left = [c.name for c in tree.find_all(exp.Column) if c.name in ("__day", "rowid", "__latest")]
        if left:  # a query this module cannot rewrite: a bug, not a user error
            raise AssertionError(f"pushdown cannot rewrite {left[0]} in: {sql}")
        text = str(null_divisors(tree).sql(dialect=self.dialect))  # a division by zero gives NULL
        return text.replace(f"FROM {_SRC}", f"FROM {self.source_sql} {_SRC}", 1)

    def _latest(self) -> Any:
        """The date column as a value whose max is the latest instant (SQLite text: datetime()
        turns an offset into UTC, so that texts with different offsets compare right)."""
        from sqlglot import exp

        column = exp.column(self.date_column, quoted=True)
        if self.kind in ("text-instant", "text-local"):
            return exp.Anonymous(this="datetime", expressions=[column])
        return column

    def _range(self, low: dt.date, high: dt.date) -> Any:
        """Rows whose local day is in low..high, as a range on the date column."""
        import sqlglot

        col = _quote(self.date_column)
        end = high + dt.timedelta(days=1)
        if self.kind == "date":
            text = f"{col} >= {_typed(low, 'DATE')} AND {col} <= {_typed(high, 'DATE')}"
        elif self.kind == "text-date":
            text = f"{col} >= {sql_literal(low.isoformat())} AND {col} <= {sql_literal(high.isoformat())}"
        elif self.kind == "instant":
            lo, hi = self._utc(low), self._utc(end)
            text = f"{col} >= {_typed(lo, 'TIMESTAMPTZ')} AND {col} < {_typed(hi, 'TIMESTAMPTZ')}"
        elif self.kind == "local":
            lo, hi = _midnight(low), _midnight(end)
            text = f"{col} >= {_typed(lo, 'TIMESTAMP')} AND {col} < {_typed(hi, 'TIMESTAMP')}"
        else:  # SQLite text: datetime() reads ISO text and turns an offset into UTC
            if self.kind == "text-instant":
                lo, hi = self._utc(low), self._utc(end)
            else:
                lo, hi = _midnight(low), _midnight(end)
            text = f"datetime({col}) >= {sql_literal(lo)} AND datetime({col}) < {sql_literal(hi)}"
        return sqlglot.parse_one(f"({text})", read="duckdb")

    def _utc(self, day: dt.date) -> str:
        local = dt.datetime.combine(day, dt.time(0), tzinfo=self.tz)
        return local.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") + (
            "+00:00" if self.kind == "instant" else ""
        )

    # -- running ----------------------------------------------------------------------------
    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.fetch(self.translate(sql, params))

    def fetch(self, text: str) -> list[tuple[Any, ...]]:
        import sqlalchemy as sa

        try:
            with self.engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(text.replace(":", r"\:"))).fetchall()]
        except Exception as exc:  # drivers raise their own kinds; all mean "the query failed"
            raise query_failed(self.name, self.url, exc) from None

    def local_day(self, value: Any) -> dt.date | None:
        """The local date of a value of the date column (its min or max)."""
        if value is None:
            return None
        if isinstance(value, str):
            if self.kind == "text-date":
                return dt.date.fromisoformat(value[:10])
            value = dt.datetime.fromisoformat(value)
            if self.kind == "text-instant":
                value = value.replace(tzinfo=dt.UTC)  # datetime() gave UTC
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                return value.astimezone(self.tz).date()
            return value.date()
        if isinstance(value, dt.date):
            return value
        raise SourceError(
            f"source '{self.name}': date column '{self.date_column}' holds {value!r}, not a date"
        )

    def dispose(self) -> None:
        self.engine.dispose()


def open_remote(config: Config, name: str, source: Source) -> RemoteInfo:
    """Look at a pushed-down source without reading its rows: its columns, its date column's
    kind, its row count and first and last local dates (one query each)."""
    from reporter.config.connections import query_problem
    from reporter.readonly import read_only_engine

    url = config.connection_url(source.connection or "")
    backend = url.split(":", 1)[0].split("+", 1)[0]
    if source.query is not None and (refused := query_problem(source.query, backend)):
        raise SourceError(f"source '{name}': {refused}")
    if source.table is not None:
        from sqlglot import exp

        source_sql = exp.to_table(source.table).sql(dialect=DIALECTS[backend])
    else:
        source_sql = f"({(source.query or '').strip().rstrip(';')})"
    try:
        engine = read_only_engine(url)
    except Exception as exc:  # a bad URL or a missing driver
        raise query_failed(name, url, exc) from None
    wh = Warehouse(
        name=name,
        engine=engine,
        dialect=DIALECTS[backend],
        source_sql=source_sql,
        date_column=source.date_column,
        kind="date",
        tz=ZoneInfo(config.report.timezone),
        url=url,
    )
    try:
        return _probe(config, wh, name, source)
    except BaseException:
        engine.dispose()
        raise


def _probe(config: Config, wh: Warehouse, name: str, source: Source) -> RemoteInfo:
    import sqlalchemy as sa

    head = f"SELECT * FROM {wh.source_sql} {_SRC} WHERE 1 = 0"
    try:
        with wh.engine.connect() as conn:
            keys = conn.execute(sa.text(head.replace(":", r"\:"))).keys()
            columns = [str(c) for c in keys]
    except Exception as exc:  # as in fetch
        raise query_failed(name, wh.url, exc) from None
    date_col = next((c for c in columns if c == source.date_column), None) or next(
        (c for c in columns if c.lower() == source.date_column.lower()), None
    )
    if date_col is None:
        raise SourceError(
            f"source '{name}': date column '{source.date_column}' not found; "
            f"columns are: {', '.join(columns)}"
        )
    needed_columns(config, name, columns)  # the same errors as when the rows are read
    wh.date_column = date_col
    col = _quote(date_col)
    rows, dated, low, high = wh.fetch(
        wh.translate(f"SELECT count(*), count({col}), min({col}), max({col}) FROM src_{name}")
    )[0]
    if rows != dated:
        raise SourceError(
            f"source '{name}': {rows - dated} row(s) have an empty or unreadable date in '{date_col}'"
        )
    sample = low if low is not None else high
    if isinstance(sample, dt.datetime):
        wh.kind = "instant" if sample.tzinfo is not None else "local"
    elif isinstance(sample, dt.date):
        wh.kind = "date"
    elif isinstance(sample, str):
        wh.kind = _text_kind(wh, name, col)
        if wh.kind != "text-date":
            low, high = wh.fetch(
                f"SELECT min(datetime({col})), max(datetime({col})) FROM {wh.source_sql} {_SRC}"
            )[0]
    elif sample is not None:
        raise SourceError(f"source '{name}': date column '{date_col}' holds {sample!r}, not a date")
    first, last = wh.local_day(low), wh.local_day(high)
    return RemoteInfo(
        name=name,
        kind=source.type,
        location=location(config, source),
        rows=int(rows),
        first_date=first.isoformat() if first else None,
        last_date=last.isoformat() if last else None,
        sha256=None,  # the rows never leave the database
        columns=columns,
        warehouse=wh,
    )


def _text_kind(wh: Warehouse, name: str, col: str) -> str:
    """Dates stored as ISO text (SQLite has no date type): all dates, all timestamps with an
    offset, or all without one; a mix is refused (``pushdown: false`` reads it)."""
    if wh.dialect != "sqlite":
        raise SourceError(
            f"source '{name}': date column '{wh.date_column}' holds text; pushdown reads dates as text "
            "on SQLite only; hint: cast it to a date or timestamp in the query, or set pushdown: false"
        )
    offset = (
        f"(length({col}) > 10 AND ({col} LIKE '%Z' OR substr({col}, length({col}) - 5, 1) IN ('+', '-')))"
    )
    total, dates, offsets = wh.fetch(
        f"SELECT count({col}), sum(CASE WHEN length({col}) = 10 THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN {offset} THEN 1 ELSE 0 END) FROM {wh.source_sql} {_SRC}"
    )[0]
    if dates == total:
        return "text-date"
    if offsets == total:
        return "text-instant"
    if not dates and not offsets:
        return "text-local"
    raise SourceError(
        f"source '{name}': date column '{wh.date_column}' mixes dates, timestamps with and without an "
        "offset; hint: set pushdown: false to read it whole"
    )


def _inline(sql: str, params: Sequence[Any]) -> str:
    """``sql`` with each ``?`` placeholder replaced by its parameter as a literal (placeholders
    are found by sqlglot's tokenizer, so a ``?`` inside a string is left alone)."""
    if not params:
        return sql
    from sqlglot import Tokenizer
    from sqlglot import TokenType as Kind

    spots = [t for t in Tokenizer().tokenize(sql) if t.token_type == Kind.PLACEHOLDER]
    if len(spots) != len(params):
        raise AssertionError(f"{len(params)} parameters for {len(spots)} placeholders in: {sql}")
    out = sql
    for token, value in reversed(list(zip(spots, params, strict=True))):
        out = out[: token.start] + _literal(value) + out[token.end + 1 :]
    return out


def _literal(value: Any) -> str:
    if isinstance(value, dt.datetime):
        raise AssertionError("a timestamp parameter")
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return sql_literal(str(value))


def _date_of(node: Any) -> dt.date:
    """A DATE literal (``DATE 'x'`` or ``CAST('x' AS DATE)``) as a date."""
    from sqlglot import exp

    if isinstance(node, exp.Cast | exp.TsOrDsToDate | exp.StrToDate | exp.Date):
        node = node.this
    if isinstance(node, exp.Literal) and node.is_string:
        return dt.date.fromisoformat(node.this)
    raise AssertionError(f"a day bound that is not a date literal: {node.sql()}")


def _typed(value: dt.date | str, type_: str) -> str:
    text = value.isoformat() if isinstance(value, dt.date) else value
    return f"CAST({sql_literal(text)} AS {type_})"


def _midnight(day: dt.date) -> str:
    return f"{day.isoformat()} 00:00:00"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
