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
from reporter.delivery.mailer import Mailer
from reporter.delivery.workbook import MIME as XLSX_MIME
from reporter.errors import LedgerBusy, LedgerError, RunError
from reporter.files import report_file, write_together
from reporter.progress import stage
from reporter.render.digest import Digest, build_digest, build_message, message_id
from reporter.results import Results
from reporter.security import redact

if TYPE_CHECKING:  # SQLAlchemy is imported by a run that sends, not by one that only writes
    from reporter.delivery.ledger import Delivery, Ledger

LOG = logging.getLogger("reporter")


@dataclass
class DeliveryOutcome:
    recipient: str
    # sent | failed | skipped (already sent, or being sent by another run: see ``error``) |
    # review (may have been delivered: a crash, or no reply after the message's end)
    state: str
    attempts: int
    message_id: str
    error: str | None = None
    channel: str = ""  # smtp | outbox, for what the console says
    sent_on: str | None = None  # skipped: when the ledger recorded it sent
    claimed: bool = False  # this run took the delivery and tried to send it
    flagged: bool = False  # this run put it in review (alerts_to is told)


def resolve_hint(config: Config, period: str, recipient: str) -> str:
    """The command that settles a ``review`` delivery (pinned in tests and docs)."""
    return (
        f"check {recipient}'s mailbox, then run '{config.command('resolve', period, recipient, '--sent')}' "
        "if it arrived, or '--resend' if it did not"
    )


def recipients_of(config: Config) -> list[str]:
    """The plain addresses of ``to`` and ``cc``, each once, in order."""
    assert config.delivery.email is not None
    seen: dict[str, None] = {}
    for text in [*config.delivery.email.to, *config.delivery.email.cc]:
        seen.setdefault(email.utils.parseaddr(text)[1].lower(), None)
    return list(seen)


def _settled(
    config: Config,
    ledger: Ledger,
    latest: Delivery,
    report: str,
    period: str,
    rcpt: str,
    run_id: int,
    now: dt.datetime,
    hint: Callable[[Config, str, str], str] = resolve_hint,
) -> DeliveryOutcome | None:
    """The outcome for a recipient whose last delivery must not be sent again (sent, being sent
    by a live run, or left for review); None when it failed before (retry it). ``hint``: the
    command that settles a review (a mailbox's by default, a chat channel's for a card)."""
    if latest.state == "sent":
        from reporter.delivery.wording import sent_on

        when = sent_on(ledger, report, period, rcpt, latest.version)
        return DeliveryOutcome(rcpt, "skipped", latest.attempts, latest.message_id, sent_on=when)
    if latest.state not in ("pending", "review"):
        return None
    owner = ledger.run_of(report, period, rcpt, latest.version)
    if latest.state == "pending" and owner != run_id and ledger.run_alive(owner, now):
        note = f"being sent by another run (run {owner}), not sent by this one"
        return DeliveryOutcome(rcpt, "skipped", latest.attempts, latest.message_id, note)
    note = (
        "a previous run stopped after sending began (the server may have accepted it): "
        f"not re-sent; {hint(config, period, rcpt)}"
    )
    if latest.state == "review":
        note = latest.last_error or note
    elif not ledger.move(
        report,
        period,
        rcpt,
        latest.version,
        now,
        from_states=("pending",),
        to="review",
        note=note,
    ):
        # the other run recorded its outcome meanwhile: say what it is now
        now_latest = ledger.latest(report, period, rcpt)
        assert now_latest is not None
        state = "skipped" if now_latest.state == "sent" else now_latest.state
        return DeliveryOutcome(rcpt, state, now_latest.attempts, now_latest.message_id, now_latest.last_error)
    flagged = latest.state == "pending"  # moved to review by this run
    return DeliveryOutcome(rcpt, "review", latest.attempts, latest.message_id, note, flagged=flagged)


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
        return message


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
) -> Email:
    """Render the digest (its subject is a template: it may fail here), the workbook and the
    message to ``recipient`` with the version its delivery by this run gets (``deliver``'s rule:
    the recorded one, the next when forced, else 1). Writes and sends nothing."""
    report, period = config.report.id, results.period
    digest = build_digest(config, results)
    email = Email(digest, _workbook(config, results), report_file(report, period, "xlsx"))
    if recipient is None:
        return email
    latest = ledger.latest(report, period, recipient) if ledger is not None else None
    version = 1 if latest is None else latest.version + (1 if force else 0)
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
    """With a ledger, send the digest to each recipient that has not had it yet. Without a
    ledger (``--no-send``) nothing is sent. ``built``: the e-mail, built (``build_email``) and
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
    mailer = None
    if ledger is not None:
        mailer = Mailer(
            email_cfg.smtp,
            root / "outbox" / report / period,
            env=env,
            sleep=sleep,
            base_dir=config.base_dir,
            connections=config.connections,
        )
    outcomes: list[DeliveryOutcome] = []
    for rcpt in targets:
        stage(f"delivering to {rcpt}" if ledger is not None else f"writing the e-mail for {rcpt}")
        latest = ledger.latest(report, period, rcpt) if ledger is not None else None
        version, retry = 1, False
        if latest is not None and not force:
            assert ledger is not None
            settled = _settled(config, ledger, latest, report, period, rcpt, run_id, now)
            if settled is not None:
                outcomes.append(settled)
                continue
            version, retry = latest.version, True  # failed before: retry with the same Message-ID
        elif latest is not None and force:
            version = latest.version + 1
        msg_id = message_id(report, period, rcpt, version)
        message = built.message(config, rcpt, pdf, pdf_name, msg_id, now)
        if ledger is None or mailer is None:
            continue
        if on_claim is not None:
            on_claim()
        forced = force and latest is not None
        claim: dict[str, object] = dict(
            forced=forced, reason=reason, channel=mailer.channel, run_id=run_id, retry=retry
        )
        if not _claim(ledger, report, period, rcpt, version, msg_id, now, claim):
            # another run took it between our look and our claim
            note = "claimed by another run at the same time, not sent by this one"
            outcomes.append(DeliveryOutcome(rcpt, "skipped", 0, msg_id, note))
            continue
        sending = _Sending(config, root, ledger, mailer, period, rcpt, version, msg_id, now, run_id, forced)
        outcomes.append(sending.send(message))
    return outcomes


def _claim(
    ledger: Ledger,
    report: str,
    period: str,
    rcpt: str,
    version: int,
    msg_id: str,
    now: dt.datetime,
    claim: dict[str, object],
) -> bool:
    """``Ledger.claim``; a ledger that cannot record it is a clear error (nothing was sent)."""
    import sqlalchemy as sa

    try:
        return ledger.claim(report, period, rcpt, version, msg_id, now, **claim)  # type: ignore[arg-type]
    except (sa.exc.SQLAlchemyError, LedgerError) as exc:
        busy = isinstance(exc, LedgerBusy)
        raise (LedgerBusy if busy else LedgerError)(
            f"{report} {period}: the ledger could not record the intent to send to {rcpt}: "
            f"{ledger_trouble(exc)}; nothing was sent to {rcpt}; run again once "
            + ("the lock is released" if busy else "the ledger is back")
        ) from None


@dataclass
class _Sending:
    """One claimed delivery: sent, each attempt counted in the ledger, the outcome recorded there
    or, when the ledger is lost meanwhile, in the fallback journal (then the run fails)."""

    config: Config
    root: Path
    ledger: Ledger
    mailer: Mailer
    period: str
    rcpt: str
    version: int
    msg_id: str
    now: dt.datetime
    run_id: int
    forced: bool

    def send(self, message: EmailMessage) -> DeliveryOutcome:
        import sqlalchemy as sa

        report, period, rcpt, version, now = (
            self.config.report.id,
            self.period,
            self.rcpt,
            self.version,
            self.now,
        )
        lost: list[BaseException] = []  # the ledger failed while the message was being sent

        def counted(attempt: int, error: str | None) -> None:
            if lost:
                return
            try:
                self.ledger.record(
                    report, period, rcpt, version, now, state="pending", error=error, attempt=True
                )
            except (sa.exc.SQLAlchemyError, LedgerError) as exc:
                lost.append(exc)  # the mailer goes on: what it does is journaled below

        result = self.mailer.send(message, rcpt, counted)
        error = result.error
        if result.state == "review":
            error = f"{error}; not re-sent: {resolve_hint(self.config, period, rcpt)}"
        try:
            if lost:
                raise lost[0]
            self.ledger.record(report, period, rcpt, version, now, state=result.state, error=error)
        except (sa.exc.SQLAlchemyError, LedgerError) as exc:
            entry = dict(
                report=report,
                period=period,
                recipient=rcpt,
                version=version,
                message_id=self.msg_id,
                state=result.state,
                attempts=result.attempts,
                channel=self.mailer.channel,
                forced=self.forced,
                # when it happened (the run's clock is when the run began): for the server's log
                time=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                run_id=self.run_id,
                note=error or "",
            )
            raise lost_after_send(self.config, self.root, entry, ledger_trouble(exc)) from None
        return DeliveryOutcome(
            rcpt,
            result.state,
            result.attempts,
            self.msg_id,
            error,
            claimed=True,
            flagged=result.state == "review",
            channel=self.mailer.channel,
        )


def ledger_trouble(exc: BaseException) -> str:
    """What went wrong with the ledger, in a few words (the driver's first line, no secret)."""
    if isinstance(exc, LedgerError):
        return str(exc)
    text = str(getattr(exc, "orig", None) or exc).strip()
    return redact(" ".join(text.splitlines()[0].split()) if text else type(exc).__name__)


def lost_after_send(config: Config, root: Path, entry: dict[str, object], trouble: str) -> LedgerError:
    """The error of a run whose ledger failed after a message went out (or was refused): the
    outcome is noted in the fallback journal, which the next run applies to the ledger."""
    from reporter.delivery.journal import journal_path, note

    report, period, rcpt, state = entry["report"], entry["period"], entry["recipient"], entry["state"]
    when = dt.datetime.fromisoformat(str(entry["time"]))
    journal = journal_path(root)
    head = f"{report} {period}: "
    if state == "sent":
        head += f"sent to {rcpt} at {when:%H:%M:%S} UTC but the ledger could not record it ({trouble})"
        then = (
            f"once the ledger is back, run '{config.command('resolve', str(period), str(rcpt), '--sent')}' "
            "or run the report again: either records it from there, and it is not sent again"
        )
    elif state == "review":
        head += (
            f"the delivery to {rcpt} at {when:%H:%M:%S} UTC is unconfirmed (the server may have accepted "
            f"it) and the ledger could not record it ({trouble})"
        )
        then = (
            "once the ledger is back, the next run records it for review from there (it is not sent "
            f"again); {resolve_hint(config, str(period), str(rcpt))}"
        )
    else:
        head += f"sending to {rcpt} failed and the ledger could not record it ({trouble})"
        then = "once the ledger is back, the next run records it from there and retries it"
    failure = LedgerError(f"{head}; noted in {journal}: {then}")
    try:
        note(root, {**entry, "run_error": str(failure)})
    except OSError as exc:  # the journal cannot be written either: say so, with what to check
        settle = config.command("resolve", str(period), str(rcpt), "--sent")
        return LedgerError(
            f"{head}; the journal {journal} could not be written either ({exc.strerror or exc}): "
            f"check with the mail server, then run '{settle}' "
            "if it arrived, or '--resend' if it did not, once the ledger is back"
        )
    failure.subject = (  # type: ignore[attr-defined]  # the alert's subject
        f"run FAILED: {'sent to ' if state == 'sent' else ''}{rcpt}"
        + (" but the ledger could not record it" if state == "sent" else ": the ledger could not record it")
    )
    return failure


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
