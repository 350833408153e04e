"""The auditor's archive: PDF/A-3b with evidence inside, a hash-chained manifest that catches
every edit, atomic appends, byte-identical re-renders, `reporter verify`."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import page
import pypdf
import pytest

from reporter.cli import main
from reporter.config import load_config
from reporter.config.model import Email
from reporter.delivery import archive as archive_module
from reporter.delivery.archive import MANIFEST, archive_pdf, attachments_of, verify_archive
from reporter.pipeline import run_report
from tests.conftest import DEMO, ROOT

NOW = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def demo_archive(tmp_path_factory):
    """The demo delivered twice (October, then a forced re-send) into an archive, with its
    ledger (``ledger.sqlite``) beside the archive folder."""
    folder = tmp_path_factory.mktemp("archive")
    config = load_config(DEMO, env={})
    delivery = config.delivery.model_copy(
        update={"archive": config.delivery.archive.model_copy(update={"dir": folder / "archive"})}
    )
    config = config.model_copy(update={"delivery": delivery})
    run_report(config, period="2026-10", now=NOW, output=folder)
    run_report(config, period="2026-10", now=NOW, output=folder, force=True, reason="typo fixed")
    run_report(config, period="2026-09", now=NOW, output=folder)
    return config, folder


def copy_archive(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    for path in dst.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return dst


def test_demo_archive_verifies_and_is_pdfa(demo_archive, capsys):
    _, folder = demo_archive
    archive = folder / "archive"
    assert verify_archive(archive) == []
    assert main(["verify", str(archive)]) == 0
    assert capsys.readouterr().out == (
        f"{archive}: intact — 3 archived file(s), hash chain, attachments and ledger verified\n"
    )
    lines = [json.loads(x) for x in (archive / MANIFEST).read_text().splitlines()]
    assert [(e["period"], e["version"], e["reason"]) for e in lines] == [
        ("2026-10", 1, None),
        ("2026-10", 2, "typo fixed"),
        ("2026-09", 1, None),
    ]
    pdf = (archive / lines[0]["path"]).read_bytes()
    report = page.validate_pdf_bytes(pdf, profile="3b")
    assert report.is_compliant, [(f.rule_id, f.message) for f in report.failures]
    # the evidence inside equals what the run wrote, and the YAML used
    inside = attachments_of(pdf)
    out = folder / "marketing-monthly" / "2026-10"
    assert inside["results.json"] == (out / "results.json").read_bytes()
    assert inside["example.yaml"] == DEMO.read_bytes()
    prov = json.loads(inside["provenance.json"])
    assert (
        prov["sources"][0]["sha256"]
        == __import__("hashlib").sha256((DEMO.parent / "data" / "web_traffic.csv").read_bytes()).hexdigest()
    )
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert reader.metadata.title.startswith("Rapport mensuel marketing & ventes")
    assert reader.metadata.author == "Hexagone Conseil SAS"
    assert reader.metadata.subject == "2026-10"
    assert reader.metadata.get("/Keywords") == "marketing-monthly, 2026-10, Hexagone Conseil SAS"
    assert reader.metadata.creator.startswith("reporter ")
    xmp = reader.xmp_metadata
    assert xmp is not None
    assert xmp.xmp_create_date is not None


@pytest.mark.parametrize("damage", ["flip", "delete", "edit-line", "reorder", "extra"])
def test_tampering_is_detected_with_its_path(demo_archive, tmp_path, damage, capsys):
    archive = copy_archive(demo_archive[1] / "archive", tmp_path / "a")
    manifest = archive / MANIFEST
    lines = manifest.read_text().splitlines()
    first = archive / json.loads(lines[0])["path"]
    if damage == "flip":
        data = bytearray(first.read_bytes())
        data[len(data) // 2] ^= 0x01
        first.write_bytes(bytes(data))
        expected = f"{json.loads(lines[0])['path']}: altered (SHA-256 differs from manifest line 1)"
    elif damage == "delete":
        first.unlink()
        expected = f"{json.loads(lines[0])['path']}: missing (listed on manifest line 1)"
    elif damage == "edit-line":
        entry = json.loads(lines[0])
        entry["reason"] = "nothing to see"
        lines[0] = json.dumps(entry, sort_keys=True, ensure_ascii=False)
        manifest.write_text("\n".join(lines) + "\n")
        expected = (
            f"{MANIFEST}:2: hash chain broken at {json.loads(lines[1])['path']} "
            "(a line before it was edited, removed or reordered)"
        )
    elif damage == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
        manifest.write_text("\n".join(lines) + "\n")
        expected = (
            f"{MANIFEST}:2: hash chain broken at {json.loads(lines[1])['path']} "
            "(a line before it was edited, removed or reordered)"
        )
    else:
        (archive / "marketing-monthly" / "2026-10" / "forged.pdf").write_bytes(b"%PDF-1.7")
        expected = "marketing-monthly/2026-10/forged.pdf: extra (not in the manifest)"
    problems = verify_archive(archive)
    assert expected in problems
    assert main(["verify", str(archive), "--no-ledger"]) == 1
    assert f"{archive}/{expected}" in capsys.readouterr().err


def test_crash_while_archiving_leaves_a_verifiable_archive(demo_archive, tmp_path, monkeypatch):
    archive = copy_archive(demo_archive[1] / "archive", tmp_path / "a")
    pdf = (archive / json.loads((archive / MANIFEST).read_text().splitlines()[0])["path"]).read_bytes()
    before = (archive / MANIFEST).read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full while writing the manifest")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        archive_pdf(archive, "marketing-monthly", "2026-10", pdf, run_id="r", now=NOW)
    monkeypatch.undo()
    assert (archive / MANIFEST).read_bytes() == before  # the old manifest, whole
    assert verify_archive(archive) == []  # only a hidden partial file is left, which verify ignores
    assert main(["verify", str(archive), "--no-ledger"]) == 0
    # the next append removes the partial file, takes the next version and extends the chain
    done = archive_pdf(archive, "marketing-monthly", "2026-10", pdf, run_id="r", now=NOW)
    assert done.version == 3
    assert not list(archive.rglob("*.partial"))
    assert verify_archive(archive) == []


def test_crash_after_the_manifest_commit_is_completed_by_the_next_run(demo_archive, tmp_path, monkeypatch):
    archive = copy_archive(demo_archive[1] / "archive", tmp_path / "a")
    pdf = (archive / json.loads((archive / MANIFEST).read_text().splitlines()[0])["path"]).read_bytes()
    real_rename = os.rename

    def crash(src, dst):
        if str(src).endswith(".partial"):
            raise OSError("power cut before the rename")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="power cut"):
        archive_pdf(archive, "marketing-monthly", "2026-10", pdf, run_id="r", now=NOW)
    monkeypatch.undo()
    assert verify_archive(archive) == [
        "marketing-monthly/2026-10/marketing-monthly_2026-10_v3.pdf: missing (listed on manifest line 4); "
        "archiving was interrupted after the manifest was written: the next run completes it"
    ]
    done = archive_pdf(archive, "marketing-monthly", "2026-10", pdf, run_id="r", now=NOW)
    assert done.version == 4
    assert verify_archive(archive) == []


def test_no_secret_from_the_environment_in_the_pdf(tmp_path):
    secret = "Sup3r-Secret-Pa55"
    text = DEMO.read_text().replace("delivery:\n", "delivery:\n  ledger: sqlite:///${REPORTER_LEDGER}\n", 1)
    config_path = DEMO.parent / ".secret-test.yaml"
    config_path.write_text(text)
    try:
        env = {"REPORTER_LEDGER": str(tmp_path / "l.sqlite"), "SMTP_PASSWORD": secret}
        config = load_config(config_path, env=env)
        delivery = config.delivery.model_copy(
            update={
                "archive": config.delivery.archive.model_copy(update={"dir": tmp_path / "archive"}),
                "email": Email(**{"from": "r@acme.test"}, to=["x@acme.test"]),
            }
        )
        config = config.model_copy(update={"delivery": delivery})
        run_report(config, period="2026-10", now=NOW, output=tmp_path / "out", env=env)
    finally:
        config_path.unlink()
    for path in tmp_path.rglob("*.pdf"):
        data = path.read_bytes()
        assert secret.encode() not in data
        for blob in attachments_of(data).values():
            assert secret.encode() not in blob
        assert str(tmp_path / "l.sqlite").encode() not in b"".join(attachments_of(data).values())


def test_two_processes_render_byte_identical_pdfs(tmp_path):
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1793599200"}  # 2026-11-02 06:00 UTC
    outputs = []
    for n in (1, 2):
        out = tmp_path / f"run{n}"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "reporter",
                "run",
                str(DEMO),
                "--period",
                "2026-10",
                "--no-send",
                "--output",
                str(out),
            ],
            check=True,
            env=env,
            cwd=ROOT,
            capture_output=True,
        )
        outputs.append((out / "marketing-monthly" / "2026-10" / "marketing-monthly_2026-10.pdf").read_bytes())
    assert outputs[0] == outputs[1]
    assert page.validate_pdf_bytes(outputs[0], profile="3b").is_compliant
    assert archive_module.sha256(outputs[0]) == archive_module.sha256(outputs[1])


def test_reproduce_an_archived_pdf(tmp_path, capsys):
    import shutil

    shutil.copytree(DEMO.parent, tmp_path / "config", ignore=shutil.ignore_patterns("*.py"))
    config = load_config(tmp_path / "config" / "example.yaml", env={})
    run_report(config, period="2026-10", now=NOW, output=tmp_path / "out")
    archived = (
        tmp_path / "output" / "archive" / "marketing-monthly" / "2026-10" / "marketing-monthly_2026-10_v1.pdf"
    )
    assert main(["reproduce", str(archived), "--output", str(tmp_path / "again")]) == 0
    assert "byte-identical" in capsys.readouterr().out
    assert (tmp_path / "again" / "reproduced" / archived.name).read_bytes() == archived.read_bytes()
    # the data changed since: said, and the new PDF differs
    nps = tmp_path / "config" / "data" / "nps.csv"
    nps.write_text(nps.read_text().replace(",9\n", ",3\n", 5))
    assert main(["reproduce", str(archived), "--output", str(tmp_path / "again")]) == 1
    err = capsys.readouterr().err
    assert "data changed since the archive: nps" in err
    assert "DIFFERS" in err


def test_a_stream_ending_with_cr_is_made_pdfa_safe(tmp_path):
    """About one render in eight, a compressed stream ends with CR (its Adler-32), which PDF/A
    validators read as part of the EOL before endstream. Build such a PDF on purpose."""
    import zlib

    import pikepdf

    from reporter.delivery.archive import no_cr_before_endstream

    config = load_config(DEMO, env={})
    results = __import__("reporter.pipeline", fromlist=["compute"]).compute(
        config, __import__("reporter.periods", fromlist=["Period"]).Period.parse("2026-10", "month"), NOW
    )
    from reporter.pipeline import render_pdf

    good = render_pdf(config, results)
    with pikepdf.open(io.BytesIO(good)) as doc:
        contents = doc.pages[2].obj.Contents  # one stream, or several (the joined parts' pages)
        if isinstance(contents, pikepdf.Array):
            contents = max(contents, key=lambda stream: len(stream.read_bytes()))
        data = contents.read_bytes()
        pad = 0
        while not zlib.compress(data + b" " * pad).endswith(b"\r"):
            pad += 1
        contents.write(zlib.compress(data + b" " * pad), filter=pikepdf.Name.FlateDecode)
        out = io.BytesIO()
        doc.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    bad = out.getvalue()
    assert b"\r\nendstream" in bad
    fixed = no_cr_before_endstream(bad)
    assert b"\r\nendstream" not in fixed
    report = page.validate_pdf_bytes(fixed, profile="3b")
    assert report.is_compliant, [f.rule_id for f in report.failures]
    text = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(fixed)).pages]
    assert text == [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(good)).pages]
    assert no_cr_before_endstream(good) == good  # untouched when there is nothing to mend
