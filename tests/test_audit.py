"""The auditor's trail: why a period was sent again (--force --reason), the real times of a run
and of each delivery, an archive and its ledger that know each other by content, `reporter
audit`, and the messages as sent kept in the hash chain.

Against a real SMTP server on 127.0.0.1 (tests/smtp_server.py) and the real ledger."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import sqlalchemy as sa

from reporter.cli import main
from reporter.delivery.archive import MANIFEST
from reporter.delivery.ledger import Ledger, default_url
from tests.smtp_server import Server
from tests.test_exactly_once import NOW, tiny

EPOCH = str(int(NOW.timestamp()))


def _rows(folder: Path, table: str) -> list[dict[str, object]]:
    from reporter.delivery.ledger import metadata

    with Ledger(default_url(folder)) as ledger, ledger.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(metadata.tables[table]))]


def _manifest(archive: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (archive / MANIFEST).read_text().splitlines()]


# --- item 4: --force needs its reason, kept in the manifest, the ledger and audit ---------------


def test_force_needs_a_reason_and_a_reason_needs_force(tmp_path, capsys):
    config = tiny(tmp_path, 25, to=["a@acme.test"])
    base = ["run", str(config), "--period", "2026-10", "--output", str(tmp_path)]
    assert main([*base, "--force"]) == 2
    assert capsys.readouterr().err == (
        "reporter: error: --force re-sends a period already delivered: say why with --reason TEXT "
        "(kept in the ledger, the archive's manifest and 'reporter audit')\n"
    )
    assert main([*base, "--force", "--reason", "  "]) == 2
    assert "say why with --reason TEXT" in capsys.readouterr().err
    assert main([*base, "--reason", "typo"]) == 2
    assert capsys.readouterr().err == (
        "reporter: error: --reason says why a period is sent again: use it with --force\n"
    )
    assert not (tmp_path / "ledger.sqlite").exists()  # nothing was run


def test_the_reason_of_a_forced_resend_is_in_the_manifest_and_the_ledger(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    with Server(tmp_path) as server:
        config = tiny(tmp_path, server.port, to=["a@acme.test"])
        base = ["run", str(config), "--period", "2026-10", "--output", str(tmp_path)]
        assert main(base) == 0
        assert main([*base, "--force", "--reason", "the October  figures were  revised"]) == 0
    assert len(server.handler.received) == 2
    lines = _manifest(tmp_path / "archive")
    pdfs = [e for e in lines if str(e["path"]).endswith(".pdf")]
    assert [(e["version"], e["reason"]) for e in pdfs] == [(1, None), (2, "the October figures were revised")]
    deliveries = sorted(_rows(tmp_path, "deliveries"), key=lambda r: int(str(r["version"])))
    assert [(d["version"], d["forced"], d["reason"]) for d in deliveries] == [
        (1, False, None),
        (2, True, "the October figures were revised"),
    ]


# --- item 5: the run's clock cuts the period; the ledger also keeps the real times -------------


def _aware(value: object) -> dt.datetime:
    assert isinstance(value, dt.datetime), value
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def test_the_ledger_keeps_the_real_start_finish_and_acceptance_times(tmp_path):
    """The run's clock is frozen (NOW, a year before this test runs, say); the server takes
    1.2 s to accept each message: the ledger has the real times, each delivery its own."""
    from reporter.config import load_config
    from reporter.run.pipeline import run_report

    with Server(tmp_path) as server:
        server.handler.late_reply = 1.2
        config = load_config(tiny(tmp_path, server.port, to=["a@acme.test", "b@acme.test"]), env={})
        before = dt.datetime.now(dt.UTC)
        run_report(config, period="2026-10", now=NOW, output=tmp_path)
        after = dt.datetime.now(dt.UTC)
    (run,) = _rows(tmp_path, "runs")
    assert _aware(run["started"]) == _aware(run["finished"]) == NOW  # the period's clock, kept
    started, finished = _aware(run["wall_started"]), _aware(run["wall_finished"])
    assert before <= started < finished <= after
    accepted = sorted(_aware(d["accepted"]) for d in _rows(tmp_path, "deliveries"))
    assert len(accepted) == 2
    assert started < accepted[0]
    assert accepted[1] < finished
    assert accepted[1] - accepted[0] >= dt.timedelta(seconds=1.2)


def test_a_forced_resend_to_the_outbox_keeps_the_first_version(tmp_path):
    from reporter.config import load_config
    from reporter.run.pipeline import run_report

    path = tiny(tmp_path, 25, to=["a@acme.test"])
    path.write_text("".join(x for x in path.read_text().splitlines(True) if "smtp:" not in x))
    config = load_config(path, env={})
    run_report(config, period="2026-10", now=NOW, output=tmp_path)
    outbox = tmp_path / "outbox" / "tiny" / "2026-10"
    first = (outbox / "a@acme.test.eml").read_bytes()
    run_report(config, period="2026-10", now=NOW, output=tmp_path, force=True, reason="again")
    assert (outbox / "a@acme.test.eml").read_bytes() == first
    second = (outbox / "a@acme.test_v2.eml").read_bytes()
    assert b"Message-ID" in second
    assert second != first
    (accepted,) = [d["accepted"] for d in _rows(tmp_path, "deliveries") if d["version"] == 2]
    assert _aware(accepted) > NOW  # the outbox file's real time, not the run's clock


# --- item 1: the archive and its ledger know each other by content, one ledger per archive -----


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def test_a_copy_of_the_archive_and_its_ledger_verifies_elsewhere_and_one_archive_keeps_one_ledger(
    tmp_path, monkeypatch, capsys
):
    import shutil

    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    monkeypatch.delenv("REPORTER_ARCHIVE_KEY", raising=False)
    with Server(tmp_path) as server:
        config = tiny(tmp_path, server.port, to=["a@acme.test"])
        base = ["run", str(config), "--period", "2026-10"]
        assert main([*base, "--output", str(tmp_path)]) == 0
        assert main([*base, "--output", str(tmp_path), "--force", "--reason", "restated"]) == 0
        capsys.readouterr()
        # a second output folder (its own ledger.sqlite) on the same archive: refused, nothing sent
        other = tmp_path / "other"
        assert main([*base, "--output", str(other), "--allow-dir", str(tmp_path)]) == 2
        assert capsys.readouterr().err == (
            f"reporter: error: tiny 2026-10: the archive {tmp_path / 'archive'} was written with "
            f"another ledger than this run's ({other / 'ledger.sqlite'}), and one archive keeps one "
            "ledger; nothing was run or sent: run with the --output of the runs that wrote it (its "
            "ledger.sqlite), or give this output folder its own archive (delivery.archive.dir)\n"
        )
    assert len(server.handler.received) == 2
    # what an auditor is handed: the archive and its ledger, copied to another machine's folder
    audit = tmp_path / "elsewhere" / "case-42"
    shutil.copytree(tmp_path / "archive", audit / "archive")
    shutil.copy(tmp_path / "ledger.sqlite", audit / "ledger.sqlite")
    (tmp_path / "ledger.sqlite").rename(tmp_path / "original.sqlite")  # not found by its old place
    copy = audit / "archive"
    assert main(["verify", str(copy)]) == 0
    assert capsys.readouterr().out == (
        f"{copy}: intact — 4 archived file(s) (2 report PDFs, 2 e-mails as sent); hash chain, "
        "attachments and ledger verified\n"
    )
    assert main(["verify", str(copy), "--ledger", str(tmp_path / "original.sqlite")]) == 0
    capsys.readouterr()
    # a careful forger's rewrite of the copy (chain recomputed) is still caught by the ledger
    from tests.test_archive import rewrite

    lines = _manifest(copy)
    assert [e.get("kind", "pdf") for e in lines] == ["pdf", "message", "pdf", "message"]
    rewrite(copy, [{**lines[0], "reason": "nothing to see"}, *lines[1:]])
    assert main(["verify", str(copy)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{copy}/manifest.jsonl:1: differs from the line the ledger recorded when it was written (changed)\n"
        in err
    )
    # and an altered file in a copy verified against the original ledger
    shutil.copytree(tmp_path / "archive", tmp_path / "second")
    _flip(tmp_path / "second" / str(lines[0]["path"]))
    assert main(["verify", str(tmp_path / "second"), "--ledger", str(tmp_path / "original.sqlite")]) == 1
    assert "tiny/2026-10/tiny_2026-10_v1.pdf: altered (SHA-256 differs from manifest line 1)" in (
        capsys.readouterr().err
    )


# --- items 2 and 3: `reporter audit`, and the messages as sent kept in the hash chain ----------


def test_audit_lists_every_delivery_with_real_times_and_gives_back_the_bytes_v1_sent(
    tmp_path, monkeypatch, capsys
):
    import csv
    import hashlib
    import io

    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)  # the run's clock is frozen; the ledger's is not
    monkeypatch.delenv("REPORTER_ARCHIVE_KEY", raising=False)
    people = ["a@acme.test", "b@acme.test"]
    with Server(tmp_path) as server:
        server.handler.late_reply = 1.2  # the server takes 1.2 s to accept each message
        config = tiny(tmp_path, server.port, to=people)
        base = ["run", str(config), "--period", "2026-10", "--output", str(tmp_path)]
        assert main(base) == 0
        v1 = {r.rcpt_tos[0]: r.data for r in server.handler.received}
        assert main([*base, "--force", "--reason", "revenue restated"]) == 0
    assert len(server.handler.received) == 4
    archive = tmp_path / "archive"
    capsys.readouterr()
    assert main(["audit", str(archive), "--period", "2026-10", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["recipient"], r["version"], r["forced"], r["reason"]) for r in rows] == [
        ("a@acme.test", 1, False, None),
        ("a@acme.test", 2, True, "revenue restated"),
        ("b@acme.test", 1, False, None),
        ("b@acme.test", 2, True, "revenue restated"),
    ]
    assert {(r["report"], r["period"], r["state"], r["channel"]) for r in rows} == {
        ("tiny", "2026-10", "sent", "smtp")
    }
    times = [dt.datetime.fromisoformat(r["accepted"].replace("Z", "+00:00")) for r in rows]
    assert all(t > NOW + dt.timedelta(days=1) for t in times)  # real times, not the frozen clock
    assert len(set(times)) == 4  # each accepted 1.2 s after the one before: four times
    assert len({r["message_id"] for r in rows}) == 4
    for row in rows:  # each row names the archived .eml that holds what that recipient received
        assert row["file"].startswith("tiny/2026-10/messages/tiny_2026-10_v")
        data = (archive / row["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert f"Message-ID: {row['message_id']}".encode() in data
    # the same rows as CSV, and as a table for a person
    assert main(["audit", str(archive), "--format", "csv", "--recipient", "B@acme.test"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["recipient"], r["version"], r["accepted"], r["reason"]) for r in table] == [
        (r["recipient"], str(r["version"]), r["accepted"], r["reason"] or "") for r in rows[2:]
    ]
    assert main(["audit", str(archive), "--recipient", "a@acme.test"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "report", "period", "v", "recipient", "channel", "state", "accepted", "(UTC)",
        "Message-ID", "forced", "reason", "file", "SHA-256", "purged",
    ]  # fmt: skip
    v2 = rows[1]
    expected = ["tiny", "2026-10", "2", "a@acme.test", "smtp", "sent"]
    expected += [v2["accepted"], v2["message_id"], "forced"]
    assert lines[2].split()[:9] == expected
    assert len(lines) == 3
    # the exact bytes of v1's digest to a, after the forced v2: what the server received
    out = tmp_path / "v1-a.eml"
    args = ["audit", str(archive), "--period", "2026-10", "--version", "1", "--recipient", "a@acme.test"]
    assert main([*args, "--write", str(out)]) == 0
    assert out.read_bytes() == v1["a@acme.test"]
    assert capsys.readouterr().out == (
        f"{out}: the message a@acme.test received for 2026-10 v1 ({len(v1['a@acme.test']):,} bytes, "
        f"SHA-256 {hashlib.sha256(v1['a@acme.test']).hexdigest()}), as archived\n"
    )
    # the messages are in the hash chain: verify checks them, and catches an edited one
    assert main(["verify", str(archive)]) == 0
    assert capsys.readouterr().out == (
        f"{archive}: intact — 6 archived file(s) (2 report PDFs, 4 e-mails as sent); hash chain, "
        "attachments and ledger verified\n"
    )
    _flip(archive / rows[0]["file"])
    assert main(["verify", str(archive)]) == 1
    assert f"{archive}/{rows[0]['file']}: altered (SHA-256 differs from manifest line 2)\n" in (
        capsys.readouterr().err
    )
    assert main([*args, "--write", str(tmp_path / "again.eml")]) == 1
    assert capsys.readouterr().err == (
        f"reporter: error: {rows[0]['file']}: altered (SHA-256 differs from manifest.jsonl line 2): "
        f"not written; run 'reporter verify {archive}'\n"
    )
    assert not (tmp_path / "again.eml").exists()
    # and status points there
    assert main(["status", str(config), "--output", str(tmp_path)]) == 0
    assert (
        f"  4 deliveries recorded; who received what, when and why: reporter audit {archive}\n"
        in capsys.readouterr().out
    )


def test_audit_says_what_it_needs(tmp_path, capsys):
    archive = tmp_path / "archive"
    archive.mkdir()
    assert main(["audit", str(archive), "--write", str(tmp_path / "x.eml"), "--period", "2026-10"]) == 2
    assert capsys.readouterr().err == (
        "reporter: error: --write FILE writes one recipient's message: name it with --version N, "
        "--recipient ADDRESS\n"
    )
    assert main(["audit", str(archive), "--version", "2"]) == 2
    assert capsys.readouterr().err == (
        "reporter: error: --version names the message to write: use it with --write FILE\n"
    )
    args = ["--period", "2026-10", "--version", "1", "--recipient", "a@acme.test"]
    assert main(["audit", str(archive), *args, "--write", str(tmp_path / "x.eml")]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: {archive}: no archived message to a@acme.test for 2026-10 v1 "
        "(see 'reporter audit' for what was delivered and archived)\n"
    )
    cwd_output = Path("output").resolve()
    assert main(["audit", str(archive)]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: no ledger beside {archive} ({tmp_path / 'ledger.sqlite'}) nor in "
        f"{cwd_output / 'ledger.sqlite'}: pass --ledger (the report's delivery.ledger, or the "
        "ledger.sqlite of the run's output folder)\n"
    )


def test_a_chat_card_is_accepted_at_the_webhooks_answer_and_audit_names_its_pdf(tmp_path, capsys):
    """The webhook answers 2xx after 1 s: that is the card's acceptance time; no e-mail is
    archived for a card, so its row names the PDF its run archived."""
    import hashlib

    from reporter.config import load_config
    from reporter.run.pipeline import run_report
    from tests.test_chat import tiny as chat_tiny
    from tests.webhook_server import WebhookServer

    config = load_config(chat_tiny(tmp_path, "[{kind: slack, webhook_env: SLACK_HOOK}]"), env={})
    with WebhookServer(delays=[1.0]) as server:
        env = {"SLACK_HOOK": server.url("/hooks/T0/B0/xyz")}
        run_report(config, period="2026-10", now=NOW, output=tmp_path, env=env)
    assert len(server.received) == 1
    (run,) = _rows(tmp_path, "runs")
    (card,) = _rows(tmp_path, "deliveries")
    accepted = _aware(card["accepted"])
    assert accepted - _aware(run["wall_started"]) >= dt.timedelta(seconds=1)
    assert accepted <= _aware(run["wall_finished"])
    capsys.readouterr()
    assert main(["audit", str(tmp_path / "archive"), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    pdf = tmp_path / "archive" / "tiny" / "2026-10" / "tiny_2026-10_v1.pdf"
    assert (row["recipient"], row["channel"], row["state"]) == ("slack:slack_hook", "slack", "sent")
    assert row["accepted"] == accepted.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (row["file"], row["sha256"]) == (
        "tiny/2026-10/tiny_2026-10_v1.pdf",
        hashlib.sha256(pdf.read_bytes()).hexdigest(),
    )


def test_audit_refuses_a_ledger_that_did_not_record_the_archive(tmp_path, capsys):
    """Another archive's ledger would list deliveries this archive never saw."""
    archive = tmp_path / "archive"
    archive.mkdir()
    line = '{"path": "tiny/2026-10/tiny_2026-10_v1.pdf", "report": "tiny"}'
    (archive / MANIFEST).write_text(line + "\n")
    Ledger(default_url(tmp_path)).close()
    first = hashlib.sha256(line.encode()).hexdigest()
    assert main(["audit", str(archive)]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: {archive}: the ledger has no record of this archive's hash chain (its first "
        f"line, SHA-256 {first[:16]}…): it was written with another ledger: its deliveries are not this "
        "archive's; pass the archive's own ledger with --ledger\n"
    )
