"""The XLSX attachment (``delivery.email.attach: [xlsx]``): results.json as a workbook for analysts.

One sheet per section: the indicators (value, target, attainment, status, the changes, the year
to date and the 12-period series), the objectives each followed by their actions, each
breakdown, and the funnel and portfolio when the report has them. Numbers are stored as numbers
(never text) with a number format from the KPI's ``format`` (a ``percent`` KPI as a percentage,
a ``currency`` KPI with the report's currency symbol); dates as dates; every heading and status
in the report's language. Written with openpyxl; the same results give the same bytes (the
document's dates are the results' ``generated_at`` and the zip entries carry a fixed time), so
a re-send or a re-run attaches an identical file.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
import zipfile
from collections.abc import Callable
from typing import Any

from reporter.config.labels import Labels
from reporter.config.model import Config
from reporter.render.cells import safe_cell
from reporter.render.context import Formatter
from reporter.render.html import in_sentence
from reporter.results import Results

MIME = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
CHANGE = "+0.0%;-0.0%;0.0%"
POINTS = "+0.0;-0.0;0.0"  # a score's change in points, in its own unit (a rate's is a fraction: CHANGE)
ATTAINMENT = "0%"
DATE = "yyyy-mm-dd"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def number_format(config: Config, fmt: str, decimals: int | None = None) -> str:
    """The Excel number format of a KPI's values: percent as a percentage, currency with its
    symbol where the report's locale puts it, integers with thousands separators."""
    if fmt == "percent":
        d = 1 if decimals is None else decimals
        return "0" + ("." + "0" * d if d else "") + "%"
    places = {"integer": 0, "ratio": 2, "days": 1, "currency": 2}.get(fmt, 2)
    d = places if decimals is None else decimals
    body = "#,##0" + ("." + "0" * d if d else "")
    if fmt == "currency":
        from babel.numbers import get_currency_symbol

        formatter = Formatter.for_report(config.report)
        symbol = get_currency_symbol(config.report.currency, locale=formatter.locale).replace('"', "")
        pattern = formatter.locale.currency_formats["standard"].pattern
        return f'"{symbol}"{body}' if pattern.lstrip().startswith("¤") else f'{body} "{symbol}"'
    return body


class _Sheets:
    """Unique, valid sheet titles (31 characters, none of ``[]:*?/\\``)."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def title(self, text: str) -> str:
        base = _SHEET_CHARS.sub(" ", text).strip().strip("'") or "Sheet"
        title, n = base[:31], 1
        while title.lower() in self.taken:
            n += 1
            suffix = f" ({n})"
            title = base[: 31 - len(suffix)] + suffix
        self.taken.add(title.lower())
        return title


def build_workbook(config: Config, results: Results) -> bytes:
    """results.json as XLSX bytes (see the module's docstring)."""
    from openpyxl import Workbook

    formatter = Formatter.for_report(config.report)
    _ = formatter._
    book = Workbook()
    sheets = _Sheets()
    data = results.to_dict()
    when = dt.datetime.fromisoformat(results.generated_at) if results.generated_at else None
    stamp = (
        when.astimezone(dt.UTC).replace(tzinfo=None)
        if when
        else dt.datetime(1980, 1, 1, tzinfo=dt.UTC).replace(tzinfo=None)
    )
    book.properties.creator = "reporter"
    book.properties.title = f"{Labels(config).title()} — {results.period}"
    book.properties.created = stamp
    book.properties.modified = stamp

    kpi_sheet = book.active
    assert kpi_sheet is not None
    kpi_sheet.title = sheets.title(_("Indicators"))
    _indicators(kpi_sheet, config, data, _)
    _objectives(book.create_sheet(sheets.title(_("Objectives"))), config, results, data, _)
    labels = Labels(config)  # the names as the PDF prints them (breakdowns[].label, values…)
    for bd in config.breakdowns:
        key = f"{bd.kpi}_by_{bd.by}"
        kpi = data["kpis"][bd.kpi]
        column = labels.breakdown(bd)
        heading = _("%(kpi)s by %(column)s") % {
            "kpi": kpi["label"],
            "column": in_sentence(column, labels.language),
        }
        sheet = book.create_sheet(sheets.title(heading))
        _table(sheet, [column, kpi["label"]])
        fmt = number_format(config, kpi["format"], config.kpis[bd.kpi].decimals)
        for row in data["breakdowns"].get(key, []):
            shown = _key_text(row, functools.partial(labels.breakdown_value, bd), _)
            _append(sheet, [shown, row["value"]], {2: fmt})
        _widths(sheet, [32, 18])
    if data["funnel"]:
        sheet = book.create_sheet(sheets.title(_("Funnel")))
        _table(sheet, [_("Stage"), _("Volume"), _("Step conversion")])
        for stage in data["funnel"]:
            _append(sheet, [stage["label"], stage["value"], stage["step_rate"]], {2: "#,##0", 3: "0.0%"})
        _widths(sheet, [28, 14, 16])
    if data["portfolio"] and config.portfolio is not None:
        _portfolio(book.create_sheet(sheets.title(_("Portfolio"))), config, data, _)
    buffer = io.BytesIO()
    book.save(buffer)
    return _fixed(buffer.getvalue(), stamp)


def _key_text(row: dict[str, Any], label: Callable[[Any], str], _: Callable[[str], str]) -> Any:
    """A row's key as the PDF shows it: "Other", "(none)", or the key's label; a number without
    a label stays a number (a key of -5 is the number -5, not the text "-5")."""
    if row.get("other"):
        return _("Other")
    key = row["key"]
    if key is None:
        return _("(none)")
    shown = label(key)
    if isinstance(key, int | float) and not isinstance(key, bool) and shown == str(key):
        return key
    return shown


def _kpi_headings(_: Callable[[str], str]) -> dict[str, str]:
    """The indicator sheet's number columns, in order, with their headings (literal msgids, so
    the catalogue test finds them). A field results.json does not hold is left out."""
    return {
        "value": _("Value"),
        "target": _("Target"),
        "attainment": _("Attainment"),
        "previous": _("Previous period"),
        "change_vs_previous": _("Change vs previous period"),
        "change_pp_vs_previous": _("Change vs previous period (points)"),
        "prior_year": _("Prior year"),
        "change_vs_prior_year": _("Change vs prior year"),
        "change_pp_vs_prior_year": _("Change vs prior year (points)"),
        "ytd": _("Year to date"),
    }


def kpi_formats(config: Config, fmt: str, decimals: int | None) -> dict[str, str]:
    """Each number column's format for one KPI: its own values in the KPI's format, relative
    changes and changes in points signed, attainment as a whole percentage."""
    own = number_format(config, fmt, decimals)
    points = CHANGE if fmt == "percent" else POINTS
    return {
        "value": own,
        "target": own,
        "previous": own,
        "prior_year": own,
        "ytd": own,
        "attainment": ATTAINMENT,
        "change_vs_previous": CHANGE,
        "change_vs_prior_year": CHANGE,
        "change_pp_vs_previous": points,
        "change_pp_vs_prior_year": points,
    }


def _indicators(sheet: Any, config: Config, data: dict[str, Any], _: Callable[[str], str]) -> None:
    kpis = data["kpis"]
    headings = _kpi_headings(_)
    numbers = [k for k in headings if any(k in kpi for kpi in kpis.values())]
    periods = sorted({p["period"] for kpi in kpis.values() for p in kpi["series"]})[-12:]
    _table(sheet, [_("Indicator"), _("Section"), _("Status"), *[headings[k] for k in numbers], *periods])
    first_number = 4
    for name, kpi in kpis.items():
        formats = kpi_formats(
            config, kpi["format"], config.kpis[name].decimals if name in config.kpis else None
        )
        series = {p["period"]: p["value"] for p in kpi["series"]}
        row = [kpi["label"], kpi["section"] or _("Indicators"), word(_, kpi["status"])]
        row += [kpi.get(k) for k in numbers] + [series.get(p) for p in periods]
        cell_formats = {first_number + i: formats[k] for i, k in enumerate(numbers)}
        first_series = first_number + len(numbers)
        cell_formats.update({first_series + i: formats["value"] for i in range(len(periods))})
        _append(sheet, row, cell_formats)
    _widths(sheet, [34, 16, 14] + [14] * (len(numbers) + len(periods)))
    sheet.freeze_panes = "B2"


def _objectives(
    sheet: Any, config: Config, results: Results, data: dict[str, Any], _: Callable[[str], str]
) -> None:
    """One row per objective, then one row per action of it (the objective's cells left empty)."""
    from reporter.render.html import render_text
    from reporter.render.texts import action_context

    _table(
        sheet,
        [
            _("Objective"),
            _("Indicator"),
            _("Owner"),
            _("Due"),
            _("Status"),
            _("Value"),
            _("Target"),
            _("Attainment"),
            _("Action"),
            _("Triggered by"),
            _("Owner"),
            _("Due"),
        ],
    )
    context = action_context(Labels(config), results.period)
    for obj in data["objectives"]:
        kpi = data["kpis"][obj["kpi"]]
        decimals = config.kpis[obj["kpi"]].decimals if obj["kpi"] in config.kpis else None
        own = number_format(config, kpi["format"], decimals)
        row = [
            obj["title"] or obj["id"],
            kpi["label"],
            obj["owner"],
            _date(obj["due"]),
            word(_, obj["status"]),
            obj["value"],
            obj["target"],
            obj["attainment"],
        ]
        _append(sheet, row, {4: DATE, 6: own, 7: own, 8: ATTAINMENT})
        for i, action in enumerate(obj["actions"]):
            text = render_text(action["do"], context, f"objective '{obj['id']}' action {i + 1}")
            cells = [None] * 8 + [text, word(_, action["when"]), action["owner"], _date(action["due"])]
            _append(sheet, cells, {12: DATE})
    _widths(sheet, [36, 28, 24, 12, 14, 14, 14, 12, 60, 14, 24, 12])
    sheet.freeze_panes = "A2"


def _portfolio(sheet: Any, config: Config, data: dict[str, Any], _: Callable[[str], str]) -> None:
    assert config.portfolio is not None
    labels = Labels(config)
    _table(sheet, [labels.portfolio(), _("Cost"), _("Value"), _("Ratio"), _("Verdict")])
    money = number_format(config, "currency")
    for row in data["portfolio"]:
        shown = _key_text(row, labels.portfolio_value, _)
        cells = [shown, row["cost"], row["value"], row["ratio"], word(_, row["verdict"])]
        _append(sheet, cells, {2: money, 3: money, 4: number_format(config, "ratio")})
    _widths(sheet, [32, 16, 16, 10, 12])


def word(_: Callable[[str], str], code: str) -> str:
    """A code of results.json (a status, a verdict) in the report's language."""
    return _(code)


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _table(sheet: Any, headings: list[str]) -> None:
    from openpyxl.styles import Font

    _append(sheet, list(headings), {})
    for cell in sheet[1]:
        cell.font = Font(bold=True)


def _append(sheet: Any, values: list[Any], formats: dict[int, str]) -> None:
    """A row; ``formats`` maps a 1-based column to the number format of its cell. Each text is
    neutralised (``reporter.render.cells``: never a formula, no control character XLSX cannot
    store) and stored as a string cell; numbers, dates and empty cells are stored as they are."""
    sheet.append([safe_cell(v) for v in values])
    row = sheet.max_row
    for column, value in enumerate(values, start=1):
        if isinstance(value, str):
            sheet.cell(row=row, column=column).data_type = "s"
    for column, fmt in formats.items():
        sheet.cell(row=row, column=column).number_format = fmt


def _widths(sheet: Any, widths: list[int]) -> None:
    from openpyxl.utils import get_column_letter

    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width


def _fixed(xlsx: bytes, stamp: dt.datetime) -> bytes:
    """The same workbook with reproducible bytes: each zip entry dated 1980-01-01 and the
    document's modification time (which openpyxl sets to now on save) set to ``stamp``."""
    modified = stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                    rb"\g<1>" + modified + rb"\g<2>",
                    data,
                )
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            target.writestr(entry, data)
    return out.getvalue()
