"""Retention: ``reporter archive purge`` removes archived files older than
``delivery.archive.retention.keep`` and appends a chained line marking each purged (its SHA-256
kept), so ``reporter verify`` still passes, with and without the ledger; a period under legal
hold is never purged."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest

from reporter.cli import main
from reporter.config import load_config
from reporter.delivery.archive import MANIFEST, ArchiveError, Files, archive_pdf, sha256, verify_archive
from reporter.delivery.ledger import Ledger
from reporter.delivery.retention import Purge, purge
from reporter.periods import kept_since
from reporter.run.pipeline import run_report
from tests.conftest import write_csv

HELD = "{archive}: tiny/2018-10/tiny_2018-10_v1.pdf: legal hold on 2018-10: not purged (archived 2018-11-02)"
HELD_EML = (
    "{archive}: tiny/2018-10/messages/tiny_2018-10_v1_ann@acme.test.eml: legal hold on 2018-10: not purged "
    "(archived 2018-11-02)"
)
EML_11 = "tiny/2018-11/messages/tiny_2018-11_v1_ann@acme.test.eml"
DEC_2026 = str(int(dt.datetime(2026, 12, 2, 6, tzinfo=dt.UTC).timestamp()))


def report(folder: Path) -> Path:
    first = dt.date(2018, 9, 1)
    days = [first + dt.timedelta(days=i) for i in range((dt.date(2026, 12, 31) - first).days + 1)]
    write_csv(folder / "orders.csv", ["date", "amount"], [[d.isoformat(), d.day] for d in days])
    path = folder / "tiny.yaml"
    path.write_text(
        textwrap.dedent("""\
            report: {id: tiny, title: Tiny, timezone: UTC}
            sources:
              orders: {type: csv, path: orders.csv, date_column: date}
            metrics:
              revenue: {source: orders, agg: sum, column: amount}
            kpis:
              revenue: {label: Revenue, formula: revenue}
            delivery:
              email: {from: reporting@acme.test, to: [ann@acme.test]}
              archive:
                retention: {keep: 7y}
                legal_hold: [2018-10]
            """),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def archived(tmp_path):
    """Three periods delivered (to the outbox) and archived, each when its month had ended, each
    PDF with the e-mail as sent: 2018-10 and 2018-11 more than 7 years before December 2026, 2026-10
    within them."""
    yaml = report(tmp_path)
    config = load_config(yaml, env={})
    out = tmp_path / "out"
    for period, when in (("2018-10", (2018, 11, 2)), ("2018-11", (2018, 12, 3)), ("2026-10", (2026, 11, 2))):
        run_report(config, period=period, now=dt.datetime(*when, 6, tzinfo=dt.UTC), output=out)
    return yaml, out


def test_purge_removes_old_files_keeps_a_held_period_and_verify_still_passes(archived, capsys, monkeypatch):
    yaml, out = archived
    archive = out / "archive"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", DEC_2026)
    before = (archive / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(before) == 6  # each period's PDF and e-mail

    assert main(["archive", "purge", str(yaml), "--output", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{archive}: would purge tiny/2018-11/tiny_2018-11_v1.pdf (archived 2018-12-03, kept 7y)",
        f"{archive}: would purge {EML_11} (archived 2018-12-03, kept 7y)",
        HELD.format(archive=archive),
        HELD_EML.format(archive=archive),
        f"{archive}: 2 file(s) to purge, 2 held, 2 within the retention (7y)",
    ]
    assert (archive / "tiny" / "2018-11" / "tiny_2018-11_v1.pdf").is_file()

    assert main(["archive", "purge", str(yaml), "--output", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{archive}: purged tiny/2018-11/tiny_2018-11_v1.pdf (archived 2018-12-03, kept 7y)",
        f"{archive}: purged {EML_11} (archived 2018-12-03, kept 7y)",
        HELD.format(archive=archive),
        HELD_EML.format(archive=archive),
        f"{archive}: 2 file(s) purged, 2 held, 2 within the retention (7y); the manifest keeps their "
        "SHA-256, and reporter verify accepts their absence",
    ]
    assert not (archive / EML_11).exists()
    assert not (archive / "tiny" / "2018-11" / "tiny_2018-11_v1.pdf").exists()
    assert (archive / "tiny" / "2018-10" / "tiny_2018-10_v1.pdf").is_file()  # held
    assert (archive / "tiny" / "2026-10" / "tiny_2026-10_v1.pdf").is_file()  # young
    after = (archive / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert after[:6] == before  # nothing rewritten
    mark = json.loads(after[6])
    archived_line = json.loads(before[2])
    assert (mark["purged"], mark["path"], mark["sha256"]) == (
        3,
        archived_line["path"],
        archived_line["sha256"],
    )
    assert mark["reason"] == "retention: kept 7y after 2018-12-03"

    ledger = f"sqlite:///{out / 'ledger.sqlite'}"
    assert main(["verify", str(archive), "--ledger", ledger]) == 0
    assert main(["verify", str(archive), "--no-ledger"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{archive}: intact — 4 archived file(s) (2 report PDFs, 2 e-mails as sent), 2 purged (their "
        "SHA-256 kept in the manifest); hash chain, attachments and ledger verified",
        f"{archive}: intact — 4 archived file(s) (2 report PDFs, 2 e-mails as sent), 2 purged (their "
        "SHA-256 kept in the manifest); hash chain and attachments verified",
    ]
    # of one period: its files only, the purged among them, and the chain's lines (all checked)
    assert main(["verify", str(archive), "--period", "2018-11", "--no-ledger"]) == 0
    assert capsys.readouterr().out == (
        f"{archive}: intact — 0 archived file(s) for 2018-11, 2 purged (their SHA-256 kept in the "
        "manifest); hash chain (all 8 lines) and attachments verified; 4 file(s) of other reports or "
        "periods not checked\n"
    )

    # a second purge has nothing left to do
    assert main(["archive", "purge", str(yaml), "--output", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{archive}: 0 file(s) purged, 2 held, 2 within the retention (7y)"
    )

    # a purge line must name the very file an earlier line archived (a forged one is found)
    forged = dict(mark, sha256="0" * 64)
    (archive / "manifest.jsonl").write_text(
        "".join(x + "\n" for x in after[:6]) + json.dumps(forged, sort_keys=True) + "\n", encoding="utf-8"
    )
    assert main(["verify", str(archive), "--no-ledger"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{archive}/{EML_11}: missing (listed on manifest line 4)",  # its purge line is cut off here
        f"{archive}/manifest.jsonl:7: marks tiny/2018-11/tiny_2018-11_v1.pdf purged, but no earlier line "
        "archived it with that SHA-256 (line 3)",
        "2 problem(s): the archive is NOT intact.",
    ]

    # the purge line is part of the chain: removing it is found, and so is the purged file's absence
    (archive / "manifest.jsonl").write_text("".join(x + "\n" for x in after[:6]), encoding="utf-8")
    assert main(["verify", str(archive), "--no-ledger"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{archive}/tiny/2018-11/tiny_2018-11_v1.pdf: missing (listed on manifest line 3)",
        f"{archive}/{EML_11}: missing (listed on manifest line 4)",
        "2 problem(s): the archive is NOT intact.",
    ]


def test_audit_names_the_purged_files_and_does_not_write_a_purged_message(archived, capsys, monkeypatch):
    """An auditor's 'reporter audit' after a purge: each row whose archived file was purged says
    when (its SHA-256 is still the manifest's), and --write for it says the bytes are gone."""
    yaml, out = archived
    archive = out / "archive"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", DEC_2026)
    assert main(["archive", "purge", str(yaml), "--output", str(out)]) == 0
    capsys.readouterr()
    assert main(["audit", str(archive), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    lines = [json.loads(x) for x in (archive / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["period"], r["file"], r["sha256"], r["purged"]) for r in rows] == [
        (e["period"], e["path"], e["sha256"], "2026-12-02" if e["period"] == "2018-11" else None)
        for e in lines[:6]
        if e.get("kind") == "message"
    ]
    assert main(["audit", str(archive), "--period", "2018-11"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[-3:] == ["file", "SHA-256", "purged"]
    assert table[1].split()[-3:] == [EML_11, lines[3]["sha256"], "2026-12-02"]
    args = ["audit", str(archive), "--period", "2018-11", "--version", "1", "--recipient", "ann@acme.test"]
    assert main([*args, "--write", str(out / "v1.eml")]) == 1
    assert capsys.readouterr().err == (
        f"reporter: error: {EML_11}: purged under retention on 2026-12-02 ('reporter archive purge'): its "
        f"bytes are no longer in the archive; manifest.jsonl line 4 keeps its SHA-256, {lines[3]['sha256']}\n"
    )
    assert not (out / "v1.eml").exists()


def test_purge_of_an_archive_folder_takes_keep_and_hold_from_the_command(archived, capsys, monkeypatch):
    _, out = archived
    archive = out / "archive"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", DEC_2026)
    assert main(["archive", "purge", str(archive)]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: {archive}: give the retention with --keep (e.g. --keep 7y), or name the "
        "report's CONFIG (its delivery.archive.retention)\n"
    )
    assert main(["archive", "purge", str(archive), "--keep", "7 years"]) == 2
    assert capsys.readouterr().err == (
        "reporter: error: --keep: '7 years' is not a retention: a number and y (years) or d (days), e.g. 7y\n"
    )
    assert main(["archive", "purge", str(archive), "--keep", "7y", "--hold", "2018-11"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{archive}: 2 file(s) purged, 2 held, 2 within the retention (7y); the manifest keeps their "
        "SHA-256, and reporter verify accepts their absence"
    )
    assert not (archive / "tiny" / "2018-10" / "tiny_2018-10_v1.pdf").exists()
    assert (archive / "tiny" / "2018-11" / "tiny_2018-11_v1.pdf").is_file()
    assert main(["verify", str(archive)]) == 0  # the ledger beside it recorded the purge line


def test_retention_and_legal_hold_are_validated(tmp_path, capsys):
    yaml = report(tmp_path)
    text = yaml.read_text(encoding="utf-8")
    yaml.write_text(
        text.replace("{keep: 7y}", "{keep: 7 years}").replace("[2018-10]", "[2018-10, 2018-13]"),
        encoding="utf-8",
    )
    assert main(["validate", str(yaml)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{yaml}:11:23: delivery.archive.retention.keep: '7 years' is not a retention: a number and y "
        "(years) or d (days); e.g. 7y, or 400d",
        f"{yaml}:12:27: delivery.archive.legal_hold[1]: '2018-13': month 13 does not exist; name each period "
        "the hold covers: a month, a quarter, an ISO week or a year",
        "2 errors: nothing was run or sent.",
    ]


def test_a_legal_hold_names_a_period_of_any_grain_and_a_bad_one_is_refused(tmp_path, capsys):
    yaml = report(tmp_path)
    yaml.write_text(yaml.read_text(encoding="utf-8").replace("[2018-10]", "[Q1-2018]"), encoding="utf-8")
    assert main(["validate", str(yaml)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{yaml}:12:18: delivery.archive.legal_hold[0]: 'Q1-2018' is not a period label; write it like "
        "2025-03, 2025-Q1, 2025-W12 or 2025; name each period the hold covers: a month, a quarter, an ISO "
        "week or a year",
        "1 error: nothing was run or sent.",
    ]


def _docs_block(heading: str) -> str:
    """The first YAML block after ``heading`` in docs/operating.md, as printed there."""
    text = (Path(__file__).parent.parent / "docs" / "operating.md").read_text(encoding="utf-8")
    after = text[text.index(heading) :]
    start = after.index("```yaml\n") + len("```yaml\n")
    return after[start : after.index("```", start)]


@pytest.mark.parametrize("grain", ["month", "quarter", "week"])
def test_the_documented_retention_example_validates_for_every_grain(tmp_path, capsys, grain):
    block = _docs_block("### Retention and legal hold")
    assert "legal_hold: [2025-03, 2025-Q1]" in block
    yaml = report(tmp_path)
    text = yaml.read_text(encoding="utf-8").replace("timezone: UTC}", f"timezone: UTC, grain: {grain}}}")
    head = text[: text.index("delivery:")]
    email = "  email: {from: reporting@acme.test, to: [ann@acme.test]}\n"
    yaml.write_text(head + block.replace("delivery:\n", "delivery:\n" + email, 1), encoding="utf-8")
    assert main(["validate", str(yaml)]) == 0, capsys.readouterr().err
    config = load_config(yaml, env={})
    assert config.delivery.archive.legal_hold == ["2025-03", "2025-Q1"]


def test_a_quarter_hold_holds_the_months_in_it(archived, capsys, monkeypatch):
    yaml, out = archived
    archive = out / "archive"
    yaml.write_text(yaml.read_text(encoding="utf-8").replace("[2018-10]", "[2018-Q4]"), encoding="utf-8")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", DEC_2026)
    assert main(["archive", "purge", str(yaml), "--output", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{archive}: tiny/2018-10/tiny_2018-10_v1.pdf: legal hold on 2018-Q4 (holds 2018-10): not purged "
        "(archived 2018-11-02)",
        f"{archive}: tiny/2018-10/messages/tiny_2018-10_v1_ann@acme.test.eml: legal hold on 2018-Q4 (holds "
        "2018-10): not purged (archived 2018-11-02)",
        f"{archive}: tiny/2018-11/tiny_2018-11_v1.pdf: legal hold on 2018-Q4 (holds 2018-11): not purged "
        "(archived 2018-12-03)",
        f"{archive}: tiny/2018-11/messages/tiny_2018-11_v1_ann@acme.test.eml: legal hold on 2018-Q4 (holds "
        "2018-11): not purged (archived 2018-12-03)",
        f"{archive}: 0 file(s) purged, 4 held, 2 within the retention (7y)",
    ]
    # a year holds everything in it; a week holds both months it straddles, or the one it lies in
    assert main(["archive", "purge", str(archive), "--keep", "7y", "--hold", "2018", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{archive}: 0 file(s) to purge, 4 held, 2 within the retention (7y)"
    )
    assert main(["archive", "purge", str(archive), "--keep", "7y", "--hold", "2018-W44", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (  # 29 October to 4 November 2018
        f"{archive}: 0 file(s) to purge, 4 held, 2 within the retention (7y)"
    )
    assert main(["archive", "purge", str(archive), "--keep", "7y", "--hold", "2018-W50", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{archive}: 4 file(s) to purge, 0 held, 2 within the retention (7y)"
    )
    assert main(["archive", "purge", str(archive), "--keep", "7y", "--hold", "2018-W40", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{archive}: 2 file(s) to purge, 2 held, 2 within the retention (7y)"
    )
    assert main(["archive", "purge", str(archive), "--keep", "7y", "--hold", "2018-13"]) == 2
    assert capsys.readouterr().err == "reporter: error: --hold 2018-13: '2018-13': month 13 does not exist\n"


def test_purge_of_an_archive_folder_reads_the_clock_given_to_main(archived, capsys, monkeypatch):
    _, out = archived
    archive = out / "archive"
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    in_2034 = dt.datetime(2034, 1, 1, tzinfo=dt.UTC)
    assert main(["archive", "purge", str(archive), "--keep", "7y", "--dry-run"], clock=lambda: in_2034) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{archive}: 6 file(s) to purge, 0 held, 0 within the retention (7y)"
    )


def test_seven_years_are_calendar_years():
    at = dt.datetime(2026, 12, 2, 6, tzinfo=dt.UTC)
    assert kept_since("7y", at) == dt.datetime(2019, 12, 2, 6, tzinfo=dt.UTC)
    assert kept_since("1y", dt.datetime(2028, 2, 29, tzinfo=dt.UTC)) == dt.datetime(
        2027, 2, 28, tzinfo=dt.UTC
    )
    assert kept_since("400d", at) == at - dt.timedelta(days=400)


# --- one appender for every line: a purge line joins the chain as a file line does ------------

OLD, LATER = dt.datetime(2018, 11, 2, 6, tzinfo=dt.UTC), dt.datetime(2026, 12, 2, 6, tzinfo=dt.UTC)
KEY = "archive-key"
FILE_STEPS = ("create_new", "rename")  # a line that archives a file; a purge line has none


def tiny_pdf(text: str) -> bytes:
    """A real PDF (no attachments), distinct by ``text``."""
    import io

    import pikepdf

    doc = pikepdf.new()
    doc.docinfo["/Title"] = text
    out = io.BytesIO()
    doc.save(out, deterministic_id=True)
    return out.getvalue()


class Steps(Files):
    """The archive's file operations as they are, each noted in ``steps``; ``die`` names the one
    where the process dies (before it happens, or ``(step, "after")`` just after it)."""

    def __init__(self, steps: list[str], die: tuple[str, str] | None = None):
        self.steps, self.die = steps, die

    def _do(self, step: str, act) -> None:
        if self.die == (step, "before"):
            raise OSError(f"killed before {step}")
        act()
        self.steps.append(step)
        if self.die == (step, "after"):
            raise OSError(f"killed after {step}")

    def create_new(self, path, data):
        self._do("create_new", lambda: super(Steps, self).create_new(path, data))

    def replace(self, path, data):
        self._do("replace", lambda: super(Steps, self).replace(path, data))

    def rename(self, src, dst):
        self._do("rename", lambda: super(Steps, self).rename(src, dst))

    def remove(self, path):
        self._do("remove", lambda: super(Steps, self).remove(path))


def steps_ledger(url: str, steps: list[str], die: tuple[str, str] | None = None) -> Ledger:
    """The real ledger, its manifest records noted in ``steps`` as Steps notes the files'."""

    class StepsLedger(Ledger):
        def line_intent(self, archive, line, sha, entry):
            if die == ("intent", "before"):
                raise OSError("killed before intent")
            done = super().line_intent(archive, line, sha, entry)
            steps.append("intent")
            if die == ("intent", "after"):
                raise OSError("killed after intent")
            return done

        def line_state(self, archive, line, state):
            if die == ("confirm", "before") and state == "written":
                raise OSError("killed before confirm")
            super().line_state(archive, line, state)
            steps.append("confirm" if state == "written" else state)

    return StepsLedger(url)


def two_archived(folder: Path) -> tuple[Path, str]:
    """An archive with a PDF archived in 2018 (past a 7-year retention) and its ledger."""
    folder.mkdir(exist_ok=True)
    archive, url = folder / "archive", f"sqlite:///{folder / 'ledger.sqlite'}"
    with Ledger(url) as ledger:
        archive_pdf(
            archive, "tiny", "2018-10", tiny_pdf("2018-10"), run_id="1", now=OLD, ledger=ledger, key=KEY
        )
        archive_pdf(
            archive, "tiny", "2018-11", tiny_pdf("2018-11"), run_id="2", now=OLD, ledger=ledger, key=KEY
        )
    return archive, url


def archive_one(archive: Path, url: str, steps: list[str], die=None) -> None:
    with steps_ledger(url, steps, die) as ledger:
        archive_pdf(
            archive,
            "tiny",
            "2026-10",
            tiny_pdf("2026-10"),
            run_id="3",
            now=LATER,
            ledger=ledger,
            key=KEY,
            files=Steps(steps, die),
        )


def purge_old(archive: Path, url: str, steps: list[str], die=None) -> Purge:
    with steps_ledger(url, steps, die) as ledger:
        return purge(
            archive,
            before=dt.datetime(2019, 12, 2, tzinfo=dt.UTC),
            now=LATER,
            keep="7y",
            ledger=ledger,
            key=KEY,
            files=Steps(steps, die),
        )


def test_a_purge_line_and_a_file_line_take_the_same_steps_in_the_same_order(tmp_path):
    """Both kinds of line go through the archive's one appender: a purge writes its lines with
    the steps an archiving takes, in its order, but those of a file (its partial and rename).
    A copy of the appender that drifted (another order, a step skipped, the manifest written
    otherwise) is caught here."""
    archive, url = two_archived(tmp_path)
    filed: list[str] = []
    archive_one(archive, url, filed)
    assert filed == ["create_new", "intent", "replace", "confirm", "rename"]
    purged: list[str] = []
    done = purge_old(archive, url, purged)
    assert [e["version"] for e in done.purged] == [1, 1]  # both 2018 files, in one append
    assert purged == ["intent", "intent", "replace", "confirm", "confirm", "remove", "remove"]
    # the chain's steps, each once per append, are the file line's without its file's steps
    assert list(dict.fromkeys(purged[:5])) == [s for s in filed if s not in FILE_STEPS]
    # every line, file or purge, is chained, HMAC'd with the key and recorded by the ledger alike
    lines = [json.loads(x) for x in (archive / MANIFEST).read_text(encoding="utf-8").splitlines()]
    assert [e.get("purged") for e in lines] == [None, None, None, 1, 2]
    with Ledger(url) as ledger:
        assert verify_archive(archive, ledger=ledger, key=KEY) == []
        records = ledger.manifest_records(
            ledger.chain_of(sha256((archive / MANIFEST).read_text(encoding="utf-8").splitlines()[0].encode()))
        )
        assert [r["state"] for _, r in sorted(records.items())] == ["written"] * 5
        problems = verify_archive(archive, ledger=ledger, key="another key")
    assert problems == [
        f"{MANIFEST}:{n}: HMAC mismatch (not written with this REPORTER_ARCHIVE_KEY)" for n in range(1, 6)
    ]


# Where the process dies during an append, and what verify says before the next append repairs
# it: a file line's interrupted rename is the one thing a purge line (no file) cannot leave.
DEATHS = [
    ("intent", "before"),  # nothing recorded yet
    ("intent", "after"),  # the ledger holds an intent, the manifest is the old one
    ("replace", "before"),
    ("replace", "after"),  # the commit point is passed: the manifest holds the new line(s)
    ("confirm", "before"),  # the ledger's record is still an intent
]
INTERRUPTED = (
    "tiny/2026-10/tiny_2026-10_v1.pdf: missing (listed on manifest line 3); archiving was "
    "interrupted after the manifest was written: the next run completes it"
)


@pytest.mark.parametrize("die", DEATHS, ids=lambda d: f"{d[1]}-{d[0]}")
def test_a_crash_at_each_step_of_an_append_is_verified_and_repaired_alike_for_a_purge_and_a_file(
    tmp_path, die
):
    results = {}
    for kind, append in (("file", archive_one), ("purge", purge_old)):
        archive, url = two_archived(tmp_path / kind)
        before = (archive / MANIFEST).read_bytes()
        with pytest.raises(OSError, match=f"killed {die[1]} {die[0]}"):
            append(archive, url, [], die)
        committed = (archive / MANIFEST).read_bytes() != before
        with Ledger(url) as ledger:
            found = verify_archive(archive, ledger=ledger, key=KEY)
        # the next append (the same one again) finishes or discards the interrupted one
        append(archive, url, [])
        with Ledger(url) as ledger:
            repaired = verify_archive(archive, ledger=ledger, key=KEY)
            first = (archive / MANIFEST).read_text(encoding="utf-8").splitlines()[0]
            states = {
                r["state"] for r in ledger.manifest_records(ledger.chain_of(sha256(first.encode()))).values()
            }
        lines = len((archive / MANIFEST).read_text(encoding="utf-8").splitlines())
        results[kind] = committed, found, repaired, states, lines, list(archive.rglob("*.partial"))
    committed = die in (("replace", "after"), ("confirm", "before"))
    interrupted = [INTERRUPTED] if committed else []  # the file line's rename did not happen
    assert results["file"] == (committed, interrupted, [], {"written"}, 3 + committed, [])
    assert results["purge"] == (committed, [], [], {"written"}, 4, [])
    assert not (tmp_path / "purge" / "archive" / "tiny" / "2018-10" / "tiny_2018-10_v1.pdf").exists()


def test_a_purge_cut_after_its_commit_is_finished_by_the_next_purge_and_verifies_meanwhile(tmp_path):
    """The purge's own last step, deleting the files: cut after the first file."""
    archive, url = two_archived(tmp_path)
    with pytest.raises(OSError, match="killed after remove"):
        purge_old(archive, url, [], ("remove", "after"))
    assert (archive / "tiny" / "2018-11" / "tiny_2018-11_v1.pdf").is_file()
    with Ledger(url) as ledger:
        assert verify_archive(archive, ledger=ledger, key=KEY) == []
    assert purge_old(archive, url, []).purged == []  # nothing new to mark, the file left is deleted
    assert not (archive / "tiny" / "2018-11" / "tiny_2018-11_v1.pdf").exists()
    with Ledger(url) as ledger:
        assert verify_archive(archive, ledger=ledger, key=KEY) == []


def test_a_purge_with_the_wrong_key_or_ledger_is_refused_before_anything_is_written(
    tmp_path, capsys, monkeypatch
):
    """The manifest is append-only: a purge line without the archive's HMAC key, or with another
    key, would fail 'reporter verify' for good; a ledger that never recorded the archive is not
    its ledger. Each is refused with nothing written or removed, and so is a run's archiving."""
    archive, url = two_archived(tmp_path)
    before = (archive / MANIFEST).read_bytes()
    at = {"clock": lambda: LATER}
    monkeypatch.delenv("REPORTER_ARCHIVE_KEY", raising=False)
    assert main(["archive", "purge", str(archive), "--keep", "7y"], **at) == 1
    assert capsys.readouterr().err == (
        f"reporter: error: {archive}/{MANIFEST}: its lines carry an HMAC but REPORTER_ARCHIVE_KEY is not "
        "set, and a line without one would fail 'reporter verify' for good; set REPORTER_ARCHIVE_KEY to the "
        "key the archive was written with; nothing was purged\n"
    )
    monkeypatch.setenv("REPORTER_ARCHIVE_KEY", "another key")
    assert main(["archive", "purge", str(archive), "--keep", "7y"], **at) == 1
    assert capsys.readouterr().err == (
        f"reporter: error: {archive}/{MANIFEST}: REPORTER_ARCHIVE_KEY is not the key its lines were "
        "written with (line 2's HMAC differs), and a line with it would fail 'reporter verify' for good; "
        "set REPORTER_ARCHIVE_KEY to the key the archive was written with; nothing was purged\n"
    )
    with Ledger(url) as ledger, pytest.raises(ArchiveError, match="REPORTER_ARCHIVE_KEY is not set"):
        archive_pdf(archive, "tiny", "2026-10", tiny_pdf("2026-10"), run_id="3", now=LATER, ledger=ledger)
    monkeypatch.setenv("REPORTER_ARCHIVE_KEY", KEY)
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    assert main(["archive", "purge", str(archive), "--keep", "7y", "--ledger", other], **at) == 2
    first = sha256(before.decode().splitlines()[0].encode())
    assert capsys.readouterr().err == (
        f"reporter: error: {archive}: the ledger has no record of this archive's hash chain (its first "
        f"line, SHA-256 {first[:16]}…): it was written with another ledger; nothing was purged: pass the "
        "archive's own ledger with --ledger\n"
    )
    assert (archive / MANIFEST).read_bytes() == before
    assert len(list(archive.rglob("*.pdf"))) == 2
    assert not list(archive.rglob("*.partial"))
    # with its key and its ledger (beside it), the purge goes through and verifies
    assert main(["archive", "purge", str(archive), "--keep", "7y"], **at) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"{archive}: 2 file(s) purged")
    assert main(["verify", str(archive)]) == 0
    assert capsys.readouterr().out == (
        f"{archive}: intact — 0 archived file(s), 2 purged (their SHA-256 kept in the manifest); hash chain, "
        "attachments, ledger and HMAC (REPORTER_ARCHIVE_KEY) verified\n"
    )


def test_a_run_without_the_archive_s_key_is_refused_before_anything_is_sent(tmp_path, capsys, monkeypatch):
    """A run whose archive carries HMACs needs the same key: without it, it would deliver and then
    fail to archive (or write a line that fails verify for good); it is refused first."""
    yaml, out = report(tmp_path), tmp_path / "out"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", DEC_2026)
    monkeypatch.setenv("REPORTER_ARCHIVE_KEY", KEY)
    assert main(["run", str(yaml), "--period", "2026-10", "--output", str(out)]) == 0
    sent = sorted((out / "outbox").rglob("*.eml"))
    manifest = (out / "archive" / MANIFEST).read_bytes()
    capsys.readouterr()
    monkeypatch.delenv("REPORTER_ARCHIVE_KEY")
    assert main(["run", str(yaml), "--period", "2026-11", "--output", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: tiny 2026-11: {out / 'archive' / MANIFEST}: its lines carry an HMAC but "
        "REPORTER_ARCHIVE_KEY is not set, and a line without one would fail 'reporter verify' for good; "
        "set REPORTER_ARCHIVE_KEY to the key the archive was written with; nothing was run or sent\n"
    )
    assert sorted((out / "outbox").rglob("*.eml")) == sent
    assert (out / "archive" / MANIFEST).read_bytes() == manifest
