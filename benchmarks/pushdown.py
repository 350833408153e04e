"""Pushdown benchmark: a report over N orders in PostgreSQL, aggregates pushed down to the
database against the rows pulled into the process (``pushdown: false``), in the same run.

The benchmark generates the table itself (``bench_orders_<N>``, kept for the next run), writes
two YAML files that differ only in ``pushdown``, and runs each as a fresh process computing the
report (what ``reporter run --no-send`` does before rendering), imports included. It measures:

- wall time of the child process;
- bytes received from PostgreSQL, counted by a loopback TCP relay between the child and the
  server (everything the server sent on that connection: rows, metadata, protocol);
- peak RSS, from the child's rusage.

Both modes must give the same KPI values (checked). Figures go in benchmarks/README.md.

    REPORTER_TEST_PG_URL=postgresql+psycopg://reporter:reporter-ci@127.0.0.1:5432/reporter_test \\
        .venv/bin/python benchmarks/pushdown.py --rows 1000000 --rows 5000000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GENERATE = """
CREATE TABLE {table} AS
SELECT
  i AS order_id,
  TIMESTAMPTZ '2023-11-01 00:00:00+00' + make_interval(secs => (i * 7919) % (36 * 30 * 86400)) AS ordered_at,
  'C' || ((i * 104729) % 50000) AS customer_id,
  (ARRAY['Alice', 'Bruno', 'Chloé', 'David', 'Emma'])[1 + (i * 31) % 5] AS salesperson,
  (ARRAY['Google Ads', 'LinkedIn Ads', 'Salon', 'Newsletter', 'Webinaires', 'Partenaires'])[1 + (i * 17) % 6]
    AS campaign,
  ((i * 7727) % 100000) / 100.0 AS amount,
  ((i * 613) % 40000) / 100.0 AS margin,
  (ARRAY['won', 'lost', 'open', 'quote'])[1 + (i * 13) % 4] AS stage,
  CASE WHEN (i * 29) % 10 = 0 THEN 1 ELSE 0 END AS new_customer
FROM generate_series(CAST(1 AS bigint), {rows}) AS s(i)
"""

YAML = """
report: {{id: bench, title: Bench, timezone: Europe/Paris, grain: month}}
sources:
  orders: {{type: sql, connection: bench, table: {table}, date_column: ordered_at, pushdown: {pushdown}}}
metrics:
  revenue: {{source: orders, agg: sum, column: amount}}
  margin: {{source: orders, agg: sum, column: margin}}
  orders: {{source: orders, agg: count}}
  customers: {{source: orders, agg: count_distinct, column: customer_id}}
  new_customers: {{source: orders, agg: count_distinct, column: customer_id, where: "new_customer = 1"}}
  won: {{source: orders, agg: count, where: "stage = 'won'"}}
  quotes: {{source: orders, agg: count, where: "stage in ('quote', 'won', 'lost')"}}
  avg_amount: {{source: orders, agg: avg, column: amount}}
  biggest: {{source: orders, agg: max, column: amount}}
kpis:
  revenue: {{formula: revenue, format: currency}}
  margin_rate: {{formula: margin / revenue, format: percent}}
  orders: {{formula: orders}}
  customers: {{formula: customers}}
  new_customers: {{formula: new_customers}}
  win_rate: {{formula: won / quotes, format: percent}}
  average_order: {{formula: avg_amount, format: currency}}
  biggest_order: {{formula: biggest, format: currency}}
objectives:
  - {{id: grow, title: Grow, kpi: revenue, target: {{change_vs_prior_year: 0.05}}, owner: Boss,
     due: 2026-12-31, cumulative: true}}
breakdowns:
  - {{kpi: revenue, by: salesperson}}
  - {{kpi: win_rate, by: campaign, top: 3}}
portfolio: {{by: campaign, cost: margin, value: revenue, rules: {{keep: 1.5, improve: 0.8}}}}
quality: {{require_complete_period: true, min_rows: 1}}
"""

CHILD = """
import datetime as dt, json, sys
from pathlib import Path
from reporter.config import load_config
from reporter.compute.database import compute
from reporter.periods import Period
config = load_config(Path(sys.argv[1]), env={"REPORTER_CONNECTION_BENCH": sys.argv[2]})
results = compute(config, Period.parse("2026-10", "month"), dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
Path(sys.argv[3]).write_text(json.dumps({k: v.value for k, v in results.kpis.items()}))
"""


class Relay:
    """A loopback TCP relay to PostgreSQL that counts the bytes the server sends."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.received = 0
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, up, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                if count:
                    with self.lock:
                        self.received += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def take(self) -> int:
        with self.lock:
            n, self.received = self.received, 0
        return n

    def close(self) -> None:
        self.server.close()


def ensure_table(url: str, rows: int) -> str:
    import sqlalchemy as sa

    table = f"bench_orders_{rows}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        exists = conn.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar_one()
        if exists and conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == rows:
            return table
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        started = time.perf_counter()
        conn.execute(sa.text(GENERATE.format(table=table, rows=rows)))
        conn.execute(sa.text(f"ANALYZE {table}"))
        print(f"generated {rows:,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    engine.dispose()
    return table


def run_child(folder: Path, yaml_path: Path, url: str) -> tuple[float, int, dict[str, float]]:
    out = folder / (yaml_path.stem + ".json")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(yaml_path), url, str(out)], cwd=ROOT, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{yaml_path.name}: the child failed ({status})")
    return wall, usage.ru_maxrss // 1024, json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--rows", type=int, action="append", help="row counts (repeatable); default 1,000,000"
    )
    parser.add_argument("--url", default=os.environ.get("REPORTER_TEST_PG_URL"))
    args = parser.parse_args()
    if not args.url:
        raise SystemExit("give --url or set REPORTER_TEST_PG_URL (a PostgreSQL SQLAlchemy URL)")
    from sqlalchemy.engine import make_url

    real = make_url(args.url)
    relay = Relay(real.host or "127.0.0.1", real.port or 5432)
    via = real.set(host="127.0.0.1", port=relay.port, query={"sslmode": "disable"})
    via_url = via.render_as_string(hide_password=False)
    rows_list = args.rows or [1_000_000]
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for rows in rows_list:
            table = ensure_table(args.url, rows)
            measured = {}
            for mode in ("true", "false"):
                path = folder / f"pushdown-{mode}-{rows}.yaml"
                path.write_text(textwrap.dedent(YAML.format(table=table, pushdown=mode)), encoding="utf-8")
                relay.take()
                wall, rss, kpis = run_child(folder, path, via_url)
                measured[mode] = (wall, relay.take(), rss, kpis)
                print(
                    f"{rows:,} rows, pushdown {mode}: {wall:.2f} s, {measured[mode][1]:,} bytes, {rss} MB",
                    file=sys.stderr,
                )
            pushed, pulled = measured["true"], measured["false"]
            for name, value in pushed[3].items():
                other = pulled[3][name]
                same = value == other or (
                    value is not None
                    and other is not None
                    and abs(value - other) <= 1e-9 * max(1.0, abs(other))
                )
                if not same:
                    raise SystemExit(f"KPI {name} differs: pushdown {value}, pull {other}")
            lines.append(
                f"| {time.strftime('%Y-%m-%d')} | {rows:,} | {pushed[0]:.2f} s | {pulled[0]:.2f} s | "
                f"**{pulled[0] / pushed[0]:.1f}×** | {pushed[1] / 1e3:,.1f} kB | {pulled[1] / 1e6:,.1f} MB | "
                f"**{pushed[2]} MB** | {pulled[2]} MB |"
            )
    relay.close()
    print(
        "| date | rows | pushdown | pull | speed-up | received, pushdown | received, pull "
        "| peak RSS, pushdown | peak RSS, pull |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
