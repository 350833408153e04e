"""Chat delivery (delivery.chat): Slack and Teams cards posted to a real HTTP server on 127.0.0.1
(tests/webhook_server.py), read back as JSON; exactly once across runs through the real ledger;
retried on 5xx and timeouts; never on a failed quality gate; the webhook's URL never written
anywhere. No request leaves the machine: every URL is 127.0.0.1 and no proxy is configured."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reporter.config import load_config
from reporter.delivery.chat import Poster, build_card, webhook_urls
from reporter.delivery.ledger import Ledger, default_url
from reporter.errors import QualityGateError, RunError
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
        "Open the report: https://reports.acme.test/tiny/2026-10"
    )
    assert [(d.recipient, d.state, d.attempts) for d in first.deliveries] == [("slack:SLACK_HOOK", "sent", 1)]
    assert [(d.recipient, d.state) for d in second.deliveries] == [("slack:SLACK_HOOK", "skipped")]
    assert second.summary().endswith("slack:SLACK_HOOK: already sent on 2026-11-02 (ledger), skipped")
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
    title, tally, facts = card["body"]
    assert title == {
        "type": "TextBlock",
        "text": "Tiny report — octobre 2026",
        "weight": "Bolder",
        "size": "Large",
        "wrap": True,
    }
    on, off = words("on_track"), words("off_track")
    assert tally["text"] == f"✖ 1 {off[0].lower()}{off[1:]} · ✔ 1 {on[0].lower()}{on[1:]}"
    revenue = results_of(tmp_path)["kpis"]["revenue"]["value"]
    (fact,) = facts["facts"]
    assert fact["title"] == "✖ Revenue above 1M"
    # French: narrow no-break space between thousands, the euro sign after the number
    shown = f"{revenue:,.0f}".replace(",", "\u202f")
    assert fact["value"] == f"{shown}\xa0€ / {words('target')} 1\u202f000\u202f000\xa0€"
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


def test_a_timeout_is_retried():
    with WebhookServer(delays=[1.5, 0]) as server:
        poster = Poster(env={}, sleep=lambda s: None, timeout=0.5)
        attempts: list[tuple[int, str | None]] = []
        result = poster.post(server.url(), b"{}", "SLACK_HOOK", lambda n, e: attempts.append((n, e)))
    assert (result.state, result.attempts) == ("sent", 2)
    assert attempts == [(1, "the webhook (SLACK_HOOK) did not answer within 0.5 s"), (2, None)]


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
    with WebhookServer(statuses=[502] * 4) as server:
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
    assert "slack:SLACK_HOOK (the webhook (SLACK_HOOK) answered HTTP 502 Bad Gateway (4 attempts))" in body


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
    with WebhookServer() as server:
        outcome = run(config, tmp_path, {"SLACK_HOOK": server.url()})
    assert server.received == []
    (review,) = outcome.deliveries
    assert review.state == "review"
    assert review.error == (
        "a previous run stopped after sending began (the server may have accepted it): not re-sent; "
        f"check the Slack channel, then run 'reporter resolve {config.file} 2026-10 slack:SLACK_HOOK --sent' "
        "if the card is there, or '--resend' if not"
    )


def test_build_card_without_url_or_off_track_objective(tmp_path):
    config = load_config(tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK}]"), env={})
    from reporter.compute.database import compute
    from reporter.periods import Period

    results = compute(config, Period.parse("2026-10", "month"), NOW)
    for obj in results.objectives:
        obj.status = "on_track"
    card = build_card(config, results)
    assert card.lines == ["Tiny report — October 2026", "✔ 2 on track"]
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
        assert main([*run_args, "--force", "--recipient", "slack:SLACK_HOOK"]) == 0
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


def test_a_redirect_is_not_followed():
    with WebhookServer(statuses=[302]) as server:
        result = Poster(env={}).post(server.url(), b"{}", "HOOK", lambda n, e: None)
    assert (result.state, result.attempts) == ("failed", 1)
    assert result.error == "the webhook (HOOK) answered HTTP 302 Found"
    assert [r.path for r in server.received] == ["/hook"]  # /elsewhere was never asked for


def test_a_reply_that_is_not_http_is_retried_then_fails():
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    served: list[bytes] = []

    def serve() -> None:
        for _ in range(2):
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
    assert len(served) == 2
    assert result.state == "failed"
    assert result.error == "the webhook (HOOK) gave no valid HTTP reply (BadStatusLine) (2 attempts)"


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


def test_a_late_answer_posts_the_card_twice():
    """Documented (archive-and-delivery.md, "A card may be posted twice"): the webhook has the
    card when its answer times out; the retry posts the same card again, and the result is a
    plain `sent`. A test of the behaviour as it is, so that the docs stay true."""
    with WebhookServer(delays=[1.5, 0]) as server:
        poster = Poster(env={}, sleep=lambda s: None, timeout=0.5)
        body = b'{"text": "card"}'
        result = poster.post(server.url(), body, "SLACK_HOOK", lambda n, e: None)
    assert (result.state, result.attempts, result.error) == ("sent", 2, None)
    assert [r.body for r in server.received] == [body, body]


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
    assert body[1] == {"type": "TextBlock", "text": warning, "color": "Attention", "wrap": True}
    october = build_card(config, compute(config, Period.parse("2026-10", "month"), NOW))
    assert october.warnings == []
    assert not any("Incomplete" in line for line in october.lines)
