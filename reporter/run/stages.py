"""The stages that one report run and each burst share: which period, where the output goes, the
report's PDF (with its evidence attached when archived) and the provenance that goes inside it.

``Run(config, period, audience, now)`` is one report for one audience: the report itself (to,
cc and the chat channels) or one recipient's slice (``delivery.email.recipients[]``, its rows
only). Both go through the same stages, ``compute`` → ``gate`` → ``render`` (``Run.make``, run
wherever the executor puts it: this process for the report, this process, a local worker process
or a Dask worker for a slice) → ``deliver`` → ``archive`` (``Run.finish``, always in the process
that holds the ledger, so that each recipient is delivered exactly once). Where a Run's first
three stages execute decides nothing about its outcome."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from reporter.config.labels import Labels
from reporter.config.model import Config
from reporter.errors import QualityGateError, UsageError, check_interrupted
from reporter.files import confined, recipient_name, report_file, write_atomic
from reporter.periods import Period
from reporter.progress import stage
from reporter.render.context import Formatter
from reporter.render.insights import write_texts
from reporter.results import Results
from reporter.run.printer import PrintJob, print_pdf
from reporter.run.reportable import refuse_before_data

if TYPE_CHECKING:
    from reporter.delivery.archive import Files
    from reporter.delivery.archiving import ArchiveStep
    from reporter.delivery.ledger import Ledger


@dataclass(frozen=True)
class Audience:
    """Who a ``Run`` is for: the report's own audience (``email`` None), or one recipient whose
    report is computed on the rows ``filter`` selects."""

    email: str | None = None
    filter: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Made:
    """What ``compute`` → ``gate`` → ``render`` made of a Run, wherever they ran: its Results
    (None when it failed: ``error`` says why) and its PDF (None when the gate failed, or it failed)."""

    results: Results | None
    pdf: bytes | None
    error: str | None = None
    prepared: Prepared | None = None  # the report's e-mail and cards, built while its PDF rendered


@dataclass
class Prepared:
    """What the report delivers that needs no PDF: the e-mail's digest and workbook (a
    ``send.Email`` without its message) and each chat kind's card, built while the PDF renders."""

    email: Any = None
    bodies: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Sending:
    """What every Run of one ``reporter run`` delivers and archives with, in the process that
    holds the ledger (None: ``--no-send``, nothing is sent nor archived), and what they did:
    ``written`` (the files, in order) and ``deliveries`` (each outcome, in order).
    ``execute(jobs)``: the recipients' slices made where ``delivery.burst`` says (the executor),
    each with ``email``, ``results``, ``pdf`` and ``error``."""

    root: Path
    folder: Path  # the report's output folder for the period: output/<report>/<period>
    ledger: Ledger | None
    run_id: int
    step: ArchiveStep | None
    files: Files
    execute: Callable[[list[tuple[str, dict[str, Any]]]], Iterable[Any]]
    force: bool = False
    reason: str | None = None
    env: Mapping[str, str] | None = None
    sleep: Callable[[float], None] = time.sleep
    only: list[str] | None = None  # deliver to these addresses only (lower case); None: everyone
    on_claim: Callable[[], None] | None = None  # the report's PDF staged for the archive
    written: list[Path] = field(default_factory=list)
    deliveries: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Run:
    """One report, for one period and one audience, through the stages every report shares."""

    config: Config
    period: Period
    audience: Audience
    now: dt.datetime

    @property
    def is_report(self) -> bool:
        """The report's own audience (to, cc, chat), not a recipient's slice."""
        return self.audience.email is None

    def make(self, con: Any = None, infos: Any = None, *, run_key: str = "", trigger: str = "cli") -> Made:
        """``compute`` → ``gate`` → ``render``, where the executor runs the Run. A failure
        raises (a slice's executor turns it into that recipient's failure)."""
        results = self.compute(con, infos)
        if self.is_report:
            refuse_before_data(self.config, results)
        if self.gate(results):
            return Made(results, None)
        if self.is_report:
            stage("rendering the PDF pages")
            return self._make_report(results, run_key, trigger)
        return Made(results, self.render(results, run_id=run_key, trigger=trigger))  # RunError if empty

    def _make_report(self, results: Results, run_key: str, trigger: str) -> Made:
        """The report's HTML rendered here, then printed to PDF in a child process
        (``reporter.render.forked``: the render server the run started, or a child forked now)
        while this process builds the e-mail and the cards; in this process, in turn, where a
        fork is not allowed. The same PDF, the same errors either way."""
        from reporter.render import forked
        from reporter.render.pdf import in_render_child, release_fonts

        prepared: list[Prepared] = []

        def print_while_preparing(job: PrintJob) -> bytes:
            pending = forked.start(print_pdf, job, in_child=in_render_child, before_exit=release_fonts)
            try:
                prepared.append(prepare(self.config, results))
                return pending.result()  # RunError if empty
            finally:
                pending.cancel()

        pdf = self.render(results, run_id=run_key, trigger=trigger, printer=print_while_preparing)
        return Made(results, pdf, prepared=prepared[0])

    def finish(self, made: Made, sending: Sending) -> None:
        """``deliver`` → ``archive``, in the process that holds the ledger, for a Run made here
        or on a worker. A Run without a PDF (its gate failed, or it failed) delivers nothing:
        the report's fails the run (``QualityGateError``), a slice fails for its recipient only."""
        if made.pdf is None:
            self.refuse(made, sending)
            return
        if self.deliver(made, sending):
            self.archive(made, sending)

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
        return failed_checks(results)

    def render(
        self,
        results: Results,
        *,
        run_id: str = "",
        trigger: str = "cli",
        printer: Callable[[PrintJob], bytes] = print_pdf,
    ) -> bytes:
        """The PDF: the report's HTML rendered here, then printed by ``printer`` (here, by
        default; the report's own in a child process, ``_make_report``)."""
        return printer(print_job(self.config, results, run_id=run_id, trigger=trigger))

    def deliver(self, made: Made, sending: Sending) -> bool:
        """Put the Run's files in place, then send them through the ledger: the report's to its
        own audience, then each recipient's slice (``finish``ed in turn, as the executor hands
        them back), then the chat cards; a slice's to its recipient. False when the report has
        no channel to deliver to (its files are written; nothing is sent nor archived)."""
        assert made.results is not None
        assert made.pdf is not None
        if not self.is_report:
            self._deliver_slice(made.results, made.pdf, sending)
            return True
        assert made.prepared is not None  # the report's Made comes from ``_make_report``
        return self._deliver_report(made.results, made.pdf, sending, made.prepared)

    def archive(self, made: Made, sending: Sending) -> None:
        """The report's PDF into the archive when this run delivered it (to its own audience, a
        slice or a chat channel: each claim staged it first, ``on_claim``), its outcome recorded
        either way. The archive keeps the report, once per run: a slice's delivery is what makes
        the run's report archived, and its own PDF stays in its folder."""
        step = sending.step
        if step is None or not self.is_report:
            return
        assert made.pdf is not None
        from reporter.delivery.archive import Message

        delivered = any(d.claimed and d.state in ("sent", "review") for d in sending.deliveries)
        sent = [  # each e-mail as the server received it, kept beside the PDF in the chain
            Message(d.data, [d.recipient], [d.message_id], d.version)
            for d in sending.deliveries
            if d.claimed and d.data is not None
        ]
        step.finish(made.pdf, delivered=delivered, force=sending.force, messages=sent)
        sending.written += step.archived

    def refuse(self, made: Made, sending: Sending) -> None:
        """A Run without a PDF. The report: its gate failed, the run fails (an earlier run's
        files stay as they were, whole: results.json only beside no PDF). A slice: fails for its
        recipient, unless they already have this period's report (their files kept as they were)."""
        config, label = self.config, self.period.label
        pdf_name = report_file(config.report.id, label, "pdf")
        if self.is_report:
            assert made.results is not None
            self._refuse_report(made.results, sending, pdf_name)
        email = self.audience.email
        assert email is not None
        from reporter.delivery.once import DeliveryOutcome, Key, already_sent

        folder = sending.folder
        sub = folder / "recipients" / recipient_name(email)
        if made.results is None:
            why = f"report failed: {made.error}"
        else:
            why = "quality gate: " + "; ".join(failed_checks(made.results))
        key = Key(config.report.id, label, email.lower())
        ledger = sending.ledger
        had = already_sent(ledger, key) if ledger is not None and not sending.force else None
        if had is not None:  # they have this period's report: this run's failure is not theirs
            had.error = f"already sent on {had.sent_on} (ledger); this run's report for them failed ({why})"
            sending.deliveries.append(had)
            return
        if made.results is not None and not (sub / pdf_name).is_file():
            write_atomic(sub / "results.json", made.results.to_json().encode("utf-8"), within=folder)
        sending.deliveries.append(DeliveryOutcome(email, "failed", 0, "", why))

    def _refuse_report(self, results: Results, sending: Sending, pdf_name: str) -> NoReturn:
        from reporter.hints import gate_hint

        config, folder = self.config, sending.folder
        results_path = folder / "results.json"
        kept = (folder / pdf_name).is_file()
        if not kept:
            sending.files.write_together(
                {confined(results_path, sending.root): results.to_json().encode("utf-8")}
            )
        # One failed check per line (eight sources make eight lines, not one of 900 characters).
        lines = [f"  - {text}" for text in failed_checks(results)]
        lines.append(
            f"  results.json not written: {folder} keeps the files of the run before"
            if kept
            else f"  results in {results_path}"
        )
        lines += [f"  {hint}" for hint in gate_hint(config, results)]
        raise QualityGateError(
            f"{config.report.id} {self.period.label}: quality gate failed, nothing sent:\n" + "\n".join(lines)
        )

    def _send(self, sending: Sending) -> dict[str, Any]:
        """What ``send.deliver`` and ``chat.post_cards`` are called with for every Run of a run."""
        return {
            "ledger": sending.ledger,
            "run_id": sending.run_id,
            "force": sending.force,
            "reason": sending.reason,
            "env": sending.env,
            "on_claim": sending.on_claim,
            "sleep": sending.sleep,
        }

    def _deliver_report(self, results: Results, pdf: bytes, sending: Sending, prepared: Prepared) -> bool:
        config, label, folder, only = self.config, self.period.label, sending.folder, sending.only
        ledger = sending.ledger
        results_path = folder / "results.json"
        pdf_name = report_file(config.report.id, label, "pdf")
        built, bodies = _build_deliveries(
            config, results, pdf, pdf_name, self.now, ledger, sending.force, only, prepared
        )  # fmt: skip
        urls: dict[str, str] = {}
        if ledger is not None and config.delivery.chat:
            from reporter.delivery.chat import webhook_urls

            urls = webhook_urls(config, sending.env, only)  # a webhook's variable unset: fails here, first
        # Every file is built: now they are put in place together (nothing was sent or archived yet).
        check_interrupted()  # a Ctrl-C Python dropped during the render still stops the run here
        extra = built.files(folder) if built is not None else {}
        extra |= {folder / f"chat-{kind}.json": body for kind, body in bodies.items()}
        contents = {results_path: results.to_json().encode("utf-8"), folder / pdf_name: pdf, **extra}
        owned = [folder / name for name in _owned(config, label)]
        for path in [*contents, *owned]:
            confined(path, sending.root)  # every write of a run stays in its output folder
        sending.files.write_together(contents, remove=owned)
        sending.written += [results_path, folder / pdf_name, *extra]
        check_interrupted()
        if config.delivery.email is None and not config.delivery.chat:
            return False
        step = sending.step
        sending.on_claim = (lambda: step.intend(pdf)) if step is not None else None
        if config.delivery.email is not None:
            from reporter.delivery.send import deliver, recipients_of

            main = None if only is None else [r for r in recipients_of(config) if r in only]
            sending.deliveries += deliver(
                config, results, pdf, pdf_name, folder, sending.root, self.now,
                recipients=main, built=built, **self._send(sending),
            )  # fmt: skip
            self._slices(sending)
        if config.delivery.chat:
            from reporter.delivery.chat import post_cards

            sending.deliveries += post_cards(
                config, results, folder, self.now, urls=urls, only=only, bodies=bodies, root=sending.root,
                **self._send(sending),
            )  # fmt: skip
        return True

    def _slices(self, sending: Sending) -> None:
        """Each recipient's slice, made where the executor puts it, then ``finish``ed here, in
        the order the executor hands them back. A slice that fails (its filter, its quality gate,
        its worker lost) fails for that recipient only and touches no other folder."""
        assert self.config.delivery.email is not None
        only = sending.only
        filters = {
            r.email: dict(r.filter)
            for r in self.config.delivery.email.recipients
            if only is None or r.email.lower() in only
        }
        if not filters:
            return
        stage(f"rendering {len(filters)} recipients' reports")
        for made in sending.execute(list(filters.items())):
            run = Run(self.config, self.period, Audience(made.email, filters[made.email]), self.now)
            run.finish(Made(made.results, made.pdf, made.error), sending)

    def _deliver_slice(self, results: Results, pdf: bytes, sending: Sending) -> None:
        """The slice's files under ``recipients/<name>/`` (``files.recipient_name``), then its
        e-mail to its recipient."""
        from reporter.delivery.send import deliver

        config, folder, email = self.config, sending.folder, self.audience.email
        assert email is not None
        sub = folder / "recipients" / recipient_name(email)
        pdf_name = report_file(config.report.id, self.period.label, "pdf")
        write_atomic(sub / "results.json", results.to_json().encode("utf-8"), within=folder)
        write_atomic(sub / pdf_name, pdf, within=folder)
        sending.deliveries += deliver(
            config, results, pdf, pdf_name, sub, sending.root, self.now, recipients=[email.lower()],
            **self._send(sending),
        )  # fmt: skip


def failed_checks(results: Results) -> list[str]:
    """The quality checks ``results`` failed; [] when the gate passes."""
    return [c.detail for c in results.quality.checks if not c.passed]


def _build_deliveries(
    config: Config,
    results: Results,
    pdf: bytes,
    pdf_name: str,
    now: dt.datetime,
    ledger: Ledger | None,
    force: bool,
    only: list[str] | None,
    prepared: Prepared,
) -> tuple[Any, dict[str, bytes]]:
    """The e-mail (digest, workbook, the message ``email.eml`` keeps) and each chat kind's
    payload, built before any file is written or anything sent: a subject or card that fails
    to render leaves the output folder as it was."""
    built = None
    if config.delivery.email is not None:
        from reporter.delivery.send import build_email, recipients_of

        main = recipients_of(config)
        first = next((r for r in main if only is None or r in only), main[0] if main else None)
        built = build_email(
            config, results, pdf, pdf_name, now, recipient=first, ledger=ledger, force=force,
            prepared=prepared.email,
        )  # fmt: skip
    return built, prepared.bodies


def prepare(config: Config, results: Results) -> Prepared:
    """The report's e-mail digest and workbook, and its chat cards: what needs no PDF (the
    digest's subject and a card are templates: they may fail here, before anything is written)."""
    email = None
    if config.delivery.email is not None:
        from reporter.delivery.send import prepare_email

        email = prepare_email(config, results)
    bodies: dict[str, bytes] = {}
    if config.delivery.chat:
        from reporter.delivery.chat import card_bodies

        bodies = card_bodies(config, results)
    return Prepared(email, bodies)


def _owned(config: Config, period: str) -> list[str]:
    """The files a run writes beside the PDF that an earlier run may have left and this one
    may not write (its configuration changed): removed when this run's files are put in place."""
    from reporter.config.model import CHAT_KINDS as KINDS  # not delivery.chat: http.client, ssl

    return ["email.eml", report_file(config.report.id, period, "xlsx"), *(f"chat-{k}.json" for k in KINDS)]


def report_results(config: Config, period: Period, now: dt.datetime) -> Results:
    """The compute stage's Results, with each insight's sentence written in the report's language.
    (DuckDB and the compute stage are imported here: the render server imports this module and
    never computes.)"""
    from reporter.compute.database import compute

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
    return print_job(config, results, run_id=run_id, trigger=trigger, folder=folder).print()


def print_job(
    config: Config, results: Results, *, run_id: str = "", trigger: str = "cli", folder: Path | None = None
) -> PrintJob:
    """``render_pdf`` up to the printing: the report's HTML and the files the PDF carries, for
    ``PrintJob.print`` here or in the render server (``Run._make_report``)."""
    from reporter.render.attached import long_breakdowns
    from reporter.render.html import render_html, stylesheet_dir, template_dirs

    html = render_html(config, results)
    when = dt.datetime.fromisoformat(results.generated_at)
    base, allowed = stylesheet_dir(config), tuple(template_dirs(config))
    if not config.delivery.archive.pdfa:
        return PrintJob(html, base, allowed, when)
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
    return PrintJob(html, base, allowed, when, attachments, identifier)


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
