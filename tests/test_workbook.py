"""The XLSX attachment (delivery.email.attach: [xlsx]): opened with openpyxl, every number
compared with results.json, numbers stored as numbers with formats, headings in the report's
language, reproducible bytes, and the workbook on a message that a real SMTP server receives."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from email.message import EmailMessage

import openpyxl
import pytest

from reporter.config.model import Delivery, Email, Smtp
from reporter.delivery.send import attach
from reporter.delivery.workbook import build_workbook
from reporter.render.context import translations
from reporter.run.pipeline import run_report
from tests.conftest import DEMO_NOW, with_locale
from tests.smtp_server import Server

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The indicator sheet's number columns: msgid of the heading → results.json's field.
KPI_FIELDS = {
    "Value": "value",
    "Target": "target",
    "Attainment": "attainment",
    "Previous period": "previous",
    "Change vs previous period": "change_vs_previous",
    "Change vs previous period (points)": "change_pp_vs_previous",
    "Prior year": "prior_year",
    "Change vs prior year": "change_vs_prior_year",
    "Change vs prior year (points)": "change_pp_vs_prior_year",
    "Year to date": "ytd",
}


def stored(value: float | None) -> float | None:
    """A float as an XLSX holds it: 16 significant digits (openpyxl writes ``%.16g``; Excel
    itself shows 15)."""
    return None if value is None else float(f"{value:.16g}")


def number(cell) -> float | None:
    """A cell that must hold a number (or nothing): never text."""
    if cell.value is None:
        return None
    assert cell.data_type == "n", (cell.coordinate, cell.value)
    assert isinstance(cell.value, int | float)
    assert not isinstance(cell.value, bool)
    return float(cell.value)


def rows(sheet) -> list[list]:
    return [list(r) for r in sheet.iter_rows(min_row=2)]


@pytest.fixture(scope="module")
def french(demo_report):
    config, results = demo_report
    return (
        config,
        json.loads(results.to_json()),
        openpyxl.load_workbook(io.BytesIO(build_workbook(config, results))),
    )


def test_indicators_sheet_numbers_equal_results_json(french):
    config, data, book = french
    _ = translations("fr").gettext
    sheet = book[_("Indicators")]
    header = [c.value for c in sheet[1]]
    assert header[:3] == [_("Indicator"), _("Section"), _("Status")]
    fields = {_(msgid): name for msgid, name in KPI_FIELDS.items()}
    present = [h for h in header[3:] if h in fields]
    periods = header[3 + len(present) :]
    assert periods == [p["period"] for p in next(iter(data["kpis"].values()))["series"]]
    assert len(periods) == 12
    assert {fields[h] for h in present} == {n for n in KPI_FIELDS.values() if n in data["kpis"]["revenue"]}
    body = rows(sheet)
    assert [r[0].value for r in body] == [k["label"] for k in data["kpis"].values()]
    checked = scores = 0
    for row, (name, kpi) in zip(body, data["kpis"].items(), strict=True):
        assert row[2].value == _(kpi["status"])
        for i, heading in enumerate(present, start=3):
            assert number(row[i]) == stored(kpi[fields[heading]]), (name, heading)
            checked += kpi[fields[heading]] is not None
        series = {p["period"]: p["value"] for p in kpi["series"]}
        for i, period in enumerate(periods, start=3 + len(present)):
            assert number(row[i]) == stored(series[period]), (name, period)
            checked += series[period] is not None
        # formats follow the KPI's: percent as a percentage, currency with the euro sign
        value = row[header.index(_("Value"))]
        own = {"percent": "0.0%", "integer": "#,##0", "currency": '#,##0.00 "€"', "ratio": "#,##0.00"}
        if kpi["format"] in own and config.kpis[name].decimals is None:
            assert value.number_format == own[kpi["format"]], name
        assert row[header.index(_("Change vs previous period"))].number_format == "+0.0%;-0.0%;0.0%"
        # a rate's points are a fraction shown as a percentage; a score's (the NPS) its own unit
        points = row[header.index(_("Change vs previous period (points)"))].number_format
        if kpi["format"] == "percent":
            assert points == "+0.0%;-0.0%;0.0%", name
        elif config.kpis[name].change == "points":
            assert points == "+0.0;-0.0;0.0", name
            assert number(row[header.index(_("Change vs previous period (points)"))]) == stored(
                kpi["value"] - kpi["previous"]
            )
            scores += 1
        assert row[header.index(_("Attainment"))].number_format == "0%"
        assert row[len(header) - 1].number_format == value.number_format  # the series like the value
    assert checked > 500  # the demo's 41 KPIs: most numbers are known
    assert scores == 1  # the NPS


def test_objectives_sheet_holds_each_objective_then_its_actions(french):
    _config, data, book = french
    _ = translations("fr").gettext
    sheet = book[_("Objectives")]
    body = rows(sheet)
    expected_rows = sum(1 + len(o["actions"]) for o in data["objectives"])
    assert len(body) == expected_rows
    at = 0
    for obj in data["objectives"]:
        row = body[at]
        assert row[0].value == obj["title"]
        assert row[1].value == data["kpis"][obj["kpi"]]["label"]
        assert row[3].value == dt.datetime.fromisoformat(obj["due"])
        assert row[3].is_date
        assert row[4].value == _(obj["status"])
        assert [number(row[5]), number(row[6]), number(row[7])] == [
            stored(obj["value"]),
            stored(obj["target"]),
            stored(obj["attainment"]),
        ]
        for offset, action in enumerate(obj["actions"], start=1):
            line = body[at + offset]
            assert [c.value for c in line[:8]] == [None] * 8
            assert line[8].value == action["do"]
            assert line[9].value == _(action["when"])
            assert line[10].value == action["owner"]
        at += 1 + len(obj["actions"])


def french_label(values, key):
    """A key's French label in a `values` map (text, or a map per language), else the key."""
    label = values.get(str(key))
    return key if label is None else label if isinstance(label, str) else label["fr"]


def test_each_breakdown_funnel_and_portfolio_sheet(french):
    config, data, book = french
    _ = translations("fr").gettext
    relabelled = 0
    for bd in config.breakdowns:
        kpi = data["kpis"][bd.kpi]
        # the demo labels every breakdown's column and values, in French here
        column = bd.label["fr"]
        heading = _("%(kpi)s by %(column)s") % {"kpi": kpi["label"], "column": column[0].lower() + column[1:]}
        sheet = book[heading[:31]]
        assert [c.value for c in sheet[1]] == [column, kpi["label"]]
        expected = data["breakdowns"][f"{bd.kpi}_by_{bd.by}"]

        shown = [
            _("Other")
            if e["other"]
            else _("(none)")
            if e["key"] is None
            else french_label(bd.values, e["key"])
            for e in expected
        ]
        relabelled += sum(s != e["key"] for s, e in zip(shown, expected, strict=True))
        assert [(r[0].value, number(r[1])) for r in rows(sheet)] == [
            (key, stored(e["value"])) for key, e in zip(shown, expected, strict=True)
        ]
    assert relabelled >= 2  # labels, not raw keys (the demo relabels two keys that show)
    funnel = book[_("Funnel")]
    assert [(r[0].value, number(r[1]), number(r[2])) for r in rows(funnel)] == [
        (s["label"], stored(s["value"]), stored(s["step_rate"])) for s in data["funnel"]
    ]
    portfolio = book[_("Portfolio")]
    assert [[number(c) for c in r[1:4]] for r in rows(portfolio)] == [
        [stored(p["cost"]), stored(p["value"]), stored(p["ratio"])] for p in data["portfolio"]
    ]
    assert [r[4].value for r in rows(portfolio)] == [_(p["verdict"]) for p in data["portfolio"]]
    assert portfolio["A1"].value == config.portfolio.label["fr"]
    assert [r[0].value for r in rows(portfolio)] == [
        _("(none)") if p["key"] is None else french_label(config.portfolio.values, p["key"])
        for p in data["portfolio"]
    ]
    assert book.sheetnames[:2] == ["Indicateurs", "Objectifs"]
    assert len(book.sheetnames) == 2 + len(config.breakdowns) + 2


def test_english_headings_and_reproducible_bytes(demo_report):
    config, results = demo_report
    english = with_locale(config, "en_US")
    first, second = build_workbook(english, results), build_workbook(english, results)
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = archive.read("docProps/core.xml").decode()
    assert "2026-11-02T06:00:00Z</dcterms:modified>" in core
    book = openpyxl.load_workbook(io.BytesIO(first))
    header = [c.value for c in book["Indicators"][1]]
    assert header[:4] == ["Indicator", "Section", "Status", "Value"]
    assert header[4:7] == ["Target", "Attainment", "Previous period"]
    assert book.sheetnames[:2] == ["Indicators", "Objectives"]
    cost = book["Indicators"]["D5"]  # cost_per_lead: currency, the euro sign before the number in English
    assert cost.number_format == '"€"#,##0.00'


def test_the_message_carries_pdf_and_workbook(demo_report, tmp_path):
    config, _results = demo_report
    with Server(tmp_path) as server:
        smtp = Smtp(host="127.0.0.1", port=server.port, security="none", timeout=10)
        mail = Email(
            **{"from": "reporting@acme.test"}, to=["ceo@acme.test"], smtp=smtp, attach=["pdf", "xlsx"]
        )
        configured = config.model_copy(update={"delivery": Delivery(email=mail)})
        outcome = run_report(
            configured, period="2026-10", now=DEMO_NOW, output=tmp_path, sleep=lambda s: None
        )
    (received,) = server.handler.received
    parts = [(p.get_content_type(), p.get_filename()) for p in received.message.iter_attachments()]
    assert parts == [
        ("application/pdf", "marketing-monthly_2026-10.pdf"),
        (XLSX, "marketing-monthly_2026-10.xlsx"),
    ]
    # the digest names what it carries (French demo), in the text and the HTML part
    text = " ".join(received.message.get_body(("plain",)).get_content().split())  # wrapped at 78
    names = "marketing-monthly_2026-10.pdf, marketing-monthly_2026-10.xlsx"
    assert f"Le rapport complet est joint : {names}." in text
    assert names in received.message.get_body(("html",)).get_content()
    (sheet_part,) = [p for p in received.message.iter_attachments() if p.get_content_type() == XLSX]
    kept = tmp_path / "marketing-monthly" / "2026-10" / "marketing-monthly_2026-10.xlsx"
    assert sheet_part.get_content() == kept.read_bytes()
    assert kept in outcome.files
    results = json.loads((tmp_path / "marketing-monthly" / "2026-10" / "results.json").read_text())
    book = openpyxl.load_workbook(io.BytesIO(sheet_part.get_content()))
    (revenue,) = [r for r in rows(book["Indicateurs"]) if r[0].value == results["kpis"]["revenue"]["label"]]
    assert number(revenue[3]) == stored(results["kpis"]["revenue"]["value"])


def test_attach_without_pdf_leaves_the_pdf_out():
    message = EmailMessage()
    message.set_content("digest")
    message.add_attachment(b"%PDF-1.7", maintype="application", subtype="pdf", filename="r.pdf")
    attach(message, ["xlsx"], "r.pdf", b"PK\x03\x04", "r.xlsx")
    parts = [(p.get_content_type(), p.get_filename()) for p in message.iter_attachments()]
    assert parts == [(XLSX, "r.xlsx")]
    plain = EmailMessage()
    plain.set_content("digest")
    plain.add_attachment(b"%PDF-1.7", maintype="application", subtype="pdf", filename="r.pdf")
    attach(plain, ["pdf"], "r.pdf", None, "r.xlsx")
    assert [p.get_filename() for p in plain.iter_attachments()] == ["r.pdf"]
