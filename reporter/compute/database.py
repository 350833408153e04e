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
from reporter.sources import SourceInfo, register_sources


def open_database(config: Config) -> tuple[duckdb.DuckDBPyConnection, dict[str, SourceInfo]]:
    """Read every source into an in-memory DuckDB, then lock it: from here on, SQL from the
    YAML can read neither files nor the network, nor change that setting."""
    con = duckdb.connect(":memory:")
    try:
        infos = register_sources(con, config)
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con, infos


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
