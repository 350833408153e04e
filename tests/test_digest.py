"""The email digest leads with the numbers: off-track objectives first, each value in large
type beside its target and attainment, the tally in the subject and in the hidden preheader,
the target as a dashed line in each sparkline, a link to `report.url`, a text part of lines of
at most 78 characters; `reporter preview` writes the digest beside the report HTML."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import email
import email.policy
import hashlib
import io
import re
from html import unescape
from html.parser import HTMLParser

import pytest
from PIL import Image

from reporter.cli import main
from reporter.render.context import Formatter
from reporter.render.digest import (
    TARGET_COLOUR,
    browser_html,
    build_digest,
    build_message,
    sparkline_png,
    tally_words,
    wrap_text,
)
from reporter.render.html import render_html
from tests.conftest import DEMO, with_locale
from tests.test_validate import validate, write

URL = "https://intranet.hexagone-conseil.fr/rapports/marketing-mensuel/2026-10"
RANK = {"off_track": 0, "at_risk": 1, "on_track": 2, "no_data": 3, "no_target": 4}
NNBSP, NBSP = "\u202f", "\xa0"


@pytest.fixture
def demo(demo_report):
    """The demo's configuration and a copy of its results: rendering writes the insights'
    sentences into the results in the first locale it renders, which must not leak into the
    session's shared results."""
    config, results = demo_report
    return config, copy.deepcopy(results)


def with_url(config, url=URL):
    return config.model_copy(update={"report": config.report.model_copy(update={"url": url})})


def objectives(results) -> list[dict]:
    return results.to_dict()["objectives"]


class _Elements(HTMLParser):
    """Each element's tag, inline style and own text, in document order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self._open: list[dict] = []

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "style": dict(attrs).get("style") or "", "text": ""}
        self.elements.append(element)
        if tag not in ("br", "img", "meta", "link"):
            self._open.append(element)

    def handle_endtag(self, tag):
        while self._open and self._open.pop()["tag"] != tag:
            pass

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data


def elements(html: str) -> list[dict]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


def expected_order(results) -> list[dict]:
    """Off track, at risk, on track…; within a status the lowest attainment first."""
    return sorted(
        objectives(results),
        key=lambda o: (RANK[o["status"]], o["attainment"] is None, o["attainment"] or 0.0),
    )


def test_off_track_objectives_come_first_in_html_and_text(demo):
    config, results = demo
    yaml_order = [o["status"] for o in objectives(results)]
    assert yaml_order[0] == "on_track"
    assert {"off_track", "at_risk"} <= set(yaml_order)
    from reporter.config.labels import Labels

    english = Labels(config, "en_US")  # the demo's titles are in French and English
    want = [english.objective(o["id"]) for o in expected_order(results)]
    assert [o["status"] for o in expected_order(results)][:3] == ["off_track", "off_track", "at_risk"]
    digest = build_digest(with_locale(config, "en_US"), results)
    titles = [e["text"].strip() for e in elements(digest.html) if e["attrs"].get("class") == "otitle"]
    assert titles == want
    text_titles = [
        line.split(" — ", 1)[1] for line in digest.text.splitlines() if line[:1] in "✖◆✔–○" and " — " in line
    ]
    assert text_titles == want
    # the tally too: off track first
    tally = digest.text.splitlines()[3]
    assert tally == "✖ 2 off track ◆ 1 at risk ✔ 4 on track".replace(" ◆", " · ◆").replace(" ✔", " · ✔")


def test_the_digest_reads_every_status_then_the_takeaways_then_the_cards(demo):
    """On a phone the top of the message is what gets read: the tally, then every objective's
    status on one line each (symbol, title, value), then the takeaways, and only then the
    objective cards, the moves and the actions; the text part in the same order."""
    config, results = demo
    from reporter.config.labels import Labels

    english = Labels(config, "en_US")
    ordered = expected_order(results)
    titles = [english.objective(o["id"]) for o in ordered]
    assert [o["status"] for o in ordered] == ["off_track", "off_track", "at_risk", *["on_track"] * 4]
    assert ordered[0]["value"] == pytest.approx(1810, abs=0.5)
    assert ordered[1]["value"] == pytest.approx(1.088, abs=0.0005)
    assert ordered[3]["cumulative"] is True
    digest = build_digest(with_locale(config, "en_US"), results)
    found = elements(digest.html[digest.html.index("<body") :])

    def where(cls: str) -> list[int]:
        return [i for i, e in enumerate(found) if e["attrs"].get("class") == cls]

    heads = {e["text"].strip(): i for i, e in enumerate(found) if e["attrs"].get("class") == "h"}
    glance, cards, insights = where("gline"), where("otitle"), where("insight")
    assert len(glance) == len(cards) == 7
    assert len(insights) == 3
    assert where("tally")[0] < glance[0]
    assert glance[-1] < heads["Key takeaways"] < insights[0] < insights[-1] < heads["Objectives"] < cards[0]
    assert cards[-1] < heads["Biggest moves vs previous period"] < heads["Actions due"]
    lines = [found[i]["text"].strip() for i in glance]
    assert lines[0] == f"{titles[0]} · €1,810"
    assert lines[1] == f"{titles[1]} · 108.8%"
    assert lines[3].startswith(f"{titles[3]} · ")
    assert lines[3].endswith(" cumulative")
    assert [line.rsplit(" · ", 1)[0] for line in lines] == titles
    # the status is said in words too (the symbol's accessible name), not by colour alone
    words = {"off_track": "Off track", "at_risk": "At risk", "on_track": "On track"}
    symbols = [found[i - 1] for i in glance]  # the cell before each line
    assert [e["text"] for e in symbols] == ["✖", "✖", "◆", "✔", "✔", "✔", "✔"]
    spans = [found[i] for i, e in enumerate(found) if e["attrs"].get("role") == "img"]
    assert [e["attrs"]["aria-label"] for e in spans] == [words[o["status"]] for o in ordered]
    takeaways = [found[i]["text"].strip() for i in insights]
    # the text part: the same order
    text = digest.text.splitlines()
    tally = text.index("✖ 2 off track · ◆ 1 at risk · ✔ 4 on track")
    at = [text.index(f"{'✖✖◆✔✔✔✔'[n]} {line}") for n, line in enumerate(lines[:3])]
    assert tally < at[0] < at[1] < at[2] < text.index("KEY TAKEAWAYS") < text.index("OBJECTIVES")
    moves = text.index("BIGGEST MOVES VS PREVIOUS PERIOD")
    assert text.index("OBJECTIVES") < moves < text.index("ACTIONS DUE")
    said = " ".join(text[text.index("KEY TAKEAWAYS") + 1 : text.index("OBJECTIVES")]).split("- ")
    assert [" ".join(t.split()) for t in said if t.strip()] == [" ".join(t.split()) for t in takeaways]


def test_each_value_is_in_large_type_beside_its_target_and_attainment(demo):
    config, results = demo
    digest = build_digest(config, results)
    found = elements(digest.html)
    big = [e for e in found if "font-size: 28px" in e["style"]]
    vs = [
        e
        for e in found
        if e["attrs"].get("class") == "vs" or ("font-size: 13px" in e["style"] and "cible" in e["text"])
    ]
    values = [o["value"] for o in expected_order(results)]
    assert len(big) == len(values) == 7
    # the values as printed, checked against the results: 1 810 € and 108,8 %
    assert big[0]["text"] == f"1{NNBSP}810{NBSP}€"
    assert values[0] == pytest.approx(1810, abs=0.5)
    assert big[1]["text"] == f"108,8{NBSP}%"
    assert values[1] == pytest.approx(1.088, abs=0.0005)
    assert "font-weight: bold" in big[0]["style"]
    assert "white-space: nowrap" in big[0]["style"]
    # no other text of the digest is as large
    sizes = [int(s) for e in found for s in re.findall(r"font-size: (\d+)px", e["style"])]
    assert max(sizes) == 28
    assert sizes.count(28) == 7
    assert vs[0]["text"] == f"cible 1{NNBSP}500{NBSP}€ · 79{NBSP}%"


def test_subject_carries_the_tally_and_it_can_be_switched_off(demo):
    config, results = demo
    statuses = [o["status"] for o in objectives(results)]
    off, risk = statuses.count("off_track"), statuses.count("at_risk")
    assert (off, risk) == (2, 1)
    fr = build_digest(config, results)
    assert fr.subject == "Rapport mensuel marketing & ventes — octobre 2026 · 2 en retard, 1 à surveiller"
    en = build_digest(with_locale(config, "en_US"), results)
    assert en.subject == "Monthly marketing & sales report — October 2026 · 2 off track, 1 at risk"
    de = build_digest(with_locale(config, "de_DE"), results)
    assert de.subject.endswith(" · 2 nicht im Plan, 1 gefährdet")
    assert config.delivery.email is not None
    assert config.delivery.email.subject_tally is True
    email_off = config.delivery.email.model_copy(update={"subject_tally": False})
    quiet = config.model_copy(update={"delivery": config.delivery.model_copy(update={"email": email_off})})
    assert build_digest(quiet, results).subject == "Rapport mensuel marketing & ventes — octobre 2026"


def test_the_subject_tally_names_only_what_needs_attention_else_every_count():
    words = {"off_track": "Off track", "at_risk": "At risk", "on_track": "On track", "no_data": "No data"}.get
    assert tally_words([("off_track", 2), ("at_risk", 1), ("on_track", 4)], words, short=True) == (
        "2 off track, 1 at risk"
    )
    assert tally_words([("on_track", 7)], words, short=True) == "7 on track"
    assert tally_words([("on_track", 5), ("no_data", 2)], words, short=True) == "5 on track, 2 no data"
    assert tally_words([], words, short=True) == ""
    assert tally_words([("off_track", 2), ("at_risk", 1), ("on_track", 4)], words) == (
        "2 off track, 1 at risk, 4 on track"
    )


def test_the_subject_arrives_with_its_spaces(demo, tmp_path):
    """Python's folding of a long non-ASCII subject lost the space between two encoded words
    ("2026· 2 en retard"); the message read back has the subject as built, in short lines."""
    config, results = demo
    for locale in ("fr_FR", "de_DE", "en_US"):
        digest = build_digest(with_locale(config, locale), results)
        msg = build_message(
            config,
            digest,
            recipient="ceo@acme.test",
            pdf=b"%PDF-1.7\n",
            pdf_name="r.pdf",
            msg_id="<x@reporter.invalid>",
            date=dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC),
        )
        data = msg.as_bytes()
        head = data.split(b"\r\n\r\n", 1)[0]
        assert max(len(line) for line in head.split(b"\r\n")) <= 78
        back = email.message_from_bytes(data, policy=email.policy.default)
        assert back["Subject"] == digest.subject
        if locale != "en_US":
            assert len(f"Subject: {digest.subject}") > 78  # long enough to be folded


def test_preheader_is_hidden_first_and_says_the_tally_and_the_worst_objective(demo):
    config, results = demo
    worst = min((o for o in objectives(results) if o["status"] == "off_track"), key=lambda o: o["attainment"])
    assert worst["id"] == "cac-ceiling"
    assert worst["attainment"] < min(o["attainment"] for o in objectives(results) if o["id"] != "cac-ceiling")
    digest = build_digest(config, results)
    want = (
        "2 en retard, 1 à surveiller, 4 en bonne voie · Le plus loin de sa cible\u00a0: "
        f"Coût d'acquisition client sous 1 500 € (1{NNBSP}810{NBSP}€, cible 1{NNBSP}500{NBSP}€)"
    )
    body = elements(digest.html[digest.html.index("<body") :])
    first = body[1]  # the first element inside <body>
    assert first["text"].startswith(want)
    assert first["text"][len(want) :].strip("\u034f\u200c\xa0") == ""  # only the invisible filler after it
    assert "display:none" in first["style"].replace(" ", "")
    assert "max-height:0" in first["style"].replace(" ", "")
    en = build_digest(with_locale(config, "en_US"), results)
    english = elements(en.html[en.html.index("<body") :])[1]["text"]
    assert english.startswith(
        "2 off track, 1 at risk, 4 on track · Furthest from target: Customer acquisition cost under €1,500 "
        "(€1,810, target €1,500)\u034f"
    )


def test_digest_without_objectives_at_risk_has_no_worst_objective(demo):
    from reporter.render.digest import worst_objective

    _config, results = demo
    fine = [o for o in objectives(results) if o["status"] == "on_track"]
    assert worst_objective(fine) is None
    assert worst_objective(objectives(results))["id"] == "cac-ceiling"


def target_rows(png: bytes, colour: str = TARGET_COLOUR) -> dict[int, int]:
    """Row → how many pixels of ``colour`` it has."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    width, height = image.size
    pixels = image.load()
    rows = {}
    for y in range(height):
        n = sum(1 for x in range(width) if pixels[x, y] == rgb)
        if n:
            rows[y] = n
    return rows


def test_sparkline_png_draws_the_target_as_a_dashed_line_on_its_row():
    values = [10.0, 14.0, 12.0, 18.0, 16.0, 20.0]
    # drawn at 2×: 200 × 60 pixels; the scale spans values and target (10 → 20), 4 px margins
    png = sparkline_png(values, "#b42318", width=100, height=30, targets=[15.0] * 6)
    assert Image.open(io.BytesIO(png)).size == (200, 60)
    expected_y = 4 + (60 - 8) * (1 - (15 - 10) / (20 - 10))  # 30
    rows = target_rows(png)
    assert rows, "no pixel of the target's colour"
    line = {y: n for y, n in rows.items() if n >= 60}
    assert set(line) <= {round(expected_y) - 1, round(expected_y), round(expected_y) + 1}
    assert line
    assert 0.4 * 192 <= max(line.values()) <= 0.8 * 192  # dashed: gaps along the 192 px line
    # without targets the colour is nowhere
    assert target_rows(sparkline_png(values, "#b42318", width=100, height=30)) == {}
    # a target outside the values widens the scale: it sits on the top margin's row
    high = target_rows(sparkline_png(values, "#b42318", width=100, height=30, targets=[30.0] * 6))
    assert max(high, key=high.get) in (3, 4, 5)


def test_each_objective_sparkline_in_the_digest_carries_its_target(demo):
    config, results = demo
    digest = build_digest(config, results)
    nps = next(o for o in objectives(results) if o["kpi"] == "nps")
    trend = nps["trend"]
    targets = {p["target"] for p in trend}
    assert targets == {45.0}  # a constant target: one horizontal line
    cid = f"trend-{hashlib.sha1(nps['id'].encode()).hexdigest()[:12]}@reporter"
    assert f"cid:{cid}" in digest.html
    known = [p["value"] for p in trend if p["value"] is not None] + [45.0]
    lo, hi = min(known), max(known)
    height = Image.open(io.BytesIO(digest.images[cid])).size[1]
    expected_y = 4 + (height - 8) * (1 - (45.0 - lo) / (hi - lo))
    rows = target_rows(digest.images[cid])
    widest = max(rows, key=rows.get)
    assert abs(widest - expected_y) <= 1.5, (widest, expected_y)
    assert all(target_rows(png) for png in digest.images.values())  # every objective has a target line


@pytest.mark.parametrize("locale", ["fr_FR", "en_US"])
def test_text_part_lines_are_at_most_78_characters(demo, locale):
    config, results = demo
    digest = build_digest(with_url(with_locale(config, locale)), results)
    lines = digest.text.splitlines()
    assert max(len(line) for line in lines) <= 78
    assert max(len(line) for line in lines) >= 70  # the lines are filled, not cut short
    words = "\n".join(lines).split()
    # no word lost or split: the same words as the unwrapped template gives
    owner = {"fr_FR": "Directrice administrative et financière", "en_US": "Chief financial officer"}[locale]
    assert owner in digest.text.replace("\n   ", " ")
    assert URL in lines[lines.index(URL)]
    assert len(words) > 150


def test_wrap_text_indents_continuations_under_the_text_and_keeps_long_words_whole():
    line = "- " + " ".join(["word"] * 30)
    wrapped = wrap_text(line, 40).splitlines()
    assert all(len(w) <= 40 for w in wrapped)
    assert len(wrapped) > 2
    assert wrapped[0].startswith("- word")
    assert all(w.startswith("  word") for w in wrapped[1:])
    assert " ".join(" ".join(wrapped).split()) == " ".join(line.split())
    indented = "   1 810 € / cible 1 500 € · 79 % · " + "Directrice " * 8
    assert all(w.startswith("   ") for w in wrap_text(indented, 40).splitlines())
    long = "see " + "https://x.test/" + "a" * 90
    assert wrap_text(long, 78).splitlines() == ["see", "https://x.test/" + "a" * 90]
    assert wrap_text("short\n\nlines", 78) == "short\n\nlines"


def test_the_tally_does_not_break_inside_a_phrase(demo):
    config, results = demo
    digest = build_digest(config, results)
    tally = [e for e in elements(digest.html) if "white-space: nowrap" in e["style"] and e["tag"] == "span"]
    phrases = [" ".join(e["text"].split()) for e in tally]
    for phrase in ("✖ 2 en retard", "◆ 1 à surveiller", "✔ 4 en bonne voie"):
        assert phrase in phrases
    cell = next(e for e in elements(digest.html) if e["attrs"].get("class") == "tally")
    assert "·" not in cell["text"]  # nothing that a line could end with between the phrases


def test_report_url_is_linked_in_html_and_text(demo):
    config, results = demo
    digest = build_digest(with_url(config), results)
    links = [e for e in elements(digest.html) if e["tag"] == "a"]
    assert [(a["attrs"]["href"], a["text"]) for a in links] == [(URL, "Ouvrir le rapport complet")]
    assert f"Le rapport en ligne\u00a0:\n{URL}" in digest.text
    en = build_digest(with_url(with_locale(config, "en_US"), "https://r.test/m?a=1&b=2"), results)
    assert 'href="https://r.test/m?a=1&amp;b=2"' in en.html
    assert "The report online: https://r.test/m?a=1&b=2" in en.text
    plain = build_digest(config, results)
    assert "<a " not in plain.html
    assert "http" not in plain.text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "ftp://files.acme.test/r",
            "F:7:8: report.url: 'ftp://files.acme.test/r' is not a web address; write it with http:// or "
            "https://, e.g. https://intranet.acme.fr/reports/marketing",
        ),
        (
            "intranet/reports",
            "F:7:8: report.url: 'intranet/reports' is not a web address; write it with http:// or "
            "https://, e.g. https://intranet.acme.fr/reports/marketing",
        ),
        (
            "https://bob:s3cret@intranet.acme.test/r",
            "F:7:8: report.url: the address contains a password; every recipient would read it: link to a "
            "page that asks them to sign in instead",
        ),
        (
            '"https://intranet.acme.test/my report"',
            "F:7:8: report.url: the address contains a space or a line break; write %20 for a space",
        ),
    ],
)
def test_report_url_must_be_a_web_address(tmp_path, capsys, url, message):
    path = write(tmp_path, {6: f"  timezone: Europe/Paris\n  url: {url}"})
    code, lines = validate(path, capsys)
    assert (code, lines) == (2, [message, "1 error: nothing was run or sent."])


def test_a_good_report_url_validates(tmp_path, capsys):
    path = write(tmp_path, {6: "  timezone: Europe/Paris\n  url: https://intranet.acme.test/r/2026?x=1"})
    code, _ = validate(path, capsys)
    assert code == 0


def test_preview_writes_the_digest_beside_the_report_with_a_screen_stylesheet(demo, tmp_path, capsys):
    config, results = demo
    code = main(["preview", str(DEMO), "--period", "2026-10", "--output", str(tmp_path)])
    assert code == 0
    folder = tmp_path / "marketing-monthly" / "2026-10"
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"marketing-monthly: preview written to {folder / 'marketing-monthly_2026-10.html'} "
        "(open it in a browser; nothing was sent)",
        "marketing-monthly: the email digest beside it: marketing-monthly_2026-10_digest.html, "
        "marketing-monthly_2026-10_digest.txt",
    ]
    html = (folder / "marketing-monthly_2026-10_digest.html").read_text(encoding="utf-8")
    text = (folder / "marketing-monthly_2026-10_digest.txt").read_text(encoding="utf-8")
    assert "cid:" not in html
    assert html.count('src="data:image/png;base64,') == len(objectives(results)) == 7
    digest = build_digest(config, results)

    # the same digest as the one sent, but for the time it was computed at
    def when(text):
        return re.sub(r"Généré le [^<\n]*", "Généré le …", text)

    assert when(html) == when(browser_html(digest))
    assert when(text) == when(digest.text)
    report = (folder / "marketing-monthly_2026-10.html").read_text(encoding="utf-8")
    assert "@media screen {" in report
    assert "max-width: 240mm" in report
    # the PDF's HTML has no screen rules
    assert "@media screen" not in render_html(config, results)


def test_a_report_without_objectives_has_no_tally_no_preheader_and_no_objectives_heading(
    make_config, tmp_path
):
    from reporter.compute.database import compute
    from reporter.periods import Period
    from tests.conftest import write_csv

    write_csv(tmp_path / "d.csv", ["date", "n"], [["2026-10-01", 1], ["2026-10-31", 1]])  # complete
    config = make_config(
        "report: {id: r, title: T, locale: en_US}\n"
        "sources: {s: {type: csv, path: d.csv, date_column: date}}\n"
        "metrics: {n: {source: s, agg: sum, column: n}}\nkpis: {n: {formula: n}}\n"
    )
    results = compute(config, Period.parse("2026-10", "month"), dt.datetime(2026, 11, 24, tzinfo=dt.UTC))
    digest = build_digest(config, results)
    assert digest.subject == "T — October 2026"
    assert "preheader" not in digest.html
    assert "Objectives" not in digest.html
    assert "OBJECTIVES" not in digest.text
    assert digest.images == {}
    # no change to show (September has no data): no heading over an empty list, no legend
    assert "Biggest moves" not in digest.html
    assert "BIGGEST MOVES" not in digest.text
    assert "up or down" not in digest.text


def test_the_digest_names_only_the_files_attached(demo):
    """With `attach: [xlsx]` the message carries no PDF, and the digest does not say it does."""
    config, results = demo
    email_cfg = config.delivery.email.model_copy(update={"attach": ["xlsx"]})
    only_xlsx = config.model_copy(
        update={"delivery": config.delivery.model_copy(update={"email": email_cfg})}
    )
    digest = build_digest(with_locale(only_xlsx, "en_US"), results)
    assert "The full report is attached: marketing-monthly_2026-10.xlsx.\n" in digest.text
    assert ".pdf" not in digest.text
    assert ".pdf" not in digest.html
    none = config.model_copy(
        update={
            "delivery": config.delivery.model_copy(
                update={"email": email_cfg.model_copy(update={"attach": []})}
            )
        }
    )
    assert "attached" not in build_digest(with_locale(none, "en_US"), results).text


def test_an_action_without_a_due_date_shows_no_date(make_config, tmp_path):
    """An action with no `due_in_days` is due now: the digest says who, and no dangling dash."""
    from reporter.compute.database import compute
    from reporter.periods import Period
    from tests.conftest import write_csv

    write_csv(tmp_path / "d.csv", ["date", "n"], [["2026-10-01", 1]])
    config = make_config(
        "report: {id: r, title: T, locale: en_US}\n"
        "sources: {s: {type: csv, path: d.csv, date_column: date}}\n"
        "metrics: {n: {source: s, agg: sum, column: n}}\nkpis: {n: {formula: n}}\n"
        "objectives:\n"
        "  - {id: o, title: Keep going, kpi: n, target: {value: 1}, owner: Sales, due: 2026-12-31,\n"
        "     actions: [{when: always, do: Hold the course, owner: Sales desk},\n"
        "               {when: always, do: Call back, owner: Bob, due_in_days: 7}]}\n"
    )
    results = compute(config, Period.parse("2026-10", "month"), dt.datetime(2026, 11, 24, tzinfo=dt.UTC))
    digest = build_digest(config, results)
    assert "- Hold the course — Sales desk (Keep going)\n" in digest.text
    assert "- Call back — Bob, Nov 7, 2026 (Keep going)\n" in digest.text
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", digest.html))
    assert "Hold the course Keep going Sales desk Call back Keep going Bob Nov 7, 2026 " in words


def test_without_a_company_the_digest_and_the_pdf_start_with_the_title(demo):
    """``report.company`` may be empty: no dangling " — " before the title, no empty line for it."""
    config, results = demo
    nameless = config.model_copy(update={"report": config.report.model_copy(update={"company": ""})})
    digest = build_digest(nameless, results)
    assert digest.text.splitlines()[0] == "Rapport mensuel marketing & ventes"
    assert 'class="company"' not in digest.html
    html = render_html(nameless, results)
    assert 'class="company"' not in html
    assert '<meta name="author"' not in html
    assert '<meta name="keywords" content="marketing-monthly, 2026-10">' in html
    # with a company, both name it as before
    company = config.report.company
    named = build_digest(config, results)
    assert named.text.splitlines()[0] == f"{company} — Rapport mensuel marketing & ventes"
    assert 'class="company"' in named.html
    assert f'<p class="company">{company}</p>' in render_html(config, results)


WORD_JOINER = "\u2060"
# A sign and what follows it when that is not a digit (a currency symbol), a word joiner or not.
SIGN_BEFORE_SYMBOL = re.compile(r"[+−]\u2060?[^\d\s\u2060]")


def spend_of(campaign: str, month: str) -> float:
    """A campaign's spend in a month, summed from the demo's CSV (rows dated the 1st)."""

    with (DEMO.parent / "data" / "marketing_spend.csv").open(encoding="utf-8") as handle:
        rows = csv.DictReader(handle)
        return sum(float(r["amount"]) for r in rows if (r["campaign"], r["date"][:7]) == (campaign, month))


@pytest.mark.parametrize("locale", ["en_US", "fr_FR"])
def test_a_sign_never_parts_from_its_amount_at_a_line_end(demo, locale):
    """On a 375 px phone the English takeaway once ended a line with "(+" and began the next
    with "€34,460": a sign and a currency symbol may part. Both parts join them with a word
    joiner (invisible); a sign before a digit ("+34 460 €") holds by itself."""
    config, results = demo
    digest = build_digest(with_locale(config, locale), results)
    # Paris Expo's spend was new in October 2026 (none in September): its change is all of it
    change = spend_of("Salon Paris Expo", "2026-10") - spend_of("Salon Paris Expo", "2026-09")
    if locale == "en_US":
        joined = f"(+{WORD_JOINER}€{change:,.0f};"
    else:  # a narrow space between thousands, a no-break space before the symbol and the ';'
        joined = "(+" + f"{change:,.0f}".replace(",", "\u202f") + "\xa0€\xa0;"
    for part in (unescape(digest.html), digest.text):
        assert joined in part
        assert [s for s in SIGN_BEFORE_SYMBOL.findall(part) if WORD_JOINER not in s] == []
    # a negative amount is joined the same way; a figure that starts with its digits is left as is
    assert Formatter("en_US", "EUR").value(-1810, "currency") == f"−{WORD_JOINER}€1,810"
    assert Formatter("fr_FR", "EUR").value(-1810, "currency") == "−1\u202f810\xa0€"
