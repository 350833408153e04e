"""``reporter alerts test | status | snooze``, ``reporter resolve ... --alert RULE`` and the
scheduler's alert job.

The evaluation and the messages are ``reporter.delivery.alerting``'s; this module finds the
configuration, the ledger and the output folder, and prints what happened.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reporter.config.model import Config
from reporter.errors import UsageError


def command(args: argparse.Namespace, now: dt.datetime, out: Callable[[str], None]) -> int:
    """Run ``reporter alerts ACTION``; ``out`` prints a line for the user."""
    if args.alerts_command == "test":
        return _test(args, now, out)
    if args.alerts_command == "status":
        return _status(args, out)
    if args.alerts_command == "resolve":
        raise UsageError(_resolve_is_elsewhere(args))
    return _snooze(args, now, out)


def _resolve_is_elsewhere(args: argparse.Namespace) -> str:
    """``reporter alerts resolve``: settling a message in review is ``reporter resolve``'s, for
    reports and alerts alike (one command for one act, listed with each one by ``reporter
    status``). The command to run, with what was given."""
    import shlex

    words = [
        "reporter resolve",
        shlex.quote(str(args.config)) if args.config is not None else "CONFIG",
        shlex.quote(args.number) if args.number is not None else "N",
        shlex.quote(args.recipient) if args.recipient is not None else "RECIPIENT",
        "--alert",
        shlex.quote(args.rule) if args.rule is not None else "RULE",
        "--resend" if args.resend else "--sent",
    ]
    if args.output is not None:
        words += ["--output", shlex.quote(str(args.output))]
    other = "'--sent' if it arrived" if args.resend else "'--resend' if it did not"
    return (
        "an alert message in review is settled like a report's delivery, by 'reporter resolve' with "
        f"--alert: run '{' '.join(words)}' ({'it did not arrive' if args.resend else 'it arrived'}; "
        f"{other}); 'reporter status CONFIG' lists each message in review with its command; "
        "nothing was changed"
    )


def resolve_alert(
    config: Config, args: argparse.Namespace, now: dt.datetime, out: Callable[[str], None]
) -> int:
    """``reporter resolve CONFIG N RECIPIENT --alert RULE --sent|--resend``: a person's word on the
    alert message ``N`` of ``RULE`` in review, through the state machine of every delivery
    (``once.settle_by_hand``): it arrived (``sent``: never sent again), or it did not (``failed``:
    the rule's next evaluation sends it again, with the same Message-ID). The fallback journal
    is applied first, as the rule's next evaluation would."""
    from reporter.delivery.alerting import alert_key
    from reporter.delivery.journal import journal_path, reconcile
    from reporter.delivery.ledger import Ledger
    from reporter.delivery.once import Key, settle_by_hand
    from reporter.run.stages import output_root

    rule_id, recipient, report = args.alert, args.recipient.lower(), config.report.id
    if not args.period.isdigit() or int(args.period) < 1:
        raise UsageError(
            f"--alert {rule_id}: give the number of the message in review (e.g. 1), not '{args.period}': "
            "'reporter status' lists each message in review with it"
        )
    number = int(args.period)
    root = output_root(config, args.output)
    shown = None if args.output is None and config.report.output_dir else root.absolute()
    config = config.model_copy(update={"run_output": shown})  # the commands it prints name it
    if config.delivery.ledger is None and not (root / "ledger.sqlite").is_file():
        raise UsageError(f"no ledger in {root} (ledger.sqlite): nothing was sent from there; see --output")
    rules = {r.rule_id: r for r in config.alerts.rules} if config.alerts is not None else {}
    key = Key(alert_key(config, rule_id), f"#{number}", recipient)
    name = f"{report} alert {rule_id} message {number} to {recipient}"
    now = now.astimezone(dt.UTC)  # the ledger keeps UTC times
    with Ledger(config.ledger_url(root), lock_timeout=config.delivery.ledger_lock_timeout) as ledger:
        known = {row["rule"] for row in ledger.alert_rules_of(report)}
        if rule_id not in rules and rule_id not in known:
            names = ", ".join(sorted({*rules, *known})) or "none"
            raise UsageError(
                f"--alert {rule_id}: no such alert rule in {args.config}; its rules are: {names}"
            )
        for entry in reconcile(ledger, root, key.report, now):  # what a lost ledger could not record
            if (entry["period"], str(entry["recipient"]).lower()) == (key.period, recipient):
                out(
                    f"{name}: recorded as {entry['state']} from {journal_path(root)}, noted when the "
                    "ledger was lost; nothing was sent"
                )
                return 0
        latest = ledger.latest(*vars(key).values())
        if latest is None:
            raise UsageError(
                f"{name}: no such message in the ledger; 'reporter status' lists those in review"
            )
        if latest.state != "review":
            raise UsageError(f"{name}: {latest.state}, not in review; " + _NOT_IN_REVIEW[latest.state])
        row = ledger.alert_rule(report, rule_id)
        if args.resend:
            _check_resend(config, args, rules.get(rule_id), row, name, number)
            _check_subscribed(config, ledger, rules[rule_id], recipient, name)
        how = "--sent" if args.sent else "--resend"
        note = f"settled by 'reporter resolve --alert {rule_id} {how}' at {now:%Y-%m-%d %H:%M} UTC"
        if not settle_by_hand(ledger, key, latest.version, now, sent=args.sent, note=note):
            raise UsageError(f"{name}: settled meanwhile by another command; 'reporter status' says how")
    if args.sent:
        out(f"{name}: recorded as sent; nothing was sent, and it is never sent again")
        return 0
    snoozed = row["snoozed_until"] if row is not None else None
    when = f" after its snooze (until {snoozed})" if snoozed is not None else ""
    out(
        f"{name}: to be sent again, with the same Message-ID {latest.message_id}, by the rule's next "
        f"evaluation{when} (reporter schedule, alerts.schedule '{_schedule_of(config)}')"
    )
    return 0


def in_review(ledger: Any, config: Config, recipient: str | None = None) -> list[tuple[Any, Any]]:
    """The report's alert messages in review (to ``recipient`` only, when given), each as
    (``once.Key``, ``ledger.Delivery``): of the rules in CONFIG and of those the ledger still holds."""
    from reporter.delivery.alerting import alert_key
    from reporter.delivery.once import Key

    rules = [r.rule_id for r in config.alerts.rules] if config.alerts is not None else []
    rules += [row["rule"] for row in ledger.alert_rules_of(config.report.id)]
    found = []
    for rule in dict.fromkeys(rules):
        for d in ledger.all(alert_key(config, rule)):
            if d.state == "review" and recipient in (None, d.recipient):
                key = Key(d.report, d.period, d.recipient)
                if ledger.latest(*vars(key).values()).version == d.version:
                    found.append((key, d))
    return found


def _check_resend(
    config: Config, args: argparse.Namespace, rule: Any, row: dict[str, Any] | None, name: str, number: int
) -> None:
    """Refuse ``--resend`` of an alert message its rule's next evaluation would not send."""
    from reporter.delivery.alerting import rule_recipients

    recipient = args.recipient.lower()
    if rule is None or recipient not in rule_recipients(config, rule):
        raise UsageError(
            f"{name}: {args.config} no longer sends this rule's messages to {recipient}: "
            "cannot send it again (--sent records it as delivered)"
        )
    if row is not None and int(row["seq"]) != number:
        raise UsageError(
            f"{name}: the rule announced its state again since (message {row['seq']}, "
            f"{row['notified']}): an older message is never sent again; --sent closes it"
        )


def waiting(ledger: Any, report: str, rules: list[str], config: Config | None) -> list[tuple[str, str]]:
    """What ``reporter status`` and ``reporter alerts status`` say about the alert messages of
    ``report`` (of ``rules`` and of those the ledger holds) waiting for something: in review (with
    the command that settles it), failed (to be sent again), pending. (rule, line) pairs, the line
    starting with ``message N to RECIPIENT``. ``config``: the report's configuration, to write the
    ``reporter resolve`` command (without it, the line says what the evaluation said)."""
    from reporter.delivery.alerting import settle_hint_of
    from reporter.delivery.once import Key

    found: list[tuple[str, str]] = []
    known = [*rules, *(row["rule"] for row in ledger.alert_rules_of(report))]
    for rule in dict.fromkeys(known):
        latest: dict[tuple[str, str], Any] = {}
        for d in ledger.all(f"{report}/alert/{rule}"):
            latest[(d.period, d.recipient)] = d  # the versions come in order: the last is the latest
        for d in latest.values():
            head = f"message {d.period.lstrip('#')} to {d.recipient}: {d.state} after {d.attempts} attempt(s)"
            said = d.last_error or ""
            if d.state == "review":
                if config is not None:  # the command as of now (an older note may say otherwise)
                    cut = said.find("not re-sent")
                    cause = said[:cut] if cut >= 0 else f"{said}; " if said else ""
                    hint = settle_hint_of(config, Key(d.report, d.period, d.recipient), d.channel)
                    said = f"{cause}not re-sent: {hint}"
                found.append((rule, f"{head}, Message-ID {d.message_id} — {said}"))
            elif d.state == "failed":
                said = f" — {said}" if said else ""
                found.append((rule, f"{head}{said}; the rule's next evaluation sends it again"))
            elif d.state == "pending":
                doing = "being sent, or the evaluation sending it stopped (its next one sets it to review)"
                found.append((rule, f"{head}: {doing}"))
    return found


def journaled(root: Path, report: str) -> list[tuple[str, str]]:
    """The alert messages of ``report`` noted in the fallback journal of ``root`` while the ledger
    was lost, as (rule, line) pairs like ``waiting``'s."""
    from reporter.delivery.journal import entries, journal_path

    found = []
    for entry in entries(root):
        owner = str(entry.get("report", ""))
        if owner.startswith(f"{report}/alert/"):
            line = (
                f"message {str(entry['period']).lstrip('#')} to {entry['recipient']}: {entry['state']} at "
                f"{entry['time']}, not yet in the ledger (noted in {journal_path(root)}; the rule's next "
                "evaluation records it)"
            )
            found.append((owner.split("/alert/", 1)[1], line))
    return found


def _check_subscribed(config: Config, ledger: Any, rule: Any, recipient: str, name: str) -> None:
    """Refuse ``--resend`` to an address that unsubscribed since: the rule's evaluations skip it."""
    from reporter.delivery.alerting import unsubscribed
    from reporter.delivery.suppression import skip_note

    held = unsubscribed(config, rule, ledger).get(recipient)
    if held is not None:
        raise UsageError(f"{name}: {skip_note(config, held)}; cannot send it again (--sent closes it)")


_NOT_IN_REVIEW = {
    "sent": "nothing to settle: it is never sent again",
    "failed": "the rule's next evaluation sends it again",
    "pending": "it is being sent, or the evaluation sending it stopped: the rule's next evaluation "
    "then sets it to review, to be settled here",
}


def _schedule_of(config: Config) -> str:
    return config.alerts.schedule if config.alerts is not None else ""


def _config(path: Path) -> Config:
    from reporter.render.texts import load_checked

    if path.is_dir():
        raise UsageError(f"{path}: give the report's YAML file, not a folder")
    (config,) = load_checked(path)
    if config.alerts is None or not config.alerts.rules:
        raise UsageError(f"{path}: the report has no alert rules (alerts.rules)")
    return config


def _ledger_url(config: Config | None, output: Path | None) -> str:
    from reporter.delivery.ledger import default_url
    from reporter.run.stages import output_root

    if config is not None:
        return config.ledger_url(output_root(config, output))
    root = output or Path("output")
    if not (root / "ledger.sqlite").is_file():
        raise UsageError(
            f"no ledger in {root}: give --output DIR (or --config CONFIG) where the schedule keeps it"
        )
    return default_url(root)


def _test(args: argparse.Namespace, now: dt.datetime, out: Callable[[str], None]) -> int:
    from reporter.delivery.alerting import send_test
    from reporter.run.stages import output_root

    config = _config(args.config)
    assert config.alerts is not None
    ids = [r.rule_id for r in config.alerts.rules]
    if args.rule is not None and args.rule not in ids:
        raise UsageError(f"no alert rule '{args.rule}' in {args.config}; its rules are: {', '.join(ids)}")
    done = send_test(config, args.rule, now, root=output_root(config, args.output))
    for rule, address, skipped in done:
        out(f"{rule}: {address}: {skipped}" if skipped else f"{rule}: test message sent to {address}")
    sent = [d for d in done if d[2] is None]
    out(f"{len(sent)} test message{'s' if len(sent) != 1 else ''} sent; no rule's state changed")
    return 0


def _status(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    from reporter.delivery.ledger import Ledger
    from reporter.delivery.suppression import skip_note
    from reporter.run.stages import output_root

    config = _config(args.config) if args.config is not None else None
    with Ledger(_ledger_url(config, args.output)) as ledger:
        reports = [config.report.id] if config is not None else ledger.alert_reports()
        rows = [row for report in reports for row in ledger.alert_rules_of(report)]
        known = {row["rule"] for row in rows}
        if config is not None and config.alerts is not None:
            for rule in config.alerts.rules:
                if rule.rule_id not in known:
                    out(f"{config.report.id} {rule.rule_id}: not evaluated yet")
        held = {}
        if config is not None and config.alerts is not None:
            from reporter.delivery.alerting import unsubscribed

            held = {r.rule_id: unsubscribed(config, r, ledger) for r in config.alerts.rules}
        root = output_root(config, args.output) if config is not None else args.output or Path("output")
        if config is not None:  # the commands it prints name the output folder, as a run would
            shown = None if args.output is None and config.report.output_dir else root.absolute()
            config = config.model_copy(update={"run_output": shown})
        said = {report: journaled(root, report) + waiting(ledger, report, [], config) for report in reports}
        for row in rows:
            out(_status_line(row))
            for address, suppression in held.get(row["rule"], {}).items():
                assert config is not None
                out(f"  {address}: {skip_note(config, suppression)}")
            for name, line in said[row["report"]]:
                if name == row["rule"]:
                    out(f"  {line}")
    return 0


def _status_line(row: dict[str, Any]) -> str:
    state = "FIRING" if row["state"] == "firing" else "clear"
    line = (
        f"{row['report']} {row['rule']}: {state} ({row['detail']}) "
        f"since {row['changed']:%Y-%m-%d %H:%M} UTC, "
        f"last evaluated {row['evaluated']:%Y-%m-%d %H:%M} UTC"
    )
    if row["seq"]:
        line += (
            f"; message {row['seq']} announced {row['notified']} on {row['notified_at']:%Y-%m-%d %H:%M} UTC"
        )
    else:
        line += "; no message yet"
    if row["snoozed_until"] is not None:
        line += f"; snoozed until {row['snoozed_until']}"
    if row["error"]:
        line += f"; last error: {row['error']}"
    return line


def _snooze(args: argparse.Namespace, now: dt.datetime, out: Callable[[str], None]) -> int:
    from reporter.delivery.ledger import Ledger

    until: dt.date | None
    if args.until == "off":
        until = None
    else:
        try:
            until = dt.date.fromisoformat(args.until)
        except ValueError:
            raise UsageError(f"--until {args.until}: write a date like 2026-11-30 (or off)") from None
    config = _config(args.config) if args.config is not None else None
    if until is not None:
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(config.report.timezone) if config is not None else dt.UTC
        today = now.astimezone(zone).date()
        if until < today:
            raise UsageError(
                f"--until {args.until} is in the past (today is {today}): a rule is snoozed up to and "
                "including a date from today on; nothing was changed"
            )
    with Ledger(_ledger_url(config, args.output)) as ledger:
        if config is not None:
            assert config.alerts is not None
            ids = [r.rule_id for r in config.alerts.rules]
            if args.rule not in ids:
                raise UsageError(
                    f"no alert rule '{args.rule}' in {args.config}; its rules are: {', '.join(ids)}"
                )
            report = config.report.id
        else:
            owners = [r for r in ledger.alert_reports() if ledger.alert_rule(r, args.rule) is not None]
            if len(owners) != 1:
                raise UsageError(
                    f"no alert rule '{args.rule}' in the ledger yet: give --config CONFIG"
                    if not owners
                    else f"several reports have a rule '{args.rule}' ({', '.join(owners)}): "
                    "give --config CONFIG"
                )
            report = owners[0]
        ledger.alert_snooze(report, args.rule, until, now.astimezone(dt.UTC))
    if until is None:
        out(f"{report} {args.rule}: awake; its next evaluation announces its state if it changed")
    else:
        out(
            f"{report} {args.rule}: snoozed until {until} (inclusive): evaluated and recorded, "
            "nothing sent; from the day after, its state is announced if it changed"
        )
    return 0
