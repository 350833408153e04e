# ruff: noqa: E501  (the expected messages are long lines, kept whole to be read as printed)
"""Hostile inputs, as someone who may edit the YAML, its template folder and its data would try
them: each pinned to its exit code and exact message, with nothing written outside the output
folder, no secret in any output file, stream, email or ledger, and no traceback.

Every case runs the real CLI (``reporter.cli.main``) in a fresh folder, with a real SMTP server
on loopback (tests/smtp_server.py) named in the configuration, and with
``SMTP_PASSWORD=s3cr3t-MARKER`` in the environment.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporter.cli import main
from reporter.config.loader import load_yaml
from reporter.errors import ConfigError
from reporter.formulas import FormulaSyntaxError, parse
from tests.conftest import write_csv
from tests.smtp_server import Server

MARKER = "s3cr3t-MARKER"
FILE_MARKER = "FILE-CONTENT-MARKER"  # in files the YAML names: never quoted by a message
ROOT = Path(__file__).resolve().parent.parent

BASE = """\
report:
  id: sec
  title: Sales
  timezone: UTC
sources:
  sales: {type: csv, path: sales.csv, date_column: date}
metrics:
  revenue: {source: sales, agg: sum, column: amount}
  orders: {source: sales, agg: count}
kpis:
  revenue: {formula: revenue, format: currency}
  orders: {formula: orders}
objectives:
  - id: grow
    title: Grow
    kpi: revenue
    target: {value: 100}
    owner: Boss
    due: 2026-12-31
    actions: [{when: always, do: "Call {{ period.label }}"}]
delivery:
  email:
    from: Reports <reports@acme.test>
    to: [boss@acme.test]
    subject: "Sales {{ period.label }}"
    smtp: {host: 127.0.0.1, port: PORT, security: none}
"""
# line numbers of BASE, for the expected messages
L_TITLE, L_SALES, L_REVENUE, L_ORDERS_KPI, L_TARGET, L_DO, L_FROM, L_SUBJECT = 3, 6, 8, 12, 17, 20, 23, 25

ROWS = [
    ["2026-08-03", 120, "North"],
    ["2026-09-10", 80, "South"],
    ["2026-10-01", 50, "North"],
    ["2026-10-15", 70, "South"],
    ["2026-10-31", 30, "North"],
]

RUN = ["run", "report.yaml", "--period", "2026-10", "--output", "out"]
VALIDATE = ["validate", "report.yaml"]
F = "report.yaml"


def replace(old: str, new: str) -> Callable[[str], str]:
    def change(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return change


@dataclass
class Attack:
    argv: list[str]
    code: int
    err: list[str]  # stderr lines after T replaced the test's folder; exact
    yaml: Callable[[str], str] = lambda text: text
    setup: Callable[[Path], None] = lambda work: None
    env: dict[str, str] = field(default_factory=dict)
    out: list[str] | None = None  # exact stdout lines, when pinned
    canaries: tuple[str, ...] = ()  # paths (relative to the test folder) that must not exist
    quick: float | None = None  # seconds the case must finish within
    sent: int = 0  # messages the SMTP server receives
    check: Callable[[Path], None] = lambda work: None  # more about what was written


def custom_template(body: str, extra: Callable[[Path], None] = lambda folder: None) -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        folder = work / "tpl"
        folder.mkdir()
        (folder / "report.html").write_text(body, encoding="utf-8")
        extra(folder)

    return setup


def with_template(text: str) -> str:
    return replace("  timezone: UTC\n", "  timezone: UTC\n  template: ./tpl\n")(text)


def cover(expr: str) -> str:
    return '{% extends "default:report.html" %}{% block cover %}' + expr + "{% endblock %}"


def do(template: str) -> Callable[[str], str]:
    return replace('do: "Call {{ period.label }}"', f"do: {_yaml_str(template)}")


def _yaml_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def data(
    rows: list[list[object]], header: tuple[str, ...] = ("date", "amount", "region")
) -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        write_csv(work / "sales.csv", header, rows)

    return setup


def metric(line: str) -> Callable[[str], str]:
    return replace(
        "  orders: {source: sales, agg: count}\n", f"  orders: {{source: sales, agg: count}}\n  {line}\n"
    )


FAIL_RUN = "reporter: FAILED: "
NOTHING = ["1 error: nothing was run or sent."]
# reproduce, when a PDF differs though neither its data nor its numbers do
REPRODUCE_NOTHING_MOVED = (
    "no data file and no number changed since the archive: the PDF itself differs (altered "
    "after it was archived, or rendered by other versions of reporter or its libraries, "
    "named in its provenance.json); 'reporter verify ARCHIVE_DIR' checks the archived copy"
)


def validation(line: int, col: int, key: str, message: str) -> list[str]:
    return [f"{F}:{line}:{col}: {key}: {message}", *NOTHING]


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def xlsx(path: Path, cells: dict[str, object], *, cached: bool = True) -> None:
    """A real workbook (openpyxl). openpyxl stores formulas without a cached value, as a
    generator that never ran Excel would; ``cached`` writes the values instead."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["date", "amount", "region"])
    sheet.append(["2026-10-01", 5, "North"])
    for ref, value in cells.items():
        sheet[ref] = value
    book.save(path)


def excel_source(work: Path, cached: bool) -> None:
    cells = {"B3": 7 if cached else "=B2*2", "A3": "2026-10-02", "C3": "South"}
    xlsx(work / "sales.xlsx", cells)


def to_excel(text: str) -> str:
    return text.replace(
        "{type: csv, path: sales.csv, date_column: date}",
        "{type: excel, path: sales.xlsx, date_column: date}",
    )


def symlink_passwd(folder: Path) -> None:
    (folder / "passwd").symlink_to("/etc/passwd")


def outside_file(work: Path) -> None:
    (work.parent / "outside").mkdir(exist_ok=True)
    (work.parent / "outside" / "secret.txt").write_text("TOP-SECRET-OUTSIDE\n")


def png(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), "red").save(path, "PNG")


CERT_HINT = "name a PEM file of the CA certificates to trust, relative to the configuration's folder"
ENV_HINT = (
    "write the value itself (write $${ for a literal ${); databases, the ledger, SMTP logins and the "
    "Dask scheduler are named with 'connection: NAME', which the operator defines"
)
ENV_MSG = "${SMTP_PASSWORD}: a report reads no environment variable; " + ENV_HINT
HEADER_HINT = "write it on one line, with no control or separator characters"
BIND_HINT = "validate runs each expression over the source's first rows; fix the expression or the data"
SANDBOX = "refused by the template sandbox"
REPORT_NAMES = (
    "report.id, report.title, report.company, report.locale, report.currency, report.timezone, "
    "report.grain, report.fiscal_year_start, report.template, report.output_dir, report.logo, report.url"
)
ACTION_NAMES = "an action may use " + REPORT_NAMES + ", period.label"
SUBJECT_NAMES = "the subject may use " + REPORT_NAMES + ", period.label, period.code"

ATTACKS: dict[str, Attack] = {
    # ---- 1. templates are code --------------------------------------------------------------
    "template: cycler.__init__.__globals__ popen": Attack(
        RUN,
        1,
        [
            FAIL_RUN + "report template: cannot render: " + SANDBOX + ": access to attribute '__init__' of "
            "'StrictUndefined' object is unsafe."
        ],
        yaml=with_template,
        setup=custom_template(cover("{{ cycler.__init__.__globals__.os.popen('id').read() }}")),
    ),
    "template: self.__init__.__globals__": Attack(
        RUN,
        1,
        [
            FAIL_RUN + "report template: cannot render: " + SANDBOX + ": access to attribute '__init__' of "
            "'TemplateReference' object is unsafe."
        ],
        yaml=with_template,
        setup=custom_template(cover("{{ self.__init__.__globals__ }}")),
    ),
    "template: include of a symlink to /etc/passwd": Attack(
        RUN,
        1,
        [
            FAIL_RUN
            + "report template: cannot render: "
            + SANDBOX
            + ": template 'passwd' leads outside its folder (tpl)"
        ],
        yaml=with_template,
        setup=custom_template(cover('{% include "passwd" %}'), symlink_passwd),
    ),
    "template: include ../outside/secret.txt": Attack(
        RUN,
        1,
        [FAIL_RUN + "report template: cannot render: ../outside/secret.txt"],
        yaml=with_template,
        setup=lambda work: (
            outside_file(work),
            custom_template(cover('{% include "../outside/secret.txt" %}'))(work),
        ),
    ),
    "template: report.html itself a symlink outside": Attack(
        RUN,
        1,
        [
            FAIL_RUN
            + "template report.html: refused by the template sandbox: template 'report.html' leads outside its folder (tpl)"
        ],
        yaml=with_template,
        setup=lambda work: (
            outside_file(work),
            (work / "tpl").mkdir(),
            (work / "tpl" / "report.html").symlink_to(work.parent / "outside" / "secret.txt"),
        ),
    ),
    "template: default: prefix cannot climb": Attack(
        RUN,
        1,
        [FAIL_RUN + "report template: cannot render: default:../../../etc/passwd"],
        yaml=with_template,
        setup=custom_template('{% include "default:../../../etc/passwd" %}'),
    ),
    # a text of the YAML that is a template (an action's do, the subject) is rendered at
    # validation in the run's sandbox, against the run's context: refused before anything runs
    "do: model_validate(...).output_dir.read_text()": Attack(
        RUN,
        2,
        validation(
            L_DO,
            34,
            "objectives[0].actions[0].do",
            "unknown name 'report.model_validate'; " + ACTION_NAMES,
        ),
        yaml=do(
            "{{ report.model_validate({'id':'x','title':'t','output_dir':'/etc/hostname'}).output_dir.read_text() }}"
        ),
    ),
    "do: 'x'*4000000000": Attack(
        RUN,
        2,
        validation(
            L_DO,
            34,
            "objectives[0].actions[0].do",
            SANDBOX
            + ": a repeated value of 4,000,000,000 items is larger than the limit of 1,000,000; "
            + ACTION_NAMES,
        ),
        yaml=do("{{ 'x'*4000000000 }}"),
        quick=20,
    ),
    "do: nested range(99999)": Attack(
        RUN,
        2,
        validation(
            L_DO,
            34,
            "objectives[0].actions[0].do",
            SANDBOX + ": the template loops more than 2,000,000 times; " + ACTION_NAMES,
        ),
        yaml=do("{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}"),
        quick=20,
    ),
    "do: loops with no call stopped by the time limit": Attack(
        RUN,
        2,
        validation(
            L_DO,
            34,
            "objectives[0].actions[0].do",
            "rendering took longer than 1 s and was stopped (set REPORTER_RENDER_TIMEOUT to allow more); "
            + ACTION_NAMES,
        ),
        yaml=do(
            "{% set r = [1]*1000 %}{% for a in r %}{% for b in r %}{% for c in r %}{% endfor %}{% endfor %}{% endfor %}"
        ),
        env={"REPORTER_RENDER_TIMEOUT": "1"},
        quick=20,
    ),
    "subject: format width 999999999": Attack(
        RUN,
        2,
        validation(
            L_SUBJECT,
            14,
            "delivery.email.subject",
            SANDBOX + ": a format width of 999999999 is larger than the limit of 1,000,000; " + SUBJECT_NAMES,
        ),
        yaml=replace('subject: "Sales {{ period.label }}"', "subject: \"{{ '%999999999s' % 'x' }}\""),
    ),
    "subject: ''.__class__.__mro__": Attack(
        RUN,
        2,
        validation(
            L_SUBJECT,
            14,
            "delivery.email.subject",
            SANDBOX + ": access to attribute '__class__' of 'str' object is unsafe; " + SUBJECT_NAMES,
        ),
        yaml=replace('subject: "Sales {{ period.label }}"', "subject: \"{{ ''.__class__.__mro__ }}\""),
    ),
    "do: a list method that changes data": Attack(
        RUN,
        2,
        validation(
            L_DO,
            34,
            "objectives[0].actions[0].do",
            SANDBOX + ": access to attribute 'append' of 'list' object is unsafe; " + ACTION_NAMES,
        ),
        yaml=do("{{ [1].append(2) }}"),
    ),
    "do: cycler.__init__.__globals__ (cycler is not there)": Attack(
        VALIDATE,
        2,
        validation(L_DO, 34, "objectives[0].actions[0].do", "unknown name 'cycler'; " + ACTION_NAMES),
        yaml=do("{{ cycler.__init__.__globals__.os.environ }}"),
    ),
    # ---- 2. secrets only where secrets belong -------------------------------------------------
    "title with ${SMTP_PASSWORD}": Attack(
        VALIDATE,
        2,
        validation(L_TITLE, 10, "report.title", ENV_MSG),
        yaml=replace("title: Sales", "title: Sales ${SMTP_PASSWORD}"),
    ),
    "kpi label with ${SMTP_PASSWORD}": Attack(
        VALIDATE,
        2,
        validation(L_ORDERS_KPI, 36, "kpis.orders.label", ENV_MSG),
        yaml=replace("orders: {formula: orders}", "orders: {formula: orders, label: 'n ${SMTP_PASSWORD}'}"),
    ),
    "from with ${SMTP_PASSWORD}": Attack(
        VALIDATE,
        2,
        validation(L_FROM, 11, "delivery.email.from", ENV_MSG),
        yaml=replace("from: Reports <reports@acme.test>", "from: ${SMTP_PASSWORD}@acme.test"),
    ),
    "subject with ${SMTP_PASSWORD}": Attack(
        VALIDATE,
        2,
        validation(L_SUBJECT, 14, "delivery.email.subject", ENV_MSG),
        yaml=replace('subject: "Sales {{ period.label }}"', 'subject: "Sales ${SMTP_PASSWORD}"'),
    ),
    "where with ${SMTP_PASSWORD}": Attack(
        VALIDATE,
        2,
        validation(10, 45, "metrics.north.where", ENV_MSG),
        yaml=metric("north: {source: sales, agg: count, where: \"region = '${SMTP_PASSWORD}'\"}"),
    ),
    "SQL connection with ?pw=SECRET (a whole run, sent)": Attack(
        RUN,
        0,
        [],
        yaml=replace(
            "  sales: {type: csv, path: sales.csv, date_column: date}\n",
            "  sales: {type: csv, path: sales.csv, date_column: date}\n"
            "  db: {type: sql, connection: db,\n"
            "       query: \"select '2026-10-31' as d, 1 as n\", date_column: d}\n",
        ),
        env={"REPORTER_CONNECTION_DB": f"sqlite:///db.sqlite?pw={MARKER}"},
        setup=lambda work: __import__("sqlite3").connect(work / "db.sqlite").close(),
        sent=1,
        check=lambda work: _location_redacted(work / "out" / "sec" / "2026-10" / "results.json"),
        out=[
            "sec 2026-10: done — out/sec/2026-10/results.json, out/sec/2026-10/sec_2026-10.pdf, "
            "out/sec/2026-10/email.eml, T/work/out/archive/sec/2026-10/sec_2026-10_v1.pdf, "
            "T/work/out/archive/sec/2026-10/messages/sec_2026-10_v1_boss@acme.test.eml",
            "  boss@acme.test: sent",
        ],
    ),
    "logo: /proc/self/environ": Attack(
        VALIDATE,
        2,
        validation(
            5,
            9,
            "report.logo",
            "/proc/self/environ is a system file, not a regular file; name a PNG, JPEG, GIF, WebP or SVG file",
        ),
        yaml=replace("  timezone: UTC\n", "  timezone: UTC\n  logo: /proc/self/environ\n"),
    ),
    "logo missing": Attack(
        VALIDATE,
        2,
        validation(
            5, 9, "report.logo", "file not found: T/work/nope.png; name a PNG, JPEG, GIF, WebP or SVG file"
        ),
        yaml=replace("  timezone: UTC\n", "  timezone: UTC\n  logo: nope.png\n"),
    ),
    "logo a folder": Attack(
        VALIDATE,
        2,
        validation(
            5, 9, "report.logo", "T/work/img is a folder, not a file; name a PNG, JPEG, GIF, WebP or SVG file"
        ),
        yaml=replace("  timezone: UTC\n", "  timezone: UTC\n  logo: img\n"),
        setup=lambda work: (work / "img").mkdir(),
    ),
    "logo not an image (a text file named .png)": Attack(
        VALIDATE,
        2,
        validation(
            5,
            9,
            "report.logo",
            "fake.png is not an image (PNG, JPEG, GIF, WebP or SVG, judged by its content); name an image file",
        ),
        yaml=replace("  timezone: UTC\n", "  timezone: UTC\n  logo: fake.png\n"),
        setup=lambda work: (work / "fake.png").write_text(f"PASSWORD={FILE_MARKER}\n"),
    ),
    "logo outside the configuration's folder": Attack(
        VALIDATE,
        2,
        validation(
            5,
            9,
            "report.logo",
            "../outside/logo.png is outside the configuration's folder and the template's; "
            "put the logo next to the configuration file or in the template folder, or let the operator "
            "allow its folder with --allow-dir DIR (or REPORTER_ALLOW_DIRS)",
        ),
        yaml=replace("  timezone: UTC\n", "  timezone: UTC\n  logo: ../outside/logo.png\n"),
        setup=lambda work: png(work.parent / "outside" / "logo.png"),
    ),
    "source: /proc/self/environ": Attack(
        VALIDATE,
        2,
        validation(
            L_SALES,
            28,
            "sources.sales.path",
            "/proc/self/environ is outside the configuration's folder and the output folder; put it in "
            "T/work or the output folder, or let the operator allow its folder with --allow-dir DIR (or "
            "REPORTER_ALLOW_DIRS)",
        ),
        yaml=replace("path: sales.csv", "path: /proc/self/environ"),
    ),
    "ca_file missing": Attack(
        VALIDATE,
        2,
        validation(26, 71, "delivery.email.smtp.ca_file", "file not found: T/work/ca.pem; " + CERT_HINT),
        yaml=replace("security: none}", "security: starttls, ca_file: ca.pem}"),
    ),
    "ca_file not a certificate": Attack(
        VALIDATE,
        2,
        validation(
            26,
            71,
            "delivery.email.smtp.ca_file",
            "T/work/ca.pem holds no PEM certificate that ssl can read; " + CERT_HINT,
        ),
        yaml=replace("security: none}", "security: starttls, ca_file: ca.pem}"),
        setup=lambda work: (work / "ca.pem").write_text(f"-----BEGIN CERTIFICATE-----\n{FILE_MARKER}\n"),
    ),
    # ---- 3. reproduce (pinned in test_reproduce_* below) -------------------------------------
    # ---- 4. no traceback: validation catches what would fail at run time ---------------------
    "where: error('boom') is null": Attack(
        VALIDATE,
        2,
        [
            f"{F}:10:45: metrics.north.where: fails on the data of source 'sales': Invalid Input Error: boom; {BIND_HINT}",
            *NOTHING,
        ],
        yaml=metric("north: {source: sales, agg: count, where: \"error('boom') is null\"}"),
    ),
    "where: nextval('s')": Attack(
        VALIDATE,
        2,
        [
            f"{F}:10:45: metrics.north.where: fails on the data of source 'sales': Catalog Error: "
            f"Sequence with name s does not exist!; {BIND_HINT}",
            *NOTHING,
        ],
        yaml=metric("north: {source: sales, agg: count, where: \"nextval('s') > 0\"}"),
    ),
    "where: amount) FROM t --": Attack(
        VALIDATE,
        2,
        [
            f"{F}:10:45: metrics.north.where: comments (-- or /*) are not allowed in an expression; "
            "write the expression alone",
            *NOTHING,
        ],
        yaml=metric('north: {source: sales, agg: count, where: "amount) FROM t --"}'),
    ),
    "expr: cast(region as int)": Attack(
        VALIDATE,
        2,
        [
            f"{F}:10:42: metrics.north.expr: fails on the data of source 'sales': Conversion Error: "
            f"Could not convert string … to INT32 when casting from source column region; {BIND_HINT}",
            *NOTHING,
        ],
        yaml=metric('north: {source: sales, agg: sum, expr: "cast(region as int)"}'),
    ),
    "expr: amount::DECIMAL(2,1)": Attack(
        VALIDATE,
        2,
        [
            f"{F}:10:42: metrics.north.expr: fails on the data of source 'sales': Conversion Error: "
            f"Could not cast value 120 to DECIMAL(2,1) when casting from source column amount; {BIND_HINT}",
            *NOTHING,
        ],
        yaml=metric('north: {source: sales, agg: sum, expr: "amount::DECIMAL(2,1)"}'),
    ),
    "sum of a text column": Attack(
        VALIDATE,
        2,
        [
            f"{F}:10:44: metrics.north.column: column 'region' holds VARCHAR values, not numbers: sum "
            "needs numbers (line 2 of sales.csv is the first that is not a number); a value that is not "
            "a number (such as 12 EUR) makes the whole column text; clean the data, or use count; a word "
            "that means no value (n/a, -) can be declared: csv: {null_values: ['', 'n/a']}",
            *NOTHING,
        ],
        yaml=metric("north: {source: sales, agg: sum, column: region}"),
    ),
    "'12 EUR' in a numeric column": Attack(
        VALIDATE,
        2,
        validation(
            L_REVENUE,
            46,
            "metrics.revenue.column",
            f"column 'amount' holds VARCHAR values, not numbers: sum needs numbers (line {len(ROWS) + 2} "
            "of sales.csv is the first that is not a number); a value that is not a number (such as 12 "
            "EUR) makes the whole column text; clean the data, or use count; a word that means no value "
            "(n/a, -) can be declared: csv: {null_values: ['', 'n/a']}",
        ),
        setup=data([*ROWS, ["2026-10-20", "12 EUR", "North"]]),
    ),
    "header-only CSV": Attack(
        VALIDATE,
        2,
        [
            f"{F}:{L_SALES}:28: sources.sales.path: sales.csv has no data rows (only a header); export the "
            "data again; a report needs rows to count",
            *NOTHING,
        ],
        setup=data([]),
    ),
    "50,000-term formula": Attack(
        VALIDATE,
        2,
        [
            f"{F}:{L_ORDERS_KPI}:21: kpis.orders.formula: the formula is longer than 4000 characters; "
            "a formula uses + - * / ( ), numbers and metric or KPI names, e.g. leads / sessions",
            *NOTHING,
        ],
        yaml=replace(
            "orders: {formula: orders}", "orders: {formula: '" + " + ".join(["orders"] * 50_000) + "'}"
        ),
        quick=20,
    ),
    "1,000-term formula": Attack(
        VALIDATE,
        2,
        [
            f"{F}:{L_ORDERS_KPI}:21: kpis.orders.formula: the formula has 1000 terms, more than 200; split "
            "it into several KPIs; a formula uses + - * / ( ), numbers and metric or KPI names, e.g. leads / sessions",
            *NOTHING,
        ],
        yaml=replace("orders: {formula: orders}", "orders: {formula: '" + "+".join(["1"] * 1000) + "'}"),
    ),
    "formula: 30 nested parentheses": Attack(
        VALIDATE,
        2,
        [
            f"{F}:{L_ORDERS_KPI}:21: kpis.orders.formula: the formula nests parentheses more than 20 levels "
            "deep; a formula uses + - * / ( ), numbers and metric or KPI names, e.g. leads / sessions",
            *NOTHING,
        ],
        yaml=replace(
            "orders: {formula: orders}", "orders: {formula: '" + "(" * 30 + "orders" + ")" * 30 + "'}"
        ),
    ),
    "recursive YAML alias": Attack(
        VALIDATE,
        2,
        [
            f"{F}:27:10: an alias refers to a value that contains it (a recursive alias); write each value out",
            *NOTHING,
        ],
        yaml=lambda text: text + "quality: &q {min_rows: *q}\n",
    ),
    "100k-deep list": Attack(
        VALIDATE,
        2,
        [f"{F}:27:48: the YAML is nested more than 40 levels deep; write each value out", *NOTHING],
        yaml=lambda text: text + "funnel: " + "[" * 100_000 + "]" * 100_000 + "\n",
        quick=20,
    ),
    "billion laughs": Attack(
        VALIDATE,
        2,
        [f"{F}:28:16: more than 200,000 values once aliases are expanded; write each value out", *NOTHING],
        yaml=lambda text: text + "x-laughs:\n" + textwrap.indent(billion_laughs(), "  "),
        quick=10,
    ),
    "YAML of 2 MiB": Attack(
        VALIDATE,
        2,
        [
            f"{F}: the file is larger than 1024 KiB; a report's configuration is a few kilobytes; "
            "split it into several reports",
            *NOTHING,
        ],
        yaml=lambda text: text + "# " + "x" * (2 * 1024 * 1024) + "\n",
    ),
    "target .nan": Attack(
        VALIDATE,
        2,
        validation(
            L_TARGET,
            21,
            "objectives[0].target.value",
            "must be a finite number, got nan; write a number such as 120000",
        ),
        yaml=replace("target: {value: 100}", "target: {value: .nan}"),
    ),
    "target .inf": Attack(
        VALIDATE,
        2,
        validation(
            L_TARGET,
            21,
            "objectives[0].target.value",
            "must be a finite number, got inf; write a number such as 120000",
        ),
        yaml=replace("target: {value: 100}", "target: {value: .inf}"),
    ),
    "two addresses in from": Attack(
        VALIDATE,
        2,
        validation(
            L_FROM,
            11,
            "delivery.email.from",
            "'from' must be one address, found 2; write one sender, e.g. Reports <reports@example.com>",
        ),
        yaml=replace("from: Reports <reports@acme.test>", "from: 'a@acme.test, b@evil.test'"),
    ),
    "Excel formulas without cached values": Attack(
        VALIDATE,
        2,
        validation(
            L_SALES,
            30,
            "sources.sales.path",
            "sales.xlsx: a formula has no saved value (sheet1); open the workbook in Excel or LibreOffice and "
            "save it, so its values are stored; check the csv options (delimiter, encoding) or the file itself",
        ),
        yaml=to_excel,
        setup=lambda work: excel_source(work, cached=False),
    ),
    "Excel larger than the limit once uncompressed": Attack(
        VALIDATE,
        2,
        validation(
            L_SALES,
            30,
            "sources.sales.path",
            "sales.xlsx expands to 300 MiB, more than the 256 MiB a workbook may; check the csv options "
            "(delimiter, encoding) or the file itself",
        ),
        yaml=to_excel,
        setup=lambda work: _bomb_xlsx(work / "sales.xlsx"),
        quick=30,
    ),
    "SOURCE_DATE_EPOCH=99999999999999999999": Attack(
        RUN,
        2,
        ["reporter: error: SOURCE_DATE_EPOCH='99999999999999999999' is out of range (years 1 to 9999)"],
        env={"SOURCE_DATE_EPOCH": "99999999999999999999"},
    ),
    "--output naming a file": Attack(
        RUN,
        2,
        ["reporter: error: --output out: is a file, not a folder"],
        setup=lambda work: (work / "out").write_text("not a folder"),
    ),
    "output folder blocked by a file": Attack(
        RUN,
        1,
        ["reporter: error: cannot use out/sec/2026-10: Not a directory"],
        setup=lambda work: ((work / "out").mkdir(), (work / "out" / "sec").write_text("x")),
    ),
}

CONTROL = {
    "CR": "\\r",
    "LF": "\\n",
    "U+2028": "\\u2028",
    "NEL": "\\x85",
    "VT": "\\v",
    "FF": "\\f",
    "NUL": "\\0",
}
CONTROL_NAMES = {
    "\\u2028": "U+2028 LINE SEPARATOR",
    "\\x85": "U+0085",
    "\\v": "U+000B",
    "\\f": "U+000C",
    "\\0": "U+0000",
}
for label, escape in CONTROL.items():
    breaks = escape in ("\\r", "\\n")
    ATTACKS[f"{label} in the title"] = Attack(
        VALIDATE,
        2,
        validation(
            L_TITLE,
            10,
            "report.title",
            f"contains the control character {'U+000D' if escape == chr(92) + 'r' else 'U+000A'}; {HEADER_HINT}"
            if breaks
            else f"contains the control character {CONTROL_NAMES[escape]}; {HEADER_HINT}",
        ),
        yaml=replace("title: Sales", f'title: "Sales{escape}Bcc: x@evil.test"'),
    )
    ATTACKS[f"{label} in the subject"] = Attack(
        VALIDATE,
        2,
        validation(
            L_SUBJECT,
            14,
            "delivery.email.subject",
            "the subject contains a line break; write the subject on one line"
            if breaks
            else f"contains the control character {CONTROL_NAMES[escape]}; {HEADER_HINT}",
        ),
        yaml=replace('subject: "Sales {{ period.label }}"', f'subject: "Sales{escape}Bcc: x@evil.test"'),
    )
    ATTACKS[f"{label} in from"] = Attack(
        VALIDATE,
        2,
        validation(
            L_FROM,
            11,
            "delivery.email.from",
            "the address contains a line break; write it on one line"
            if breaks
            else f"contains the control character {CONTROL_NAMES[escape]}; {HEADER_HINT}",
        ),
        yaml=replace(
            "from: Reports <reports@acme.test>",
            f'from: "Reports <reports@acme.test>{escape}Bcc: x@evil.test"',
        ),
    )


def _location_redacted(path: Path) -> None:
    import json

    (source,) = [s for s in json.loads(path.read_text())["sources"] if s["name"] == "db"]
    assert source["location"] == "sqlite:///db.sqlite?pw=***"


def _bomb_xlsx(path: Path) -> None:
    """A valid workbook plus one member that inflates to 300 MiB (300 KiB on disk)."""
    xlsx(path, {})
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("xl/media/padding.bin", "w", force_zip64=True) as member,
    ):
        chunk = b"\0" * (1 << 20)
        for _ in range(300):
            member.write(chunk)


# ---------------------------------------------------------------------------------------------
# the harness


def _snapshot(root: Path) -> dict[Path, tuple[int, int]]:
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            out[path] = (stat.st_mtime_ns, stat.st_size)
    return out


def _texts_of(path: Path) -> list[bytes]:
    """A file's bytes, and for a PDF its text, metadata and attachments (streams are compressed)."""
    raw = path.read_bytes()
    found = [raw]
    if path.suffix == ".pdf":
        import pypdf

        reader = pypdf.PdfReader(io.BytesIO(raw))
        found.append("".join(p.extract_text() for p in reader.pages).encode())
        found.append(repr(reader.metadata).encode())
        for contents in reader.attachments.values():
            found.extend(contents)
    return found


def assert_no_secret(files: list[Path], *streams: str, messages: list[bytes] = ()) -> None:
    """No secret, and no content of a file the YAML named, in the streams, the written files
    (PDFs read back: text, metadata, attachments), the ledger or the messages received."""
    for marker in (MARKER, FILE_MARKER):
        for stream in streams:
            assert marker not in stream
        for path in files:
            for blob in _texts_of(path):
                assert marker.encode() not in blob, path
        for data in messages:
            assert marker.encode() not in data


def attack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: Attack):
    work = tmp_path / "work"
    work.mkdir()
    write_csv(work / "sales.csv", ["date", "amount", "region"], ROWS)
    with Server(tmp_path) as server:
        text = case.yaml(BASE.replace("PORT", str(server.port))).replace(
            "///DB?", f"///{work / 'db.sqlite'}?"
        )
        (work / F).write_text(text, encoding="utf-8")
        case.setup(work)
        monkeypatch.chdir(work)
        monkeypatch.setenv("SMTP_PASSWORD", MARKER)
        for key, value in case.env.items():
            monkeypatch.setenv(key, value)
        before = _snapshot(tmp_path)
        started = time.monotonic()
        code = main(case.argv)
        took = time.monotonic() - started
        captured = capsys.readouterr()
    messages = [r.data for r in server.handler.received]
    err = [line.replace(str(tmp_path), "T") for line in captured.err.splitlines()]
    out = captured.out.replace(str(tmp_path), "T")
    return code, err, out, took, before, work, messages


# SQLAlchemy warns that SQLite ignores ?pw= (the warning names the key, never its value)
IGNORED_PW = pytest.mark.filterwarnings("ignore:Query string argument")


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[IGNORED_PW] if "?pw=" in n else []) for n in ATTACKS]
)
def test_hostile_input(tmp_path, monkeypatch, capsys, name):
    case = ATTACKS[name]
    code, err, out, took, before, work, messages = attack(tmp_path, monkeypatch, capsys, case)
    if os.environ.get("SEC_DUMP"):
        with open(os.environ["SEC_DUMP"], "a") as handle:
            handle.write(repr((name, code, err)) + "\n")
    assert (code, err) == (case.code, case.err)
    assert len(messages) == case.sent
    if case.out is not None:
        assert out.splitlines() == case.out
    assert "Traceback" not in out + "\n".join(err)
    # nothing written or changed outside the output folder (the archive is in it)
    after = _snapshot(tmp_path)
    changed = [p for p, v in after.items() if before.get(p) != v]
    allowed = [work / "out"]
    assert all(any(p.is_relative_to(a) for a in allowed) for p in changed), changed
    assert_no_secret(changed, out, *err, messages=messages)
    case.check(work)
    for canary in case.canaries:
        assert not (tmp_path / canary).exists()
    if case.quick is not None:
        assert took < case.quick
    assert "uid=" not in out + "\n".join(err)
    assert "root:x:0:0" not in out + "\n".join(err)


# ---------------------------------------------------------------------------------------------
# 3. reproduce writes only into its output folder


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real PDF/A written by ``reporter run --no-send`` (YAML, results and provenance inside)."""
    work = tmp_path_factory.mktemp("archived")
    write_csv(work / "sales.csv", ["date", "amount", "region"], ROWS)
    (work / F).write_text(BASE.replace("PORT", "2525"), encoding="utf-8")
    code = main(["run", str(work / F), "--period", "2026-10", "--output", str(work / "out"), "--no-send"])
    assert code == 0
    return work / "out" / "sec" / "2026-10" / "sec_2026-10.pdf"


def craft(
    pdf: Path, dest: Path, provenance: bytes | None = None, attach: dict[str, bytes] | None = None
) -> Path:
    """``pdf`` with its provenance.json replaced and more files attached (pikepdf)."""
    import pikepdf

    with pikepdf.open(pdf) as doc:
        if provenance is not None:
            del doc.attachments["provenance.json"]
            doc.attachments["provenance.json"] = pikepdf.AttachedFileSpec(
                doc, provenance, filename="provenance.json"
            )
        for name, data in (attach or {}).items():
            doc.attachments[name] = pikepdf.AttachedFileSpec(doc, data, filename=name)
        doc.save(dest)
    return dest


def provenance_of(pdf: Path) -> dict:
    import json

    from reporter.delivery.archive import attachments_of

    return json.loads(attachments_of(pdf.read_bytes())["provenance.json"])


def reproduce_case(
    tmp_path, monkeypatch, capsys, pdf: Path, data: Path | None = None
) -> tuple[int, list[str], list[Path]]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("SMTP_PASSWORD", MARKER)
    before = _snapshot(tmp_path)
    code = main(["reproduce", str(pdf), "--output", "out", *(["--data", str(data)] if data else [])])
    captured = capsys.readouterr()
    changed = [p for p, v in _snapshot(tmp_path).items() if before.get(p) != v]
    assert all(p.is_relative_to(work / "out") for p in changed), changed
    assert "Traceback" not in captured.err + captured.out
    assert_no_secret(changed, captured.out, captured.err)
    err = [
        re.sub(r"/tmp/tmp[\w]+/", "TMP/", line.replace(str(tmp_path), "T"))
        for line in captured.err.splitlines()
    ]
    return code, err, changed


@pytest.mark.parametrize("evil", ["ABS/evil.yaml", "../../x.yaml", "../../../../../../tmp/x.yaml"])
def test_reproduce_writes_a_safe_base_name_only(tmp_path, monkeypatch, capsys, archived, evil):
    target = evil.replace("ABS", str(tmp_path / "elsewhere"))
    facts = provenance_of(archived)
    yaml_text = (archived.parents[3] / F).read_bytes()
    facts["configuration"]["file"] = target
    import json

    pdf = craft(archived, tmp_path / "evil.pdf", json.dumps(facts).encode(), {target: yaml_text})
    code, err, changed = reproduce_case(tmp_path, monkeypatch, capsys, pdf, archived.parents[3])
    # rendered again from the embedded YAML (renamed to its base name): a PDF that differs only
    # by the configuration's file name, written under out/reproduced/
    assert (code, err) == (1, [REPRODUCE_NOTHING_MOVED, "out/reproduced/evil.pdf: DIFFERS from T/evil.pdf"])
    assert changed == [tmp_path / "work" / "out" / "reproduced" / "evil.pdf"]
    assert not (tmp_path / "elsewhere").exists()
    assert not Path("/tmp/x.yaml").exists()
    assert not (tmp_path.parent / "x.yaml").exists()


MALFORMED = {
    "a list": (b"[]", "provenance.json has no configuration"),
    "the number 42": (b"42", "provenance.json has no configuration"),
    "not JSON": (b"{oops", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    "invalid UTF-8": (b"\xff\xfe{", "'utf-16-le' codec can't decode byte 0x7b in position 2: truncated data"),
    "no period": ("drop:period", "period is missing"),
    "a folder that is relative": ("folder:data", "configuration.folder is not an absolute folder"),
    "a configuration that is not attached": ("file:other.yaml", "the configuration it names is not attached"),
    "a date without zone": ("generated_at:2026-11-01T00:00:00", "generated_at has no time zone"),
    "a date that is not one": ("generated_at:yesterday", "Invalid isoformat string: 'yesterday'"),
    "sources not a list": ("sources:x", "sources is malformed"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_reproduce_refuses_malformed_provenance(tmp_path, monkeypatch, capsys, archived, name):
    import json

    change, reason = MALFORMED[name]
    if isinstance(change, bytes):
        data = change
    else:
        facts = provenance_of(archived)
        key, _, value = change.partition(":")
        if key == "drop":
            del facts[value]
        elif key in ("folder", "file"):
            facts["configuration"][key] = value
        else:
            facts[key] = value
        data = json.dumps(facts).encode()
    pdf = craft(archived, tmp_path / "bad.pdf", data)
    code, err, changed = reproduce_case(tmp_path, monkeypatch, capsys, pdf)
    assert (code, err) == (2, [f"reporter: error: T/bad.pdf: not a PDF archived by reporter ({reason})"])
    assert changed == []


def test_reproduce_validates_and_sandboxes_the_embedded_yaml(tmp_path, monkeypatch, capsys, archived):
    """The YAML inside the PDF is checked like any other: ${NAME} outside connection fields is
    refused; a hostile action is refused by the sandbox."""
    import json

    facts = provenance_of(archived)
    base = (archived.parents[3] / F).read_text()
    leaky = base.replace("title: Sales", "title: Sales ${SMTP_PASSWORD}").encode()
    pdf = craft(archived, tmp_path / "leaky.pdf", json.dumps(facts).encode(), {F: leaky})
    code, err, _ = reproduce_case(tmp_path, monkeypatch, capsys, pdf, archived.parents[3])
    assert (code, err) == (2, [f"T/leaky.pdf » {F}:3:10: report.title: {ENV_MSG}", *NOTHING])

    hostile = base.replace(
        'do: "Call {{ period.label }}"', "do: \"{{ report.model_validate({'id': 'x'}) }}\""
    ).encode()
    pdf = craft(archived, tmp_path / "hostile.pdf", json.dumps(facts).encode(), {F: hostile})
    code, err, _ = reproduce_case(tmp_path, monkeypatch, capsys, pdf, archived.parents[3])
    assert (code, err) == (
        1,
        [
            "reporter: error: objective 'grow' action 1: cannot render \"{{ report.model_validate({'id': 'x'}) }}\": "
            "'dict object' has no attribute 'model_validate'"
        ],
    )


def test_reproduce_of_a_file_that_is_not_a_pdf(tmp_path, monkeypatch, capsys):
    (tmp_path / "x.pdf").write_bytes(b"%PDF-1.7\n" + MARKER.encode())
    code, err, changed = reproduce_case(tmp_path, monkeypatch, capsys, tmp_path / "x.pdf")
    assert code == 2
    assert err[0].startswith("reporter: error: T/x.pdf: not a PDF archived by reporter (")
    assert changed == []


# ---------------------------------------------------------------------------------------------
# 4. the CLI: one line, exit 1, the traceback in a log file it names


def test_an_unexpected_exception_is_one_line_and_a_log(tmp_path, monkeypatch, capsys):
    import reporter.run.stages

    def broken(*args, **kwargs):
        raise ZeroDivisionError(f"boom with {MARKER}\nsecond line")

    monkeypatch.setattr(reporter.run.stages, "report_results", broken)
    work = tmp_path / "work"
    work.mkdir()
    write_csv(work / "sales.csv", ["date", "amount", "region"], ROWS)
    (work / F).write_text(
        BASE.replace("PORT", "2525").replace(
            "smtp: {host: 127.0.0.1, port: 2525, security: none}", "smtp: {connection: mail}"
        )
    )
    monkeypatch.chdir(work)
    monkeypatch.setenv("REPORTER_CONNECTION_MAIL", f"smtp://reporting:{MARKER}@127.0.0.1:2525")
    code = main([*RUN, "--no-send"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert len(err) == 1
    match = re.fullmatch(
        r"reporter: internal error: ZeroDivisionError: boom with \*\*\*; the traceback is in "
        r"(out/logs/reporter-\d{8}T\d{12}Z\.log)",
        err[0],
    )
    assert match, err
    log = (work / match.group(1)).read_text()
    assert "Traceback (most recent call last)" in log
    assert "in broken" in log
    assert MARKER not in log


def test_a_full_disk_is_one_line_and_exit_1(tmp_path):
    """A disk that fills while the PDF is written (RLIMIT_FSIZE: the kernel's EFBIG, as a full
    quota gives): one line, exit 1, no traceback, no partial file. Run as root, a read-only
    folder does not refuse writes, so this is how the suite makes writing fail."""
    work = tmp_path / "work"
    work.mkdir()
    write_csv(work / "sales.csv", ["date", "amount", "region"], ROWS)
    (work / F).write_text(BASE.replace("PORT", "2525"))
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
        "from reporter.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *RUN, "--no-send"],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, "SMTP_PASSWORD": MARKER},
        timeout=300,
    )
    assert (done.returncode, done.stderr.splitlines(), done.stdout) == (
        1,
        ["reporter: error: File too large"],
        "",
    )
    written = sorted(p.relative_to(work).as_posix() for p in (work / "out").rglob("*") if p.is_file())
    # the files go in together: none (no results.json without its PDF), no torn or temporary one
    assert written == []


def test_a_whole_run_with_smtp_login_leaks_the_password_nowhere(tmp_path, monkeypatch, capsys):
    """STARTTLS, login from the operator's connection, ca_file: the message arrives; the
    password is in no output file, stream, ledger row or message."""
    work = tmp_path / "work"
    work.mkdir()
    write_csv(work / "sales.csv", ["date", "amount", "region"], ROWS)
    with Server(tmp_path, tls=True, auth=("reporting", MARKER)) as server:
        smtp = f"smtp: {{connection: mail, ca_file: {server.cert}}}"
        text = BASE.replace("smtp: {host: 127.0.0.1, port: PORT, security: none}", smtp)
        text = text.replace("  email:\n", "  alerts_to: [ops@acme.test]\n  email:\n")
        (work / F).write_text(text)
        monkeypatch.chdir(work)
        monkeypatch.setenv("REPORTER_CONNECTION_MAIL", f"smtp://reporting:{MARKER}@127.0.0.1:{server.port}")
        monkeypatch.setenv("REPORTER_ALLOW_DIRS", str(Path(server.cert).parent))  # the operator's CA
        before = _snapshot(tmp_path)
        code = main(RUN)
        captured = capsys.readouterr()
        messages = [r.data for r in server.handler.received]
    assert code == 0, captured.err
    assert [r.rcpt_tos for r in server.handler.received] == [["boss@acme.test"]]
    changed = [p for p, v in _snapshot(tmp_path).items() if before.get(p) != v]
    assert any(p.name == "ledger.sqlite" for p in changed)
    assert any(p.suffix == ".pdf" for p in changed)
    assert_no_secret(changed, captured.out, captured.err, messages=messages)


# ---------------------------------------------------------------------------------------------
# fuzzing: the YAML loader and the formula parser never raise anything but their own errors

YAML_TOKENS = st.sampled_from(
    [
        "a", "b", ": ", "- ", "\n", "  ", "[", "]", "{", "}", ", ", "&x ", "*x", "&y ", "*y", "<<: ", "!!python/object:os.system ",
        "!!str ", "? ", "'", '"', "${HOME}", "$${", "#", "|", ">", "---", "...", "%YAML 1.1", "\t", "\\", "1e9999", ".nan", "~", "\x00", "\u2028",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.lists(YAML_TOKENS, max_size=80).map("".join)))
def test_fuzz_yaml_loader_never_raises(text):
    _doc, problems = load_yaml(text, "F", {"HOME": "/root"})
    for problem in problems:
        assert str(problem).startswith("F")


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(YAML_TOKENS, max_size=60).map("".join))
def test_fuzz_load_config_gives_config_errors_only(tmp_path_factory, text):
    from reporter.config import load_config

    path = tmp_path_factory.mktemp("fuzz") / "r.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(path, env={"HOME": "/root"})


FORMULA_TOKENS = st.sampled_from(
    ["a", "b", "leads", "1", "0", "2.5", "1e308", "+", "-", "*", "/", "**", "%", "(", ")", ",", " ", "min", "max", "abs",
     "round", "coalesce", "__import__", "lambda", "[", "]", ".", "'x'", "if", "else", "\x00", "=", ":", "@"]
)  # fmt: skip


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.one_of(st.text(max_size=200), st.lists(FORMULA_TOKENS, max_size=120).map("".join)))
def test_fuzz_formula_parser_never_raises(text):
    try:
        formula = parse(text)
    except FormulaSyntaxError:
        return
    values = dict.fromkeys(formula.names, 3.0)
    result = formula.evaluate(values)
    assert result is None or isinstance(result, float)


def test_deep_formula_and_yaml_fail_fast():
    started = time.monotonic()
    with pytest.raises(FormulaSyntaxError, match="nested too deeply"):
        parse("-" * 3000 + "a")
    doc, problems = load_yaml("x: " + "[" * 100_000 + "]" * 100_000, "F", {})
    assert doc.data is None
    assert [str(p) for p in problems] == [
        "F:1:43: the YAML is nested more than 40 levels deep; write each value out"
    ]
    assert time.monotonic() - started < 10


# ---------------------------------------------------------------------------------------------
# what the walls still let through


def test_redaction_masks_remembered_values_and_url_secrets():
    from reporter.security import redact, remember_secret, remember_url

    remember_secret("abc")  # too short to mask: it would mask ordinary words
    remember_secret("hunter2-MARKER")
    remember_url("postgresql://u:pa55-word@db/x?sslmode=require&token=tok-123&key=k-456")
    text = (
        "login hunter2-MARKER failed on postgresql://u:pa55-word@db/x?sslmode=require&token=tok-123&key=k-456; "
        "mysql://root:other@h/db?password=p1&pw=p2; abc"
    )
    assert redact(text) == (
        "login *** failed on postgresql://u:***@db/x?sslmode=require&token=***&key=***; "
        "mysql://root:***@h/db?password=***&pw=***; abc"
    )
    # a placeholder is not a password
    assert redact("postgresql://user:${DB_PASSWORD}@host/db") == "postgresql://user:${DB_PASSWORD}@host/db"


def test_a_template_folder_may_include_its_own_files_and_links_inside_it(tmp_path):
    """Confinement keeps what a designer needs: includes and links that stay in the folder, and
    ``default:`` to extend the built-in template."""
    import datetime as dt

    from reporter.compute.database import compute
    from reporter.config import load_config
    from reporter.periods import Period
    from reporter.render.html import render_html

    work = tmp_path / "work"
    work.mkdir()
    write_csv(work / "sales.csv", ["date", "amount", "region"], ROWS)
    folder = work / "tpl"
    (folder / "parts").mkdir(parents=True)
    (folder / "parts" / "cover.html").write_text("<p id='mine'>{{ report.title }} by design</p>")
    (folder / "cover-link.html").symlink_to(folder / "parts" / "cover.html")
    (folder / "report.html").write_text(
        cover('{% include "cover-link.html" %}{% include "parts/cover.html" %}')
    )
    (work / F).write_text(with_template(BASE.replace("PORT", "2525")))
    config = load_config(work / F, env={})
    results = compute(config, Period.parse("2026-10", "month"), dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
    html = render_html(config, results)
    assert html.count("<p id='mine'>Sales by design</p>") == 2
    assert "Appendix" in html  # the rest comes from the built-in template
