"""The PDF read back as positioned text: no two cells' texts run into each other on a line, in
any of the five languages (an English "cumulative 268" under the scorecard's value once ran
into the target column's "cumulative")."""

from __future__ import annotations

import io
from copy import deepcopy
from dataclasses import dataclass

import pypdf
import pytest

# pypdf's layout mode measures each shown string with its font's widths; it has no public entry
# point that returns the positions, so the test calls the function its extract_text uses.
from pypdf._text_extraction._layout_mode import text_show_operations
from pypdf.generic import ContentStream

from reporter.run.stages import describe, render_pdf
from tests.conftest import with_locale

# Two cells' texts on one line closer than this (in points) read as one run of words; the
# scorecard's cells keep 2 mm (5.7 pt) between them when their text fits.
MIN_GAP = 2.0


@dataclass(frozen=True)
class Run:
    """One string shown on a page: its text, its baseline and where it starts and ends (pt)."""

    page: int
    text: str
    baseline: float
    left: float
    right: float


def text_runs(pdf: bytes) -> list[Run]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    runs = []
    for number, page in enumerate(reader.pages, start=1):
        operations = ContentStream(page["/Contents"].get_object(), reader, "bytes").operations
        for group in text_show_operations(iter(operations), page._layout_mode_fonts()):
            if group["text"].strip():
                runs.append(Run(number, group["text"], group["ty"], group["tx"], group["displaced_tx"]))
    return runs


def crowded(runs: list[Run]) -> list[tuple[int, str, str, float]]:
    """Pairs of runs on one baseline, the second starting less than MIN_GAP after the first ends
    (or before it ends: overlapping). A run that ends with a space, or a next one that starts
    with one, continues the same line of the same cell (a label and its flag, a symbol and its
    title in another font); those are not two cells."""
    found = []
    for a in runs:
        for b in runs:
            if a is b or a.page != b.page or abs(a.baseline - b.baseline) > 1 or a.left > b.left:
                continue
            if a.text[-1].isspace() or b.text[0].isspace():
                continue
            gap = b.left - a.right
            if gap < MIN_GAP:
                found.append((a.page, a.text, b.text, round(gap, 1)))
    return found


def test_the_check_finds_the_overlap_it_is_for():
    """Two strings drawn 10 pt into each other on one line are found; apart, or on another
    line, or continuing a line after a space, they are not."""
    runs = [
        Run(1, "cumulative 268", 300.0, 100.0, 160.0),
        Run(1, "cumulative", 300.0, 150.0, 190.0),
        Run(1, "33", 290.0, 150.0, 160.0),
        Run(1, "investment ", 280.0, 50.0, 100.0),
        Run(1, "unusual", 280.0, 99.0, 130.0),
        Run(2, "260", 300.0, 120.0, 140.0),
    ]
    assert crowded(runs) == [(1, "cumulative 268", "cumulative", -10.0)]


@pytest.fixture(scope="module")
def other_pdfs(demo_report):
    """The demo in German, Spanish and Italian (French and English come from demo_pdfs)."""
    config, results = demo_report
    pdfs = {}
    for locale in ("de_DE", "es_ES", "it_IT"):
        localised = with_locale(config, locale)
        pdfs[locale] = render_pdf(localised, describe(localised, deepcopy(results)))
    return pdfs


@pytest.mark.parametrize("locale", ["fr_FR", "en_US", "de_DE", "es_ES", "it_IT"])
def test_no_two_cells_run_into_each_other(demo_pdfs, other_pdfs, locale):
    pdf = demo_pdfs.get(locale) or other_pdfs[locale]
    runs = text_runs(pdf)
    texts = [r.text for r in runs]
    # the scorecard's cumulative KPI is there, with its note under the value and the target's
    assert any(t.split()[0] in ("cumul", "cumulative", "kumuliert", "acumulado", "cumulato") for t in texts)
    assert crowded(runs) == []
