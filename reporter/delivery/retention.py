"""Retention: ``reporter archive purge`` removes archived files older than
``delivery.archive.retention.keep`` while the hash chain still verifies.

The manifest is append-only, so a purge never edits a line: for each file it removes it appends
a line of its own, chained like any other (and recorded in the ledger, HMAC'd with
REPORTER_ARCHIVE_KEY), that repeats the file's path, SHA-256, size, report, period, version and
attachments' digests and says ``purged``: the number of the line that archived it. ``reporter
verify`` then accepts that file's absence, and still checks every line of the chain. Order: the
manifest gains the purge lines (the commit point), then the files are deleted; a purge cut
between the two leaves files that the next purge deletes (verify accepts them meanwhile).

A file is old when it was archived (its line's ``time``) before ``now`` minus ``keep``. A
period under legal hold (``delivery.archive.legal_hold``, or ``--hold`` for an archive named by
its folder) is never purged, whatever its age: purge says so for each of its files. A hold
names a month, a quarter, an ISO week or a year, and holds every period sharing a day with it
(``reporter.periods.held_by``), whatever the report's grain.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reporter.delivery.archive import Files, open_chain
from reporter.delivery.ledger import Ledger
from reporter.periods import held_by


@dataclass
class Purge:
    """What a purge did (or, ``dry_run``, would do)."""

    purged: list[dict[str, Any]] = field(default_factory=list)  # the archiving lines' entries
    held: list[dict[str, Any]] = field(default_factory=list)  # old, but held: "hold" names the hold
    kept: int = 0  # files younger than the retention


def purged_paths(lines: list[str]) -> dict[str, str]:
    """The files the manifest's purge lines name: path → SHA-256."""
    found: dict[str, str] = {}
    for text in lines:
        try:
            entry = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("purged") is not None:
            found[str(entry.get("path"))] = str(entry.get("sha256"))
    return found


def purge(
    archive: Path,
    *,
    before: dt.datetime,
    now: dt.datetime,
    keep: str,
    report: str | None = None,
    holds: Collection[str] = (),
    ledger: Ledger | None = None,
    key: str | None = None,
    dry_run: bool = False,
    files: Files | None = None,
) -> Purge:
    """Purge the files of ``archive`` (of ``report`` only, when given) archived before
    ``before``, but those of a period in ``holds`` (see the module's docstring)."""
    files = files or Files()
    done = Purge()
    # the ledger knows the archive by its content (its first line), wherever it lies now
    with open_chain(archive, ledger=ledger, key=key, files=files) as chain:
        lines = list(chain.lines)
        gone = purged_paths(lines)
        new: list[dict[str, Any]] = []
        for number, text in enumerate(lines, start=1):
            entry = _entry(text)
            if entry is None or entry.get("purged") is not None or entry["path"] in gone:
                continue
            if report is not None and entry["report"] != report:
                continue
            if _archived_at(entry) >= before:
                done.kept += 1
                continue
            hold = held_by(str(entry["period"]), holds)
            if hold is not None:
                done.held.append({**entry, "hold": hold})
                continue
            done.purged.append(entry)
            new.append(_purge_line(entry, number, now, keep))
        if dry_run:
            return done
        if new:  # lines without a file of their own, through the archive's one appender
            chain.append(*((line, None) for line in new))
        for rel in [*gone, *(e["path"] for e in new)]:  # also those a cut purge left
            path = archive / rel
            if path.is_file() and not path.is_symlink():
                files.remove(path)
    return done


def _entry(text: str) -> dict[str, Any] | None:
    """An archiving line's entry (None for what purge must not touch: unreadable lines)."""
    try:
        entry = json.loads(text)
    except json.JSONDecodeError:
        return None
    wanted = ("path", "sha256", "report", "period", "version", "time")
    if not isinstance(entry, dict) or not all(k in entry for k in wanted):
        return None
    return entry


def _archived_at(entry: dict[str, Any]) -> dt.datetime:
    when = dt.datetime.fromisoformat(str(entry["time"]))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _purge_line(entry: dict[str, Any], number: int, now: dt.datetime, keep: str) -> dict[str, Any]:
    return {
        "path": entry["path"],
        "sha256": entry["sha256"],
        "size": entry.get("size", 0),
        "report": entry["report"],
        "period": entry["period"],
        "version": entry["version"],
        "attachments": entry.get("attachments", {}),
        "purged": number,
        "time": now.isoformat(timespec="seconds"),
        "reason": f"retention: kept {keep} after {str(entry['time'])[:10]}",
    }
