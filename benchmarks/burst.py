"""Burst benchmark: 100 filtered reports (compute + PDF) on the demo data, with 1 and with 2
worker processes, in the same run. Target: >= 1.7x faster on 2 cores.

    .venv/bin/python benchmarks/burst.py [--reports 100]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reporter.config import load_config  # noqa: E402
from reporter.periods import Period  # noqa: E402
from reporter.run.burst import render_bursts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=100)
    args = parser.parse_args()
    config = load_config(ROOT / "config" / "example.yaml", env={})
    # The demo's salesperson column is in crm and orders; the other sources are shared.
    sources = {
        name: src if name in ("crm", "orders") else src.model_copy(update={"shared": True})
        for name, src in config.sources.items()
    }
    config = config.model_copy(update={"sources": sources})
    sellers = ["Alice Martin", "Bruno Petit", "Chloé Durand", "David Leroy"]
    jobs = [(f"r{i:03d}@example.test", {"salesperson": sellers[i % 4]}) for i in range(args.reports)]
    period = Period.parse("2026-10", "month")
    now = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)
    times = {}
    for workers in (1, 2):
        start = time.perf_counter()
        reports = render_bursts(config, period, now, jobs, workers=workers)
        times[workers] = time.perf_counter() - start
        assert len(reports) == args.reports
        assert all(r.pdf for r in reports)
        print(
            f"{args.reports} burst reports, {workers} worker(s): {times[workers]:.1f} s "
            f"({times[workers] / args.reports * 1000:.0f} ms per report)"
        )
    print(f"speed-up with 2 workers: {times[1] / times[2]:.2f}x (target >= 1.7x)")


if __name__ == "__main__":
    main()
