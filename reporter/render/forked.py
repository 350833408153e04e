"""Render the report's PDF in a forked child process while this one prepares the rest.

A fresh ``reporter run`` spends most of its time in WeasyPrint's layout and PDF writing, one
core busy; meanwhile the e-mail's digest, its workbook and the chat cards, which do not need the
PDF, can be built on the other core. ``start(make)`` forks a child that calls ``make()`` (the
PDF render: it inherits the configuration, the Results and the imported renderer, nothing is
copied or pickled on the way in), sends back the bytes or the exception through a pipe and
leaves with ``os._exit`` (its WeasyPrint objects are never walked by the cycle collector nor
torn down: the process simply ends). ``Pending.result()`` waits for it.

The child is forked only where that is safe and pays (``fork_allowed``): on Linux, from the
process's main thread, when no other Python thread runs (a thread holding a lock at the fork
would leave the child that lock held forever; the background import of the renderer is joined
first, ``warmup``). Elsewhere, or with ``REPORTER_RENDER_CHILD=0``, ``make()`` runs in this
process when the result is asked for, exactly as before; ``Pending.forked`` says which path ran
(the tests assert it). Either way the PDF is the same, byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable

from reporter.errors import RunError

ENV = "REPORTER_RENDER_CHILD"  # "0": render in this process
forks = 0  # renders this process handed to a child (the tests count them)


def fork_allowed() -> bool:
    """Whether ``start`` forks (see the module's text)."""
    if os.environ.get(ENV, "1") == "0" or not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    from reporter.render import warmup

    warmup.join()  # the renderer's background import: finished, or the fork would wait for it
    return threading.active_count() == 1


class Pending:
    """A PDF being rendered: by a forked child (``forked``), or by ``make`` on ``result()``."""

    def __init__(
        self,
        make: Callable[[], bytes],
        *,
        in_child: Callable[[], None] | None = None,
        before_exit: Callable[[], None] | None = None,
    ) -> None:
        self.forked = False
        self._make: Callable[[], bytes] | None = make
        self._pid = 0
        self._fd = -1
        self._in_child, self._before_exit = in_child, before_exit
        if fork_allowed():
            self._fork(make)

    def _fork(self, make: Callable[[], bytes]) -> None:
        read, write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: render, answer, leave without tearing anything down
            os.close(read)
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent reports it
                if self._in_child is not None:
                    self._in_child()
                try:
                    answer = pickle.dumps(("pdf", make()), protocol=pickle.HIGHEST_PROTOCOL)
                except BaseException as exc:  # every failure goes back to the parent
                    answer = _failure(exc)
                with open(write, "wb", closefd=True) as pipe:
                    pipe.write(answer)
                if self._before_exit is not None:
                    self._before_exit()
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:  # nothing may escape into the parent's code
                code = 1
            finally:
                os._exit(code)
        global forks
        os.close(write)
        forks += 1
        self.forked, self._pid, self._fd, self._make = True, pid, read, None

    def result(self) -> bytes:
        """The PDF's bytes; raises what the render raised (a ``RunError`` for a refused fetch or
        a problem WeasyPrint logged, the same message as in this process)."""
        if not self.forked:
            assert self._make is not None
            make, self._make = self._make, None
            return make()
        try:
            with open(self._fd, "rb", closefd=True) as pipe:
                data = pipe.read()
            self._fd = -1
            _, status = os.waitpid(self._pid, 0)
            self._pid = 0
        finally:
            self.cancel()
        if not data:
            raise RunError(f"the PDF renderer stopped without an answer ({_how(status)})")
        kind, value = pickle.loads(data)  # our own child's answer, through our own pipe
        if kind == "pdf":
            return bytes(value)
        raise value

    def cancel(self) -> None:
        """Stop the child if it still runs (this process failed or was interrupted meanwhile)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        if self._pid:
            with contextlib.suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
            self._pid = 0


def start(
    make: Callable[[], bytes],
    *,
    in_child: Callable[[], None] | None = None,
    before_exit: Callable[[], None] | None = None,
) -> Pending:
    """Start rendering: in a forked child when allowed (``in_child`` runs first there, and
    ``before_exit`` once the answer is sent), else when ``result()`` is asked."""
    return Pending(make, in_child=in_child, before_exit=before_exit)


def _failure(exc: BaseException) -> bytes:
    """The child's exception, pickled as it is when it can be, else as a RunError with its text."""
    try:
        return pickle.dumps(("error", exc), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception that does not pickle still tells what happened
        return pickle.dumps(("error", RunError(f"PDF rendering failed: {type(exc).__name__}: {exc}")))


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
