"""Division by zero means the same in every engine: a row whose divisor is zero gives no value
(null) for that row, so the aggregate skips it, whether DuckDB computes it from a file or the
source's own database computes it pushed down (SQLite, PostgreSQL). ``validate`` warns, with the
``expr``'s line, where a divisor column holds zeros."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from reporter.cli import main
from reporter.compute.database import compute
from reporter.config import load_config
from reporter.periods import Period
from tests.conftest import write_csv

NOW = dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)
# (date, amount, qty): qty is 0 on three rows, amount and qty both 0 on one of them
ROWS = [
    ("2026-10-01", 120.0, 4),
    ("2026-10-02", 50.0, 0),
    ("2026-10-03", 90.0, 3),
    ("2026-10-05", 0.0, 0),
    ("2026-10-09", 33.0, 2),
    ("2026-10-12", 70.0, 0),
    ("2026-10-20", 10.0, 5),
]

YAML = """\
report: {id: dz, title: Division, timezone: Europe/Paris}
sources:
  o: SOURCE
metrics:
  per_unit: {source: o, agg: sum, expr: "amount / qty"}
  mean_unit: {source: o, agg: avg, expr: "amount / qty"}
  dear: {source: o, agg: count, where: "amount / qty > 15"}
  units: {source: o, agg: sum, column: qty, where: "qty = 0"}
kpis:
  per_unit: {formula: per_unit, direction: up, label: Per unit}
  mean_unit: {formula: mean_unit, direction: up, label: Mean}
  dear: {formula: dear, direction: up, label: Dear}
  per_nothing: {formula: per_unit / units, direction: up, label: Per nothing}
"""


def expected() -> dict[str, float | None]:
    """The same numbers in plain Python: a row whose qty is 0 has no value and is skipped."""
    values = [amount / qty for _, amount, qty in ROWS if qty != 0]
    return {
        "per_unit": sum(values),
        "mean_unit": sum(values) / len(values),
        "dear": float(sum(1 for v in values if v > 15)),
        "per_nothing": None,  # a formula dividing by a metric that is 0
    }


def kpis(config_path, env) -> dict[str, float | None]:
    config = load_config(config_path, env=env)
    got = compute(config, Period.parse("2026-10", "month"), NOW).to_dict()["kpis"]
    return {name: got[name]["value"] for name in ("per_unit", "mean_unit", "dear", "per_nothing")}


def close(got: dict[str, float | None], want: dict[str, float | None]) -> None:
    assert list(got) == list(want)
    for name, value in want.items():
        if value is None:
            assert got[name] is None, name
        else:
            assert got[name] == pytest.approx(value, rel=1e-12), name


def csv_config(tmp_path):
    write_csv(tmp_path / "o.csv", ["d", "amount", "qty"], ROWS)
    path = tmp_path / "csv.yaml"
    path.write_text(YAML.replace("SOURCE", "{type: csv, path: o.csv, date_column: d}"), encoding="utf-8")
    return path


def sql_config(tmp_path, url: str, table: str, push: bool):
    path = tmp_path / f"sql-{push}.yaml"
    source = f"{{type: sql, connection: db, table: {table}, date_column: d, pushdown: {str(push).lower()}}}"
    path.write_text(YAML.replace("SOURCE", source), encoding="utf-8")
    return path, {"REPORTER_CONNECTION_DB": url}


def fill(url: str, table: str, date_type: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(sa.text(f"CREATE TABLE {table} (d {date_type}, amount float, qty integer)"))
        for d, amount, qty in ROWS:
            conn.execute(
                sa.text(f"INSERT INTO {table} VALUES (:d, :a, :q)"),
                {"d": dt.date.fromisoformat(d) if date_type == "date" else d, "a": amount, "q": qty},
            )
    engine.dispose()


def test_csv_divides_by_zero_as_null(tmp_path):
    close(kpis(csv_config(tmp_path), {}), expected())


def test_sqlite_pushed_down_and_csv_agree(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.sqlite'}"
    fill(url, "dz_orders", "text")
    want = expected()
    from_csv = kpis(csv_config(tmp_path), {})
    for push in (True, False):
        path, env = sql_config(tmp_path, url, "dz_orders", push)
        close(kpis(path, env), want)
    close(from_csv, want)


def test_postgresql_pushed_down_and_csv_agree(tmp_path):
    """PostgreSQL raises division_by_zero on its own: pushed down, the divisor is NULLIF'd."""
    url = os.environ.get("REPORTER_TEST_PG_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL: .ci/run sets REPORTER_TEST_PG_URL")
        pytest.skip("no PostgreSQL here; .ci/run starts one and sets REPORTER_TEST_PG_URL")
    fill(url, "dz_orders", "date")
    want = expected()
    for push in (True, False):
        path, env = sql_config(tmp_path, url, "dz_orders", push)
        close(kpis(path, env), want)
    close(kpis(csv_config(tmp_path), {}), want)


def test_every_division_operator_gives_null_in_duckdb(tmp_path):
    """``//``, ``%`` and divide() by zero raise in DuckDB by default: here they give null too."""
    write_csv(tmp_path / "o.csv", ["d", "amount", "qty"], ROWS)
    text = YAML.replace("SOURCE", "{type: csv, path: o.csv, date_column: d}")
    text = text.replace(
        '"amount / qty"',
        '"CAST(amount AS INTEGER) // qty + (CAST(amount AS INTEGER) % qty) + divide(1, qty)"',
        1,
    )
    (tmp_path / "ops.yaml").write_text(text, encoding="utf-8")
    got = kpis(tmp_path / "ops.yaml", {})
    want = sum(int(a) // q + int(a) % q + 1 // q for _, a, q in ROWS if q != 0)
    assert got["per_unit"] == pytest.approx(want, rel=1e-12)


def test_validate_warns_where_a_divisor_column_holds_zeros(tmp_path, capsys):
    """The warning names the expr's and the where's line, the column, how many rows and the
    first; validate still exits 0. A where that leaves the zeros out silences it."""
    path = csv_config(tmp_path)
    code = main(["validate", str(path)])
    err = capsys.readouterr().err.replace(str(path), "F").splitlines()
    assert code == 0
    warned = [line for line in err if "divides by" in line]
    assert warned == [
        "F:5:41: metrics.per_unit.expr: warning: divides by column 'qty', which is 0 on 3 rows "
        "(line 3 of o.csv is the first): a division by zero gives no value, so these rows are left "
        'out of the metric; if that is meant, say so: where: "qty <> 0"; otherwise correct the data',
        "F:6:42: metrics.mean_unit.expr: warning: divides by column 'qty', which is 0 on 3 rows "
        "(line 3 of o.csv is the first): a division by zero gives no value, so these rows are left "
        'out of the metric; if that is meant, say so: where: "qty <> 0"; otherwise correct the data',
        "F:7:40: metrics.dear.where: warning: divides by column 'qty', which is 0 on 3 rows "
        "(line 3 of o.csv is the first): a division by zero gives no value, so these rows do not "
        'match the condition; if that is meant, say so: where: "qty <> 0 AND …"; otherwise correct the data',
    ]
    text = path.read_text(encoding="utf-8")
    text = text.replace('expr: "amount / qty"}', 'expr: "amount / qty", where: "qty <> 0"}')
    text = text.replace('where: "amount / qty > 15"', 'where: "qty <> 0 AND amount / qty > 15"')
    path.write_text(text, encoding="utf-8")
    assert main(["validate", str(path)]) == 0
    assert "divides by" not in capsys.readouterr().err


def test_validate_is_silent_on_the_demo(capsys):
    from pathlib import Path

    demo = Path(__file__).resolve().parent.parent / "config" / "example.yaml"
    assert main(["validate", str(demo)]) == 0
    captured = capsys.readouterr()
    assert "valid" in captured.out
    assert "divides by" not in captured.err


DERIVED = """\
report: {id: dz, title: Division, timezone: Europe/Paris}
sources:
  o: SOURCE
  u:
    type: derived
    from: [o]
    sql: select d, amount / qty as unit from o
    date_column: d
metrics:
  per_unit: {source: u, agg: sum, column: unit}
kpis:
  per_unit: {formula: per_unit, direction: up, label: Per unit}
"""


def test_a_derived_sources_division_follows_the_rule_in_its_database_too(tmp_path):
    """A derived source's own SQL divides: in DuckDB (from the CSV file) and composed into the
    database's query (pushed down: PostgreSQL would stop with division_by_zero) the zero rows are
    null, and the sum is the same."""
    from reporter.compute.database import composed_sources

    want = expected()["per_unit"]
    write_csv(tmp_path / "o.csv", ["d", "amount", "qty"], ROWS)
    (tmp_path / "csv.yaml").write_text(
        DERIVED.replace("SOURCE", "{type: csv, path: o.csv, date_column: d}"), encoding="utf-8"
    )
    got = compute(load_config(tmp_path / "csv.yaml", env={}), Period.parse("2026-10", "month"), NOW)
    assert got.kpis["per_unit"].value == pytest.approx(want, rel=1e-12)
    urls = [f"sqlite:///{tmp_path / 'o.sqlite'}"]
    if os.environ.get("REPORTER_TEST_PG_URL"):
        urls.append(os.environ["REPORTER_TEST_PG_URL"])
    for url in urls:
        fill(url, "dz_orders", "text" if url.startswith("sqlite") else "date")
        path = tmp_path / "db.yaml"
        path.write_text(
            DERIVED.replace("SOURCE", "{type: sql, connection: db, table: dz_orders, date_column: d}"),
            encoding="utf-8",
        )
        config = load_config(path, env={"REPORTER_CONNECTION_DB": url})
        query = composed_sources(config)["u"].query or ""
        assert "NULLIF(qty, 0)" in query, query  # the database does the join, with the rule
        got = compute(config, Period.parse("2026-10", "month"), NOW)
        assert got.kpis["per_unit"].value == pytest.approx(want, rel=1e-12), url
