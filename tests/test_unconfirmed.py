"""A delivery whose fate is unknown fails the run; a lost or locked ledger is a clear error.

Against real servers on 127.0.0.1: a hand-written SMTP server that misbehaves at the message's
end (tests/smtp_server.py ``RawServer``), aiosmtpd for a reply that comes too late, real
``reporter`` processes where a process is killed, and the real ledger. Messages are counted at
the server, per recipient."""

from __future__ import annotations

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
        f"2026-10 {who} --sent' if it did, or '--resend' if not"
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
        f"  - {who}: check {who}'s mailbox, then run 'reporter resolve {config} 2026-10 {who} --sent' "
        "if it arrived, or '--resend' if it did not\n"
    ) in body
    assert f"  reporter status {config}\n" in body


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
        assert count_raw(server) == {A: 1, B: stored, C: 1, OPS: 1} if stored else {A: 1, C: 1, OPS: 1}
        assert_alerted(server, config, B)
        assert states(tmp_path) == {A: (1, "sent"), B: (1, "review"), C: (1, "sent")}
        (line,) = status(config, tmp_path, capsys)
        assert line.startswith(f"  delivery 2026-10 to {B}: review after 1 attempt(s) — ")
        assert line.endswith(
            f"reporter resolve {config} 2026-10 {B} --sent' if it arrived, or '--resend' if it did not"
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
        assert line == (
            f"  delivery 2026-10 to {A}: review after 0 attempt(s) — a previous run stopped after "
            "sending began (the server may have accepted it): not re-sent; check "
            f"{A}'s mailbox, then run 'reporter resolve {config} 2026-10 {A} --sent' if it arrived, "
            "or '--resend' if it did not"
        )
        assert main(["resolve", str(config), "2026-10", A, "--sent", "--output", str(tmp_path)]) == 0
        code, _, err = run(config, tmp_path, capsys)
        assert code == 0, err
        assert count_raw(server) == {A: 1, B: 1, C: 1, OPS: 1}
        assert status(config, tmp_path, capsys) == []
