"""The query timeout's watch (``reporter.compute.metrics.Watch``): one thread for every query of
a report's compute stage, a query still stopped at its timeout, Ctrl-C still Ctrl-C.

(The end-to-end case, a run stopped by REPORTER_QUERY_TIMEOUT with its one-line error, is
tests/test_costs.py::test_a_slow_metric_query_of_a_run_is_stopped_at_the_operators_timeout.)"""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from reporter.compute import metrics
from reporter.compute.database import compute
from reporter.config import load_config
from reporter.errors import RunError
from reporter.periods import Period
from reporter.sources import SourceInfo

ROOT = Path(__file__).resolve().parent.parent
SLOW = "SELECT count(*) FROM range(3000000000) a WHERE a.range % 7 = 3"  # minutes, unless stopped


def _counting_thread_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads started from now on (Thread.start still starts them)."""
    started: list[str] = []
    real = threading.Thread.start

    def start(self: threading.Thread) -> None:
        started.append(self.name)
        real(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    return started


def _queries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    ran: list[str] = []
    real = metrics._run

    def run(con: Any, info: Any, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        ran.append(sql)
        return real(con, info, sql, params)

    monkeypatch.setattr(metrics, "_run", run)
    return ran


def test_one_watch_thread_serves_every_query_of_the_demos_compute_stage(monkeypatch):
    """The demo's compute stage runs dozens of DuckDB queries; one thread watches them all (a
    timer thread per query started as many threads as queries)."""
    config = load_config(ROOT / "config" / "example.yaml")
    ran = _queries(monkeypatch)
    started = _counting_thread_starts(monkeypatch)
    results = compute(config, Period.parse("2026-10", "month"), dt.datetime(2026, 11, 3, tzinfo=dt.UTC))
    assert results.kpis, "the demo computed nothing"
    assert len(ran) >= 30, len(ran)
    assert started.count("reporter-query-watch") == 1, started
    assert len(started) <= 2, started  # the watch, and at most one thread of the sources stage
    assert not [t for t in threading.enumerate() if t.name == "reporter-query-watch"], (
        "the watch outlived the stage"
    )


def _info() -> SourceInfo:
    return SourceInfo(
        name="orders",
        kind="csv",
        location="orders.csv",
        rows=0,
        first_date=None,
        last_date=None,
        sha256=None,
        columns=[],
    )


def test_a_query_outside_a_compute_stage_has_a_watch_of_its_own_and_is_stopped(monkeypatch):
    monkeypatch.setenv("REPORTER_QUERY_TIMEOUT", "0.3")
    con = duckdb.connect()
    started = time.monotonic()
    with pytest.raises(RunError) as caught:
        metrics._run(con, _info(), SLOW, [])
    took = time.monotonic() - started
    assert str(caught.value) == (
        "source 'orders': computing its metrics took longer than 0.3 s and was stopped; simplify the "
        "metrics' expr and where, or allow more time with REPORTER_QUERY_TIMEOUT"
    )
    assert 0.3 <= took < 10, took
    assert con.execute("SELECT 42").fetchall() == [(42,)]  # the connection serves the next query


def test_the_watch_stops_the_query_that_outlives_its_timeout_not_the_ones_before_it(monkeypatch):
    """Quick queries, then a slow one, under one watch: only the slow one is stopped, after its
    own timeout counted from its start (not from the watch's)."""
    monkeypatch.setenv("REPORTER_QUERY_TIMEOUT", "0.5")
    con = duckdb.connect()
    with metrics.watching() as watch:
        for _ in range(20):
            assert metrics._run(con, _info(), "SELECT 1", []) == [(1,)]
        time.sleep(0.7)  # longer than the timeout: the next query's clock starts when it does
        assert metrics._run(con, _info(), "SELECT 2", []) == [(2,)]
        started = time.monotonic()
        with pytest.raises(RunError, match=r"took longer than 0\.5 s"):
            metrics._run(con, _info(), SLOW, [])
        assert 0.5 <= time.monotonic() - started < 10
        assert watch.current is None


def test_an_interrupt_that_is_not_the_watchs_stays_an_interrupt(monkeypatch):
    """Ctrl-C (here another thread interrupting the connection) is not reported as a timeout."""
    monkeypatch.setenv("REPORTER_QUERY_TIMEOUT", "60")
    con = duckdb.connect()
    threading.Timer(0.3, con.interrupt).start()
    with metrics.watching(), pytest.raises(duckdb.InterruptException):
        metrics._run(con, _info(), SLOW, [])
