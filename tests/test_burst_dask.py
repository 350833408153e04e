"""Bursting on a Dask cluster (``delivery.burst.executor: dask``): each recipient's report is a
task on a real ``distributed.LocalCluster`` (worker processes on loopback); the PDFs come back to
the run, which delivers each exactly once through the ledger (loopback SMTP server).

One cluster for the module (2 worker processes, 1 thread each). A worker plugin logs which
process ran which recipient, and kills the worker running a given recipient (once, by a marker
file, or every time), the way a machine lost mid-task or an out-of-memory kill would."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import dask
import pytest
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin

from reporter.config import load_config
from reporter.errors import ConfigError, RunError
from reporter.run import burst as burst_module
from reporter.run.pipeline import run_report
from tests.smtp_server import Server
from tests.test_burst import NOW, SELLERS, make


@pytest.fixture(scope="module")
def cluster():
    # One failure allowed per task: a worker lost once is retried, a report that kills every
    # worker it runs on fails after the second.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1, **burst_module.ONE_TASK_PER_THREAD}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield cluster, client


class Tasks(WorkerPlugin):
    """Appends "email pid" to ``log`` whenever a worker starts a recipient's task; the worker
    running ``kill``'s task exits 0.2 s later, once (while ``marker`` does not exist) or always."""

    name = "burst-test-tasks"

    def __init__(self, log: Path, kill: str | None = None, marker: Path | None = None):
        self.log, self.kill, self.marker = str(log), kill, None if marker is None else str(marker)

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or not str(key).startswith("burst-"):
            return
        email = str(key).split("-")[1]
        with open(self.log, "a") as log:
            log.write(f"{email} {os.getpid()}\n")
        if email == self.kill and (self.marker is None or not os.path.exists(self.marker)):
            if self.marker is not None:
                open(self.marker, "w").close()
            threading.Timer(0.2, os._exit, (1,)).start()


@pytest.fixture
def tasks(cluster, tmp_path):
    _, client = cluster
    log = tmp_path / "tasks.log"
    log.touch()

    def register(kill=None, marker=None):
        client.register_plugin(Tasks(log, kill, marker))

    yield register, log
    client.unregister_worker_plugin(Tasks.name)


def runs(log: Path) -> list[tuple[str, int]]:
    return [(email, int(pid)) for email, pid in (line.split() for line in log.read_text().splitlines())]


def config_for(tmp_path, port, address, n=20, workers=None):
    make(tmp_path, port)
    path = tmp_path / "r.yaml"
    keep = {f"s{i:02d}@acme.test" for i in range(n)}
    lines = [
        line
        for line in path.read_text().splitlines(keepends=True)
        if "email: s" not in line or line.split("email: ")[1].split(",")[0] in keep
    ]
    keys = ["executor: dask", *["connection: dask"] * bool(address)]
    keys += [f"workers: {workers}"] * bool(workers)
    path.write_text("".join(lines) + "  burst: {" + ", ".join(keys) + "}\n")
    # the scheduler's address is the operator's connection, never the YAML's
    return load_config(path, env={"REPORTER_CONNECTION_DASK": address} if address else {})


def run(config, tmp_path):
    return run_report(config, period="2026-10", now=NOW, output=tmp_path / "out", sleep=lambda s: None)


def test_twenty_recipients_each_get_exactly_one_message_rendered_on_the_cluster(cluster, tasks, tmp_path):
    local, _ = cluster
    register, log = tasks
    register()
    with Server(tmp_path) as server:
        config = config_for(tmp_path, server.port, local.scheduler_address)
        assert config.delivery.burst.executor == "dask"
        outcome = run(config, tmp_path)
        emails = [f"s{i:02d}@acme.test" for i in range(20)]
        assert sorted(d.recipient for d in outcome.deliveries) == emails
        assert {d.state for d in outcome.deliveries} == {"sent"}
        assert sorted(r.rcpt_tos[0] for r in server.handler.received) == emails
        # every report was rendered by a task on the cluster's two worker processes, once
        done = runs(log)
        assert sorted(email for email, _ in done) == emails
        pids = {pid for _, pid in done}
        assert len(pids) == 2
        assert os.getpid() not in pids
        # the numbers are the recipient's own rows (checked against the CSV rows themselves)
        orders = [row.split(",") for row in (tmp_path / "orders.csv").read_text().splitlines()[1:]]
        for i in (4, 13):
            mine = sum(float(a) for d, s, a in orders if s == SELLERS[i] and d.startswith("2026-10"))
            folder = tmp_path / "out" / "burst" / "2026-10" / "recipients" / f"s{i:02d}@acme.test"
            data = json.loads((folder / "results.json").read_text())
            assert data["filter"] == {"salesperson": SELLERS[i]}
            assert data["kpis"]["revenue"]["value"] == pytest.approx(mine)
            (msg,) = [r.message for r in server.handler.received if r.rcpt_tos == [f"s{i:02d}@acme.test"]]
            pdf = next(p for p in msg.iter_attachments()).get_content()
            assert pdf.startswith(b"%PDF-")
            assert pdf == (folder / "burst_2026-10.pdf").read_bytes()
        # rerunning sends nothing
        again = run(config, tmp_path)
        assert sorted(d.state for d in again.deliveries) == ["skipped"] * 20
        assert len(server.handler.received) == 20


def test_a_worker_killed_mid_task_causes_no_duplicate_and_no_loss(cluster, tasks, tmp_path):
    local, _ = cluster
    register, log = tasks
    marker = tmp_path / "killed-once"
    register(kill="s02@acme.test", marker=marker)
    with Server(tmp_path) as server:
        config = config_for(tmp_path, server.port, local.scheduler_address, n=6)
        outcome = run(config, tmp_path)
        emails = [f"s{i:02d}@acme.test" for i in range(6)]
        assert sorted((d.recipient, d.state) for d in outcome.deliveries) == [(e, "sent") for e in emails]
        assert sorted(r.rcpt_tos[0] for r in server.handler.received) == emails
        # s02's task started twice: on the worker that died, then again on a live one
        assert marker.exists()
        twice = [pid for email, pid in runs(log) if email == "s02@acme.test"]
        assert len(twice) == 2
        assert twice[0] != twice[1]
        with pytest.raises(ProcessLookupError):
            os.kill(twice[0], 0)
        again = run(config, tmp_path)
        assert sorted(d.state for d in again.deliveries) == ["skipped"] * 6
        assert len(server.handler.received) == 6


def test_a_report_that_keeps_killing_its_workers_fails_for_that_recipient_only(cluster, tasks, tmp_path):
    local, client = cluster
    register, log = tasks
    register(kill="s01@acme.test")  # every time: an out-of-memory report, say
    with Server(tmp_path) as server:
        config = config_for(tmp_path, server.port, local.scheduler_address, n=4)
        with pytest.raises(RunError) as exc:
            run(config, tmp_path)
        assert str(exc.value) == (
            "burst 2026-10: delivery failed for s01@acme.test (report failed: every Dask worker that "
            "rendered it died (out of memory?); see the workers' logs); the others were delivered; run "
            "again to retry only these"
        )
        assert sorted(r.rcpt_tos[0] for r in server.handler.received) == [
            "s00@acme.test",
            "s02@acme.test",
            "s03@acme.test",
        ]
        done = [email for email, _ in runs(log)]
        assert done.count("s01@acme.test") == 2  # allowed-failures: 1
        # no bystander: a worker is handed one task at a time, so only s01 was on the workers that died
        assert sorted(e for e in done if e != "s01@acme.test") == [
            "s00@acme.test",
            "s02@acme.test",
            "s03@acme.test",
        ]
        client.unregister_worker_plugin(Tasks.name)
        client.register_plugin(Tasks(log))
        again = run(config, tmp_path)
        assert sorted((d.recipient, d.state) for d in again.deliveries) == [
            ("s00@acme.test", "skipped"),
            ("s01@acme.test", "sent"),
            ("s02@acme.test", "skipped"),
            ("s03@acme.test", "skipped"),
        ]
        assert [r.rcpt_tos[0] for r in server.handler.received].count("s01@acme.test") == 1


def _burst_keys(dask_scheduler):
    return [k for k in dask_scheduler.tasks if str(k).startswith("burst-")]


def _sent_keys(dask_worker):
    return [k for sent in dask_worker.transfer_outgoing_log for k in sent["keys"]]


def _exit_soon():
    threading.Timer(0.1, os._exit, (1,)).start()


def _losing_every_worker_after_the_first_report(real, client):
    """``dask_bursts`` that, once the first report is back and the others are done (and fetched,
    if the run fetches them as they finish: 20 s at most), has every worker of the cluster exit,
    and waits for their replacements before the run reads the other reports."""

    def dask_bursts(*args):
        reports = real(*args)
        yield next(reports)
        keys = client.run_on_scheduler(_burst_keys)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sent = {k for ks in client.run(_sent_keys).values() for k in ks}
            if set(keys) <= sent:
                break
            time.sleep(0.1)
        old = set(client.run(os.getpid).values())
        client.run(_exit_soon)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = set(client.run(os.getpid).values())
            if len(pids) == 2 and not pids & old:
                break
            time.sleep(0.2)
        yield from reports

    return dask_bursts


def test_a_report_finished_before_its_worker_is_lost_is_not_rendered_again(
    cluster, tasks, tmp_path, monkeypatch
):
    """Each report is fetched from its worker as soon as it is done, not when the run gets to
    it: every worker lost while the run delivers the first report costs no other report. (This
    test's module client is the process's current one, another client than the run's.)"""
    local, client = cluster
    register, log = tasks
    register()
    monkeypatch.setattr(
        burst_module,
        "dask_bursts",
        _losing_every_worker_after_the_first_report(burst_module.dask_bursts, client),
    )
    with Server(tmp_path) as server:
        config = config_for(tmp_path, server.port, local.scheduler_address, n=3)
        outcome = run(config, tmp_path)
        emails = [f"s{i:02d}@acme.test" for i in range(3)]
        assert sorted((d.recipient, d.state, d.error) for d in outcome.deliveries) == [
            (e, "sent", None) for e in emails
        ]
        assert sorted(r.rcpt_tos[0] for r in server.handler.received) == emails
    assert sorted(email for email, _ in runs(log)) == emails  # each rendered once


def test_an_unreachable_scheduler_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(burst_module, "CONNECT_TIMEOUT", 1.0)
    config = config_for(tmp_path, 25, "tcp://127.0.0.1:9", n=2)
    with pytest.raises(RunError) as exc:
        run_report(config, period="2026-10", now=NOW, output=tmp_path / "out", send=False)
    assert str(exc.value) == (
        "burst: the Dask scheduler of connection 'dask' did not answer within 1 s; start it "
        "(dask scheduler) or have the operator correct the connection"
    )


def test_too_few_workers_is_one_line(cluster, tmp_path, monkeypatch):
    local, _ = cluster
    monkeypatch.setattr(burst_module, "WORKERS_TIMEOUT", 1.0)
    config = config_for(tmp_path, 25, local.scheduler_address, n=2, workers=5)
    with pytest.raises(RunError) as exc:
        run_report(config, period="2026-10", now=NOW, output=tmp_path / "out", send=False)
    assert str(exc.value) == (
        "burst: 2 of the 5 Dask worker(s) asked for (delivery.burst.workers) joined the scheduler of "
        "connection 'dask' within 1 s; start more (dask worker ADDRESS) or lower workers"
    )


def test_without_an_address_a_cluster_is_started_for_the_run(tmp_path, monkeypatch):
    def not_here(*args, **kwargs):
        raise AssertionError("rendered by the local process pool")

    monkeypatch.setattr(burst_module, "render_bursts", not_here)
    with Server(tmp_path) as server:
        config = config_for(tmp_path, server.port, None, n=2, workers=1)
        assert config.delivery.burst.connection is None
        outcome = run(config, tmp_path)
        assert sorted((d.recipient, d.state) for d in outcome.deliveries) == [
            ("s00@acme.test", "sent"),
            ("s01@acme.test", "sent"),
        ]
        assert sorted(r.rcpt_tos[0] for r in server.handler.received) == ["s00@acme.test", "s01@acme.test"]


@pytest.mark.parametrize(
    ("burst", "message"),
    [
        (
            "{connection: dask}",
            "/r.yaml:40:23: delivery.burst.connection: a connection is only used with executor: dask; "
            "add 'executor: dask', or remove the connection to render on this machine",
        ),
        (
            "{executor: dask, address: 'tcp://10.0.0.5:8786'}",
            "/r.yaml:40:27: delivery.burst.address: the Dask scheduler is the operator's: its address "
            "comes from a connection, not from the report; write 'connection: dask' instead, and have "
            "the operator set REPORTER_CONNECTION_DASK=tcp://HOST:8786 in the environment (or "
            "'dask: tcp://HOST:8786' in a --connections file)",
        ),
        (
            "{executor: dask, connection: dask}",
            "/r.yaml:40:39: delivery.burst.connection: connection 'dask' (REPORTER_CONNECTION_DASK) is "
            "not a Dask scheduler address (tcp://HOST:PORT or tls://HOST:PORT); the operator corrects "
            "the connection's URL",
        ),
        (
            "{executor: cluster}",
            "/r.yaml:40:21: delivery.burst.executor: 'cluster' is not one of: local, dask",
        ),
    ],
)
def test_burst_settings_are_checked(tmp_path, burst, message):
    make(tmp_path, 25)
    path = tmp_path / "r.yaml"
    path.write_text(path.read_text() + f"  burst: {burst}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={"REPORTER_CONNECTION_DASK": "smtp://dask-scheduler:8786"})
    assert [str(p) for p in exc.value.problems] == [str(tmp_path) + message]


def test_a_local_cluster_is_capped_at_the_machines_cores(tmp_path, monkeypatch, caplog):
    """`burst: {executor: dask, workers: 4}` without an address used to start 4 worker processes
    whatever the machine; it starts at most REPORTER_MAX_WORKERS (the operator's), or one per
    core: counted here as the new child processes, sampled while the run goes on."""
    import logging
    import multiprocessing

    monkeypatch.setenv("REPORTER_MAX_WORKERS", "1")
    before = {p.pid for p in multiprocessing.active_children()}  # the module's cluster, if started
    seen: set[int] = set()
    done = threading.Event()

    def sample():
        while not done.is_set():
            seen.update(p.pid for p in multiprocessing.active_children() if p.pid not in before)
            done.wait(0.01)

    with Server(tmp_path) as server:
        config = config_for(tmp_path, server.port, None, n=2, workers=4)
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with caplog.at_level(logging.INFO, logger="reporter.burst"):
                outcome = run(config, tmp_path)
        finally:
            done.set()
            sampler.join()
        assert sorted(d.state for d in outcome.deliveries) == ["sent", "sent"]
    assert len(seen) == 1
    assert (
        "burst: a local Dask cluster of 1 worker process(es) (at most 1 on this machine: "
        "REPORTER_MAX_WORKERS, or one per core)"
    ) in caplog.messages


class Hostile:
    """A result whose unpickling would touch ``marker``: what a hostile worker would send back
    to run a command on the reporter's host."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def hostile(marker: str) -> Hostile:
    return Hostile(marker)


@pytest.mark.parametrize("where", ["the operator's cluster", "a cluster started for the run"])
def test_a_hostile_result_from_a_worker_is_never_unpickled(cluster, tmp_path, where):
    local, _ = cluster
    address = local.scheduler_address if where == "the operator's cluster" else None
    config = config_for(tmp_path, 25, address, n=2, workers=1)
    marker = tmp_path / "MARKER"
    with burst_module._client(config) as client:
        future = client.submit(hostile, str(marker), pure=False)
        with pytest.raises(TypeError, match="only able to deserialize data with"):
            future.result(timeout=60)
        future.release()
        # plain data still comes back: a report as bytes, read as data
        report = burst_module.BurstReport("a@acme.test", None, None, "failed")
        sent = client.submit(burst_module.encode_report, report, pure=False).result(timeout=60)
    assert not marker.exists()
    assert burst_module.decode_report("a@acme.test", sent) == report


def test_a_worker_answer_that_is_not_a_report_is_refused():
    refused = "the Dask worker's answer is not a report; see its logs"
    good = burst_module.encode_report(burst_module.BurstReport("a@acme.test", None, b"%PDF-1.7 x"))
    assert burst_module.decode_report("a@acme.test", good).pdf == b"%PDF-1.7 x"
    for payload in (None, b"", b"\x00" * 8, good.replace(b"%PDF", b"%EXE"), {"results": None}):
        assert burst_module.decode_report("a@acme.test", payload).error == refused


def test_workers_get_the_sql_connections_only(tmp_path):
    """The SMTP login and the ledger's URL never leave the report's host; the workers read the
    SQL sources, so they get those connections."""
    config = config_for(tmp_path, 25, None, n=2)
    config = config.model_copy(
        update={
            "connections": {
                "smtp": "smtp://reporting:pw-MARKER@smtp.acme.test",
                "ledger": "postgresql://r:pw2-MARKER@db/ledger",
            }
        }
    )
    assert burst_module.for_workers(config).connections == {}
    source = config.sources["orders"].model_copy(update={"type": "sql", "connection": "wh", "path": None})
    config = config.model_copy(
        update={
            "sources": {**config.sources, "orders": source},
            "connections": {**config.connections, "wh": "duckdb:///w.duckdb"},
        }
    )
    assert burst_module.for_workers(config).connections == {"wh": "duckdb:///w.duckdb"}


# --- the same burst on either executor -------------------------------------------------------

KILLER = "s03@acme.test"


def parity_config(folder: Path, port: int, executor: str, address: str | None, *, second: bool):
    """Five recipients: s00 fine; s01 a filter the data refuses (amount is a number); s02 a
    seller with no rows (its quality gate fails); s03 killed mid-report, every time; s04 fine in
    the first run and, in the second, a seller with no rows although it already has the report."""
    make(folder, port)
    recipients = [
        ("s00", "{salesperson: 'Seller 00'}"),
        ("s01", "{amount: 'not a number'}"),
        ("s02", "{salesperson: 'Nobody'}"),
        ("s03", "{salesperson: 'Seller 03'}"),
        ("s04", "{salesperson: 'Nobody'}" if second else "{salesperson: 'Seller 04'}"),
    ]
    text = (folder / "r.yaml").read_text()
    head = text.split("    recipients:\n")[0]
    lines = "".join(f"      - {{email: {name}@acme.test, filter: {f}}}\n" for name, f in recipients)
    burst = "{executor: dask, connection: dask}" if executor == "dask" else "{workers: 2}"
    (folder / "r.yaml").write_text(f"{head}    recipients:\n{lines}  burst: {burst}\n")
    return load_config(folder / "r.yaml", env={"REPORTER_CONNECTION_DASK": address} if address else {})


def _kill_when_rendering(real):
    """A local worker process rendering KILLER's report exits 0.2 s into it (forked workers
    inherit this), as the Dask plugin does to a Dask worker."""

    def report(config, con, infos, job):
        if job[0] == KILLER:
            threading.Timer(0.2, os._exit, (1,)).start()
        return real(config, con, infos, job)

    return report


def burst_on(executor: str, folder: Path, cluster) -> dict:
    """The second run of the parity scenario on ``executor``: per-recipient outcomes, the files
    under the period's folder, the ledger's rows, the messages received, s04's files' bytes."""
    from reporter.delivery.ledger import Ledger, default_url

    folder.mkdir()
    address = cluster[0].scheduler_address if executor == "dask" else None
    out = folder / "out"
    with Server(folder) as server:
        first = parity_config(folder, server.port, executor, address, second=False)
        done = run_report(first, period="2026-10", now=NOW, output=out, recipients=["s04@acme.test"])
        assert [(d.recipient, d.state) for d in done.deliveries] == [("s04@acme.test", "sent")]
        period = out / "burst" / "2026-10"
        s04 = period / "recipients" / "s04@acme.test"
        kept = {p.name: p.read_bytes() for p in s04.iterdir()}
        second = parity_config(folder, server.port, executor, address, second=True)
        with pytest.raises(RunError) as failed:
            run_report(second, period="2026-10", now=NOW, output=out, sleep=lambda s: None)
        outcome = failed.value.outcome  # type: ignore[attr-defined]
        with Ledger(default_url(out)) as ledger:
            rows = sorted((d.recipient, d.version, d.state) for d in ledger.all("burst"))
        return {
            "outcomes": sorted((d.recipient, d.state) for d in outcome.deliveries),
            "errors": {d.recipient: d.error for d in outcome.deliveries},
            "files": sorted(str(p.relative_to(period)) for p in period.rglob("*") if p.is_file()),
            "rows": rows,
            "received": sorted(r.rcpt_tos[0] for r in server.handler.received),
            "s04 kept": {p.name: p.read_bytes() for p in s04.iterdir()} == kept,
            "error": str(failed.value),
        }


def test_the_same_burst_has_the_same_outcome_on_local_workers_and_on_dask(
    cluster, tasks, tmp_path, monkeypatch
):
    """One bad filter, one quality-gate failure, one worker killed mid-report every time, and a
    recipient who already has the report but whose data now fails the gate: on local worker
    processes and on a Dask cluster alike, each fails (or is skipped) alone, the others get their
    report, and the files and the ledger are the same."""
    monkeypatch.setenv("REPORTER_MAX_WORKERS", "2")
    monkeypatch.setattr(burst_module, "_report", _kill_when_rendering(burst_module._report))
    local = burst_on("local", tmp_path / "local", cluster)
    register, log = tasks
    register(kill=KILLER)
    dask_run = burst_on("dask", tmp_path / "dask", cluster)

    expected = [
        ("s00@acme.test", "sent"),
        ("s01@acme.test", "failed"),
        ("s02@acme.test", "failed"),
        ("s03@acme.test", "failed"),
        ("s04@acme.test", "skipped"),
    ]
    for got in (local, dask_run):
        assert got["outcomes"] == expected
        assert got["received"] == ["s00@acme.test", "s04@acme.test"]  # s04 in the first run only
        assert got["s04 kept"]  # its PDF and results.json as they were sent
        assert got["errors"]["s01@acme.test"].startswith("report failed: ")
        assert got["errors"]["s02@acme.test"].startswith("quality gate: ")
        assert got["errors"]["s04@acme.test"].startswith("already sent on 2026-11-02 (ledger); ")
    assert local["files"] == dask_run["files"]
    assert (
        local["rows"]
        == dask_run["rows"]
        == [
            ("s00@acme.test", 1, "sent"),
            ("s04@acme.test", 1, "sent"),
        ]
    )
    # nothing written for a report that failed; results.json alone where no PDF was sent
    mine = [f for f in local["files"] if f.startswith("recipients/")]
    assert mine == [
        "recipients/s00@acme.test/burst_2026-10.pdf",
        "recipients/s00@acme.test/email.eml",
        "recipients/s00@acme.test/results.json",
        "recipients/s02@acme.test/results.json",
        "recipients/s04@acme.test/burst_2026-10.pdf",
        "recipients/s04@acme.test/email.eml",
        "recipients/s04@acme.test/results.json",
    ]
    assert local["errors"]["s03@acme.test"] == (
        "report failed: the worker process that rendered it died (out of memory?); see the log"
    )
    assert dask_run["errors"]["s03@acme.test"] == (
        "report failed: every Dask worker that rendered it died (out of memory?); see the workers' logs"
    )
    assert [email for email, _ in runs(log)].count(KILLER) == 2  # allowed-failures: 1


class HideData(WorkerPlugin):
    """Moves ``path`` away while the first recipient's task that starts on the worker runs, and
    puts it back when that task ends; logs that recipient's address to ``log``: the data a
    worker reads are missing for one moment (a share unmounted, a file being replaced)."""

    name = "burst-test-hide-data"

    def __init__(self, path: Path, log: Path):
        self.path, self.log, self.hiding = str(path), str(log), None

    def transition(self, key, start, finish, **kwargs):
        if not str(key).startswith("burst-"):
            return
        if finish == "executing" and self.hiding is None and not os.path.exists(self.log):
            self.hiding = key
            with open(self.log, "w") as log:
                log.write(str(key).split("-")[1])
            os.rename(self.path, self.path + ".away")
        elif start == "executing" and key == self.hiding:
            os.rename(self.path + ".away", self.path)


def test_a_worker_that_cannot_read_the_data_fails_that_recipient_alone_with_why(tmp_path):
    """The worker's first task opens the sources (``dask_task``); when that fails (the data file
    missing at that moment), that recipient's report fails with the reason, as data, and the
    worker opens them again for the next task: the others are delivered, and the run says who
    failed and why. One worker with one thread, so that the first task is the one that opens."""
    with (
        dask.config.set(burst_module.ONE_TASK_PER_THREAD),
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as local,
        Client(local) as client,
        Server(tmp_path) as server,
    ):
        config = config_for(tmp_path, server.port, local.scheduler_address, n=4)
        log = tmp_path / "hidden.log"
        client.register_plugin(HideData(tmp_path / "orders.csv", log))
        with pytest.raises(RunError) as exc:
            run(config, tmp_path)
        failed, (worker,) = log.read_text(), client.scheduler_info()["workers"]
        assert str(exc.value) == (
            f"burst 2026-10: delivery failed for {failed} (report failed: the Dask worker {worker} could "
            f"not read the data: source 'orders': file not found: {tmp_path / 'orders.csv'} (each worker "
            "reads the sources itself: they must be reachable from it at the same paths and connections)); "
            "the others were delivered; run again to retry only these"
        )
        emails = [f"s{i:02d}@acme.test" for i in range(4)]
        assert sorted(r.rcpt_tos[0] for r in server.handler.received) == [e for e in emails if e != failed]
        outcome = exc.value.outcome  # type: ignore[attr-defined]
        assert sorted((d.recipient, d.state) for d in outcome.deliveries) == [
            (e, "failed" if e == failed else "sent") for e in emails
        ]
