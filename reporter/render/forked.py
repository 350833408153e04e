"""Render the report's PDF in a child process while this one does the rest.

A fresh ``reporter run`` spends most of its time in WeasyPrint: importing it (about half a
second, much of it parsing Pango's C declarations) and then laying out and writing the PDF, one
core busy. Two children take that off the run's own core:

- ``serve()``, at the start of ``reporter run``, before the YAML is read, forks a *render
  server*: it imports the renderer on the machine's other core while the run reads the
  configuration, computes and renders the report's HTML, then waits for one job. The job (a
  ``reporter.run.printer.PrintJob``: the HTML and the files the PDF/A carries, plain data,
  pickled: about 250 kB for the demo) goes down a pipe; the PDF's bytes or the exception come
  back up another.
- Without a server (another command, a second report of the same run, the scheduler's runs,
  which start with the renderer imported), ``start`` forks the child at the render: it inherits
  the job and the imported renderer, nothing is pickled on the way in.

Either way, meanwhile the run builds the e-mail's digest, its workbook and the chat cards, which
do not need the PDF, and the child leaves with ``os._exit`` once it has answered: its WeasyPrint
objects are never walked by the cycle collector nor torn down. ``Pending.result()`` waits.

A child is forked only where that is safe (``fork_allowed``): on Linux, from the process's main
thread, when no other Python thread runs (a thread holding a lock at the fork would leave the
child that lock held forever; the background import of the renderer is joined first). Elsewhere,
or with ``REPORTER_RENDER_CHILD=0``, the render runs in this process when the result is asked for,
exactly as before. ``forks`` and ``served`` count what ran (the tests assert the path); the PDF is
the same, byte for byte, on every path.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from reporter.errors import RunError
from reporter.render import warmup

ENV = "REPORTER_RENDER_CHILD"  # "0": render in this process
forks = 0  # renders this process handed to a child forked at the render (the tests count them)
served = 0  # renders this process handed to its render server
servers = 0  # render servers this process forked

# What the render server imports while the run reads its configuration and computes: the
# renderer (what the background import imports) and the code that prints a job
# (``reporter.run.printer``: the run renders the HTML, the server prints it; neither pydantic nor
# Jinja nor DuckDB is imported here).
SERVER_IMPORTS = (*warmup.MODULES, "reporter.render.pdf", "reporter.delivery.archive", "reporter.run.printer")


def fork_allowed() -> bool:
    """Whether a child may be forked now (see the module's text)."""
    if os.environ.get(ENV, "1") == "0" or not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    warmup.join()  # the renderer's background import: finished, or the fork would wait for it
    return threading.active_count() == 1


# -- the child's side -----------------------------------------------------------------------


def _answer(write: int, job: Callable[[], bytes], before_exit: Callable[[], None] | None) -> None:
    """Run ``job``, send the PDF or the exception through ``write``, then leave this process."""
    code = 0
    try:
        try:
            answer = pickle.dumps(("pdf", job()), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # every failure goes back to the parent
            answer = _failure(exc)
        with open(write, "wb", closefd=True) as pipe:
            pipe.write(answer)
        if before_exit is not None:
            before_exit()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # nothing may escape into the parent's code
        code = 1
    finally:
        os._exit(code)


def _render_and_leave(write: int, job: tuple[Any, ...]) -> None:
    """The child's whole life once it has its job ``(func, args, kwargs, in_child, before_exit)``:
    ``in_child()`` then ``func(*args, **kwargs)``, answered through ``write`` (a failure of
    either is the answer), ``before_exit()``, and the end of this process."""
    func, args, kwargs, in_child, before_exit = job

    def render() -> bytes:
        if in_child is not None:
            in_child()
        return bytes(func(*args, **kwargs))

    _answer(write, render, before_exit)


def _fork_child() -> tuple[int, int, int]:
    """Fork with a pipe for the answer: (pid, the answer's read end; in the child, 0 and its
    write end, with Ctrl-C left to the parent to report)."""
    read, write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        return 0, -1, write
    os.close(write)
    return pid, read, -1


def _serve(jobs: int, write: int) -> None:
    """The render server: read the job (in a thread, so that the run never waits on a full pipe)
    while importing the renderer, then answer it; leave at once when the run sends none."""
    box: dict[str, bytes] = {}

    def read() -> None:
        with open(jobs, "rb", closefd=True) as pipe:
            box["job"] = pipe.read()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    _early_imports()
    reader.join()
    if not box.get("job"):
        os._exit(0)  # the run ended before its render: an error, a gate, nothing to render
    try:
        *job, secrets = pickle.loads(box["job"])  # our own run's job
        from reporter.security import remember_secret

        for secret in secrets:  # what the run learnt to mask after the fork
            remember_secret(secret)
    except BaseException as exc:  # the answer says why
        failure = exc
        _answer(write, lambda: _raise(failure), None)
    _render_and_leave(write, tuple(job))


def _early_imports() -> None:
    warmup.import_all(SERVER_IMPORTS)


def _raise(exc: BaseException) -> bytes:
    raise exc


# -- the run's side -------------------------------------------------------------------------


class _Server:
    def __init__(self, pid: int, jobs: int, answers: int) -> None:
        self.pid, self.jobs, self.answers = pid, jobs, answers


_server: _Server | None = None


def _close(fd: int) -> None:
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)


def _stop(pid: int) -> None:
    """Kill the child ``pid`` if it still runs, and reap it."""
    if pid:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def serve() -> bool:
    """Fork the render server now (the start of ``reporter run``), if allowed; False if not."""
    global _server, servers
    if _server is not None or not fork_allowed():
        return False
    jobs_read, jobs_write = os.pipe()
    pid, answers, write = _fork_child()
    if pid == 0:
        os.close(jobs_write)
        try:
            _serve(jobs_read, write)
        finally:
            os._exit(1)
    os.close(jobs_read)
    _server = _Server(pid, jobs_write, answers)
    servers += 1
    return True


def stop_server() -> None:
    """The run is over and its server got no job (a configuration error, a gate): it is stopped
    at once, still importing perhaps (it holds nothing: no file, no connection), and reaped."""
    global _server
    server, _server = _server, None
    if server is None:
        return
    _close(server.jobs)
    _close(server.answers)
    _stop(server.pid)


def _hand_to_server(job: tuple[Any, ...]) -> tuple[int, int] | None:
    """Send ``job`` to the render server: (its pid, the answer's read end), or None when there
    is no server or it is gone (the caller forks or renders here instead)."""
    global _server, served
    server, _server = _server, None
    if server is None:
        return None
    from reporter.security import known_secrets

    try:
        data = pickle.dumps((*job, known_secrets()), protocol=pickle.HIGHEST_PROTOCOL)
        pipe = open(server.jobs, "wb", closefd=True)  # noqa: SIM115 - closed just below
        server.jobs = -1  # the file object closes it
        with pipe:
            pipe.write(data)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        _server = server  # gone, or a job that does not pickle: stopped, and the caller forks
        stop_server()
        return None
    served += 1
    return server.pid, server.answers


class Pending:
    """A PDF being rendered: by a child (``forked``), or by the job on ``result()``."""

    def __init__(self, pid: int = 0, fd: int = -1, job: Callable[[], bytes] | None = None) -> None:
        self.forked = pid != 0
        self._pid, self._fd, self._job = pid, fd, job

    def result(self) -> bytes:
        """The PDF's bytes; raises what the render raised (a ``RunError`` for a refused fetch or
        a problem WeasyPrint logged, the same message as in this process)."""
        if not self.forked:
            assert self._job is not None
            job, self._job = self._job, None
            return job()
        try:
            pipe, self._fd = open(self._fd, "rb", closefd=True), -1  # noqa: SIM115 - closed below
            with pipe:
                data = pipe.read()
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
        _close(self._fd)
        _stop(self._pid)
        self._fd, self._pid = -1, 0


def start(
    func: Callable[..., bytes],
    *args: Any,
    in_child: Callable[[], None] | None = None,
    before_exit: Callable[[], None] | None = None,
    **kwargs: Any,
) -> Pending:
    """Start ``func(*args, **kwargs)``: on the render server when there is one (``func``, the
    arguments and both hooks are pickled: module-level functions and plain data), else in a child
    forked now when allowed (``in_child`` runs first there, ``before_exit`` once the answer is
    sent), else in this process when ``result()`` is asked."""
    global forks
    handed = _hand_to_server((func, args, kwargs, in_child, before_exit))
    if handed is not None:
        return Pending(*handed)
    if not fork_allowed():
        return Pending(job=lambda: func(*args, **kwargs))
    pid, read, write = _fork_child()
    if pid == 0:
        _render_and_leave(write, (func, args, kwargs, in_child, before_exit))
    forks += 1
    return Pending(pid, read)


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
