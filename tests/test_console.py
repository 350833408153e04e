"""What the console says, pinned word for word: duplicate ids, delivery lines, status, progress on
a terminal (and none off it), the gate's way out, validate's warnings, help and usage errors."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from reporter import cli, progress
from reporter.init import init_report
from tests.smtp_server import Server

EPOCH = "1795507200"  # 2026-11-24 08:00 UTC
NOW = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
NOT_TRACKED = "runs with --no-send are not tracked (they send nothing and leave no ledger entry)"


@pytest.fixture
def starter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The newsletter starter (fast to run), with the clock fixed at NOW."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    init_report(tmp_path / "r", "newsletter", now=NOW)
    return tmp_path / "r"


def test_duplicate_report_id_names_both_files(starter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(starter / "report.yaml", starter / "copy.yaml")
    assert cli.main(["validate", str(starter)]) == 2
    assert capsys.readouterr().err == (
        f"{starter / 'report.yaml'}:15:7: report.id: 'newsletter-monthly' is also the id of "
        f"{starter / 'copy.yaml'}; give each report in a folder its own id (it names the output "
        "folders and ledger entries)\n"
        "1 error: nothing was run or sent.\n"
    )
    assert cli.main(["run", str(starter), "--no-send"]) == 2  # nothing runs either


def test_outbox_and_ledger_skip_wording(starter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = starter / "out"
    assert cli.main(["run", str(starter / "report.yaml"), "--output", str(out)]) == 0
    first = capsys.readouterr().out
    assert first.endswith("\n  newsletter-team@example.com: written to outbox\n")
    assert (out / "outbox" / "newsletter-monthly" / "2026-10" / "newsletter-team@example.com.eml").is_file()
    assert cli.main(["run", str(starter / "report.yaml"), "--output", str(out)]) == 0
    folder = out / "newsletter-monthly" / "2026-10"
    archived = out / "archive" / "newsletter-monthly" / "2026-10" / "newsletter-monthly_2026-10_v1.pdf"
    assert capsys.readouterr().out == (
        "newsletter-monthly 2026-10: already delivered on 2026-11-24 (ledger), nothing sent; files left as "
        f"delivered in {folder}; the delivered PDF is archived as {archived.resolve()} "
        "(--force --reason TEXT sends it again)\n"
    )
    assert cli.main(["run", str(starter / "report.yaml"), "--output", str(out), "--no-send"]) == 0
    assert capsys.readouterr().out.endswith("/email.eml\n  nothing sent (--no-send)\n")


def test_smtp_sent_and_failed_wording(starter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Server(starter) as server:
        server.handler.rcpt_reply = lambda a, n: "550 5.1.1 no such user" if a.startswith("gone") else None
        path = starter / "report.yaml"
        text = path.read_text(encoding="utf-8").replace(
            "    to: [newsletter-team@example.com]\n",
            "    to: [team@example.com, gone@example.com]\n"
            f"    smtp: {{host: 127.0.0.1, port: {server.port}, security: none}}\n",
        )
        path.write_text(text, encoding="utf-8")
        assert cli.main(["run", str(path), "--output", str(starter / "out")]) == 1
    out, err = capsys.readouterr()
    assert out.endswith("\n  team@example.com: sent\n  gone@example.com: failed: 550 5.1.1 no such user\n")
    assert err == (
        "reporter: FAILED: newsletter-monthly 2026-10: delivery failed for gone@example.com "
        "(550 5.1.1 no such user); the others were delivered; run again to retry only these\n"
    )
    assert len(server.handler.to("team@example.com")) == 1
    # The rerun: the delivered one is skipped (the ledger says when), the refused one is retried.
    with Server(starter) as again:
        path.write_text(text.replace(f"port: {server.port}", f"port: {again.port}"), encoding="utf-8")
        assert cli.main(["run", str(path), "--output", str(starter / "out")]) == 0
        assert len(again.handler.to("gone@example.com")) == 1
        assert again.handler.to("team@example.com") == []
    assert capsys.readouterr().out.endswith(
        "\n  team@example.com: already sent on 2026-11-24 (ledger), skipped\n  gone@example.com: sent\n"
    )


def test_delivery_lines_describe_each_state() -> None:
    from reporter.delivery.send import DeliveryOutcome
    from reporter.delivery.wording import describe

    assert describe(DeliveryOutcome("a@x.test", "sent", 1, "<m>", channel="smtp")) == "sent"
    assert describe(DeliveryOutcome("a@x.test", "sent", 1, "<m>", channel="outbox")) == "written to outbox"
    assert (
        describe(DeliveryOutcome("a@x.test", "skipped", 1, "<m>", sent_on="2026-11-02"))
        == "already sent on 2026-11-02 (ledger), skipped"
    )
    assert describe(DeliveryOutcome("a@x.test", "failed", 4, "<m>", "gave up")) == "failed: gave up"
    assert describe(DeliveryOutcome("a@x.test", "failed", 0, "<m>")) == "failed: no reason recorded"
    assert describe(DeliveryOutcome("a@x.test", "skipped", 1, "<m>")) == "already sent (ledger), skipped"
    assert describe(DeliveryOutcome("a@x.test", "review", 1, "<m>", "check the mailbox")) == (
        "not re-sent, review: check the mailbox"
    )


def test_status_says_no_send_runs_are_not_tracked(starter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = starter / "out"
    assert cli.main(["run", str(starter / "report.yaml"), "--output", str(out), "--no-send"]) == 0
    capsys.readouterr()
    assert cli.main(["status", str(starter / "report.yaml"), "--output", str(out)]) == 0
    assert capsys.readouterr().out == (
        "newsletter-monthly — Newsletter report\n"
        "  not scheduled (no delivery.schedule)\n"
        f"  no run recorded yet; {NOT_TRACKED}\n"
    )
    assert cli.main(["run", str(starter / "report.yaml"), "--output", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["status", str(starter / "report.yaml"), "--output", str(out)]) == 0
    assert capsys.readouterr().out == (
        "newsletter-monthly — Newsletter report\n"
        "  not scheduled (no delivery.schedule)\n"
        "  run 2026-10 at 2026-11-24 08:00 (cli): ok\n"
        "  1 delivery recorded; who received what, when and why: "
        f"reporter audit {(out / 'archive').resolve()}\n"
        f"  {NOT_TRACKED}\n"
    )


def _on_a_pty(monkeypatch: pytest.MonkeyPatch) -> tuple[io.TextIOWrapper, list[bytes], threading.Thread]:
    """stderr on a pseudo-terminal; a thread drains the other end (a pty's buffer is small)."""
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w", buffering=1, encoding="utf-8")
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the slave end closed
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    monkeypatch.setattr("sys.stderr", stream)
    return stream, chunks, reader


def test_progress_on_a_terminal(starter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "DELAY", 0.3)  # the run takes longer than that (it renders a PDF)
    stream, chunks, reader = _on_a_pty(monkeypatch)
    try:
        assert cli.main(["run", str(starter / "report.yaml"), "--output", str(starter / "out")]) == 0
    finally:
        stream.close()
        reader.join(5)
    shown = b"".join(chunks).decode("utf-8")
    assert "\rreporter: rendering the PDF pages [2/4] " in shown
    assert "\rreporter: delivering to newsletter-team@example.com [3/4] " in shown
    assert re.search(r"\r {40,}\r$", shown)  # the bar erases itself (leave=False)


def test_no_progress_for_a_short_stretch_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    stream, chunks, reader = _on_a_pty(monkeypatch)
    try:
        with progress.showing(3):
            progress.stage("reading 1 source")
            progress.stage("computing 1 KPIs")
    finally:
        stream.close()
        reader.join(5)
    assert b"".join(chunks) == b""


def test_no_progress_off_a_terminal(starter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", str(starter / "report.yaml"), "--output", str(starter / "out")]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in out + err
    assert "reporter: reading" not in err
    assert "rendering the PDF" not in err


def test_gate_names_the_latest_complete_period(
    starter: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    december = dt.datetime(2026, 12, 5, 8, 0, tzinfo=dt.UTC)  # November has ended, its data is late
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(december.timestamp())))
    config = starter / "report.yaml"
    out = starter / "out"
    assert cli.main(["run", str(config), "--no-send", "--output", str(out), "--period", "2026-11"]) == 1
    assert capsys.readouterr().err == (
        "reporter: FAILED: newsletter-monthly 2026-11: quality gate failed, nothing sent:\n"
        "  - source 'campaigns' has data up to 2026-10-26; the period ends 2026-11-30\n"
        "  - source 'campaigns' has 0 row(s) in 2026-11; at least 1 required\n"
        "  - source 'audience' has data up to 2026-10-31; the period ends 2026-11-30\n"
        "  - source 'audience' has 0 row(s) in 2026-11; at least 1 required\n"
        f"  results in {out}/newsletter-monthly/2026-11/results.json\n"
        "  no source has data in 2026-11: the data ends on 2026-10-31\n"
        f"  the latest complete month in the data is 2026-10: `reporter run {config} --period 2026-10`\n"
    )


def test_latest_complete_period_follows_each_frequency(starter: Path) -> None:
    from reporter.compute.database import compute
    from reporter.config import load_config
    from reporter.hints import latest_complete
    from reporter.periods import Period

    # Cut the daily source on 2026-09-29: September is incomplete for it, August is the answer.
    audience = starter / "data" / "audience.csv"
    lines = audience.read_text(encoding="utf-8").splitlines()
    audience.write_text(
        "\n".join(x for x in lines if x < "2026-09-30" or x[0] == "d") + "\n", encoding="utf-8"
    )
    config = load_config(starter / "report.yaml")
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    assert latest_complete(config, results) == Period.parse("2026-08", "month")
    # The weekly source alone: its last Monday (2026-10-26) completes October.
    lines = audience.read_text(encoding="utf-8").splitlines()
    audience.write_text("\n".join(lines) + "\n2026-10-31,9000,5\n", encoding="utf-8")
    results = compute(load_config(starter / "report.yaml"), Period.parse("2026-10", "month"), NOW)
    assert latest_complete(config, results) == Period.parse("2026-10", "month")


def test_validate_warns_about_silent_defaults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d.csv").write_text("day,amount\n2026-10-01,3\n", encoding="utf-8")
    path = tmp_path / "r.yaml"
    path.write_text(
        "report: {id: r, title: R}\n"
        "sources:\n"
        "  s: {type: csv, path: d.csv, date_column: day}\n"
        "metrics:\n"
        "  amount: {source: s, agg: sum, column: amount}\n"
        "kpis:\n"
        "  total_amount: {formula: amount}\n"
        "  labelled: {formula: amount, label: Amount, direction: down}\n"
        "objectives:\n"
        "  - {id: o, title: O, kpi: labelled, target: {value: 1}, owner: Me, due: 2026-12-31}\n",
        encoding="utf-8",
    )
    assert cli.main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == (
        f"{path}:7:3: kpis.total_amount: warning: no label: the report will call it 'total amount'; "
        "add label: …\n"
        f"{path}:7:3: kpis.total_amount: warning: no direction: up (higher is better) is assumed; "
        "add direction: up, down or neutral\n"
        f"{path}:10:5: objectives[0]: warning: no actions: the report will show the status without an "
        "action plan; add actions: [{when: off_track, do: …, owner: …}]\n"
    )
    assert out.startswith(f"{path}: valid — ")


def test_unlabelled_breakdowns_and_portfolio_are_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a label, a breakdown's heading and first column, and the portfolio's first column,
    show the column's raw name: validate says which name, as the report will print it."""
    (tmp_path / "d.csv").write_text(
        "day,amount,lead_origin,campaign\n2026-10-01,3,web,salon\n", encoding="utf-8"
    )
    path = tmp_path / "r.yaml"
    path.write_text(
        "report: {id: r, title: R, locale: en_US}\n"
        "sources:\n"
        "  s: {type: csv, path: d.csv, date_column: day}\n"
        "metrics:\n"
        "  amount: {source: s, agg: sum, column: amount}\n"
        "  spend: {source: s, agg: sum, column: amount}\n"
        "kpis:\n"
        "  amount: {formula: amount, label: Amount, direction: up}\n"
        "breakdowns:\n"
        "  - {kpi: amount, by: lead_origin}\n"
        "  - {kpi: amount, by: campaign, label: {fr: Campagne, en: Campaign}}\n"
        "  - kpi: amount\n"
        "    by: campaign\n"
        "portfolio: {by: campaign, cost: spend, value: amount}\n",
        encoding="utf-8",
    )
    assert cli.main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == (
        f"{path}:10:5: breakdowns[0]: warning: no label: the report will call the column 'lead_origin' "
        "(in the heading and the table's first column); add label: …\n"
        f"{path}:12:5: breakdowns[2]: warning: no label: the report will call the column 'campaign' "
        "(in the heading and the table's first column); add label: …\n"
        f"{path}:14:1: portfolio: warning: no label: the report will call the column 'campaign' "
        "(the table's first column); add label: …\n"
    )
    assert out.startswith(f"{path}: valid — ")
    from reporter.config.lint import silent_defaults

    assert [str(p) for p in silent_defaults(path)] == err.splitlines()  # it loads the file itself
    # labelled, nothing is said
    text = path.read_text(encoding="utf-8")
    text = text.replace("by: lead_origin}", "by: lead_origin, label: Origin}")
    text = text.replace("    by: campaign\n", "    by: campaign\n    label: Campaign\n")
    text = text.replace("value: amount}", "value: amount, label: Campaign}")
    path.write_text(text, encoding="utf-8")
    assert cli.main(["validate", str(path)]) == 0
    assert capsys.readouterr().err == ""


def test_a_percent_target_above_one_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """30 for a rate means 3,000 %: a manager who meant 30 % wrote 0.30. 1 (100 %) is plausible."""
    (tmp_path / "d.csv").write_text("day,won,leads\n2026-10-01,3,10\n", encoding="utf-8")
    path = tmp_path / "r.yaml"
    path.write_text(
        "report: {id: r, title: R, locale: en_US}\n"
        "sources:\n"
        "  s: {type: csv, path: d.csv, date_column: day}\n"
        "metrics:\n"
        "  won: {source: s, agg: sum, column: won}\n"
        "  leads: {source: s, agg: sum, column: leads}\n"
        "kpis:\n"
        "  rate: {formula: won / leads, format: percent, label: Rate, direction: up}\n"
        "  leads: {formula: leads, label: Leads, direction: up}\n"
        "objectives:\n"
        "  - {id: a, title: A, kpi: rate, target: {value: 30}, owner: O, due: 2026-12-31, actions: []}\n"
        "  - {id: b, title: B, kpi: rate, target: {by_period: {2026-10: 1, 2026-11: 1.5}}, owner: O,\n"
        "     due: 2026-12-31, actions: [{when: off_track, do: D}]}\n"
        "  - {id: c, title: C, kpi: leads, target: {value: 30}, owner: O, due: 2026-12-31,\n"
        "     actions: [{when: off_track, do: D}]}\n",
        encoding="utf-8",
    )
    assert cli.main(["validate", str(path)]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "percent KPI" in line]
    assert warned == [
        f"{path}:11:50: objectives[0].target.value: warning: 30 for the percent KPI 'rate' means 3,000 %; "
        "percentages are written as fractions: 0.3 for 30 %",
        f"{path}:12:76: objectives[1].target.by_period.2026-11: warning: 1.5 for the percent KPI 'rate' "
        "means 150 %; percentages are written as fractions: 0.015 for 1.5 %",
    ]


@pytest.mark.parametrize("kind", ["newsletter", "marketing", "sales"])
def test_starters_have_no_warnings(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    init_report(tmp_path / "r", kind, now=NOW)
    capsys.readouterr()
    assert cli.main(["validate", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().err == ""


def test_the_demo_has_no_warnings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the demo's own date (its objectives fall due on 2026-12-31: validated in 2027 they are
    past due, and validate says so)."""
    from tests.conftest import DEMO, DEMO_NOW

    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(DEMO_NOW.timestamp())))
    assert cli.main(["validate", str(DEMO)]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", [*cli.EXAMPLES])
def test_every_help_has_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--help"] if command == "reporter" else [command, "--help"]
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert out.endswith("\n\n" + cli.EXAMPLES[command] + "\n")
    assert cli.EXAMPLES[command].startswith(("example:\n  reporter ", "examples:\n  reporter "))


def test_usage_errors_print_the_prefix_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run"]) == 2
    assert capsys.readouterr().err == (
        "reporter: error: run: the following arguments are required: CONFIG; see 'reporter run --help'\n"
    )
    assert cli.main(["bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reporter: error: argument COMMAND: invalid choice: 'bogus' (choose from ")
    assert err.endswith("; see 'reporter --help'\n")
    assert err.count("reporter:") == 1


def test_validation_opens_one_duckdb_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The speed of `validate`: the demo's 8 files are read into one database, where their
    headers come from and every metric runs once it is locked, and its 17 expressions are parsed
    on that same connection before it is locked: one connection (each costs 10-50 ms)."""
    import duckdb

    from reporter.config import load_config, sqlexpr
    from tests.conftest import DEMO

    opened: list[object] = []
    real = duckdb.connect

    def counting(*args: object, **kwargs: object) -> duckdb.DuckDBPyConnection:
        con = real(*args, **kwargs)  # type: ignore[arg-type]
        opened.append(con)
        return con

    monkeypatch.setattr(duckdb, "connect", counting)
    monkeypatch.setattr(sqlexpr, "_LOCAL", threading.local())  # as in a fresh process
    sqlexpr._serialized.cache_clear()
    sqlexpr._functions.cache_clear()
    load_config(DEMO, env={})
    assert len(opened) == 1
    assert getattr(sqlexpr._LOCAL, "con", None) is None  # no scratch connection was opened
    assert sqlexpr._serialized.cache_info().misses == 17
