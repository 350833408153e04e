"""Check a metric's ``where``/``expr``: one scalar SQL expression over its source's columns.

DuckDB's own parser reads the expression (``json_serialize_sql``), so what we accept is exactly
what DuckDB will run. We then walk the tree and refuse subqueries, window and aggregate
functions, table functions, unknown functions, qualified or unknown columns. The DuckDB lock in
``sources.py`` is the second wall; this is the first, and the one that gives a clear message.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import duckdb

from reporter.config.sqlbounds import (
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    TOO_DEEP,
    too_deep,
    too_long,
    with_frames,
)

_DENIED = frozenset(
    {
        "current_setting",
        "current_query",
        "current_query_id",
        "getenv",
        "json_serialize_sql",
        "json_deserialize_sql",
        "json_execute_serialized_sql",
        "sql_auto_complete",
    }
)


# Functions whose cost grows with the product of their texts' lengths: two texts of 100,000
# characters are 10**10 steps, per row. Refused: a metric has no need of them.
_QUADRATIC = frozenset(
    {"levenshtein", "editdist3", "damerau_levenshtein", "jaro_similarity", "jaro_winkler_similarity"}
)
# Functions that build a value as long as one of their arguments says (its position): that
# argument must be a number written in the expression, at most MAX_BUILT (each pads or cuts to
# that length: nested, they do not multiply it).
_SIZED = {"lpad": 1, "rpad": 1, "list_resize": 1, "array_resize": 1, "bar": 3}
_FORMATS = frozenset({"printf", "format"})  # a width in the format text builds a value that long
MAX_BUILT = 10_000


class ExpressionError(ValueError):
    """The expression is not acceptable; the message says why, ``hint`` how to fix it when it
    is more precise than the caller's general one."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


LENGTH_HINT = (
    "for a long list of values, keep them in a column of the data (or a source joined to this one "
    "in a derived source) and test that column"
)
DEPTH_HINT = (
    f"write it flatter (one CASE with several WHEN instead of CASEs inside CASEs), or compute a "
    f"part in a derived source, so that it nests at most {MAX_DEPTH} levels"
)


@functools.lru_cache(maxsize=1024)
def bound_problem(text: str, *, pushed: bool = False) -> tuple[str, str] | None:
    """(message, hint) for an expression beyond the limits, or None. Its length and nesting are
    measured first, without parsing (reporter.config.sqlbounds); then, for a metric a run may
    push down to its database (``pushed``: a sql or derived source), sqlglot, which translates
    it then, must read it in the room it has then (a file source's metric never meets sqlglot:
    importing and running it there cost a run of the demo about 0.1 s for nothing). Needs no
    columns: validation asks it of every metric, whatever its source."""
    long = too_long(text, "the expression", MAX_EXPRESSION_LENGTH)
    if long is not None:
        return long, LENGTH_HINT
    deep = too_deep(text, "the expression")
    if deep is not None:
        return deep, DEPTH_HINT
    if not pushed:
        return None
    try:
        with_frames(lambda: _sqlglot_reads(text))
    except (RecursionError, MemoryError):
        return f"the expression {TOO_DEEP}", DEPTH_HINT
    return None


_LOCAL = threading.local()


def scratch() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for checking (parsing expressions, reading a file's header): one per
    thread and process, opened once. Opening a connection costs 10-50 ms; validating a report
    used to open one per expression and per file. Never used to run a report's SQL. While
    ``lending`` lends one (the validation's own, open anyway), that one: none is opened."""
    lent = getattr(_LOCAL, "lent", None)
    if lent is not None:
        return lent  # type: ignore[no-any-return]
    con = getattr(_LOCAL, "con", None)
    if con is None or _LOCAL.pid != os.getpid():  # a forked child opens its own
        con = _LOCAL.con = duckdb.connect(":memory:")
        _LOCAL.pid = os.getpid()
    return con


@contextlib.contextmanager
def lending(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """``scratch()`` is ``con`` inside the block, in this thread: what it is asked (parsing,
    listing functions, describing a file) needs neither data nor settings, and a connection not
    opened saves 10-50 ms. ``con`` must stay open, and able to read files, while lent."""
    _LOCAL.lent = con
    try:
        yield
    finally:
        _LOCAL.lent = None


@functools.cache
def _functions() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    rows = (
        scratch()
        .execute("select distinct lower(function_name), function_type from duckdb_functions()")
        .fetchall()
    )
    scalar = frozenset(n for n, t in rows if t == "scalar") - _DENIED
    aggregate = frozenset(n for n, t in rows if t in ("aggregate", "window"))
    table = frozenset(n for n, t in rows if t in ("table", "table_macro", "pragma"))
    return scalar, aggregate, table


def check_expression(text: str, columns: Iterable[str]) -> list[str]:
    """Return the referenced columns (as written) or raise ExpressionError."""
    bound = bound_problem(text)
    if bound is not None:
        raise ExpressionError(*bound)
    try:
        return _check_expression(text, columns)
    except (RecursionError, MemoryError):  # DuckDB's tree, read back as JSON, is too deep
        raise ExpressionError(f"the expression {TOO_DEEP}", DEPTH_HINT) from None


def _sqlglot_reads(text: str) -> None:
    """Parse and write ``text`` with sqlglot inside a cast aggregate, as deep as a run that pushes
    a metric down to a database puts it (RecursionError when that would be too deep). Its
    syntax errors are not ours to report: DuckDB, which reads it next, is the judge."""
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(
            f"SELECT CAST(sum(({text})) FILTER (WHERE x) AS DOUBLE) FROM t", read="duckdb"
        )
        tree.sql(dialect="postgres")
    except SqlglotError:
        pass


# Arithmetic written with an operator (``a * b``, ``-a``) is a FUNCTION of the parse tree, named
# by its operator; DuckDB lists each of these as a scalar function (tests/test_sqlexpr.py checks
# it), so an expression with no other function is checked without listing DuckDB's functions,
# which costs 10-30 ms of CPU (and more of waiting on a busy machine) once per process.
OPERATORS = frozenset({"+", "-", "*", "/", "//", "%"})


def _check_expression(text: str, columns: Iterable[str]) -> list[str]:
    node = _select_node(text)
    known = {c.lower(): c for c in columns}
    used: list[str] = []
    for item in _walk(node["select_list"][0]):
        cls = item.get("class")
        _check_allowed(cls)
        if cls == "FUNCTION" and not _operator(item):
            _check_function(item, *_functions())
        if cls == "COLUMN_REF":
            parts = item.get("column_names", [])
            if len(parts) != 1:
                raise ExpressionError(f"'{'.'.join(parts)}': name the column alone, without a table")
            col = parts[0]
            if col.lower() not in known:
                raise ExpressionError(f"unknown column '{col}'")
            used.append(known[col.lower()])
    return used


# DuckDB's division operators and functions: (name in the parse tree) → the divisor's argument
_DIVISIONS = {"/": 1, "//": 1, "%": 1, "divide": 1, "fdiv": 1, "fmod": 1, "mod": 1}


def divisor_columns(text: str, columns: Iterable[str]) -> list[str]:
    """The columns (as ``columns`` spells them) that ``text`` divides by directly (``x / qty``,
    ``x % qty``, ``divide(x, qty)``...), in order, once each; [] when it does not parse."""
    if bound_problem(text) is not None:
        return []
    try:
        tree = json.loads(_serialized(text))
        node = _select_node(text)
    except (ExpressionError, RecursionError, MemoryError):
        return []
    if tree.get("error"):
        return []
    known = {c.lower(): c for c in columns}
    found: list[str] = []
    for item in _walk(node["select_list"][0]):
        at = _DIVISIONS.get(str(item.get("function_name", "")).lower())
        arguments = item.get("arguments") or item.get("children") or []
        if item.get("class") != "FUNCTION" or at is None or len(arguments) <= at:
            continue
        divisor = arguments[at]
        divisor = divisor.get("expression", divisor) if isinstance(divisor, dict) else divisor
        parts = divisor.get("column_names", []) if isinstance(divisor, dict) else []
        if divisor.get("class") == "COLUMN_REF" and len(parts) == 1 and parts[0].lower() in known:
            found.append(known[parts[0].lower()])
    return list(dict.fromkeys(found))


_PREFIX = "SELECT ("  # the text is parsed as the one expression of SELECT (text) FROM t


def _in_users_words(text: str, tree: dict[str, Any]) -> str:
    """DuckDB's syntax error about ``SELECT (text) FROM t``, told about ``text`` alone: the
    parenthesis and the FROM around it are ours, so an error there means the text ended too
    early or left a parenthesis open; one inside it gives its character position."""
    message = str(tree.get("error_message", "not valid SQL"))
    try:
        at = int(tree.get("position", "")) - len(_PREFIX)
    except ValueError:
        return message
    if at >= len(text):
        bare = re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", "", text)  # quoted text aside
        depth = bare.count("(") - bare.count(")")
        if depth > 0:
            return f"{depth} parenthes{'is' if depth == 1 else 'es'} not closed"
        if depth < 0:
            return "a ')' closes a parenthesis that was not opened"
        return "the expression ends too early: something is missing at the end"
    if at >= 0:
        return f"{message}, at character {at + 1}"
    return message


def _select_node(text: str) -> dict[str, Any]:
    """The parsed ``SELECT (text) FROM t``; ExpressionError unless it is that and nothing more."""
    if not text or not text.strip():
        raise ExpressionError("the expression is empty")
    tree = json.loads(_serialized(text))
    if tree.get("error"):
        raise ExpressionError(f"not a valid SQL expression ({_in_users_words(text, tree)})")
    statements = tree.get("statements")
    node = statements[0].get("node", {}) if isinstance(statements, list) and len(statements) == 1 else {}
    frm = node.get("from_table") or {}
    if (
        node.get("type") != "SELECT_NODE"
        or len(node.get("select_list", [])) != 1
        or frm.get("type") != "BASE_TABLE"
        or frm.get("table_name") != "t"
        or node.get("where_clause")
        or node.get("group_expressions")
        or node.get("having")
        or node.get("modifiers")
    ):
        raise ExpressionError("must be a single expression, not a query")
    return dict(node)


def _check_allowed(cls: Any) -> None:
    """Subqueries, window functions, ``*`` and parameters are refused outright."""
    if cls == "SUBQUERY":
        raise ExpressionError("subqueries are not allowed; use only this source's columns")
    if cls == "WINDOW":
        raise ExpressionError("window functions are not allowed here")
    if cls == "STAR" or cls == "COLUMNS":
        raise ExpressionError("'*' is not allowed; name the columns")
    if cls == "PARAMETER":
        raise ExpressionError("parameters ($1, ?) are not allowed")


def _operator(item: dict[str, Any]) -> bool:
    """Is this FUNCTION node one of the arithmetic ``OPERATORS``, unqualified?"""
    name = str(item.get("function_name", "")).lower()
    return name in OPERATORS and not item.get("schema") and not item.get("catalog")


def _check_function(
    item: dict[str, Any], scalar: frozenset[str], aggregate: frozenset[str], table: frozenset[str]
) -> None:
    """Only unqualified scalar functions that DuckDB knows and the deny list leaves in."""
    name = str(item.get("function_name", "")).lower()
    if item.get("schema") or item.get("catalog"):
        raise ExpressionError(f"qualified function names are not allowed: {name}")
    if name in _QUADRATIC:
        raise ExpressionError(
            f"function {name}() is not allowed: its cost grows with the product of its texts' lengths"
        )
    if name == "repeat":  # nested, it multiplies: repeat(repeat(x, 1000), 1000)
        raise ExpressionError("function repeat() is not allowed: it multiplies a text's length")
    if name in _SIZED or name in _FORMATS:
        _check_built(name, item)
        return
    if name in table:
        raise ExpressionError(
            f"table function {name}() is not allowed; an expression may only use this source's own columns"
        )
    if name in aggregate and name not in scalar:
        raise ExpressionError(f"aggregate function {name}() is not allowed here; the metric's agg aggregates")
    if name not in scalar:
        raise ExpressionError(f"function {name}() is not allowed")


def _check_built(name: str, item: dict[str, Any]) -> None:
    """A function that builds a value as long as an argument says: that length is written in the
    expression and at most MAX_BUILT."""
    arguments = [a.get("expression", a) if isinstance(a, dict) else a for a in item.get("arguments", [])]
    arguments = arguments or item.get("children", [])
    if name in _FORMATS:
        text = _literal(arguments[0]) if arguments else None
        if not isinstance(text, str):
            raise ExpressionError(f"{name}(): its format must be a text written in the expression")
        if any(int(n) > MAX_BUILT for n in re.findall(r"\d+", text)):
            raise ExpressionError(f"{name}(): a width in its format is larger than {MAX_BUILT:,}")
        return
    at = _SIZED[name]
    if len(arguments) <= at:
        return  # DuckDB says what is missing
    size = _literal(arguments[at])
    if not isinstance(size, int) or size > MAX_BUILT:
        raise ExpressionError(
            f"{name}(): its length must be a number written in the expression, at most {MAX_BUILT:,}"
        )


def _literal(node: Any) -> str | int | None:
    """The value of a constant of the parse tree (a text or an integer), else None."""
    if not isinstance(node, dict) or node.get("class") != "CONSTANT":
        return None
    literal = node.get("literal")
    if isinstance(literal, dict):
        kind, text = literal.get("kind"), literal.get("text")
        if kind == "STRING" and isinstance(text, str):
            return text
        if kind == "INTEGER" and isinstance(text, str) and text.isdigit():
            return int(text) if len(text) <= 18 else MAX_BUILT + 1
        return None
    value = node.get("value")
    if isinstance(value, dict) and not value.get("is_null"):  # the older tree: a typed value
        raw = value.get("value")
        if isinstance(raw, str | int) and not isinstance(raw, bool):
            return raw
    return None


@functools.lru_cache(maxsize=1024)
def _serialized(text: str) -> str:
    """DuckDB's parse tree of ``SELECT (text) FROM t``, as JSON (the same text parses once)."""
    raw = scratch().execute("select json_serialize_sql(?)", [f"{_PREFIX}{text}) FROM t"]).fetchone()
    return str(raw[0]) if raw else '{"error": true, "error_message": "no answer"}'


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every expression (a dict with a ``class``) of a JSON tree, parents first, in document
    order: a loop over a stack of its own, so however deep the tree, no Python recursion."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class" in item:
                yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
