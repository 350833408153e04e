"""``run_report``: one report and one period, run around its ``Run`` (``reporter.run.stages``).

The ledger opened (and the run recorded in it), what earlier runs left unarchived archived, then
the report's Run and each recipient's slice through the same stages (compute → gate → render →
deliver through the ledger → archive as a recorded step). A period the ledger says every
recipient already has is not computed nor rendered again: its files stay as they were delivered
(``_delivered``). Any failure marks the run failed in the ledger and alerts ``delivery.alerts_to``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reporter.config.labels import Labels
from reporter.config.model import Config
from reporter.delivery.archive import Files
from reporter.errors import (
    LedgerBusy,
    LedgerError,
    QualityGateError,
    RunError,
    Unconfirmed,
    UsageError,
)
from reporter.files import report_file, write_together
from reporter.periods import Period
from reporter.results import Results
from reporter.run.reportable import refuse_before_data, refuse_unended
from reporter.run.stages import Audience, Run, Sending, output_root, report_results, resolve_period

if TYPE_CHECKING:  # the ledger (SQLAlchemy) is imported only by a run that sends
    from reporter.delivery.ledger import Ledger


@dataclass
class Outcome:
    report: str
    period: str
    results: Results | None  # None: the period was already delivered, nothing was computed
    files: list[Path] = field(default_factory=list)
    deliveries: list[Any] = field(default_factory=list)
    delivered: str | None = None  # already delivered: the one line that says so (``_delivered``)

    def summary(self, failed: bool = False) -> str:
        """What the run wrote and what each delivery became; ``failed``: the run failed after
        writing (a delivery in review or failed), so it does not say "done"."""
        if self.delivered is not None:
            return self.delivered
        shown = ", ".join(str(f) for f in self.files)
        said = "written, then FAILED (see below)" if failed else "done"
        text = f"{self.report} {self.period}: {said} — {shown}"
        if self.deliveries:
            from reporter.delivery.wording import describe

            text += "".join(f"\n  {d.recipient}: {describe(d)}" for d in self.deliveries)
        return text


def run_report(
    config: Config,
    *,
    period: str | None,
    now: dt.datetime,
    output: Path | None = None,
    send: bool = True,
    force: bool = False,
    reason: str | None = None,
    env: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    trigger: str = "cli",
    alert_on_gate: bool = True,
    recipients: list[str] | None = None,
    files: Files | None = None,
    alert_on_failure: bool = True,
    open_ledger: Callable[..., Ledger] | None = None,
) -> Outcome:
    """Compute, render, write and (with ``send``) deliver one report for one period.

    Raises RunError when the run fails: a failed quality gate (results.json is still written,
    with ``quality.passed: false``), a render error or an empty PDF (nothing is sent; an alert
    goes to ``delivery.alerts_to``), deliveries that failed (each recorded in the ledger) or
    whose fate is unknown (``Unconfirmed``: in review until ``reporter resolve``), or a
    delivered PDF that could not be archived. Any other exception (a full disk, …) also marks
    the run failed in the ledger and alerts before it propagates. ``recipients``: deliver to
    these addresses only (``--force --recipient``, ``resolve --resend``). ``files``: the file
    operations and ``open_ledger`` the ledger (a test injects failing ones)."""
    from reporter.delivery.archiving import ArchiveStep, archive_key, check_archive_dir

    files = files or Files()
    target = resolve_period(config, period, now)
    refuse_unended(config, target, now, in_progress=not config.quality.require_complete_period)
    root = output_root(config, output)
    if output is not None or config.report.output_dir is None:  # the commands it prints name it
        config = config.model_copy(update={"run_output": root.absolute()})
    folder = root / config.report.id / target.label
    if send:
        check_archive_dir(config, root)
        root.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        url = config.ledger_url(root)
        wait = config.delivery.ledger_lock_timeout
        ledger = (
            stack.enter_context(_open(config, open_ledger, url, wait, root, target.label, now, env))
            if send
            else None
        )
        try:
            if ledger is not None:
                from reporter.delivery.archiving import check_one_ledger

                check_one_ledger(config, root, ledger, target.label, archive_key(env))
                _own_report_id(config, ledger, now)
                from reporter.delivery.journal import reconcile

                reconcile(ledger, root, config.report.id, now)  # outcomes a lost ledger could not record
            run_id = ledger.start_run(config.report.id, target.label, now, trigger) if ledger else 0
            if ledger is not None:
                _close_interrupted(config, ledger, target.label, now, run_id)
        except LedgerBusy as busy:
            raise _located(config, target.label, busy) from None
        run_key = f"{config.report.id}-{target.label}-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"
        step = None
        if ledger is not None:
            step = ArchiveStep(
                config, ledger, run_id, run_key, target.label, root, now, files, archive_key(env), reason
            )
        try:
            if step is not None:
                step.finish_earlier()
            outcome = _run(
                config,
                target,
                now,
                folder,
                root,
                ledger,
                run_id,
                run_key,
                step,
                files,
                force=force,
                reason=reason,
                env=env,
                sleep=sleep,
                trigger=trigger,
                recipients=recipients,
            )
        except BaseException as caught:
            exc = _located(config, target.label, caught)
            if ledger is not None:
                _failed(
                    config,
                    ledger,
                    run_id,
                    root,
                    target.label,
                    now,
                    exc,
                    env,
                    alert_on_gate and alert_on_failure,
                    alert_on_failure and not (isinstance(exc, UsageError) and trigger == "cli"),
                    recipients,
                )
            if exc is caught:
                raise
            raise exc from None
        if ledger is not None:
            ledger.finish_run(run_id, now, "ok")
        return outcome
    raise AssertionError("unreachable")  # pragma: no cover


def _open(
    config: Config,
    open_ledger: Callable[..., Ledger] | None,
    url: str,
    wait: float,
    root: Path,
    period: str,
    now: dt.datetime,
    env: Mapping[str, str] | None,
) -> Ledger:
    """The run's ledger; one that cannot be opened (its database down) fails the run before
    anything is sent, with an alert (the ledger cannot record the failed run)."""
    import sqlalchemy as sa

    if open_ledger is None:
        from reporter.delivery.ledger import Ledger

        open_ledger = Ledger
    try:
        return open_ledger(url, lock_timeout=wait)
    except (sa.exc.SQLAlchemyError, LedgerBusy) as exc:
        from reporter.delivery.ledger import ledger_place
        from reporter.delivery.once import ledger_trouble
        from reporter.delivery.send import alert

        failure = LedgerError(
            f"{config.report.id} {period}: the ledger ({ledger_place(config, root)}) could not be opened: "
            f"{ledger_trouble(exc)}; "
            "nothing was sent; run again once the ledger is back"
        )
        try:
            alert(config, root, period, str(failure), now, env=env)
        except Exception as second:
            import logging

            logging.getLogger("reporter").error("could not send the alert: %s", second)
        raise failure from None


def _close_interrupted(config: Config, ledger: Ledger, period: str, now: dt.datetime, run_id: int) -> None:
    """Earlier runs of this report and period whose process is gone (killed, or the machine
    stopped) are recorded as interrupted; this run finishes their work: what they sent is
    skipped, what they left unconfirmed goes to review, the rest is sent (``once``)."""
    import logging

    for dead, text in ledger.close_interrupted(config.report.id, period, now, run_id):
        logging.getLogger("reporter").warning(
            "%s %s: run %s was interrupted: %s; this run finishes its work",
            config.report.id,
            period,
            dead,
            text,
        )


def _located(config: Config, period: str, exc: BaseException) -> BaseException:
    """A ``LedgerBusy`` raised wherever the run waited on the ledger, said for this report and
    period; any other exception as it is."""
    if isinstance(exc, LedgerBusy) and not str(exc).startswith(f"{config.report.id} {period}: "):
        return LedgerBusy(
            f"{config.report.id} {period}: {exc}; nothing more was sent; run again once it is released"
        )
    return exc


def _own_report_id(config: Config, ledger: Ledger, now: dt.datetime) -> None:
    """The report id belongs to this configuration file on this ledger (the first file that ran
    it owns it): another file declaring it would mark the owner's deliveries as its own, so it
    is refused before anything is recorded, written or sent, and nobody is alerted (its
    ``alerts_to`` is the other file's to choose)."""
    owner = ledger.bind_report(config.report.id, config.file, now)
    if owner is not None:
        raise RunError(
            f"{config.file}: report.id '{config.report.id}' belongs to {owner} on this ledger: nothing "
            f"was run or sent; give this report its own id, or, if this file replaces that one, hand "
            f"the id over with: reporter release {config.file}"
        )


def _failed(
    config: Config,
    ledger: Ledger,
    run_id: int,
    root: Path,
    period: str,
    now: dt.datetime,
    exc: BaseException,
    env: Mapping[str, str] | None,
    alert_on_gate: bool,
    alert_on_failure: bool = True,
    recipients: list[str] | None = None,
) -> None:
    """Record a failed run and tell ``alerts_to`` (who already has the report when some
    deliveries went out before the failure); never hide ``exc`` behind a second error."""
    import logging

    from reporter.delivery.archiving import ArchiveFailed
    from reporter.delivery.send import alert

    log = logging.getLogger("reporter")
    text = str(exc) if isinstance(exc, (RunError, UsageError)) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        text = "interrupted"
    try:
        ledger.finish_run(run_id, now, "failed", text)
    except Exception as second:  # the ledger itself is failing: say so, keep the first error
        log.error("could not record the failed run in the ledger: %s", second)
    if not isinstance(exc, Exception) or not alert_on_failure:
        return
    if isinstance(exc, QualityGateError) and not alert_on_gate:
        return
    subject = None
    if isinstance(exc, ArchiveFailed):
        subject = "delivered but NOT archived"
    elif not isinstance(exc, (RunError, UsageError)):
        subject = "run FAILED (unexpected error); the ledger shows what was sent"
    body = None
    if getattr(exc, "subject", None):  # a ledger lost after sending: its error says what went out
        subject = exc.subject  # type: ignore[attr-defined]
    if subject is not None:
        body = (
            f"The run of '{Labels(config).title()}' ({config.report.id}) for {period} failed.\n\n"
            f"Reason:\n{text}\n\nFix the cause, then run:\n  {config.command('run', '--period', period)}\n"
        )
    from reporter.delivery.failure import partly_sent

    told = partly_sent(config, ledger, run_id, period, recipients, exc, text)
    if told is not None:  # some deliveries went out before the failure: who has the report
        subject, body = told
    try:
        alert(config, root, period, text, now, env=env, subject=subject, body=body)
    except Exception as second:
        log.error("could not send the alert: %s", second)


def _run(
    config: Config,
    target: Period,
    now: dt.datetime,
    folder: Path,
    root: Path,
    ledger: Ledger | None,
    run_id: int,
    run_key: str,
    step: Any,
    files: Files,
    *,
    force: bool,
    reason: str | None,
    env: Mapping[str, str] | None,
    sleep: Callable[[float], None],
    trigger: str,
    recipients: list[str] | None,
) -> Outcome:
    """The report's ``Run`` (each recipient's slice goes through the same stages within its
    ``deliver``, made by the executor of ``delivery.burst``); the run fails when a delivery did."""
    from reporter.run.burst import bursts

    if ledger is not None and not force and recipients is None:
        done = _delivered(config, ledger, target.label, root, folder, step)
        if done is not None:  # nothing to send: the files stay as they were delivered
            return done
    run = Run(config, target, Audience(), now)
    sending = Sending(
        root,
        folder,
        ledger,
        run_id,
        step,
        files,
        functools.partial(bursts, config, target, now),
        force=force,
        reason=reason,
        env=env,
        sleep=sleep,
        only=None if recipients is None else [r.lower() for r in recipients],
    )
    made = run.make(run_key=run_key, trigger=trigger)
    run.finish(made, sending)
    assert made.results is not None
    outcome = Outcome(config.report.id, target.label, made.results, sending.written, sending.deliveries)
    failure = _delivery_failure(config, target.label, outcome.deliveries)
    if failure is not None:
        failure.outcome = outcome  # type: ignore[attr-defined]  # the CLI prints each line
        raise failure
    return outcome


def _delivered(
    config: Config, ledger: Ledger, period: str, root: Path, folder: Path, step: Any
) -> Outcome | None:
    """When the ledger says every recipient and chat channel of the report (each recipient's
    slice too) has had ``period`` (or unsubscribed), the Outcome of a run that computes, renders
    and writes nothing: a new render would differ from what they received (its time at least),
    so the output folder keeps the delivered files. Its files: what ``step`` archived of an
    earlier run's delivery (``finish_earlier``). None when something is left to deliver."""
    from reporter.delivery.once import Key, already_sent

    report, email = config.report.id, config.delivery.email
    addresses: list[str] = []
    if email is not None:
        from reporter.delivery.addresses import recipients_of

        addresses = [*recipients_of(config), *(r.email.lower() for r in email.recipients)]
    chats = [f"{c.kind}:{c.webhook_env}" for c in config.delivery.chat]  # as chat_key names them
    seen: dict[str, str] = {}
    for name in [*addresses, *chats]:
        seen.setdefault(name.lower(), name)
    keys = list(seen.values())
    if not keys:
        return None
    state = {d.recipient: d.state for d in ledger.all(report, period)}  # one query; latest last
    unsent = [k for k in keys if state.get(k.lower()) != "sent"]
    if unsent:
        if set(unsent) - set(addresses):
            return None
        from reporter.delivery.suppression import suppressed

        if set(unsent) - set(suppressed(ledger, report)):
            return None
    had = [already_sent(ledger, Key(report, period, k)) for k in keys if k not in unsent]
    deliveries = [outcome for outcome in had if outcome is not None]
    if not deliveries:  # every address unsubscribed, none ever had it: the run says so itself
        return None
    dates = sorted({d.sent_on for d in deliveries if d.sent_on})
    when = f" on {dates[-1]}" if len(dates) == 1 else f" (last on {dates[-1]})" if dates else ""
    from reporter.delivery.archive import pdf_versions
    from reporter.delivery.archiving import archive_dir

    versions = pdf_versions(archive_dir(config, root) / report / period, report, period)
    archived = versions[max(versions)] if versions else None
    pdf = folder / report_file(report, period, "pdf")
    if not pdf.is_file():
        kept = f"no files in {folder}"
    elif archived is None or pdf.read_bytes() == archived.read_bytes():
        kept = f"files left as delivered in {folder}"
    else:  # a --no-send run since (it does not read the ledger)
        kept = f"files in {folder} left as they were (not the PDF delivered)"
    done = list(step.archived) if step is not None else []
    copy = ""
    if archived is not None:
        copy = f"; the delivered PDF is {'archived now' if archived in done else 'archived'} as {archived}"
    line = (
        f"{report} {period}: already delivered{when} (ledger), nothing sent; {kept}{copy} "
        "(--force --reason TEXT sends it again)"
    )
    return Outcome(report, period, None, done, deliveries, delivered=line)


def _delivery_failure(config: Config, period: str, deliveries: list[Any]) -> RunError | None:
    """The run's error when a delivery failed (the next run retries it) or is in review (its
    fate is unknown: not re-sent, a person settles it with ``reporter resolve``); None when
    every recipient has the report."""
    failed = [d for d in deliveries if d.state == "failed"]
    unsure = [d.recipient for d in deliveries if d.state == "review"]
    head = f"{config.report.id} {period}: "
    if not unsure:
        if not failed:
            return None
        return RunError(
            head
            + "delivery failed for "
            + ", ".join(f"{d.recipient} ({d.error})" for d in failed)
            + "; the others were delivered; run again to retry only these"
        )
    parts = []
    if failed:
        parts.append(
            "delivery failed for "
            + ", ".join(f"{d.recipient} ({d.error})" for d in failed)
            + " (run again to retry only these)"
        )
    parts.append(_unconfirmed(config, period, unsure))
    return Unconfirmed(head + "; ".join(parts))


def _unconfirmed(config: Config, period: str, recipients: list[str]) -> str:
    """What the last line of a run says about deliveries in review (pinned in tests and docs)."""
    if len(recipients) == 1:
        (who,) = recipients
        return (
            f"delivery to {who} unconfirmed, in review (the server may have accepted it; not re-sent): "
            f"check whether it arrived, then run '{config.command('resolve', period, who, '--sent')}' "
            "if it did, or '--resend' if not"
        )
    return (
        f"delivery to {', '.join(recipients)} unconfirmed, in review (the server may have accepted "
        "them; not re-sent): check whether each arrived, then run "
        f"'{config.command('resolve', period, 'ADDRESS', '--sent')}' for each that did, or '--resend' "
        "for each that did not"
    )


@dataclass
class Previewed:
    path: Path  # the report's HTML
    # why its period is not the one asked for; or, asked for, that it has no data (else none)
    note: str | None = None


def preview(config: Config, *, period: str | None, now: dt.datetime, output: Path | None = None) -> Previewed:
    """The report as one HTML file to open in a browser, and beside it the email digest as it
    would be sent (``…_digest.html``, its images inside, and ``…_digest.txt``); nothing is sent.
    Without ``period``: the last complete period, or when no source has data in it (nor after),
    the latest period with data, with a note saying so."""
    from reporter.hints import blank_note, latest_with_data, preview_note
    from reporter.render.digest import browser_html, build_digest
    from reporter.render.html import render_html

    target = resolve_period(config, period, now)
    refuse_unended(config, target, now, in_progress=True)  # a look at the period so far
    results = report_results(config, target, now)
    note = None
    found = latest_with_data(config, results) if period is None else None
    if found is not None:
        note = preview_note(config, target, found)
        target = found
        results = report_results(config, target, now)
    refuse_before_data(config, results)
    if period is not None:
        note = blank_note(config, results)
    path = (
        output_root(config, output)
        / config.report.id
        / target.label
        / report_file(config.report.id, target.label, "html")
    )
    html = render_html(config, results, for_browser=True).encode("utf-8")
    digest = build_digest(config, results)  # its subject may fail: then nothing is written
    files = {
        path: html,
        path.with_name(f"{path.stem}_digest.html"): browser_html(digest).encode("utf-8"),
        path.with_name(f"{path.stem}_digest.txt"): digest.text.encode("utf-8"),
    }
    write_together(files)
    return Previewed(path, note)
