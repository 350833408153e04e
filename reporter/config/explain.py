"""The schema's errors in words: each pydantic error of a section or an item becomes one
problem at its key's line, saying what was expected and what was written, with a fix; an item
with errors is still built from its valid keys, so that the rules across keys run on it.
``checks._Checker`` inherits these methods (``SchemaErrors``)."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from reporter.config.loader import Document, Path_
from reporter.errors import Problem

# pydantic's range errors, in words
_BOUNDS = {
    "greater_than_equal": "at least",
    "greater_than": "more than",
    "less_than_equal": "at most",
    "less_than": "less than",
}


def did_you_mean(word: str, choices: Iterable[str], *, known_label: str = "known") -> str:
    options = sorted(set(choices))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    if not options:
        return ""
    shown = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    return f"{known_label}: {shown}"


def _close_match(word: str, choices: Iterable[str]) -> str:
    """ "did you mean …?" when one choice is close; nothing otherwise (the message lists them)."""
    hint = did_you_mean(word, choices)
    return hint if hint.startswith("did you mean") else ""


def _percent_hint(value: Any) -> str:
    """For "30%" or "30 %": "percentages are written as fractions: 0.3 for 30 %"."""
    if not isinstance(value, str) or not value.strip().endswith("%"):
        return ""
    try:
        number = float(value.strip()[:-1].strip().replace(",", "."))
    except ValueError:
        return "percentages are written as fractions: 0.15 for 15 %"
    return f"percentages are written as fractions: {number / 100:g} for {number:g} %"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dt.date):
        return f"the date {value.isoformat()}"
    return _show(value)


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    return slug if slug and slug[0].isalpha() else f"x_{slug}" if slug else "my_name"


def _known_keys(model: Any, rel: Path_) -> list[str]:
    """The keys allowed at ``rel`` below ``model`` (walking fields, lists and dicts)."""
    current: Any = model
    for part in rel:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                field = next((f for f in current.model_fields.values() if f.alias == part), None)
            if field is None:
                return []
            current = field.annotation
        elif get_origin(current) in (list, dict):
            current = get_args(current)[-1]
        else:
            return []
    current = _unwrap(current)
    if get_origin(current) in (list, dict):
        current = _unwrap(get_args(current)[-1])
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items() if n not in ("file", "base_dir")]
    return []


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin in (Union, UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            tp = args[0] if len(args) == 1 else tp
            if len(args) != 1:
                return tp
        elif origin is not None and getattr(tp, "__metadata__", None) is not None:
            tp = get_args(tp)[0]
        else:
            return tp


class SchemaErrors:
    """The part of the checker that validates each section against the schema and explains
    its errors (mixed into ``checks._Checker``, which holds the state below)."""

    doc: Document
    problems: list[Problem]
    partial: set[Path_]

    if TYPE_CHECKING:

        def add(self, path: Path_, message: str, hint: str = "", *, key: bool = False) -> None: ...

    def _validate_section(self, key: str, spec: Any, value: Any) -> Any:
        if isinstance(spec, tuple):
            kind, item_model = spec
            if kind == "dict":
                if value is None:
                    return {}
                if not isinstance(value, dict):
                    self.add((key,), f"expected a mapping of names to definitions, got {_kind(value)}")
                    return {}
                out = {}
                for name, item in value.items():
                    if not re.match(r"^[a-z_][a-z0-9_]*$", str(name)):
                        self.add(
                            (key, name),
                            f"'{name}' is not a valid name",
                            "use lowercase letters, digits and _ , starting with a letter "
                            f"(e.g. {_slugify(str(name))})",
                            key=True,
                        )
                    got = self._validate(item_model, item, (key, name))
                    if got is not None:
                        out[name] = got
                return out
            if value is None:
                return []
            if not isinstance(value, list):
                self.add((key,), f"expected a list (lines starting with '-'), got {_kind(value)}")
                return []
            items = [self._validate(item_model, item, (key, i)) for i, item in enumerate(value)]
            return [i for i in items if i is not None]
        if value is None:
            value = {}
        return self._validate(spec, value, (key,))

    def _validate(self, model: type[BaseModel], value: Any, prefix: Path_) -> Any:
        """Validate one item; on errors, report them and return a partial item built from the
        keys that are valid (missing ones set to None), so the rules across keys still run."""
        try:
            return TypeAdapter(model).validate_python(value)
        except ValidationError as exc:
            seen: set[tuple[Path_, str]] = set()
            for err in exc.errors():
                loc = (*prefix, *err["loc"])
                if any(loc[: len(bad)] == bad for bad in self.doc.bad):
                    continue  # the loader already reported this value
                problem = self._explain(model, err, loc, prefix)
                marker = (loc, problem.message)
                if marker not in seen:
                    seen.add(marker)
                    self.problems.append(problem)
        if not isinstance(value, dict):
            return None
        values: dict[str, Any] = {}
        for name, field in model.model_fields.items():
            key = field.alias or name
            if key not in value:
                if field.is_required():
                    values[name] = None
                continue
            try:
                tp: Any = field.annotation
                adapter = TypeAdapter(Annotated[tp, *field.metadata] if field.metadata else tp)
                values[name] = adapter.validate_python(value[key])
            except ValidationError:
                values[name] = None
        self.partial.add(prefix)
        return model.model_construct(**values)

    def _explain(self, model: type[BaseModel], err: Any, loc: Path_, prefix: Path_) -> Problem:
        kind = err["type"]
        value = err.get("input")
        rel = loc[len(prefix) :]
        doc = self.doc
        if kind == "extra_forbidden":
            known = _known_keys(model, rel[:-1])
            return doc.problem(
                loc,
                "unknown key",
                did_you_mean(str(loc[-1]), known, known_label="known keys"),
                key=True,
            )
        if kind == "missing":
            return doc.problem(loc[:-1], f"missing required key '{loc[-1]}'", f"add '{loc[-1]}: ...' here")
        if kind in ("dict_type", "model_type") and not rel and str(loc[-1]) in _known_keys(model, ()):
            # `description:` dedented under `kpis:` reads as a KPI named "description"
            return doc.problem(
                loc,
                f"expected a mapping (key: value), got {_kind(value)}",
                f"'{loc[-1]}' looks like a key of the entry above it: "
                "indent it as far as that entry's other keys",
            )
        if loc in doc.bool_text and kind in (
            "string_type",
            "literal_error",
            "string_pattern_mismatch",
        ):
            text = doc.bool_text[loc]
            return doc.problem(
                loc,
                f"YAML read the unquoted {text} as the boolean {str(value).lower()}",
                f'write it in quotes: "{text}"',
            )
        if kind == "alert_when":  # model._alert_when
            return doc.problem(loc, err["msg"], str((err.get("ctx") or {}).get("hint", "")))
        if kind == "literal_error":
            choices = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
            return doc.problem(
                loc,
                f"{_show(value)} is not one of: {', '.join(choices)}",
                _close_match(str(value), choices) if isinstance(value, str) else "",
            )
        return self._explain_type(err, loc)

    def _explain_label(self, err: Any, loc: Path_) -> Problem:
        """A bad label (model._label). One that YAML read as a boolean, a date or a number (or
        one language's text of it) says the text to quote, as any text field does."""
        value, ctx = err.get("input"), err.get("ctx") or {}
        hint = str(ctx.get("hint", ""))
        if "text" in ctx and isinstance(value, dict):  # {fr: NO}: at the language's key
            found = self._label_scalar((*loc, ctx["key"]), value.get(ctx["key"]), "", in_map=True)
            if found is not None:
                return found
        elif value is None:
            message = f"expected text or a map of language: text, got {_kind(value)}"
            return self.doc.problem(loc, message, hint)
        elif not isinstance(value, str | dict | list):  # title: NO, owner: 2026-10-01
            found = self._label_scalar(loc, value, "expected text or a map of language: text")
            if found is not None:
                return found
        at = (*loc, ctx["key"]) if "key" in ctx and (*loc, ctx["key"]) in self.doc.key_pos else loc
        return self.doc.problem(at, err["msg"], hint, key=at != loc)

    def _label_scalar(self, loc: Path_, value: Any, expected: str, *, in_map: bool = False) -> Problem | None:
        """The problem of a boolean, date or number where a label's text is expected; None for
        another kind of value."""
        if value is None or isinstance(value, str | dict | list):
            return None
        name = loc[-1] if loc and isinstance(loc[-1], str) else ""
        text = self.doc.bool_text.get(loc) if isinstance(value, bool) else None
        shown = text if text is not None else value.isoformat() if isinstance(value, dt.date) else str(value)
        hint = f'write it in quotes: {name}: "{shown}"' if name else f'write it in quotes: "{shown}"'
        if text is not None:
            message = f"YAML read the unquoted {text} as the boolean {str(value).lower()}"
        elif in_map:
            message = f"the '{name}' label must be text, got {_kind(value).removeprefix('the number ')}"
        else:
            message = f"{expected}, got {_kind(value)}"
        return self.doc.problem(loc, message, hint, key=in_map)

    def _explain_type(self, err: Any, loc: Path_) -> Problem:
        """The problem for a value of the wrong type or shape."""
        kind = err["type"]
        value = err.get("input")
        doc = self.doc
        if kind == "string_pattern_mismatch" and loc and str(loc[-1]).endswith("_env"):
            return doc.problem(
                loc,
                "not the name of an environment variable (the value is not repeated here: "
                "it may be a secret)",
                "put the secret in an environment variable and give its name (letters, digits and _), "
                "e.g. SLACK_WEBHOOK_URL",
            )
        if kind == "string_pattern_mismatch":
            return doc.problem(
                loc,
                f"{_show(value)} is not a valid name",
                f"use lowercase letters, digits and _ (and - for ids), e.g. {_slugify(str(value))}",
            )
        if kind in ("string_type", "str_type"):
            return doc.problem(
                loc,
                f"expected text, got {_kind(value)}",
                "write the value in quotes" if not isinstance(value, dict | list) else "",
            )
        if kind in ("float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"):
            wanted = "a whole number" if kind.startswith("int") else "a number"
            return doc.problem(loc, f"expected {wanted}, got {_show(value)}", _percent_hint(value))
        if kind in ("bool_type", "bool_parsing"):
            return doc.problem(loc, f"expected true or false, got {_show(value)}")
        if kind in ("dict_type", "model_type", "model_attributes_type"):
            return doc.problem(loc, f"expected a mapping (key: value), got {_kind(value)}")
        if kind == "list_type":
            return doc.problem(
                loc, f"expected a list, got {_kind(value)}", "write [a, b] or one '- item' per line"
            )
        if kind.startswith("date"):
            return doc.problem(loc, f"expected a date like 2026-12-31, got {_show(value)}")
        if kind in ("string_too_short",):
            return doc.problem(loc, "must not be empty")
        if kind == "label":  # model._label: the message names the bad language key, if any
            return self._explain_label(err, loc)
        if kind in _BOUNDS:
            return self._explain_bound(err, loc)
        msg = err["msg"]
        return doc.problem(loc, msg[0].lower() + msg[1:] if msg else kind)

    def _explain_bound(self, err: Any, loc: Path_) -> Problem:
        """A number out of its range: the bound it crossed, in words, and the value given."""
        bound = next(iter((err.get("ctx") or {}).values()), None)
        return self.doc.problem(
            loc,
            f"must be {_BOUNDS[err['type']]} {bound}, got {_show(err.get('input'))}",
            "docs/configuration.md gives each key's range",
        )
