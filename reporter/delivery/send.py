"""Deliver a rendered report to its recipients exactly once, through the ledger; alert on
failure."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

from reporter.config.labels import Labels
from reporter.config.model import Config
from reporter.delivery.addresses import recipients_of as recipients_of  # re-exported
from reporter.delivery.mailer import Mailer, SendResult, add_unsubscribe
from reporter.delivery.once import DeliveryOutcome, ExactlyOnce, Key, version_for
from reporter.delivery.once import ledger_trouble as ledger_trouble  # re-exported
from reporter.delivery.workbook import MIME as XLSX_MIME
from reporter.errors import LedgerError, RunError
from reporter.files import report_file, write_together
from reporter.progress import stage
from reporter.render.digest import Digest, build_digest, build_message, message_id
from reporter.results import Results
from reporter.security import redact

if TYPE_CHECKING:  # SQLAlchemy is imported by a run that sends, not by one that only writes
    from reporter.delivery.ledger import Ledger
    from reporter.delivery.suppression import Suppression

LOG = logging.getLogger("reporter")


def resolve_hint(config: Config, period: str, recipient: str) -> str:
    """The command that settles a ``review`` delivery (pinned in tests and docs)."""
    return (
        f"check {recipient}'s mailbox, then run '{config.command('resolve', period, recipient, '--sent')}' "
        "if it arrived, or '--resend' if it did not"
    )


@dataclass
class Email:
    """One report's e-mail, built before any file is written or anything sent: the digest, the
    workbook (when attached) and ``kept``, the message ``email.eml`` keeps: to the first
    recipient, with the Message-ID of its delivery by this run (None without a recipient)."""

    digest: Digest
    xlsx: bytes | None
    xlsx_name: str
    kept: EmailMessage | None = None
    kept_for: tuple[str, str] = ("", "")  # (recipient, Message-ID) of ``kept``

    def files(self, folder: Path) -> dict[Path, bytes]:
        """What goes beside the PDF: ``email.eml`` and the workbook."""
        out = {} if self.kept is None else {folder / "email.eml": self.kept.as_bytes()}
        if self.xlsx is not None:
            out[folder / self.xlsx_name] = self.xlsx
        return out

    def message(
        self, config: Config, recipient: str, pdf: bytes, pdf_name: str, msg_id: str, now: dt.datetime
    ) -> EmailMessage:
        """The message to ``recipient``: ``kept`` itself when it is the one (what was sent is what
        ``email.eml`` holds, byte for byte), else a new one from the same digest."""
        if self.kept is not None and self.kept_for == (recipient, msg_id):
            return self.kept
        assert config.delivery.email is not None
        message = build_message(
            config, self.digest, recipient=recipient, pdf=pdf, pdf_name=pdf_name, msg_id=msg_id, date=now
        )
        attach(message, config.delivery.email.attach, pdf_name, self.xlsx, self.xlsx_name)
        add_unsubscribe(message, config, recipient)
        return message


def prepare_email(config: Config, results: Results) -> Email:
    """The digest and the workbook of the report's e-mail: what needs no PDF and no ledger."""
    report, period = config.report.id, results.period
    return Email(
        build_digest(config, results), _workbook(config, results), report_file(report, period, "xlsx")
    )


def build_email(
    config: Config,
    results: Results,
    pdf: bytes,
    pdf_name: str,
    now: dt.datetime,
    *,
    recipient: str | None,
    ledger: Ledger | None,
    force: bool,
    prepared: Email | None = None,
) -> Email:
    """Render the digest (its subject is a template: it may fail here), the workbook and the
    message to ``recipient`` with the version its delivery by this run gets (``deliver``'s rule:
    the recorded one, the next when forced, else 1). Writes and sends nothing. ``prepared``:
    the digest and workbook ``prepare_email`` built already (while the PDF rendered)."""
    report, period = config.report.id, results.period
    email = prepared if prepared is not None else prepare_email(config, results)
    if recipient is None:
        return email
    version = version_for(ledger, Key(report, period, recipient), force=force)
    msg_id = message_id(report, period, recipient, version)
    email.kept = email.message(config, recipient, pdf, pdf_name, msg_id, now)
    email.kept_for = (recipient, msg_id)
    return email


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
    on_claim: Callable[[], None] | None = None,
    built: Email | None = None,
) -> list[DeliveryOutcome]:
    """With a ledger, send the digest to each recipient that has not had it yet, each through
    ``ExactlyOnce.deliver_once`` (``reporter.delivery.once``: claim, send, record, review).
    Without a ledger (``--no-send``) nothing is sent. ``built``: the e-mail, built (``build_email``) and
    its files written by the caller; without it, it is built here and ``email.eml`` (the digest
    as sent) and the workbook are written in ``folder`` before anything is sent. ``on_claim``
    is called before each claim (the pipeline records there that the PDF must be archived)."""

    email_cfg = config.delivery.email
    assert email_cfg is not None
    report, period = config.report.id, results.period
    targets = recipients if recipients is not None else recipients_of(config)
    if built is None:
        first = targets[0] if targets else None
        built = build_email(config, results, pdf, pdf_name, now, recipient=first, ledger=ledger, force=force)
        write_together(built.files(folder), within=root)
    if ledger is None:  # --no-send: each message is built (it must build), none is sent
        for rcpt in targets:
            stage(f"writing the e-mail for {rcpt}")
            built.message(config, rcpt, pdf, pdf_name, message_id(report, period, rcpt, 1), now)
        return []
    mailer = Mailer(
        email_cfg.smtp,
        root / "outbox" / report / period,
        env=env,
        sleep=sleep,
        base_dir=config.base_dir,
        connections=config.connections,
    )
    channel = EmailChannel(config, mailer)
    once = ExactlyOnce(ledger, config, root, run_id, now, force=force, reason=reason, on_claim=on_claim)
    outcomes: list[DeliveryOutcome] = []
    stopped = _suppressed(ledger, report)
    for rcpt in targets:
        if rcpt in stopped:  # unsubscribed: never sent, whatever the ledger holds (--force too)
            from reporter.delivery.suppression import skip_note

            outcomes.append(DeliveryOutcome(rcpt, "skipped", 0, "", skip_note(config, stopped[rcpt])))
            continue
        stage(f"delivering to {rcpt}")

        def message(msg_id: str, rcpt: str = rcpt) -> EmailMessage:
            assert built is not None
            return built.message(config, rcpt, pdf, pdf_name, msg_id, now)

        outcomes.append(once.deliver_once(channel, Key(report, period, rcpt), message))
    return outcomes


def _suppressed(ledger: Ledger, report: str) -> dict[str, Suppression]:
    """The addresses unsubscribed from ``report``."""
    import sqlalchemy as sa

    from reporter.delivery.suppression import suppressed

    try:
        return suppressed(ledger, report)
    except sa.exc.SQLAlchemyError as exc:
        raise LedgerError(
            f"{report}: the ledger could not say who unsubscribed: {ledger_trouble(exc)}; nothing was "
            "sent; run again once the ledger is back"
        ) from None


@dataclass
class EmailChannel:
    """E-mail as a channel of ``ExactlyOnce``: the payload is the message to one recipient."""

    config: Config
    mailer: Mailer

    @property
    def kind(self) -> str:
        return self.mailer.channel  # smtp | outbox

    def send(
        self, payload: EmailMessage, key: Key, on_attempt: Callable[[int, str | None], None], *, version: int
    ) -> SendResult:
        return self.mailer.send(payload, key.recipient, on_attempt, version=version)

    def settle_hint(self, key: Key) -> str:
        return resolve_hint(self.config, key.period, key.recipient)


def _workbook(config: Config, results: Results) -> bytes | None:
    """The XLSX attachment when ``delivery.email.attach`` asks for it (also kept beside the PDF)."""
    assert config.delivery.email is not None
    if "xlsx" not in config.delivery.email.attach:
        return None
    from reporter.delivery.workbook import build_workbook

    stage("writing the workbook")
    return build_workbook(config, results)


def attach(
    message: EmailMessage, wanted: Sequence[str], pdf_name: str, xlsx: bytes | None, xlsx_file: str
) -> None:
    """Make the message carry what ``delivery.email.attach`` asks: the PDF (which
    ``build_message`` attaches) unless left out, then the workbook."""
    if "pdf" not in wanted:
        parts = message.get_payload()
        assert isinstance(parts, list)
        message.set_payload([p for p in parts if not isinstance(p, str) and p.get_filename() != pdf_name])
    if xlsx is not None:
        maintype, subtype = XLSX_MIME
        message.add_attachment(xlsx, maintype=maintype, subtype=subtype, filename=xlsx_file)


def alert(
    config: Config,
    root: Path,
    period: str,
    reason: str,
    now: dt.datetime,
    *,
    env: Mapping[str, str] | None = None,
    subject: str | None = None,
    body: str | None = None,
) -> None:
    """Tell ``delivery.alerts_to`` that a run failed and nothing was sent (or, with
    ``subject`` and ``body``, anything else a person must act on: a run that failed after some
    deliveries went out says so, see ``reporter.delivery.failure``)."""
    to = config.delivery.alerts_to
    if not to:
        return
    email_cfg = config.delivery.email
    msg = EmailMessage()
    msg["Subject"] = f"[reporter] {config.report.id} {period}: " + (
        subject or "run FAILED, nothing was sent to the recipients"
    )
    msg["From"] = email_cfg.from_ if email_cfg else "reporter@localhost"
    msg["To"] = ", ".join(to)
    msg["Date"] = email.utils.format_datetime(now)
    msg["Message-ID"] = email.utils.make_msgid(domain="reporter.invalid")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        redact(body)
        if body
        else redact(
            f"The report '{Labels(config).title()}' ({config.report.id}) for {period} was not sent.\n\n"
            f"Reason:\n{reason}\n\nFix the cause, then run:\n"
            f"  {config.command('run', '--period', period)}\n"
        )
    )
    try:
        mailer = Mailer(
            email_cfg.smtp if email_cfg else None,
            root / "outbox" / config.report.id / period / "alerts",
            env=env,
            max_attempts=2,
            base_dir=config.base_dir,
            connections=config.connections,
        )
        for address in to:
            result = mailer.send(msg, email.utils.parseaddr(address)[1], lambda n, e: None)
            if result.state != "sent":
                LOG.error("could not send the alert to %s: %s", address, result.error)
    except RunError as exc:
        LOG.error("could not send the alert: %s", exc)
