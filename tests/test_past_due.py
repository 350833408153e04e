"""An objective whose due date has passed: `reporter validate` warns (file:line, key, hint) and
the report says "past due" beside its due date and on its line of the digest, in each of the
five languages; an objective due on the period's last day or later is not past due."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest

from reporter.cli import main
from reporter.compute.database import compute
from reporter.periods import Period
from reporter.render.digest import build_digest
from reporter.render.html import render_html
from tests.conftest import with_locale, write_csv

NOW = dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC)  # a run at NOW reports October 2026
EPOCH = str(int(NOW.timestamp()))
WORDS = {
    "fr_FR": "échéance dépassée",
    "en_US": "past due",
    "de_DE": "Frist überschritten",
    "es_ES": "plazo vencido",
    "it_IT": "scaduto",
}
YAML = """\
report: {id: r, title: T, timezone: Europe/Paris, locale: en_US}
quality: {require_complete_period: false, min_rows: 0}
sources: {s: {type: csv, path: s.csv, date_column: date}}
metrics: {amount: {source: s, agg: sum, column: amount}}
kpis: {amount: {formula: amount, label: Amount, format: currency, direction: up}}
objectives:
  - {id: spring, title: Spring push, kpi: amount, target: {value: 100}, owner: Ann, due: 2026-06-30,
     actions: [{when: always, do: Call, owner: Ann}]}
  - {id: october, title: October close, kpi: amount, target: {value: 100}, owner: Ann, due: 2026-10-31,
     actions: [{when: always, do: Call, owner: Ann}]}
  - {id: year, title: Year end, kpi: amount, target: {value: 100}, owner: Ann, due: 2026-12-31,
     actions: [{when: always, do: Call, owner: Ann}]}
"""


def write(tmp_path):
    write_csv(tmp_path / "s.csv", ["date", "amount"], [["2026-09-15", 90], ["2026-10-15", 120]])
    path = tmp_path / "report.yaml"
    path.write_text(YAML, encoding="utf-8")
    return path


def test_validate_warns_of_an_objective_past_its_due_date(tmp_path, capsys, monkeypatch):
    """Only the objective due before October's last day (the period a run reports on 2 November)
    is named; due on the 31st is not past due in the October report."""
    path = write(tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err.replace(str(path), "F").splitlines() == [
        "F:7:90: objectives[0].due: warning: 2026-06-30 is before the end of 2026-10, the period a run "
        "reports now: the report marks the objective past due; set its new due date, or remove the "
        "objective once it is over"
    ]
    assert captured.out.startswith(f"{path}: valid")
    # a month later the October objective is past due too
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(dt.datetime(2026, 12, 2, tzinfo=dt.UTC).timestamp())))
    assert main(["validate", str(path)]) == 0
    warned = re.findall(r"(objectives\[\d\]\.due): warning: (\S+)", capsys.readouterr().err)
    assert warned == [("objectives[0].due", "2026-06-30"), ("objectives[1].due", "2026-10-31")]


@pytest.mark.parametrize("locale", list(WORDS))
def test_the_report_and_the_digest_say_past_due(tmp_path, make_config, locale):
    write(tmp_path)
    config = with_locale(make_config(YAML), locale)
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    assert [(o.id, o.past_due) for o in results.objectives] == [
        ("spring", True),
        ("october", False),
        ("year", False),
    ]
    word = WORDS[locale]
    # the objectives table: the word under the due date of that objective's row only
    html = unescape(render_html(config, results))
    table = html[html.index('<table class="objectives">') :]
    table = table[: table.index("</table>")]
    rows = {
        title: row for row in table.split("<tr>") for title in ("Spring", "October", "Year") if title in row
    }
    assert word in rows["Spring"]
    assert word not in rows["October"] + rows["Year"]
    # the digest: the objective's line, in the HTML part and the text part
    digest = build_digest(config, results)
    glance = re.findall(r'<td class="gline"[^>]*>(.*?)</td>', unescape(digest.html))
    assert len(glance) == 3
    assert [word in line for line in glance if "Spring" in line] == [True]
    assert not any(word in line for line in glance if "Spring" not in line)
    text = [line for line in digest.text.splitlines() if line.endswith(f" · {word}")]
    assert len(text) == 1
    assert "Spring push" in text[0]
