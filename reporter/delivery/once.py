"""Exactly once, for every channel: one delivery's life in the ledger, written once.

A delivery is a ``Key`` (report, period, recipient: an address, or a chat channel's
``slack:SLACK_WEBHOOK_URL``) and the versions the ledger holds for it. A ``Channel`` (e-mail,
Slack, Teams, and whatever sends a payload next) knows two things: how to send a payload, and
how a person settles a delivery whose fate is unknown. Everything else is decided here:

- nothing recorded: claim version 1 (state ``pending``, committed before sending), send, record
  ``sent``, ``failed`` or ``review``;
- ``sent``: skipped (``--force`` claims the next version, with a new Message-ID);
- ``failed``: retried with the same version and Message-ID;
- ``pending`` held by a live run: skipped (that run is sending it);
- ``pending`` left by a run that is gone (it stopped after sending began: the server may have
  the message): never sent again by itself, moved to ``review``;
- ``review``: left alone until a person says what happened (``reporter resolve``:
  ``settle_by_hand`` moves it to ``sent``, or to ``failed`` for the next run to send).

Two runs racing on one key cannot both send: the claim is one atomic statement
(``Ledger.claim``). When the ledger is lost after the payload went out, the outcome goes to the
fallback journal (``reporter.delivery.journal``) and the run fails saying so.

Alert messages (``reporter.delivery.alerting``: report ``<id>/alert/<rule>``, period ``#<seq>``)
go through the same machine with ``registered_runs=False``: an alert evaluation is not a run
recorded in the ledger, so there is no run to ask whether a ``pending`` message is still being
sent; one found ``pending`` is moved to ``review`` at once (never sent again by itself, until
``reporter resolve ... --alert RULE`` settles it with ``settle_by_hand`` as a report's), and the
next evaluation applies what the journal kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from reporter.config.model import Config
from reporter.delivery.mailer import SendResult
from reporter.errors import LedgerBusy, LedgerError

if TYPE_CHECKING:  # SQLAlchemy is imported by a run that sends, not by one that only writes
    from reporter.delivery.ledger import Delivery, Ledger
from reporter.render.digest import message_id
from reporter.security import redact

P = TypeVar("P", contravariant=True)


@dataclass(frozen=True)
class Key:
    """One delivery, as the ledger names it (the recipient is compared lower-cased)."""

    report: str
    period: str
    recipient: str


class Channel(Protocol[P]):
    """What carries a payload to a recipient: an e-mail server, a chat webhook, ..."""

    @property
    def kind(self) -> str:
        """The ledger's ``channel`` column and the console's word: smtp, outbox, slack, teams."""
        ...

    def send(
        self, payload: P, key: Key, on_attempt: Callable[[int, str | None], None], *, version: int
    ) -> SendResult:
        """Send ``payload`` (the delivery's ``version``) to ``key``'s recipient, calling
        ``on_attempt(n, error)`` after each attempt: ``sent``; ``failed`` (provably not
        delivered: the next run retries it); or ``review`` (it may have arrived: never sent
        again by itself)."""
        ...

    def settle_hint(self, key: Key) -> str:
        """What a person does about a delivery in review: where to look, which command to run."""
        ...


@dataclass
class DeliveryOutcome:
    recipient: str
    # sent | failed | skipped (already sent, or being sent by another run: see ``error``) |
    # review (may have been delivered: a crash, or no reply after the message's end)
    state: str
    attempts: int
    message_id: str
    error: str | None = None
    channel: str = ""  # smtp | outbox | slack | teams, for what the console says
    sent_on: str | None = None  # skipped: when the ledger recorded it sent
    claimed: bool = False  # this run took the delivery and tried to send it
    flagged: bool = False  # this run put it in review (alerts_to is told)
    accepted: dt.datetime | None = None  # sent: the real time the server accepted it
    data: bytes | None = None  # sent: the message as the server received it (archived)
    version: int = 0  # claimed: the delivery's version


def _ledger_errors() -> tuple[type[BaseException], ...]:
    """What a ledger raises when it fails (evaluated only once an exception is being handled, so
    that importing this module does not import SQLAlchemy)."""
    import sqlalchemy as sa

    return (sa.exc.SQLAlchemyError, LedgerError)


def key_message_id(key: Key, version: int) -> str:
    """The Message-ID of ``key``'s delivery ``version``. An alert's key is written as a plain
    dot-atom (``/`` as ``.``, no ``#``: ``al.alert.rule``, ``1``); a report's key (a slug and a
    period label) is unchanged by that."""
    return message_id(key.report.replace("/", "."), key.period.lstrip("#"), key.recipient, version)


def version_for(ledger: Ledger | None, key: Key, *, force: bool) -> int:
    """The version a delivery of ``key`` by this run gets: the recorded one (a retry, or a
    skip), the next when forced, else 1. Its Message-ID is ``key_message_id(key, version)``."""
    latest = ledger.latest(key.report, key.period, key.recipient) if ledger is not None else None
    return 1 if latest is None else latest.version + (1 if force else 0)


@dataclass
class ExactlyOnce:
    """One run's deliveries through ``ledger``: ``deliver_once`` for each key. ``config`` and
    ``root`` (the output folder) name the commands a person runs and the fallback journal;
    ``on_claim`` is called before each claim (the pipeline records there that the PDF must be
    archived); ``force`` opens a new version of a delivery already made, for ``reason``.
    ``registered_runs``: the senders are runs recorded in the ledger (``run_id``), so a ``pending``
    delivery is skipped while its run is alive; False for alert evaluations (``run_id`` 0), which
    move any ``pending`` delivery they find to ``review`` at once."""

    ledger: Ledger
    config: Config
    root: Path
    run_id: int
    now: dt.datetime
    force: bool = False
    reason: str | None = None
    on_claim: Callable[[], None] | None = None
    registered_runs: bool = True

    def deliver_once(self, channel: Channel[P], key: Key, payload: Callable[[str], P]) -> DeliveryOutcome:
        """Deliver to ``key`` through ``channel`` unless it has been (or may have been) already.
        ``payload(message_id)`` builds what is sent; it is called before the claim, so a payload
        that cannot be built leaves nothing claimed."""
        ledger = self.ledger
        latest = ledger.latest(key.report, key.period, key.recipient)
        version, retry = 1, False
        if latest is not None and not self.force:
            settled = self._settled(channel, key, latest)
            if settled is not None:
                return settled
            version, retry = latest.version, True  # failed before: retry with the same Message-ID
        elif latest is not None:
            version = latest.version + 1
        msg_id = key_message_id(key, version)
        body = payload(msg_id)
        if self.on_claim is not None:
            self.on_claim()
        forced = self.force and latest is not None
        if not self._claim(key, version, msg_id, channel.kind, forced=forced, retry=retry):
            # another run took it between our look and our claim
            note = "claimed by another run at the same time, not sent by this one"
            return DeliveryOutcome(key.recipient, "skipped", 0, msg_id, note)
        return self._send(channel, key, version, msg_id, body, forced=forced)

    def _settled(self, channel: Channel[P], key: Key, latest: Delivery) -> DeliveryOutcome | None:
        """The outcome for a delivery that must not be sent again (sent, being sent by a live
        run, or left for review); None when it failed before (retry it)."""
        ledger, (report, period, rcpt), now = self.ledger, (key.report, key.period, key.recipient), self.now
        if latest.state == "sent":
            return _skipped(ledger, key, latest)
        if latest.state not in ("pending", "review"):
            return None
        if latest.state == "pending" and self.registered_runs:
            owner = ledger.run_of(report, period, rcpt, latest.version)
            if owner != self.run_id and ledger.run_alive(owner, now):
                note = f"being sent by another run (run {owner}), not sent by this one"
                return DeliveryOutcome(rcpt, "skipped", latest.attempts, latest.message_id, note)
        sender = "run" if self.registered_runs else "evaluation"
        note = (
            f"a previous {sender} stopped after sending began (the server may have accepted it): "
            f"not re-sent; {channel.settle_hint(key)}"
        )
        if latest.state == "review":
            note = latest.last_error or note
        elif not ledger.move(
            report, period, rcpt, latest.version, now, from_states=("pending",), to="review", note=note
        ):
            # the other run recorded its outcome meanwhile: say what it is now
            now_latest = ledger.latest(report, period, rcpt)
            assert now_latest is not None
            state = "skipped" if now_latest.state == "sent" else now_latest.state
            return DeliveryOutcome(
                rcpt, state, now_latest.attempts, now_latest.message_id, now_latest.last_error
            )
        flagged = latest.state == "pending"  # moved to review by this run
        return DeliveryOutcome(rcpt, "review", latest.attempts, latest.message_id, note, flagged=flagged)

    def _claim(self, key: Key, version: int, msg_id: str, kind: str, *, forced: bool, retry: bool) -> bool:
        """``Ledger.claim``; a ledger that cannot record it is a clear error (nothing was sent)."""
        report, period, rcpt = key.report, key.period, key.recipient
        try:
            return self.ledger.claim(
                report,
                period,
                rcpt,
                version,
                msg_id,
                self.now,
                forced=forced,
                reason=self.reason,
                channel=kind,
                run_id=self.run_id,
                retry=retry,
            )
        except _ledger_errors() as exc:
            busy = isinstance(exc, LedgerBusy)
            raise (LedgerBusy if busy else LedgerError)(
                f"{report} {period}: the ledger could not record the intent to send to {rcpt}: "
                f"{ledger_trouble(exc)}; nothing was sent to {rcpt}; run again once "
                + ("the lock is released" if busy else "the ledger is back")
            ) from None

    def _send(
        self, channel: Channel[P], key: Key, version: int, msg_id: str, body: P, *, forced: bool
    ) -> DeliveryOutcome:
        """Send one claimed delivery, each attempt counted in the ledger, the outcome recorded
        there or, when the ledger is lost meanwhile, in the fallback journal (the run fails)."""
        report, period, rcpt, now = key.report, key.period, key.recipient, self.now
        lost: list[BaseException] = []  # the ledger failed while the payload was being sent

        def counted(attempt: int, error: str | None) -> None:
            if lost:
                return
            try:
                self.ledger.record(
                    report, period, rcpt, version, now, state="pending", error=error, attempt=True
                )
            except _ledger_errors() as exc:
                lost.append(exc)  # the channel goes on: what it does is journaled below

        result = channel.send(body, key, counted, version=version)
        error = result.error
        if result.state == "review":
            error = f"{error}; not re-sent: {channel.settle_hint(key)}"
        try:
            if lost:
                raise lost[0]
            self.ledger.record(
                report, period, rcpt, version, now, state=result.state, error=error, accepted=result.accepted
            )
        except _ledger_errors() as exc:
            entry = dict(
                report=report,
                period=period,
                recipient=rcpt,
                version=version,
                message_id=msg_id,
                state=result.state,
                attempts=result.attempts,
                channel=channel.kind,
                forced=forced,
                # when it happened (the run's clock is when the run began): for the server's log
                time=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                run_id=self.run_id,
                note=error or "",
            )
            trouble, runs = ledger_trouble(exc), self.registered_runs
            raise lost_after_send(
                self.config, self.root, entry, trouble, channel, registered_runs=runs
            ) from None
        return DeliveryOutcome(
            rcpt,
            result.state,
            result.attempts,
            msg_id,
            error,
            claimed=True,
            flagged=result.state == "review",
            channel=channel.kind,
            accepted=result.accepted,
            data=result.data,
            version=version,
        )


def already_sent(ledger: Ledger, key: Key) -> DeliveryOutcome | None:
    """``key``'s outcome when the ledger says it was sent (skipped, with when), else None."""
    latest = ledger.latest(key.report, key.period, key.recipient)
    return None if latest is None or latest.state != "sent" else _skipped(ledger, key, latest)


def _skipped(ledger: Ledger, key: Key, latest: Delivery) -> DeliveryOutcome:
    from reporter.delivery.wording import sent_on

    when = sent_on(ledger, key.report, key.period, key.recipient, latest.version)
    return DeliveryOutcome(key.recipient, "skipped", latest.attempts, latest.message_id, sent_on=when)


# --- settled by a person (reporter resolve) ----------------------------------------------------


@dataclass
class Standing:
    """Where a delivery stands for ``reporter resolve``: its latest version (None: nothing
    recorded), the run that claimed it, whether that run is sending it right now, and whether a
    person may settle it (in review, or pending with no live run behind it)."""

    latest: Delivery | None
    owner: int | None = None
    busy: bool = False
    open: bool = False


def standing(ledger: Ledger, key: Key, now: dt.datetime) -> Standing:
    latest = ledger.latest(key.report, key.period, key.recipient)
    if latest is None:
        return Standing(None)
    owner = ledger.run_of(key.report, key.period, key.recipient, latest.version)
    busy = latest.state == "pending" and ledger.run_alive(owner, now)
    return Standing(latest, owner, busy, latest.state in ("review", "pending"))


def settle_by_hand(
    ledger: Ledger, key: Key, version: int, now: dt.datetime, *, sent: bool, note: str
) -> bool:
    """A person's word on a delivery in review: it arrived (``sent``), or it did not (``failed``:
    the next run sends it again, same Message-ID). False when it was no longer open."""
    return ledger.move(
        key.report,
        key.period,
        key.recipient,
        version,
        now,
        from_states=("review", "pending"),
        to="sent" if sent else "failed",
        note=note,
    )


# --- the ledger lost ----------------------------------------------------------------------------


def ledger_trouble(exc: BaseException) -> str:
    """What went wrong with the ledger, in a few words (the driver's first line, no secret)."""
    if isinstance(exc, LedgerError):
        return str(exc)
    text = str(getattr(exc, "orig", None) or exc).strip()
    return redact(" ".join(text.splitlines()[0].split()) if text else type(exc).__name__)


def lost_after_send(
    config: Config,
    root: Path,
    entry: dict[str, object],
    trouble: str,
    channel: Channel[P],
    *,
    registered_runs: bool = True,
) -> LedgerError:
    """The error of a run whose ledger failed after a payload went out (or was refused): the
    outcome is noted in the fallback journal, which the next run applies to the ledger (for an
    alert, ``registered_runs`` False: the rule's next evaluation)."""
    from reporter.delivery.journal import journal_path, note

    report, period, rcpt, state = entry["report"], entry["period"], entry["recipient"], entry["state"]
    key = Key(str(report), str(period), str(rcpt))
    when = dt.datetime.fromisoformat(str(entry["time"]))
    journal = journal_path(root)
    head = f"{report} {period}: "
    following = "run" if registered_runs else "evaluation"
    if state == "sent":
        head += f"sent to {rcpt} at {when:%H:%M:%S} UTC but the ledger could not record it ({trouble})"
        then = (
            f"once the ledger is back, run '{config.command('resolve', str(period), str(rcpt), '--sent')}' "
            "or run the report again: either records it from there, and it is not sent again"
            if registered_runs
            else "once the ledger is back, the rule's next evaluation records it from there, and it is "
            "not sent again"
        )
    elif state == "review":
        head += (
            f"the delivery to {rcpt} at {when:%H:%M:%S} UTC is unconfirmed (the server may have accepted "
            f"it) and the ledger could not record it ({trouble})"
        )
        then = (
            f"once the ledger is back, the next {following} records it for review from there (it is "
            f"not sent again); {channel.settle_hint(key)}"
        )
    else:
        head += f"sending to {rcpt} failed and the ledger could not record it ({trouble})"
        then = f"once the ledger is back, the next {following} records it from there and retries it"
    failure = LedgerError(f"{head}; noted in {journal}: {then}")
    try:
        note(root, {**entry, "run_error": str(failure)})
    except OSError as exc:  # the journal cannot be written either: say so, with what to check
        if not registered_runs:  # left pending: the next evaluation puts it in review
            return LedgerError(
                f"{head}; the journal {journal} could not be written either ({exc.strerror or exc}): "
                "once the ledger is back, the rule's next evaluation sets it to review and does not "
                f"send it again; {channel.settle_hint(key)}"
            )
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
