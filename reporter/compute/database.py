"""The compute stage's entry: read the sources into a locked DuckDB, compute the Results."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import duckdb

from reporter.compute.report import compute_results
from reporter.config.model import Config
from reporter.periods import Period
from reporter.progress import stage
from reporter.results import Results
from reporter.sources import SourceInfo, derived_inputs, register_derived, register_sources


def open_database(config: Config) -> tuple[duckdb.DuckDBPyConnection, dict[str, SourceInfo]]:
    """Read every source into an in-memory DuckDB, then lock it: from here on, SQL from the
    YAML can read neither files nor the network, nor change that setting."""
    from reporter.compute.pushdown import open_remote, pull_reason

    con = duckdb.connect(":memory:")
    remote: dict[str, SourceInfo] = {}
    try:
        joined = derived_inputs(config)  # a derived source reads its inputs' rows here
        for name, source in config.sources.items():
            if source.type == "sql" and name not in joined and pull_reason(config, source) is None:
                remote[name] = open_remote(config, name, source)
        local = register_sources(con, config, skip=set(remote))
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        register_derived(con, config, local)
    except BaseException:
        con.close()
        close_remote(remote)
        raise
    return con, {name: remote.get(name) or local[name] for name in config.sources}


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
