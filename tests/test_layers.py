"""The layers' contract (pyproject.toml, [tool.importlinter]) holds, and is not a formality: a copy
of the package with one upward import fails it, naming the import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

LINT = Path(sys.executable).parent / "lint-imports"


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=where,
        env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_layers_hold(tmp_path):
    shutil.copytree(ROOT / "reporter", tmp_path / "reporter")
    done = _lint(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_upward_import_breaks_the_build(tmp_path):
    shutil.copytree(ROOT / "reporter", tmp_path / "reporter")
    loader = tmp_path / "reporter" / "config" / "loader.py"
    loader.write_text(loader.read_text() + "\nfrom reporter.run import pipeline  # noqa: E402\n")
    done = _lint(tmp_path)
    assert done.returncode == 1, done.stdout
    assert "BROKEN" in done.stdout
    assert "reporter.config.loader -> reporter.run.pipeline" in done.stdout


def test_a_cycle_inside_a_package_breaks_the_build(tmp_path):
    """The acyclic_siblings contract: two modules of one package importing each other (here the
    model importing the rules, which import the model) fail it, naming the package and the
    import that would break the cycle; the tree as it is keeps it (test_the_layers_hold)."""
    shutil.copytree(ROOT / "reporter", tmp_path / "reporter")
    model = tmp_path / "reporter" / "config" / "model.py"
    model.write_text(model.read_text() + "\nfrom reporter.config import checks  # noqa: E402\n")
    done = _lint(tmp_path)
    assert done.returncode == 1, done.stdout
    assert (
        "No import cycle inside a package: siblings depend on each other one way only BROKEN" in done.stdout
    )
    assert "No cycles are allowed in reporter.config." in done.stdout
    assert "- .model -> .checks (1 import)" in done.stdout
