"""`reporter validate`: every defect a manager could make, each pinned to its exact message,
line, column and exit code 2; several defects reported at once; no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reporter.cli import main
from tests.conftest import write_csv

BASE = [
    "report:",  # 1
    "  id: demo",  # 2
    "  title: Demo",  # 3
    "  locale: fr_FR",  # 4
    "  currency: EUR",  # 5
    "  timezone: Europe/Paris",  # 6
    "sources:",  # 7
    "  crm: {type: csv, path: crm.csv, date_column: created}",  # 8
    "metrics:",  # 9
    "  leads: {source: crm, agg: count}",  # 10
    "  won: {source: crm, agg: count, where: \"stage = 'won'\"}",  # 11
    "  amount: {source: crm, agg: sum, column: amount}",  # 12
    "kpis:",  # 13
    "  win_rate: {formula: won / leads, format: percent}",  # 14
    "  revenue: {formula: amount, format: currency}",  # 15
    "  neutral_kpi: {formula: leads, direction: neutral}",  # 16
    "objectives:",  # 17
    "  - {id: grow, title: Grow, kpi: revenue, target: {value: 100}, owner: Boss, due: 2026-12-31}",  # 18
    "breakdowns:",  # 19
    "  - {kpi: revenue, by: seller}",  # 20
    "delivery:",  # 21
    '  schedule: "0 7 2 * *"',  # 22
    '  email: {from: a@acme.test, to: [b@acme.test], subject: "Report {{ period.label }}"}',  # 23
]


def write(tmp_path, changes: dict[int, str] | None = None, extra: list[str] | None = None):
    lines = list(BASE)
    for number, text in (changes or {}).items():
        lines[number - 1] = text
    lines += extra or []
    write_csv(
        tmp_path / "crm.csv",
        ["created", "stage", "amount", "seller"],
        [["2026-10-01", "won", 10, "Alice"], ["2026-10-02", "lost", 5, "Bob"]],
    )
    path = tmp_path / "report.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def validate(path, capsys) -> tuple[int, list[str]]:
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    lines = [
        line.replace(str(path), "F").replace(str(path.parent), "D") for line in captured.err.splitlines()
    ]
    return code, lines


CASES = {
    "a tab in the indentation": (
        {14: "\twin_rate: {formula: won / leads, format: percent}"},
        None,
        [
            "F:14:1: YAML syntax error: while scanning for the next token, found character '\\t' that cannot start any token; YAML indents with spaces, never tabs: replace the tab with spaces"
        ],
    ),
    "a value with no close match is not followed by the same list again": (
        {14: "  win_rate: {formula: won / leads, format: percent, direction: lower}"},
        None,
        ["F:14:64: kpis.win_rate.direction: 'lower' is not one of: up, down, neutral"],
    ),
    "a misspelled date_column (it used to crash the data check)": (
        {8: "  crm: {type: csv, path: crm.csv, date_colum: created}"},
        None,
        [
            "F:8:8: sources.crm: missing required key 'date_column'; add 'date_column: ...' here",
            "F:8:35: sources.crm.date_colum: unknown key; did you mean 'date_column'?",
        ],
    ),
    "a negative due_in_days": (
        {
            18: "  - {id: grow, title: Grow, kpi: revenue, target: {value: 100}, owner: Boss, due: 2026-12-31,"
            "\n     actions: [{when: off_track, do: Call, due_in_days: -7}]}"
        },
        None,
        [
            "F:19:57: objectives[0].actions[0].due_in_days: must be at least 0, got -7; "
            "docs/configuration.md gives each key's range"
        ],
    ),
    "a negative settles_after": (
        {14: "  win_rate: {formula: won / leads, format: percent, settles_after: -1}"},
        None,
        [
            "F:14:68: kpis.win_rate.settles_after: must be at least 0, got -1; "
            "docs/configuration.md gives each key's range"
        ],
    ),
    "unknown template": (
        {3: "  title: Demo\n  template: exective"},
        None,
        [
            "F:4:13: report.template: unknown template 'exective'; built-in templates: executive, or a folder path"
        ],
    ),
    "typo in a key": (
        {14: "  win_rate: {formula: won / leads, fromat: percent}"},
        None,
        ["F:14:36: kpis.win_rate.fromat: unknown key; did you mean 'format'?"],
    ),
    "unknown section": (
        {19: "breakdown:"},
        None,
        ["F:19:1: breakdown: unknown section; did you mean 'breakdowns'?"],
    ),
    # A misspelt required section is one error: its names are not then "unknown" everywhere
    # (formulas, objectives, breakdowns), and a KPI named like a metric is not a "cycle".
    "misspelt metrics section": (
        {9: "metrcs:", 16: "  amount: {formula: amount, format: currency}"},
        None,
        ["F:9:1: metrcs: unknown section; did you mean 'metrics'?"],
    ),
    "misspelt kpis section": (
        {13: "kpi:"},
        None,
        ["F:13:1: kpi: unknown section; did you mean 'kpis'?"],
    ),
    "misspelt sources section": (
        {7: "source:"},
        None,
        ["F:7:1: source: unknown section; did you mean 'sources'?"],
    ),
    "missing metrics section": (
        {9: "# no metrics", 10: "#", 11: "#", 12: "#"},
        None,
        ["F:1:1: missing section 'metrics'; add a 'metrics:' section"],
    ),
    "a key dedented out of its entry": (
        {16: "  format: percent"},
        None,
        [
            "F:16:11: kpis.format: expected a mapping (key: value), got 'percent'; 'format' looks like a key "
            "of the entry above it: indent it as far as that entry's other keys"
        ],
    ),
    "unknown name in a formula": (
        {14: "  win_rate: {formula: won / lead, format: percent}"},
        None,
        ["F:14:23: kpis.win_rate.formula: unknown name 'lead'; did you mean 'leads'?"],
    ),
    "formula syntax": (
        {14: "  win_rate: {formula: won / (leads, format: percent}"},
        None,
        [
            "F:14:23: kpis.win_rate.formula: unbalanced parentheses: 1 '(' and 0 ')'; a formula uses "
            "+ - * / ( ), numbers and metric or KPI names, e.g. leads / sessions"
        ],
    ),
    "function not allowed in a formula": (
        {14: "  win_rate: {formula: sqrt(won), format: percent}"},
        None,
        [
            "F:14:23: kpis.win_rate.formula: unknown function 'sqrt'; functions are min, max, abs, round, "
            "coalesce; a formula uses + - * / ( ), numbers and metric or KPI names, e.g. leads / sessions"
        ],
    ),
    "KPI cycle": (
        {
            15: "  revenue: {formula: amount + win_rate, format: currency}",
            14: "  win_rate: {formula: revenue / leads, format: percent}",
        },
        None,
        [
            "F:14:23: kpis.win_rate.formula: formulas form a cycle: win_rate → revenue → win_rate; a KPI "
            "cannot depend on itself; compute one of them from metrics"
        ],
    ),
    "unknown source in a metric": (
        {12: "  amount: {source: crn, agg: sum, column: amount}"},
        None,
        ["F:12:20: metrics.amount.source: unknown source 'crn'; did you mean 'crm'?"],
    ),
    "bad cron": (
        {22: '  schedule: "0 7 32 * *"'},
        None,
        [
            "F:22:13: delivery.schedule: invalid cron expression '0 7 32 * *' (Error validating expression '32': the last value (32) is higher than the maximum value (31)); 5 fields: minute hour day month weekday, e.g. \"0 7 2 * *\""
        ],
    ),
    "bad locale": (
        {4: "  locale: fr_XX"},
        None,
        [
            "F:4:11: report.locale: unknown locale 'fr_XX'; use a language_COUNTRY code such as fr_FR, en_US, de_DE"
        ],
    ),
    "locale without a catalogue": (
        {4: "  locale: pt_BR"},
        None,
        ["F:4:11: report.locale: no translation for 'pt' (pt_BR); catalogues: de, en, es, fr, it"],
    ),
    "bad timezone": (
        {6: "  timezone: Europe/Pari"},
        None,
        ["F:6:13: report.timezone: unknown timezone 'Europe/Pari'; did you mean 'Europe/Paris'?"],
    ),
    "bad currency": (
        {5: "  currency: EURO"},
        None,
        ["F:5:13: report.currency: unknown currency 'EURO'; use an ISO 4217 code such as EUR, USD, GBP, CHF"],
    ),
    "duplicate key": (
        {8: "  crm: {type: csv, path: crm.csv, date_column: created, path: x.csv}"},
        None,
        [
            "F:8:57: sources.crm.path: duplicate key (first defined on line 8); remove one of the two, or merge them"
        ],
    ),
    "YAML syntax error": (
        {14: "  win_rate: {formula: won / leads, format: percent"},
        None,
        [
            "F:15:10: YAML syntax error: while parsing a flow mapping, expected ',' or '}', but got ':'; check the indentation and the quotes on this line and the one above"
        ],
    ),
    # A quote never closed runs to the end of the file: PyYAML's problem is at the file's end
    # (line 27 here), the line to fix is the quote's.
    "a quote never closed": (
        {22: '  schedule: "0 7 2 * *', 23: "  email: {from: a@acme.test, to: [b@acme.test]}"},
        ["quality:", "  min_rows: 1", "  require_complete_period: true"],
        [
            "F:22:13: YAML syntax error: while scanning a quoted scalar, found unexpected end of stream; "
            "close the quote that opens here (unclosed, it runs to the end of the file)"
        ],
    ),
    "missing data file": (
        {8: "  crm: {type: csv, path: crm2.csv, date_column: created}"},
        None,
        [
            "F:8:26: sources.crm.path: file not found: D/crm2.csv; paths are relative to the configuration file's folder"
        ],
    ),
    "missing date column": (
        {8: "  crm: {type: csv, path: crm.csv, date_column: created_at}"},
        None,
        [
            "F:8:48: sources.crm.date_column: column 'created_at' not found in crm.csv; did you mean 'created'?"
        ],
    ),
    "missing column": (
        {12: "  amount: {source: crm, agg: sum, column: amout}"},
        None,
        ["F:12:43: metrics.amount.column: column 'amout' not found in source 'crm'; did you mean 'amount'?"],
    ),
    "text where a number is expected": (
        None,
        ["quality: {min_rows: many}"],
        ["F:24:21: quality.min_rows: expected a whole number, got 'many'"],
    ),
    "a list where a mapping is expected": (
        {8: "  crm: [csv, crm.csv]"},
        None,
        ["F:8:8: sources.crm: expected a mapping (key: value), got a list"],
    ),
    "a ledger URL from ${NAME}": (
        {
            12: "  amount: {source: crm, agg: sum, column: amount}",
            21: "delivery:\n  ledger: ${REPORTER_TEST_UNSET}",
        },
        None,
        [
            "F:22:3: delivery.ledger: a URL here: the ledger's database is the operator's, named as a connection; write 'ledger: ledger' instead, and have the operator set REPORTER_CONNECTION_LEDGER=<the URL, password included> in the environment (or 'ledger: <the URL, password included>' in a --connections file)"
        ],
    ),
    "${NAME} outside a connection, set or not: the same words": (
        {23: '  email: {from: a@acme.test, to: [b@acme.test], subject: "${HOME} ${REPORTER_TEST_UNSET}"}'},
        None,
        [
            "F:23:58: delivery.email.subject: ${HOME}: a report reads no environment variable; write the value itself (write $${ for a literal ${); databases, the ledger, SMTP logins and the Dask scheduler are named with 'connection: NAME', which the operator defines"
        ],
    ),
    "a connection the operator did not define": (
        {8: "  crm: {type: sql, connection: warehouse, query: select 1, date_column: created}"},
        None,
        [
            "F:8:32: sources.crm.connection: connection 'warehouse' is not defined; the operator defines it: REPORTER_CONNECTION_WAREHOUSE=URL in the environment, or 'warehouse: URL' in the --connections file"
        ],
    ),
    "inverted thresholds": (
        {
            18: "  - {id: grow, title: Grow, kpi: revenue, target: {value: 100}, owner: Boss, due: 2026-12-31, thresholds: {on_track: 0.8, at_risk: 0.9}}"
        },
        None,
        [
            "F:18:107: objectives[0].thresholds: at_risk (0.9) is above on_track (0.8); at_risk must be ≤ on_track, e.g. {on_track: 1.0, at_risk: 0.9}"
        ],
    ),
    "objective on a neutral KPI": (
        {
            18: "  - {id: grow, title: Grow, kpi: neutral_kpi, target: {value: 100}, owner: Boss, due: 2026-12-31}"
        },
        None,
        [
            "F:18:34: objectives[0].kpi: KPI 'neutral_kpi' has direction neutral, so it has no target; set kpis.neutral_kpi.direction to up or down"
        ],
    ),
    "a currency KPI in points": (
        {15: "  revenue: {formula: amount, format: currency, change: points}"},
        None,
        [
            "F:15:56: kpis.revenue.change: a currency KPI's changes cannot be in points; points are for a rate "
            "or a score (format percent, number or ratio); remove change"
        ],
    ),
    "python tag": (
        {3: "  title: !!python/object/apply:os.system ['echo pwned']"},
        None,
        [
            "F:3:10: report.title: the YAML tag !!python/object/apply:os.system is not allowed; write plain values; reporter never builds objects from YAML tags"
        ],
    ),
    "Norway problem": (
        {23: '  email: {from: a@acme.test, to: [NO], subject: "Report"}'},
        None,
        [
            'F:23:35: delivery.email.to[0]: YAML read the unquoted NO as the boolean false; write it in quotes: "NO"'
        ],
    ),
    "read_csv in where": (
        {11: "  won: {source: crm, agg: count, where: \"read_csv('/etc/passwd') is not null\"}"},
        None,
        [
            "F:11:41: metrics.won.where: table function read_csv() is not allowed; an expression may only use this source's own columns; write a condition on this source's columns, e.g. stage = 'won'"
        ],
    ),
    "where with an open parenthesis": (
        {11: "  won: {source: crm, agg: count, where: \"(stage = 'won'\"}"},
        None,
        [
            "F:11:41: metrics.won.where: not a valid SQL expression (1 parenthesis not closed); write a condition on this source's columns, e.g. stage = 'won'"
        ],
    ),
    "where with one ')' too many": (
        {11: "  won: {source: crm, agg: count, where: \"stage = 'won')\"}"},
        None,
        [
            "F:11:41: metrics.won.where: not a valid SQL expression (a ')' closes a parenthesis that was not opened); write a condition on this source's columns, e.g. stage = 'won'"
        ],
    ),
    "where that stops early": (
        {11: "  won: {source: crm, agg: count, where: \"stage = 'won' and\"}"},
        None,
        [
            "F:11:41: metrics.won.where: not a valid SQL expression (the expression ends too early: something is missing at the end); write a condition on this source's columns, e.g. stage = 'won'"
        ],
    ),
    "where with a doubled operator": (
        {11: "  won: {source: crm, agg: count, where: \"stage = = 'won'\"}"},
        None,
        [
            "F:11:41: metrics.won.where: not a valid SQL expression (syntax error at or near \"=\", at character 9); write a condition on this source's columns, e.g. stage = 'won'"
        ],
    ),
    "subquery in where": (
        {11: '  won: {source: crm, agg: count, where: "stage in (select 1)"}'},
        None,
        [
            "F:11:41: metrics.won.where: subqueries are not allowed; use only this source's columns; write a condition on this source's columns, e.g. stage = 'won'"
        ],
    ),
    "aggregate in expr": (
        {12: '  amount: {source: crm, agg: sum, expr: "sum(amount)"}'},
        None,
        [
            "F:12:41: metrics.amount.expr: aggregate function sum() is not allowed here; the metric's agg aggregates; write an expression over this source's columns, e.g. quantity * unit_price"
        ],
    ),
    "column and expr": (
        {12: '  amount: {source: crm, agg: sum, column: amount, expr: "amount * 2"}'},
        None,
        ["F:12:57: metrics.amount.expr: give 'column' or 'expr', not both"],
    ),
    "agg without column": (
        {12: "  amount: {source: crm, agg: sum}"},
        None,
        ["F:12:11: metrics.amount: agg 'sum' needs 'column' or 'expr'; e.g. column: amount"],
    ),
    "a database URL in the YAML (the migration note)": (
        {8: "  crm: {type: sql, url: 'postgresql://u:hunter2@db/x', query: select 1, date_column: created}"},
        None,
        [
            "F:8:20: sources.crm.url: a report names its database, it holds no URL: the URL and its password are the operator's; write 'connection: crm' instead, and have the operator set REPORTER_CONNECTION_CRM=<the URL, password included> in the environment (or 'crm: <the URL, password included>' in a --connections file)",
        ],
    ),
    "invalid email address": (
        {23: '  email: {from: not-an-email, to: [b@acme.test], subject: "Report"}'},
        None,
        [
            "F:23:17: delivery.email.from: 'not-an-email' is not a valid email address; write name@example.com or Name <name@example.com>"
        ],
    ),
    "line break in the subject": (
        {23: '  email: {from: a@acme.test, to: [b@acme.test], subject: "Report\\nBcc: x@evil.test"}'},
        None,
        ["F:23:58: delivery.email.subject: the subject contains a line break; write the subject on one line"],
    ),
    "by_period label": (
        {
            18: "  - {id: grow, title: Grow, kpi: revenue, target: {by_period: {2026-13: 5}}, owner: Boss, due: 2026-12-31}"
        },
        None,
        [
            "F:18:64: objectives[0].target.by_period.2026-13: '2026-13': month 13 does not exist; the report's grain is month"
        ],
    ),
    "breakdown column not in the source": (
        {20: "  - {kpi: revenue, by: vendeur}"},
        None,
        [
            "F:20:24: breakdowns[0].by: column 'vendeur' not found in source 'crm'; columns are: amount, created, seller, stage"
        ],
    ),
    "impossible due date": (
        {18: "  - {id: grow, title: Grow, kpi: revenue, target: {value: 100}, owner: Boss, due: 2026-13-01}"},
        None,
        ["F:18:83: objectives[0].due: expected a date like 2026-12-31, got '2026-13-01'"],
    ),
    "a name that is not a slug": (
        {14: "  Win-Rate: {formula: won / leads, format: percent}"},
        None,
        [
            "F:14:3: kpis.Win-Rate: 'Win-Rate' is not a valid name; use lowercase letters, digits and _ , starting with a letter (e.g. win_rate)"
        ],
    ),
    "unknown agg": (
        {10: "  leads: {source: crm, agg: countt}"},
        None,
        [
            "F:10:29: metrics.leads.agg: 'countt' is not one of: sum, count, count_distinct, avg, min, max, last; did you mean 'count'?"
        ],
    ),
    "percent written as text, 30 %": (
        {
            18: "  - {id: grow, title: Grow, kpi: revenue, target: {change_vs_prior_year: 30 %}, owner: Boss, due: 2026-12-31}"
        },
        None,
        [
            "F:18:74: objectives[0].target.change_vs_prior_year: expected a number, got '30 %'; percentages are written as fractions: 0.3 for 30 %"
        ],
    ),
    "percent written as text": (
        {
            18: "  - {id: grow, title: Grow, kpi: revenue, target: {change_vs_prior_year: 15%}, owner: Boss, due: 2026-12-31}"
        },
        None,
        [
            "F:18:74: objectives[0].target.change_vs_prior_year: expected a number, got '15%'; percentages are written as fractions: 0.15 for 15 %"
        ],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_configuration(tmp_path, capsys, name):
    changes, extra, expected = CASES[name]
    code, lines = validate(write(tmp_path, changes, extra), capsys)
    assert code == 2
    assert lines[:-1] == expected
    assert lines[-1] == f"{len(expected)} error{'s' if len(expected) > 1 else ''}: nothing was run or sent."


def test_valid_base(tmp_path, capsys):
    assert main(["validate", str(write(tmp_path))]) == 0
    assert capsys.readouterr().out.endswith(
        "report.yaml: valid — 1 source, 3 metrics, 3 KPIs, 1 objective, 1 breakdown, 0 funnel stages\n"
    )


def test_five_defects_in_one_file_give_five_errors(tmp_path, capsys):
    path = write(
        tmp_path,
        {
            4: "  locale: fr_XX",
            8: "  crm: {type: csv, path: crm.csv, date_column: created, pth: x}",
            14: "  win_rate: {formula: won / lead, format: percent}",
            18: "  - {id: grow, title: Grow, kpi: neutral_kpi, target: {value: 100}, owner: Boss, due: 2026-12-31}",
            22: '  schedule: "every day"',
        },
    )
    code, lines = validate(path, capsys)
    assert code == 2
    assert lines == [
        "F:4:11: report.locale: unknown locale 'fr_XX'; use a language_COUNTRY code such as fr_FR, en_US, de_DE",
        "F:8:57: sources.crm.pth: unknown key; did you mean 'path'?",
        "F:14:23: kpis.win_rate.formula: unknown name 'lead'; did you mean 'leads'?",
        "F:18:34: objectives[0].kpi: KPI 'neutral_kpi' has direction neutral, so it has no target; "
        "set kpis.neutral_kpi.direction to up or down",
        "F:22:13: delivery.schedule: invalid cron expression 'every day' (expected 5 fields, got 2); "
        '5 fields: minute hour day month weekday, e.g. "0 7 2 * *"',
        "5 errors: nothing was run or sent.",
    ]


def test_a_folder_validates_every_yaml_in_it(tmp_path, capsys):
    good = write(tmp_path)
    (tmp_path / "other.yaml").write_text(good.read_text().replace("locale: fr_FR", "locale: xx_YY"))
    code = main(["validate", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{tmp_path / 'other.yaml'}:4:11: report.locale: unknown locale 'xx_YY'" in err
    (tmp_path / "other.yaml").unlink()
    (tmp_path / "second.yaml").write_text(good.read_text().replace("id: demo", "id: second"))
    assert main(["validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count(": valid — ") == 2


def test_no_traceback_and_exit_2_from_a_real_process(tmp_path):
    path = write(tmp_path, {3: "  title: !!python/object/apply:os.system ['echo pwned']"})
    proc = subprocess.run(
        [sys.executable, "-m", "reporter", "validate", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "pwned" not in proc.stdout
    assert proc.stderr.splitlines()[0] == (
        f"{path}:3:10: report.title: the YAML tag !!python/object/apply:os.system is not allowed; "
        "write plain values; reporter never builds objects from YAML tags"
    )


def test_usage_errors_exit_2(capsys):
    assert main(["run"]) == 2
    assert "the following arguments are required: CONFIG" in capsys.readouterr().err
    assert main(["validate", "/nonexistent/report.yaml"]) == 2
    assert capsys.readouterr().err.startswith("/nonexistent/report.yaml: file not found")


def test_bad_period_is_a_usage_error(tmp_path, capsys):
    path = write(tmp_path)
    assert main(["run", str(path), "--period", "2026-13", "--no-send", "--output", str(tmp_path)]) == 2
    assert (
        "--period: '2026-13': month 13 does not exist (report 'demo' has grain month)"
        in capsys.readouterr().err
    )


def test_the_catalogues_a_locale_may_use_are_the_files_in_the_locale_folder(tmp_path, capsys, monkeypatch):
    import reporter.assets

    folder = tmp_path / "locale"
    folder.mkdir()
    for language in ("en", "pt"):
        (folder / f"{language}.po").write_text('msgid ""\nmsgstr ""\n', encoding="utf-8")
    monkeypatch.setattr(reporter.assets, "LOCALE_DIR", folder)
    assert main(["validate", str(write(tmp_path, {4: "  locale: pt_BR"}))]) == 0
    capsys.readouterr()
    code, lines = validate(write(tmp_path, {4: "  locale: de_CH"}), capsys)
    assert code == 2
    assert lines[0] == "F:4:11: report.locale: no translation for 'de' (de_CH); catalogues: en, pt"


@pytest.mark.parametrize(("bad", "line"), [("2025-02-30", 4), ("", 3)])
def test_a_date_that_is_not_one_is_reported_by_its_line(tmp_path, capsys, bad, line):
    """An impossible date (the sniffer then reads the column as text) or an empty one: validate
    names its line in the file, not its value, at the date column's key."""
    path = write(tmp_path)
    rows = [["2026-10-01", "won", 10, "Alice"], ["2026-10-02", "lost", 5, "Bob"]]
    rows.insert(line - 2, [bad, "won", 1, "Carl"])
    write_csv(tmp_path / "crm.csv", ["created", "stage", "amount", "seller"], rows)
    code, lines = validate(path, capsys)
    assert code == 2
    assert lines[0] == (
        f"F:8:48: sources.crm.date_column: line {line} of crm.csv has an empty or unreadable date in "
        "column 'created'; dates are read as ISO 8601 (2026-10-31, 2026-10-31T09:30:00+02:00), another "
        "format needs csv: {date_format: '%d/%m/%Y'}"
    )
    assert bad not in "".join(lines[1:]) or bad == ""


def test_a_bad_date_past_the_validated_rows_stops_the_run_with_its_line(tmp_path, capsys):
    """Validation reads the first 100,000 rows; the run reads all and names the first line whose
    date is empty. (An impossible date that far is refused by DuckDB's CSV reader itself, which
    names its line: "CSV Error on Line: 100012", the value left out.)"""
    from reporter.config.guards import SAMPLE_ROWS

    path = write(tmp_path)
    good = [[f"2026-10-{1 + i % 28:02d}", "won", 1, "Alice"] for i in range(SAMPLE_ROWS + 10)]
    rows = [*good, ["", "won", 1, "Bob"], ["2026-10-02", "lost", 5, "Bob"], ["", "won", 1, "Bob"]]
    write_csv(tmp_path / "crm.csv", ["created", "stage", "amount", "seller"], rows)
    code = main(["run", str(path), "--period", "2026-10", "--no-send", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert (
        "source 'crm': 2 row(s) have an empty or unreadable date in 'created' (the first: line "
        f"{SAMPLE_ROWS + 12} of crm.csv); dates are read as ISO 8601"
    ) in err
