"""Alerts as a reviewer found them: a KPI of monthly data judged on a partial month, unsubscribed
addresses, the words of the message, and ``alerts test`` / ``alerts snooze`` at their edges."""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reporter.cli import main
from reporter.compute.alerts import evaluate
from reporter.compute.database import open_database
from reporter.config import load_config
from reporter.delivery.alerting import run_alerts
from tests import test_alerts
from tests.smtp_server import Server
from tests.test_alerts import at, with_smtp

ZONE = ZoneInfo("Europe/Paris")
alerts_report = test_alerts.report  # its fixture: the year of orders and visits

SPEND = """\
report: {id: cac, title: Acquisition, company: Acme, timezone: Europe/Paris, locale: fr_FR, currency: EUR}
sources:
  spend: {type: csv, path: spend.csv, date_column: date, frequency: monthly}
  orders: {type: csv, path: orders.csv, date_column: date}
metrics:
  marketing_spend: {source: spend, agg: sum, column: amount}
  new_customers: {source: orders, agg: sum, column: new_customers}
kpis:
  cac: {label: Coût d'acquisition client, formula: marketing_spend / new_customers, format: currency,
        direction: down}
  spend: {label: Dépenses, formula: marketing_spend, format: currency, direction: down}
objectives:
  - {id: cac-ceiling, title: CAC sous 900 €, kpi: cac, target: {value: 900}, owner: DAF, due: 2026-12-31}
  - {id: spend-cap, title: Dépenses sous 20 000 €, kpi: spend, target: {value: 20000}, owner: DAF,
     due: 2026-12-31}
alerts:
  rules:
    - {objective: cac-ceiling, when: off_track, to: [cfo@acme.test]}
    - {objective: spend-cap, when: off_track, to: [cfo@acme.test]}
delivery:
  email: {from: Reporting <r@acme.test>, to: [ceo@acme.test]}
quality: {require_complete_period: false}
"""


@pytest.fixture
def spend_report(tmp_path: Path) -> Path:
    """Spend: one row a month dated the 1st (20,000 €); new customers: 1 a day (30 in
    September: a CAC of 667 €, well under 900 €)."""
    with (tmp_path / "spend.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "amount"])
        for month in range(1, 13):
            writer.writerow([dt.date(2026, month, 1).isoformat(), 20000])
    with (tmp_path / "orders.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "new_customers"])
        day = dt.date(2026, 1, 1)
        while day.year == 2026:
            writer.writerow([day.isoformat(), 1])
            day += dt.timedelta(days=1)
    path = tmp_path / "cac.yaml"
    path.write_text(SPEND, encoding="utf-8")
    return path


def test_a_kpi_of_monthly_data_is_not_judged_on_the_first_days_of_the_month(spend_report, tmp_path):
    config = load_config(spend_report, env={})
    out = tmp_path / "out"
    for day in (2, 3, 10, 30):  # 2 September: the month's whole spend over one day's customers
        now = dt.datetime(2026, 9, day, 8, tzinfo=ZONE)
        outcomes = run_alerts(config, now, root=out, sleep=lambda s: None)
        assert [(o.rule, o.state, o.detail, o.sent) for o in outcomes] == [
            ("cac-ceiling-off_track", "clear", "on_track", []),
            ("spend-cap-off_track", "clear", "on_track", []),
        ]
    assert not (out / "outbox").exists()
    # what was judged: the ratio on August as a whole (its monthly spend and its daily customers
    # both cover it), the spend on September as a whole (its row is in), neither pro-rated
    con, infos = open_database(config)
    try:
        cac, spend = evaluate(config, dt.datetime(2026, 9, 2, 8, tzinfo=ZONE), con, infos)
    finally:
        con.close()
    assert (cac.period, cac.day, cac.value, cac.target, cac.coarse) == (
        "2026-08",
        "2026-08-31",
        20000 / 31,
        900,
        "monthly",
    )
    assert (spend.period, spend.day, spend.value, spend.target, spend.projected) == (
        "2026-09",
        "2026-09-30",
        20000,
        20000,
        None,
    )


def test_an_address_that_only_gets_alerts_can_unsubscribe_and_gets_no_more_alerts(
    alerts_report, tmp_path, capsys
):
    report = alerts_report
    out = tmp_path / "out"
    unsubscribe = ["unsubscribe", str(report), "cfo@acme.test", "--output", str(out)]
    assert main(unsubscribe) == 0  # cfo@ is only in alerts.rules[].to
    assert capsys.readouterr().out.startswith("al: cfo@acme.test unsubscribed; ")
    today = dt.datetime.now(dt.UTC).date()
    note = (
        f"cfo@acme.test: unsubscribed on {today:%Y-%m-%d} (reporter unsubscribe), not sent; "
        "'reporter subscribe "
    )
    with Server(tmp_path) as server:
        config = with_smtp(load_config(report, env={}), server.port)
        orders, _ = run_alerts(config, at(37), root=out, sleep=lambda s: None)  # off track
        assert (orders.state, orders.sent) == ("firing", [])
        (skipped,) = orders.skipped
        assert skipped.startswith(note)
        assert skipped.endswith("' sends to it again")
        assert run_alerts(config, at(38), root=out, sleep=lambda s: None)[0].skipped == []  # said once
        run_alerts(config, at(200), root=out, sleep=lambda s: None)  # visits unusual: to ops@, orders clear
    ((received),) = server.handler.received
    assert received.rcpt_tos == ["ops@acme.test"]
    assert received.message["List-Unsubscribe"] == "<mailto:r@acme.test?subject=unsubscribe%20al>"
    # no one-click header without an https link to post to (RFC 8058: report.url is not set here)
    assert received.message["List-Unsubscribe-Post"] is None
    assert main(["alerts", "status", "--config", str(report), "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("al orders-goal-off_track: clear (on_track)")
    assert lines[1].startswith("  " + note)
    # alerts test: skips it and says so; the message to ops@ carries the headers too
    assert main(["alerts", "test", str(report), "--output", str(out)], clock=lambda: at(37)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("orders-goal-off_track: " + note)
    assert lines[1:] == [
        "visits-unusual: test message sent to ops@acme.test",
        "1 test message sent; no rule's state changed",
    ]
    (eml,) = (out / "outbox").rglob("*.eml")
    assert "List-Unsubscribe: <mailto:r@acme.test?subject=unsubscribe%20al>" in eml.read_text()


def test_a_threshold_on_an_objective_says_threshold_target_and_the_plan_for_its_status(
    spend_report, tmp_path
):
    text = spend_report.read_text(encoding="utf-8")
    text = text.replace(
        "  - {id: spend-cap, title: Dépenses sous 20 000 €, kpi: spend, target: {value: 20000}, owner: DAF,\n"
        "     due: 2026-12-31}\n",
        "  - id: spend-cap\n"
        "    title: Dépenses sous 15 000 €\n"
        "    kpi: spend\n"
        "    target: {value: 15000}\n"
        "    owner: DAF\n"
        "    due: 2026-12-31\n"
        "    actions:\n"
        "      - {when: off_track, do: Geler les nouvelles campagnes, owner: Directrice marketing}\n"
        "      - {when: on_track, do: Rien à faire}\n",
    )
    text = text.replace(
        "    - {objective: spend-cap, when: off_track, to: [cfo@acme.test]}",
        "    - {objective: spend-cap, when: {above: 18000}, to: [cfo@acme.test]}",
    )
    spend_report.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    config = load_config(spend_report, env={})
    (_, above) = run_alerts(config, dt.datetime(2026, 9, 2, 8, tzinfo=ZONE), root=out, sleep=lambda s: None)
    assert (above.rule, above.state, above.detail) == ("spend-cap-above", "firing", "above")
    (eml,) = (out / "outbox" / "cac" / "alerts" / "spend-cap-above").rglob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body.split("\n\n")[:3] == [
        "Dépenses sous 15 000 € dépasse 18\u202f000\xa0€.",
        "Valeur du 1 sept. 2026 au 30 sept. 2026\xa0: 20\u202f000\xa0€.\n"
        "Dépenses se lit sur des données à une ligne par mois\xa0: cet indicateur est jugé sur "
        "septembre 2026 en entier, la dernière période que toutes ses données couvrent.\n"
        "Seuil\xa0: 18\u202f000\xa0€.\n"
        "Objectif\xa0: 15\u202f000\xa0€.",
        "Plan d'action\xa0:\n- Geler les nouvelles campagnes — Directrice marketing",
    ]


def test_alerts_test_keeps_one_file_per_rule_and_snooze_refuses_a_past_date(alerts_report, tmp_path, capsys):
    report, out = alerts_report, tmp_path / "out"
    text = report.read_text(encoding="utf-8").replace(
        "    - {kpi: visits, when: unusual, to: [ops@acme.test]}",
        "    - {kpi: visits, when: unusual, to: [ops@acme.test]}\n"
        "    - {objective: orders-goal, when: at_risk, to: [cfo@acme.test]}",
    )
    report.write_text(text, encoding="utf-8")
    assert main(["alerts", "test", str(report), "--output", str(out)], clock=lambda: at(37)) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "3 test messages sent; no rule's state changed"
    folder = out / "outbox" / "al" / "alerts-test"
    files = sorted(str(f.relative_to(folder)) for f in folder.rglob("*.eml"))
    assert files == [
        "orders-goal-at_risk/cfo@acme.test.eml",
        "orders-goal-off_track/cfo@acme.test.eml",
        "visits-unusual/ops@acme.test.eml",
    ]
    subjects = {
        f: email.message_from_bytes((folder / f).read_bytes(), policy=email.policy.default)["Subject"]
        for f in files
    }
    assert (
        subjects["orders-goal-at_risk/cfo@acme.test.eml"] == "[TEST] Alerts — 3,000 orders a month is at risk"
    )
    snooze = ["alerts", "snooze", "orders-goal-off_track", "--config", str(report), "--output", str(out)]
    assert main([*snooze, "--until", "2026-02-05"], clock=lambda: at(37)) == 2  # on 6 February
    assert capsys.readouterr().err == (
        "reporter: error: --until 2026-02-05 is in the past (today is 2026-02-06): a rule is snoozed up to "
        "and including a date from today on; nothing was changed\n"
    )
    assert not (out / "ledger.sqlite").exists()
    assert main([*snooze, "--until", "2026-02-06"], clock=lambda: at(37)) == 0  # today: quiet today


def test_the_french_digest_puts_a_no_break_space_before_the_owners_note_colon(tmp_path):
    from reporter.run.pipeline import run_report
    from tests import test_checkins

    with (tmp_path / "sales.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "amount"])
        writer.writerows([f"{month}-15", amount] for month, amount in test_checkins.REVENUE.items())
    path = tmp_path / "r.yaml"
    path.write_text(
        test_checkins.YAML.replace("locale: en_US", "locale: fr_FR")
        + "delivery:\n  email: {from: reporting@acme.test, to: [ceo@acme.test]}\n",
        encoding="utf-8",
    )
    assert (
        test_checkins.checkin(path, "grow", "--period", "2026-08", "--note", "Deux contrats ont glissé") == 0
    )
    out = tmp_path / "out"
    run_report(
        load_config(path, env={}), period="2026-08", now=dt.datetime(2026, 9, 2, 6, tzinfo=dt.UTC), output=out
    )
    message = email.message_from_bytes(
        (out / "ck" / "2026-08" / "email.eml").read_bytes(), policy=email.policy.default
    )
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "   Note du responsable\xa0: Deux contrats ont glissé\n" in text
