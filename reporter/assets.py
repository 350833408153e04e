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
DEFAULT = "executive"


def resolve_template(name: str, base_dir: Path) -> list[Path] | str:
    """The folders a template name stands for (user folder first, then the built-in default),
    or a message saying why it stands for none. A name with a slash, or naming a folder next
    to the configuration that is not a built-in template, is a user folder."""
    candidate = Path(name) if Path(name).is_absolute() else base_dir / name
    if "/" in name or name.startswith(".") or (candidate.is_dir() and not (TEMPLATES / name).is_dir()):
        if not candidate.is_dir():
            return f"template folder not found: {candidate}"
        return [candidate, TEMPLATES / DEFAULT]
    if not (TEMPLATES / name).is_dir():
        return f"unknown template '{name}'"
    return [TEMPLATES / name]


def builtin_templates() -> list[str]:
    return sorted(p.name for p in TEMPLATES.iterdir() if p.is_dir() and p.name != "locale")


def catalogue_languages() -> list[str]:
    """The languages that have a translation catalogue (``templates/locale/<language>.po``)."""
    return sorted(p.stem for p in LOCALE_DIR.glob("*.po"))
