"""How often validation reads each data file, and what it says when one cannot be read.

A CSV, Parquet or JSON source is read once at validation: its first rows go into the locked
DuckDB where the metrics are tried, and its columns are taken from that table (no separate
sniff of the header). Only when the rows cannot be read is the header read alone, to tell an
unreadable file from rows that do not fit their header. The opens are counted by Linux's
inotify, which sees DuckDB's own reads."""

from __future__ import annotations

import ctypes
import os
import struct
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb
import pytest

from reporter.config import guards, load_config, sql
from reporter.errors import ConfigError
from tests.conftest import write_csv

IN_OPEN = 0x20
IN_CLOSE_NOWRITE = 0x10
IN_NONBLOCK = 0o4000


@contextmanager
def opens(*paths: Path) -> Iterator[dict[str, int]]:
    """How many times each of ``paths`` was opened (by name) inside the block, by any code of this
    process or another: the counts are filled in when the block ends. Closes are watched too:
    inotify merges an event into the same one still unread, so open, open would count once."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    watched = {}
    for path in paths:
        wd = libc.inotify_add_watch(fd, str(path).encode(), IN_OPEN | IN_CLOSE_NOWRITE)
        assert wd >= 0, os.strerror(ctypes.get_errno())
        watched[wd] = path.name
    counts = dict.fromkeys(watched.values(), 0)
    try:
        yield counts
    finally:  # an exception leaving the block too (pytest.raises inside)
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                break
            at = 0
            while at < len(data):
                wd, mask, _cookie, size = struct.unpack_from("iIII", data, at)
                at += 16 + size
                if mask & IN_OPEN:
                    counts[watched[wd]] += 1
        os.close(fd)


def _write(folder: Path, text: str) -> Path:
    path = folder / "report.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _one_read(source, path: Path) -> int:
    """How many times DuckDB opens ``path`` to read its first rows once, as validation reads them
    (Parquet's reader opens a file more than once for one query)."""
    con = sql.connect()
    try:
        with opens(path) as counted, suppress(duckdb.Error):
            guards._load(con, source, path, "t")
    finally:
        con.close()
    return counted[path.name]


def _one_sniff(source, path: Path) -> int:
    """How many times DuckDB opens ``path`` to describe it (its header sniffed alone)."""
    con = duckdb.connect()
    try:
        with opens(path) as counted, suppress(duckdb.Error):
            con.execute(f"DESCRIBE SELECT * FROM {sql.file_reader_sql(source, path)}").fetchall()
    finally:
        con.close()
    return counted[path.name]


def _described_afresh(source, path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect()
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {sql.file_reader_sql(source, path)}").fetchall()
    finally:
        con.close()
    return [(str(r[0]), str(r[1])) for r in rows]


def test_validation_opens_each_csv_parquet_and_json_file_once_and_keeps_the_types_duckdb_describes(tmp_path):
    rows = [("2026-10-01", 5.5, "N"), ("2026-10-02", 7, "S")]
    write_csv(tmp_path / "sales.csv", ["date", "amount", "region"], rows)
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT DATE '2026-10-01' + i::INT AS day, CAST(i AS DECIMAL(12, 2)) AS cost, "
        f"[i, i + 1] AS tags, {{'a': i}} AS extra FROM range(3) t(i)) TO '{tmp_path / 'costs.parquet'}' "
        "(FORMAT parquet)"
    )
    con.close()
    (tmp_path / "visits.json").write_text(
        '[{"when": "2026-10-01", "n": 3, "meta": {"src": "ads"}},'
        ' {"when": "2026-10-02", "n": 4, "meta": {"src": "seo"}}]',
        encoding="utf-8",
    )
    path = _write(
        tmp_path,
        """
        report: {id: t, title: T, timezone: Europe/Paris, locale: en_US}
        sources:
          sales: {type: csv, path: sales.csv, date_column: date}
          costs: {type: parquet, path: costs.parquet, date_column: day}
          visits: {type: json, path: visits.json, date_column: when}
        metrics:
          amount: {source: sales, agg: sum, column: amount}
          cost: {source: costs, agg: sum, column: cost}
          visits: {source: visits, agg: sum, column: n}
        kpis:
          amount: {formula: amount}
          cost: {formula: cost}
          visits: {formula: visits}
        """,
    )
    files = [tmp_path / name for name in ("sales.csv", "costs.parquet", "visits.json")]
    with opens(*files) as counted:
        config = load_config(path, env={})
    # One read of each file's rows, and nothing more (the old way sniffed its header first).
    sources = [config.sources[name] for name in ("sales", "costs", "visits")]
    assert counted == {file.name: _one_read(src, file) for src, file in zip(sources, files, strict=True)}
    assert counted["sales.csv"] == 1
    # What the run's sources stage is handed (not sniffed again) is what DuckDB describes.
    for source, file in zip(sources, files, strict=True):
        version, kept = sql._DESCRIBED[sql.file_reader_sql(source, file.resolve())]
        assert version == sql.file_version(file)
        assert kept == _described_afresh(source, file)
    costs = sql._DESCRIBED[sql.file_reader_sql(sources[1], files[1].resolve())][1]
    assert [c for c, _ in costs] == ["day", "cost", "tags", "extra"]


def test_rows_that_do_not_fit_their_header_are_told_apart_from_an_unreadable_header(tmp_path):
    """The fallback: the sampled read fails, so the header is read alone (a second open); a
    readable header leaves the message to the rows' check, an unreadable one says so with its hint."""
    rows = [(f"2026-10-{1 + i % 28:02d}", i) for i in range(30_000)] + [("2026-10-02", "abc")]
    write_csv(tmp_path / "late.csv", ["date", "amount"], rows)  # amount sniffed as a number
    (tmp_path / "bad.parquet").write_bytes(b"not a parquet file at all")
    path = _write(
        tmp_path,
        """
        report: {id: t, title: T, timezone: Europe/Paris, locale: en_US}
        sources:
          late: {type: csv, path: late.csv, date_column: date}
          bad: {type: parquet, path: bad.parquet, date_column: date}
        metrics:
          x: {source: late, agg: sum, column: amount}
          y: {source: bad, agg: sum, column: amount}
        kpis:
          x: {formula: x}
          y: {formula: y}
        """,
    )
    bad, late = tmp_path / "bad.parquet", tmp_path / "late.csv"
    with pytest.raises(ConfigError) as caught, opens(late, bad) as counted:
        load_config(path, env={})
    config = load_config(path, env={}, check_data=False)
    assert counted == {  # the rows, then the header alone (to say which of them is unreadable)
        file.name: _one_read(config.sources[name], file) + _one_sniff(config.sources[name], file)
        for name, file in (("late", late), ("bad", bad))
    }
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:4:27: sources.late.path: cannot read late.csv: Conversion Error: CSV Error on Line: 30002",
        f"{path}:5:30: sources.bad.path: cannot read {bad}: Invalid Input Error: No magic bytes found "
        f"at end of file '{bad}'; check the csv options (delimiter, encoding) or the file itself",
    ]


def test_a_source_of_only_a_header_does_not_make_the_next_source_unreadable(tmp_path):
    """Each source's rows get their own table: an empty one used to leave its table's name taken,
    and the next source failed with 'Table with name "t0" already exists'."""
    write_csv(tmp_path / "empty.csv", ["date", "amount"], [])
    write_csv(tmp_path / "full.csv", ["date", "amount"], [("2026-10-01", 5)])
    path = _write(
        tmp_path,
        """
        report: {id: t, title: T, timezone: Europe/Paris, locale: en_US}
        sources:
          empty: {type: csv, path: empty.csv, date_column: date}
          full: {type: csv, path: full.csv, date_column: date}
        metrics:
          x: {source: empty, agg: sum, column: amount}
          y: {source: full, agg: sum, column: amount}
        kpis:
          x: {formula: x}
          y: {formula: y}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:4:28: sources.empty.path: empty.csv has no data rows (only a header); "
        "export the data again; a report needs rows to count"
    ]


def test_arithmetic_is_checked_without_listing_duckdbs_functions_and_other_functions_still_are():
    """The demo's expressions use operators only (``sessions * duree_moyenne``): DuckDB's list of
    functions, 10-30 ms to make, is not made. Each operator is a scalar function in that list, so
    the shortcut lets through exactly what the list would; any other function is judged by it."""
    from reporter.config import sqlexpr
    from tests.conftest import DEMO

    sqlexpr._functions.cache_clear()
    load_config(DEMO, env={})
    assert sqlexpr._functions.cache_info().misses == 0  # the list was never made

    scalar, _aggregate, table = sqlexpr._functions()
    assert scalar >= sqlexpr.OPERATORS
    assert not sqlexpr.OPERATORS & (table | sqlexpr._QUADRATIC | frozenset(sqlexpr._SIZED) | sqlexpr._FORMATS)
    assert sqlexpr.check_expression("-a * b + a / b - a // b + a % b", ["a", "b"]) == [
        "a",
        "b",
        "a",
        "b",
        "a",
        "b",
        "a",
        "b",
    ]
    for text, message in [
        ("sum(a)", "aggregate function sum() is not allowed here; the metric's agg aggregates"),
        (
            "read_csv('x')",
            "table function read_csv() is not allowed; an expression may only use this source's own columns",
        ),
        ("getenv('HOME')", "function getenv() is not allowed"),
        ("main.abs(a)", "qualified function names are not allowed: abs"),
    ]:
        with pytest.raises(sqlexpr.ExpressionError) as caught:
            sqlexpr.check_expression(text, ["a"])
        assert str(caught.value) == message
