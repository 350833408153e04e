"""The ledger: one row per run, one row per delivery attempt chain, in SQL (SQLAlchemy Core).

SQLite under the output folder by default; any SQLAlchemy URL (PostgreSQL) when several hosts
share the work. It is what makes delivery exactly-once:

- before sending, the intent is committed (state ``pending``, with the Message-ID);
- after the server's 250, the state becomes ``sent``;
- a later run skips ``sent``; finds a ``pending`` left by a crash between 250 and the commit and
  does not re-send it, marking it ``review`` (a person checks the mailbox);
- a ``failed`` delivery is retried by the next run, a ``--force`` re-send opens a new version.

This module owns every table of the ledger (the scheduler's leases and first sightings too).
The schema is versioned with Alembic (``reporter/delivery/migrations``): opening a ledger
upgrades it in place to the newest revision; a ledger written before migrations existed is
recognised by its tables and stamped at revision 0001 first.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("report", sa.String(200), nullable=False),
    sa.Column("period", sa.String(20), nullable=False),
    sa.Column("started", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished", sa.DateTime(timezone=True)),
    sa.Column("outcome", sa.String(20), nullable=False),  # running | ok | failed
    sa.Column("error", sa.Text),
    sa.Column("trigger", sa.String(50), nullable=False, default="cli"),
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
        except sa.exc.DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


class Ledger:
    def __init__(self, url: str):
        self.engine = sa.create_engine(url)
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

    # runs -------------------------------------------------------------------------------
    def start_run(self, report: str, period: str, now: dt.datetime, trigger: str = "cli") -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                runs.insert().values(
                    report=report, period=period, started=now, outcome="running", trigger=trigger
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def finish_run(self, run_id: int, now: dt.datetime, outcome: str, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                runs.update().where(runs.c.id == run_id).values(finished=now, outcome=outcome, error=error)
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

    def intend(
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
    ) -> None:
        """Commit the intent to send before sending (state pending)."""
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(deliveries.c.version).where(*_key(report, period, recipient, version))
            ).first()
            values = dict(
                message_id=message_id,
                state="pending",
                forced=forced,
                reason=reason,
                channel=channel,
                updated=now,
                run_id=run_id,
            )
            if exists:
                conn.execute(
                    deliveries.update().where(*_key(report, period, recipient, version)).values(**values)
                )
            else:
                conn.execute(
                    deliveries.insert().values(
                        report=report,
                        period=period,
                        recipient=recipient.lower(),
                        version=version,
                        attempts=0,
                        **values,
                    )
                )

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
    ) -> None:
        with self.engine.begin() as conn:
            values: dict[str, object] = {"state": state, "updated": now, "last_error": error}
            if attempt:
                values["attempts"] = deliveries.c.attempts + 1
            conn.execute(
                deliveries.update().where(*_key(report, period, recipient, version)).values(**values)
            )
