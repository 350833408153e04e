"""Every computed number against an independent computation in plain Python over the rows.

The reference functions below know nothing of DuckDB or of reporter's own period code: they
cut periods with their own calendar arithmetic and aggregate lists of dicts.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from reporter.cli import main
from reporter.compute.database import compute, open_database
from reporter.periods import Period
from tests.conftest import write_csv

PARIS = ZoneInfo("Europe/Paris")

# ----------------------------------------------------------------------------- reference


def local_day(text: str) -> dt.date:
    if "T" in text:
        return dt.datetime.fromisoformat(text).astimezone(PARIS).date()
    return dt.date.fromisoformat(text)


def month_of(day: dt.date) -> tuple[dt.date, dt.date]:
    start = day.replace(day=1)
    nxt = dt.date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return start, nxt - dt.timedelta(days=1)


def month_label_range(label: str) -> tuple[dt.date, dt.date]:
    y, m = map(int, label.split("-"))
    return month_of(dt.date(y, m, 1))


def months_back(label: str, n: int) -> str:
    y, m = map(int, label.split("-"))
    idx = y * 12 + m - 1 - n
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def aggregate(
    rows: list[dict[str, Any]],
    agg: str,
    col: str | None,
    start: dt.date,
    end: dt.date,
    span: tuple[dt.date, dt.date],
    where: Any = None,
) -> float | None:
    if end < span[0] or start > span[1]:
        return None
    sel = [r for r in rows if start <= r["_day"] <= end and (where is None or where(r))]
    values = [r[col] for r in sel] if col else [1] * len(sel)
    present = [v for v in values if v is not None]
    if agg == "sum":
        return float(sum(present))
    if agg == "count":
        return float(len(present))
    if agg == "count_distinct":
        return float(len(set(present)))
    if agg == "avg":
        return sum(present) / len(present) if present else None
    if agg == "min":
        return float(min(present)) if present else None
    if agg == "max":
        return float(max(present)) if present else None
    if agg == "last":
        if not sel:
            return None
        best = max(sel, key=lambda r: (r["_day"], r["_pos"]))
        return None if best[col] is None else float(best[col])
    raise AssertionError(agg)


def div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def chg(v: float | None, base: float | None) -> float | None:
    return None if v is None or base is None or base == 0 else (v - base) / abs(base)


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# ----------------------------------------------------------------------------- fixture data


def make_orders(seed: int = 7) -> list[dict[str, Any]]:
    """Orders over 2024-01 .. 2026-10 with timestamps in UTC and +02:00, none in June 2026."""
    rng = random.Random(seed)
    rows = []
    start = dt.datetime(2024, 1, 3, tzinfo=dt.UTC)
    stop = dt.datetime(2026, 10, 31, 23, 59, tzinfo=dt.UTC)
    t = start
    i = 0
    while t < stop:
        t += dt.timedelta(hours=rng.randint(5, 40), minutes=rng.randint(0, 59))
        if dt.date(2026, 6, 1) <= t.date() <= dt.date(2026, 6, 30):
            continue
        offset = rng.choice(["+00:00", "+02:00"])
        stamp = t.astimezone(dt.timezone(dt.timedelta(hours=2 if offset == "+02:00" else 0)))
        i += 1
        rows.append(
            {
                "order_id": i,
                "ordered_at": stamp.isoformat(timespec="seconds"),
                "customer": f"C{rng.randint(1, 60):03d}",
                "amount": None if rng.random() < 0.03 else round(rng.uniform(10, 900), 2),
                "seller": rng.choice(["Alice", "Bruno", "Chloé", "David", None]),
                "stage": rng.choice(["won", "won", "lost", "open"]),
            }
        )
    # Edges: 23:30 UTC on 31 October is 1 November in Paris; 22:30 UTC on 30 September is
    # 1 October in Paris; a leap day.
    rows.append(
        {
            "order_id": 90001,
            "ordered_at": "2026-10-31T23:30:00+00:00",
            "customer": "C900",
            "amount": 5000.0,
            "seller": "Alice",
            "stage": "won",
        }
    )
    rows.append(
        {
            "order_id": 90002,
            "ordered_at": "2026-09-30T22:30:00+00:00",
            "customer": "C901",
            "amount": 777.0,
            "seller": "Bruno",
            "stage": "won",
        }
    )
    rows.append(
        {
            "order_id": 90003,
            "ordered_at": "2024-02-29T12:00:00+00:00",
            "customer": "C902",
            "amount": 229.0,
            "seller": "David",
            "stage": "won",
        }
    )
    for pos, r in enumerate(rows):
        r["_day"] = local_day(r["ordered_at"])
        r["_pos"] = pos
    return rows


def make_bank(seed: int = 3) -> list[dict[str, Any]]:
    """Balance snapshots, written in shuffled order, several on some dates."""
    rng = random.Random(seed)
    rows = []
    day = dt.date(2024, 1, 1)
    while day <= dt.date(2026, 10, 31):
        for _ in range(rng.choice([1, 1, 2])):
            rows.append({"date": day.isoformat(), "balance": round(rng.uniform(-5000, 90000), 2)})
        day += dt.timedelta(days=rng.randint(3, 9))
    rows.append({"date": "2026-10-31", "balance": 12345.0})
    rng.shuffle(rows)
    for pos, r in enumerate(rows):
        r["_day"] = dt.date.fromisoformat(r["date"])
        r["_pos"] = pos
    return rows


CONFIG = """
report: {{id: fx, title: Fixture, locale: fr_FR, currency: EUR, timezone: Europe/Paris,
         grain: {grain}, fiscal_year_start: {fy}}}
sources:
  orders: {{type: csv, path: orders.csv, date_column: ordered_at}}
  bank: {{type: csv, path: bank.csv, date_column: date}}
metrics:
  revenue: {{source: orders, agg: sum, column: amount}}
  orders: {{source: orders, agg: count}}
  priced: {{source: orders, agg: count, column: amount}}
  won: {{source: orders, agg: count, where: "stage = 'won'"}}
  lost: {{source: orders, agg: count, where: "stage = 'lost'"}}
  customers: {{source: orders, agg: count_distinct, column: customer}}
  basket_avg: {{source: orders, agg: avg, column: amount}}
  smallest: {{source: orders, agg: min, column: amount}}
  largest: {{source: orders, agg: max, column: amount}}
  doubled: {{source: orders, agg: sum, expr: "amount * 2"}}
  cash: {{source: bank, agg: last, column: balance}}
kpis:
  revenue: {{formula: revenue, format: currency}}
  win_rate: {{formula: won / (won + lost), format: percent}}
  per_customer: {{formula: revenue / customers, format: currency}}
  basket: {{formula: revenue / priced}}
  cash: {{formula: cash, format: currency}}
  spread: {{formula: largest - smallest}}
  twice: {{formula: doubled / 2}}
  avg_basket: {{formula: basket_avg}}
  nothing: {{formula: revenue / (won - won)}}
  loss_rate: {{formula: lost / orders, direction: down}}
{extra}
"""


@pytest.fixture
def fixture_dir(tmp_path: Path) -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]]]:
    orders = make_orders()
    bank = make_bank()
    cols = ["order_id", "ordered_at", "customer", "amount", "seller", "stage"]
    write_csv(tmp_path / "orders.csv", cols, [[r[c] for c in cols] for r in orders])
    write_csv(tmp_path / "bank.csv", ["date", "balance"], [[r["date"], r["balance"]] for r in bank])
    return tmp_path, orders, bank


METRICS = {
    "revenue": ("orders", "sum", "amount", None),
    "orders": ("orders", "count", None, None),
    "priced": ("orders", "count", "amount", None),
    "won": ("orders", "count", None, lambda r: r["stage"] == "won"),
    "lost": ("orders", "count", None, lambda r: r["stage"] == "lost"),
    "customers": ("orders", "count_distinct", "customer", None),
    "basket_avg": ("orders", "avg", "amount", None),
    "smallest": ("orders", "min", "amount", None),
    "largest": ("orders", "max", "amount", None),
    "cash": ("bank", "last", "balance", None),
}


def reference_metrics(data: dict[str, list[dict[str, Any]]], start: dt.date, end: dt.date) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (src, agg, col, where) in METRICS.items():
        rows = data[src]
        span = (min(r["_day"] for r in rows), max(r["_day"] for r in rows))
        out[name] = aggregate(rows, agg, col, start, end, span, where)
    out["doubled"] = None if out["revenue"] is None else out["revenue"] * 2
    return out


def reference_kpis(m: dict[str, Any]) -> dict[str, Any]:
    def sub(a: Any, b: Any) -> Any:
        return None if a is None or b is None else a - b

    won, lost = m["won"], m["lost"]
    return {
        "revenue": m["revenue"],
        "win_rate": div(won, None if won is None or lost is None else won + lost),
        "per_customer": div(m["revenue"], m["customers"]),
        "basket": div(m["revenue"], m["priced"]),
        "cash": m["cash"],
        "spread": sub(m["largest"], m["smallest"]),
        "twice": None if m["doubled"] is None else m["doubled"] / 2,
        "avg_basket": m["basket_avg"],
        "nothing": None,
        "loss_rate": div(lost, m["orders"]),
    }


def write_config(folder: Path, grain: str = "month", fy: int = 1, extra: str = "") -> Path:
    path = folder / "report.yaml"
    path.write_text(CONFIG.format(grain=grain, fy=fy, extra=extra), encoding="utf-8")
    return path


def load(path: Path) -> Any:
    from reporter.config import load_config

    return load_config(path, env={})


NOW = dt.datetime(2026, 11, 24, 8, tzinfo=dt.UTC)

# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("label", ["2026-10", "2026-06", "2024-02", "2026-03", "2024-01"])
def test_month_kpis_match_reference(fixture_dir, label):
    folder, orders, bank = fixture_dir
    config = load(write_config(folder))
    results = compute(config, Period.parse(label, "month"), NOW).to_dict()
    data = {"orders": orders, "bank": bank}

    def kpis_at(lab: str) -> dict[str, Any]:
        return reference_kpis(reference_metrics(data, *month_label_range(lab)))

    now_k, prev_k, prior_k = kpis_at(label), kpis_at(months_back(label, 1)), kpis_at(months_back(label, 12))
    y, _ = map(int, label.split("-"))
    ytd_k = reference_kpis(reference_metrics(data, dt.date(y, 1, 1), month_label_range(label)[1]))
    for name, got in results["kpis"].items():
        assert close(got["value"], now_k[name]), (name, got["value"], now_k[name])
        assert close(got["previous"], prev_k[name]), name
        assert close(got["prior_year"], prior_k[name]), name
        assert close(got["change_vs_previous"], chg(now_k[name], prev_k[name])), name
        assert close(got["change_vs_prior_year"], chg(now_k[name], prior_k[name])), name
        assert close(got["ytd"], ytd_k[name]), name
        labels = [months_back(label, n) for n in range(11, -1, -1)]
        assert [p["period"] for p in got["series"]] == labels
        for point in got["series"]:
            assert close(point["value"], kpis_at(point["period"])[name]), (name, point)
        assert got["status"] == ("no_data" if now_k[name] is None else "no_target")


def test_month_without_rows_inside_span_is_zero_and_outside_span_is_null(fixture_dir):
    folder, _, _ = fixture_dir
    config = load(write_config(folder))
    june = compute(config, Period.parse("2026-06", "month"), NOW).to_dict()["kpis"]
    assert june["revenue"]["value"] == 0.0  # inside the span, no rows: a sum is 0
    assert june["avg_basket"]["value"] is None  # avg over no rows: null
    assert june["basket"]["value"] is None  # 0 / 0: null, never NaN
    old = compute(config, Period.parse("2023-06", "month"), NOW).to_dict()["kpis"]
    assert old["revenue"]["value"] is None  # outside the span: no data at all
    assert old["revenue"]["status"] == "no_data"


def test_timezone_edges(fixture_dir):
    folder, _, _ = fixture_dir
    config = load(write_config(folder))
    con, _ = open_database(config)
    days = dict(con.execute("SELECT customer, __day FROM src_orders WHERE customer >= 'C900'").fetchall())
    con.close()
    assert days["C900"] == dt.date(2026, 11, 1)  # 23:30 UTC on 31 Oct is 00:30 on 1 Nov in Paris
    assert days["C901"] == dt.date(2026, 10, 1)  # 22:30 UTC on 30 Sep is 00:30 on 1 Oct (CEST)
    assert days["C902"] == dt.date(2024, 2, 29)


def test_last_on_unsorted_rows(fixture_dir):
    folder, _, bank = fixture_dir
    config = load(write_config(folder))
    got = compute(config, Period.parse("2026-10", "month"), NOW).to_dict()["kpis"]["cash"]
    last_day = max(r["_day"] for r in bank if r["_day"] <= dt.date(2026, 10, 31))
    same_day = [r for r in bank if r["_day"] == last_day]
    assert got["value"] == max(same_day, key=lambda r: r["_pos"])["balance"] == 12345.0


def test_ytd_distinct_count_is_over_the_window(fixture_dir):
    folder, orders, _ = fixture_dir
    config = load(write_config(folder, extra="  distinct: {formula: customers}"))
    res = compute(config, Period.parse("2026-10", "month"), NOW).to_dict()["kpis"]["distinct"]
    ytd = {r["customer"] for r in orders if dt.date(2026, 1, 1) <= r["_day"] <= dt.date(2026, 10, 31)}
    monthly_sum = sum(
        len({r["customer"] for r in orders if r["_day"].year == 2026 and r["_day"].month == m})
        for m in range(1, 11)
    )
    assert res["ytd"] == len(ytd)
    assert res["ytd"] < monthly_sum


def test_fiscal_year_start(fixture_dir):
    folder, orders, bank = fixture_dir
    config = load(write_config(folder, fy=7))
    got = compute(config, Period.parse("2026-10", "month"), NOW).to_dict()["kpis"]
    ref = reference_kpis(
        reference_metrics({"orders": orders, "bank": bank}, dt.date(2026, 7, 1), dt.date(2026, 10, 31))
    )
    for name in got:
        assert close(got[name]["ytd"], ref[name]), name


def _quarter(day: dt.date) -> tuple[dt.date, dt.date]:
    q0 = 3 * ((day.month - 1) // 3) + 1
    start = dt.date(day.year, q0, 1)
    end = month_of(dt.date(day.year, q0 + 2, 1))[1]
    return start, end


def test_quarter_grain(fixture_dir):
    folder, orders, bank = fixture_dir
    config = load(write_config(folder, grain="quarter"))
    got = compute(config, Period.parse("2024-Q1", "quarter"), NOW).to_dict()
    assert (got["period_start"], got["period_end"]) == ("2024-01-01", "2024-03-31")
    data = {"orders": orders, "bank": bank}
    ref = reference_kpis(reference_metrics(data, dt.date(2024, 1, 1), dt.date(2024, 3, 31)))
    for name, k in got["kpis"].items():
        assert close(k["value"], ref[name]), name
    got = compute(config, Period.parse("2026-Q3", "quarter"), NOW).to_dict()
    ref = reference_kpis(reference_metrics(data, dt.date(2026, 7, 1), dt.date(2026, 9, 30)))
    prior = reference_kpis(reference_metrics(data, dt.date(2025, 7, 1), dt.date(2025, 9, 30)))
    for name, k in got["kpis"].items():
        assert close(k["value"], ref[name]), name
        assert close(k["prior_year"], prior[name]), name
    assert [p["period"] for p in got["kpis"]["revenue"]["series"]][:2] == ["2023-Q4", "2024-Q1"]


def test_week_grain_across_dst(fixture_dir):
    folder, orders, bank = fixture_dir
    config = load(write_config(folder, grain="week"))
    data = {"orders": orders, "bank": bank}
    # ISO week 13 of 2026 holds the spring DST change (29 March), week 43 the autumn one.
    for label, monday in [
        ("2026-W13", dt.date(2026, 3, 23)),
        ("2026-W43", dt.date(2026, 10, 19)),
        ("2026-W01", dt.date(2025, 12, 29)),
    ]:
        got = compute(config, Period.parse(label, "week"), NOW).to_dict()
        sunday = monday + dt.timedelta(days=6)
        assert got["period_start"] == monday.isoformat()
        ref = reference_kpis(reference_metrics(data, monday, sunday))
        prev = reference_kpis(reference_metrics(data, monday - dt.timedelta(7), sunday - dt.timedelta(7)))
        iso = monday.isocalendar()
        py_monday = dt.date.fromisocalendar(iso.year - 1, iso.week, 1)
        prior = reference_kpis(reference_metrics(data, py_monday, py_monday + dt.timedelta(6)))
        for name, k in got["kpis"].items():
            assert close(k["value"], ref[name]), (label, name)
            assert close(k["previous"], prev[name]), (label, name)
            assert close(k["prior_year"], prior[name]), (label, name)


OBJECTIVES = """
objectives:
  - {id: fixed, title: F, kpi: revenue, target: {value: 20000}, owner: O, due: 2026-12-31,
     actions: [{when: on_track, do: keep going}, {when: off_track, do: call, due_in_days: 15},
               {when: always, do: review, owner: CFO}]}
  - {id: yoy, title: Y, kpi: revenue, target: {change_vs_prior_year: 0.1}, owner: O, due: 2026-12-31}
  - {id: mom, title: M, kpi: revenue, target: {change_vs_previous: -0.05}, owner: O, due: 2026-12-31,
     thresholds: {on_track: 1.05, at_risk: 0.5}}
  - {id: plan, title: P, kpi: revenue, target: {by_period: {"2026-09": 15000, "2026-10": 16000}},
     owner: O, due: 2026-12-31}
  - {id: down, title: D, kpi: loss_rate, target: {value: 0.2}, owner: O, due: 2026-12-31}
  - {id: cum, title: C, kpi: revenue, target: {value: 15000}, cumulative: true, owner: O, due: 2026-12-31}
  - {id: cumyoy, title: CY, kpi: revenue, target: {change_vs_prior_year: 0.0}, cumulative: true,
     owner: O, due: 2026-12-31}
  - {id: gap, title: G, kpi: revenue, target: {by_period: {"2026-09": 1}}, owner: O, due: 2026-12-31}
"""


def ref_attainment(value, target, direction):
    if value is None or target is None or target == 0:
        return None
    s = -1 if direction == "down" else 1
    return 1 + s * (value - target) / abs(target)


def ref_status(value, target, direction, on=1.0, risk=0.9):
    if value is None:
        return "no_data"
    if target is None:
        return "no_target"
    a = ref_attainment(value, target, direction)
    if a is None:
        return "on_track" if (value >= 0 if direction == "up" else value <= 0) else "off_track"
    return "on_track" if a >= on else "at_risk" if a >= risk else "off_track"


def test_every_target_form(fixture_dir):
    folder, orders, bank = fixture_dir
    config = load(write_config(folder, extra=OBJECTIVES))
    got = compute(config, Period.parse("2026-10", "month"), NOW).to_dict()
    data = {"orders": orders, "bank": bank}
    k = {
        lab: reference_kpis(reference_metrics(data, *month_label_range(lab)))
        for lab in [f"2025-{m:02d}" for m in range(1, 13)] + [f"2026-{m:02d}" for m in range(1, 11)]
    }
    rev = {lab: v["revenue"] for lab, v in k.items()}
    ytd = reference_kpis(reference_metrics(data, dt.date(2026, 1, 1), dt.date(2026, 10, 31)))
    expected = {
        "fixed": (rev["2026-10"], 20000.0, "up", 1.0, 0.9),
        "yoy": (rev["2026-10"], rev["2025-10"] * 1.1, "up", 1.0, 0.9),
        "mom": (rev["2026-10"], rev["2026-09"] * 0.95, "up", 1.05, 0.5),
        "plan": (rev["2026-10"], 16000.0, "up", 1.0, 0.9),
        "down": (k["2026-10"]["loss_rate"], 0.2, "down", 1.0, 0.9),
        "cum": (ytd["revenue"], 15000.0 * 10, "up", 1.0, 0.9),
        "cumyoy": (ytd["revenue"], sum(rev[f"2025-{m:02d}"] for m in range(1, 11)), "up", 1.0, 0.9),
        "gap": (rev["2026-10"], None, "up", 1.0, 0.9),
    }
    seen = set()
    for obj in got["objectives"]:
        value, target, direction, on, risk = expected[obj["id"]]
        seen.add(obj["id"])
        assert close(obj["value"], value), obj["id"]
        assert close(obj["target"], target), obj["id"]
        assert close(obj["attainment"], ref_attainment(value, target, direction)), obj["id"]
        assert obj["status"] == ref_status(value, target, direction, on, risk), obj["id"]
    assert seen == set(expected)
    # A KPI shows its first objective's target and status.
    assert close(got["kpis"]["revenue"]["target"], 20000.0)
    assert got["kpis"]["revenue"]["status"] == ref_status(rev["2026-10"], 20000.0, "up")
    # Actions: those for the status, plus always; due dates from the period's end.
    fixed = got["objectives"][0]
    status = fixed["status"]
    wanted = {"on_track": ["keep going", "review"], "off_track": ["call", "review"]}.get(status, ["review"])
    assert [a["do"] for a in fixed["actions"]] == wanted
    for a in fixed["actions"]:
        if a["do"] == "call":
            assert a["due"] == "2026-11-15"
        if a["do"] == "review":
            assert a["owner"] == "CFO"
            assert a["due"] is None


def test_down_direction_attainment_is_mirrored(fixture_dir):
    folder, _, _ = fixture_dir
    extra = """
objectives:
  - {id: cac, title: C, kpi: loss_rate, target: {value: 0.1}, owner: O, due: 2026-12-31}
"""
    config = load(write_config(folder, extra=extra))
    got = compute(config, Period.parse("2026-10", "month"), NOW).to_dict()["objectives"][0]
    # CAC 10 % over its target is 0.9: a down KPI above target loses attainment.
    assert close(got["attainment"], 1 - (got["value"] - 0.1) / 0.1)


def test_breakdown_top_n_with_other_recomputed_from_metrics(fixture_dir):
    folder, orders, _ = fixture_dir
    extra = """
breakdowns:
  - {kpi: basket, by: seller, top: 2}
  - {kpi: loss_rate, by: seller}
"""
    config = load(write_config(folder, extra=extra))
    got = compute(config, Period.parse("2026-10", "month"), NOW).to_dict()["breakdowns"]
    oct_rows = [r for r in orders if dt.date(2026, 10, 1) <= r["_day"] <= dt.date(2026, 10, 31)]

    def basket(rows):
        priced = [r["amount"] for r in rows if r["amount"] is not None]
        return div(sum(priced), len(priced))

    keys = {r["seller"] for r in oct_rows}
    by_key = {key: basket([r for r in oct_rows if r["seller"] == key]) for key in keys}
    ranked = sorted(by_key.items(), key=lambda kv: (-kv[1], str(kv[0])))
    top = ranked[:2]
    rest = [r for r in oct_rows if r["seller"] not in {k for k, _ in top}]
    rows = got["basket_by_seller"]
    assert [(r["key"], round(r["value"], 9)) for r in rows[:2]] == [(k, round(v, 9)) for k, v in top]
    assert rows[2]["other"] is True
    assert close(rows[2]["value"], basket(rest))  # a ratio of sums, not a sum of ratios
    assert len(rows) == 3
    # down direction: best (lowest) first; rows with a null seller are grouped under null.
    loss = got["loss_rate_by_seller"]
    expected = {
        key: div(
            sum(r["stage"] == "lost" for r in oct_rows if r["seller"] == key),
            sum(1 for r in oct_rows if r["seller"] == key),
        )
        for key in keys
    }
    assert {r["key"]: r["value"] for r in loss} == pytest.approx(expected)
    values = [r["value"] for r in loss]
    assert values == sorted(values)
    assert None in [r["key"] for r in loss]


def test_funnel_and_portfolio(tmp_path):
    write_csv(
        tmp_path / "spend.csv",
        ["date", "campaign", "amount"],
        [
            ["2026-10-01", "Salon", 1000],
            ["2026-10-01", "Ads", 500],
            ["2026-10-01", "Free", 0],
            ["2026-10-31", "Mail", 100],
        ],
    )
    write_csv(
        tmp_path / "sales.csv",
        ["date", "campaign", "amount", "stage"],
        [
            ["2026-10-02", "Salon", 300, "lead"],
            ["2026-10-03", "Ads", 900, "lead"],
            ["2026-10-04", "Ads", 0, "won"],
            ["2026-10-05", "Free", 50, "won"],
            ["2026-10-06", "Mail", 100, "lead"],
            ["2026-10-31", "Orphan", 10, "won"],
        ],
    )
    (tmp_path / "r.yaml").write_text(
        """
report: {id: pf, title: P, timezone: Europe/Paris}
sources:
  spend: {type: csv, path: spend.csv, date_column: date}
  sales: {type: csv, path: sales.csv, date_column: date}
metrics:
  cost: {source: spend, agg: sum, column: amount}
  revenue: {source: sales, agg: sum, column: amount}
  leads: {source: sales, agg: count}
  won: {source: sales, agg: count, where: "stage = 'won'"}
  zero: {source: sales, agg: count, where: "stage = 'none'"}
kpis:
  revenue: {formula: revenue}
funnel:
  - {label: Leads, metric: leads}
  - {label: Won, metric: won}
  - {label: Zero, metric: zero}
  - {label: After zero, metric: won}
portfolio: {by: campaign, cost: cost, value: revenue, rules: {keep: 1.5, improve: 0.8}}
""",
        encoding="utf-8",
    )
    config = load(tmp_path / "r.yaml")
    got = compute(config, Period.parse("2026-10", "month"), NOW).to_dict()
    assert got["funnel"] == [
        {"label": "Leads", "metric": "leads", "value": 6.0, "step_rate": None},
        {"label": "Won", "metric": "won", "value": 3.0, "step_rate": 0.5},
        {"label": "Zero", "metric": "zero", "value": 0.0, "step_rate": 0.0},
        {"label": "After zero", "metric": "won", "value": 3.0, "step_rate": None},
    ]
    verdicts = {r["key"]: (r["cost"], r["value"], r["ratio"], r["verdict"]) for r in got["portfolio"]}
    assert verdicts == {
        "Ads": (500.0, 900.0, 1.8, "keep"),
        "Mail": (100.0, 100.0, 1.0, "improve"),
        "Salon": (1000.0, 300.0, 0.3, "stop"),
        "Free": (0.0, 50.0, None, "review"),
        "Orphan": (0.0, 10.0, None, "review"),
    }


def test_division_by_zero_never_reaches_json(fixture_dir):
    folder, _, _ = fixture_dir
    config = load(write_config(folder))
    text = compute(config, Period.parse("2026-10", "month"), NOW).to_json()
    assert "NaN" not in text
    assert "Infinity" not in text
    assert json.loads(text)["kpis"]["nothing"]["value"] is None


def test_duckdb_is_locked_after_sources_are_read(fixture_dir):
    folder, _, _ = fixture_dir
    config = load(write_config(folder))
    con, _ = open_database(config)
    try:
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_csv('/etc/passwd')").fetchall()
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
        assert con.execute("SELECT count(*) FROM src_orders").fetchone()[0] > 0
    finally:
        con.close()


def test_quality_gate_failure_exits_1_writes_results_and_names_the_source(fixture_dir, capsys, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796457600")  # 2026-12-05 08:00 UTC: November has ended
    folder, _, _ = fixture_dir
    path = write_config(folder, extra="quality: {require_complete_period: true, min_rows: 1}")
    out = folder / "out"
    code = main(["run", str(path), "--period", "2026-11", "--no-send", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "source 'bank' has data up to 2026-10-31; the period ends 2026-11-30" in err
    data = json.loads((out / "fx" / "2026-11" / "results.json").read_text())
    assert data["quality"]["passed"] is False
    failed = {(c["check"], c["source"]) for c in data["quality"]["checks"] if not c["passed"]}
    assert ("complete_period", "bank") in failed
    # orders reach 1 November in Paris (one order at 23:30 UTC on 31 October): not complete,
    # but that one row satisfies min_rows.
    assert failed == {("complete_period", "bank"), ("complete_period", "orders"), ("min_rows", "bank")}


def test_run_writes_results_json_with_spec_fields(fixture_dir, capsys):
    folder, _, _ = fixture_dir
    path = write_config(folder, extra=OBJECTIVES)
    out = folder / "out"
    assert main(["run", str(path), "--period", "2026-10", "--no-send", "--output", str(out)]) == 0
    data = json.loads((out / "fx" / "2026-10" / "results.json").read_text())
    assert {
        "report",
        "period",
        "period_start",
        "period_end",
        "kpis",
        "objectives",
        "breakdowns",
        "funnel",
        "portfolio",
        "quality",
    } <= set(data)
    assert (data["report"], data["period"], data["period_start"], data["period_end"]) == (
        "fx",
        "2026-10",
        "2026-10-01",
        "2026-10-31",
    )
    kpi_fields = {
        "value",
        "previous",
        "prior_year",
        "change_vs_previous",
        "change_vs_prior_year",
        "ytd",
        "target",
        "attainment",
        "status",
        "series",
    }
    for k in data["kpis"].values():
        assert kpi_fields <= set(k)
        assert all(isinstance(k[f], float | type(None)) for f in kpi_fields - {"status", "series"})
    obj_fields = {"id", "kpi", "target", "value", "attainment", "status", "actions"}
    assert all(obj_fields <= set(o) for o in data["objectives"])


def test_default_period_is_last_complete_in_report_zone(fixture_dir):
    from reporter.run.stages import resolve_period

    folder, _, _ = fixture_dir
    config = load(write_config(folder))
    # 23:30 UTC on 31 October is already 1 November in Paris: October is complete there.
    assert resolve_period(config, None, dt.datetime(2026, 10, 31, 23, 30, tzinfo=dt.UTC)).label == "2026-10"
    assert resolve_period(config, None, dt.datetime(2026, 10, 31, 22, 30, tzinfo=dt.UTC)).label == "2026-09"


def test_columns_named_like_internal_aliases(tmp_path):
    """Columns called b, k or b2 must not collide with the queries' own aliases."""
    write_csv(
        tmp_path / "s.csv",
        ["date", "b", "k"],
        [["2026-10-01", 2, "x"], ["2026-10-02", 3, "y"], ["2026-09-02", 100, "x"]],
    )
    (tmp_path / "r.yaml").write_text(
        "report: {id: alias, title: A, timezone: Europe/Paris}\n"
        "sources: {s: {type: csv, path: s.csv, date_column: date}}\n"
        "metrics: {b: {source: s, agg: sum, column: b}, n: {source: s, agg: count}}\n"
        "kpis: {b: {formula: b}, per: {formula: b / n}}\n"
        "breakdowns: [{kpi: b, by: k, top: 1}]\n"
    )
    got = compute(load(tmp_path / "r.yaml"), Period.parse("2026-10", "month"), NOW).to_dict()
    assert got["kpis"]["b"]["value"] == 5.0
    assert got["kpis"]["b"]["previous"] == 100.0
    assert [(r["key"], r["value"]) for r in got["breakdowns"]["b_by_k"]] == [("y", 3.0), ("other", 2.0)]
