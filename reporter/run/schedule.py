"""``reporter schedule``: run each report on its cron, unattended, exactly once per period.

APScheduler's ``CronTrigger`` computes the fire times (5-field cron, weekday and month names,
in the report's timezone, correct across DST changes). The loop around it is ours, with an
injectable clock, because what matters lives in the ledger, not in the scheduler's memory:

- **catch-up**: at start and at every wake-up, each report's past fire times are mapped to the
  periods they were for; a period with no successful run is run once. Only the newest
  ``delivery.catch_up`` missed periods (default 1) are run; older ones are logged as missed,
  not sent. Catch-up looks back no further than the first time a scheduler saw the report
  (a new deployment does not send last month's report on its first start);
- **one sender**: a run takes a lease on (report, period) in the ledger, with an expiry; a second
  scheduler on the same ledger skips it; a lease left by a killed process expires and the next
  wake-up runs the period;
- **data not ready**: a failed quality gate is retried every ``delivery.retry_every`` until
  ``delivery.give_up_after`` past the fire time; then ``alerts_to`` is told, once;
- **a bad report does not stop the others**: any exception of one report's run (not only a
  RunError: a failing SQL expression, a full disk, …) is logged, alerted once, and that period is
  retried every ``delivery.retry_every``; the other reports keep their schedule;
- SIGTERM/SIGINT stop after the current run (its lease released); SIGHUP re-reads the YAML.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from reporter.config.checks import parse_duration
from reporter.config.model import Config
from reporter.delivery.ledger import Ledger, leases, runs, schedules
from reporter.errors import ConfigError, QualityGateError, RunError
from reporter.periods import Period

LOG = logging.getLogger("reporter.schedule")


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def trigger(config: Config) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    assert config.delivery.schedule is not None
    return CronTrigger.from_crontab(config.delivery.schedule, timezone=ZoneInfo(config.report.timezone))


def next_fire(config: Config, after: dt.datetime) -> dt.datetime:
    """The first fire time strictly after ``after`` (once per local time, see fires_between)."""
    horizon = after + dt.timedelta(days=400)
    fires = fires_between(config, after - dt.timedelta(days=2), horizon)
    return next(f for f in fires if f > after)


def fires_between(config: Config, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Every fire time in ``(start, end]``, oldest first, once per local wall-clock time.

    Across the autumn change a local time such as 02:30 happens twice; APScheduler 3.11 yields
    both and then keeps returning the second: it fires once here. Across the spring change a
    02:30 that does not exist fires at 03:30, once."""
    out: list[dt.datetime] = []
    cron = trigger(config)
    zone = ZoneInfo(config.report.timezone)
    moment = start
    while True:
        fire = cron.get_next_fire_time(None, moment + dt.timedelta(microseconds=1))
        if fire is None or fire > end:
            return out
        if fire <= moment:  # stuck on a folded time: step past it
            moment += dt.timedelta(minutes=1)
            continue
        moment = fire
        wall = fire.astimezone(zone).replace(tzinfo=None)
        if out and out[-1].astimezone(zone).replace(tzinfo=None) == wall:
            continue  # the same local time again, in the repeated hour
        out.append(fire)


def period_for(config: Config, fire: dt.datetime) -> Period:
    """The period a fire is for: the last complete one at that moment, in the report's zone."""
    return Period.last_complete(fire, config.report.grain, config.report.timezone)


class LeaseStore:
    def __init__(self, ledger: Ledger, holder: str):
        self.engine = ledger.engine
        self.holder = holder

    def acquire(self, report: str, period: str, now: dt.datetime, seconds: float) -> bool:
        expires = now + dt.timedelta(seconds=seconds)
        try:
            with self.engine.begin() as conn:
                row = conn.execute(
                    sa.select(leases).where(leases.c.report == report, leases.c.period == period)
                ).first()
                if row is not None and _aware(row.expires) > now and row.holder != self.holder:
                    return False
                if row is not None:
                    conn.execute(
                        leases.delete().where(
                            leases.c.report == report,
                            leases.c.period == period,
                            leases.c.holder == row.holder,
                        )
                    )
                conn.execute(
                    leases.insert().values(report=report, period=period, holder=self.holder, expires=expires)
                )
            return True
        except sa.exc.IntegrityError:
            return False
        except sa.exc.OperationalError as exc:  # SQLite "database is locked": another took it
            LOG.info("lease for %s %s not taken (%s)", report, period, exc.orig)
            return False

    def release(self, report: str, period: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                leases.delete().where(
                    leases.c.report == report, leases.c.period == period, leases.c.holder == self.holder
                )
            )


@dataclass
class Pending:
    """A period held back by its quality gate: retried until it is given up."""

    fire: dt.datetime
    next_try: dt.datetime


@dataclass
class Scheduler:
    path: Path
    output: Path | None = None
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    env: dict[str, str] | None = None
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    lease_seconds: float = 3600.0
    run: Callable[..., Any] | None = None  # the pipeline's run_report (injectable in tests)
    configs: list[Config] = field(default_factory=list)
    pending: dict[tuple[str, str], Pending] = field(default_factory=dict)
    given_up: set[tuple[str, str]] = field(default_factory=set)
    announced: set[tuple[str, str]] = field(default_factory=set)
    alerted: set[tuple[str, str]] = field(default_factory=set)  # failures already told to alerts_to
    stop: threading.Event = field(default_factory=threading.Event)
    reload: threading.Event = field(default_factory=threading.Event)

    def load(self) -> None:
        from reporter.render.texts import load_checked

        configs = load_checked(self.path, self.env)
        self.configs = [c for c in configs if c.delivery.schedule]
        for c in configs:
            if not c.delivery.schedule:
                LOG.warning("%s: no delivery.schedule, not scheduled", c.report.id)
        for c in self.configs:
            LOG.info("%s: next run %s", c.report.id, next_fire(c, self.clock()).isoformat())

    def ledger(self, config: Config) -> Ledger:
        from reporter.run.stages import output_root

        root = output_root(config, self.output)
        root.mkdir(parents=True, exist_ok=True)
        return Ledger(config.ledger_url(root))

    # one wake-up -------------------------------------------------------------------------
    def tick(self) -> list[str]:
        """Run what is due now; return the decisions taken (also logged)."""
        decisions: list[str] = []
        for config in self.configs:
            if self.stop.is_set():
                break
            try:
                with self.ledger(config) as ledger:
                    decisions += self._tick_report(config, ledger)
                self.alerted.discard((config.report.id, ""))  # working again: a new failure alerts
            except Exception as exc:  # e.g. its ledger cannot be opened: the others go on
                decisions.append(self._broken(config, exc))
        return decisions

    def _broken(self, config: Config, exc: Exception) -> str:
        """A report whose tick failed outside a run: log it, alert once, go on with the others."""
        report = config.report.id
        text = (
            f"{report}: FAILED ({type(exc).__name__}: {exc}); the other reports go on; "
            "retried at the next wake-up"
        )
        LOG.error("%s", text)
        LOG.debug("traceback", exc_info=exc)
        if (report, "") not in self.alerted:
            self.alerted.add((report, ""))
            try:
                from reporter.delivery.send import alert
                from reporter.run.stages import output_root

                alert(
                    config,
                    output_root(config, self.output),
                    "-",
                    text,
                    self.clock(),
                    env=self.env,
                    subject="scheduler could not run this report",
                    body=text + "\n",
                )
            except Exception as second:
                LOG.error("could not send the alert: %s", second)
        return text

    def _first_seen(self, ledger: Ledger, report: str, now: dt.datetime) -> dt.datetime:
        with ledger.engine.begin() as conn:
            row = conn.execute(sa.select(schedules).where(schedules.c.report == report)).first()
            if row is not None:
                return _aware(row.first_seen)
            with contextlib.suppress(sa.exc.IntegrityError):
                conn.execute(schedules.insert().values(report=report, first_seen=now))
        return now

    def _succeeded(self, ledger: Ledger, report: str, period: str) -> bool:
        with ledger.engine.connect() as conn:
            return (
                conn.execute(
                    sa.select(runs.c.id).where(
                        runs.c.report == report, runs.c.period == period, runs.c.outcome == "ok"
                    )
                ).first()
                is not None
            )

    def _tick_report(self, config: Config, ledger: Ledger) -> list[str]:
        now = self.clock()
        report = config.report.id
        since = self._first_seen(ledger, report, now)
        fires = fires_between(config, since, now)
        missed: list[tuple[dt.datetime, Period]] = []
        seen: set[str] = set()
        decisions = []
        for fire in fires:
            period = period_for(config, fire)
            if period.label in seen:
                continue
            seen.add(period.label)
            key = (report, period.label)
            if self._succeeded(ledger, report, period.label):
                if key not in self.announced and now - fire < dt.timedelta(days=1):
                    decisions.append(f"{report} {period.label}: fired, already sent, skipped")
                self.announced.add(key)
            elif key not in self.given_up:
                missed.append((fire, period))
        keep = config.delivery.catch_up or 1
        for fire, period in missed[:-keep] if len(missed) > keep else []:
            decisions.append(
                f"{report} {period.label}: missed (fired {fire.isoformat()}), not sent: "
                f"older than catch_up={keep}"
            )
            self.given_up.add((report, period.label))
        for fire, period in missed[-keep:]:
            key = (report, period.label)
            pending = self.pending.get(key)
            if pending is not None and now < pending.next_try:
                continue
            decisions.append(self._run_one(config, ledger, fire, period, now))
        for text in decisions:
            LOG.info("%s", text)
        return decisions

    def _run_one(
        self, config: Config, ledger: Ledger, fire: dt.datetime, period: Period, now: dt.datetime
    ) -> str:
        from reporter.run.pipeline import run_report

        report, key = config.report.id, (config.report.id, period.label)
        leases_ = LeaseStore(ledger, self.holder)
        if not leases_.acquire(report, period.label, now, self.lease_seconds):
            return f"{report} {period.label}: held by another scheduler, skipped"
        try:
            if self._succeeded(ledger, report, period.label):  # sent while we waited for the lease
                return f"{report} {period.label}: already sent, skipped"
            late = now - fire
            kind = "caught up" if late > dt.timedelta(minutes=5) else "fired"
            try:
                (self.run or run_report)(
                    config,
                    period=period.label,
                    now=now,
                    output=self.output,
                    env=self.env,
                    trigger="schedule",
                    alert_on_gate=False,
                    alert_on_failure=key not in self.alerted,
                )
            except QualityGateError as exc:
                give_up = parse_duration(config.delivery.give_up_after)
                if now - fire >= give_up:
                    self.given_up.add(key)
                    self.pending.pop(key, None)
                    from reporter.delivery.send import alert
                    from reporter.run.stages import output_root

                    alert(
                        config,
                        output_root(config, self.output),
                        period.label,
                        f"gave up after {config.delivery.give_up_after}: {exc}",
                        now,
                        env=self.env,
                    )
                    return f"{report} {period.label}: data still not ready, gave up and alerted"
                retry = parse_duration(config.delivery.retry_every)
                self.pending[key] = Pending(fire, now + retry)
                return f"{report} {period.label}: data not ready, held; retry at {(now + retry).isoformat()}"
            except Exception as exc:  # any failure: alerted (once), retried later, the others go on
                self.alerted.add(key)
                retry = parse_duration(config.delivery.retry_every)
                self.pending[key] = Pending(fire, now + retry)
                text = str(exc) if isinstance(exc, RunError) else f"{type(exc).__name__}: {exc}"
                LOG.debug("traceback", exc_info=exc)
                return f"{report} {period.label}: FAILED: {text}; retry at {(now + retry).isoformat()}"
            self.pending.pop(key, None)
            self.alerted.discard(key)
            self.announced.add(key)
            return f"{report} {period.label}: {kind}, sent"
        finally:
            leases_.release(report, period.label)

    # the loop ----------------------------------------------------------------------------------
    def next_wake(self) -> dt.datetime:
        now = self.clock()
        times = [next_fire(c, now) for c in self.configs]
        times += [p.next_try for p in self.pending.values()]
        # wake at least every 5 minutes, so expired leases of crashed peers are noticed
        return min([*times, now + dt.timedelta(minutes=5)])

    def serve(self, sleep: Callable[[float], None] | None = None) -> None:
        self.load()
        while not self.stop.is_set():
            if self.reload.is_set():
                self.reload.clear()
                self.reread()
            self.tick()
            wait = max(0.0, (self.next_wake() - self.clock()).total_seconds())
            (sleep or self._wait)(min(wait, 300.0))
        LOG.info("stopped")

    def reread(self) -> bool:
        """SIGHUP: read the configuration again. A configuration with errors is refused, and the
        one loaded before goes on being scheduled: one typo must not stop every report."""
        LOG.info("SIGHUP: re-reading %s", self.path)
        try:
            self.load()
        except ConfigError as exc:
            LOG.error(
                "SIGHUP: %s has errors; the configuration read before is kept (%d report(s) scheduled):\n%s",
                self.path,
                len(self.configs),
                exc,
            )
            return False
        return True

    def _wait(self, seconds: float) -> None:
        """Sleep until the next wake-up, a stop, or a SIGHUP (checked every second: a reload
        does not wait for the next wake-up, up to 5 minutes away)."""
        end = time.monotonic() + seconds
        while not self.stop.is_set() and not self.reload.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            self.stop.wait(min(left, 1.0))

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload.set())
