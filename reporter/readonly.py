"""Opening a ``type: sql`` source's database for reading only: the run reads a source's rows
(``sources.py``) or pushes its aggregates down (``compute/pushdown.py``) through these engines.
The connections themselves (names, URLs, where the operator defines them) are configuration:
``reporter.config.connections``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# -- opening a SQL source's database read-only --------------------------------------------------

# SQLite authorizer action codes a read-only query needs; anything else (ATTACH, which VACUUM INTO
# starts with, PRAGMA, any write or schema change) is denied.
_SQLITE_READ_ACTIONS = frozenset({20, 21, 31, 33})  # SQLITE_READ, SELECT, FUNCTION, RECURSIVE
_SQLITE_TRANSACTION = 22  # BEGIN / COMMIT of pysqlite's implicit transactions: harmless read-only
_SQLITE_DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
    import sqlite3

    if action == 31 and (arg2 or "").lower() in _SQLITE_DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    if action in _SQLITE_READ_ACTIONS or action == _SQLITE_TRANSACTION:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def read_only_engine(url: str) -> Any:
    """A SQLAlchemy engine on ``url`` that can only read: DuckDB with external access off and
    the configuration locked (a file opened read-only), SQLite opened ``mode=ro`` with an
    authorizer that refuses ATTACH, VACUUM, PRAGMA and every write, PostgreSQL in read-only
    transactions (``default_transaction_read_only``). Other databases: the operator's role must
    be read-only (docs/security.md)."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "duckdb":
        database = parsed.database or ":memory:"
        args: dict[str, Any] = {"config": {"enable_external_access": False, "lock_configuration": True}}
        if database != ":memory:":
            args["read_only"] = True
        return sa.create_engine(parsed, connect_args=args)
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            target = "file::memory:"
        elif database.startswith("file:"):
            target = database.split("?", 1)[0]
        else:
            target = "file:" + str(Path(database).resolve())
        engine = sa.create_engine(parsed.set(database=target, query={"mode": "ro", "uri": "true"}))

        @sa.event.listens_for(engine, "connect")
        def _read_only(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.set_authorizer(_sqlite_authorizer)

        return engine
    if backend == "postgresql":
        given = parsed.query.get("options", "")
        options = " ".join(
            [*([given] if isinstance(given, str) and given else []), "-c default_transaction_read_only=on"]
        )
        engine = sa.create_engine(parsed, connect_args={"options": options})

        @sa.event.listens_for(engine, "begin")
        def _read_only_tx(conn: Any) -> None:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")

        return engine
    return sa.create_engine(parsed)
