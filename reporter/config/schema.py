"""The JSON Schema of the report YAML (placeholder, replaced at merge by the docs helper's
version; only ``json_schema()`` is relied upon by ``reporter init``)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from reporter.config.model import Config


def json_schema() -> dict[str, Any]:
    """The schema of a report file (placeholder, replaced at merge)."""
    schema = TypeAdapter(Config).json_schema(by_alias=True)
    for key in ("file", "base_dir"):  # not YAML keys
        schema.get("properties", {}).pop(key, None)
    return schema
