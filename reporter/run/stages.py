"""The stages that one report run and each burst share: which period, where the output goes, the
report's PDF (with its evidence attached when archived) and the provenance that goes inside it.

``Run(config, period, audience, now)`` is one report for one audience: the report itself (to,
cc and the chat channels) or one recipient's slice (``delivery.email.recipients[]``, its rows
only). Both go through the same stages, ``compute`` → ``gate`` → ``render``; the pipeline then
delivers (``reporter.delivery.once``) and archives. Where a slice's stages run (this process, a
local worker process, a Dask worker) decides nothing about its outcome."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reporter.compute.database import compute
from reporter.config.labels import Labels
from reporter.config.model import Config
from reporter.errors import UsageError
from reporter.periods import Period
from reporter.render.context import Formatter
from reporter.render.insights import write_texts
from reporter.results import Results


@dataclass(frozen=True)
class Audience:
    """Who a ``Run`` is for: the report's own audience (``email`` None), or one recipient whose
    report is computed on the rows ``filter`` selects."""

    email: str | None = None
    filter: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    """One report, for one period and one audience, through the stages every report shares."""

    config: Config
    period: Period
    audience: Audience
    now: dt.datetime

    def compute(self, con: Any = None, infos: Any = None) -> Results:
        """The Results, each insight's sentence written; on ``con`` (a DuckDB with the sources
        read, ``infos`` theirs) when given, else on a database opened for this run."""
        if con is None:
            return report_results(self.config, self.period, self.now)
        from reporter.compute.report import compute_results

        filter = dict(self.audience.filter) or None
        return describe(
            self.config, compute_results(con, self.config, infos, self.period, self.now, filter=filter)
        )

    def gate(self, results: Results) -> list[str]:
        """The quality checks that failed (nothing is rendered or sent for them); [] when passed."""
        return [c.detail for c in results.quality.checks if not c.passed]

    def render(self, results: Results, *, run_id: str = "", trigger: str = "cli") -> bytes:
        return render_pdf(self.config, results, run_id=run_id, trigger=trigger)


def report_results(config: Config, period: Period, now: dt.datetime) -> Results:
    """The compute stage's Results, with each insight's sentence written in the report's language."""
    return describe(config, compute(config, period, now))


def describe(config: Config, results: Results) -> Results:
    """Write each insight's sentence (in place) and return the same Results."""
    write_texts(results, Formatter.for_report(config.report), Labels(config))
    return results


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


def render_pdf(
    config: Config, results: Results, *, run_id: str = "", trigger: str = "cli", folder: Path | None = None
) -> bytes:
    """The report's PDF: tagged PDF/A-3a and PDF/UA-1 with results.json, the YAML,
    provenance.json, each check-in file read (``checkins-<period>.yaml``) and each breakdown
    longer than its ``pdf_rows`` (CSV) inside when
    ``delivery.archive.pdfa`` (the default), else a plain PDF. ``folder``: the configuration's
    absolute folder, which the provenance of a PDF archived before paths were relative records
    (``reproduce`` gives it back to such a PDF; None: none is recorded)."""
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
            "provenance.json": (provenance(config, results, run_id, trigger, folder), "Data"),
        }
        attachments.update((name, (csv, "Data")) for name, csv in long_breakdowns(config, results).items())
        # the owners' check-ins behind the notes and the actions' states (checkins/2026-10.yaml
        # travels as checkins-2026-10.yaml: an attachment's name is a plain file name)
        attachments.update(
            (name.replace("/", "-"), (content, "Source")) for name, content in results.checkin_files.items()
        )
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


def provenance(
    config: Config, results: Results, run_id: str, trigger: str, folder: Path | None = None
) -> bytes:
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
            "sha256": hashlib.sha256(config.file.read_bytes()).hexdigest(),
            # no folder: every path is relative to the YAML's (an archived PDF made before
            # recorded its absolute folder; reproduce keeps it, for the same bytes)
            **({} if folder is None else {"folder": str(folder)}),
        },
        "sources": [dataclasses.asdict(s) for s in results.sources],
    }
    return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")
