"""Warm workers: burst reports per second in one worker process that renders one recipient's
report after another (WeasyPrint imported, the template's fonts loaded once, the sources read
once), against a fresh process per report (what a worker costs without any reuse), in
alternating rounds so that both see the same load on a shared machine.

    .venv/bin/python benchmarks/warm.py [--reports 8] [--rounds 3] [--before DIR]

Each report is the demo cut by salesperson (crm and orders filtered, the other sources shared),
computed and rendered to PDF/A as a burst worker does (``reporter.run.burst``); the
configuration is validated once by the benchmark and handed to each process pickled, as a pool
worker receives it. Warm: one process runs ``render_bursts(..., workers=1)`` over ``--reports``
recipients, timed inside it from the first report's start (nothing imported for the render
yet) to the last one's end. Fresh: ``--reports`` processes, each reading the sources and
rendering one report, timed as whole processes (interpreter and imports included). ``--before DIR`` also runs the
warm worker from another source tree (``git archive`` of an earlier commit) in the same rounds.
Each mode goes first in turn, so that a load that falls or rises during a round favours none.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETUP = """
import datetime as dt, pickle, sys, time
from pathlib import Path
from reporter.periods import Period
from reporter.run.burst import render_bursts
config = pickle.loads(Path(sys.argv[1]).read_bytes())  # as a pool worker receives it
sellers = ["Alice Martin", "Bruno Petit", "Chloé Durand", "David Leroy"]
first, count = int(sys.argv[2]), int(sys.argv[3])
jobs = [(f"r{i:03d}@example.test", {"salesperson": sellers[i % 4]}) for i in range(first, first + count)]
period, now = Period.parse("2026-10", "month"), dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)
"""

WARM = (
    SETUP
    + """
start = time.perf_counter()
reports = render_bursts(config, period, now, jobs, workers=1)
took = time.perf_counter() - start
assert all(r.pdf for r in reports), [r.error for r in reports]
print(took)
"""
)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run(code: str, args: list[str], tree: Path | None) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(tree or ROOT))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return took, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=8, help="reports per round and per mode")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, default=None, help="another tree's warm worker, same rounds")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from reporter.config import load_config

    config = load_config(ROOT / "config" / "example.yaml", env={})
    shared = {
        name: src if name in ("crm", "orders") else src.model_copy(update={"shared": True})
        for name, src in config.sources.items()
    }
    handle = tempfile.NamedTemporaryFile(suffix=".pickle", delete=False)  # noqa: SIM115
    handle.write(pickle.dumps(config.model_copy(update={"sources": shared})))
    handle.close()
    demo = handle.name
    n = args.reports
    rates: dict[str, list[float]] = {"warm": [], "fresh": [], "before": []}
    print(f"load average at start: {load()}")
    for r in range(args.rounds):
        modes = ["warm", "fresh"] + (["before"] if args.before is not None else [])
        for mode in modes[r % len(modes) :] + modes[: r % len(modes)]:  # each goes first in turn
            if mode == "fresh":
                total = sum(run(WARM, [demo, str(r * n + i), "1"], None)[0] for i in range(n))
                rates["fresh"].append(n / total)
            else:
                _, out = run(WARM, [demo, str(r * n), str(n)], args.before if mode == "before" else None)
                rates[mode].append(n / float(out))
        shown = ", ".join(f"{k} {v[-1]:.2f}" for k, v in rates.items() if v)
        print(f"round {r + 1}: reports per second per worker: {shown} (load {load()})")
    warm, fresh = statistics.median(rates["warm"]), statistics.median(rates["fresh"])
    print(f"{n} reports per round, {args.rounds} rounds, medians of the rounds, one worker:")
    print(f"  warm worker (this tree): {warm:.2f} reports/s ({1000 / warm:.0f} ms per report)")
    if rates["before"]:
        before = statistics.median(rates["before"])
        print(
            f"  warm worker ({args.before}): {before:.2f} reports/s ({1000 / before:.0f} ms per report); "
            f"this tree {warm / before:.2f}x"
        )
    print(
        f"  a fresh process per report: {fresh:.2f} reports/s ({1000 / fresh:.0f} ms per report); "
        f"warm {warm / fresh:.2f}x"
    )
    print(f"load average at end: {load()}")
    os.unlink(demo)


if __name__ == "__main__":
    main()
