"""Send messages over SMTP (starttls | ssl | none) with bounded retries, or write them to an
outbox folder when the YAML has no smtp block.

The server and its login come from the operator's connection (``smtp.connection``, an
``smtp://USER:PASSWORD@HOST:PORT`` URL); a YAML ``host`` is a relay that gets no login.

A 4xx reply, a dropped connection or a timeout is retried with exponential backoff; a 5xx reply
is permanent for that recipient and is not retried. The clock (``sleep``) is injectable.

Once the message's end (``<CRLF>.<CRLF>``) has gone out, the server may have accepted it even if
its reply never arrives: a timeout (``smtp.data_timeout``, RFC 5321's 10 minutes by default) or a
dropped connection at that point is ``review`` ("may have been delivered"), never retried.
"""

from __future__ import annotations

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
from reporter.config.model import Smtp
from reporter.errors import RunError
from reporter.files import write_atomic


@dataclass
class SendResult:
    state: str  # sent | failed | review (the server may have accepted it; not retried)
    attempts: int
    error: str | None = None


class _Transient(Exception):
    pass


class _Permanent(Exception):
    pass


class _Uncertain(Exception):
    """No reply after the end of DATA: the message may have been delivered."""


class _Tracking:
    """Knows when the message's end has been sent, and waits ``data_timeout`` for the reply."""

    data_timeout: float = 600.0
    data_sent: bool = False
    _in_data: bool = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        self._in_data = True
        try:
            return super().data(msg)  # type: ignore[misc, no-any-return]
        finally:
            self._in_data = False

    def send(self, s: Any) -> None:
        super().send(s)  # type: ignore[misc]
        if self._in_data and isinstance(s, bytes):  # the message with its final "."
            self.data_sent = True
            sock = getattr(self, "sock", None)
            if sock is not None:
                sock.settimeout(self.data_timeout)


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
        self, message: EmailMessage, recipient: str, on_attempt: Callable[[int, str | None], None]
    ) -> SendResult:
        """Deliver ``message`` to ``recipient``; ``on_attempt(n, error)`` is called after each
        attempt so the ledger counts them."""
        if self.smtp is None:
            write_atomic(self.outbox / f"{_safe(recipient)}.eml", message.as_bytes())
            on_attempt(1, None)
            return SendResult("sent", 1)
        error: str | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                self._send_once(message, recipient)
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
            return SendResult("sent", attempt)
        return SendResult("failed", self.max_attempts, f"gave up after {self.max_attempts} attempts: {error}")

    def _send_once(self, message: EmailMessage, recipient: str) -> None:
        smtp = self.smtp
        assert smtp is not None
        context = ssl.create_default_context(
            cafile=str(smtp.ca_file if smtp.ca_file.is_absolute() else self.base_dir / smtp.ca_file)
            if smtp.ca_file
            else None
        )
        client: _SMTP | _SMTP_SSL | None = None
        try:
            if smtp.security == "ssl":
                client = _SMTP_SSL(smtp.host or "", smtp.port, timeout=smtp.timeout, context=context)
            else:
                client = _SMTP(smtp.host or "", smtp.port, timeout=smtp.timeout)
            client.data_timeout = smtp.data_timeout
            try:
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
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    client.close()
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            _raise_for(code, text)
        except smtplib.SMTPResponseException as exc:
            _raise_for(exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
            if client is not None and client.data_sent:
                raise _Uncertain(
                    f"no reply after the message was sent ({exc}): the server may have accepted it"
                ) from None
            raise _Transient(f"connection problem: {exc}") from None
        except smtplib.SMTPException as exc:
            raise _Transient(str(exc)) from None


def _login(client: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH PLAIN when offered (one round trip, over TLS), else smtplib's negotiation. A wrong
    password is a 535: permanent, not retried."""
    if "plain" in client.esmtp_features.get("auth", "").lower().split():
        client.user, client.password = user, password
        client.auth("PLAIN", client.auth_plain, initial_response_ok=True)
        return
    client.login(user, password)


def _raise_for(code: int, text: bytes | str) -> None:
    message = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    detail = f"{code} {message}".strip()
    if 400 <= code < 500:
        raise _Transient(detail)
    raise _Permanent(detail)


def _safe(address: str) -> str:
    return "".join(c if c.isalnum() or c in "@._-+" else "_" for c in address.lower())
