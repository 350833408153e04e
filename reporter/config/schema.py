"""The JSON Schema (Draft 2020-12) of a report's YAML, made from the pydantic model.

``reporter schema`` prints it; ``schema/reporter.schema.json`` in the repository is its output
(a test fails when the file is stale), so editors that read the
``# yaml-language-server: $schema=...`` line complete keys and underline mistakes as you type.

The schema describes the YAML *as written*, before the loader has done its work, so it differs
from pydantic's own schema of ``Config`` in a few places, each of which makes it accept exactly
what ``reporter validate`` accepts at this level:

- only the YAML sections (not ``m.NOT_YAML``, which the loader and validation fill in);
- an empty optional section (``objectives:`` with nothing after it) is allowed, as the loader
  reads it as "none";
- ``${NAME}`` (an environment variable) is never read: every text refuses ``${`` (``$${``
  writes a literal one); a connection is a name the operator defines;
- names under ``sources``, ``metrics`` and ``kpis`` must be valid names (no other key there);
- an objective's ``target`` has exactly one of its four forms.

What needs more than one value or the data (a metric's source exists, a formula's names, a
column in a file...) is left to ``reporter validate``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from reporter.config import model as m

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Sections that may be left empty in the YAML (read as none / the defaults).
_NULLABLE = ("objectives", "breakdowns", "funnel", "quality", "delivery", "insights")
_TARGET_FORMS = ("value", "change_vs_prior_year", "change_vs_previous", "by_period")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a report's YAML file (Draft 2020-12), descriptions included."""
    raw = m.Config.model_json_schema(mode="validation")
    props = raw["properties"]
    for key in m.NOT_YAML:
        props.pop(key)
    for key in ("sources", "metrics", "kpis"):
        props[key]["additionalProperties"] = False  # a key that is not a valid name
    # The loader reads an empty portfolio section as {} (then: missing by, cost, value).
    props["portfolio"] = {k: v for k, v in props["portfolio"].items() if k not in ("anyOf", "default")}
    props["portfolio"]["$ref"] = "#/$defs/Portfolio"
    defs = raw["$defs"]
    defs["Target"]["oneOf"] = [
        {"required": [form], "properties": {form: {"not": {"type": "null"}}}} for form in _TARGET_FORMS
    ]
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "title": "reporter report configuration",
        "description": (
            "One report per YAML file: its sources, metrics, KPIs, objectives, analyses, quality gates "
            "and delivery. Check a file with `reporter validate FILE`."
        ),
        "type": "object",
        "properties": props,
        "required": list(m.REQUIRED_SECTIONS),
        "additionalProperties": False,
        "$defs": defs,
    }
    schema = _walk(schema)
    for definition in schema["$defs"].values():
        for prop, sub in definition.get("properties", {}).items():
            if not prop.endswith("_env"):
                _no_env(sub)
    for key in _NULLABLE:
        prop = schema["properties"][key]
        inner = {k: v for k, v in prop.items() if k not in ("description", "default", "examples")}
        outer = {k: v for k, v in prop.items() if k in ("description", "default")}
        schema["properties"][key] = {"anyOf": [inner, {"type": "null"}], **outer}
    return schema


# ${ not written as $${ (the literal): the loader refuses it.
_NO_ENV = {"not": {"pattern": "(^|[^$])\\$\\{"}}


def _no_env(node: Any) -> None:
    """Refuse ``${NAME}`` in every string this property may hold."""
    if isinstance(node, list):
        for item in node:
            _no_env(item)
    elif isinstance(node, dict):
        if node.get("type") == "string" and "enum" not in node and "not" not in node:
            node.update(copy.deepcopy(_NO_ENV))
        for key in ("anyOf", "oneOf", "items", "additionalProperties"):
            if key in node:
                _no_env(node[key])


def _walk(node: Any) -> Any:
    """Drop pydantic's generated property titles."""
    if isinstance(node, list):
        return [_walk(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _without_title(_walk(prop)) for name, prop in value.items()}
        elif key in ("default", "examples", "enum", "const"):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = _walk(value)
    return out


def _without_title(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prop.items() if k != "title"}


def dumps() -> str:
    """The schema as the file ``schema/reporter.schema.json`` holds it."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # pragma: no cover - python -m reporter.config.schema
    import sys

    sys.stdout.write(dumps())
