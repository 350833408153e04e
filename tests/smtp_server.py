"""A real SMTP server on 127.0.0.1 (aiosmtpd) whose replies a test can script."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Handler:
    received: list[Received] = field(default_factory=list)
    # rcpt_reply(address, attempt) -> None (accept) or an SMTP reply such as "550 5.1.1 unknown"
    # (a 2xx reply such as "251 will forward" accepts the address too)
    rcpt_reply: Callable[[str, int], str | None] = lambda address, attempt: None
    drop_data: int = 0  # drop the connection after the message's end, this many times (no reply)
    drop_rcpt: int = 0  # drop the connection at RCPT (before DATA), this many times
    late_reply: float = 0.0  # store the message, then wait this long before answering 250
    rcpt_attempts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self.lock:
            self.rcpt_attempts[address] = self.rcpt_attempts.get(address, 0) + 1
            attempt = self.rcpt_attempts[address]
            if self.drop_rcpt > 0:
                self.drop_rcpt -= 1
                server.transport.close()
                return "421 closing"
        reply = self.rcpt_reply(address, attempt)
        if reply and reply.startswith("2"):  # 251, 252: accepted all the same (RFC 5321 §3.4)
            envelope.rcpt_tos.append(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.drop_data > 0:
                self.drop_data -= 1
                server.transport.close()
                return "421 closing"
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        if self.late_reply:
            await asyncio.sleep(self.late_reply)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


class Server:
    def __init__(self, tmp: Path, *, tls: bool = False, auth: tuple[str, str] | None = None):
        self.handler = Handler()
        kwargs: dict[str, Any] = {}
        self.cert = None
        if tls:
            self.cert, key = tmp / "cert.pem", tmp / "key.pem"
            subprocess.run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=localhost",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout",
                    str(key),
                    "-out",
                    str(self.cert),
                ],
                check=True,
                capture_output=True,
            )
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert, key)
            kwargs.update(tls_context=context, require_starttls=True)
        if auth is not None:
            user, password = auth

            def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
                ok = (
                    isinstance(data, LoginPassword)
                    and data.login.decode() == user
                    and data.password.decode() == password
                )
                return AuthResult(success=ok, handled=False)

            kwargs.update(authenticator=check, auth_required=True, auth_require_tls=True)
        self.port = _free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> Server:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Trickler:
    """A raw TCP server on 127.0.0.1 in front of an SMTP server (``upstream``, a port). Its first
    ``trickle`` connections get a greeting that never ends: ``220-`` continuation lines, one
    byte every ``every`` seconds (each read gets a byte well within any per-read timeout), for
    at most ``limit`` seconds or until the client goes away; ``trickled_for`` keeps how long
    each lasted. Later connections are passed through to ``upstream`` byte for byte, except that
    on the first ``after_dot`` of them the server's reply to the message's end (after the
    client's ``<CRLF>.<CRLF>``) is trickled the same way."""

    def __init__(
        self,
        upstream: int,
        *,
        trickle: int = 1,
        after_dot: int = 0,
        every: float = 0.05,
        limit: float = 10.0,
    ):
        import socket

        self.upstream, self.trickle, self.every, self.limit = upstream, trickle, every, limit
        self.after_dot = after_dot
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = int(self.listener.getsockname()[1])
        self.connections = 0
        self.trickled_for: list[float] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Trickler:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self.listener.close()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        import socket

        while not self._stop.is_set():
            try:
                conn, _addr = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            if self.connections <= self.trickle:
                self._spawn(self._trickle, conn)
            else:
                up = socket.create_connection(("127.0.0.1", self.upstream))
                dot = threading.Event()  # the client has sent the message's end
                slow = self.connections - self.trickle <= self.after_dot
                self._spawn(self._pipe, conn, up, dot, False)
                self._spawn(self._pipe, up, conn, dot, slow)

    def _trickle(self, conn: Any) -> None:
        import time

        started = time.monotonic()
        line = b"220-still saying hello\r\n"
        sent = 0
        with conn:
            while not self._stop.is_set() and time.monotonic() - started < self.limit:
                try:
                    conn.sendall(line[sent % len(line) : sent % len(line) + 1])
                except OSError:  # the client gave up
                    break
                sent += 1
                time.sleep(self.every)
        self.trickled_for.append(time.monotonic() - started)

    def _pipe(self, source: Any, sink: Any, dot: threading.Event, slow: bool) -> None:
        """Copy ``source`` to ``sink``; from the client, note the message's end in ``dot``; to
        the client (``slow``), trickle what follows it."""
        import socket
        import time

        source.settimeout(0.2)
        tail = b""
        try:
            while not self._stop.is_set():
                try:
                    data = source.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                if not slow:
                    tail = (tail + data)[-5:]
                    if tail.endswith(b"\r\n.\r\n"):
                        dot.set()
                    sink.sendall(data)
                    continue
                if not dot.is_set():
                    sink.sendall(data)
                    continue
                started = time.monotonic()
                for i in range(len(data)):
                    sink.sendall(data[i : i + 1])
                    time.sleep(self.every)
                self.trickled_for.append(time.monotonic() - started)
        except OSError:
            pass
        finally:
            for sock in (sink, source):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            source.close()


class RawServer:
    """A hand-written SMTP server on 127.0.0.1 (one thread per connection) for what aiosmtpd
    cannot do: misbehave in the middle of DATA. ``fate[address]`` says what happens to a message
    whose recipients include ``address``:

    - ``close``: the whole message is read and stored, then the connection is closed without a
      reply (the server accepted it and the client cannot know);
    - ``reset``: part of the body is read, then the connection is reset (RST): not stored;
    - ``late``: stored, and ``250`` is answered after ``late`` seconds;
    - anything else, or no entry: stored, ``250`` at once.

    ``received`` lists what was stored, like ``Handler.received``; ``on_message(received)`` is
    called when a message is stored (before any reply)."""

    def __init__(self) -> None:
        import socket

        self.fate: dict[str, str] = {}
        self.late = 3.0
        self.received: list[Received] = []
        self.on_message: Callable[[Received], None] = lambda received: None
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.stopped = threading.Event()

    def __enter__(self) -> RawServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.listener.close()

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Any) -> None:
        reader = conn.makefile("rb")

        def say(line: str) -> None:
            conn.sendall(line.encode() + b"\r\n")

        try:
            say("220 raw.test ESMTP")
            mail_from, rcpts = "", []
            while True:
                line = reader.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    say("250-raw.test\r\n250-8BITMIME\r\n250 SIZE 50000000")
                elif verb == b"MAIL":
                    mail_from, rcpts = line.decode().split(":", 1)[1].split()[0].strip("<>"), []
                    say("250 OK")
                elif verb == b"RCPT":
                    rcpts.append(line.decode().split(":", 1)[1].strip().split()[0].strip("<>"))
                    say("250 OK")
                elif verb == b"DATA":
                    say("354 end with <CRLF>.<CRLF>")
                    if not self._data(conn, reader, mail_from, rcpts):
                        return
                elif verb == b"QUIT":
                    say("221 bye")
                    return
                else:  # RSET, NOOP
                    say("250 OK")
        except OSError:
            return
        finally:
            reader.close()
            conn.close()

    def _data(self, conn: Any, reader: Any, mail_from: str, rcpts: list[str]) -> bool:
        """The message after DATA's 354, as ``fate`` says; False when the connection is to end."""
        import socket
        import struct
        import time

        fates = {self.fate.get(r, "") for r in rcpts}
        if "reset" in fates:
            reader.read(1000)  # part of the body; the rest stays unread
            time.sleep(0.3)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False  # closed by the caller: RST
        lines = []
        while True:
            body = reader.readline()
            if not body or body == b".\r\n":
                break
            lines.append(body[1:] if body.startswith(b"..") else body)
        received = Received(mail_from, list(rcpts), b"".join(lines))
        with self.lock:
            self.received.append(received)
        self.on_message(received)
        if "close" in fates:
            conn.shutdown(socket.SHUT_RDWR)
            return False
        if "late" in fates:
            time.sleep(self.late)
        conn.sendall(b"250 accepted\r\n")
        return True
