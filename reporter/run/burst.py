"""Bursting: one filtered report per recipient (``delivery.email.recipients[].filter``),
computed and rendered in parallel on all cores.

Each worker process reads the sources once into its own DuckDB, then computes and renders the
recipients it is given; the parent process writes the files and sends through the ledger, so
the ledger has a single writer.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from reporter.compute.database import open_database
from reporter.compute.report import compute_results
from reporter.config.model import Config
from reporter.periods import Period
from reporter.results import Results
from reporter.run.stages import describe, render_pdf


@dataclass
class BurstReport:
    email: str
    results: Results
    pdf: bytes | None  # None when the filtered data fails the quality gate


_STATE: dict[str, Any] = {}


def _init(config: Config) -> None:
    con, infos = open_database(config)
    _STATE.update(config=config, con=con, infos=infos)


def _one(job: tuple[str, dict[str, Any], Period, dt.datetime]) -> BurstReport:
    email, filter, period, now = job
    config: Config = _STATE["config"]
    results = compute_results(_STATE["con"], config, _STATE["infos"], period, now, filter=filter)
    describe(config, results)
    pdf = render_pdf(config, results) if results.quality.passed else None
    return BurstReport(email, results, pdf)


def render_bursts(
    config: Config,
    period: Period,
    now: dt.datetime,
    jobs: Sequence[tuple[str, dict[str, Any]]],
    workers: int | None = None,
) -> list[BurstReport]:
    """Compute and render every recipient's filtered report; results in the order of ``jobs``."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    tasks = [(email, dict(filter), period, now) for email, filter in jobs]
    if workers == 1:
        _init(config)
        try:
            return [_one(t) for t in tasks]
        finally:
            _STATE["con"].close()
            _STATE.clear()
    with ProcessPoolExecutor(max_workers=workers, initializer=_init, initargs=(config,)) as pool:
        return list(pool.map(_one, tasks, chunksize=max(1, len(tasks) // (workers * 4))))
