"""``reporter audit``: who received which version of a report, when, and why, from an archive
and the ledger that recorded it.

One row per delivery (the ledger's ``deliveries``): the report, period and version, the
recipient (or chat channel), its state, the real time the server accepted it, its Message-ID,
whether it was a forced re-send and why, and the archived file that holds what was sent with its
SHA-256 from the manifest: the e-mail as the server received it (``messages/…eml``, archived
since the audit trail exists), else the PDF that run archived; and the day that file was purged
under retention, if it was (its SHA-256 stays in the manifest, its bytes are gone).
``message_bytes`` gives back the exact bytes one recipient received, checked against the manifest
first.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reporter.delivery.archive import MANIFEST, read_manifest, sha256
from reporter.delivery.ledger import Ledger
from reporter.errors import ReporterError, UsageError

COLUMNS = (
    "report",
    "period",
    "version",
    "recipient",
    "channel",
    "state",
    "accepted",
    "message_id",
    "forced",
    "reason",
    "file",
    "sha256",
    "purged",
)
HEADINGS = {"version": "v", "accepted": "accepted (UTC)", "message_id": "Message-ID", "sha256": "SHA-256"}


@dataclass
class Row:
    report: str
    period: str | None  # None: a row about the address, not a period (an unsubscribe)
    version: int | None
    recipient: str
    channel: str
    state: str
    accepted: str | None  # ISO 8601, UTC, to the second: when the server accepted it
    message_id: str
    forced: bool
    reason: str | None
    file: str | None  # relative to the archive
    sha256: str | None
    purged: str | None = None  # the day ``file`` was purged under retention (its SHA-256 kept)


def _entries(archive: Path) -> list[tuple[int, dict[str, Any]]]:
    """The manifest's lines that are JSON objects, with their numbers, read as ``verify`` reads
    them (``read_manifest``: past its bounds the manifest is refused, exit 2); none when there is
    no manifest, or it is not a regular file (``verify``, run first, says so)."""
    out = []
    try:
        for number, blob, _digest in read_manifest(archive):
            try:
                entry = json.loads(blob)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append((number, entry))
    except OSError:
        return []
    return out


def _utc(value: object) -> str | None:
    if not isinstance(value, dt.datetime):
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def audit_rows(
    archive: Path,
    ledger: Ledger,
    *,
    report: str | None = None,
    period: str | None = None,
    recipient: str | None = None,
) -> list[Row]:
    """Every delivery of the reports in ``archive`` that ``ledger`` recorded, filtered."""
    entries = [e for _, e in _entries(archive)]
    reports = sorted({str(e.get("report")) for e in entries})
    gone = _purged(entries)
    messages: dict[tuple[str, str], dict[str, Any]] = {}  # (report, Message-ID) -> its line
    pdfs: dict[tuple[str, str, int], dict[str, Any]] = {}
    for entry in entries:
        if entry.get("purged") is not None:  # a purge line repeats an archiving line's path
            continue
        if entry.get("kind") == "message":
            for msg_id in entry.get("message_ids") or []:
                messages[(str(entry["report"]), str(msg_id))] = entry  # the latest wins (a resend)
        else:
            pdfs[(str(entry.get("report")), str(entry.get("period")), int(entry.get("version") or 0))] = entry
    rows = []
    for name in reports:
        if report is not None and name != report:
            continue
        archived = {
            int(step["run_id"]): int(step["version"])  # type: ignore[call-overload]
            for step in ledger.archive_steps_of(name)
            if step["state"] == "done" and step["version"] is not None
        }
        for d in ledger.delivery_rows(name):
            if period is not None and d["period"] != period:
                continue
            if recipient is not None and str(d["recipient"]).lower() != recipient.lower():
                continue
            line = messages.get((name, str(d["message_id"])))
            if line is None and d["run_id"] in archived:
                line = pdfs.get((name, str(d["period"]), archived[d["run_id"]]))
            rows.append(
                Row(
                    report=name,
                    period=str(d["period"]),
                    version=int(d["version"]),
                    recipient=str(d["recipient"]),
                    channel=str(d["channel"]),
                    state=str(d["state"]),
                    accepted=_utc(d.get("accepted")) if d["state"] == "sent" else None,
                    message_id=str(d["message_id"]),
                    forced=bool(d["forced"]),
                    reason=d["reason"],
                    file=None if line is None else str(line["path"]),
                    sha256=None if line is None else str(line["sha256"]),
                    purged=None if line is None else gone.get(str(line["path"])),
                )
            )
        rows += _unsubscribes(ledger, name, recipient)
    return rows


def _purged(entries: list[dict[str, Any]]) -> dict[str, str]:
    """The files the manifest's purge lines name (``reporter archive purge``): path → the day."""
    return {str(e.get("path")): str(e.get("time"))[:10] for e in entries if e.get("purged") is not None}


def _unsubscribes(ledger: Ledger, report: str, recipient: str | None) -> list[Row]:
    """Who stopped receiving ``report`` (``reporter unsubscribe``), when and how, and when it
    was undone: every later run skipped the address, so it has no delivery row of its own."""
    from reporter.delivery.suppression import history

    rows = []
    for s in history(ledger, report, recipient):
        events = [("unsubscribed", s.added, s.how)]
        if s.lifted is not None:
            events.append(("subscribed again", s.lifted, s.lifted_how or ""))
        for state, when, how in events:
            rows.append(
                Row(
                    report=report,
                    period=None,
                    version=None,
                    recipient=s.address,
                    channel="email",
                    state=state,
                    accepted=_utc(when),
                    message_id="",
                    forced=False,
                    reason=how,
                    file=None,
                    sha256=None,
                )
            )
    return rows


def render(rows: list[Row], fmt: str) -> str:
    """The rows as ``table`` (aligned columns, for a person), ``csv`` or ``json``."""
    if fmt == "json":
        return json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(["" if v is None else v for v in (getattr(row, c) for c in COLUMNS)])
        return out.getvalue()
    cells = [[HEADINGS.get(c, c) for c in COLUMNS]]
    for row in rows:
        values = asdict(row)
        values["forced"] = "forced" if row.forced else "-"
        cells.append(["-" if values[c] is None else str(values[c]) for c in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n" for line in cells
    )


def message_bytes(archive: Path, *, report: str | None, period: str, version: int, recipient: str) -> bytes:
    """The exact bytes ``recipient`` received for ``period`` v``version``, from the archive,
    after checking them against their manifest line."""
    wanted = recipient.lower()
    found = [
        (number, e)
        for number, e in _entries(archive)
        if e.get("kind") == "message"
        and e.get("period") == period
        and e.get("version") == version
        and (report is None or e.get("report") == report)
        and wanted in [str(r).lower() for r in e.get("recipients") or []]
    ]
    if not found:
        raise UsageError(
            f"{archive}: no archived message to {recipient} for {period} v{version} "
            "(see 'reporter audit' for what was delivered and archived)"
        )
    reports = sorted({str(e["report"]) for _, e in found})
    if len(reports) > 1:
        raise UsageError(
            f"{archive}: {period} v{version} to {recipient} in {', '.join(reports)}: name one with --report"
        )
    number, entry = found[-1]
    purged = _purged([e for _, e in _entries(archive)]).get(str(entry["path"]))
    if purged is not None:
        raise ReporterError(
            f"{entry['path']}: purged under retention on {purged} ('reporter archive purge'): its bytes "
            f"are no longer in the archive; {MANIFEST} line {number} keeps its SHA-256, {entry['sha256']}"
        )
    path = archive / str(entry["path"])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReporterError(f"{entry['path']}: cannot be read ({exc.strerror or exc})") from None
    if sha256(data) != entry.get("sha256"):
        raise ReporterError(
            f"{entry['path']}: altered (SHA-256 differs from {MANIFEST} line {number}): not written; "
            f"run 'reporter verify {archive}'"
        )
    return data
