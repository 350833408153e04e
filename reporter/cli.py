"""Command line: parse arguments, call the pipeline, turn ReporterError into a message and an
exit code (0 success, 1 a run failed, 2 bad configuration or usage)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reporter import __version__
from reporter.errors import INTERRUPTED, ConfigError, ReporterError, UsageError, on_interrupt
from reporter.render.pdf import is_environment_notice

if TYPE_CHECKING:  # only for annotations: every command imports what it needs when it runs
    from reporter.config.model import Config
    from reporter.delivery.archive import Summary


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # main() prints "reporter: error: ", once; a subcommand names itself after it.
        command = self.prog.removeprefix("reporter").strip()
        raise UsageError(f"{command + ': ' if command else ''}{message}; see '{self.prog} --help'")


EXAMPLES = {
    "reporter": """examples:
  reporter init my-report --kind sales       # a starter report with sample data
  reporter validate my-report/report.yaml    # check it; every error at once
  reporter run my-report/report.yaml --no-send""",
    "validate": """example:
  reporter validate config/example.yaml      # one file
  reporter validate config/                  # every *.yaml in a folder""",
    "run": """examples:
  reporter run config/example.yaml --period 2026-10 --no-send   # files only, nothing sent
  reporter run config/                                          # every report, last complete period""",
    "schedule": """example:
  reporter schedule config/ --output /var/lib/reporter          # until SIGTERM""",
    "status": """example:
  reporter status config/example.yaml""",
    "verify": """example:
  reporter verify output/archive --report marketing-monthly --period 2026-10""",
    "audit": """examples:
  reporter audit output/archive --period 2026-10                 # who received what, when, why
  reporter audit output/archive --format csv > deliveries.csv
  reporter audit output/archive --period 2026-10 --version 1 --recipient ceo@acme.fr \\
      --write v1.eml                                             # the exact bytes received""",
    "reproduce": """example:
  reporter reproduce output/archive/marketing-monthly/2026-10/marketing-monthly_2026-10_v1.pdf \\
      --data config       # the folder that held example.yaml and its data/""",
    "preview": """example:
  reporter preview config/example.yaml --period 2026-10   # then open the HTML it names""",
    "init": """examples:
  reporter init my-report                        # marketing starter with sample data
  reporter init my-report --kind newsletter
  reporter init my-report --source exports/leads.csv   # a report over your own CSV only""",
    "resolve": """examples:
  reporter resolve config/example.yaml 2026-10 ceo@acme.fr --sent     # it arrived
  reporter resolve config/example.yaml 2026-10 ceo@acme.fr --resend   # it did not: send once more
  reporter resolve config/example.yaml 1 cfo@acme.fr --alert cut-cac-off_track --sent   # alert message 1""",
    "checkin": """examples:
  reporter checkin config/example.yaml cut-cac --note "Two trade fairs doubled the cost"
  reporter checkin config/example.yaml cut-cac --action relaunch-quotes=done \\
      --comment relaunch-quotes="12 quotes sent"
  reporter checkin config/example.yaml cut-cac --period 2026-10 --lang en --note "..."  # one language""",
    "alerts": """examples:
  reporter alerts test config/example.yaml                      # one message marked TEST per rule
  reporter alerts status --config config/example.yaml            # each rule's state and last change
  reporter alerts snooze cut-cac-off_track --until 2026-11-30 --config config/example.yaml""",
    "unsubscribe": """examples:
  reporter unsubscribe config/example.yaml cfo@acme.fr              # cfo@acme.fr gets it no more
  reporter unsubscribe config/ --from-mbox /var/mail/unsubscribe     # the requests mailed in""",
    "subscribe": """example:
  reporter subscribe config/example.yaml cfo@acme.fr     # the next run sends to cfo@acme.fr again""",
    "archive": """examples:
  reporter archive purge config/example.yaml --dry-run     # what delivery.archive.retention removes
  reporter archive purge /srv/archive --keep 7y --hold 2025-03""",
    "schema": """example:
  reporter schema > reporter.schema.json     # for an editor without the repository's copy""",
    "release": """example:
  reporter release config/sales.yaml     # this file now owns its report id (it replaces another)""",
}


def _command(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=EXAMPLES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _allow_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-dir",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="a folder outside the configuration's and the output folder that the YAML's paths may "
        "name (repeatable; also REPORTER_ALLOW_DIRS)",
    )


CONNECTIONS_HELP = (
    "the operator's connections file: a YAML mapping of connection names to URLs "
    "(default: $REPORTER_CONNECTIONS; REPORTER_CONNECTION_<NAME> variables win over it)"
)


def _connections_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connections", type=Path, metavar="FILE", help=CONNECTIONS_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reporter",
        description="Scheduled KPI reports from YAML: compute, PDF, email digest, audit archive.",
        epilog=EXAMPLES["reporter"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"reporter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = _command(sub, "validate", "check a configuration file or folder; report every error")
    p.add_argument("config", type=Path, metavar="CONFIG", help="a report YAML file or a folder")
    p.add_argument(
        "--output",
        type=Path,
        help="the output folder the run will use (default: report.output_dir, else ./output)",
    )
    _allow_dir(p)
    _connections_option(p)

    p = _command(sub, "run", "compute, render, archive and deliver a period's report")
    p.add_argument("config", type=Path, metavar="CONFIG", help="a report YAML file or a folder")
    p.add_argument("--period", help="e.g. 2026-10, 2026-Q4 or 2026-W43 (default: last complete)")
    p.add_argument("--output", type=Path, help="output folder (default: report.output_dir, else ./output)")
    p.add_argument("--no-send", action="store_true", help="compute and write files; send nothing")
    p.add_argument("--force", action="store_true", help="re-send a period already delivered (with --reason)")
    p.add_argument(
        "--reason",
        metavar="TEXT",
        help="with --force (required there): why it is sent again; kept in the ledger, the "
        "archive's manifest and 'reporter audit'",
    )
    p.add_argument(
        "--recipient",
        action="append",
        metavar="ADDRESS",
        help="with --force: re-send to this address only (repeatable)",
    )
    _allow_dir(p)
    _connections_option(p)

    p = _command(
        sub, "resolve", "settle a delivery in review: it arrived (--sent) or send it again (--resend)"
    )
    p.add_argument(
        "config", type=Path, metavar="CONFIG", help="the report's YAML file (or a folder, with --report)"
    )
    p.add_argument("period", metavar="PERIOD", help="e.g. 2026-10; with --alert, the message's number")
    p.add_argument(
        "recipient",
        metavar="RECIPIENT",
        help="the address (or chat channel, e.g. slack:SLACK_WEBHOOK_URL) whose delivery is in review",
    )
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--sent", action="store_true", help="the recipient has it: record it as sent")
    how.add_argument(
        "--resend",
        action="store_true",
        help="it did not arrive: send it again, once (an alert: at the rule's next evaluation)",
    )
    p.add_argument(
        "--alert",
        metavar="RULE",
        help="settle a message of this alert rule (PERIOD is then its number, as 'reporter status' lists it)",
    )
    p.add_argument("--report", help="the report id, when CONFIG is a folder of several reports")
    p.add_argument("--output", type=Path, help="output folder (default: report.output_dir, else ./output)")
    _allow_dir(p)
    _connections_option(p)

    p = _command(
        sub, "release", "hand a report id over to this file on its ledger (a moved or replaced YAML)"
    )
    p.add_argument(
        "config", type=Path, metavar="CONFIG", help="the report's YAML file (or a folder, with --report)"
    )
    p.add_argument("--report", help="the report id, when CONFIG is a folder of several reports")
    p.add_argument("--output", type=Path, help="output folder (default: report.output_dir, else ./output)")
    _allow_dir(p)
    _connections_option(p)

    p = _command(sub, "unsubscribe", "stop sending a report to an address (or to each request in a mailbox)")
    p.add_argument("config", type=Path, metavar="CONFIG", help="a report YAML file or a folder")
    p.add_argument("address", nargs="?", metavar="ADDRESS", help="the recipient who asked to stop")
    p.add_argument(
        "--from-mbox",
        type=Path,
        metavar="FILE",
        help="an mbox copy of the unsubscribe mailbox: each request mailed there by a recipient",
    )
    p.add_argument("--report", help="only this report id, when CONFIG is a folder")
    p.add_argument("--output", type=Path, help="output folder (default: report.output_dir, else ./output)")
    _allow_dir(p)
    _connections_option(p)

    p = _command(sub, "subscribe", "send a report to an unsubscribed address again")
    p.add_argument("config", type=Path, metavar="CONFIG", help="a report YAML file or a folder")
    p.add_argument("address", metavar="ADDRESS", help="the address to send to again")
    p.add_argument("--report", help="only this report id, when CONFIG is a folder")
    p.add_argument("--output", type=Path, help="output folder (default: report.output_dir, else ./output)")
    _allow_dir(p)
    _connections_option(p)

    help_ = "the archive's upkeep: purge files past their retention"
    p = sub.add_parser(
        "archive",
        help=help_,
        description=help_,
        epilog=EXAMPLES["archive"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tasks = p.add_subparsers(dest="task", metavar="TASK", parser_class=_Parser, required=True)
    help_ = "remove archived files older than the retention; the manifest keeps their SHA-256"
    p = tasks.add_parser(
        "purge",
        help=help_,
        description=help_,
        epilog=EXAMPLES["archive"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "target",
        type=Path,
        metavar="CONFIG|ARCHIVE_DIR",
        help="a report YAML file or folder (its delivery.archive.retention and legal_hold), or an "
        "archive folder (with --keep)",
    )
    p.add_argument("--keep", metavar="DURATION", help="with ARCHIVE_DIR: the retention, e.g. 7y or 400d")
    p.add_argument(
        "--hold",
        action="append",
        default=[],
        metavar="PERIOD",
        help="with ARCHIVE_DIR: a period under legal hold, never purged (repeatable)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would be purged; remove nothing")
    p.add_argument(
        "--ledger",
        metavar="LEDGER",
        help="with ARCHIVE_DIR: the ledger that records its manifest (default: ledger.sqlite beside it)",
    )
    p.add_argument(
        "--no-ledger", action="store_true", help="with ARCHIVE_DIR: an archive kept without a ledger"
    )
    p.add_argument("--output", type=Path, help="output folder (default: report.output_dir, else ./output)")
    _allow_dir(p)
    _connections_option(p)

    p = _command(sub, "schedule", "run every report on its delivery.schedule, until stopped")
    p.add_argument("config", type=Path, metavar="CONFIG", help="a report YAML file or a folder")
    p.add_argument("--output", type=Path, help="output folder (default: report.output_dir, else ./output)")
    _allow_dir(p)
    _connections_option(p)

    p = _command(sub, "status", "next runs, last outcomes, deliveries pending or failed")
    p.add_argument("config", type=Path, metavar="CONFIG", help="a report YAML file or a folder")
    p.add_argument("--output", type=Path, help="output folder (default: report.output_dir, else ./output)")
    _allow_dir(p)
    _connections_option(p)

    p = _command(sub, "verify", "check every archived file against the manifest; exit 1 on any problem")
    p.add_argument("archive", type=Path, metavar="ARCHIVE_DIR", help="delivery.archive.dir")
    p.add_argument("--report", help="check the files of this report id only (the chain is checked whole)")
    p.add_argument(
        "--period", help="check the files of this period only, e.g. 2026-10 (the chain is checked whole)"
    )
    p.add_argument(
        "--ledger",
        metavar="LEDGER",
        help="the ledger that recorded each manifest line: a URL or a ledger.sqlite path "
        "(default: ledger.sqlite beside ARCHIVE_DIR, else in ./output)",
    )
    p.add_argument(
        "--no-ledger", action="store_true", help="check the hash chain and files only, without a ledger"
    )

    p = _command(
        sub,
        "audit",
        "who received which version, when and why: one row per delivery, from the ledger, after "
        "checking the archive as verify does (exit 1 when it is not intact)",
    )
    p.add_argument("archive", type=Path, metavar="ARCHIVE_DIR", help="delivery.archive.dir")
    p.add_argument("--report", help="only this report id")
    p.add_argument("--period", help="only this period, e.g. 2026-10")
    p.add_argument("--recipient", metavar="ADDRESS", help="only this recipient (or chat channel)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="default: table")
    p.add_argument(
        "--ledger",
        metavar="LEDGER",
        help="the ledger that recorded the deliveries: a URL or a ledger.sqlite path "
        "(default: ledger.sqlite beside ARCHIVE_DIR, else in ./output)",
    )
    p.add_argument("--version", type=int, metavar="N", help="with --write: the delivery's version")
    p.add_argument(
        "--write",
        type=Path,
        metavar="FILE",
        help="write the exact bytes --recipient received for --period P --version N (from the "
        "archive, checked against its manifest line) to FILE",
    )

    p = _command(sub, "reproduce", "re-render an archived PDF from the YAML inside it and a copy of its data")
    p.add_argument("pdf", type=Path, metavar="ARCHIVED_PDF")
    p.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="the folder that stands for the configuration's folder: every file the PDF's YAML "
        "names is read from under it (required)",
    )
    p.add_argument(
        "--allow-sql-sources",
        action="append",
        default=[],
        metavar="NAME[,NAME]",
        help="run these SQL sources of the PDF's YAML (they connect to the database it names); "
        "by default none is run",
    )
    p.add_argument("--output", type=Path, help="output folder (default: ./output), the PDF in reproduced/")
    _allow_dir(p)
    _connections_option(p)

    p = _command(sub, "init", "write a starter report (YAML, sample data, schema) into a folder")
    p.add_argument("folder", type=Path, metavar="DIR", help="where to write (created if needed)")
    p.add_argument(
        "--kind", choices=("marketing", "sales", "newsletter"), help="the starter (default: marketing)"
    )
    p.add_argument(
        "--source", type=Path, metavar="CSV", help="write only a report over this CSV file (no starter)"
    )

    p = _command(sub, "preview", "write the report as one HTML file to open in a browser")
    p.add_argument("config", type=Path, metavar="CONFIG", help="a report YAML file or a folder")
    p.add_argument("--period", help="e.g. 2026-10, 2026-Q4 or 2026-W43 (default: last complete)")
    p.add_argument("--output", type=Path, help="output folder (default: report.output_dir, else ./output)")
    _allow_dir(p)
    _connections_option(p)

    p = _command(
        sub, "checkin", "record an owner's note and action states for an objective (checkins/<period>.yaml)"
    )
    p.add_argument("config", type=Path, metavar="CONFIG", help="a report YAML file")
    p.add_argument("objective", metavar="OBJECTIVE", help="the objective's id")
    p.add_argument(
        "--period",
        help="the period the check-in is about, e.g. 2026-11 "
        "(default: the period in progress, whose report comes next)",
    )
    p.add_argument("--note", help="the owner's note on the objective (replaces the period's note)")
    p.add_argument(
        "--lang", metavar="LANG", help="the language of --note (fr, en, ...): one text per language"
    )
    p.add_argument(
        "--action",
        action="append",
        default=[],
        metavar="ID=STATE",
        help="an action's state: open, done or dropped (repeatable)",
    )
    p.add_argument(
        "--comment",
        action="append",
        default=[],
        metavar="ID=TEXT",
        help="a comment on an action (repeatable)",
    )
    _allow_dir(p)
    _connections_option(p)

    p = _command(
        sub, "alerts", "alert rules between reports: test, status, snooze, resolve (alerts: in the YAML)"
    )
    alerts = p.add_subparsers(dest="alerts_command", metavar="ACTION", parser_class=_Parser)
    a = alerts.add_parser("test", help="send one message marked TEST per rule (nothing is recorded)")
    a.add_argument("config", type=Path, metavar="CONFIG", help="a report YAML file")
    a.add_argument("--rule", help="only this rule (its id)")
    a.add_argument("--output", type=Path, help="output folder (default: report.output_dir, else ./output)")
    _allow_dir(a)
    _connections_option(a)
    a = alerts.add_parser("status", help="each rule's state, its last change and its last message")
    a.add_argument(
        "--config",
        type=Path,
        metavar="CONFIG",
        help="a report YAML file (default: every report in the ledger)",
    )
    a.add_argument("--output", type=Path, help="output folder whose ledger to read (default: ./output)")
    _allow_dir(a)
    _connections_option(a)
    a = alerts.add_parser("snooze", help="send nothing for a rule until a date (inclusive)")
    a.add_argument("rule", metavar="RULE", help="the rule's id (reporter alerts status lists them)")
    a.add_argument(
        "--until",
        required=True,
        metavar="DATE",
        help="the last day it stays quiet, e.g. 2026-11-30; 'off' wakes it",
    )
    a.add_argument("--config", type=Path, metavar="CONFIG", help="the report YAML the rule is in")
    a.add_argument("--output", type=Path, help="output folder whose ledger to use (default: ./output)")
    _allow_dir(a)
    _connections_option(a)

    a = alerts.add_parser(
        "resolve",
        help="settle a message in review: see 'reporter resolve ... --alert RULE' (same act as a report's)",
    )
    for name, text in (
        ("rule", "the rule's id"),
        ("number", "the message's number"),
        ("recipient", "its address"),
    ):
        a.add_argument(name, nargs="?", help=text)
    how = a.add_mutually_exclusive_group()
    how.add_argument("--sent", action="store_true", help="it arrived")
    how.add_argument("--resend", action="store_true", help="it did not arrive")
    a.add_argument("--config", type=Path, metavar="CONFIG", help="the report YAML the rule is in")
    a.add_argument("--output", type=Path, help="output folder whose ledger to use (default: ./output)")

    _command(sub, "schema", "print the JSON Schema of the report YAML (editor completion and checks)")
    return parser


class _NoticeOnce(logging.Filter):
    """WeasyPrint's fontTools notice (a machine without libharfbuzz-subset0) comes once per font and
    PDF; the user needs it once, as what to install."""

    said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not is_environment_notice(record):
            return True
        if not self.said:
            self.said = True
            logging.getLogger("reporter").warning(FONTTOOLS_HINT)
        return False


FONTTOOLS_HINT = (
    "note: fonts are subset with fontTools (HarfBuzz's subsetter is not installed); for smaller, "
    "faster PDFs: apt-get install libharfbuzz-subset0"
)


def main(argv: Sequence[str] | None = None, *, clock: Callable[[], dt.datetime] | None = None) -> int:
    """The ``reporter`` command. ``clock``: what ``reporter schedule``, ``reporter alerts`` and
    ``reporter archive purge`` read as the time (by default the real clock, or SOURCE_DATE_EPOCH
    for purge; an end-to-end test passes one that starts just before a fire time, or the day of a
    snooze)."""
    logging.basicConfig(level=logging.WARNING, format="reporter: %(message)s", stream=sys.stderr)
    weasyprint = logging.getLogger("weasyprint")
    if not any(isinstance(f, _NoticeOnce) for f in weasyprint.filters):  # main() may run again
        weasyprint.addFilter(_NoticeOnce())
    _redact_logs()
    parser = build_parser()
    try:
        with _interrupts():
            return _main(parser, argv, clock)
    finally:
        pdf = sys.modules.get("reporter.render.pdf")
        if pdf is not None:
            pdf.release_fonts()  # the command's font folders: none left in the temporary folder


GC_THRESHOLD = (10_000, 50, 100)  # Python's default: (700, 10, 10)


def entry() -> None:
    """The ``reporter`` console script and ``python -m reporter``: ``main``, then ``leave``.

    The cycle collector's first generation is collected every 10,000 allocations instead of
    700: a run makes millions of short-lived objects (YAML nodes, the configuration, the
    digest) and almost no cycles, and walking them ~300 times cost about 0.1 s of a demo run
    (30 collections now). A command is a process of its own; a program that imports reporter
    keeps its own settings."""
    import gc

    gc.set_threshold(*GC_THRESHOLD)
    leave(main())


def leave(code: int) -> None:
    """End this process with ``code`` once the command is done, without the interpreter's
    teardown: every file is written and closed by then, and the ``atexit`` handlers (logging's
    flush, the renderer's font folders, temporary folders) run first; what is skipped is
    freeing every object and module one by one, about 0.2 s of a ``reporter run``. While a
    thread the ordinary exit waits for still runs (not a daemon), that exit is kept."""
    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if others or threading.current_thread() is not threading.main_thread():
        raise SystemExit(code)
    import atexit

    atexit._run_exitfuncs()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(code)


@contextlib.contextmanager
def _interrupts() -> Iterator[None]:
    """Ctrl-C is remembered as well as raised (errors.INTERRUPTED): one Python drops while a
    ``__del__`` runs still stops the run before it writes, sends or archives anything."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    INTERRUPTED.clear()
    before = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _main(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, clock: Callable[[], dt.datetime] | None
) -> int:
    args = None
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        _check_output_option(args)
        _use_connections(args)
        from reporter.config.paths import operator_paths

        allowed, output = getattr(args, "allow_dir", []), getattr(args, "output", None)
        with operator_paths(allowed, output, runs=args.command != "reproduce"):
            if args.command == "schedule":
                return _schedule(args, clock or _real_clock)
            if args.command == "alerts":
                return _alerts(args, clock)
            if args.command == "archive":
                return _archive(args, clock() if clock is not None else now())
            return _COMMANDS[args.command](args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"{count} error{'s' if count != 1 else ''}: nothing was run or sent.", file=sys.stderr)
        return exc.exit_code
    except ReporterError as exc:
        print(f"reporter: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("reporter: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a read-only or full output folder, a file where a folder should be
        print(f"reporter: error: {_os_error(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: one line here, the traceback in a log file
        from reporter.security import redact

        log = _write_traceback(getattr(args, "output", None))
        where = f"; the traceback is in {log}" if log else ""
        text = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        print(f"reporter: internal error: {type(exc).__name__}: {text}{where}", file=sys.stderr)
        return 1


def _use_connections(args: argparse.Namespace) -> None:
    """The operator's connections file: ``--connections``, else ``$REPORTER_CONNECTIONS``."""
    from reporter.config import connections

    given = getattr(args, "connections", None)
    if given is None and "connections" in args and os.environ.get(connections.FILE_ENV):
        given = Path(os.environ[connections.FILE_ENV])
    connections.use_file(given)


def _check_output_option(args: argparse.Namespace) -> None:
    output = getattr(args, "output", None)
    if output is not None and output.exists() and not output.is_dir():
        raise UsageError(f"--output {output}: is a file, not a folder")


def _os_error(exc: OSError) -> str:
    """``cannot write output/x: Permission denied`` — the file and the system's reason."""
    from reporter.security import redact

    reason = exc.strerror or type(exc).__name__
    if exc.filename is not None:
        return redact(f"cannot use {exc.filename}: {reason}")
    return redact(reason)


def _write_traceback(output: Path | None) -> Path | None:
    """Write the current exception's traceback (redacted) to ``<output>/logs/reporter-<time>.log``
    (or the system's temporary folder when the output folder cannot be written); its path."""
    import tempfile
    import traceback

    from reporter.security import redact

    text = redact(traceback.format_exc())
    stamp = dt.datetime.now(tz=dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    for folder in ((output or Path("output")) / "logs", Path(tempfile.gettempdir()) / "reporter-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"reporter-{stamp}.log"
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def _redact_logs() -> None:
    """No secret in a log line: every handler of the root logger redacts what it writes."""
    from reporter.security import RedactingFilter

    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def now() -> dt.datetime:
    """The run's clock: SOURCE_DATE_EPOCH when set (reproducible runs), else the real time."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            seconds = int(epoch)
        except ValueError:
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a number of seconds") from None
        try:
            return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
        except (ValueError, OverflowError, OSError):
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is out of range (years 1 to 9999)") from None
    return dt.datetime.now(tz=dt.UTC)


def _validate(args: argparse.Namespace) -> int:
    from reporter.compute.datacheck import data_warnings
    from reporter.config.lint import past_due, silent_defaults
    from reporter.render.texts import load_checked

    clock = now()
    for config in load_checked(args.config):
        for warning in [
            *config.data_warnings,
            *silent_defaults(config.file, config),
            *past_due(config, clock),
            *data_warnings(config, clock),
        ]:
            print(warning, file=sys.stderr)
        print(f"{config.file}: valid — {summary(config)}")
    return 0


def _checkin(args: argparse.Namespace) -> int:
    from reporter.config.checkins import parse_pairs, today_period, write_checkin
    from reporter.render.texts import load_checked
    from reporter.run.stages import resolve_period

    if args.config.is_dir():
        raise UsageError(f"{args.config}: give the report's YAML file, not a folder")
    if args.note is None and not args.action and not args.comment:
        raise UsageError("nothing to record: give --note, --action ID=STATE or --comment ID=TEXT")
    if args.lang is not None and args.note is None:
        raise UsageError("--lang says the language of --note: give --note too")
    (config,) = load_checked(args.config)
    clock = now()
    period = (
        resolve_period(config, args.period, clock) if args.period is not None else today_period(config, clock)
    )
    path = write_checkin(
        config,
        args.objective,
        period,
        note=args.note,
        lang=args.lang,
        actions=parse_pairs(args.action, "--action"),
        comments=parse_pairs(args.comment, "--comment"),
    )
    print(
        f"{path}: check-in of '{args.objective}' for {period.label} recorded; "
        f"the {period.label} report shows it"
    )
    return 0


def summary(config: object) -> str:
    from reporter.config.model import Config

    assert isinstance(config, Config)

    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    parts = [
        n(len(config.sources), "source"),
        n(len(config.metrics), "metric"),
        n(len(config.kpis), "KPI"),
        n(len(config.objectives), "objective"),
        n(len(config.breakdowns), "breakdown"),
        n(len(config.funnel), "funnel stage"),
    ]
    if config.portfolio is not None:
        parts.append(f"portfolio by {config.portfolio.by}")
    return ", ".join(parts)


def _run(args: argparse.Namespace) -> int:
    if args.recipient and not args.force:
        raise UsageError("--recipient re-sends to some recipients only: use it with --force")
    reason = _force_reason(args)
    from reporter.render import forked, warmup

    # WeasyPrint imported on the other core while the YAML and data are read: by the render
    # server, which renders the first report's PDF, else by a thread of this process
    if not forked.serve():
        warmup.start()
    try:
        return _run_reports(args, reason)
    finally:
        forked.stop_server()


def _run_reports(args: argparse.Namespace, reason: str | None) -> int:
    from reporter.errors import RunError
    from reporter.progress import showing
    from reporter.render.texts import load_checked
    from reporter.run.pipeline import run_report

    configs = load_checked(args.config)
    if args.recipient:
        _check_recipients(configs, args.recipient)
    if any(c.delivery.email is not None and c.delivery.email.recipients for c in configs):
        from reporter.render import warmup

        warmup.start()  # the recipients' reports render in workers forked from this process
    failed = 0
    clock = now()
    from reporter.config.lint import language_warning

    for config in configs:
        said = language_warning(config) if config.yaml_data is not None else None
        if said is not None:
            print(said, file=sys.stderr)  # once per report, before its run
        try:
            with showing(stages(config)):
                outcome = run_report(
                    config,
                    period=args.period,
                    now=clock,
                    output=args.output,
                    send=not args.no_send,
                    force=args.force,
                    reason=reason,
                    recipients=[r.lower() for r in args.recipient] if args.recipient else None,
                )
        except RunError as exc:
            if getattr(exc, "outcome", None) is not None:  # delivered to some, failed for others
                print(exc.outcome.summary(failed=True))  # type: ignore[attr-defined]
            print(f"reporter: FAILED: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(outcome.summary() + ("\n  nothing sent (--no-send)" if args.no_send else ""))
    return 1 if failed else 0


def _force_reason(args: argparse.Namespace) -> str | None:
    """The reason of a ``--force`` re-send: required with it, refused without it."""
    reason = " ".join((args.reason or "").split())
    if args.reason is not None and not args.force:
        raise UsageError("--reason says why a period is sent again: use it with --force")
    if args.force and not reason:
        raise UsageError(
            "--force re-sends a period already delivered: say why with --reason TEXT (kept in the "
            "ledger, the archive's manifest and 'reporter audit')"
        )
    return reason or None


def _init(args: argparse.Namespace) -> int:
    from reporter.init import init_report

    if args.kind is not None and args.source is not None:
        raise UsageError(
            "init: --kind writes a starter with sample data, --source a report over your file: choose one"
        )
    kind = args.kind or "marketing"
    done = init_report(args.folder, kind, now=now(), source=args.source)
    for path in done.files:
        print(f"wrote {path}")
    if done.source is None or done.source_yaml is None:
        report = args.folder / "report.yaml"
        print(
            f"a {kind} starter with sample data for {done.first} to {done.last}; next:\n"
            f"  reporter validate {args.folder}\n"
            f"  reporter run {report} --no-send"
        )
        return 0
    # a file outside the report's folder is read only from a folder the operator allows
    allow = f" --allow-dir {args.source.resolve().parent}" if done.source.outside else ""
    roles = done.source.roles
    counted = [
        "rows",
        *(f"distinct {c}" for c in roles.ids),
        *(f"sum of {c}" for c in roles.measures),
    ]
    by = f"; by {', '.join(roles.categories)}" if roles.categories else ""
    span = f" (dates from {done.first} to {done.last})" if done.first else ""
    yaml = done.source_yaml
    found = done.source.sniffed
    notes = [
        f'  {column}: written like "{example}": read as numbers by the derived source '
        f"{done.source.source_name} (the csv options have no thousands separator)"
        for column, (_mark, example) in found.formatted.items()
    ]
    for column, why in roles.notes.items():
        if column in roles.categories:
            done_as, fix = "broken down by", "add a metric with agg: sum"
        else:
            done_as, fix = "counted distinct", "set its metric's agg to sum"
        notes.append(f"  {column}: {done_as}, not summed: {why}; if they are quantities, {fix}")
    notes += [f"  {column}: left out: {why}" for column, why in found.unread.items()]
    summary = f"a report over {args.source.name}{span}: {', '.join(counted)}{by}"
    if notes:
        print("\n".join([summary, *notes, "next:"]))
    else:
        print(f"{summary}; next:")
    print(f"  reporter validate {yaml}{allow}")
    print(f"  reporter preview {yaml}{allow}")
    if done.complete:
        print(f"  reporter run {yaml} --period {done.complete} --no-send{allow}")
    return 0


def stages(config: Any) -> int:
    """How many progress stages a run of ``config`` has: sources, KPIs, the PDF, each
    recipient's e-mail, and the recipients' own reports."""
    email = config.delivery.email
    if email is None:
        return 3
    from reporter.delivery.addresses import recipients_of

    burst = len(email.recipients)
    return 3 + len(recipients_of(config)) + (1 + burst if burst else 0)


def _preview(args: argparse.Namespace) -> int:
    from reporter.render.texts import load_checked
    from reporter.run.pipeline import preview

    clock = now()
    for config in load_checked(args.config):
        done = preview(config, period=args.period, now=clock, output=args.output)
        path = done.path
        if done.note:
            print(done.note)
        print(f"{config.report.id}: preview written to {path} (open it in a browser; nothing was sent)")
        print(
            f"{config.report.id}: the email digest beside it: {path.stem}_digest.html, {path.stem}_digest.txt"
        )
    return 0


def _check_recipients(configs: Sequence[object], wanted: list[str]) -> None:
    from reporter.config.model import Config
    from reporter.delivery.addresses import recipients_of

    known: set[str] = set()
    for config in configs:
        assert isinstance(config, Config)
        if config.delivery.email is not None:
            known.update(recipients_of(config))
            known.update(r.email.lower() for r in config.delivery.email.recipients)
        known.update(f"{c.kind}:{c.webhook_env}".lower() for c in config.delivery.chat)  # chat channels
    for address in wanted:
        if address.lower() not in known:
            raise UsageError(
                f"--recipient {address}: not a recipient of this report (delivery.email to, cc or recipients)"
            )


def _ledger_url(given: str) -> str:
    """A ledger named by URL (``postgresql+psycopg://…``, ``sqlite:///…``) or by a file's path."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" not in given:
        path = Path(given)
        if not path.is_file():
            raise UsageError(
                f"--ledger {given}: no such file (or give a URL, e.g. sqlite:////path/ledger.sqlite)"
            )
        return f"sqlite:///{path.resolve()}"
    try:
        make_url(given)
    except ArgumentError:
        raise UsageError(
            f"--ledger {given}: not a database URL (e.g. sqlite:////path/ledger.sqlite)"
        ) from None
    return given


def _archive_ledger(archive: Path, more: str = "") -> str:
    """The ledger of an archive where `reporter run` leaves it: beside the archive folder, or in
    ./output (``more``: what else the command can do without one)."""
    from reporter.delivery.ledger import default_url

    places = [archive.resolve().parent, Path("output").resolve()]
    found = next((place for place in places if (place / "ledger.sqlite").is_file()), None)
    if found is None:
        raise UsageError(
            f"no ledger beside {archive} ({places[0] / 'ledger.sqlite'}) nor in "
            f"{places[1] / 'ledger.sqlite'}: pass --ledger (the report's delivery.ledger, or "
            f"the ledger.sqlite of the run's output folder){more}"
        )
    return default_url(found)


def _audit(args: argparse.Namespace) -> int:
    from reporter.delivery.archive import sha256
    from reporter.delivery.audit import audit_rows, message_bytes, render
    from reporter.delivery.ledger import Ledger
    from reporter.files import write_atomic

    if not args.archive.is_dir():
        raise UsageError(f"{args.archive}: not a folder")
    if args.write is None:
        if args.version is not None:
            raise UsageError("--version names the message to write: use it with --write FILE")
        url = _ledger_url(args.ledger) if args.ledger else _archive_ledger(args.archive)
        with Ledger(url) as ledger:
            _same_chain(args.archive, ledger)
            problems = _integrity(args.archive, ledger, report=args.report, period=args.period)
            rows = audit_rows(
                args.archive, ledger, report=args.report, period=args.period, recipient=args.recipient
            )
        _not_intact(
            args.archive,
            problems,
            "the deliveries below are the ledger's record, but the archived files and SHA-256 they name "
            "may not be what was sent",
        )
        sys.stdout.write(render(rows, args.format))
        if problems:
            sys.stdout.flush()
            print(f"{len(problems)} problem(s): the archive is NOT intact.", file=sys.stderr)
            return 1
        return 0
    named = (
        ("--period P", args.period),
        ("--version N", args.version),
        ("--recipient ADDRESS", args.recipient),
    )
    missing = [option for option, value in named if value is None]
    if missing:
        raise UsageError(f"--write FILE writes one recipient's message: name it with {', '.join(missing)}")
    data = message_bytes(
        args.archive, report=args.report, period=args.period, version=args.version, recipient=args.recipient
    )
    # the file matches its line; the line must be the one written (chain, ledger, HMAC)
    url = _ledger_url(args.ledger) if args.ledger else _archive_ledger(args.archive)
    with Ledger(url) as ledger:
        _same_chain(args.archive, ledger)
        problems = _integrity(args.archive, ledger, report=args.report, period=args.period)
    if problems:
        _not_intact(
            args.archive,
            problems,
            f"{args.write} not written: what its manifest line says cannot be taken as what was sent",
        )
        print(f"{len(problems)} problem(s): the archive is NOT intact.", file=sys.stderr)
        return 1
    write_atomic(args.write, data)
    print(
        f"{args.write}: the message {args.recipient} received for {args.period} v{args.version} "
        f"({len(data):,} bytes, SHA-256 {sha256(data)}), as archived"
    )
    return 0


def _not_intact(archive: Path, problems: list[str], consequence: str) -> None:
    """``audit``'s first lines on an archive that is not intact: said loud, then each problem in
    verify's words (nothing when ``problems`` is empty)."""
    if not problems:
        return
    print(
        f"{archive}: NOT intact — {len(problems)} problem(s), as 'reporter verify' finds them; {consequence}",
        file=sys.stderr,
    )
    for problem in problems:
        print(problem, file=sys.stderr)


def _same_chain(archive: Path, ledger: Any) -> None:
    """``audit`` lists the deliveries of the ledger that recorded this archive, no other's: the
    ledger must know the archive as ``verify`` finds it (by its first line, or, that line
    changed, by its reports: then ``_integrity`` says the line changed)."""
    from reporter.delivery.archive import first_line, ledger_chain

    first = first_line(archive)
    if first is not None and ledger_chain(archive, ledger, first) is None:
        raise UsageError(
            f"{archive}: the ledger has no record of this archive's hash chain (its first line, "
            f"SHA-256 {first[:16]}…): it was written with another ledger: its deliveries are not this "
            "archive's; pass the archive's own ledger with --ledger"
        )


def _integrity(
    archive: Path, ledger: Any, *, report: str | None = None, period: str | None = None
) -> list[str]:
    """What ``verify`` finds wrong with the archive (its files of ``report`` and ``period``, the
    whole chain, each line against ``ledger`` and, with REPORTER_ARCHIVE_KEY, its HMAC), each
    problem as printed: the archive's path first. Empty: intact."""
    from reporter.delivery.archive import verify_archive
    from reporter.delivery.archiving import KEY_ENV

    key = os.environ.get(KEY_ENV) or None
    found = verify_archive(archive, report=report, period=period, ledger=ledger, key=key)
    return [f"{archive}/{problem}" for problem in found]


def _verify(args: argparse.Namespace) -> int:
    from reporter.delivery.archive import manifest_summary
    from reporter.delivery.archiving import KEY_ENV
    from reporter.delivery.ledger import Ledger

    if not args.archive.is_dir():
        raise UsageError(f"{args.archive}: not a folder")
    if args.ledger and args.no_ledger:
        raise UsageError("--ledger and --no-ledger: choose one")
    url = _ledger_url(args.ledger) if args.ledger else None
    if url is None and not args.no_ledger:
        url = _archive_ledger(args.archive, ", or --no-ledger to check the hash chain and files only")
    key = os.environ.get(KEY_ENV) or None
    with contextlib.ExitStack() as stack:
        ledger = stack.enter_context(Ledger(url)) if url else None
        problems = _integrity(args.archive, ledger, report=args.report, period=args.period)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s): the archive is NOT intact.", file=sys.stderr)
        return 1
    parts = [
        "hash chain",
        "attachments",
        *(["ledger"] if url else []),
        *([f"HMAC ({KEY_ENV})"] if key else []),
    ]
    checked = f"{', '.join(parts[:-1])} and {parts[-1]}"
    scope = " ".join(x for x in (args.report, args.period) if x)
    summary = manifest_summary(args.archive, report=args.report, period=args.period)
    if not scope:
        print(f"{args.archive}: intact — {_archived_words(summary)}; {checked} verified")
        return 0
    if not summary.files and not summary.purged:
        asked = " ".join(f"{o} {v}" for o, v in (("--report", args.report), ("--period", args.period)) if v)
        held = "; ".join(f"{r} {', '.join(sorted(p))}" for r, p in sorted(summary.listed.items()))
        raise UsageError(
            f"{asked}: the manifest lists no file for it, so no file was checked; it lists {held}"
        )
    checked = checked.replace("hash chain", f"hash chain (all {summary.lines} lines)", 1)
    others = f"; {summary.outside} file(s) of other reports or periods not checked" if summary.outside else ""
    print(f"{args.archive}: intact — {_archived_words(summary, scope)}; {checked} verified{others}")
    return 0


def _archived_words(summary: Summary, scope: str = "") -> str:
    """``3 archived file(s) (2 report PDFs, 1 e-mail as sent), 1 purged (…)``: what the manifest
    lists (``for`` ``scope``, the report or period verify was given)."""
    kinds = [
        f"{count} {word if count == 1 else plural}"
        for count, word, plural in (
            (summary.reports, "report PDF", "report PDFs"),
            (summary.messages, "e-mail as sent", "e-mails as sent"),
        )
        if count
    ]
    words = f"{summary.files} archived file(s)" + (f" for {scope}" if scope else "")
    words += f" ({', '.join(kinds)})" if kinds else ""
    if summary.purged:
        words += f", {summary.purged} purged (their SHA-256 kept in the manifest)"
    return words


def _one_report(configs: list[Config], args: argparse.Namespace) -> Config:
    """The report ``resolve`` settles: the only one in CONFIG, or the one --report names."""
    if args.report is not None:
        configs = [c for c in configs if c.report.id == args.report]
        if not configs:
            raise UsageError(f"--report {args.report}: no such report in {args.config}")
    if len(configs) > 1:
        names = ", ".join(c.report.id for c in configs)
        raise UsageError(f"{args.config} holds {len(configs)} reports ({names}): name one with --report")
    return configs[0]


def _not_in_review(config: Config, period: str, recipient: str, state: str) -> str:
    hint = {
        "sent": f"to send it again: reporter run {config.file} --period {period} --force "
        f"--reason TEXT --recipient {recipient}",
        "failed": f"the next 'reporter run {config.file} --period {period}' retries it",
    }.get(state, "")
    return f"{config.report.id} {period} {recipient}: {state}, not in review; {hint}"


def _no_delivery(config: Config, ledger: Any, args: argparse.Namespace, period: str, recipient: str) -> str:
    """``resolve``'s error for a recipient without a delivery of the period: with the commands
    that settle its alert messages in review, if it has some (the address may only get alerts)."""
    from reporter.delivery.alerting import resolve_command
    from reporter.run.alerts import in_review

    shown = config.model_copy(update={"run_output": _output_shown(config, args.output)})
    alerts = [f"'{resolve_command(shown, key, '--sent')}'" for key, _ in in_review(ledger, config, recipient)]
    said = f"{config.report.id} {period}: no delivery to {recipient} in the ledger"
    return said + (
        f"; its alert messages in review are settled with --alert: {', '.join(alerts)}" if alerts else ""
    )


def _resolve(args: argparse.Namespace) -> int:
    """``reporter resolve``: a delivery of the report in review, or (``--alert RULE``) a message of
    one of its alert rules (``reporter.run.alerts.resolve_alert``)."""
    from reporter.render.texts import load_checked

    clock = now()
    config = _one_report(load_checked(args.config), args)
    if args.alert is not None:
        from reporter.run.alerts import resolve_alert

        return resolve_alert(config, args, clock, print)
    return _resolve_report(config, args, clock)


def _resolve_report(config: Config, args: argparse.Namespace, clock: dt.datetime) -> int:
    from reporter.delivery.ledger import Ledger
    from reporter.delivery.once import Key, settle_by_hand, standing
    from reporter.errors import RunError
    from reporter.run.pipeline import run_report
    from reporter.run.stages import output_root, resolve_period

    report, recipient = config.report.id, args.recipient.lower()
    period = resolve_period(config, args.period, clock).label
    root = output_root(config, args.output)
    if config.delivery.ledger is None and not (root / "ledger.sqlite").is_file():
        raise UsageError(f"no ledger in {root} (ledger.sqlite): nothing was sent from there; see --output")
    wait = config.delivery.ledger_lock_timeout
    with Ledger(config.ledger_url(root), lock_timeout=wait) as ledger:
        from reporter.delivery.journal import journal_path, reconcile

        for entry in reconcile(ledger, root, report, clock):  # what a lost ledger could not record
            if (entry["period"], str(entry["recipient"]).lower()) == (period, recipient):
                print(
                    f"{report} {period} {recipient}: recorded as {entry['state']} (v{entry['version']}) "
                    f"from {journal_path(root)}, noted when the ledger was lost; nothing was sent"
                )
                return 0
        found = standing(ledger, Key(report, period, recipient), clock)
        latest = found.latest
        if latest is None:
            raise UsageError(_no_delivery(config, ledger, args, period, recipient))
        if found.busy:
            raise UsageError(
                f"{report} {period} {recipient}: being sent by run {found.owner} right now; wait for it"
            )
        if not found.open:
            raise UsageError(_not_in_review(config, period, recipient, latest.state))
        if args.sent:
            note = f"marked as delivered by 'reporter resolve --sent' at {clock:%Y-%m-%d %H:%M} UTC"
        else:
            try:
                _check_recipients([config], [recipient])
            except UsageError:
                raise UsageError(
                    f"{report} {period} {recipient}: {args.config} no longer delivers to this address: "
                    "cannot re-send it (--sent records it as delivered)"
                ) from None
            note = f"to be re-sent by 'reporter resolve --resend' at {clock:%Y-%m-%d %H:%M} UTC"
        settle_by_hand(
            ledger, Key(report, period, recipient), latest.version, clock, sent=args.sent, note=note
        )
        if args.sent:
            print(f"{report} {period} {recipient}: recorded as sent (v{latest.version}); nothing was sent")
            return 0
    try:
        outcome = run_report(config, period=period, now=clock, output=args.output, recipients=[recipient])
    except RunError as exc:
        print(f"reporter: FAILED: {exc}", file=sys.stderr)
        return 1
    (done,) = [d for d in outcome.deliveries if d.recipient.lower() == recipient]
    if done.state != "sent":
        print(f"{report} {period} {recipient}: {done.state}: {done.error}", file=sys.stderr)
        return 1
    print(f"{report} {period} {recipient}: re-sent with the same Message-ID {done.message_id}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from reporter.run.reproduce import reproduce

    _archived_as_listed(args.pdf)
    allowed = [name.strip() for given in args.allow_sql_sources for name in given.split(",") if name.strip()]
    done = reproduce(args.pdf, args.output, data=args.data, allow_sql=allowed)
    if done.changed_sources:
        print(f"data changed since the archive: {', '.join(done.changed_sources)}", file=sys.stderr)
    if done.identical:
        print(f"{done.path}: byte-identical to {args.pdf}")
        return 0
    if done.changed_fields:
        from reporter.run.reproduce import SHOWN_FIELDS

        count = len(done.changed_fields)
        print(f"results.json: {count} field(s) changed since the archive (old → new):", file=sys.stderr)
        for name, old, new in done.changed_fields[:SHOWN_FIELDS]:
            print(f"  {name}: {old} → {new}", file=sys.stderr)
        if count > SHOWN_FIELDS:
            print(f"  … and {count - SHOWN_FIELDS} more", file=sys.stderr)
    elif not done.changed_sources:
        # Nothing the report reads or shows moved: say where else the difference can come from.
        print(
            "no data file and no number changed since the archive: the PDF itself differs (altered "
            "after it was archived, or rendered by other versions of reporter or its libraries, "
            "named in its provenance.json); 'reporter verify ARCHIVE_DIR' checks the archived copy",
            file=sys.stderr,
        )
    print(f"{done.path}: DIFFERS from {args.pdf}", file=sys.stderr)
    return 1


def _archived_as_listed(pdf: Path) -> None:
    """A PDF to reproduce must be there and, when it lies in an archive, be the file its manifest
    lists: reproducing an altered or a stray file would prove nothing about what was archived."""
    from reporter.delivery.archive import MANIFEST, MAX_PDF, listing_of, sha256
    from reporter.errors import ReporterError

    listing = listing_of(pdf)
    if not pdf.is_file():
        if listing is not None and listing.purged is not None:
            raise UsageError(
                f"{pdf}: purged under retention on {listing.purged} ('reporter archive purge'); "
                f"{MANIFEST} line {listing.number} keeps its SHA-256, {listing.sha256}: nothing to reproduce"
            )
        raise UsageError(f"{pdf}: file not found")
    if listing is None:
        return  # a PDF from elsewhere: reproduce compares with it as it is
    where = listing.archive / MANIFEST
    if listing.number is None:
        problem = f"not listed in {where}"
    elif pdf.stat().st_size > MAX_PDF or sha256(pdf.read_bytes()) != listing.sha256:
        problem = f"altered since it was archived (SHA-256 differs from {where} line {listing.number})"
    else:
        return
    raise ReporterError(f"{pdf}: {problem}: not reproduced; run 'reporter verify {listing.archive}'")


def _real_clock() -> dt.datetime:
    return dt.datetime.now(tz=dt.UTC)


def _schema(args: argparse.Namespace) -> int:
    from reporter.config.schema import dumps

    sys.stdout.write(dumps())
    return 0


def _schedule(args: argparse.Namespace, clock: Callable[[], dt.datetime]) -> int:
    from reporter.run.schedule import Scheduler

    logging.getLogger("reporter").setLevel(logging.INFO)
    scheduler = Scheduler(args.config, output=args.output, clock=clock)
    scheduler.install_signals()
    print(f"reporter schedule: watching {args.config} (SIGHUP re-reads it, SIGTERM stops)", flush=True)
    scheduler.serve()
    return 0


def _status(args: argparse.Namespace) -> int:
    import datetime as dt
    from zoneinfo import ZoneInfo

    from sqlalchemy.exc import SQLAlchemyError

    from reporter.config import load_configs
    from reporter.config.labels import Labels
    from reporter.errors import LedgerError
    from reporter.run.schedule import next_fire
    from reporter.run.stages import output_root

    clock = now()
    unreadable = 0
    for config in load_configs(args.config):
        print(f"{config.report.id} — {Labels(config).title()}")
        if config.delivery.schedule:
            fire = next_fire(config, clock)
            if fire is None:
                print(f"  schedule '{config.delivery.schedule}': never fires (it matches no date)")
            else:
                local = fire.astimezone(ZoneInfo(config.report.timezone))
                print(
                    f"  schedule '{config.delivery.schedule}' ({config.report.timezone}): next run "
                    f"{local:%Y-%m-%d %H:%M %Z} = {fire.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
                )
        else:
            print("  not scheduled (no delivery.schedule)")
        root = output_root(config, args.output)
        url = config.ledger_url(root)
        from reporter.delivery.journal import entries, journal_path

        for entry in entries(root, config.report.id):  # noted while the ledger was lost
            print(
                f"  delivery {entry['period']} to {entry['recipient']}: {entry['state']} at {entry['time']}, "
                f"not yet in the ledger (noted in {journal_path(root)}; the next run records it)"
            )
        from reporter.run.alerts import journaled

        for rule, line in journaled(root, config.report.id):  # its alert messages, likewise
            print(f"  alert {rule} {line}")
        if config.delivery.ledger is None and not (root / "ledger.sqlite").is_file():
            print(f"  no run recorded yet; {NOT_TRACKED}")
            continue
        try:
            shown = config.model_copy(update={"run_output": _output_shown(config, args.output)})
            _status_ledger(shown, url, root, args.output)
        except (SQLAlchemyError, LedgerError) as exc:  # its database down: say so, go on
            from reporter.delivery.ledger import ledger_place
            from reporter.delivery.once import ledger_trouble

            print(f"  the ledger ({ledger_place(config, root)}) cannot be read: {ledger_trouble(exc)}")
            unreadable += 1
            continue
        print(f"  {NOT_TRACKED}")
    return 1 if unreadable else 0


def _status_ledger(config: Any, url: str, root: Path, output: Path | None) -> None:
    """What ``reporter status`` says from the ledger: the last runs, the deliveries waiting for
    something, the archive steps left undone, and where to see every delivery (``audit``)."""
    from reporter.delivery.archiving import archive_dir
    from reporter.delivery.ledger import Ledger

    with Ledger(url) as ledger:
        for run in ledger.runs_of(config.report.id)[-5:]:
            said = str(run["error"] or "")
            error = f" — {said[:119]}…" if len(said) > 120 else f" — {said}" if said else ""
            state = f"{run['outcome']}{error}"
            if run["outcome"] == "running":
                state = _running_words(config, ledger, run)
            print(f"  run {run['period']} at {run['started']:%Y-%m-%d %H:%M} ({run['trigger']}): {state}")
        waiting = [d for d in ledger.all(config.report.id) if d.state in ("pending", "failed", "review")]
        for d in waiting:
            print(
                f"  delivery {d.period} to {d.recipient}: {d.state} after {d.attempts} attempt(s)"
                + (f", Message-ID {d.message_id}" if d.state == "review" else "")  # for the server's log
                + (f" — {d.last_error}" if d.last_error else "")
                + (_orphan_words(ledger, d) if d.state == "pending" else "")
            )
        from reporter.run.alerts import waiting as alerts_waiting

        rules = [r.rule_id for r in config.alerts.rules] if config.alerts is not None else []
        shown = config.model_copy(update={"run_output": _output_shown(config, output)})  # as a run names it
        for rule, line in alerts_waiting(ledger, config.report.id, rules, shown):
            print(f"  alert {rule} {line}")
        from reporter.delivery.suppression import suppressed

        for held in sorted(suppressed(ledger, config.report.id).values(), key=lambda h: h.address):
            print(f"  {held.address}: unsubscribed on {held.added:%Y-%m-%d} ({held.how}), not sent to")
        for step in ledger.archive_steps_of(config.report.id):
            if step["state"] in ("pending", "failed", "lost"):
                error = f" — {step['error']}" if step["error"] else ""
                print(f"  archive {step['period']} (run {step['run_id']}): {step['state']}{error}")
        recorded = len(ledger.all(config.report.id))
        if recorded:
            print(
                f"  {recorded} deliver{'y' if recorded == 1 else 'ies'} recorded; who received what, when "
                f"and why: reporter audit {archive_dir(config, root)}"
            )


def _orphan_words(ledger: Any, d: Any) -> str:
    """What ``reporter status`` adds to a ``pending`` delivery whose run is over or gone: nobody
    is sending it, and what the next run does with it."""
    owner = ledger.run_of(d.report, d.period, d.recipient, d.version)
    if owner is None or ledger.liveness(owner).state not in ("gone", "finished"):
        return ""
    return (
        f" — run {owner}, which claimed it, is no longer running: the server may have it; the next run "
        "puts it in review, it is not sent again"
    )


def _running_words(config: Any, ledger: Any, run: dict[str, Any]) -> str:
    """What ``reporter status`` says of a run the ledger records as running: still running (its
    process is there), interrupted (its process is gone: what it delivered, and the command that
    finishes its work), or, on another host, running as far as this host can tell."""
    live = ledger.liveness(int(run["id"]))
    again = config.command("run", "--period", str(run["period"]))
    if live.state == "alive":
        return f"running ({live.who})"
    if live.state == "unknown" and live.host is None:
        return (
            "running, as far as the ledger says (it was recorded without its process, which cannot be "
            f"checked); if no run is under way, run '{again}' to finish it (nothing is sent twice)"
        )
    if live.state == "unknown":
        return (
            f"running on host {live.host} (process {live.pid}), as far as the ledger says: this host "
            f"cannot check that process; if it was killed or host {live.host} stopped, run '{again}' "
            "to finish it (nothing is sent twice)"
        )
    if live.state == "finished":  # it ended between the two reads
        return "finished just now (run reporter status again)"
    counts = ledger.deliveries_of_run(int(run["id"]))
    said = {
        "sent": "sent",
        "pending": "unconfirmed (the server may have it: the next run puts it in review, never re-sends it)",
        "failed": "failed (the next run sends it again)",
        "review": "in review (settle it with reporter resolve)",
    }
    done = [f"{counts[state]} {words}" for state, words in said.items() if counts.get(state)]
    deliveries = f"its deliveries: {', '.join(done)}" if done else "it had delivered nothing"
    return (
        f"interrupted — {live.who} is gone (killed, or the machine stopped); {deliveries}; "
        f"run '{again}' again to finish (no one gets the report twice)"
    )


def _release(args: argparse.Namespace) -> int:
    from reporter.delivery.ledger import Ledger
    from reporter.render.texts import load_checked
    from reporter.run.stages import output_root

    config = _one_report(load_checked(args.config), args)
    root = output_root(config, args.output)
    if config.delivery.ledger is None and not (root / "ledger.sqlite").is_file():
        raise UsageError(f"no ledger in {root} (ledger.sqlite): no report id is bound there; see --output")
    with Ledger(config.ledger_url(root)) as ledger:
        before = ledger.release_report(config.report.id, config.file, now())
    owner, report = config.file.resolve(), config.report.id
    if before is None:
        print(f"{report}: now belongs to {owner} (no file held it)")
    elif before == str(owner):
        print(f"{report}: already belongs to {owner}")
    else:
        print(f"{report}: now belongs to {owner}; {before} may no longer run it on this ledger")
    return 0


def _reports_of(args: argparse.Namespace) -> list[Config]:
    """The reports of CONFIG that ``unsubscribe`` and ``subscribe`` act on (``--report``: one)."""
    from reporter.render.texts import load_checked

    configs = [c for c in load_checked(args.config) if c.delivery.email is not None]
    if args.report is not None:
        configs = [c for c in configs if c.report.id == args.report]
        if not configs:
            raise UsageError(f"--report {args.report}: no report with e-mail delivery in {args.config}")
    if not configs:
        raise UsageError(f"{args.config}: no report with e-mail delivery (delivery.email)")
    return configs


@contextlib.contextmanager
def _ledger_of(config: Config, output: Path | None) -> Iterator[Any]:
    """The report's ledger, made when no run has made it yet (an address may unsubscribe first)."""
    from reporter.delivery.ledger import Ledger
    from reporter.run.stages import output_root

    root = output_root(config, output)
    if config.delivery.ledger is None:
        root.mkdir(parents=True, exist_ok=True)
    with Ledger(config.ledger_url(root), lock_timeout=config.delivery.ledger_lock_timeout) as ledger:
        yield ledger


def _unsubscribe(args: argparse.Namespace) -> int:
    from reporter.delivery import suppression

    if (args.address is None) == (args.from_mbox is None):
        raise UsageError("unsubscribe: give ADDRESS or --from-mbox FILE (one of them)")
    configs = _reports_of(args)
    clock = now()
    if args.address is not None:
        address = args.address.strip().lower()
        mine = [c for c in configs if address in suppression.recipients(c)]
        if not mine:
            names = ", ".join(c.report.id for c in configs)
            raise UsageError(
                f"{address}: not a recipient of {names} (delivery.email to, cc or recipients, "
                "or alerts.rules to); nothing was recorded; check the spelling"
            )
        for config in mine:
            _suppress(config, args.output, address, clock, suppression.COMMAND)
        return 0
    mbox = args.from_mbox
    if not mbox.is_file():
        raise UsageError(f"--from-mbox {mbox}: no such file")
    found = suppression.requests(mbox, configs)
    if not found and mbox.stat().st_size > 0:
        raise UsageError(
            f"--from-mbox {mbox}: no message found; the file must be an mbox (each message begins "
            "with a 'From ' line)"
        )
    for request in found:
        if request.ignored:
            print(
                f"{mbox}: {request.message_id or 'a message'} from {request.address or '?'}: "
                f"ignored ({request.ignored})"
            )
            continue
        for config in request.reports:
            how = suppression.mailed_how(request, config)
            _suppress(config, args.output, request.address, clock, how)
    done = sum(1 for r in found if not r.ignored)
    print(f"{mbox}: {len(found)} message(s), {done} unsubscribe request(s) applied")
    return 0


def _suppress(config: Config, output: Path | None, address: str, clock: dt.datetime, how: str) -> None:
    from reporter.delivery import suppression

    with _ledger_of(config, output) as ledger:
        held = suppression.unsubscribe(ledger, config.report.id, address, clock, how)
    report = config.report.id
    if held is not None:
        print(
            f"{report}: {address} already unsubscribed on {held.added:%Y-%m-%d} ({held.how}); nothing changed"
        )
        return
    undo = config.model_copy(update={"run_output": _output_shown(config, output)}).command(
        "subscribe", address
    )
    print(f"{report}: {address} unsubscribed; the next runs send it nothing (undo: {undo})")


def _output_shown(config: Config, output: Path | None) -> Path | None:
    """The output folder a printed command names (``--output``), as a run would name it."""
    from reporter.run.stages import output_root

    if output is None and config.report.output_dir is not None:
        return None
    return output_root(config, output).absolute()


def _subscribe(args: argparse.Namespace) -> int:
    from reporter.delivery import suppression

    configs = _reports_of(args)
    clock = now()
    address = args.address.strip().lower()
    lifted = 0
    for config in configs:
        with _ledger_of(config, args.output) as ledger:
            held = suppression.subscribe(ledger, config.report.id, address, clock, "reporter subscribe")
        if held is not None:
            lifted += 1
            print(
                f"{config.report.id}: {address} subscribed again (unsubscribed on {held.added:%Y-%m-%d}, "
                f"{held.how}); the next run sends to it"
            )
        elif address in suppression.recipients(config):
            print(f"{config.report.id}: {address} is not unsubscribed; nothing changed")
    if not lifted and not any(address in suppression.recipients(c) for c in configs):
        raise UsageError(
            f"{address}: not unsubscribed from, nor a recipient of, "
            f"{', '.join(c.report.id for c in configs)}; check the spelling"
        )
    return 0


def _archive(args: argparse.Namespace, clock: dt.datetime) -> int:
    """``reporter archive purge``: each report's archive (CONFIG), or one archive folder, at
    ``clock`` (the clock given to ``main``, else ``now()``)."""
    from reporter.delivery.archive import MANIFEST

    target: Path = args.target
    if target.is_dir() and (target / MANIFEST).is_file():
        return _purge_folder(args, clock)
    if args.keep or args.hold or args.ledger or args.no_ledger:
        raise UsageError(
            f"{target}: --keep, --hold, --ledger and --no-ledger are for an archive folder (one holding "
            f"{MANIFEST}); a report's delivery.archive.retention and legal_hold say them"
        )
    from reporter.delivery.archiving import archive_dir, archive_key
    from reporter.render.texts import load_checked
    from reporter.run.stages import output_root

    for config in load_checked(target):
        retention = config.delivery.archive.retention
        if retention is None:
            print(f"{config.report.id}: no delivery.archive.retention: nothing purged (kept for ever)")
            continue
        root = output_root(config, args.output)
        archive = archive_dir(config, root)
        if not (archive / MANIFEST).is_file():
            print(f"{config.report.id}: nothing archived in {archive}")
            continue
        tracked = config.delivery.ledger is not None or (root / "ledger.sqlite").is_file()
        url = config.ledger_url(root) if tracked else None
        _purge(
            archive,
            retention.keep,
            set(config.delivery.archive.legal_hold),
            url,
            args,
            clock,
            report=config.report.id,
            key=archive_key(None),
        )
    return 0


def _purge_folder(args: argparse.Namespace, clock: dt.datetime) -> int:
    from reporter.delivery.archiving import archive_key
    from reporter.delivery.ledger import default_url

    archive: Path = args.target
    if not args.keep:
        raise UsageError(
            f"{archive}: give the retention with --keep (e.g. --keep 7y), or name the report's CONFIG "
            "(its delivery.archive.retention)"
        )
    if args.ledger and args.no_ledger:
        raise UsageError("--ledger and --no-ledger: choose one")
    url = _ledger_url(args.ledger) if args.ledger else None
    beside = archive.resolve().parent / "ledger.sqlite"
    if url is None and not args.no_ledger:
        if not beside.is_file():
            raise UsageError(
                f"no ledger beside {archive} ({beside}): pass --ledger (the ledger that records the "
                "archive's manifest), or --no-ledger for an archive kept without one"
            )
        url = default_url(beside.parent)
    from reporter.periods import span

    for hold in args.hold:
        try:
            span(hold)
        except ValueError as exc:
            raise UsageError(f"--hold {hold}: {exc}") from None
    _purge(archive, args.keep, set(args.hold), url, args, clock, report=None, key=archive_key(None))
    return 0


def _purge(
    archive: Path,
    keep: str,
    holds: set[str],
    url: str | None,
    args: argparse.Namespace,
    clock: dt.datetime,
    *,
    report: str | None,
    key: str | None,
) -> None:
    from reporter.delivery.archive import ArchiveError, ForeignArchive
    from reporter.delivery.ledger import Ledger
    from reporter.delivery.retention import purge
    from reporter.errors import ReporterError
    from reporter.periods import kept_since

    try:
        before = kept_since(keep, clock)
    except ValueError as exc:
        raise UsageError(f"--keep: {exc}, e.g. 7y") from None
    with contextlib.ExitStack() as stack:
        ledger = stack.enter_context(Ledger(url)) if url else None
        try:
            done = purge(
                archive,
                before=before,
                now=clock,
                keep=keep,
                report=report,
                holds=holds,
                ledger=ledger,
                key=key,
                dry_run=args.dry_run,
            )
        except ForeignArchive as exc:
            raise UsageError(
                f"{archive}: {exc}; nothing was purged: pass the archive's own ledger with --ledger"
            ) from None
        except ArchiveError as exc:
            raise ReporterError(f"{exc}; nothing was purged") from None
    verb = "would purge" if args.dry_run else "purged"
    for entry in done.purged:
        print(f"{archive}: {verb} {entry['path']} (archived {str(entry['time'])[:10]}, kept {keep})")
    for entry in done.held:
        print(
            f"{archive}: {entry['path']}: {_hold_words(entry)}: not purged "
            f"(archived {str(entry['time'])[:10]})"
        )
    after = (
        ""
        if args.dry_run
        else "; the manifest keeps their SHA-256, and reporter verify accepts their absence"
    )
    print(
        f"{archive}: {len(done.purged)} file(s) {'to purge' if args.dry_run else verb}, "
        f"{len(done.held)} held, {done.kept} within "
        f"the retention ({keep}){after if done.purged else ''}"
    )


def _hold_words(entry: dict[str, Any]) -> str:
    """``legal hold on 2025-03``, or ``legal hold on 2025-Q1 (holds 2025-03)`` for a wider hold."""
    if entry["hold"] == entry["period"]:
        return f"legal hold on {entry['hold']}"
    return f"legal hold on {entry['hold']} (holds {entry['period']})"


NOT_TRACKED = "runs with --no-send are not tracked (they send nothing and leave no ledger entry)"


# Every command but ``schedule`` and ``archive`` (which also take the clock): its handler.
_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": _validate,
    "run": _run,
    "preview": _preview,
    "verify": _verify,
    "audit": _audit,
    "status": _status,
    "reproduce": _reproduce,
    "schema": _schema,
    "init": _init,
    "resolve": _resolve,
    "release": _release,
    "checkin": _checkin,
    "unsubscribe": _unsubscribe,
    "subscribe": _subscribe,
}


def _alerts(args: argparse.Namespace, clock: Callable[[], dt.datetime] | None = None) -> int:
    from reporter.run import alerts

    if args.alerts_command is None:
        raise UsageError("say what to do: reporter alerts test CONFIG | status | snooze RULE --until DATE")
    return alerts.command(args, clock() if clock is not None else now(), print)
