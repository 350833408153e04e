"""Each source kind reads the same rows to the same numbers; French Excel-style CSV; a real
PostgreSQL for SQL sources (started by .ci/run, which sets REPORTER_TEST_PG_URL)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import duckdb
import pytest

from reporter.compute.database import compute
from reporter.periods import Period
from tests.conftest import write_csv

NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


def rows(seed: int = 11) -> list[tuple[str, str, float, str]]:
    rng = random.Random(seed)
    out = []
    day = dt.date(2025, 1, 1)
    while day <= dt.date(2026, 10, 31):
        for _ in range(rng.randint(0, 3)):
            out.append(
                (
                    day.isoformat(),
                    rng.choice(["Alice", "Bruno"]),
                    round(rng.uniform(1, 500), 2),
                    rng.choice(["won", "lost"]),
                )
            )
        day += dt.timedelta(days=1)
    return out


def reference(data, start: dt.date, end: dt.date) -> dict[str, float]:
    sel = [r for r in data if start.isoformat() <= r[0] <= end.isoformat()]
    return {
        "revenue": sum(r[2] for r in sel),
        "won": float(sum(1 for r in sel if r[3] == "won")),
        "sellers": float(len({r[1] for r in sel})),
    }


YAML = """
report: {{id: kinds, title: Kinds, timezone: Europe/Paris}}
sources:
  s: {source}
metrics:
  revenue: {{source: s, agg: sum, column: amount}}
  won: {{source: s, agg: count, where: "stage = 'won'"}}
  sellers: {{source: s, agg: count_distinct, column: seller}}
kpis:
  revenue: {{formula: revenue}}
  won: {{formula: won}}
  sellers: {{formula: sellers}}
"""


def check(folder: Path, source_yaml: str, data, env=None) -> None:
    from reporter.config import load_config

    path = folder / "r.yaml"
    path.write_text(YAML.format(source=source_yaml), encoding="utf-8")
    config = load_config(path, env=env or {})
    for label in ("2026-10", "2025-02", "2026-01"):
        period = Period.parse(label, "month")
        got = compute(config, period, NOW).to_dict()["kpis"]
        ref = reference(data, period.start, period.end)
        for name, value in ref.items():
            assert got[name]["value"] == pytest.approx(value), (source_yaml, label, name)


HEADER = ["date", "seller", "amount", "stage"]


def test_csv(tmp_path):
    data = rows()
    write_csv(tmp_path / "d.csv", HEADER, data)
    check(tmp_path, "{type: csv, path: d.csv, date_column: date}", data)


def test_french_excel_csv_export(tmp_path):
    data = rows()
    lines = ["Date;Vendeur;Montant;étape"]
    for d, s, a, st in data:
        y, m, dd = d.split("-")
        lines.append(f"{dd}/{m}/{y};{s};{str(a).replace('.', ',')};{st}")
    lines.append("31/10/2026;Chloé;n/a;won")  # a null amount, a latin-1 name
    (tmp_path / "fr.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    yaml = YAML.replace("column: amount", "column: Montant").replace("column: seller", "column: Vendeur")
    yaml = yaml.replace("stage = 'won'", "étape = 'won'")
    (tmp_path / "r.yaml").write_text(
        yaml.format(
            source=(
                '{type: csv, path: fr.csv, date_column: Date, csv: {delimiter: ";", decimal: ",", '
                'encoding: latin-1, date_format: "%d/%m/%Y", null_values: ["", "n/a"]}}'
            )
        ),
        encoding="utf-8",
    )
    from reporter.config import load_config

    config = load_config(tmp_path / "r.yaml", env={})
    got = compute(config, Period.parse("2026-10", "month"), NOW).to_dict()["kpis"]
    ref = reference(data, dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    assert got["revenue"]["value"] == pytest.approx(ref["revenue"])
    assert got["won"]["value"] == ref["won"] + 1
    assert got["sellers"]["value"] == ref["sellers"] + 1  # Chloé, read from latin-1


def test_parquet_and_json(tmp_path):
    data = rows()
    write_csv(tmp_path / "d.csv", HEADER, data)
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_csv('{tmp_path / 'd.csv'}')) TO '{tmp_path / 'd.parquet'}'")
    con.execute(f"COPY (SELECT * FROM read_csv('{tmp_path / 'd.csv'}')) TO '{tmp_path / 'd.json'}'")
    con.close()
    check(tmp_path, "{type: parquet, path: d.parquet, date_column: date}", data)
    check(tmp_path, "{type: json, path: d.json, date_column: date}", data)


def test_excel(tmp_path):
    import pandas as pd

    data = rows()
    frame = pd.DataFrame(data, columns=HEADER)
    frame["date"] = pd.to_datetime(frame["date"])
    frame.to_excel(tmp_path / "d.xlsx", sheet_name="Ventes", index=False)
    check(tmp_path, "{type: excel, path: d.xlsx, sheet: Ventes, date_column: date}", data)


def test_postgresql(tmp_path, pg_url):
    url = pg_url
    import sqlalchemy as sa

    data = rows()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS test_orders"))
        conn.execute(
            sa.text(
                "CREATE TABLE test_orders (date timestamptz, seller text, amount numeric(12,2), stage text)"
            )
        )
        conn.execute(
            sa.text("INSERT INTO test_orders VALUES (:d, :s, :a, :st)"),
            [{"d": f"{d} 12:00:00+02", "s": s, "a": a, "st": st} for d, s, a, st in data],
        )
        # 23:30 UTC on 31 October is 1 November in Paris: not in October.
        conn.execute(sa.text("INSERT INTO test_orders VALUES ('2026-10-31 23:30:00+00', 'Zoé', 1000, 'won')"))
    engine.dispose()
    check(
        tmp_path,
        "{type: sql, connection: pg, query: 'select * from test_orders', date_column: date}",
        data,
        env={"REPORTER_CONNECTION_PG": url},
    )
