"""The ledger's schema is versioned with Alembic: a ledger written before migrations existed is
upgraded in place and keeps its rows; a new ledger and an upgraded one have the schema the code
declares (a table change without a migration fails here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from reporter.delivery import ledger as ledger_module
from reporter.delivery.ledger import Ledger, metadata

FIXTURE = Path(__file__).parent / "fixtures" / "ledger_before_migrations.sqlite"


def _head() -> str:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ledger_module.MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def _revision(url: str) -> str | None:
    """The ledger's Alembic revision, after checking its tables are exactly the code's."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            diff = [
                d
                for d in compare_metadata(MigrationContext.configure(conn), metadata)
                # another test's table in a shared database is not the ledger's concern
                if not (d[0] == "remove_table" and d[1].name not in metadata.tables)
            ]
            assert diff == [], f"the ledger's tables differ from the code's: {diff}"
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_a_ledger_from_before_migrations_is_upgraded_in_place_and_keeps_its_rows(tmp_path):
    path = tmp_path / "ledger.sqlite"
    shutil.copy(FIXTURE, path)
    raw = sa.create_engine(f"sqlite:///{path}")
    with raw.connect() as conn:
        assert "alembic_version" not in sa.inspect(conn).get_table_names()
        before = {
            t: conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY 1, 2")).fetchall()
            for t in ("runs", "deliveries", "leases", "schedules")
        }
    raw.dispose()
    assert [len(before[t]) for t in ("runs", "deliveries", "leases", "schedules")] == [1, 2, 1, 1]

    with Ledger(f"sqlite:///{path}") as ledger:
        kept = ledger.all("marketing-monthly")
        assert sorted((d.recipient, d.state, d.version) for d in kept) == [
            ("cfo@hexagone.fr", "sent", 1),
            ("direction@hexagone.fr", "sent", 1),
        ]
        assert [r["outcome"] for r in ledger.runs_of("marketing-monthly")] == ["ok"]

    assert _revision(f"sqlite:///{path}") == _head()
    raw = sa.create_engine(f"sqlite:///{path}")
    with raw.connect() as conn:
        for table, rows in before.items():
            after = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1, 2")).fetchall()
            assert [tuple(r)[: len(rows[0])] for r in after] == [tuple(r) for r in rows], table
    raw.dispose()


def test_a_new_ledger_has_every_table_of_the_code_at_the_newest_revision(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    Ledger(url).close()
    assert _revision(url) == _head()
    Ledger(url).close()  # opening again changes nothing
    assert _revision(url) == _head()


def test_a_ledger_on_postgresql_is_migrated_too(empty_pg_ledger):
    with Ledger(empty_pg_ledger):
        pass
    assert _revision(empty_pg_ledger) == _head()
