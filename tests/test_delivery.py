"""Delivery against a real SMTP server on 127.0.0.1: what arrives, retries, refusals, crashes,
exactly-once across runs, alerts, the outbox."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import quote

import pytest

from reporter.cli import main
from reporter.config import load_config
from reporter.config.model import Delivery, Email, Smtp
from reporter.delivery.ledger import Ledger, default_url
from reporter.errors import RunError, Unconfirmed
from reporter.run.pipeline import run_report
from tests.conftest import DEMO
from tests.smtp_server import Server

NOW = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)
PEOPLE = ["ceo@acme.test", "cfo@acme.test", "cmo@acme.test"]


@pytest.fixture(scope="module")
def demo():
    return load_config(DEMO, env={})


def configured(
    config,
    port: int | None,
    to=PEOPLE,
    *,
    security="none",
    login=None,
    ca_file=None,
    alerts=("ops@acme.test",),
):
    """``config`` delivering to the SMTP server on ``port``: a relay by host, or, with ``login``
    (user, password), through the operator's connection ``mail``."""
    smtp = None
    connections = {}
    if port is not None and login is not None:
        user, password = (quote(part, safe="") for part in login)
        connections["mail"] = f"smtp://{user}:{password}@127.0.0.1:{port}?security={security}"
        smtp = Smtp(connection="mail", timeout=10, ca_file=ca_file)
    elif port is not None:
        smtp = Smtp(host="127.0.0.1", port=port, security=security, timeout=10, ca_file=ca_file)
    delivery = Delivery(
        email=Email(**{"from": "Reporting <reporting@acme.test>"}, to=list(to), smtp=smtp),
        alerts_to=list(alerts),
    )
    return config.model_copy(update={"delivery": delivery, "connections": connections})


def run(config, out: Path, **kw):
    return run_report(config, period="2026-10", now=NOW, output=out, sleep=lambda s: None, **kw)


def test_a_good_send_arrives_whole(demo, tmp_path):
    with Server(tmp_path) as server:
        outcome = run(configured(demo, server.port, to=["ceo@acme.test"]), tmp_path)
    assert [d.state for d in outcome.deliveries] == ["sent"]
    (received,) = server.handler.received
    msg = received.message
    assert msg["Subject"] == "Rapport mensuel marketing & ventes — octobre 2026 · 2 en retard, 1 à surveiller"
    assert msg["To"] == "ceo@acme.test"
    assert msg["Message-ID"] == outcome.deliveries[0].message_id
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Chiffre d'affaires +15 % sur N-1" in text
    assert "Chiffre d&#39;affaires +15 % sur N-1" in html or "Chiffre d'affaires +15 % sur N-1" in html
    assert "<style" not in html
    assert 'style="' in html  # the CSS is inlined
    (attachment,) = [p for p in msg.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert attachment.get_filename() == "marketing-monthly_2026-10.pdf"
    archived = tmp_path / "marketing-monthly" / "2026-10" / "marketing-monthly_2026-10.pdf"
    assert attachment.get_content() == archived.read_bytes()
    cids = set(re.findall(r'src="cid:([^"]+)"', html))
    parts = {p["Content-ID"].strip("<>") for p in msg.walk() if p["Content-ID"]}
    assert cids
    assert cids == parts
    for part in msg.walk():
        if part["Content-ID"]:
            assert part.get_content_type() == "image/png"
            assert part.get_content().startswith(b"\x89PNG")
    # the digest as sent is kept beside the PDF
    kept = (tmp_path / "marketing-monthly" / "2026-10" / "email.eml").read_bytes()
    assert kept.replace(b"\r\n", b"\n") == received.data.replace(b"\r\n", b"\n")


def test_starttls_with_auth(demo, tmp_path):
    with Server(tmp_path, tls=True, auth=("reporting", "s3cret")) as server:

        def config(password):
            login = ("reporting", password)
            return configured(
                demo, server.port, to=["ceo@acme.test"], security="starttls", login=login, ca_file=server.cert
            )

        outcome = run(config("s3cret"), tmp_path)
        assert [d.state for d in outcome.deliveries] == ["sent"]
        assert len(server.handler.received) == 1
        with pytest.raises(RunError, match=r"delivery failed for ceo@acme.test \(535"):
            run(config("wrong"), tmp_path / "wrong")
        assert len(server.handler.received) == 1
    # the password never lands in the ledger, the outputs or the message
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".pem":
            assert b"s3cret" not in path.read_bytes(), path


def test_451_then_250_is_one_delivery_in_two_attempts(demo, tmp_path):
    with Server(tmp_path) as server:
        server.handler.rcpt_reply = lambda a, n: "451 4.7.1 try again later" if n == 1 else None
        outcome = run(configured(demo, server.port, to=["ceo@acme.test"]), tmp_path)
    assert len(server.handler.received) == 1
    (d,) = Ledger(default_url(tmp_path)).all("marketing-monthly", "2026-10")
    assert (d.state, d.attempts) == ("sent", 2)
    assert outcome.deliveries[0].attempts == 2


def test_550_for_one_of_three_then_reruns(demo, tmp_path):
    with Server(tmp_path) as server:
        refuse = {"cfo@acme.test"}
        server.handler.rcpt_reply = lambda a, n: "550 5.1.1 no such user" if a in refuse else None
        config = configured(demo, server.port)

        def executives():
            return sorted(r.rcpt_tos[0] for r in server.handler.received if r.rcpt_tos != ["ops@acme.test"])

        def alerts():
            return [r for r in server.handler.received if r.rcpt_tos == ["ops@acme.test"]]

        with pytest.raises(RunError, match=r"delivery failed for cfo@acme.test \(550 5.1.1 no such user\)"):
            run(config, tmp_path)
        assert executives() == ["ceo@acme.test", "cmo@acme.test"]
        assert server.handler.rcpt_attempts["cfo@acme.test"] == 1  # a 5xx is not retried
        states = {
            d.recipient: (d.state, d.attempts) for d in Ledger(default_url(tmp_path)).all("marketing-monthly")
        }
        assert states == {
            "ceo@acme.test": ("sent", 1),
            "cfo@acme.test": ("failed", 1),
            "cmo@acme.test": ("sent", 1),
        }
        assert len(alerts()) == 1
        assert "cfo@acme.test (550 5.1.1 no such user)" in alerts()[0].message.get_content()
        # a rerun sends nothing new: the two are skipped, the refused one is refused again
        with pytest.raises(RunError):
            run(config, tmp_path)
        assert executives() == ["ceo@acme.test", "cmo@acme.test"]
        # the mailbox is fixed: the rerun sends to that one only
        refuse.clear()
        outcome = run(config, tmp_path)
        assert sorted(d.state for d in outcome.deliveries) == ["sent", "skipped", "skipped"]
        assert executives() == sorted(PEOPLE)
        assert len(alerts()) == 2  # one per failed run


def test_connection_dropped_before_data_is_retried(demo, tmp_path):
    with Server(tmp_path) as server:
        server.handler.drop_rcpt = 1
        outcome = run(configured(demo, server.port, to=["ceo@acme.test"]), tmp_path)
    assert [r.rcpt_tos for r in server.handler.received] == [["ceo@acme.test"]]
    assert (outcome.deliveries[0].state, outcome.deliveries[0].attempts) == ("sent", 2)


def test_connection_dropped_after_the_message_end_is_review_not_retried(demo, tmp_path):
    """No reply after <CRLF>.<CRLF>: the server may have accepted it; re-sending could
    duplicate it. The delivery goes to review, once, and alerts_to is told how to settle it."""
    with Server(tmp_path) as server:
        server.handler.drop_data = 1
        with pytest.raises(Unconfirmed) as caught:
            run(configured(demo, server.port, to=["ceo@acme.test"]), tmp_path)
    (d,) = caught.value.outcome.deliveries  # type: ignore[attr-defined]
    assert (d.state, d.attempts) == ("review", 1)
    assert d.error.startswith("no reply after the message was sent (Connection unexpectedly closed")
    assert d.error.endswith(
        f"the server may have accepted it; not re-sent: check ceo@acme.test's mailbox, then run "
        f"'reporter resolve {DEMO} 2026-10 ceo@acme.test --sent --output {tmp_path}' if it arrived, "
        "or '--resend' "
        "if it did not"
    )
    assert server.handler.rcpt_attempts == {"ceo@acme.test": 1, "ops@acme.test": 1}
    (alert,) = [r for r in server.handler.received if r.rcpt_tos == ["ops@acme.test"]]
    assert alert.message["Subject"] == (
        "[reporter] marketing-monthly 2026-10: run FAILED: delivery unconfirmed for 1 of 1 recipient; "
        "review needed"
    )
    assert (
        f"reporter resolve {DEMO} 2026-10 ceo@acme.test --sent --output {tmp_path}"
        in alert.message.get_content()
    )


def test_crash_after_250_before_the_ledger_commit_does_not_resend(demo, tmp_path):
    class PowerCut(Ledger):  # the power goes after the server's 250, before "sent" is recorded
        def record(self, *args, **kwargs):
            if kwargs.get("state") == "sent":
                raise KeyboardInterrupt("power cut after the server's 250")
            return super().record(*args, **kwargs)

    with Server(tmp_path) as server:
        config = configured(demo, server.port, to=["ceo@acme.test"])
        with pytest.raises(KeyboardInterrupt):
            run(config, tmp_path, open_ledger=PowerCut)
        assert len(server.handler.received) == 1
        with pytest.raises(Unconfirmed) as caught:
            run(config, tmp_path)
        assert [d.state for d in caught.value.outcome.deliveries] == ["review"]  # type: ignore[attr-defined]
        assert [r.rcpt_tos for r in server.handler.received] == [["ceo@acme.test"], ["ops@acme.test"]]
        alert = server.handler.received[1].message  # not sent twice; alerts_to told, once
        assert alert["Subject"] == (
            "[reporter] marketing-monthly 2026-10: run FAILED: delivery unconfirmed for 1 of 1 recipient; "
            "review needed"
        )
        (d,) = Ledger(default_url(tmp_path)).all("marketing-monthly")
        assert d.state == "review"
        assert d.last_error == (
            "a previous run stopped after sending began (the server may have accepted it): not re-sent; "
            f"check ceo@acme.test's mailbox, then run 'reporter resolve {DEMO} 2026-10 ceo@acme.test --sent "
            f"--output {tmp_path}' "
            "if it arrived, or '--resend' if it did not"
        )
        # the interrupted run is recorded as failed, not left "running"
        runs = Ledger(default_url(tmp_path)).runs_of("marketing-monthly")
        assert [(r["outcome"], r["error"]) for r in runs] == [
            ("failed", "interrupted"),
            ("failed", str(caught.value)),
        ]


def test_running_twice_sends_each_message_once_and_force_resends(demo, tmp_path):
    with Server(tmp_path) as server:
        config = configured(demo, server.port)
        run(config, tmp_path)
        run(config, tmp_path)
        assert sorted(r.rcpt_tos[0] for r in server.handler.received) == sorted(PEOPLE)
        outcome = run(config, tmp_path, force=True, reason="corrected data")
        assert len(server.handler.received) == 6
        ids = {d.message_id for d in outcome.deliveries}
        assert all(".v2." in i for i in ids)
    rows = Ledger(default_url(tmp_path)).all("marketing-monthly")
    assert sorted((d.version, d.forced) for d in rows) == [(1, False)] * 3 + [(2, True)] * 3


def test_failed_gate_sends_nothing_and_alerts(demo, tmp_path, capsys):
    with Server(tmp_path) as server:
        config = configured(demo, server.port)
        december = dt.datetime(2026, 12, 2, 6, tzinfo=dt.UTC)  # November has ended, its data is late
        with pytest.raises(RunError, match="quality gate failed"):
            run_report(config, period="2026-11", now=december, output=tmp_path, sleep=lambda s: None)
        assert [r.rcpt_tos for r in server.handler.received] == [["ops@acme.test"]]
        alert = server.handler.received[0].message
        assert "run FAILED" in alert["Subject"]
        assert "source 'web' has data up to 2026-10-31; the period ends 2026-11-30" in alert.get_content()


def test_outbox_without_smtp_and_cli_exit_codes(demo, tmp_path, capsys):
    config = configured(demo, None, to=["ceo@acme.test", "cfo@acme.test"])
    outcome = run(config, tmp_path)
    box = tmp_path / "outbox" / "marketing-monthly" / "2026-10"
    assert sorted(p.name for p in box.iterdir()) == ["ceo@acme.test.eml", "cfo@acme.test.eml"]
    assert [d.state for d in outcome.deliveries] == ["sent", "sent"]
    again = run(config, tmp_path)
    assert [d.state for d in again.deliveries] == ["skipped", "skipped"]
    # --no-send writes the files, sends nothing, and keeps no ledger
    assert main(["run", str(DEMO), "--period", "2026-10", "--no-send", "--output", str(tmp_path / "n")]) == 0
    assert (tmp_path / "n" / "marketing-monthly" / "2026-10" / "email.eml").is_file()
    assert not (tmp_path / "n" / "outbox").exists()
    assert not (tmp_path / "n" / "ledger.sqlite").exists()


def test_ledger_on_postgresql(demo, tmp_path, empty_pg_ledger):
    url = empty_pg_ledger
    with Server(tmp_path) as server:
        config = configured(demo, server.port, to=["ceo@acme.test", "cfo@acme.test"])
        delivery = config.delivery.model_copy(update={"ledger": "ledger"})
        config = config.model_copy(update={"delivery": delivery, "connections": {"ledger": url}})
        run(config, tmp_path / "host-a")
        run(config, tmp_path / "host-b")  # another host, another output folder, the same ledger
        assert sorted(r.rcpt_tos[0] for r in server.handler.received) == ["ceo@acme.test", "cfo@acme.test"]
    ledger = Ledger(url)
    assert [r["outcome"] for r in ledger.runs_of("marketing-monthly", "2026-10")] == ["ok", "ok"]
    assert {d.state for d in ledger.all("marketing-monthly", "2026-10")} == {"sent"}
    ledger.close()
