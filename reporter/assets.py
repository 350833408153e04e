"""Where the built-in templates, styles, fonts and translations are.

In a source checkout they are the repository's top-level ``templates/`` folder; the wheel carries
the same folder inside the package as ``reporter/templates/`` (pyproject.toml maps it)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _templates_root() -> Path:
    installed = _PACKAGE / "templates"
    return installed if installed.is_dir() else _PACKAGE.parent / "templates"


TEMPLATES = _templates_root()
LOCALE_DIR = TEMPLATES / "locale"
