"""The worked examples of docs/numbers.md are what reporter computes: each table of the page is
rebuilt here from rows and checked against the figures the page prints (worked by hand)."""

# ruff: noqa: E501  (the rows and YAML of each example read best one per line)

from __future__ import annotations

import datetime as dt
import re

import pytest

from reporter.compute.database import compute
from reporter.compute.evaluate import attainment, change, change_points, status
from reporter.periods import Period
from reporter.render.context import Formatter
from tests.conftest import ROOT, write_csv

PAGE = (ROOT / "docs" / "numbers.md").read_text(encoding="utf-8")
NOW = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)


def on_page(text: str) -> None:
    """The figure the test checks is the one the page shows (so the two cannot drift apart)."""
    assert text in PAGE, f"docs/numbers.md no longer says: {text}"


def report(tmp_path, make_config, body: str, **kw):
    extra = "".join(f", {k}: {v}" for k, v in kw.items())
    head = "report: {id: r, title: T, timezone: Europe/Paris" + extra + "}\n"
    return make_config(head + "quality: {require_complete_period: false, min_rows: 0}\n" + body)


def test_time_zones_and_default_period(tmp_path, make_config):
    on_page("| `2026-10-31T23:30:00Z` (UTC) | 1 November, 00:30 in Paris | 2026-11 |")
    write_csv(
        tmp_path / "d.csv",
        ["date", "n"],
        [["2026-10-31", 1], ["2026-10-31 23:30:00", 1], ["2026-10-31T23:30:00Z", 1]],
    )
    config = report(
        tmp_path,
        make_config,
        "sources: {s: {type: csv, path: d.csv, date_column: date}}\n"
        "metrics: {n: {source: s, agg: sum, column: n}}\nkpis: {n: {formula: n}}\n",
    )
    october = compute(config, Period.parse("2026-10", "month"), NOW).kpis["n"]
    november = compute(config, Period.parse("2026-11", "month"), NOW).kpis["n"]
    assert (october.value, november.value) == (2.0, 1.0)
    # The default period: 23:30 UTC on 31 October is already November in Paris.
    assert (
        Period.last_complete(dt.datetime(2026, 10, 31, 23, 30, tzinfo=dt.UTC), "month", "Europe/Paris").label
        == "2026-10"
    )
    assert (
        Period.last_complete(dt.datetime(2026, 10, 31, 22, 30, tzinfo=dt.UTC), "month", "Europe/Paris").label
        == "2026-09"
    )


def test_periods_around_p():
    on_page("the prior year of 2026-W53 is\n  2025-W52")
    assert Period.parse("2026-W53", "week").prior_year().label == "2025-W52"
    assert Period.parse("2026-W01", "week").shift(-1).label == "2025-W52"
    assert Period.parse("2026-Q1", "quarter").shift(-1).label == "2025-Q4"
    on_page("the year to date of 2026-W01 (29 December 2025 to\n4 January 2026) is 1–4 January 2026")
    assert Period.parse("2026-W01", "week").ytd_window(1) == (dt.date(2026, 1, 1), dt.date(2026, 1, 4))
    on_page("the year to date of 2026-02 runs from 2025-04-01 to\n2026-02-28")
    assert Period.parse("2026-02", "month").ytd_window(4) == (dt.date(2025, 4, 1), dt.date(2026, 2, 28))


def test_coverage(tmp_path, make_config):
    on_page("| 2025-08 (no rows) | 0 | null | inside the span |")
    rows = [
        ["2025-03-15", 100],
        ["2025-03-31", 300],
        ["2025-07-10", 50],
        ["2025-09-01", 70],
        ["2026-10-31", 10],
    ]
    write_csv(tmp_path / "crm.csv", ["date", "amount"], rows)
    config = report(
        tmp_path,
        make_config,
        "sources: {crm: {type: csv, path: crm.csv, date_column: date}}\n"
        "metrics: {leads: {source: crm, agg: count}, deal: {source: crm, agg: avg, column: amount}}\n"
        "kpis: {leads: {formula: leads}, deal: {formula: deal}}\n",
    )

    def at(label: str) -> tuple[float | None, float | None]:
        k = compute(config, Period.parse(label, "month"), NOW).kpis
        return k["leads"].value, k["deal"].value

    assert at("2025-02") == (None, None)  # wholly before the first row
    assert at("2025-03") == (2.0, 200.0)  # covered from the 15th
    assert at("2025-08") == (0.0, None)  # inside the span, no rows


def test_last_is_the_latest_date_last_row(tmp_path, make_config):
    on_page("→ `cash` for 2026-10 is **119 200**")
    write_csv(
        tmp_path / "bank.csv",
        ["date", "balance"],
        [["2026-10-30", 121000], ["2026-10-31", 118500], ["2026-10-31", 119200]],
    )
    config = report(
        tmp_path,
        make_config,
        "sources: {bank: {type: csv, path: bank.csv, date_column: date}}\n"
        "metrics: {cash: {source: bank, agg: last, column: balance}}\nkpis: {cash: {formula: cash}}\n",
    )
    assert compute(config, Period.parse("2026-10", "month"), NOW).kpis["cash"].value == 119200.0


def test_a_rate_is_a_ratio_of_sums_and_ytd_counts_distinct_over_the_window(tmp_path, make_config):
    on_page("| `leads / sessions` for the period | 40 | 1 100 | **3.6 %** (not 6.5 %) |")
    on_page("| year to date at February | A, B, C, D | **4** (not 5) |")
    write_csv(
        tmp_path / "web.csv",
        ["date", "leads", "sessions"],
        [["2026-10-01", 10, 100], ["2026-10-02", 30, 1000]],
    )
    orders = [
        ["2026-01-05", "A"],
        ["2026-01-06", "B"],
        ["2026-01-20", "C"],
        ["2026-02-03", "A"],
        ["2026-02-04", "D"],
    ]
    write_csv(tmp_path / "orders.csv", ["date", "customer"], orders)
    config = report(
        tmp_path,
        make_config,
        "sources: {web: {type: csv, path: web.csv, date_column: date},\n"
        "          orders: {type: csv, path: orders.csv, date_column: date}}\n"
        "metrics: {leads: {source: web, agg: sum, column: leads}, sessions: {source: web, agg: sum, column: sessions},\n"
        "          customers: {source: orders, agg: count_distinct, column: customer}}\n"
        "kpis: {conversion: {formula: leads / sessions, format: percent}, customers: {formula: customers}}\n",
    )
    conversion = compute(config, Period.parse("2026-10", "month"), NOW).kpis["conversion"].value
    assert conversion == pytest.approx(40 / 1100)
    assert Formatter("en_US", "EUR").value(conversion, "percent") == "3.6%"
    february = compute(config, Period.parse("2026-02", "month"), NOW).kpis["customers"]
    assert (february.value, february.ytd) == (2.0, 4.0)


def test_changes_attainment_and_status():
    on_page("(0.0312 −\n0.0298) / 0.0298 = **+4.7 %**")
    assert Formatter("en_US", "EUR").change(change(0.0312, 0.0298)) == "+4.7%"
    on_page("(−5 000 + 10 000) / 10 000 =\n**+50 %**")
    assert change(-5000, -10000) == 0.5
    on_page("| revenue | up | 126 500 | 115 000 | 1 + 11 500 / 115 000 = **1.10** (110 %) |")
    assert attainment(126500, 115000, "up") == pytest.approx(1.10)
    on_page("| cost per customer | down | 550 | 500 | 1 − 50 / 500 = **0.90**")
    assert attainment(550, 500, "down") == pytest.approx(0.90)
    on_page("| operating result | up | −10 000 | −20 000 | 1 + 10 000 / 20 000 = **1.50** |")
    assert attainment(-10000, -20000, "up") == 1.5
    on_page(
        "With the defaults: 1.10 is on track, 0.95 and 0.90 are at risk (the thresholds are\ninclusive), 0.89 is off track."
    )
    assert [status(v, 100, "up") for v in (110, 95, 90, 89)] == [
        "on_track",
        "at_risk",
        "at_risk",
        "off_track",
    ]
    assert status(95, 100, "up", on_track=0.95, at_risk=0.8) == "on_track"
    assert [status(v, 0, "up") for v in (0, -1)] == ["on_track", "off_track"]
    assert [status(None, 100, "up"), status(5, None, "up")] == ["no_data", "no_target"]


def test_targets_and_cumulative(tmp_path, make_config):
    on_page("`{change_vs_prior_year: 0.15}` gives a target of **115 000** for October\n2026")
    on_page("3 × 50 000 = **150 000**")
    rows = [
        ["2025-10-15", 100000],
        ["2026-01-10", 40000],
        ["2026-02-10", 60000],
        ["2026-03-10", 55000],
        ["2026-10-10", 126500],
    ]
    write_csv(tmp_path / "sales.csv", ["date", "amount"], rows)
    config = report(
        tmp_path,
        make_config,
        "sources: {sales: {type: csv, path: sales.csv, date_column: date}}\n"
        "metrics: {revenue: {source: sales, agg: sum, column: amount}}\nkpis: {revenue: {formula: revenue}}\n"
        "objectives:\n"
        "  - {id: growth, title: G, kpi: revenue, target: {change_vs_prior_year: 0.15}, owner: Me, due: 2026-12-31}\n"
        "  - {id: ytd, title: Y, kpi: revenue, target: {value: 50000}, cumulative: true, owner: Me, due: 2026-12-31}\n",
    )
    october = compute(config, Period.parse("2026-10", "month"), NOW).objectives[0]
    assert october.target == pytest.approx(115000)
    assert (october.attainment, october.status) == (pytest.approx(1.10), "on_track")
    march = compute(config, Period.parse("2026-03", "month"), NOW).objectives[1]
    assert (march.target, march.value) == (150000.0, 155000.0)


def test_breakdown_funnel_and_portfolio(tmp_path, make_config):
    on_page("| Trade show | 20 000 | 12 000 | 0.60 | stop |")
    on_page("| Qualified leads | 90 | 30.0 % |")
    day = "2026-10-05"
    people = [[day, "Alice", 12, 300], [day, "Bob", 9, 450], [day, "Chloé", 3, 50]]
    write_csv(tmp_path / "web.csv", ["date", "salesperson", "leads", "sessions"], people)
    funnel = [[day, 10000, 300, 90, 18]]
    write_csv(tmp_path / "funnel.csv", ["date", "visits", "leads", "mql", "won"], funnel)
    campaigns = [
        [day, "Webinar", 2000, 5000],
        [day, "Search ads", 10000, 9000],
        [day, "Trade show", 20000, 12000],
    ]
    campaigns.append([day, "Partners", 0, 3000])
    write_csv(tmp_path / "campaigns.csv", ["date", "campaign", "cost", "value"], campaigns)
    config = report(
        tmp_path,
        make_config,
        "sources:\n"
        "  web: {type: csv, path: web.csv, date_column: date}\n"
        "  funnel: {type: csv, path: funnel.csv, date_column: date}\n"
        "  campaigns: {type: csv, path: campaigns.csv, date_column: date}\n"
        "metrics:\n"
        "  leads: {source: web, agg: sum, column: leads}\n  sessions: {source: web, agg: sum, column: sessions}\n"
        "  visits: {source: funnel, agg: sum, column: visits}\n  f_leads: {source: funnel, agg: sum, column: leads}\n"
        "  mql: {source: funnel, agg: sum, column: mql}\n  won: {source: funnel, agg: sum, column: won}\n"
        "  cost: {source: campaigns, agg: sum, column: cost}\n  value: {source: campaigns, agg: sum, column: value}\n"
        "kpis: {conversion: {formula: leads / sessions, format: percent}}\n"
        "funnel: [{label: Visits, metric: visits}, {label: Leads, metric: f_leads},\n"
        "         {label: Qualified leads, metric: mql}, {label: Customers, metric: won}]\n"
        "portfolio: {by: campaign, cost: cost, value: value}\n",
    )
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    assert [(s.value, s.step_rate) for s in results.funnel] == [
        (10000.0, None),
        (300.0, pytest.approx(0.03)),
        (90.0, pytest.approx(0.30)),
        (18.0, pytest.approx(0.20)),
    ]
    assert [(p.key, p.ratio and round(p.ratio, 2), p.verdict) for p in results.portfolio] == [
        ("Webinar", 2.5, "keep"),
        ("Search ads", 0.9, "improve"),
        ("Trade show", 0.6, "stop"),
        ("Partners", None, "review"),
    ]


def test_top_n_other_row(tmp_path, make_config):
    on_page("| with `top: 1`, **other** (Alice + Bob) | 21 | 750 | **2.8 %** |")
    write_csv(
        tmp_path / "web.csv",
        ["date", "salesperson", "leads", "sessions"],
        [["2026-10-05", "Alice", 12, 300], ["2026-10-05", "Bob", 9, 450], ["2026-10-05", "Chloé", 3, 50]],
    )
    config = report(
        tmp_path,
        make_config,
        "sources: {web: {type: csv, path: web.csv, date_column: date}}\n"
        "metrics: {leads: {source: web, agg: sum, column: leads}, sessions: {source: web, agg: sum, column: sessions}}\n"
        "kpis: {conversion: {formula: leads / sessions}}\nbreakdowns: [{kpi: conversion, by: salesperson, top: 1}]\n",
    )
    rows = compute(config, Period.parse("2026-10", "month"), NOW).breakdowns["conversion_by_salesperson"]
    assert [(r.key, r.other, round(r.value, 3)) for r in rows] == [
        ("Chloé", False, 0.06),
        ("other", True, 0.028),
    ]


def test_quality_gate_due_dates(tmp_path, make_config):
    on_page("| `weekly` | the Monday of the period's last week | 2026-10-26 |")
    on_page("| `monthly` (a statement dated the 1st) | the 1st of the period's last month | 2026-10-01 |")
    write_csv(tmp_path / "w.csv", ["date", "n"], [["2026-10-26", 1]])
    write_csv(tmp_path / "m.csv", ["date", "n"], [["2026-10-01", 1]])
    write_csv(tmp_path / "d.csv", ["date", "n"], [["2026-10-30", 1]])
    config = make_config(
        "report: {id: r, title: T}\n"
        "sources: {w: {type: csv, path: w.csv, date_column: date, frequency: weekly},\n"
        "          m: {type: csv, path: m.csv, date_column: date, frequency: monthly},\n"
        "          d: {type: csv, path: d.csv, date_column: date}}\n"
        "metrics: {n: {source: w, agg: sum, column: n}}\nkpis: {n: {formula: n}}\n"
    )
    quality = compute(config, Period.parse("2026-10", "month"), NOW).quality
    complete = {c.source: (c.passed, c.required) for c in quality.checks if c.check == "complete_period"}
    assert complete == {"w": (True, "2026-10-26"), "m": (True, "2026-10-01"), "d": (False, "2026-10-31")}
    on_page("source 'web' has data up to\n2026-10-30; the period ends 2026-10-31")
    detail = next(c.detail for c in quality.checks if c.source == "d" and c.check == "complete_period")
    assert detail == "source 'd' has data up to 2026-10-30; the period ends 2026-10-31"
    assert quality.passed is False


@pytest.mark.parametrize(
    ("fmt", "value", "fr", "en"),
    [
        ("number", 3.14159, "3,14", "3.14"),
        ("number", 42.42, "42,4", "42.4"),
        ("integer", 1234, "1\u202f234", "1,234"),
        ("currency", 126500, "126\u202f500\u00a0€", "€126,500"),
        ("currency", 0.0, "0\u00a0€", "€0"),
        ("percent", 0.0312, "3,1\u00a0%", "3.1%"),
        ("ratio", 1.234, "1,23", "1.23"),
        ("days", 12.34, "12,3 j", "12.3 days"),
    ],
)
def test_how_numbers_are_written(fmt, value, fr, en):
    row = next(line for line in PAGE.splitlines() if line.startswith(f"| `{fmt}` |"))
    plain = re.sub(r"[\u202f\u00a0]", " ", fr)
    assert f"`{plain}` / `{en}`" in row or f"`{plain}`" in row
    assert Formatter("fr_FR", "EUR").value(value, fmt) == fr
    assert Formatter("en_US", "EUR").value(value, fmt) == en


def test_rates_change_in_points():
    on_page("0.189 − 0.131 = 0.058, written **+5.8 pts** (`+5,8\npts` in French, `+5,8 Pp.` in German")
    assert change_points(0.189, 0.131) == pytest.approx(0.058)
    assert Formatter("en_US", "EUR").points(change_points(0.189, 0.131)) == "+5.8\u00a0pts"
    assert Formatter("fr_FR", "EUR").points(change_points(0.189, 0.131)) == "+5,8\u00a0pts"
    assert Formatter("de_DE", "EUR").points(change_points(0.189, 0.131)) == "+5,8\u00a0Pp."
    on_page('a conversion\nrate going from 13.1 % to 18.9 % is "+44.3 %"')
    assert Formatter("en_US", "EUR").change(change(0.189, 0.131)) == "+44.3%"
    on_page('A cost per customer that rose by 150.8 % is therefore "▲ +150.8 % ✗" in red')
    cac = {"change": 1.508, "change_pp": None, "format": "currency", "direction": "down"}
    assert Formatter("en_US", "EUR").delta_text(cac) == "▲\u00a0+150.8%\u00a0✗"
    assert str(Formatter("en_US", "EUR").delta(cac)).startswith('<span class="delta worse">')


def test_biggest_moves_example(tmp_path, make_config):
    """The page's table: amounts at 1 000 (conversion 131 of 1 000) except where it says."""
    on_page("| amount A | up | 10 | 500 | +4 900 % | — | no: 10 is under 5 % × 1 000 = 50 |")
    on_page("| conversion (percent) | up | 13.1 % | 18.9 % | +5.8 pts (+44 %) | 0.058 | favourable, 3rd |")
    on_page(
        "With `moves_min_base: 0`, amount A's +4 900 % would lead the favourable moves and push the\nconversion out"
    )
    october = {"a": 500, "b": 1200, "cost": 850, "d": 900, "leads": 189}
    rows = []
    for i in range(13):  # 2025-10 .. 2026-10
        month = f"{2025 + (9 + i) // 12}-{(9 + i) % 12 + 1:02d}"
        v = {"a": 1000, "b": 1000, "cost": 1000, "d": 1000, "leads": 131}
        v |= {"a": 10} if month == "2026-09" else october if month == "2026-10" else {}
        rows.append([f"{month}-15", v["a"], v["b"], v["cost"], v["d"], v["leads"], 1000])
    write_csv(tmp_path / "m.csv", ["date", "a", "b", "cost", "d", "leads", "sessions"], rows)
    body = (
        "sources: {m: {type: csv, path: m.csv, date_column: date}}\n"
        "metrics: {a: {source: m, agg: sum, column: a}, b: {source: m, agg: sum, column: b},\n"
        "          cost: {source: m, agg: sum, column: cost}, d: {source: m, agg: sum, column: d},\n"
        "          leads: {source: m, agg: sum, column: leads}, sessions: {source: m, agg: sum, column: sessions}}\n"
        "kpis: {a: {formula: a}, b: {formula: b}, cost: {formula: cost, direction: down}, d: {formula: d},\n"
        "       conversion: {formula: leads / sessions, format: percent}}\n"
    )
    moves = compute(report(tmp_path, make_config, body), Period.parse("2026-10", "month"), NOW).moves[
        "vs_previous"
    ]
    assert [m.kpi for m in moves.favourable] == ["b", "cost", "conversion"]
    assert [m.kpi for m in moves.unfavourable] == ["d"]
    assert [round(m.change, 2) for m in moves.favourable] == [0.2, -0.15, 0.44]  # type: ignore[arg-type]
    assert moves.favourable[2].change_pp == pytest.approx(0.058)
    every = report(tmp_path, make_config, body + "insights: {moves_min_base: 0}\n")
    moves = compute(every, Period.parse("2026-10", "month"), NOW).moves["vs_previous"]
    assert [m.kpi for m in moves.favourable] == ["a", "b", "cost"]
    assert moves.favourable[0].change == pytest.approx(49.0)


def test_axes_and_dates_example():
    on_page("(0, 500,\n1 000, 1 500, 2 000 €; 12 %, 14 %, 16 %)")
    from reporter.render.charts import nice_ticks

    assert nice_ticks(0, 1857) == [0, 500, 1000, 1500, 2000]
    assert nice_ticks(0.131, 0.189)[:3] == [0.12, 0.14, 0.16]
    on_page("`31 déc. 2026`,\n`Dec 31, 2026`, `31.12.2026`, `31 dic 2026`")
    days = [Formatter(loc, "EUR").date("2026-12-31") for loc in ("fr_FR", "en_US", "de_DE", "es_ES")]
    assert days == ["31 déc. 2026", "Dec 31, 2026", "31.12.2026", "31 dic 2026"]
    on_page("`2 nov. 2026, 07:00`")
    assert (
        Formatter("fr_FR", "EUR", "Europe/Paris").timestamp("2026-11-02T06:00:00+00:00")
        == "2 nov. 2026, 07:00"
    )
