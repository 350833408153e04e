"""Owners' check-ins (checkins/<period>.yaml) and the life of followed actions: the file that
`reporter checkin` writes, its errors at file:line, each action's age and overdue mark, and the
note and states in the PDF, the digest as received over SMTP and the archived PDF."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import shutil
import textwrap
from pathlib import Path

import pypdf
import pytest
import yaml

from reporter.cli import main
from reporter.compute.database import compute
from reporter.config import load_config
from reporter.config.model import Delivery, Email, Smtp
from reporter.delivery.archive import attachments_of
from reporter.periods import Period
from reporter.render.digest import build_digest
from reporter.render.html import render_html
from reporter.results import Results
from reporter.run.pipeline import run_report
from tests.conftest import DEMO, DEMO_NOW
from tests.smtp_server import Server

# Monthly revenue against a target of 100: off track in June and July, back on track in August.
REVENUE = {
    "2026-01": 120,
    "2026-02": 120,
    "2026-03": 120,
    "2026-04": 120,
    "2026-05": 120,
    "2026-06": 50,
    "2026-07": 50,
    "2026-08": 120,
    "2026-09": 120,
    "2026-10": 95,
    "2026-11": 120,
}
YAML = """\
report: {id: ck, title: Check-ins, company: Acme, timezone: Europe/Paris, locale: en_US}
sources:
  sales: {type: csv, path: sales.csv, date_column: date}
metrics:
  revenue: {source: sales, agg: sum, column: amount}
kpis:
  revenue: {label: Revenue, formula: revenue, format: currency, direction: up}
objectives:
  - id: grow
    title: Revenue of 100 a month
    kpi: revenue
    target: {value: 100}
    owner: Sales director
    due: 2026-12-31
    actions:
      - {id: relaunch, when: off_track, do: Relaunch old quotes, due_in_days: 15}
      - {id: review, when: always, do: Review the pipeline weekly}
      - {when: at_risk, do: Call the top ten accounts}
  - id: keep
    title: Keep revenue up
    kpi: revenue
    target: {value: 90}
    owner: CEO
    due: 2026-12-31
quality: {require_complete_period: false}
"""
NOW = dt.datetime(2026, 12, 10, 9, tzinfo=dt.UTC)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    with (tmp_path / "sales.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "amount"])
        writer.writerows([f"{month}-15", amount] for month, amount in REVENUE.items())
    path = tmp_path / "r.yaml"
    path.write_text(YAML, encoding="utf-8")
    return path


def checkin(report: Path, *args: str) -> int:
    return main(["checkin", str(report), *args], clock=lambda: NOW)


def objective(report: Path, period: str, which: str = "grow") -> dict:
    results = compute(load_config(report, env={}), Period.parse(period, "month"), NOW).to_dict()
    return next(o for o in results["objectives"] if o["id"] == which)


def test_checkin_writes_the_file_and_keeps_other_entries(report, capsys):
    assert checkin(report, "grow", "--period", "2026-08", "--note", "Two deals slipped") == 0
    path = report.parent / "checkins" / "2026-08.yaml"
    out = capsys.readouterr().out
    assert out == f"{path}: check-in of 'grow' for 2026-08 recorded; the 2026-08 report shows it\n"
    assert checkin(report, "keep", "--period", "2026-08", "--note", "Fine") == 0
    assert checkin(report, "grow", "--period", "2026-08", "--action", "relaunch=done") == 0
    assert checkin(report, "grow", "--period", "2026-08", "--comment", "relaunch=12 quotes sent") == 0
    assert (
        checkin(report, "grow", "--period", "2026-08", "--lang", "fr", "--note", "Deux contrats ont glissé")
        == 0
    )
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Check-ins for 2026-08, written by `reporter checkin`")
    assert yaml.safe_load(text) == {
        "objectives": {
            "grow": {
                "note": {"en": "Two deals slipped", "fr": "Deux contrats ont glissé"},
                "actions": {"relaunch": {"state": "done", "comment": "12 quotes sent"}},
            },
            "keep": {"note": "Fine"},
        }
    }
    # without --period: the period in progress (December on NOW), whose report comes next
    assert checkin(report, "keep", "--note", "On its way") == 0
    assert (report.parent / "checkins" / "2026-12.yaml").is_file()
    assert main(["validate", str(report)]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["grwo", "--note", "x"],
            "reporter: error: report 'ck' has no objective 'grwo'; did you mean 'grow'?",
        ),
        (
            ["grow", "--action", "relaunc=done"],
            "reporter: error: objective 'grow' has no action 'relaunc'; did you mean 'relaunch'?",
        ),
        (
            ["keep", "--action", "relaunch=done"],
            "reporter: error: objective 'keep' has no action 'relaunch'; give the action an id in the "
            "YAML (objectives[].actions[].id) to follow it up",
        ),
        (
            ["grow", "--action", "relaunch=finished"],
            "reporter: error: --action relaunch=finished: the state is one of open, done, dropped",
        ),
        (
            ["grow", "--action", "relaunch"],
            "reporter: error: --action relaunch: write ID=VALUE, e.g. --action relaunch-quotes=done",
        ),
        (["grow"], "reporter: error: nothing to record: give --note, --action ID=STATE or --comment ID=TEXT"),
        (
            ["grow", "--note", "  "],
            "reporter: error: --note: the note is empty; write a sentence, or leave --note out",
        ),
        (
            ["grow", "--lang", "xx1", "--note", "a"],
            "reporter: error: --lang xx1: not a language code; write one such as fr, en, de",
        ),
    ],
)
def test_checkin_refuses_bad_arguments_and_writes_nothing(report, capsys, args, message):
    assert checkin(report, *args[:1], "--period", "2026-08", *args[1:]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == message
    assert not (report.parent / "checkins" / "2026-08.yaml").exists()


def test_a_bad_checkin_file_is_an_error_at_its_line(report, capsys):
    folder = report.parent / "checkins"
    folder.mkdir()
    (folder / "2026-08.yaml").write_text(
        textwrap.dedent(
            """\
            objectives:
              grow:
                notes: typo
                actions:
                  relaunch: {state: finished}
                  relaunc: {state: done}
              grwo:
                note: x
            """
        ),
        encoding="utf-8",
    )
    (folder / "August.yaml").write_text("objectives: {}\n", encoding="utf-8")
    assert main(["validate", str(report)]) == 2
    err = capsys.readouterr().err.splitlines()
    shown = folder.relative_to(Path.cwd()) if folder.is_relative_to(Path.cwd()) else folder
    # every mistake at once: the unknown action and objective too, not only the file's shape
    assert err == [
        f"{shown}/2026-08.yaml:3:5: objectives.grow.notes: unknown key; did you mean 'note'?",
        f"{shown}/2026-08.yaml:5:25: objectives.grow.actions.relaunch.state: 'finished' is not one of: open, "
        "done, dropped",
        f"{shown}/2026-08.yaml:6:7: objectives.grow.actions.relaunc: objective 'grow' has no action "
        "'relaunc'; did you mean 'relaunch'?",
        f"{shown}/2026-08.yaml:7:3: objectives.grwo: no objective 'grwo' in report 'ck'; "
        "did you mean 'grow'?",
        f"{shown}/August.yaml: the name 'August' is not a period (this report's grain is month); name each "
        "check-in file by its period, e.g. checkins/2026-11.yaml",
        "5 errors: nothing was run or sent.",
    ]


def test_an_open_action_carries_over_with_its_age_and_turns_overdue(report):
    # June: off track, the off_track action opens, due 15 days after June's end
    june = objective(report, "2026-06")
    assert june["status"] == "off_track"
    relaunch = next(a for a in june["actions"] if a["id"] == "relaunch")
    assert (relaunch["state"], relaunch["since"], relaunch["age"], relaunch["due"], relaunch["overdue"]) == (
        "open",
        "2026-06",
        0,
        "2026-07-15",
        False,
    )
    # July: still off track, the action carries over, 1 period old; its due date (15 July) is
    # before July's end: overdue
    july = objective(report, "2026-07")
    relaunch = next(a for a in july["actions"] if a["id"] == "relaunch")
    assert (relaunch["state"], relaunch["since"], relaunch["age"], relaunch["overdue"]) == (
        "open",
        "2026-06",
        1,
        True,
    )
    # August: on track again and no check-in speaks of the action: it closes by itself, shown
    # once as no longer needed
    august = objective(report, "2026-08")
    assert august["status"] == "on_track"
    relaunch = next(a for a in august["actions"] if a["id"] == "relaunch")
    assert (relaunch["state"], relaunch["since"], relaunch["age"], relaunch["overdue"]) == (
        "not_needed",
        "2026-06",
        2,
        False,
    )
    # the always action recurs: opened afresh each period; the at_risk one (no id) is not shown
    review = next(a for a in august["actions"] if a["id"] == "review")
    assert (review["state"], review["since"], review["age"], review["overdue"]) == (
        "open",
        "2026-08",
        0,
        False,
    )
    assert [a["do"] for a in august["actions"]] == ["Relaunch old quotes", "Review the pipeline weekly"]
    # a check-in in August keeps it open instead; one in September closes it: shown as done in
    # September, gone in October
    assert checkin(report, "grow", "--period", "2026-08", "--action", "relaunch=open") == 0
    august = objective(report, "2026-08")
    relaunch = next(a for a in august["actions"] if a["id"] == "relaunch")
    assert (relaunch["state"], relaunch["age"], relaunch["overdue"]) == ("open", 2, True)
    assert (
        checkin(
            report, "grow", "--period", "2026-09", "--action", "relaunch=done", "--comment", "relaunch=sent"
        )
        == 0
    )
    september = objective(report, "2026-09")
    relaunch = next(a for a in september["actions"] if a["id"] == "relaunch")
    assert (relaunch["state"], relaunch["comment"], relaunch["age"], relaunch["overdue"]) == (
        "done",
        "sent",
        3,
        False,
    )
    october = objective(report, "2026-10")
    assert october["status"] == "at_risk"  # 95 for 100
    assert [(a["id"], a["do"]) for a in october["actions"]] == [
        ("review", "Review the pipeline weekly"),
        (None, "Call the top ten accounts"),
    ]
    assert october["actions"][1]["state"] is None


def test_an_action_of_the_demo_closes_when_the_objective_is_back_on_track(tmp_path):
    # the demo's CAC: off track in March only, 722-1,306 EUR (target 1,500) from April to
    # September, off track again in October; its actions given ids as docs/checkins.md says
    folder = tmp_path / "demo"
    shutil.copytree(DEMO.parent, folder)
    path = folder / DEMO.name
    text = path.read_text(encoding="utf-8")
    head, tail = text.split("  - id: cac-ceiling\n", 1)
    for when, action in (("off_track", "freeze-events"), ("at_risk", "review-bids")):
        tail = tail.replace(f"      - when: {when}\n", f"      - id: {action}\n        when: {when}\n", 1)
    path.write_text(head + "  - id: cac-ceiling\n" + tail, encoding="utf-8")
    assert (
        main(
            [
                *("checkin", str(path), "cac-ceiling", "--period", "2026-10"),
                *("--note", "Toujours au-dessus", "--action", "review-bids=done"),
            ],
            clock=lambda: DEMO_NOW,
        )
        == 0
    )
    config = load_config(path, env={})

    def cac(period: str) -> Results:
        return compute(config, Period.parse(period, "month"), DEMO_NOW)

    # April, back on track with no check-in: March's action closes by itself, said so once
    april = cac("2026-04")
    freeze = next(o for o in april.objectives if o.id == "cac-ceiling").actions
    assert [(a.id, a.state, a.since, a.overdue) for a in freeze] == [
        ("freeze-events", "not_needed", "2026-03", False)
    ]
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", render_html(config, april)))
    assert "Plus nécessaire objectif de nouveau en bonne voie" in page
    # October, off track again: a new round, opened this period, not "open for 7 months"
    october = cac("2026-10")
    found = next(o for o in october.objectives if o.id == "cac-ceiling")
    assert found.status == "off_track"
    assert found.note == "Toujours au-dessus"
    assert [(a.id, a.state, a.since, a.age, a.due, a.overdue) for a in found.actions] == [
        ("freeze-events", "open", "2026-10", 0, "2026-11-10", False),
        ("review-bids", "done", "2026-10", 0, "2026-11-15", False),
    ]
    digest = build_digest(config, october).text
    assert "ouverte depuis" not in digest
    assert "[Ouverte, depuis cette période] Geler les dépenses" in " ".join(digest.split())


def test_a_checkin_shows_in_the_next_run_pdf_digest_and_archive(report, tmp_path):
    assert checkin(report, "grow", "--period", "2026-08", "--note", "Two big deals slipped to September") == 0
    # back on track in August, the owner keeps the relaunch open (else it would close by itself)
    assert (
        checkin(
            report,
            "grow",
            "--period",
            "2026-08",
            "--comment",
            "review=weekly on Mondays",
            "--action",
            "relaunch=open",
        )
        == 0
    )
    config = load_config(report, env={})
    out = tmp_path / "out"
    with Server(tmp_path) as server:
        delivery = Delivery(
            email=Email(
                **{"from": "Reporting <reporting@acme.test>"},
                to=["ceo@acme.test"],
                smtp=Smtp(host="127.0.0.1", port=server.port, security="none", timeout=10),
            ),
            alerts_to=["ops@acme.test"],
        )
        run_report(
            config.model_copy(update={"delivery": delivery}),
            period="2026-08",
            now=dt.datetime(2026, 9, 2, 6, tzinfo=dt.UTC),
            output=out,
            sleep=lambda s: None,
        )
    (received,) = server.handler.received
    text = received.message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "   Owner's note: Two big deals slipped to September\n" in text
    assert "   Overdue actions: 1\n" in text
    words = " ".join(text.split())  # the text part is wrapped at 78 columns
    assert (
        "ACTIONS DUE - [Overdue, open for 2 months] Relaunch old quotes — Sales director, Jul 15, 2026 "
        "(Revenue of 100 a month) - [Open, since this period] Review the pipeline weekly — Sales director "
        "(Revenue of 100 a month: weekly on Mondays) The full report" in words
    )
    html = received.message.get_body(("html",)).get_content()
    assert "Two big deals slipped to September" in html
    assert "Overdue" in html
    pdf = (out / "ck" / "2026-08" / "ck_2026-08.pdf").read_bytes()
    pages = [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]
    summary, objectives = pages[0], next(p for p in pages if "Action plan" in p)
    assert "Overdue actions: 1" in summary
    assert "Two big deals slipped to" in summary
    assert "Owner's note — Sales director\nTwo big deals slipped to September" in objectives
    assert "Relaunch old quotes Sales director Jul 15, 2026 Overdue open for 2 months" in objectives
    # the archived PDF carries the check-in file as read; results.json names it with its hash
    written = (report.parent / "checkins" / "2026-08.yaml").read_bytes()
    (archived,) = (out / "archive").rglob("ck_2026-08*.pdf")
    assert attachments_of(archived.read_bytes())["checkins-2026-08.yaml"] == written
    results = json.loads((out / "ck" / "2026-08" / "results.json").read_text(encoding="utf-8"))
    assert results["checkins"] == [
        {"path": "checkins/2026-08.yaml", "sha256": hashlib.sha256(written).hexdigest()}
    ]
    assert results["objectives"][0]["note"] == "Two big deals slipped to September"
    # reproduce reads the check-ins inside the PDF, not today's: a later edit changes nothing
    from reporter.run.reproduce import reproduce

    assert checkin(report, "grow", "--period", "2026-08", "--note", "Rewritten after the report") == 0
    again = reproduce(archived, tmp_path / "again", data=report.parent)
    assert again.identical
