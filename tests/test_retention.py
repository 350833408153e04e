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
        "SHA-256, reporter verify still passes",
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
        "SHA-256, reporter verify still passes"
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
