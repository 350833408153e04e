# ruff: noqa: E501  (the expected messages are long lines, kept whole to be read as printed)
"""The auditor's commands on an archive that is not intact. `reporter audit` checks the archive as
`reporter verify` does (the same code) before it lists anything, says so first and loud, still
lists what the ledger recorded, and exits 1, as verify does; verify names what differs (a line
whose size was edited is not an altered file).

The archive is the demo's, delivered by real runs (tests/test_archive.py's ``demo_archive``:
2026-10 v1, 2026-10 v2 forced, 2026-09 v1, each PDF then its e-mail in the manifest), copied
with its ledger and then tampered with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reporter.cli import main
from reporter.delivery.archive import MANIFEST
from tests.test_archive import copy_archive, demo_archive  # noqa: F401  (the fixture)

PDF_10_V1 = "marketing-monthly/2026-10/marketing-monthly_2026-10_v1.pdf"
EML_10_V1 = (
    "marketing-monthly/2026-10/messages/marketing-monthly_2026-10_v1_direction@hexagone-conseil.fr.eml"
)
EML_10_V2 = (
    "marketing-monthly/2026-10/messages/marketing-monthly_2026-10_v2_direction@hexagone-conseil.fr.eml"
)
PDF_10_V2 = "marketing-monthly/2026-10/marketing-monthly_2026-10_v2.pdf"


def loud(archive: Path, count: int) -> str:
    """The first line audit prints on an archive that is not intact."""
    return (
        f"{archive}: NOT intact — {count} problem(s), as 'reporter verify' finds them; the deliveries "
        "below are the ledger's record, but the archived files and SHA-256 they name may not be what "
        "was sent"
    )


@pytest.fixture
def copied(demo_archive, tmp_path):  # noqa: F811
    """A copy of the demo's archive with its ledger beside it, as `reporter run` leaves them."""
    archive = copy_archive(demo_archive[1] / "archive", tmp_path / "archive")
    shutil.copy(demo_archive[1] / "ledger.sqlite", tmp_path / "ledger.sqlite")
    return archive


def _lines(archive: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (archive / MANIFEST).read_text().splitlines()]


def _write(archive: Path, entries: list[dict[str, object]]) -> None:
    text = "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in entries)
    (archive / MANIFEST).write_text(text, encoding="utf-8")


def _tamper(archive: Path, how: str) -> None:
    entries = _lines(archive)
    if how == "pdf-bytes":
        path = archive / PDF_10_V1
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif how == "line-edited":  # v2's reason rewritten
        entries[2]["reason"] = "nothing to see"
        _write(archive, entries)
    elif how == "first-line-edited":  # line 1, which names the archive in its ledger
        entries[0]["reason"] = "nothing to see"
        _write(archive, entries)
    elif how == "line-deleted":  # v1's e-mail, line 2
        del entries[1]
        _write(archive, entries)


EXPECTED = {
    "pdf-bytes": [f"{PDF_10_V1}: altered (SHA-256 differs from manifest line 1)"],
    "line-edited": [
        f"{MANIFEST}:3: differs from the line the ledger recorded when it was written (changed)",
        f"{MANIFEST}:4: hash chain broken at {EML_10_V2} (a line before it was edited, removed or reordered)",
    ],
    "first-line-edited": [
        f"{MANIFEST}:1: differs from the line the ledger recorded when it was written (changed)",
        f"{MANIFEST}:2: hash chain broken at {EML_10_V1} (a line before it was edited, removed or reordered)",
    ],
    "line-deleted": [
        f"{MANIFEST}:2: differs from the line the ledger recorded when it was written (changed)",
        f"{MANIFEST}:2: hash chain broken at {PDF_10_V2} (a line before it was edited, removed or reordered)",
        f"{MANIFEST}:3: differs from the line the ledger recorded when it was written (changed)",
        f"{MANIFEST}:4: differs from the line the ledger recorded when it was written (changed)",
        f"{MANIFEST}:5: differs from the line the ledger recorded when it was written (changed)",
        f"{MANIFEST}:6: missing: the ledger recorded marketing-monthly/2026-09/messages/marketing-monthly_2026-09_v1_direction@hexagone-conseil.fr.eml on this line (the manifest was truncated)",
        f"{EML_10_V1}: extra (not in the manifest)",
    ],
}


@pytest.mark.parametrize("how", list(EXPECTED))
def test_audit_of_a_tampered_archive_says_so_first_lists_the_rows_and_exits_1(
    copied, how, capsys, monkeypatch
):
    monkeypatch.delenv("REPORTER_ARCHIVE_KEY", raising=False)
    assert main(["audit", str(copied), "--format", "json"]) == 0
    intact = capsys.readouterr()
    assert intact.err == ""
    _tamper(copied, how)
    assert main(["verify", str(copied)]) == 1
    verified = capsys.readouterr().err.splitlines()
    problems = [f"{copied}/{p}" for p in EXPECTED[how]]
    assert verified == [*problems, f"{len(problems)} problem(s): the archive is NOT intact."]
    assert main(["audit", str(copied), "--format", "json"]) == 1
    audited = capsys.readouterr()
    assert audited.err.splitlines() == [
        loud(copied, len(problems)),
        *problems,  # verify's own words, from verify's own check
        f"{len(problems)} problem(s): the archive is NOT intact.",
    ]
    rows = json.loads(audited.out)  # still every delivery the ledger recorded, as valid JSON
    assert [(r["period"], r["version"], r["recipient"]) for r in rows] == [
        (r["period"], r["version"], r["recipient"]) for r in json.loads(intact.out)
    ]


def test_audit_checks_the_scope_it_lists_as_verify_does(copied, capsys, monkeypatch):
    """--period 2026-09: the altered October PDF is outside it (verify --period 2026-09 says the
    same); an edited line is found whatever the period, the chain being checked whole."""
    monkeypatch.delenv("REPORTER_ARCHIVE_KEY", raising=False)
    _tamper(copied, "pdf-bytes")
    assert main(["audit", str(copied), "--period", "2026-09"]) == 0
    assert main(["verify", str(copied), "--period", "2026-09"]) == 0
    assert main(["audit", str(copied), "--period", "2026-10"]) == 1
    capsys.readouterr()
    _tamper(copied, "line-edited")
    assert main(["audit", str(copied), "--period", "2026-09", "--format", "csv"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        loud(copied, 2),
        *(f"{copied}/{p}" for p in EXPECTED["line-edited"]),
        "2 problem(s): the archive is NOT intact.",
    ]


def test_audit_write_refuses_a_message_whose_line_was_rewritten_to_match_it(
    copied, tmp_path, capsys, monkeypatch
):
    """v1's e-mail altered and its manifest line rewritten with the altered bytes' SHA-256 and
    size: the file matches its line, but the line is not the one written (the ledger and the
    chain say so). --write gave the forged bytes back 'as archived', exit 0; now it writes
    nothing, says why first, and exits 1."""
    import hashlib

    monkeypatch.delenv("REPORTER_ARCHIVE_KEY", raising=False)
    args = ["--period", "2026-10", "--version", "1", "--recipient", "direction@hexagone-conseil.fr"]
    good = tmp_path / "good.eml"
    assert main(["audit", str(copied), *args, "--write", str(good)]) == 0
    capsys.readouterr()
    entries = _lines(copied)
    forged = (copied / EML_10_V1).read_bytes().replace(b"Subject:", b"Subject: FORGED", 1)
    (copied / EML_10_V1).write_bytes(forged)
    entries[1].update(sha256=hashlib.sha256(forged).hexdigest(), size=len(forged))
    _write(copied, entries)
    out = tmp_path / "v1.eml"
    assert main(["audit", str(copied), *args, "--write", str(out)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{copied}: NOT intact — 2 problem(s), as 'reporter verify' finds them; {out} not written: what "
        "its manifest line says cannot be taken as what was sent",
        f"{copied}/{MANIFEST}:2: differs from the line the ledger recorded when it was written (changed)",
        f"{copied}/{MANIFEST}:3: hash chain broken at {PDF_10_V2} (a line before it was edited, removed or reordered)",
        "2 problem(s): the archive is NOT intact.",
    ]
    assert not out.exists()
    assert b"FORGED" not in good.read_bytes()


def _edited_size(rel: str, number: int, recorded: int, actual: int) -> str:
    return (
        f"{rel}: the file is intact, manifest line {number} was edited: the line records a size of "
        f"{recorded:,} bytes, the file has {actual:,} bytes and the SHA-256 the line records (an edited "
        "line no longer hashes to what the next line and the ledger recorded, nor matches its HMAC)"
    )


def test_a_size_edited_in_a_manifest_line_is_named_as_an_edited_line_not_an_altered_file(copied, capsys):
    """Only the ``size`` field of a line changed: the file is the one the line's SHA-256 names,
    so verify says the line was edited and what it records against what the file has; the
    chain and the ledger name the edited line too. On the last line, without the ledger, that
    message is the only sign."""
    entries = _lines(copied)
    actual = int(str(entries[0]["size"]))
    entries[0]["size"] = actual + 1
    _write(copied, entries)
    assert main(["verify", str(copied)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{copied}/{MANIFEST}:1: differs from the line the ledger recorded when it was written (changed)",
        f"{copied}/{_edited_size(PDF_10_V1, 1, actual + 1, actual)}",
        f"{copied}/{MANIFEST}:2: hash chain broken at {EML_10_V1} (a line before it was edited, removed or reordered)",
        "3 problem(s): the archive is NOT intact.",
    ]
    entries[0]["size"] = actual  # line 1 as written; now the last line, an e-mail's
    last = str(entries[-1]["path"])
    eml = int(str(entries[-1]["size"]))
    entries[-1]["size"] = eml - 7
    _write(copied, entries)
    assert main(["verify", str(copied), "--no-ledger"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{copied}/{_edited_size(last, 6, eml - 7, eml)}",
        "1 problem(s): the archive is NOT intact.",
    ]
    # a file whose bytes and size both changed is altered, as before
    _write(copied, [*_lines(copied)[:-1], {**entries[-1], "size": eml}])
    (copied / last).write_bytes((copied / last).read_bytes()[:-7])
    assert main(["verify", str(copied), "--no-ledger"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{copied}/{last}: altered (SHA-256 differs from manifest line 6)",
        "1 problem(s): the archive is NOT intact.",
    ]
