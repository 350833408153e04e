"""The JSON Schema of the YAML: valid Draft 2020-12, shipped up to date, printed by
``reporter schema``, accepting every shipped report and agreeing with ``reporter validate``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from reporter.config import load_config
from reporter.config.schema import DIALECT, dumps, json_schema
from reporter.errors import ConfigError
from tests.conftest import DEMO, ROOT
from tests.fixtures.stress import stress_config

SHIPPED = ROOT / "schema" / "reporter.schema.json"
MODELINE = "# yaml-language-server: $schema=../schema/reporter.schema.json"


class _EditorLoader(yaml.SafeLoader):
    """YAML as an editor's language server reads it (YAML 1.2: 2026-12-31 is text, not a date)."""


_EditorLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def as_written(text: str) -> Any:
    return yaml.load(text, Loader=_EditorLoader)


def schema_errors(data: Any) -> list[str]:
    validator = Draft202012Validator(json_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]


def test_the_schema_is_valid_draft_2020_12():
    schema = json_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == DIALECT == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {
        "report", "sources", "metrics", "kpis", "objectives", "breakdowns", "funnel",
        "portfolio", "quality", "delivery", "insights", "alerts",
    }  # fmt: skip
    assert schema["required"] == ["report", "sources", "metrics", "kpis"]
    # Descriptions come with it (for the editor's hover help).
    assert schema["$defs"]["Metric"]["properties"]["agg"]["description"].startswith("The aggregate")


def test_the_shipped_schema_file_is_current():
    assert SHIPPED.read_text(encoding="utf-8") == dumps(), (
        "schema/reporter.schema.json is stale: run `make docs-gen` "
        "(reporter schema > schema/reporter.schema.json)"
    )


def test_reporter_schema_prints_it():
    # A process of its own: main() sets up logging for the whole process.
    done = subprocess.run(
        [sys.executable, "-m", "reporter", "schema"], capture_output=True, text=True, timeout=120, check=False
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout) == json_schema()
    assert done.stdout == SHIPPED.read_text(encoding="utf-8")


def test_example_yaml_names_the_shipped_schema():
    first = DEMO.read_text(encoding="utf-8").splitlines()[0]
    assert first == MODELINE
    target = (DEMO.parent / first.split("$schema=", 1)[1]).resolve()
    assert target == SHIPPED.resolve()


def shipped_reports(tmp_path: Path) -> list[Path]:
    """Every full report configuration the repository ships or generates for its tests."""
    found = sorted([*(ROOT / "config").glob("*.yaml"), *(ROOT / "config").glob("*.yml")])
    for folder in ("tests", "benchmarks"):
        found += [p for p in sorted((ROOT / folder).rglob("*.y*ml")) if p.suffix in (".yaml", ".yml")]
    found.append(stress_config(tmp_path))
    return found


def test_every_shipped_yaml_validates_against_the_schema(tmp_path):
    files = shipped_reports(tmp_path)
    assert DEMO in files
    assert len(files) >= 2
    for path in files:
        load_config(path, env={})  # a real report: reporter itself accepts it
        errors = schema_errors(as_written(path.read_text(encoding="utf-8")))
        assert errors == [], f"{path}: {errors}"


BASE = """\
report: {id: r, title: T}
sources: {web: {type: csv, path: w.csv, date_column: date}}
metrics: {sessions: {source: web, agg: sum, column: s}}
kpis: {visits: {formula: sessions}}
"""

# Accepted by `reporter validate` (without reading data), so the schema must accept them too.
VALID = {
    "minimal": "",
    "empty optional sections": "objectives:\nbreakdowns:\nfunnel:\nquality:\ndelivery:\n",
    "connections by name": """\
        delivery:
          ledger: ledger
          email:
            from: a@b.fr
            to: [c@d.fr]
            smtp: {connection: smtp}
        """,
    "a relay without a login": "delivery: {email: {from: a@b.fr, to: [c@d.fr], smtp: {host: relay, port: 25, "
    "security: none}}}\n",
    "an objective with every target form's neighbours": """\
        objectives:
          - id: o-1
            title: More visits
            kpi: visits
            target: {by_period: {2026-10: 100, 2026-11: 110}}
            cumulative: true
            thresholds: {on_track: 1.0, at_risk: 0.8}
            owner: Me
            due: 2026-12-31
            actions: [{when: always, do: Look, due_in_days: 3}]
          - {id: o-2, title: T, kpi: visits, target: {value: 5, change_vs_previous: null}, owner: Me,
             due: 2027-01-31}
        """,
    "a literal ${ written $${": "delivery: {email: {from: a@b.fr, to: [c@d.fr], subject: 'Cost $${X}'}}\n",
    "bursting filters of every scalar kind": """\
        delivery:
          email:
            from: Reporting <a@b.fr>
            recipients:
              - {email: c@d.fr, filter: {team: Nord, level: 2, share: 0.5, active: true}}
        """,
}
ENV = {
    "REPORTER_CONNECTION_LEDGER": "sqlite:///l.sqlite",
    "REPORTER_CONNECTION_SMTP": "smtp://me:pw@smtp.b.fr:587",
    "LEDGER_URL": "sqlite:///l.sqlite",
    "ROWS": "3",
}

# Refused by `reporter validate`; the schema must refuse them too (an editor underlines them).
INVALID = {
    "an unknown section": "colour: blue\n",
    "an unknown key in a metric": None,  # built below
    "an unknown aggregate": None,
    "a report id that is not a slug": None,
    "a source name that is not a name": None,
    "two target forms": "objectives: [{id: o, title: T, kpi: visits, target: {value: 1, "
    "change_vs_previous: 0.1}, owner: Me, due: 2026-12-31}]\n",
    "no target form": "objectives: [{id: o, title: T, kpi: visits, target: {}, owner: Me, "
    "due: 2026-12-31}]\n",
    "a port out of range": "delivery: {email: {from: a@b.fr, to: [c@d.fr], smtp: {host: h, port: 70000}}}\n",
    "a date that does not exist": "objectives: [{id: o, title: T, kpi: visits, target: {value: 1}, "
    "owner: Me, due: 2026-13-01}]\n",
    "an empty portfolio": "portfolio:\n",
    "text where a number is expected": "quality: {min_rows: many}\n",
    "a number from ${NAME} (the YAML reads no environment variable)": "quality:\n  min_rows: ${ROWS}\n",
    "a ledger URL from ${NAME}": "delivery: {ledger: '${LEDGER_URL}'}\n",
    "a ledger URL": "delivery: {ledger: 'sqlite:///l.sqlite'}\n",
    "an SMTP login": "delivery: {email: {from: a@b.fr, to: [c@d.fr], smtp: {host: h, username: me}}}\n",
    "a Dask address": "delivery: {burst: {executor: dask, address: 'tcp://h:8786'}}\n",
    "a database URL": None,
    "a title from ${NAME}": None,
    "an address from ${NAME}": 'delivery: {email: {from: a@b.fr, to: ["${BOSS}"]}}\n',
}


def _config(case: str) -> str:
    if case == "an unknown key in a metric":
        return BASE.replace("column: s}", "colum: s}")
    if case == "an unknown aggregate":
        return BASE.replace("agg: sum", "agg: median")
    if case == "a report id that is not a slug":
        return BASE.replace("id: r,", "id: Marketing Monthly,")
    if case == "a title from ${NAME}":
        return BASE.replace("title: T}", 'title: "Sales ${ROWS}"}')
    if case == "a database URL":
        return BASE.replace("type: csv, path: w.csv,", "type: sql, url: 'sqlite:///x.db', query: select 1,")
    if case == "a source name that is not a name":
        return BASE.replace("sources: {web:", "sources: {Web:")
    text = INVALID.get(case) or VALID[case]
    return BASE + textwrap.dedent(text)


@pytest.mark.parametrize("case", list(VALID))
def test_the_schema_accepts_what_reporter_accepts(tmp_path, case):
    path = tmp_path / "r.yaml"
    path.write_text(_config(case), encoding="utf-8")
    load_config(path, env=ENV, check_data=False)
    assert schema_errors(as_written(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("case", list(INVALID))
def test_the_schema_refuses_what_reporter_refuses(tmp_path, case):
    path = tmp_path / "r.yaml"
    path.write_text(_config(case), encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(path, env=ENV, check_data=False)
    assert schema_errors(as_written(path.read_text(encoding="utf-8"))) != []


def test_an_unknown_key_is_named_by_the_schema():
    data = as_written(BASE.replace("title: T}", "title: T, titel: X}"))
    errors = schema_errors(data)
    assert errors == ["report: Additional properties are not allowed ('titel' was unexpected)"]
