"""``run_report``: the stages chained for one report and one period.

load (done by the caller) → read sources into DuckDB and lock it → compute → write
``results.json`` → quality gate. Later stages (render, archive, deliver) hang off this function.
"""

from __future__ import annotations

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
) -> Outcome:
    """Compute, render, write and (with ``send``) deliver one report for one period.

    Raises RunError when the run fails: a failed quality gate (results.json is still written,
    with ``quality.passed: false``), a render error or an empty PDF (nothing is sent; an alert
    goes to ``delivery.alerts_to``), or deliveries that failed (each recorded in the ledger)."""
    target = resolve_period(config, period, now)
    root = output_root(config, output)
    folder = root / config.report.id / target.label
    if send:
        root.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(config.delivery.ledger or default_url(root)) if send else None
    run_id = ledger.start_run(config.report.id, target.label, now, trigger) if ledger else 0
    try:
        results = compute(config, target, now)
        results_path = folder / "results.json"
        write_atomic(results_path, results.to_json().encode("utf-8"))
        if not results.quality.passed:
            failed = [c.detail for c in results.quality.checks if not c.passed]
            raise QualityGateError(
                f"{config.report.id} {target.label}: quality gate failed, nothing sent: "
                + "; ".join(failed)
                + f" (results in {results_path})"
            )
        run_key = f"{config.report.id}-{target.label}-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"
        pdf = render_pdf(config, results, run_id=run_key, trigger=trigger)  # RunError if empty
        pdf_name = f"{config.report.id}_{target.label}.pdf"
        write_atomic(folder / pdf_name, pdf)
        outcome = Outcome(config.report.id, target.label, results, [results_path, folder / pdf_name])
        if config.delivery.email is not None:
            from reporter.delivery.send import deliver

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
            )
            outcome.deliveries = send_to(config, results, pdf, pdf_name, folder)
            if (folder / "email.eml").is_file():
                outcome.files.append(folder / "email.eml")
            if config.delivery.email.recipients:
                outcome.deliveries += _bursts(config, target, now, folder, send_to)
            archived_something = any(d.state == "sent" for d in outcome.deliveries)
            if ledger is not None and (archived_something or force):
                outcome.files.append(_archive(config, results, pdf, run_key, now, reason if force else None))
            failed_deliveries = [d for d in outcome.deliveries if d.state == "failed"]
            if failed_deliveries:
                raise RunError(
                    f"{config.report.id} {target.label}: delivery failed for "
                    + ", ".join(f"{d.recipient} ({d.error})" for d in failed_deliveries)
                    + "; the others were delivered; run again to retry only these"
                )
    except RunError as exc:
        if ledger is not None:
            ledger.finish_run(run_id, now, "failed", str(exc))
            from reporter.delivery.send import alert

            if alert_on_gate or not isinstance(exc, QualityGateError):
                alert(config, root, target.label, str(exc), now, env=env)
            ledger.close()
        raise
    if ledger is not None:
        ledger.finish_run(run_id, now, "ok")
        ledger.close()
    return outcome


def _archive(
    config: Config, results: Results, pdf: bytes, run_id: str, now: dt.datetime, reason: str | None
) -> Path:
    """Keep the delivered PDF in the append-only archive (a new version per delivery)."""
    from reporter.delivery.archive import archive_pdf

    archive = config.resolve(config.delivery.archive.dir).resolve()
    done = archive_pdf(archive, config.report.id, results.period, pdf, run_id=run_id, now=now, reason=reason)
    return done.path


def _bursts(
    config: Config, target: Period, now: dt.datetime, folder: Path, send_to: Callable[..., list[Any]]
) -> list[Any]:
    """Every recipient's filtered report: rendered in parallel, written under
    ``recipients/<address>/``, delivered with ``send_to`` (``deliver`` with the run's ledger)."""
    from reporter.burst import render_bursts
    from reporter.delivery.send import DeliveryOutcome

    assert config.delivery.email is not None
    jobs = [(r.email, r.filter) for r in config.delivery.email.recipients]
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


def render_pdf(config: Config, results: Results, *, run_id: str = "", trigger: str = "cli") -> bytes:
    """The report's PDF: tagged PDF/A-3a and PDF/UA-1 with results.json, the YAML,
    provenance.json and each breakdown longer than its ``pdf_rows`` (CSV) inside when
    ``delivery.archive.pdfa`` (the default), else a plain PDF."""
    from reporter.render.attached import long_breakdowns
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
        attachments.update((name, (csv, "Data")) for name, csv in long_breakdowns(config, results).items())
        identifier = hashlib.sha256(f"{config.report.id}|{results.period}".encode()).hexdigest()[:32]

        def finish(document: Any) -> bytes:
            return make_pdfa(document, attachments, identifier, when)

    return write_pdf(
        html,
        stylesheet_dir(config),
        template_dirs(config),
        finish=finish,
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
