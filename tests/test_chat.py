"""Chat delivery (delivery.chat): Slack and Teams cards posted to a real HTTP server on 127.0.0.1
(tests/webhook_server.py), read back as JSON; exactly once across runs through the real ledger;
retried only while the card has not reached the server (connecting, sending, a 429/500/503),
in review once it was sent without a complete answer (late, reset, dripped, not HTTP, 502/504),
each request under one overall deadline; never on a failed quality gate; the webhook's URL never
written anywhere. No request leaves the machine: every URL is on 127.0.0.1 (or localhost), and
the only proxies are the tests' own."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import socket
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from reporter.config import load_config
from reporter.delivery.chat import Poster, build_card, webhook_urls
from reporter.delivery.ledger import Ledger, default_url
from reporter.errors import QualityGateError, RunError, Unconfirmed
from reporter.render.context import translations
from reporter.run.pipeline import run_report
from reporter.security import redact
from tests.conftest import write_csv
from tests.webhook_server import WebhookServer

NOW = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)
SECRET_PATH = "/services/T000/B000/s3cr3tT0kenXYZ"


def tiny(folder: Path, chat: str, *, locale: str = "en_US", email: str = "") -> Path:
    """A small report with two objectives: revenue far below its target (off track), orders
    above theirs (on track); its data ends on 2026-10-31 (November's gate fails)."""
    days = [dt.date(2025, 10, 1) + dt.timedelta(days=i) for i in range(396)]
    write_csv(folder / "orders.csv", ["date", "amount"], [[d.isoformat(), d.day * 10] for d in days])
    text = textwrap.dedent(f"""\
        report: {{id: tiny, title: Tiny report, timezone: UTC, locale: {locale}, currency: EUR}}
        sources:
          orders: {{type: csv, path: orders.csv, date_column: date}}
        metrics:
          revenue: {{source: orders, agg: sum, column: amount}}
          orders: {{source: orders, agg: count}}
        kpis:
          revenue: {{label: Revenue, formula: revenue, format: currency}}
          orders: {{label: Orders, formula: orders, format: integer}}
        objectives:
          - {{id: more-revenue, title: Revenue above 1M, kpi: revenue, target: {{value: 1000000}},
              owner: CFO, due: 2026-12-31}}
          - {{id: enough-orders, title: At least 10 orders, kpi: orders, target: {{value: 10}},
              owner: COO, due: 2026-12-31}}
        delivery:
          chat: {chat}
          archive: {{dir: archive}}
        """) + textwrap.indent(email + "\n", "  ")
    path = folder / "tiny.yaml"
    path.write_text(text)
    return path


def with_url(config, url: str):
    """report.url (added by the digest's work): read with getattr, so set it the same way."""
    return config.model_copy(update={"report": config.report.model_copy(update={"url": url})})


def run(config, out: Path, env: dict[str, str], **kw):
    waits: list[float] = kw.pop("waits", [])
    return run_report(config, period="2026-10", now=NOW, output=out, env=env, sleep=waits.append, **kw)


def ledger_rows(out: Path) -> dict[str, tuple[int, str, int]]:
    with Ledger(default_url(out)) as ledger:
        return {d.recipient: (d.version, d.state, d.attempts) for d in ledger.all("tiny")}


def results_of(out: Path) -> dict:
    return json.loads((out / "tiny" / "2026-10" / "results.json").read_text())


def test_slack_card_is_posted_once_across_two_runs_and_reads_back(tmp_path):
    config = with_url(
        load_config(tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK}]"), env={}),
        "https://reports.acme.test/tiny/2026-10",
    )
    with WebhookServer() as server:
        env = {"SLACK_HOOK": server.url(SECRET_PATH)}
        first = run(config, tmp_path, env)
        second = run(config, tmp_path, env)
    (request,) = server.received  # once across the two runs
    assert request.path == SECRET_PATH
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    payload = request.json()

    # the numbers, from results.json (an independent reading, not the card's code)
    results = results_of(tmp_path)
    statuses = [o["status"] for o in results["objectives"]]
    assert sorted(statuses) == ["off_track", "on_track"]
    revenue = results["kpis"]["revenue"]["value"]
    assert 0 < revenue < 1_000_000
    revenue_text = f"€{revenue:,.0f}" if revenue >= 1000 else f"€{revenue:,.2f}"
    # the takeaways: here the two objectives' pacing, on two KPIs that share no metric
    said = [i["text"] for i in results["insights"]]
    assert [i["type"] for i in results["insights"]] == ["pacing", "pacing"]

    assert payload["blocks"] == [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": "Tiny report — October 2026", "emoji": False},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "✖ 1 off track · ✔ 1 on track"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"✖ *Revenue above 1M*: {revenue_text} / target €1,000,000"},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(f"• {t}" for t in said)}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open the report"},
                    "url": "https://reports.acme.test/tiny/2026-10",
                }
            ],
        },
    ]
    assert payload["text"] == (
        "Tiny report — October 2026\n✖ 1 off track · ✔ 1 on track\n"
        f"✖ Revenue above 1M: {revenue_text} / target €1,000,000\n"
        + "".join(f"• {t}\n" for t in said)
        + "Open the report: https://reports.acme.test/tiny/2026-10"
    )
    assert [(d.recipient, d.state, d.attempts) for d in first.deliveries] == [("slack:SLACK_HOOK", "sent", 1)]
    assert [(d.recipient, d.state) for d in second.deliveries] == [("slack:SLACK_HOOK", "skipped")]
    line = "tiny 2026-10: already delivered on 2026-11-02 (ledger), nothing sent; "
    assert second.summary().startswith(line)
    assert ledger_rows(tmp_path) == {"slack:slack_hook": (1, "sent", 1)}
    # what was posted is kept beside the PDF, byte for byte; the card went out, so the PDF is archived
    kept = tmp_path / "tiny" / "2026-10" / "chat-slack.json"
    assert kept.read_bytes() == request.body
    assert kept in first.files
    assert (tmp_path / "archive" / "tiny" / "2026-10" / "tiny_2026-10_v1.pdf").is_file()


def test_teams_gets_an_adaptive_card_in_the_reports_language(tmp_path):
    config = with_url(
        load_config(tiny(tmp_path, "[{kind: teams, webhook_env: TEAMS_HOOK}]", locale="fr_FR"), env={}),
        "https://reports.acme.test/tiny",
    )
    with WebhookServer() as server:
        run(config, tmp_path, {"TEAMS_HOOK": server.url("/webhookb2/abc")})
        run(config, tmp_path, {"TEAMS_HOOK": server.url("/webhookb2/abc")})
    (request,) = server.received
    payload = request.json()
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    words = translations("fr").gettext
    title, tally, objective, *said = card["body"]
    insights = results_of(tmp_path)["insights"]  # the sentences, in French
    assert said == [
        {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": f"• {i['text']}"}]}
        for i in insights
    ]
    assert [i["type"] for i in insights] == ["pacing", "pacing"]
    assert title == {
        "type": "RichTextBlock",
        "inlines": [
            {"type": "TextRun", "text": "Tiny report — octobre 2026", "weight": "Bolder", "size": "Large"}
        ],
    }
    on, off = words("on_track"), words("off_track")
    assert tally["inlines"] == [
        {"type": "TextRun", "text": f"✖ 1 {off[0].lower()}{off[1:]} · ✔ 1 {on[0].lower()}{on[1:]}"}
    ]
    revenue = results_of(tmp_path)["kpis"]["revenue"]["value"]
    name, numbers = objective["inlines"]
    assert name == {"type": "TextRun", "text": "✖ Revenue above 1M", "weight": "Bolder"}
    # French: narrow no-break space between thousands, the euro sign after the number
    shown = f"{revenue:,.0f}".replace(",", "\u202f")
    assert numbers["text"] == f": {shown}\xa0€ / {words('target')} 1\u202f000\u202f000\xa0€"
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Ouvrir le rapport", "url": "https://reports.acme.test/tiny"}
    ]


def test_no_card_when_the_quality_gate_fails(tmp_path):
    chats = "[{kind: slack, webhook_env: SLACK_HOOK}, {kind: teams, webhook_env: TEAMS_HOOK}]"
    config = load_config(tiny(tmp_path, chats), env={})
    with WebhookServer() as slack, WebhookServer() as teams:
        env = {"SLACK_HOOK": slack.url(), "TEAMS_HOOK": teams.url()}
        december = dt.datetime(2026, 12, 2, 6, tzinfo=dt.UTC)  # November has ended, not its data
        with pytest.raises(QualityGateError, match="quality gate failed"):
            run_report(config, period="2026-11", now=december, output=tmp_path, env=env, sleep=lambda s: None)
        assert (slack.received, teams.received) == ([], [])
        assert ledger_rows(tmp_path) == {}
        run(config, tmp_path, env)  # October passes its gate: the servers do answer
    assert slack.received[0].json()["blocks"][0]["text"]["text"] == "Tiny report — October 2026"
    assert teams.received[0].json()["attachments"][0]["content"]["type"] == "AdaptiveCard"
    assert (len(slack.received), len(teams.received)) == (1, 1)


def test_503_then_200_is_one_card_in_two_attempts(tmp_path):
    config = load_config(tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK}]"), env={})
    waits: list[float] = []
    with WebhookServer(statuses=[503, 200]) as server:
        outcome = run(config, tmp_path, {"SLACK_HOOK": server.url()}, waits=waits)
    assert len(server.received) == 2
    assert server.received[0].body == server.received[1].body
    assert [(d.state, d.attempts) for d in outcome.deliveries] == [("sent", 2)]
    assert waits == [2.0]
    assert ledger_rows(tmp_path) == {"slack:slack_hook": (1, "sent", 2)}


def test_5xx_every_time_fails_after_four_attempts_and_the_next_run_retries(tmp_path):
    config = load_config(tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK}]"), env={})
    waits: list[float] = []
    with WebhookServer(statuses=[500] * 4) as server:
        env = {"SLACK_HOOK": server.url(SECRET_PATH)}
        with pytest.raises(RunError) as failed:
            run(config, tmp_path, env, waits=waits)
        assert len(server.received) == 4
        assert waits == [2.0, 4.0, 8.0]  # bounded exponential backoff
        assert str(failed.value) == (
            "tiny 2026-10: delivery failed for slack:SLACK_HOOK (the webhook (SLACK_HOOK) answered "
            "HTTP 500 Internal Server Error (4 attempts)); the others were delivered; run again to "
            "retry only these"
        )
        assert ledger_rows(tmp_path) == {"slack:slack_hook": (1, "failed", 4)}
        again = run(config, tmp_path, env)  # the server answers 200 now
    assert len(server.received) == 5
    assert [(d.state, d.attempts) for d in again.deliveries] == [("sent", 1)]
    assert ledger_rows(tmp_path) == {"slack:slack_hook": (1, "sent", 5)}  # same version, retried


def test_a_4xx_is_not_retried(tmp_path):
    config = load_config(tiny(tmp_path, "[{kind: teams, webhook_env: TEAMS_HOOK}]"), env={})
    failed = r"the webhook \(TEAMS_HOOK\) answered HTTP 400 Bad Request"
    with WebhookServer(statuses=[400]) as server, pytest.raises(RunError, match=failed):
        run(config, tmp_path, {"TEAMS_HOOK": server.url()})
    assert len(server.received) == 1
    assert ledger_rows(tmp_path) == {"teams:teams_hook": (1, "failed", 1)}


def test_an_answer_after_the_deadline_is_review_and_the_card_is_posted_once():
    """The webhook has the card and answers 200 after the deadline: not posted again (today's
    main posted it a second time), left for review."""
    with WebhookServer(delays=[3]) as server:
        poster = Poster(env={}, sleep=lambda s: None, timeout=0.5)
        attempts: list[tuple[int, str | None]] = []
        result = poster.post(server.url(), b"{}", "SLACK_HOOK", lambda n, e: attempts.append((n, e)))
    assert len(server.received) == 1
    assert (result.state, result.attempts) == ("review", 1)
    assert attempts == [
        (1, "the webhook (SLACK_HOOK) gave no complete answer within 0.5 s, after the card was sent: "
            "the channel may show it")
    ]  # fmt: skip


def test_a_reset_after_the_card_was_read_is_review_and_the_card_is_posted_once():
    with WebhookServer(modes=["reset"]) as server:
        result = Poster(env={}, sleep=lambda s: None).post(server.url(), b"{}", "HOOK", lambda n, e: None)
    assert len(server.received) == 1
    assert (result.state, result.attempts) == ("review", 1)
    assert result.error == (
        "the webhook (HOOK) closed the connection without a complete answer (Connection reset by peer), "
        "after the card was sent: the channel may show it"
    )


def test_headers_dripped_one_byte_at_a_time_cost_the_deadline_not_more():
    """The status line at once, then a header byte every 0.1 s (20 s in all): each read gets a
    byte well within any per-read timeout; the request's overall deadline (1 s) ends it. The
    margin measured on loopback is under 0.01 s; 1 s is allowed for a loaded machine."""
    import time

    with WebhookServer(modes=["drip"], drip_every=0.1) as server:
        started = time.monotonic()
        result = Poster(env={}, sleep=lambda s: None, timeout=1.0).post(
            server.url(), b"{}", "HOOK", lambda n, e: None
        )
        elapsed = time.monotonic() - started
    assert len(server.received) == 1
    assert (result.state, result.attempts) == ("review", 1)  # a 200 status line, cut headers: unknown
    assert result.error == (
        "the webhook (HOOK) gave no complete answer within 1 s, after the card was sent: "
        "the channel may show it"
    )
    assert 1.0 <= elapsed < 2.0, elapsed
    assert server.dripped < 30  # of the 220 bytes it meant to send


def test_over_https_a_card_is_posted_and_dripped_headers_cost_the_deadline_too(tmp_path, monkeypatch):
    """The watchdog also reaches a TLS connection (its plain socket underneath)."""
    import time

    with WebhookServer(modes=["answer", "drip"], tls=tmp_path) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))  # trust the server's certificate
        poster = Poster(env={}, sleep=lambda s: None, timeout=1.0)
        assert poster.post(server.url(), b"{}", "HOOK", lambda n, e: None).state == "sent"
        started = time.monotonic()
        result = poster.post(server.url(), b"{}", "HOOK", lambda n, e: None)
        elapsed = time.monotonic() - started
    assert len(server.received) == 2
    assert (result.state, result.attempts) == ("review", 1)
    assert 1.0 <= elapsed < 2.0, elapsed


def test_an_untrusted_certificate_is_retried_and_nothing_is_sent(tmp_path):
    with WebhookServer(tls=tmp_path) as server:  # its certificate is not trusted here
        waits: list[float] = []
        result = Poster(env={}, sleep=waits.append, max_attempts=2).post(
            server.url(), b"{}", "HOOK", lambda n, e: None
        )
    assert server.received == []
    assert (result.state, waits) == ("failed", [2.0])
    assert result.error in {  # OpenSSL 3 spells it with a hyphen, 1.1 without
        f"cannot reach the webhook (HOOK): TLS handshake failed ({reason}) (2 attempts)"
        for reason in ("self-signed certificate", "self signed certificate")
    }


def _raw_server(serve) -> tuple[int, threading.Thread, socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=serve, args=(listener,), daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, listener


def test_a_connection_reset_while_the_card_is_sent_is_retried():
    """The server reads the request's first bytes, then resets the connection: the card (8 MiB
    here, more than the sockets' buffers hold) cannot have reached it whole."""
    accepted: list[int] = []

    def serve(listener: socket.socket) -> None:
        for _ in range(2):
            conn, _addr = listener.accept()
            accepted.append(len(conn.recv(65536)))
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    port, thread, listener = _raw_server(serve)
    try:
        poster = Poster(env={}, sleep=lambda s: None, max_attempts=2)
        result = poster.post(f"http://127.0.0.1:{port}/x", b"x" * (8 << 20), "HOOK", lambda n, e: None)
    finally:
        thread.join(timeout=5)
        listener.close()
    assert len(accepted) == 2
    assert all(accepted)
    assert result.state == "failed"
    assert result.error in {
        f"the connection to the webhook (HOOK) failed while sending the card ({reason}) (2 attempts)"
        for reason in ("Connection reset by peer", "Broken pipe")
    }


def test_a_server_that_does_not_read_the_card_costs_the_deadline_and_is_retried():
    """The server accepts and never reads: sending blocks once the sockets' buffers are full
    (a 64 MiB card); the deadline ends the attempt, and nothing complete reached the server."""
    import time

    held: list[socket.socket] = []

    def serve(listener: socket.socket) -> None:
        conn, _addr = listener.accept()
        held.append(conn)

    port, thread, listener = _raw_server(serve)
    try:
        poster = Poster(env={}, sleep=lambda s: None, max_attempts=1, timeout=1.0)
        started = time.monotonic()
        result = poster.post(f"http://127.0.0.1:{port}/x", b"x" * (64 << 20), "HOOK", lambda n, e: None)
        elapsed = time.monotonic() - started
    finally:
        thread.join(timeout=5)
        listener.close()
        for conn in held:
            conn.close()
    assert (result.state, result.error) == (
        "failed",
        "the webhook (HOOK) did not take the card within 1 s (1 attempts)",
    )
    assert elapsed < 2.0, elapsed


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateways_502_or_504_is_review_not_posted_again(status):
    """A gateway (a proxy, a load balancer) that passed the card on and lost the answer."""
    with WebhookServer(statuses=[status, 200]) as server:
        result = Poster(env={}, sleep=lambda s: None).post(server.url(), b"{}", "HOOK", lambda n, e: None)
    assert len(server.received) == 1
    assert (result.state, result.attempts) == ("review", 1)
    reason = {502: "Bad Gateway", 504: "Gateway Timeout"}[status]
    assert result.error == (
        f"the webhook (HOOK) answered HTTP {status} {reason} after the card was sent: the channel may show it"
    )


def test_a_failed_tls_handshake_is_retried_nothing_was_sent():
    """A server that answers the TLS hello with garbage: the card cannot have reached it."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    hellos: list[bytes] = []

    def serve() -> None:
        for _ in range(2):
            conn, _addr = listener.accept()
            with conn:
                hellos.append(conn.recv(65536))
                conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    waits: list[float] = []
    try:
        poster = Poster(env={}, sleep=waits.append, max_attempts=2)
        result = poster.post(f"https://127.0.0.1:{port}/x", b'{"card": 1}', "HOOK", lambda n, e: None)
    finally:
        thread.join(timeout=5)
        listener.close()
    assert [h[:1] for h in hellos] == [b"\x16", b"\x16"]  # TLS handshake records, never the card
    assert not any(b'"card"' in h for h in hellos)
    assert (result.state, result.attempts, waits) == ("failed", 2, [2.0])
    assert (
        result.error
        == "cannot reach the webhook (HOOK): TLS handshake failed (WRONG_VERSION_NUMBER) (2 attempts)"
    )


@pytest.mark.parametrize("mode", ["late", "reset", "drip"])
def test_a_card_whose_answer_is_lost_goes_to_review_is_not_posted_again_and_resolves(
    tmp_path, monkeypatch, capsys, mode
):
    """Through the run and the ledger: the card is posted once, the delivery is in review with
    the command that settles it, a second run does not post it, and
    `reporter resolve --sent` settles it."""
    from reporter.cli import main

    path = tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK, timeout: 0.5}]")
    config = load_config(path, env={})
    misbehaving = {"late": {"delays": [3]}, "reset": {"modes": ["reset"]}, "drip": {"modes": ["drip"]}}
    with WebhookServer(**misbehaving[mode]) as server:
        env = {"SLACK_HOOK": server.url()}
        with pytest.raises(Unconfirmed) as unconfirmed:  # the run fails: the card's fate is unknown
            run(config, tmp_path, env)
        (review,) = unconfirmed.value.outcome.deliveries  # type: ignore[attr-defined]
        assert (review.state, review.attempts, review.flagged) == ("review", 1, True)
        assert review.error.endswith(
            "the channel may show it; not re-sent: check the Slack channel, then run "
            f"'reporter resolve {config.file} 2026-10 slack:SLACK_HOOK --sent --output {tmp_path}' "
            "if the card is there, "
            "or '--resend' if not"
        )
        assert ledger_rows(tmp_path) == {"slack:slack_hook": (1, "review", 1)}
        with pytest.raises(Unconfirmed) as again:  # still in review: still a failed run
            run(config, tmp_path, env)
        assert [d.state for d in again.value.outcome.deliveries] == ["review"]  # type: ignore[attr-defined]
        assert len(server.received) == 1  # never 2
        monkeypatch.setenv("SLACK_HOOK", server.url())
        args = [str(path), "2026-10", "slack:SLACK_HOOK", "--output", str(tmp_path)]
        assert main(["resolve", *args, "--sent"]) == 0
    assert ledger_rows(tmp_path) == {"slack:slack_hook": (1, "sent", 1)}  # the next run skips it
    assert len(server.received) == 1
    assert (
        capsys.readouterr().out == "tiny 2026-10 slack:slack_hook: recorded as sent (v1); nothing was sent\n"
    )


def test_a_refused_connection_is_retried_then_fails(tmp_path):
    with WebhookServer() as server:
        url = server.url()
    # the server is closed: nothing listens on that port any more
    waits: list[float] = []
    result = Poster(env={}, sleep=waits.append, max_attempts=3).post(url, b"{}", "HOOK", lambda n, e: None)
    assert result.state == "failed"
    assert result.error == "cannot reach the webhook (HOOK): Connection refused (3 attempts)"
    assert waits == [2.0, 4.0]


def test_the_webhook_url_is_never_written_or_told(tmp_path):
    """A failing webhook: the error, the ledger, the files and the alert name the variable,
    never the URL (which holds the token)."""
    mail = "email: {from: reporting@acme.test, to: [ceo@acme.test]}\nalerts_to: [ops@acme.test]"
    config = load_config(tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK}]", email=mail), env={})
    with WebhookServer(statuses=[500] * 4) as server:
        url = server.url(SECRET_PATH)
        with pytest.raises(RunError) as failed:
            run(config, tmp_path, {"SLACK_HOOK": url})
    assert "s3cr3tT0kenXYZ" not in str(failed.value)
    assert redact(url) == "***"  # remembered as a secret: masked wherever reporter writes text
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".csv":
            assert b"s3cr3tT0kenXYZ" not in path.read_bytes(), path
    # the e-mail went out (outbox) and the alert told ops, naming the channel, not the URL
    assert (tmp_path / "outbox" / "tiny" / "2026-10" / "ceo@acme.test.eml").is_file()
    (sent,) = (tmp_path / "outbox" / "tiny" / "2026-10" / "alerts").glob("*.eml")
    alert = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
    body = alert.get_content()
    assert (
        "slack:SLACK_HOOK (the webhook (SLACK_HOOK) answered HTTP 500 Internal Server Error (4 attempts))"
        in body
    )


def test_a_missing_variable_fails_the_run_before_anything_is_sent(tmp_path):
    mail = "email: {from: reporting@acme.test, to: [ceo@acme.test]}"
    config = load_config(tiny(tmp_path, "[{kind: teams, webhook_env: TEAMS_HOOK}]", email=mail), env={})
    with pytest.raises(RunError) as failed:
        run(config, tmp_path, {})
    assert str(failed.value) == (
        "environment variable TEAMS_HOOK (delivery.chat[0].webhook_env) is not set: the Microsoft Teams "
        "webhook's URL comes only from the environment"
    )
    assert not (tmp_path / "outbox" / "tiny" / "2026-10" / "ceo@acme.test.eml").exists()  # no e-mail either
    assert ledger_rows(tmp_path) == {}


def test_a_variable_that_is_not_a_url_is_refused(tmp_path):
    config = load_config(tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK}]"), env={})
    with pytest.raises(RunError) as failed:
        webhook_urls(config, {"SLACK_HOOK": "file:///etc/passwd"})
    assert str(failed.value) == (
        "environment variable SLACK_HOOK (delivery.chat[0].webhook_env) does not hold an http(s) URL: "
        "give the Slack incoming webhook's address (https://…)"
    )


def test_no_send_writes_the_payloads_and_posts_nothing(tmp_path):
    chats = "[{kind: slack, webhook_env: SLACK_HOOK}, {kind: teams, webhook_env: TEAMS_HOOK}]"
    config = load_config(tiny(tmp_path, chats), env={})
    with WebhookServer() as server:
        outcome = run_report(config, period="2026-10", now=NOW, output=tmp_path, send=False, env={})
    assert server.received == []
    folder = tmp_path / "tiny" / "2026-10"
    assert json.loads((folder / "chat-slack.json").read_text())["blocks"][0]["type"] == "header"
    assert json.loads((folder / "chat-teams.json").read_text())["type"] == "message"
    assert outcome.deliveries == []


def test_both_kinds_and_force_posts_again(tmp_path):
    chats = "[{kind: slack, webhook_env: SLACK_HOOK}, {kind: teams, webhook_env: TEAMS_HOOK}]"
    config = load_config(tiny(tmp_path, chats), env={})
    with WebhookServer() as slack, WebhookServer() as teams:
        env = {"SLACK_HOOK": slack.url(), "TEAMS_HOOK": teams.url()}
        run(config, tmp_path, env)
        run(config, tmp_path, env)
        run(config, tmp_path, env, force=True, reason="wrong figures")
        run(config, tmp_path, env, force=True, recipients=["teams:TEAMS_HOOK"])
    assert len(slack.received) == 2
    assert len(teams.received) == 3
    assert ledger_rows(tmp_path) == {"slack:slack_hook": (2, "sent", 1), "teams:teams_hook": (3, "sent", 1)}


def test_a_card_left_pending_by_a_crash_goes_to_review_not_posted_again(tmp_path):
    config = load_config(tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK}]"), env={})
    with Ledger(default_url(tmp_path)) as ledger:  # a run that crashed after its POST
        dead = ledger.start_run("tiny", "2026-10", NOW)
        ledger.claim("tiny", "2026-10", "slack:SLACK_HOOK", 1, "<x>", NOW, forced=False, reason=None,
                     channel="slack", run_id=dead)  # fmt: skip
        ledger.finish_run(dead, NOW, "failed", "killed")
    with WebhookServer() as server, pytest.raises(Unconfirmed) as caught:
        run(config, tmp_path, {"SLACK_HOOK": server.url()})
    assert server.received == []
    (review,) = caught.value.outcome.deliveries  # type: ignore[attr-defined]
    assert review.state == "review"
    assert review.error == (
        "a previous run stopped after sending began (the server may have accepted it): not re-sent; "
        f"check the Slack channel, then run 'reporter resolve {config.file} 2026-10 slack:SLACK_HOOK --sent "
        f"--output {tmp_path}' "
        "if the card is there, or '--resend' if not"
    )


def test_a_card_whose_outcome_the_ledger_cannot_record_goes_to_the_journal(tmp_path):
    """The ledger is locked by another session from the moment the webhook has the card: the
    card's outcome cannot be recorded, so it is noted in the fallback journal and the run fails
    saying so (as for an e-mail), instead of leaving the card pending for review; the next run,
    the lock released, records it as sent from the journal and does not post it again."""
    import sqlite3

    path = tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK}]")
    path.write_text(path.read_text().replace("delivery:\n", "delivery:\n  ledger_lock_timeout: 0.5\n", 1))
    config = load_config(path, env={})
    journal = tmp_path / "ledger-journal.jsonl"
    held: list[sqlite3.Connection] = []

    def lock(_card) -> None:  # another session takes the ledger's write lock and keeps it
        session = sqlite3.connect(tmp_path / "ledger.sqlite", isolation_level=None, check_same_thread=False)
        session.execute("BEGIN IMMEDIATE")
        held.append(session)

    with WebhookServer() as server:
        server.on_post = lock
        env = {"SLACK_HOOK": server.url()}
        with pytest.raises(RunError) as caught:
            run(config, tmp_path, env)
        (session,) = held
        session.rollback()
        session.close()
        said = str(caught.value)
        assert said.startswith("tiny 2026-10: sent to slack:SLACK_HOOK at ")
        assert said.endswith(
            f"; noted in {journal}: once the ledger is back, run 'reporter resolve {config.file} 2026-10 "
            f"slack:SLACK_HOOK --sent --output {tmp_path}' or run the report again: either records it "
            "from there, and it is not sent again"
        )
        (entry,) = [json.loads(line) for line in journal.read_text().splitlines()]
        assert (entry["recipient"], entry["state"], entry["channel"]) == ("slack:SLACK_HOOK", "sent", "slack")
        server.on_post = None
        run(config, tmp_path, env)  # the journal is applied first: nothing is posted again
    assert len(server.received) == 1
    assert not journal.exists()
    assert ledger_rows(tmp_path) == {"slack:slack_hook": (1, "sent", 1)}


def test_build_card_without_url_or_off_track_objective(tmp_path):
    config = load_config(tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK}]"), env={})
    from reporter.compute.database import compute
    from reporter.periods import Period

    results = compute(config, Period.parse("2026-10", "month"), NOW)
    for obj in results.objectives:
        obj.status = "on_track"
    card = build_card(config, results)
    assert card.lines == ["Tiny report — October 2026", "✔ 2 on track", *(f"• {t}" for t in card.takeaways)]
    assert [t.split(" — ")[0] for t in card.takeaways] == ["Revenue", "Orders"]
    # two off track: the one furthest from its target first, whatever the YAML's order
    revenue, orders = results.objectives
    revenue.status, revenue.attainment = "off_track", 0.8
    orders.status, orders.attainment, orders.value = "off_track", 0.5, 5.0
    assert build_card(config, results).lines[1:3] == ["✖ 2 off track", "✖ At least 10 orders: 5 / target 10"]


def test_validate_names_a_bad_chat_entry(tmp_path):
    tiny(
        tmp_path,
        "[{kind: discord, webhook_env: HOOK}, {kind: slack, webhook_env: 'https://hooks.slack.com/x'}]",
    )
    done = subprocess.run(
        [sys.executable, "-m", "reporter", "validate", "tiny.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[:2] == [
        "tiny.yaml:16:17: delivery.chat[0].kind: 'discord' is not one of: slack, teams",
        "tiny.yaml:16:73: delivery.chat[1].webhook_env: not the name of an environment variable (the value "
        "is not repeated here: it may be a secret); put the secret in an environment variable and give its "
        "name (letters, digits and _), e.g. SLACK_WEBHOOK_URL",
    ]
    assert "hooks.slack.com" not in done.stderr + done.stdout


def test_resolve_settles_a_card_in_review_and_force_recipient_reposts(tmp_path, monkeypatch, capsys):
    from reporter.cli import main

    path = tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK}]")
    with Ledger(default_url(tmp_path)) as ledger:  # a run that crashed after its POST
        dead = ledger.start_run("tiny", "2026-10", NOW)
        ledger.claim("tiny", "2026-10", "slack:SLACK_HOOK", 1, "<x>", NOW, forced=False, reason=None,
                     channel="slack", run_id=dead)  # fmt: skip
        ledger.finish_run(dead, NOW, "failed", "killed")
    with WebhookServer() as server:
        monkeypatch.setenv("SLACK_HOOK", server.url())
        args = [str(path), "2026-10", "slack:SLACK_HOOK", "--output", str(tmp_path)]
        assert main(["resolve", *args, "--resend"]) == 0
        assert len(server.received) == 1
        assert ledger_rows(tmp_path) == {"slack:slack_hook": (1, "sent", 1)}
        run_args = ["run", str(path), "--period", "2026-10", "--output", str(tmp_path)]
        assert main([*run_args, "--force", "--reason", "card fixed", "--recipient", "slack:SLACK_HOOK"]) == 0
        assert len(server.received) == 2
    assert ledger_rows(tmp_path) == {"slack:slack_hook": (2, "sent", 1)}
    out = capsys.readouterr().out
    assert "tiny 2026-10 slack:slack_hook: re-sent with the same Message-ID" in out
    assert "  slack:SLACK_HOOK: sent" in out


def test_a_proxy_from_the_environment_is_used_unless_no_proxy_names_the_host():
    """Both servers are on 127.0.0.1: one plays the proxy (it receives the absolute URL)."""
    with WebhookServer() as proxy, WebhookServer() as hook:
        env = {"http_proxy": proxy.url("")}
        result = Poster(env=env).post(hook.url("/x"), b"{}", "HOOK", lambda n, e: None)
        assert result.state == "sent"
        assert [r.path for r in proxy.received] == [hook.url("/x")]
        assert hook.received == []
        direct = Poster(env={**env, "no_proxy": "localhost,127.0.0.1"})
        assert direct.post(hook.url("/y"), b"{}", "HOOK", lambda n, e: None).state == "sent"
    assert [r.path for r in hook.received] == ["/y"]
    assert len(proxy.received) == 1


def test_proxy_credentials_go_to_the_proxy_for_http_and_through_a_connect_tunnel_for_https(
    tmp_path, monkeypatch
):
    from tests.webhook_server import TunnelProxy

    with WebhookServer() as plain_proxy, WebhookServer() as hook:
        env = {"http_proxy": plain_proxy.url("").replace("http://", "http://us%3Aer:s%40cret@")}
        assert Poster(env=env).post(hook.url("/x"), b"{}", "HOOK", lambda n, e: None).state == "sent"
    (seen,) = plain_proxy.received
    assert seen.headers["proxy-authorization"] == "Basic dXM6ZXI6c0BjcmV0"  # us:er:s@cret
    with WebhookServer(tls=tmp_path) as secure, TunnelProxy() as tunnel:
        monkeypatch.setenv("SSL_CERT_FILE", str(secure.cert))
        env = {"https_proxy": tunnel.url("user:secret@")}
        result = Poster(env=env).post(secure.url("/y"), b'{"a": 1}', "HOOK", lambda n, e: None)
    assert result.state == "sent"
    assert tunnel.tunnels == [(f"localhost:{secure.port}", "Basic dXNlcjpzZWNyZXQ=")]
    assert [(r.path, r.body) for r in secure.received] == [("/y", b'{"a": 1}')]


def test_a_proxy_that_drips_its_answer_to_connect_costs_the_deadline_and_nothing_is_sent(tmp_path):
    import time

    from tests.webhook_server import TunnelProxy

    with WebhookServer(tls=tmp_path) as secure, TunnelProxy(drip_every=0.05) as tunnel:
        poster = Poster(env={"https_proxy": tunnel.url()}, sleep=lambda s: None, max_attempts=1, timeout=1.0)
        started = time.monotonic()
        result = poster.post(secure.url("/y"), b"{}", "HOOK", lambda n, e: None)
        elapsed = time.monotonic() - started
    assert len(tunnel.tunnels) == 1
    assert secure.received == []
    assert (result.state, result.error) == (
        "failed",
        "cannot reach the webhook (HOOK) within 1 s (1 attempts)",
    )
    assert elapsed < 2.0, elapsed


def test_a_redirect_is_not_followed():
    with WebhookServer(statuses=[302]) as server:
        result = Poster(env={}).post(server.url(), b"{}", "HOOK", lambda n, e: None)
    assert (result.state, result.attempts) == ("failed", 1)
    assert result.error == "the webhook (HOOK) answered HTTP 302 Found"
    assert [r.path for r in server.received] == ["/hook"]  # /elsewhere was never asked for


def test_a_reply_that_is_not_http_is_review_and_the_card_is_posted_once():
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    served: list[bytes] = []

    def serve() -> None:
        conn, _addr = listener.accept()
        with conn:
            served.append(conn.recv(65536))
            conn.sendall(b"garbage\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        poster = Poster(env={}, sleep=lambda s: None, max_attempts=2)
        result = poster.post(f"http://127.0.0.1:{port}/x", b"{}", "HOOK", lambda n, e: None)
    finally:
        thread.join(timeout=5)
        listener.close()
    assert len(served) == 1
    assert (result.state, result.attempts) == ("review", 1)
    assert result.error == (
        "the webhook (HOOK) gave no valid HTTP answer (BadStatusLine), after the card was sent: "
        "the channel may show it"
    )


def test_once_across_two_runs_with_the_ledger_on_postgresql(tmp_path, empty_pg_ledger):
    path = tiny(tmp_path, "[{kind: teams, webhook_env: TEAMS_HOOK}]")
    config = load_config(path, env={})
    config = config.model_copy(
        update={
            "delivery": config.delivery.model_copy(update={"ledger": "ledger"}),
            "connections": {"ledger": empty_pg_ledger},
        }
    )
    with WebhookServer() as server:
        first = run(config, tmp_path, {"TEAMS_HOOK": server.url()})
        second = run(config, tmp_path, {"TEAMS_HOOK": server.url()})
    assert len(server.received) == 1
    assert [d.state for d in first.deliveries + second.deliveries] == ["sent", "skipped"]
    with Ledger(empty_pg_ledger) as ledger:
        assert [(d.recipient, d.state, d.channel) for d in ledger.all("tiny")] == [
            ("teams:teams_hook", "sent", "teams")
        ]


def test_a_card_says_first_that_a_source_stops_before_the_period_ends(tmp_path):
    """The data ends on 31 October: November (gate off) has none, and the card, Slack's and
    Teams', says so before the tally, in the report's language."""
    path = tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK}]")
    path.write_text(path.read_text() + "quality: {require_complete_period: false}\n")
    config = load_config(path, env={})
    from reporter.compute.database import compute
    from reporter.delivery.chat import slack_payload, teams_payload
    from reporter.periods import Period

    warning = "⚠ No data: orders has no data in this period; its data ends on Oct 31, 2026."
    card = build_card(config, compute(config, Period.parse("2026-11", "month"), NOW))
    assert card.lines[:2] == ["Tiny report — November 2026", warning]
    assert slack_payload(card)["blocks"][1] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": warning},
    }
    body = teams_payload(card)["attachments"][0]["content"]["body"]
    assert body[1] == {
        "type": "RichTextBlock",
        "inlines": [{"type": "TextRun", "text": warning, "color": "Attention"}],
    }
    october = build_card(config, compute(config, Period.parse("2026-10", "month"), NOW))
    assert october.warnings == []
    assert not any("Incomplete" in line for line in october.lines)


def test_mentions_and_links_in_labels_reach_the_chat_as_plain_text(tmp_path):
    """A title or an objective's title that says <!channel>, <@U…> or [x](https://…) is shown
    as those characters: escaped for Slack (&, <, > as entities, in the blocks and in the
    notification text), and in Teams as RichTextBlock TextRuns, which are not Markdown."""
    from reporter.compute.database import compute
    from reporter.delivery.chat import slack_payload, teams_payload
    from reporter.periods import Period

    path = tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK}]")
    path.write_text(
        path.read_text()
        .replace("title: Tiny report,", "title: 'Tiny <!channel> & <!here>',")
        .replace("title: Revenue above 1M,", "title: 'Revenue <@U024BE7LH> [click](http://evil.test)',")
    )
    config = load_config(path, env={})
    card = build_card(config, compute(config, Period.parse("2026-10", "month"), NOW))
    slack = slack_payload(card)
    assert slack["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": "Tiny <!channel> & <!here> — October 2026",
        "emoji": False,
    }
    line = slack["blocks"][2]["text"]["text"]
    assert line.startswith("✖ *Revenue &lt;@U024BE7LH&gt; [click](http://evil.test)*: ")
    assert slack["text"].startswith(
        "Tiny &lt;!channel&gt; &amp; &lt;!here&gt; — October 2026\n✖ 1 off track · ✔ 1 on track\n"
        "✖ Revenue &lt;@U024BE7LH&gt; [click](http://evil.test): "
    )
    assert "<" not in slack["text"]
    assert "<" not in line
    body = teams_payload(card)["attachments"][0]["content"]["body"]
    assert {block["type"] for block in body} == {"RichTextBlock"}  # never Markdown
    assert body[0]["inlines"][0]["text"] == "Tiny <!channel> & <!here> — October 2026"
    assert body[2]["inlines"][0] == {
        "type": "TextRun",
        "text": "✖ Revenue <@U024BE7LH> [click](http://evil.test)",
        "weight": "Bolder",
    }
