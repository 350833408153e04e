"""The PDF as a screen reader and an auditor read it: one WeasyPrint document (counters and
running strings as WeasyPrint prints them), tagged PDF/A-3a + PDF/UA-1 (structure tree, /Lang,
headings, header cells, every chart with alternative text written from its numbers), and long
breakdowns cut to ``pdf_rows`` with the whole table attached as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import re

import page as page_validation
import pikepdf
import pypdf
import pytest
import weasyprint
from babel.dates import format_date
from babel.numbers import format_percent

from reporter.compute.database import compute
from reporter.config import load_config
from reporter.periods import Period
from reporter.render.html import render_html, stylesheet_dir
from reporter.run.stages import render_pdf
from tests.conftest import write_csv
from tests.test_render import expected_value, squash

NOW = dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC)


# --- one document ------------------------------------------------------------------------------

COUNTERS = """{% extends "default:report.html" %}
{% block styles %}{{ super() }}<style>
body { counter-reset: chap; }
h2::before { counter-increment: chap; content: "§" counter(chap) " "; }
h1 { string-set: part content(); }
@page { @top-center { content: "[" string(part) "]"; font-size: 7pt; } }
</style>{% endblock %}
"""


def test_counters_and_running_strings_print_as_in_one_weasyprint_document(tmp_path, demo_report):
    """A template numbering every h2 through the whole report and printing the current h1 in
    the page header: the report's PDF has, page by page, WeasyPrint's own text for that HTML."""
    config, results = demo_report
    custom = tmp_path / "counted"
    custom.mkdir()
    (custom / "report.html").write_text(COUNTERS, encoding="utf-8")
    cfg = config.model_copy(update={"report": config.report.model_copy(update={"template": str(custom)})})
    html = render_html(cfg, results)
    ours = pypdf.PdfReader(io.BytesIO(render_pdf(cfg, results)))
    base = stylesheet_dir(cfg).as_uri() + "/"
    theirs = pypdf.PdfReader(io.BytesIO(weasyprint.HTML(string=html, base_url=base).write_pdf()))
    assert [p.extract_text() for p in ours.pages] == [p.extract_text() for p in theirs.pages]
    text = "".join(p.extract_text() for p in ours.pages)
    h2_count = html.count("<h2")
    assert h2_count >= 10
    numbers = [int(n) for n in re.findall(r"§(\d+)", text)]
    assert numbers == list(range(1, h2_count + 1))  # one count over the whole document
    assert "[Annexe\u00a0: définitions et données]" in ours.pages[-1].extract_text()


# --- tagged PDF: structure tree ----------------------------------------------------------------


def structure(pdf: bytes) -> list[tuple[str, pikepdf.Dictionary]]:
    """(tag, element) for every structure element, in document order."""
    out: list[tuple[str, pikepdf.Dictionary]] = []
    with pikepdf.open(io.BytesIO(pdf)) as doc:

        def walk(node) -> None:
            kids = node.get("/K")
            if kids is None:
                return
            for kid in kids if isinstance(kids, pikepdf.Array) else [kids]:
                if isinstance(kid, pikepdf.Dictionary) and kid.get("/Type") != "/OBJR" and "/S" in kid:
                    out.append((str(kid.S)[1:], {k: kid.get(k) for k in ("/Alt", "/A")}))
                    walk(kid)

        walk(doc.Root.StructTreeRoot)
    return out


def figure_alts(pdf: bytes) -> list[str]:
    return [str(e["/Alt"]) if e["/Alt"] is not None else "" for tag, e in structure(pdf) if tag == "Figure"]


def months(label: str, locale: str) -> str:
    y, m = map(int, label.split("-"))
    return format_date(dt.date(y, m, 1), "LLLL y", locale=locale)


def expected_sparkline_alt(kpi, locale: str) -> str:
    """The chart's alternative text rebuilt from results.json with Babel alone."""
    known = [(p.period, p.value) for p in kpi.series if p.value is not None]
    fmt = kpi.format
    (p1, v1), (pn, vn) = known[0], known[-1]
    high = max(known, key=lambda point: point[1])[0]
    if locale == "fr_FR":
        return (
            f"{kpi.label} sur 12 mois\u00a0: de {expected_value(v1, fmt, locale)} en {months(p1, locale)} à "
            f"{expected_value(vn, fmt, locale)} en {months(pn, locale)}, plus haut en {months(high, locale)}"
        )
    return (
        f"{kpi.label} over 12 months: from {expected_value(v1, fmt, locale)} in {months(p1, locale)} to "
        f"{expected_value(vn, fmt, locale)} in {months(pn, locale)}, highest in {months(high, locale)}"
    )


@pytest.mark.parametrize("locale", ["fr_FR", "en_US"])
def test_every_chart_has_alternative_text_from_its_numbers(demo_report, demo_pdfs, locale):
    import dataclasses

    from reporter.config.labels import Labels

    config, results = demo_report
    alts = figure_alts(demo_pdfs[locale])
    # the demo's labels are in French and English: each KPI by its label in this locale
    names = Labels(config, locale)
    labelled = {n: dataclasses.replace(k, label=names.kpi(n)) for n, k in results.kpis.items()}
    kpis = list(labelled.values())
    # a KPI without a target has no attainment bar: its dash is an artifact, no figure
    bars = sum(k.status != "no_target" for k in kpis)
    charts = len(kpis) + bars + len(results.objectives) + bool(results.funnel) + bool(results.portfolio)
    assert len(alts) == charts
    assert all(alt.strip() for alt in alts), alts
    for kpi in kpis:
        if any(p.value is not None for p in kpi.series):
            assert squash(expected_sparkline_alt(kpi, locale)) in {squash(a) for a in alts}, kpi.label
        pattern = "#,##0 %" if locale == "fr_FR" else "#,##0%"
        if kpi.attainment is not None:
            attained = format_percent(kpi.attainment, pattern, locale=locale)
            words = "de l'objectif" if locale == "fr_FR" else "of target"
            sep = "\u00a0: " if locale == "fr_FR" else ": "
            assert squash(f"{kpi.label}{sep}{attained} {words}") in {squash(a) for a in alts}, kpi.label
    # each objective's trend: its KPI's 12 months, then the target of the last one
    for obj in results.objectives:
        kpi = labelled[obj.kpi]
        last = obj.trend[-1]
        target = expected_value(last.target, kpi.format, locale)
        words = f"\u00a0; objectif {target} en " if locale == "fr_FR" else f"; target {target} in "
        expected = expected_sparkline_alt(kpi, locale) + words + months(last.period, locale)
        assert squash(expected) in {squash(a) for a in alts}, obj.id
    # the funnel lists every stage's volume, as the PDF prints it
    funnel = next(a for a in alts if a.startswith(("Entonnoir", "Funnel")))
    for i, stage in enumerate(results.funnel):
        label = names.funnel(i)
        assert squash(f"{label} {expected_value(stage.value, 'integer', locale)}") in squash(funnel)


def test_the_issue_example_reads_as_written(demo_report, demo_pdfs):
    """The demo's site visits, in the words of the issue (a KPI of integers)."""
    _, results = demo_report
    sessions = results.kpis["sessions"]
    alt = next(a for a in figure_alts(demo_pdfs["fr_FR"]) if a.startswith("Visites du site sur 12 mois"))
    assert alt == expected_sparkline_alt(sessions, "fr_FR")
    first, last = sessions.series[0].value, sessions.series[-1].value
    assert re.fullmatch(
        r"Visites du site sur 12 mois\u00a0: de (\d+)\u202f(\d{3}) en novembre 2025 à (\d+)\u202f(\d{3}) "
        r"en octobre 2026, plus haut en \w+ 202[56]",
        alt,
    )
    numbers = [int(a + b) for a, b in re.findall(r"(\d+)\u202f(\d{3})", alt)]
    assert numbers == [round(first), round(last)]


@pytest.mark.parametrize(("locale", "lang"), [("fr_FR", "fr"), ("en_US", "en")])
def test_document_language_headings_and_header_cells(demo_pdfs, locale, lang):
    pdf = demo_pdfs[locale]
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert str(doc.Root.Lang) == lang
        assert doc.Root.MarkInfo.Marked
        xmp = doc.Root.Metadata.read_bytes().decode()
        assert "/Filter" not in doc.Root.Metadata.stream_dict
    assert 'pdfuaid:part="1"' in xmp
    assert 'pdfaid:part="3"' in xmp
    assert 'pdfaid:conformance="A"' in xmp
    elements = structure(pdf)
    levels = [int(tag[1]) for tag, _ in elements if re.fullmatch(r"H[1-6]", tag)]
    assert levels[0] == 1
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), levels
    assert {1, 2, 3} <= set(levels)
    tables = [i for i, (tag, _) in enumerate(elements) if tag == "Table"]
    assert len(tables) >= 8
    for start, end in zip(tables, [*tables[1:], len(elements)], strict=True):
        assert any(tag == "TH" for tag, _ in elements[start:end]), elements[start]


def marked_text(pdf: bytes, page: int) -> list[tuple[str, str]]:
    """(what, text) for each text-showing operator of a page, in stream order: ``what`` is
    ``artifact`` inside /Artifact marked content, ``tagged`` inside marked content with an MCID
    (in the structure tree, read aloud), ``other`` elsewhere; and ("artifact", "<paint>") for
    each thing an /Artifact section paints without text (shadings, fills, strokes)."""
    out: list[tuple[str, str]] = []
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        stack: list[str] = []
        for operands, op in pikepdf.parse_content_stream(doc.pages[page]):
            name = str(op)
            if name in ("BMC", "BDC"):
                tag = str(operands[0])
                mcid = (
                    name == "BDC" and isinstance(operands[1], pikepdf.Dictionary) and "/MCID" in operands[1]
                )
                stack.append(
                    "artifact" if tag == "/Artifact" else "tagged" if mcid else (stack or ["other"])[-1]
                )
            elif name == "EMC" and stack:
                stack.pop()
            elif name in ("Tj", "TJ", "'", '"'):
                parts = operands[0] if name == "TJ" else [operands[-1]]
                text = "".join(bytes(p).hex() for p in parts if isinstance(p, pikepdf.String))
                out.append((stack[-1] if stack else "other", text))
            elif name in ("sh", "f", "f*", "S", "B", "b", "Do") and stack and "artifact" in stack:
                out.append(("artifact", "<paint>"))
    return out


def test_table_of_contents_leaders_and_no_target_marks_are_artifacts(demo_report, demo_pdfs):
    """A screen reader reads each contents entry and its page, not a row of dots (the leader is
    a background, an /Artifact); a KPI without a target has no figure whose text says so (its
    dash is an artifact too); PDF/UA-1 still passes (test_demo_pdf_passes_pdfa_3a_and_pdfua_1)."""
    _, results = demo_report
    for locale, pdf in demo_pdfs.items():
        reader = pypdf.PdfReader(io.BytesIO(pdf))
        toc = next(
            i
            for i, p in enumerate(reader.pages)
            if ("Sommaire" if locale == "fr_FR" else "Contents") in p.extract_text()
        )
        text = reader.pages[toc].extract_text()
        assert ". ." not in text, text  # no leader written as text
        assert ".." not in text, text
        lines = [line for line in text.splitlines() if re.search(r"\d$", line)]
        first = "Synthèse 1" if locale == "fr_FR" else "Executive summary 1"
        assert first in lines, lines
        shown = marked_text(pdf, toc)
        assert all(what == "tagged" for what, text in shown if text != "<paint>" and what != "other"), shown
        painted = [what for what, text in shown if text == "<paint>"]
        assert len(painted) >= len(lines), shown  # each entry's leader drawn, as an artifact
        alts = " ".join(figure_alts(pdf))
        assert "objectif" in alts or "target" in alts  # the bars of KPIs with a target keep theirs
        assert "pas d'objectif" not in alts, alts
        assert "no target" not in alts, alts
    no_target = [k for k in results.kpis.values() if k.status == "no_target"]
    assert len(no_target) >= 10


def test_demo_pdf_passes_pdfa_3a_and_pdfua_1(demo_pdfs):
    for locale, pdf in demo_pdfs.items():
        for profile in ("3a", "ua1"):
            report = page_validation.validate_pdf_bytes(pdf, profile=profile)
            assert report.is_compliant, (locale, profile, [(f.rule_id, f.message) for f in report.failures])
            assert report.rules.passed == report.rules.total


def test_without_pdfa_the_pdf_is_plain(demo_report):
    config, results = demo_report
    delivery = config.delivery.model_copy(
        update={"archive": config.delivery.archive.model_copy(update={"pdfa": False})}
    )
    pdf = render_pdf(config.model_copy(update={"delivery": delivery}), results)
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert "/StructTreeRoot" not in doc.Root
        assert "/Metadata" not in doc.Root
        assert "/AF" not in doc.Root
    assert not page_validation.validate_pdf_bytes(pdf, profile="ua1").is_compliant


# --- long breakdowns ---------------------------------------------------------------------------

LONG = """
report: {id: long, title: Long, timezone: Europe/Paris, locale: en_US}
sources: {s: {type: csv, path: s.csv, date_column: date}}
metrics:
  won: {source: s, agg: sum, column: won}
  leads: {source: s, agg: sum, column: leads}
kpis:
  rate: {label: Win rate, formula: won / leads, format: percent}
  leads: {label: Leads, formula: leads, format: integer}
breakdowns:
  - {kpi: rate, by: rep, pdf_rows: 5}
  - {kpi: leads, by: rep, pdf_rows: 3, top: 6}
  - {kpi: leads, by: team}
quality: {require_complete_period: false}
"""


def long_report(tmp_path):
    reps = [f"R{i:02d}" for i in range(12)]
    rows = []
    for i, rep in enumerate(reps):
        for day in (3, 17):
            won, leads = 3 * i + day % 5, 7 * (i + 1) ** 2 + day
            rows.append([f"2026-10-{day:02d}", rep, "A" if i % 2 else "B", won, leads])
    rows.append(["2026-10-20", None, "A", 4, 9])  # a row without a rep: key null
    write_csv(tmp_path / "s.csv", ["date", "rep", "team", "won", "leads"], rows)
    (tmp_path / "r.yaml").write_text(LONG)
    config = load_config(tmp_path / "r.yaml", env={})
    return config, rows


def test_a_long_breakdown_prints_its_first_rows_and_other_and_attaches_the_whole_table(tmp_path):
    config, rows = long_report(tmp_path)
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    full = json.loads(results.to_json())["breakdowns"]
    # results.json keeps every row (13 reps with the null one; top 6 + other)
    assert len(full["rate_by_rep"]) == 13
    assert len(full["leads_by_rep"]) == 7
    assert "pdf_other" not in json.loads(results.to_json())

    # independently: win rate per rep, and "other" as the ratio of the sums of the rest
    sums: dict[object, list[int]] = {}
    for _, rep, _, won, leads in rows:
        sums.setdefault(rep, [0, 0])
        sums[rep][0] += won
        sums[rep][1] += leads
    ranked = sorted(sums, key=lambda rep: (-sums[rep][0] / sums[rep][1], str(rep or "")))
    assert [r["key"] for r in full["rate_by_rep"]] == ranked
    shown, rest = ranked[:5], ranked[5:]
    other_rate = sum(sums[r][0] for r in rest) / sum(sums[r][1] for r in rest)
    ratios = [sums[r][0] / sums[r][1] for r in rest]
    wrong = {expected_value(x, "percent", "en_US") for x in (sum(ratios), sum(ratios) / len(ratios))}
    assert expected_value(other_rate, "percent", "en_US") not in wrong  # the test tells them apart

    pdf = render_pdf(config, results)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = "".join(p.extract_text() for p in reader.pages)
    section = text[text.index("Win rate by rep") : text.index("Leads by rep")]
    lines = [line.strip() for line in section.splitlines() if line.strip()]
    printed = [line for line in lines if re.match(r"^(R\d\d|\(none\)|Other) ", line)]
    # each rate with its divisor beside it, the leads of its rows ("other": of all the rest)
    rest_leads_of_rate = sum(sums[r][1] for r in rest)
    expected = [
        f"{'(none)' if r is None else r} {expected_value(sums[r][0] / sums[r][1], 'percent', 'en_US')}"
        f" {expected_value(sums[r][1], 'integer', 'en_US')}"
        for r in shown
    ] + [
        f"Other {expected_value(other_rate, 'percent', 'en_US')}"
        f" {expected_value(rest_leads_of_rate, 'integer', 'en_US')}"
    ]
    assert printed == expected
    assert "The first 5 of 13 rows; the whole table is attached to this PDF: rate_by_rep.csv" in text
    # a top-N breakdown cut further: 3 rows, then "other" over the rest (its own other included)
    leads = text[text.index("Leads by rep") : text.index("Leads by team")]
    top_leads = sorted(sums, key=lambda rep: (-sums[rep][1], str(rep or "")))
    rest_leads = sum(sums[r][1] for r in top_leads[3:])
    assert f"Other {expected_value(rest_leads, 'integer', 'en_US')}" in leads
    assert "The first 3 of 7 rows" in leads
    assert "The first" not in text[text.index("Leads by team") :]  # short: whole, no note

    attached = reader.attachments
    assert sorted(attached) == [
        "leads_by_rep.csv",
        "provenance.json",
        "r.yaml",
        "rate_by_rep.csv",
        "results.json",
    ]
    table = list(csv.reader(io.StringIO(attached["rate_by_rep.csv"][0].decode("utf-8"))))
    assert table[0] == ["rep", "rate", "other"]
    assert [(r[0] or None, float(r[1]), r[2]) for r in table[1:]] == [
        (row["key"], row["value"], "0") for row in full["rate_by_rep"]
    ]
    by_rep = list(csv.reader(io.StringIO(attached["leads_by_rep.csv"][0].decode("utf-8"))))
    assert by_rep[-1] == ["other", repr(float(sum(sums[r][1] for r in top_leads[6:]))), "1"]
    # an associated file of the PDF/A-3, as results.json
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        names = {str(spec.UF): str(spec.AFRelationship) for spec in doc.Root.AF}
    assert names["rate_by_rep.csv"] == "/Data"
    assert page_validation.validate_pdf_bytes(pdf, profile="3a").is_compliant


def test_pdf_rows_must_be_at_least_one(tmp_path, capsys):
    from reporter.cli import main

    long_report(tmp_path)
    path = tmp_path / "r.yaml"
    path.write_text(LONG.replace("pdf_rows: 5}", "pdf_rows: 0}"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{path}:11:36: breakdowns[0].pdf_rows: must be at least 1, got 0; docs/configuration.md gives "
        "each key's range",
        "1 error: nothing was run or sent.",
    ]
