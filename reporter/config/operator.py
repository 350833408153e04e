"""Settings the operator gives through the environment (never the YAML)."""

from __future__ import annotations

import math
import os


def env_seconds(name: str, default: float) -> float:
    """The environment variable ``name`` as a positive, finite number of seconds; ``default``
    when it is unset, not a number, or not positive."""
    text = os.environ.get(name, "")
    try:
        value = float(text) if text else default
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default
