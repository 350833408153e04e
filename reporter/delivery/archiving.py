"""Archiving as a recorded step of a run: delivered or failed, never silently neither.

Before a run's first message goes out, the PDF is staged under the output folder
(``.unarchived/``) and the ledger records an ``archive_steps`` row (``pending``). After the
deliveries, a run that delivered something (or may have: ``review``) archives the PDF and marks
the step ``done``; a run that delivered nothing marks it ``none``. When archiving fails the
step is ``failed``, the run exits 1 and ``alerts_to`` is told. A later run of the same report
and period first finishes any step a crashed or failed run left ``pending`` or ``failed``, from
the staged copy, which is exactly the PDF that was sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reporter.config.model import Config
from reporter.delivery.archive import Files, Message, archive_messages, archive_pdf, sha256
from reporter.errors import RunError
from reporter.security import remember_secret

if TYPE_CHECKING:
    from reporter.delivery.ledger import Ledger

LOG = logging.getLogger("reporter")
KEY_ENV = "REPORTER_ARCHIVE_KEY"


class ArchiveFailed(RunError):
    """Delivered (or maybe delivered) but not archived: the run fails and alerts."""


def archive_key(env: Mapping[str, str] | None) -> str | None:
    key = (os.environ if env is None else env).get(KEY_ENV) or None
    remember_secret(key)  # a secret like any other: never in a log, an alert or the ledger
    return key


def archive_dir(config: Config, root: Path) -> Path:
    """``delivery.archive.dir``, or ``archive`` in the output folder ``root``."""
    folder = config.delivery.archive.dir
    return (root / "archive" if folder is None else config.resolve(folder)).resolve()


def check_archive_dir(config: Config, root: Path) -> None:
    """``delivery.archive.dir`` lies in the output folder ``root`` or a folder the operator
    allows (validation says so at the key's line when it knows the output folder; a run checks
    again with the folder it writes to, before anything is written or sent)."""
    from reporter.config.paths import allow_hint, allowed_dirs, inside
    from reporter.errors import ConfigError, Problem

    folder = config.delivery.archive.dir
    if folder is None or inside(config.resolve(folder), [root, *allowed_dirs()]):
        return
    message = f"{folder} is outside the output folder ({root.resolve()})"
    hint = "leave it out (the archive is then the output folder's archive/), " + allow_hint()
    raise ConfigError([Problem(str(config.file), None, None, "delivery.archive.dir", message, hint)])


def check_one_ledger(config: Config, root: Path, ledger: Ledger, period: str, key: str | None) -> None:
    """One ledger per archive: a run whose ledger did not record the archive's hash chain (a run
    with another ``--output`` than the runs that wrote it, each with its ``ledger.sqlite``) is
    refused before anything is recorded, written or sent; its lines would make a second ledger
    of one chain, and neither would verify it. Likewise a run without the archive's HMAC key
    (``key``: REPORTER_ARCHIVE_KEY), or with another (``key_refusal``)."""
    from reporter.delivery.archive import ForeignArchive, chain_key, key_refusal, read_lines
    from reporter.delivery.ledger import ledger_place
    from reporter.errors import UsageError

    archive = archive_dir(config, root)
    try:
        lines = read_lines(archive)
    except (OSError, UnicodeDecodeError):  # not readable: archiving says so, as before
        return
    try:
        chain_key(ledger, lines)
    except ForeignArchive:
        raise UsageError(
            f"{config.report.id} {period}: the archive {archive} was written with another ledger than "
            f"this run's ({ledger_place(config, root)}), and one archive keeps one ledger; nothing was "
            "run or sent: run with the --output of the runs that wrote it (its ledger.sqlite), or give "
            "this output folder its own archive (delivery.archive.dir)"
        ) from None
    refused = key_refusal(archive, lines, key)
    if refused:
        raise UsageError(f"{config.report.id} {period}: {refused}; nothing was run or sent")


@dataclass
class ArchiveStep:
    """One run's archive step."""

    config: Config
    ledger: Ledger
    run_id: int
    run_key: str
    period: str
    root: Path
    now: dt.datetime
    files: Files
    key: str | None
    reason: str | None = None
    staged: Path | None = None
    archived: list[Path] = field(default_factory=list)

    def intend(self, pdf: bytes) -> None:
        """Stage the PDF and record that it must be archived (before the first send)."""
        if self.staged is not None:
            return
        report = self.config.report.id
        staged = self.root / ".unarchived" / f"{report}_{self.period}_run{self.run_id}.pdf"
        self.files.write(staged, pdf)
        self.ledger.archive_intent(
            self.run_id, report, self.period, str(staged.resolve()), sha256(pdf), self.reason, self.now
        )
        self.staged = staged

    def finish(self, pdf: bytes, *, delivered: bool, force: bool, messages: Sequence[Message] = ()) -> None:
        """Archive the PDF if this run delivered it, and ``messages``, the e-mails as the server
        received them; record the outcome either way."""
        if self.staged is None:
            if not force:
                return
            self.intend(pdf)
        if not delivered and not force:
            self.ledger.archive_result(self.run_id, self.now, state="none")
            _discard(self.staged)
            return
        self._archive(self.run_id, pdf, self.run_key, self.reason, reuse=not force, messages=messages)
        _discard(self.staged)

    def finish_earlier(self) -> None:
        """Archive what earlier runs of this report and period delivered but did not archive."""
        report = self.config.report.id
        for step in self.ledger.unarchived(report, self.period):
            run_id = int(step["run_id"])  # type: ignore[call-overload]
            if run_id == self.run_id or self.ledger.run_alive(run_id, self.now):
                continue
            staged = Path(str(step["pdf"]))
            try:
                pdf = staged.read_bytes()
            except OSError:
                pdf = b""
            if sha256(pdf) != step["sha256"]:
                note = f"the PDF delivered by run {run_id} is no longer at {staged}: it cannot be archived"
                self.ledger.archive_result(run_id, self.now, state="lost", error=note)
                raise ArchiveFailed(f"{report} {self.period}: {note}")
            LOG.warning(
                "%s %s: archiving the PDF delivered by run %s (it was not archived)",
                report,
                self.period,
                run_id,
            )
            self._archive(run_id, pdf, f"run-{run_id}", step["reason"], reuse=True)  # type: ignore[arg-type]
            _discard(staged)

    def _archive(
        self,
        run_id: int,
        pdf: bytes,
        run_key: str,
        reason: str | None,
        *,
        reuse: bool,
        messages: Sequence[Message] = (),
    ) -> None:
        archive = archive_dir(self.config, self.root)
        report = self.config.report.id
        try:
            done = archive_pdf(
                archive,
                report,
                self.period,
                pdf,
                run_id=run_key,
                now=self.now,
                reason=reason,
                ledger=self.ledger,
                key=self.key,
                reuse=reuse,
                files=self.files,
            )
            kept = archive_messages(
                archive,
                report,
                self.period,
                list(messages),
                run_id=run_key,
                now=self.now,
                reason=reason,
                ledger=self.ledger,
                key=self.key,
                files=self.files,
            )
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, OSError) else _os_error(exc)
            self.ledger.archive_result(run_id, self.now, state="failed", error=error)
            raise ArchiveFailed(
                f"{report} {self.period}: delivered but NOT archived in {archive}: {error}; "
                "fix the archive folder, then run again: the next run archives it"
            ) from exc
        self.ledger.archive_result(run_id, self.now, state="done", archive=str(archive), version=done.version)
        self.archived.append(done.path)
        self.archived += [m.path for m in kept]


def _os_error(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    return f"{text}: {exc.filename}" if exc.filename else text


def _discard(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)
