"""Bursting: one filtered report per recipient (``delivery.email.recipients[].filter``),
computed and rendered in parallel, on this machine's cores or on a Dask cluster
(``delivery.burst``).

Each worker process reads the sources once into its own DuckDB, then computes and renders the
recipients it is given; the reports (results and PDF bytes) come back to the process that runs
the report, which finishes each one (``Run.finish``: its files written, delivered through the
ledger, then the archive step), so the ledger has a single writer and each recipient is
delivered exactly once whatever happens to the workers.

On Dask, nothing from a worker is trusted beyond plain data: the cluster is the operator's (its
address is a connection, never the YAML's), each task returns bytes (a JSON head and the PDF)
that this process parses and checks, and the client reads only msgpack from the cluster
(``deserializers=["msgpack"]``), so a worker's answer is never unpickled here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import queue
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from reporter.compute.database import open_database
from reporter.config.burst import max_workers
from reporter.config.model import Config
from reporter.errors import RunError
from reporter.periods import Period
from reporter.results import Results
from reporter.run.stages import Audience, Run

Job = tuple[str, dict[str, Any], Period, dt.datetime]

# How long to wait for a Dask scheduler to answer, and for delivery.burst.workers to join it.
CONNECT_TIMEOUT = 30.0
WORKERS_TIMEOUT = 120.0
LOG = logging.getLogger("reporter.burst")


@dataclass
class BurstReport:
    email: str
    results: Results | None  # None when the report failed (error says why)
    pdf: bytes | None  # None when the filtered data fails the quality gate, or the report failed
    error: str | None = None


_STATE: dict[str, Any] = {}


def _init(config: Config) -> None:
    con, infos = open_database(config)
    _STATE.update(config=config, con=con, infos=infos)


def _report(config: Config, con: Any, infos: Any, job: Job) -> BurstReport:
    """One recipient's ``Run`` made (compute → gate → render) on the worker's database; the
    process that runs the report finishes it (deliver → archive, ``Run.finish``)."""
    email, filter, period, now = job
    made = Run(config, period, Audience(email, filter), now).make(con, infos)
    return BurstReport(email, made.results, made.pdf)


def _guarded(config: Config, con: Any, infos: Any, job: Job) -> BurstReport:
    """One recipient's report, a failure included (a filter the data refuses, a template
    error): that recipient's failure, as data, never the run's, whichever executor runs it."""
    try:
        return _report(config, con, infos, job)
    except Exception as exc:
        return BurstReport(job[0], None, None, str(exc) or type(exc).__name__)


def _one(job: Job) -> BurstReport:
    return _guarded(_STATE["config"], _STATE["con"], _STATE["infos"], job)


def bursts(
    config: Config, period: Period, now: dt.datetime, jobs: Sequence[tuple[str, dict[str, Any]]]
) -> Iterator[BurstReport]:
    """Every recipient's report, rendered where ``delivery.burst`` says: in the order of ``jobs``
    on this machine, as they finish on a Dask cluster."""
    burst = config.delivery.burst
    if burst.executor == "dask":
        yield from dask_bursts(config, period, now, jobs)
    else:
        yield from render_bursts(config, period, now, jobs, workers=burst.workers)


def render_bursts(
    config: Config,
    period: Period,
    now: dt.datetime,
    jobs: Sequence[tuple[str, dict[str, Any]]],
    workers: int | None = None,
) -> list[BurstReport]:
    """Compute and render every recipient's filtered report on this machine's cores; results in
    the order of ``jobs``."""
    cap = max_workers()
    workers = max(1, min(workers or cap, cap, len(jobs)))
    LOG.info("%s: %d recipient(s) on %s", config.report.id, len(jobs), _processes(workers, cap))
    tasks = [(email, dict(filter), period, now) for email, filter in jobs]
    if workers == 1:
        _init(config)
        try:
            return [_one(t) for t in tasks]
        finally:
            _STATE["con"].close()
            _STATE.clear()
    return _on_processes(config, tasks, workers)


LOST = "the worker process that rendered it died (out of memory?); see the log"


def _on_processes(config: Config, tasks: list[Job], workers: int) -> list[BurstReport]:
    """The reports of ``tasks`` on a pool of ``workers`` processes, in order. A worker that dies
    breaks the pool (every report not finished fails with it): those are run again, one at a
    time on a new process, so the report that kills its process is known and fails alone
    (``LOST``); the others get their reports, as on Dask."""
    from concurrent.futures import ProcessPoolExecutor  # multiprocessing: only a burst loads it
    from concurrent.futures.process import BrokenProcessPool

    done: dict[int, BurstReport] = {}
    todo = list(range(len(tasks)))
    alone = False  # after a death: one report at a time, in order
    while todo:
        size = 1 if alone else workers
        with ProcessPoolExecutor(max_workers=size, initializer=_init, initargs=(config,)) as pool:
            futures = [(i, pool.submit(_one, tasks[i])) for i in todo]
            for i, future in futures:
                with contextlib.suppress(BrokenProcessPool):  # left in ``todo``: run again
                    done[i] = future.result()
        unfinished = [i for i in todo if i not in done]
        if unfinished and alone:  # the first unfinished was running when its process died
            culprit = unfinished.pop(0)
            LOG.warning("%s: the worker rendering %s's report died", config.report.id, tasks[culprit][0])
            done[culprit] = BurstReport(tasks[culprit][0], None, None, LOST)
        if unfinished and not alone:
            LOG.warning("%s: a worker process died; its reports run again one at a time", config.report.id)
        alone = bool(unfinished) and not alone
        todo = unfinished
    return [done[i] for i in range(len(tasks))]


# -- on a Dask cluster ----------------------------------------------------------------------
# A worker process keeps the DuckDB of the run it works for (by the run's token), so the sources
# are read once per worker and run, not once per recipient; the last two runs are kept at most.
_LOCK = threading.Lock()  # one report at a time per worker process (WeasyPrint pauses the GC)
_OPEN: dict[str, tuple[Any, Any]] = {}


def dask_task(config: Config, token: str, job: Job) -> bytes:
    """One recipient's report, run by a Dask worker, as plain bytes (``encode_report``): a
    failure is data too, so that no exception object has to travel back."""
    with _LOCK:
        try:
            if token not in _OPEN:
                while len(_OPEN) >= 2:
                    _OPEN.pop(next(iter(_OPEN)))[0].close()
                _OPEN[token] = open_database(config)
            con, infos = _OPEN[token]
        except Exception as exc:  # this recipient's failure; the next task opens them again
            why = (
                f"the Dask worker {_worker_address()} could not read the data: "
                f"{str(exc) or type(exc).__name__} (each worker reads the sources itself: they must be "
                "reachable from it at the same paths and connections)"
            )
            return encode_report(BurstReport(job[0], None, None, why))
        return encode_report(_guarded(config, con, infos, job))


def _worker_address() -> str:
    """The address of the Dask worker running this task, for the run's message."""
    try:
        return str(_distributed().get_worker().address)
    except ValueError:  # not on a worker
        return "(unknown)"


def encode_report(report: BurstReport) -> bytes:
    """A report as bytes: the length of a JSON head (8 bytes), the head (results, error), the PDF."""
    head = json.dumps(
        {
            "results": dataclasses.asdict(report.results) if report.results is not None else None,
            "pdf": report.pdf is not None,
            "error": report.error,
        },
        allow_nan=False,
    ).encode()
    return len(head).to_bytes(8, "big") + head + (report.pdf or b"")


def decode_report(email: str, payload: object) -> BurstReport:
    """What a worker sent back, read as data: bytes whose head is JSON that fits ``Results``
    and whose PDF is a PDF; anything else is that recipient's failure."""
    from pydantic import TypeAdapter, ValidationError

    refused = BurstReport(email, None, None, "the Dask worker's answer is not a report; see its logs")
    if not isinstance(payload, bytes) or len(payload) < 8:
        return refused
    size = int.from_bytes(payload[:8], "big")
    try:
        head = json.loads(payload[8 : 8 + size])
        results = None if head["results"] is None else TypeAdapter(Results).validate_python(head["results"])
        error = head["error"]
        has_pdf = head["pdf"]
    except (ValueError, KeyError, TypeError, ValidationError):
        return refused
    pdf = payload[8 + size :] if has_pdf is True else None
    if (pdf is not None and not pdf.startswith(b"%PDF-")) or not isinstance(error, str | None):
        return refused
    return BurstReport(email, results, pdf, error)


def dask_forget(token: str) -> None:
    """Close the run's DuckDB on this worker (run on every worker at the end)."""
    with _LOCK:
        opened = _OPEN.pop(token, None)
        if opened is not None:
            opened[0].close()


def for_workers(config: Config) -> Config:
    """``config`` as a Dask worker gets it: only the connections of its SQL sources."""
    wanted = {s.connection for s in config.sources.values() if s.type == "sql" and s.connection}
    return config.model_copy(
        update={"connections": {k: v for k, v in config.connections.items() if k in wanted}}
    )


def _shared(config: Config) -> Config:
    """The configuration as the result of a task (see ``dask_bursts``)."""
    return config


def dask_bursts(
    config: Config, period: Period, now: dt.datetime, jobs: Sequence[tuple[str, dict[str, Any]]]
) -> Iterator[BurstReport]:
    """One Dask task per recipient; each report is yielded as soon as it is back. A worker that
    dies is replaced and its tasks run again (Dask); a report that fails, or keeps killing its
    workers, comes back with ``error`` set and fails for that recipient only."""
    token = uuid.uuid4().hex
    with _client(config) as client:
        # The configuration goes to the cluster once, not with each of thousands of tasks, with
        # the connections the workers read (the SQL sources'), not the SMTP login or the ledger.
        # It is a task's result, not scattered data: when every worker holding it has died (a
        # report that kills its workers), Dask computes it again instead of cancelling the
        # reports that need it ("already forgotten").
        shared = client.submit(_shared, for_workers(config), key=f"reporter-config-{token}", pure=False)
        futures = {
            client.submit(
                dask_task, shared, token, (email, dict(filter), period, now), key=f"burst-{email}-{token}"
            ): email
            for email, filter in jobs
        }
        # Each result is fetched as soon as its task is done (Dask's callback thread, on this
        # client's event loop), not when the loop below gets to it after delivering the reports
        # before it: a bystander's report left on a worker that another report kills next would
        # be lost and rendered again. And not through ``as_completed`` without a loop, which
        # waits on the process's default client's event loop, maybe another client's: a task
        # waited on from two loops fails with "... is bound to a different event loop".
        emails = dict(futures)
        finished: queue.SimpleQueue[tuple[Any, BurstReport]] = queue.SimpleQueue()

        def fetch(future: Any) -> None:
            email = emails[future]
            try:
                report = decode_report(email, future.result())
            except BaseException as exc:  # a task's failure, whatever it is, is its recipient's
                report = BurstReport(email, None, None, _why(exc))
            future.release()  # here now: the cluster need not keep it, nor compute it again
            finished.put((future, report))

        for future in emails:
            future.add_done_callback(fetch)
        try:
            while futures:
                future, report = finished.get()
                del futures[future]
                yield report
        finally:
            for future in futures:
                future.cancel()
            shared.release()
            client.run(dask_forget, token, on_error="ignore")


# The scheduler hands a worker only as many tasks as it has threads: when a worker dies, Dask
# counts a failure against every task assigned to it, so a queued bystander of a report that
# kills its workers would fail with it. Set on the scheduler (dask scheduler: the environment
# variable DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0).
ONE_TASK_PER_THREAD = {"distributed.scheduler.worker-saturation": 1.0}


def dask_config() -> Any:
    import dask.config

    return dask.config


def _distributed() -> Any:
    """dask.distributed (the ``dask`` extra), imported only when a run bursts on Dask."""
    import distributed

    return distributed


def _processes(workers: int, cap: int) -> str:
    return (
        f"{workers} worker process(es) (at most {cap} on this machine: REPORTER_MAX_WORKERS, or one per core)"
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, _distributed().KilledWorker):
        return "every Dask worker that rendered it died (out of memory?); see the workers' logs"
    if isinstance(exc, TypeError) and "only able to deserialize data with" in str(exc):
        return "the Dask cluster answered with something other than plain data (refused); see its logs"
    return str(exc) or type(exc).__name__


# The client reads only msgpack from the cluster: a result, an error or a message in pickle (or
# Dask's own families, whose headers are pickled) is refused, never unpickled in this process.
PLAIN_DATA_ONLY = {"deserializers": ["msgpack"]}


class _client:
    """The Dask client of ``delivery.burst``: the scheduler of the operator's connection
    (``delivery.burst.connection``), or a cluster of ``workers`` processes started on this
    machine for the run. Either way the client reads plain data only (``PLAIN_DATA_ONLY``)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.cluster: Any = None
        self.client: Any = None

    def __enter__(self) -> Any:
        distributed = _distributed()
        burst = self.config.delivery.burst
        if burst.connection is None:
            cap = max_workers()
            workers = min(burst.workers or cap, cap)
            LOG.info("%s: a local Dask cluster of %s", self.config.report.id, _processes(workers, cap))
            with dask_config().set(ONE_TASK_PER_THREAD):
                self.cluster = distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",  # a cluster for this run only: nothing listens beyond loopback
                    dashboard_address="127.0.0.1:0",
                )
            self.client = distributed.Client(self.cluster, **PLAIN_DATA_ONLY)
            return self.client
        name = burst.connection
        address = self.config.connection_url(name)
        try:
            self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT, **PLAIN_DATA_ONLY)
        except OSError:
            raise RunError(
                f"{self.config.report.id}: the Dask scheduler of connection '{name}' did not answer within "
                f"{CONNECT_TIMEOUT:g} s; start it (dask scheduler) or have the operator correct the "
                "connection"
            ) from None
        wanted = burst.workers or 1
        try:
            self.client.wait_for_workers(wanted, timeout=WORKERS_TIMEOUT)
        except TimeoutError:
            joined = len(self.client.scheduler_info(n_workers=-1)["workers"])
            self.client.close()
            raise RunError(
                f"{self.config.report.id}: {joined} of the {wanted} Dask worker(s) asked for "
                f"(delivery.burst.workers) joined the scheduler of connection '{name}' within "
                f"{WORKERS_TIMEOUT:g} s; start more (dask worker ADDRESS) or lower workers"
            ) from None
        return self.client

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
