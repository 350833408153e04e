"""Insights against numbers computed here, in plain Python over the fixture rows (statistics,
lists and dicts; nothing of reporter's own period or SQL code), one fixture per type with its
edge cases: mad = 0, fewer than 6 history points, a key present in one period only, a zero total
change, an objective due in the current period, a down-direction objective."""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reporter.compute.database import compute
from reporter.config.model import Config
from reporter.periods import Period
from tests.conftest import write_csv

P = "2026-10"


def month(label: str, n: int) -> str:
    """The month ``n`` months after ``label`` (n may be negative)."""
    y, m = map(int, label.split("-"))
    idx = y * 12 + m - 1 + n
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def yaml(extra: str = "", kpis: str = "", objectives: str = "", breakdowns: str = "") -> str:
    return f"""
report: {{id: t, title: T, timezone: Europe/Paris, locale: en_US}}
sources:
  sales: {{type: csv, path: sales.csv, date_column: date, frequency: monthly}}  # a row a month
metrics:
  amount: {{source: sales, agg: sum, column: amount}}
  deals: {{source: sales, agg: sum, column: deals}}
  score: {{source: sales, agg: avg, column: score}}
kpis:
  amount: {{formula: amount, format: currency}}
  deals: {{formula: deals, format: integer}}
  score: {{formula: score}}
  per_deal: {{formula: amount / deals}}
{kpis}
objectives:
{objectives or "  []"}
breakdowns:
{breakdowns or "  []"}
quality: {{require_complete_period: false}}
{extra}
"""


def build(
    tmp_path: Path,
    make_config: Callable[[str], Config],
    rows: list[tuple[str, str, float, float, float | None]],
    **parts: str,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """rows: (day, region, amount, deals, score). The report's insights, and the rows as dicts."""
    write_csv(
        tmp_path / "sales.csv",
        ["date", "region", "amount", "deals", "score"],
        rows,
    )
    config = make_config(yaml(**parts))
    results = compute(config, Period.parse(P, "month"), _now()).to_dict()
    as_dicts = [dict(zip(("date", "region", "amount", "deals", "score"), r, strict=True)) for r in rows]
    return results, as_dicts


def _now() -> Any:
    import datetime as dt

    return dt.datetime(2026, 11, 5, tzinfo=dt.UTC)


def of(results: dict[str, Any], kind: str, **names: str) -> list[dict[str, Any]]:
    return [
        i for i in results["insights"] if i["type"] == kind and all(i.get(k) == v for k, v in names.items())
    ]


def by_month(rows: list[dict[str, Any]], field: str, how: str = "sum") -> dict[str, float | None]:
    out: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r[field] is not None:
            out[r["date"][:7]].append(r[field])
    if how == "sum":
        return {k: float(sum(v)) for k, v in out.items()}
    return {k: sum(v) / len(v) for k, v in out.items()}


def monthly(values: dict[str, float | None], first: str) -> list[tuple[str, str, float, float, float | None]]:
    """One row a month on the 15th, region A, with ``values`` as the amount (and score)."""
    return [(f"{m}-15", "A", v or 0.0, 1.0, v) for m, v in values.items() if m >= first]


# ----------------------------------------------------------------------------- unusual_change


def test_unusual_change_is_the_robust_z_score_of_the_last_12_periods(tmp_path, make_config):
    history = [100, 104, 98, 101, 97, 103, 100, 96, 105, 99, 102, 95, 101]  # 13 months before P
    values = {month(P, i - len(history)): float(v) for i, v in enumerate(history)} | {P: 160.0}
    results, rows = build(tmp_path, make_config, monthly(values, month(P, -13)))
    amounts = by_month(rows, "amount")
    before = [amounts[month(P, -i)] for i in range(12, 0, -1)]  # the 12 periods before P
    m = statistics.median(before)
    mad = statistics.median([abs(x - m) for x in before])
    z = (160.0 - m) / (1.4826 * mad)
    assert z >= 3.5
    [found] = of(results, "unusual_change", kpi="amount")
    assert found["value"] == 160.0
    assert found["median"] == pytest.approx(m)
    assert found["mad"] == pytest.approx(mad)
    assert found["z"] == pytest.approx(z)
    assert found["score"] == pytest.approx(3 * min(z / 3.5, 3))


def test_no_unusual_change_when_mad_is_zero_or_history_is_short(tmp_path, make_config):
    flat = {month(P, -i): 100.0 for i in range(12, 0, -1)} | {P: 500.0}
    results, _ = build(tmp_path, make_config, monthly(flat, month(P, -12)))
    assert of(results, "unusual_change", kpi="amount") == []  # mad = 0

    short = {month(P, -i): float(90 + 5 * i) for i in range(5, 0, -1)} | {P: 900.0}
    results, _ = build(tmp_path, make_config, monthly(short, month(P, -5)))
    assert of(results, "unusual_change", kpi="amount") == []  # 5 history points < 6


def robust_z(value: float, history: list[float]) -> float:
    m = statistics.median(history)
    return (value - m) / (1.4826 * statistics.median([abs(x - m) for x in history]))


NOISE = [100, 104, 98, 101, 97, 103, 100, 96, 105, 99, 102, 95]


@pytest.mark.parametrize(
    ("last_october", "kind"),
    [(300.0, "seasonal"), (101.0, "unusual_change"), (20.0, "unusual_change"), (None, "unusual_change")],
)
def test_a_value_unusual_every_year_at_this_time_is_seasonal(tmp_path, make_config, last_october, kind):
    """October far above the 12 months before it, as October was last year against its own
    year before: `seasonal`, half the score. Last October ordinary, unusual the other way, or
    with fewer than 6 months before it: `unusual_change`."""
    values: dict[str, float | None] = {month(P, i - 24): float(NOISE[i % 12]) for i in range(24)}
    values[month(P, -12)] = last_october
    if last_october is None:  # data from 5 months before last October only
        values = {m: v for m, v in values.items() if m >= month(P, -17)}
        values[month(P, -12)] = 290.0
    values[P] = 320.0
    rows = [(f"{m}-15", "A", v, 1.0, v) for m, v in values.items() if v is not None]
    results, as_dicts = build(tmp_path, make_config, rows)
    amounts = by_month(as_dicts, "amount")
    z = robust_z(amounts[P], [amounts[month(P, -i)] for i in range(12, 0, -1)])
    assert z >= 3.5
    [found] = of(results, "unusual_change", kpi="amount") + of(results, "seasonal", kpi="amount")
    assert found["type"] == kind
    assert found["z"] == pytest.approx(z)
    if kind == "seasonal":
        before = [amounts[month(P, -i)] for i in range(24, 12, -1)]
        z_last = robust_z(amounts[month(P, -12)], before)
        assert z_last >= 3.5
        assert found["prior_year_value"] == amounts[month(P, -12)]
        assert found["prior_year_z"] == pytest.approx(z_last)
        assert found["median"] == pytest.approx(
            statistics.median(amounts[month(P, -i)] for i in range(12, 0, -1))
        )
        assert found["score"] == pytest.approx(3 * min(z / 3.5, 3) / 2)
        assert set(found) == {
            "type",
            "kpi",
            "value",
            "median",
            "z",
            "prior_year_value",
            "prior_year_z",
            "score",
        }


# Last October (150) was no event against its own year (wide, around 100), so it is not a
# season; the 11 months since are tight around 100: October 2026 is far above them
WIDE = [60, 140, 70, 130, 80, 120, 90, 110, 100, 65, 135, 75]
TIGHT = [100, 104, 98, 101, 97, 103, 100, 96, 105, 99, 102]
UNUSUAL_VS_SEASON = {
    "en_US": "amount is unusual this period: €170.00, above €150.00 in October 2025 and a usual €100.50.",
    "fr_FR": "amount sort de l'ordinaire : 170,00 €, plus qu'en octobre 2025 (150,00 €) et que d'habitude "
    "(100,50 €).",
    "de_DE": "amount ist in dieser Periode ungewöhnlich: 170,00 €, höher als im Vorjahr (Oktober 2025: "
    "150,00 €) und als üblich (100,50 €).",
    "es_ES": "amount es inusual en este periodo: 170,00 €, por encima de 150,00 € en octubre de 2025 y de "
    "un valor habitual de 100,50 €.",
    "it_IT": "amount: valore insolito in questo periodo, 170,00 €, superiore a 150,00 € in ottobre 2025 e "
    "al valore abituale di 100,50 €.",
}


@pytest.mark.parametrize("locale", list(UNUSUAL_VS_SEASON))
def test_a_value_in_line_with_last_year_at_this_time_is_not_unusual(tmp_path, make_config, locale):
    """A yearly event is unusual against the year's median only: held against the same period
    last year by the same rule (the robust z with the same mad, centred on last year's value,
    the same threshold), a value in line with it is not unusual at all, and one that is not
    says both numbers: last year's and the usual one."""
    from reporter.run.stages import describe

    def run(october: float) -> tuple[dict[str, float], list[dict[str, Any]]]:
        values = {month(P, i - 24): float(WIDE[i]) for i in range(12)} | {month(P, -12): 150.0}
        values |= {month(P, i - 11): float(TIGHT[i]) for i in range(11)} | {P: october}
        rows = [(f"{m}-15", "A", v, 1.0, v) for m, v in values.items()]
        write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], rows)
        config = make_config(yaml().replace("locale: en_US}", f"locale: {locale}}}"))
        results = describe(config, compute(config, Period.parse(P, "month"), _now()))
        amounts = by_month(
            [dict(zip(("date", "region", "amount"), r[:3], strict=False)) for r in rows], "amount"
        )
        return amounts, [i for i in results.insights if i.get("kpi") == "amount"]

    # 155: 14.7 robust deviations above the 12 months before, 1.3 from last October
    amounts, said = run(155.0)
    history = [amounts[month(P, -i)] for i in range(12, 0, -1)]
    m = statistics.median(history)
    mad = statistics.median([abs(x - m) for x in history])
    assert (m, mad) == (100.5, 2.5)
    assert robust_z(155.0, history) >= 3.5
    assert abs(robust_z(150.0, [amounts[month(P, -i)] for i in range(24, 12, -1)])) < 3.5  # no season
    assert abs((155.0 - 150.0) / (1.4826 * mad)) < 3.5  # in line with last October
    assert [i["type"] for i in said if i["type"] in ("unusual_change", "seasonal")] == []

    # 170: 13.5 robust deviations from last October too: unusual, and the sentence says both
    amounts, said = run(170.0)
    season_z = (170.0 - 150.0) / (1.4826 * mad)
    assert season_z >= 3.5
    [found] = [i for i in said if i["type"] == "unusual_change"]
    assert found["prior_year_value"] == 150.0
    assert found["season_z"] == pytest.approx(season_z)
    assert found["z"] == pytest.approx(robust_z(170.0, history))

    def plain(t: str) -> str:
        return t.replace("\u00a0", " ").replace("\u202f", " ")

    assert plain(found["text"]) == plain(UNUSUAL_VS_SEASON[locale])
    if locale != "en_US":
        return
    # under both, and between the two (far from each): the words follow the numbers
    for october, words in ((40.0, "€40.00, below €150.00"), (125.0, "€125.00, against €150.00")):
        _, said = run(october)
        assert abs(robust_z(october, history)) >= 3.5
        assert abs((october - 150.0) / (1.4826 * mad)) >= 3.5
        [found] = [i for i in said if i["type"] == "unusual_change"]
        assert found["text"] == (
            f"amount is unusual this period: {words} in October 2025 and a usual €100.50."
        ), found["text"]


# ----------------------------------------------------------------------------- record


def test_record_counts_the_preceding_periods_with_data(tmp_path, make_config):
    # score (an average) is null in months without rows: those are skipped, not counted
    values: dict[str, float | None] = {month(P, -i): float(50 - i) for i in range(20, 0, -1)} | {P: 60.0}
    values[month(P, -3)] = None
    values[month(P, -7)] = None
    rows = [(f"{m}-15", "A", 1.0, 1.0, v) for m, v in values.items() if v is not None]
    results, as_dicts = build(tmp_path, make_config, rows)
    scores = by_month(as_dicts, "score", how="avg")
    count = 0
    for i in range(1, 37):
        x = scores.get(month(P, -i))
        if x is None:
            continue
        if x < 60.0:
            count += 1
        else:
            break
    assert count == 18  # 20 months, 2 without data
    [found] = of(results, "record", kpi="score")
    assert (found["kind"], found["periods"]) == ("high", count)


def test_a_low_record_and_none_under_the_minimum(tmp_path, make_config):
    values = {month(P, -i): float(10 + i) for i in range(14, 0, -1)} | {P: 5.0}
    results, _ = build(tmp_path, make_config, monthly(values, month(P, -14)))
    [found] = of(results, "record", kpi="score")
    assert (found["kind"], found["periods"]) == ("low", 14)

    values = {month(P, -i): float(10 + i) for i in range(11, 0, -1)} | {P: 5.0}
    results, _ = build(tmp_path, make_config, monthly(values, month(P, -11)))
    assert of(results, "record", kpi="score") == []  # 11 < record_min_periods 12


def _partial(
    tmp_path: Path, make_config: Callable[[str], Config], last_visit_day: str, label: str = ""
) -> Any:
    """Two daily sources, 30 months: ``sales`` up to 31 October, ``visits`` up to
    ``last_visit_day`` of October. Both KPIs fall to a low never seen before (a record, and far
    outside the history's spread: unusual)."""
    months = [month(P, -i) for i in range(30, 0, -1)]
    sales = [(f"{m}-{d:02d}", "A", 100.0 + i % 5, 1.0, 1.0) for i, m in enumerate(months) for d in (1, 28)]
    sales += [(f"{P}-01", "A", 10.0, 1.0, 1.0), (f"{P}-31", "A", 10.0, 1.0, 1.0)]
    write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], sales)
    visits = [(f"{m}-{d:02d}", 1000 + 10 * (i % 7)) for i, m in enumerate(months) for d in (1, 28)]
    visits += [(f"{P}-01", 200), (f"{P}-{last_visit_day}", 200)]
    write_csv(tmp_path / "visits.csv", ["date", "n"], visits)
    config = make_config(
        yaml(kpis="  traffic: {formula: visits}").replace(
            "metrics:\n",
            "  visits: {type: csv, path: visits.csv, date_column: date"
            + (f", label: {label}" if label else "")
            + "}\n"
            "metrics:\n  visits: {source: visits, agg: sum, column: n}\n",
        )
    )
    return compute(config, Period.parse(P, "month"), _now())


def test_no_record_nor_unusual_change_over_an_incomplete_period(tmp_path, make_config):
    """A source whose data stops before the period's end (allowed by
    require_complete_period: false): its KPIs' half-month is neither a record nor unusual
    against whole months; the KPIs of a complete source still are. With the data up to the
    last day, the same KPI is both: the rule, not the numbers, removed them."""
    partial = _partial(tmp_path, make_config, "15").to_dict()
    whole = 2 * 10.0  # sales, complete: far below every month's 200-208
    assert [i["periods"] for i in of(partial, "record", kpi="amount")] == [30]
    assert of(partial, "unusual_change", kpi="amount")[0]["value"] == whole
    assert of(partial, "record", kpi="traffic") == []
    assert of(partial, "unusual_change", kpi="traffic") == []
    assert partial["kpis"]["traffic"]["value"] == 400.0  # the number itself is still reported

    complete = _partial(tmp_path, make_config, "31").to_dict()
    assert [(i["kind"], i["periods"]) for i in of(complete, "record", kpi="traffic")] == [("low", 30)]
    assert of(complete, "unusual_change", kpi="traffic")[0]["value"] == 400.0


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        (
            "en_US",
            "Incomplete data: Site visits has data up to Oct 15, 2026, and the period ends on Oct 31, "
            "2026; its figures cover part of the period.",
        ),
        (
            "fr_FR",
            "Données incomplètes : Site visits a des données jusqu'au 15 oct. 2026, et la période se "
            "termine le 31 oct. 2026 ; ses chiffres ne couvrent qu'une partie de la période.",
        ),
    ],
)
def test_an_incomplete_source_is_said_at_the_top_of_the_summary_and_the_digest(
    tmp_path, make_config, locale, expected
):
    """results.json says which sources reach the period's end (by their frequency); the report's
    summary and the digest (HTML and text) warn of each one that does not, by its label."""
    from html import unescape

    from reporter.render.digest import build_digest
    from reporter.render.html import render_html
    from tests.conftest import with_locale

    typed = _partial(tmp_path, make_config, "15", label="Site visits")
    # by hand: visits stops on 15 October, a daily source; sales (monthly) reaches 1 October
    assert {s.name: s.complete for s in typed.sources} == {"sales": True, "visits": False}
    config = with_locale(make_config((tmp_path / "report.yaml").read_text(encoding="utf-8")), locale)
    html = unescape(re.sub(r"\s+", " ", render_html(config, typed)))
    summary = html[html.index('id="summary"') : html.index("</section>", html.index('id="summary"'))]
    assert f'<p class="alert">{expected}</p>' in summary
    digest = build_digest(config, typed)
    # and in the inbox: the subject and the hidden preview line say it first
    words = {"en_US": "incomplete data", "fr_FR": "données incomplètes"}[locale]
    assert digest.subject.endswith(f" · {words}")
    assert f'">{words[:1].upper() + words[1:]}' in digest.html  # the preheader, first
    assert expected in re.sub(r"\s+", " ", unescape(digest.html))  # a no-break space as a space
    assert expected in re.sub(r"\s+", " ", digest.text)
    assert all(len(line) <= 78 for line in digest.text.splitlines())

    complete = _partial(tmp_path, make_config, "31", label="Site visits")
    assert "incomplete" not in render_html(config, complete).lower()
    assert "incomplete" not in build_digest(config, complete).text.lower()
    assert "incomplete" not in build_digest(config, complete).subject


def test_a_period_past_the_data_has_no_contributors_and_says_no_data(tmp_path, make_config):
    """The data ends in September; October (as a preview may show it) has no value: no
    contributors sentence invents a change "from" its keys, and the warning says no data at all."""
    from reporter.render.html import render_html
    from tests.conftest import with_locale

    spec = {k: v for k, v in CONTRIB.items() if k != P}
    write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], _regions(spec))
    config = make_config(yaml(breakdowns="  - {kpi: amount, by: region}"))
    results = compute(config, Period.parse(P, "month"), _now())
    assert results.kpis["amount"].value is None
    assert [i for i in results.insights if i["type"] == "contributors"] == []
    html = render_html(with_locale(config, "en_US"), results)
    assert "No data: sales has no data in this period; its data ends on Sep 10, 2026." in html


def test_an_incomplete_period_asks_for_no_record_look_back():
    from reporter.compute import insights

    config = Config.model_validate(
        {
            "report": {"id": "t", "title": "T", "timezone": "Europe/Paris", "locale": "en_US"},
            "sources": {"s": {"type": "csv", "path": "s.csv", "date_column": "d"}},
            "metrics": {"m": {"source": "s", "agg": "sum", "column": "x"}},
            "kpis": {"k": {"formula": "m"}},
        }
    )
    period = Period.parse(P, "month")
    values = {period.shift(-i): {"k": 100.0 + i} for i in range(1, 25)} | {period: {"k": 1.0}}
    older, reaching = insights.record_history_needed(config, period, values)
    assert (len(older), reaching) == (12, ["k"])
    assert insights.record_history_needed(config, period, values, skip={"k"}) == ([], [])


# ----------------------------------------------------------------------------- provisional values


def _settling(tmp_path: Path, make_config: Callable[[str], Config], settles: int) -> Any:
    """20 months of a rate near 0.5 that drops in its last two months (quotes still open): a
    record low and unusual, unless the KPI says its last 2 periods are not final yet."""
    rates = {month(P, -i): 0.5 + 0.01 * (i % 3) for i in range(20, 1, -1)} | {month(P, -1): 0.3, P: 0.2}
    rows = [(f"{m}-15", "A", 100.0 * r, 100.0, 1.0) for m, r in rates.items()]
    settles_after = f", settles_after: {settles}" if settles else ""
    obj = "  - {id: close, title: Close, kpi: close, target: {value: 0.6}, owner: S, due: 2026-12-31}"
    return build(
        tmp_path,
        make_config,
        rows,
        kpis=f"  close: {{formula: amount / deals, format: percent{settles_after}}}",
        objectives=obj,
    )


def test_a_value_that_settles_is_provisional_and_never_a_record(tmp_path, make_config):
    """settles_after: 2: the KPI is provisional, no record, unusual or seasonal is claimed for
    it, and pacing reads the values before its last 2 periods. Without it, the same numbers give
    both insights and a trend through the provisional values."""
    results, rows = _settling(tmp_path, make_config, 0)
    assert results["kpis"]["close"]["provisional"] is False
    # (its parts' moves, ratio_parts, are a why: beside the point here)
    told = ("pacing", "ratio_parts")
    assert [i["type"] for i in results["insights"] if i.get("kpi") == "close" and i["type"] not in told] == [
        "unusual_change",
        "record",
    ]
    rate = {m: a / d for m, a, d in ((r["date"][:7], r["amount"], r["deals"]) for r in rows)}

    def seasonal(last: str) -> float:  # December last year × the last 3 months / a year earlier
        three = [month(last, -i) for i in range(3)]
        return rate["2025-12"] * sum(rate[m] for m in three) / sum(rate[month(m, -12)] for m in three)

    [pace] = of(results, "pacing", objective="close")
    assert (pace["method"], pace["projected"]) == ("seasonal", pytest.approx(seasonal(P)))

    results, rows = _settling(tmp_path, make_config, 2)
    assert results["kpis"]["close"]["provisional"] is True
    assert [i["type"] for i in results["insights"] if i.get("kpi") == "close"] == ["pacing"]
    [pace] = of(results, "pacing", objective="close")
    # the last 3 months before September and October (provisional): June to August
    assert (pace["method"], pace["projected"]) == ("seasonal", pytest.approx(seasonal(month(P, -2))))
    assert seasonal(month(P, -2)) != pytest.approx(seasonal(P))
    assert results["kpis"]["amount"]["provisional"] is False


@pytest.mark.parametrize(("locale", "word"), [("fr_FR", "provisoire"), ("en_US", "provisional")])
def test_a_provisional_value_is_marked_in_the_report_and_the_digest(tmp_path, make_config, locale, word):
    from reporter.render.digest import build_digest
    from reporter.render.html import render_html
    from tests.conftest import with_locale

    _settling(tmp_path, make_config, 2)
    config = with_locale(make_config((tmp_path / "report.yaml").read_text(encoding="utf-8")), locale)
    typed = compute(config, Period.parse(P, "month"), _now())
    html = re.sub(r"\s+", " ", render_html(config, typed))
    scorecard = html[html.index('class="scorecard"') :]
    assert (
        f'20,0 %<div class="sub">{word}</div>' in scorecard
        or f'20.0%<div class="sub">{word}</div>' in scorecard
    )
    # the summary's row, the scorecard's value and its two changes (not judged: no ✓ or ✗)
    assert html.count(f'<div class="sub">{word}</div>') == 4
    assert re.search(rf'<span class="delta provisional">[^<]*</span><div class="sub">{word}</div>', scorecard)
    assert f" ({word})</dd>" in html  # the objective's page
    digest = build_digest(config, typed)
    assert re.search(rf'<span class="vs"[^>]*>{word}</span>', digest.html)
    assert f"({word}) /" in digest.text
    assert word not in build_digest(*_unsettled(tmp_path, make_config, locale)).text


def _unsettled(tmp_path: Path, make_config: Callable[[str], Config], locale: str) -> tuple[Config, Any]:
    from tests.conftest import with_locale

    _settling(tmp_path, make_config, 0)
    config = with_locale(make_config((tmp_path / "report.yaml").read_text(encoding="utf-8")), locale)
    return config, compute(config, Period.parse(P, "month"), _now())


# ----------------------------------------------------------------------------- contributors


def _regions(spec: dict[str, dict[str, tuple[float, float]]]) -> list[tuple[str, str, float, float, float]]:
    """spec: month → region → (amount, deals); one row each."""
    return [(f"{m}-10", region, a, d, 1.0) for m, regs in spec.items() for region, (a, d) in regs.items()]


CONTRIB = {
    month(P, -12): {"North": (100.0, 2.0), "South": (50.0, 1.0)},
    month(P, -1): {"North": (300.0, 3.0), "South": (200.0, 4.0), "East": (40.0, 1.0), "West": (70.0, 2.0)},
    P: {"North": (420.0, 6.0), "South": (150.0, 2.0), "West": (90.0, 1.0), "Centre": (15.0, 1.0)},
}


def _sums(rows: list[dict[str, Any]], when: str, field: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for r in rows:
        if r["date"].startswith(when):
            out[r["region"]] += r[field]
    return out


def grouped_parts(now: dict[str, float], before: dict[str, float], parts: dict[str, float]) -> list[tuple]:
    """Keys in both periods by themselves; those in one period only summed as ("new", count,
    the key when alone) or ("gone", …); largest |part| first: (name, part) pairs."""
    new = [k for k in parts if k not in before]
    gone = [k for k in parts if k not in now]
    out = [(k, v) for k, v in parts.items() if k in now and k in before]
    out += [
        ((g, len(ks), ks[0] if len(ks) == 1 else None), sum(parts[k] for k in ks))
        for g, ks in (("new", new), ("gone", gone))
        if ks
    ]
    return sorted(out, key=lambda kv: (-abs(kv[1]), isinstance(kv[0], tuple), str(kv[0])))


def named(item: dict[str, Any]) -> Any:
    return (item["group"], item["count"], item.get("key")) if "group" in item else item["key"]


def test_contributors_of_a_sum_add_up_to_the_change(tmp_path, make_config):
    results, rows = build(
        tmp_path, make_config, _regions(CONTRIB), breakdowns="  - {kpi: amount, by: region}"
    )
    for vs, base in (("previous", month(P, -1)), ("prior_year", month(P, -12))):
        now, before = _sums(rows, P, "amount"), _sums(rows, base, "amount")
        parts = {k: now.get(k, 0.0) - before.get(k, 0.0) for k in {*now, *before}}  # absent = 0
        total = sum(now.values()) - sum(before.values())
        top = grouped_parts(now, before, parts)[:3]
        [found] = of(results, "contributors", breakdown="amount_by_region", vs=vs)
        assert found["change"] == pytest.approx(total)
        assert sum(v for _, v in grouped_parts(now, before, parts)) == pytest.approx(total)
        assert [(named(i), i["part"], i["share"]) for i in found["items"]] == [
            (k, pytest.approx(v), pytest.approx(v / total)) for k, v in top
        ]
    # East is only in the previous month, Centre only in P: summed as gone and new (one each)
    [prev] = of(results, "contributors", breakdown="amount_by_region", vs="previous")
    assert prev["change"] == pytest.approx(675.0 - 610.0)
    assert [(named(i), i["part"]) for i in prev["items"]] == [
        ("North", 120.0),
        ("South", -50.0),
        (("gone", 1, "East"), -40.0),
    ]
    # a year before: North and South only; West and Centre are new (+105), the 3 parts add up
    [year] = of(results, "contributors", breakdown="amount_by_region", vs="prior_year")
    assert [(named(i), i["part"]) for i in year["items"]] == [
        ("North", 320.0),
        (("new", 2, None), 105.0),
        ("South", 100.0),
    ]
    assert math.fsum(i["part"] for i in year["items"]) == year["change"]


def test_contributors_say_from_mostly_from_or_biggest_moves(tmp_path, make_config):
    """The keys listed make the whole change: "from". They do not, but all went the way the
    total did: "mostly from". Some went against it: they are the "largest contributions"."""
    from reporter.run.stages import describe

    def sentence(spec: dict[str, dict[str, tuple[float, float]]]) -> str:
        write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], _regions(spec))
        config = make_config(yaml(breakdowns="  - {kpi: amount, by: region}"))
        results = describe(config, compute(config, Period.parse(P, "month"), _now()))
        return next(
            i["text"] for i in results.insights if i["type"] == "contributors" and i["vs"] == "previous"
        )

    before = {"North": (300.0, 3.0), "South": (200.0, 4.0)}
    two = {month(P, -1): before, P: {"North": (420.0, 6.0), "South": (150.0, 2.0)}}
    assert (
        sentence(two) == "amount +\u2060€70.00 on the previous period, from North (+\u2060€120.00) and "
        "South (−\u2060€50.00)."
    )
    # North +120, South +60, West +20 listed; East +10 and Centre +15 also moved up: 225 in all
    five = {
        month(P, -1): {**before, "East": (40.0, 1.0), "West": (70.0, 2.0)},
        P: {
            "North": (420.0, 6.0),
            "South": (260.0, 2.0),
            "West": (90.0, 1.0),
            "East": (50.0, 1.0),
            "Centre": (15.0, 1.0),
        },
    }
    assert sentence(five) == (
        "amount +\u2060€225.00 on the previous period, mostly from North (+\u2060€120.00), "
        "South (+\u2060€60.00) and West (+\u2060€20.00)."
    )
    # North +120, South −50, East −40, West +20, Centre +15: +65, two of the three against it
    assert sentence(CONTRIB) == (
        "amount +\u2060€65.00 on the previous period; largest contributions to that change: "
        "North (+\u2060€120.00), South (−\u2060€50.00) and "
        "East (gone, −\u2060€40.00)."
    )


GROUPS = {
    month(P, -12): {"North": (100.0, 1.0), "South": (50.0, 1.0), "Highlands": (150.0, 1.0)},
    month(P, -1): {
        "North": (300.0, 1.0),
        "South": (200.0, 1.0),
        "East": (40.0, 1.0),
        "West": (70.0, 1.0),
        "Isles": (30.0, 1.0),
    },
    P: {"North": (420.0, 1.0), "South": (150.0, 1.0), "Centre": (60.0, 1.0), "Coast": (25.0, 1.0)},
}


@pytest.mark.parametrize(
    ("locale", "fr_label", "several_gone", "several_new", "one_gone"),
    [
        (
            "en_US",
            "Région",
            "3 region values gone (−\u2060$140.00)",
            "2 new region values (+\u2060$85.00)",
            "Highlands (region gone, −\u2060$150.00)",
        ),
        (
            "fr_FR",
            "Région",
            "3 valeurs de région disparues (−140,00 $US)",
            "2 nouvelles valeurs de région (+85,00 $US)",
            "Highlands (valeur de région disparue, −150,00 $US)",
        ),
        (  # French elides "de" before a vowel
            "fr_FR",
            "Origine",
            "3 valeurs d'origine disparues (−140,00 $US)",
            "2 nouvelles valeurs d'origine (+85,00 $US)",
            "Highlands (valeur d'origine disparue, −150,00 $US)",
        ),
    ],
)
def test_new_and_gone_keys_are_named_by_the_breakdowns_label(
    tmp_path, make_config, locale, fr_label, several_gone, several_new, one_gone
):
    """Keys in one period only, worded with what the breakdown's label says they are (regions),
    in the plural and gender of the language: 3 gone and 2 new against September, 1 gone (named)
    against last October. The label itself is never inflected."""
    from reporter.run.stages import describe

    write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], _regions(GROUPS))
    text = yaml(breakdowns=f"  - {{kpi: amount, by: region, label: {{en: Region, fr: {fr_label}}}}}")
    text = text.replace("locale: en_US}", f"locale: {locale}, currency: USD}}")
    config = make_config(text)
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    said = {i["vs"]: i for i in results.insights if i["type"] == "contributors"}
    # by hand: East 40 + West 70 + Isles 30 gone, Centre 60 + Coast 25 new; Highlands 150 gone
    gone, new = [i for i in said["previous"]["items"] if "group" in i]
    assert (gone["group"], gone["count"], gone["part"]) == ("gone", 3, -(40.0 + 70.0 + 30.0))
    assert (new["group"], new["count"], new["part"]) == ("new", 2, 60.0 + 25.0)
    [alone] = [i for i in said["prior_year"]["items"] if "group" in i]
    assert (alone["group"], alone["count"], alone["key"], alone["part"]) == ("gone", 1, "Highlands", -150.0)

    def plain(t: str) -> str:
        return t.replace("\u00a0", " ").replace("\u202f", " ")

    assert plain(several_gone) in plain(said["previous"]["text"])
    assert plain(several_new) in plain(said["previous"]["text"])
    assert plain(one_gone) in plain(said["prior_year"]["text"])
    assert "entr" not in said["previous"]["text"] + said["prior_year"]["text"]  # entries, entrées


# Fair and Expo are held every October (there last year, not in September): they recur; Launch
# is in none of the two earlier periods: it is new
RECURRING = {
    month(P, -12): {"North": (100.0, 1.0), "Fair": (80.0, 2.0), "Expo": (40.0, 1.0), "Summit": (20.0, 1.0)},
    month(P, -1): {"North": (300.0, 3.0), "South": (200.0, 4.0)},
    P: {
        "North": (420.0, 6.0),
        "South": (150.0, 2.0),
        "Fair": (90.0, 1.0),
        "Expo": (35.0, 1.0),
        "Launch": (60.0, 1.0),
    },
}


@pytest.mark.parametrize(
    ("locale", "returning", "new", "of_ratio"),
    [
        (
            "en_US",
            "2 entries also in October 2025 (+\u2060$125.00; $120.00 then)",
            "Launch (new, +\u2060$60.00)",
            "2 entries also in October 2025 (+",
        ),
        (
            "fr_FR",
            "2 entrées déjà présentes en octobre 2025 (+125,00 $US ; 120,00 $US alors)",
            "Launch (nouvelle entrée, +60,00 $US)",
            "2 entrées déjà présentes en octobre 2025 (+",
        ),
    ],
)
def test_keys_absent_last_period_but_there_a_year_ago_recur_and_are_not_new(
    tmp_path, make_config, locale, returning, new, of_ratio
):
    """On the previous period, a key absent from it but present one year before P is
    ``returning`` (its value a year ago as ``prior_year``, for a KPI that is the metric itself),
    never "new": only a key absent from both is new. Against last year nothing changes: the
    groups are new and gone as before."""
    from reporter.run.stages import describe

    rows = _regions(RECURRING)
    write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], rows)
    text = yaml(breakdowns="  - {kpi: amount, by: region}\n  - {kpi: per_deal, by: region}")
    config = make_config(text.replace("locale: en_US}", f"locale: {locale}, currency: USD}}"))
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    as_dicts = [dict(zip(("date", "region", "amount", "deals", "score"), r, strict=True)) for r in rows]
    now, before, year_ago = (_sums(as_dicts, m, "amount") for m in (P, month(P, -1), month(P, -12)))
    back = sorted(k for k in now if k not in before and k in year_ago)
    fresh = sorted(k for k in now if k not in before and k not in year_ago)
    assert (back, fresh) == (["Expo", "Fair"], ["Launch"])
    said = {(i["kpi"], i["vs"]): i for i in results.insights if i["type"] == "contributors"}
    previous = said[("amount", "previous")]
    groups = {i["group"]: i for i in previous["items"] if "group" in i}
    assert groups["returning"]["count"] == 2
    assert "key" not in groups["returning"]
    assert groups["returning"]["part"] == pytest.approx(sum(now[k] for k in back))
    assert groups["returning"]["prior_year"] == pytest.approx(sum(year_ago[k] for k in back))
    assert (groups["new"]["count"], groups["new"]["key"]) == (1, "Launch")
    assert groups["new"]["part"] == pytest.approx(now["Launch"])

    def plain(t: str) -> str:
        return t.replace("\u00a0", " ").replace("\u202f", " ")

    assert plain(returning) in plain(previous["text"]), previous["text"]
    assert plain(new) in plain(previous["text"]), previous["text"]
    # a ratio: the keys' part of the rate is not a value of theirs, so no value a year ago
    ratio = said[("per_deal", "previous")]
    [back_of_ratio] = [i for i in ratio["items"] if i.get("group") == "returning"]
    assert back_of_ratio["prior_year"] is None
    assert plain(of_ratio) in plain(ratio["text"]), ratio["text"]
    assert "then" not in ratio["text"]
    assert "alors" not in ratio["text"]
    # against last year: Launch, Fair... are all in P; Summit is gone, South new (September is
    # not looked at): nothing is called returning
    for kpi in ("amount", "per_deal"):
        assert all(i.get("group") != "returning" for i in said[(kpi, "prior_year")]["items"])


@pytest.mark.parametrize(
    ("locale", "new"),
    [
        ("en_US", "Launch (new campaign, +\u2060$60.00)"),
        ("fr_FR", "Launch (campagne\u00a0: nouveauté, +60,00\u00a0$US)"),
    ],
)
def test_one_new_key_of_a_labelled_breakdown_reads_naturally(tmp_path, make_config, locale, new):
    """A single new key says what it is with the breakdown's label, never "nouvelle valeur de
    campagne": French cannot make "nouveau" agree with a label whose gender it does not know,
    so the label stands alone and "nouveauté" carries the news."""
    from reporter.run.stages import describe

    write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], _regions(RECURRING))
    text = yaml(breakdowns="  - {kpi: amount, by: region, label: {en: Campaign, fr: Campagne}}")
    config = make_config(text.replace("locale: en_US}", f"locale: {locale}, currency: USD}}"))
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    [said] = [i for i in results.insights if i["type"] == "contributors" and i["vs"] == "previous"]
    plain = said["text"].replace("\u202f", " ")
    assert new.replace("\u202f", " ") in plain, said["text"]
    assert "valeur" not in plain


# Fair and Expo ran in September, not in October, a year ago as now: they leave every year.
# Pop was there last October (its absence now is news) and Promo a year before September was
# not (no yearly pattern): both are gone
LEAVING = {
    month(P, -13): {"North": (100.0, 1.0), "Fair": (80.0, 1.0), "Expo": (30.0, 1.0)},
    month(P, -12): {"North": (110.0, 1.0), "Pop": (20.0, 1.0)},
    month(P, -1): {
        "North": (300.0, 1.0),
        "Fair": (90.0, 1.0),
        "Expo": (40.0, 1.0),
        "Pop": (25.0, 1.0),
        "Promo": (15.0, 1.0),
    },
    P: {"North": (320.0, 1.0)},
}


@pytest.mark.parametrize(
    ("locale", "several", "one"),
    [
        (
            "en_US",
            "amount −\u2060€150.00 on the previous period, from 2 entries off season, as in October 2025 "
            "(−\u2060€130.00), 2 entries gone (−\u2060€40.00) and North (+\u2060€20.00).",
            "Fair (−\u2060€90.00; off season, as in October 2025)",
        ),
        (
            "fr_FR",
            "amount : −150,00 € sur la période précédente, du fait de 2 entrées hors saison, comme en "
            "octobre 2025 (−130,00 €), 2 entrées disparues (−40,00 €) et North (+20,00 €).",
            "Fair (−90,00 € ; hors saison, comme en octobre 2025)",
        ),
    ],
)
def test_keys_that_leave_every_year_at_this_time_are_off_season_not_gone(
    tmp_path, make_config, locale, several, one
):
    """On the previous period, a key there the previous period only, which was there one year
    before it and absent one year before P (it left the same way last year: a trade fair in
    September, never in October), is expected to be absent: ``off_season``, never "gone". A key
    that was there a year ago (its absence is news), or without that yearly pattern, is gone."""
    from reporter.run.stages import describe

    def run(spec: dict[str, dict[str, tuple[float, float]]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        rows = _regions(spec)
        write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], rows)
        config = make_config(yaml(breakdowns="  - {kpi: amount, by: region}").replace("en_US", locale))
        results = describe(config, compute(config, Period.parse(P, "month"), _now()))
        [said] = [i for i in results.insights if i["type"] == "contributors" and i["vs"] == "previous"]
        return said, [dict(zip(("date", "region", "amount"), r[:3], strict=False)) for r in rows]

    said, rows = run(LEAVING)
    now, before, year_ago, before_year_ago = (
        _sums(rows, m, "amount") for m in (P, month(P, -1), month(P, -12), month(P, -13))
    )
    left = [k for k in before if k not in now]
    seasonal = sorted(k for k in left if k not in year_ago and k in before_year_ago)
    gone = sorted(k for k in left if k not in seasonal)
    assert (seasonal, gone) == (["Expo", "Fair"], ["Pop", "Promo"])
    change = sum(now.values()) - sum(before.values())
    assert said["change"] == pytest.approx(change)
    assert [(named(i), i["part"]) for i in said["items"]] == [
        (("off_season", 2, None), pytest.approx(-sum(before[k] for k in seasonal))),
        (("gone", 2, None), pytest.approx(-sum(before[k] for k in gone))),
        ("North", pytest.approx(now["North"] - before["North"])),
    ]

    def plain(t: str) -> str:
        return t.replace("\u00a0", " ").replace("\u202f", " ")

    assert plain(said["text"]) == plain(several)
    # one key alone is named
    spec = {m: {k: v for k, v in regs.items() if k != "Expo"} for m, regs in LEAVING.items()}
    said, _ = run(spec)
    [alone] = [i for i in said["items"] if i.get("group") == "off_season"]
    assert (alone["count"], alone["key"], alone["part"]) == (1, "Fair", -90.0)
    assert plain(one) in plain(said["text"]), said["text"]


def test_contributors_of_a_ratio_use_the_whole_denominator(tmp_path, make_config):
    results, rows = build(
        tmp_path, make_config, _regions(CONTRIB), breakdowns="  - {kpi: per_deal, by: region}"
    )
    for vs, base in (("previous", month(P, -1)), ("prior_year", month(P, -12))):
        a_now, a_base = _sums(rows, P, "amount"), _sums(rows, base, "amount")
        b_now, b_base = sum(_sums(rows, P, "deals").values()), sum(_sums(rows, base, "deals").values())
        parts = {k: a_now.get(k, 0.0) / b_now - a_base.get(k, 0.0) / b_base for k in {*a_now, *a_base}}
        kpi_change = sum(a_now.values()) / b_now - sum(a_base.values()) / b_base
        top = grouped_parts(a_now, a_base, parts)[:3]
        [found] = of(results, "contributors", breakdown="per_deal_by_region", vs=vs)
        assert found["change"] == pytest.approx(kpi_change)
        assert found["change"] == pytest.approx(
            results["kpis"]["per_deal"]["value"]
            - (results["kpis"]["per_deal"]["previous" if vs == "previous" else "prior_year"])
        )
        assert [(named(i), i["part"]) for i in found["items"]] == [(k, pytest.approx(v)) for k, v in top]


# leads (amount) and won (deals) by source: North's own conversion falls 20 % → 15 %
RATES = {
    month(P, -1): {
        "North": (100.0, 20.0),
        "South": (100.0, 10.0),
        "West": (50.0, 5.0),
        "East": (100.0, 10.0),
    },
    P: {"North": (100.0, 15.0), "South": (100.0, 30.0), "West": (50.0, 11.0), "East": (100.0, 11.0)},
}


@pytest.mark.parametrize(
    ("locale", "said"),
    [
        (
            "en_US",
            "Conversion +6.3 pts on the previous period; largest contributions to that change: "
            "South (+5.7 pts), West (+1.7 pts) and North (−1.4 pts).",
        ),
        (
            "fr_FR",
            "Conversion : +6,3 pts sur la période précédente ; principales contributions à cette "
            "variation : South (+5,7 pts), West (+1,7 pts) et North (−1,4 pts).",
        ),
    ],
)
def test_a_rates_contributors_are_worded_as_contributions(tmp_path, make_config, locale, said):
    """A rate's parts are each key's contribution to the whole rate's change (won_k / all
    leads), not the key's own rate: North's conversion fell 5 points (20 % → 15 %) and pulled
    the total down by 1.4. "biggest moves: North (−1.4 pts)" read as North's conversion down
    1.4 points; the sentence names them contributions to the change."""
    from reporter.run.stages import describe

    write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], _regions(RATES))
    text = yaml(
        kpis="  conversion: {label: Conversion, formula: deals / amount, format: percent}",
        breakdowns="  - {kpi: conversion, by: region}",
    ).replace("locale: en_US}", f"locale: {locale}}}")
    config = make_config(text)
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    [found] = [i for i in results.insights if i["type"] == "contributors" and i["vs"] == "previous"]
    # by hand: 350 leads in each month; won 45 → 67
    leads = 350.0
    assert found["change"] == pytest.approx(67 / leads - 45 / leads)
    parts = {k: (RATES[P][k][1] - RATES[month(P, -1)][k][1]) / leads for k in RATES[P]}
    assert [(i["key"], i["part"]) for i in found["items"]] == [
        (k, pytest.approx(parts[k])) for k in ("South", "West", "North")
    ]
    own_north = RATES[P]["North"][1] / 100 - RATES[month(P, -1)]["North"][1] / 100
    assert own_north == pytest.approx(-0.05)  # not the −1.4 points said
    assert found["text"].replace("\u00a0", " ") == said


@pytest.mark.parametrize(
    ("decimals", "said"),
    [
        (None, "amount +\u2060€40 on the previous period, from North (+\u2060€400) and South (−\u2060€360)."),
        (
            1,
            "amount +\u2060€40.3 on the previous period, from North (+\u2060€400.0) and "
            "South (−\u2060€359.7).",
        ),
    ],
)
def test_a_sentences_amounts_are_written_as_the_kpi_is(tmp_path, make_config, decimals, said):
    """The amount is €3,540.30 in P, written without cents (none above 1,000): its change and
    its parts are too, not "+€40.30 … South (−€359.70)" beside a scorecard that says €3,540.
    With ``decimals: 1`` on the KPI, every number of the sentence has one decimal."""
    from reporter.run.stages import describe

    spec = {
        month(P, -1): {"North": (3000.0, 1.0), "South": (500.0, 1.0)},
        P: {"North": (3400.0, 1.0), "South": (140.3, 1.0)},
    }
    write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], _regions(spec))
    text = yaml(breakdowns="  - {kpi: amount, by: region}")
    if decimals is not None:
        text = text.replace(
            "amount: {formula: amount, format: currency}",
            "amount: {formula: amount, format: currency, decimals: 1}",
        )
    config = make_config(text)
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    [found] = [i for i in results.insights if i["type"] == "contributors" and i["vs"] == "previous"]
    # by hand: 3 540.30 − 3 500 = +40.30; North +400, South 140.30 − 500 = −359.70
    assert found["change"] == pytest.approx(40.3)
    assert [(i["key"], i["part"]) for i in found["items"]] == [
        ("North", pytest.approx(400.0)),
        ("South", pytest.approx(-359.7)),
    ]
    assert found["text"] == said


def test_a_projection_is_written_as_the_kpi_is(tmp_path, make_config):
    """An amount falling by €333.20 a month to €1,001 in October, on a line: the trend says
    €334.60 in December; the sentence writes it as the scorecard writes the amount, in whole
    euros ("€335"), and its goal too ("€500", not "€500.00")."""
    from reporter.run.stages import describe

    line = {month(P, -i): 1001.0 + 333.2 * i for i in range(5, -1, -1)}
    write_csv(
        tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], monthly(line, month(P, -5))
    )
    obj = "  - {id: low, title: Low, kpi: amount, target: {value: 500}, owner: S, due: 2026-12-31}"
    config = make_config(yaml(objectives=obj))
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    [found] = [i for i in results.insights if i["type"] == "pacing"]
    assert found["projected"] == pytest.approx(1001.0 - 2 * 333.2)  # 334.60, on the line
    assert found["text"] == "amount — on the current trend: €335 for a goal of €500 in December."


def test_a_zero_total_change_has_null_shares(tmp_path, make_config):
    spec = {
        month(P, -1): {"North": (100.0, 1.0), "South": (50.0, 1.0)},
        P: {"North": (80.0, 1.0), "South": (70.0, 1.0)},
    }
    results, _ = build(tmp_path, make_config, _regions(spec), breakdowns="  - {kpi: amount, by: region}")
    [found] = of(results, "contributors", breakdown="amount_by_region", vs="previous")
    assert found["change"] == 0
    assert [(i["key"], i["part"], i["share"]) for i in found["items"]] == [
        ("North", pytest.approx(-20.0), None),
        ("South", pytest.approx(20.0), None),
    ]


def test_no_contributors_for_other_kpi_shapes(tmp_path, make_config):
    results, _ = build(
        tmp_path,
        make_config,
        _regions(CONTRIB),
        kpis="  doubled: {formula: amount * 2}\n  avg_score: {formula: score}",
        breakdowns="  - {kpi: doubled, by: region}\n  - {kpi: avg_score, by: region}",
    )
    assert of(results, "contributors") == []
    assert of(results, "concentration") == []


# ----------------------------------------------------------------------------- concentration


def test_concentration_of_the_largest_key(tmp_path, make_config):
    results, rows = build(
        tmp_path, make_config, _regions(CONTRIB), breakdowns="  - {kpi: amount, by: region}"
    )
    now = _sums(rows, P, "amount")
    key, top = max(now.items(), key=lambda kv: kv[1])
    share = top / sum(now.values())
    assert share >= 0.5
    assert len(now) >= 3
    [found] = of(results, "concentration", breakdown="amount_by_region")
    assert (found["key"], found["share"]) == (key, pytest.approx(share))


def test_no_concentration_with_two_keys_or_an_even_spread(tmp_path, make_config):
    two = {P: {"North": (900.0, 1.0), "South": (100.0, 1.0)}, month(P, -1): {"North": (1.0, 1.0)}}
    results, _ = build(tmp_path, make_config, _regions(two), breakdowns="  - {kpi: amount, by: region}")
    assert of(results, "concentration") == []
    even = {P: {"North": (40.0, 1.0), "South": (35.0, 1.0), "West": (25.0, 1.0)}}
    results, _ = build(tmp_path, make_config, _regions(even), breakdowns="  - {kpi: amount, by: region}")
    assert of(results, "concentration") == []


# ----------------------------------------------------------------------------- pacing


def test_pacing_of_a_cumulative_objective(tmp_path, make_config):
    deals = {month("2026-01", i): float(20 + 2 * i) for i in range(10)}  # January to October
    rows = [(f"{m}-12", "A", 1.0, v, 1.0) for m, v in deals.items()]
    obj = """  - {id: deals-year, title: Deals, kpi: deals, target: {value: 25}, cumulative: true,
     owner: Sales, due: 2026-12-31}"""
    results, as_dicts = build(tmp_path, make_config, rows, objectives=obj)
    ytd = sum(r["deals"] for r in as_dicts if r["date"] >= "2026-01")
    elapsed, left = 10, 2  # January→October; November, December
    run_rate = ytd / elapsed
    goal = 25 * (elapsed + left)
    [found] = of(results, "pacing", objective="deals-year")
    assert found["elapsed"] == elapsed
    assert found["periods_left"] == left
    assert found["run_rate"] == pytest.approx(run_rate)
    assert found["projected"] == pytest.approx(ytd + run_rate * left)
    assert found["goal"] == pytest.approx(goal)
    assert found["needed_per_period"] == pytest.approx((goal - ytd) / left)
    assert found["on_pace"] is (ytd + run_rate * left >= goal)


def theil_sen(ys: list[float], ahead: int) -> float:
    """Theil–Sen by hand: the median of the pairwise slopes, the median of the intercepts."""
    from itertools import combinations

    slope = statistics.median((ys[j] - ys[i]) / (j - i) for i, j in combinations(range(len(ys)), 2))
    intercept = statistics.median(y - slope * x for x, y in enumerate(ys))
    return intercept + slope * (len(ys) - 1 + ahead)


def test_pacing_projects_the_trend_and_judges_by_direction(tmp_path, make_config):
    """A {value} target with no value a year before the due period: the Theil–Sen line through
    the last 6 values, read 3 periods past the latest (January), against the target of January;
    the latest month's reversal (50 → 70) bends a median of slopes less than a least-squares line."""
    values = {
        month(P, -i): float(v)
        for i, v in zip(range(8, -1, -1), [90, 80, 75, 70, 66, 60, 58, 52, 70], strict=True)
    }
    rows = monthly(values, month(P, -8))
    obj = """  - {id: cost-down, title: Cost, kpi: cost, target: {value: 45}, owner: Ops, due: 2027-01-20}
  - {id: now-due, title: Now, kpi: cost, target: {value: 45}, owner: Ops, due: 2026-10-31}"""
    # a cost: lower is better
    results, as_dicts = build(
        tmp_path, make_config, rows, kpis="  cost: {formula: amount, direction: down}", objectives=obj
    )
    amounts = by_month(as_dicts, "amount")
    last6 = [amounts[month(P, -i)] for i in range(5, -1, -1)]
    left = 3  # November, December, January
    projected = theil_sen(last6, left)
    slope, intercept = statistics.linear_regression(range(6), last6)
    assert abs(projected - (intercept + slope * (5 + left))) > 5  # not the least-squares line
    [found] = of(results, "pacing", objective="cost-down")
    assert found["method"] == "trend"
    assert found["periods_left"] == left
    assert found["projected"] == pytest.approx(projected)
    assert found["goal"] == 45.0
    assert found["needed_per_period"] is None
    assert found["on_pace"] is (projected <= 45.0)  # down: at or under the goal
    assert of(results, "pacing", objective="now-due") == []  # due within P


SURVEY = """
report: {id: s, title: S, timezone: Europe/Paris, locale: LOCALE}
sources:
  survey: {type: csv, path: survey.csv, date_column: date}
metrics:
  responses: {source: survey, agg: count}
  promoters: {source: survey, agg: count, where: "score >= 9"}
  detractors: {source: survey, agg: count, where: "score <= 6"}
  spent: {source: survey, agg: sum, column: spent}
  budget: {source: survey, agg: sum, column: budget}
kpis:
  nps: {label: NPS, formula: (promoters - detractors) / responses * 100}
  detractor_share: {label: Detractor share, formula: detractors / responses, format: percent, direction: down}
  budget_used: {label: Budget used, formula: spent / budget, format: percent, direction: down}
objectives:
  - {id: nps, title: N, kpi: nps, target: {value: 45}, owner: S, due: 2026-12-31}
  - {id: det, title: D, kpi: detractor_share, target: {value: 0.05}, owner: S, due: 2026-12-31}
  - {id: bud, title: B, kpi: budget_used, target: {value: 1.0}, owner: S, due: 2026-12-31}
quality: {require_complete_period: false}
"""
# May to October 2026, 50 answers a month: (promoters, detractors), the rest passive (score 8);
# each answer spends (0.9 + 0.05 i) of a budget of 1
SURVEYED = [(30, 10), (33, 8), (36, 6), (39, 4), (42, 2), (45, 1)]


@pytest.mark.parametrize(
    ("locale", "ceiling", "floor"),
    [
        (
            "en_US",
            "NPS — on the current trend: it would reach its ceiling, 100.0, by December, for a goal of 45.0.",
            "Detractor share — on the current trend: it would fall to its floor, 0.0%, by December, "
            "for a goal of 5.0%.",
        ),
        (
            "fr_FR",
            "NPS — selon la tendance actuelle\u00a0: atteindrait son plafond, 100,0, d'ici décembre, pour un "
            "objectif de 45,0.",
            "Detractor share — selon la tendance actuelle\u00a0: tomberait à son plancher, "
            "0,0\u00a0%, d'ici décembre, pour un objectif de 5,0\u00a0%.",
        ),
    ],
)
def test_a_projection_never_passes_what_the_kpi_can_be(tmp_path, make_config, locale, ceiling, floor):
    """An NPS ((promoters − detractors) / answers × 100) is within [−100, 100], a share of the
    answers (detractors / answers) within [0 %, 100 %]: a trend that runs past the bound stops
    at it and says so, written as the NPS is (88.0 in October: one decimal, "100.0" as "45.0").
    A ratio of sums (spend / budget) proves no bound: an overspend of 125 %
    is a real projection, kept as it is."""
    from reporter.run.stages import describe

    rows = []
    for i, (promoters, detractors) in enumerate(SURVEYED):
        day = f"{month(P, i - 5)}-15"
        for k in range(50):
            score = 10 if k < promoters else 3 if k >= 50 - detractors else 8
            rows.append((day, score, 0.9 + 0.05 * i, 1.0))
    write_csv(tmp_path / "survey.csv", ["date", "score", "spent", "budget"], rows)
    config = make_config(SURVEY.replace("LOCALE", locale))
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    paced = {i["objective"]: i for i in results.insights if i["type"] == "pacing"}
    # by hand, from the rows: each month's NPS and detractor share, their Theil–Sen line in December
    nps = [(p - d) / 50 * 100 for p, d in SURVEYED]
    share = [d / 50 for _, d in SURVEYED]
    assert theil_sen(nps, 2) > 100
    assert theil_sen(share, 2) < 0
    assert (paced["nps"]["projected"], paced["nps"]["limit"], paced["nps"]["on_pace"]) == (
        100.0,
        "ceiling",
        True,
    )
    assert (paced["det"]["projected"], paced["det"]["limit"], paced["det"]["on_pace"]) == (0.0, "floor", True)
    assert paced["nps"]["text"] == ceiling
    assert paced["det"]["text"] == floor
    used = [sum(r[2] for r in rows if r[0][:7] == month(P, i - 5)) / 50 for i in range(6)]
    assert paced["bud"]["projected"] == pytest.approx(theil_sen(used, 2))
    assert paced["bud"]["projected"] == pytest.approx(1.25)
    assert "limit" not in paced["bud"]


SEASONS = [100, 90, 95, 110, 120, 130, 125, 140, 150, 170, 210, 260]  # November to October


def _two_years() -> dict[str, float | None]:
    """25 months up to P, the second year 10 % above the first, one month in three a bit off."""
    first = {month(P, i - 24): float(v) for i, v in enumerate([*SEASONS, *SEASONS])}
    return {
        m: (v * 1.1 if m > month(P, -12) else v) + (3.0 if i % 3 == 0 else 0.0)
        for i, (m, v) in enumerate(first.items())
    } | {P: 290.0}


def test_pacing_against_the_target_of_the_due_period_with_the_season(tmp_path, make_config):
    """Due in December: the goal is December's target, not October's. {change_vs_prior_year: x}:
    December last year × (1 + x); the projection follows last year's season: December last
    year × (the last 3 months) / (the same 3 months a year earlier)."""
    values = _two_years()
    obj = """  - {id: grow, title: Grow, kpi: amount, target: {change_vs_prior_year: 0.15}, owner: S,
     due: 2026-12-31}
  - {id: plan, title: Plan, kpi: amount, target: {by_period: {2026-10: 999, 2026-12: 240}}, owner: S,
     due: 2026-12-31}
  - {id: unplanned, title: U, kpi: amount, target: {by_period: {2026-10: 999}}, owner: S, due: 2026-12-31}
  - {id: momentum, title: M, kpi: amount, target: {change_vs_previous: 0.05}, owner: S, due: 2026-12-31}"""
    results, rows = build(tmp_path, make_config, monthly(values, month(P, -24)), objectives=obj)
    amounts = by_month(rows, "amount")
    december_last_year = amounts["2025-12"]
    last3 = sum(amounts[m] for m in ("2026-08", "2026-09", "2026-10"))
    year_earlier = sum(amounts[m] for m in ("2025-08", "2025-09", "2025-10"))
    projected = december_last_year * last3 / year_earlier
    [grow] = of(results, "pacing", objective="grow")
    assert grow["method"] == "seasonal"
    assert grow["goal"] == pytest.approx(december_last_year * 1.15)
    assert grow["goal"] != pytest.approx(results["objectives"][0]["target"])  # October's target
    assert grow["projected"] == pytest.approx(projected)
    assert grow["on_pace"] is (projected >= december_last_year * 1.15)
    [plan] = of(results, "pacing", objective="plan")
    assert (plan["goal"], plan["projected"]) == (240.0, pytest.approx(projected))
    assert of(results, "pacing", objective="unplanned") == []  # no target for December
    assert of(results, "pacing", objective="momentum") == []  # {change_vs_previous}: no goal


def test_pacing_without_last_years_due_period(tmp_path, make_config):
    """No value a year before D: a {change_vs_prior_year} target has no goal (no pacing, not
    one with a null goal); a {value} target is paced by the trend. With 2 values, no trend;
    values on one line (every pairwise slope equal) are projected on that line exactly."""
    obj = """  - {id: grow, title: Grow, kpi: amount, target: {change_vs_prior_year: 0.15}, owner: S,
     due: 2026-12-31}
  - {id: fixed, title: Fixed, kpi: amount, target: {value: 100}, owner: S, due: 2026-12-31}"""
    line = {month(P, -i): 10.0 + 3.0 * (9 - i) for i in range(9, -1, -1)}  # January → October
    results, rows = build(tmp_path, make_config, monthly(line, month(P, -9)), objectives=obj)
    assert of(results, "pacing", objective="grow") == []
    [fixed] = of(results, "pacing", objective="fixed")
    amounts = by_month(rows, "amount")
    last6 = [amounts[month(P, -i)] for i in range(5, -1, -1)]
    assert fixed["method"] == "trend"
    assert fixed["projected"] == pytest.approx(theil_sen(last6, 2))
    assert fixed["projected"] == pytest.approx(10.0 + 3.0 * (9 + 2))  # the line itself, in December
    two = {month(P, -1): 50.0, P: 60.0}
    results, _ = build(tmp_path, make_config, monthly(two, month(P, -1)), objectives=obj)
    assert of(results, "pacing") == []  # n = 2 < 3


def test_pacing_reads_nothing_after_the_reports_period(tmp_path, make_config):
    """A report on a past period (October 2026) whose data goes on to December 2026, for an
    objective due in December 2027: D − 1 year is December 2026, after P. Its value is not
    read: no goal for {change_vs_prior_year}, and a {value} target is paced by the trend over
    the last 6 values up to P, not by last year's season (which would need December 2026)."""
    values = _two_years() | {month(P, 1): 400.0, month(P, 2): 500.0}  # November, December 2026
    obj = """  - {id: grow, title: Grow, kpi: amount, target: {change_vs_prior_year: 0.15}, owner: S,
     due: 2027-12-31}
  - {id: fixed, title: Fixed, kpi: amount, target: {value: 300}, owner: S, due: 2027-12-31}"""
    results, rows = build(tmp_path, make_config, monthly(values, month(P, -24)), objectives=obj)
    assert of(results, "pacing", objective="grow") == []  # December 2026 × 1.15 is not known in October
    [fixed] = of(results, "pacing", objective="fixed")
    amounts = by_month(rows, "amount")
    last6 = [amounts[month(P, -i)] for i in range(5, -1, -1)]
    assert fixed["method"] == "trend"
    assert fixed["periods_left"] == 14  # November 2026 → December 2027
    assert fixed["projected"] == pytest.approx(theil_sen(last6, 14))


def _per_deal(amounts: dict[str, float], deals: dict[str, float]) -> list[tuple[Any, ...]]:
    """One row a month on the 15th: ``amounts[m]`` over ``deals[m]`` deals (0 deals: a division
    by zero, per_deal has no value that month)."""
    return [(f"{m}-15", "A", amounts[m], deals[m], 1.0) for m in amounts]


def test_no_pacing_for_an_objective_without_a_value(tmp_path, make_config):
    """No deal in P: per_deal (amount / deals) is 0 / 0, null, and so is the objective's value
    ("No data"). No pace is claimed for it, however its earlier months run: no insight, no
    sentence "on the current trend: … for a goal of …" on page 1."""
    from reporter.run.stages import describe

    months = [month(P, -i) for i in range(6, -1, -1)]
    amounts = dict(zip(months, [0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 0.0], strict=True))
    deals = dict(zip(months, [1.0, 3.0, 3.0, 2.0, 5.0, 50.0, 0.0], strict=True))
    obj = "  - {id: per-deal, title: Per deal, kpi: per_deal, target: {value: 15}, owner: S, due: 2026-12-31}"
    columns = ["date", "region", "amount", "deals", "score"]
    write_csv(tmp_path / "sales.csv", columns, _per_deal(amounts, deals))
    config = make_config(yaml(objectives=obj))
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    assert results.kpis["per_deal"].value is None
    assert results.kpis["per_deal"].status == "no_data"
    assert [i for i in results.insights if i["type"] == "pacing"] == []
    assert not [i for i in results.insights if "trend" in i["text"] or "goal" in i["text"]]


def test_a_month_without_a_value_is_a_gap_in_the_trend_not_a_zero(tmp_path, make_config):
    """per_deal = amount / deals, no deal in P − 3 (a division by zero: null). The trend runs
    through the 6 values before it at their own months (x = −7, −6, −5, −4, −2, −1, 0 with
    one missing), never through a 0 for the empty month, nor with the months after the gap
    moved one earlier. By hand: the median of the pairwise slopes and of the intercepts."""
    from itertools import combinations

    months = [month(P, -i) for i in range(7, -1, -1)]
    per = [10.0, 12.0, 13.0, 15.0, None, 19.0, 20.0, 23.0]
    amounts = {m: (v or 0.0) * 4 for m, v in zip(months, per, strict=True)}
    deals = {m: (0.0 if v is None else 4.0) for m, v in zip(months, per, strict=True)}
    obj = "  - {id: per-deal, title: Per deal, kpi: per_deal, target: {value: 40}, owner: S, due: 2027-01-20}"
    columns = ["date", "region", "amount", "deals", "score"]
    write_csv(tmp_path / "sales.csv", columns, _per_deal(amounts, deals))
    config = make_config(yaml(objectives=obj))
    results = compute(config, Period.parse(P, "month"), _now()).to_dict()
    assert results["kpis"]["per_deal"]["series"][-4]["value"] is None  # P − 3
    points = [(x, y) for x, y in zip(range(-7, 1), per, strict=True) if y is not None][-6:]
    assert [x for x, _ in points] == [-6, -5, -4, -2, -1, 0]
    slope = statistics.median((b[1] - a[1]) / (b[0] - a[0]) for a, b in combinations(points, 2))
    intercept = statistics.median(y - slope * x for x, y in points)
    expected = intercept + slope * 3  # January: 3 months after P
    [found] = of(results, "pacing", objective="per-deal")
    assert found["method"] == "trend"
    assert found["projected"] == pytest.approx(expected)
    assert found["projected"] != pytest.approx(theil_sen([y for _, y in points], 3))  # the gap kept
    zeros = [0.0 if v is None else v for v in per][-6:]
    assert found["projected"] != pytest.approx(theil_sen(zeros, 3))  # not a zero


def test_a_cumulative_objective_due_in_a_later_fiscal_year_is_not_paced(tmp_path, make_config):
    """The year-to-date total restarts in January: October 2026's total says nothing of a
    total due in December 2027 (nor in June 2027). Due in December 2026, it is paced."""
    deals = {month("2025-01", i): float(20 + i) for i in range(22)}  # January 2025 to October 2026
    rows = [(f"{m}-12", "A", 1.0, v, 1.0) for m, v in deals.items()]
    obj = """  - {id: later, title: Deals, kpi: deals, target: {value: 25}, cumulative: true,
     owner: Sales, due: 2027-12-31}
  - {id: june, title: Deals, kpi: deals, target: {value: 25}, cumulative: true, owner: Sales, due: 2027-06-30}
  - {id: this-year, title: Deals, kpi: deals, target: {value: 25}, cumulative: true,
     owner: Sales, due: 2026-12-31}"""
    results, _ = build(tmp_path, make_config, rows, objectives=obj)
    assert of(results, "pacing", objective="later") == []
    assert of(results, "pacing", objective="june") == []
    [this_year] = of(results, "pacing", objective="this-year")
    assert (this_year["elapsed"], this_year["periods_left"]) == (10, 2)


def test_insights_can_be_switched_off_and_are_ranked_by_score(tmp_path, make_config):
    history = [100, 104, 98, 101, 97, 103, 100, 96, 105, 99, 102, 95, 101]
    values = {month(P, i - len(history)): float(v) for i, v in enumerate(history)} | {P: 160.0}
    results, _ = build(tmp_path, make_config, monthly(values, month(P, -13)))
    scores = [i["score"] for i in results["insights"]]
    assert scores == sorted(scores, reverse=True)
    assert scores
    results, _ = build(
        tmp_path, make_config, monthly(values, month(P, -13)), extra="insights: {enabled: false}"
    )
    assert results["insights"] == []


def test_an_equal_value_ends_a_record(tmp_path, make_config):
    values = {month(P, -i): float(40 - i) for i in range(20, 0, -1)} | {P: 60.0}
    values[month(P, -15)] = 60.0  # not strictly below: the run stops there
    results, _ = build(tmp_path, make_config, monthly(values, month(P, -20)))
    [found] = of(results, "record", kpi="score")
    assert (found["kind"], found["periods"]) == ("high", 14)


# ----------------------------------------------------------------------------- sentences

NUMBER = re.compile(r"\d[\d\s\u202f\u00a0.,]*\d|\d")


@pytest.mark.parametrize("locale", ["fr_FR", "en_US"])
def test_every_number_a_sentence_says_is_in_its_insight(locale):
    """Each sentence's numbers, once the names it quotes (KPI labels, keys) are taken out, are
    the insight's own fields as the report formats them, and nothing else."""
    from reporter.config import load_config
    from reporter.config.labels import Labels
    from reporter.render.context import Formatter, lcfirst
    from reporter.run.stages import describe
    from tests.conftest import DEMO

    config = load_config(DEMO, env={})
    config = config.model_copy(update={"report": config.report.model_copy(update={"locale": locale})})
    results = describe(config, compute(config, Period.parse("2026-10", "month"), _now()))
    fmt = Formatter(locale, config.report.currency, config.report.timezone)
    assert results.insights
    types = set()
    for insight in results.insights:
        types.add(insight["type"])
        text = insight["text"]
        kpi = results.kpis[insight["kpi"]]
        for name in [
            kpi.label,
            *(str(i["key"]) for i in insight.get("items", []) if "key" in i),
            str(insight.get("key")),
            fmt.period("2025-10", "2025-10-01", "month"),  # when a returning key was there
            # a ratio's parts, named inside the sentence ("dépenses marketing +33 018 €")
            *(lcfirst(Labels(config).metric(p["name"])) for p in insight.get("parts", [])),
        ]:
            text = text.replace(name, " ")
        allowed: set[str] = set()
        numbers = [v for k, v in insight.items() if isinstance(v, int | float) and not isinstance(v, bool)]
        numbers += [
            i[f]
            for i in insight.get("items", [])
            for f in ("part", "share", "count", "prior_year")
            if i.get(f) is not None
        ]
        numbers += [p[f] for p in insight.get("parts", []) for f in ("value", "previous", "change")]
        for v in numbers:
            for shown in (
                fmt.value(v, kpi.format),
                fmt.value(abs(v), kpi.format),
                fmt.value(v, "number", 1),
                fmt.value(v, "integer"),
                fmt.attainment(v),
            ):
                allowed |= set(NUMBER.findall(shown))
        said = [n.strip() for n in NUMBER.findall(text)]
        assert said, text  # every sentence carries at least one of its numbers
        assert set(said) <= {a.strip() for a in allowed}, (text, insight)
    assert types == {
        "unusual_change",
        "seasonal",
        "record",
        "contributors",
        "pacing",
        "concentration",
        "ratio_parts",
    }


@pytest.mark.parametrize(
    ("locale", "march", "december"),
    [
        ("fr_FR", "mars 2027", "décembre 2027"),
        ("en_US", "March 2027", "December 2027"),
        ("de_DE", "März 2027", "Dezember 2027"),
        ("es_ES", "marzo de 2027", "diciembre de 2027"),
        ("it_IT", "marzo 2027", "dicembre 2027"),
    ],
)
def test_a_due_month_in_another_year_is_named_with_its_year(tmp_path, make_config, locale, march, december):
    """October 2026, a fiscal year starting in April: a cumulative objective due in March 2027
    (the same fiscal year) ends "at the end of March 2027", and the goal of a trend due in
    December 2027 is December 2027's, not "December" (which reads as this December)."""
    from reporter.run.stages import describe

    deals = {month(P, -i): 20.0 + i for i in range(8, -1, -1)}
    rows = [(f"{m}-12", "A", 1.0, v, 1.0) for m, v in deals.items()]
    write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], rows)
    obj = """  - {id: fiscal, title: D, kpi: deals, target: {value: 25}, cumulative: true, owner: S,
     due: 2027-03-31}
  - {id: far, title: F, kpi: deals, target: {value: 30}, owner: S, due: 2027-12-31}
  - {id: near, title: N, kpi: deals, target: {value: 30}, owner: S, due: 2026-12-31}"""
    text = yaml(objectives=obj).replace("locale: en_US}", f"locale: {locale}, fiscal_year_start: 4}}")
    config = make_config(text)
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    said = {i["objective"]: i["text"] for i in results.insights if i["type"] == "pacing"}
    assert said["fiscal"].count(march) == 1, said["fiscal"]
    assert said["far"].endswith(f" {december}."), said["far"]
    assert "2026" not in said["near"], said["near"]  # this year's December: its name alone


def test_the_newsletter_starters_november_names_no_october_campaign(tmp_path):
    """The newsletter starter's campaigns are one send each ("Weekly news 2026-10-19"): none
    recurs, so November's click rate changed from campaigns that are new and campaigns that are
    gone, never "mostly from" October's sends."""
    import datetime as dt

    from reporter.config import load_config
    from reporter.init import init_report
    from reporter.run.stages import describe

    init_report(tmp_path, "newsletter", now=dt.datetime(2026, 12, 3, tzinfo=dt.UTC))
    config = load_config(tmp_path / "report.yaml", env={})
    results = describe(config, compute(config, Period.parse("2026-11", "month"), _now()))
    said = [i for i in results.insights if i["type"] == "contributors"]
    assert said
    for insight in said:
        assert {item.get("group") for item in insight["items"]} <= {"new", "gone"}
        assert "2026-10" not in insight["text"], insight["text"]
        assert "2026-11" not in insight["text"], insight["text"]
    [previous] = [i for i in said if i["vs"] == "previous"]
    assert previous["text"].startswith("Click rate ")
    assert " campaign values gone (" in previous["text"]  # the breakdown's label: Campaign
    assert " new campaign values (" in previous["text"]


@pytest.mark.parametrize(
    ("objective", "first"),
    [
        ("", "score"),
        ("  - {id: o, title: O, kpi: per_deal, target: {value: 1}, owner: S, due: 2026-10-31}", "per_deal"),
    ],
)
def test_takeaways_break_ties_by_objective_then_yaml_order(tmp_path, make_config, objective, first):
    """Two records of the same score: the KPI bound to an objective first, else the one written
    first in the YAML (score before per_deal), never the alphabet (per_deal before score)."""
    from reporter.render.context import Formatter
    from reporter.render.insights import takeaways
    from reporter.run.stages import describe

    rows = []
    for i in range(20):
        deals = 10.0 + i % 3
        rows.append((f"{month(P, i - 19)}-15", "A", (100.0 + 10 * i) * deals / 10, deals, 1.0 + i))
    write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], rows)
    config = make_config(yaml(objectives=objective))
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    # by hand: per_deal = 10 + i and score = 1 + i rise every month, 19 months: two records
    records = [(i["kpi"], i["periods"], i["score"]) for i in results.insights if i["type"] == "record"]
    assert sorted(records) == [("per_deal", 19, 3.0), ("score", 19, 3.0)]
    said = takeaways(config, results, Formatter.for_report(config.report))
    assert said[0].startswith({"score": "score:", "per_deal": "per deal:"}[first])
    assert len(said) == 2


def test_takeaways_tell_each_event_once_with_its_why(tmp_path, make_config):
    """amount's pace (off pace), amount's record and per_deal's record (amount / deals): the pace
    is told, and so is amount's record (a KPI taken for its pacing only does not count as told),
    joined with its biggest contributor; per_deal's record reads amount again and is left out."""
    from reporter.render.context import Formatter
    from reporter.render.insights import takeaways
    from reporter.run.stages import describe

    rows = []
    for i in range(20):
        day = f"{month(P, i - 19)}-15"
        rows += [(day, "North", 100.0 + 10 * i, 1.0, 1.0), (day, "South", 50.0 + i, 1.0, 1.0)]
    write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], rows)
    obj = "  - {id: big, title: Big, kpi: amount, target: {value: 10000}, owner: S, due: 2026-12-31}"
    config = make_config(yaml(objectives=obj, breakdowns="  - {kpi: amount, by: region}"))
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    types = {(i["type"], i["kpi"]) for i in results.insights}
    assert {
        ("pacing", "amount"),
        ("record", "amount"),
        ("record", "per_deal"),
        ("contributors", "amount"),
    } <= types
    [pace] = [i for i in results.insights if i["type"] == "pacing"]
    assert pace["on_pace"] is False
    # by hand: the best-scored contributors are last year's (+132 on 228, against +11 on 349):
    # North 290 − 170 = +120, South 69 − 57 = +12; both regions every month
    said = takeaways(config, results, Formatter.for_report(config.report))
    assert said == [
        pace["text"],
        "amount: the highest in 19 months. +\u2060€132.00 on last year, of which North (+\u2060€120.00).",
    ]


SPEND = """
report: {id: b, title: B, timezone: Europe/Paris, locale: LOCALE}
sources:
  spend: {type: csv, path: spend.csv, date_column: date, frequency: monthly}
metrics:
  spend: {source: spend, agg: sum, column: spend}
  budget: {source: spend, agg: sum, column: budget}
kpis:
  spend: {label: Spend, formula: spend, format: currency, direction: neutral}
  used: {label: Budget used, formula: spend / budget, format: percent, direction: down}
objectives:
  - {id: cap, title: Within budget, kpi: used, target: {value: 1.0}, owner: S, due: 2026-12-31}
breakdowns:
  - {kpi: spend, by: campaign}
quality: {require_complete_period: false}
"""
# the budget used in the 19 months before October, all under October's 120 % (300 / 250)
USED = [0.80, 1.10, 0.85, 1.05, 0.90, 1.00, 0.95, 1.08, 0.82, 1.02, 0.88, 1.06, 0.92, 0.98, 0.86, 1.04, 0.94]
USED += [1.01, 0.97]


@pytest.mark.parametrize(
    ("locale", "first"),
    [
        (
            "en_US",
            "Budget used: the highest in 19 months. Above its target of 100.0%. Spend +\u2060€{change} "
            "on the previous period, of which Fair (new, +\u2060€200.00).",
        ),
        (
            "fr_FR",
            "Budget used\u00a0: le plus haut depuis 19 mois. Au-dessus de sa cible de 100,0\u00a0%. "
            "Spend\u00a0: +{change}\u00a0€ sur la période précédente, dont Fair (nouvelle entrée, "
            "+200,00\u00a0€).",
        ),
    ],
)
def test_a_budget_overspend_is_never_the_takeaway_left_out(tmp_path, make_config, locale, first):
    """October's spend triples (a trade fair): an unusual spend, scored far above the budget
    used's record high (120 %, over its 100 % cap). Both read the spend, one takeaway per event:
    the overspend is the one told, with its target and the spend's why; the milder sentence
    (the spend is unusual) is the one left out."""
    from reporter.render.context import Formatter
    from reporter.render.insights import takeaways
    from reporter.run.stages import describe

    rows = []
    for i, used in enumerate(USED):
        spend = NOISE[i % 12]
        rows.append((f"{month(P, i - 19)}-01", "Always", spend, spend / used))
    rows += [(f"{P}-01", "Always", 100.0, 125.0), (f"{P}-01", "Fair", 200.0, 125.0)]
    write_csv(tmp_path / "spend.csv", ["date", "campaign", "spend", "budget"], rows)
    config = make_config(SPEND.replace("LOCALE", locale))
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    # by hand: October's budget used 300 / 250 = 120 %, above every one of the 19 months before
    assert 300.0 / 250.0 > 1.0
    assert all(u < 1.2 for u in USED)
    ranked = [(i["type"], i["kpi"]) for i in results.insights]
    assert ranked.index(("unusual_change", "spend")) < ranked.index(("record", "used"))  # the milder first
    [record] = [i for i in results.insights if i["type"] == "record" and i["kpi"] == "used"]
    assert (record["kind"], record["periods"]) == ("high", 19)
    change = 300.0 - NOISE[18 % 12]  # October's spend against September's
    fmt = Formatter.for_report(config.report)
    said = takeaways(config, results, fmt)
    shown = fmt.value(change, "currency").replace("€", "").strip()
    assert said[0] == first.format(change=shown)
    assert not any(s.startswith(("Spend is unusual", "Spend sort de l'ordinaire")) for s in said), said


@pytest.mark.parametrize(
    ("locale", "said"),
    [
        (
            "en_US",
            "Cost per deal: the highest in 19 months. Above its target of €12.00. "
            "Cost per deal +\u2060€1.00 on the previous period; amount +\u2060€10.00.",
        ),
        (
            "fr_FR",
            "Cost per deal\u00a0: le plus haut depuis 19 mois. Au-dessus de sa cible de 12,00\u00a0€. "
            "Cost per deal\u00a0: +1,00\u00a0€ sur la période précédente\u00a0; amount +10,00\u00a0€.",
        ),
    ],
)
def test_a_ratio_over_its_cap_says_which_part_moved(tmp_path, make_config, locale, said):
    """A cost per deal (amount / deals) that rises a euro a month, to 29 in October, against a
    ceiling of 12, with 10 deals every month: its record high is its takeaway, with its target,
    and, no breakdown telling why, the parts that moved since September: the amount (+10), not
    the deals (unchanged, so not named). A ratio with no objective missed has no parts told."""
    from reporter.render.context import Formatter
    from reporter.render.insights import takeaways
    from reporter.run.stages import describe

    rows = [(f"{month(P, i - 19)}-15", "A", (10.0 + i) * 10, 10.0, 1.0) for i in range(20)]
    write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], rows)
    kpis = "  cost: {label: Cost per deal, formula: amount / deals, format: currency, direction: down}"
    objective = (
        "  - {id: cap, title: Deals under 12, kpi: cost, target: {value: 12}, owner: S, due: 2026-10-31}"
    )
    config = make_config(yaml(kpis=kpis, objectives=objective).replace("locale: en_US", f"locale: {locale}"))
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    # by hand: October 290 / 10 = 29, September 280 / 10 = 28; the amount +10, the deals +0
    (october, september) = rows[-1], rows[-2]
    assert (october[2] / october[3], september[2] / september[3]) == (29, 28)
    assert (october[2] - september[2], october[3] - september[3]) == (10, 0)
    [parts] = [i for i in results.insights if i["type"] == "ratio_parts"]  # not per_deal's: no objective
    assert (parts["kpi"], parts["objective"], parts["value"], parts["previous"], parts["change"]) == (
        "cost",
        "cap",
        29,
        28,
        1,
    )
    assert [(p["name"], p["role"], p["value"], p["previous"], p["change"]) for p in parts["parts"]] == [
        ("amount", "numerator", 290, 280, 10),
        ("deals", "denominator", 10, 10, 0),
    ]
    told = takeaways(config, results, Formatter.for_report(config.report))
    assert told[0] == said


# cost per deal (amount / deals) in the 19 months before October: up and down, 18 at most, so
# October's 15 is no record and, against so wide a spread, nothing unusual
COSTS = [9, 16, 10, 18, 11, 14, 9, 17, 10, 15, 12, 16, 9, 18, 11, 13, 10, 17, 11]


@pytest.mark.parametrize(
    ("locale", "said"),
    [
        (
            "en_US",
            "Cost per deal: €15.00, above its target of €12.00 (€11.00 the previous period): "
            "amount +\u2060€127.00, deals +1.",
        ),
        (
            "fr_FR",
            "Cost per deal\u00a0: 15,00\u00a0€, au-dessus de sa cible de 12,00\u00a0€ "
            "(11,00\u00a0€ la période précédente)\u00a0: amount +127,00\u00a0€, deals +1.",
        ),
    ],
)
def test_a_cost_over_its_ceiling_is_a_takeaway_of_its_own(tmp_path, make_config, locale, said):
    """October's cost per deal is 15 against a ceiling of 12 (lower is better): off track, the
    period's worst news, yet no insight speaks of it (neither a record nor unusual). It is a
    takeaway all the same, the first, in the takeaways' style: its value, its target and the
    previous period's value, and what moved it (the amount and the deals, both up: the amount
    more); the records of the deals and the score follow."""
    from reporter.render.context import Formatter
    from reporter.render.insights import takeaways
    from reporter.run.stages import describe

    rows = []
    for i, cost in enumerate([*COSTS, 15]):
        deals = 10.0 + i
        rows.append((f"{month(P, i - 19)}-15", "A", cost * deals, deals, 1.0 + i))
    write_csv(tmp_path / "sales.csv", ["date", "region", "amount", "deals", "score"], rows)
    kpis = "  cost: {label: Cost per deal, formula: amount / deals, format: currency, direction: down}"
    objective = (
        "  - {id: cap, title: Deals under 12, kpi: cost, target: {value: 12}, owner: S, due: 2026-10-31}"
    )
    config = make_config(yaml(kpis=kpis, objectives=objective).replace("locale: en_US", f"locale: {locale}"))
    results = describe(config, compute(config, Period.parse(P, "month"), _now()))
    # by hand: October 15 × 29 / 29 = 15 against 12, attainment 1 − 3 / 12 = 0.75: off track;
    # September's 11; 18 in the months before, so no record
    assert rows[-1][2] / rows[-1][3] == 15
    assert rows[-2][2] / rows[-2][3] == 11
    assert max(COSTS) > 15
    [objective_result] = results.objectives
    assert (objective_result.status, objective_result.attainment) == ("off_track", pytest.approx(0.75))
    assert not [
        i for i in results.insights if i.get("kpi") == "cost" and i["type"] not in ("pacing", "ratio_parts")
    ]
    # what moved it, by hand: amount 15 × 29 = 435 against 11 × 28 = 308 (+127), deals 29 against 28
    assert (rows[-1][2] - rows[-2][2], rows[-1][3] - rows[-2][3]) == (127, 1)
    records = [i["kpi"] for i in results.insights if i["type"] == "record"]
    assert "score" in records  # 1 + i rises every month: the highest in 19 months
    told = takeaways(config, results, Formatter.for_report(config.report))
    # first: 4 + 3 / 12 = 4.25 against a record's 3
    assert told[0] == said
    # the metrics it reads stay free: the deals' own record high is a fact of its own
    assert [t.split()[0].rstrip(":\xa0") for t in told[1:]] == ["deals", "score"]
