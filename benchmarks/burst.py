"""Burst benchmark: N filtered reports (compute + PDF) on the demo data, in the same run, on
this machine's process pool (executor: local, 2 processes) and on a Dask LocalCluster (executor:
dask, 2 worker processes of 1 thread, loopback TCP), plus Dask's overhead per task (empty tasks
that carry back as many bytes as an average PDF) and the cluster's start. Expect parity here:
the point of Dask is that workers on more machines add up.

    .venv/bin/python benchmarks/burst.py [--reports 200] [--workers 2] [--rounds 5] [--local-1]

The reports are split into rounds that alternate the two executors, so that both see the same
load on a shared machine.

--local-1 also times one process (the pool's own speed-up, the benchmark's earlier target).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

import dask

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reporter.config import load_config  # noqa: E402
from reporter.config.model import Burst  # noqa: E402
from reporter.periods import Period  # noqa: E402
from reporter.run.burst import ONE_TASK_PER_THREAD, dask_bursts, render_bursts  # noqa: E402


def payload(size: int) -> bytes:
    """What an empty task sends back: as many bytes as a PDF."""
    return os.urandom(size)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def warm() -> None:
    """Import what a burst task needs, on a worker."""
    import weasyprint  # noqa: F401

    import reporter.run.burst  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="alternate local and Dask this many times")
    parser.add_argument("--local-1", action="store_true", help="also time one local process")
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
    print(f"load average at start: {load()}")
    if args.local_1:
        start = time.perf_counter()
        render_bursts(config, period, now, jobs, workers=1)
        one = time.perf_counter() - start
        print(f"{args.reports} burst reports, local, 1 process: {one:.1f} s")

    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with dask.config.set(ONE_TASK_PER_THREAD):  # as reporter sets up a cluster it starts itself
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
        )
    client = Client(cluster)
    started = time.perf_counter() - start
    # Fresh worker processes import reporter and WeasyPrint once (the pool's forks inherit them).
    start = time.perf_counter()
    client.run(warm)
    warmed = time.perf_counter() - start
    print(
        f"LocalCluster({args.workers} workers) started in {started:.1f} s, imports on the workers {warmed:.1f} s"
    )
    on_dask = config.model_copy(
        update={
            "delivery": config.delivery.model_copy(
                update={"burst": Burst(executor="dask", address=cluster.scheduler_address)}
            )
        }
    )
    # Rounds alternate the two executors, so both see the same load on a shared machine.
    rounds = [jobs[i :: args.rounds] for i in range(args.rounds)]
    local = on = 0.0
    pdf_sizes = []
    try:
        for i, part in enumerate(rounds, 1):
            start = time.perf_counter()
            reports = render_bursts(config, period, now, part, workers=args.workers)
            took_local = time.perf_counter() - start
            assert all(r.pdf for r in reports)
            pdf_sizes += [len(r.pdf or b"") for r in reports]
            start = time.perf_counter()
            back = list(dask_bursts(on_dask, period, now, part))
            took_dask = time.perf_counter() - start
            assert sorted(r.email for r in back) == sorted(e for e, _ in part)
            assert all(r.pdf and r.error is None for r in back)
            local, on = local + took_local, on + took_dask
            print(
                f"round {i}: {len(part)} reports, local pool {took_local:.1f} s, Dask {took_dask:.1f} s "
                f"(load {load()})"
            )
        pdf_size = sum(pdf_sizes) // len(pdf_sizes)
        # Dask's own cost per task: empty tasks that send back an average PDF's bytes.
        start = time.perf_counter()
        futures = [client.submit(payload, pdf_size, pure=False) for _ in range(args.reports)]
        for future in futures:
            assert len(future.result()) == pdf_size
        empty = time.perf_counter() - start
    finally:
        client.close()
        cluster.close()
    n = args.reports
    print(
        f"{n} burst reports, local pool, {args.workers} processes: {local:.1f} s ({local / n * 1000:.0f} ms per report)"
    )
    print(
        f"{n} burst reports, Dask LocalCluster, {args.workers} workers: {on:.1f} s ({on / n * 1000:.0f} ms per report)"
    )
    print(f"Dask / local pool: {on / local:.2f}x (expect about 1.0x on one machine)")
    print(
        f"{n} empty tasks returning {pdf_size / 1024:.0f} KiB each: {empty:.2f} s ({empty / n * 1000:.1f} ms per "
        f"task, {empty / local * 100:.1f} % of a report's time in the pool)"
    )
    if args.local_1:
        print(f"local pool speed-up over 1 process: {one / local:.2f}x")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
