"""A delivery whose fate is unknown fails the run; a lost or locked ledger is a clear error.

Against real servers on 127.0.0.1: a hand-written SMTP server that misbehaves at the message's
end (tests/smtp_server.py ``RawServer``), aiosmtpd for a reply that comes too late, real
``reporter`` processes where a process is killed, and the real ledger. Messages are counted at
the server, per recipient."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reporter.cli import main
from tests.smtp_server import RawServer, Received
from tests.test_exactly_once import EPOCH, OPS, states, tiny

A, B, C = "a@acme.test", "b@acme.test", "c@acme.test"


def alerts(server: RawServer) -> list:
    return [r.message for r in server.received if r.rcpt_tos == [OPS]]


def run(config: Path, folder: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["run", str(config), "--period", "2026-10", "--output", str(folder), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def status(config: Path, folder: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    assert main(["status", str(config), "--output", str(folder)]) == 0
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("  delivery ")]


def unconfirmed_line(config: Path, who: str) -> str:
    return (
        f"reporter: FAILED: tiny 2026-10: delivery to {who} unconfirmed, in review (the server may "
        f"have accepted it; not re-sent): check whether it arrived, then run 'reporter resolve {config} "
        f"2026-10 {who} --sent --output {config.parent}' if it did, or '--resend' if not"
    )


def assert_alerted(server: RawServer, config: Path, who: str, n: int = 1) -> None:
    got = alerts(server)
    assert len(got) == n
    assert got[-1]["Subject"] == (
        "[reporter] tiny 2026-10: run FAILED: delivery unconfirmed for 1 of 3 recipients; review needed"
    )
    body = got[-1].get_content().replace("\r\n", "\n")
    assert (
        "May have received it (sending began, its outcome was not recorded; not re-sent automatically):\n"
        f"  - {who}: check {who}'s mailbox, then run 'reporter resolve {config} 2026-10 {who} --sent "
        f"--output {config.parent}' if it arrived, or '--resend' if it did not\n"
    ) in body
    assert f"  reporter status {config} --output {config.parent}\n" in body


@pytest.mark.parametrize(
    ("fate", "stored", "settle"),
    [("close", 1, "--sent"), ("reset", 0, "--resend"), ("late", 1, "--sent")],
)
def test_a_message_whose_fate_is_unknown_fails_the_run_until_resolved(tmp_path, capsys, fate, stored, settle):
    """The server closes the connection after the final dot (it stored the message), resets it
    in the middle of the body (it did not), or answers after the client stopped waiting: the
    run does not re-send, exits 1 saying who to check and how, alerts, and ``status`` shows the
    review; after ``resolve`` every recipient has exactly one message."""
    with RawServer() as server:
        server.fate[B] = fate
        server.late = 2.0
        config = tiny(tmp_path, server.port, to=[A, B, C], data_timeout=0.5)
        code, out, err = run(config, tmp_path, capsys)
        assert code == 1, err
        assert err.splitlines()[-1] == unconfirmed_line(config, B)
        assert f"  {B}: not re-sent, review: " in out
        assert out.startswith("tiny 2026-10: written, then FAILED (see below) — ")  # never "done"
        assert count_raw(server) == {A: 1, B: stored, C: 1, OPS: 1} if stored else {A: 1, C: 1, OPS: 1}
        assert_alerted(server, config, B)
        assert states(tmp_path) == {A: (1, "sent"), B: (1, "review"), C: (1, "sent")}
        (line,) = status(config, tmp_path, capsys)
        msg_id = message_ids(tmp_path)[B]
        assert line.startswith(
            f"  delivery 2026-10 to {B}: review after 1 attempt(s), Message-ID {msg_id} — "
        )
        assert line.endswith(
            f"reporter resolve {config} 2026-10 {B} --sent --output {tmp_path}' if it arrived, "
            "or '--resend' if it did not"
        )
        # a rerun re-sends nothing and still fails, saying so
        code, _, err = run(config, tmp_path, capsys)
        assert (code, err.splitlines()[-1]) == (1, unconfirmed_line(config, B))
        assert count_raw(server) == {A: 1, B: stored, C: 1, OPS: 2} if stored else {A: 1, C: 1, OPS: 2}
        # settled: the message arrived (--sent) or did not and is sent once more (--resend)
        server.fate.clear()
        assert main(["resolve", str(config), "2026-10", B, settle, "--output", str(tmp_path)]) == 0
        code, _, err = run(config, tmp_path, capsys)
        assert code == 0, err
        assert count_raw(server) == {A: 1, B: 1, C: 1, OPS: 2}
        assert status(config, tmp_path, capsys) == []


def message_ids(folder: Path) -> dict[str, str]:
    from reporter.delivery.ledger import Ledger, default_url

    with Ledger(default_url(folder)) as ledger:
        return {d.recipient: d.message_id for d in ledger.all("tiny")}


def count_raw(server: RawServer) -> dict[str, int]:
    seen: dict[str, int] = {}
    for r in server.received:
        for address in r.rcpt_tos:
            seen[address] = seen.get(address, 0) + 1
    return seen


def test_killed_after_the_dot_the_next_run_fails_with_the_review_until_resolved(tmp_path, capsys):
    """kill -9 of ``reporter run`` once the server has the whole message, before its reply: the
    next run does not re-send it, sends to the others, exits 1, alerts; ``status`` shows it."""
    with RawServer() as server:
        server.fate[A] = "late"
        server.late = 30.0
        config = tiny(tmp_path, server.port, to=[A, B, C], data_timeout=60)
        env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
        command = [sys.executable, "-m", "reporter", "run", str(config), "--period", "2026-10"]
        proc = subprocess.Popen(
            [*command, "--output", str(tmp_path)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        arrived: list[Received] = []
        server.on_message = arrived.append
        deadline = time.monotonic() + 120
        while not arrived and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert count_raw(server) == {A: 1}
        assert states(tmp_path) == {A: (1, "pending")}
        server.fate.clear()
        code, _, err = run(config, tmp_path, capsys)
        assert code == 1, err
        assert err.splitlines()[-1] == unconfirmed_line(config, A)
        assert count_raw(server) == {A: 1, B: 1, C: 1, OPS: 1}
        assert_alerted(server, config, A)
        (line,) = status(config, tmp_path, capsys)
        msg_id = server.to(A)[0].message["Message-ID"]
        assert line == (
            f"  delivery 2026-10 to {A}: review after 0 attempt(s), Message-ID {msg_id} — "
            "a previous run stopped after "
            "sending began (the server may have accepted it): not re-sent; check "
            f"{A}'s mailbox, then run 'reporter resolve {config} 2026-10 {A} --sent --output {tmp_path}' "
            "if it arrived, "
            "or '--resend' if it did not"
        )
        assert main(["resolve", str(config), "2026-10", A, "--sent", "--output", str(tmp_path)]) == 0
        code, _, err = run(config, tmp_path, capsys)
        assert code == 0, err
        assert count_raw(server) == {A: 1, B: 1, C: 1, OPS: 1}
        assert status(config, tmp_path, capsys) == []


# --- the ledger lost after the send --------------------------------------------------------------


class Admin:
    """A second connection to the ledger's PostgreSQL database, as an operator (or an outage)
    would act on it: cut the other connections, refuse new ones, hold a row lock."""

    def __init__(self, url: str):
        import psycopg
        import sqlalchemy as sa

        plain = sa.make_url(url).set(drivername="postgresql")
        self.database, self.host, self.port = plain.database, plain.host, plain.port or 5432
        # from the server's own database: one cannot refuse connections to the one it is in
        admin = plain.set(database="postgres").render_as_string(hide_password=False)
        self.conn = psycopg.connect(admin, autocommit=True)

    def cut(self, refuse: bool = False) -> None:
        """Terminate every other connection to the database; ``refuse``: and refuse new ones."""
        if refuse:
            self.conn.execute(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS false')
        self.conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.database,),
        )

    def welcome(self) -> None:
        self.conn.execute(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS true')

    def close(self) -> None:
        self.welcome()
        self.conn.close()


def with_ledger(config: Path) -> Path:
    """The report with its ledger in PostgreSQL (the operator's connection 'testledger', its URL
    in the environment)."""
    text = config.read_text().replace("delivery:\n", "delivery:\n  ledger: testledger\n", 1)
    config.write_text(text)
    return config


@pytest.fixture
def pg_admin(empty_pg_ledger, monkeypatch):
    monkeypatch.setenv("REPORTER_CONNECTION_TESTLEDGER", empty_pg_ledger)
    admin = Admin(empty_pg_ledger)
    yield admin
    admin.close()


def pg_states(url: str) -> dict[str, tuple[int, str]]:
    from reporter.delivery.ledger import Ledger

    with Ledger(url) as ledger:
        return {d.recipient: (d.version, d.state) for d in ledger.all("tiny")}


def test_a_connection_cut_after_the_send_is_replaced_and_the_delivery_recorded(
    tmp_path, capsys, pg_admin, empty_pg_ledger
):
    """The ledger's connections are cut when the server has B's message, before its 250: the
    write that follows finds its connection dead, takes a new one, and records B as sent."""
    with RawServer() as server:
        server.on_message = lambda received: pg_admin.cut() if B in received.rcpt_tos else None
        config = with_ledger(tiny(tmp_path, server.port, to=[A, B, C]))
        code, _, err = run(config, tmp_path, capsys)
        assert code == 0, err
        assert count_raw(server) == {A: 1, B: 1, C: 1}
    assert pg_states(empty_pg_ledger) == {A: (1, "sent"), B: (1, "sent"), C: (1, "sent")}
    assert not (tmp_path / "ledger-journal.jsonl").exists()


@pytest.mark.parametrize("then", ["run", "resolve"])
def test_a_ledger_lost_after_the_send_is_a_clear_error_and_the_journal_keeps_the_delivery(
    tmp_path, capsys, pg_admin, empty_pg_ledger, then
):
    """The database goes away when the server has B's message (connections cut, new ones
    refused): the run says B has it and the ledger could not record it, exits 1, alerts, and
    notes B in the fallback journal; the next run, with the ledger back, records B from the
    journal (or ``reporter resolve … --sent`` does, as the error says), sends to C only, and
    consumes the journal."""
    journal = tmp_path / "ledger-journal.jsonl"
    with RawServer() as server:
        server.on_message = lambda received: pg_admin.cut(refuse=True) if B in received.rcpt_tos else None
        config = with_ledger(tiny(tmp_path, server.port, to=[A, B, C]))
        code, _, err = run(config, tmp_path, capsys)
        assert code == 1, err
        last = err.splitlines()[-1]
        assert last.startswith(f"reporter: FAILED: tiny 2026-10: sent to {B} at ")
        when = last.split(" at ", 1)[1][:8]
        assert last == (
            f"reporter: FAILED: tiny 2026-10: sent to {B} at {when} UTC but the ledger could not record "
            f'it (connection failed: connection to server at "{pg_admin.host}", port {pg_admin.port} '
            f'failed: FATAL: database "{pg_admin.database}" is not currently accepting connections)'
            f"; noted in {journal}: once the ledger is back, run 'reporter resolve {config} 2026-10 {B} "
            f"--sent --output {tmp_path}' or run the report again: either records it from there, "
            "and it is not sent again"
        )
        assert "internal error" not in err
        assert count_raw(server) == {A: 1, B: 1, OPS: 1}
        (alert,) = alerts(server)
        assert alert["Subject"] == (
            f"[reporter] tiny 2026-10: run FAILED: sent to {B} but the ledger could not record it"
        )
        assert last.removeprefix("reporter: FAILED: ") in alert.get_content().replace("\r\n", "\n")
        (entry,) = [json.loads(line) for line in journal.read_text().splitlines()]
        assert {k: entry[k] for k in ("report", "period", "recipient", "version", "state")} == {
            "report": "tiny",
            "period": "2026-10",
            "recipient": B,
            "version": 1,
            "state": "sent",
        }
        (sent,) = server.to(B)
        assert entry["message_id"] == sent.message["Message-ID"]
        assert entry["time"].startswith(dt.datetime.now(dt.UTC).date().isoformat())
        assert when in entry["time"]
        # still down: a run sends nothing, says why, alerts, and leaves the journal as it is
        code, _, err = run(config, tmp_path, capsys)
        assert code == 1
        assert err.splitlines()[-1] == (
            "reporter: FAILED: tiny 2026-10: the ledger (connection 'testledger') could not be opened: "
            "connection failed: connection "
            f'to server at "{pg_admin.host}", port {pg_admin.port} failed: FATAL: database '
            f'"{pg_admin.database}" is not currently accepting connections; nothing was sent; run again '
            "once the ledger is back"
        )
        assert count_raw(server) == {A: 1, B: 1, OPS: 2}
        assert len(journal.read_text().splitlines()) == 1
        # `status` says what the journal holds, and that the ledger cannot be read (exit 1)
        assert main(["status", str(config), "--output", str(tmp_path)]) == 1
        lines = capsys.readouterr().out.splitlines()
        assert lines[2:4] == [
            f"  delivery 2026-10 to {B}: sent at {entry['time']}, not yet in the ledger (noted in "
            f"{journal}; the next run records it)",
            "  the ledger (connection 'testledger') cannot be read: connection failed: connection to "
            "server at "
            f'"{pg_admin.host}", port {pg_admin.port} failed: FATAL: database "{pg_admin.database}" '
            "is not currently accepting connections",
        ]
        # the ledger is back: `status` shows what the journal holds; the next run records B
        # from the journal, sends to C only
        pg_admin.welcome()
        assert pg_states(empty_pg_ledger) == {A: (1, "sent"), B: (1, "pending")}
        if then == "resolve":
            capsys.readouterr()
            assert main(["resolve", str(config), "2026-10", B, "--sent", "--output", str(tmp_path)]) == 0
            assert capsys.readouterr().out == (
                f"tiny 2026-10 {B}: recorded as sent (v1) from {journal}, noted when the ledger was lost; "
                "nothing was sent\n"
            )
            assert not journal.exists()
            assert pg_states(empty_pg_ledger) == {A: (1, "sent"), B: (1, "sent")}
        code, out, err = run(config, tmp_path, capsys)
        assert code == 0, err
        assert f"  {B}: already sent on " in out
        assert count_raw(server) == {A: 1, B: 1, C: 1, OPS: 2}
    assert not journal.exists()
    assert pg_states(empty_pg_ledger) == {A: (1, "sent"), B: (1, "sent"), C: (1, "sent")}
    from reporter.delivery.ledger import Ledger

    with Ledger(empty_pg_ledger) as ledger:  # the lost run is recorded as failed, with its error
        runs = [(r["outcome"], r["error"]) for r in ledger.runs_of("tiny")]
    assert runs == [("failed", last.removeprefix("reporter: FAILED: ")), ("ok", None)]


# --- a locked ledger ------------------------------------------------------------------------------


def with_lock_timeout(config: Path, seconds: float) -> Path:
    text = config.read_text().replace("delivery:\n", f"delivery:\n  ledger_lock_timeout: {seconds}\n", 1)
    config.write_text(text)
    return config


def timed_run(config: Path, folder: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """``reporter run`` as a process, with its wall time; one that hangs fails the test."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    command = [sys.executable, "-m", "reporter", "run", str(config), "--period", "2026-10"]
    start = time.monotonic()
    try:
        done = subprocess.run(
            [*command, "--output", str(folder)],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("reporter run waited on the locked ledger for more than 90 s")
    return done, time.monotonic() - start


LOCKED = (
    "the ledger is locked: waited 1 s (delivery.ledger_lock_timeout) for a lock another transaction "
    "holds, another run's or a session's left open on the ledger"
)


def test_a_row_lock_on_the_ledger_ends_the_run_at_the_deadline_and_nothing_is_sent_twice(
    tmp_path, capsys, monkeypatch, empty_pg_ledger
):
    """B's delivery failed (550) and is to be retried; another session holds its row (SELECT …
    FOR UPDATE): the next run waits 1 s (delivery.ledger_lock_timeout) for it, not forever,
    sends nothing to B, exits 1 saying why; released, a run sends to B once."""
    import psycopg
    import sqlalchemy as sa

    from tests.smtp_server import Server

    monkeypatch.setenv("REPORTER_CONNECTION_TESTLEDGER", empty_pg_ledger)
    with Server(tmp_path) as server:
        server.handler.rcpt_reply = lambda address, attempt: (
            "550 5.1.1 no such user" if address == B else None
        )
        config = with_lock_timeout(with_ledger(tiny(tmp_path, server.port, to=[A, B])), 1)
        code, _, err = run(config, tmp_path, capsys)
        assert code == 1, err
        assert pg_states(empty_pg_ledger) == {A: (1, "sent"), B: (1, "failed")}
        server.handler.rcpt_reply = lambda address, attempt: None
        plain = (
            sa.make_url(empty_pg_ledger).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        with psycopg.connect(plain) as holder:  # a transaction holding B's row
            holder.execute("SELECT state FROM deliveries WHERE recipient = %s FOR UPDATE", (B,))
            done, seconds = timed_run(config, tmp_path)
            holder.rollback()
        assert done.returncode == 1, done.stderr
        assert done.stderr.splitlines()[-1] == (
            f"reporter: FAILED: tiny 2026-10: the ledger could not record the intent to send to {B}: "
            f"{LOCKED}; nothing was sent to {B}; run again once the lock is released"
        )
        assert seconds < 30, seconds  # the render and the process take a few seconds; the wait 1 s
        delivered = [r for r in server.handler.received if r.rcpt_tos != [OPS]]
        assert [r.rcpt_tos for r in delivered] == [[A]]
        code, _, err = run(config, tmp_path, capsys)
        assert code == 0, err
        delivered = [r for r in server.handler.received if r.rcpt_tos != [OPS]]
        assert [r.rcpt_tos for r in delivered] == [[A], [B]]
    assert pg_states(empty_pg_ledger) == {A: (1, "sent"), B: (1, "sent")}


def test_a_sqlite_ledger_held_by_a_writer_ends_the_run_at_the_deadline(tmp_path, capsys):
    """Another process holds the SQLite ledger's write lock: the run waits 1 s (the busy
    timeout), sends nothing, and says so; released, a run sends once."""
    import sqlite3

    from reporter.delivery.ledger import Ledger, default_url

    with RawServer() as server:
        config = with_lock_timeout(tiny(tmp_path, server.port, to=[A]), 1)
        Ledger(default_url(tmp_path)).close()  # the ledger exists
        holder = sqlite3.connect(tmp_path / "ledger.sqlite", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            done, seconds = timed_run(config, tmp_path)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert done.returncode == 1, done.stderr
        assert done.stderr.splitlines()[-1] == (
            f"reporter: FAILED: tiny 2026-10: {LOCKED}; nothing more was sent; run again once it is released"
        )
        assert seconds < 30, seconds
        assert server.received == []
        code, _, err = run(config, tmp_path, capsys)
        assert code == 0, err
        assert count_raw(server) == {A: 1}
