"""Breakdowns longer than their ``pdf_rows``, whole, as CSV files attached inside the PDF/A.

The PDF prints a breakdown's first ``pdf_rows`` rows and one "other" row for the rest; the
whole table travels inside the PDF (an associated file of the PDF/A-3, like results.json) and
stays whole in results.json. Numbers are written as results.json writes them (full precision,
a dot for decimals, empty for null), so a spreadsheet or a script reads them back exactly.
Text goes through ``reporter.render.cells.safe_cell`` like the workbook's: a key that starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a ``'`` in front (a
spreadsheet shows it as text, never as a formula), and control characters become U+FFFD.
Lines end with CRLF (RFC 4180), and a field holding a line break is quoted.
"""

from __future__ import annotations

import csv
import io
import re

from reporter.config.model import Config
from reporter.render.cells import safe_cell
from reporter.results import Results


def csv_name(key: str) -> str:
    """The attached file's name for breakdown ``key`` (``<kpi>_by_<column>``)."""
    return re.sub(r"[^\w.-]+", "_", key) + ".csv"


def long_breakdowns(config: Config, results: Results) -> dict[str, bytes]:
    """File name → CSV (UTF-8) for each breakdown longer than its ``pdf_rows``. Columns: the
    breakdown's column, the KPI, and ``other`` (1 on the "other" row of a ``top`` breakdown)."""
    out = {}
    for bd in config.breakdowns:
        key = f"{bd.kpi}_by_{bd.by}"
        if key not in results.pdf_other:
            continue
        text = io.StringIO()
        # CRLF, as RFC 4180 says: the writer then quotes a field holding a CR as well as an LF (with
        # "\n" alone, a key holding a CR would be written bare and split its row in two)
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow([safe_cell(bd.by), safe_cell(bd.kpi), "other"])
        for row in results.breakdowns[key]:
            key_text = "" if row.key is None else str(safe_cell(row.key))
            value = "" if row.value is None else repr(row.value)
            writer.writerow([key_text, value, 1 if row.other else 0])
        out[csv_name(key)] = text.getvalue().encode("utf-8")
    return out
