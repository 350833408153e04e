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
- **each run in its own worker process, with a deadline** (``delivery.schedule_timeout``): the
  loop never waits for a run; a run past its deadline is killed, recorded as failed in the
  ledger, alerted once and retried like any failure. One run at a time per report;
- a cron that fires rarely (29 February) fires on its next date, however far; one that never
  fires (31 February) is refused by validation and, should one get here, is never due;
- SIGTERM/SIGINT stop after the runs in progress (their leases released); SIGHUP re-reads the YAML.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import socket
import sys
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
from reporter.errors import ConfigError, LedgerBusy, QualityGateError, RunError
from reporter.periods import Period

LOG = logging.getLogger("reporter.schedule")


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def trigger(config: Config, schedule: str | None = None) -> Any:
    """The cron trigger of ``delivery.schedule`` (or of ``schedule``: the alerts')."""
    from apscheduler.triggers.cron import CronTrigger

    text = schedule or config.delivery.schedule
    assert text is not None
    return CronTrigger.from_crontab(text, timezone=ZoneInfo(config.report.timezone))


def next_fire(config: Config, after: dt.datetime) -> dt.datetime | None:
    """The first fire time strictly after ``after`` (once per local time, see fires_between), or
    None when the cron never fires again (a day no month has, such as 31 February: validation
    refuses it). A rare date is found however far it is: 29 February fires in the next leap year."""
    cron = trigger(config)
    zone = ZoneInfo(config.report.timezone)
    moment = after
    for _ in range(10_000):
        fire: dt.datetime | None = cron.get_next_fire_time(None, moment + dt.timedelta(microseconds=1))
        if fire is None:
            return None
        if fire <= moment:  # stuck on a folded time: step past it
            moment += dt.timedelta(minutes=1)
            continue
        moment = fire
        if fire.astimezone(zone).fold:  # the same local time again, in the repeated hour
            continue
        return fire
    return None


def fires_between(
    config: Config, start: dt.datetime, end: dt.datetime, schedule: str | None = None
) -> list[dt.datetime]:
    """Every fire time in ``(start, end]``, oldest first, once per local wall-clock time.

    Across the autumn change a local time such as 02:30 happens twice; APScheduler 3.11 yields
    both and then keeps returning the second: it fires once here. Across the spring change a
    02:30 that does not exist fires at 03:30, once."""
    out: list[dt.datetime] = []
    cron = trigger(config, schedule)
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
        except (sa.exc.OperationalError, LedgerBusy) as exc:  # SQLite "database is locked": another took it
            LOG.info("lease for %s %s not taken (%s)", report, period, getattr(exc, "orig", exc))
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


DEFAULT_TIMEOUT = "30m"
KILL_GRACE = 5.0  # seconds a stopped worker is given to exit before it is killed


def schedule_timeout(config: Config) -> float:
    """``delivery.schedule_timeout`` in seconds (validation checked it)."""
    return parse_duration(getattr(config.delivery, "schedule_timeout", DEFAULT_TIMEOUT)).total_seconds()


@dataclass
class Worker:
    """One report's run for one period, in its own process, with a deadline."""

    config: Config
    fire: dt.datetime
    period: Period
    now: dt.datetime  # the scheduler's clock when it started (the run's `now`)
    kind: str  # "fired" or "caught up"
    process: Any
    conn: Any  # the receiving end of the pipe the worker answers on
    deadline: float  # time.monotonic() past which it is stopped
    seconds: float
    order: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.config.report.id, self.period.label)

    def done(self) -> bool:
        """It answered, or its end of the pipe is closed (it died). Not ``process.is_alive()``:
        a forkserver process's children look dead once the server is gone (a SIGTERM to the
        whole service), though they still run."""
        return bool(self.conn.poll())


_CONTEXT: Any = None


def _context() -> Any:
    """The processes reports run in: forked from a clean server process that has imported the
    pipeline, the ledger, the renderer and WeasyPrint once (fast to start, and safe: never a
    fork of this process and its threads). Each run then loads the template's fonts once."""
    global _CONTEXT
    if _CONTEXT is None:
        from reporter.render.warmup import PRELOAD

        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(list(PRELOAD))
    return _CONTEXT


def _work(
    conn: Any, run: Callable[..., Any] | None, config: Config, options: dict[str, Any], seconds: float
) -> None:
    """In the worker process: run the report once, answer ("ok"|"gate"|"failed", text)."""
    # SIGTERM/SIGINT stop the scheduler after the current run (systemd sends them to the whole
    # group): the run goes on. The scheduler stops it at its deadline; should the scheduler
    # itself die, the alarm ends the run a little later (the kernel's, it needs no Python).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.alarm(int(seconds + 2 * KILL_GRACE) + 1)
    _worker_logging(options.pop("log_level"))
    try:
        if run is None:
            from reporter.run.pipeline import run_report

            run = run_report
        run(config, **options)
    except QualityGateError as exc:
        conn.send(("gate", str(exc)))
    except RunError as exc:
        conn.send(("failed", str(exc)))
    except BaseException as exc:
        LOG.debug("traceback", exc_info=exc)
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
    else:
        conn.send(("ok", ""))
    finally:
        conn.close()


def _worker_logging(level: int) -> None:
    """The worker logs to the scheduler's standard error, as the scheduler does, redacted."""
    root = logging.getLogger()
    if not root.handlers:
        from reporter.security import RedactingFilter

        logging.basicConfig(level=logging.WARNING, format="reporter: %(message)s", stream=sys.stderr)
        for handler in root.handlers:
            handler.addFilter(RedactingFilter())
    logging.getLogger("reporter").setLevel(level)


@dataclass
class Scheduler:
    path: Path
    output: Path | None = None
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    env: dict[str, str] | None = None
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    lease_seconds: float = 3600.0
    # the pipeline's run_report; a test may inject another module-level function (it is sent to
    # the worker process by name)
    run: Callable[..., Any] | None = None
    configs: list[Config] = field(default_factory=list)
    pending: dict[tuple[str, str], Pending] = field(default_factory=dict)
    given_up: set[tuple[str, str]] = field(default_factory=set)
    announced: set[tuple[str, str]] = field(default_factory=set)
    alerted: set[tuple[str, str]] = field(default_factory=set)  # failures already told to alerts_to
    workers: dict[str, Worker] = field(default_factory=dict)  # by report id: one run at a time each
    started: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    reload: threading.Event = field(default_factory=threading.Event)
    alert_configs: list[Config] = field(default_factory=list)  # reports with alerts.rules
    alerts_seen: dict[str, dt.datetime] = field(default_factory=dict)  # by report: alert fires handled up to

    def load(self) -> None:
        from reporter.render.texts import load_checked

        configs = load_checked(self.path, self.env)
        self.configs = [c for c in configs if c.delivery.schedule]
        self.alert_configs = [c for c in configs if c.alerts is not None and c.alerts.rules]
        now = self.clock()
        for c in self.alert_configs:  # alerts are about now: fires before the start are not caught up
            self.alerts_seen.setdefault(c.report.id, now)
            LOG.info("%s: alerts evaluated at '%s' (%s)", c.report.id, c.alerts.schedule, c.report.timezone)  # type: ignore[union-attr]
        for c in configs:
            if not c.delivery.schedule and not (c.alerts is not None and c.alerts.rules):
                LOG.warning("%s: no delivery.schedule, not scheduled", c.report.id)
        for c in self.configs:
            LOG.info("%s: next run %s", c.report.id, describe_next(c, self.clock()))
        if self.configs:  # the workers' server starts now, not at the first fire time
            _context()
            multiprocessing.forkserver.ensure_running()

    def ledger(self, config: Config) -> Ledger:
        from reporter.run.stages import output_root

        root = output_root(config, self.output)
        root.mkdir(parents=True, exist_ok=True)
        return Ledger(config.ledger_url(root))

    # one wake-up -------------------------------------------------------------------------
    def tick(self, wait: bool = True) -> list[str]:
        """Start what is due now, each report in its own worker; collect the workers that have
        finished or passed their deadline; return the decisions taken (also logged). ``wait``:
        wait for the workers started (each until its deadline at most) and start what becomes
        due after them (a test's synchronous tick); the scheduler's loop never waits."""
        decisions = self._collect()
        decided: set[tuple[str, str]] = set()
        while True:
            started = self.started
            for config in self.configs:
                if self.stop.is_set():
                    break
                if config.report.id in self.workers:
                    continue  # still running: its next period waits for it
                try:
                    with self.ledger(config) as ledger:
                        decisions += self._tick_report(config, ledger, decided)
                    self.alerted.discard((config.report.id, ""))  # working again: a new failure alerts
                except Exception as exc:  # e.g. its ledger cannot be opened: the others go on
                    decisions.append(self._broken(config, exc))
            if not self.stop.is_set():
                decisions += self._tick_alerts()
            if not wait or not self.workers:
                return decisions
            decisions += self._collect(block=True)
            if self.started == started:
                return decisions

    def _tick_alerts(self) -> list[str]:
        """Evaluate the alert rules of each report whose ``alerts.schedule`` fired since the last
        look, here in the scheduler, beside the reports' workers. A report's failing alerts never
        stop the reports or the other reports' alerts (and a failing rule never stops the others:
        ``run_alerts``)."""
        from reporter.delivery.alerting import run_alerts
        from reporter.run.stages import output_root

        decisions = []
        now = self.clock()
        for config in self.alert_configs:
            report = config.report.id
            assert config.alerts is not None
            since = self.alerts_seen.setdefault(report, now)
            if not fires_between(config, since, now, config.alerts.schedule):
                continue
            self.alerts_seen[report] = now
            try:
                outcomes = run_alerts(config, now, root=output_root(config, self.output), env=self.env)
            except Exception as exc:
                decisions.append(f"{report} alerts: FAILED ({type(exc).__name__}: {exc}); reports go on")
                continue
            for o in outcomes:
                if o.sent:
                    decisions.append(f"{report} alert {o.rule}: {o.state}, sent to {', '.join(o.sent)}")
                elif o.state == "error":
                    decisions.append(f"{report} alert {o.rule}: FAILED ({o.note}); the other rules went on")
                decisions += [f"{report} alert {o.rule}: {why}" for why in o.skipped]
        for text in decisions:
            LOG.info("%s", text)
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
            self._alert(config, "-", text, subject="scheduler could not run this report", body=text + "\n")
        return text

    def _alert(self, config: Config, period: str, text: str, **kwargs: Any) -> None:
        try:
            from reporter.delivery.send import alert
            from reporter.run.stages import output_root

            alert(
                config, output_root(config, self.output), period, text, self.clock(), env=self.env, **kwargs
            )
        except Exception as second:
            LOG.error("could not send the alert: %s", second)

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

    def _tick_report(self, config: Config, ledger: Ledger, decided: set[tuple[str, str]]) -> list[str]:
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
            if key in decided or (pending is not None and now < pending.next_try):
                continue
            decided.add(key)
            text = self._start(config, ledger, fire, period, now)
            if text is not None:
                decisions.append(text)
            if report in self.workers:
                break  # one run at a time per report: the next period after this one
        for text in decisions:
            LOG.info("%s", text)
        return decisions

    def _start(
        self, config: Config, ledger: Ledger, fire: dt.datetime, period: Period, now: dt.datetime
    ) -> str | None:
        """Take the lease and start the run in its worker; a decision when none is started."""
        report, key = config.report.id, (config.report.id, period.label)
        seconds = schedule_timeout(config)
        leases_ = LeaseStore(ledger, self.holder)
        # the lease outlives the worker's deadline: no peer takes a period that is still running
        if not leases_.acquire(report, period.label, now, max(self.lease_seconds, seconds + 300)):
            return f"{report} {period.label}: held by another scheduler, skipped"
        if self._succeeded(ledger, report, period.label):  # sent while we waited for the lease
            leases_.release(report, period.label)
            return f"{report} {period.label}: already sent, skipped"
        late = now - fire
        options = {
            "period": period.label,
            "now": now,
            "output": self.output,
            "env": self.env,
            "trigger": "schedule",
            "alert_on_gate": False,
            "alert_on_failure": key not in self.alerted,
            "log_level": logging.getLogger("reporter").getEffectiveLevel(),
        }
        context = _context()
        receive, send = context.Pipe(duplex=False)
        process = context.Process(
            target=_work,
            args=(send, self.run, config, options, seconds),
            name=f"reporter {report}",
        )
        try:
            process.start()
        except BaseException:
            leases_.release(report, period.label)
            raise
        finally:
            send.close()
        self.started += 1
        self.workers[report] = Worker(
            config,
            fire,
            period,
            now,
            "caught up" if late > dt.timedelta(minutes=5) else "fired",
            process,
            receive,
            time.monotonic() + seconds,
            seconds,
            self.started,
        )
        LOG.info("%s %s: started (pid %s, deadline %s)", report, period.label, process.pid, _words(seconds))
        return None

    # the workers ----------------------------------------------------------------------------
    def _collect(self, block: bool = False) -> list[str]:
        """The decisions of the workers that have finished, or passed their deadline (stopped);
        with ``block``, wait until every worker is one or the other."""
        from multiprocessing.connection import wait

        finished: list[tuple[Worker, str]] = []
        while self.workers:
            for report, worker in list(self.workers.items()):
                if worker.done():
                    finished.append((worker, self._finished(worker)))
                elif time.monotonic() >= worker.deadline:
                    finished.append((worker, self._expired(worker)))
                else:
                    continue
                del self.workers[report]
            if not block or not self.workers:
                break
            left = min(w.deadline for w in self.workers.values()) - time.monotonic()
            wait([w.conn for w in self.workers.values()], timeout=max(0.0, min(left, 1.0)))
        decisions = [text for _, text in sorted(finished, key=lambda pair: pair[0].order)]
        for text in decisions:
            LOG.info("%s", text)
        return decisions

    def _finished(self, worker: Worker) -> str:
        try:
            outcome, text = worker.conn.recv() if worker.conn.poll() else ("died", "")
        except (EOFError, OSError):
            outcome, text = "died", ""
        worker.process.join(KILL_GRACE)
        worker.conn.close()
        if outcome == "died":
            code = worker.process.exitcode
            why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            text = f"its process ended without an answer ({why})"
            self._close_run(worker, text)
        return self._decide(worker, outcome, text)

    def _expired(self, worker: Worker) -> str:
        """Past its deadline: the worker is killed, its run recorded as failed."""
        worker.process.kill()
        worker.process.join(KILL_GRACE)
        worker.conn.close()
        text = (
            f"stopped after {_words(worker.seconds)} (delivery.schedule_timeout); "
            "nothing more is sent by this run"
        )
        self._close_run(worker, text)
        return self._decide(worker, "stopped", text)

    def _close_run(self, worker: Worker, text: str) -> None:
        """A worker that ended without finishing its run: the ledger records the run as failed
        (it would otherwise stay 'running')."""
        from reporter.delivery.ledger import holders

        report = worker.config.report.id
        try:
            with self.ledger(worker.config) as ledger:
                with ledger.engine.connect() as conn:
                    ids = [
                        row.id
                        for row in conn.execute(
                            sa.select(runs.c.id)
                            .join(holders, holders.c.run_id == runs.c.id)
                            .where(
                                runs.c.report == report,
                                runs.c.period == worker.period.label,
                                runs.c.outcome == "running",
                                holders.c.host == socket.gethostname(),
                                holders.c.pid == worker.process.pid,
                            )
                        )
                    ]
                for run_id in ids:
                    ledger.finish_run(run_id, self.clock(), "failed", text)
        except Exception as exc:
            LOG.error("%s %s: could not record the run as failed: %s", report, worker.period.label, exc)

    def _decide(self, worker: Worker, outcome: str, text: str) -> str:
        """What a finished run means for its period: sent, held for the data, or failed."""
        config, period, now = worker.config, worker.period, worker.now
        key = worker.key
        report = key[0]
        try:
            with self.ledger(config) as ledger:
                LeaseStore(ledger, self.holder).release(report, period.label)
        except Exception as exc:
            LOG.error("%s %s: could not release the lease: %s", report, period.label, exc)
        if outcome == "ok":
            self.pending.pop(key, None)
            self.alerted.discard(key)
            self.announced.add(key)
            return f"{report} {period.label}: {worker.kind}, sent"
        if outcome == "gate":
            give_up = parse_duration(config.delivery.give_up_after)
            if now - worker.fire >= give_up:
                self.given_up.add(key)
                self.pending.pop(key, None)
                self._alert(config, period.label, f"gave up after {config.delivery.give_up_after}: {text}")
                return f"{report} {period.label}: data still not ready, gave up and alerted"
            retry = parse_duration(config.delivery.retry_every)
            self.pending[key] = Pending(worker.fire, now + retry)
            return f"{report} {period.label}: data not ready, held; retry at {(now + retry).isoformat()}"
        # any failure: alerted (once), retried later, the others go on
        if outcome != "failed" and key not in self.alerted:  # killed: the run could not alert itself
            self._alert(config, period.label, f"{report} {period.label}: run FAILED: {text}")
        self.alerted.add(key)
        retry = parse_duration(config.delivery.retry_every)
        retry_at = max(now, self.clock()) + retry
        self.pending[key] = Pending(worker.fire, retry_at)
        return f"{report} {period.label}: FAILED: {text}; retry at {retry_at.isoformat()}"

    # the loop ----------------------------------------------------------------------------------
    def next_wake(self) -> dt.datetime:
        now = self.clock()
        times = [t for c in self.configs if (t := next_fire(c, now)) is not None]
        for c in self.alert_configs:
            assert c.alerts is not None
            fire = trigger(c, c.alerts.schedule).get_next_fire_time(None, now + dt.timedelta(microseconds=1))
            if fire is not None:
                times.append(fire)
        times += [p.next_try for p in self.pending.values()]
        times += [now + dt.timedelta(seconds=w.deadline - time.monotonic()) for w in self.workers.values()]
        # wake at least every 5 minutes, so expired leases of crashed peers are noticed
        return min([*times, now + dt.timedelta(minutes=5)])

    def serve(self, sleep: Callable[[float], None] | None = None) -> None:
        self.load()
        while not self.stop.is_set():
            if self.reload.is_set():
                self.reload.clear()
                self.reread()
            self.tick(wait=False)
            wait = max(0.0, (self.next_wake() - self.clock()).total_seconds())
            (sleep or self._wait)(min(wait, 300.0))
        if self.workers:  # stop after the current runs (each until its deadline at most)
            LOG.info("stopping after the runs in progress: %s", ", ".join(sorted(self.workers)))
            self._collect(block=True)
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
        """Sleep until the next wake-up, a stop, a SIGHUP (checked every second: a reload does not
        wait for the next wake-up, up to 5 minutes away), or a worker that has finished."""
        end = time.monotonic() + seconds
        while not self.stop.is_set() and not self.reload.is_set():
            left = end - time.monotonic()
            if left <= 0 or any(w.done() for w in self.workers.values()):
                return
            self.stop.wait(min(left, 1.0))

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload.set())


def describe_next(config: Config, now: dt.datetime) -> str:
    """The next fire time, or why there is none."""
    fire = next_fire(config, now)
    if fire is None:
        return f"never (the cron expression '{config.delivery.schedule}' matches no date)"
    return fire.isoformat()


def _words(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
