"""Recipients' right to stop: every message carries List-Unsubscribe (RFC 2369) and
List-Unsubscribe-Post (RFC 8058); ``reporter unsubscribe`` (an address, or the requests in a
copy of the unsubscribe mailbox) puts an address on the ledger's suppression list, every later
run skips it and says so, ``reporter subscribe`` lifts it; ``delivery.email.allowed_domains``
refuses other recipients at validation."""

from __future__ import annotations

import datetime as dt
import json
import mailbox
import textwrap
from email.message import EmailMessage
from pathlib import Path

import pytest

from reporter.cli import main
from reporter.delivery import suppression
from reporter.delivery.ledger import Ledger, default_url
from tests.conftest import write_csv
from tests.smtp_server import Server

EPOCH = str(int(dt.datetime(2026, 12, 2, 6, tzinfo=dt.UTC).timestamp()))


def report(folder: Path, delivery: str, url: str = "") -> Path:
    days = [dt.date(2025, 10, 1) + dt.timedelta(days=i) for i in range(457)]  # to 2026-12-31
    rows = [[d.isoformat(), d.day * 10] for d in days]
    write_csv(folder / "orders.csv", ["date", "amount"], rows)
    text = textwrap.dedent(f"""\
        report: {{id: tiny, title: Tiny, timezone: UTC{url}}}
        sources:
          orders: {{type: csv, path: orders.csv, date_column: date}}
        metrics:
          revenue: {{source: orders, agg: sum, column: amount}}
        kpis:
          revenue: {{label: Revenue, formula: revenue}}
        """) + textwrap.dedent(delivery)
    path = folder / "tiny.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def smtp_report(folder: Path, port: int) -> Path:
    return report(
        folder,
        f"""\
        delivery:
          email:
            from: Reporting <reporting@acme.test>
            to: [ann@acme.test, bob@acme.test]
            unsubscribe: stop@acme.test
            smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: 10}}
        """,
        url=", url: 'https://intranet.acme.test/reports/tiny'",
    )


def test_an_unsubscribed_address_gets_nothing_the_others_do_and_subscribe_undoes_it(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    out = tmp_path / "out"
    with Server(tmp_path) as server:
        yaml = smtp_report(tmp_path, server.port)
        assert main(["run", str(yaml), "--period", "2026-10", "--output", str(out)]) == 0
        assert sorted(r.rcpt_tos[0] for r in server.handler.received) == ["ann@acme.test", "bob@acme.test"]
        # the headers, as the server received them
        for received in server.handler.received:
            (rcpt,) = received.rcpt_tos
            quoted = rcpt.replace("@", "%40")
            assert received.message["List-Unsubscribe"] == (
                "<mailto:stop@acme.test?subject=unsubscribe%20tiny>, "
                f"<https://intranet.acme.test/reports/tiny?unsubscribe={quoted}>"
            )
            assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            head = received.data.split(b"\r\n\r\n", 1)[0].decode()
            assert (  # each link whole on its line, never folded into encoded words
                "List-Unsubscribe: <mailto:stop@acme.test?subject=unsubscribe%20tiny>,\r\n "
                f"<https://intranet.acme.test/reports/tiny?unsubscribe={quoted}>\r\n"
            ) in head
        capsys.readouterr()

        assert main(["unsubscribe", str(yaml), "BOB@acme.test", "--output", str(out)]) == 0
        undo = f"reporter subscribe {yaml} bob@acme.test --output {out}"
        assert capsys.readouterr().out == (
            f"tiny: bob@acme.test unsubscribed; the next runs send it nothing (undo: {undo})\n"
        )
        assert main(["unsubscribe", str(yaml), "bob@acme.test", "--output", str(out)]) == 0
        assert capsys.readouterr().out == (
            "tiny: bob@acme.test already unsubscribed on 2026-12-02 (reporter unsubscribe); nothing changed\n"
        )

        assert main(["status", str(yaml), "--output", str(out)]) == 0
        assert (
            "  bob@acme.test: unsubscribed on 2026-12-02 (reporter unsubscribe), not sent to"
            in capsys.readouterr().out.splitlines()
        )
        before = len(server.handler.received)
        assert main(["run", str(yaml), "--period", "2026-11", "--output", str(out)]) == 0
        said = capsys.readouterr().out.splitlines()
        new = server.handler.received[before:]
        assert [r.rcpt_tos for r in new] == [["ann@acme.test"]]
        assert said[1:] == [
            "  ann@acme.test: sent",
            "  bob@acme.test: skipped: unsubscribed on 2026-12-02 (reporter unsubscribe), not sent; "
            f"'{undo}' sends to it again",
        ]
        # run again: ann has it and bob unsubscribed, nothing is left to deliver (one line)
        assert main(["run", str(yaml), "--period", "2026-11", "--output", str(out)]) == 0
        assert capsys.readouterr().out.startswith("tiny 2026-11: already delivered on ")
        assert [r.rcpt_tos for r in server.handler.received[before:]] == [["ann@acme.test"]]
        # --force does not reach an unsubscribed address either
        before = len(server.handler.received)
        argv = [
            "run",
            str(yaml),
            "--period",
            "2026-10",
            "--output",
            str(out),
            "--force",
            "--reason",
            "the CFO asked for it again",
        ]
        assert main([*argv, "--recipient", "bob@acme.test"]) == 0
        assert server.handler.received[before:] == []

        assert main(["subscribe", str(yaml), "bob@acme.test", "--output", str(out)]) == 0
        assert capsys.readouterr().out.endswith(
            "tiny: bob@acme.test subscribed again (unsubscribed on 2026-12-02, reporter unsubscribe); "
            "the next run sends to it\n"
        )
        assert main(["run", str(yaml), "--period", "2026-11", "--output", str(out)]) == 0
        assert [r.rcpt_tos for r in server.handler.received[before:]] == [["bob@acme.test"]]

    # the auditor sees who stopped receiving the report, when and how, and when it was undone
    capsys.readouterr()
    assert main(["audit", str(out / "archive"), "--recipient", "bob@acme.test", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    said = [(r["state"], r["period"], r["reason"]) for r in rows if r["period"] is None]
    assert said == [
        ("unsubscribed", None, "reporter unsubscribe"),
        ("subscribed again", None, "reporter subscribe"),
    ]
    assert all(r["accepted"].startswith("2026-12-02T") for r in rows if r["period"] is None)
    assert {r["period"] for r in rows if r["state"] == "sent"} == {"2026-10", "2026-11"}

    with Ledger(default_url(out)) as ledger:
        (row,) = suppression.history(ledger, "tiny")
        assert (row.address, row.how, row.lifted_how, row.active) == (
            "bob@acme.test",
            "reporter unsubscribe",
            "reporter subscribe",
            False,
        )
        assert suppression.suppressed(ledger, "tiny") == {}


def _request(sender: str, to: str, subject: str, mid: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, to, subject, mid
    msg["Date"] = "Mon, 30 Nov 2026 09:00:00 +0000"
    msg.set_content("")
    return msg


def test_requests_mailed_to_the_unsubscribe_mailbox_are_read_from_an_mbox(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    yaml = report(
        tmp_path,
        """\
        delivery:
          email:
            from: Reporting <reporting@acme.test>
            to: [ann@acme.test, bob@acme.test, cy@acme.test]
            unsubscribe: stop@acme.test
        """,
    )
    box = mailbox.mbox(tmp_path / "stop.mbox")
    box.add(_request("Bob <bob@acme.test>", "stop@acme.test", "unsubscribe tiny", "<r1@acme.test>"))
    box.add(_request("cy@acme.test", "Stop <STOP@acme.test>", "Re: UNSUBSCRIBE", "<r2@acme.test>"))
    box.add(_request("eve@evil.test", "stop@acme.test", "unsubscribe tiny", "<r3@evil.test>"))
    box.add(_request("ann@acme.test", "stop@acme.test", "question about the report", "<r4@acme.test>"))
    box.add(_request("ann@acme.test", "someone@acme.test", "unsubscribe tiny", "<r5@acme.test>"))
    box.close()
    out = tmp_path / "out"
    mbox = tmp_path / "stop.mbox"
    assert main(["unsubscribe", str(yaml), "--from-mbox", str(mbox), "--output", str(out)]) == 0
    undo = f"reporter subscribe {yaml} %s --output {out}"
    assert capsys.readouterr().out.splitlines() == [
        f"tiny: bob@acme.test unsubscribed; the next runs send it nothing (undo: {undo % 'bob@acme.test'})",
        f"tiny: cy@acme.test unsubscribed; the next runs send it nothing (undo: {undo % 'cy@acme.test'})",
        f"{mbox}: <r3@evil.test> from eve@evil.test: ignored (eve@evil.test is not a recipient of tiny)",
        f"{mbox}: <r4@acme.test> from ann@acme.test: ignored (subject 'question about the report' is not "
        "'unsubscribe REPORT')",
        f"{mbox}: <r5@acme.test> from ann@acme.test: ignored (not addressed to an unsubscribe mailbox of "
        "these reports)",
        f"{mbox}: 5 message(s), 2 unsubscribe request(s) applied",
    ]
    with Ledger(default_url(out)) as ledger:
        held = suppression.suppressed(ledger, "tiny")
        assert sorted(held) == ["bob@acme.test", "cy@acme.test"]
        assert held["bob@acme.test"].how == "request mailed to stop@acme.test, Message-ID <r1@acme.test>"
        assert held["bob@acme.test"].added == dt.datetime(2026, 12, 2, 6, tzinfo=dt.UTC)


def test_unsubscribe_refuses_an_address_the_report_is_not_sent_to(tmp_path, capsys):
    yaml = report(
        tmp_path,
        """\
        delivery:
          email: {from: reporting@acme.test, to: [ann@acme.test]}
        """,
    )
    assert main(["unsubscribe", str(yaml), "anne@acme.test", "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        "reporter: error: anne@acme.test: not a recipient of tiny (delivery.email to, cc or recipients, "
        "or alerts.rules to); nothing was recorded; check the spelling\n"
    )
    assert main(["unsubscribe", str(yaml), "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        "reporter: error: unsubscribe: give ADDRESS or --from-mbox FILE (one of them)\n"
    )


def test_a_recipient_outside_the_allowed_domains_is_refused_at_validation(tmp_path, capsys):
    yaml = report(
        tmp_path,
        """\
        delivery:
          email:
            from: reporting@acme.test
            to: [ann@acme.test, Bob <bob@sales.acme.test>, carl@gmail.com]
            cc: [dora@acme.test.evil.com]
            recipients:
              - {email: eve@ACME.TEST}
            allowed_domains: [ACME.test, not a domain]
        """,
    )
    assert main(["validate", str(yaml)]) == 2
    hint = (
        "send only to the company's addresses, or add the domain to allowed_domains if this recipient "
        "may receive the report"
    )
    assert capsys.readouterr().err.splitlines() == [
        f"{yaml}:11:52: delivery.email.to[2]: 'carl@gmail.com': the domain gmail.com is not in "
        f"delivery.email.allowed_domains (acme.test); {hint}",
        f"{yaml}:12:10: delivery.email.cc[0]: 'dora@acme.test.evil.com': the domain acme.test.evil.com is "
        f"not in delivery.email.allowed_domains (acme.test); {hint}",
        f"{yaml}:15:34: delivery.email.allowed_domains[1]: 'not a domain' is not a domain; write the part "
        "after the @, e.g. acme.fr",
        "3 errors: nothing was run or sent.",
    ]


@pytest.mark.parametrize(
    ("url", "links"),
    [
        ("", ["<mailto:reporting@acme.test?subject=unsubscribe%20tiny>"]),
        ("http://intranet.acme.test/r", ["<mailto:reporting@acme.test?subject=unsubscribe%20tiny>"]),
        (
            "https://intranet.acme.test/r?x=1#top",
            [
                "<mailto:reporting@acme.test?subject=unsubscribe%20tiny>",
                "<https://intranet.acme.test/r?x=1&unsubscribe=ann%40acme.test>",
            ],
        ),
    ],
)
def test_the_links_without_an_unsubscribe_mailbox_use_the_sender(tmp_path, url, links):
    """... and List-Unsubscribe-Post comes only with the https link (RFC 8058 §3.1: one-click
    needs an HTTPS URI in List-Unsubscribe; a mailto: alone is no one-click)."""
    from reporter.config import load_config
    from reporter.delivery.mailer import add_unsubscribe, unsubscribe_links

    yaml = report(
        tmp_path,
        """\
        delivery:
          email: {from: Reporting <reporting@acme.test>, to: [ann@acme.test]}
        """,
        url=f", url: '{url}'" if url else "",
    )
    config = load_config(yaml, env={})
    assert [f"<{link}>" for link in unsubscribe_links(config, "Ann@acme.test")] == links
    message = EmailMessage()
    message["Subject"] = "Tiny"
    add_unsubscribe(message, config, "Ann@acme.test")
    head = message.as_bytes().split(b"\n\n", 1)[0].decode()
    one_click = url.startswith("https://")
    assert ("List-Unsubscribe-Post: List-Unsubscribe=One-Click" in head) is one_click
    assert message["List-Unsubscribe-Post"] == ("List-Unsubscribe=One-Click" if one_click else None)
    assert message["List-Unsubscribe"] == ", ".join(links)


def test_an_mbox_subject_is_read_as_written_encoded_words_and_raw_utf8_alike(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    yaml = report(
        tmp_path,
        """\
        delivery:
          email:
            from: Reporting <reporting@acme.test>
            to: [ann@acme.test, bob@acme.test]
            unsubscribe: stop@acme.test
        """,
    )

    def mail(mid: str, sender: str, subject: bytes) -> bytes:
        return (
            b"From MAILER-DAEMON Mon Nov 30 09:00:00 2026\n"
            + f"From: {sender}\nTo: stop@acme.test\nMessage-ID: <{mid}@acme.test>\n".encode()
            + b"Subject: "
            + subject
            + b"\n\nhello\n\n"
        )

    mbox = tmp_path / "stop.mbox"
    mbox.write_bytes(
        mail("r1", "ann@acme.test", "Rapport mensuel marketing & ventes — octobre 2026".encode())  # raw UTF-8
        + mail("r2", "bob@acme.test", b"=?utf-8?q?unsubscribe_tiny?=")  # RFC 2047: the request itself
        + mail("r3", "ann@acme.test", b"Re: =?iso-8859-1?q?r=E9sum=E9?=")
        + mail("r4", "ann@acme.test", "été".encode("latin-1"))  # not UTF-8: replaced, the last resort
    )
    out = tmp_path / "out"
    assert main(["unsubscribe", str(yaml), "--from-mbox", str(mbox), "--output", str(out)]) == 0
    undo = f"reporter subscribe {yaml} bob@acme.test --output {out}"
    assert capsys.readouterr().out.splitlines() == [
        f"{mbox}: <r1@acme.test> from ann@acme.test: ignored (subject 'rapport mensuel marketing & ventes — "
        "octobre 2026' is not 'unsubscribe REPORT')",
        f"tiny: bob@acme.test unsubscribed; the next runs send it nothing (undo: {undo})",
        f"{mbox}: <r3@acme.test> from ann@acme.test: ignored (subject 'résumé' is not 'unsubscribe REPORT')",
        f"{mbox}: <r4@acme.test> from ann@acme.test: ignored (subject '\ufffdt\ufffd' is not "
        "'unsubscribe REPORT')",
        f"{mbox}: 4 message(s), 1 unsubscribe request(s) applied",
    ]
