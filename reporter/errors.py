"""Every error reporter raises on purpose, and what the CLI does with it.

::

    ReporterError                    exit 1 unless a subclass says otherwise
    ├── ConfigError                  exit 2: bad configuration; carries every Problem found
    ├── UsageError                   exit 2: bad command-line arguments (e.g. a bad --period)
    └── RunError                     exit 1: a run failed
        ├── SourceError              a source could not be read (missing file, bad column, ...)
        ├── QualityGateError         the data is not good enough to send
        ├── Unconfirmed              a delivery's fate is unknown (in review until resolved)
        └── LedgerError              the ledger could not be written or read
            └── LedgerBusy           a lock held by another transaction past the deadline

Only ``cli.py`` turns these into a message and an exit code; anything else that escapes is a
bug, which the CLI reports in one line, its traceback in a log file. The text of every error
goes through ``reporter.security.redact``: wherever it is shown, logged, stored or mailed, no
secret the configuration references appears in it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a configuration file, located as precisely as we can."""

    file: str
    line: int | None
    column: int | None
    key: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        if self.hint:
            text += f"; {self.hint}"
        from reporter.security import redact

        return redact(text)


class ReporterError(Exception):
    """Base of every error reporter raises on purpose."""

    exit_code = 1

    def __str__(self) -> str:
        from reporter.security import redact

        return redact(super().__str__())


class ConfigError(ReporterError):
    """The configuration is wrong; ``problems`` lists every defect found."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0, p.column or 0, p.key, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(ReporterError):
    """The command line is wrong."""

    exit_code = 2


class RunError(ReporterError):
    """A run failed; nothing was sent."""

    exit_code = 1


class Unconfirmed(RunError):
    """Some deliveries are in review: the server may have accepted them, they are not re-sent,
    a person settles each with ``reporter resolve`` (the others may have been delivered)."""


class LedgerError(RunError):
    """The ledger could not record or read a delivery (its connection lost, a lock held past
    the deadline): the message says what was sent and what to run."""


class LedgerBusy(LedgerError):
    """A ledger statement waited for a lock longer than ``delivery.ledger_lock_timeout``."""


class SourceError(RunError):
    """A data source could not be read."""


class QualityGateError(RunError):
    """The data did not pass the quality gate."""


# -- interrupts ---------------------------------------------------------------------------------

# Set by the CLI's SIGINT handler. Python drops a KeyboardInterrupt raised while a __del__ runs
# (it prints "Exception ignored in ..." and goes on: WeasyPrint's font objects are collected in
# the middle of a render), so a Ctrl-C could be lost and the run go on to send; the run checks
# this before it writes, sends or archives anything.
INTERRUPTED = threading.Event()


def on_interrupt(signum: int, frame: object) -> None:
    """SIGINT: remember it, then raise KeyboardInterrupt as Python's own handler does."""
    INTERRUPTED.set()
    raise KeyboardInterrupt


def check_interrupted() -> None:
    """Raise KeyboardInterrupt when a SIGINT came, even one Python swallowed."""
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt
