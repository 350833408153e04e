"""The fallback journal: what the ledger could not record after a message went out.

A delivery's intent is committed to the ledger before sending; its outcome after. When the ledger
is lost in between (a PostgreSQL connection cut, the database down, a lock held past the
deadline), the outcome would be lost too, and the next run would find the delivery ``pending``
and put it in review. Instead, the outcome (report, period, recipient, version, Message-ID,
state, time, run) is appended to ``<output>/ledger-journal.jsonl``, one JSON object a line,
fsynced, and the run fails saying so. The next run on that output folder (and ``reporter
resolve``) first applies the journal's lines for its report to the ledger, then removes them:
a message the server accepted is recorded as sent and never sent again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reporter.files import write_atomic

LOG = logging.getLogger("reporter")

JOURNAL = "ledger-journal.jsonl"


def journal_path(root: Path) -> Path:
    """The journal of the output folder ``root``."""
    return root / JOURNAL


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s lock file (writers and the reconciler take turns)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def note(root: Path, entry: dict[str, Any]) -> Path:
    """Append ``entry`` (one delivery's outcome) to the journal, durably; the journal's path."""
    path = journal_path(root)
    line = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    with _locked(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def entries(root: Path, report: str | None = None) -> list[dict[str, Any]]:
    """The journal's entries (of ``report`` only, when given); a torn last line is skipped."""
    path = journal_path(root)
    if not path.is_file():
        return []
    found = []
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(text)
        except ValueError:
            continue
        if isinstance(entry, dict) and (report is None or entry.get("report") == report):
            found.append(entry)
    return found


def reconcile(ledger: Any, root: Path, report: str, now: dt.datetime) -> list[dict[str, Any]]:
    """Apply the journal's entries for ``report`` to ``ledger`` (``Ledger.settle``), then remove
    them from the journal; the entries applied. The ledger failing here leaves the journal as
    it was (the error propagates)."""
    path = journal_path(root)
    if not path.is_file():
        return []
    with _locked(path):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept, done = [], []
        for text in lines:
            try:
                entry = json.loads(text)
            except ValueError:
                kept.append(text)  # not ours to judge: left for a person
                continue
            if not isinstance(entry, dict) or entry.get("report") != report:
                kept.append(text)
                continue
            ledger.settle(entry, now, note=f"recorded from {path}: {entry.get('note', '')}".rstrip(": "))
            done.append(entry)
        if done:
            if kept:
                write_atomic(path, "".join(kept).encode("utf-8"))
            else:
                path.unlink()
            for entry in done:
                LOG.warning(
                    "%s %s %s: %s, recorded in the ledger from %s",
                    entry["report"],
                    entry["period"],
                    entry["recipient"],
                    entry["state"],
                    path,
                )
    return done
