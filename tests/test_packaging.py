"""The wheel is built from an explicit package list (pyproject.toml), since the built-in templates
are mapped in from the top level: every package of the source tree must be on that list."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def test_every_package_is_in_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "reporter").rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    templates = {
        "reporter.templates",
        *(f"reporter.templates.{d}" for d in ("executive", "executive.fonts", "locale")),
    }
    assert listed - found == templates  # mapped from the top-level templates/
