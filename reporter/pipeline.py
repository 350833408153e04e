"""``run_report``: the stages chained for one report and one period.

load (done by the caller) → read sources into DuckDB and lock it → compute → write
``results.json`` → quality gate. Later stages (render, archive, deliver) hang off this function.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from reporter.compute.report import compute_results
from reporter.config.model import Config
from reporter.delivery.archive import Files
from reporter.delivery.ledger import Ledger, default_url
from reporter.errors import QualityGateError, RunError, UsageError
from reporter.periods import Period
from reporter.results import Results
from reporter.sources import SourceInfo, register_sources


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
            counts: dict[str, int] = {}
            for d in self.deliveries:
                counts[d.state] = counts.get(d.state, 0) + 1
            text += "; deliveries: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        return text


def open_database(config: Config) -> tuple[duckdb.DuckDBPyConnection, dict[str, SourceInfo]]:
    """Read every source into an in-memory DuckDB, then lock it: from here on, SQL from the
    YAML can read neither files nor the network, nor change that setting."""
    con = duckdb.connect(":memory:")
    try:
        infos = register_sources(con, config)
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con, infos


def resolve_period(config: Config, label: str | None, now: dt.datetime) -> Period:
    grain = config.report.grain
    if label is None:
        return Period.last_complete(now, grain, config.report.timezone)
    try:
        return Period.parse(label, grain)
    except ValueError as exc:
        raise UsageError(f"--period: {exc} (report '{config.report.id}' has grain {grain})") from None


def output_root(config: Config, output: Path | None) -> Path:
    if output is not None:
        return output
    if config.report.output_dir is not None:
        return config.resolve(config.report.output_dir)
    return Path("output")


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see either the old or the new content, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compute(
    config: Config, period: Period, now: dt.datetime, *, filter: Mapping[str, Any] | None = None
) -> Results:
    con, infos = open_database(config)
    try:
        return compute_results(con, config, infos, period, now, filter=filter)
    finally:
        con.close()


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
) -> Outcome:
    """Compute, render, write and (with ``send``) deliver one report for one period.

    Raises RunError when the run fails: a failed quality gate (results.json is still written,
    with ``quality.passed: false``), a render error or an empty PDF (nothing is sent; an alert
    goes to ``delivery.alerts_to``), deliveries that failed (each recorded in the ledger), or a
    delivered PDF that could not be archived. Any other exception (a full disk, …) also marks
    the run failed in the ledger and alerts before it propagates. ``recipients``: deliver to
    these addresses only (``--force --recipient``, ``resolve --resend``). ``files``: the file
    operations (a test injects a failing one)."""
    from reporter.delivery.archiving import ArchiveStep, archive_key

    files = files or Files()
    target = resolve_period(config, period, now)
    root = output_root(config, output)
    folder = root / config.report.id / target.label
    if send:
        root.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        ledger = stack.enter_context(Ledger(config.delivery.ledger or default_url(root))) if send else None
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
                    alert_on_failure,
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
) -> None:
    """Record a failed run and tell ``alerts_to``; never hide ``exc`` behind a second error."""
    import logging

    from reporter.delivery.archiving import ArchiveFailed
    from reporter.delivery.send import alert

    log = logging.getLogger("reporter")
    text = str(exc) if isinstance(exc, RunError) else f"{type(exc).__name__}: {exc}"
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
    elif not isinstance(exc, RunError):
        subject = "run FAILED (unexpected error); the ledger shows what was sent"
    body = None
    if subject is not None:
        body = (
            f"The run of '{config.report.title}' ({config.report.id}) for {period} failed.\n\n"
            f"Reason:\n{text}\n\nFix the cause, then run:\n  reporter run {config.file} --period {period}\n"
        )
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
    results = compute(config, target, now)
    results_path = folder / "results.json"
    files.write(results_path, results.to_json().encode("utf-8"))
    if not results.quality.passed:
        failed = [c.detail for c in results.quality.checks if not c.passed]
        raise QualityGateError(
            f"{config.report.id} {target.label}: quality gate failed, nothing sent: "
            + "; ".join(failed)
            + f" (results in {results_path})"
        )
    pdf = render_pdf(config, results, run_id=run_key, trigger=trigger)  # RunError if empty
    pdf_name = f"{config.report.id}_{target.label}.pdf"
    files.write(folder / pdf_name, pdf)
    outcome = Outcome(config.report.id, target.label, results, [results_path, folder / pdf_name])
    if config.delivery.email is None:
        return outcome
    from reporter.delivery.send import deliver, recipients_of

    only = None if recipients is None else [r.lower() for r in recipients]
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
        on_claim=(lambda: step.intend(pdf)) if step is not None else None,
    )
    main_targets = None if only is None else [r for r in recipients_of(config) if r in only]
    outcome.deliveries = send_to(config, results, pdf, pdf_name, folder, recipients=main_targets)
    if (folder / "email.eml").is_file():
        outcome.files.append(folder / "email.eml")
    if config.delivery.email.recipients:
        outcome.deliveries += _bursts(config, target, now, folder, send_to, only)
    if step is not None:
        delivered = any(d.claimed and d.state in ("sent", "review") for d in outcome.deliveries)
        step.finish(pdf, delivered=delivered, force=force)
        outcome.files += step.archived
    _review_alert(config, root, target.label, now, outcome.deliveries, env)
    failed_deliveries = [d for d in outcome.deliveries if d.state == "failed"]
    if failed_deliveries:
        raise RunError(
            f"{config.report.id} {target.label}: delivery failed for "
            + ", ".join(f"{d.recipient} ({d.error})" for d in failed_deliveries)
            + "; the others were delivered; run again to retry only these"
        )
    return outcome


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
        f"The report '{config.report.title}' ({config.report.id}) for {period} may or may not have "
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
    from reporter.burst import render_bursts
    from reporter.delivery.send import DeliveryOutcome

    assert config.delivery.email is not None
    jobs = [
        (r.email, r.filter)
        for r in config.delivery.email.recipients
        if only is None or r.email.lower() in only
    ]
    if not jobs:
        return []
    outcomes: list[Any] = []
    pdf_name = f"{config.report.id}_{target.label}.pdf"
    for burst in render_bursts(config, target, now, jobs):
        sub = folder / "recipients" / burst.email.lower()
        write_atomic(sub / "results.json", burst.results.to_json().encode("utf-8"))
        if burst.pdf is None:
            failed = "; ".join(c.detail for c in burst.results.quality.checks if not c.passed)
            outcomes.append(DeliveryOutcome(burst.email, "failed", 0, "", f"quality gate: {failed}"))
            continue
        write_atomic(sub / pdf_name, burst.pdf)
        outcomes += send_to(config, burst.results, burst.pdf, pdf_name, sub, recipients=[burst.email.lower()])
    return outcomes


def render_pdf(
    config: Config, results: Results, *, run_id: str = "", trigger: str = "cli", split: bool | None = None
) -> bytes:
    """The report's PDF: PDF/A-3b with results.json, the YAML and provenance.json inside when
    ``delivery.archive.pdfa`` (the default), else a plain PDF. ``split``: see ``write_pdf``."""
    from reporter.render.html import render_html, stylesheet_dir, template_dirs
    from reporter.render.pdf import write_pdf

    html = render_html(config, results)
    finish = None
    when = dt.datetime.fromisoformat(results.generated_at)
    if config.delivery.archive.pdfa:
        from reporter.delivery.archive import make_pdfa

        attachments = {
            "results.json": (results.to_json().encode("utf-8"), "Data"),
            config.file.name: (config.file.read_bytes(), "Source"),
            "provenance.json": (provenance(config, results, run_id, trigger), "Data"),
        }
        identifier = hashlib.sha256(f"{config.report.id}|{results.period}".encode()).hexdigest()[:32]

        def finish(document: Any) -> bytes:
            return make_pdfa(document, attachments, identifier, when)

    return write_pdf(
        html,
        stylesheet_dir(config),
        template_dirs(config),
        finish=finish,
        pdfa=config.delivery.archive.pdfa,
        split=split,
        when=when,
    )


def provenance(config: Config, results: Results, run_id: str, trigger: str) -> bytes:
    """Where the numbers came from: sources (without credentials), versions, the run."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    from reporter import __version__

    data = {
        "report": config.report.id,
        "period": results.period,
        "generated_at": results.generated_at,
        "run_id": run_id,
        "trigger": trigger,
        "reporter": __version__,
        "python": platform.python_version(),
        "libraries": {n: ver(n) for n in ("duckdb", "weasyprint", "babel", "jinja2", "pydantic", "pandas")},
        "configuration": {
            "file": config.file.name,
            "folder": str(config.base_dir),
            "sha256": hashlib.sha256(config.file.read_bytes()).hexdigest(),
        },
        "sources": [s.__dict__ for s in results.sources],
    }
    return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def preview(config: Config, *, period: str | None, now: dt.datetime, output: Path | None = None) -> Path:
    """The report as one HTML file to open in a browser; nothing is sent."""
    from reporter.render.html import render_html

    target = resolve_period(config, period, now)
    results = compute(config, target, now)
    path = (
        output_root(config, output)
        / config.report.id
        / target.label
        / (f"{config.report.id}_{target.label}.html")
    )
    write_atomic(path, render_html(config, results, for_browser=True).encode("utf-8"))
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
    import tempfile

    from reporter.config import load_config
    from reporter.delivery.archive import attachments_of
    from reporter.sources import sha256_file

    original = archived.read_bytes()
    try:
        inside = attachments_of(original)
        facts = json.loads(inside["provenance.json"])
    except Exception as exc:  # not a PDF, or not one of ours
        raise UsageError(f"{archived}: not a PDF archived by reporter ({exc})") from None
    name = facts["configuration"]["file"]
    folder = Path(facts["configuration"]["folder"])
    changed = []
    for source in facts["sources"]:
        location = Path(source["location"])
        is_file = source["kind"] in ("csv", "parquet", "json", "excel")
        if is_file and (not location.is_file() or sha256_file(location) != source["sha256"]):
            changed.append(source["name"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(inside[name])
        # Checked without its data (which lives next to the original file), then pointed there.
        config = load_config(path, check_data=False).model_copy(update={"base_dir": folder})
        results = compute(
            config,
            Period.parse(facts["period"], config.report.grain),
            dt.datetime.fromisoformat(facts["generated_at"]),
        )
        pdf = render_pdf(config, results, run_id=facts["run_id"], trigger=facts["trigger"])
    target = (output or Path("output")) / "reproduced" / archived.name
    write_atomic(target, pdf)
    return Reproduction(target, pdf == original, changed)
