"""The rules of ``delivery.burst`` that span its keys: a connection only with ``executor: dask``,
and the ``dask`` extra installed when a cluster is asked for. The scheduler's address is the
operator's (a connection, ``reporter.config.connections``), never the YAML's."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping

from reporter.config.model import Burst


def burst_problems(burst: Burst | None) -> list[tuple[str, str, str]]:
    """(key, message, hint) for each problem of ``delivery.burst``."""
    if burst is None:
        return []
    problems = []
    if burst.connection is not None and burst.executor != "dask":
        problems.append(
            (
                "connection",
                "a connection is only used with executor: dask",
                "add 'executor: dask', or remove the connection to render on this machine",
            )
        )
    if burst.executor == "dask" and importlib.util.find_spec("distributed") is None:
        problems.append(
            (
                "executor",
                "executor: dask needs the dask extra, which is not installed",
                "pip install 'reporter[dask]', or use executor: local",
            )
        )
    return problems


def max_workers(env: Mapping[str, str] | None = None) -> int:
    """The most worker processes one run may start on this machine: one per core this process may
    use, or ``REPORTER_MAX_WORKERS`` when the operator allows more (or fewer). Never the YAML's
    to decide: a report asking for more gets this many."""
    text = (os.environ if env is None else env).get("REPORTER_MAX_WORKERS", "").strip()
    if text.isdigit() and 0 < int(text) <= 10_000:
        return int(text)
    return cores()


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
