"""Templates are code: the one Jinja environment every template renders in.

- ``ImmutableSandboxedEnvironment``: no attribute starting with ``_`` (so no ``__globals__``), no
  method that changes a list or a dict, no ``namespace``/``lipsum`` (no mutable accumulator).
- ``ConfinedLoader``: a template name is looked up inside its folder only; the real path (links
  resolved) must stay inside it, so neither ``..`` nor a symbolic link reaches another file.
- Bounded: a string, list or range larger than ``MAX_SIZE`` is refused (``*``, ``**``, ``%``,
  calls and the size-making filters check before computing), loops over ``range`` count against
  ``MAX_ITERATIONS``, the output against ``MAX_OUTPUT``, and the whole render has a time limit
  (``REPORTER_RENDER_TIMEOUT`` seconds, default 30).
- ``plain``: what a template receives is plain data (dicts, lists, strings, numbers), never a
  live object such as a pydantic model or a path.

``render(template, context, where)`` turns every failure into a ``RunError`` naming ``where``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import datetime as dt
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.loaders import split_template_path
from jinja2.sandbox import ImmutableSandboxedEnvironment

from reporter.errors import RunError

MAX_SIZE = 1_000_000  # characters of one string, items of one list or range
MAX_OUTPUT = 50_000_000  # characters of one rendered template
MAX_ITERATIONS = 2_000_000  # steps over ranges in one render
MAX_INT_BITS = 10_000  # bits of one integer (about 3,000 digits)
MAX_WRAP = 20_000  # characters of a text given to wordwrap (its cost grows with the square)
DEFAULT_TIMEOUT = 30.0  # seconds for one render; REPORTER_RENDER_TIMEOUT overrides


class LimitError(SecurityError):
    """A template went past one of the bounds."""


class RenderTimeout(Exception):
    """Raised in the rendering thread when its time is up."""


def render_timeout() -> float:
    from reporter.config.operator import env_seconds

    return env_seconds("REPORTER_RENDER_TIMEOUT", DEFAULT_TIMEOUT)


# ----------------------------------------------------------------------------------------------
# budget of one render


class _Budget(threading.local):
    deadline: float = math.inf
    steps: int = 0


_budget = _Budget()


def _tick(count: int = 1) -> None:
    _budget.steps += count
    if _budget.steps > MAX_ITERATIONS:
        raise LimitError(f"the template loops more than {MAX_ITERATIONS:,} times")
    if _budget.steps % 1024 == 0 and time.monotonic() > _budget.deadline:
        raise RenderTimeout()


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict | range | BoundedRange) else 0


def _weight(value: Any, limit: int = MAX_SIZE) -> int:
    """About how many characters ``value`` makes once written out (by ``str``, ``~``, ``%``,
    ``tojson``, ``join``...): a list that appears ten times in another counts ten times. Stops
    counting past ``limit`` (so it costs at most ``limit`` steps)."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 1
        elif isinstance(item, int):
            total += item.bit_length() * 30103 // 100000 + 1  # its decimal digits
        elif isinstance(item, float):
            total += 20
        elif isinstance(item, Mapping):
            total += 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, range | BoundedRange):
            total += 8 * len(item)
        else:
            total += 1
    return total


def _refuse_weight(value: Any, what: str) -> None:
    weight = _weight(value)
    if weight > MAX_SIZE:
        raise LimitError(f"{what} of more than {MAX_SIZE:,} characters is larger than the limit")


def _refuse_bits(bits: int, left: Any, operator: str, right: Any) -> None:
    if bits > MAX_INT_BITS:
        raise LimitError(f"the number {_short(left)} {operator} {_short(right)} is too large")


def _short(number: Any) -> str:
    text = str(number) if not isinstance(number, int) or number.bit_length() < 200 else "…"
    return text if len(text) <= 20 else text[:8] + "…"


def _refuse_size(size: float, what: str = "a value") -> None:
    if size > MAX_SIZE:
        raise LimitError(f"{what} of {size:,.0f} items is larger than the limit of {MAX_SIZE:,}")


class BoundedRange(Sequence[int]):
    """``range`` for templates: at most MAX_SIZE items, each step counted in the budget."""

    def __init__(self, *args: int):
        self._range = range(*args)
        _refuse_size(len(self._range), "a range")

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, index: Any) -> Any:
        return self._range[index]

    def __iter__(self) -> Iterator[int]:
        for value in self._range:
            _tick()
            yield value

    def __repr__(self) -> str:
        return repr(self._range)


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter whose integer arguments set the size of its result."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = list(args) + list(kwargs.values())
        for value in values:
            if isinstance(value, int) and not isinstance(value, bool):
                _refuse_size(abs(value), f"'{name}' with a width")
            _refuse_size(_sized(value))
        data = _without_passed(args)  # the filter's own arguments: the value first
        if name == "replace" and len(data) >= 3:
            _refuse_size(_sized(data[0]) * max(_sized(data[2]), 1))
        if name == "format" and data and isinstance(data[0], str):
            _check_format_widths(data[0])
            _refuse_weight(data, "a formatted text")
        if name == "wordwrap" and data and _sized(data[0]) > MAX_WRAP:
            raise LimitError(f"'wordwrap' of a text longer than {MAX_WRAP:,} characters")
        if name == "indent" and data and isinstance(data[0], str):
            width = data[1] if len(data) > 1 else kwargs.get("width", 4)
            size = len(width) if isinstance(width, str) else width if isinstance(width, int) else 4
            _refuse_size(len(data[0]) + size * (data[0].count("\n") + 1), "an indented text")
        result = original(*args, **kwargs)
        _refuse_size(_sized(result))
        return result

    for attribute in ("jinja_pass_arg",):
        if hasattr(original, attribute):
            setattr(wrapper, attribute, getattr(original, attribute))
    return wrapper


def _without_passed(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """A filter's arguments without the environment or context Jinja passes some first."""
    passed = (jinja2.Environment, jinja2.nodes.EvalContext, jinja2.runtime.Context)
    return args[1:] if args and isinstance(args[0], passed) else args


def _check_format_widths(text: str) -> None:
    import re

    for number in re.findall(r"\d+", text):
        if len(number) > 7 or int(number) > MAX_SIZE:
            raise LimitError(f"a format width of {number} is larger than the limit of {MAX_SIZE:,}")


def _weighed_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter that writes its value out whole (``tojson``, ``join``, ``string``...): the
    value, nested lists counted each time they appear, must stay within MAX_SIZE."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for value in _without_passed(args):
            _refuse_weight(value, f"the value given to '{name}'")
        result = original(*args, **kwargs)
        _refuse_size(_sized(result))
        return result

    for attribute in ("jinja_pass_arg",):
        if hasattr(original, attribute):
            setattr(wrapper, attribute, getattr(original, attribute))
    return wrapper


_SIZE_FILTERS = ("center", "indent", "wordwrap", "format", "replace", "truncate", "batch", "slice")
_WEIGHT_FILTERS = ("tojson", "join", "string", "pprint", "sum", "urlencode", "xmlattr")
_SIZE_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "format", "replace"})


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's compiler, with ``a ~ b`` going through ``environment.concat_checked`` (Jinja has
    no sandbox hook for it)."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.concat_checked({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with size bounds on operators, calls and filters."""

    intercepted_binops = frozenset({"*", "**", "%", "+", "//"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, **options: Any):
        super().__init__(**options)
        for name in ("namespace", "lipsum", "cycler", "joiner"):
            self.globals.pop(name, None)
        self.globals["range"] = BoundedRange
        for name in _SIZE_FILTERS:
            if name in self.filters:
                self.filters[name] = _bounded_filter(name, self.filters[name])
        for name in _WEIGHT_FILTERS:
            if name in self.filters:
                self.filters[name] = _weighed_filter(name, self.filters[name])
        before = self.finalize

        def finalize(value: Any) -> Any:  # each {{ … }}: written out whole
            if isinstance(value, list | tuple | dict):
                _refuse_weight(value, "a value written out")
            return before(value) if before is not None else value

        self.finalize = finalize

    def concat_checked(self, join: Callable[[Any], str], values: tuple[Any, ...]) -> str:
        """``a ~ b``: the joined text must stay within MAX_SIZE (checked before it is built)."""
        if time.monotonic() > _budget.deadline:
            raise RenderTimeout()
        _refuse_weight(values, "a text joined with ~")
        return join(values)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if time.monotonic() > _budget.deadline:
            raise RenderTimeout()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int):
                    _refuse_size(len(seq) * max(times, 0), "a repeated value")
            if isinstance(left, int) and isinstance(right, int):
                _refuse_bits(left.bit_length() + right.bit_length(), left, "*", right)
        elif operator == "**" and isinstance(left, int | float) and isinstance(right, int | float):
            if abs(right) > 1000 or (isinstance(left, int) and abs(left) > 1 and abs(right) > 64):
                raise LimitError(f"the power {_short(left)} ** {_short(right)} is too large")
            if isinstance(left, int) and isinstance(right, int):
                _refuse_bits(left.bit_length() * abs(right), left, "**", right)
        elif operator == "%" and isinstance(left, str):
            _check_format_widths(left)
            _refuse_weight((left, right), "a formatted text")
        elif operator == "+":
            _refuse_size(_sized(left) + _sized(right))
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() > _budget.deadline:
            raise RenderTimeout()
        _tick()
        for value in (*args, *kwargs.values()):
            _refuse_size(_sized(value), "an argument")
            if isinstance(value, list | tuple | dict):
                _refuse_weight(value, "an argument")
        name = getattr(__obj, "__name__", "")
        owner = getattr(__obj, "__self__", None)
        if owner is None:  # str.format comes wrapped by the sandbox (functools.update_wrapper)
            owner = getattr(getattr(__obj, "__wrapped__", None), "__self__", None)
        if name in _SIZE_METHODS and isinstance(owner, str):
            for value in (*args, *kwargs.values()):
                if isinstance(value, int) and not isinstance(value, bool):
                    _refuse_size(abs(value), f"'{name}' with a width")
            if name == "format":
                _check_format_widths(owner)
            if name == "replace" and len(args) >= 2:
                _refuse_size(len(owner) * max(_sized(args[1]), 1))
        result = super().call(__context, __obj, *args, **kwargs)
        _refuse_size(_sized(result))
        return result


class ConfinedLoader(jinja2.BaseLoader):
    """Templates from ``folders`` only: a name is split like Jinja's own loader (no ``..``), and
    the file's real path, links resolved, must lie inside the folder it was found in."""

    def __init__(self, folders: Sequence[Path]):
        self.folders = [Path(os.path.realpath(f)) for f in folders]

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)
        for folder in self.folders:
            candidate = folder.joinpath(*pieces)
            if not os.path.lexists(candidate):
                continue
            real = Path(os.path.realpath(candidate))
            if not real.is_relative_to(folder):
                raise SecurityError(f"template {template!r} leads outside its folder ({folder.name})")
            if not real.is_file():
                continue
            text = real.read_text(encoding="utf-8")
            return text, str(real), _uptodate(real)
        raise jinja2.TemplateNotFound(template)

    def list_templates(self) -> list[str]:
        found = set()
        for folder in self.folders:
            for path in folder.rglob("*"):
                if path.is_file():
                    found.add(path.relative_to(folder).as_posix())
        return sorted(found)


def _uptodate(path: Path) -> Callable[[], bool]:
    mtime = path.stat().st_mtime

    def check() -> bool:
        return path.is_file() and path.stat().st_mtime == mtime

    return check


def _is_view(value: object) -> bool:
    """A part of the typed view (render/view.py), or a part of the results the view shows as it
    is (a series point, an action...): a type-checked dataclass."""
    from reporter.results import Checked

    return isinstance(value, Checked)


def plain(value: Any) -> Any:
    """``value`` as plain data: dicts, lists, strings, numbers, booleans, None (and Markup, the
    typed view's dataclasses, and the formatting functions the templates call). A pydantic
    model becomes its dict, a path its text, a date its ISO text."""
    from pydantic import BaseModel

    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, tuple):  # a pair of the view (a section and its KPIs) stays a pair
        return tuple(plain(v) for v in value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="json", by_alias=True))
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and _is_view(value):
        # the typed view (render/view.py): its fields only, each made plain in turn
        return type(value)(**{f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)})
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if callable(value) and getattr(value, "__module__", "").startswith("reporter."):
        return value
    raise TypeError(f"not plain template data: {type(value).__name__}")


def _guarded(fn: Callable[[], str], seconds: float) -> str:
    """Run ``fn`` in this thread; past ``seconds``, a RenderTimeout is raised inside it (also in
    a pure-Python loop that calls nothing)."""
    thread_id = threading.get_ident()
    lock = threading.Lock()
    state = {"done": False, "fired": False}

    def fire() -> None:
        with lock:
            if state["done"]:
                return
            state["fired"] = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread_id), ctypes.py_object(RenderTimeout)
            )

    outer = _budget.deadline
    _budget.deadline = min(outer, time.monotonic() + seconds)
    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        try:
            return fn()
        finally:
            with lock:
                state["done"] = True
            timer.cancel()
    except RenderTimeout:
        raise
    finally:
        _budget.deadline = outer
        if state["fired"]:
            # The exception may still be pending in this thread: clear it.
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)


def render(
    template: jinja2.Template, context: Mapping[str, Any], where: str, source: str | None = None
) -> str:
    """Render ``template`` with ``context`` (made plain), within the bounds; any failure is a
    RunError that names ``where`` (and quotes ``source``, a template from the YAML), never the
    template's output."""
    seconds = render_timeout()

    def run() -> str:
        data = plain(context)
        _budget.steps = 0
        out: list[str] = []
        size = 0
        for chunk in template.generate(data):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise LimitError(f"the output is larger than {MAX_OUTPUT:,} characters")
            out.append(chunk)
        return "".join(out)

    try:
        return _guarded(run, seconds)
    except RenderTimeout:
        raise RunError(
            f"{where}: rendering took longer than {seconds:g} s and was stopped "
            "(set REPORTER_RENDER_TIMEOUT to allow more)"
        ) from None
    except SecurityError as exc:
        shown = f" {source!r}" if source is not None else ""
        raise RunError(f"{where}: cannot render{shown}: refused by the template sandbox: {exc}") from None
    except jinja2.TemplateError as exc:
        shown = f" {source!r}" if source is not None else ""
        raise RunError(f"{where}: cannot render{shown}: {exc}") from None
    except OSError as exc:
        raise RunError(f"{where}: cannot read a template ({type(exc).__name__})") from None
    except RecursionError:
        raise RunError(f"{where}: the template recurses too deeply") from None
    except MemoryError:
        raise RunError(f"{where}: the template needs too much memory") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise RunError(f"{where}: template error: {type(exc).__name__}: {exc}") from None
