"""A fresh machine: without HarfBuzz's subsetter (Debian's libharfbuzz-subset0), WeasyPrint
subsets fonts with fontTools and says so for every font; reporter says it once, as what to install,
and a render is not failed by it."""

from __future__ import annotations

import logging
import subprocess
import sys

from reporter.cli import FONTTOOLS_HINT
from reporter.render.pdf import collect_problems
from tests.conftest import DEMO


def _subset_library_present() -> bool:
    from weasyprint.text.ffi import harfbuzz_subset

    return harfbuzz_subset is not None


def test_the_fonttools_notice_is_said_once_as_what_to_install(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reporter",
            "run",
            str(DEMO),
            "--period",
            "2026-10",
            "--no-send",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Using fontTools" not in done.stderr
    assert "Traceback" not in done.stderr
    said = [line for line in done.stderr.splitlines() if "harfbuzz" in line.lower()]
    # Which path ran: the fontTools fallback on a machine without the library, HarfBuzz otherwise.
    expected = [] if _subset_library_present() else [f"reporter: {FONTTOOLS_HINT}"]
    assert said == expected


def test_the_notice_is_no_render_problem_but_other_warnings_are():
    logger = logging.getLogger("weasyprint")
    with collect_problems(strict=True) as problems:
        logger.warning('Using fontTools instead of HarfBuzz-Subset for font "%s". Please install', "X")
        logger.warning("Ignored `margin: 3 apples` at 1:1, invalid value.")
    assert problems == ["Ignored `margin: 3 apples` at 1:1, invalid value."]
