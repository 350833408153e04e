"""Load and check a report configuration: ``load_config(path)`` returns a ``Config`` or raises
``ConfigError`` listing every problem in the file at once."""

from reporter.config.checks import load_config, load_configs
from reporter.config.model import Config

__all__ = ["Config", "load_config", "load_configs"]
