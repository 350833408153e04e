"""Spreadsheet cells that hold data from elsewhere: text stays text, numbers stay numbers.

Both spreadsheet outputs — the XLSX workbook (``delivery.email.attach: [xlsx]``) and the CSV
files attached inside the PDF — put values taken from the data (a breakdown's keys) and from the
YAML (labels, action texts) into cells. A spreadsheet evaluates a cell whose text starts with
``=``, ``+``, ``-`` or ``@`` (and, through some importers, with a tab or a carriage return) as a
formula: ``=HYPERLINK("http://…"&B2,"Open")`` or ``cmd|' /C calc'!A0`` in a data file would
become live in the analyst's spreadsheet. ``safe_cell`` applies the OWASP rule for CSV injection to
every text cell of both outputs:

- a text starting with one of ``= + - @``, tab (U+0009) or carriage return (U+000D) gets a
  single quote in front (``'=HYPERLINK(…)``), which every spreadsheet shows as text;
- a control character that XLSX cannot store (U+0000–U+0008, U+000B, U+000C, U+000E–U+001F,
  exactly openpyxl's ``ILLEGAL_CHARACTERS_RE``, plus U+FFFE and U+FFFF, which XML forbids) is
  replaced by U+FFFD "�", so the cell shows that something was there rather than gluing its
  neighbours together; tab, line feed and carriage return are kept. This is the rule the PDF
  follows too (``reporter.config.labels.printable``);
- anything that is not text (a number, negative or not, a date, a boolean, nothing) is returned
  as it is: a number stays a number.
"""

from __future__ import annotations

from typing import Any

from reporter.config.labels import printable

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet cell may hold it (see the module's docstring)."""
    if not isinstance(value, str):
        return value
    text = printable(value)
    return "'" + text if text.startswith(FORMULA_START) else text
