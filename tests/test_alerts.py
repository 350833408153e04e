"""Alerts between reports: a year of daily evaluations on an injected clock sends exactly one
message per labelled state change (real SMTP on loopback), a process killed mid-send does not
send twice, snooze and test behave as documented, rules are validated at file:line."""

from __future__ import annotations

import csv
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reporter.cli import main
from reporter.compute.database import open_database
from reporter.config import load_config
from reporter.config.model import Smtp
from reporter.delivery.alerting import run_alerts
from reporter.delivery.ledger import Ledger
from tests.smtp_server import Server

ZONE = ZoneInfo("Europe/Paris")
FIRST = dt.date(2026, 1, 1)  # day 1


def orders_on(n: int) -> int:
    """Orders on day n (1 = 1 January 2026): 110 a day against a target of 3,000 a month,
    except February: 110 on the 1st-4th, none on the 5th, 95 a day from the 6th to the 19th,
    200 on the 20th, then 110 again."""
    day = FIRST + dt.timedelta(days=n - 1)
    if day.month != 2 or day.day <= 4 or day.day > 20:
        return 110
    return {5: 0, 20: 200}.get(day.day, 95)


def visits_on(n: int) -> int:
    """Visits: about 1,000 a day (±10), 5,000 on day 199."""
    return 5000 if n == 199 else 1000 + (n * 37) % 21 - 10


# The events, by the day of the evaluation (at 08:00, on the data up to the day before):
# day 37 (6 Feb) judges 1-5 Feb: 440 orders for a pro-rated target of 3000 × 5/28 = 535.7,
# attainment 0.82: off track. Day 52 (21 Feb) judges 1-20 Feb: 440 + 14 × 95 + 200 = 1970 for
# 2142.9, attainment 0.92: no longer off track. Day 200 judges day 199: 5,000 visits against
# a median of about 1,000: unusual (and no "resolved" message the next day: an unusual day is
# an event).
LABELLED = {
    37: [("cfo@acme.test", "Alerts — 3,000 orders a month is off track")],
    52: [("cfo@acme.test", "Alerts — 3,000 orders a month is no longer off track")],
    200: [("ops@acme.test", "Alerts — Visits is unusual")],
}

YAML = """\
report: {id: al, title: Alerts, company: Acme, timezone: Europe/Paris, locale: en_US}
sources:
  daily: {type: csv, path: daily.csv, date_column: date}
metrics:
  orders: {source: daily, agg: sum, column: orders}
  visits: {source: daily, agg: sum, column: visits}
kpis:
  orders: {label: Orders, formula: orders, format: integer, direction: up}
  visits: {label: Visits, formula: visits, format: integer, direction: up}
objectives:
  - id: orders-goal
    title: 3,000 orders a month
    kpi: orders
    target: {value: 3000}
    owner: Sales director
    due: 2026-12-31
    actions:
      - {when: off_track, do: Call back every open quote, owner: Account managers}
alerts:
  schedule: "0 8 * * *"
  rules:
    - {objective: orders-goal, when: off_track, to: [cfo@acme.test]}
    - {kpi: visits, when: unusual, to: [ops@acme.test]}
delivery:
  email: {from: Reporting <r@acme.test>, to: [ceo@acme.test]}
quality: {require_complete_period: false}
"""


@pytest.fixture
def report(tmp_path: Path) -> Path:
    with (tmp_path / "daily.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "orders", "visits"])
        for n in range(1, 366):
            writer.writerow([(FIRST + dt.timedelta(days=n - 1)).isoformat(), orders_on(n), visits_on(n)])
    path = tmp_path / "r.yaml"
    path.write_text(YAML, encoding="utf-8")
    return path


def at(n: int) -> dt.datetime:
    """08:00 in Paris on day n: when the schedule fires."""
    return dt.datetime.combine(FIRST + dt.timedelta(days=n - 1), dt.time(8), ZONE)


def with_smtp(config, port: int):
    email = config.delivery.email.model_copy(
        update={"smtp": Smtp(host="127.0.0.1", port=port, security="none", timeout=10)}
    )
    return config.model_copy(update={"delivery": config.delivery.model_copy(update={"email": email})})


def test_a_year_of_daily_evaluations_sends_one_message_per_labelled_change(report, tmp_path):
    # the labels, checked against the data independently: orders to date against 3000 × d/days
    feb = [orders_on(n) for n in range(32, 60)]
    assert sum(feb[:5]) / (3000 * 5 / 28) < 0.9 <= sum(feb[:4]) / (3000 * 4 / 28)
    assert sum(feb[:19]) / (3000 * 19 / 28) < 0.9 <= sum(feb[:20]) / (3000 * 20 / 28)
    out = tmp_path / "out"
    out.mkdir()
    config = load_config(report, env={})
    database = open_database(config)
    got: dict[int, list[tuple[str, str]]] = {}
    started = time.monotonic()
    with Server(tmp_path) as server, Ledger(config.ledger_url(out)) as ledger:
        config = with_smtp(config, server.port)
        for n in range(1, 366):
            before = len(server.handler.received)
            outcomes = run_alerts(
                config, at(n), root=out, database=database, ledger=ledger, sleep=lambda s: None
            )
            assert all(o.state != "error" for o in outcomes), outcomes
            for received in server.handler.received[before:]:
                got.setdefault(n, []).append((received.rcpt_tos[0], received.message["Subject"]))
        elapsed = time.monotonic() - started
        rows = {row["rule"]: row for row in ledger.alert_rules_of("al")}
    database[0].close()
    assert got == LABELLED
    assert elapsed < 240  # 365 evaluations in-process
    # the ledger: the objective's rule clear since day 52, two messages; the unusual rule re-armed
    assert (rows["orders-goal-off_track"]["state"], rows["orders-goal-off_track"]["seq"]) == ("clear", 2)
    assert (rows["visits-unusual"]["state"], rows["visits-unusual"]["seq"]) == ("clear", 1)
    # the message: value, target, pace and action plan, in the report's language
    first = server.handler.received[0].message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert first == (
        "3,000 orders a month is off track.\n\n"
        "Value from Feb 1, 2026 to Feb 5, 2026: 440.\n"
        "Target to date: 536 (5 of 28 days of the period's 3,000).\n"
        "At this pace, Orders reaches 2,464 by the end of the period, for a target of 3,000.\n\n"
        "Action plan:\n"
        "- Call back every open quote — Account managers\n\n"
        "Rule orders-goal-off_track. To pause it: reporter alerts snooze orders-goal-off_track --until "
        f"YYYY-MM-DD --config {report} --output {out}\n"
    )


KILLED = """
import datetime as dt, sys
from pathlib import Path
from reporter.config import load_config
from reporter.config.model import Smtp
from reporter.delivery.alerting import run_alerts
from tests.test_alerts import at, with_smtp
config = with_smtp(load_config(Path(sys.argv[1]), env={}), int(sys.argv[2]))
run_alerts(config, at(int(sys.argv[3])), root=Path(sys.argv[4]))
"""


def test_killed_mid_send_then_restarted_is_still_exactly_once(report, tmp_path, capsys):
    out = tmp_path / "out"
    root = Path(__file__).resolve().parent.parent
    with Server(tmp_path) as server:
        server.handler.late_reply = 60.0  # the message is in; the 250 never comes before the kill
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED, str(report), str(server.port), "37", str(out)],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        deadline = time.monotonic() + 60
        while not server.handler.received and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert len(server.handler.received) == 1
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        server.handler.late_reply = 0.0
        config = with_smtp(load_config(report, env={}), server.port)
        said = []
        for n in (37, 38, 39):  # restarted, and the days after: still off track, nothing more
            said.append({o.rule: o for o in run_alerts(config, at(n), root=out, sleep=lambda s: None)})
        # the evaluation that finds it pending says so, once, with the command that settles it
        assert [d["orders-goal-off_track"].state for d in said] == ["error", "firing", "firing"]
        assert said[0]["orders-goal-off_track"].note == (
            "not sent to cfo@acme.test: a previous evaluation stopped after sending began (the server may "
            "have accepted it): not re-sent; check cfo@acme.test's mailbox, then run 'reporter resolve "
            f"{report} 1 cfo@acme.test --alert orders-goal-off_track --sent --output {out}' if it arrived, "
            "or '--resend' if it did not (the rule's next evaluation sends it again)"
        )
        assert len(server.handler.received) == 1
        with Ledger(config.ledger_url(out)) as ledger:
            (delivery,) = ledger.all("al/alert/orders-goal-off_track")
        assert (delivery.period, delivery.recipient, delivery.state) == ("#1", "cfo@acme.test", "review")
        assert main(["alerts", "status", "--config", str(report), "--output", str(out)]) == 0
        assert (
            f"  message 1 to cfo@acme.test: review after 0 attempt(s), Message-ID {delivery.message_id} — a "
            "previous evaluation stopped after sending began (the server may have accepted it): not re-sent: "
            f"check cfo@acme.test's mailbox, then run 'reporter resolve {report} 1 cfo@acme.test --alert "
            f"orders-goal-off_track --sent --output {out}' if it arrived, or '--resend' if it did not (the "
            "rule's next evaluation sends it again)"
        ) in capsys.readouterr().out.splitlines()
        run_alerts(config, at(52), root=out, sleep=lambda s: None)  # back: the resolved message
    assert [r.message["Subject"] for r in server.handler.received] == [
        "Alerts — 3,000 orders a month is off track",
        "Alerts — 3,000 orders a month is no longer off track",
    ]


def test_snooze_holds_messages_until_the_day_after_then_announces_the_state(report, tmp_path, capsys):
    out = tmp_path / "out"
    with Server(tmp_path) as server:
        config = with_smtp(load_config(report, env={}), server.port)
        run_alerts(config, at(30), root=out, sleep=lambda s: None)  # first evaluation: clear, silent
        args = ["alerts", "snooze", "orders-goal-off_track", "--until", "2026-02-10"]
        assert main([*args, "--config", str(report), "--output", str(out)], clock=lambda: at(30)) == 0
        assert capsys.readouterr().out == (
            "al orders-goal-off_track: snoozed until 2026-02-10 (inclusive): evaluated and recorded, nothing "
            "sent; from the day after, its state is announced if it changed\n"
        )
        for n in range(31, 42):  # off track from day 37, snoozed to 10 February (day 41)
            run_alerts(config, at(n), root=out, sleep=lambda s: None)
        assert server.handler.received == []
        run_alerts(config, at(42), root=out, sleep=lambda s: None)  # 11 February: awake, still off track
        assert [r.message["Subject"] for r in server.handler.received] == [
            "Alerts — 3,000 orders a month is off track"
        ]
        assert (
            main(["alerts", "status", "--config", str(report), "--output", str(out)], clock=lambda: at(42))
            == 0
        )
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith(
            "al orders-goal-off_track: FIRING (off_track) since 2026-02-06 07:00 UTC, "
        )
        assert "; message 1 announced firing on 2026-02-11 07:00 UTC; snoozed until 2026-02-10" in lines[0]
        assert lines[1].startswith("al visits-unusual: clear (normal) since 2026-01-30 07:00 UTC")


def test_alerts_test_sends_one_marked_message_per_rule_and_records_nothing(report, tmp_path, capsys):
    out = tmp_path / "out"
    text = report.read_text(encoding="utf-8").replace(
        "  email: {from: Reporting <r@acme.test>, to: [ceo@acme.test]}",
        "  email: {from: Reporting <r@acme.test>, to: [ceo@acme.test], smtp: {host: 127.0.0.1, port: PORT, "
        "security: none}}",
    )
    with Server(tmp_path) as server:
        report.write_text(text.replace("PORT", str(server.port)), encoding="utf-8")
        assert main(["alerts", "test", str(report), "--output", str(out)], clock=lambda: at(37)) == 0
    assert capsys.readouterr().out == (
        "orders-goal-off_track: test message sent to cfo@acme.test\n"
        "visits-unusual: test message sent to ops@acme.test\n"
        "2 test messages sent; no rule's state changed\n"
    )
    subjects = [r.message["Subject"] for r in server.handler.received]
    assert subjects == [
        "[TEST] Alerts — 3,000 orders a month is off track",
        "[TEST] Alerts — Visits is unusual",
    ]
    body = server.handler.received[0].message.get_body(("plain",)).get_content()
    assert body.startswith(
        "This is a test message of the alert rule orders-goal-off_track: nothing has changed."
    )
    assert not (out / "ledger.sqlite").exists()


def test_alert_rules_are_validated_at_their_line(report, capsys):
    text = report.read_text(encoding="utf-8").replace(
        "    - {kpi: visits, when: unusual, to: [ops@acme.test]}",
        "    - {kpi: visits, when: off_track, to: [ops@acme.test]}\n"
        "    - {objective: orders-gaol, when: off_track, to: [ops@acme.test]}\n"
        "    - {kpi: visits, when: {above: 2000}}\n"
        "    - {kpi: visits, when: sometimes, to: [ops@acme.test], chat: [slack]}",
    )
    report.write_text(text, encoding="utf-8")
    assert main(["validate", str(report)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{report}:23:27: alerts.rules[1].when: 'off_track' is about an objective; a kpi rule takes "
        "unusual, above or below; name the objective instead (objective: ...), or write when: {above: ...}",
        f"{report}:24:19: alerts.rules[2].objective: unknown objective 'orders-gaol'; "
        "did you mean 'orders-goal'?",
        f"{report}:25:7: alerts.rules[3]: the rule sends nowhere; add to: [address] and/or chat: [slack]",
        f"{report}:26:27: alerts.rules[4].when: 'sometimes' is not a condition; write off_track, at_risk, "
        "unusual, pacing_off, {above: X} or {below: X}",
        f"{report}:26:66: alerts.rules[4].chat[0]: no 'slack' channel in delivery.chat; add it to "
        "delivery.chat (kind and webhook_env), or leave it out",
        "5 errors: nothing was run or sent.",
    ]


def test_a_rule_whose_when_is_wrong_still_has_its_names_checked(report, capsys):
    # every mistake of a rule in one validate: the unknown KPI and channel, not only the 'when'
    text = report.read_text(encoding="utf-8").replace(
        "    - {kpi: visits, when: unusual, to: [ops@acme.test]}",
        "    - {kpi: visist, when: unusul, chat: [slack]}\n"
        "    - {objective: orders-gaol, when: {above: x}, to: [ops@acme.test]}\n"
        "    - {kpi: visits, when: sometimes, to: [ops@acme.test]}",
    )
    report.write_text(text, encoding="utf-8")
    assert main(["validate", str(report)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{report}:23:13: alerts.rules[1].kpi: unknown KPI 'visist'; did you mean 'visits'?",
        f"{report}:23:27: alerts.rules[1].when: 'unusul' is not a condition; write off_track, at_risk, "
        "unusual, pacing_off, {above: X} or {below: X}",
        f"{report}:23:42: alerts.rules[1].chat[0]: no 'slack' channel in delivery.chat; add it to "
        "delivery.chat (kind and webhook_env), or leave it out",
        f"{report}:24:19: alerts.rules[2].objective: unknown objective 'orders-gaol'; "
        "did you mean 'orders-goal'?",
        f"{report}:24:38: alerts.rules[2].when: expected a condition, got {{'above': 'x'}}; write off_track, "
        "at_risk, unusual, pacing_off, {above: X} or {below: X}",
        f"{report}:25:27: alerts.rules[3].when: 'sometimes' is not a condition; write off_track, at_risk, "
        "unusual, pacing_off, {above: X} or {below: X}",
        "6 errors: nothing was run or sent.",
    ]


def test_the_scheduler_evaluates_alerts_at_their_schedule_and_a_failing_rule_stops_nothing(report, tmp_path):
    from reporter.run.schedule import Scheduler

    out = tmp_path / "out"
    with Server(tmp_path) as server:
        server.handler.rcpt_reply = lambda address, attempt: (
            "550 5.1.1 no such user" if "nobody" in address else None
        )
        text = report.read_text(encoding="utf-8").replace(
            "  email: {from: Reporting <r@acme.test>, to: [ceo@acme.test]}",
            "  email: {from: Reporting <r@acme.test>, to: [ceo@acme.test], smtp: {host: 127.0.0.1, "
            f"port: {server.port}, security: none}}}}",
        )
        text = text.replace(
            "    - {objective: orders-goal, when: off_track, to: [cfo@acme.test]}",
            "    - {objective: orders-goal, when: at_risk, to: [nobody@acme.test]}\n"
            "    - {objective: orders-goal, when: off_track, to: [cfo@acme.test]}",
        )
        report.write_text(text, encoding="utf-8")
        clock = [at(36) - dt.timedelta(minutes=3)]
        scheduler = Scheduler(report, output=out, clock=lambda: clock[0], env={})
        scheduler.load()
        assert scheduler.configs == []  # no delivery.schedule: alerts only
        assert scheduler.tick() == []  # before 08:00: nothing fired
        assert scheduler.next_wake() == at(36)
        clock[0] = at(37) + dt.timedelta(minutes=1)  # the fires of days 36 and 37: one evaluation
        decisions = scheduler.tick()
    assert decisions == [
        "al alert orders-goal-at_risk: FAILED (not sent to nobody@acme.test: 550 5.1.1 no such user); "
        "the other rules went on",
        "al alert orders-goal-off_track: firing, sent to cfo@acme.test",
    ]
    assert [r.rcpt_tos for r in server.handler.received] == [["cfo@acme.test"]]


def test_a_rule_with_chat_posts_its_message_to_the_channel_once(report, tmp_path):
    from tests.webhook_server import WebhookServer

    text = report.read_text(encoding="utf-8").replace(
        "    - {objective: orders-goal, when: off_track, to: [cfo@acme.test]}",
        "    - {objective: orders-goal, when: off_track, to: [cfo@acme.test], chat: [slack]}",
    )
    text = text.replace(
        "  email: {from: Reporting <r@acme.test>, to: [ceo@acme.test]}",
        "  email: {from: Reporting <r@acme.test>, to: [ceo@acme.test]}\n"
        "  chat: [{kind: slack, webhook_env: SLACK_WEBHOOK_URL}]",
    )
    report.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    with Server(tmp_path) as server, WebhookServer() as hook:
        config = with_smtp(load_config(report, env={}), server.port)
        env = {"SLACK_WEBHOOK_URL": hook.url()}
        for n in (36, 37, 38):
            run_alerts(config, at(n), root=out, env=env, sleep=lambda s: None)
    (posted,) = hook.received
    card = posted.json()
    assert card["text"].startswith("Alerts — 3,000 orders a month is off track\nValue from Feb 1, 2026")
    assert card["blocks"][0]["text"]["text"] == "Alerts — 3,000 orders a month is off track"
    assert "Action plan: Call back every open quote — Account managers" in card["text"]
    assert [r.rcpt_tos for r in server.handler.received] == [["cfo@acme.test"]]


def test_each_condition_is_judged_on_the_period_to_date(report):
    from reporter.compute.alerts import evaluate

    text = report.read_text(encoding="utf-8").replace(
        "    - {kpi: visits, when: unusual, to: [ops@acme.test]}",
        "    - {objective: orders-goal, when: at_risk, to: [ops@acme.test]}\n"
        "    - {objective: orders-goal, when: pacing_off, to: [ops@acme.test]}\n"
        "    - {kpi: orders, when: {above: 1000}, to: [ops@acme.test]}\n"
        "    - {kpi: orders, when: {below: 500}, to: [ops@acme.test]}\n"
        "    - {objective: orders-ytd, when: off_track, to: [ops@acme.test]}",
    )
    text = text.replace(
        "alerts:\n",
        "  - id: orders-ytd\n"
        "    title: 3,000 orders a month, year to date\n"
        "    kpi: orders\n"
        "    target: {value: 3000}\n"
        "    cumulative: true\n"
        "    owner: Sales director\n"
        "    due: 2026-12-31\n"
        "alerts:\n",
    )
    report.write_text(text, encoding="utf-8")
    config = load_config(report, env={})
    con, infos = open_database(config)

    def judged(n: int) -> dict[str, tuple[bool, str, float | None, float | None]]:
        return {o.rule: (o.firing, o.state, o.value, o.target) for o in evaluate(config, at(n), con, infos)}

    feb = {d: sum(orders_on(n) for n in range(32, 32 + d)) for d in range(1, 29)}  # 1 to d February
    day36, day37, day45, day52 = judged(36), judged(37), judged(45), judged(52)
    con.close()
    # at_risk fires while at risk or off track: 1970 / 2142.9 = 0.92 on day 52, 1.03 on day 36
    assert day52["orders-goal-at_risk"][:2] == (True, "at_risk")
    assert day36["orders-goal-at_risk"][:2] == (False, "on_track")
    assert day36["orders-goal-at_risk"][2:] == pytest.approx((feb[4], 3000 * 4 / 28))
    # the pace: the value to date ÷ the share of February elapsed, against 3,000
    assert feb[5] / (5 / 28) < 3000 <= feb[4] / (4 / 28)
    assert day37["orders-goal-pacing_off"][0] is True
    assert day36["orders-goal-pacing_off"][0] is False
    # thresholds on the value to date
    assert feb[8] <= 1000 < feb[13]
    assert (judged_above := (day45["orders-above"][0], day37["orders-above"][0])) == (True, False), (
        judged_above
    )
    assert day37["orders-below"][:3] == (True, "below", feb[5])
    # a cumulative objective: January's 3,000 plus 5/28 of February's, against the year to date
    assert day37["orders-ytd-off_track"][:2] == (False, "on_track")
    assert day37["orders-ytd-off_track"][2:] == pytest.approx((31 * 110 + feb[5], 3000 + 3000 * 5 / 28))


def test_an_alert_whose_outcome_the_ledger_cannot_record_goes_to_the_journal_like_a_report(report, tmp_path):
    """Alerts go through ``ExactlyOnce.deliver_once``: when the ledger is locked by another
    session from the moment the server has the message, its outcome is noted in the fallback
    journal and the rule fails saying so (instead of being left pending, then put in review);
    the next evaluation applies the journal first: the message is recorded as sent, not sent
    again. The Message-ID is the one alerts always had."""
    import json
    import sqlite3

    from reporter.render.digest import message_id
    from tests.smtp_server import RawServer

    out = tmp_path / "out"
    out.mkdir()
    journal = out / "ledger-journal.jsonl"
    held: list[sqlite3.Connection] = []

    def lock(_received) -> None:  # another session takes the ledger's write lock and keeps it
        session = sqlite3.connect(out / "ledger.sqlite", isolation_level=None, check_same_thread=False)
        session.execute("BEGIN IMMEDIATE")
        held.append(session)

    with RawServer() as server:
        config = with_smtp(load_config(report, env={}), server.port)
        server.on_message = lock
        with Ledger(config.ledger_url(out), lock_timeout=0.5) as ledger:
            outcomes = run_alerts(config, at(37), root=out, ledger=ledger, sleep=lambda s: None)
        (session,) = held
        session.rollback()
        session.close()
        server.on_message = lambda received: None
        said = {o.rule: o for o in outcomes}["orders-goal-off_track"]
        assert said.state == "error"
        assert said.note.startswith(
            "LedgerError: al/alert/orders-goal-off_track #1: sent to cfo@acme.test at "
        )
        assert said.note.endswith(
            f"; noted in {journal}: once the ledger is back, the rule's next evaluation records it from "
            "there, and it is not sent again"
        )
        (entry,) = [json.loads(line) for line in journal.read_text().splitlines()]
        (sent,) = server.received
        sent_id = sent.message["Message-ID"].strip()
        assert sent_id == message_id("al.alert.orders-goal-off_track", "1", "cfo@acme.test")
        assert {k: entry[k] for k in ("report", "period", "recipient", "state", "message_id")} == {
            "report": "al/alert/orders-goal-off_track",
            "period": "#1",
            "recipient": "cfo@acme.test",
            "state": "sent",
            "message_id": sent_id,
        }
        for n in (37, 38):  # the ledger is back: the journal is applied first, nothing is sent again
            outcomes = run_alerts(config, at(n), root=out, sleep=lambda s: None)
            assert [o.state for o in outcomes] == ["firing", "clear"], outcomes
        assert len(server.received) == 1
    assert not journal.exists()
    with Ledger(config.ledger_url(out)) as ledger:
        (delivery,) = ledger.all("al/alert/orders-goal-off_track")
    assert (delivery.period, delivery.state, delivery.message_id) == (
        "#1",
        "sent",
        sent_id,
    )


def test_a_pending_delivery_is_left_to_its_live_run_for_reports_and_set_to_review_for_alerts(
    report, tmp_path
):
    """The one difference between a report's and an alert's delivery, decided in
    ``reporter.delivery.once``: a report's run asks whether the run that claimed a pending
    delivery is alive (it is: skipped); an alert evaluation (``registered_runs=False``), which
    has no run to ask, sets it to review at once. Neither sends it (nothing in the outbox)."""
    from reporter.delivery.alerting import AlertEmail
    from reporter.delivery.mailer import Mailer
    from reporter.delivery.once import ExactlyOnce, Key

    out = tmp_path / "out"
    out.mkdir()
    config = load_config(report, env={})
    now = at(37).astimezone(dt.UTC)
    key = Key("al/alert/orders-goal-off_track", "#1", "cfo@acme.test")
    channel = AlertEmail(config, Mailer(None, out / "outbox"))
    with Ledger(config.ledger_url(out)) as ledger:
        live = ledger.start_run("al", "2026-02", now)  # another run, started a moment ago
        ledger.claim(
            *vars(key).values(), 1, "<x>", now, forced=False, reason=None, channel="outbox", run_id=live
        )
        for registered in (True, False):
            once = ExactlyOnce(ledger, config, out, 0, now, registered_runs=registered)
            done = once.deliver_once(channel, key, lambda msg_id: pytest.fail("built for sending"))
            assert (done.state, done.flagged, ledger.latest(*vars(key).values()).state) == (
                ("skipped", False, "pending") if registered else ("review", True, "review")
            )
        assert done.error == (
            "a previous evaluation stopped after sending began (the server may have accepted it): not "
            f"re-sent; check cfo@acme.test's mailbox, then run 'reporter resolve {report} 1 cfo@acme.test "
            "--alert orders-goal-off_track --sent' if it arrived, or '--resend' if it did not (the rule's "
            "next evaluation sends it again)"
        )
    assert not (out / "outbox").exists()


def test_a_rule_that_raises_fails_alone_and_the_others_are_evaluated_and_sent(report, tmp_path, monkeypatch):
    """Each rule's failure is its own, whether its evaluation (compute) or its sending raises:
    the other rule is still judged and its message still goes out (day 37: orders off track)."""
    import reporter.compute.alerts as computing
    import reporter.delivery.alerting as alerting

    config = load_config(report, env={})
    observe, one = computing._observe, alerting._one

    def observe_breaking_visits(config, rule, *args, **kwargs):
        if rule.kpi == "visits":
            raise ZeroDivisionError("visits broken on purpose")
        return observe(config, rule, *args, **kwargs)

    monkeypatch.setattr(computing, "_observe", observe_breaking_visits)
    out = tmp_path / "one"
    got = {o.rule: o for o in run_alerts(config, at(37), root=out, sleep=lambda s: None)}
    assert (got["visits-unusual"].state, got["visits-unusual"].detail) == ("error", "error")
    assert got["visits-unusual"].note == "ZeroDivisionError: visits broken on purpose"
    assert (got["orders-goal-off_track"].state, got["orders-goal-off_track"].sent) == (
        "firing",
        ["cfo@acme.test"],
    )

    monkeypatch.setattr(computing, "_observe", observe)

    def one_breaking_orders(config, rule, *args, **kwargs):
        if rule.objective == "orders-goal":
            raise RuntimeError("sending broken on purpose")
        return one(config, rule, *args, **kwargs)

    monkeypatch.setattr(alerting, "_one", one_breaking_orders)
    got = {o.rule: o for o in run_alerts(config, at(37), root=tmp_path / "two", sleep=lambda s: None)}
    assert got["orders-goal-off_track"].state == "error"
    assert got["orders-goal-off_track"].note == "RuntimeError: sending broken on purpose"
    assert got["visits-unusual"].state == "clear"


RATIO_AND_YTD = """\
  ratio: {label: Conversion rate, formula: orders / visits, format: percent, direction: up}
  per_order: {label: Visits per order, formula: visits / orders, format: number, direction: down}
  capped: {label: Capped visits, formula: visits, format: integer, direction: down}
objectives:
  - {id: conv, title: Conversion at 12%, kpi: ratio, target: {value: 0.12}, owner: CMO, due: 2026-12-31}
  - {id: cost, title: At most 8 visits an order, kpi: per_order, target: {value: 8}, owner: CMO,
     due: 2026-12-31}
  - {id: more, title: Orders year to date, kpi: orders, target: {value: 3300}, cumulative: true,
     owner: S, due: 2026-12-31}
  - {id: done, title: Orders year to date, kpi: orders, target: {value: 1000}, cumulative: true,
     owner: S, due: 2026-12-31}
  - {id: room, title: Visits year to date, kpi: capped, target: {value: 31500}, cumulative: true,
     owner: S, due: 2026-12-31}
  - {id: over, title: Visits year to date, kpi: capped, target: {value: 15000}, cumulative: true,
     owner: S, due: 2026-12-31}
alerts:
  schedule: "0 8 * * *"
  rules:
""" + "".join(
    f"    - {{objective: {o}, when: at_risk, to: [ops@acme.test]}}\n"
    for o in ("conv", "cost", "more", "done", "room", "over")
)


@pytest.mark.parametrize("locale", ["en_US", "fr_FR"])
def test_a_ratio_or_a_year_to_date_objective_says_what_the_period_to_date_means(report, locale):
    """No pace is projected for a ratio (its value to date is no forecast: said so) nor for a
    cumulative objective, which says instead what is still needed (or still allowed, direction
    down) by the period's end, a day, against the day's average so far; its value is the year's
    to date and its target is split into the earlier periods' and this one's pro rata."""
    from reporter.compute.alerts import evaluate
    from reporter.delivery.alerting import alert_text

    text = report.read_text(encoding="utf-8")
    head, _, _ = text.partition("objectives:\n")
    tail = text[text.index("delivery:\n") :]
    report.write_text(
        head.replace("locale: en_US", f"locale: {locale}") + RATIO_AND_YTD + tail, encoding="utf-8"
    )
    config = load_config(report, env={})
    con, infos = open_database(config)
    found = {o.objective: o for o in evaluate(config, at(37), con, infos)}  # data to 5 February
    con.close()
    rules = {r.objective: r for r in config.alerts.rules}
    facts = {k: alert_text(config, rules[k], o, "firing").facts for k, o in found.items()}
    # the numbers, from the rows: 5 of February's 28 days elapsed, 23 left
    orders_ytd = sum(orders_on(n) for n in range(1, 37))
    visits_ytd = sum(visits_on(n) for n in range(1, 37))
    orders_feb = sum(orders_on(n) for n in range(32, 37))
    visits_feb = sum(visits_on(n) for n in range(32, 37))
    assert (orders_ytd, orders_feb) == (31 * 110 + 440, 440)
    needed, room, over = 6600 - orders_ytd, 63000 - visits_ytd, visits_ytd - 30000
    assert needed > 0
    assert room > 0
    assert over > 0
    assert orders_ytd >= 2000  # the "done" objective's 2 × 1000 is reached
    assert found["conv"].value == pytest.approx(orders_feb / visits_feb)
    assert found["more"].value == orders_ytd
    en = locale == "en_US"

    def num(v: float, decimals: int = 0) -> str:
        text = f"{v:,.{decimals}f}"
        return text if en else text.replace(",", "\u202f").replace(".", ",")

    if en:
        ratio = (
            "is not a total that grows day by day, so its value to date is no forecast: it is judged as it "
            "stands and, with 23 days left in the period, can still move either way."
        )
        assert facts["conv"] == [
            "Value from Feb 1, 2026 to Feb 5, 2026: 8.8%.",
            "Target: 12.0%.",
            f"Conversion rate {ratio}",
        ]
        assert facts["cost"][-1] == f"Visits per order {ratio}"
        assert facts["more"] == [
            f"Value from Jan 1, 2026 to Feb 5, 2026: {num(orders_ytd)}.",
            f"Target for the year to date: {num(3300 + 3300 * 5 / 28)} (3,300 for the year's earlier "
            "periods, plus 5 of 28 days of this period's 3,300).",
            f"To reach its year-to-date target of 6,600 by the end of the period, Orders needs {num(needed)} "
            f"more in 23 days: {num(needed / 23, 1)} a day, against {num(orders_feb / 5, 1)} a day so far "
            "this period.",
        ]
        assert facts["done"][-1] == (
            "Orders has already reached 2,000, its year-to-date target for the end of the period."
        )
        assert facts["room"][-1] == (
            "To stay within its year-to-date target of 63,000 by the end of the period, Capped visits "
            f"can add at most {num(room)} in 23 days: {num(room / 23, 1)} a day, against "
            f"{num(visits_feb / 5, 1)} a day so far this period."
        )
        assert facts["over"][-1] == (
            f"Capped visits is already {num(over)} over its year-to-date target of 30,000 for the end of "
            "the period."
        )
    else:
        nb = "\xa0"
        ratio = (
            f"n'est pas un total qui grossit jour après jour{nb}: sa valeur à date n'est donc pas une "
            "prévision. Elle est jugée telle quelle et, à 23 jours de la fin de la période, peut encore "
            "varier dans un sens comme dans l'autre."
        )
        assert facts["conv"] == [
            f"Valeur du 1 févr. 2026 au 5 févr. 2026{nb}: 8,8{nb}%.",
            f"Objectif{nb}: 12,0{nb}%.",
            f"Conversion rate {ratio}",
        ]
        assert facts["more"] == [
            f"Valeur du 1 janv. 2026 au 5 févr. 2026{nb}: {num(orders_ytd)}.",
            f"Objectif cumulé à date{nb}: {num(3300 + 3300 * 5 / 28)} ({num(3300)} pour les périodes "
            f"précédentes de l'exercice, plus 5 jours sur 28 de l'objectif de la période, {num(3300)}).",
            f"Pour atteindre son objectif cumulé de {num(6600)} à la fin de la période, Orders doit encore "
            f"progresser de {num(needed)} en 23 jours{nb}: {num(needed / 23, 1)} par jour, contre "
            f"{num(orders_feb / 5, 1)} par jour depuis le début de la période.",
        ]
        assert facts["over"][-1] == (
            f"Capped visits dépasse déjà de {num(over)} son objectif cumulé de {num(30000)} pour la fin de "
            "la période."
        )
    # none of them projects a pace to the period's end
    assert not [f for said in facts.values() for f in said if "At this pace" in f or "À ce rythme" in f]


def smtp_late(config, port: int, data_timeout: float):
    """``with_smtp``, the client waiting at most ``data_timeout`` for the reply to the message."""
    email = config.delivery.email.model_copy(
        update={
            "smtp": Smtp(host="127.0.0.1", port=port, security="none", timeout=10, data_timeout=data_timeout)
        }
    )
    return config.model_copy(update={"delivery": config.delivery.model_copy(update={"email": email})})


@pytest.mark.parametrize(("settle", "then"), [("--resend", 1), ("--sent", 0)])
def test_an_alert_in_review_is_settled_by_resolve_like_a_report(report, tmp_path, capsys, settle, then):
    """The server stores the alert but answers after the client stopped waiting: the message is in
    review, and evaluations send nothing. ``reporter resolve N ADDRESS --alert RULE`` settles it
    through the state machine of every delivery: ``--resend`` (it did not arrive) and the next
    evaluation sends it exactly once more, with the same Message-ID; ``--sent`` and nothing more
    is ever sent. ``reporter alerts resolve`` points to it."""
    out = tmp_path / "out"
    key = ("al/alert/orders-goal-off_track", "#1", "cfo@acme.test")
    with Server(tmp_path) as server:
        config = smtp_late(load_config(report, env={}), server.port, 0.5)
        server.handler.late_reply = 2.0
        got = {o.rule: o for o in run_alerts(config, at(37), root=out, sleep=lambda s: None)}
        said = got["orders-goal-off_track"]
        assert said.state == "error"
        assert said.note.endswith(
            "not re-sent: check cfo@acme.test's mailbox, then run 'reporter resolve "
            f"{report} 1 cfo@acme.test --alert orders-goal-off_track --sent --output {out}' if it arrived, "
            "or '--resend' if it did not (the rule's next evaluation sends it again)"
        )
        server.handler.late_reply = 0.0
        run_alerts(config, at(38), root=out, sleep=lambda s: None)  # in review: not sent again
        assert len(server.handler.received) == 1
        first_id = server.handler.received[0].message["Message-ID"].strip()
        capsys.readouterr()
        # the command a user may try first under 'reporter alerts' points to the one that settles it
        assert main(["alerts", "resolve", "orders-goal-off_track", "1", "cfo@acme.test", settle]) == 2
        assert capsys.readouterr().err == (
            "reporter: error: an alert message in review is settled like a report's delivery, by "
            "'reporter resolve' with --alert: run 'reporter resolve CONFIG 1 cfo@acme.test --alert "
            f"orders-goal-off_track {settle}' "
            + (
                "(it did not arrive; '--sent' if it arrived)"
                if settle == "--resend"
                else "(it arrived; '--resend' if it did not)"
            )
            + "; 'reporter status CONFIG' lists each message in review with its command; "
            "nothing was changed\n"
        )
        args = ["resolve", str(report), "1", "cfo@acme.test", "--alert", "orders-goal-off_track"]
        assert main([*args, settle, "--output", str(out)]) == 0
        with Ledger(config.ledger_url(out)) as ledger:
            latest = ledger.latest(*key)
        assert (latest.version, latest.state) == (1, "failed" if settle == "--resend" else "sent")
        assert capsys.readouterr().out == (
            "al alert orders-goal-off_track message 1 to cfo@acme.test: to be sent again, with the same "
            f"Message-ID {first_id}, by the rule's next evaluation (reporter schedule, alerts.schedule "
            "'0 8 * * *')\n"
            if settle == "--resend"
            else "al alert orders-goal-off_track message 1 to cfo@acme.test: recorded as sent; nothing was "
            "sent, and it is never sent again\n"
        )
        assert len(server.handler.received) == 1  # resolve itself sends nothing
        if settle == "--resend":  # settled: the next evaluation sends it, not this command
            assert main([*args, "--resend", "--output", str(out)]) == 2
            assert capsys.readouterr().err == (
                "reporter: error: al alert orders-goal-off_track message 1 to cfo@acme.test: failed, not in "
                "review; the rule's next evaluation sends it again\n"
            )
        for n in (39, 40):  # the next evaluations: exactly one more message with --resend, none with --sent
            got = {o.rule: o for o in run_alerts(config, at(n), root=out, sleep=lambda s: None)}
            assert got["orders-goal-off_track"].state == "firing"
        assert len(server.handler.received) == 1 + then
        if then:
            again = server.handler.received[1].message
            assert again["Message-ID"].strip() == first_id
            assert again["Subject"] == "Alerts — 3,000 orders a month is off track"
        with Ledger(config.ledger_url(out)) as ledger:
            assert ledger.latest(*key).state == "sent"
        # settled: resolving it again is refused, saying why
        assert main([*args, settle, "--output", str(out)]) == 2
        assert capsys.readouterr().err == (
            "reporter: error: al alert orders-goal-off_track message 1 to cfo@acme.test: sent, not in "
            "review; nothing to settle: it is never sent again\n"
        )


def test_resolve_of_an_alert_refuses_what_it_cannot_settle_saying_why(report, tmp_path, capsys, monkeypatch):
    """Each refusal of ``reporter resolve --alert`` is exit 2, one line, and changes nothing: a
    period given for the message's number, an unknown rule or message, a message pending, a
    ``--resend`` to an address the rule no longer has, or that unsubscribed, or of a message the
    rule has announced past; a report's delivery asked for an address that only has alert messages in review
    names their commands."""
    out = tmp_path / "out"
    key = ("al/alert/orders-goal-off_track", "#1", "cfo@acme.test")

    def refused(*args: str, config: Path = report) -> str:
        capsys.readouterr()
        assert main(["resolve", str(config), *args, "--output", str(out)]) == 2
        return capsys.readouterr().err.removeprefix("reporter: error: ").rstrip("\n")

    assert refused("1", "cfo@acme.test", "--alert", "orders-goal-off_track", "--sent") == (
        f"no ledger in {out} (ledger.sqlite): nothing was sent from there; see --output"
    )
    with Server(tmp_path) as server:
        config = smtp_late(load_config(report, env={}), server.port, 0.5)
        server.handler.late_reply = 2.0
        run_alerts(config, at(37), root=out, sleep=lambda s: None)  # message 1 in review
        server.handler.late_reply = 0.0
        name = "al alert orders-goal-off_track message"
        assert refused("2026-02", "cfo@acme.test", "--alert", "orders-goal-off_track", "--sent") == (
            "--alert orders-goal-off_track: give the number of the message in review (e.g. 1), not "
            "'2026-02': 'reporter status' lists each message in review with it"
        )
        assert refused("1", "cfo@acme.test", "--alert", "orders-goal", "--sent") == (
            f"--alert orders-goal: no such alert rule in {report}; its rules are: orders-goal-off_track, "
            "visits-unusual"
        )
        assert refused("2", "cfo@acme.test", "--alert", "orders-goal-off_track", "--sent") == (
            f"{name} 2 to cfo@acme.test: no such message in the ledger; 'reporter status' lists those in "
            "review"
        )
        assert refused("2026-02", "cfo@acme.test", "--sent") == (
            "al 2026-02: no delivery to cfo@acme.test in the ledger; its alert messages in review are "
            f"settled with --alert: 'reporter resolve {report} 1 cfo@acme.test --alert orders-goal-off_track "
            f"--sent --output {out}'"
        )
        moved = tmp_path / "moved.yaml"  # the rule now writes to someone else
        moved.write_text(report.read_text().replace("to: [cfo@acme.test]", "to: [cso@acme.test]"))
        assert refused(
            "1", "cfo@acme.test", "--alert", "orders-goal-off_track", "--resend", config=moved
        ) == (
            f"{name} 1 to cfo@acme.test: {moved} no longer sends this rule's messages to cfo@acme.test: "
            "cannot send it again (--sent records it as delivered)"
        )
        monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(at(40).timestamp())))  # unsubscribed on day 40
        assert main(["unsubscribe", str(report), "cfo@acme.test", "--output", str(out)]) == 0
        monkeypatch.delenv("SOURCE_DATE_EPOCH")
        assert refused("1", "cfo@acme.test", "--alert", "orders-goal-off_track", "--resend") == (
            f"{name} 1 to cfo@acme.test: unsubscribed on 2026-02-09 (reporter unsubscribe), not sent; "
            f"'reporter subscribe {report} cfo@acme.test --output {out}' sends to it again; cannot send it "
            "again (--sent closes it)"
        )
        assert main(["subscribe", str(report), "cfo@acme.test", "--output", str(out)]) == 0
        run_alerts(config, at(52), root=out, sleep=lambda s: None)  # back on track: message 2 is sent
        assert len(server.handler.received) == 2
        assert refused("1", "cfo@acme.test", "--alert", "orders-goal-off_track", "--resend") == (
            f"{name} 1 to cfo@acme.test: the rule announced its state again since (message 2, clear): an "
            "older message is never sent again; --sent closes it"
        )
        with Ledger(config.ledger_url(out)) as ledger:
            assert ledger.latest(*key).state == "review"  # nothing changed
            now = at(53).astimezone(dt.UTC)  # an evaluation sending message 3 right now
            ledger.claim(
                key[0], "#3", key[2], 1, "<x>", now, forced=False, reason=None, channel="smtp", run_id=0
            )
        assert refused("3", "cfo@acme.test", "--alert", "orders-goal-off_track", "--sent") == (
            f"{name} 3 to cfo@acme.test: pending, not in review; it is being sent, or the evaluation sending "
            "it stopped: the rule's next evaluation then sets it to review, to be settled here"
        )
        settle = ["resolve", str(report), "1", "cfo@acme.test", "--alert", "orders-goal-off_track", "--sent"]
        assert main([*settle, "--output", str(out)]) == 0
        assert len(server.handler.received) == 2


def test_status_lists_alert_messages_in_review_failed_and_journaled_with_what_to_do(report, tmp_path, capsys):
    """``reporter status`` lists a report's alert messages waiting for something beside its own
    deliveries, and ``reporter alerts status`` under their rule, in the same words: in review
    with its Message-ID and the ``reporter resolve`` command, failed with what happens next, and
    noted in the fallback journal while the ledger was lost."""
    from reporter.delivery.journal import note

    out = tmp_path / "out"
    two = tmp_path / "two.yaml"  # the rule writes to cto too, whose server refuses it
    two.write_text(report.read_text().replace("to: [cfo@acme.test]", "to: [cfo@acme.test, cto@acme.test]"))
    with Server(tmp_path) as server:
        config = smtp_late(load_config(two, env={}), server.port, 0.5)
        server.handler.late_reply = 2.0  # cfo: the reply comes too late (in review)
        server.handler.rcpt_reply = lambda address, attempt: (
            "550 5.1.1 no such user" if "cto" in address else None
        )
        run_alerts(config, at(37), root=out, sleep=lambda s: None)
        msg_id = server.handler.received[0].message["Message-ID"].strip()
    journal = out / "ledger-journal.jsonl"
    key = {"report": "al/alert/visits-unusual", "period": "#1", "recipient": "ops@acme.test", "version": 1}
    note(out, {**key, "message_id": "<v>", "state": "sent", "attempts": 1, "channel": "smtp", "forced": False,
               "time": "2026-07-19T06:00:03+00:00", "run_id": 0, "note": ""})  # fmt: skip
    review = (
        f"message 1 to cfo@acme.test: review after 1 attempt(s), Message-ID {msg_id} — no reply after the "
        "message was sent (none within 0.5 s): the server may have accepted it; not re-sent: check "
        f"cfo@acme.test's mailbox, then run 'reporter resolve {two} 1 cfo@acme.test --alert "
        f"orders-goal-off_track --sent --output {out}' if it arrived, or '--resend' if it did not (the "
        "rule's next evaluation sends it again)"
    )
    failed = (
        "message 1 to cto@acme.test: failed after 1 attempt(s) — 550 5.1.1 no such user; the rule's next "
        "evaluation sends it again"
    )
    journaled = (
        "message 1 to ops@acme.test: sent at 2026-07-19T06:00:03+00:00, not yet in the ledger (noted in "
        f"{journal}; the rule's next evaluation records it)"
    )
    capsys.readouterr()
    assert main(["status", str(two), "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("  alert ")] == [
        f"  alert visits-unusual {journaled}",
        f"  alert orders-goal-off_track {review}",
        f"  alert orders-goal-off_track {failed}",
    ]
    assert main(["alerts", "status", "--config", str(two), "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:3] == [f"  {review}", f"  {failed}"]
    assert lines[4:] == [f"  {journaled}"]
