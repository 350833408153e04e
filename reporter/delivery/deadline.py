"""One overall deadline for a conversation with a server (an SMTP session, a webhook request).

A socket's timeout bounds each read or write on its own: a server that sends one byte every
half second never trips it, and holds the run for as long as it likes. A ``Deadline`` is a
watchdog: when its time is up it shuts the conversation's socket down, which wakes whatever
read or write is waiting on it (it then fails, or sees the end of the stream), and records
that it did so (``expired``), so that the caller reports the deadline rather than whatever
the interrupted read made of it. The socket is held as an object, never by its number, and
``finish`` takes the same lock as the watchdog: it never touches a socket that was closed and
whose number another file now has.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any


class Deadline:
    """``seconds`` from now, re-armed with ``extend``; ``sock`` (or ``watched()``) is the socket
    to shut down when it passes."""

    def __init__(self, seconds: float, watched: Callable[[], Any] | None = None):
        self.seconds = seconds
        self.expired = False
        self.sock: Any = None
        self._watched = watched
        self._lock = threading.Lock()
        self._done = False
        self._timer: threading.Timer | None = None
        self._end = 0.0
        self._generation = 0
        self.extend(seconds)

    def remaining(self) -> float:
        """Seconds left (never less than a millisecond: a socket timeout of 0 means 'non-blocking')."""
        return max(self._end - time.monotonic(), 0.001)

    def extend(self, seconds: float) -> None:
        """A new deadline, ``seconds`` from now (the wait for the reply to a message's end)."""
        with self._lock:
            if self._done or self.expired:
                return
            self.seconds = seconds
            self._end = time.monotonic() + seconds
            self._generation += 1
            self._arm(seconds)

    def _arm(self, seconds: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(seconds, self._fire, args=(self._generation,))
        self._timer.daemon = True
        self._timer.start()

    def _fire(self, generation: int) -> None:
        with self._lock:
            if self._done or generation != self._generation:  # finished, or re-armed meanwhile
                return
            left = self._end - time.monotonic()
            if left > 0:  # a timer may wake a hair early
                self._arm(left)
                return
            self.expired = True
            sock = self.sock if self.sock is not None else (self._watched() if self._watched else None)
            if sock is not None:
                # the plain socket's shutdown, also under TLS: wakes a read in another thread
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def finish(self, close: Callable[[], None] | None = None) -> None:
        """The conversation is over: stop the watchdog, then ``close`` (under its lock)."""
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
            if close is not None:
                close()
