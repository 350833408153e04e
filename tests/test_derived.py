"""Derived sources (`type: derived`): one SELECT over other sources of the same file.

The numbers are checked against a plain-Python join of the CSV files the test writes; hostile
`sql` is refused at validation with its file:line and never runs (no file written, no marker
read); every file behind a derived source is hashed in results.json, the PDF's evidence and its
appendix."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections import defaultdict
from pathlib import Path

import pytest

from reporter.cli import main
from reporter.compute.database import compute
from reporter.config import load_config
from reporter.periods import Period
from tests.conftest import write_csv

NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
ORIGINS = ["organic_search", "paid_search", "social", "email", "referral"]


def _leads_and_deals(seed: int = 7) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(mql_id, origin, first_contact_date) and (mql_id, seller_id, won_date): about a quarter
    of the leads close, some weeks after their first contact (often in a later month)."""
    rng = random.Random(seed)
    leads, deals = [], []
    day = dt.date(2025, 6, 1)
    n = 0
    while day <= dt.date(2026, 10, 31):
        for _ in range(rng.randint(0, 4)):
            n += 1
            mql = f"m{n:05d}"
            leads.append((mql, rng.choice(ORIGINS), day.isoformat()))
            if rng.random() < 0.27:
                won = day + dt.timedelta(days=rng.randint(0, 60))
                deals.append((mql, rng.choice(["s1", "s2", "s3"]), won.isoformat()))
        day += dt.timedelta(days=1)
    rng.shuffle(deals)
    return leads, deals


JOINED = """
report: {id: funnel, title: Funnel, timezone: Europe/Paris}
sources:
  leads: {type: csv, path: data/leads.csv, date_column: first_contact_date}
  deals: {type: csv, path: data/deals.csv, date_column: won_date}
  funnel:
    type: derived
    from: [leads, deals]
    sql: |
      select l.mql_id, l.origin, l.first_contact_date, d.won_date, d.seller_id
      from leads l left join deals d on d.mql_id = l.mql_id
    date_column: first_contact_date
metrics:
  leads: {source: funnel, agg: count}
  won: {source: funnel, agg: count, where: "won_date is not null"}
kpis:
  conversion: {formula: won / leads, format: percent}
breakdowns:
  - {kpi: conversion, by: origin}
"""


def _write_funnel(tmp_path: Path) -> tuple[Path, list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    leads, deals = _leads_and_deals()
    write_csv(tmp_path / "data" / "leads.csv", ["mql_id", "origin", "first_contact_date"], leads)
    write_csv(tmp_path / "data" / "deals.csv", ["mql_id", "seller_id", "won_date"], deals)
    path = tmp_path / "funnel.yaml"
    path.write_text(JOINED, encoding="utf-8")
    return path, leads, deals


def _reference(
    leads: list[tuple[str, str, str]], deals: list[tuple[str, str, str]], month: str
) -> tuple[float | None, dict[str, float | None]]:
    """Conversion (won / leads) of the leads first contacted in ``month``, overall and by origin,
    by a plain-Python left join on mql_id."""
    won_by_id = {d[0]: d[2] for d in deals}
    total, won = 0, 0
    by: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for mql, origin, day in leads:
        if day[:7] != month:
            continue
        total += 1
        closed = mql in won_by_id
        won += closed
        by[origin][0] += 1
        by[origin][1] += closed
    rate = won / total if total else None
    return rate, {o: w / t for o, (t, w) in by.items()}


def test_conversion_by_lead_origin_equals_a_plain_python_join_every_month(tmp_path):
    path, leads, deals = _write_funnel(tmp_path)
    config = load_config(path)
    months = sorted({d[2][:7] for d in leads})
    assert len(months) == 17
    for month in months:
        period = Period.parse(month, "month")
        results = compute(config, period, NOW)
        expected, by_origin = _reference(leads, deals, month)
        got = results.kpis["conversion"].value
        assert got == pytest.approx(expected), month
        rows = {r.key: r.value for r in results.breakdowns["conversion_by_origin"]}
        assert rows == pytest.approx(by_origin), month
    # the derived source is listed with the files behind it, each with its own hash
    funnel = next(s for s in results.sources if s.name == "funnel")
    assert funnel.kind == "derived"
    assert funnel.rows == len(leads)
    assert [(f.path, f.sha256) for f in funnel.files] == [
        ("data/leads.csv", hashlib.sha256((tmp_path / "data" / "leads.csv").read_bytes()).hexdigest()),
        ("data/deals.csv", hashlib.sha256((tmp_path / "data" / "deals.csv").read_bytes()).hexdigest()),
    ]


FIRST_PURCHASE = """
report: {id: customers, title: Customers}
sources:
  orders: {type: csv, path: orders.csv, date_column: order_date}
  firsts:
    type: derived
    from: [orders]
    sql: |
      select *, order_date = min(order_date) over (partition by customer) as is_first
      from orders
    date_column: order_date
  new_customers:
    type: derived
    from: [firsts]
    sql: select customer, order_date, amount from firsts where is_first
    date_column: order_date
metrics:
  buyers: {source: firsts, agg: count_distinct, column: customer}
  new: {source: firsts, agg: count_distinct, column: customer, where: is_first}
  new_revenue: {source: new_customers, agg: sum, column: amount}
kpis:
  new_share: {formula: new / buyers, format: percent}
  new_revenue: {formula: new_revenue}
"""


def test_first_purchase_over_a_derived_of_a_derived_source(tmp_path):
    rng = random.Random(3)
    orders = []
    for _ in range(400):
        day = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 300))
        orders.append((f"c{rng.randint(1, 60)}", day.isoformat(), rng.randint(5, 90)))
    write_csv(tmp_path / "orders.csv", ["customer", "order_date", "amount"], orders)
    path = tmp_path / "customers.yaml"
    path.write_text(FIRST_PURCHASE, encoding="utf-8")
    config = load_config(path)
    first: dict[str, str] = {}
    for customer, day, _ in orders:
        first[customer] = min(first.get(customer, day), day)
    last_first = max(first.values())[:7]
    for month in [f"2026-{m:02d}" for m in range(1, 11)]:
        results = compute(config, Period.parse(month, "month"), NOW)
        rows = [o for o in orders if o[1][:7] == month]
        buyers = {o[0] for o in rows}
        new = {o[0] for o in rows if first[o[0]] == o[1]}
        assert results.kpis["new_share"].value == pytest.approx(len(new) / len(buyers)), month
        revenue = sum(o[2] for o in rows if first[o[0]] == o[1])
        # new_customers' rows end with the last first purchase: after it, it has no data
        expected = revenue if month <= last_first else None
        assert results.kpis["new_revenue"].value == pytest.approx(expected), month
    assert last_first < "2026-10"  # the months after it were checked too
    # the file behind a derived source of a derived source is listed too
    files = {s.name: [f.path for f in s.files] for s in results.sources}
    assert files == {"orders": [], "firsts": ["orders.csv"], "new_customers": ["orders.csv"]}


# -- hostile sql: refused at validation, never run ----------------------------------------------

_ONE_SELECT = "one SELECT only, found 2 statements (a ';' ends the first)"
_HINT = "a derived source is one SELECT over the sources in 'from' (see Joining sources in the docs)"
# (sql, the message), {marker} a file that must not be read, {dir} the test's folder, {pwned} a
# file that must not be written
HOSTILE = [
    ("select * from read_csv('{marker}')", "table function read_csv() is not allowed"),
    ("select * from read_csv_auto('{marker}')", "table function read_csv_auto() is not allowed"),
    ("select * from read_parquet('{marker}')", "table function read_parquet() is not allowed"),
    ("select * from read_text('{marker}')", "table function read_text() is not allowed"),
    ("select * from glob('{dir}/*')", "table function glob() is not allowed"),
    ("select * from '{marker}'", "'{marker}' reads a file, not a source"),
    ("select * from '{dir}/*.csv'", "'{dir}/*.csv' reads a file, not a source"),
    ('select * from "{marker}"', "'{marker}' reads a file, not a source"),
    (
        "select getenv('HOME') as home, first_contact_date from leads",
        "function getenv() is not allowed: it reads the host, not the sources",
    ),
    (
        "select current_setting('enable_external_access') as s, first_contact_date from leads",
        "function current_setting() is not allowed: it reads the host, not the sources",
    ),
    ("copy (select * from leads) to '{pwned}'", "only a SELECT is allowed, not COPY"),
    ("attach '{pwned}' as x", "only a SELECT is allowed, not ATTACH"),
    ("pragma database_list", "only a SELECT is allowed, not PRAGMA"),
    ("set enable_external_access = true", "only a SELECT is allowed, not SET"),
    ("create table pwned as select * from leads", "only a SELECT is allowed, not CREATE"),
    ("insert into leads values ('m9', 'x', '2026-01-01')", "only a SELECT is allowed, not INSERT"),
    ("update leads set origin = 'x'", "only a SELECT is allowed, not UPDATE"),
    ("drop table leads", "only a SELECT is allowed, not DROP"),
    ("install httpfs", "only a SELECT is allowed, not INSTALL"),
    ("load httpfs", "only a SELECT is allowed, not a command"),
    ("call pragma_version()", "only a SELECT is allowed, not a command"),
    ("describe leads", "only a SELECT is allowed, not DESCRIBE"),
    ("select * from leads; copy (select 1) to '{pwned}'", _ONE_SELECT),
    ("select * from leads /* a comment; */ ; copy leads to '{pwned}'", _ONE_SELECT),
    ("select * from leads -- a comment\n; copy leads to '{pwned}'", _ONE_SELECT),
    ("select * from campaigns", "table 'campaigns' is not in 'from' (deals, leads)"),
    ("select * from leads join pwned p using (mql_id)", "table 'pwned' is not in 'from' (deals, leads)"),
    (
        "select * from information_schema.tables",
        "'information_schema.tables': name a source alone, without a schema",
    ),
    ("select * from duckdb_settings()", "table function duckdb_settings() is not allowed"),
    (
        "select * from query('select * from read_csv(''{marker}'')')",
        "table function query() is not allowed",
    ),
    (
        "with recursive r as (select 1 as n union all select n + 1 from r) select * from r",
        "WITH RECURSIVE is not allowed",
    ),
]


def _age(path: Path) -> float:
    """Set the file's access time two days back (before its modification time): on Linux's
    relatime, any read of it moves the access time to now."""
    import os
    import time

    old = time.time() - 2 * 86400
    os.utime(path, (old, old + 10))
    return path.stat().st_atime


def test_hostile_sql_is_refused_at_validation_with_file_line_and_never_runs(tmp_path, capsys):
    import duckdb

    write_csv(
        tmp_path / "data" / "leads.csv",
        ["mql_id", "origin", "first_contact_date"],
        [("m1", "social", "2026-01-02")],
    )
    write_csv(
        tmp_path / "data" / "deals.csv", ["mql_id", "seller_id", "won_date"], [("m1", "s1", "2026-01-05")]
    )
    write_csv(tmp_path / "data" / "campaigns.csv", ["campaign", "day"], [("c", "2026-01-01")])
    marker = write_csv(tmp_path / "secret" / "marker.csv", ["secret"], [("s3cr3t",)])
    control = write_csv(tmp_path / "secret" / "control.csv", ["secret"], [("s3cr3t",)])
    pwned = tmp_path / "pwned.csv"
    lines = [
        "report: {id: hostile, title: Hostile}",
        "sources:",
        "  leads: {type: csv, path: data/leads.csv, date_column: first_contact_date}",
        "  deals: {type: csv, path: data/deals.csv, date_column: won_date}",
        "  campaigns: {type: csv, path: data/campaigns.csv, date_column: day}",
    ]
    expected: list[str] = []
    for i, (sql, message) in enumerate(HOSTILE):
        text = sql.format(marker=marker, dir=tmp_path, pwned=pwned)
        lines += [
            f"  h{i:02d}:",
            "    type: derived",
            "    from: [leads, deals]",
            "    date_column: first_contact_date",
        ]
        lines.append("    sql: |")
        line = len(lines)  # the sql key's line (1-based)
        lines += [f"      {part}" for part in text.split("\n")]
        expected.append(
            f"{line}:sources.h{i:02d}.sql: {message.format(marker=marker, dir=tmp_path)}; {_HINT}; "
            f"the columns of sources.h{i:02d} are checked once its sql is valid"
        )
    lines += [
        "metrics:",
        "  leads: {source: leads, agg: count}",
        "kpis:",
        "  leads: {formula: leads}",
    ]
    path = tmp_path / "hostile.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(HOSTILE) >= 25
    before = _age(marker)

    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    got = [line.split(":", 2)[1:] for line in err.splitlines() if line.startswith(str(path))]
    assert [f"{n}:{rest.split(': ', 1)[1]}" for n, rest in got] == expected
    assert err.splitlines()[-1] == f"{len(HOSTILE)} errors: nothing was run or sent."

    code = main(["run", str(path), "--period", "2026-01", "--no-send", "--output", str(tmp_path / "out")])
    assert code == 2
    capsys.readouterr()
    assert not pwned.exists()
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "hostile.yaml", "secret"]
    assert marker.stat().st_atime == before  # never read
    # the probe works: a plain DuckDB read of the control file moves its access time
    was = _age(control)
    duckdb.connect().execute(f"select * from read_csv('{control}')").fetchall()
    assert control.stat().st_atime != was


def _validate(tmp_path: Path, text: str, capsys) -> list[str]:
    write_csv(
        tmp_path / "data" / "leads.csv",
        ["mql_id", "origin", "first_contact_date"],
        [("m1", "social", "2026-01-02")],
    )
    write_csv(
        tmp_path / "data" / "deals.csv", ["mql_id", "seller_id", "won_date"], [("m1", "s1", "2026-01-05")]
    )
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    return [line.replace(str(path), "r.yaml") for line in capsys.readouterr().err.splitlines()]


HEAD = """report: {id: funnel, title: Funnel}
sources:
  leads: {type: csv, path: data/leads.csv, date_column: first_contact_date}
  deals: {type: csv, path: data/deals.csv, date_column: won_date}
"""
TAIL = """metrics:
  n: {source: leads, agg: count}
kpis:
  n: {formula: n}
"""


def test_each_mistake_in_a_derived_source_is_named_at_its_key(tmp_path, capsys):
    lines = _validate(
        tmp_path,
        HEAD
        + """  a:
    type: derived
    from: [b]
    sql: select * from b
    date_column: won_date
  b:
    type: derived
    from: [a, leads]
    sql: select * from a
    date_column: won_date
  c:
    type: derived
    from: [leads, dealz]
    sql: select * from leads
    date_column: won_date
    path: x.csv
  d: {type: derived, date_column: won_date}
  e: {type: csv, path: data/leads.csv, date_column: first_contact_date, sql: select 1, from: [leads]}
"""
        + TAIL,
        capsys,
    )
    assert lines == [
        "r.yaml:7:11: sources.a.from: derived sources read each other in a cycle: a → b → a; "
        "a derived source may read another derived source, never itself through others",
        "r.yaml:17:11: sources.c.from: unknown source 'dealz'; did you mean 'deals'?",
        "r.yaml:20:11: sources.c.path: 'path' is not for type derived; use from and sql",
        "r.yaml:21:6: sources.d: a derived source needs 'from'; "
        "from: [leads, deals], the sources its sql reads",
        "r.yaml:21:6: sources.d: a derived source needs 'sql'; "
        "sql: select ... from one of the sources in 'from'",
        "r.yaml:22:78: sources.e.sql: 'sql' is only for type derived",
        "r.yaml:22:94: sources.e.from: 'from' is only for type derived",
        "7 errors: nothing was run or sent.",
    ]


def test_a_refused_query_says_its_columns_wait_for_it(tmp_path, capsys):
    # the date column and the metric's column cannot be checked without the query's columns:
    # the first round says so instead of leaving them for a silent second round
    lines = _validate(
        tmp_path,
        HEAD
        + """  e:
    type: derived
    from: [leads]
    sql: >-
      select l.*, d.won_date from leads l join deals d using (mql_id)
      join read_csv('x.csv') x using (mql_id)
    date_column: won_dat
  f: {type: derived, from: [leads, dealz], sql: select * from leads, date_column: first_contact}
metrics:
  m: {source: e, agg: sum, column: origin_x}
kpis:
  m: {formula: m}
""",
        capsys,
    )
    assert lines == [
        "r.yaml:8:10: sources.e.sql: table 'deals' is not in 'from' (leads); a derived source is one SELECT "
        "over the sources in 'from' (see Joining sources in the docs); the columns of sources.e are checked "
        "once its sql is valid",
        "r.yaml:8:10: sources.e.sql: table function read_csv() is not allowed; a derived source is one "
        "SELECT over the sources in 'from' (see Joining sources in the docs)",
        "r.yaml:12:28: sources.f.from: unknown source 'dealz'; did you mean 'deals'?; the columns of "
        "sources.f are checked once the source is valid",
        "3 errors: nothing was run or sent.",
    ]


def test_a_derived_query_is_checked_against_its_sources_columns(tmp_path, capsys):
    lines = _validate(
        tmp_path,
        HEAD
        + """  d:
    type: derived
    from: [leads, deals]
    sql: select l.nope from leads l
    date_column: won_date
  e:
    type: derived
    from: [leads, deals]
    sql: select l.*, d.won_date from leads l left join deals d using (mql_id)
    date_column: won_dat
metrics:
  n: {source: e, agg: count, where: "origin2 = 'x'"}
  s: {source: e, agg: count_distinct, column: seller_id}
kpis:
  n: {formula: n}
""",
        capsys,
    )
    assert lines == [
        "r.yaml:8:10: sources.d.sql: the query does not run on its sources' columns: Binder Error: "
        'Table "l" does not have a column named "nope"; the columns are leads: mql_id, origin, '
        "first_contact_date; deals: mql_id, seller_id, won_date",
        "r.yaml:14:18: sources.e.date_column: column 'won_dat' is not among the query's columns; "
        "did you mean 'won_date'?",
        "r.yaml:16:37: metrics.n.where: unknown column 'origin2'; did you mean 'origin'?",
        "r.yaml:17:47: metrics.s.column: column 'seller_id' not found in source 'e'; "
        "columns are: first_contact_date, mql_id, origin, won_date",
        "4 errors: nothing was run or sent.",
    ]


def test_every_file_behind_a_derived_source_is_hashed_in_results_pdf_evidence_and_appendix(tmp_path, capsys):
    import io
    import json

    import pypdf

    from reporter.delivery.archive import attachments_of

    path, _, _ = _write_funnel(tmp_path)
    text = JOINED.replace("timezone: Europe/Paris}", "timezone: Europe/Paris, locale: fr_FR}")
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", str(path), "--period", "2026-10", "--no-send", "--output", str(out)]) == 0
    capsys.readouterr()
    hashes = {
        name: hashlib.sha256((tmp_path / "data" / name).read_bytes()).hexdigest()
        for name in ("leads.csv", "deals.csv")
    }
    files = [
        {"path": "data/leads.csv", "sha256": hashes["leads.csv"]},
        {"path": "data/deals.csv", "sha256": hashes["deals.csv"]},
    ]
    folder = out / "funnel" / "2026-10"
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    funnel = next(s for s in results["sources"] if s["name"] == "funnel")
    assert (funnel["kind"], funnel["location"], funnel["files"]) == ("derived", "leads, deals", files)
    pdf = (folder / "funnel_2026-10.pdf").read_bytes()
    evidence = json.loads(attachments_of(pdf)["provenance.json"])
    funnel = next(s for s in evidence["sources"] if s["name"] == "funnel")
    assert funnel["files"] == files
    words = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    appendix = " ".join(words[words.index("Provenance des données") :].split())
    row = appendix[appendix.index("funnel") : appendix.index("Contrôles de qualité")]
    assert "leads, deals" in row  # its location: the sources it reads
    # the derived source's row lists each file behind it, its hash (split across lines) after it
    flat = row.replace(" ", "")
    assert flat.index("data/leads.csv") < flat.index(hashes["leads.csv"]) < flat.index("data/deals.csv")
    assert flat.index("data/deals.csv") < flat.index(hashes["deals.csv"])


def _doc_files(tmp_path: Path) -> str:
    """Write each file that docs/joining-sources.md shows (a line `name`: before a code block)
    into tmp_path; return the page."""
    import re

    from tests.conftest import ROOT

    page = (ROOT / "docs" / "joining-sources.md").read_text(encoding="utf-8")
    found = re.findall(r"^`([\w/.]+)`:\n\n```\w*\n(.*?)```", page, flags=re.M | re.S)
    assert [name for name, _ in found] == [
        "data/leads.csv",
        "data/deals.csv",
        "funnel.yaml",
        "conversion.yaml",  # the Olist example (tests/test_olist.py checks it)
        "data/orders.csv",
        "customers.yaml",
    ]
    for name, text in found:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return page


def test_the_joining_sources_page_examples_give_the_numbers_it_states(tmp_path, capsys):
    page = _doc_files(tmp_path)
    leads = [tuple(r.split(",")) for r in (tmp_path / "data" / "leads.csv").read_text().splitlines()[1:]]
    deals = [tuple(r.split(",")) for r in (tmp_path / "data" / "deals.csv").read_text().splitlines()[1:]]
    funnel = load_config(tmp_path / "funnel.yaml")
    for month, stated in (("2026-10", 1 / 3), ("2026-09", 0.5)):
        results = compute(funnel, Period.parse(month, "month"), NOW)
        expected, by_origin = _reference(leads, deals, month)
        assert results.kpis["conversion"].value == pytest.approx(expected) == pytest.approx(stated)
        rows = {r.key: r.value for r in results.breakdowns["conversion_by_origin"]}
        assert rows == pytest.approx(by_origin)
    assert rows == pytest.approx({"organic_search": 1.0, "paid_search": 0.0, "social": 0.0})  # September
    assert "October 2026 has six leads" in page
    assert "paid_search 50 % (1 of 2)" in " ".join(page.split())
    customers = load_config(tmp_path / "customers.yaml")
    results = compute(customers, Period.parse("2026-10", "month"), NOW)
    assert results.kpis["new_customer_share"].value == pytest.approx(0.5)
    assert results.kpis["returning_buyers"].value == 2
    assert results.kpis["new_revenue"].value == 290
    assert "first purchases bring 290" in " ".join(page.split())
    # the error the page shows is the one validate prints
    text = (tmp_path / "funnel.yaml").read_text(encoding="utf-8")
    (tmp_path / "funnel.yaml").write_text(text.replace("l.origin", "l.orgin"), encoding="utf-8")
    assert main(["validate", str(tmp_path / "funnel.yaml")]) == 2
    shown = capsys.readouterr().err.splitlines()[0].replace(str(tmp_path) + "/", "")
    assert shown in page


# -- pushdown: the database does the join ------------------------------------------------------


def _db_funnel(tmp_path: Path, leads: str, deals: str, *, pushdown: bool = True) -> Path:
    """The funnel report over two sql sources of the operator's connection ``db``
    (REPORTER_CONNECTION_DB): the leads as a ``table``, the deals through a ``query``."""
    text = JOINED.replace(
        "leads: {type: csv, path: data/leads.csv, date_column: first_contact_date}",
        f"leads: {{type: sql, connection: db, table: {leads}, date_column: first_contact_date}}",
    ).replace(
        "deals: {type: csv, path: data/deals.csv, date_column: won_date}",
        f"deals: {{type: sql, connection: db, query: 'select * from {deals}', date_column: won_date}}",
    )
    if not pushdown:
        text = text.replace("    type: derived\n", "    type: derived\n    pushdown: false\n")
    path = tmp_path / "db.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _check_joined_by(
    path: Path, env: dict[str, str], leads, deals, *, pushdown: bool, names: tuple[str, str]
) -> None:
    """Every month's conversion and breakdown equal the plain-Python join; with pushdown the
    database receives the join (both inputs in one statement, neither read whole), without it
    each input is read whole and joined in reporter."""
    import sqlalchemy as sa

    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)
    try:
        config = load_config(path, env=env)
        for month in ("2025-06", "2026-01", "2026-10"):
            got = compute(config, Period.parse(month, "month"), NOW)
            expected, by_origin = _reference(leads, deals, month)
            assert got.kpis["conversion"].value == pytest.approx(expected), month
            rows = {r.key: r.value for r in got.breakdowns["conversion_by_origin"]}
            assert rows == pytest.approx(by_origin), month
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
    leads_table, deals_table = names
    joins = [s for s in statements if "LEFT JOIN" in s.upper()]
    whole = {s for s in statements if s in (f"SELECT * FROM {leads_table}", f"select * from {deals_table}")}
    if pushdown:
        assert joins
        assert all(leads_table in s and f"select * from {deals_table}" in s.lower() for s in joins)
        assert "count(" in " ".join(joins).lower()  # the aggregates run on the join, in the database
        assert whole == set()
    else:
        assert joins == []
        assert whole == {f"SELECT * FROM {leads_table}", f"select * from {deals_table}"}
    funnel = next(s for s in got.sources if s.name == "funnel")
    assert funnel.kind == "derived"
    assert len(funnel.files) == 2
    # each input as its own entry shows it: its URL redacted, no hash when its rows stayed in the
    # database, the hash of the rows read otherwise
    shown = {s.name: (s.location, s.sha256) for s in got.sources}
    assert [(f.path, f.sha256) for f in funnel.files] == [shown["leads"], shown["deals"]]
    assert (shown["leads"][1] is None) is pushdown


@pytest.mark.parametrize("pushdown", [True, False])
def test_a_derived_source_over_one_database_is_joined_by_it_with_the_same_numbers(tmp_path, pushdown):
    import sqlite3

    _, leads, deals = _write_funnel(tmp_path)
    db = tmp_path / "crm.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("create table leads (mql_id text, origin text, first_contact_date text)")
        conn.execute("create table deals (mql_id text, seller_id text, won_date text)")
        conn.executemany("insert into leads values (?, ?, ?)", leads)
        conn.executemany("insert into deals values (?, ?, ?)", deals)
    conn.close()
    path = _db_funnel(tmp_path, "leads", "deals", pushdown=pushdown)
    operator = {"REPORTER_CONNECTION_DB": f"sqlite:///{db}"}
    _check_joined_by(path, operator, leads, deals, pushdown=pushdown, names=("leads", "deals"))


@pytest.mark.parametrize("pushdown", [True, False])
def test_postgresql_does_the_join_of_a_derived_source_with_the_same_numbers(tmp_path, pg_url, pushdown):
    import uuid

    import sqlalchemy as sa

    _, leads, deals = _write_funnel(tmp_path)
    tag = uuid.uuid4().hex[:8]
    names = (f"drv_leads_{tag}", f"drv_deals_{tag}")
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(f"create table {names[0]} (mql_id text, origin text, first_contact_date date)")
            )
            conn.execute(sa.text(f"create table {names[1]} (mql_id text, seller_id text, won_date date)"))
            conn.execute(
                sa.text(f"insert into {names[0]} values (:a, :b, cast(:c as date))"),
                [{"a": a, "b": b, "c": c} for a, b, c in leads],
            )
            conn.execute(
                sa.text(f"insert into {names[1]} values (:a, :b, cast(:c as date))"),
                [{"a": a, "b": b, "c": c} for a, b, c in deals],
            )
        path = _db_funnel(tmp_path, names[0], names[1], pushdown=pushdown)
        operator = {"REPORTER_CONNECTION_DB": pg_url}
        _check_joined_by(path, operator, leads, deals, pushdown=pushdown, names=names)
    finally:
        with engine.begin() as conn:
            for name in names:
                conn.execute(sa.text(f"drop table if exists {name}"))
        engine.dispose()


@pytest.mark.parametrize(
    "sql",
    [
        "select * exclude (origin) from leads "
        "qualify row_number() over (partition by origin order by mql_id) = 1",
        "select * from leads where exists (select 1 from deals where deals.mql_id = leads.mql_id)",
        "select l.*, d.won_date from leads l semi join deals d using (mql_id)",
        "with w as (select mql_id, won_date from deals) "
        "select l.*, w.won_date from leads l join w using (mql_id)",
        "select mql_id, first_contact_date, list_sum([1, 2]) as two from leads",  # a built-in macro
        "select mql_id, date_trunc('month', first_contact_date) as first_contact_date from leads "
        "union all select mql_id, won_date from deals",
    ],
)
def test_ordinary_queries_are_accepted(sql):
    from reporter.config.derived import check_sql

    check_sql(sql, ["leads", "deals"])


def test_a_typo_in_a_derived_query_names_the_word_at_fault(tmp_path, capsys):
    """ "selct" used to give sqlglot's internals ("Required keyword: 'expression' missing for
    <class 'sqlglot.expressions.core.Mul'>. Line 1, Col: 12."), which no manager can act on."""
    lines = _validate(
        tmp_path,
        HEAD
        + """  won:
    type: derived
    from: [deals]
    sql: selct * from deals
    date_column: won_date
"""
        + TAIL,
        capsys,
    )
    assert lines == [
        'r.yaml:8:10: sources.won.sql: not valid SQL (syntax error at or near "selct"); a derived source '
        "is one SELECT over the sources in 'from' (see Joining sources in the docs); the columns of "
        "sources.won are checked once its sql is valid",
        "1 error: nothing was run or sent.",
    ]
