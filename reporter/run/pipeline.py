"""``run_report``: the stages chained for one report and one period.

compute (sources read into a locked DuckDB) → write ``results.json`` → quality gate → render
the PDF → deliver through the ledger (claims, review) → archive as a recorded step. Any failure
marks the run failed in the ledger and alerts ``delivery.alerts_to``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import exc as sa_exc

from reporter.config.labels import Labels
from reporter.config.model import Config
from reporter.delivery.archive import Files
from reporter.delivery.ledger import Ledger, unreachable
from reporter.errors import QualityGateError, RunError, UsageError, check_interrupted
from reporter.files import report_file, write_atomic, write_together
from reporter.periods import Period
from reporter.progress import stage
from reporter.results import Results
from reporter.run.reportable import refuse_before_data, refuse_unended
from reporter.run.stages import output_root, render_pdf, report_results, resolve_period


@dataclass
class Outcome:
    report: str
    period: str
    results: Results
    files: list[Path] = field(default_factory=list)
    deliveries: list[Any] = field(default_factory=list)

    def summary(self) -> str:
        shown = ", ".join(str(f) for f in self.files)
        text = f"{self.report} {self.period}: done — {shown}"
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
    open_ledger: Callable[[str], Ledger] = Ledger,
) -> Outcome:
    """Compute, render, write and (with ``send``) deliver one report for one period.

    Raises RunError when the run fails: a failed quality gate (results.json is still written,
    with ``quality.passed: false``), a render error or an empty PDF (nothing is sent; an alert
    goes to ``delivery.alerts_to``), deliveries that failed (each recorded in the ledger), or a
    delivered PDF that could not be archived. Any other exception (a full disk, …) also marks
    the run failed in the ledger and alerts before it propagates. ``recipients``: deliver to
    these addresses only (``--force --recipient``, ``resolve --resend``). ``files``: the file
    operations and ``open_ledger`` the ledger (a test injects failing ones)."""
    from reporter.delivery.archiving import ArchiveStep, archive_key

    files = files or Files()
    target = resolve_period(config, period, now)
    refuse_unended(config, target, now, in_progress=not config.quality.require_complete_period)
    root = output_root(config, output)
    folder = root / config.report.id / target.label
    if send:
        root.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        url = config.ledger_url(root)
        try:
            ledger = stack.enter_context(open_ledger(url)) if send else None
        except sa_exc.SQLAlchemyError as exc:
            raise unreachable(config, root, exc) from None
        run_id = ledger.start_run(config.report.id, target.label, now, trigger) if ledger else 0
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
        except BaseException as exc:
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
            raise
        if ledger is not None:
            ledger.finish_run(run_id, now, "ok")
        return outcome
    raise AssertionError("unreachable")  # pragma: no cover


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
    if subject is not None:
        body = (
            f"The run of '{Labels(config).title()}' ({config.report.id}) for {period} failed.\n\n"
            f"Reason:\n{text}\n\nFix the cause, then run:\n  reporter run {config.file} --period {period}\n"
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
    results = report_results(config, target, now)
    refuse_before_data(config, results)
    results_path = folder / "results.json"
    pdf_name = report_file(config.report.id, target.label, "pdf")
    if not results.quality.passed:
        failed = [c.detail for c in results.quality.checks if not c.passed]
        from reporter.hints import gate_hint

        # An earlier run's files stay as they were, whole: results.json only beside no PDF.
        kept = (folder / pdf_name).is_file()
        if not kept:
            files.write_together({results_path: results.to_json().encode("utf-8")})
        # One failed check per line (eight sources make eight lines, not one of 900 characters).
        lines = [f"  - {text}" for text in failed]
        lines.append(
            f"  results.json not written: {folder} keeps the files of the run before"
            if kept
            else f"  results in {results_path}"
        )
        lines += [f"  {hint}" for hint in gate_hint(config, results)]
        raise QualityGateError(
            f"{config.report.id} {target.label}: quality gate failed, nothing sent:\n" + "\n".join(lines)
        )
    stage("rendering the PDF pages")
    pdf = render_pdf(config, results, run_id=run_key, trigger=trigger)  # RunError if empty
    outcome = Outcome(config.report.id, target.label, results, [results_path, folder / pdf_name])
    only = None if recipients is None else [r.lower() for r in recipients]
    built, bodies = _build_deliveries(config, results, pdf, pdf_name, now, ledger, force, only)
    urls: dict[str, str] = {}
    if ledger is not None and config.delivery.chat:
        from reporter.delivery.chat import webhook_urls

        urls = webhook_urls(config, env, only)  # a webhook's variable unset: fails here, first
    # Every file is built: now they are put in place together (nothing was sent or archived yet).
    check_interrupted()  # a Ctrl-C Python dropped during the render still stops the run here
    extra = built.files(folder) if built is not None else {}
    extra |= {folder / f"chat-{kind}.json": body for kind, body in bodies.items()}
    files.write_together(
        {results_path: results.to_json().encode("utf-8"), folder / pdf_name: pdf, **extra},
        remove=[folder / name for name in _owned(config, target.label)],
    )
    outcome.files += list(extra)
    check_interrupted()
    if config.delivery.email is None and not config.delivery.chat:
        return outcome
    from reporter.delivery.chat import post_cards
    from reporter.delivery.send import deliver, recipients_of

    intend = (lambda: step.intend(pdf)) if step is not None else None
    send_to = functools.partial(
        deliver,
        root=root,
        now=now,
        ledger=ledger,
        run_id=run_id,
        force=force,
        reason=reason,
        env=env,
        sleep=sleep,
        on_claim=intend,
    )
    if config.delivery.email is not None:
        main_targets = None if only is None else [r for r in recipients_of(config) if r in only]
        outcome.deliveries = send_to(
            config, results, pdf, pdf_name, folder, recipients=main_targets, built=built
        )
        if config.delivery.email.recipients:
            outcome.deliveries += _bursts(config, target, now, folder, send_to, only)
    if config.delivery.chat:
        outcome.deliveries += post_cards(
            config,
            results,
            folder,
            now,
            ledger=ledger,
            run_id=run_id,
            force=force,
            reason=reason,
            urls=urls,
            env=env,
            sleep=sleep,
            only=only,
            on_claim=intend,
            bodies=bodies,
        )
    if step is not None:
        delivered = any(d.claimed and d.state in ("sent", "review") for d in outcome.deliveries)
        step.finish(pdf, delivered=delivered, force=force)
        outcome.files += step.archived
    _review_alert(config, root, target.label, now, outcome.deliveries, env)
    failed_deliveries = [d for d in outcome.deliveries if d.state == "failed"]
    if failed_deliveries:
        failure = RunError(
            f"{config.report.id} {target.label}: delivery failed for "
            + ", ".join(f"{d.recipient} ({d.error})" for d in failed_deliveries)
            + "; the others were delivered; run again to retry only these"
        )
        failure.outcome = outcome  # type: ignore[attr-defined]  # the CLI prints each line
        raise failure
    return outcome


def _build_deliveries(
    config: Config,
    results: Results,
    pdf: bytes,
    pdf_name: str,
    now: dt.datetime,
    ledger: Ledger | None,
    force: bool,
    only: list[str] | None,
) -> tuple[Any, dict[str, bytes]]:
    """The e-mail (digest, workbook, the message ``email.eml`` keeps) and each chat kind's
    payload, built before any file is written or anything sent: a subject or card that fails
    to render leaves the output folder as it was."""
    built = None
    if config.delivery.email is not None:
        from reporter.delivery.send import build_email, recipients_of

        main = recipients_of(config)
        first = next((r for r in main if only is None or r in only), main[0] if main else None)
        built = build_email(config, results, pdf, pdf_name, now, recipient=first, ledger=ledger, force=force)
    bodies: dict[str, bytes] = {}
    if config.delivery.chat:
        from reporter.delivery.chat import card_bodies

        bodies = card_bodies(config, results)
    return built, bodies


def _owned(config: Config, period: str) -> list[str]:
    """The files a run writes beside the PDF that an earlier run may have left and this one
    may not write (its configuration changed): removed when this run's files are put in place."""
    from reporter.delivery.chat import KINDS

    return ["email.eml", report_file(config.report.id, period, "xlsx"), *(f"chat-{k}.json" for k in KINDS)]


def _review_alert(
    config: Config,
    root: Path,
    period: str,
    now: dt.datetime,
    deliveries: list[Any],
    env: Mapping[str, str] | None,
) -> None:
    """Tell ``alerts_to`` about deliveries this run left in ``review`` (may have been delivered)."""
    unsure = [d for d in deliveries if d.flagged]
    if not unsure:
        return
    from reporter.delivery.send import alert

    lines = "\n".join(f"- {d.recipient}: {d.error}" for d in unsure)
    body = (
        f"The report '{Labels(config).title()}' ({config.report.id}) for {period} may or may not have "
        f"reached {len(unsure)} recipient(s): the server did not confirm it, and it is not re-sent "
        f"automatically.\n\n{lines}\n"
    )
    subject = f"{len(unsure)} delivery(ies) may have been delivered: review needed"
    alert(config, root, period, body, now, env=env, subject=subject, body=body)


def _bursts(
    config: Config,
    target: Period,
    now: dt.datetime,
    folder: Path,
    send_to: Callable[..., list[Any]],
    only: list[str] | None = None,
) -> list[Any]:
    """Every recipient's filtered report: rendered in parallel, written under
    ``recipients/<address>/``, delivered with ``send_to`` (``deliver`` with the run's ledger)."""
    from reporter.delivery.send import DeliveryOutcome
    from reporter.run.burst import bursts

    assert config.delivery.email is not None
    jobs = [
        (r.email, r.filter)
        for r in config.delivery.email.recipients
        if only is None or r.email.lower() in only
    ]
    if not jobs:
        return []
    stage(f"rendering {len(jobs)} recipients' reports")
    outcomes: list[Any] = []
    pdf_name = report_file(config.report.id, target.label, "pdf")
    for burst in bursts(config, target, now, jobs):
        if burst.results is None:
            outcomes.append(DeliveryOutcome(burst.email, "failed", 0, "", f"report failed: {burst.error}"))
            continue
        sub = folder / "recipients" / burst.email.lower()
        write_atomic(sub / "results.json", burst.results.to_json().encode("utf-8"))
        if burst.pdf is None:
            failed = "; ".join(c.detail for c in burst.results.quality.checks if not c.passed)
            outcomes.append(DeliveryOutcome(burst.email, "failed", 0, "", f"quality gate: {failed}"))
            continue
        write_atomic(sub / pdf_name, burst.pdf)
        outcomes += send_to(config, burst.results, burst.pdf, pdf_name, sub, recipients=[burst.email.lower()])
    return outcomes


def preview(config: Config, *, period: str | None, now: dt.datetime, output: Path | None = None) -> Path:
    """The report as one HTML file to open in a browser, and beside it the email digest as it
    would be sent (``…_digest.html``, its images inside, and ``…_digest.txt``); nothing is sent."""
    from reporter.render.digest import browser_html, build_digest
    from reporter.render.html import render_html

    target = resolve_period(config, period, now)
    refuse_unended(config, target, now, in_progress=True)  # a look at the period so far
    results = report_results(config, target, now)
    refuse_before_data(config, results)
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
    return path


@dataclass
class Reproduction:
    path: Path
    identical: bool
    changed_sources: list[str]


def reproduce(archived: Path, output: Path | None = None) -> Reproduction:
    """Re-render an archived PDF from the YAML and the data it names: the YAML and the run's
    facts come from the PDF's own attachments. With unchanged data files, the new PDF is
    byte-identical to the archived one."""

    from reporter.config import load_config
    from reporter.delivery.archive import attachments_of
    from reporter.files import sha256_file

    original = archived.read_bytes()
    try:
        inside = attachments_of(original)
        facts = json.loads(inside["provenance.json"])
        name, folder, when, sources = _provenance(facts, inside)
    except Exception as exc:  # not a PDF, not one of ours, or a provenance we cannot trust
        from reporter.security import redact

        reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise UsageError(f"{archived}: not a PDF archived by reporter ({reason[:200]})") from None
    changed = []
    for source in sources:
        location = Path(source["location"])
        is_file = source["kind"] in ("csv", "parquet", "json", "excel")
        if is_file and (not location.is_file() or sha256_file(location) != source.get("sha256")):
            changed.append(source["name"])
    with tempfile.TemporaryDirectory() as tmp:
        # Only a safe base name is ever written, and only into this temporary folder.
        path = Path(tmp) / _safe_yaml_name(name)
        path.write_bytes(inside[name])
        # Validated like any other configuration, its relative paths from the original folder.
        config = load_config(path, base_dir=folder)
        try:
            period = Period.parse(str(facts["period"]), config.report.grain)
        except ValueError as exc:
            raise UsageError(f"{archived}: the provenance's period is not valid ({exc})") from None
        results = report_results(config, period, when)
        pdf = render_pdf(config, results, run_id=str(facts["run_id"]), trigger=str(facts["trigger"]))
    target = (output or Path("output")) / "reproduced" / archived.name
    write_atomic(target, pdf)
    return Reproduction(target, pdf == original, changed)


def _provenance(
    facts: Any, inside: Mapping[str, bytes]
) -> tuple[str, Path, dt.datetime, list[dict[str, Any]]]:
    """The fields ``reproduce`` uses, checked: ValueError/KeyError/TypeError when malformed."""
    if not isinstance(facts, dict) or not isinstance(facts.get("configuration"), dict):
        raise ValueError("provenance.json has no configuration")
    name, folder = facts["configuration"].get("file"), facts["configuration"].get("folder")
    if not isinstance(name, str) or name not in inside:
        raise ValueError("the configuration it names is not attached")
    if not isinstance(folder, str) or not Path(folder).is_absolute():
        raise ValueError("configuration.folder is not an absolute folder")
    for key in ("period", "run_id", "trigger", "generated_at"):
        if not isinstance(facts.get(key), str):
            raise ValueError(f"{key} is missing")
    when = dt.datetime.fromisoformat(facts["generated_at"])
    if when.tzinfo is None:
        raise ValueError("generated_at has no time zone")
    sources = facts.get("sources")
    if not isinstance(sources, list) or not all(
        isinstance(s, dict) and all(isinstance(s.get(k), str) for k in ("name", "kind", "location"))
        for s in sources
    ):
        raise ValueError("sources is malformed")
    return name, Path(folder), when, sources


def _safe_yaml_name(name: str) -> str:
    """The attachment's name reduced to a plain base name (``../../x``, ``/etc/x`` → ``x``)."""
    base = Path(name.replace("\\", "/")).name
    if not base or base.startswith(".") or not base.endswith((".yaml", ".yml")) or base != base.strip():
        return "report.yaml"
    return base
