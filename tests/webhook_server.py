"""A real HTTP server on 127.0.0.1 standing in for Slack's and Teams' incoming webhooks.

It records every request (method, path, headers, body) and answers with the status codes it is
given, in order (200 once the script runs out); ``delay`` seconds before a reply make a client
time out. ``modes``, in order, misbehave after reading the whole request: ``reset`` resets the
connection (TCP RST) without a word; ``drip`` sends the status line, then the headers one byte
every ``drip_every`` seconds (about ``drip_bytes`` of them). With ``tls`` (a folder), it speaks
HTTPS as ``localhost`` with a certificate it makes there (``cert``: trust it with
SSL_CERT_FILE). Use as a context manager; ``url(path)`` is the webhook's address."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class WebhookServer:
    def __init__(
        self,
        statuses: list[int] | None = None,
        delays: list[float] | None = None,
        modes: list[str] | None = None,
        drip_every: float = 0.1,
        drip_bytes: int = 200,
        tls: Path | None = None,
    ):
        self.statuses = list(statuses or [])
        self.delays = list(delays or [])
        self.modes = list(modes or [])
        self.drip_every = drip_every
        self.drip_bytes = drip_bytes
        self.dripped = 0  # header bytes sent by ``drip`` before the client went away
        self.received: list[Received] = []
        self.on_post: Callable[[Received], None] | None = None  # called with each card, before the answer
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with server._lock:
                    server.received.append(
                        Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = server.statuses.pop(0) if server.statuses else 200
                    delay = server.delays.pop(0) if server.delays else 0.0
                    mode = server.modes.pop(0) if server.modes else "answer"
                server.heard(server.received[-1])
                if mode == "reset":
                    self.close_connection = True
                    self.rfile.close()  # the socket's last reference: close() below really closes
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()  # linger 0: an RST, not a FIN
                    return
                if mode == "drip":
                    self.close_connection = True
                    headers = f"X-Slow: {'a' * server.drip_bytes}\r\nContent-Length: 2\r\n\r\nok".encode()
                    try:
                        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                        self.wfile.flush()
                        for i in range(len(headers)):
                            time.sleep(server.drip_every)
                            self.wfile.write(headers[i : i + 1])
                            self.wfile.flush()
                            server.dripped += 1
                    except OSError:  # the client gave up
                        pass
                    return
                if delay:
                    time.sleep(delay)
                reply = b"ok" if status < 300 else b"error"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(reply)))
                    if status == 429:
                        self.send_header("Retry-After", "1")
                    if 300 <= status < 400:
                        self.send_header("Location", "/elsewhere")
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.cert: Path | None = None
        if tls is not None:  # HTTPS, with a certificate for localhost made in that folder
            self.cert, key = tls / "webhook-cert.pem", tls / "webhook-key.pem"
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key),
                 "-out", str(self.cert)],
                check=True,
                capture_output=True,
            )  # fmt: skip
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.cert, key)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def heard(self, card: Received) -> None:
        """Call ``on_post`` (when set) with a card just read, before it is answered."""
        if self.on_post is not None:
            self.on_post(card)

    def url(self, path: str = "/hook") -> str:
        if self.cert is not None:
            return f"https://localhost:{self.port}{path}"
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


class TunnelProxy:
    """An HTTP proxy on 127.0.0.1 that serves CONNECT only (how HTTPS goes through a proxy): it
    records each tunnel's target and Proxy-Authorization header, then pipes bytes both ways; with
    ``drip_every``, it drips its answer to CONNECT instead and never opens the tunnel."""

    def __init__(self, drip_every: float | None = None) -> None:
        self.tunnels: list[tuple[str, str | None]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_CONNECT(self) -> None:
                proxy.tunnels.append((self.path, self.headers.get("Proxy-Authorization")))
                if drip_every is not None:  # its answer to CONNECT, one byte at a time (20 s)
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        for byte in b"HTTP/1.1 200 Connection established\r\nX-Slow: " + b"a" * 200:
                            self.wfile.write(bytes([byte]))
                            time.sleep(drip_every)
                    return
                host, _, port = self.path.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=10)
                self.send_response(200, "Connection established")
                self.end_headers()
                self.close_connection = True
                pipes = [
                    threading.Thread(target=_pipe, args=(self.connection, upstream), daemon=True),
                    threading.Thread(target=_pipe, args=(upstream, self.connection), daemon=True),
                ]
                for pipe in pipes:
                    pipe.start()
                for pipe in pipes:
                    pipe.join(timeout=10)
                upstream.close()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}"

    def __enter__(self) -> TunnelProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
