"""The auditor's archive: PDF/A-3a with evidence inside, a hash-chained manifest that catches
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
from reporter.delivery.archive import MANIFEST, Files, archive_pdf, attachments_of, verify_archive
from reporter.run.pipeline import run_report
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
        f"{archive}: intact — 6 archived file(s) (3 report PDFs, 3 e-mails as sent); hash chain, "
        "attachments and ledger verified\n"
    )
    lines = [json.loads(x) for x in (archive / MANIFEST).read_text().splitlines()]
    assert [e.get("kind", "pdf") for e in lines] == ["pdf", "message"] * 3  # each PDF and its e-mail
    lines = [e for e in lines if e.get("kind") != "message"]
    assert [(e["period"], e["version"], e["reason"]) for e in lines] == [
        ("2026-10", 1, None),
        ("2026-10", 2, "typo fixed"),
        ("2026-09", 1, None),
    ]
    pdf = (archive / lines[0]["path"]).read_bytes()
    report = page.validate_pdf_bytes(pdf, profile="3a")
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


def test_verify_of_one_report_or_period_counts_the_files_it_checked(demo_archive, capsys):
    """--report/--period check the files of that scope only: the count says so, and the chain,
    checked whole, says how many lines it has; a scope the manifest does not list is refused."""
    _, folder = demo_archive
    archive = folder / "archive"
    assert main(["verify", str(archive), "--period", "2026-10"]) == 0
    assert main(["verify", str(archive), "--report", "marketing-monthly", "--period", "2026-09"]) == 0
    assert main(["verify", str(archive), "--report", "marketing-monthly", "--no-ledger"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{archive}: intact — 4 archived file(s) for 2026-10 (2 report PDFs, 2 e-mails as sent); hash chain "
        "(all 6 lines), attachments and ledger verified; 2 file(s) of other reports or periods not checked",
        f"{archive}: intact — 2 archived file(s) for marketing-monthly 2026-09 (1 report PDF, 1 e-mail as "
        "sent); hash chain (all 6 lines), attachments and ledger verified; 4 file(s) of other reports or "
        "periods not checked",
        f"{archive}: intact — 6 archived file(s) for marketing-monthly (3 report PDFs, 3 e-mails as sent); "
        "hash chain (all 6 lines) and attachments verified",
    ]
    assert main(["verify", str(archive), "--report", "marketing-montly", "--period", "2026-10"]) == 2
    assert capsys.readouterr().err == (
        "reporter: error: --report marketing-montly --period 2026-10: the manifest lists no file for it, "
        "so no file was checked; it lists marketing-monthly 2026-09, 2026-10\n"
    )


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


def test_crash_while_archiving_leaves_a_verifiable_archive(demo_archive, tmp_path):
    archive = copy_archive(demo_archive[1] / "archive", tmp_path / "a")
    pdf = (archive / json.loads((archive / MANIFEST).read_text().splitlines()[0])["path"]).read_bytes()
    before = (archive / MANIFEST).read_bytes()

    class FullDisk(Files):  # the manifest cannot be replaced
        def replace(self, path, data):
            raise OSError("disk full while writing the manifest")

    with pytest.raises(OSError, match="disk full"):
        archive_pdf(archive, "marketing-monthly", "2026-10", pdf, run_id="r", now=NOW, files=FullDisk())
    assert (archive / MANIFEST).read_bytes() == before  # the old manifest, whole
    assert verify_archive(archive) == []  # only a hidden partial file is left, which verify ignores
    assert main(["verify", str(archive), "--no-ledger"]) == 0
    # the next append removes the partial file, takes the next version and extends the chain
    done = archive_pdf(archive, "marketing-monthly", "2026-10", pdf, run_id="r", now=NOW)
    assert done.version == 3
    assert not list(archive.rglob("*.partial"))
    assert verify_archive(archive) == []


def test_crash_after_the_manifest_commit_is_completed_by_the_next_run(demo_archive, tmp_path):
    archive = copy_archive(demo_archive[1] / "archive", tmp_path / "a")
    pdf = (archive / json.loads((archive / MANIFEST).read_text().splitlines()[0])["path"]).read_bytes()

    class PowerCut(Files):  # the power goes after the manifest's commit, before the rename
        def rename(self, src, dst):
            if str(src).endswith(".partial"):
                raise OSError("power cut before the rename")
            super().rename(src, dst)

    with pytest.raises(OSError, match="power cut"):
        archive_pdf(archive, "marketing-monthly", "2026-10", pdf, run_id="r", now=NOW, files=PowerCut())
    assert verify_archive(archive) == [  # line 7: after 3 PDFs and their 3 e-mails
        "marketing-monthly/2026-10/marketing-monthly_2026-10_v3.pdf: missing (listed on manifest line 7); "
        "archiving was interrupted after the manifest was written: the next run completes it"
    ]
    done = archive_pdf(archive, "marketing-monthly", "2026-10", pdf, run_id="r", now=NOW)
    assert done.version == 4
    assert verify_archive(archive) == []


def test_no_secret_from_the_environment_in_the_pdf(tmp_path):
    secret = "Sup3r-Secret-Pa55"
    text = DEMO.read_text().replace("delivery:\n", "delivery:\n  ledger: ledger\n", 1)
    config_path = DEMO.parent / ".secret-test.yaml"
    config_path.write_text(text)
    try:
        env = {"REPORTER_CONNECTION_LEDGER": f"sqlite:///{tmp_path / 'l.sqlite'}", "SMTP_PASSWORD": secret}
        config = load_config(config_path, env=env)
        delivery = config.delivery.model_copy(
            update={
                "archive": config.delivery.archive.model_copy(update={"dir": tmp_path / "out" / "archive"}),
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
    assert page.validate_pdf_bytes(outputs[0], profile="3a").is_compliant
    assert archive_module.sha256(outputs[0]) == archive_module.sha256(outputs[1])


def test_reproduce_an_archived_pdf(tmp_path, capsys):
    import shutil

    shutil.copytree(DEMO.parent, tmp_path / "config", ignore=shutil.ignore_patterns("*.py"))
    config = load_config(tmp_path / "config" / "example.yaml", env={})
    run_report(config, period="2026-10", now=NOW, output=tmp_path / "out")
    archived = (
        tmp_path / "out" / "archive" / "marketing-monthly" / "2026-10" / "marketing-monthly_2026-10_v1.pdf"
    )
    data = str(tmp_path / "config")
    again = ["reproduce", str(archived), "--output", str(tmp_path / "again"), "--data", data]
    assert main(again) == 0
    assert "byte-identical" in capsys.readouterr().out
    assert (tmp_path / "again" / "reproduced" / archived.name).read_bytes() == archived.read_bytes()
    # the data changed since: said, and the new PDF differs
    nps = tmp_path / "config" / "data" / "nps.csv"
    nps.write_text(nps.read_text().replace(",9\n", ",3\n", 5))
    assert main(again) == 1
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
    results = __import__("reporter.compute.database", fromlist=["compute"]).compute(
        config, __import__("reporter.periods", fromlist=["Period"]).Period.parse("2026-10", "month"), NOW
    )
    from reporter.run.stages import render_pdf

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
    report = page.validate_pdf_bytes(fixed, profile="3a")
    assert report.is_compliant, [f.rule_id for f in report.failures]
    text = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(fixed)).pages]
    assert text == [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(good)).pages]
    assert no_cr_before_endstream(good) == good  # untouched when there is nothing to mend


# --- a careful rewrite (hash chain recomputed) is still caught --------------------------------

KEY = "k3y-for-tests"


@pytest.fixture(scope="module")
def three_pdfs(tmp_path_factory):
    """Three different PDF/As of a small report: 2026-10 twice (two runs), 2026-09 once."""
    from reporter.compute.database import compute
    from reporter.periods import Period
    from reporter.run.stages import render_pdf
    from tests.conftest import write_csv

    folder = tmp_path_factory.mktemp("pdfs")
    days = [dt.date(2025, 9, 1) + dt.timedelta(days=i) for i in range(426)]
    write_csv(folder / "orders.csv", ["date", "amount"], [[d.isoformat(), d.day] for d in days])
    (folder / "tiny.yaml").write_text(
        "report: {id: tiny, title: Tiny}\n"
        "sources: {orders: {type: csv, path: orders.csv, date_column: date}}\n"
        "metrics: {revenue: {source: orders, agg: sum, column: amount}}\n"
        "kpis: {revenue: {label: Revenue, formula: revenue}}\n"
    )
    config = load_config(folder / "tiny.yaml", env={})
    out = {}
    for name, label, now in [
        ("a", "2026-10", NOW),
        ("b", "2026-10", NOW + dt.timedelta(days=1)),
        ("c", "2026-09", NOW),
    ]:
        results = compute(config, Period.parse(label, "month"), now)
        out[name] = render_pdf(config, results, run_id=name)
    assert len(set(out.values())) == 3
    return out


def build(tmp_path, pdfs, key=None):
    """An archive of three lines (2026-10 v1, 2026-10 v2, 2026-09 v1) and the ledger that saw
    them written, beside it."""
    from reporter.delivery.ledger import Ledger, default_url

    archive = tmp_path / "archive"
    tmp_path.mkdir(exist_ok=True)
    with Ledger(default_url(tmp_path)) as ledger:
        for name, period in [("a", "2026-10"), ("b", "2026-10"), ("c", "2026-09")]:
            archive_pdf(archive, "tiny", period, pdfs[name], run_id=name, now=NOW, ledger=ledger, key=key)
    return archive


def entries(archive):
    return [json.loads(x) for x in (archive / MANIFEST).read_text().splitlines()]


def rewrite(archive, lines, key=None):
    """What a careful forger does: every line's ``prev`` (and HMAC, with a key) recomputed."""
    from reporter.delivery.archive import GENESIS, line_hmac, sha256

    prev, text = GENESIS, ""
    for entry in lines:
        entry = {k: v for k, v in entry.items() if k != "hmac"}
        entry["prev"] = prev
        if key:
            entry["hmac"] = line_hmac(key, entry)
        line = json.dumps(entry, ensure_ascii=False, sort_keys=True)
        prev = sha256(line.encode())
        text += line + "\n"
    (archive / MANIFEST).write_text(text)


def describe(entry, pdf):
    from reporter.delivery.archive import sha256

    inside = {n: sha256(b) for n, b in sorted(attachments_of(pdf).items())}
    return {**entry, "sha256": sha256(pdf), "size": len(pdf), "attachments": inside}


def put(path, data):
    path.chmod(0o644)
    path.write_bytes(data)


def check(archive, tmp_path, expected, capsys, *, key=None, ledger=True):
    """``expected`` is among the problems, from the API and from `reporter verify`."""
    from reporter.delivery.ledger import Ledger, default_url

    with Ledger(default_url(tmp_path)) as led:
        problems = verify_archive(archive, ledger=led if ledger else None, key=key)
    assert expected in problems, problems
    capsys.readouterr()
    args = ["verify", str(archive)] + ([] if ledger else ["--no-ledger"])
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"{archive}/{expected}\n" in err
    assert "Traceback" not in err
    assert err.endswith("problem(s): the archive is NOT intact.\n")
    return problems


def test_a_fresh_archive_verifies_with_ledger_and_key(three_pdfs, tmp_path, capsys, monkeypatch):
    archive = build(tmp_path, three_pdfs, key=KEY)
    monkeypatch.setenv("REPORTER_ARCHIVE_KEY", KEY)
    assert main(["verify", str(archive)]) == 0
    assert capsys.readouterr().out == (
        f"{archive}: intact — 3 archived file(s) (3 report PDFs); hash chain, attachments, ledger "
        "and HMAC (REPORTER_ARCHIVE_KEY) verified\n"
    )


def test_v2_replaced_by_v1_with_the_chain_recomputed(three_pdfs, tmp_path, capsys):
    archive = build(tmp_path, three_pdfs)
    lines = entries(archive)
    put(archive / lines[1]["path"], three_pdfs["a"])
    lines[1] = describe(lines[1], three_pdfs["a"])
    rewrite(archive, lines)
    assert verify_archive(archive) == []  # the chain alone is fooled
    problems = check(
        archive,
        tmp_path,
        "manifest.jsonl:2: differs from the line the ledger recorded when it was written (changed)",
        capsys,
    )
    assert (
        "manifest.jsonl:3: differs from the line the ledger recorded when it was written (changed)"
        in problems
    )


def test_a_period_replaced_by_another_periods_pdf(three_pdfs, tmp_path, capsys):
    archive = build(tmp_path, three_pdfs)
    lines = entries(archive)
    put(archive / lines[2]["path"], three_pdfs["b"])
    lines[2] = describe(lines[2], three_pdfs["b"])
    rewrite(archive, lines)
    expected = (
        "tiny/2026-09/tiny_2026-09_v1.pdf: the PDF's embedded results.json is for tiny 2026-10, "
        "manifest line 3 says tiny 2026-09"
    )
    check(archive, tmp_path, expected, capsys, ledger=False)  # caught even without the ledger
    check(
        archive,
        tmp_path,
        "manifest.jsonl:3: differs from the line the ledger recorded when it was written (changed)",
        capsys,
    )


def test_the_last_entry_dropped(three_pdfs, tmp_path, capsys):
    archive = build(tmp_path, three_pdfs)
    lines = entries(archive)
    (archive / lines[2]["path"]).unlink()
    rewrite(archive, lines[:2])
    assert verify_archive(archive) == []
    expected = (
        "manifest.jsonl:3: missing: the ledger recorded tiny/2026-09/tiny_2026-09_v1.pdf on this line "
        "(the manifest was truncated)"
    )
    assert check(archive, tmp_path, expected, capsys) == [expected]


def test_everything_emptied(three_pdfs, tmp_path, capsys):
    archive = build(tmp_path, three_pdfs)
    for entry in entries(archive):
        (archive / entry["path"]).unlink()
    (archive / MANIFEST).write_text("")
    assert verify_archive(archive) == []
    problems = check(archive, tmp_path, "manifest.jsonl: empty, but the ledger recorded 3 line(s)", capsys)
    assert len(problems) == 4  # and each of the three lines, missing


def test_the_manifest_deleted(three_pdfs, tmp_path, capsys):
    archive = build(tmp_path, three_pdfs)
    (archive / MANIFEST).unlink()
    assert check(archive, tmp_path, "manifest.jsonl: missing (the ledger recorded 3 line(s))", capsys) == [
        "manifest.jsonl: missing (the ledger recorded 3 line(s))"
    ]


def test_a_duplicated_entry(three_pdfs, tmp_path, capsys):
    archive = build(tmp_path, three_pdfs)
    lines = entries(archive)
    rewrite(archive, [*lines, dict(lines[0])])
    expected = "manifest.jsonl:4: duplicate entry for tiny/2026-10/tiny_2026-10_v1.pdf (also on line 1)"
    check(archive, tmp_path, expected, capsys, ledger=False)
    problems = check(archive, tmp_path, expected, capsys)
    assert "manifest.jsonl:4: not recorded in the ledger (added after archiving)" in problems


def test_an_added_entry_with_its_file(three_pdfs, tmp_path, capsys):
    archive = build(tmp_path, three_pdfs)
    lines = entries(archive)
    forged = archive / "tiny" / "2026-10" / "tiny_2026-10_v3.pdf"
    forged.write_bytes(three_pdfs["b"])
    lines.append(
        describe({**lines[1], "version": 3, "path": "tiny/2026-10/tiny_2026-10_v3.pdf"}, three_pdfs["b"])
    )
    rewrite(archive, lines)
    assert verify_archive(archive) == []
    assert check(
        archive, tmp_path, "manifest.jsonl:4: not recorded in the ledger (added after archiving)", capsys
    ) == ["manifest.jsonl:4: not recorded in the ledger (added after archiving)"]


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink-file", "symlink-folder", "elsewhere"])
def test_paths_that_leave_the_archive_are_refused(three_pdfs, tmp_path, capsys, how):
    archive = build(tmp_path, three_pdfs)
    lines = entries(archive)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = archive / lines[1]["path"]
    if how == "absolute":
        lines[1]["path"] = str(target)
        expected = f"manifest.jsonl:2: {target}: absolute path, refused"
    elif how == "dotdot":
        (outside / "v2.pdf").write_bytes(target.read_bytes())
        lines[1]["path"] = "tiny/../../outside/v2.pdf"
        expected = "manifest.jsonl:2: tiny/../../outside/v2.pdf: path leaves the archive ('..'), refused"
    elif how == "symlink-file":
        (outside / "v2.pdf").write_bytes(target.read_bytes())
        target.unlink()
        target.symlink_to(outside / "v2.pdf")
        expected = f"manifest.jsonl:2: {lines[1]['path']}: a symlink, refused"
    elif how == "symlink-folder":
        import shutil

        folder = archive / "tiny" / "2026-09"
        shutil.copytree(folder, outside / "2026-09")
        shutil.rmtree(folder)
        folder.symlink_to(outside / "2026-09")
        expected = f"manifest.jsonl:3: {lines[2]['path']}: a symlink, refused"
    else:  # a file placed where another version belongs
        lines[1]["path"] = "tiny/2026-09/tiny_2026-09_v1.pdf"
        put(archive / lines[1]["path"], three_pdfs["b"])
        lines[2] = describe(lines[2], three_pdfs["b"])
        lines[2]["path"] = "tiny/2026-10/tiny_2026-10_v2.pdf"
        put(target, three_pdfs["c"])
        lines[2] = describe(lines[2], three_pdfs["c"])
        lines[1] = describe(lines[1], three_pdfs["b"])
        expected = (
            "manifest.jsonl:2: tiny/2026-09/tiny_2026-09_v1.pdf: not where its report, period and version "
            "belong (tiny/2026-10/tiny_2026-10_v2.pdf)"
        )
    rewrite(archive, lines)
    check(archive, tmp_path, expected, capsys, ledger=False)


def test_hmac_mismatch_with_the_key_set(three_pdfs, tmp_path, capsys, monkeypatch):
    archive = build(tmp_path, three_pdfs, key=KEY)
    lines = entries(archive)
    lines[0]["reason"] = "nothing to see"
    rewrite(archive, lines, key="the forger's guess")
    monkeypatch.setenv("REPORTER_ARCHIVE_KEY", KEY)
    problems = check(
        archive,
        tmp_path,
        "manifest.jsonl:1: HMAC mismatch (not written with this REPORTER_ARCHIVE_KEY)",
        capsys,
        key=KEY,
        ledger=False,
    )
    assert len(problems) == 3  # every line, since each one's prev changed
    # lines rewritten without any HMAC
    rewrite(archive, lines)
    check(
        archive,
        tmp_path,
        "manifest.jsonl:2: no HMAC (REPORTER_ARCHIVE_KEY is set: every line must carry one)",
        capsys,
        key=KEY,
        ledger=False,
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"[]", "not a valid manifest line (a JSON array, not an object)"),
        (b"42", "not a valid manifest line (a number, not an object)"),
        (b'"text"', "not a valid manifest line (a string, not an object)"),
        (b"null", "not a valid manifest line (null, not an object)"),
        (b"\xff\xfe{}", "not UTF-8 text"),
        (b"{not json", "not a valid manifest line (not JSON)"),
        (
            b'{"path": 1}',
            "not a valid manifest line "
            "(missing or wrong: path, sha256, size, report, period, version, prev, attachments)",
        ),
        (
            b'{"path": "x", "sha256": "0", "size": true, "report": "tiny", "period": "2026-10", '
            b'"version": 1, "prev": "0", "attachments": {}}',
            "not a valid manifest line (missing or wrong: size)",
        ),
    ],
)
def test_malformed_manifest_lines_are_reported_without_a_traceback(
    three_pdfs, tmp_path, capsys, line, expected
):
    archive = build(tmp_path, three_pdfs)
    manifest = archive / MANIFEST
    manifest.write_bytes(manifest.read_bytes() + line + b"\n")
    check(archive, tmp_path, f"manifest.jsonl:4: {expected}", capsys, ledger=False)
    check(archive, tmp_path, "manifest.jsonl:4: not recorded in the ledger (added after archiving)", capsys)


def test_verify_finds_its_ledger_or_says_how(three_pdfs, tmp_path, capsys):
    from reporter.delivery.ledger import Ledger

    archive = build(tmp_path / "one", three_pdfs)
    moved = tmp_path / "moved"
    import shutil

    shutil.copytree(archive, moved)
    cwd_output = Path("output").resolve()  # the second place looked in (the tests run from the repo)
    assert not (cwd_output / "ledger.sqlite").exists()
    assert main(["verify", str(moved)]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: no ledger beside {moved} ({tmp_path / 'ledger.sqlite'}) nor in "
        f"{cwd_output / 'ledger.sqlite'}: pass --ledger (the report's delivery.ledger, or the "
        "ledger.sqlite of the run's output folder), or --no-ledger to check the hash chain and files only\n"
    )
    # a path or a URL
    assert main(["verify", str(archive), "--ledger", str(tmp_path / "one" / "ledger.sqlite")]) == 0
    capsys.readouterr()
    assert main(["verify", str(archive), "--ledger", str(tmp_path / "nowhere.sqlite")]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: --ledger {tmp_path / 'nowhere.sqlite'}: no such file "
        "(or give a URL, e.g. sqlite:////path/ledger.sqlite)\n"
    )
    assert main(["verify", str(archive), "--ledger", "not a url://"]) == 2
    assert capsys.readouterr().err == (
        "reporter: error: --ledger not a url://: not a database URL (e.g. sqlite:////path/ledger.sqlite)\n"
    )
    url = f"sqlite:///{tmp_path / 'one' / 'ledger.sqlite'}"
    assert main(["verify", str(moved), "--ledger", url]) == 0  # a copy: the same chain to its ledger
    capsys.readouterr()
    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    Ledger(fresh).close()
    assert main(["verify", str(moved), "--ledger", fresh]) == 1
    first = archive_module.sha256((moved / MANIFEST).read_text().splitlines()[0].encode())
    assert capsys.readouterr().err.startswith(
        f"{moved}/manifest.jsonl: the ledger has no record of this archive (its first line, SHA-256 "
        f"{first[:16]}…): wrong ledger, or the archive was written without it\n"
    )
    assert main(["verify", str(archive), "--ledger", url]) == 0
    assert main(["verify", str(moved), "--no-ledger"]) == 0
    assert capsys.readouterr().out.endswith(
        f"{moved}: intact — 3 archived file(s) (3 report PDFs); hash chain and attachments verified\n"
    )
    with Ledger(url):
        pass


def test_a_truncated_manifest_refuses_new_lines(three_pdfs, tmp_path):
    """The ledger remembers line 3: appending after a truncation would hide it."""
    from reporter.delivery.archive import ArchiveError
    from reporter.delivery.ledger import Ledger, default_url

    archive = build(tmp_path, three_pdfs)
    lines = entries(archive)
    (archive / lines[2]["path"]).unlink()
    rewrite(archive, lines[:2])
    with Ledger(default_url(tmp_path)) as ledger, pytest.raises(ArchiveError) as caught:
        archive_pdf(archive, "tiny", "2026-09", three_pdfs["c"], run_id="x", now=NOW, ledger=ledger)
    assert str(caught.value) == (
        f"{archive / MANIFEST}: the ledger has already recorded line 3, but the manifest has 2 line(s): "
        f"it was truncated or replaced; run 'reporter verify {archive}'"
    )
    assert not list(archive.rglob("*.partial"))
