"""What computing insights costs, in one process, on the compute benchmark's data (10 M rows of
orders, 36 months, 30 KPIs; benchmarks/compute.py): the compute stage's queries and formulas
(``compute_results``, the sources already read into DuckDB) with insights on and off, in
alternating runs, medians of wall and CPU time (CPU, DuckDB's threads included, is what a
loaded machine changes least). For the partial month the benchmark reports (2026-10: the data
ends on the 16th) and for a complete one (2026-09), and where the extra time goes: the record
look-back's query (the older periods) and the contributors' queries.

    .venv/bin/python benchmarks/insights.py [--rows 10000000] [--runs 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compute import GENERATE, config_text  # noqa: E402

NOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    import duckdb

    import reporter.compute.report as report
    from reporter.compute.database import open_database
    from reporter.config import load_config
    from reporter.periods import Period

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        parquet = folder / "orders.parquet"
        duckdb.connect().execute(GENERATE.format(rows=args.rows, path=parquet))
        (folder / "on.yaml").write_text(config_text(parquet), encoding="utf-8")
        (folder / "off.yaml").write_text(
            config_text(parquet) + "insights: {enabled: false}\n", encoding="utf-8"
        )
        on, off = load_config(folder / "on.yaml"), load_config(folder / "off.yaml")
        con, infos = open_database(on)

        # time the queries insights add, where they are made (the functions report.py calls)
        spent: dict[str, float] = {}
        period_metrics, grouped_at = report.period_metrics, report.grouped_metrics_at

        def timed_periods(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return period_metrics(*a, **k)
            finally:
                if k.get("only") is not None:  # the record look-back's older periods
                    spent["look-back"] = spent.get("look-back", 0.0) + time.perf_counter() - start

        def timed_grouped(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return grouped_at(*a, **k)
            finally:
                spent["contributors"] = spent.get("contributors", 0.0) + time.perf_counter() - start

        report.period_metrics, report.grouped_metrics_at = timed_periods, timed_grouped  # type: ignore[assignment]
        for label in ("2026-10", "2026-09"):
            period = Period.parse(label, "month")
            wall: dict[str, list[float]] = {"on": [], "off": []}
            cpu: dict[str, list[float]] = {"on": [], "off": []}
            parts: dict[str, list[float]] = {"look-back": [], "contributors": []}
            for _ in range(args.runs):
                for name, config in (("on", on), ("off", off)):
                    spent.clear()
                    w, c = time.perf_counter(), time.process_time()
                    report.compute_results(con, config, infos, period, NOW)
                    wall[name].append(time.perf_counter() - w)
                    cpu[name].append(time.process_time() - c)
                    if name == "on":
                        for part in parts:
                            parts[part].append(spent.get(part, 0.0))
            w_on, w_off = statistics.median(wall["on"]), statistics.median(wall["off"])
            c_on, c_off = statistics.median(cpu["on"]), statistics.median(cpu["off"])
            print(
                f"{label} ({'partial' if label == '2026-10' else 'complete'} month), {args.runs} runs each:"
            )
            print(f"  queries with insights:    wall {w_on:.2f} s, CPU {c_on:.2f} s")
            print(f"  queries without insights: wall {w_off:.2f} s, CPU {c_off:.2f} s")
            print(f"  insights add:             wall {w_on - w_off:+.2f} s, CPU {c_on - c_off:+.2f} s")
            for part, values in parts.items():
                print(f"    of which {part}: wall {statistics.median(values):.2f} s")
        con.close()


if __name__ == "__main__":
    main()
