"""Compiled templates kept on disk for the next process (``reporter.render.html.CompiledTemplates``):
used only from a folder private to the user, checked against each template's source, and the
same HTML (so the same PDF) whether a template was compiled or loaded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

RENDER = textwrap.dedent(
    """
    import datetime as dt, hashlib, json, pathlib, sys
    from reporter.compute.database import compute
    from reporter.config import load_config
    from reporter.periods import Period
    from reporter.render.html import COMPILED, render_html
    from reporter.run.stages import describe
    config = load_config(pathlib.Path(sys.argv[1]), env={})
    now = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)
    results = describe(config, compute(config, Period.parse("2026-10", "month"), now))
    html = render_html(config, results)
    print(json.dumps({"compiled": COMPILED.compiled, "loaded": COMPILED.loaded,
                      "html": hashlib.sha256(html.encode()).hexdigest(), "has": "CACHE-PROBE" in html}))
    """
)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """The demo over a copy of its template folder, beside it (``report.template: executive-copy``)."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "templates" / "executive", tmp_path / "config" / "executive-copy")
    config = tmp_path / "config" / "example.yaml"
    text = config.read_text(encoding="utf-8").replace(
        "  template: executive ", "  template: executive-copy ", 1
    )
    config.write_text(text, encoding="utf-8")
    return config


def render(config: Path, cache: str) -> dict[str, object]:
    env = {**os.environ, "REPORTER_CACHE_DIR": cache}
    done = subprocess.run(
        [sys.executable, "-c", RENDER, str(config)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def entries(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.jinja")}


def test_the_next_process_loads_the_compiled_template_and_renders_the_same_html(demo: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    first = render(demo, str(cache))
    assert first["compiled"] >= 1
    assert first["loaded"] == 0
    folder = cache / "templates"
    assert entries(folder), "nothing was kept"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    second = render(demo, str(cache))
    assert second["compiled"] == 0, second  # report.html and what it includes: loaded
    assert second["loaded"] == first["compiled"]
    assert second["html"] == first["html"]
    nothing = render(demo, "off")  # the cache switched off: compiled again, the same HTML
    assert nothing["compiled"] == first["compiled"]
    assert nothing["loaded"] == 0
    assert nothing["html"] == first["html"]


def test_a_changed_template_is_compiled_again(demo: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    first = render(demo, str(cache))
    report = demo.parent / "executive-copy" / "report.html"
    report.write_text(report.read_text(encoding="utf-8").replace("</body>", "<p>CACHE-PROBE</p></body>", 1))
    second = render(demo, str(cache))
    assert second["has"] is True
    assert second["html"] != first["html"]
    assert second["compiled"] >= 1


def test_a_folder_others_may_write_to_is_not_used(demo: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    render(demo, str(cache))
    folder = cache / "templates"
    kept = entries(folder)
    folder.chmod(0o770)  # the group may write: its compiled code could be anyone's
    again = render(demo, str(cache))
    assert again["loaded"] == 0
    assert again["compiled"] >= 1
    assert entries(folder) == kept  # nothing written there either
    folder.chmod(0o700)
    assert render(demo, str(cache))["loaded"] >= 1  # private again: used


def test_a_symlinked_folder_is_not_used(demo: Path, tmp_path: Path):
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "templates").symlink_to(tmp_path / "elsewhere")
    render(demo, str(tmp_path / "cache"))
    assert not list((tmp_path / "elsewhere").iterdir())


def test_a_damaged_entry_is_compiled_again(demo: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    first = render(demo, str(cache))
    for entry in (cache / "templates").glob("*.jinja"):
        entry.write_bytes(b"j2 not compiled code at all")
    again = render(demo, str(cache))
    assert again["compiled"] == first["compiled"]
    assert again["html"] == first["html"]
