"""The auditor's trail: why a period was sent again (--force --reason), the real times of a run
and of each delivery, an archive and its ledger that know each other by content, `reporter
audit`, and the messages as sent kept in the hash chain.

Against a real SMTP server on 127.0.0.1 (tests/smtp_server.py) and the real ledger."""

from __future__ import annotations

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
    with Ledger(default_url(folder)) as ledger, ledger.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(f"select * from {table}"))]


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
