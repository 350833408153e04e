"""``reporter alerts test | status | snooze`` and the scheduler's alert job.

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
    return _snooze(args, now, out)


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
        for row in rows:
            out(_status_line(row))
            for address, suppression in held.get(row["rule"], {}).items():
                assert config is not None
                out(f"  {address}: {skip_note(config, suppression)}")
            for d in ledger.all(f"{row['report']}/alert/{row['rule']}"):
                number = d.period.lstrip("#")
                if d.state == "review":
                    out(
                        f"  message {number} to {d.recipient}: in review (sending began and was not "
                        "confirmed: it may have arrived; it is not sent again)"
                    )
                elif d.state == "failed":
                    out(
                        f"  message {number} to {d.recipient}: failed ({d.last_error}); "
                        "retried at the next evaluation"
                    )
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
