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
import resource
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
start, cpu = time.perf_counter(), time.process_time()
reports = render_bursts(config, period, now, jobs, workers=1)
took, cpu = time.perf_counter() - start, time.process_time() - cpu
assert all(r.pdf for r in reports), [r.error for r in reports]
print(took, cpu)
"""
)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run(code: str, args: list[str], tree: Path | None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process (user + system, its threads included), stdout)."""
    env = dict(os.environ, PYTHONPATH=str(tree or ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return took, cpu, done.stdout.strip()


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
    cpus: dict[str, list[float]] = {"warm": [], "fresh": [], "before": []}  # CPU seconds per report
    print(f"load average at start: {load()}")
    for r in range(args.rounds):
        modes = ["warm", "fresh"] + (["before"] if args.before is not None else [])
        for mode in modes[r % len(modes) :] + modes[: r % len(modes)]:  # each goes first in turn
            if mode == "fresh":
                runs = [run(WARM, [demo, str(r * n + i), "1"], None) for i in range(n)]
                rates["fresh"].append(n / sum(wall for wall, _, _ in runs))
                cpus["fresh"].append(sum(cpu for _, cpu, _ in runs) / n)
            else:
                _, _, out = run(WARM, [demo, str(r * n), str(n)], args.before if mode == "before" else None)
                wall, cpu = (float(x) for x in out.split())
                rates[mode].append(n / wall)
                cpus[mode].append(cpu / n)
        shown = ", ".join(f"{k} {v[-1]:.2f} ({cpus[k][-1]:.2f} CPU s each)" for k, v in rates.items() if v)
        print(f"round {r + 1}: reports per second per worker: {shown} (load {load()})")
    print(f"{n} reports per round, {args.rounds} rounds, medians of the rounds, one worker:")
    for mode, label in (
        ("warm", "warm worker (this tree)"),
        ("before", f"warm worker ({args.before})"),
        ("fresh", "a fresh process per report"),
    ):
        if rates[mode]:
            rate, cpu = statistics.median(rates[mode]), statistics.median(cpus[mode])
            print(
                f"  {label}: {rate:.2f} reports/s ({1000 / rate:.0f} ms per report), {cpu:.2f} CPU s per report"
            )
    warm, fresh = statistics.median(cpus["warm"]), statistics.median(cpus["fresh"])
    print(f"  CPU per report, fresh process / warm worker: {fresh / warm:.2f}x")
    if cpus["before"]:
        print(
            f"  CPU per report, warm worker before / this tree: {statistics.median(cpus['before']) / warm:.2f}x"
        )
    print(f"load average at end: {load()}")
    os.unlink(demo)


if __name__ == "__main__":
    main()
