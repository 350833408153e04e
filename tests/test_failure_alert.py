"""The alert of a run that fails after some deliveries went out says who has the report: a
burst whose second recipient fails, on a real SMTP server on loopback."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from reporter.config import load_config
from reporter.config.model import Config
from reporter.delivery.ledger import Ledger, default_url
from reporter.errors import RunError, Unconfirmed
from reporter.run.pipeline import run_report
from tests.conftest import write_csv
from tests.smtp_server import Server

NOW = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)
OPS = "ops@acme.test"
SELLERS = {"s0@acme.test": "Alice", "s1@acme.test": "Bob", "s2@acme.test": "Carol"}


def burst(folder: Path, port: int) -> Config:
    """Three recipients, each sent the report of their own sales, in this order."""
    days = [dt.date(2025, 10, 1) + dt.timedelta(days=i) for i in range(396)]
    rows = [[d.isoformat(), s, d.day * (i + 1)] for d in days for i, s in enumerate(SELLERS.values())]
    write_csv(folder / "orders.csv", ["date", "salesperson", "amount"], rows)
    recipients = "\n".join(
        f"      - {{email: {address}, filter: {{salesperson: {name}}}}}" for address, name in SELLERS.items()
    )
    (folder / "r.yaml").write_text(
        f"""\
report: {{id: burst, title: Sales, timezone: UTC, locale: en_US}}
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
    smtp: {{host: 127.0.0.1, port: {port}, security: none}}
    recipients:
{recipients}
""",
        encoding="utf-8",
    )
    return load_config(folder / "r.yaml", env={})


def received(server: Server) -> list[str]:
    return [r.rcpt_tos[0] for r in server.handler.received if r.rcpt_tos != [OPS]]


def alerts(server: Server) -> list:
    return [r.message for r in server.handler.received if r.rcpt_tos == [OPS]]


def subject(message) -> str:
    """The Subject as a mail client shows it: Python folds a long one right after "Subject:",
    and its parser keeps the space that starts the folded line."""
    return str(message["Subject"]).lstrip()


def text(message) -> str:
    """The body as written (SMTP carries its lines ended with CRLF)."""
    return str(message.get_content()).replace("\r\n", "\n")


def states(folder: Path) -> dict[str, str]:
    with Ledger(default_url(folder)) as ledger:
        return {d.recipient: d.state for d in ledger.all("burst")}


def test_a_refused_recipient_after_the_first_says_who_has_the_report(tmp_path):
    with Server(tmp_path) as server:
        server.handler.rcpt_reply = lambda address, attempt: (
            "550 5.1.1 mailbox unknown" if address == "s1@acme.test" else None
        )
        config = burst(tmp_path, server.port)
        with pytest.raises(RunError) as failure:
            run_report(config, period="2026-10", now=NOW, output=tmp_path, sleep=lambda s: None)
        assert received(server) == ["s0@acme.test", "s2@acme.test"]
        assert states(tmp_path) == {"s0@acme.test": "sent", "s1@acme.test": "failed", "s2@acme.test": "sent"}
        (alert,) = alerts(server)
        assert subject(alert) == "[reporter] burst 2026-10: run FAILED after sending to 2 of 3 recipients"
        assert str(failure.value) == (
            "burst 2026-10: delivery failed for s1@acme.test (550 5.1.1 mailbox unknown); the others "
            "were delivered; run again to retry only these"
        )
        assert text(alert) == (
            "The run of 'Sales' (burst) for 2026-10 failed after sending the report to 2 of 3 recipients.\n"
            "\n"
            "Sent by this run:\n"
            "  - s0@acme.test\n"
            "  - s2@acme.test\n"
            "Not sent:\n"
            "  - s1@acme.test\n"
            "\n"
            "Reason:\n"
            "burst 2026-10: delivery failed for s1@acme.test (550 5.1.1 mailbox unknown); the others "
            "were delivered; run again to retry only these\n"
            "\n"
            "Fix the cause, then run:\n"
            f"  reporter run {config.file} --period 2026-10 --output {tmp_path}\n"
            "It sends only to the recipients under 'Not sent'.\n"
        )
        # The next run sends nothing new: the old wording, true for it, is kept.
        with pytest.raises(RunError):
            run_report(config, period="2026-10", now=NOW, output=tmp_path, sleep=lambda s: None)
        assert received(server) == ["s0@acme.test", "s2@acme.test"]
        assert [subject(a) for a in alerts(server)][1:] == [
            "[reporter] burst 2026-10: run FAILED, nothing was sent to the recipients"
        ]


class Stopped(Exception):
    """The run stopped while waiting to retry a recipient (injected through ``sleep``)."""


def stop(seconds: float) -> None:
    raise Stopped("stopped while waiting to retry")


def test_an_error_in_the_middle_of_sending_says_who_has_it_and_who_may(tmp_path):
    with Server(tmp_path) as server:
        # s1's first RCPT is refused for now: the mailer waits to retry, and the run stops there
        server.handler.rcpt_reply = lambda address, attempt: (
            "451 4.3.0 try again later" if address == "s1@acme.test" and attempt == 1 else None
        )
        config = burst(tmp_path, server.port)
        with pytest.raises(Stopped):
            run_report(config, period="2026-10", now=NOW, output=tmp_path, sleep=stop)
        assert received(server) == ["s0@acme.test"]
        assert states(tmp_path) == {"s0@acme.test": "sent", "s1@acme.test": "pending"}
        (alert,) = alerts(server)
        assert subject(alert) == (
            "[reporter] burst 2026-10: run FAILED (unexpected error) after sending to 1 of 3 recipients, "
            "1 unconfirmed"
        )
        assert text(alert) == (
            "The run of 'Sales' (burst) for 2026-10 failed after sending the report to 1 of 3 recipients.\n"
            "\n"
            "Sent by this run:\n"
            "  - s0@acme.test\n"
            "May have received it (sending began, its outcome was not recorded; not re-sent "
            "automatically):\n"
            f"  - s1@acme.test: check s1@acme.test's mailbox, then run 'reporter resolve {config.file} "
            f"2026-10 s1@acme.test --sent --output {tmp_path}' if it arrived, or '--resend' if it did not\n"
            "Not sent:\n"
            "  - s2@acme.test\n"
            "\n"
            "Reason:\n"
            "Stopped: stopped while waiting to retry\n"
            "\n"
            "Fix the cause, then run:\n"
            f"  reporter run {config.file} --period 2026-10 --output {tmp_path}\n"
            "It sends only to the recipients under 'Not sent'.\n"
        )
        # what the alert says the next run does: s2 only (s1 goes to review, s0 is skipped)
        with pytest.raises(Unconfirmed) as caught:
            run_report(config, period="2026-10", now=NOW, output=tmp_path, sleep=lambda s: None)
        assert received(server) == ["s0@acme.test", "s2@acme.test"]
        assert {d.recipient: d.state for d in caught.value.outcome.deliveries} == {  # type: ignore[attr-defined]
            "s0@acme.test": "skipped",
            "s1@acme.test": "review",
            "s2@acme.test": "sent",
        }


def test_a_run_that_sent_nothing_keeps_saying_so(tmp_path):
    with Server(tmp_path) as server:
        server.handler.rcpt_reply = lambda address, attempt: (
            None if address == OPS else "550 5.1.1 mailbox unknown"
        )
        config = burst(tmp_path, server.port)
        with pytest.raises(RunError) as failure:
            run_report(config, period="2026-10", now=NOW, output=tmp_path, sleep=lambda s: None)
        assert received(server) == []
        assert states(tmp_path) == dict.fromkeys(SELLERS, "failed")
        (alert,) = alerts(server)
        assert subject(alert) == "[reporter] burst 2026-10: run FAILED, nothing was sent to the recipients"
        assert text(alert) == (
            "The report 'Sales' (burst) for 2026-10 was not sent.\n"
            "\n"
            "Reason:\n"
            f"{failure.value}\n"
            "\n"
            "Fix the cause, then run:\n"
            f"  reporter run {config.file} --period 2026-10 --output {tmp_path}\n"
        )
        assert str(failure.value).startswith("burst 2026-10: delivery failed for s0@acme.test (550 5.1.1 ")


def test_a_retry_that_sends_some_names_those_sent_by_the_earlier_run(tmp_path):
    refused = {"s1@acme.test", "s2@acme.test"}
    with Server(tmp_path) as server:
        server.handler.rcpt_reply = lambda address, attempt: (
            "550 5.1.1 mailbox unknown" if address in refused else None
        )
        config = burst(tmp_path, server.port)
        with pytest.raises(RunError):
            run_report(config, period="2026-10", now=NOW, output=tmp_path, sleep=lambda s: None)
        refused.discard("s1@acme.test")  # s1's mailbox is fixed, s2's is not
        with pytest.raises(RunError) as failure:
            run_report(config, period="2026-10", now=NOW, output=tmp_path, sleep=lambda s: None)
        assert received(server) == ["s0@acme.test", "s1@acme.test"]
        assert [subject(a) for a in alerts(server)] == [
            "[reporter] burst 2026-10: run FAILED after sending to 1 of 3 recipients"
        ] * 2
        assert text(alerts(server)[1]) == (
            "The run of 'Sales' (burst) for 2026-10 failed after sending the report to 1 of 3 recipients.\n"
            "\n"
            "Sent by this run:\n"
            "  - s1@acme.test\n"
            "Sent by an earlier run:\n"
            "  - s0@acme.test\n"
            "Not sent:\n"
            "  - s2@acme.test\n"
            "\n"
            "Reason:\n"
            f"{failure.value}\n"
            "\n"
            "Fix the cause, then run:\n"
            f"  reporter run {config.file} --period 2026-10 --output {tmp_path}\n"
            "It sends only to the recipients under 'Not sent'.\n"
        )
