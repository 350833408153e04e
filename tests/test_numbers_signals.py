"""Numbers that do not mislead: a rate's changes in points (results.json, PDF, digest, insight
sentences), the arrow for the sign and the colour and mark for the judgement, the biggest moves
without near-zero bases and with rates ranked by points, round chart ticks, one date style."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import math
import random
import re
from html import unescape

import pypdf
import pytest
from markupsafe import escape

from reporter.compute.database import compute
from reporter.periods import Period
from reporter.render import charts
from reporter.render.context import Formatter
from reporter.render.digest import build_digest
from reporter.render.html import render_html
from tests.conftest import ROOT, with_locale, write_csv

NOW = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
MONTHS = [f"2025-{m:02d}" for m in (9, 10, 11, 12)] + [f"2026-{m:02d}" for m in range(1, 11)]
# Per month (2025-09 is the first month of data): amounts at 1 000 (n at 100, leads 131 of 1 000
# sessions) except where said. a: from a near-zero base (10) in September to 500 in October.
SPECIAL = {
    "2026-09": {"a": 10},
    "2026-10": {"a": 500, "b": 1200, "cost": 850, "d": 900, "n": 130, "leads_web": 150, "leads_mail": 39},
}
DEFAULT = {"a": 1000, "b": 1000, "cost": 1000, "d": 1000, "n": 100, "leads_web": 100, "leads_mail": 31}

YAML = """\
report: {{id: r, title: T, timezone: Europe/Paris, locale: {locale}}}
quality: {{require_complete_period: false, min_rows: 0}}
sources: {{s: {{type: csv, path: s.csv, date_column: date}}}}
metrics:
  a: {{source: s, agg: sum, column: a}}
  b: {{source: s, agg: sum, column: b}}
  cost: {{source: s, agg: sum, column: cost}}
  d: {{source: s, agg: sum, column: d}}
  n: {{source: s, agg: sum, column: n}}
  leads: {{source: s, agg: sum, column: leads}}
  sessions: {{source: s, agg: sum, column: sessions}}
kpis:
  a: {{formula: a, label: Amount A, format: currency}}
  b: {{formula: b, label: Amount B, format: currency}}
  cost: {{formula: cost, label: Cost, format: currency, direction: down}}
  d: {{formula: d, label: Amount D, format: integer}}
  n: {{formula: n, label: Neutral N, format: integer, direction: neutral}}
  rate: {{formula: leads / sessions, label: Conversion, format: percent}}
breakdowns:
  - {{kpi: rate, by: channel}}
{extra}"""


def rows() -> list[list[object]]:
    """Two rows a month (the 15th): the web row holds the amounts, each holds its leads and
    half of the 1 000 sessions."""
    out: list[list[object]] = []
    for month in MONTHS:
        v = {**DEFAULT, **SPECIAL.get(month, {})}
        out.append([f"{month}-15", "web", v["a"], v["b"], v["cost"], v["d"], v["n"], v["leads_web"], 500])
        out.append([f"{month}-15", "mail", 0, 0, 0, 0, 0, v["leads_mail"], 500])
    return out


@pytest.fixture
def small(tmp_path, make_config):
    def make(locale: str = "en_US", extra: str = ""):
        write_csv(
            tmp_path / "s.csv",
            ["date", "channel", "a", "b", "cost", "d", "n", "leads", "sessions"],
            rows(),
        )
        return make_config(YAML.format(locale=locale, extra=extra))

    return make


def plain_rate(month: str) -> float | None:
    """leads / sessions of a month, straight from the rows (None outside the data)."""
    chosen = [r for r in rows() if str(r[0]).startswith(month)]
    if not chosen:
        return None
    return sum(float(r[7]) for r in chosen) / sum(float(r[8]) for r in chosen)  # type: ignore[arg-type]


def points_text(v: float, decimal: str = ".", unit: str = "pts") -> str:
    """The points as the issue writes them, independently of Babel: +5.8 pts, −1.2 pts."""
    number = f"{abs(v) * 100:.1f}".replace(".", decimal)
    sign = "" if round(v * 100, 1) == 0 else ("+" if v > 0 else "−")
    return f"{sign}{number}\xa0{unit}"


def test_percent_kpis_carry_their_changes_in_points(small):
    config = small()
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    rate = results.kpis["rate"]
    now, previous, prior = plain_rate("2026-10"), plain_rate("2026-09"), plain_rate("2025-10")
    assert (now, previous, prior) == (0.189, 0.131, 0.131)
    assert rate.change_pp_vs_previous == pytest.approx(now - previous)  # type: ignore[operator]
    assert rate.change_pp_vs_prior_year == pytest.approx(now - prior)  # type: ignore[operator]
    assert rate.change_pp_vs_previous == pytest.approx(0.058)
    assert rate.change_vs_previous == pytest.approx((0.189 - 0.131) / 0.131)  # still there, relative
    for name in ("a", "b", "cost", "d", "n"):  # not rates: no points
        assert (results.kpis[name].change_pp_vs_previous, results.kpis[name].change_pp_vs_prior_year) == (
            None,
            None,
        )
    data = json.loads(results.to_json())
    assert data["kpis"]["rate"]["change_pp_vs_previous"] == pytest.approx(0.058)
    assert data["kpis"]["rate"]["change_pp_vs_prior_year"] == pytest.approx(0.058)
    assert data["kpis"]["b"]["change_pp_vs_previous"] is None
    # null when the base is null: 2025-09 has no previous month and no prior year in the data
    first = compute(config, Period.parse("2025-09", "month"), NOW).kpis["rate"]
    assert first.value == pytest.approx(plain_rate("2025-09"))
    assert (first.previous, first.change_pp_vs_previous, first.change_pp_vs_prior_year) == (None, None, None)


@pytest.mark.parametrize(
    ("locale", "text"),
    [
        ("fr_FR", "+5,8\xa0pts"),
        ("en_US", "+5.8\xa0pts"),
        ("de_DE", "+5,8\xa0Pp."),
        ("es_ES", "+5,8\xa0p.\xa0p."),
        ("it_IT", "+5,8\xa0p.p."),
    ],
)
def test_points_are_written_in_each_locale(locale, text):
    f = Formatter(locale, "EUR")
    assert f.points(0.189 - 0.131) == text
    assert f.points(-0.012) == text.replace("+5", "−1").replace(",8", ",2").replace(".8", ".2")
    assert f.points(0.0004) == text.replace("+5", "0").replace(",8", ",0").replace(".8", ".0")
    assert f.points(None) == "—"


def test_the_arrow_is_the_sign_and_the_tone_the_judgement():
    signal = Formatter.signal
    assert signal(0.2, None, "currency", "up") == ("▲", "better")
    assert signal(0.2, None, "currency", "down") == ("▲", "worse")  # a cost going up: up, and bad
    assert signal(-0.15, None, "currency", "down") == ("▼", "better")
    assert signal(-0.1, None, "integer", "up") == ("▼", "worse")
    assert signal(0.3, None, "integer", "neutral") == ("▲", "neutral")
    assert signal(0.0004, None, "currency", "up") == ("", "flat")  # prints as +0.0 %
    assert signal(0.44, 0.058, "percent", "up") == ("▲", "better")  # a rate: by its points
    assert signal(0.44, -0.01, "percent", "up") == ("▼", "worse")
    f = Formatter("en_US", "EUR")
    cost = {"change": 0.2, "change_pp": None, "format": "currency", "direction": "down"}
    assert f.delta_text(cost) == "▲\xa0+20.0%\xa0✗"
    assert str(f.delta(cost)) == '<span class="delta worse">▲\xa0+20.0%\xa0✗</span>'
    rate = {
        "change_vs_previous": 0.44,
        "change_pp_vs_previous": 0.058,
        "format": "percent",
        "direction": "up",
    }
    assert f.delta_text(rate, "previous") == "▲\xa0+5.8\xa0pts\xa0✓"
    neutral = {"change_vs_prior_year": -0.3, "format": "integer", "direction": "neutral"}
    assert str(f.delta(neutral, "prior_year")) == '<span class="delta neutral">▼\xa0−30.0%</span>'
    assert f.delta_legend() == (
        "▲ ▼ up or down · ✓ better · ✗ worse (by the indicator's direction) · grey: no preferred direction"
    )
    assert Formatter("fr_FR", "EUR").delta_legend() == (
        "▲ ▼ hausse ou baisse · ✓ mieux · ✗ moins bien (selon le sens de l'indicateur) · "
        "gris\u00a0: pas de sens préféré"
    )


def expected_signal(kpi, base: str) -> tuple[str, str]:
    """Arrow and class of a KPI's change, worked out here from results.json's numbers."""
    points = getattr(kpi, f"change_pp_vs_{base}")
    in_points = kpi.format == "percent" or points is not None  # a rate, or a score in points
    v = points if in_points else getattr(kpi, f"change_vs_{base}")
    if v is None or round(v, 3 if kpi.format == "percent" or not in_points else 1) == 0:
        return "", "flat"
    arrow = "▲" if v > 0 else "▼"
    if kpi.provisional:  # its value is not final (settles_after): the change is not judged
        return arrow, "provisional"
    if kpi.direction == "neutral":
        return arrow, "neutral"
    return arrow, "better" if (v > 0) == (kpi.direction == "up") else "worse"


def scorecard_cells(html: str, label: str) -> list[tuple[str, str]]:
    """(class, text) of the two change cells of a KPI's scorecard row."""
    row = re.search(
        rf'<td>{re.escape(escape(label))}(?: <span class="flag">[^<]*</span>)?</td>(.*?)</tr>', html, re.S
    )
    assert row, label
    return re.findall(r'<span class="delta (\w+)">([^<]*)</span>', row.group(1))


def test_every_scorecard_change_has_its_arrow_colour_and_mark(demo_report):
    config, results = demo_report
    html = render_html(config, results)
    formatter = Formatter.for_report(config.report)
    seen = set()
    for name, kpi in results.kpis.items():
        cells = scorecard_cells(html, kpi.label)
        assert len(cells) == 2, name
        for (tone, text), base in zip(cells, ("previous", "prior_year"), strict=True):
            arrow, expected_tone = expected_signal(kpi, base)
            assert tone == expected_tone, (name, base)
            assert text.startswith(arrow) if arrow else not text.startswith(("▲", "▼")), (name, text)
            assert text.endswith({"better": "✓", "worse": "✗"}.get(tone, text[-1:]))
            if tone in ("provisional", "neutral", "flat"):
                assert not text.endswith(("✓", "✗")), (name, text)
            if kpi.format == "percent":
                points = getattr(kpi, f"change_pp_vs_{base}")
                assert formatter.points(points) in text, (name, text)
                if points is not None:
                    assert points_text(points, ",") in text  # the "+5,8 pts"
            elif config.kpis[name].change == "points":  # a score (the NPS): points in its own unit
                points = getattr(kpi, f"change_pp_vs_{base}")
                assert score_points_text(points, ",", "pts") in text, (name, text)
                seen.add(("score", name))
            else:
                assert formatter.change(getattr(kpi, f"change_vs_{base}")) in text, (name, text)
            seen.add((tone, arrow))
    # the demo has each case: a rise that is good, a rise that is bad, a fall that is good, ...
    assert {("better", "▲"), ("worse", "▲"), ("better", "▼"), ("worse", "▼"), ("neutral", "▲")} <= seen
    css = (ROOT / "templates" / "executive" / "report.css").read_text(encoding="utf-8")
    assert ".delta.better { color: #1f7a3a; }" in css
    assert ".delta.worse { color: #b42318; }" in css
    assert ".delta.neutral, .delta.flat, .delta.provisional { color: #5b6b7f; }" in css
    assert ("provisional", "▲") in seen  # the open pipeline's +631.5 %, not judged
    assert ("score", "nps") in seen
    assert html.count('<p class="legend">▲ ▼ hausse ou baisse · ✓ mieux') >= 2  # summary and sections


@pytest.mark.parametrize("locale", ["fr_FR", "en_US"])
def test_the_pdf_shows_points_for_rates(demo_report, demo_pdfs, locale):
    """Each rate's scorecard row: its label, then its changes in points, "+5,8 pts" (a long
    label wraps, so the text is read without spaces)."""
    config, results = demo_report
    from reporter.config.labels import Labels

    labels = Labels(config, locale)  # the demo's labels are in French and English
    reader = pypdf.PdfReader(io.BytesIO(demo_pdfs[locale]))
    text = squash("".join(page.extract_text() for page in reader.pages))
    decimal = "," if locale == "fr_FR" else "."
    rates = [
        k
        for k in results.kpis.values()
        if k.format == "percent"
        and k.change_pp_vs_previous is not None
        and k.change_pp_vs_prior_year is not None
    ]
    assert len(rates) >= 5
    for name, kpi in results.kpis.items():
        if kpi not in rates:
            continue
        label = labels.kpi(name)
        previous = squash(points_text(kpi.change_pp_vs_previous, decimal))  # type: ignore[arg-type]
        prior = squash(points_text(kpi.change_pp_vs_prior_year, decimal))  # type: ignore[arg-type]
        row = re.search(
            rf"{re.escape(squash(label))}.{{0,80}}?({re.escape(previous)}.{{0,24}}?{re.escape(prior)})",
            text,
        )
        assert row, (locale, label, previous, prior)
        assert not re.search(r"[+−]\d+[.,]\d%", row.group(1)), row.group(1)  # no relative change between


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text.replace("\u202f", " ").replace("\xa0", " "))


def test_the_digest_colours_and_marks_changes_the_same_way(demo_report):
    from reporter.config.labels import Labels

    config, results = demo_report
    english = Labels(config, "en_US")
    digest = build_digest(with_locale(config, "en_US"), results)
    html = unescape(digest.html)
    moves = results.moves["vs_previous"]
    chosen = moves.favourable + moves.unfavourable
    assert chosen
    for move in chosen:
        arrow = "▲" if (move.change_pp if move.format == "percent" else move.change) > 0 else "▼"  # type: ignore[operator]
        tone = "better" if move in moves.favourable else "worse"
        mark = "✓" if tone == "better" else "✗"
        colour = {"better": "#1f7a3a", "worse": "#b42318"}[tone]
        span = re.search(
            rf'<span class="delta {tone}" style="color: ?{colour};?">{arrow}\xa0[^<]*\xa0{mark}</span>',
            html,
        )
        assert span, move.label
        label = english.kpi(move.kpi)
        assert re.search(rf"{re.escape(label)} {arrow}\xa0\S+\xa0{mark}", digest.text), label
    # the CAC rose by 150.8 %: up, and bad (red, ✗), not a red ▼ beside a rise
    assert "▲\xa0+150.8%\xa0✗" in digest.text
    # the text part has no colour: its legend says the unmarked change has no preferred direction
    legend = "▲ ▼ up or down · ✓ better · ✗ worse (by the indicator's direction) · no mark:\nno preferred"
    assert legend in digest.text
    assert "no preferred direction\n\nACTIONS DUE" in digest.text  # a blank line between blocks
    assert "grey" not in digest.text
    assert "grey: no preferred direction" in html
    assert all(
        len(line) <= 78 for line in digest.text.splitlines() if "up or down" in line or "preferred" in line
    )


def move_names(moves) -> tuple[list[str], list[str]]:
    return [m.kpi for m in moves.favourable], [m.kpi for m in moves.unfavourable]


def test_biggest_moves_leave_out_near_zero_bases_and_rank_rates_by_points(small):
    results = compute(small(), Period.parse("2026-10", "month"), NOW)
    # a: 10 → 500 (+4 900 %) from a base under 5 % of its median (1 000): left out.
    # rate: +44 % relative but +5.8 points: ranked by its points, after b (+20 %) and the cost (−15 %).
    assert results.kpis["a"].change_vs_previous == pytest.approx(49.0)
    assert move_names(results.moves["vs_previous"]) == (["b", "cost", "rate"], ["d"])
    rate_move = results.moves["vs_previous"].favourable[2]
    assert rate_move.change_pp == pytest.approx(0.058)
    assert rate_move.base == pytest.approx(0.131)
    # against last year a's base is 1 000: its fall counts
    assert move_names(results.moves["vs_prior_year"]) == (["b", "cost", "rate"], ["a", "d"])
    data = json.loads(results.to_json())["moves"]["vs_previous"]["favourable"][2]
    assert (data["kpi"], data["format"]) == ("rate", "percent")
    assert data["change_pp"] == pytest.approx(0.058)


def test_the_floor_is_configurable(small):
    every = compute(small(extra="insights: {moves_min_base: 0}\n"), Period.parse("2026-10", "month"), NOW)
    assert move_names(every.moves["vs_previous"]) == (["a", "b", "cost"], ["d"])
    # at 0.95 the base must be 950 or more: b, cost, d and rate's bases (1 000, 0.131 ≥ 0.95 × 0.131) stay
    strict = compute(small(extra="insights: {moves_min_base: 0.95}\n"), Period.parse("2026-10", "month"), NOW)
    assert move_names(strict.moves["vs_previous"]) == (["b", "cost", "rate"], ["d"])


def test_a_kpi_that_only_just_started_is_no_biggest_move(small, tmp_path, make_config):
    """Zero in most of its 12 periods (a pipeline that started last month): its median is 0,
    so no base is big enough and +631 % does not lead the summary."""
    config = small()
    text = (tmp_path / "s.csv").read_text(encoding="utf-8").splitlines()
    out = [text[0]]
    for line in text[1:]:
        cells = line.split(",")
        if cells[0] < "2026-09" and cells[1] == "web":
            cells[2] = "0"  # a is 0 before September, then 10 and 500
        out.append(",".join(cells))
    (tmp_path / "s.csv").write_text("\n".join(out) + "\n", encoding="utf-8")
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    assert [p.value for p in results.kpis["a"].series][-3:] == [0.0, 10.0, 500.0]
    assert "a" not in move_names(results.moves["vs_previous"])[0]


def test_insight_sentences_give_a_rates_change_in_points(small):
    config = small()
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    render_html(config, results)  # writes the sentences
    texts = [i["text"] for i in results.insights if i["type"] == "contributors" and i["vs"] == "previous"]
    assert texts == [
        "Conversion +5.8\xa0pts on the previous period, from web (+5.0\xa0pts) and mail (+0.8\xa0pts)."
    ]


def test_insight_sentences_give_a_scores_change_in_points(tmp_path, make_config):
    """The same conversion as a score out of 100 with change: points: the sentence says the
    difference in points of the score itself (18.9 − 13.1), not a relative change."""
    write_csv(
        tmp_path / "s.csv", ["date", "channel", "a", "b", "cost", "d", "n", "leads", "sessions"], rows()
    )
    config = make_config(
        "report: {id: r, title: T, timezone: Europe/Paris, locale: en_US}\n"
        "quality: {require_complete_period: false, min_rows: 0}\n"
        "sources: {s: {type: csv, path: s.csv, date_column: date}}\n"
        "metrics:\n"
        "  per_100: {source: s, agg: sum, expr: leads * 100}\n"
        "  sessions: {source: s, agg: sum, column: sessions}\n"
        "kpis: {score: {formula: per_100 / sessions, label: Score, format: number, change: points}}\n"
        "breakdowns: [{kpi: score, by: channel}]\n"
    )
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    render_html(config, results)  # writes the sentences
    texts = [i["text"] for i in results.insights if i["type"] == "contributors" and i["vs"] == "previous"]
    change = (plain_rate("2026-10") - plain_rate("2026-09")) * 100  # type: ignore[operator]
    assert texts == [
        f"Score +{change:.1f}\xa0pts on the previous period, from web (+5.0\xa0pts) and mail (+0.8\xa0pts)."
    ]


def test_neutral_kpis_are_grey_in_the_report(small):
    config = small()
    html = render_html(config, compute(config, Period.parse("2026-10", "month"), NOW))
    assert scorecard_cells(html, "Neutral N") == [("neutral", "▲\xa0+30.0%")] * 2
    assert scorecard_cells(html, "Conversion") == [("better", "▲\xa0+5.8\xa0pts\xa0✓")] * 2
    assert scorecard_cells(html, "Cost") == [("better", "▼\xa0−15.0%\xa0✓")] * 2


# -- chart axes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lo", "hi", "ticks"),
    [
        (0, 928.65, [0, 500, 1000]),
        (0, 1857, [0, 500, 1000, 1500, 2000]),
        (0.131, 0.189, [0.12, 0.14, 0.16, 0.18, 0.2]),
        (-3, 7, [-5, 0, 5, 10]),
        (0, 3, [0, 1, 2, 3]),
        (5, 5, [4.5, 5, 5.5]),
        (0.0001, 0.00042, [0.0001, 0.0002, 0.0003, 0.0004, 0.0005]),
        (99990, 100020, [99990, 100000, 100010, 100020]),
        (-1e6, -2e5, [-1e6, -8e5, -6e5, -4e5, -2e5]),
        (0.9, 1.1, [0.9, 0.95, 1.0, 1.05, 1.1]),
    ],
)
def test_axis_ticks_are_round(lo, hi, ticks):
    assert charts.nice_ticks(lo, hi) == ticks


def test_axis_ticks_on_random_ranges_are_1_2_5_steps_that_cover_the_range():
    rng = random.Random(12)
    for _ in range(2000):
        lo = rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-8, 0)
        hi = lo + abs(rng.uniform(0, 1e6)) * 10 ** rng.randint(-8, 0)
        ticks = charts.nice_ticks(lo, hi)
        step = ticks[1] - ticks[0]
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6, (lo, hi, ticks)
        assert ticks[0] <= lo + 1e-12 * abs(lo), (lo, hi, ticks)
        assert ticks[-1] >= hi - 1e-12 * abs(hi), (lo, hi, ticks)
        assert 2 <= len(ticks) <= 6, (lo, hi, ticks)
        assert all(abs((b - a) - step) <= 1e-9 * max(1.0, abs(step)) for a, b in itertools.pairwise(ticks))
    assert charts.nice_ticks(0, 3, min_step=1.0) == [0, 1, 2, 3]
    assert charts.nice_ticks(0, 1.5, min_step=1.0) == [0, 1, 2]  # counts: no half steps
    assert charts.tick_decimals([0.12, 0.14], 100) == 0  # 12 %, 14 %
    assert charts.tick_decimals([0.9, 0.95], 100) == 0
    assert charts.tick_decimals([0.0001, 0.0002], 100) == 2  # 0.01 %, 0.02 %
    assert charts.tick_decimals([4.5, 5.0]) == 1


def axis_labels(svg: str) -> list[str]:
    return [
        t.replace("\u202f", " ").replace("\xa0", " ")
        for t in re.findall(r'text-anchor="end"[^>]*>([^<]*)<', svg)
    ]


def test_a_trend_axis_shows_round_values_in_one_format():
    f = Formatter("fr_FR", "EUR")
    svg = charts.trend(
        ["a", "b", "c"],
        [120.0, 928.65, 1857.3],
        [1500.0, 1500.0, 1500.0],
        lambda v, d: f.value(v, "currency", d),
        {"no_data": "-", "alt": "x"},
    )
    assert axis_labels(svg) == ["0 €", "500 €", "1 000 €", "1 500 €", "2 000 €"]  # not 928,65 € and 1 857 €
    svg = charts.trend(
        ["a", "b"],
        [0.131, 0.189],
        [None, None],
        lambda v, d: f.value(v, "percent", d),
        {"no_data": "-", "alt": "x"},
        scale=100,
    )
    assert axis_labels(svg) == ["12 %", "14 %", "16 %", "18 %", "20 %"]


def test_the_demo_charts_have_round_ticks_in_one_format(demo_report):
    config, results = demo_report
    html = render_html(with_locale(config, "en_US"), results)
    charts_seen = 0
    for svg in re.findall(r'<svg[^>]*width="460" height="120".*?</svg>', html, re.S):
        labels = axis_labels(svg)
        if 'stroke-width="1.8"' not in svg:  # not a trend (the funnel has that size too)
            continue
        charts_seen += 1
        numbers = [float(re.sub(r"[^\d.−-]", "", t).replace("−", "-")) for t in labels]
        decimals = {len(re.sub(r"[^\d.]", "", t).partition(".")[2]) for t in labels}
        assert len(decimals) == 1, labels  # one number format per axis
        step = numbers[1] - numbers[0]
        mantissa = round(step / 10 ** math.floor(math.log10(step)), 6)
        assert mantissa in (1, 2, 5), labels
        assert all(round((b - a) - step, 6) == 0 for a, b in itertools.pairwise(numbers)), labels
        assert all(round(n / step, 6) == round(n / step) for n in numbers), labels
    assert charts_seen == len(results.objectives)


# -- dates --------------------------------------------------------------------------------

LONG_EN = r"(January|February|March|April|May|June|July|August|September|October|November|December)"
LONG_FR = r"(janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre)"


def visible(html: str) -> str:
    html = re.sub(r"<(style|title)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_every_date_has_one_style(demo_report):
    config, results = demo_report
    en = visible(render_html(with_locale(config, "en_US"), results))
    digest = build_digest(with_locale(config, "en_US"), results)
    for text in (en, digest.text, visible(digest.html)):
        assert not re.search(rf"\b\d{{1,2}} {LONG_EN} \d{{4}}", text)  # 26 November 2026
        assert not re.search(rf"{LONG_EN} \d{{1,2}}, \d{{4}}", text)  # November 26, 2026
        assert not re.search(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b", text)  # 12/31/26
        assert re.search(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}, \d{4}\b", text)
    assert "Dec 31, 2026" in en  # a due date
    assert "Generated on Nov 2, 2026, 07:00" in en
    assert "Generated on Nov 2, 2026, 07:00" in digest.text
    fr = visible(render_html(config, results))
    assert not re.search(rf"\b\d{{1,2}} {LONG_FR} \d{{4}}", fr)  # 31 décembre 2026
    assert not re.search(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b", fr)
    assert "31 déc. 2026" in fr  # a due date
    assert "31 oct. 2026" in fr  # a source's last date
    assert "Généré le 2 nov. 2026, 07:00" in fr


@pytest.mark.parametrize(
    ("locale", "day", "moment"),
    [
        ("fr_FR", "31 déc. 2026", "2 nov. 2026, 07:00"),
        ("en_US", "Dec 31, 2026", "Nov 2, 2026, 07:00"),
        ("de_DE", "31.12.2026", "02.11.2026, 07:00"),
        ("es_ES", "31 dic 2026", "2 nov 2026, 07:00"),
        ("it_IT", "31 dic 2026", "2 nov 2026, 07:00"),
    ],
)
def test_the_date_filter_has_one_style_whatever_a_template_asks(locale, day, moment):
    f = Formatter(locale, "EUR", "Europe/Paris")
    assert {f.date("2026-12-31"), f.date("2026-12-31", "short"), f.date("2026-12-31", "long")} == {day}
    assert f.timestamp("2026-11-02T06:00:00+00:00") == moment


def all_neutral(small, tmp_path, make_config, locale: str = "en_US"):
    """The small report with every KPI ``direction: neutral``, as ``reporter init --source``
    writes them."""
    small(locale)  # writes s.csv
    text = re.sub(r", direction: \w+", "", YAML.format(locale=locale, extra=""))
    text = re.sub(r"(label: [^,}]+, format: \w+)}", r"\1, direction: neutral}", text)
    assert text.count("direction: neutral") == 6
    return make_config(text)


def move_boxes(html: str) -> list[str]:
    """The text of each biggest-moves box on page 1 (previous period, then last year)."""
    boxes = re.findall(r'<div class="movebox">(.*?)</div>', html, re.S)
    return [squash(unescape(re.sub(r"<[^>]+>", " ", b))) for b in boxes]


def test_a_report_of_neutral_kpis_still_shows_its_biggest_moves(small, tmp_path, make_config):
    """Every KPI neutral: no change is favourable or unfavourable, and page 1 used to say "no
    data" under "Biggest moves" beside a scorecard full of changes. They are listed, unjudged
    (grey, no ✓ ✗), biggest first, and the digest lists them without a mark."""
    config = all_neutral(small, tmp_path, make_config)
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    moves = results.moves["vs_previous"]
    assert (moves.favourable, moves.unfavourable) == ([], [])
    # by hand, September → October: n 100 → 130 (+30 %), b 1 000 → 1 200 (+20 %), cost 1 000 →
    # 850 (−15 %), d 1 000 → 900 (−10 %), rate 13.1 % → 18.9 % (+5.8 pts, ranked by points);
    # a from 10 (under 5 % of its median, 1 000) is left out
    assert [m.kpi for m in moves.neutral] == ["n", "b", "cost", "d", "rate"]
    assert [round(m.change, 3) for m in moves.neutral[:4]] == [0.3, 0.2, -0.15, -0.1]  # type: ignore[arg-type]
    html = render_html(config, results)
    previous = move_boxes(html)[0]
    assert "nodata" not in previous
    first_two = "Biggest moves vs previous period Neutral N ▲ +30.0% Amount B ▲ +20.0%"
    assert previous.startswith(squash(first_two))
    assert 'class="delta neutral">▲\xa0+30.0%</span>' in html
    assert "✓" not in previous
    assert "✗" not in previous
    digest = build_digest(config, results)
    assert "- Neutral N ▲\xa0+30.0%\n- Amount B ▲\xa0+20.0%\n" in digest.text


def test_moves_of_neutral_kpis_fill_the_places_left(small):
    """With judged moves, a neutral KPI's change comes after them, in the places the 3 + 3
    leave: four judged moves (b, cost, rate; d), so the neutral N (+30 %) is the fifth row."""
    results = compute(small(), Period.parse("2026-10", "month"), NOW)
    moves = results.moves["vs_previous"]
    assert move_names(moves) == (["b", "cost", "rate"], ["d"])
    assert [m.kpi for m in moves.neutral] == ["n"]


@pytest.mark.parametrize(
    ("locale", "empty"), [("en_US", "No comparable change"), ("fr_FR", "Aucune variation comparable")]
)
def test_no_move_says_so_without_claiming_no_data(small, tmp_path, make_config, locale, empty):
    """The first month of data has no previous month and no last year: nothing to compare, and
    the box says that much, not "no data" beside a scorecard full of values."""
    config = small(locale)
    results = compute(config, Period.parse("2025-09", "month"), NOW)
    assert results.kpis["b"].value == 1000
    boxes = move_boxes(render_html(config, results))
    assert len(boxes) == 2
    assert all(b.endswith(squash(empty)) for b in boxes), boxes


def demo_nps(month: str) -> float:
    """The demo's Net Promoter Score of a month, from its survey answers: promoters (9-10) minus
    detractors (0-6), per 100 answers."""
    with (ROOT / "config" / "data" / "nps.csv").open(encoding="utf-8") as handle:
        scores = [int(r["score"]) for r in csv.DictReader(handle) if r["answered_at"].startswith(month)]
    return (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores) * 100


def score_points_text(v: float, decimal: str, unit: str) -> str:
    """A score's change in points, one decimal, in its own unit: −0.8 pts (no × 100)."""
    number = f"{abs(v):.1f}".replace(".", decimal)
    return f"{'+' if v > 0 else '−'}{number}\xa0{unit}"


def test_the_demo_nps_changes_in_points_not_percent(demo_report, demo_pdfs):
    """NPS is a score: its changes are differences in points (kpis.nps.change: points), in
    results.json and on the scorecard, never the relative "−1,6 %" it showed before."""
    config, results = demo_report
    assert config.kpis["nps"].format == "number"
    assert config.kpis["nps"].change == "points"
    now, previous, prior = demo_nps("2026-10"), demo_nps("2026-09"), demo_nps("2025-10")
    nps = results.kpis["nps"]
    assert nps.value == pytest.approx(now)
    assert nps.change_pp_vs_previous == pytest.approx(now - previous)
    assert nps.change_pp_vs_prior_year == pytest.approx(now - prior)
    assert nps.change_vs_previous == pytest.approx((now - previous) / abs(previous))  # still there
    data = json.loads(results.to_json())["kpis"]["nps"]
    assert data["change_pp_vs_previous"] == pytest.approx(now - previous)
    for locale, decimal in (("fr_FR", ","), ("en_US", ".")):
        text = squash("".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(demo_pdfs[locale])).pages))
        shown = [squash(score_points_text(d, decimal, "pts")) for d in (now - previous, now - prior)]
        row = re.search(
            rf"NetPromoterScore.{{0,40}}?({re.escape(shown[0])}.{{0,12}}?{re.escape(shown[1])})", text
        )
        assert row, (locale, shown)
        relative = f"{abs((now - previous) / previous) * 100:.1f}".replace(".", decimal)
        assert relative not in row.group(0)


@pytest.mark.parametrize(
    ("locale", "unit"),
    [("fr_FR", "pts"), ("en_US", "pts"), ("de_DE", "Pkt."), ("es_ES", "ptos."), ("it_IT", "punti")],
)
def test_a_scores_points_are_its_own_not_percentage_points(locale, unit):
    """A score's points are plain points in each language: "Pkt.", not the "Pp." (percentage
    points) of a rate; the number is the difference itself, not × 100."""
    decimal = "." if locale == "en_US" else ","
    f = Formatter(locale, "EUR")
    assert f.points(-0.8196, "number") == score_points_text(-0.8196, decimal, unit)
    assert f.points(12.34, "ratio") == score_points_text(12.34, decimal, unit)
    assert f.points(0.058) != f.points(0.058, "number")  # a rate's fraction is × 100


def test_change_picks_points_or_percent_whatever_the_format(tmp_path, make_config):
    """`change: percent` shows a rate's relative change; `change: points` a number's difference;
    left out, a percent KPI is in points and a number in percent."""
    write_csv(
        tmp_path / "s.csv",
        ["date", "won", "leads"],
        [["2026-09-15", 20, 100], ["2026-10-15", 30, 120]],
    )
    config = make_config(
        "report: {id: r, title: T, timezone: Europe/Paris, locale: en_US}\n"
        "quality: {require_complete_period: false, min_rows: 0}\n"
        "sources: {s: {type: csv, path: s.csv, date_column: date}}\n"
        "metrics: {won: {source: s, agg: sum, column: won}, leads: {source: s, agg: sum, column: leads}}\n"
        "kpis:\n"
        "  rate: {formula: won / leads, format: percent}\n"
        "  rate_relative: {formula: won / leads, format: percent, change: percent}\n"
        "  score: {formula: won / leads * 100, format: number, change: points}\n"
        "  count: {formula: won, format: number}\n"
    )
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    rate_now, rate_before = 30 / 120, 20 / 100
    f = Formatter("en_US", "EUR")
    said = {name: f.delta_text(results.kpis[name], "previous") for name in results.kpis}
    assert said["rate"] == f"▲\xa0+{(rate_now - rate_before) * 100:.1f}\xa0pts\xa0✓"  # +5.0 pts
    assert (
        said["rate_relative"] == f"▲\xa0+{(rate_now - rate_before) / rate_before * 100:.1f}%\xa0✓"
    )  # +25.0%
    assert said["score"] == f"▲\xa0+{(rate_now - rate_before) * 100:.1f}\xa0pts\xa0✓"
    assert said["count"] == f"▲\xa0+{(30 - 20) / 20 * 100:.1f}%\xa0✓"  # +50.0%
    assert results.kpis["rate_relative"].change_pp_vs_previous is None
    assert results.kpis["count"].change_pp_vs_previous is None
