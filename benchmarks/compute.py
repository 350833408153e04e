"""Compute benchmark: reporter's compute stage on N rows of orders (Parquet, 36 months, 30 KPIs)
against one hand-written DuckDB query computing the same aggregates, in the same run.

"compute" is a fresh process that loads and validates the YAML, reads the source into DuckDB,
computes every KPI, objective, breakdown and the portfolio, and writes results.json: what
`reporter run --no-send` does before rendering. The whole `reporter run --no-send` (which now
also renders the PDF) is timed too, for information, and so is the compute stage without
insights and with the source declared monthly (October's half-month then counts as complete:
every KPI is a record low over 35 months, the worst case for the record look-back).

    .venv/bin/python benchmarks/compute.py [--rows 10000000] [--repeat 3]

Both sides run as fresh processes (imports included) and are timed wall-clock; peak RSS is read
from each child's rusage. The ratio is reporter / baseline, best of --repeat each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GENERATE = """
COPY (
  SELECT
    i AS order_id,
    TIMESTAMPTZ '2023-11-01 00:00:00+00' + to_seconds(CAST(hash(i) % (36 * 30 * 86400) AS BIGINT)) AS ordered_at,
    'C' || CAST(hash(i * 7) % 50000 AS VARCHAR) AS customer_id,
    ['Alice', 'Bruno', 'Chloé', 'David', 'Emma'][CAST(hash(i * 3) % 5 AS INT) + 1] AS salesperson,
    ['Google Ads', 'LinkedIn Ads', 'Salon', 'Newsletter', 'Webinaires'][CAST(hash(i * 5) % 5 AS INT) + 1] AS campaign,
    CAST(hash(i * 11) % 100000 AS DOUBLE) / 100 AS amount,
    CAST(hash(i * 13) % 40000 AS DOUBLE) / 100 AS margin,
    CAST(hash(i * 17) % 9 AS INT) + 1 AS quantity,
    CAST(hash(i * 19) % 5000 AS DOUBLE) / 100 AS unit_price,
    ['won', 'lost', 'open', 'quote'][CAST(hash(i * 23) % 4 AS INT) + 1] AS stage,
    CAST(hash(i * 29) % 10 = 0 AS INT) AS new_customer,
    CAST(hash(i * 31) % 500 AS DOUBLE) AS spend
  FROM range({rows}) t(i)
) TO '{path}' (FORMAT parquet)
"""

METRICS = {
    "revenue": "{source: orders, agg: sum, column: amount}",
    "margin": "{source: orders, agg: sum, column: margin}",
    "orders": "{source: orders, agg: count}",
    "customers": "{source: orders, agg: count_distinct, column: customer_id}",
    "new_customers": "{source: orders, agg: count, where: 'new_customer = 1'}",
    "won": "{source: orders, agg: count, where: \"stage = 'won'\"}",
    "lost": "{source: orders, agg: count, where: \"stage = 'lost'\"}",
    "quotes": "{source: orders, agg: count, where: \"stage in ('quote', 'won', 'lost')\"}",
    "won_amount": "{source: orders, agg: sum, column: amount, where: \"stage = 'won'\"}",
    "units": "{source: orders, agg: sum, column: quantity}",
    "sales": "{source: orders, agg: sum, expr: 'quantity * unit_price'}",
    "spend": "{source: orders, agg: sum, column: spend}",
    "avg_amount": "{source: orders, agg: avg, column: amount}",
    "max_amount": "{source: orders, agg: max, column: amount}",
    "min_amount": "{source: orders, agg: min, column: amount}",
    "sellers": "{source: orders, agg: count_distinct, column: salesperson}",
}
BASE_SQL = {
    "revenue": "sum(amount)",
    "margin": "sum(margin)",
    "orders": "count(*)",
    "customers": "count(DISTINCT customer_id)",
    "new_customers": "count(*) FILTER (WHERE new_customer = 1)",
    "won": "count(*) FILTER (WHERE stage = 'won')",
    "lost": "count(*) FILTER (WHERE stage = 'lost')",
    "quotes": "count(*) FILTER (WHERE stage in ('quote', 'won', 'lost'))",
    "won_amount": "sum(amount) FILTER (WHERE stage = 'won')",
    "units": "sum(quantity)",
    "sales": "sum(quantity * unit_price)",
    "spend": "sum(spend)",
    "avg_amount": "avg(amount)",
    "max_amount": "max(amount)",
    "min_amount": "min(amount)",
    "sellers": "count(DISTINCT salesperson)",
}
KPIS = {
    "revenue": "revenue",
    "margin": "margin",
    "orders": "orders",
    "customers": "customers",
    "new_customers": "new_customers",
    "won": "won",
    "lost": "lost",
    "quotes": "quotes",
    "units": "units",
    "sales": "sales",
    "spend": "spend",
    "avg_amount": "avg_amount",
    "max_amount": "max_amount",
    "min_amount": "min_amount",
    "sellers": "sellers",
    "margin_rate": "margin / revenue",
    "win_rate": "won / (won + lost)",
    "close_rate": "won / quotes",
    "basket": "revenue / orders",
    "per_customer": "revenue / customers",
    "orders_per_customer": "orders / customers",
    "cac": "spend / new_customers",
    "roi": "(margin - spend) / spend",
    "ltv": "margin / customers * 36",
    "ltv_cac": "ltv / cac",
    "unit_price": "sales / units",
    "won_share": "won_amount / revenue",
    "per_seller": "revenue / sellers",
    "new_share": "new_customers / customers",
    "spread": "max_amount - min_amount",
}


def config_text(parquet: Path) -> str:
    metrics = "\n".join(f"  {k}: {v}" for k, v in METRICS.items())
    kpis = "\n".join(f"  {k}: {{formula: '{v}'}}" for k, v in KPIS.items())
    return (
        textwrap.dedent(f"""\
        report: {{id: bench, title: Bench, timezone: Europe/Paris, locale: fr_FR, currency: EUR}}
        sources:
          orders: {{type: parquet, path: {parquet}, date_column: ordered_at}}
        metrics:
        """)
        + metrics
        + "\nkpis:\n"
        + kpis
        + textwrap.dedent("""
        objectives:
          - {id: grow, title: Grow, kpi: revenue, target: {change_vs_prior_year: 0.1}, owner: CEO, due: 2026-12-31}
          - {id: cac, title: CAC, kpi: cac, target: {value: 100}, owner: CMO, due: 2026-12-31}
        breakdowns:
          - {kpi: basket, by: salesperson}
          - {kpi: revenue, by: campaign, top: 3}
        portfolio: {by: campaign, cost: spend, value: revenue}
        quality: {require_complete_period: false, min_rows: 1}
        """)
    )


def baseline_script(parquet: Path) -> str:
    aggs = ", ".join(f"{sql} AS {name}" for name, sql in BASE_SQL.items())
    # The same aggregates for every month and for the year to date, in one query.
    return textwrap.dedent(f"""
        import duckdb
        con = duckdb.connect()
        rows = con.execute('''
          WITH t AS (SELECT *, CAST(timezone('Europe/Paris', ordered_at) AS DATE) AS day
                     FROM read_parquet('{parquet}'))
          SELECT date_trunc('month', day) AS m, {aggs} FROM t GROUP BY ALL
          UNION ALL
          SELECT NULL, {aggs} FROM t WHERE day BETWEEN DATE '2026-01-01' AND DATE '2026-10-31'
        ''').fetchall()
        assert len(rows) >= 36
    """)


def run(cmd: list[str], cwd: Path) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[:4]} failed:\n{err}")
    return elapsed, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        parquet = folder / "orders.parquet"
        t0 = time.perf_counter()
        duckdb.connect().execute(GENERATE.format(rows=args.rows, path=parquet))
        print(
            f"generated {args.rows:,} rows ({parquet.stat().st_size / 1e6:.0f} MB) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        (folder / "bench.yaml").write_text(config_text(parquet), encoding="utf-8")
        (folder / "plain.yaml").write_text(
            config_text(parquet) + "insights: {enabled: false}\n", encoding="utf-8"
        )
        # The worst case for the record look-back: the same data with the source declared
        # monthly, so the half-month of October counts as complete and every KPI is a record
        # low over the 35 months before it (the look-back reads the 11 oldest).
        (folder / "records.yaml").write_text(
            config_text(parquet).replace(
                "date_column: ordered_at}", "date_column: ordered_at, frequency: monthly}"
            ),
            encoding="utf-8",
        )
        (folder / "baseline.py").write_text(baseline_script(parquet), encoding="utf-8")
        (folder / "compute.py").write_text(
            textwrap.dedent(f"""
            import datetime as dt, sys
            from pathlib import Path
            from reporter.config import load_config
            from reporter.periods import Period
            from reporter.compute.database import compute
            from reporter.files import write_atomic
            config = load_config(Path('{folder}') / sys.argv[1])
            now = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
            results = compute(config, Period.parse('2026-10', 'month'), now)
            write_atomic(Path('{folder / "results.json"}'), results.to_json().encode())
        """),
            encoding="utf-8",
        )
        reporter = [sys.executable, str(folder / "compute.py"), "bench.yaml"]
        without = [sys.executable, str(folder / "compute.py"), "plain.yaml"]
        records = [sys.executable, str(folder / "compute.py"), "records.yaml"]
        full = [
            sys.executable,
            "-m",
            "reporter",
            "run",
            str(folder / "bench.yaml"),
            "--period",
            "2026-10",
            "--no-send",
            "--output",
            str(folder / "out"),
        ]
        baseline = [sys.executable, str(folder / "baseline.py")]
        ours, base, whole, plain, worst = [], [], [], [], []
        for _ in range(args.repeat):
            base.append(run(baseline, ROOT))
            ours.append(run(reporter, ROOT))
            plain.append(run(without, ROOT))
            worst.append(run(records, ROOT))
            whole.append(run(full, ROOT))
        b_time, b_rss = min(t for t, _ in base), max(r for _, r in base)
        o_time, o_rss = min(t for t, _ in ours), max(r for _, r in ours)
        print(f"baseline (one hand-written DuckDB query): {b_time:.2f} s, peak RSS {b_rss / 1e6:.0f} MB")
        print(f"reporter compute stage (30 KPIs):        {o_time:.2f} s, peak RSS {o_rss / 1e6:.0f} MB")
        print(f"ratio: {o_time / b_time:.2f}x  (target <= 1.5x; peak RSS target <= 1500 MB)")
        p_time = min(t for t, _ in plain)
        print(
            f"compute stage without insights:          {p_time:.2f} s; insights add "
            f"{(o_time / p_time - 1) * 100:+.1f} % (target <= 10 %)"
        )
        r_time = min(t for t, _ in worst)
        print(
            f"with every KPI a record over 35 months:  {r_time:.2f} s; insights add "
            f"{(r_time / p_time - 1) * 100:+.1f} % (the look-back's worst case)"
        )
        w_time, w_rss = min(t for t, _ in whole), max(r for _, r in whole)
        print(f"whole reporter run --no-send (with the PDF): {w_time:.2f} s, peak RSS {w_rss / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
