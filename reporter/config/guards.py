"""Checks that catch at validation what would otherwise fail at run time (or leak, or reach
outside the configuration's folder). Called by ``checks.py``; each problem names its key.

- numbers: every number of the configuration is finite (no ``.nan``/``.inf`` target);
- header fields (title, company, subject, addresses): no control or line/paragraph separator
  character (CR, LF, U+2028, U+2029, NEL, VT, FF, NUL...); ``from`` is one address;
- files: ``ca_file`` holds certificates ``ssl`` reads; ``logo`` is an image (by its bytes), a
  regular file inside the configuration's folder or the template's;
- data: a file source has data rows, not only a header; each metric's ``column``/``expr`` and
  ``where`` run, exactly as the run will build them, over the source's real data in a locked
  DuckDB (so ``error('boom')``, ``nextval('s')``, a cast the data does not fit, an aggregate
  of text... are found here); numeric aggregates get numeric values.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from reporter.assets import resolve_template
from reporter.config import model as m
from reporter.config.loader import Path_
from reporter.config.paths import allow_hint, allowed_dirs
from reporter.config.sql import (
    BAD_DATE_HINT,
    DATE_RANGE,
    OUT_OF_RANGE_HINT,
    agg_sql,
    connect,
    file_reader_sql,
    file_version,
    find_column,
    first_bad_date,
    first_row,
    local_day_sql,
    quote_ident,
    remember_described,
    row_text,
    value_sql,
)
from reporter.config.sqlexpr import divisor_columns
from reporter.security import check_ca_file, check_named_file, image_kind, inside_any

NUMERIC_AGGS = ("sum", "avg", "min", "max", "last")
# Validation runs each metric's SQL over at most this many rows of each source: enough to catch
# a wrong type or a failing expression in practice, bounded in time and memory for a source of
# millions of rows (a failure the sample misses still ends the run with one line, no traceback).
SAMPLE_ROWS = 100_000
_NUMERIC_TYPES = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|"
    r"FLOAT|DOUBLE|REAL|DECIMAL(\(\d+,\s*\d+\))?|BOOLEAN)$"
)


def bad_character(text: str) -> str | None:
    """The first control or separator character of ``text`` as U+XXXX (its name when it has
    one), or None."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            name = unicodedata.name(char, "")
            return f"U+{ord(char):04X}" + (f" {name}" if name else "")
    return None


# Characters that show nothing, or reorder what follows, in an address or a subject: the
# bidirectional controls (an RTL override shows "moc.evil@" as "@live.com"), the zero-width
# characters and the byte-order mark.
INVISIBLE = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200e", "\u200f", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
)


def invisible_character(text: str) -> str | None:
    """The first bidirectional control or zero-width character of ``text`` as U+XXXX NAME."""
    for char in text:
        if char in INVISIBLE:
            return f"U+{ord(char):04X} {unicodedata.name(char, '')}".rstrip()
    return None


def decoded_words(text: str) -> str | None:
    """``text`` with its RFC 2047 encoded words (``=?utf-8?q?…?=``) decoded, as a mail client
    shows it; None when it has none (or they do not decode)."""
    if "=?" not in text:
        return None
    from email.header import decode_header

    try:
        parts = decode_header(text)
        return "".join(
            part.decode(charset or "ascii", errors="replace") if isinstance(part, bytes) else part
            for part, charset in parts
        )
    except (LookupError, ValueError):
        return None


def check_static(checker: Any) -> None:
    """The checks that need no data: finite numbers, header fields, ``from``, files."""
    parts: Mapping[str, Any] = checker.parts
    for path, value in _numbers(parts):
        if not math.isfinite(value):
            checker.add(path, f"must be a finite number, got {value}", "write a number such as 120000")
    report = parts.get("report")
    if isinstance(report, m.Report):
        for key in ("title", "company"):
            label: Any = getattr(report, key, None)
            # a label: one text, or one per language (each is a header in its language's report)
            for lang, text in label.items() if isinstance(label, dict) else [(None, label)]:
                _check_header(checker, ("report", key) if lang is None else ("report", key, lang), text)
        _check_logo(checker, report)
    delivery = parts.get("delivery")
    if not isinstance(delivery, m.Delivery):
        return
    for i, address in enumerate(delivery.alerts_to or []):
        _check_header(checker, ("delivery", "alerts_to", i), address, skip_breaks=True, invisible=True)
    if delivery.email is not None:
        _check_email(checker, delivery.email)


def _check_email(checker: Any, email: m.Email) -> None:
    """Header fields, the single sender and the CA file of ``delivery.email``."""
    base: Path_ = ("delivery", "email")
    _check_header(checker, (*base, "subject"), email.subject, skip_breaks=True, invisible=True)
    _check_header(checker, (*base, "from"), email.from_, skip_breaks=True, invisible=True)
    if isinstance(email.from_, str) and bad_character(email.from_) is None:
        found = [a for _, a in getaddresses([email.from_]) if a]
        if len(found) > 1:
            checker.add(
                (*base, "from"),
                f"'from' must be one address, found {len(found)}",
                "write one sender, e.g. Reports <reports@example.com>",
            )
    for key in ("to", "cc"):
        for i, address in enumerate(getattr(email, key, None) or []):
            _check_header(checker, (*base, key, i), address, skip_breaks=True, invisible=True)
    for i, rcpt in enumerate(email.recipients or []):
        _check_header(
            checker, (*base, "recipients", i, "email"), rcpt.email, skip_breaks=True, invisible=True
        )
    smtp = email.smtp
    if smtp is not None and smtp.ca_file is not None and (*base, "smtp", "ca_file") not in checker.outside:
        ca = smtp.ca_file if smtp.ca_file.is_absolute() else checker.base_dir / smtp.ca_file
        reason = check_ca_file(ca)
        if reason:
            checker.add(
                (*base, "smtp", "ca_file"),
                reason,
                "name a PEM file of the CA certificates to trust, relative to the configuration's folder",
            )


def _check_header(
    checker: Any, path: Path_, text: Any, *, skip_breaks: bool = False, invisible: bool = False
) -> None:
    """A value that becomes an email or PDF header: no control or separator character. With
    ``skip_breaks``, CR and LF alone are left to the check that already reports them."""
    if not isinstance(text, str):
        return
    probe = text.replace("\r", "").replace("\n", "") if skip_breaks else text
    found = bad_character(probe)
    if found:
        checker.add(
            path,
            f"contains the control character {found}",
            "write it on one line, with no control or separator characters",
        )
        return
    decoded = decoded_words(text)
    found = bad_character(decoded) if decoded is not None else None
    if found:
        checker.add(
            path,
            f"contains the control character {found} once its encoded words (=?…?=) are decoded",
            "write the name as plain text, on one line",
        )
        return
    if invisible and (found := invisible_character(decoded if decoded is not None else text)):
        checker.add(
            path,
            f"contains the invisible character {found}",
            "it can make the text read differently from what it is: delete it (retype the text if unsure)",
        )


def _check_logo(checker: Any, report: m.Report) -> None:
    if report.logo is None or ("report", "logo") in checker.outside:
        return
    logo = report.logo if report.logo.is_absolute() else checker.base_dir / report.logo
    reason = check_named_file(logo)
    if reason:
        checker.add(("report", "logo"), reason, "name a PNG, JPEG, GIF, WebP or SVG file")
        return
    folders = [checker.base_dir, *allowed_dirs()]
    found = resolve_template(report.template or "executive", checker.base_dir)
    if isinstance(found, list):
        folders += found
    if not inside_any(logo, folders):
        checker.add(
            ("report", "logo"),
            f"{report.logo} is outside the configuration's folder and the template's",
            "put the logo next to the configuration file or in the template folder, " + allow_hint(),
        )
        return
    if image_kind(logo) is None:
        checker.add(
            ("report", "logo"),
            f"{report.logo} is not an image (PNG, JPEG, GIF, WebP or SVG, judged by its content)",
            "name an image file",
        )


def _numbers(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, float]]:
    if isinstance(value, float):
        yield path, value
    elif isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            if name in ("file", "base_dir"):
                continue
            yield from _numbers(getattr(value, name, None), (*path, field.alias or name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _numbers(item, (*path, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _numbers(item, (*path, i))


# ----------------------------------------------------------------------------------------------
# data


class Sample:
    """The first ``SAMPLE_ROWS`` rows of each file source, read once into one DuckDB (``connect``):
    the header check takes a CSV, Parquet or JSON source's columns from its table (``read``)
    instead of sniffing the file a second time, and ``check_data`` runs the metrics over the same
    tables, once the connection is locked. Each connection costs 10-50 ms: one for every source."""

    def __init__(self) -> None:
        self.con = connect()
        self.tables: dict[str, str] = {}  # source → its table
        self.failed: dict[str, Exception] = {}  # source → why its rows could not be read
        self.types: dict[str, dict[str, str]] = {}  # source → its table's column → DuckDB type
        # source → (its file, the file's version before the read) when its table holds every row
        self.whole: dict[str, tuple[str, object]] = {}
        self._made = 0

    def read(self, name: str, source: m.Source, path: Path) -> list[str] | None:
        """The columns of ``path`` (a CSV, Parquet or JSON source), from its table of sampled
        rows; None when DuckDB could not read the rows (``check_data`` says why, once the header
        check has said whether the header itself is unreadable)."""
        import duckdb

        version = file_version(path)  # before the read: a file changed meanwhile is read again
        table = self._table()
        try:
            _load(self.con, source, path, table)
        except (duckdb.Error, ValueError, OSError) as exc:
            self.failed[name] = exc
            return None
        described = self._describe(name, table)
        found = [(column, kind) for column, kind in described.items()][:-1]  # less __day
        remember_described(source, path, version, found)  # the run's sources stage needs them
        counted = self.con.execute(f"SELECT count(*) FROM {table}").fetchone()
        if counted is not None and int(counted[0]) < SAMPLE_ROWS and version is not None:
            self.whole[name] = (str(path.resolve()), version)  # the LIMIT cut nothing: every row
        return [column for column, _ in found]

    def load(self, name: str, source: m.Source, path: Path) -> str:
        """The table of ``name`` (an Excel source's read here); raises what reading raised."""
        if name in self.failed:
            raise self.failed[name]
        if name not in self.tables:
            table = self._table()
            _load(self.con, source, path, table)
            self._describe(name, table)
        return self.tables[name]

    def _table(self) -> str:
        """A new table's name (each read gets its own: one that failed leaves no name taken)."""
        self._made += 1
        return f"t{self._made - 1}"

    def _describe(self, name: str, table: str) -> dict[str, str]:
        self.tables[name] = table
        described = {str(r[0]): str(r[1]) for r in self.con.execute(f"DESCRIBE {table}").fetchall()}
        self.types[name] = described
        return described

    def close(self) -> None:
        self.con.close()


# The run's sources stage reads each file into a DuckDB table, as validation did a moment
# before (the first SAMPLE_ROWS rows, every row of a smaller file). When validation's tables
# hold every row of every file source, the run takes them (``take``) instead of reading the
# files again: the same reader, so the same columns, types and row order.
_kept: tuple[int, Sample] | None = None


def keep(sample: Sample) -> None:
    """Keep the Sample of a validation that found no error for the run that may follow in this
    process (only when it holds every row of its files: never more than those small files), and
    close the one kept before."""
    global _kept
    old, _kept = _kept, None
    if old is not None and old[0] == os.getpid():
        old[1].close()
    if sample.tables and set(sample.whole) == set(sample.tables) and not sample.failed:
        _kept = (os.getpid(), sample)
    else:
        sample.close()


def _close_kept_before_fork() -> None:
    """A forked process must neither use nor destroy its parent's DuckDB (its threads are not
    there: closing it in the child can abort the child): the kept tables are closed first."""
    global _kept
    kept, _kept = _kept, None
    if kept is not None and kept[0] == os.getpid():
        kept[1].close()


os.register_at_fork(before=_close_kept_before_fork)


def take(files: Mapping[str, Path]) -> Sample | None:
    """The kept Sample if it holds every row of exactly these files (source → path), each
    unchanged since it was read, in this process; else None (and it is closed). Taken once."""
    global _kept
    kept, _kept = _kept, None
    if kept is None or kept[0] != os.getpid():  # a forked process never uses its parent's DuckDB
        return None
    sample = kept[1]
    same = set(sample.whole) == set(files) and all(
        sample.whole[name] == (str(path.resolve()), file_version(path)) for name, path in files.items()
    )
    if not same:
        sample.close()
        return None
    return sample


def check_data(
    checker: Any,
    sample: Sample,
    sources: Mapping[str, m.Source],
    columns: Mapping[str, list[str] | None],
    metrics: Mapping[str, m.Metric],
    base_dir: Path,
    dimensions: Sequence[tuple[Path_, str, set[str]]] = (),
) -> None:
    """Rows, dates, the types of the columns ``dimensions`` group by (key path, column, the
    sources it is read from) and bindings, for each file source whose header was read, over
    ``sample`` (whose connection is locked here, before the YAML's SQL runs)."""
    import duckdb

    reported = {p.key for p in checker.problems}
    con = sample.con
    loaded: dict[str, str] = {}
    for name, source in sources.items():
        cols = columns.get(name)
        if cols is None or source.path is None:
            continue
        path = source.path if source.path.is_absolute() else base_dir / source.path
        try:
            table = sample.load(name, source, path)
            rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        except (duckdb.Error, ValueError, OSError) as exc:
            checker.add(("sources", name, "path"), f"cannot read {path.name}: {_clean(exc)}")
            continue
        if rows == 0:
            checker.add(
                ("sources", name, "path"),
                f"{path.name} has no data rows (only a header)",
                "export the data again; a report needs rows to count",
            )
            continue
        loaded[name] = table
        _check_dates(checker, con, name, source, table, sample.types[name])
        _check_groupable(checker, name, dimensions, sample.types[name])
    # From here on the YAML's SQL runs: it may read neither files nor the network.
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    for name, table in loaded.items():
        todo = {
            metric_name: metric
            for metric_name, metric in metrics.items()
            if metric.source == name
            # a missing column, or a column, expr or where reported already (checks.py)
            and not (metric.column is not None and metric.column not in (columns.get(name) or []))
            and not _reported(reported, metric_name)
        }
        if not (todo and _all_run(con, todo, table)):  # one query for the whole source
            for metric_name, metric in todo.items():  # metric by metric only to say which fails
                _bind(checker, con, name, metric_name, metric, table, sources[name])
        failed = {p.key for p in checker.problems}
        for metric_name, metric in todo.items():
            if not _reported(failed, metric_name):
                _check_divisors(
                    checker, con, metric_name, metric, table, sources[name], columns.get(name) or []
                )


def _reported(keys: set[str], metric: str) -> bool:
    """Is a problem of ``metrics.<metric>`` (or one of its keys) among ``keys``?"""
    return any(k == f"metrics.{metric}" or k.startswith(f"metrics.{metric}.") for k in keys)


def _all_run(con: Any, metrics: Mapping[str, m.Metric], table: str) -> bool:
    """Do all these metrics run, with numbers where their aggregate needs them? One query."""
    import duckdb

    if any("--" in (t or "") or "/*" in (t or "") for mt in metrics.values() for t in (mt.expr, mt.where)):
        return False
    valued = [mt for mt in metrics.values() if mt.expr is not None or mt.column is not None]
    try:
        if valued:
            described = con.execute(
                "DESCRIBE SELECT "
                + ", ".join(f"{value_sql(mt)} AS v{i}" for i, mt in enumerate(valued))
                + f" FROM {table}"
            ).fetchall()
            for mt, row in zip(valued, described, strict=True):
                if mt.agg in NUMERIC_AGGS and not _NUMERIC_TYPES.match(str(row[1]).upper()):
                    return False
        con.execute(
            "SELECT " + ",\n".join(agg_sql(mt) for mt in metrics.values()) + f"\nFROM {table}"
        ).fetchall()
    except duckdb.Error:
        return False
    return True


def _check_dates(
    checker: Any, con: Any, name: str, source: m.Source, table: str, described: Mapping[str, str]
) -> None:
    """The first sampled row whose date is empty or unreadable, as the run would read it
    (``described``: the table's column → DuckDB type)."""
    wanted = getattr(source, "date_column", None)  # a source missing it is reported already
    if not isinstance(wanted, str):
        return
    column = find_column(list(described), wanted)  # as the run finds it
    if column is None or column == "__day":
        return  # reported by the header check
    day = local_day_sql(quote_ident(column), described[column], "UTC")
    row = first_bad_date(con, table, day) if day is not None else None
    if row is not None:
        checker.add(
            ("sources", name, "date_column"),
            f"{row_text(row, source)} has an empty or unreadable date in column '{column}'",
            BAD_DATE_HINT,
        )
        return
    row = first_row(con, table, f"({day}) NOT {DATE_RANGE}") if day is not None else None
    if row is not None:
        checker.add(
            ("sources", name, "date_column"),
            f"{row_text(row, source)} has a date outside the years 1 to 9999 in column '{column}'",
            OUT_OF_RANGE_HINT,
        )


def _nested_kind(duck_type: str) -> str | None:
    """What a DuckDB column type holds when it is not one value per row that can be grouped:
    "lists", "structures", "maps" or "unions"; None for text, numbers, dates..."""
    t = duck_type.strip().upper()
    if t.endswith("]"):
        return "lists"
    for prefix, kind in (("STRUCT", "structures"), ("MAP", "maps"), ("UNION", "unions")):
        if t.startswith(prefix + "(") or t == prefix:
            return kind
    return None


def _check_groupable(
    checker: Any, name: str, dimensions: Sequence[tuple[Path_, str, set[str]]], types: Mapping[str, str]
) -> None:
    """A breakdown's (or the portfolio's) column must hold one plain value per row: a list or a
    structure (a Parquet or JSON nested column) cannot be a row's key (``types``: the source's
    table's column → DuckDB type)."""
    for path, column, used in dimensions:
        kind = _nested_kind(types[column]) if name in used and column in types else None
        if kind is not None:
            checker.add(
                path,
                f"column '{column}' of source '{name}' holds {kind} (type {types[column]}), "
                "which cannot be grouped",
                "group by a column of text, numbers or dates (add one to the data if needed)",
            )


def _first_text(con: Any, table: str, metric: m.Metric, source: m.Source | None) -> str:
    """ " (line 42 of x.csv is the first that is not a number)", for a metric reading a text column;
    the value itself is not quoted."""
    if metric.column is None or source is None:
        return ""
    col = quote_ident(metric.column)
    if source.csv is not None and source.csv.decimal == ",":
        col = f"replace({col}, ',', '.')"
    row = first_row(con, table, f"{col} IS NOT NULL AND TRY_CAST({col} AS DOUBLE) IS NULL")
    return f" ({row_text(row, source)} is the first that is not a number)" if row else ""


def _load(con: Any, source: m.Source, path: Path, table: str) -> None:
    if source.type == "excel":
        import pandas as pd  # heavy: only for an Excel source

        frame = pd.read_excel(path, sheet_name=source.sheet or 0)
        con.register(f"{table}_frame", frame)
        reader = f"{table}_frame"
    else:
        reader = file_reader_sql(source, path)
    con.execute(
        f"CREATE TABLE {table} AS SELECT *, CAST(NULL AS DATE) AS __day FROM {reader} LIMIT {SAMPLE_ROWS}"
    )


def _bind(
    checker: Any, con: Any, source: str, name: str, metric: m.Metric, table: str, src: m.Source
) -> None:
    """Run the metric's SQL, as ``compute/metrics.py`` builds it, over the whole source."""
    import duckdb

    base: Path_ = ("metrics", name)
    for key in ("expr", "where"):
        text = getattr(metric, key)
        if text is not None and ("--" in text or "/*" in text):
            checker.add(
                (*base, key),
                "comments (-- or /*) are not allowed in an expression",
                "write the expression alone",
            )
            return
    value_key = "expr" if metric.expr is not None else "column"
    if metric.expr is not None or metric.column is not None:
        try:
            kind = str(con.execute(f"DESCRIBE SELECT {value_sql(metric)} AS v FROM {table}").fetchall()[0][1])
            con.execute(f"SELECT count({value_sql(metric)}) FROM {table}").fetchall()
        except duckdb.Error as exc:
            checker.add((*base, value_key), f"fails on the data of source '{source}': {_clean(exc)}", _HINT)
            return
        if metric.agg in NUMERIC_AGGS and not _NUMERIC_TYPES.match(kind.upper()):
            shown = f"column '{metric.column}'" if metric.column is not None else "the expression"
            checker.add(
                (*base, value_key),
                f"{shown} holds {kind} values, not numbers: {metric.agg} needs numbers"
                + _first_text(con, table, metric, src),
                "a value that is not a number (such as 12 EUR) makes the whole column text; "
                "clean the data, or use count; a word that means no value (n/a, -) can be declared: "
                "csv: {null_values: ['', 'n/a']}",
            )
            return
    if metric.where is not None:
        try:
            con.execute(f"SELECT count(*) FROM {table} WHERE ({metric.where})\n").fetchall()
        except duckdb.Error as exc:
            checker.add((*base, "where"), f"fails on the data of source '{source}': {_clean(exc)}", _HINT)
            return
    try:
        con.execute(f"SELECT {agg_sql(metric)} FROM {table}").fetchall()
    except duckdb.Error as exc:
        checker.add(base, f"fails on the data of source '{source}': {_clean(exc)}", _HINT)


def _check_divisors(
    checker: Any, con: Any, name: str, metric: m.Metric, table: str, source: m.Source, columns: list[str]
) -> None:
    """A warning for each column that the metric's ``expr`` or ``where`` divides by and that is 0
    on some of the rows the metric reads (its ``where`` applied: ``qty <> 0`` silences it). Such a
    row gives no value (null), in every engine: allowed, but perhaps not what was meant. One
    count per column over the sampled rows."""
    for key in ("expr", "where"):
        text = getattr(metric, key)
        if text is None:
            continue
        for column in divisor_columns(text, columns):
            keep = f" AND ({metric.where}) IS NOT FALSE" if metric.where is not None else ""
            condition = f"{quote_ident(column)} = 0{keep}"
            zeros = con.execute(f"SELECT count(*) FROM {table} WHERE {condition}").fetchone()[0]
            if not zeros:
                continue
            first = first_row(con, table, condition)
            rows = "1 row" if zeros == 1 else f"{zeros:,} rows"
            at = f" ({row_text(first, source)} is the first)" if first is not None else ""
            left_out = "do not match the condition" if key == "where" else "are left out of the metric"
            more = " AND …" if key == "where" else ""
            checker.warnings.append(
                checker.doc.problem(
                    ("metrics", name, key),
                    f"warning: divides by column '{column}', which is 0 on {rows}{at}: a division by "
                    f"zero gives no value, so these rows {left_out}",
                    f'if that is meant, say so: where: "{column} <> 0{more}"; otherwise correct the data',
                )
            )


_HINT = "validate runs each expression over the source's first rows; fix the expression or the data"


def _clean(exc: BaseException) -> str:
    """The first line of a DuckDB error, without the data values it may quote."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"""(["'])(?:(?!\1).)*\1""", "…", text) if "Conversion Error" in text else text
