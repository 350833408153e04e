"""Limits on the SQL a configuration holds: a derived source's `sql`, a SQL source's `query`, a
metric's `expr` and `where` are measured (length, nesting) before any parser reads them, and
what still nests too deep for a parser is refused with its line, never a traceback.

Before these limits, 60 nested parentheses in a derived query stopped `reporter validate` with an
internal error (RecursionError, exit 1), and an IN list of 100,000 values took 17 s and 500 MB."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reporter.cli import main
from reporter.config import derived
from reporter.config.sqlbounds import (
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_QUERY_LENGTH,
    PARSER_FRAMES,
    nesting,
    with_frames,
)
from reporter.config.sqlexpr import ExpressionError, check_expression
from tests.conftest import ROOT, write_csv

HEAD = """report: {id: bounds, title: Bounds}
sources:
  leads: {type: csv, path: data/leads.csv, date_column: first_contact_date}
  deals: {type: csv, path: data/deals.csv, date_column: won_date}
"""
LEADS = ("first_contact_date", "origin", "mql_id")

QUERY_DEPTH_HINT = (
    "write the inner parts as CTEs (WITH part AS (select ...) select ... from part) or as derived "
    "sources of their own, so that no part nests more than 20 levels"
)
QUERY_LENGTH_HINT = (
    "move long lists of values into a data file and join it as a source, or split the query into "
    "derived sources that read one another"
)
EXPR_DEPTH_HINT = (
    "write it flatter (one CASE with several WHEN instead of CASEs inside CASEs), or compute a part "
    "in a derived source, so that it nests at most 20 levels"
)
EXPR_LENGTH_HINT = (
    "for a long list of values, keep them in a column of the data (or a source joined to this one in "
    "a derived source) and test that column"
)
DERIVED_HINT = "a derived source is one SELECT over the sources in 'from' (see Joining sources in the docs)"
TOO_DEEP = "is nested too deeply to be checked (operators such as NOT or - inside one another)"


def _data(folder: Path) -> None:
    write_csv(folder / "data" / "leads.csv", LEADS, [("2026-01-02", "social", "m1")])
    write_csv(
        folder / "data" / "deals.csv", ["mql_id", "seller_id", "won_date"], [("m1", "s1", "2026-01-05")]
    )


def _select(inner: str) -> str:
    return f"select {inner} as x, first_contact_date from leads"


# (name, sql, message, hint): each refused at its sql key, in one round
HOSTILE_SQL = [
    (
        "parens",
        _select("(" * 5000 + "1" + ")" * 5000),
        "the query nests 5000 levels deep (parentheses, brackets, CASE), more than the limit of 20",
        QUERY_DEPTH_HINT,
    ),
    (
        "subqueries",
        "select * from " + "(select * from " * 2000 + "leads" + ")" * 2000,
        "the query nests 2000 levels deep (parentheses, brackets, CASE), more than the limit of 20",
        QUERY_DEPTH_HINT,
    ),
    (
        "cases",
        _select("case when true then " * 2000 + "1" + " end" * 2000),
        "the query nests 2000 levels deep (parentheses, brackets, CASE), more than the limit of 20",
        QUERY_DEPTH_HINT,
    ),
    (
        "string",
        _select("'" + "a" * 400_000 + "'"),
        "the query is 400,046 characters long, more than the limit of 50,000",  # and its line end
        QUERY_LENGTH_HINT,
    ),
    (
        "in_list",
        "select * from leads where origin in (" + ",".join(["'x'"] * 100_000) + ")",
        "the query is 400,038 characters long, more than the limit of 50,000",
        QUERY_LENGTH_HINT,
    ),
    (  # no parenthesis: under the limits, and still too deep for sqlglot's parser (RecursionError)
        "nots",
        "select * from leads where " + "not " * 300 + "true",
        f"the query {TOO_DEEP}",
        QUERY_DEPTH_HINT,
    ),
]
# (metric, key, text, message, hint)
HOSTILE_EXPRESSIONS = [
    (
        "nested",
        "where",
        "abs(" * 400 + "1" + ")" * 400 + " > 0",
        "the expression nests 400 levels deep (parentheses, brackets, CASE), more than the limit of 20",
        EXPR_DEPTH_HINT,
    ),
    (
        "cases",
        "expr",
        "case when true then " * 300 + "1" + " end" * 300,
        "the expression nests 300 levels deep (parentheses, brackets, CASE), more than the limit of 20",
        EXPR_DEPTH_HINT,
    ),
    (
        "listed",
        "where",
        "origin in (" + ",".join(["'x'"] * 20_000) + ")",
        "the expression is 80,011 characters long, more than the limit of 10,000",
        EXPR_LENGTH_HINT,
    ),
    (  # under the limits; DuckDB's tree, read back and walked, is deeper than Python goes
        "nots",
        "where",
        "not " * 600 + "true",
        f"the expression {TOO_DEEP}",
        EXPR_DEPTH_HINT,
    ),
]
FORMULA = "(" * 5000 + "n" + ")" * 5000
FORMULA_ERROR = (
    "kpis.deep.formula: the formula is longer than 4000 characters; a formula uses + - * / ( ), "
    "numbers and metric or KPI names, e.g. leads / sessions"
)


def _hostile_config(folder: Path) -> tuple[Path, list[str]]:
    """A YAML holding every hostile input above, and the lines validate must print (the file's
    name left out), in order."""
    _data(folder)
    lines = HEAD.splitlines()
    expected: list[tuple[int, str]] = []
    for name, sql, message, hint in HOSTILE_SQL:
        lines += [
            f"  {name}:",
            "    type: derived",
            "    from: [leads]",
            "    date_column: first_contact_date",
        ]
        lines += ["    sql: |", f"      {sql}"]
        note = f"the columns of sources.{name} are checked once its sql is valid"
        expected.append((len(lines) - 1, f"10: sources.{name}.sql: {message}; {hint}; {note}"))
    lines += ["metrics:", "  n: {source: leads, agg: count}"]
    for metric, key, text, message, hint in HOSTILE_EXPRESSIONS:
        agg = "sum" if key == "expr" else "count"
        lines += [f"  {metric}:", "    source: leads", f"    agg: {agg}", f'    {key}: "{text}"']
        column = len(f"    {key}: ") + 1
        expected.append((len(lines), f"{column}: metrics.{metric}.{key}: {message}; {hint}"))
    lines += ["kpis:", "  n: {formula: n}", f"  deep: {{formula: '{FORMULA}'}}"]
    expected.append((len(lines), f"19: {FORMULA_ERROR}"))
    path = folder / "hostile.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert path.stat().st_size < 1024 * 1024  # under the YAML's own limit
    ordered = sorted(expected, key=lambda e: (e[1].split(": ")[1].split(".")[0] != "sources", e[0]))
    return path, [f"{line}:{rest}" for line, rest in ordered]


def _printed(err: str, path: Path) -> list[str]:
    return [line.removeprefix(f"{path}:") for line in err.splitlines() if line.startswith(str(path))]


def test_hostile_sql_is_refused_in_one_round_by_a_validate_process_within_seconds(tmp_path):
    path, expected = _hostile_config(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "reporter", "validate", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - start
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 2, done.stderr[-3000:]
    assert sorted(_printed(done.stderr, path)) == sorted(expected)
    assert done.stderr.splitlines()[-1] == f"{len(expected)} errors: nothing was run or sent."
    assert took < 20, took  # about 2 s on an idle machine


def test_hostile_sql_in_process_names_each_at_its_line(tmp_path, capsys):
    path, expected = _hostile_config(tmp_path)
    assert main(["validate", str(path)]) == 2
    assert sorted(_printed(capsys.readouterr().err, path)) == sorted(expected)


# -- every refusal of a derived query, at once ----------------------------------------------------

MANY = (
    "select getenv('HOME') as home, current_setting('threads') as t, foo_bar(1) as f, "
    "json_serialize_sql('select 1') as j, main.abs(1) as a, l.first_contact_date "
    "from leads l, read_csv('x.csv') r, glob('*') g, campaigns c, information_schema.tables it, "
    "'/etc/passwd' p, read_csv('y.csv') again where l.origin = $1"
)
MANY_REFUSALS = [
    "function getenv() is not allowed: it reads the host, not the sources",
    "function current_setting() is not allowed: it reads the host, not the sources",
    "function json_serialize_sql() is not allowed: it reads the host, not the sources",
    "table function read_csv() is not allowed",
    "table function glob() is not allowed",
    "table 'campaigns' is not in 'from' (leads)",
    "'information_schema.tables': name a source alone, without a schema",
    "'/etc/passwd' reads a file, not a source",
    "parameters ($1, ?) are not allowed",
    "function foo_bar() is not allowed",
    "qualified function names are not allowed: abs",
]


def test_every_refusal_of_a_derived_query_is_named_at_once(tmp_path, capsys):
    _data(tmp_path)
    path = tmp_path / "many.yaml"
    path.write_text(
        HEAD
        + "  many:\n    type: derived\n    from: [leads]\n    date_column: first_contact_date\n"
        + f"    sql: >-\n      {MANY}\n"
        + "metrics:\n  n: {source: leads, agg: count}\nkpis:\n  n: {formula: n}\n",
        encoding="utf-8",
    )
    assert main(["validate", str(path)]) == 2
    note = "; the columns of sources.many are checked once its sql is valid"
    # printed in the order of their messages; the first found carries the note
    assert _printed(capsys.readouterr().err, path) == sorted(
        f"9:10: sources.many.sql: {message}; {DERIVED_HINT}{note if i == 0 else ''}"
        for i, message in enumerate(MANY_REFUSALS)
    )


def test_the_refusals_are_those_of_each_reading_once_each():
    # sqlglot and DuckDB both refuse read_csv, the file and the unknown table: said once each
    with pytest.raises(derived.DerivedSqlError) as caught:
        derived.check_sql("select * from read_csv('a') r, 'b.csv' b, x, read_csv('a') again", ["leads"])
    assert caught.value.messages == [
        "table function read_csv() is not allowed",
        "'b.csv' reads a file, not a source",
        "table 'x' is not in 'from' (leads)",
    ]
    # a statement that is not a query is refused alone
    with pytest.raises(derived.DerivedSqlError) as caught:
        derived.check_sql("copy (select * from read_csv('a')) to 'x'", ["leads"])
    assert caught.value.messages == ["only a SELECT is allowed, not COPY"]


# -- the limits, measured without a parser --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("select 1", 0),
        ("((1))", 2),
        ("[{'a': (1)}]", 3),
        ("'((('", 0),
        ("'it''s (' || (1)", 1),
        ("E'\\'((' || (1)", 1),  # a backslash escapes the quote in an E'' string
        ("'\\' || (1)", 1),  # not in a plain one: the string ends at the second quote
        ('"a (((" + (1)', 1),
        ('"a "" ((" + (1)', 1),
        ("-- (((\n(1)", 1),
        ("/* ((( /* ( */ ( */ (1)", 1),  # block comments nest
        ("$$ ((( $$ || (1)", 1),
        ("$t$ ((( $$ ( $t$ || ((1))", 2),
        ("x$1 || ((1))", 2),
        ("case when a then case when b then 1 end end", 2),
        ("CASE WHEN (a) THEN 1 END", 2),
        ("casex endx (1)", 1),
        ('"case" || endpoint || 1e5 || (1)', 1),
        ("'unclosed ((", 0),
        ("/* unclosed ((", 0),
        (")))((", 2),
    ],
)
def test_nesting_is_measured_outside_literals_and_comments(text, depth):
    assert nesting(text) == depth


def test_a_ten_megabyte_query_is_refused_before_any_parser():
    text = _select("'" + "a" * 10_000_000 + "'")
    start = time.monotonic()
    with pytest.raises(derived.DerivedSqlError) as caught:
        derived.check_sql(text, ["leads"])
    assert time.monotonic() - start < 1
    assert caught.value.messages == ["the query is 10,000,045 characters long, more than the limit of 50,000"]
    assert caught.value.hint == QUERY_LENGTH_HINT
    with pytest.raises(ExpressionError, match=r"^the expression is 10,000,002 characters long, more"):
        check_expression("'" + "a" * 10_000_000 + "'", ["origin"])


# At the limit, each of sqlglot's deepest constructs still parses, binds and is rewritten: the
# limit is where the RecursionError cannot happen (40 levels of these made it happen).
AT_THE_LIMIT = {
    "parentheses": _select("(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH),
    "functions": _select("abs(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH),
    "coalesce": _select("coalesce(null, " * MAX_DEPTH + "1" + ")" * MAX_DEPTH),
    "scalar subqueries": _select("(select " * MAX_DEPTH + "1" + ")" * MAX_DEPTH),
    "negations": _select("-(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH),
    "cases": _select("case when true then " * MAX_DEPTH + "1" + " end" * MAX_DEPTH),
    "lists": _select("[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH),
    "exists": "select * from leads where " + "exists (select 1 where " * MAX_DEPTH + "true" + ")" * MAX_DEPTH,
    "subqueries": "select * from " + "(select * from " * MAX_DEPTH + "leads" + ")" * MAX_DEPTH,
    "long": "select * from leads where origin in ("
    + ",".join(["'x'"] * ((MAX_QUERY_LENGTH - 40) // 4))
    + ")",
}


@pytest.mark.parametrize("sql", AT_THE_LIMIT.values(), ids=AT_THE_LIMIT.keys())
def test_a_query_at_the_limits_is_checked_bound_and_rewritten(sql):
    assert len(sql) <= MAX_QUERY_LENGTH
    derived.check_sql(sql, ["leads"])
    columns = derived.describe(sql, {"leads": [("first_contact_date", "DATE"), ("origin", "VARCHAR")]})
    assert columns[-1][0] == "first_contact_date" or columns == [
        ("first_contact_date", "DATE"),
        ("origin", "VARCHAR"),
    ]
    assert derived.compose(sql, {"leads": ("leads", None)}, "postgres")
    deeper = sql.replace("select ", "select (", 1).replace(" as x", ") as x", 1)
    if " as x" in sql and nesting(sql) == MAX_DEPTH:
        with pytest.raises(derived.DerivedSqlError, match=r"nests 21 levels deep"):
            derived.check_sql(deeper, ["leads"])


def test_an_expression_at_the_limits_is_checked_and_one_beyond_is_not():
    at = "abs(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH + " > 0"
    assert check_expression(at, ["origin"]) == []
    with pytest.raises(ExpressionError, match=r"^the expression nests 21 levels deep"):
        check_expression("(" + at + ")", ["origin"])
    listed = "origin in (" + ",".join(["'x'"] * ((MAX_EXPRESSION_LENGTH - 12) // 4)) + ")"
    assert len(listed) <= MAX_EXPRESSION_LENGTH
    assert check_expression(listed, ["origin"]) == ["origin"]


def test_a_database_query_and_metric_beyond_the_limits_are_refused_at_their_line(
    tmp_path, capsys, monkeypatch
):
    # validate does not connect to a database: the metric's columns are unknown, its limits are not
    db = tmp_path / "shop.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("create table orders (day text, amount real)")
    monkeypatch.setenv("REPORTER_CONNECTION_SHOP", f"sqlite:///{db}")
    deep = "select * from " + "(select * from " * 30 + "orders" + ")" * 30
    long = "select * from orders where amount in (" + ",".join(["1"] * 30_000) + ")"
    path = tmp_path / "db.yaml"
    path.write_text(
        "report: {id: db, title: DB}\nsources:\n"
        f"  deep: {{type: sql, connection: shop, date_column: day, query: '{deep}'}}\n"
        f"  long: {{type: sql, connection: shop, date_column: day, query: '{long}'}}\n"
        "  orders: {type: sql, connection: shop, date_column: day, table: orders}\n"
        "metrics:\n  n: {source: deep, agg: count}\n  m: {source: long, agg: count}\n"
        f'  big: {{source: orders, agg: count, where: "{"not " * 100}amount > 0"}}\n'
        "kpis:\n  n: {formula: n + m + big}\n",
        encoding="utf-8",
    )
    assert main(["validate", str(path)]) == 2
    assert _printed(capsys.readouterr().err, path) == [
        "3:64: sources.deep.query: the query nests 30 levels deep (parentheses, brackets, CASE), more than "
        "the limit of 20; write the inner parts as CTEs (WITH part AS (select ...) select ... from part), "
        "or make the query a view in the database and name it with table:, so that no part nests more "
        "than 20 levels",
        "4:64: sources.long.query: the query is 60,038 characters long, more than the limit of 50,000; "
        "keep long lists of values in a table of the database and join it, or make the query a view in "
        "the database and name it with table:",
        f"9:44: metrics.big.where: the expression {TOO_DEEP}; {EXPR_DEPTH_HINT}",
    ]


def test_a_check_parses_with_the_same_room_however_deep_its_caller_stands():
    def deep(n: int) -> int:
        return 0 if n == 0 else 1 + deep(n - 1)

    def from_depth(n: int, fn):
        return fn() if n == 0 else from_depth(n - 1, fn)

    for caller in (0, 300, 600):  # the caller's own depth does not change the room
        assert from_depth(caller, lambda: with_frames(lambda: deep(PARSER_FRAMES - 20))) == PARSER_FRAMES - 20
        with pytest.raises(RecursionError):
            from_depth(caller, lambda: with_frames(lambda: deep(PARSER_FRAMES)))


def test_an_expression_duckdb_reads_but_a_pushed_down_run_could_not_is_refused():
    import sqlglot

    where = "not " * 100 + "origin = 'x'"  # no parenthesis: under the limits
    # DuckDB reads it; sqlglot, which translates it for a database at run time, cannot
    from reporter.config.sqlexpr import _check_expression

    assert _check_expression(where, ["origin"]) == ["origin"]
    with pytest.raises(RecursionError):
        sqlglot.parse_one(f"SELECT count(*) FILTER (WHERE ({where})) FROM t", read="duckdb")
    # over a file source DuckDB alone runs it: accepted, and sqlglot is not even imported for it
    assert check_expression(where, ["origin"]) == ["origin"]
    from reporter.config.sqlexpr import bound_problem

    assert bound_problem(where) is None
    # over a database (a sql or derived source), a run may push it down: refused
    assert bound_problem(where, pushed=True) == (f"the expression {TOO_DEEP}", EXPR_DEPTH_HINT)


def test_the_sql_of_one_file_is_bounded_together(tmp_path, capsys):
    # each where is within its own limit; together they are not: the one that crosses the
    # file's budget is refused, the ones after it are not parsed (nor named again)
    _data(tmp_path)
    where = "origin <> '" + "a" * 8_988 + "'"  # 9,000 characters: cheap to parse, one literal
    metrics = "".join(f'  m{i:02d}: {{source: leads, agg: count, where: "{where}"}}\n' for i in range(30))
    path = tmp_path / "many.yaml"
    path.write_text(HEAD + "metrics:\n" + metrics + "kpis:\n  n: {formula: m00}\n", encoding="utf-8")
    start = time.monotonic()
    assert main(["validate", str(path)]) == 2
    assert time.monotonic() - start < 20
    assert _printed(capsys.readouterr().err, path) == [
        "28:43: metrics.m22.where: the SQL of this file reaches 207,000 characters here, more than the "
        "limit of 200,000 for one file; it and the SQL after it are not checked; split the report into "
        "several files, or keep long lists of values in the data"
    ]
