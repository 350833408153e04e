"""Derived sources (``type: derived``): one SELECT over other sources of the same file.

The ``sql`` is checked twice before anything runs. sqlglot (dialect duckdb) reads the text: one
statement, a query (SELECT, UNION..., WITH ... SELECT), whose tables are names of ``from`` or of
its own CTEs. DuckDB's own parser then reads it (``json_serialize_sql``), so what is accepted is
what DuckDB will run: no table function (``read_csv``, ``glob``...), no function outside
DuckDB's scalar, aggregate and window functions or on the deny list (``getenv``,
``current_setting``...), no file path used as a table. The locked DuckDB (no file or network
access) in which the query runs is the second wall. Every refusal is named at once, in the same
words whichever parser found it; before either parser, the text's length and nesting are
measured (reporter.config.sqlbounds).

At run time each name of ``from`` is a view ``in_<name>`` over the source's table (its columns as
read, without ``__day``); :func:`rewrite` points the query's tables at them.
"""

from __future__ import annotations

import functools
import graphlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from reporter.config.sqlbounds import MAX_DEPTH, MAX_QUERY_LENGTH, TOO_DEEP, too_deep, too_long, with_frames
from reporter.config.sqlexpr import _DENIED, _functions, scratch

# Table references DuckDB may use in a derived query: tables, joins, subqueries, VALUES, PIVOT.
_TABLE_REFS = frozenset({"BASE_TABLE", "JOIN", "SUBQUERY", "EMPTY", "EXPRESSION_LIST", "PIVOT"})
_STATEMENT_WORDS = {
    "Create": "CREATE",
    "Drop": "DROP",
    "Insert": "INSERT",
    "Update": "UPDATE",
    "Delete": "DELETE",
    "Merge": "MERGE",
    "Copy": "COPY",
    "Attach": "ATTACH",
    "Detach": "DETACH",
    "Pragma": "PRAGMA",
    "Set": "SET",
    "Install": "INSTALL",
    "Use": "USE",
    "Describe": "DESCRIBE",
    "Summarize": "SUMMARIZE",
    "Alter": "ALTER",
    "Command": "a command",
}


class DerivedSqlError(ValueError):
    """The derived source's ``sql`` is refused: ``messages`` says each reason (``str()`` the
    first), ``hint`` how to fix it when it is more precise than the general one."""

    def __init__(self, *messages: str, hint: str = "") -> None:
        super().__init__(messages[0] if messages else "the query is refused")
        self.messages = list(dict.fromkeys(messages)) or [str(self)]
        self.hint = hint


LENGTH_HINT = (
    "move long lists of values into a data file and join it as a source, or split the query "
    "into derived sources that read one another"
)
DEPTH_HINT = (
    f"write the inner parts as CTEs (WITH part AS (select ...) select ... from part) or as derived "
    f"sources of their own, so that no part nests more than {MAX_DEPTH} levels"
)


def input_view(name: str) -> str:
    """The view a derived query reads source ``name`` through."""
    return f"in_{name}"


def check_sql(text: str, inputs: Sequence[str]) -> None:
    """Raise DerivedSqlError unless ``text`` is one query reading only the sources ``inputs``;
    its ``messages`` name every refused table, function and parameter at once. The text's
    length and nesting are measured first (reporter.config.sqlbounds), before any parser."""
    long = too_long(text, "the query", MAX_QUERY_LENGTH)
    if long is not None:
        raise DerivedSqlError(long, hint=LENGTH_HINT)
    deep = too_deep(text, "the query")
    if deep is not None:
        raise DerivedSqlError(deep, hint=DEPTH_HINT)
    try:
        tree = with_frames(lambda: _parse(text))  # the room it will have at run time, or refused
        ctes, refused = _check_sqlglot(tree, set(inputs))
        if _is_query(tree):  # DuckDB's reading: a second opinion, in the same words (once each)
            try:
                refused += _check_duckdb(text, set(inputs), ctes)
            except DerivedSqlError as exc:
                refused += exc.messages
    except (RecursionError, MemoryError):
        raise DerivedSqlError(f"the query {TOO_DEEP}", hint=DEPTH_HINT) from None
    if refused:
        raise DerivedSqlError(*refused)


def rewrite(text: str, inputs: Sequence[str]) -> str:
    """The checked query in DuckDB's SQL, each source of ``inputs`` read through its view
    (``leads`` becomes ``in_leads AS leads``, so ``leads.origin`` still names its column)."""
    from sqlglot import exp

    tree = _parse(text)
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        name = table.name
        if name in inputs and name not in ctes and not table.args.get("db"):
            alias = table.alias or name
            table.set("this", exp.to_identifier(input_view(name), quoted=True))
            table.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
    return str(tree.sql(dialect="duckdb"))


def compose(text: str, inputs: Mapping[str, tuple[str | None, str | None]], dialect: str) -> str:
    """The checked query for a database (sqlglot ``dialect``): each source of ``inputs`` (name →
    its ``table``, or its ``query`` in that dialect) in place of its name, aliased by it."""
    import sqlglot
    from sqlglot import exp

    tree = _parse(text)
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        name = table.name
        if name not in inputs or name in ctes or table.args.get("db"):
            continue
        alias = table.alias or name
        table_name, query = inputs[name]
        if table_name is not None:
            new: Any = exp.to_table(table_name, dialect=dialect)
            new.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        else:
            inner = sqlglot.parse_one((query or "").strip().rstrip(";"), read=dialect)
            new = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(alias)))
        table.replace(new)
    from reporter.config.sql import null_divisors

    return str(null_divisors(tree).sql(dialect=dialect))


def create_sql(name: str, columns: Sequence[tuple[str, str]]) -> str:
    """An empty table ``in_<name>`` with these columns and types (validation's stand-in)."""
    cols = ", ".join(f"{_quote(c)} {t}" for c, t in columns)
    return f"CREATE TABLE {_quote(input_view(name))} ({cols})"


def describe(text: str, inputs: Mapping[str, Sequence[tuple[str, str]]]) -> list[tuple[str, str]]:
    """(column, type) of the checked query over empty tables of its inputs' columns, in a
    locked DuckDB of its own; DerivedSqlError with DuckDB's reason when it does not bind."""
    import duckdb

    from reporter.config.sql import connect

    con = connect()
    try:
        for name, columns in inputs.items():
            con.execute(create_sql(name, columns))
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        query = with_frames(lambda: rewrite(text, list(inputs)))
        rows = con.execute(f"DESCRIBE {query}").fetchall()
    except (RecursionError, MemoryError):
        raise DerivedSqlError(f"the query {TOO_DEEP}", hint=DEPTH_HINT) from None
    except duckdb.Error as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DerivedSqlError(f"the query does not run on its sources' columns: {message}") from None
    finally:
        con.close()
    return [(str(r[0]), str(r[1])) for r in rows]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def order(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """Derived sources in an order where each comes after the derived sources it reads; raises
    graphlib.CycleError (its args[1] is the cycle) when they read each other."""
    sorter = graphlib.TopologicalSorter({n: [d for d in deps if d in graph] for n, deps in graph.items()})
    return list(sorter.static_order())


def cycle_text(cycle: Sequence[str]) -> str:
    """A cycle as ``a → b → a``, starting from its first name in alphabetical order."""
    ring = list(cycle[:-1]) if len(cycle) > 1 and cycle[0] == cycle[-1] else list(cycle)
    start = ring.index(min(ring))
    ring = ring[start:] + ring[:start]
    return " → ".join([*ring, ring[0]])


def files_behind(name: str, sources: Mapping[str, Any]) -> list[str]:
    """The non-derived sources behind source ``name``, through derived sources, in order of
    first appearance."""
    seen: dict[str, None] = {}

    def walk(n: str, trail: tuple[str, ...]) -> None:
        src = sources.get(n)
        if src is None or n in trail:
            return
        if src.type != "derived":
            seen.setdefault(n)
            return
        for dep in src.from_ or []:
            walk(dep, (*trail, n))

    walk(name, ())
    return list(seen)


# -- the checks ------------------------------------------------------------------------------


def _parse(text: str) -> Any:
    """The one statement of ``text`` (sqlglot, dialect duckdb)."""
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    if not text or not text.strip():
        raise DerivedSqlError("the query is empty")
    quiet = logging.getLogger("sqlglot")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "falling back to parsing as a Command": refused below
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except (ParseError, TokenError) as exc:
        # DuckDB's parser names the word at fault ('syntax error at or near "selct"'), where
        # sqlglot's words are its own internals ("Required keyword: 'expression' missing for
        # <class 'sqlglot.expressions.core.Mul'>"): its message first, sqlglot's without one.
        first = _duckdb_parse_error(text) or (str(exc).strip().splitlines() or ["cannot parse it"])[0]
        raise DerivedSqlError(f"not valid SQL ({first})") from None
    finally:
        quiet.setLevel(level)
    if len(statements) != 1:
        raise DerivedSqlError(f"one SELECT only, found {len(statements)} statements (a ';' ends the first)")
    return statements[0]


def _is_query(tree: Any) -> bool:
    from sqlglot import exp

    return isinstance(tree, exp.Query)


def _duckdb_parse_error(text: str) -> str | None:
    """DuckDB's own parser error for ``text`` (parsed only, never run), or None."""
    try:
        raw = scratch().execute("select json_serialize_sql(?)", [text]).fetchone()
        tree = json.loads(str(raw[0])) if raw else {}
    except Exception:  # its message is a nicety: sqlglot's is used without it
        return None
    if not isinstance(tree, dict) or not tree.get("error"):
        return None
    lines = str(tree.get("error_message", "")).strip().splitlines()
    return lines[0] if lines else None


def _check_sqlglot(tree: Any, inputs: set[str]) -> tuple[set[str], list[str]]:
    """The CTE names, and every refusal of the statement's kind, tables and functions as sqlglot
    reads them (in the order of a walk from the top; a statement that is not a query is refused
    alone: its parts are not a query's)."""
    from sqlglot import exp

    if not isinstance(tree, exp.Query):
        kind = _STATEMENT_WORDS.get(type(tree).__name__, type(tree).__name__.upper())
        return set(), [f"only a SELECT is allowed, not {kind}"]
    refused: list[str] = []
    if any(with_.args.get("recursive") for with_ in tree.find_all(exp.With)):
        refused.append("WITH RECURSIVE is not allowed")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    for node in tree.walk():
        if isinstance(node, exp.Table):
            refused.extend(_check_table(node, inputs, ctes))
        elif isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in _DENIED:
                refused.append(f"function {name}() is not allowed: it reads the host, not the sources")
        elif isinstance(node, exp.Placeholder | exp.Parameter):
            refused.append("parameters ($1, ?) are not allowed")
    return ctes, refused


def _check_table(node: Any, inputs: set[str], ctes: set[str]) -> list[str]:
    from sqlglot import exp

    target = node.this
    if not isinstance(target, exp.Identifier):
        name = target.name if isinstance(target, exp.Anonymous) else target.sql_name()
        return [f"table function {name.lower()}() is not allowed"]
    if node.args.get("db") or node.args.get("catalog"):
        qualified = ".".join(part.name for part in node.parts)
        return [f"'{qualified}': name a source alone, without a schema"]
    name = target.name
    if any(ch in name for ch in "./\\*?:~") or name.startswith("$"):
        return [f"'{name}' reads a file, not a source"]
    if name not in inputs and name not in ctes:
        known = ", ".join(sorted(inputs)) or "nothing"
        return [f"table '{name}' is not in 'from' ({known})"]
    return []


def _check_duckdb(text: str, inputs: set[str], ctes: set[str]) -> list[str]:
    """The same query as DuckDB parses it: one SELECT (else DerivedSqlError), then every refusal
    of its tables and functions."""
    raw = scratch().execute("select json_serialize_sql(?)", [text]).fetchone()
    tree: dict[str, Any] = json.loads(str(raw[0])) if raw else {"error": True}
    if tree.get("error"):
        message = str(tree.get("error_message", "not valid SQL")).strip().splitlines()[0]
        raise DerivedSqlError(f"not valid SQL ({message})")
    statements: list[Any] = tree.get("statements") or []
    if len(statements) != 1:
        raise DerivedSqlError(f"one SELECT only, found {len(statements)} statements (a ';' ends the first)")
    names = inputs | ctes | _duckdb_ctes(statements[0])
    refused: list[str] = []
    for item in _walk(statements[0]):
        try:
            if "class" in item:
                _check_expression(item)
            else:
                _check_reference(item, inputs, names)
        except DerivedSqlError as exc:
            refused.extend(exc.messages)
    return refused


def _check_reference(item: dict[str, Any], inputs: set[str], names: set[str]) -> None:
    """A table reference of DuckDB's tree: a source of ``from`` or a CTE, a join, a subquery.
    A refusal sqlglot can make too is worded as sqlglot's (one mistake, one message)."""
    ref = item.get("type")
    if ref == "TABLE_FUNCTION":
        function = item.get("function") or {}
        name = str(function.get("function_name", "")).lower() if isinstance(function, dict) else ""
        raise DerivedSqlError(f"table function {name or '?'}() is not allowed")
    if ref not in _TABLE_REFS:
        raise DerivedSqlError(f"a {str(ref).lower().replace('_', ' ')} is not allowed in FROM")
    if item.get("at_clause"):
        raise DerivedSqlError("AT (...) is not allowed: read the sources as they are")
    if ref == "BASE_TABLE":
        name = str(item.get("table_name"))
        qualified = [str(item.get(k)) for k in ("catalog_name", "schema_name") if item.get(k)]
        if qualified:
            raise DerivedSqlError(f"'{'.'.join([*qualified, name])}': name a source alone, without a schema")
        if any(ch in name for ch in "./\\*?:~") or name.startswith("$"):
            raise DerivedSqlError(f"'{name}' reads a file, not a source")
        if name not in names:
            known = ", ".join(sorted(inputs)) or "nothing"
            raise DerivedSqlError(f"table '{name}' is not in 'from' ({known})")


def _check_expression(item: dict[str, Any]) -> None:
    """An expression of DuckDB's tree: only DuckDB's own scalar, aggregate and window functions
    outside the deny list; no parameter."""
    cls = item.get("class")
    if cls == "PARAMETER":
        raise DerivedSqlError("parameters ($1, ?) are not allowed")
    if cls not in ("FUNCTION", "WINDOW", "AGGREGATE"):
        return
    scalar, aggregate, table_functions = _functions()
    scalar = scalar | _macros()
    name = str(item.get("function_name", "")).lower()
    if item.get("schema") or item.get("catalog"):
        raise DerivedSqlError(f"qualified function names are not allowed: {name}")
    if name in _DENIED:
        raise DerivedSqlError(f"function {name}() is not allowed: it reads the host, not the sources")
    if name in table_functions and name not in scalar | aggregate:
        raise DerivedSqlError(f"table function {name}() is not allowed")
    if name not in scalar | aggregate and not item.get("is_operator"):
        raise DerivedSqlError(f"function {name}() is not allowed")


@functools.cache
def _macros() -> frozenset[str]:
    """DuckDB's built-in scalar macros (``list_sum``, ``date_add``...), less the deny list."""
    rows = (
        scratch()
        .execute("select distinct lower(function_name) from duckdb_functions() where function_type = 'macro'")
        .fetchall()
    )
    return frozenset(str(r[0]) for r in rows) - _DENIED


def _duckdb_ctes(node: Any) -> set[str]:
    found: set[str] = set()
    for item in _walk_all(node):
        cte_map = item.get("cte_map")
        if isinstance(cte_map, dict):
            found |= {str(e.get("key")) for e in cte_map.get("map", []) if isinstance(e, dict)}
    return found


def _walk_all(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict of a JSON tree, parents before children, in document order: a loop over a
    stack of its own, so however deep the tree, no Python recursion."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every expression (it has a ``class``) and table reference (a ``type`` and an ``alias``,
    no ``class``) of DuckDB's parse tree."""
    for item in _walk_all(node):
        if "class" in item or ("type" in item and "alias" in item):
            yield item
