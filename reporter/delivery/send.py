"""Deliver a rendered report to its recipients exactly once, through the ledger; alert on
failure."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from reporter.config.model import Config
from reporter.delivery.ledger import Ledger
from reporter.delivery.mailer import Mailer
from reporter.errors import RunError
from reporter.files import write_atomic
from reporter.progress import stage
from reporter.render.digest import build_digest, build_message, message_id
from reporter.results import Results

LOG = logging.getLogger("reporter")


@dataclass
class DeliveryOutcome:
    recipient: str
    state: str  # sent | failed | skipped (already sent) | review (a crash left it unknown)
    attempts: int
    message_id: str
    error: str | None = None
    channel: str = ""  # smtp | outbox, for what the console says
    sent_on: str | None = None  # skipped: when the ledger recorded it sent


def recipients_of(config: Config) -> list[str]:
    """The plain addresses of ``to`` and ``cc``, each once, in order."""
    assert config.delivery.email is not None
    seen: dict[str, None] = {}
    for text in [*config.delivery.email.to, *config.delivery.email.cc]:
        seen.setdefault(email.utils.parseaddr(text)[1].lower(), None)
    return list(seen)


def deliver(
    config: Config,
    results: Results,
    pdf: bytes,
    pdf_name: str,
    folder: Path,
    root: Path,
    now: dt.datetime,
    *,
    ledger: Ledger | None,
    run_id: int,
    force: bool,
    reason: str | None,
    env: Mapping[str, str] | None,
    sleep: Callable[[float], None] = time.sleep,
    recipients: list[str] | None = None,
) -> list[DeliveryOutcome]:
    """Write ``email.eml`` (the digest as sent) and, with a ledger, send it to each recipient
    that has not had it yet. Without a ledger (``--no-send``) nothing is sent."""

    email_cfg = config.delivery.email
    assert email_cfg is not None
    report, period = config.report.id, results.period
    digest = build_digest(config, results)
    targets = recipients if recipients is not None else recipients_of(config)
    mailer = None
    if ledger is not None:
        mailer = Mailer(
            email_cfg.smtp, root / "outbox" / report / period, env=env, sleep=sleep, base_dir=config.base_dir
        )
    outcomes: list[DeliveryOutcome] = []
    written = False
    for rcpt in targets:
        stage(f"delivering to {rcpt}" if ledger is not None else f"writing the e-mail for {rcpt}")
        latest = ledger.latest(report, period, rcpt) if ledger is not None else None
        version = 1
        if latest is not None and not force:
            if latest.state == "sent":
                from reporter.delivery.wording import sent_on

                when = sent_on(ledger, report, period, rcpt, latest.version)
                skipped = DeliveryOutcome(rcpt, "skipped", latest.attempts, latest.message_id, sent_on=when)
                outcomes.append(skipped)
                continue
            if latest.state in ("pending", "review"):
                assert ledger is not None
                note = (
                    "a previous run stopped after sending began (the server may have accepted it): "
                    "not re-sent; check the recipient's mailbox, then use --force if it is missing"
                )
                ledger.record(report, period, rcpt, latest.version, now, state="review", error=note)
                outcomes.append(DeliveryOutcome(rcpt, "review", latest.attempts, latest.message_id, note))
                continue
            version = latest.version  # failed before: retry with the same Message-ID
        elif latest is not None and force:
            version = latest.version + 1
        msg_id = message_id(report, period, rcpt, version)
        message = build_message(
            config, digest, recipient=rcpt, pdf=pdf, pdf_name=pdf_name, msg_id=msg_id, date=now
        )
        if not written:
            write_atomic(folder / "email.eml", message.as_bytes())
            written = True
        if ledger is None or mailer is None:
            continue
        ledger.intend(
            report,
            period,
            rcpt,
            version,
            msg_id,
            now,
            forced=force and latest is not None,
            reason=reason,
            channel=mailer.channel,
            run_id=run_id,
        )

        def counted(attempt: int, error: str | None, rcpt: str = rcpt, version: int = version) -> None:
            ledger.record(report, period, rcpt, version, now, state="pending", error=error, attempt=True)

        result = mailer.send(message, rcpt, counted)
        ledger.record(report, period, rcpt, version, now, state=result.state, error=result.error)
        outcomes.append(
            DeliveryOutcome(rcpt, result.state, result.attempts, msg_id, result.error, channel=mailer.channel)
        )
    return outcomes


def alert(
    config: Config,
    root: Path,
    period: str,
    reason: str,
    now: dt.datetime,
    *,
    env: Mapping[str, str] | None = None,
) -> None:
    """Tell ``delivery.alerts_to`` that a run failed and nothing wrong was sent."""
    to = config.delivery.alerts_to
    if not to:
        return
    email_cfg = config.delivery.email
    msg = EmailMessage()
    msg["Subject"] = f"[reporter] {config.report.id} {period}: run FAILED, nothing was sent to the recipients"
    msg["From"] = email_cfg.from_ if email_cfg else "reporter@localhost"
    msg["To"] = ", ".join(to)
    msg["Date"] = email.utils.format_datetime(now)
    msg["Message-ID"] = email.utils.make_msgid(domain="reporter.invalid")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"The report '{config.report.title}' ({config.report.id}) for {period} was not sent.\n\n"
        f"Reason:\n{reason}\n\nFix the cause, then run:\n"
        f"  reporter run {config.file} --period {period}\n"
    )
    try:
        mailer = Mailer(
            email_cfg.smtp if email_cfg else None,
            root / "outbox" / config.report.id / period / "alerts",
            env=env,
            max_attempts=2,
            base_dir=config.base_dir,
        )
        for address in to:
            result = mailer.send(msg, email.utils.parseaddr(address)[1], lambda n, e: None)
            if result.state != "sent":
                LOG.error("could not send the alert to %s: %s", address, result.error)
    except RunError as exc:
        LOG.error("could not send the alert: %s", exc)
