"""A run killed with SIGKILL (or whose machine stopped) is not shown as running forever:
``reporter status`` says it was interrupted, what it had delivered and what to run; the next run
records it as interrupted in the ledger and finishes its work, and nobody gets the report twice.

Real ``reporter run`` processes, the real ledger, a real SMTP server on 127.0.0.1 that holds
its reply to the first message (``late_reply``): the run is paused there, mid-delivery."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from reporter.cli import main
from reporter.delivery.ledger import Ledger, default_url, holders
from tests.smtp_server import Server
from tests.test_exactly_once import EPOCH, NOW, OPS, PEOPLE, count, tiny

HOST = socket.gethostname()


def paused_run(config: Path, folder: Path, server: Server) -> subprocess.Popen[bytes]:
    """``reporter run`` in its own process, once the server holds the first message unanswered."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reporter",
            "run",
            str(config),
            "--period",
            "2026-10",
            "--output",
            str(folder),
        ],
        cwd=folder,
        env={**os.environ, "SOURCE_DATE_EPOCH": EPOCH},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not server.handler.received and time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it reached the server"
        time.sleep(0.05)
    assert server.handler.received, "the run never reached the server"
    return proc


def run_lines(config: Path, folder: Path, capsys: pytest.CaptureFixture[str], what: str = "run") -> list[str]:
    capsys.readouterr()
    assert main(["status", str(config), "--output", str(folder)]) == 0
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"  {what} ")]


def test_a_killed_run_shows_interrupted_and_the_next_run_finishes_it_sending_once(tmp_path, capsys, caplog):
    with Server(tmp_path) as server:
        server.handler.late_reply = 30.0
        config = tiny(tmp_path, server.port, data_timeout=60)
        proc = paused_run(config, tmp_path, server)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert count(server) == {PEOPLE[0]: 1}
        again = f"reporter run {config} --period 2026-10 --output {tmp_path}"
        assert run_lines(config, tmp_path, capsys) == [
            f"  run 2026-10 at 2026-11-02 06:00 (cli): interrupted — process {proc.pid} on host {HOST} is "
            "gone (killed, or the machine stopped); its deliveries: 1 unconfirmed (the server may have it: "
            "the next run puts it in review, never re-sends it); "
            f"run '{again}' again to finish (no one gets the report twice)"
        ]
        assert run_lines(config, tmp_path, capsys, "delivery") == [
            f"  delivery 2026-10 to {PEOPLE[0]}: pending after 0 attempt(s) — run 1, which claimed it, is no "
            "longer running: the server may have it; the next run puts it in review, it is not sent again"
        ]
        # the next run records it as interrupted and sends to everyone else; the unconfirmed one
        # goes to review, as any delivery claimed by a run that is gone (exit 1 until resolved)
        server.handler.late_reply = 0
        found = f"process {proc.pid} on host {HOST} was gone (killed, or the machine stopped); found by run 2"
        assert main(["run", str(config), "--period", "2026-10", "--output", str(tmp_path)]) == 1
        assert f"tiny 2026-10: run 1 was interrupted: {found}; this run finishes its work" in caplog.messages
        assert count(server) == {**dict.fromkeys(PEOPLE, 1), OPS: 1}
        with Ledger(default_url(tmp_path)) as ledger:
            first = ledger.runs_of("tiny")[0]
            assert (first["outcome"], first["error"]) == ("interrupted", found)
            assert ledger.latest("tiny", "2026-10", PEOPLE[0]).state == "review"  # type: ignore[union-attr]
        assert run_lines(config, tmp_path, capsys)[0] == (
            f"  run 2026-10 at 2026-11-02 06:00 (cli): interrupted — {found}"
        )
        # settled by a person: the run completes, each recipient has exactly one message
        assert main(["resolve", str(config), "2026-10", PEOPLE[0], "--sent", "--output", str(tmp_path)]) == 0
        assert main(["run", str(config), "--period", "2026-10", "--output", str(tmp_path)]) == 0
        assert count(server) == {**dict.fromkeys(PEOPLE, 1), OPS: 1}
        with Ledger(default_url(tmp_path)) as ledger:
            assert [r["outcome"] for r in ledger.runs_of("tiny")] == ["interrupted", "failed", "ok"]
        assert all(": running" not in line for line in run_lines(config, tmp_path, capsys))
        assert main(["verify", str(tmp_path / "archive")]) == 0  # the PDF delivered is archived


def test_a_live_paused_run_still_shows_running_and_is_not_closed_by_another(tmp_path, capsys):
    with Server(tmp_path) as server:
        server.handler.late_reply = 30.0
        config = tiny(tmp_path, server.port, data_timeout=60)
        proc = paused_run(config, tmp_path, server)
        try:
            assert run_lines(config, tmp_path, capsys) == [
                f"  run 2026-10 at 2026-11-02 06:00 (cli): running (process {proc.pid} on host {HOST})"
            ]
            # its delivery under way is pending, with nothing more said: that run is sending it
            assert run_lines(config, tmp_path, capsys, "delivery") == [
                f"  delivery 2026-10 to {PEOPLE[0]}: pending after 0 attempt(s)"
            ]
            with Ledger(default_url(tmp_path)) as ledger:
                assert ledger.liveness(1).state == "alive"
                assert ledger.close_interrupted("tiny", "2026-10", NOW, by=2) == []
                assert [r["outcome"] for r in ledger.runs_of("tiny")] == ["running"]
        finally:
            proc.kill()
            proc.wait(timeout=30)


def _holder(folder: Path, **values: object) -> None:
    with Ledger(default_url(folder)) as ledger, ledger.engine.begin() as conn:
        conn.execute(holders.update().where(holders.c.run_id == 1).values(**values))


def test_a_reused_pid_a_restarted_machine_and_another_host(tmp_path, capsys):
    """Ledger-level: the run's process is known by boot and start time, not by its pid alone;
    a run on another host is not declared dead, and status says what it cannot check."""
    config = tiny(tmp_path, 1)
    with Ledger(default_url(tmp_path)) as ledger:
        ledger.start_run("tiny", "2026-10", NOW)
        assert ledger.liveness(1).state == "alive"  # this very process
        with ledger.engine.connect() as conn:
            row = conn.execute(sa.select(holders)).one()
    # as /proc says: this boot, and this process's start time (field 22 of its stat line)
    stat = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert (row.host, row.pid, row.boot_id, row.started_ticks) == (HOST, os.getpid(), boot, int(stat[19]))
    _holder(tmp_path, started_ticks=row.started_ticks + 1)  # the pid now names another process
    with Ledger(default_url(tmp_path)) as ledger:
        assert ledger.liveness(1).state == "gone"
        assert not ledger.run_alive(1, NOW)
    _holder(tmp_path, started_ticks=row.started_ticks, boot_id="an-earlier-boot")  # the machine restarted
    with Ledger(default_url(tmp_path)) as ledger:
        assert ledger.liveness(1).state == "gone"
    _holder(tmp_path, boot_id=row.boot_id, host="elsewhere")
    with Ledger(default_url(tmp_path)) as ledger:
        assert ledger.liveness(1).state == "unknown"
        assert ledger.close_interrupted("tiny", "2026-10", NOW, by=2) == []
    again = f"reporter run {config} --period 2026-10 --output {tmp_path}"
    assert run_lines(config, tmp_path, capsys) == [
        f"  run 2026-10 at 2026-11-02 06:00 (cli): running on host elsewhere (process {os.getpid()}), as far "
        "as the ledger says: this host cannot check that process; if it was killed or host elsewhere "
        f"stopped, run '{again}' to finish it (nothing is sent twice)"
    ]
