"""A run's output folder holds one run's files, whole: a run (and a preview) puts its files in
place only once every one is built, so a failed run leaves the earlier run's files untouched and
a first run that fails leaves none. Periods that cannot be reported are usage errors (exit 2)
before anything is written."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import textwrap
from pathlib import Path

import pytest

from reporter.cli import main
from reporter.delivery.ledger import Ledger, default_url
from tests.conftest import write_csv

# 2026-11-26 09:00 UTC: October 2026 is the last complete month, November is in progress.
EPOCH = str(int(dt.datetime(2026, 11, 26, 9, tzinfo=dt.UTC).timestamp()))
SUBJECT = '"{{ report.title }} — {{ period.label }}"'


def broken_template(folder: Path) -> str:
    """A copy of the built-in template whose e-mail text names an unknown field: validation does
    not render a template folder's files, so the run fails after the PDF is rendered."""
    import shutil

    from reporter.assets import TEMPLATES

    shutil.copytree(TEMPLATES / "executive", folder / "tpl", dirs_exist_ok=True)
    (folder / "tpl" / "email.txt").write_text("{{ report.titel }}\n", encoding="utf-8")
    return "tpl"


def report(
    folder: Path, *, subject: str = SUBJECT, title: str = "Shop", extra: str = "", template: str = ""
) -> Path:
    """A small report over two CSVs (orders daily from 2025-10-01 to 2026-10-31, staff weekly
    from 2026-03-02), e-mailed with the PDF and the workbook, with a Slack card."""
    days = [dt.date(2025, 10, 1) + dt.timedelta(days=i) for i in range(396)]
    write_csv(folder / "orders.csv", ["date", "amount"], [[d.isoformat(), d.day * 10] for d in days])
    mondays = [dt.date(2026, 3, 2) + dt.timedelta(weeks=i) for i in range(35)]
    write_csv(folder / "staff.csv", ["week", "hours"], [[d.isoformat(), 40] for d in mondays])
    path = folder / "shop.yaml"
    tpl = f", template: {template}" if template else ""
    path.write_text(
        textwrap.dedent(f"""\
            report: {{id: shop, title: {title}, timezone: Europe/Paris{tpl}}}
            sources:
              orders: {{type: csv, path: orders.csv, date_column: date}}
              staff: {{type: csv, path: staff.csv, date_column: week, frequency: weekly}}
            metrics:
              revenue: {{source: orders, agg: sum, column: amount}}
              hours: {{source: staff, agg: sum, column: hours}}
            kpis:
              revenue: {{label: Revenue, formula: revenue, direction: up}}
              hours: {{label: Hours, formula: hours, direction: neutral}}
            delivery:
              alerts_to: [ops@shop.test]
              email:
                from: reporting@shop.test
                to: [boss@shop.test, cfo@shop.test]
                subject: {subject}
                attach: [pdf, xlsx]
              chat:
                - {{kind: slack, webhook_env: SLACK_URL}}
            """)
        + textwrap.dedent(extra)
    )
    return path


def subject(eml: bytes) -> str:
    return str(email.message_from_bytes(eml, policy=email.policy.default)["Subject"])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (temporary ones too), by its path inside it."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def good_run(tmp_path: Path) -> tuple[Path, list[str], Path, dict[str, bytes]]:
    """The report, its `run --no-send` command, its output folder and the files a good run left."""
    config = report(tmp_path)
    run = ["run", str(config), "--period", "2026-10", "--no-send", "--output", str(tmp_path / "out")]
    assert main(run) == 0
    folder = tmp_path / "out" / "shop" / "2026-10"
    return config, run, folder, snapshot(folder)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    monkeypatch.delenv("SLACK_URL", raising=False)


def test_a_run_failing_at_the_subject_leaves_the_earlier_run_s_files_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, run, folder, first = good_run(tmp_path)
    assert sorted(first) == [
        "chat-slack.json",
        "email.eml",
        "results.json",
        "shop_2026-10.pdf",
        "shop_2026-10.xlsx",
    ]
    assert subject(first["email.eml"]) == "Shop — October 2026"
    capsys.readouterr()
    # a typo in the subject: validation stops the run before anything is built or written
    report(tmp_path, title="Shop NEW", subject='"{{ report.titel }}"')
    assert main(run) == 2
    assert "delivery.email.subject: unknown name 'report.titel'" in capsys.readouterr().err
    assert snapshot(folder) == first
    # a new title and an e-mail template that cannot render: the run fails after the PDF
    report(tmp_path, title="Shop NEW", template=broken_template(tmp_path))
    assert main(run) == 1
    err = capsys.readouterr().err
    assert err.startswith("reporter: FAILED: ")
    assert "titel" in err
    assert snapshot(folder) == first  # nothing replaced, nothing left beside them
    # a first run that fails leaves no file at all
    fresh = tmp_path / "fresh"
    assert main(["run", str(config), "--period", "2026-10", "--no-send", "--output", str(fresh)]) == 1
    assert snapshot(fresh) == {}
    # the same through the ledger: nothing sent, recorded or archived, no file
    sent = tmp_path / "sent"
    assert main(["run", str(config), "--period", "2026-10", "--output", str(sent)]) == 1
    assert snapshot(sent / "shop") == {}
    assert sorted(snapshot(sent / "outbox")) == ["shop/2026-10/alerts/ops@shop.test.eml"]  # the alert only
    assert not (sent / "archive").exists()
    assert not (sent / ".unarchived").exists()
    with Ledger(default_url(sent)) as ledger:
        assert [r["outcome"] for r in ledger.runs_of("shop")] == ["failed"]
        assert ledger.all("shop") == []


def test_a_good_run_replaces_every_file_and_drops_those_it_no_longer_makes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, run, folder, first = good_run(tmp_path)
    capsys.readouterr()
    # no workbook, no chat any more, a new title: the next good run leaves only its own files
    text = config.read_text().replace("attach: [pdf, xlsx]", "attach: [pdf]")
    text = text.replace("title: Shop", "title: Shop2")
    config.write_text(text[: text.index("  chat:")])
    assert main(run) == 0
    second = snapshot(folder)
    assert sorted(second) == ["email.eml", "results.json", "shop_2026-10.pdf"]
    assert subject(second["email.eml"]) == "Shop2 — October 2026"
    assert second["shop_2026-10.pdf"] != first["shop_2026-10.pdf"]
    assert capsys.readouterr().out == (
        f"shop 2026-10: done — {folder}/results.json, {folder}/shop_2026-10.pdf, {folder}/email.eml\n"
        "  nothing sent (--no-send)\n"
    )


def test_a_gate_failure_after_a_good_run_keeps_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, run, folder, first = good_run(tmp_path)
    capsys.readouterr()
    days = [dt.date(2025, 10, 1) + dt.timedelta(days=i) for i in range(380)]  # up to 2026-10-15
    write_csv(tmp_path / "orders.csv", ["date", "amount"], [[d.isoformat(), 1] for d in days])
    assert main(run) == 1
    assert capsys.readouterr().err == (
        "reporter: FAILED: shop 2026-10: quality gate failed, nothing sent:\n"
        "  - source 'orders' has data up to 2026-10-15; the period ends 2026-10-31\n"
        f"  results.json not written: {folder} keeps the files of the run before\n"
        f"  the latest complete month in the data is 2026-09: `reporter run {config} --period 2026-09`\n"
        "  to run on incomplete data: `quality.require_complete_period: false`\n"  # daily data: no frequency
    )
    assert snapshot(folder) == first


def test_the_gate_hint_suggests_no_frequency_already_declared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = report(tmp_path)
    out = tmp_path / "out"
    mondays = [dt.date(2026, 3, 2) + dt.timedelta(weeks=i) for i in range(31)]  # up to 2026-09-28
    write_csv(tmp_path / "staff.csv", ["week", "hours"], [[d.isoformat(), 40] for d in mondays])
    run = ["run", str(config), "--period", "2026-10", "--no-send", "--output", str(out)]
    assert main(run) == 1
    folder = out / "shop" / "2026-10"
    hint = (
        "  - source 'staff' has data up to 2026-09-28; the period ends 2026-10-31 "
        "(weekly data: needs 2026-10-26)\n"
        "  - source 'staff' has 0 row(s) in 2026-10; at least 1 required\n"
        f"  results in {folder}/results.json\n"
        f"  the latest complete month in the data is 2026-09: `reporter run {config} --period 2026-09`\n"
    )
    assert capsys.readouterr().err == (  # its rows are a week apart, as declared: no frequency to suggest
        "reporter: FAILED: shop 2026-10: quality gate failed, nothing sent:\n"
        + hint
        + "  to run on incomplete data: `quality.require_complete_period: false`\n"
    )
    assert sorted(snapshot(folder)) == ["results.json"]  # a first gate failure: to see why
    # a monthly source: no sparser frequency to suggest
    config.write_text(config.read_text().replace("frequency: weekly", "frequency: monthly"))
    assert main(run) == 1
    err = capsys.readouterr().err
    assert "frequency" not in err.replace("(monthly data: needs 2026-10-01)", "")
    assert err.endswith(
        f"  results in {folder}/results.json\n"
        f"  the latest complete month in the data is 2026-09: `reporter run {config} --period 2026-09`\n"
        "  to run on incomplete data: `quality.require_complete_period: false`\n"
    )


DECEMBER = str(int(dt.datetime(2026, 12, 5, 9, tzinfo=dt.UTC).timestamp()))  # November has ended


def test_a_period_after_the_data_says_there_is_no_data_and_names_the_period_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No source has a row in November: relaxing the gate would send a blank report, so the
    hint is the day the data ends and the period to run instead."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", DECEMBER)
    config = report(tmp_path)
    out = tmp_path / "out"
    run = ["run", str(config), "--period", "2026-11", "--no-send", "--output", str(out)]
    assert main(run) == 1
    hint = (
        f"  results in {out}/shop/2026-11/results.json\n"
        "  no source has data in 2026-11: the data ends on 2026-10-31\n"
        f"  the latest complete month in the data is 2026-10: `reporter run {config} --period 2026-10`\n"
    )
    assert capsys.readouterr().err == (
        "reporter: FAILED: shop 2026-11: quality gate failed, nothing sent:\n"
        "  - source 'orders' has data up to 2026-10-31; the period ends 2026-11-30\n"
        "  - source 'orders' has 0 row(s) in 2026-11; at least 1 required\n"
        "  - source 'staff' has data up to 2026-10-26; the period ends 2026-11-30\n"
        "  - source 'staff' has 0 row(s) in 2026-11; at least 1 required\n" + hint
    )
    # the gate's completeness check off: min_rows alone fails, and the same hint says why
    config.write_text(config.read_text() + "quality: {require_complete_period: false}\n")
    assert main(run) == 1
    assert capsys.readouterr().err == (
        "reporter: FAILED: shop 2026-11: quality gate failed, nothing sent:\n"
        "  - source 'orders' has 0 row(s) in 2026-11; at least 1 required\n"
        "  - source 'staff' has 0 row(s) in 2026-11; at least 1 required\n" + hint
    )
    # a preview of that period is written (a look at it), and says that it shows no numbers
    assert main(["preview", str(config), "--period", "2026-11", "--output", str(out)]) == 0
    html = out / "shop" / "2026-11" / "shop_2026-11.html"
    assert capsys.readouterr().out.splitlines()[:2] == [
        "shop: no source has data in 2026-11 (the data ends on 2026-10-31): the preview shows no numbers; "
        f"the latest complete month in the data is 2026-10: `reporter preview {config} --period 2026-10`",
        f"shop: preview written to {html} (open it in a browser; nothing was sent)",
    ]
    # a period with data says nothing more
    assert main(["preview", str(config), "--period", "2026-10", "--output", str(out)]) == 0
    assert capsys.readouterr().out.startswith("shop: preview written to ")


def test_a_period_without_rows_in_the_sources_the_kpis_read_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source no KPI reads has rows in November, the two the KPIs read have none: the report
    would be blank all the same."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", DECEMBER)
    config = report(tmp_path, extra="quality: {require_complete_period: false}\n")
    days = [dt.date(2025, 10, 1) + dt.timedelta(days=i) for i in range(426)]  # up to 2026-11-30
    write_csv(tmp_path / "visits.csv", ["date", "n"], [[d.isoformat(), 1] for d in days])
    text = config.read_text()
    visits = "  visits: {type: csv, path: visits.csv, date_column: date}\n"
    text = text.replace("metrics:\n", visits + "metrics:\n")
    config.write_text(text.replace("kpis:\n", "  visits: {source: visits, agg: sum, column: n}\nkpis:\n"))
    out = tmp_path / "out"
    assert main(["run", str(config), "--period", "2026-11", "--no-send", "--output", str(out)]) == 1
    assert capsys.readouterr().err == (
        "reporter: FAILED: shop 2026-11: quality gate failed, nothing sent:\n"
        "  - source 'orders' has 0 row(s) in 2026-11; at least 1 required\n"
        "  - source 'staff' has 0 row(s) in 2026-11; at least 1 required\n"
        f"  results in {out}/shop/2026-11/results.json\n"
        "  no source the KPIs read ('orders', 'staff') has data in 2026-11: their data ends on 2026-10-31\n"
        f"  the latest complete month in the data is 2026-10: `reporter run {config} --period 2026-10`\n"
    )


@pytest.mark.parametrize(
    ("period", "message"),
    [
        (
            "2030-01",
            "period 2030-01 has not begun yet (it starts on 2030-01-01); the last complete period is 2026-10",
        ),
        (
            "2026-11",
            "period 2026-11 has not ended yet (it ends on 2026-11-30); the last complete period is 2026-10; "
            "to report on a period in progress, set `quality.require_complete_period: false`",
        ),
        (
            "2024-01",
            "no source has data in 2024-01: the data starts on 2025-10-01; "
            "the first period with data is 2025-10",
        ),
    ],
)
def test_a_period_that_cannot_be_reported_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], period: str, message: str
) -> None:
    config = report(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(config), "--period", period, "--output", str(out)]) == 2
    assert capsys.readouterr().err == f"reporter: error: {message}\n"
    assert not (out / "shop").exists()
    assert not (out / "outbox").exists()  # no alert: the person who typed it is told
    if (out / "ledger.sqlite").exists():  # the data is read inside a recorded run
        with Ledger(default_url(out)) as ledger:
            assert [(r["outcome"], r["error"]) for r in ledger.runs_of("shop")] == [("failed", message)]
    preview = ["preview", str(config), "--period", period, "--output", str(out)]
    if period == "2026-11":  # a preview shows the period so far
        assert main(preview) == 0
        assert sorted(snapshot(out / "shop")) == [
            "2026-11/shop_2026-11.html",
            "2026-11/shop_2026-11_digest.html",
            "2026-11/shop_2026-11_digest.txt",
        ]
    else:
        assert main(preview) == 2
        assert capsys.readouterr().err == f"reporter: error: {message}\n"
        assert not (out / "shop").exists()


def test_a_period_in_progress_runs_with_the_gate_off_and_a_partly_covered_one_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = report(tmp_path, extra="quality: {require_complete_period: false, min_rows: 0}\n")
    out = tmp_path / "out"
    # a flash report on November so far (documented: docs/insights.md)
    assert main(["run", str(config), "--period", "2026-11", "--no-send", "--output", str(out)]) == 0
    assert (out / "shop" / "2026-11" / "shop_2026-11.pdf").is_file()
    # February 2026: orders has data, staff starts in March: reported
    assert main(["run", str(config), "--period", "2026-02", "--no-send", "--output", str(out)]) == 0
    assert (out / "shop" / "2026-02" / "shop_2026-02.pdf").is_file()
    # but not a period before every source's data, nor one that has not begun
    assert main(["run", str(config), "--period", "2025-09", "--no-send", "--output", str(out)]) == 2
    assert main(["run", str(config), "--period", "2026-12", "--no-send", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "reporter: error: no source has data in 2025-09: the data starts on 2025-10-01; "
        "the first period with data is 2025-10\n"
        "reporter: error: period 2026-12 has not begun yet (it starts on 2026-12-01); "
        "the last complete period is 2026-10\n"
    )
    assert sorted(p.name for p in (out / "shop").iterdir()) == ["2026-02", "2026-11"]


def test_a_preview_whose_subject_fails_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = report(tmp_path)
    out = tmp_path / "out"
    preview = ["preview", str(config), "--period", "2026-10", "--output", str(out)]
    assert main(preview) == 0
    first = snapshot(out)
    assert sorted(first) == [
        "shop/2026-10/shop_2026-10.html",
        "shop/2026-10/shop_2026-10_digest.html",
        "shop/2026-10/shop_2026-10_digest.txt",
    ]
    capsys.readouterr()
    report(tmp_path, title="Other", template=broken_template(tmp_path))
    assert main(preview) == 1
    err = capsys.readouterr().err
    assert err.startswith("reporter: error: ")
    assert "titel" in err
    assert snapshot(out) == first
    assert main(["preview", str(config), "--period", "2026-10", "--output", str(tmp_path / "fresh")]) != 0
    assert snapshot(tmp_path / "fresh") == {}
