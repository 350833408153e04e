"""Load and check a report configuration: ``load_config(path)`` returns a ``Config`` or raises
``ConfigError`` listing every problem in the file at once.

The names are imported when first used: ``reporter run`` imports ``reporter.config.connections``
before it starts its render server, and the model and the checks (pydantic, DuckDB) are not
needed for that."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reporter.config.checks import load_config, load_configs
    from reporter.config.model import Config

__all__ = ["Config", "load_config", "load_configs"]


def __getattr__(name: str) -> Any:
    if name in ("load_config", "load_configs"):
        from reporter.config import checks

        return getattr(checks, name)
    if name == "Config":
        from reporter.config.model import Config

        return Config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
