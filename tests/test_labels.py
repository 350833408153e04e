# ruff: noqa: E501  (exact messages read best one per line)
"""Labels for everything a reader sees: a label is text or one text per language; the report
shows labels, never the YAML's keys, the data's column names, a breakdown's raw values that have
a label, an internal code or a path of the server. The demo's French and English PDF (text read
back with pypdf), digest HTML and text part are read for all of these."""

from __future__ import annotations

import csv
import io
import re
from copy import deepcopy

import pytest
from pypdf import PdfReader

from reporter.config.labels import Labels, pick
from reporter.render.context import Formatter, translations
from reporter.render.digest import build_digest
from reporter.render.html import build_context, render_html
from reporter.run.stages import describe
from tests.conftest import DEMO, ROOT, with_locale
from tests.test_locales import CODES, entries, read_catalogue, visible
from tests.test_validate import validate, write

LOCALES = ("fr_FR", "en_US")
LETTER = r"A-Za-zÀ-ÖØ-öø-ÿ"


# -- choosing a label ------------------------------------------------------------------------
def test_a_label_is_text_or_the_entry_of_the_language_else_the_first():
    assert pick("Prospects", "en") == "Prospects"
    assert pick({"fr": "Prospects", "en": "Leads"}, "en") == "Leads"
    assert pick({"fr": "Prospects", "en": "Leads"}, "fr") == "Prospects"
    assert pick({"it": "Contatti", "fr": "Prospects"}, "de") == "Contatti"  # no German: the first
    assert pick(None, "fr") is None


def test_labels_fall_back_to_what_the_yaml_names(demo_report):
    config, _ = demo_report
    fr, en, de = Labels(config), Labels(config, "en_US"), Labels(config, "de_DE")
    # no German entry: the English one (French comes first in the YAML)
    assert (fr.kpi("leads"), en.kpi("leads"), de.kpi("leads")) == (
        "Prospects générés",
        "Leads generated",
        "Leads generated",
    )
    bd = next(b for b in config.breakdowns if b.by == "canal")
    assert en.breakdown(bd) == "Channel"
    assert en.breakdown_value(bd, "Référencement naturel") == "Organic search"
    assert fr.breakdown_value(bd, "Référencement naturel") == "Référencement naturel"
    assert en.breakdown_value(bd, "Pigeon voyageur") == "Pigeon voyageur"  # no label: as it is
    assert en.breakdown_value("leads_by_origin", "Salon") == "Trade fair"  # by results.json's id
    assert en.portfolio() == "Campaign"
    assert en.portfolio_value("Webinaires") == "Webinars"
    # a metric without a label of its own takes the label of the KPI of the same name
    assert config.metrics["sessions"].label is not None
    assert en.metric("sessions") == "Visits"
    assert en.metric("budget_unknown_name") == "budget unknown name"
    assert en.source("web") == "Website analytics"
    assert en.source_file("web") == "data/web_traffic.csv"


def test_a_file_outside_the_yaml_folder_is_shown_by_its_name(make_config, tmp_path, monkeypatch):
    from tests.conftest import write_csv

    monkeypatch.setenv("REPORTER_ALLOW_DIRS", str(tmp_path / "elsewhere"))  # the operator allows it

    data = write_csv(tmp_path / "elsewhere" / "d.csv", ["date", "n"], [["2026-10-01", 1]])
    (tmp_path / "sub").mkdir()
    config = make_config(
        f"""
        report: {{id: r, title: T}}
        sources: {{s: {{type: csv, path: {data}, date_column: date}}}}
        metrics: {{n: {{source: s, agg: sum, column: n}}}}
        kpis: {{n: {{formula: n}}}}
        """,
        name="sub/report.yaml",
    )
    assert Labels(config).source_file("s") == "d.csv"


# -- validation ------------------------------------------------------------------------------
BAD_LABELS = {
    "a language name as key": (
        {14: "  win_rate: {formula: won / leads, format: percent, label: {French: Taux, en: Rate}}"},
        [
            "F:14:61: kpis.win_rate.label.French: 'French' is not a language code; write the language code 'fr' (keys are language codes such as fr, en, de)"
        ],
    ),
    "a locale as key": (
        {20: "  - {kpi: revenue, by: seller, label: {fr_FR: Vendeur}}"},
        [
            "F:20:40: breakdowns[0].label.fr_FR: 'fr_FR' is not a language code; write the language code 'fr' (keys are language codes such as fr, en, de)"
        ],
    ),
    "an unknown code": (
        {20: "  - {kpi: revenue, by: seller, values: {Alice: {xx: Alice B.}}}"},
        [
            "F:20:49: breakdowns[0].values.Alice.xx: 'xx' is not a language code; keys are language codes such as fr, en, de: {fr: Prospects, en: Leads}"
        ],
    ),
    "an empty map": (
        {8: "  crm: {type: csv, path: crm.csv, date_column: created, label: {}}"},
        [
            "F:8:64: sources.crm.label: an empty label map; a label is text, or a map from language code to text: {fr: Prospects, en: Leads}"
        ],
    ),
    "an empty text": (
        {
            18: "  - {id: grow, title: {fr: '', en: Grow}, kpi: revenue, target: {value: 100}, owner: Boss, due: 2026-12-31}"
        },
        [
            "F:18:24: objectives[0].title.fr: the 'fr' label is empty; write its text, or leave that language out"
        ],
    ),
    "a list": (
        {10: "  leads: {source: crm, agg: count, label: [Leads, Prospects]}"},
        [
            "F:10:43: metrics.leads.label: expected text or a map of language: text, got a list; a label is text, or a map from language code to text: {fr: Prospects, en: Leads}"
        ],
    ),
    "a number in a map": (
        {14: "  win_rate: {formula: won / leads, format: percent, section: {fr: 12}}"},
        [
            "F:14:63: kpis.win_rate.section.fr: the 'fr' label must be text, got 12; write it in quotes: fr: \"12\""
        ],
    ),
    # YAML reads NO, off, yes as booleans and 2026-10-01 as a date: the text to quote, as for any text
    "a YAML boolean as a title": (
        {3: "  title: NO"},
        [
            'F:3:10: report.title: YAML read the unquoted NO as the boolean false; write it in quotes: title: "NO"'
        ],
    ),
    "a YAML boolean as an owner": (
        {18: "  - {id: grow, title: Grow, kpi: revenue, target: {value: 100}, owner: off, due: 2026-12-31}"},
        [
            'F:18:72: objectives[0].owner: YAML read the unquoted off as the boolean false; write it in quotes: owner: "off"'
        ],
    ),
    "a YAML boolean as an action": (
        {
            18: "  - {id: grow, title: Grow, kpi: revenue, target: {value: 100}, owner: Boss, due: 2026-12-31, actions: [{when: always, do: yes}]}"
        },
        [
            'F:18:124: objectives[0].actions[0].do: YAML read the unquoted yes as the boolean true; write it in quotes: do: "yes"'
        ],
    ),
    "a YAML boolean as a section": (
        {14: "  win_rate: {formula: won / leads, format: percent, section: Off}"},
        [
            'F:14:62: kpis.win_rate.section: YAML read the unquoted Off as the boolean false; write it in quotes: section: "Off"'
        ],
    ),
    "a YAML boolean as a value's label": (
        {20: "  - {kpi: revenue, by: seller, values: {Alice: NO}}"},
        [
            'F:20:48: breakdowns[0].values.Alice: YAML read the unquoted NO as the boolean false; write it in quotes: Alice: "NO"'
        ],
    ),
    "a date as a value's label": (
        {20: "  - {kpi: revenue, by: seller, values: {Alice: 2026-10-01}}"},
        [
            'F:20:48: breakdowns[0].values.Alice: expected text or a map of language: text, got the date 2026-10-01; write it in quotes: Alice: "2026-10-01"'
        ],
    ),
    "a number as a title": (
        {3: "  title: 2026"},
        [
            'F:3:10: report.title: expected text or a map of language: text, got the number 2026; write it in quotes: title: "2026"'
        ],
    ),
    "an empty title": (
        {3: "  title:"},
        [
            "F:3:9: report.title: expected text or a map of language: text, got nothing (an empty value); a label is text, or a map from language code to text: {fr: Prospects, en: Leads}"
        ],
    ),
    "a YAML boolean in a map": (
        {3: "  title: {fr: NO, en: Demo}"},
        [
            'F:3:11: report.title.fr: YAML read the unquoted NO as the boolean false; write it in quotes: fr: "NO"'
        ],
    ),
    "a date in a map": (
        {14: "  win_rate: {formula: won / leads, format: percent, section: {fr: 2026-10-01}}"},
        [
            "F:14:63: kpis.win_rate.section.fr: the 'fr' label must be text, got the date 2026-10-01; write it in quotes: fr: \"2026-10-01\""
        ],
    ),
}


@pytest.mark.parametrize("name", list(BAD_LABELS))
def test_a_bad_label_is_an_error_at_its_key(tmp_path, capsys, name):
    changes, expected = BAD_LABELS[name]
    code, lines = validate(write(tmp_path, changes), capsys)
    assert code == 2
    assert lines[:-1] == expected
    assert lines[-1] == "1 error: nothing was run or sent."


def test_labels_in_several_languages_validate(tmp_path, capsys):
    path = write(
        tmp_path,
        {
            14: "  win_rate: {formula: won / leads, format: percent, label: {fr: Taux de succès, en: Win rate}, section: {fr: Ventes, en: Sales}}",
            20: "  - {kpi: revenue, by: seller, label: {fr: Vendeur, en: Seller}, values: {Alice: {de: Alice B.}}}",
        },
    )
    assert validate(path, capsys)[0] == 0


# -- the demo, read back -----------------------------------------------------------------------
def demo_columns(config) -> set[str]:
    """Every column name of the demo's source files, read from their header lines."""
    columns: set[str] = set()
    for name, source in config.sources.items():
        options = source.csv
        text = config.resolve(source.path).read_text(encoding=options.encoding if options else "utf-8")
        header = next(csv.reader(io.StringIO(text), delimiter=options.delimiter if options else ","))
        columns |= set(header)
        assert header, name
    return columns


@pytest.fixture(scope="module")
def outputs(demo_report, demo_pdfs) -> dict[str, dict[str, str]]:
    """Per locale: the PDF's text (pypdf), the digest's visible HTML text and its text part."""
    config, results = demo_report
    out: dict[str, dict[str, str]] = {}
    for locale in LOCALES:
        localised = with_locale(config, locale)
        described = describe(localised, deepcopy(results))
        digest = build_digest(localised, described)
        pdf = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(demo_pdfs[locale])).pages)
        out[locale] = {
            "PDF": pdf,
            "report HTML": "\n".join(visible(render_html(localised, described))),
            "digest HTML": "\n".join(visible(digest.html)),
            "digest text": digest.text,
        }
    return out


def allowed_words(config, locale: str) -> set[str]:
    """Words a reader may see in ``locale`` although they spell a name: those the report's
    author wrote for that language (labels, titles, descriptions, owners, actions) and those of
    the language's catalogue ("Date", "Source", "Stage")."""
    labels = Labels(config, locale)
    texts = [labels.title(), labels.company()]
    texts += [labels.kpi(n) for n in config.kpis] + [labels.section(n) for n in config.kpis]
    texts += [labels.metric(n) for n in config.metrics] + [labels.source(n) for n in config.sources]
    texts += [labels.text(k.description) or "" for k in config.kpis.values()]
    texts += [labels.text(k.owner) or "" for k in config.kpis.values()]
    for obj in config.objectives:
        texts += [labels.objective(obj.id), labels.text(obj.owner) or ""]
        texts += [f"{labels.text(a.do)} {labels.text(a.owner) or ''}" for a in obj.actions]
    for bd in config.breakdowns:
        texts += [labels.breakdown(bd)] + [labels.breakdown_value(bd, v) for v in bd.values]
    texts += [labels.funnel(i) for i in range(len(config.funnel))]
    texts += [labels.portfolio()] + [labels.portfolio_value(v) for v in config.portfolio.values]
    language = labels.language
    texts += [
        m.string if isinstance(m.string, str) else " ".join(m.string)
        for m in entries(read_catalogue(language)).values()
    ]
    return {w for t in texts for w in re.findall(rf"[{LETTER}]+", t.lower())}


def whole_word(word: str, text: str, *, case: bool = False) -> bool:
    flags = 0 if case else re.IGNORECASE
    return re.search(rf"(?<![{LETTER}]){re.escape(word)}(?![{LETTER}])", text, flags) is not None


@pytest.mark.parametrize("locale", LOCALES)
def test_the_demo_shows_no_raw_name_value_code_or_path(demo_report, outputs, locale):
    config, _ = demo_report
    labels = Labels(config, locale)
    columns = demo_columns(config)
    assert {"salesperson", "origin", "canal", "campaign", "nouveaux_visiteurs", "quote_amount"} <= columns
    names = columns | set(config.metrics) | set(config.kpis) | set(config.sources)
    # a breakdown's (or the portfolio's) raw value whose label in this language reads otherwise
    raw_values = {
        raw
        for values in [bd.values for bd in config.breakdowns] + [config.portfolio.values]
        for raw, label in values.items()
        if pick(label, labels.language) != raw
    }
    assert raw_values >= (
        {"Newsletter"} if locale == "fr_FR" else {"Référencement naturel", "Salon", "Publicité"}
    )
    allowed = allowed_words(config, locale)
    found = []
    for where, text in outputs[locale].items():
        assert len(text) > 2000, where  # the text was read
        # the data's files are named on purpose (relative to the YAML): not a raw name
        text = " ".join(text.split())
        if where in ("PDF", "report HTML"):
            files = [labels.source_file(name) for name in config.sources]
            assert [f for f in files if f not in text] == [], where
            for file in files:
                text = text.replace(file, " ")
        found += [f"{where}: code {code!r}" for code in CODES if code in text]
        for name in sorted(names):
            if "_" in name:
                found += [f"{where}: name {name!r}"] if name in text else []
            elif name.lower() not in allowed and whole_word(name, text):
                found += [f"{where}: name {name!r}"]
        found += [
            f"{where}: raw value {raw!r}" for raw in sorted(raw_values) if whole_word(raw, text, case=True)
        ]
        found += [f"{where}: path {p!r}" for p in re.findall(r"(?<![\w:/.])/[\w.-]+/[\w./-]+", text)]
        found += [
            f"{where}: the server's folder" for folder in (str(ROOT), str(DEMO.parent)) if folder in text
        ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        (
            "fr_FR",
            [
                "Taux de succès par commercial",
                "Prospects générés par origine",
                "Visites du site par canal",
                "Référencement naturel",
                "Lettre d'information",
                "Dépenses marketing ÷ Prospects",  # the appendix: metrics by their labels
                "Campagne Coût",  # the portfolio's first column
                "Période complète — Audience du site",
                "data/web_traffic.csv",
            ],
        ),
        (
            "en_US",
            [
                "Monthly marketing & sales report",  # the title: the cover and every running header
                "Win rate by salesperson",
                "Leads generated by source",
                "Website visits by channel",
                "Organic search",
                "Trade fair",
                "Marketing spend ÷ Leads",
                "Campaign Cost",
                "Complete period — Website analytics",
                "data/web_traffic.csv",
            ],
        ),
    ],
)
def test_the_demo_pdf_names_things_by_their_labels(outputs, locale, expected):
    text = " ".join(outputs[locale]["PDF"].split())
    assert [e for e in expected if e not in text] == []


def test_the_digest_names_objectives_and_moves_in_the_report_language(demo_report):
    config, results = demo_report
    english = with_locale(config, "en_US")
    context = build_context(english, deepcopy(results), Formatter("en_US", "EUR", "Europe/Paris"))
    assert [o["title"] for o in context["objectives"]][:2] == [
        "Revenue +15 % on last year",
        "26 new customers a month on average over the year (year to date)",
    ]
    assert {name for name, _ in context["sections"]} == {"Marketing", "Sales", "Finance", "Customers"}
    moves = context["r"]["moves"]["vs_previous"]
    assert all(
        m["label"] == Labels(english).kpi(m["kpi"]) for m in moves["favourable"] + moves["unfavourable"]
    )
    assert translations("en").gettext("Funnel") == "Funnel"
    assert [s["label"] for s in context["funnel"]] == ["Visits", "Leads", "MQL", "SQL", "Quotes", "Customers"]
    # owners, descriptions and actions: one text per language too
    grow = context["objectives"][0]
    assert grow["owner"] == "Sales director"
    assert [(a["do"], a["owner"]) for a in grow["actions"]] == [
        ("Share the month's three best deals at the sales meeting", "Sales director")
    ]
    assert context["kpis"]["sessions"]["description"] == "Visits (sessions) to the website, all channels."
    assert context["kpis"]["sessions"]["owner"] == "Head of digital acquisition"
    assert context["report"]["title"] == "Monthly marketing & sales report"
    french = build_context(config, deepcopy(results), Formatter("fr_FR", "EUR", "Europe/Paris"))
    assert french["objectives"][0]["actions"][0]["do"].startswith("Partager les trois plus belles affaires")


def test_a_burst_report_names_its_filter_by_labels(demo_report):
    config, results = demo_report
    english = with_locale(config, "en_US")
    copy = deepcopy(results)
    copy.filter = {"salesperson": "Alice Martin", "canal": "Publicité", "network": "X"}
    html = "\n".join(visible(render_html(english, describe(english, copy))))
    # a column of a breakdown takes its label, a value its label; the others stay as they are
    assert "Report for Salesperson = Alice Martin, Channel = Advertising, network = X" in html
    french = build_context(config, deepcopy(copy), Formatter("fr_FR", "EUR", "Europe/Paris"))
    assert french["r"]["filter"] == {"Commercial": "Alice Martin", "Canal": "Publicité", "network": "X"}


def test_each_language_of_the_title_is_checked_as_a_header(tmp_path, capsys):
    """A title given per language is a PDF and email header in each: a control character in
    one of them is an error at that very key."""
    path = write(tmp_path, {3: '  title: {fr: Rapport, en: "Report\\u0007"}'})
    code, lines = validate(path, capsys)
    assert code == 2
    assert lines[0] == (
        "F:3:28: report.title.en: contains the control character U+0007; "
        "write it on one line, with no control or separator characters"
    )


def test_labels_without_the_reports_language_fall_back_to_english_and_are_said_once(tmp_path, capsys):
    """A German report over French/English labels: each shows in English (French when it has no
    English), and validate and run say so once: how many labels, the first three keys."""
    from reporter.cli import main
    from reporter.config import load_config

    assert pick({"fr": "Prospects", "en": "Leads"}, "de") == "Leads"  # English before the first entry
    path = write(
        tmp_path,
        {
            4: "  locale: de_DE",
            14: "  win_rate: {formula: won / leads, format: percent, label: {fr: Taux de succès, en: Win rate}, section: {fr: Ventes, en: Sales}}",
            15: "  revenue: {formula: amount, format: currency, label: {fr: Chiffre d'affaires, it: Fatturato}}",
            16: "  neutral_kpi: {formula: leads, direction: neutral, label: {fr: Neutre}, owner: {de: Leitung, en: Head}}",
        },
    )
    said = (
        "F:4:11: report.locale: warning: 4 labels have no 'de' text and show in English (or their first "
        "language): kpis.win_rate.label, kpis.win_rate.section, kpis.revenue.label, …; add de: … to each"
    )
    code, lines = validate(path, capsys)
    assert code == 0
    assert [line for line in lines if "report.locale" in line] == [said]
    labels = Labels(load_config(path, env={}))
    assert [labels.kpi(k) for k in ("win_rate", "revenue", "neutral_kpi")] == [
        "Win rate",
        "Chiffre d'affaires",
        "Neutre",
    ]
    assert labels.section("win_rate") == "Sales"
    main(["run", str(path), "--no-send", "--period", "2026-10", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.replace(str(path), "F")
    assert err.count("report.locale: warning:") == 1
    assert err.splitlines()[0] == said
    # every label in German: nothing is said
    path.write_text(
        path.read_text(encoding="utf-8").replace("  locale: de_DE", "  locale: fr_FR"), encoding="utf-8"
    )
    text = path.read_text(encoding="utf-8").replace("it: Fatturato", "en: Revenue")
    path.write_text(
        text.replace("owner: {de: Leitung, en: Head}", "owner: {fr: Direction, en: Head}"), encoding="utf-8"
    )
    assert not [line for line in validate(path, capsys)[1] if "report.locale" in line]
