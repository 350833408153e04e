"""The PDF as facts: text read back with pypdf, contents page numbers, bookmarks, no blank
page, no WeasyPrint warning, golden HTML, and the safety of what comes from YAML."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import page as page_validation
import pypdf
import pytest
from babel.numbers import format_currency, format_decimal, format_percent

from reporter.compute.database import compute
from reporter.config import load_config
from reporter.errors import RunError
from reporter.periods import Period
from reporter.render.html import render_html, stylesheet_dir, template_dirs
from reporter.render.pdf import write_pdf
from reporter.run.stages import render_pdf
from tests.conftest import DEMO, ROOT, with_locale, write_csv

NOW = dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC)
GOLDEN = Path(__file__).parent / "golden"


def squash(text: str) -> str:
    """Text without any kind of space, so that wrapped cells and narrow spaces compare; nor the
    word joiner that holds a sign to its currency symbol (the PDF draws nothing for it)."""
    return re.sub(r"[\s\u2060]+", "", text.replace("\u202f", " ").replace("\xa0", " "))


def expected_value(value, fmt, locale):
    """The SPEC/README formatting rules, written out with Babel directly."""
    if value is None:
        return "—"
    minus = "−"
    if fmt == "percent":
        pattern = "#,##0.0 %" if locale.startswith("fr") else "#,##0.0%"
        return format_percent(value, pattern, locale=locale).replace("-", minus)
    if fmt == "currency":
        decimals = ".00" if 0 < abs(value) < 1000 else ""  # 0 € has no cents
        pattern = f"#,##0{decimals} ¤" if locale.startswith("fr") else f"¤#,##0{decimals}"
        return format_currency(value, "EUR", pattern, locale=locale, currency_digits=False).replace(
            "-", minus
        )
    if fmt == "integer":
        return format_decimal(value, "#,##0", locale=locale).replace("-", minus)
    if fmt == "ratio":
        return format_decimal(value, "#,##0.00", locale=locale).replace("-", minus)
    if fmt == "days":
        unit = "j" if locale.startswith("fr") else "days"
        return format_decimal(value, "#,##0.0", locale=locale).replace("-", minus) + " " + unit
    digits = ".00" if abs(value) < 10 else ".0" if abs(value) < 100 else ""
    return format_decimal(value, f"#,##0{digits}", locale=locale).replace("-", minus)


@pytest.mark.parametrize("locale", ["fr_FR", "en_US"])
def test_every_kpi_label_and_value_is_in_the_pdf(demo_report, demo_pdfs, locale):
    from reporter.config.labels import Labels

    config, results = demo_report
    reader = pypdf.PdfReader(io.BytesIO(demo_pdfs[locale]))
    text = squash("".join(page.extract_text() for page in reader.pages))
    for name, kpi in results.kpis.items():
        label = Labels(config, locale).kpi(name)  # the demo's labels are in French and English
        assert squash(label) in text, (locale, name, label)
        assert squash(expected_value(kpi.value, kpi.format, locale)) in text, (locale, name, kpi.value)
    words = {
        "fr_FR": ["Synthèse", "octobre 2026", "Plan d'action", "En bonne voie"],
        "en_US": ["Executive summary", "October 2026", "Action plan", "On track"],
    }[locale]
    for word in words:
        assert squash(word) in text, word
    period_words = {"fr_FR": "octobre 2026", "en_US": "October 2026"}[locale]
    assert squash(period_words) in squash(reader.pages[0].extract_text())


@pytest.mark.parametrize(
    ("locale", "month", "quarter"),
    [
        ("fr_FR", "octobre 2026", "T4 2026"),
        ("en_US", "October 2026", "Q4 2026"),
        ("es_ES", "octubre de 2026", "T4 2026"),  # not "octubre 2026": Spanish joins them with "de"
        ("pt_BR", "outubro de 2026", "T4 de 2026"),
        ("de_DE", "Oktober 2026", "Q4 2026"),
        ("it_IT", "ottobre 2026", "T4 2026"),
    ],
)
def test_a_period_is_named_the_way_its_language_writes_it(locale, month, quarter):
    from reporter.render.context import Formatter

    fmt = Formatter(locale, "EUR")
    assert fmt.period("2026-10", "2026-10-01", "month") == month
    assert fmt.period("2026-Q4", "2026-10-01", "quarter") == quarter


@pytest.mark.parametrize("locale", ["fr_FR", "en_US"])
def test_page_one_carries_the_title_the_tally_and_the_takeaways(demo_report, demo_pdfs, locale):
    """An executive reads page 1: the title band, the tally of objectives by status and the
    takeaways are on it; the contents follow the summary (page 2)."""
    from copy import deepcopy

    from reporter.config.labels import Labels
    from reporter.render.context import Formatter, translations
    from reporter.render.insights import takeaways
    from reporter.run.stages import describe

    config, results = demo_report
    reader = pypdf.PdfReader(io.BytesIO(demo_pdfs[locale]))
    first = squash(reader.pages[0].extract_text())
    words = translations(locale[:2]).gettext
    counts = {
        s: sum(1 for o in results.objectives if o.status == s) for s in ("on_track", "at_risk", "off_track")
    }
    assert counts == {"on_track": 4, "at_risk": 1, "off_track": 2}
    for status, n in counts.items():
        word = words(status)
        assert squash(f"{n} {word[:1].lower()}{word[1:]}") in first, (status, n)
    assert squash(words("Key takeaways")) in first
    localised = with_locale(config, locale)
    formatter, names = Formatter.for_report(localised.report), Labels(localised, locale)
    said = takeaways(localised, describe(localised, deepcopy(results)), formatter, names)
    assert len(said) == 5
    for text in said:
        assert squash(text) in first, text
    assert squash(words("Contents")) in squash(reader.pages[1].extract_text())
    assert squash(words("Contents")) not in first


@pytest.mark.parametrize("locale", ["fr_FR", "en_US"])
def test_page_ones_biggest_moves_leave_out_a_provisional_kpi(demo_report, demo_pdfs, locale):
    """The quote close rate is provisional (settles_after: 2): page 1's "biggest moves" tables,
    which come after the takeaways, do not list it (its fall on last year is open quotes)."""
    from reporter.config.labels import Labels
    from reporter.render.context import translations

    config, results = demo_report
    assert results.kpis["close_rate"].provisional
    first = squash(pypdf.PdfReader(io.BytesIO(demo_pdfs[locale])).pages[0].extract_text())
    heading = squash(translations(locale[:2]).gettext("Biggest moves vs previous period"))
    assert heading in first
    tables = first[first.index(heading) :]
    assert squash(Labels(config, locale).kpi("close_rate")) not in tables
    shown = results.moves["vs_prior_year"].unfavourable
    assert shown
    for move in shown:  # the tables are the ones read: they list the other falls
        assert squash(Labels(config, locale).kpi(move.kpi)) in tables, move.kpi


def test_a_cumulative_objective_shows_its_year_to_date_beside_its_target(demo_report, demo_pdfs):
    """New customers: the month's 33 is not compared with the year's target (260); the summary's
    row shows the year to date, the scorecard the month and the year to date, both "cumul"."""
    config, results = demo_report
    [obj] = [o for o in results.objectives if o.id == "new-customers-ytd"]
    kpi = results.kpis["new_customers"]
    assert (kpi.value, kpi.ytd, obj.value, obj.target) == (33, 268, 268, 260)
    html = re.sub(r"\s+", " ", render_html(config, results))
    summary = html[html.index('id="summary"') : html.index("</section>", html.index('id="summary"'))]
    assert (
        '<td class="num">268<div class="sub">cumul</div></td> <td class="num">260<div class="sub">cumul</div>'
        in summary
    )
    scorecard = html[html.index("<td>Nouveaux clients</td>") :]
    assert scorecard.startswith(
        '<td>Nouveaux clients</td> <td class="num strong">33<div class="sub">cumul 268</div></td> '
        '<td class="num">260<div class="sub">cumul</div></td>'
    )
    from reporter.render.digest import build_digest

    digest = build_digest(config, results)
    assert re.search(r"\n   268 \(cumul\) / cible 260 · 103\s%", digest.text)  # the year to date, said so
    assert re.search(r'<span class="big"[^>]*>268</span> <span class="vs"[^>]*>cumul</span>', digest.html)
    assert squash("33cumul268") in squash(
        "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(demo_pdfs["fr_FR"])).pages)
    )


def check_contents(reader: pypdf.PdfReader) -> None:
    """The contents page's numbers are the bookmarks' pages, where each title is printed."""
    toc = reader.pages[1].extract_text()
    # each entry, then its page number (the leader between them is drawn, not written)
    entries = [
        (title, number)
        for title, number in re.findall(r"^(.+?) (\d+)$", toc, flags=re.M)
        # not the running header (its period) nor the footer (page X / Y)
        if not re.fullmatch(r".* \d{4}", f"{title} {number}") and not title.endswith(" /")
    ]
    assert len(entries) >= 6
    bookmarks = {
        o.title: reader.get_destination_page_number(o) + 1 for o in reader.outline if not isinstance(o, list)
    }
    for title, number in entries:
        title = title.strip()
        assert bookmarks[title] == int(number), (title, number, bookmarks)
        page_text = reader.pages[int(number) - 1].extract_text()
        assert squash(title) in squash(page_text)
    assert len(bookmarks) == len(entries)
    nested = [o for o in reader.outline if isinstance(o, list)]
    assert nested, "objectives and analyses have second-level bookmarks"


def check_footers(reader: pypdf.PdfReader) -> None:
    """Every page but the cover says "page X / Y", with the right X and Y."""
    total = len(reader.pages)
    for number, page in enumerate(reader.pages, start=1):
        if number > 1:
            assert re.search(rf"\b{number} / {total}\b", page.extract_text()), number


@pytest.mark.parametrize("locale", ["fr_FR", "en_US"])
def test_contents_page_numbers_match_bookmarks_and_pages(demo_pdfs, locale):
    check_contents(pypdf.PdfReader(io.BytesIO(demo_pdfs[locale])))


@pytest.mark.parametrize("locale", ["fr_FR", "en_US"])
def test_no_blank_page_and_footer_counts_pages(demo_pdfs, locale):
    reader = pypdf.PdfReader(io.BytesIO(demo_pdfs[locale]))
    total = len(reader.pages)
    assert 8 <= total <= 30
    for number, page in enumerate(reader.pages, start=1):
        assert len(page.extract_text().strip()) > 80, f"page {number} is (nearly) blank"
    check_footers(reader)


def test_getting_started_gives_the_demo_reports_page_count(demo_pdfs):
    """docs/index.md tells a newcomer what to open and how long it is; it said 15 pages of a
    14-page report. The French PDF is the one `make demo` writes."""
    total = len(pypdf.PdfReader(io.BytesIO(demo_pdfs["fr_FR"])).pages)
    text = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert f"marketing-monthly_2026-10.pdf` (the report, {total} pages)" in text


def test_weasyprint_logs_nothing_on_the_demo(demo_report):
    config, results = demo_report
    for locale in ("fr_FR", "en_US"):
        cfg = with_locale(config, locale)
        write_pdf(render_html(cfg, results), stylesheet_dir(cfg), template_dirs(cfg), strict=True)


def test_golden_html(demo_report, request):
    config, results = demo_report
    html = render_html(config, results).replace(str(ROOT), "<ROOT>")
    golden = GOLDEN / "demo_fr.html"
    if request.config.getoption("--update-golden"):
        golden.write_text(html, encoding="utf-8")
    assert golden.is_file(), "run pytest --update-golden once to create tests/golden/demo_fr.html"
    assert html == golden.read_text(encoding="utf-8"), "HTML changed: review, then pytest --update-golden"


def test_rendering_twice_gives_the_same_bytes(demo_report, demo_pdfs):
    config, results = demo_report
    assert render_pdf(with_locale(config, "fr_FR"), results) == demo_pdfs["fr_FR"]


HOSTILE = """
report:
  {{id: hostile, title: '"}} @page {{ margin: 0 }} <b>Title</b>', timezone: Europe/Paris,
   company: "<script>x</script>"}}
sources:
  s: {{type: csv, path: s.csv, date_column: date}}
metrics:
  n: {{source: s, agg: sum, column: n}}
kpis:
  n: {{label: '<img src="file:///etc/passwd">', formula: n}}
  m: {{label: '<link rel=attachment href="file:///etc/passwd">', formula: n * 2, section: "{section}"}}
objectives:
  - {{id: o, title: "{{{{ 7 * 7 }}}} <i>x</i>", kpi: n, target: {{value: 1}}, owner: O, due: 2026-12-31,
     actions: [{{when: always, do: "Call before {{{{ period.label }}}} ends <b>now</b>"}}]}}
"""


def test_yaml_text_is_printed_as_text_and_fetches_nothing(tmp_path):
    write_csv(tmp_path / "s.csv", ["date", "n"], [["2026-10-01", 5], ["2026-10-31", 7]])
    (tmp_path / "r.yaml").write_text(HOSTILE.format(section="<style>body{display:none}</style>"))
    config = load_config(tmp_path / "r.yaml", env={})
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    html = render_html(config, results)
    assert "&lt;img src=&#34;file:///etc/passwd&#34;&gt;" in html
    assert '<img src="file:///etc/passwd">' not in html
    assert "<link rel=attachment" not in html
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(config, results)))
    text = "".join(p.extract_text() for p in reader.pages)
    assert '<img src="file:///etc/passwd">' in text
    assert "<link rel=attachment" in text
    assert "<b>Title</b>" in text
    # the title in the running header is a CSS string: it cannot end the string or the style
    assert '"} @page { margin: 0 } <b>Title</b>' in reader.pages[1].extract_text()
    assert sorted(reader.attachments) == ["provenance.json", "r.yaml", "results.json"]  # evidence only
    assert "root:x:0:0" not in text
    # A title is text, never a template; an action is a sandboxed template, still escaped.
    assert "{{ 7 * 7 }}" in text
    assert "Call before 2026-10 ends <b>now</b>" in text


def test_action_template_cannot_reach_python_internals(tmp_path):
    write_csv(tmp_path / "s.csv", ["date", "n"], [["2026-10-01", 5], ["2026-10-31", 7]])
    text = HOSTILE.format(section="S").replace(
        "Call before {{ period.label }} ends <b>now</b>", "{{ ''.__class__.__mro__ }}"
    )
    (tmp_path / "r.yaml").write_text(text)
    config = load_config(tmp_path / "r.yaml", env={})
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    with pytest.raises(RunError, match=r"objective 'o' action 1: cannot render .* is unsafe"):
        render_html(config, results)


def test_url_fetcher_refuses_files_outside_the_templates_and_the_network(tmp_path):
    folder = template_dirs(load_config(DEMO, env={}))
    for src in ("file:///etc/passwd", "http://127.0.0.1:9/x.png", (tmp_path / "x.png").as_uri()):
        with pytest.raises(RunError, match="PDF rendering stopped: the report may not"):
            write_pdf(f'<img src="{src}">', folder[0], folder)


def test_user_template_replaces_one_block(tmp_path, demo_report):
    config, results = demo_report
    custom = tmp_path / "mytemplate"
    custom.mkdir()
    (custom / "report.html").write_text(
        '{% extends "default:report.html" %}'
        '{% block cover %}<section class="cover"><h1 class="title">Custom cover</h1></section>'
        "{% endblock %}"
    )
    cfg = config.model_copy(update={"report": config.report.model_copy(update={"template": str(custom)})})
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(cfg, results)))
    assert "Custom cover" in reader.pages[0].extract_text()
    assert "Synthèse" in "".join(p.extract_text() for p in reader.pages[1:4])


def test_kpi_without_data_gets_a_no_data_mark(tmp_path):
    write_csv(tmp_path / "s.csv", ["date", "n"], [["2027-10-01", 5]])
    (tmp_path / "r.yaml").write_text(
        "report: {id: empty, title: Empty, timezone: Europe/Paris, locale: en_US}\n"
        "sources: {s: {type: csv, path: s.csv, date_column: date}}\n"
        "metrics: {n: {source: s, agg: sum, column: n}}\n"
        "kpis: {n: {label: Nothing here, formula: n}}\n"
        "objectives: [{id: o, title: Obj, kpi: n, target: {value: 1}, owner: O, due: 2026-12-31}]\n"
    )
    config = load_config(tmp_path / "r.yaml", env={})
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    html = render_html(config, results)
    assert html.count(">no data</text>") >= 2  # the sparkline and the objective's trend chart
    assert "polyline" not in html


def test_stress_report_every_row_once_and_headers_repeat(tmp_path):
    """The stress report with all 5,000 rows of its breakdown printed (pdf_rows: 5000)."""
    from tests.fixtures.stress import KEYS, stress_config

    config = load_config(stress_config(tmp_path, pdf_rows=KEYS), env={})
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    pdf = render_pdf(config, results)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    pages = [page.extract_text() for page in reader.pages]
    assert len(pages) >= 60
    counts: dict[str, int] = {}
    header_missing = []
    for number, text in enumerate(pages, start=1):
        # table rows only: the contributors sentence names keys too, each followed by its part
        keys = re.findall(r"\bK\d{4}\b(?!\s*\()", text)
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
        if keys and not re.search(r"key\s+Indicateur 1\b", text):
            header_missing.append(number)
    assert counts == {f"K{k:04d}": 1 for k in range(KEYS)}
    assert header_missing == []
    # The 100 KPIs (one sparkline each) are all there, each section's table header repeated.
    text = "".join(pages)
    assert all(f"Indicateur {i}" in text for i in range(100))
    check_contents(reader)
    check_footers(reader)
    assert all(text.strip() for text in pages)
    report = page_validation.validate_pdf_bytes(pdf, profile="3a")
    assert report.is_compliant, [(f.rule_id, f.message) for f in report.failures]


def test_the_cycle_collector_is_paused_while_weasyprint_renders(tmp_path):
    """WeasyPrint makes millions of objects; the collector walking them cost a third of a long
    render. During the render it never runs; what the render left is collected once, after."""
    import gc

    html = "<table>" + "<tr><td>cell</td><td>1</td></tr>" * 300 + "</table>"
    collections: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.collect()
    gc.callbacks.append(count)
    try:
        write_pdf(html, tmp_path, [tmp_path])
    finally:
        gc.callbacks.remove(count)
    assert collections == [2]
    assert gc.isenabled()


def test_an_image_without_alternative_text_stops_the_accessible_render(tmp_path, demo_report):
    config, results = demo_report
    custom = tmp_path / "withlogo"
    custom.mkdir()
    (custom / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    logo = (custom / "logo.svg").as_uri()
    (custom / "report.html").write_text(
        '{% extends "default:report.html" %}{% block cover %}<section class="cover">'
        f'<h1 class="title">T</h1><img src="{logo}"></section>{{% endblock %}}'
    )
    cfg = config.model_copy(update={"report": config.report.model_copy(update={"template": str(custom)})})
    with pytest.raises(RunError) as caught:
        render_pdf(cfg, results)
    said = f'PDF rendering reported problems: Image "{logo}" has no required alt description'
    assert str(caught.value) == said


def _open_quotes_by_month() -> dict[str, float]:
    """The demo's open pipeline (quote_amount of the leads still at stage 'quote') by the month
    the lead was created, read from the CSV with the csv module."""
    import csv

    out: dict[str, float] = {}
    with (DEMO.parent / "data" / "crm_leads.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["stage"] == "quote":
                out[row["created_at"][:7]] = out.get(row["created_at"][:7], 0.0) + float(row["quote_amount"])
    return out


@pytest.mark.parametrize(
    ("locale", "pipeline", "close_rate", "word"),
    [
        ("fr_FR", "Devis en cours (pipe)", "Taux de transformation\ndes devis", "provisoire"),
        ("en_US", "Open quotes (pipeline)", "Quote close rate", "provisional"),
    ],
)
def test_a_provisional_change_is_shown_without_a_verdict(demo_pdfs, locale, pipeline, close_rate, word):
    """The open quotes of October's leads against September's: +631.5 %, only because older
    months' quotes have had time to close (settles_after). The PDF's table shows the change with
    its arrow and "provisional" under it, never ✓ (better) or ✗ (worse); so does the quote close
    rate, the other provisional KPI. A final KPI keeps its verdict."""
    by_month = _open_quotes_by_month()
    rise = (by_month["2026-10"] - by_month["2026-09"]) / by_month["2026-09"]
    shown = format_percent(rise, "#,##0.0%", locale=locale).replace("-", "−")
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(demo_pdfs[locale])).pages)
    for label in (pipeline, close_rate):
        at = text.index(label)
        row = text[at : text.index("\n", text.index(word, at + len(label) + 20))]
        assert "✓" not in row, row
        assert "✗" not in row, row
        assert row.count(word) >= 2, row  # under the value, and under the change
    at = text.index(pipeline)
    row = text[at : text.index("\n", text.index(word, at + len(pipeline) + 20))]
    assert f"▲+{shown}{word}" in re.sub(r"\s", "", row), row  # the change, then the word
    revenue = "Chiffre d'affaires" if locale == "fr_FR" else "Revenue"
    assert "✓" in text[text.index(revenue, text.index(pipeline)) :].split("\n")[0]


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("fr_FR", "▲\xa0+631,5\xa0% (provisoire)"), ("en_US", "▲\xa0+631.5% (provisional)")],
)
def test_the_plain_text_of_a_provisional_change_says_so_and_judges_nothing(locale, expected):
    """The plain-text change (the text digest's filter) of a provisional KPI: its arrow and
    "(provisional)", no ✓; the same change of a final KPI is judged."""
    from reporter.render.context import Formatter

    kpi = {"change_vs_previous": 6.315, "format": "currency", "direction": "up", "provisional": True}
    fmt = Formatter(locale, "EUR")
    assert fmt.delta_text(kpi, "previous") == expected
    assert fmt.delta_text(kpi | {"provisional": False}, "previous") == expected.split(" (")[0] + "\xa0✓"
    assert 'class="delta provisional"' in fmt.delta(kpi, "previous")
