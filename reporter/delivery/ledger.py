"""The ledger: one row per run, one row per delivery attempt chain, in SQL (SQLAlchemy Core).

SQLite under the output folder by default; any SQLAlchemy URL (PostgreSQL) when several hosts
share the work. It is what makes delivery exactly-once:

- before sending, the intent is committed (state ``pending``, with the Message-ID);
- after the server's 250, the state becomes ``sent``;
- a later run skips ``sent``; finds a ``pending`` left by a crash between 250 and the commit and
  does not re-send it, marking it ``review`` (a person checks the mailbox);
- a ``failed`` delivery is retried by the next run, a ``--force`` re-send opens a new version;
- when the ledger is lost between the send and the record (its connection cut and not back),
  the outcome goes to the fallback journal (``reporter.delivery.journal``), which the next run
  applies here (``settle``) before anything else;
- a run recorded as ``running`` whose process is gone (killed, or its machine stopped: see
  ``Liveness``) is recorded ``interrupted`` by the next run of its report and period
  (``close_interrupted``), which finishes its work by the rules above.

This module owns every table of the ledger (the scheduler's leases and first sightings too).
The schema is versioned with Alembic (``reporter/delivery/migrations``): opening a ledger
upgrades it in place to the newest revision; a ledger written before migrations existed is
recognised by its tables and stamped at revision 0001 first.

Claiming a delivery is one atomic statement (``claim``): an ``INSERT … ON CONFLICT DO NOTHING``
of a new version, or an ``UPDATE … WHERE state = 'failed'`` of a retried one. Two processes
racing on the same report and period cannot both win a claim, so they cannot both send.

Besides deliveries, the ledger records the archive (see ``archive_steps`` and
``manifest_lines``): that a run must archive its PDF, that it did, and the SHA-256 of every
manifest line written, so that ``reporter verify`` can tell a consistent rewrite of the archive
from the archive as it was written.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa

from reporter.delivery.wall import wall_now
from reporter.errors import LedgerBusy
from reporter.security import redact

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("report", sa.String(200), nullable=False),
    sa.Column("period", sa.String(20), nullable=False),
    sa.Column("started", sa.DateTime(timezone=True), nullable=False),  # the run's clock (``now``)
    sa.Column("finished", sa.DateTime(timezone=True)),  # the run's clock too: equal to started
    sa.Column("outcome", sa.String(20), nullable=False),  # running | ok | failed | interrupted
    sa.Column("error", sa.Text),
    sa.Column("trigger", sa.String(50), nullable=False, default="cli"),
    sa.Column("wall_started", sa.DateTime(timezone=True)),  # the real time (wall.wall_now)
    sa.Column("wall_finished", sa.DateTime(timezone=True)),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("report", sa.String(200), primary_key=True),
    sa.Column("period", sa.String(20), primary_key=True),
    sa.Column("recipient", sa.String(320), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.String(300), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # pending | sent | failed | review
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("forced", sa.Boolean, nullable=False, default=False),
    sa.Column("reason", sa.Text),
    sa.Column("channel", sa.String(20), nullable=False, default="smtp"),  # smtp | outbox
    sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.Integer),
    # the real time the server accepted it (SMTP reply to the message, webhook 2xx, outbox file)
    sa.Column("accepted", sa.DateTime(timezone=True)),
)

# The scheduler's: who holds a report's period while sending it, and when a report was first seen.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("report", sa.String(200), primary_key=True),
    sa.Column("period", sa.String(20), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
)
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("report", sa.String(200), primary_key=True),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
)


# Who holds a run: a later run or ``reporter status`` on the same host can tell a run whose
# process is gone (killed, or the machine stopped) from one still sending. The process is known
# by its pid and, where /proc tells them (Linux), the machine's boot id and the process's start
# time, so that a pid the system has since given to another program is not taken for the run
# (``liveness``). New table, so ledgers written by older versions keep working.
holders = sa.Table(
    "run_holders",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("boot_id", sa.String(64)),  # /proc/sys/kernel/random/boot_id; None: not known
    sa.Column("started_ticks", sa.BigInteger),  # /proc/<pid>/stat starttime; None: not known
)

# Who asked to receive a report no more (``reporter unsubscribe``, a request in the unsubscribe
# mailbox): a run skips each address whose latest row is not lifted; ``reporter subscribe``
# lifts it. Rows are kept, lifted or not: who stopped and restarted it, when and how
# (``reporter.delivery.suppression``).
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("report", sa.String(200), nullable=False, index=True),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("added", sa.DateTime(timezone=True), nullable=False),
    sa.Column("how", sa.Text, nullable=False),  # "reporter unsubscribe", "mail from …", …
    sa.Column("lifted", sa.DateTime(timezone=True)),
    sa.Column("lifted_how", sa.Text),
)

# The archive as a step of the run: "pending" before the first message goes out, "done" once
# the PDF is in the archive, "failed" when archiving failed (the next run finishes it).
archive_steps = sa.Table(
    "archive_steps",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True),
    sa.Column("report", sa.String(200), nullable=False),
    sa.Column("period", sa.String(20), nullable=False),
    sa.Column("pdf", sa.Text, nullable=False),  # where the delivered PDF lies until archived
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # pending | done | failed | none
    sa.Column("archive", sa.Text),
    sa.Column("version", sa.Integer),
    sa.Column("reason", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
)

# One row per manifest line, written with the line: ``verify`` compares the two.
manifest_lines = sa.Table(
    "manifest_lines",
    metadata,
    # the archive's identity: the SHA-256 of its first manifest line (by content, so that a copy
    # of the archive is still known; ledgers written before used its absolute path)
    sa.Column("archive", sa.String(1000), primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True),  # 1-based line number
    sa.Column("sha256", sa.String(64), nullable=False),  # of the line's text
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("report", sa.String(200), nullable=False),
    sa.Column("period", sa.String(20), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # intent | written | aborted
)

# Which configuration file a report id belongs to on this ledger: the first file that ran it.
# Another file declaring the same id is refused (it would mark the owner's deliveries as its
# own) until an operator hands the id over (``reporter release``). The file is known by its
# resolved path, so editing the YAML keeps the binding; the fingerprint is the SHA-256 of that
# path, the value compared.
report_owners = sa.Table(
    "report_owners",
    metadata,
    sa.Column("report", sa.String(200), primary_key=True),
    sa.Column("config", sa.Text, nullable=False),  # the owner's resolved path, for messages
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("bound", sa.DateTime(timezone=True), nullable=False),
)

# Each alert rule's state (``reporter.delivery.alerting``): what its latest evaluation found
# (``state``: firing | clear, since ``changed``), what its latest message announced
# (``notified``, message number ``seq``; its deliveries are keyed report "<id>/alert/<rule>",
# period "#<seq>"), and until when it is snoozed.
alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("report", sa.String(200), primary_key=True),
    sa.Column("rule", sa.String(200), primary_key=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("detail", sa.String(40), nullable=False),  # the evaluation's word (off_track, above...)
    sa.Column("changed", sa.DateTime(timezone=True), nullable=False),
    sa.Column("evaluated", sa.DateTime(timezone=True), nullable=False),
    sa.Column("notified", sa.String(20), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("notified_at", sa.DateTime(timezone=True)),
    sa.Column("snoozed_until", sa.Date),
    sa.Column("error", sa.Text),
)


@dataclass(frozen=True)
class Liveness:
    """What this host can tell of a run recorded as running: ``alive`` (its process is still
    there), ``gone`` (its process is not: killed, or the machine stopped or restarted; or its
    pid now belongs to another process), ``unknown`` (it runs on another host, or which process
    runs it was not recorded: nothing can be checked from here), or ``finished`` (the ledger
    does not record it as running)."""

    state: str
    host: str | None = None
    pid: int | None = None
    started: dt.datetime | None = None  # the run's clock when it started

    @property
    def who(self) -> str:
        return f"process {self.pid} on host {self.host}"


def _boot_id() -> str | None:
    """This boot of the machine (Linux; None elsewhere): a process of an earlier boot is gone."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _process_stat(pid: int) -> tuple[str | None, int | None]:
    """Process ``pid``'s state letter and start time (clock ticks after boot), from
    /proc/<pid>/stat (fields 3 and 22); (None, None) when /proc does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None, None
    fields = stat[stat.rfind(")") + 2 :].split()  # after the command name, which may hold spaces
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None, None


def _process_state(pid: int, boot_id: str | None, started_ticks: int | None) -> str:
    """``alive`` or ``gone``: whether the process recorded on this host as ``pid`` (started in
    boot ``boot_id`` at ``started_ticks``, when known) still runs."""
    if boot_id is not None and _boot_id() not in (None, boot_id):
        return "gone"  # the machine restarted since
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass  # another user's process: it exists
    state, ticks = _process_stat(pid)
    if state in ("Z", "X"):
        return "gone"  # killed, not yet reaped by its parent
    if started_ticks is not None and ticks is not None and ticks != started_ticks:
        return "gone"  # the pid was given to another process since
    return "alive"


def config_fingerprint(config: Path) -> tuple[str, str]:
    """A configuration file's identity on a ledger: its resolved path and that path's SHA-256."""
    import hashlib

    path = str(config.resolve())
    return path, hashlib.sha256(path.encode("utf-8")).hexdigest()


@dataclass
class Delivery:
    report: str
    period: str
    recipient: str
    version: int
    message_id: str
    state: str
    attempts: int
    last_error: str | None
    forced: bool
    channel: str


def _key(report: str, period: str, recipient: str, version: int) -> tuple[sa.ColumnElement[bool], ...]:
    """The WHERE conditions naming one delivery version."""
    return (
        deliveries.c.report == report,
        deliveries.c.period == period,
        deliveries.c.recipient == recipient.lower(),
        deliveries.c.version == version,
    )


def default_url(output: Path) -> str:
    return f"sqlite:///{(output / 'ledger.sqlite').resolve()}"


def _alembic_config(conn: sa.Connection) -> object:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _upgrade(conn: sa.Connection) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(conn)
    head = ScriptDirectory.from_config(cfg).get_current_head()  # type: ignore[arg-type]
    if MigrationContext.configure(conn).get_current_revision() == head:
        return
    tables = set(sa.inspect(conn).get_table_names())
    if "alembic_version" not in tables and "runs" in tables:
        command.stamp(cfg, "0001")  # type: ignore[arg-type]  # written before migrations existed
    command.upgrade(cfg, "head")  # type: ignore[arg-type]


def migrate(engine: sa.Engine, attempts: int = 6) -> None:
    """Bring the ledger's schema to the newest revision. Several processes may open a new ledger
    at once: PostgreSQL serialises them with an advisory lock; on SQLite the loser of a race
    finds the tables made and retries from the revision it then reads."""
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7356201)"))
                _upgrade(conn)
            return
        except sa.exc.DBAPIError:  # not LedgerBusy: a lock already waited its deadline
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


LOCK_TIMEOUT = 30.0  # seconds; delivery.ledger_lock_timeout


def _is_lock_timeout(error: BaseException | None) -> bool:
    """PostgreSQL's lock_timeout (SQLSTATE 55P03) or SQLite's busy timeout ("database is locked")."""
    if error is None:
        return False
    if getattr(error, "sqlstate", None) == "55P03":
        return True
    return type(error).__module__ == "sqlite3" and "database is locked" in str(error)


def _bounded(engine: sa.Engine, seconds: float) -> None:
    """Every wait for a lock on ``engine`` ends after ``seconds`` in a ``LedgerBusy`` error:
    PostgreSQL's ``lock_timeout`` set in each transaction; SQLite's busy timeout (set at
    ``create_engine``)."""
    if engine.dialect.name == "postgresql":

        @sa.event.listens_for(engine, "begin")
        def _lock_timeout(conn: sa.Connection) -> None:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, round(seconds * 1000))}")

    @sa.event.listens_for(engine, "handle_error")
    def _busy(context: sa.engine.ExceptionContext) -> None:
        if _is_lock_timeout(context.original_exception):
            raise LedgerBusy(
                f"the ledger is locked: waited {seconds:g} s (delivery.ledger_lock_timeout) for a lock "
                "another transaction holds, another run's or a session's left open on the ledger"
            )


def ledger_place(config: Any, root: Path) -> str:
    """How messages name a report's ledger: the operator's connection, or the file in the
    output folder (never a URL, which may hold a password)."""
    if config.delivery.ledger is not None:
        return f"connection '{config.delivery.ledger}'"
    return str(root / "ledger.sqlite")


class Ledger:
    def __init__(self, url: str, lock_timeout: float = LOCK_TIMEOUT):
        args = {"timeout": lock_timeout} if url.startswith("sqlite") else {}
        self.engine = sa.create_engine(url, connect_args=args)
        _bounded(self.engine, lock_timeout)
        try:
            migrate(self.engine)
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _insert_new(self, table: sa.Table, values: dict[str, object]) -> bool:
        """INSERT … ON CONFLICT DO NOTHING; True when this statement inserted the row."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif self.engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        else:  # another database: the primary key still refuses the second row
            try:
                with self.engine.begin() as conn:
                    conn.execute(table.insert().values(**values))
                return True
            except sa.exc.IntegrityError:
                return False
        statement = insert(table).values(**values).on_conflict_do_nothing()
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":  # psycopg reports no rowcount here
                pk = next(iter(table.primary_key.columns))
                return conn.execute(statement.returning(pk)).first() is not None
            return conn.execute(statement).rowcount == 1

    # report ids ---------------------------------------------------------------------------
    def bind_report(self, report: str, config: Path, now: dt.datetime) -> str | None:
        """Bind ``report`` to the configuration file ``config`` when no file holds it yet; the
        path of the other file that holds it, or None when ``config`` does (or now does)."""
        path, fingerprint = config_fingerprint(config)
        row = dict(report=report, config=path, fingerprint=fingerprint, bound=now)
        if self._insert_new(report_owners, row):
            return None
        with self.engine.connect() as conn:
            held = conn.execute(sa.select(report_owners).where(report_owners.c.report == report)).first()
        if held is None:  # released between the two statements: try once more
            return None if self._insert_new(report_owners, row) else self.bind_report(report, config, now)
        return None if held.fingerprint == fingerprint else str(held.config)

    def release_report(self, report: str, config: Path, now: dt.datetime) -> str | None:
        """Hand ``report`` to ``config``, taking it from the file that held it: that file's
        path (None when no file held it)."""
        path, fingerprint = config_fingerprint(config)
        with self.engine.begin() as conn:
            held = conn.execute(sa.select(report_owners).where(report_owners.c.report == report)).first()
            conn.execute(report_owners.delete().where(report_owners.c.report == report))
            conn.execute(
                report_owners.insert().values(report=report, config=path, fingerprint=fingerprint, bound=now)
            )
        return None if held is None else str(held.config)

    # runs -------------------------------------------------------------------------------
    def start_run(self, report: str, period: str, now: dt.datetime, trigger: str = "cli") -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                runs.insert().values(
                    report=report,
                    period=period,
                    started=now,
                    outcome="running",
                    trigger=trigger,
                    wall_started=wall_now(),
                )
            )
            run_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            conn.execute(holders.delete().where(holders.c.run_id == run_id))  # a reused id (a reset table)
            pid = os.getpid()
            conn.execute(
                holders.insert().values(
                    run_id=run_id,
                    host=socket.gethostname(),
                    pid=pid,
                    boot_id=_boot_id(),
                    started_ticks=_process_stat(pid)[1],
                )
            )
            return run_id

    def liveness(self, run_id: int) -> Liveness:
        """What can be told of run ``run_id``'s process (see ``Liveness``): on this host, whether
        it is still there (the same process: same boot, same start time, not a zombie)."""
        with self.engine.connect() as conn:
            run = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
            holder = conn.execute(sa.select(holders).where(holders.c.run_id == run_id)).first()
        if run is None or run.outcome != "running":
            return Liveness("finished")
        started = run.started if run.started.tzinfo else run.started.replace(tzinfo=dt.UTC)
        if holder is None:  # a run recorded before holders were: nothing to check
            return Liveness("unknown", started=started)
        state = "unknown"
        if holder.host == socket.gethostname():
            state = _process_state(holder.pid, holder.boot_id, holder.started_ticks)
        return Liveness(state, holder.host, holder.pid, started)

    def run_alive(
        self, run_id: int | None, now: dt.datetime, *, stale: dt.timedelta = dt.timedelta(hours=6)
    ) -> bool:
        """Whether run ``run_id`` may still be working: it is recorded as running and, on this
        host, its process still exists (elsewhere: it started less than ``stale`` ago)."""
        if run_id is None:
            return False
        live = self.liveness(run_id)
        if live.state != "unknown":
            return live.state == "alive"
        assert live.started is not None
        return bool(now - live.started < stale)

    def close_interrupted(self, report: str, period: str, now: dt.datetime, by: int) -> list[tuple[int, str]]:
        """Record as ``interrupted`` every run of ``report`` and ``period`` (but run ``by``, the
        run looking) still recorded as running whose process is gone from this host: each
        run's id and what the ledger now says of it. A run on another host is left as it is
        (this host cannot tell whether it still runs)."""
        with self.engine.connect() as conn:
            ids = [
                row.id
                for row in conn.execute(
                    sa.select(runs.c.id).where(
                        runs.c.report == report,
                        runs.c.period == period,
                        runs.c.outcome == "running",
                        runs.c.id != by,
                    )
                )
            ]
        closed = []
        for run_id in ids:
            live = self.liveness(run_id)
            if live.state != "gone":
                continue
            text = f"{live.who} was gone (killed, or the machine stopped); found by run {by}"
            with self.engine.begin() as conn:
                done = conn.execute(
                    runs.update()
                    .where(runs.c.id == run_id, runs.c.outcome == "running")
                    # wall_finished stays empty: when the process died is not known
                    .values(finished=now, outcome="interrupted", error=text)
                )
            if done.rowcount == 1:
                closed.append((run_id, text))
        return closed

    def deliveries_of_run(self, run_id: int) -> dict[str, int]:
        """How many deliveries run ``run_id`` claimed last, by their state now."""
        query = (
            sa.select(deliveries.c.state, sa.func.count())
            .where(deliveries.c.run_id == run_id)
            .group_by(deliveries.c.state)
        )
        with self.engine.connect() as conn:
            return {str(state): int(n) for state, n in conn.execute(query)}

    def finish_run(self, run_id: int, now: dt.datetime, outcome: str, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(
                    finished=now,
                    outcome=outcome,
                    error=redact(error) if error else error,
                    wall_finished=wall_now(),
                )
            )

    def runs_of(self, report: str, period: str | None = None) -> list[dict[str, object]]:
        query = sa.select(runs).where(runs.c.report == report)
        if period is not None:
            query = query.where(runs.c.period == period)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(runs.c.id))]

    # deliveries ---------------------------------------------------------------------------
    def latest(self, report: str, period: str, recipient: str) -> Delivery | None:
        query = (
            sa.select(deliveries)
            .where(
                deliveries.c.report == report,
                deliveries.c.period == period,
                deliveries.c.recipient == recipient.lower(),
            )
            .order_by(deliveries.c.version.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        m = row._mapping
        return Delivery(
            m["report"],
            m["period"],
            m["recipient"],
            m["version"],
            m["message_id"],
            m["state"],
            m["attempts"],
            m["last_error"],
            m["forced"],
            m["channel"],
        )

    def all(self, report: str, period: str | None = None) -> list[Delivery]:
        query = sa.select(deliveries).where(deliveries.c.report == report)
        if period is not None:
            query = query.where(deliveries.c.period == period)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(deliveries.c.recipient, deliveries.c.version)).all()
        return [
            Delivery(
                r.report,
                r.period,
                r.recipient,
                r.version,
                r.message_id,
                r.state,
                r.attempts,
                r.last_error,
                r.forced,
                r.channel,
            )
            for r in rows
        ]

    def delivery_rows(self, report: str) -> list[dict[str, Any]]:
        """Every delivery of ``report``, each row whole (``reporter audit``), in period, recipient
        and version order."""
        query = (
            sa.select(deliveries)
            .where(deliveries.c.report == report)
            .order_by(deliveries.c.period, deliveries.c.recipient, deliveries.c.version)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def latest_states(self, report: str, period: str) -> dict[str, tuple[str, int | None]]:
        """Each recipient's latest delivery of ``period``: its state and the run that claimed it."""
        query = (
            sa.select(deliveries.c.recipient, deliveries.c.state, deliveries.c.run_id)
            .where(deliveries.c.report == report, deliveries.c.period == period)
            .order_by(deliveries.c.recipient, deliveries.c.version)
        )
        with self.engine.connect() as conn:
            return {r.recipient: (r.state, r.run_id) for r in conn.execute(query)}  # the last version wins

    def claim(
        self,
        report: str,
        period: str,
        recipient: str,
        version: int,
        message_id: str,
        now: dt.datetime,
        *,
        forced: bool,
        reason: str | None,
        channel: str,
        run_id: int,
        retry: bool = False,
    ) -> bool:
        """Take the right to send one delivery version, in one atomic statement; commit the intent
        (state pending) before sending. ``retry``: take back a ``failed`` version (same
        Message-ID). False when another run holds or finished it: then do not send."""
        values: dict[str, object] = dict(
            message_id=message_id,
            state="pending",
            forced=forced,
            reason=reason,
            channel=channel,
            updated=now,
            run_id=run_id,
        )
        if retry:
            with self.engine.begin() as conn:
                result = conn.execute(
                    deliveries.update()
                    .where(*_key(report, period, recipient, version), deliveries.c.state == "failed")
                    .values(**values)
                )
                return result.rowcount == 1
        return self._insert_new(
            deliveries,
            dict(
                report=report,
                period=period,
                recipient=recipient.lower(),
                version=version,
                attempts=0,
                **values,
            ),
        )

    def run_of(self, report: str, period: str, recipient: str, version: int) -> int | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(deliveries.c.run_id).where(*_key(report, period, recipient, version))
            ).first()
        return None if row is None else row.run_id

    def move(
        self,
        report: str,
        period: str,
        recipient: str,
        version: int,
        now: dt.datetime,
        *,
        from_states: tuple[str, ...],
        to: str,
        note: str,
    ) -> bool:
        """Change a delivery's state only if it is still in one of ``from_states`` (atomic)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                deliveries.update()
                .where(*_key(report, period, recipient, version), deliveries.c.state.in_(from_states))
                .values(state=to, last_error=note, updated=now)
            )
            return result.rowcount == 1

    # the archive as a step of the run ------------------------------------------------------
    def archive_intent(
        self, run_id: int, report: str, period: str, pdf: str, sha: str, reason: str | None, now: dt.datetime
    ) -> None:
        """Before the first message of a run goes out: this PDF must reach the archive."""
        with self.engine.begin() as conn:
            conn.execute(archive_steps.delete().where(archive_steps.c.run_id == run_id))
            conn.execute(
                archive_steps.insert().values(
                    run_id=run_id,
                    report=report,
                    period=period,
                    pdf=pdf,
                    sha256=sha,
                    state="pending",
                    reason=reason,
                    updated=now,
                )
            )

    def archive_result(
        self,
        run_id: int,
        now: dt.datetime,
        *,
        state: str,
        archive: str | None = None,
        version: int | None = None,
        error: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                archive_steps.update()
                .where(archive_steps.c.run_id == run_id)
                .values(state=state, archive=archive, version=version, error=error, updated=now)
            )

    def unarchived(self, report: str, period: str) -> list[dict[str, object]]:
        """Archive steps of (report, period) left pending or failed by earlier runs."""
        query = (
            sa.select(archive_steps)
            .where(
                archive_steps.c.report == report,
                archive_steps.c.period == period,
                archive_steps.c.state.in_(("pending", "failed")),
            )
            .order_by(archive_steps.c.run_id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def archive_steps_of(self, report: str) -> list[dict[str, object]]:
        query = (
            sa.select(archive_steps).where(archive_steps.c.report == report).order_by(archive_steps.c.run_id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # manifest lines ----------------------------------------------------------------------------
    def manifest_records(self, archive: str) -> dict[int, dict[str, object]]:
        query = sa.select(manifest_lines).where(manifest_lines.c.archive == archive)
        with self.engine.connect() as conn:
            return {r.line: dict(r._mapping) for r in conn.execute(query)}

    def chain_of(self, first: str) -> str | None:
        """The key under which this ledger recorded the archive whose first manifest line has the
        SHA-256 ``first`` (None: it recorded no such archive)."""
        query = (
            sa.select(manifest_lines.c.archive)
            .where(manifest_lines.c.line == 1, manifest_lines.c.sha256 == first)
            .order_by(manifest_lines.c.archive)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else str(row.archive)

    def chain_of_reports(self, reports: list[str]) -> str | None:
        """The key of the archive this ledger recorded the most written lines of ``reports`` in
        (for an archive whose manifest is gone or emptied: known by the reports it holds)."""
        if not reports:
            return None
        count = sa.func.count()
        query = (
            sa.select(manifest_lines.c.archive, count)
            .where(manifest_lines.c.report.in_(reports), manifest_lines.c.state == "written")
            .group_by(manifest_lines.c.archive)
            .order_by(count.desc(), manifest_lines.c.archive)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else str(row.archive)

    def line_intent(self, archive: str, line: int, sha: str, entry: dict[str, object]) -> bool:
        """Record a manifest line before it is written; False when that line number is taken."""
        return self._insert_new(
            manifest_lines,
            dict(
                archive=archive,
                line=line,
                sha256=sha,
                path=str(entry["path"]),
                report=str(entry["report"]),
                period=str(entry["period"]),
                version=int(entry["version"]),  # type: ignore[call-overload]
                state="intent",
            ),
        )

    def line_state(self, archive: str, line: int, state: str) -> None:
        with self.engine.begin() as conn:
            key = (manifest_lines.c.archive == archive, manifest_lines.c.line == line)
            if state == "aborted":
                conn.execute(manifest_lines.delete().where(*key, manifest_lines.c.state == "intent"))
            else:
                conn.execute(manifest_lines.update().where(*key).values(state=state))

    def record(
        self,
        report: str,
        period: str,
        recipient: str,
        version: int,
        now: dt.datetime,
        *,
        state: str,
        error: str | None = None,
        attempt: bool = False,
        accepted: dt.datetime | None = None,
    ) -> None:
        """Record a delivery's state (after each attempt and after sending). A connection found
        cut is replaced and the write tried once more: a message may have just gone out.
        ``accepted``: the real time the server accepted it (kept for ``reporter audit``)."""
        values: dict[str, object] = {
            "state": state,
            "updated": now,
            "last_error": redact(error) if error else error,
        }
        if accepted is not None:
            values["accepted"] = accepted
        if attempt:
            values["attempts"] = deliveries.c.attempts + 1
        for tries in (1, 2):
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        deliveries.update().where(*_key(report, period, recipient, version)).values(**values)
                    )
                return
            except sa.exc.DBAPIError as exc:
                if tries == 2 or not exc.connection_invalidated:
                    raise

    def settle(self, entry: dict[str, object], now: dt.datetime, *, note: str) -> None:
        """Record a delivery's outcome kept in the fallback journal (``reporter.delivery.journal``)
        while the ledger was lost: unless the ledger already says ``sent``, the delivery takes the
        journal's state (sent, review or failed) and time; the run that sent it, if still
        recorded as running, is recorded as failed."""
        version = int(str(entry["version"]))
        report, period, recipient = str(entry["report"]), str(entry["period"]), str(entry["recipient"])
        key = _key(report, period, recipient, version)
        when = dt.datetime.fromisoformat(str(entry["time"])) if entry.get("time") else now
        state = str(entry["state"])
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(deliveries.c.state).where(*key)).first()
            if row is None:
                conn.execute(
                    deliveries.insert().values(
                        report=report,
                        period=period,
                        recipient=recipient.lower(),
                        version=version,
                        message_id=str(entry["message_id"]),
                        state=state,
                        attempts=int(str(entry.get("attempts") or 1)),
                        last_error=redact(note),
                        forced=bool(entry.get("forced")),
                        channel=str(entry.get("channel") or "smtp"),
                        updated=when,
                        run_id=entry.get("run_id"),
                        accepted=when if state == "sent" else None,
                    )
                )
            elif row.state != "sent":
                conn.execute(
                    deliveries.update()
                    .where(*key)
                    .values(
                        state=state,
                        last_error=redact(note),
                        updated=when,
                        attempts=int(str(entry.get("attempts") or 1)),
                        accepted=when if state == "sent" else None,
                    )
                )
            if entry.get("run_id") is not None:
                conn.execute(
                    runs.update()
                    .where(runs.c.id == entry["run_id"], runs.c.outcome == "running")
                    .values(
                        finished=now,
                        outcome="failed",
                        error=redact(str(entry.get("run_error") or note)),
                        wall_finished=wall_now(),
                    )
                )

    # alert rules ----------------------------------------------------------------------------
    def alert_rule(self, report: str, rule: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(alert_rules).where(alert_rules.c.report == report, alert_rules.c.rule == rule)
            ).first()
        return None if row is None else dict(row._mapping)

    def alert_reports(self) -> list[str]:
        with self.engine.connect() as conn:
            return [
                r.report for r in conn.execute(sa.select(alert_rules.c.report).distinct().order_by("report"))
            ]

    def alert_rules_of(self, report: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(alert_rules).where(alert_rules.c.report == report).order_by(alert_rules.c.rule)
            )
            return [dict(r._mapping) for r in rows]

    def alert_observe(
        self, report: str, rule: str, state: str, detail: str, now: dt.datetime, error: str | None = None
    ) -> None:
        """Record a rule's evaluation: its state (``changed`` moves when the state does). A rule
        seen for the first time starts as announced clear (message number 0)."""
        values: dict[str, object] = {
            "detail": detail,
            "evaluated": now,
            "error": redact(error) if error else None,
        }
        first = dict(report=report, rule=rule, state=state, changed=now, notified="clear", seq=0, **values)
        if self.alert_rule(report, rule) is None and self._insert_new(alert_rules, first):
            return
        with self.engine.begin() as conn:
            key = (alert_rules.c.report == report, alert_rules.c.rule == rule)
            conn.execute(
                alert_rules.update()
                .where(*key, alert_rules.c.state != state)
                .values(state=state, changed=now)
            )
            conn.execute(alert_rules.update().where(*key).values(**values))

    def alert_announce(self, report: str, rule: str, seq: int, state: str, now: dt.datetime) -> bool:
        """Take message number ``seq + 1`` announcing ``state``, in one atomic statement: False
        when another process took it first (then it sends that message, not this one)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                alert_rules.update()
                .where(alert_rules.c.report == report, alert_rules.c.rule == rule, alert_rules.c.seq == seq)
                .values(notified=state, seq=seq + 1, notified_at=now)
            )
            return result.rowcount == 1

    def alert_quiet(self, report: str, rule: str, seq: int, state: str) -> None:
        """Record ``state`` as announced without a message (an unusual day's rule re-arming)."""
        with self.engine.begin() as conn:
            conn.execute(
                alert_rules.update()
                .where(alert_rules.c.report == report, alert_rules.c.rule == rule, alert_rules.c.seq == seq)
                .values(notified=state)
            )

    def alert_snooze(self, report: str, rule: str, until: dt.date | None, now: dt.datetime) -> None:
        """Snooze ``rule`` until ``until`` (inclusive); None wakes it."""
        blank = dict(
            report=report,
            rule=rule,
            state="clear",
            detail="not evaluated",
            changed=now,
            evaluated=now,
            notified="clear",
            seq=0,
            snoozed_until=until,
        )
        if self.alert_rule(report, rule) is None and self._insert_new(alert_rules, blank):
            return
        with self.engine.begin() as conn:
            key = (alert_rules.c.report == report, alert_rules.c.rule == rule)
            conn.execute(alert_rules.update().where(*key).values(snoozed_until=until))
