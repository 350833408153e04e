# ruff: noqa: E501  (the expected messages are long lines, kept whole to be read as printed)
"""A data file from elsewhere: what its values may do to the outputs, and what they may not.

- Text that a spreadsheet would evaluate (``=``, ``+``, ``-``, ``@``, tab, CR at the start) is
  written as text, with a ``'`` in front, in the XLSX workbook and in the CSV attached inside the
  PDF; control characters XLSX cannot store become U+FFFD; numbers stay numbers. Each rule is
  checked on the real files of a real ``reporter run``, read back with openpyxl and pypdf.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import openpyxl
import pypdf
import pytest
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from reporter.cli import main
from tests.conftest import write_csv

NOW = dt.datetime(2026, 11, 24, 8, tzinfo=dt.UTC)

YAML = """\
report:
  id: hostile
  title: Sales
  timezone: UTC
sources:
  sales: {type: parquet, path: sales.parquet, date_column: date}
metrics:
  revenue: {source: sales, agg: sum, column: amount}
kpis:
  revenue: {formula: revenue, format: currency}
breakdowns:
  - {kpi: revenue, by: region, pdf_rows: 1}
quality: {require_complete_period: false}
delivery:
  email:
    from: Reports <reports@acme.test>
    to: [boss@acme.test]
    subject: Sales
    attach: [pdf, xlsx]
"""


def write_parquet(path: Path, columns: str, rows: list[tuple[object, ...]]) -> None:
    """A Parquet file written by DuckDB (``columns``: its SQL column list), values exactly as given."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({columns})")
    con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(rows[0]))})", rows)
    con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    con.close()


# data value → (amount, the text both spreadsheet outputs must hold)
CELLS = {
    "hyperlink": ('=HYPERLINK("http://x"&B2,"Open")', 10, '\'=HYPERLINK("http://x"&B2,"Open")'),
    "dde": ("=cmd|' /C calc'!A0", 20, "'=cmd|' /C calc'!A0"),
    "dde without =": ("cmd|' /C calc'!A0", 21, "cmd|' /C calc'!A0"),
    "plus": ("+1", 30, "'+1"),
    "minus": ("-2+3", 40, "'-2+3"),
    "at": ("@SUM(A1)", 50, "'@SUM(A1)"),
    "tab": ("\tTab", 60, "'\tTab"),
    "carriage return": ("\rCR", 70, "'\rCR"),
    "control character": ("Bell\x07here", 80, "Bell\ufffdhere"),
    "control character then =": ("\x00=1+1", 90, "\ufffd=1+1"),
}
NEGATIVE = ("Refunds", -40.5)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[openpyxl.Workbook, dict[str, list[str]], str]:
    """One real run over the hostile values: the workbook read back, the breakdown's CSV taken
    out of the real PDF (key → its row), and the CSV's text."""
    work = tmp_path_factory.mktemp("hostile")
    rows = [("2026-10-01", amount, value) for value, amount, _ in CELLS.values()]
    rows.append(("2026-10-02", NEGATIVE[1], NEGATIVE[0]))
    write_parquet(work / "sales.parquet", "date DATE, amount DOUBLE, region VARCHAR", rows)
    (work / "report.yaml").write_text(YAML, encoding="utf-8")
    out = work / "out"
    code = main(["run", str(work / "report.yaml"), "--period", "2026-10", "--output", str(out), "--no-send"])
    assert code == 0
    folder = out / "hostile" / "2026-10"
    book = openpyxl.load_workbook(folder / "hostile_2026-10.xlsx")
    attachments = pypdf.PdfReader(folder / "hostile_2026-10.pdf").attachments
    text = attachments["revenue_by_region.csv"][0].decode("utf-8")
    table = list(csv.reader(io.StringIO(text, newline="")))
    assert table[0] == ["region", "revenue", "other"]
    return book, {r[0]: r for r in table[1:] if r}, text


def breakdown_sheet(book: openpyxl.Workbook) -> dict[object, tuple[openpyxl.cell.Cell, openpyxl.cell.Cell]]:
    sheet = book["revenue by region"]
    return {r[0].value: (r[0], r[1]) for r in sheet.iter_rows(min_row=2)}


@pytest.mark.parametrize("case", list(CELLS))
def test_spreadsheet_outputs_write_hostile_text_as_text(outputs, case):
    book, csv_rows, _text = outputs
    _value, amount, expected = CELLS[case]
    key, number = breakdown_sheet(book)[expected]
    assert key.data_type == "s"
    assert key.value == expected
    assert (number.data_type, number.value) == ("n", amount)
    assert csv_rows[expected] == [expected, repr(float(amount)), "0"]


def test_no_cell_of_the_workbook_is_a_formula_or_holds_a_control_character(outputs):
    book, _csv_rows, _text = outputs
    cells = [c for sheet in book for row in sheet.iter_rows() for c in row if c.value is not None]
    assert len(cells) > 50
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    assert [
        c.coordinate for c in cells if isinstance(c.value, str) and ILLEGAL_CHARACTERS_RE.search(c.value)
    ] == []


def test_a_negative_number_stays_a_number(outputs):
    book, csv_rows, text = outputs
    key, number = breakdown_sheet(book)[NEGATIVE[0]]
    assert (key.data_type, number.data_type, number.value) == ("s", "n", NEGATIVE[1])
    assert csv_rows[NEGATIVE[0]] == [NEGATIVE[0], "-40.5", "0"]
    assert "\r\nRefunds,-40.5,0\r\n" in text


def test_the_pdf_shows_a_control_character_as_a_replacement_character(tmp_path, capsys):
    """The same rule in the PDF: U+0007 in a key is printed as U+FFFD (the fonts have no glyph
    for a control character: WeasyPrint would draw an empty box and warn)."""
    write_parquet(
        tmp_path / "sales.parquet",
        "date DATE, amount DOUBLE, region VARCHAR",
        [("2026-10-01", 80, "Bell\x07here"), ("2026-10-02", 5, "North")],
    )
    (tmp_path / "report.yaml").write_text(YAML, encoding="utf-8")
    out = tmp_path / "out"
    code = main(
        ["run", str(tmp_path / "report.yaml"), "--period", "2026-10", "--output", str(out), "--no-send"]
    )
    err = capsys.readouterr().err
    assert code == 0
    assert "U+0007" not in err
    reader = pypdf.PdfReader(out / "hostile" / "2026-10" / "hostile_2026-10.pdf")
    text = "".join(page.extract_text() for page in reader.pages)
    assert "Bell\ufffdhere" in text
    assert "\x07" not in text


# ---------------------------------------------------------------------------------------------
# A breakdown over a column with millions of values: counted in the database and capped, and a
# `top` breakdown ranked inside the query.

BIG_KEYS = 2_000_000
BIG_YAML = """\
report: {id: big, title: Big, timezone: UTC}
sources:
  sales: {type: parquet, path: big.parquet, date_column: date}
metrics:
  revenue: {source: sales, agg: sum, column: amount}
  orders: {source: sales, agg: count}
kpis:
  avg_order: {formula: revenue / orders}
breakdowns:
  - {kpi: avg_order, by: customer, top: 5BOUND}
insights: {enabled: false}
"""


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000,000 orders in October 2026, each from its own customer k<i>, of i % 1000."""
    work = tmp_path_factory.mktemp("big")
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT DATE '2026-10-01' + CAST(i % 31 AS INTEGER) AS date, CAST(i % 1000 AS DOUBLE) AS amount, "
        f"'k' || i AS customer FROM range({BIG_KEYS}) t(i)) TO '{work / 'big.parquet'}' (FORMAT parquet)"
    )
    con.close()
    return work


def run_big(work: Path, bound: str) -> tuple[int, float]:
    (work / "report.yaml").write_text(BIG_YAML.replace("BOUND", bound), encoding="utf-8")
    started = time.monotonic()
    code = main(
        ["run", str(work / "report.yaml"), "--period", "2026-10", "--output", str(work / "out"), "--no-send"]
    )
    return code, time.monotonic() - started


def test_a_breakdown_over_millions_of_keys_stops_at_max_keys_before_fetching_them(big, capsys):
    code, took = run_big(big, "")
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err[-1] == (
        "reporter: FAILED: report.yaml: breakdowns[0]: avg_order by customer: column 'customer' holds "
        "2,000,000 distinct values in 2026-10 (source 'sales'), more than max_keys (100,000); break down "
        "by a column with fewer values, or raise breakdowns[0].max_keys"
    )
    assert took < 60  # measured 2 to 8 s on a shared 2-core machine (main: no limit, over a minute)


def test_top_over_millions_of_keys_is_ranked_in_the_query(big, caplog):
    caplog.set_level(logging.DEBUG, logger="reporter")
    code, took = run_big(big, ", max_keys: 3000000")
    assert code == 0
    assert took < 60  # measured 6 to 13 s on a shared 2-core machine (main: over a minute)
    assert "breakdown avg_order_by_customer: the best 10 keys ranked in the query" in caplog.messages
    data = json.loads((big / "out" / "big" / "2026-10" / "results.json").read_text())
    rows = data["breakdowns"]["avg_order_by_customer"]
    # plain Python: the best value is 999 (i % 1000 == 999), ties in the order of the key's text
    best = sorted(f"k{i}" for i in range(999, BIG_KEYS, 1000))[:5]
    assert [(r["key"], r["value"], r["other"]) for r in rows[:5]] == [(k, 999.0, False) for k in best]
    total = (BIG_KEYS // 1000) * sum(range(1000))
    assert rows[5]["other"] is True
    assert rows[5]["value"] == pytest.approx((total - 5 * 999) / (BIG_KEYS - 5), rel=1e-12)
    assert len(rows) == 6


SMALL_YAML = """\
report: {id: small, title: Small, timezone: UTC}
sources:
  orders: {type: csv, path: orders.csv, date_column: date}
  visits: {type: csv, path: visits.csv, date_column: date}
metrics:
  revenue: {source: orders, agg: sum, column: amount}
  orders: {source: orders, agg: count}
  visits: {source: visits, agg: sum, column: visits}
kpis:
  aov: {formula: revenue / orders}
  conv: {formula: orders / visits}
  cpv: {formula: revenue / visits, direction: down}
  score: {formula: "round(conv * 100, 1) + min(aov, 100) - abs(coalesce(cpv, 0))"}
breakdowns:
  - {kpi: aov, by: channel, top: 3}
  - {kpi: conv, by: channel, top: 3}
  - {kpi: cpv, by: channel, top: 3}
  - {kpi: score, by: channel, top: 2}
insights: {enabled: false}
quality: {require_complete_period: false}
"""


def _kpi(name: str, m: dict[str, float]) -> float | None:
    """The four KPIs of SMALL_YAML in plain Python (a division by zero is null)."""

    def div(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    aov, conv, cpv = (
        div(m["revenue"], m["orders"]),
        div(m["orders"], m["visits"]),
        div(m["revenue"], m["visits"]),
    )
    if name == "score":
        if conv is None or aov is None:
            return None
        return round(conv * 100, 1) + min(aov, 100) - abs(cpv if cpv is not None else 0)
    return {"aov": aov, "conv": conv, "cpv": cpv}[name]


def test_top_rows_ranked_in_the_query_equal_plain_python(tmp_path, caplog):
    """Two sources, keys missing from one of them, null keys, a KPI read through other KPIs, a
    `down` KPI: the top rows and the "other" row, each against plain Python over the rows."""
    from reporter.compute.database import compute
    from reporter.config import load_config
    from reporter.periods import Period

    rng = random.Random(26)
    orders = [
        (
            f"2026-{rng.choice(['09', '10'])}-{rng.randint(1, 28):02d}",
            rng.randint(-50, 500),
            rng.choice([*"abcdefgh", None]),
        )
        for _ in range(400)
    ]
    visits = [
        (
            f"2026-{rng.choice(['09', '10'])}-{rng.randint(1, 28):02d}",
            rng.randint(0, 40),
            rng.choice([*"abcdefz", None]),
        )
        for _ in range(300)
    ]
    write_csv(tmp_path / "orders.csv", ["date", "amount", "channel"], orders)
    write_csv(tmp_path / "visits.csv", ["date", "visits", "channel"], visits)
    (tmp_path / "r.yaml").write_text(SMALL_YAML, encoding="utf-8")
    caplog.set_level(logging.DEBUG, logger="reporter")
    got = compute(load_config(tmp_path / "r.yaml", env={}), Period.parse("2026-10", "month"), NOW).to_dict()
    for name in ("aov", "conv", "cpv", "score"):
        assert (
            f"breakdown {name}_by_channel: the best {6 if name != 'score' else 4} keys ranked in the query"
            in caplog.messages
        )

    def sums(keep: Callable[[str | None], bool]) -> dict[str, float]:
        oct_orders = [o for o in orders if o[0].startswith("2026-10") and keep(o[2])]
        return {
            "revenue": float(sum(o[1] for o in oct_orders)),
            "orders": float(len(oct_orders)),
            "visits": float(sum(v[1] for v in visits if v[0].startswith("2026-10") and keep(v[2]))),
        }

    keys = {o[2] for o in orders if o[0].startswith("2026-10")} | {
        v[2] for v in visits if v[0].startswith("2026-10")
    }
    for name, top, down in (("aov", 3, False), ("conv", 3, False), ("cpv", 3, True), ("score", 2, False)):
        values = {k: _kpi(name, sums(lambda c, k=k: c == k)) for k in keys}
        known = sorted(
            (k for k in keys if values[k] is not None),
            key=lambda k: ((values[k] if down else -values[k]), "" if k is None else k),
        )
        unknown = sorted((k for k in keys if values[k] is None), key=lambda k: "" if k is None else k)
        kept = (known + unknown)[:top]
        rows = got["breakdowns"][f"{name}_by_channel"]
        assert [r["key"] for r in rows] == [*kept, "other"], name
        for row, key in zip(rows, kept, strict=False):
            assert row["value"] == pytest.approx(values[key], rel=1e-12), (name, key)
        other = _kpi(name, sums(lambda c, kept=kept: c not in kept))
        assert rows[-1]["value"] == pytest.approx(other, rel=1e-12), name


@pytest.mark.parametrize("by", ["wait", "at", "date"])
def test_top_keys_of_any_type_are_found_again_after_the_ranking(tmp_path, caplog, by):
    """An interval, a timestamp or a date as the key: the best keys found by the query are
    matched again by their text (an interval's Python text is no SQL interval)."""
    from reporter.compute.database import compute
    from reporter.config import load_config
    from reporter.periods import Period

    con = duckdb.connect()
    con.execute(
        "COPY (SELECT DATE '2026-10-01' + CAST(i % 28 AS INTEGER) AS date, CAST(i AS DOUBLE) AS amount, "
        "INTERVAL (i % 4) DAY AS wait, TIMESTAMP '2026-10-01 10:00:00' + INTERVAL (i % 3) HOUR AS at "
        f"FROM range(40) t(i)) TO '{tmp_path / 's.parquet'}' (FORMAT parquet)"
    )
    con.close()
    (tmp_path / "r.yaml").write_text(
        "report: {id: kinds, title: Kinds, timezone: UTC}\n"
        "sources: {s: {type: parquet, path: s.parquet, date_column: date}}\n"
        "metrics: {revenue: {source: s, agg: sum, column: amount}}\n"
        "kpis: {revenue: {formula: revenue}}\n"
        f"breakdowns: [{{kpi: revenue, by: {by}, top: 1}}]\n"
        "quality: {require_complete_period: false}\n",
        encoding="utf-8",
    )
    caplog.set_level(logging.DEBUG, logger="reporter")
    got = compute(load_config(tmp_path / "r.yaml", env={}), Period.parse("2026-10", "month"), NOW).to_dict()
    assert f"breakdown revenue_by_{by}: the best 2 keys ranked in the query" in caplog.messages
    # plain Python over the 40 rows
    keys = {"wait": lambda i: i % 4, "at": lambda i: i % 3, "date": lambda i: i % 28}[by]
    sums: dict[int, float] = {}
    for i in range(40):
        sums[keys(i)] = sums.get(keys(i), 0.0) + i
    best = max(sums, key=lambda k: sums[k])
    rows = got["breakdowns"][f"revenue_by_{by}"]
    assert [r["value"] for r in rows] == [sums[best], sum(sums.values()) - sums[best]]
    assert rows[1]["other"] is True


def test_a_kpi_too_long_for_sql_is_ranked_after_fetching_its_groups(tmp_path, caplog):
    """KPIs that read a KPI twice, twenty deep, would double their SQL at each level: the keys
    are then ranked in Python (the path is logged), with the same rows."""
    from reporter.compute.database import compute
    from reporter.config import load_config
    from reporter.periods import Period

    write_csv(
        tmp_path / "s.csv",
        ["date", "amount", "channel"],
        [["2026-10-01", 10, "a"], ["2026-10-02", 30, "b"], ["2026-10-03", 20, "c"], ["2026-10-04", 5, "a"]],
    )
    chain = "".join(f"  k{n}: {{formula: k{n - 1} + k{n - 1}}}\n" for n in range(1, 21))
    (tmp_path / "r.yaml").write_text(
        "report: {id: deep, title: Deep, timezone: UTC}\n"
        "sources: {s: {type: csv, path: s.csv, date_column: date}}\n"
        "metrics: {revenue: {source: s, agg: sum, column: amount}}\n"
        f"kpis:\n  k0: {{formula: revenue}}\n{chain}"
        "breakdowns: [{kpi: k20, by: channel, top: 1}]\n"
        "quality: {require_complete_period: false}\n",
        encoding="utf-8",
    )
    caplog.set_level(logging.DEBUG, logger="reporter")
    started = time.monotonic()
    got = compute(load_config(tmp_path / "r.yaml", env={}), Period.parse("2026-10", "month"), NOW).to_dict()
    assert time.monotonic() - started < 30
    assert (
        "breakdown k20_by_channel: keys ranked after fetching every group (the KPI is too long in SQL)"
        in caplog.messages
    )
    rows = [(r["key"], r["value"]) for r in got["breakdowns"]["k20_by_channel"]]
    assert rows == [("b", 30.0 * 2**20), ("other", 35.0 * 2**20)]


def test_a_pushed_down_source_is_capped_and_ranked_after_fetching_its_groups(tmp_path, caplog):
    """An SQL source whose aggregates run in its database (SQLite here): the distinct keys are
    counted there too, and a top breakdown is ranked once its groups are back."""
    import sqlite3

    from reporter.compute.database import compute
    from reporter.config import load_config
    from reporter.errors import RunError
    from reporter.periods import Period

    rows = [
        ("2026-10-01", 10.0, "a"),
        ("2026-10-02", 30.0, "b"),
        ("2026-10-03", 20.0, "c"),
        ("2026-10-04", 5.0, None),
    ]
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        db.execute("CREATE TABLE sales (d TEXT, amount REAL, channel TEXT)")
        db.executemany("INSERT INTO sales VALUES (?, ?, ?)", rows)
    operator = {"REPORTER_CONNECTION_S": f"sqlite:///{tmp_path / 'db.sqlite'}"}  # the operator's connection
    text = (
        "report: {id: remote, title: Remote, timezone: UTC}\n"
        "sources: {s: {type: sql, connection: s, table: sales, date_column: d}}\n"
        "metrics: {revenue: {source: s, agg: sum, column: amount}}\n"
        "kpis: {revenue: {formula: revenue}}\n"
        "breakdowns: [{kpi: revenue, by: channel, top: 1LIMIT}]\n"
        "quality: {require_complete_period: false}\n"
    )
    (tmp_path / "r.yaml").write_text(text.replace("LIMIT", ""), encoding="utf-8")
    caplog.set_level(logging.DEBUG, logger="reporter")
    got = compute(
        load_config(tmp_path / "r.yaml", env=operator), Period.parse("2026-10", "month"), NOW
    ).to_dict()
    assert (
        "breakdown revenue_by_channel: keys ranked after fetching every group (pushed down, or key types differ)"
        in caplog.messages
    )
    assert [(r["key"], r["value"]) for r in got["breakdowns"]["revenue_by_channel"]] == [
        ("b", 30.0),
        ("other", 35.0),
    ]
    (tmp_path / "r.yaml").write_text(text.replace("LIMIT", ", max_keys: 3"), encoding="utf-8")
    with pytest.raises(RunError) as caught:
        compute(load_config(tmp_path / "r.yaml", env=operator), Period.parse("2026-10", "month"), NOW)
    assert str(caught.value) == (
        "r.yaml: breakdowns[0]: revenue by channel: column 'channel' holds 4 distinct values in 2026-10 "
        "(source 's'), more than max_keys (3); break down by a column with fewer values, or raise "
        "breakdowns[0].max_keys"
    )


# ---------------------------------------------------------------------------------------------
# Nested columns and out-of-range dates: located errors, never an internal one.

PLAIN_YAML = """\
report: {id: plain, title: Plain, timezone: UTC}
sources:
  sales: {type: TYPE, path: FILE, date_column: date}
metrics:
  revenue: {source: sales, agg: sum, column: amount}
kpis:
  revenue: {formula: revenue, direction: up, label: Revenue}
breakdowns:
  - {kpi: revenue, by: BY, label: Key}
quality: {require_complete_period: false}
"""


def plain_report(work: Path, file: str, by: str = "region") -> Path:
    kind = file.rsplit(".", 1)[1]
    path = work / "r.yaml"
    path.write_text(
        PLAIN_YAML.replace("TYPE", kind).replace("FILE", file).replace("BY", by), encoding="utf-8"
    )
    return path


NESTED = {
    "list": ("[i % 3, 1]", "tags", "lists (type BIGINT[])"),
    "struct": ("{'a': i % 2}", "info", "structures (type STRUCT(a BIGINT))"),
}


def write_nested(work: Path) -> None:
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT DATE '2026-10-01' + CAST(i % 31 AS INTEGER) AS date, CAST(i AS DOUBLE) AS amount, "
        f"{NESTED['list'][0]} AS tags, {NESTED['struct'][0]} AS info FROM range(50) t(i)) "
        f"TO '{work / 'nested.parquet'}' (FORMAT parquet)"
    )
    con.close()


@pytest.mark.parametrize("case", list(NESTED))
def test_a_nested_parquet_column_as_breakdown_key_is_a_located_validation_error(tmp_path, capsys, case):
    write_nested(tmp_path)
    _sql, column, kind = NESTED[case]
    config = plain_report(tmp_path, "nested.parquet", column)
    code = main(["validate", str(config)])
    err = capsys.readouterr().err.replace(str(tmp_path), "T").splitlines()
    assert code == 2
    assert err == [
        f"T/r.yaml:9:24: breakdowns[0].by: column '{column}' of source 'sales' holds {kind}, which cannot "
        "be grouped; group by a column of text, numbers or dates (add one to the data if needed)",
        "1 error: nothing was run or sent.",
    ]


def test_a_nested_key_that_validation_did_not_see_stops_the_run_with_a_message(tmp_path):
    """A source validation cannot read (an SQL query) may still hand over an array column: the
    run stops with a message (here a Parquet source loaded without the data checks)."""
    from reporter.compute.database import compute
    from reporter.config import load_config
    from reporter.errors import RunError
    from reporter.periods import Period

    write_nested(tmp_path)
    config = load_config(plain_report(tmp_path, "nested.parquet", "tags"), env={}, check_data=False)
    with pytest.raises(RunError) as caught:
        compute(config, Period.parse("2026-10", "month"), NOW)
    assert str(caught.value) == (
        "source 'sales': column 'tags' holds lists, which cannot be grouped; group by a column of text, numbers or dates"
    )


def test_a_date_in_year_12026_is_a_located_validation_error(tmp_path, capsys):
    write_csv(
        tmp_path / "sales.csv",
        ["date", "amount", "region"],
        [["2026-10-01", 5, "a"], ["12026-10-02", 7, "b"]],
    )
    code = main(["validate", str(plain_report(tmp_path, "sales.csv"))])
    err = capsys.readouterr().err.replace(str(tmp_path), "T").splitlines()
    assert code == 2
    assert err == [
        "T/r.yaml:3:52: sources.sales.date_column: line 3 of sales.csv has a date outside the years 1 to 9999 "
        "in column 'date'; correct the date in the file (a year such as 12026 is a typing error)",
        "1 error: nothing was run or sent.",
    ]


def test_a_date_in_year_12026_after_the_validated_sample_stops_the_run_at_its_line(tmp_path, capsys):
    from reporter.config.guards import SAMPLE_ROWS

    bad = SAMPLE_ROWS + 50_000  # 0-based: past the rows validation samples
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT CASE WHEN i = {bad} THEN '12026-10-02' ELSE CAST(DATE '2026-10-01' + CAST(i % 31 AS INTEGER) "
        f"AS VARCHAR) END AS date, 1.0 AS amount, 'r' || (i % 5) AS region FROM range({bad + 1000}) t(i)) "
        f"TO '{tmp_path / 'sales.csv'}' (HEADER)"
    )
    con.close()
    config = plain_report(tmp_path, "sales.csv")
    code = main(["run", str(config), "--period", "2026-10", "--output", str(tmp_path / "out"), "--no-send"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err[-1] == (
        "reporter: FAILED: source 'sales': 1 row has a date outside the years 1 to 9999 in column 'date' "
        f"(the first: line {bad + 2} of sales.csv); correct the date in the file (a year such as 12026 is a typing error)"
    )
    assert not list((tmp_path / "out").glob("**/*.pdf"))
