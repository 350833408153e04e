"""KPI formulas: arithmetic over metric and KPI names, parsed once, evaluated null-safely.

Grammar: numbers, names, ``+ - * /``, unary minus, parentheses, and the functions
``min, max, abs, round, coalesce``. Python's own parser reads it (``ast`` in eval mode); any
node outside that whitelist is refused, so nothing else can run.

Bounds: at most ``MAX_TERMS`` names and numbers, ``MAX_DEPTH`` levels of parentheses and
``MAX_LENGTH`` characters; anything larger is a FormulaSyntaxError, never a RecursionError.

Evaluation: a null operand gives null (except inside ``coalesce``); any division by zero gives
null; a non-finite result becomes null. Never inf, NaN or an exception.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

FUNCTIONS: dict[str, tuple[int, int | None]] = {  # name: (min args, max args)
    "min": (1, None),
    "max": (1, None),
    "abs": (1, 1),
    "round": (1, 2),
    "coalesce": (1, None),
}


MAX_TERMS = 200
MAX_DEPTH = 20
MAX_LENGTH = 4000
_TERM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+\.?\d*|\.\d+")


class FormulaSyntaxError(ValueError):
    """A formula that is not valid; ``offset`` is the 0-based character where it went wrong."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Formula:
    text: str
    tree: ast.expr
    names: tuple[str, ...]  # in order of first appearance

    def evaluate(self, values: Mapping[str, float | None]) -> float | None:
        result = _eval(self.tree, values)
        if result is None or not math.isfinite(result):
            return None
        return result


def parse(text: str) -> Formula:
    """Parse a formula or raise FormulaSyntaxError with a message a manager can act on."""
    if not text.strip():
        raise FormulaSyntaxError("the formula is empty")
    stripped = text.strip()
    opened, closed = stripped.count("("), stripped.count(")")
    if opened != closed:
        raise FormulaSyntaxError(f"unbalanced parentheses: {opened} '(' and {closed} ')'")
    if len(stripped) > MAX_LENGTH:
        raise FormulaSyntaxError(f"the formula is longer than {MAX_LENGTH} characters")
    terms = len(_TERM.findall(stripped))
    if terms > MAX_TERMS:
        raise FormulaSyntaxError(
            f"the formula has {terms} terms, more than {MAX_TERMS}; split it into several KPIs"
        )
    depth = deepest = 0
    for char in stripped:
        depth += 1 if char == "(" else -1 if char == ")" else 0
        deepest = max(deepest, depth)
    if deepest > MAX_DEPTH:
        raise FormulaSyntaxError(f"the formula nests parentheses more than {MAX_DEPTH} levels deep")
    if stripped[-1] in "+-*/(,":
        raise FormulaSyntaxError(
            f"the formula ends with '{stripped[-1]}'; something is missing after it", len(stripped) - 1
        )
    try:
        tree = ast.parse(stripped, mode="eval").body
    except (RecursionError, MemoryError):
        raise FormulaSyntaxError("the formula is nested too deeply") from None
    except ValueError:  # a NUL character (older Pythons)
        raise FormulaSyntaxError("the formula contains a character that is not allowed") from None
    except SyntaxError as exc:
        offset = max((exc.offset or 1) - 1, 0)
        raise FormulaSyntaxError(
            f"invalid formula syntax at character {offset + 1}: '{stripped[offset : offset + 20]}'", offset
        ) from None
    names: list[str] = []
    try:
        _check(tree, names)
    except RecursionError:
        raise FormulaSyntaxError("the formula is nested too deeply") from None
    return Formula(text, tree, tuple(dict.fromkeys(names)))


def ratio_base(name: str, formulas: Mapping[str, Formula], metrics: Collection[str]) -> Formula | None:
    """The divisor of KPI ``name`` when its formula is a division at the top (``won / leads``:
    ``leads``; ``won / (won + lost)``: ``won + lost``), as a formula of its own; a formula that
    is only another KPI's name is followed to that KPI. None for any other formula, and for a
    division by a constant."""
    seen: set[str] = set()
    while name in formulas and name not in seen:
        seen.add(name)
        tree = formulas[name].tree
        if isinstance(tree, ast.BinOp) and isinstance(tree.op, ast.Div):
            names: list[str] = []
            _check(tree.right, names)  # checked with the whole formula: this only lists its names
            if not names:  # a constant (``revenue / 1000``): a change of unit, not a ratio
                return None
            return Formula(ast.unparse(tree.right), tree.right, tuple(dict.fromkeys(names)))
        if isinstance(tree, ast.Name) and tree.id not in metrics:  # a name that is both means the metric
            name = tree.id
            continue
        return None
    return None


_BINOPS: dict[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def _check(node: ast.expr, names: list[str]) -> None:
    where = getattr(node, "col_offset", 0)
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise FormulaSyntaxError(
                f"operator '{ast.unparse(node)}' is not allowed; use + - * / and parentheses", where
            )
        _check(node.left, names)
        _check(node.right, names)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise FormulaSyntaxError(f"'{ast.unparse(node)}' is not allowed", where)
        _check(node.operand, names)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise FormulaSyntaxError(f"{node.value!r} is not a number", where)
    elif isinstance(node, ast.Name):
        names.append(node.id)
    elif isinstance(node, ast.Call):
        _check_call(node, names, where)
    else:
        raise FormulaSyntaxError(
            f"'{ast.unparse(node)}' is not allowed; a formula is arithmetic over metric and KPI names",
            where,
        )


def _check_call(node: ast.Call, names: list[str], where: int) -> None:
    """A call of one of FUNCTIONS, by name, with plain arguments in the allowed number."""
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        called = ast.unparse(node.func)
        raise FormulaSyntaxError(f"unknown function '{called}'; functions are {', '.join(FUNCTIONS)}", where)
    if node.keywords:
        raise FormulaSyntaxError(f"{node.func.id}() takes no named arguments", where)
    low, high = FUNCTIONS[node.func.id]
    if len(node.args) < low or (high is not None and len(node.args) > high):
        expected = str(low) if low == high else f"{low} to {high}" if high else f"at least {low}"
        raise FormulaSyntaxError(
            f"{node.func.id}() takes {expected} argument(s), got {len(node.args)}", where
        )
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            raise FormulaSyntaxError("'*' arguments are not allowed", where)
        _check(arg, names)


def _eval(node: ast.expr, values: Mapping[str, float | None]) -> float | None:
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)  # the parser admits numeric constants only
        return float(node.value)
    if isinstance(node, ast.Name):
        v = values.get(node.id)
        return None if v is None or not math.isfinite(v) else float(v)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, values)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.BinOp):
        a = _eval(node.left, values)
        b = _eval(node.right, values)
        if a is None or b is None:
            return None
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        return None if b == 0 else a / b
    assert isinstance(node, ast.Call)
    assert isinstance(node.func, ast.Name)
    args = [_eval(a, values) for a in node.args]
    return _CALLS[node.func.id](args)


def _round(args: list[float | None]) -> float | None:
    if any(a is None for a in args):
        return None
    digits = int(args[1]) if len(args) == 2 else 0  # type: ignore[arg-type]
    return float(round(args[0], digits))  # type: ignore[arg-type]


def _strict(fn: Callable[[list[float]], float]) -> Callable[[list[float | None]], float | None]:
    def call(args: list[float | None]) -> float | None:
        if any(a is None for a in args):
            return None
        return fn(args)  # type: ignore[arg-type]

    return call


_CALLS: dict[str, Callable[[list[float | None]], float | None]] = {
    "min": _strict(min),
    "max": _strict(max),
    "abs": _strict(lambda a: abs(a[0])),
    "round": _round,
    "coalesce": lambda args: next((a for a in args if a is not None), None),
}


def to_sql(formula: Formula, operand: Callable[[str], str]) -> str:
    """The formula as one SQL (DuckDB) expression that follows :meth:`Formula.evaluate`: a null
    operand gives null (except inside ``coalesce``), a division by zero gives null, and so does a
    non-finite result. ``operand(name)`` is the SQL of a name (a DOUBLE, null when unknown).
    Each operand appears once in the SQL, so its length grows with the formula's, never faster.
    Used to rank a breakdown's keys inside the query; the values a report shows are still
    computed by ``evaluate``."""
    return f"list_filter([{_sql(formula.tree, operand)}], lambda __v: isfinite(__v))[1]"


def _sql(node: ast.expr, operand: Callable[[str], str]) -> str:
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)
        return f"CAST('{float(node.value)!r}' AS DOUBLE)"
    if isinstance(node, ast.Name):
        return operand(node.id)
    if isinstance(node, ast.UnaryOp):
        inner = _sql(node.operand, operand)
        return f"(-{inner})" if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        a, b = _sql(node.left, operand), _sql(node.right, operand)
        if isinstance(node.op, ast.Div):
            return f"({a} / nullif({b}, 0))"
        sign = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}[type(node.op)]
        return f"({a} {sign} {b})"
    assert isinstance(node, ast.Call)
    assert isinstance(node.func, ast.Name)
    args = [_sql(a, operand) for a in node.args]
    name = node.func.id
    if name in ("min", "max"):  # null when any argument is (least/greatest would skip it)
        pick = "least" if name == "min" else "greatest"
        return (
            f"list_reduce([{', '.join(args)}], lambda __x, __y: "
            f"CASE WHEN __x IS NULL OR __y IS NULL THEN NULL ELSE {pick}(__x, __y) END)"
        )
    if name == "round":
        digits = f"CAST(trunc({args[1]}) AS INTEGER)" if len(args) == 2 else "0"
        return f"round_even({args[0]}, {digits})"
    return f"{name}({', '.join(args)})"  # abs, coalesce
