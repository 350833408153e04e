"""The compute stage's entry: read the sources into a locked DuckDB, compute the Results."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import duckdb

from reporter.compute.report import compute_results
from reporter.config.model import Config, Source
from reporter.config.sql import connect
from reporter.periods import Period
from reporter.progress import stage
from reporter.results import Results
from reporter.sources import SourceInfo, derived_inputs, register_derived, register_sources


def open_database(config: Config) -> tuple[duckdb.DuckDBPyConnection, dict[str, SourceInfo]]:
    """Read every source into an in-memory DuckDB, then lock it: from here on, SQL from the
    YAML can read neither files nor the network, nor change that setting."""
    from reporter.compute.pushdown import open_remote, pull_reason

    con = connect()  # a division by zero gives NULL (docs/numbers.md)
    remote: dict[str, SourceInfo] = {}
    try:
        composed = composed_sources(config)  # derived sources whose database does the join
        joined = derived_inputs(config, skip=set(composed))  # the others read their inputs' rows here
        for name, source in config.sources.items():
            if source.type == "sql" and name not in joined and pull_reason(config, source) is None:
                remote[name] = open_remote(config, name, source)
        for name, as_sql in composed.items():
            remote[name] = _composed_info(config, name, open_remote(config, name, as_sql), remote)
        local = register_sources(con, config, skip=set(remote))
        lock(con)
        register_derived(con, config, local, skip=set(composed))
    except BaseException:
        con.close()
        close_remote(remote)
        raise
    return con, {name: remote.get(name) or local[name] for name in config.sources}


def lock(con: duckdb.DuckDBPyConnection) -> None:
    """From here on, SQL run on ``con`` reads neither files nor the network, nor changes that."""
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def composed_sources(config: Config) -> dict[str, Source]:
    """Derived sources whose query runs in a database, as a ``type: sql`` source of that
    database whose ``query`` is the derived query composed over its inputs (each input's
    ``table``, or its ``query`` as a subquery), in the database's dialect. A derived source is
    composed when every source in its ``from`` is a pushed-down sql source of the same connection, it
    is not itself read by another derived source and it does not say ``pushdown: false``;
    otherwise its inputs are read and joined in DuckDB, with the same numbers."""
    from reporter.compute.pushdown import DIALECTS, pull_reason
    from reporter.config import derived

    read = derived_inputs(config)
    out: dict[str, Source] = {}
    for name, source in config.sources.items():
        if source.type != "derived" or not source.pushdown or name in read or not source.from_:
            continue
        inputs = [config.sources[n] for n in source.from_]
        names = {s.connection for s in inputs}
        if any(s.type != "sql" or pull_reason(config, s) is not None for s in inputs) or len(names) != 1:
            continue
        connection = inputs[0].connection or ""
        url = config.connection_url(connection)
        dialect = DIALECTS[url.split(":", 1)[0].split("+", 1)[0]]
        query = derived.compose(
            source.sql or "",
            {n: (s.table, s.query) for n, s in zip(source.from_, inputs, strict=True)},
            dialect,
        )
        out[name] = source.model_copy(
            update={"type": "sql", "connection": connection, "query": query, "from_": None, "sql": None}
        )
    return out


def _composed_info(
    config: Config, name: str, info: SourceInfo, remote: Mapping[str, SourceInfo]
) -> SourceInfo:
    """A composed derived source's facts as a derived source's: its kind, the sources it reads,
    and the databases behind it (no file: its rows never leave the database)."""
    from reporter.config import derived
    from reporter.results import SourceFile
    from reporter.sources import file_label, location

    info.kind = "derived"
    info.location = location(config, config.sources[name])
    info.files = [
        SourceFile(path=file_label(config, dep), sha256=remote[dep].sha256 if dep in remote else None)
        for dep in derived.files_behind(name, config.sources)
    ]
    return info


def close_remote(infos: Mapping[str, SourceInfo]) -> None:
    """Close the connections of the pushed-down sources."""
    from reporter.compute.pushdown import RemoteInfo

    for info in infos.values():
        if isinstance(info, RemoteInfo) and info.warehouse is not None:
            info.warehouse.dispose()


def compute(
    config: Config, period: Period, now: dt.datetime, *, filter: Mapping[str, Any] | None = None
) -> Results:
    stage(f"reading {len(config.sources)} source{'s' if len(config.sources) != 1 else ''}")
    con, infos = open_database(config)
    try:
        stage(f"computing {len(config.kpis)} KPIs")
        return compute_results(con, config, infos, period, now, filter=filter)
    finally:
        con.close()
        close_remote(infos)
