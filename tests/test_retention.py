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
    """Three periods delivered (to the outbox) and archived, each when its month had ended:
    2018-10 and 2018-11 more than 7 years before December 2026, 2026-10 within them."""
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
    assert len(before) == 3

    assert main(["archive", "purge", str(yaml), "--output", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{archive}: would purge tiny/2018-11/tiny_2018-11_v1.pdf (archived 2018-12-03, kept 7y)",
        HELD.format(archive=archive),
        f"{archive}: 1 file(s) to purge, 1 held, 1 within the retention (7y)",
    ]
    assert (archive / "tiny" / "2018-11" / "tiny_2018-11_v1.pdf").is_file()

    assert main(["archive", "purge", str(yaml), "--output", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{archive}: purged tiny/2018-11/tiny_2018-11_v1.pdf (archived 2018-12-03, kept 7y)",
        HELD.format(archive=archive),
        f"{archive}: 1 file(s) purged, 1 held, 1 within the retention (7y); the manifest keeps their "
        "SHA-256, reporter verify still passes",
    ]
    assert not (archive / "tiny" / "2018-11" / "tiny_2018-11_v1.pdf").exists()
    assert (archive / "tiny" / "2018-10" / "tiny_2018-10_v1.pdf").is_file()  # held
    assert (archive / "tiny" / "2026-10" / "tiny_2026-10_v1.pdf").is_file()  # young
    after = (archive / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert after[:3] == before  # nothing rewritten
    mark = json.loads(after[3])
    archived_line = json.loads(before[1])
    assert (mark["purged"], mark["path"], mark["sha256"]) == (
        2,
        archived_line["path"],
        archived_line["sha256"],
    )
    assert mark["reason"] == "retention: kept 7y after 2018-12-03"

    ledger = f"sqlite:///{out / 'ledger.sqlite'}"
    assert main(["verify", str(archive), "--ledger", ledger]) == 0
    assert main(["verify", str(archive), "--no-ledger"]) == 0
    capsys.readouterr()

    # a second purge has nothing left to do
    assert main(["archive", "purge", str(yaml), "--output", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{archive}: 0 file(s) purged, 1 held, 1 within the retention (7y)"
    )

    # a purge line must name the very file an earlier line archived (a forged one is found)
    forged = dict(mark, sha256="0" * 64)
    (archive / "manifest.jsonl").write_text(
        "".join(x + "\n" for x in after[:3]) + json.dumps(forged, sort_keys=True) + "\n", encoding="utf-8"
    )
    assert main(["verify", str(archive), "--no-ledger"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{archive}/manifest.jsonl:4: marks tiny/2018-11/tiny_2018-11_v1.pdf purged, but no earlier line "
        "archived it with that SHA-256 (line 2)",
        "1 problem(s): the archive is NOT intact.",
    ]

    # the purge line is part of the chain: removing it is found, and so is the purged file's absence
    (archive / "manifest.jsonl").write_text("".join(x + "\n" for x in after[:3]), encoding="utf-8")
    assert main(["verify", str(archive), "--no-ledger"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{archive}/tiny/2018-11/tiny_2018-11_v1.pdf: missing (listed on manifest line 2)",
        "1 problem(s): the archive is NOT intact.",
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
        f"{archive}: 1 file(s) purged, 1 held, 1 within the retention (7y); the manifest keeps their "
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
        "the hold covers, as the archive's folders do",
        "2 errors: nothing was run or sent.",
    ]


def test_seven_years_are_calendar_years():
    at = dt.datetime(2026, 12, 2, 6, tzinfo=dt.UTC)
    assert kept_since("7y", at) == dt.datetime(2019, 12, 2, 6, tzinfo=dt.UTC)
    assert kept_since("1y", dt.datetime(2028, 2, 29, tzinfo=dt.UTC)) == dt.datetime(
        2027, 2, 28, tzinfo=dt.UTC
    )
    assert kept_since("400d", at) == at - dt.timedelta(days=400)
