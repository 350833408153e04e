"""SMTP servers that misbehave, on 127.0.0.1: a greeting trickled one byte at a time (a raw
socket server in front of a real aiosmtpd one, tests/smtp_server.py) costs one overall deadline
and does not hold the other recipients; 251 and 252 replies to RCPT are successes. (Webhooks
that misbehave are in test_chat.py.)"""

from __future__ import annotations

import datetime as dt
import textwrap
import time
from pathlib import Path

import pytest

from reporter.config import load_config
from reporter.config.model import Smtp
from reporter.delivery.ledger import Ledger, default_url
from reporter.delivery.mailer import Mailer
from reporter.errors import RunError
from reporter.run.pipeline import run_report
from tests.conftest import write_csv
from tests.smtp_server import Server, Trickler

NOW = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)
OPS = "ops@acme.test"
CUT = (
    "the server did not get through the conversation within 2 s (connecting, its greeting and the "
    "commands before the message's end); not retried by this run"
)


def report(folder: Path, port: int, to: list[str], *, timeout: float) -> Path:
    days = [dt.date(2025, 10, 1) + dt.timedelta(days=i) for i in range(396)]
    write_csv(folder / "orders.csv", ["date", "amount"], [[d.isoformat(), d.day * 10] for d in days])
    text = textwrap.dedent(f"""\
        report: {{id: tiny, title: Tiny, timezone: UTC}}
        sources:
          orders: {{type: csv, path: orders.csv, date_column: date}}
        metrics:
          revenue: {{source: orders, agg: sum, column: amount}}
        kpis:
          revenue: {{label: Revenue, formula: revenue}}
        delivery:
          alerts_to: [{OPS}]
          email:
            from: reporting@acme.test
            to: [{", ".join(to)}]
            smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: {timeout}}}
          archive: {{dir: archive}}
        """)
    path = folder / "tiny.yaml"
    path.write_text(text)
    return path


def message(to: str):
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "reporting@acme.test", to, "report"
    msg.set_content("the numbers")
    return msg


def test_a_trickled_greeting_costs_one_deadline_and_the_next_conversation_goes_through(tmp_path):
    """smtp.timeout 0.5 s: the conversation's deadline is 4 × 0.5 = 2 s. The greeting comes one
    byte every 0.05 s (for up to 10 s): no read ever waits 0.5 s, so only the overall deadline
    ends it. The margin measured on loopback is under 0.01 s; 1 s is allowed (a loaded machine)."""
    with Server(tmp_path) as server, Trickler(server.port, trickle=1) as trickler:
        smtp = Smtp(host="127.0.0.1", port=trickler.port, security="none", timeout=0.5)
        mailer = Mailer(smtp, tmp_path / "outbox", env={}, sleep=lambda s: None)
        attempts: list[tuple[int, str | None]] = []
        started = time.monotonic()
        slow = mailer.send(message("slow@acme.test"), "slow@acme.test", lambda n, e: attempts.append((n, e)))
        elapsed = time.monotonic() - started
        fast = mailer.send(message("fast@acme.test"), "fast@acme.test", lambda n, e: None)
    assert (slow.state, slow.attempts, slow.error) == ("failed", 1, CUT)
    assert attempts == [(1, CUT)]  # not retried: three more deadlines would hold the others
    assert 2.0 <= elapsed < 3.0, elapsed
    (trickled,) = trickler.trickled_for
    assert trickled < 3.0
    assert (fast.state, fast.attempts) == ("sent", 1)
    assert [r.rcpt_tos for r in server.handler.received] == [["fast@acme.test"]]


def test_a_recipient_behind_a_trickling_greeting_does_not_hold_the_others(tmp_path):
    """Through a run: the first recipient's conversation is trickled; it fails after its 2 s
    deadline, the second recipient gets the report, the run fails (exit 1) naming the first,
    and the alert reaches ops."""
    with Server(tmp_path) as server, Trickler(server.port, trickle=1) as trickler:
        path = report(tmp_path, trickler.port, ["slow@acme.test", "fast@acme.test"], timeout=0.5)
        config = load_config(path, env={})
        with pytest.raises(RunError) as failed:
            run_report(config, period="2026-10", now=NOW, output=tmp_path, env={}, sleep=lambda s: None)
    assert str(failed.value) == (
        f"tiny 2026-10: delivery failed for slow@acme.test ({CUT}); the others were delivered; "
        "run again to retry only these"
    )
    assert trickler.trickled_for[0] < 3.0
    assert trickler.connections == 3  # slow once, fast, the alert
    received = {tuple(r.rcpt_tos) for r in server.handler.received}
    assert received == {("fast@acme.test",), (OPS,)}
    with Ledger(default_url(tmp_path)) as ledger:
        assert {d.recipient: (d.state, d.attempts) for d in ledger.all("tiny")} == {
            "slow@acme.test": ("failed", 1),
            "fast@acme.test": ("sent", 1),
        }


def test_a_reply_to_the_messages_end_trickled_past_data_timeout_is_review(tmp_path):
    """The server stores the message, then trickles its 250 one byte every 1.3 s (45 s in
    all): no read waits 2 s, but smtp.data_timeout (2 s) bounds the wait as a whole and ends
    it before the code "250" is whole (at 2.6 s). The message may have been accepted (it was):
    review, never re-sent. (Had the whole "250" come in time, it would be sent: the server
    said so.)"""
    with Server(tmp_path) as server, Trickler(server.port, trickle=0, after_dot=1, every=1.3) as trickler:
        smtp = Smtp(host="127.0.0.1", port=trickler.port, security="none", timeout=5, data_timeout=2)
        mailer = Mailer(smtp, tmp_path / "outbox", env={}, sleep=lambda s: None)
        started = time.monotonic()
        result = mailer.send(message("boss@acme.test"), "boss@acme.test", lambda n, e: None)
        elapsed = time.monotonic() - started
    assert (result.state, result.attempts) == ("review", 1)
    assert result.error == (
        "no reply after the message was sent (none within 2 s): the server may have accepted it"
    )
    assert elapsed < 3.0, elapsed
    assert [r.rcpt_tos for r in server.handler.received] == [["boss@acme.test"]]


@pytest.mark.parametrize(
    "reply", ["251 2.1.5 user not local; will forward", "252 2.1.5 cannot verify the user, will try"]
)
def test_a_2xx_reply_to_rcpt_other_than_250_is_a_success(tmp_path, reply):
    """RFC 5321 §3.4: 251 (will forward) and 252 (cannot verify, will attempt delivery)
    accept the recipient; the server stores the message."""
    with Server(tmp_path) as server:
        server.handler.rcpt_reply = lambda address, attempt: reply
        smtp = Smtp(host="127.0.0.1", port=server.port, security="none", timeout=5)
        mailer = Mailer(smtp, tmp_path / "outbox", env={}, sleep=lambda s: None)
        result = mailer.send(message("moved@acme.test"), "moved@acme.test", lambda n, e: None)
    assert (result.state, result.attempts, result.error) == ("sent", 1, None)
    assert [r.rcpt_tos for r in server.handler.received] == [["moved@acme.test"]]
