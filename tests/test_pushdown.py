"""Pushdown of a sql source's aggregates: the demo's data in PostgreSQL (and SQLite, and a DuckDB
file) gives the same results.json read whole (``pushdown: false``) and pushed down, and the
pushed-down queries return aggregates only."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import duckdb
import pytest

from reporter.compute.database import close_remote, compute, open_database
from reporter.compute.pushdown import RemoteInfo, pull_reason
from reporter.config import load_config
from reporter.config.model import Config
from reporter.config.sql import file_reader_sql
from reporter.periods import Period

DEMO = Path(__file__).resolve().parent.parent / "config" / "example.yaml"
NOW = dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)
# 23:30 UTC on the last day of October is 00:30 on 1 November in Paris: a November order.
EDGE = dt.datetime(2026, 10, 31, 23, 30, tzinfo=dt.UTC)
# how each date column is stored, so that every kind of range predicate is compared
SQLITE_KINDS = {
    "web": "text-date",
    "crm": "text-date",
    "emails": "text-local",
    "spend": "text-date",
    "orders": "text-instant",
    "nps": "text-date",
    "bank": "text-date",
    "social": "text-local",
}
DUCKDB_KINDS = {
    "web": "date",
    "crm": "local",
    "emails": "local",
    "spend": "local",
    "orders": "instant",
    "nps": "local",
    "bank": "local",
    "social": "local",
}
PERIODS = [("2026-10", "month"), ("2026-Q3", "quarter"), ("2026-W40", "week")]


def demo_frames(config: Config) -> dict[str, Any]:
    """Each demo source read by DuckDB as the CSV path reads it (typed columns), plus the edge order."""
    import pandas as pd

    con = duckdb.connect()
    frames = {}
    for name, source in config.sources.items():
        frames[name] = con.execute(
            f"SELECT * FROM {file_reader_sql(source, config.resolve(source.path))}"
        ).df()
    con.close()
    orders = frames["orders"]
    edge = orders.iloc[[-1]].copy()
    edge["order_id"] = "EDGE"
    edge["ordered_at"] = EDGE
    edge["amount"] = 999.0
    both = pd.concat([orders, edge], ignore_index=True)
    both["ordered_at"] = pd.to_datetime(both["ordered_at"], utc=True)
    frames["orders"] = both
    return frames


def as_sql(config: Config, url: str, pushdown: bool) -> Config:
    """The demo with every source a ``table:`` of the database at ``url``."""
    sources = {
        name: src.model_copy(
            update={
                "type": "sql",
                "path": None,
                "csv": None,
                "connection": "warehouse",
                "table": f"pd_{name}",
                "pushdown": pushdown,
            }
        )
        for name, src in config.sources.items()
    }
    return config.model_copy(update={"sources": sources, "connections": {"warehouse": url}})


def same(a: Any, b: Any, where: str = "") -> None:
    """Every field equal, floats to 1e-9 (relative, or absolute near 0)."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
        assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"


class RowCounter:
    """Counts the rows each statement returns, at the driver's cursor (SQLAlchemy's
    ``after_cursor_execute``, for every engine): independent of the code under test."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def __enter__(self) -> RowCounter:
        import sqlalchemy as sa

        sa.event.listen(sa.engine.Engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        import sqlalchemy as sa

        sa.event.remove(sa.engine.Engine, "after_cursor_execute", self._after)

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append((statement, cursor.rowcount))


@pytest.fixture(scope="module")
def demo_config() -> Config:
    return load_config(DEMO, env={})


@pytest.fixture(scope="module")
def demo_pg(demo_config: Config) -> str:
    import os

    import sqlalchemy as sa

    url = os.environ.get("REPORTER_TEST_PG_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL: .ci/run sets REPORTER_TEST_PG_URL")
        pytest.skip("no PostgreSQL here; .ci/run starts one and sets REPORTER_TEST_PG_URL")
    engine = sa.create_engine(url)
    for name, frame in demo_frames(demo_config).items():
        frame.to_sql(f"pd_{name}", engine, if_exists="replace", index=False, chunksize=5000, method="multi")
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE pd_web ALTER COLUMN date TYPE date"))
        kinds = dict(
            conn.execute(
                sa.text(
                    "SELECT table_name, data_type FROM information_schema.columns "
                    "WHERE (table_name, column_name) IN "
                    "(('pd_orders', 'ordered_at'), ('pd_crm', 'created_at'), ('pd_web', 'date'))"
                )
            ).fetchall()
        )
    engine.dispose()
    # the demo's dates arrive as both kinds a database has: instants and plain local timestamps
    assert kinds == {
        "pd_orders": "timestamp with time zone",
        "pd_crm": "timestamp without time zone",
        "pd_web": "date",
    }
    return url


def run_both(config: Config, url: str, label: str, grain: str) -> tuple[dict[str, Any], dict[str, Any]]:
    period = Period.parse(label, grain)  # type: ignore[arg-type]
    grained = config.model_copy(update={"report": config.report.model_copy(update={"grain": grain})})
    pulled = compute(as_sql(grained, url, False), period, NOW).to_dict()
    pushed = compute(as_sql(grained, url, True), period, NOW).to_dict()
    return pulled, pushed


def check_same(pulled: dict[str, Any], pushed: dict[str, Any], config: Config) -> None:
    for src_pulled, src_pushed in zip(pulled["sources"], pushed["sources"], strict=True):
        sql_config = as_sql(config, "postgresql://x", True)
        reason = pull_reason(sql_config, sql_config.sources[src_pulled["name"]])
        if reason is None:  # the rows never left the database: no hash of them
            assert src_pushed.pop("sha256") is None
            assert src_pulled.pop("sha256")
    same(pulled, pushed, "results")


@pytest.mark.parametrize(("label", "grain"), PERIODS)
def test_postgresql_same_results_as_pull(demo_config, demo_pg, label, grain):
    config = as_sql(demo_config, demo_pg, True)
    con, infos = open_database(config)
    con.close()
    close_remote(infos)
    pushed = sorted(n for n, i in infos.items() if isinstance(i, RemoteInfo))
    # all 8, bank and social (agg: last) included
    assert pushed == ["bank", "crm", "emails", "nps", "orders", "social", "spend", "web"]
    assert pull_reason(config, config.sources["bank"]) is None
    pulled, got = run_both(demo_config, demo_pg, label, grain)
    assert got["breakdowns"]["leads_by_origin"][-1]["key"] == "other"
    assert got["kpis"]["active_customers"]["ytd"] is not None  # count_distinct over the year to date
    check_same(pulled, got, demo_config)


def test_timezone_edge_and_csv_agree(demo_config, demo_pg):
    """The 23:30 UTC order of 31 October is November's in Paris: October equals the CSV demo's
    October (which has no such order), and November holds it."""
    csv = compute(demo_config, Period.parse("2026-10", "month"), NOW).to_dict()
    pushed = compute(as_sql(demo_config, demo_pg, True), Period.parse("2026-10", "month"), NOW).to_dict()
    for kpi in ("revenue", "active_customers", "average_deal"):
        assert pushed["kpis"][kpi]["value"] == pytest.approx(csv["kpis"][kpi]["value"], rel=1e-12), kpi
        assert pushed["kpis"][kpi]["ytd"] == pytest.approx(csv["kpis"][kpi]["ytd"], rel=1e-12), kpi
    nov = compute(as_sql(demo_config, demo_pg, True), Period.parse("2026-11", "month"), NOW).to_dict()
    assert nov["kpis"]["active_customers"]["value"] == 1.0
    assert nov["kpis"]["revenue"]["value"] == 999.0
    orders = next(s for s in pushed["sources"] if s["name"] == "orders")
    assert orders["last_date"] == "2026-11-01"


def test_only_aggregates_leave_postgresql(demo_config, demo_pg):
    """Counted at the driver: pushed down, no statement returns more rows than the report shows
    (one per period, or one per breakdown key and period); read whole, a table's every row."""
    import sqlalchemy as sa

    engine = sa.create_engine(demo_pg)
    with engine.connect() as conn:
        table_rows = {
            n: conn.execute(sa.text(f"SELECT count(*) FROM pd_{n}")).scalar_one() for n in demo_config.sources
        }
        keys = max(
            conn.execute(sa.text(f"SELECT count(DISTINCT {col}) FROM pd_{table}")).scalar_one()
            for table, col in [
                ("crm", "salesperson"),
                ("crm", "origin"),
                ("web", "canal"),
                ("spend", "campaign"),
                ("orders", "campaign"),
                ("orders", "salesperson"),
            ]
        )
    engine.dispose()
    period = Period.parse("2026-10", "month")
    with RowCounter() as pushed_counts:
        compute(as_sql(demo_config, demo_pg, True), period, NOW)
    with RowCounter() as pulled_counts:
        compute(as_sql(demo_config, demo_pg, False), period, NOW)
    pushed_tables = ("bank", "crm", "emails", "nps", "orders", "social", "spend", "web")
    # the report needs: one row per period for the metrics (the 12-month series, the prior years
    # of the year to date, the insights' history: under 60), or one per breakdown key (null
    # included) and period for a breakdown (the insights compare 2 periods)
    bound = max(60, (keys + 1) * 2)
    remote = [(s, n) for s, n in pushed_counts.seen if any(f"pd_{t}" in s for t in pushed_tables)]
    assert len(remote) >= 20
    worst = max(n for _, n in remote)
    assert 0 <= worst <= bound, [s for s, n in remote if n == worst]
    assert sum(n for _, n in remote) < sum(table_rows[t] for t in pushed_tables) / 20
    # agg: last (bank, social) reads the rows on each window's latest date: at most one row per
    # window it is asked for (each window is one WHEN of the statement's CASE)
    lasts = [(s, n) for s, n in remote if "AS __value" in s]
    assert {t for t in ("pd_bank", "pd_social") if any(t in s for s, _ in lasts)} == {"pd_bank", "pd_social"}
    for statement, n in lasts:
        assert 1 <= n <= statement.count(" THEN "), statement
    # the independent check fails on the pull: there, the orders table comes whole
    assert ("SELECT * FROM pd_orders", table_rows["orders"]) in pulled_counts.seen
    assert table_rows["orders"] > bound


def test_last_pushed_down(tmp_path, demo_pg):
    """agg: last pushed down: the value on the window's latest local date (a metric's `where`
    applies first, a null on that date is kept, a tie goes to the last row the database returns),
    per period, year to date and breakdown key; the same as read whole."""
    import sqlalchemy as sa

    rows = [  # (instant, account, balance, kind); Paris is UTC+1/+2
        ("2026-01-10 09:00:00+00", "a", 5.0, "x"),
        ("2026-09-30 21:30:00+00", "a", 7.0, "x"),  # 1 October in Paris: October's latest for "a"
        ("2026-10-12 08:00:00+00", "a", 1.0, "x"),
        ("2026-10-31 08:00:00+00", "a", 2.0, "y"),  # the latest date with kind x is 12 October
        ("2026-10-31 09:00:00+00", "b", None, "y"),  # latest date of "b": a null value
        ("2026-10-20 09:00:00+00", "b", 4.0, "x"),
        ("2026-10-31 23:30:00+00", "c", 8.0, "x"),  # 1 November in Paris: not October
        ("2026-10-30 10:00:00+00", "c", 3.0, "x"),
        ("2026-10-30 11:00:00+00", "c", 6.0, "x"),  # a tie on the 30th: the later row wins
    ]
    engine = sa.create_engine(demo_pg)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS pd_last"))
        conn.execute(
            sa.text("CREATE TABLE pd_last (at timestamptz, account text, balance float8, kind text)")
        )
        for at, account, balance, kind in rows:
            conn.execute(
                sa.text("INSERT INTO pd_last VALUES (CAST(:at AS timestamptz), :a, :b, :k)"),
                {"at": at, "a": account, "b": balance, "k": kind},
            )
    engine.dispose()
    yaml = """
report: {id: t, title: T, timezone: Europe/Paris}
sources:
  s: {type: sql, connection: pg, table: pd_last, date_column: at, pushdown: PUSH}
metrics:
  bal: {source: s, agg: last, column: balance}
  bal_x: {source: s, agg: last, column: balance, where: "kind = 'x'"}
kpis:
  bal: {formula: bal}
  bal_x: {formula: bal_x}
breakdowns:
  - {kpi: bal, by: account}
  - {kpi: bal_x, by: account, top: 1}
"""
    got = []
    for push in ("true", "false"):
        (tmp_path / "r.yaml").write_text(yaml.replace("PUSH", push), encoding="utf-8")
        config = load_config(tmp_path / "r.yaml", env={"REPORTER_CONNECTION_PG": demo_pg})
        with RowCounter() as counts:
            got.append(compute(config, Period.parse("2026-10", "month"), NOW).to_dict())
        if push == "true":
            # pushed: never a statement that returns the table (9 rows)
            assert max(n for s, n in counts.seen if "pd_last" in s) < len(rows)
    pushed, pulled = got
    assert pushed["sources"][0]["sha256"] is None
    # October in Paris: the latest date is 31 October (rows of "a" kind y and "b", null, on it;
    # the database returns "b" last)
    assert pushed["kpis"]["bal"]["value"] is None
    assert pushed["kpis"]["bal_x"]["value"] == 6.0  # 30 October, the later of its two rows
    by_account = {r["key"]: r["value"] for r in pushed["breakdowns"]["bal_by_account"]}
    assert by_account == {"a": 2.0, "b": None, "c": 6.0}  # c's 8.0 is on 1 November in Paris
    # top 1 (c) and "other": a's and b's rows of kind x, whose latest date is b's 20 October
    top = [(r["key"], r["value"]) for r in pushed["breakdowns"]["bal_x_by_account"]]
    assert top == [("c", 6.0), ("other", 4.0)]
    same(pulled["kpis"], pushed["kpis"], "kpis")
    same(pulled["breakdowns"], pushed["breakdowns"], "breakdowns")


def test_table_and_query_keys(tmp_path, demo_pg):
    """From YAML: `table:`, and `query:` pushed down as a subquery, give the same numbers."""
    common = """
report: {id: t, title: T, timezone: Europe/Paris}
sources:
  o: {SOURCE}
metrics:
  revenue: {source: o, agg: sum, column: amount, where: "amount > 100"}
  buyers: {source: o, agg: count_distinct, column: customer_id}
kpis:
  revenue: {formula: revenue}
  buyers: {formula: buyers}
breakdowns:
  - {kpi: revenue, by: salesperson}
"""
    out = []
    alice = []
    for source in (
        "{type: sql, connection: pg, table: pd_orders, date_column: ordered_at}",
        "{type: sql, connection: pg, query: 'select * from pd_orders where amount >= 0', "
        "date_column: ordered_at}",
        "{type: sql, connection: pg, table: pd_orders, date_column: ordered_at, pushdown: false}",
    ):
        (tmp_path / "r.yaml").write_text(common.replace("{SOURCE}", source), encoding="utf-8")
        config = load_config(tmp_path / "r.yaml", env={"REPORTER_CONNECTION_PG": demo_pg})
        out.append(compute(config, Period.parse("2026-10", "month"), NOW).to_dict()["kpis"])
        # a burst recipient's filter runs in the database too
        filtered = compute(
            config, Period.parse("2026-10", "month"), NOW, filter={"salesperson": "Alice Martin"}
        )
        alice.append(filtered.to_dict()["kpis"])
    assert out[0] == out[1]
    same(out[0], out[2])
    assert alice[0] == alice[1]
    same(alice[0], alice[2])
    # independently, from the CSV rows: Alice's October 2026 (Paris time) orders over 100
    import pandas as pd

    frame = pd.read_csv(DEMO.parent / "data" / "orders.csv")
    local = pd.to_datetime(frame["ordered_at"], utc=True).dt.tz_convert("Europe/Paris")
    mine = frame[(local.dt.strftime("%Y-%m") == "2026-10") & (frame["salesperson"] == "Alice Martin")]
    assert alice[0]["revenue"]["value"] == pytest.approx(
        mine.loc[mine["amount"] > 100, "amount"].sum(), rel=1e-12
    )
    assert alice[0]["buyers"]["value"] == mine["customer_id"].nunique()
    assert alice[0]["buyers"]["value"] < out[0]["buyers"]["value"]


def test_sqlite_and_duckdb_files(tmp_path, demo_config):
    """SQLite (dates as ISO text, with and without an offset) and a DuckDB file (typed)."""
    import sqlalchemy as sa

    frames = demo_frames(demo_config)
    lite = sa.create_engine(f"sqlite:///{tmp_path / 'demo.sqlite'}")
    for name, frame in frames.items():
        frame = frame.copy()
        for col in frame.columns:
            if str(frame[col].dtype).startswith("datetime64"):
                values = frame[col].map(lambda v: v.isoformat() if v == v else None)
                # social keeps its midnights: its `last` metrics read a text timestamp's latest value
                kept = name in ("orders", "social")
                frame[col] = values if kept else values.str.replace("T00:00:00", "", regex=False)
        frame.to_sql(f"pd_{name}", lite, index=False)
    lite.dispose()
    con = duckdb.connect(str(tmp_path / "demo.duckdb"))
    for name, frame in frames.items():
        con.register("f", frame)
        cast = " REPLACE (CAST(date AS DATE) AS date)" if name == "web" else ""
        con.execute(f"CREATE TABLE pd_{name} AS SELECT *{cast} FROM f")
        con.unregister("f")
    con.close()
    for url in (f"sqlite:///{tmp_path / 'demo.sqlite'}", f"duckdb:///{tmp_path / 'demo.duckdb'}"):
        con, infos = open_database(as_sql(demo_config, url, True))
        con.close()
        close_remote(infos)
        kinds = {n: i.warehouse.kind for n, i in infos.items() if isinstance(i, RemoteInfo) and i.warehouse}
        assert kinds == (SQLITE_KINDS if url.startswith("sqlite") else DUCKDB_KINDS)
        for label, grain in PERIODS[:2]:
            pulled, pushed = run_both(demo_config, url, label, grain)
            check_same(pulled, pushed, demo_config)


SMALL = """\
report: {id: t, title: T, timezone: Europe/Paris}
sources:
  o: SOURCE
metrics:
  n: {source: o, agg: count}
kpis:
  n: {formula: n}
"""


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{type: sql, connection: db, date_column: d}",
            "F:3:6: sources.o: a sql source needs 'query' or 'table'; query: select ... or table: orders",
        ),
        (
            "{type: sql, connection: db, query: select 1, table: t, date_column: d}",
            "F:3:58: sources.o.table: 'table' and 'query' cannot be used together; keep one of them",
        ),
        (
            "{type: csv, path: x.csv, table: t, date_column: d}",
            "F:3:38: sources.o.table: 'table' is only for type sql",
        ),
    ],
)
def test_table_key_is_validated(tmp_path, capsys, monkeypatch, source, message):
    from reporter.cli import main

    monkeypatch.setenv("REPORTER_CONNECTION_DB", f"sqlite:///{tmp_path / 'x.db'}")
    (tmp_path / "x.csv").write_text("d\n2026-10-01\n", encoding="utf-8")
    path = tmp_path / "r.yaml"
    path.write_text(SMALL.replace("SOURCE", source), encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    lines = capsys.readouterr().err.replace(str(path), "F").splitlines()
    assert lines == [message, "1 error: nothing was run or sent."]


def test_dates_as_text_are_read_on_sqlite_only_and_not_mixed(tmp_path, demo_pg):
    """Text dates: refused by pushdown on PostgreSQL, and on SQLite when forms are mixed; the
    message says to set pushdown: false, which then reads them."""
    import sqlalchemy as sa

    from reporter.errors import SourceError

    engine = sa.create_engine(demo_pg)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS pd_text"))
        conn.execute(sa.text("CREATE TABLE pd_text (d text)"))
        conn.execute(sa.text("INSERT INTO pd_text VALUES ('2026-10-01'), ('2026-10-02T10:00:00+02:00')"))
    engine.dispose()
    lite = tmp_path / "t.sqlite"
    con = __import__("sqlite3").connect(lite)
    con.execute("CREATE TABLE pd_text (d text)")
    con.execute("INSERT INTO pd_text VALUES ('2026-10-01'), ('2026-10-02T10:00:00+02:00')")
    con.commit()
    con.close()
    expected = {
        "postgresql": "source 'o': date column 'd' holds text; pushdown reads dates as text on SQLite only; "
        "hint: cast it to a date or timestamp in the query, or set pushdown: false",
        "sqlite": "source 'o': date column 'd' mixes dates, timestamps with and without an offset; "
        "hint: set pushdown: false to read it whole",
    }
    for url in (demo_pg, f"sqlite:///{lite}"):
        for pushdown in (True, False):
            flag = str(pushdown).lower()
            source = f"{{type: sql, connection: db, table: pd_text, date_column: d, pushdown: {flag}}}"
            (tmp_path / "r.yaml").write_text(SMALL.replace("SOURCE", source), encoding="utf-8")
            config = load_config(tmp_path / "r.yaml", env={"REPORTER_CONNECTION_DB": url})
            period = Period.parse("2026-10", "month")
            if pushdown:
                with pytest.raises(SourceError) as err:
                    compute(config, period, NOW)
                assert str(err.value) == expected[url.split(":")[0].split("+")[0]]
            else:
                assert compute(config, period, NOW).kpis["n"].value == 2.0


def test_errors_name_the_source_and_hide_the_password(tmp_path, demo_pg):
    from sqlalchemy.engine import make_url

    from reporter.errors import SourceError

    shown = make_url(demo_pg).render_as_string(hide_password=True)
    assert "reporter-ci" not in shown
    period = Period.parse("2026-10", "month")
    cases = [
        (
            "{type: sql, connection: db, table: pd_nope, date_column: d}",
            f"source 'o': query failed on {shown}: "
            '(psycopg.errors.UndefinedTable) relation "pd_nope" does not exist',
        ),
        (
            "{type: sql, connection: db, table: pd_bank, date_column: day}",
            "source 'o': date column 'day' not found; columns are: date, account, balance",
        ),
    ]
    for source, message in cases:
        (tmp_path / "r.yaml").write_text(SMALL.replace("SOURCE", source), encoding="utf-8")
        config = load_config(tmp_path / "r.yaml", env={"REPORTER_CONNECTION_DB": demo_pg})
        with pytest.raises(SourceError) as err:
            compute(config, period, NOW)
        assert str(err.value) == message


def test_translation_to_every_dialect():
    """The rewrite alone: period bounds as UTC instants (October 2026 in Paris starts at 22:00 UTC
    on 30 September, summer time, and ends at 23:00 UTC on 31 October, winter time), and a query
    for each dialect sqlglot writes, tested or not."""
    from zoneinfo import ZoneInfo

    from reporter.compute.pushdown import DIALECTS, Warehouse

    sql = (
        "SELECT CASE WHEN __day BETWEEN ? AND ? THEN ? END AS __bucket, "
        'count(DISTINCT "customer_id") FILTER (WHERE (new_customer = 1) '
        "AND __day BETWEEN DATE '2026-01-01' AND DATE '2026-10-31'), "
        'CAST(sum("amount") AS DOUBLE) FROM "src_o" '
        "WHERE __day BETWEEN ? AND ? AND (\"campaign\" IS NULL OR \"campaign\" NOT IN ('Salon', 'what?')) "
        "GROUP BY __bucket"
    )
    october = [dt.date(2026, 10, 1), dt.date(2026, 10, 31), dt.date(2026, 10, 1)]
    params = [*october, dt.date(2026, 1, 1), dt.date(2026, 10, 31)]
    for dialect in sorted(set(DIALECTS.values())):
        wh = Warehouse(
            "o", None, dialect, "sales.orders", "ordered_at", "instant", ZoneInfo("Europe/Paris"), ""
        )
        text = wh.translate(sql, params)
        assert "__day" not in text, (dialect, text)
        assert "FROM sales.orders __reporter_src" in text, (dialect, text)
        assert "'2026-09-30 22:00:00+00:00'" in text, (dialect, text)
        assert "'2026-10-31 23:00:00+00:00'" in text, (dialect, text)
        assert "'what?'" in text, (dialect, text)
    wh = Warehouse(
        "o", None, "postgres", "sales.orders", "ordered_at", "instant", ZoneInfo("Europe/Paris"), ""
    )
    assert wh.translate(sql, params) == (
        "SELECT CASE WHEN (\"ordered_at\" >= CAST('2026-09-30 22:00:00+00:00' AS TIMESTAMPTZ) "
        "AND \"ordered_at\" < CAST('2026-10-31 23:00:00+00:00' AS TIMESTAMPTZ)) "
        "THEN CAST('2026-10-01' AS DATE) END AS __bucket, "
        'COUNT(DISTINCT "customer_id") FILTER(WHERE (new_customer = 1) AND '
        "(\"ordered_at\" >= CAST('2025-12-31 23:00:00+00:00' AS TIMESTAMPTZ) "
        "AND \"ordered_at\" < CAST('2026-10-31 23:00:00+00:00' AS TIMESTAMPTZ))), "
        'CAST(SUM("amount") AS DOUBLE PRECISION) FROM sales.orders __reporter_src '
        "WHERE (\"ordered_at\" >= CAST('2025-12-31 23:00:00+00:00' AS TIMESTAMPTZ) "
        "AND \"ordered_at\" < CAST('2026-10-31 23:00:00+00:00' AS TIMESTAMPTZ)) "
        "AND (\"campaign\" IS NULL OR NOT \"campaign\" IN ('Salon', 'what?')) GROUP BY __bucket"
    )


def test_which_sources_are_read_whole(demo_config):
    config = as_sql(demo_config, "postgresql+psycopg://h/db", True)
    assert pull_reason(config, config.sources["orders"]) is None
    assert pull_reason(config, config.sources["social"]) is None  # agg: last is pushed down too
    assert pull_reason(as_sql(demo_config, "postgresql://h/db", False), config.sources["orders"]) is None
    off = as_sql(demo_config, "postgresql://h/db", False)
    assert pull_reason(off, off.sources["orders"]) == "pushdown: false"
    odd = as_sql(demo_config, "firebird://h/db", True)
    assert pull_reason(odd, odd.sources["orders"]) == "no SQL dialect known for 'firebird'"
