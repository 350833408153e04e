# ruff: noqa: E501  (the expected messages are long lines, kept whole to be read as printed)
"""Bounds on reading an archive or a PDF from elsewhere: ``verify`` reads the manifest line by
line within limits and opens nothing that is not a regular file; ``reproduce`` reads an
attachment only within the size it declares and a cap, decompressing it piece by piece.

The hostile cases run the real CLI in a subprocess, with a timeout (a FIFO must not make it
wait forever) and its own peak memory (VmHWM, see tests/peak.py)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from reporter.cli import main
from reporter.delivery import archive as archive_module
from reporter.delivery.archive import MANIFEST
from tests.conftest import write_csv
from tests.peak import CHILD, split_peak

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
NOTHING_MOVED = (
    "no data file and no number changed since the archive: the PDF itself differs (altered "
    "after it was archived, or rendered by other versions of reporter or its libraries, "
    "named in its provenance.json); 'reporter verify ARCHIVE_DIR' checks the archived copy"
)
RSS_LIMIT_MB = 300
F = "report.yaml"
BASE = """\
report: {id: repro, title: Sales, timezone: UTC}
sources:
  sales: {type: csv, path: data/sales.csv, date_column: date}
metrics:
  revenue: {source: sales, agg: sum, column: amount}
kpis:
  revenue: {formula: revenue, format: currency}
delivery:
  email: {from: reports@acme.test, to: [boss@acme.test]}
  archive: {dir: archive}
"""
ROWS = [["2026-09-10", 80], ["2026-10-01", 50], ["2026-10-15", 70], ["2026-10-31", 30]]
PDF = "repro/2026-10/repro_2026-10_v1.pdf"


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where `reporter run` archived one PDF: report.yaml, data/, archive/, out/ledger.sqlite."""
    work = tmp_path_factory.mktemp("origin")
    write_csv(work / "data" / "sales.csv", ["date", "amount"], ROWS)
    (work / F).write_text(BASE, encoding="utf-8")
    # the archive lies beside the YAML, outside the output folder: the operator allows it
    run = [
        "run",
        str(work / F),
        "--period",
        "2026-10",
        "--output",
        str(work / "out"),
        "--allow-dir",
        str(work),
    ]
    assert main(run) == 0
    assert (work / "archive" / PDF).is_file()
    return work


def _rewrite_first(manifest: Path, **changes: object) -> None:
    """The first line (the PDF's) changed, the chain recomputed after it: what a forger who
    has no ledger to fear writes."""
    from tests.test_archive import rewrite

    lines = [json.loads(x) for x in manifest.read_text().splitlines()]
    rewrite(manifest.parent, [{**lines[0], **changes}, *lines[1:]])


@pytest.fixture
def work(origin: Path, tmp_path: Path) -> Path:
    """A copy of ``origin`` to spoil; its ledger (copied too) hands the report id over to the
    copy's YAML, as an operator does for a moved configuration."""
    shutil.copytree(origin, tmp_path / "w", symlinks=True)
    copy = tmp_path / "w"
    assert main(["release", str(copy / F), "--output", str(copy / "out"), "--allow-dir", str(copy)]) == 0
    return copy


@dataclass
class Done:
    code: int
    err: list[str]  # stderr's lines
    took: float  # seconds
    rss: float  # peak resident memory, MB


def cli(args: list[str], cwd: Path, timeout: float = 600) -> Done:
    """``reporter ARGS`` in a subprocess, its stdout and stderr in files, its own peak memory
    (tests/peak.py: ru_maxrss would carry the pytest process's)."""
    out, err = cwd / ".stdout", cwd / ".stderr"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], cwd=cwd, stdout=o, stderr=e, env=env)
        deadline = started + timeout
        while True:
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                pytest.fail(f"reporter {' '.join(args)}: still running after {timeout} s")
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    took = time.monotonic() - started
    said, peak = split_peak(err.read_text())
    out.unlink()
    err.unlink()
    return Done(proc.returncode, said.splitlines(), took, peak)


# --- the manifest, line by line -----------------------------------------------------------


REFUSED = "refused, nothing in this archive was checked; compare it with its backup"
# verify and audit (with the archive's ledger) read the manifest through one function
BOTH = [["verify", "archive", "--no-ledger"], ["audit", "archive", "--ledger", "out/ledger.sqlite"]]


@pytest.mark.parametrize("where", ["first", "last"])
def test_a_huge_line_in_the_manifest_is_refused_fast_in_bounded_memory_by_verify_and_audit(work, where):
    """A manifest given a 50 MB line (valid JSON), first or last: verify and audit refuse it the
    same way, one line and exit 2, in well under 300 MB (audit read it whole, ~4 times its size,
    and listed the deliveries; verify named the line and read on)."""
    manifest = work / "archive" / MANIFEST
    good = manifest.read_bytes()
    with manifest.open("wb") as handle:
        if where == "last":
            handle.write(good)
        handle.write(b'{"path": "')
        for _ in range(50):
            handle.write(b"a" * MiB)
        handle.write(b'"}\n')
        if where == "first":
            handle.write(good)
    number = 1 if where == "first" else len(good.splitlines()) + 1
    for args in BOTH:
        done = cli(args, work)
        assert (done.code, done.err) == (
            2,
            [
                f"reporter: error: archive/manifest.jsonl:{number}: longer than 65,536 bytes, which no line "
                f"reporter writes is (about 1 KiB each): {REFUSED}"
            ],
        ), args
        assert done.rss < RSS_LIMIT_MB, f"{args[0]}: peak RSS {done.rss:.0f} MB"
        assert done.took < 120  # generous: the machine may be busy


def test_a_manifest_of_more_than_a_million_lines_is_refused_by_verify_and_audit(work):
    """The archive's own lines, then a million more: past 1,000,000 lines both refuse it, one
    line and exit 2, before any file is checked or any delivery listed (verify printed two
    million problems and took ~450 MB; audit read it all and listed the deliveries, exit 0)."""
    manifest = work / "archive" / MANIFEST
    with manifest.open("ab") as handle:
        handle.write(b'{"x": 1}\n' * 1_000_000)
    for args in BOTH:
        done = cli(args, work)
        assert (done.code, done.err) == (
            2,
            [
                "reporter: error: archive/manifest.jsonl: more than 1,000,000 lines, past what reporter "
                f"reads: {REFUSED}"
            ],
        ), args
        assert done.rss < RSS_LIMIT_MB, f"{args[0]}: peak RSS {done.rss:.0f} MB"


def test_the_manifest_is_read_within_its_line_and_size_bounds_by_verify_audit_and_reproduce(
    work, monkeypatch, capsys
):
    """Past MAX_MANIFEST_LINES lines or MAX_MANIFEST_BYTES (made small here: the real ones are
    1,000,000 lines and 1 GiB), verify, audit (listing, or writing a message) and reproduce (an
    archived PDF's line) refuse the manifest the same way, one line and exit 2."""
    archive = work / "archive"
    manifest = archive / MANIFEST
    lines = manifest.read_bytes().splitlines(keepends=True)  # the PDF's, then its e-mail's
    manifest.write_bytes(b"".join(lines) + lines[0] * 3)
    ledger = ["--ledger", str(work / "out" / "ledger.sqlite")]
    message = ["--period", "2026-10", "--version", "1", "--recipient", "boss@acme.test"]
    commands = [
        ["verify", str(archive), "--no-ledger"],
        ["audit", str(archive), *ledger],
        ["audit", str(archive), *message, "--write", str(work / "v1.eml")],
        ["reproduce", str(archive / PDF), "--data", str(work), "--output", str(work / "out")],
    ]
    monkeypatch.setattr(archive_module, "MAX_MANIFEST_LINES", 3)
    for args in commands:
        assert main(args) == 2, args
        assert capsys.readouterr().err == (
            f"reporter: error: {archive}/manifest.jsonl: more than 3 lines, past what reporter reads: {REFUSED}\n"
        ), args
    monkeypatch.setattr(archive_module, "MAX_MANIFEST_LINES", 1_000_000)
    monkeypatch.setattr(archive_module, "MAX_MANIFEST_BYTES", 2 * len(lines[0]) + 10)
    for args in commands:
        assert main(args) == 2, args
        assert capsys.readouterr().err == (
            f"reporter: error: {archive}/manifest.jsonl: larger than {2 * len(lines[0]) + 10:,} bytes, "
            f"past what reporter reads: {REFUSED}\n"
        ), args
    monkeypatch.setattr(archive_module, "MAX_MANIFEST_BYTES", 1024 * MiB)
    monkeypatch.setattr(archive_module, "MAX_MANIFEST_LINE", len(lines[0]) - 2)
    for args in commands:
        assert main(args) == 2, args
        assert capsys.readouterr().err == (
            f"reporter: error: {archive}/manifest.jsonl:1: longer than {len(lines[0]) - 2:,} bytes, which "
            f"no line reporter writes is (about 1 KiB each): {REFUSED}\n"
        ), args
    assert not (work / "v1.eml").exists()


def test_bounds_are_the_documented_numbers():
    from reporter.run.reproduce import MAX_EMBEDDED

    bounds = [
        archive_module.MAX_MANIFEST_LINE,
        archive_module.MAX_MANIFEST_LINES,
        archive_module.MAX_MANIFEST_BYTES,
        archive_module.MAX_PDF,
        archive_module.MAX_ATTACHMENT,
        MAX_EMBEDDED,
    ]
    assert bounds == [64 * 1024, 1_000_000, 1024 * MiB, 256 * MiB, 256 * MiB, 16 * MiB]
    text = (ROOT / "docs" / "security.md").read_text()
    for number in ("64 KiB", "1,000,000 lines", "1 GiB", "256 MiB", "16 MiB"):
        assert number in text, number


# --- what is not a regular file is named, never opened ----------------------------------


def fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (
            "repro/2026-10/notes.txt",
            ["archive/repro/2026-10/notes.txt: a FIFO, not a regular file: not opened"],
        ),
        (
            "repro/2026-10/extra.pdf",
            ["archive/repro/2026-10/extra.pdf: a FIFO, not a regular file: not opened"],
        ),
        (".lock", ["archive/.lock: a FIFO, not a regular file: not opened"]),
        (PDF, [f"archive/{PDF}: a FIFO, not a regular file: not opened (listed on manifest line 1)"]),
        (MANIFEST, ["archive/manifest.jsonl: a FIFO, not a regular file: not opened"]),
    ],
)
def test_a_fifo_in_the_archive_is_named_and_never_opened(work, where, expected):
    fifo(work / "archive" / where)
    done = cli(["verify", "archive", "--no-ledger"], work, timeout=300)
    assert (done.code, done.err) == (
        1,
        [*expected, f"{len(expected)} problem(s): the archive is NOT intact."],
    )


def test_sockets_and_symlinks_in_the_archive_are_named(work):
    folder = work / "archive" / "repro"
    (folder / "link.txt").symlink_to("/etc/passwd")
    (folder / "loop").symlink_to(folder)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock"))
    try:
        done = cli(["verify", "archive", "--no-ledger"], work, timeout=300)
    finally:
        server.close()
    assert (done.code, done.err) == (
        1,
        [
            "archive/repro/link.txt: a symlink, not a regular file: not opened",
            "archive/repro/loop: a symlink, not a regular file: not opened",
            "archive/repro/sock: a socket, not a regular file: not opened",
            "3 problem(s): the archive is NOT intact.",
        ],
    )


def test_a_fifo_as_the_archive_lock_fails_the_run_instead_of_hanging(work):
    """`reporter run` takes the archive's lock before appending: a FIFO put there made it wait
    forever; now the archiving fails, with what to do."""
    fifo(work / "archive" / ".lock")
    done = cli(
        [
            "run",
            F,
            "--period",
            "2026-10",
            "--output",
            "out",
            "--force",
            "--reason",
            "again",
            "--allow-dir",
            ".",
        ],
        work,
        timeout=300,
    )
    assert done.code == 1
    assert (
        f"{work}/archive/.lock: cannot lock the archive (a FIFO, not a regular file): remove it, "
        "reporter makes a new one"
    ) in "\n".join(done.err)


# --- a bomb attachment --------------------------------------------------------------------


def bomb(size: int) -> bytes:
    """Zeros, ``size`` bytes of them once inflated, deflated piece by piece (about 1/1000)."""
    packer = zlib.compressobj(9)
    zeros = b"\0" * MiB
    return b"".join(packer.compress(zeros) for _ in range(size // MiB)) + packer.flush()


def with_bomb(pdf: Path, dest: Path, name: str, size: int, declared: int | None) -> Path:
    """``pdf`` with attachment ``name`` replaced by a deflate bomb, declaring ``declared`` bytes."""
    import pikepdf

    with pikepdf.open(pdf) as doc:
        stream = doc.attachments[name].get_file().obj
        stream.write(bomb(size), filter=pikepdf.Name.FlateDecode)
        if declared is None:
            del stream.Params["/Size"]
        else:
            stream.Params.Size = declared
        doc.save(dest)
    return dest


@pytest.mark.parametrize(
    ("declared", "reason"),
    [
        (826, "attachment 'provenance.json' holds more than the 826 bytes it declares"),
        (None, "attachment 'provenance.json' holds more than 16,777,216 bytes once decompressed: not read"),
        (
            512 * MiB,
            "attachment 'provenance.json' declares 536,870,912 bytes, more than the 16,777,216 reporter reads",
        ),
    ],
)
def test_reproduce_refuses_a_bomb_attachment_in_bounded_memory(work, declared, reason):
    """The provenance replaced by 512 MiB of zeros deflated to half a megabyte: reading it took
    more than the bomb's size; now it stops at what the attachment declares, or 16 MiB."""
    pdf = with_bomb(work / "archive" / PDF, work / "bomb.pdf", "provenance.json", 512 * MiB, declared)
    assert pdf.stat().st_size < 2 * MiB
    done = cli(["reproduce", "bomb.pdf", "--data", ".", "--output", "again"], work)
    assert (done.code, done.err) == (
        2,
        [f"reporter: error: bomb.pdf: not a PDF archived by reporter ({reason})"],
    )
    assert done.rss < RSS_LIMIT_MB, f"peak RSS {done.rss:.0f} MB"
    assert not (work / "again").exists()


def test_verify_reads_a_bomb_attachment_in_bounded_memory(work):
    """An archived PDF whose results.json is a 512 MiB bomb, its manifest line rewritten to match
    (no ledger to tell): verify hashes attachments piece by piece and stops at 256 MiB in all
    (the attachments before it, provenance.json and report.yaml, count too)."""
    target = work / "archive" / PDF
    spoilt = with_bomb(target, work / "bomb.pdf", "results.json", 512 * MiB, None)
    target.chmod(0o644)
    shutil.move(spoilt, target)
    data = target.read_bytes()
    manifest = work / "archive" / MANIFEST
    _rewrite_first(manifest, sha256=archive_module.sha256(data), size=len(data))
    done = cli(["verify", "archive", "--no-ledger"], work)
    assert (done.code, done.err) == (
        1,
        [
            f"archive/{PDF}: attachments unreadable: the attachments hold more than 268,435,456 bytes "
            "in all once decompressed: 'results.json' not read",
            "1 problem(s): the archive is NOT intact.",
        ],
    )
    assert done.rss < RSS_LIMIT_MB, f"peak RSS {done.rss:.0f} MB"


def with_many(pdf: Path, dest: Path, count: int, size: int) -> Path:
    """``pdf`` with ``count`` more attachments, each ``size`` bytes of zeros (declared as such),
    deflated to about a thousandth of that."""
    import pikepdf

    packed = bomb(size)
    with pikepdf.open(pdf) as doc:
        for i in range(count):
            name = f"extra{i:02}.csv"
            doc.attachments[name] = pikepdf.AttachedFileSpec(doc, b"x", filename=name)
            stream = doc.attachments[name].get_file().obj
            stream.write(packed, filter=pikepdf.Name.FlateDecode)
            stream.Params = pikepdf.Dictionary(Size=size)
        doc.save(dest)
    return dest


def test_reproduce_reads_only_the_attachments_it_uses(work):
    """20 attachments of 70 MiB each (under any per-stream limit): reading every attachment of
    the PDF took 1.5 GB; reproduce reads only the provenance and the YAML."""
    pdf = with_many(work / "archive" / PDF, work / "many.pdf", 20, 70 * MiB)
    assert pdf.stat().st_size < 4 * MiB
    done = cli(["reproduce", "many.pdf", "--output", "again"], work)
    assert done.rss < RSS_LIMIT_MB, f"peak RSS {done.rss:.0f} MB"
    assert done.code == 2  # no --data
    done = cli(["reproduce", "many.pdf", "--data", ".", "--output", "again"], work)
    assert (done.code, done.err) == (1, [NOTHING_MOVED, "again/reproduced/many.pdf: DIFFERS from many.pdf"])
    assert done.rss < RSS_LIMIT_MB, f"peak RSS {done.rss:.0f} MB"


def test_verify_bounds_all_attachments_of_a_pdf_together(work):
    """The same 20 attachments in an archived PDF (its manifest line rewritten to match): verify
    stops once they hold more than 256 MiB together."""
    target = work / "archive" / PDF
    spoilt = with_many(target, work / "many.pdf", 20, 70 * MiB)
    target.chmod(0o644)
    shutil.move(spoilt, target)
    data = target.read_bytes()
    manifest = work / "archive" / MANIFEST
    _rewrite_first(manifest, sha256=archive_module.sha256(data), size=len(data))
    done = cli(["verify", "archive", "--no-ledger"], work)
    assert (done.code, done.err) == (
        1,
        [
            f"archive/{PDF}: attachments unreadable: the attachments hold more than 268,435,456 bytes "
            "in all once decompressed: 'extra03.csv' not read",
            "1 problem(s): the archive is NOT intact.",
        ],
    )
    assert done.rss < RSS_LIMIT_MB, f"peak RSS {done.rss:.0f} MB"


def test_a_run_neither_opens_nor_follows_a_partial_file_that_is_not_regular(work, tmp_path):
    """A run first finishes or removes what an interrupted archiving left (``.<name>.partial``):
    a FIFO there, for a listed PDF that is missing, made it wait forever; a symlink there had
    its target chmod-ed to 0644 before it was removed. Both are now removed, never opened."""
    outside = tmp_path / "private.txt"
    outside.write_text("mine")
    outside.chmod(0o600)
    folder = work / "archive" / "repro" / "2026-10"
    (folder / ".other.pdf.partial").symlink_to(outside)
    listed = folder / "repro_2026-10_v1.pdf"
    listed.chmod(0o644)
    listed.unlink()
    fifo(folder / ".repro_2026-10_v1.pdf.partial")
    done = cli(
        [
            "run",
            F,
            "--period",
            "2026-10",
            "--output",
            "out",
            "--force",
            "--reason",
            "again",
            "--allow-dir",
            ".",
        ],
        work,
        timeout=300,
    )
    assert "Traceback" not in "\n".join(done.err)
    assert outside.stat().st_mode & 0o777 == 0o600
    assert outside.read_text() == "mine"
    assert not (folder / ".other.pdf.partial").is_symlink()
    assert not (folder / ".repro_2026-10_v1.pdf.partial").exists()


def test_an_attachment_mended_for_pdfa_is_read_through_its_hex_layer():
    """About one stream in 256 ends in CR once compressed; ``no_cr_before_endstream`` puts an
    ASCIIHexDecode layer in front of its FlateDecode, and an attachment so mended (the run's own
    results.json or YAML) must still be read: it was refused, and the run said "delivered but
    NOT archived" about one run in a few dozen."""
    import hashlib
    import io

    import pikepdf

    from reporter.delivery.archive import attachment_digests, attachments_of, no_cr_before_endstream

    base = b'{"report": "r", "period": "2026-10"}'
    pad = 0
    while not zlib.compress(base + b" " * pad).endswith(b"\r"):
        pad += 1
    data = base + b" " * pad  # its compressed form ends with CR
    doc = pikepdf.new()
    doc.add_blank_page()
    doc.attachments["results.json"] = pikepdf.AttachedFileSpec(doc, b"placeholder")
    stream = doc.attachments["results.json"].get_file().obj
    stream.write(zlib.compress(data), filter=pikepdf.Name.FlateDecode)
    stream.Params = pikepdf.Dictionary(Size=len(data))
    out = io.BytesIO()
    doc.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    mended = no_cr_before_endstream(out.getvalue())
    with pikepdf.open(io.BytesIO(mended)) as check:  # the layer is there
        filters = check.attachments["results.json"].get_file().obj.Filter
        assert [str(f) for f in filters] == ["/ASCIIHexDecode", "/FlateDecode"]
    assert attachments_of(mended) == {"results.json": data}
    assert attachment_digests(mended) == {"results.json": hashlib.sha256(data).hexdigest()}
