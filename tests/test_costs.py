"""What a report's author can make the machine spend: every template expression that would
build a huge value, or run for minutes in one step, is refused by the sandbox before it is
built; validate renders in that same sandbox, so it finds what the run would hit. Measured in
a separate process: its peak memory and its time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.peak import CHILD, split_peak
from tests.test_exactly_once import tiny


def measured(
    *args: str, cwd: Path, timeout: float = 150
) -> tuple[subprocess.CompletedProcess[str], int, float]:
    """``reporter ARGS`` in its own process: the result, its peak memory (MB) and its time (s)."""
    env = {k: v for k, v in os.environ.items() if k != "REPORTER_RENDER_TIMEOUT"}
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    took = time.monotonic() - start
    result.stderr, peak = split_peak(result.stderr)
    return result, int(peak), took


def with_subject(folder: Path, subject: str) -> tuple[Path, int]:
    path = tiny(folder, 2525, to=["boss@acme.test"], name="costly")
    text = path.read_text().replace(
        "    from: reporting@acme.test", f"    subject: {json.dumps(subject)}\n    from: reporting@acme.test"
    )
    path.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "subject:" in t)
    return path, line


def tuple_of(name: str, n: int) -> str:
    return "(" + ", ".join([name] * n) + ")"


DOUBLINGS = "".join(f"{{% set s{i + 1} = s{i} ~ s{i} %}}" for i in range(9))
SUBJECT_HINT = (
    "the subject may use report.id, report.title, report.company, report.locale, report.currency, "
    "report.timezone, report.grain, report.fiscal_year_start, report.template, report.output_dir, "
    "report.logo, report.url, period.label, period.code"
)


@pytest.mark.parametrize(
    ("subject", "refusal"),
    [
        pytest.param(
            "{% set r = range(1000000)|list %}{% set l = [r, r, r, r, r, r, r, r, r, r] %}"
            "{{ [l, l, l, l, l, l, l, l, l, l]|tojson|length }}",
            "the value given to 'tojson' of more than 1,000,000 characters is larger than the limit",
            id="tojson",
        ),
        pytest.param(
            "{% set s0 = 'x' * 1000000 %}" + DOUBLINGS + "{{ s9|length }}",
            "a text joined with ~ of more than 1,000,000 characters is larger than the limit",
            id="concatenation",
        ),
        pytest.param(
            "{{ ('x' * 1000000)|wordwrap(1)|length }}",
            "'wordwrap' of a text longer than 20,000 characters",
            id="wordwrap",
        ),
        pytest.param(
            "{% set s = 'x' * 900000 %}{{ (('%s' * 400) % " + tuple_of("s", 400) + ")|length }}",
            "a formatted text of more than 1,000,000 characters is larger than the limit",
            id="percent",
        ),
        pytest.param(
            "{{ (((10 ** 64) ** 64) ** 64) ** 64 }}",
            "the number … ** 64 is too large",
            id="power",
        ),
        pytest.param(
            "{% set a = 10 ** 64 %}{% set b = a * a %}{% set c = b * b %}{% set d = c * c %}"
            "{% set e = d * d %}{% set f = e * e %}{% set g = f * f %}{% set h = g * g %}{{ h * h }}",
            "the number … * … is too large",
            id="product",
        ),
    ],
)
def test_a_costly_template_is_refused_by_validate_within_bounds(tmp_path, subject, refusal):
    path, line = with_subject(tmp_path, subject)
    result, peak, took = measured("validate", str(path), "--output", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"{path}:{line}:14: delivery.email.subject: refused by the template sandbox: {refusal}; "
        f"{SUBJECT_HINT}"
    )
    assert peak < 300, peak  # MB; validate alone takes about 100
    assert took < 25, took  # s; validate alone takes a few


@pytest.mark.parametrize(
    ("where", "refusal"),
    [
        pytest.param(
            "levenshtein(lpad(amount::varchar, 100000, 'x'), lpad(amount::varchar, 100000, 'y')) > 0",
            "function levenshtein() is not allowed: its cost grows with the product of its texts' lengths",
            id="levenshtein",
        ),
        pytest.param(
            "jaro_winkler_similarity(lpad(amount::varchar, 100000, 'x'), amount::varchar) > 0",
            "function jaro_winkler_similarity() is not allowed: its cost grows with the product of its "
            "texts' lengths",
            id="jaro_winkler",
        ),
        pytest.param(
            "length(lpad(amount::varchar, 200000, 'x')) > 0",
            "lpad(): its length must be a number written in the expression, at most 10,000",
            id="lpad",
        ),
        pytest.param(  # was an internal error (RecursionError); now refused before DuckDB reads it
            "abs(" * 400 + "amount" + ")" * 400 + " > 0",
            "the expression nests 400 levels deep (parentheses, brackets, CASE), more than the limit of 20; "
            "write it flatter (one CASE with several WHEN instead of CASEs inside CASEs), or compute a part "
            "in a derived source, so that it nests at most 20 levels",
            id="nested",
        ),
        pytest.param(
            "length(printf('%200000s', amount)) > 0",
            "printf(): a width in its format is larger than 10,000",
            id="printf",
        ),
    ],
)
def test_a_costly_sql_expression_is_refused_by_validate_within_bounds(tmp_path, where, refusal):
    path = tiny(tmp_path, 2525, to=["boss@acme.test"], name="costly", where=where)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "where:" in t)
    column = path.read_text().splitlines()[line - 1].index('"') + 1
    result, peak, took = measured("validate", str(path), "--output", str(tmp_path), cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    hint = "" if "; " in refusal else "; write a condition on this source's columns, e.g. stage = 'won'"
    assert result.stderr.splitlines()[0] == f"{path}:{line}:{column}: metrics.revenue.where: {refusal}{hint}"
    assert peak < 300, peak
    assert took < 25, took


def test_a_slow_metric_query_of_a_run_is_stopped_at_the_operators_timeout(tmp_path):
    """DuckDB has no statement timeout: a timer interrupts it after REPORTER_QUERY_TIMEOUT
    seconds (here 0.5; DuckDB stops at the end of a row group, every 122,880 rows). The where
    passes validation (over the first 100,000 rows it is quick); over the whole source it is
    stopped and the run fails with one line."""
    import datetime as dt

    where = "length(sha256(lpad(amount::varchar, 10000, 'x'))) > 0"
    path = tiny(tmp_path, 2525, to=["boss@acme.test"], name="slow", where=where)
    days = [(dt.date(2025, 10, 1) + dt.timedelta(days=i % 396)).isoformat() for i in range(600_000)]
    (tmp_path / "orders.csv").write_text(
        "date,amount\n" + "".join(f"{d},{i % 100}\n" for i, d in enumerate(days))
    )
    env = {**os.environ, "REPORTER_QUERY_TIMEOUT": "0.5", "SOURCE_DATE_EPOCH": "1794000000"}
    start = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "reporter",
            "run",
            str(path),
            "--period",
            "2026-10",
            "--no-send",
            "--output",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - start
    assert result.returncode == 1, result.stderr
    assert (
        "source 'orders': computing its metrics took longer than 0.5 s and was stopped; simplify the "
        "metrics' expr and where, or allow more time with REPORTER_QUERY_TIMEOUT"
    ) in result.stderr
    assert took < 60, took
