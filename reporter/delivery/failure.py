"""What the alert of a failed run says about the deliveries it had already made.

A run can fail after some recipients already have the report: a burst whose third recipient's
report fails after the first two were sent, a server that refuses one address, an error in the
middle of sending. The ledger knows who has it; the alert says so instead of "nothing was
sent" (kept for a run that sent nothing)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from reporter.config.labels import Labels
from reporter.config.model import Config
from reporter.delivery.ledger import Ledger
from reporter.errors import RunError, Unconfirmed

LOG = logging.getLogger("reporter")


@dataclass
class Reached:
    """The run's recipients (addresses and chat channels, as the ledger keys them) by what they
    have of the report's period after the run."""

    run_id: int
    total: int = 0
    sent: list[str] = field(default_factory=list)  # sent by this run
    earlier: list[str] = field(default_factory=list)  # sent by an earlier run, skipped by this one
    unsure: list[str] = field(default_factory=list)  # sending began, no confirmation recorded
    unsure_now: int = 0  # of ``unsure``, those this run claimed
    missing: list[str] = field(default_factory=list)  # not sent

    @property
    def any_went_out(self) -> bool:
        """This run sent to someone, or began sending and cannot tell whether it arrived."""
        return bool(self.sent) or self.unsure_now > 0


def targets(config: Config, only: list[str] | None = None) -> list[str]:
    """Every recipient a run of ``config`` delivers to, lower-cased, each once, in the order the
    run goes: the e-mail's ``to`` and ``cc``, the burst's recipients, the chat channels
    (``only``: a run restricted to these)."""
    from reporter.delivery.addresses import recipients_of
    from reporter.delivery.chat import chat_keys

    email_cfg = config.delivery.email
    found: list[str] = []
    if email_cfg is not None:
        found += recipients_of(config)
        found += [r.email.lower() for r in email_cfg.recipients]
    found += chat_keys(config)
    wanted = None if only is None else {r.lower() for r in only}
    return [r for r in dict.fromkeys(found) if wanted is None or r in wanted]


def reached(
    config: Config, ledger: Ledger, run_id: int, period: str, only: list[str] | None = None
) -> Reached:
    """Who of the run's recipients has the report, as the ledger records it after run ``run_id``."""
    states = ledger.latest_states(config.report.id, period)
    found = Reached(run_id)
    for rcpt in targets(config, only):
        found.total += 1
        state, owner = states.get(rcpt, ("", None))
        if state == "sent":
            (found.sent if owner == run_id else found.earlier).append(rcpt)
        elif state in ("pending", "review"):
            found.unsure.append(rcpt)
            found.unsure_now += owner == run_id
        else:
            found.missing.append(rcpt)
    return found


def _recipients(n: int) -> str:
    return f"{n} recipient{'' if n == 1 else 's'}"


def failure_subject(reached: Reached, unexpected: bool) -> str:
    """The alert's subject for a run that failed after some deliveries went out."""
    kind = " (unexpected error)" if unexpected else ""
    text = f"run FAILED{kind} after sending to {len(reached.sent)} of {_recipients(reached.total)}"
    if reached.unsure_now:
        text += f", {reached.unsure_now} unconfirmed"
    return text


def review_subject(reached: Reached) -> str:
    """The alert's subject for a run that left deliveries in review (their fate is unknown)."""
    text = f"run FAILED: delivery unconfirmed for {len(reached.unsure)} of {_recipients(reached.total)}"
    if reached.missing:
        text += f", {len(reached.missing)} not sent"
    return text + "; review needed"


def failure_body(
    config: Config, reached: Reached, title: str, period: str, reason: str, review: bool = False
) -> str:
    """The alert's text: who has the report, who may have it, who does not, why, what to run.
    ``review``: the run failed because deliveries are in review (it says how to settle them)."""
    from reporter.delivery.chat import chat_keys
    from reporter.delivery.chat import resolve_hint as card_hint
    from reporter.delivery.send import resolve_hint

    cards = set(chat_keys(config))
    lines = [
        f"The run of '{title}' ({config.report.id}) for {period} failed after sending the report "
        f"to {len(reached.sent)} of {_recipients(reached.total)}.",
        "",
    ]
    if review:
        lines[0] = (
            f"The run of '{title}' ({config.report.id}) for {period} could not confirm the delivery "
            f"to {len(reached.unsure)} of {_recipients(reached.total)}: the server may have accepted "
            "the message, so it is not sent again automatically."
        )

    def part(heading: str, rcpts: list[str], hint: bool = False) -> None:
        if not rcpts:
            return
        lines.append(heading)
        for rcpt in rcpts:
            how = (card_hint if rcpt in cards else resolve_hint)(config, period, rcpt) if hint else ""
            lines.append(f"  - {rcpt}" + (f": {how}" if how else ""))

    part("Sent by this run:", reached.sent)
    part("Sent by an earlier run:", reached.earlier)
    part(
        "May have received it (sending began, its outcome was not recorded; not re-sent automatically):",
        reached.unsure,
        hint=True,
    )
    part("Not sent:", reached.missing)
    lines += ["", f"Reason:\n{reason}", ""]
    if review:
        lines += [
            "Check whether each recipient under 'May have received it' has it (their mailbox or "
            "channel, or the mail server's log), then run the 'reporter resolve' command shown: "
            "--sent if it arrived, --resend if it did not. Until then",
            f"  {config.command('status')}",
            "lists them, and every run of this period fails and says so.",
        ]
        if not reached.missing:
            return "\n".join(lines) + "\n"
        lines.append("")
    lines += [
        "Fix the cause, then run:",
        f"  {config.command('run', '--period', period)}",
        "It sends only to the recipients under 'Not sent'.",
    ]
    return "\n".join(lines) + "\n"


def partly_sent(
    config: Config,
    ledger: Ledger,
    run_id: int,
    period: str,
    only: list[str] | None,
    exc: BaseException,
    reason: str,
) -> tuple[str, str] | None:
    """The subject and body of the alert for run ``run_id``, failed with ``exc``, when it sent
    to someone before failing (None when it sent nothing, or when the failure is an archive
    failure after delivery, which has its own alert; also None when the ledger cannot be read,
    which is logged)."""
    from reporter.delivery.archiving import ArchiveFailed

    if isinstance(exc, ArchiveFailed):
        return None
    try:
        found = reached(config, ledger, run_id, period, only)
    except Exception as second:  # the ledger cannot tell: the alert says what it can
        LOG.error("could not read the deliveries from the ledger: %s", second)
        return None
    if isinstance(exc, Unconfirmed) and found.unsure:
        title = Labels(config).title()
        return review_subject(found), failure_body(config, found, title, period, reason, review=True)
    if not found.any_went_out:
        return None
    subject = failure_subject(found, unexpected=not isinstance(exc, RunError))
    return subject, failure_body(config, found, Labels(config).title(), period, reason)
