"""The auditor's trail: why a period was sent again (--force --reason), the real times of a run
and of each delivery, an archive and its ledger that know each other by content, `reporter
audit`, and the messages as sent kept in the hash chain.

Against a real SMTP server on 127.0.0.1 (tests/smtp_server.py) and the real ledger."""

from __future__ import annotations

import datetime as dt
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
        f"{copy}: intact — 2 archived file(s), hash chain, attachments and ledger verified\n"
    )
    assert main(["verify", str(copy), "--ledger", str(tmp_path / "original.sqlite")]) == 0
    capsys.readouterr()
    # a careful forger's rewrite of the copy (chain recomputed) is still caught by the ledger
    from tests.test_archive import rewrite

    lines = _manifest(copy)
    rewrite(copy, [{**lines[0], "reason": "nothing to see"}, lines[1]])
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
