"""Send messages over SMTP (starttls | ssl | none) with bounded retries, or write them to an
outbox folder when the YAML has no smtp block.

The server and its login come from the operator's connection (``smtp.connection``, an
``smtp://USER:PASSWORD@HOST:PORT`` URL); a YAML ``host`` is a relay that gets no login.

A 4xx reply, a dropped connection or a timeout is retried with exponential backoff; a 5xx reply
is permanent for that recipient and is not retried. The clock (``sleep``) is injectable.

Once the message's end (``<CRLF>.<CRLF>``) has gone out, the server may have accepted it even if
its reply never arrives: a timeout (``smtp.data_timeout``, RFC 5321's 10 minutes by default) or a
dropped connection at that point is ``review`` ("may have been delivered"), never retried.

Deadlines: ``smtp.timeout`` bounds each read and write, and one overall deadline (``Deadline``,
a watchdog) bounds the conversation up to the message's end (connect, TLS, greeting, EHLO,
login, MAIL, RCPT, DATA, the message: ``CONVERSATION_STEPS`` × ``smtp.timeout``, 2 minutes by
default), so that a server trickling its banner one byte at a time cannot hold a run (nothing
was delivered: the recipient is ``failed``, not retried by this run, so that the others do not
wait three more deadlines; the next run retries it); then
``smtp.data_timeout`` bounds the wait for the reply to the message's end as a whole, and
``smtp.timeout`` the QUIT.

Any 2xx reply to RCPT (250, 251 "will forward", 252 "cannot verify, will try") accepts the
recipient (RFC 5321 §3.4); smtplib itself takes only 250 and 251.
"""

from __future__ import annotations

import datetime as dt
import os
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from reporter.config.connections import Connection, smtp_target
from reporter.config.model import Config, Smtp
from reporter.delivery.deadline import Deadline
from reporter.delivery.wall import wall_now
from reporter.errors import RunError
from reporter.files import recipient_name, write_atomic

CONVERSATION_STEPS = 4  # the conversation up to the message's end: at most this many smtp.timeout
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058's List-Unsubscribe-Post value


def unsubscribe_links(config: Config, recipient: str) -> list[str]:
    """What ``List-Unsubscribe`` offers (RFC 2369), in order: a ``mailto:`` to
    ``delivery.email.unsubscribe`` (else the sender) whose subject names the report, and, when
    ``report.url`` is an https address, that address with ``unsubscribe=<recipient>`` added
    (RFC 8058's one-click link: the page there receives a POST and runs ``reporter
    unsubscribe``)."""
    from email.utils import parseaddr
    from urllib.parse import quote

    email_cfg = config.delivery.email
    assert email_cfg is not None
    mailbox = parseaddr(email_cfg.unsubscribe or email_cfg.from_)[1]
    links = [f"mailto:{mailbox}?subject={quote(unsubscribe_subject(config.report.id))}"]
    url = config.report.url
    if url is not None and url.lower().startswith("https://"):
        base = url.partition("#")[0]
        joined = "&" if "?" in base else "?"
        links.append(f"{base}{joined}unsubscribe={quote(recipient.lower(), safe='')}")
    return links


def unsubscribe_subject(report: str) -> str:
    """The subject of the request the ``mailto:`` link writes (``suppression.requests`` reads it)."""
    return f"unsubscribe {report}"


def add_unsubscribe(message: EmailMessage, config: Config, recipient: str) -> None:
    """Give ``message`` its ``List-Unsubscribe`` header and, only when it holds the https link,
    ``List-Unsubscribe-Post`` (RFC 8058 §3.1: one-click needs an HTTPS URI; a ``mailto:`` alone
    offers none). Each link stays whole on its own line: Python would fold a long link into RFC
    2047 encoded words, which no mail client reads as a link (the header's lines may then pass 78
    characters, well under SMTP's 998)."""
    links = unsubscribe_links(config, recipient)
    message.set_raw("List-Unsubscribe", ",\r\n ".join(f"<{link}>" for link in links))
    if any(link.lower().startswith("https://") for link in links):
        message.set_raw("List-Unsubscribe-Post", ONE_CLICK)
    message.policy = message.policy.clone(refold_source="none")  # type: ignore[call-arg]


@dataclass
class SendResult:
    state: str  # sent | failed | review (the server may have accepted it; not retried)
    attempts: int
    error: str | None = None
    accepted: dt.datetime | None = None  # sent: the real time the server accepted it
    data: bytes | None = None  # sent: the message's bytes as the server received them


class _Transient(Exception):
    pass


class _Permanent(Exception):
    pass


class _Uncertain(Exception):
    """No reply after the end of DATA: the message may have been delivered."""


class _Tracking:
    """Knows when the message's end has been sent, and waits ``data_timeout`` for the reply;
    connects within what is left of the conversation's ``deadline``."""

    data_timeout: float = 600.0
    data_sent: bool = False
    accepted: tuple[dt.datetime, bytes] | None = None  # when the server took the message, and what
    _in_data: bool = False
    deadline: Deadline | None = None
    _host: str  # smtplib's: the name TLS checks the certificate against
    sock: Any  # smtplib's
    timeout: float  # smtplib's: each read and write

    def _get_socket(self, host: str, port: int, timeout: float) -> Any:
        if self.deadline is not None:  # the TLS handshake (ssl) is bounded by it as a whole
            timeout = min(timeout, self.deadline.remaining())
        return super()._get_socket(host, port, timeout)  # type: ignore[misc]

    def starttls(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        """The handshake is bounded as a whole by the socket's timeout (the watchdog cannot reach
        a socket being wrapped): what is left of the deadline, then ``timeout`` per read again."""
        if self.deadline is not None and self.sock is not None:
            self.sock.settimeout(min(self.timeout, self.deadline.remaining()))
        reply: tuple[int, bytes] = super().starttls(*args, **kwargs)  # type: ignore[misc]
        if self.sock is not None:
            self.sock.settimeout(self.timeout)
        return reply

    def rcpt(self, recip: str, options: Any = ()) -> tuple[int, bytes]:
        code, text = super().rcpt(recip, options)  # type: ignore[misc]
        if 200 <= code < 300 and code not in (250, 251):  # 252: smtplib would count it refused
            return 250, text
        return code, text

    def data(self, msg: Any) -> tuple[int, bytes]:
        self._in_data = True
        try:
            reply: tuple[int, bytes] = super().data(msg)  # type: ignore[misc]
        finally:
            self._in_data = False
        if reply[0] == 250:  # the moment the server took responsibility for the message
            sent = msg if isinstance(msg, bytes) else msg.encode("ascii")
            self.accepted = (wall_now(), sent if sent.endswith(b"\r\n") else sent + b"\r\n")
        return reply

    def send(self, s: Any) -> None:
        super().send(s)  # type: ignore[misc]
        if self._in_data and isinstance(s, bytes):  # the message with its final "."
            self.data_sent = True
            sock = getattr(self, "sock", None)
            if sock is not None:
                sock.settimeout(self.data_timeout)
            if self.deadline is not None:  # the wait for the reply, as a whole
                self.deadline.extend(self.data_timeout)


class _SMTP(_Tracking, smtplib.SMTP):
    pass


class _SMTP_SSL(_Tracking, smtplib.SMTP_SSL):
    pass


class Mailer:
    def __init__(
        self,
        smtp: Smtp | None,
        outbox: Path,
        *,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 4,
        backoff: float = 2.0,
        base_dir: Path | None = None,
        connections: Mapping[str, str] | None = None,
    ):
        self.username: str | None = None
        self.password: str | None = None
        if smtp is not None and smtp.connection is not None:
            url = (connections or {}).get(smtp.connection)
            if url is None:
                raise RunError(f"the SMTP connection '{smtp.connection}' is not defined")
            try:
                target = smtp_target(Connection(smtp.connection, url, "connection"))
            except ValueError as exc:
                raise RunError(f"the SMTP connection '{smtp.connection}' {exc}") from None
            server = {"host": target.host, "port": target.port, "security": target.security}
            smtp = smtp.model_copy(update=server)
            self.username, self.password = target.username, target.password
        self.smtp = smtp
        # the conversation up to the message's end, as a whole
        self.deadline = CONVERSATION_STEPS * smtp.timeout if smtp is not None else 0.0
        self.outbox = outbox
        self.env = os.environ if env is None else env
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.base_dir = base_dir or Path(".")

    @property
    def channel(self) -> str:
        return "outbox" if self.smtp is None else "smtp"

    def send(
        self,
        message: EmailMessage,
        recipient: str,
        on_attempt: Callable[[int, str | None], None],
        *,
        version: int = 1,
    ) -> SendResult:
        """Deliver ``message`` to ``recipient``; ``on_attempt(n, error)`` is called after each
        attempt so the ledger counts them. ``version``: the delivery's version, which names the
        outbox file of a re-send (``<recipient>_v2.eml``: an earlier version is never
        overwritten). A sent result carries the real time the server accepted the message and
        its bytes as the server received them (the outbox: as written)."""
        if self.smtp is None:
            name = recipient_name(recipient) + (f"_v{version}" if version > 1 else "")
            data = message.as_bytes()
            write_atomic(self.outbox / f"{name}.eml", data, within=self.outbox)
            on_attempt(1, None)
            return SendResult("sent", 1, accepted=wall_now(), data=data)
        error: str | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                accepted = self._send_once(message, recipient)
            except _Permanent as exc:
                on_attempt(attempt, str(exc))
                return SendResult("failed", attempt, str(exc))
            except _Uncertain as exc:
                on_attempt(attempt, str(exc))
                return SendResult("review", attempt, str(exc))
            except _Transient as exc:
                error = str(exc)
                on_attempt(attempt, error)
                if attempt < self.max_attempts:
                    self.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            on_attempt(attempt, None)
            if accepted is None:  # pragma: no cover - a 250 always records it
                return SendResult("sent", attempt, accepted=wall_now())
            return SendResult("sent", attempt, accepted=accepted[0], data=accepted[1])
        return SendResult("failed", self.max_attempts, f"gave up after {self.max_attempts} attempts: {error}")

    def _send_once(self, message: EmailMessage, recipient: str) -> tuple[dt.datetime, bytes] | None:
        """One conversation, under one overall deadline (see the module's docstring); when the
        server took the message and its bytes as sent."""
        smtp = self.smtp
        assert smtp is not None
        context = None  # loading the system's CAs takes a tenth of a second: only for TLS
        if smtp.security != "none":
            context = ssl.create_default_context(
                cafile=str(smtp.ca_file if smtp.ca_file.is_absolute() else self.base_dir / smtp.ca_file)
                if smtp.ca_file
                else None
            )
        client: _SMTP | _SMTP_SSL
        if smtp.security == "ssl":
            client = _SMTP_SSL(timeout=smtp.timeout, context=context)
        else:
            client = _SMTP(timeout=smtp.timeout)
        client._host = smtp.host or ""  # smtplib sets it only when it connects in __init__
        client.data_timeout = smtp.data_timeout
        client.deadline = deadline = Deadline(self.deadline, lambda: client.sock)
        try:
            try:
                client.connect(smtp.host or "", smtp.port)
                client.ehlo()
                if smtp.security == "starttls":
                    client.starttls(context=context)
                    client.ehlo()
                if self.username:
                    _login(client, self.username, self.password or "")
                refused = client.send_message(message, to_addrs=[recipient])
                if refused:
                    code, text = refused[recipient]
                    _raise_for(code, text)
            finally:
                deadline.extend(smtp.timeout)  # the QUIT (unless the deadline has passed)
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    client.close()
        except (smtplib.SMTPException, OSError) as exc:
            raise _classify(
                exc, client.data_sent, deadline.expired, self.deadline, smtp.data_timeout
            ) from None
        finally:
            deadline.finish(client.close)
        return client.accepted


def _classify(exc: Exception, sent: bool, expired: bool, limit: float, data_timeout: float) -> Exception:
    """What a failed conversation means: retried (``_Transient``), not (``_Permanent``), or may
    have been delivered (``_Uncertain``: the message's end had gone out). When the watchdog cut
    the conversation, its deadline is the reason, not whatever the cut made smtplib see."""
    timed_out = isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)
    if sent and (expired or timed_out):  # the watchdog or the last read: the same wait
        return _Uncertain(
            f"no reply after the message was sent (none within {data_timeout:g} s): "
            "the server may have accepted it"
        )
    if expired:  # nothing was delivered; not retried now: the other recipients wait
        return _Permanent(
            f"the server did not get through the conversation within {limit:g} s (connecting, its "
            "greeting and the commands before the message's end); not retried by this run"
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        return _for(code, text)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _for(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
        if sent:
            return _Uncertain(f"no reply after the message was sent ({exc}): the server may have accepted it")
        return _Transient(f"connection problem: {exc}")
    return _Transient(str(exc))


def _login(client: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH PLAIN when offered (one round trip, over TLS), else smtplib's negotiation. A wrong
    password is a 535: permanent, not retried."""
    if "plain" in client.esmtp_features.get("auth", "").lower().split():
        client.user, client.password = user, password
        client.auth("PLAIN", client.auth_plain, initial_response_ok=True)
        return
    client.login(user, password)


def _raise_for(code: int, text: bytes | str) -> None:
    raise _for(code, text)


def _for(code: int, text: bytes | str) -> Exception:
    message = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    detail = f"{code} {message}".strip()
    if 400 <= code < 500:
        return _Transient(detail)
    return _Permanent(detail)
