"""The recipients who asked to receive a report no more: the suppression list in the ledger.

An address enters it by ``reporter unsubscribe CONFIG ADDRESS`` (the operator, or the web page
behind the one-click link of ``List-Unsubscribe``) or by a request mailed to the ``mailto:`` link
of that header, read from a copy of the unsubscribe mailbox (``reporter unsubscribe CONFIG
--from-mbox FILE``). Every later run skips the address and says so; ``reporter subscribe``
lifts it. Nothing is deleted: each row keeps when and how the address was suppressed and, once
lifted, when and how (``history``, for ``reporter audit``).

A mailed request is taken from the mailbox when it is addressed (To, Cc, Delivered-To or
X-Original-To) to the report's unsubscribe mailbox (``delivery.email.unsubscribe``, else its
``from``) and its subject is ``unsubscribe <report id>`` (what the link writes) or plain
``unsubscribe`` (every report of CONFIG using that mailbox); a ``Re:``/``Fwd:`` prefix and case
do not matter. The address suppressed is the request's From, and only when it is a recipient of
that report (``to``, ``cc``, ``recipients`` or an alert rule's ``to``): a request from anyone else
changes nothing. A suppressed address gets neither the report nor its alerts. The
From of a mail can be forged: the mailbox should be one the mail server only fills with mail
that passed its SPF/DKIM/DMARC checks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reporter.config.model import Config
from reporter.delivery.ledger import Ledger, suppressions
from reporter.delivery.mailer import unsubscribe_subject

COMMAND = "reporter unsubscribe"


@dataclass(frozen=True)
class Suppression:
    """One row of the list: ``lifted`` is None while the address is suppressed."""

    report: str
    address: str
    added: dt.datetime
    how: str
    lifted: dt.datetime | None = None
    lifted_how: str | None = None

    @property
    def active(self) -> bool:
        return self.lifted is None


def _utc(when: dt.datetime | None) -> dt.datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _row(row: Any) -> Suppression:
    added = _utc(row.added)
    assert added is not None
    return Suppression(row.report, row.address, added, row.how, _utc(row.lifted), row.lifted_how)


def history(ledger: Ledger, report: str | None = None, address: str | None = None) -> list[Suppression]:
    """Every suppression recorded (lifted or not), oldest first: for ``reporter audit``, which
    shows who stopped receiving which report, when and how, and when it was undone."""
    query = sa.select(suppressions).order_by(suppressions.c.added, suppressions.c.id)
    if report is not None:
        query = query.where(suppressions.c.report == report)
    if address is not None:
        query = query.where(suppressions.c.address == address.lower())
    with ledger.engine.connect() as conn:
        return [_row(r) for r in conn.execute(query)]


def suppressed(ledger: Ledger, report: str) -> dict[str, Suppression]:
    """The addresses ``report`` must not be sent to now, each with its suppression."""
    query = sa.select(suppressions).where(suppressions.c.report == report, suppressions.c.lifted.is_(None))
    with ledger.engine.connect() as conn:
        return {r.address: _row(r) for r in conn.execute(query)}


def _in_force(conn: Any, report: str, address: str) -> Any:
    """The row of ``address``'s suppression for ``report`` not lifted yet, or None."""
    return conn.execute(
        sa.select(suppressions).where(
            suppressions.c.report == report,
            suppressions.c.address == address,
            suppressions.c.lifted.is_(None),
        )
    ).first()


def unsubscribe(ledger: Ledger, report: str, address: str, now: dt.datetime, how: str) -> Suppression | None:
    """Suppress ``address`` for ``report``; the suppression already in force (nothing
    recorded) or None when this call made one."""
    address = address.lower()
    with ledger.engine.begin() as conn:
        held = _in_force(conn, report, address)
        if held is not None:
            return _row(held)
        conn.execute(suppressions.insert().values(report=report, address=address, added=now, how=how))
    return None


def subscribe(ledger: Ledger, report: str, address: str, now: dt.datetime, how: str) -> Suppression | None:
    """Lift ``address``'s suppression for ``report``; the suppression lifted, or None when
    there was none."""
    address = address.lower()
    with ledger.engine.begin() as conn:
        held = _in_force(conn, report, address)
        if held is None:
            return None
        conn.execute(
            suppressions.update().where(suppressions.c.id == held.id).values(lifted=now, lifted_how=how)
        )
    return _row(held)


def skip_note(config: Config, held: Suppression) -> str:
    """Why a run did not send to a suppressed address (the console's line, pinned in tests)."""
    return (
        f"unsubscribed on {held.added:%Y-%m-%d} ({held.how}), not sent; "
        f"'{config.command('subscribe', held.address)}' sends to it again"
    )


def recipients(config: Config) -> list[str]:
    """Every address ``config`` sends mail to (the report's ``to``, ``cc``, ``recipients``, and
    its alert rules' ``to``), lowercased: an address that only receives alerts may unsubscribe
    too."""
    email_cfg = config.delivery.email
    found = []
    if email_cfg is not None:
        found += [email.utils.parseaddr(t)[1].lower() for t in [*email_cfg.to, *email_cfg.cc]]
        found += [email.utils.parseaddr(r.email)[1].lower() for r in email_cfg.recipients]
    if config.alerts is not None:
        found += [email.utils.parseaddr(t)[1].lower() for rule in config.alerts.rules for t in rule.to]
    return list(dict.fromkeys(found))


def mailbox_of(config: Config) -> str | None:
    """The address unsubscribe requests for ``config`` are mailed to."""
    email_cfg = config.delivery.email
    if email_cfg is None:
        return None
    return email.utils.parseaddr(email_cfg.unsubscribe or email_cfg.from_)[1].lower()


@dataclass
class Request:
    """A message of the mailbox, read: ``reports`` it unsubscribes ``address`` from, or
    ``ignored``, why it changes nothing."""

    message_id: str
    address: str
    date: str
    reports: list[Config]
    ignored: str = ""


def requests(mbox: Path, configs: list[Config]) -> list[Request]:
    """Each message of the mbox file ``mbox``, read as an unsubscribe request for ``configs``
    (the rules are in the module's docstring)."""
    import mailbox

    found: list[Request] = []
    box = mailbox.mbox(mbox, create=False)
    try:
        for message in box:
            found.append(_request(message, configs))
    finally:
        box.close()
    return found


_ADDRESSED = ("To", "Cc", "Delivered-To", "X-Original-To")


def _request(message: Any, configs: list[Config]) -> Request:
    addressed = {
        a.lower()
        for _, a in email.utils.getaddresses(
            [
                str(v)
                for key in ("To", "Cc", "Delivered-To", "X-Original-To")
                for v in message.get_all(key, [])
            ]
        )
        if a
    }
    sender = email.utils.parseaddr(str(message.get("From", "")))[1].lower()
    subject = " ".join(header_text(message, "Subject").split()).lower()
    while subject[:4] in ("re: ", "aw: ") or subject[:5] == "fwd: ":
        subject = subject.split(" ", 1)[1] if " " in subject else ""
    found = Request(
        str(message.get("Message-ID", "")).strip(), sender, str(message.get("Date", "")).strip(), []
    )
    mailed = [c for c in configs if mailbox_of(c) in addressed]
    if not mailed:
        found.ignored = "not addressed to an unsubscribe mailbox of these reports"
        return found
    wanted = [c for c in mailed if subject in ("unsubscribe", unsubscribe_subject(c.report.id))]
    if not wanted:
        found.ignored = f"subject '{subject}' is not 'unsubscribe REPORT'"
        return found
    if not sender:
        found.ignored = "no From address"
        return found
    found.reports = [c for c in wanted if sender in recipients(c)]
    if not found.reports:
        names = ", ".join(c.report.id for c in wanted)
        found.ignored = f"{sender} is not a recipient of {names}"
    return found


def header_text(message: Any, name: str) -> str:
    """The text of ``message``'s header ``name`` (its first; "" without one) as a person reads it:
    RFC 2047 encoded words decoded; raw 8-bit bytes, which some mail programs send unencoded, read
    as UTF-8, and only bytes that are not UTF-8 replaced (U+FFFD) as a last resort."""
    from email.errors import HeaderParseError
    from email.header import decode_header, make_header

    raw = next((value for key, value in message.raw_items() if key.lower() == name.lower()), None)
    if raw is None:
        return ""
    blob = str(raw).encode("utf-8", "surrogateescape")  # the 8-bit bytes the parser kept as they came
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        text = blob.decode("utf-8", "replace")
    if "=?" in text:
        with contextlib.suppress(HeaderParseError, LookupError, UnicodeError):  # broken: as written
            text = str(make_header(decode_header(text)))
    return text


def mailed_how(request: Request, config: Config) -> str:
    """How a mailed request is recorded in the list (``Suppression.how``)."""
    said = f"request mailed to {mailbox_of(config)}"
    if request.message_id:
        said += f", Message-ID {request.message_id}"
    return said
