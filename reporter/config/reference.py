"""The configuration reference (docs/configuration.md), generated from the pydantic model.

One source of truth: every key's type, default, allowed values, description and example come
from ``reporter/config/model.py`` (through pydantic's JSON Schema of each model, the same one
``reporter schema`` prints). Regenerate the page after changing the model::

    python -m reporter.config.reference > docs/configuration.md     # or: make docs-gen

``tests/test_docs.py`` fails when a field has no description or the page is stale.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import BaseModel

from reporter.config import model as m

# A concrete name for the ``<name>`` of a mapping section, in examples.
_NAMES = {"sources": "web", "metrics": "sessions", "kpis": "conversion_rate"}

INTRO = """\
# Configuration reference

<!-- Generated from reporter/config/model.py by `python -m reporter.config.reference`
     (make docs-gen). Do not edit by hand: a test fails when this page is stale. -->

One report per YAML file. The file has the sections below; `report`, `sources`, `metrics` and
`kpis` are required, the others optional. Check a file with `reporter validate FILE`: it reports
every problem at once, as `file:line:col: key.path: problem; hint`, and exits with code 2.
`config/example.yaml` is a complete, commented example that works.

Rules that apply everywhere:

- **Unknown keys are errors**, with a "did you mean" suggestion.
- **Relative paths** (`path`, `logo`, `template`, `output_dir`, `archive.dir`, `ca_file`)
  start from the folder of the YAML file, not from where you run the command.
- **Connections are the operator's.** A SQL source, the ledger, an SMTP server with a login
  and a Dask cluster are named, `connection: warehouse`; the operator defines each name outside
  the YAML (`REPORTER_CONNECTION_WAREHOUSE=postgresql+psycopg://…`, or a `--connections` file),
  with its URL and password. A URL, an SMTP login or a Dask address written in the YAML is an
  error that says what to write instead (see [Security](security.md)).
- **`${NAME}` is not read**: a report reads no environment variable, so `${` anywhere is an
  error (write `$${` for a literal `${`).
- **Quote text that YAML would read as something else**: `NO`, `yes`, `off` are booleans to
  YAML, `2026-10-01` is a date, `1e3` is a number. reporter says so when it meets one where
  text is expected.
- Names of sources, metrics and KPIs are lowercase letters, digits and `_`, starting with a
  letter or `_`, at most 64 characters. Report and objective ids may also use `-`.
- **Names are for the YAML, labels for the reader.** The report prints no key, column name or
  raw value where a label can be given: `label` on sources, metrics, KPIs, breakdowns, the
  portfolio and funnel stages, `values` on breakdowns and the portfolio (raw value → label; a
  value without one is shown as it is), an objective's `title` and a KPI's `section`.
- **A label in several languages**: any of those, and the owners, KPI descriptions and actions'
  `do`, may be text or a map from language code to text, `label: {fr: Prospects, en: Leads}`;
  the report shows the entry of `report.locale`'s language, else the map's first entry. A key
  that is not a language code (`French`, `fr_FR`) is an error pointing at it, with the code to
  write instead.

## Completion and checks in your editor

`reporter schema` prints the JSON Schema of this file format (Draft 2020-12, with the
descriptions below); the repository ships it as `schema/reporter.schema.json`. A YAML file whose
first line names it gets completion, hover help and red underlines in any editor that runs the
YAML language server:

```yaml
# yaml-language-server: $schema=../schema/reporter.schema.json
report:
  id: marketing-monthly
```

The path is relative to the YAML file (`config/example.yaml` starts with exactly this line).
For a report kept outside the repository, write the schema next to it with
`reporter schema > reporter.schema.json` and name that file.

- **VS Code**: install the *YAML* extension (Red Hat, `redhat.vscode-yaml`); the first line is
  enough. To map every report in a folder without the line, add to `.vscode/settings.json`:
  `"yaml.schemas": {"./schema/reporter.schema.json": "config/*.yaml"}`.
- **Neovim**: install `yaml-language-server` (`npm install -g yaml-language-server`, or
  Mason's `yamlls`) and enable it, e.g. with nvim-lspconfig: `require('lspconfig').yamlls.setup{}`
  (Neovim 0.11: `vim.lsp.enable('yamlls')`). The first line is read the same way; or map files
  with `settings = {yaml = {schemas = {["./schema/reporter.schema.json"] = "config/*.yaml"}}}`.
- Other editors (JetBrains IDEs, Helix, Emacs with lsp-mode) read the same line.

The schema checks what one value can say (types, allowed words, ranges, unknown keys);
`reporter validate` also checks what needs the whole file or the data (a metric's source
exists, a formula's names, a column is in the file, a cron expression...).
"""


def generate() -> str:
    """The whole page, as Markdown."""
    schema = m.Config.model_json_schema(mode="validation")
    defs = schema["$defs"]
    out = [INTRO]
    for section in m.SECTIONS:
        prop = schema["properties"][section]
        required = section in m.REQUIRED_SECTIONS
        out.append(f"## `{section}`\n")
        out.append(f"{prop['description']}\n")
        out.append(_section_shape(section, prop, defs, required))
        for path, model, field, sub in _fields(section, prop, defs):
            out.append(_entry(path, model, field, sub, defs))
    return "\n".join(out).rstrip("\n") + "\n"


def _section_shape(section: str, prop: dict[str, Any], defs: dict[str, Any], required: bool) -> str:
    need = "Required." if required else "Optional."
    if "patternProperties" in prop:
        name = _NAMES[section]
        return (
            f"{need} A mapping of names to definitions: each key (such as `{name}`) is a name you "
            f"choose, used elsewhere in the file; each value has the keys below.\n"
        )
    if prop.get("type") == "array":
        return f"{need} A list; each item (a line starting with `-`) has the keys below.\n"
    return f"{need} A mapping with the keys below.\n"


def _fields(
    prefix: str, prop: dict[str, Any], defs: dict[str, Any]
) -> Iterator[tuple[list[str], str, str, dict[str, Any]]]:
    """Every key under ``prop``, depth first: (path parts, model name, key, its schema)."""
    target = _model_ref(prop)
    if target is None:
        return
    parts = [prefix]
    if "patternProperties" in prop:
        parts.append("<name>")
    elif prop.get("type") == "array" or _is_list_of_models(prop):
        parts[-1] += "[]"
    model = defs[target]
    for key, sub in model["properties"].items():
        path = [*parts, key]
        yield path, target, key, sub
        if _model_ref(sub) is not None:
            yield from _fields_nested(path, sub, defs)


def _fields_nested(
    path: list[str], prop: dict[str, Any], defs: dict[str, Any]
) -> Iterator[tuple[list[str], str, str, dict[str, Any]]]:
    target = _model_ref(prop)
    assert target is not None
    parts = list(path)
    if _is_list_of_models(prop):
        parts[-1] += "[]"
    for key, sub in defs[target]["properties"].items():
        sub_path = [*parts, key]
        yield sub_path, target, key, sub
        if _model_ref(sub) is not None:
            yield from _fields_nested(sub_path, sub, defs)


def _model_ref(prop: dict[str, Any]) -> str | None:
    """The model a property holds (directly, optionally, as list items or mapping values)."""
    for candidate in (
        prop,
        *prop.get("anyOf", []),
        prop.get("items", {}),
        *prop.get("patternProperties", {}).values(),
    ):
        ref = candidate.get("$ref")
        if ref:
            return str(ref).rsplit("/", 1)[-1]
    return None


def _is_list_of_models(prop: dict[str, Any]) -> bool:
    return "$ref" in prop.get("items", {})


def _entry(path: list[str], model: str, key: str, sub: dict[str, Any], defs: dict[str, Any]) -> str:
    dotted = ".".join(path)
    field = _model_class(model).model_fields
    info = next(f for name, f in field.items() if (f.alias or name) == key)
    description = sub.get("description") or "(no description yet: add one in reporter/config/model.py)"
    lines = [f"### `{dotted}`\n", f"{description}\n"]
    kind, allowed = _type_text(sub, defs)
    lines.append(f"- **Type:** {kind}")
    if allowed:
        lines.append(f"- **Allowed values:** {', '.join(f'`{a}`' for a in allowed)}")
    if info.is_required():
        lines.append("- **Required**")
    else:
        lines.append(f"- **Default:** {_default_text(sub.get('default'))}")
    example = (info.examples or [None])[0]
    if example is not None:
        lines.append("\nExample:\n")
        lines.append("```yaml\n" + _yaml_example(path, example, sub).rstrip("\n") + "\n```")
    return "\n".join(lines) + "\n"


def _model_class(name: str) -> type[BaseModel]:
    cls = getattr(m, name)
    assert isinstance(cls, type)
    assert issubclass(cls, BaseModel)
    return cls


def _type_text(sub: dict[str, Any], defs: dict[str, Any]) -> tuple[str, list[str]]:
    """A type in words, and the allowed values when they are a closed list."""
    options = [o for o in sub.get("anyOf", [sub]) if o.get("type") != "null"]
    words: list[str] = []
    allowed: list[str] = []
    for option in options:
        text, values = _one_type(option, defs)
        words.append(text)
        allowed += values
    kind = " or ".join(words)
    return kind, allowed


def _one_type(node: dict[str, Any], defs: dict[str, Any]) -> tuple[str, list[str]]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return f"mapping ({', '.join(f'`{k}`' for k in defs[name]['properties'])})", []
    if "enum" in node:
        return "one of the allowed values", [str(v) for v in node["enum"]]
    if "const" in node:
        return "the value", [str(node["const"])]
    kind = node.get("type")
    if kind == "string":
        return _string_text(node), []
    if kind in ("integer", "number"):
        word = "whole number" if kind == "integer" else "number"
        return word + _range_text(node), []
    if kind == "boolean":
        return "`true` or `false`", []
    if kind == "array":
        inner, values = _one_type(node.get("items", {}), defs)
        return f"list of: {inner}", values
    if kind == "object":
        values_schema = node.get("additionalProperties")
        if isinstance(values_schema, dict):
            inner = " or ".join(_one_type(o, defs)[0] for o in values_schema.get("anyOf", [values_schema]))
            return f"mapping of text to {inner}", []
        return "mapping", []
    return "any value", []


def _string_text(node: dict[str, Any]) -> str:
    if node.get("format") == "date":
        return "date (`YYYY-MM-DD`)"
    if node.get("format") == "path":
        return "path"
    text = "text"
    details = []
    if "pattern" in node:
        details.append(f"matching `{node['pattern']}`")
    if node.get("minLength") == 1 and node.get("maxLength") == 1:
        details.append("exactly one character")
    else:
        if node.get("minLength"):
            details.append("not empty")
        if "maxLength" in node:
            details.append(f"at most {node['maxLength']} characters")
    return text + (", " + ", ".join(details) if details else "")


def _range_text(node: dict[str, Any]) -> str:
    parts = []
    if "minimum" in node:
        parts.append(f"≥ {node['minimum']}")
    if "exclusiveMinimum" in node:
        parts.append(f"> {node['exclusiveMinimum']}")
    if "maximum" in node:
        parts.append(f"≤ {node['maximum']}")
    if "exclusiveMaximum" in node:
        parts.append(f"< {node['exclusiveMaximum']}")
    return f", {' and '.join(parts)}" if parts else ""


def _default_text(value: Any) -> str:
    if value is None:
        return "none"
    if value in ("", [], {}):
        return "empty"
    if isinstance(value, dict | list):
        return "`" + json.dumps(value, ensure_ascii=False) + "`"
    return "`" + json.dumps(value, ensure_ascii=False).strip('"') + "`"


def _yaml_example(path: list[str], example: Any, sub: dict[str, Any]) -> str:
    """A YAML snippet placing ``example`` at ``path`` (names and list items made concrete)."""
    if sub.get("format") == "date" and isinstance(example, str):
        example = dt.date.fromisoformat(example)
    value: Any = example
    for i in range(len(path) - 1, -1, -1):
        part = path[i]
        if part == "<name>":
            continue
        if i + 1 < len(path) and path[i + 1] == "<name>":
            value = {part: {_NAMES[part]: value}}
        elif part.endswith("[]"):
            value = {part[:-2]: [value]}
        else:
            value = {part: value}
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False, width=100, default_flow_style=False)


if __name__ == "__main__":  # pragma: no cover - python -m reporter.config.reference
    import sys

    sys.stdout.write(generate())
