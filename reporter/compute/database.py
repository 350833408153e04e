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

    validated = _validated_tables(config)
    con = validated[0] if validated else connect()  # a division by zero gives NULL (docs/numbers.md)
    remote: dict[str, SourceInfo] = {}
    try:
        composed = composed_sources(config)  # derived sources whose database does the join
        joined = derived_inputs(config, skip=set(composed))  # the others read their inputs' rows here
        for name, source in config.sources.items():
            if source.type == "sql" and name not in joined and pull_reason(config, source) is None:
                remote[name] = open_remote(config, name, source)
        for name, as_sql in composed.items():
            remote[name] = _composed_info(config, name, open_remote(config, name, as_sql), remote)
        local = register_sources(con, config, skip=set(remote), tables=validated[1] if validated else None)
        for table, _ in validated[1].values() if validated else ():
            con.execute(f"DROP TABLE {table}")  # copied into src_<name>
        lock(con)  # (validation's connection, taken, was locked before the YAML's SQL ran on it)
        register_derived(con, config, local, skip=set(composed))
    except BaseException:
        con.close()
        close_remote(remote)
        raise
    return con, {name: remote.get(name) or local[name] for name in config.sources}


tables_taken = 0  # runs whose sources stage took validation's tables (the tests count them)


def _validated_tables(
    config: Config,
) -> tuple[duckdb.DuckDBPyConnection, dict[str, tuple[str, list[tuple[str, str]]]]] | None:
    """Validation's connection and its table of each file source (name → (table, its columns
    and types)) when those tables hold every row of every file, unchanged since, and the report
    reads nothing else (a database, a workbook: read as before); else None. The connection is
    locked already: nothing more is read from a file."""
    global tables_taken
    from reporter.config import guards

    kinds = {s.type for s in config.sources.values()}
    if not kinds <= {"csv", "parquet", "json", "derived"}:
        guards.take({})  # closed: this run reads its sources itself
        return None
    files = {n: config.resolve(s.path) for n, s in config.sources.items() if s.type != "derived" and s.path}
    sample = guards.take(files) if files else None
    if sample is None:
        return None
    tables_taken += 1
    described = {
        name: (sample.tables[name], [(c, t) for c, t in sample.types[name].items() if c != "__day"])
        for name in files
    }
    return sample.con, described


def lock(con: duckdb.DuckDBPyConnection) -> None:
    """From here on, SQL run on ``con`` reads neither files nor the network, nor changes that.
    A connection locked already (validation's, taken by the run) must have external access off."""
    locked = con.execute(
        "SELECT current_setting('lock_configuration'), current_setting('enable_external_access')"
    ).fetchone()
    if locked is not None and locked[0]:
        if locked[1]:
            raise RuntimeError("a locked DuckDB still reads files: refused")  # never expected
        return
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
