"""The demo report, every field of results.json, against a plain-Python reading of the CSVs.

The metrics are re-declared here by hand (what each YAML metric means, as Python over rows),
the CSVs are read with the csv module, dates cut with zoneinfo, and KPI formulas evaluated by
Python's own arithmetic: nothing here goes through DuckDB or reporter's formula code.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
import re
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reporter.compute.database import compute
from reporter.config import load_config
from reporter.config.labels import pick
from reporter.periods import Period
from tests.conftest import DEMO
from tests.test_compute import chg, close, ref_attainment, ref_status

DATA = DEMO.parent / "data"
PARIS = ZoneInfo("Europe/Paris")
NOW = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)


def _num(text: str) -> float | None:
    text = text.strip()
    return None if text in ("", "n/a", "NA") else float(text.replace(",", "."))


def _read(name: str, day_col: str, parse_day: Callable[[str], dt.date], **kw: Any) -> list[dict[str, Any]]:
    with (DATA / name).open(newline="", encoding=kw.pop("encoding", "utf-8")) as handle:
        rows = list(csv.DictReader(handle, delimiter=kw.pop("delimiter", ",")))
    for pos, row in enumerate(rows):
        row["_day"] = parse_day(row[day_col])
        row["_pos"] = pos
    return rows


def _iso_day(text: str) -> dt.date:
    if "T" in text and ("+" in text[10:] or text.endswith("Z")):
        return dt.datetime.fromisoformat(text).astimezone(PARIS).date()
    return dt.date.fromisoformat(text[:10])


SOURCES = {
    "web": _read(
        "web_traffic.csv",
        "date",
        lambda t: dt.date(int(t[6:10]), int(t[3:5]), int(t[0:2])),
        encoding="latin-1",
        delimiter=";",
    ),
    "crm": _read("crm_leads.csv", "created_at", _iso_day),
    "emails": _read("email_campaigns.csv", "sent_at", _iso_day),
    "spend": _read("marketing_spend.csv", "date", _iso_day),
    "orders": _read("orders.csv", "ordered_at", _iso_day),
    "bank": _read("bank_balance.csv", "date", _iso_day),
    "nps": _read("nps.csv", "answered_at", _iso_day),
    "social": _read("social.csv", "date", _iso_day),
}


def col(name: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda r: _num(r[name])


def text(name: str) -> Callable[[dict[str, Any]], str | None]:
    return lambda r: r[name] or None


def eq(name: str, value: str) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r[name] == value


def product(r: dict[str, Any]) -> float | None:
    a, b = _num(r["sessions"]), _num(r["duree_moyenne"])
    return None if a is None or b is None else a * b


METRICS: dict[str, tuple[str, str, Any, Any]] = {  # name: (source, agg, value, where)
    "sessions": ("web", "sum", col("sessions"), None),
    "new_visitors": ("web", "sum", col("nouveaux_visiteurs"), None),
    "returning_visitors": ("web", "sum", col("visiteurs_recurrents"), None),
    "bounces": ("web", "sum", col("rebonds"), None),
    "page_views": ("web", "sum", col("pages_vues"), None),
    "session_seconds": ("web", "sum", product, None),
    "timed_sessions": ("web", "sum", col("sessions"), lambda r: _num(r["duree_moyenne"]) is not None),
    "seo_sessions": ("web", "sum", col("sessions"), eq("canal", "Référencement naturel")),
    "leads": ("crm", "count", None, None),
    "mql": ("crm", "count", None, eq("mql", "1")),
    "sql": ("crm", "count", None, eq("sql", "1")),
    "quotes": ("crm", "count", None, eq("quote", "1")),
    "won": ("crm", "count", None, eq("won", "1")),
    "lost": ("crm", "count", None, eq("lost", "1")),
    "open_pipeline": ("crm", "sum", col("quote_amount"), eq("stage", "quote")),
    "email_sends": ("emails", "count", None, None),
    **{
        f"emails_{c}": ("emails", "sum", col(c), None)
        for c in ("sent", "delivered", "opened", "clicked", "unsubscribed", "spam")
    },
    "marketing_spend": ("spend", "sum", col("amount"), None),
    "marketing_budget": ("spend", "sum", col("budget"), None),
    "revenue": ("orders", "sum", col("amount"), None),
    "gross_margin": ("orders", "sum", col("margin"), None),
    "orders": ("orders", "count", None, None),
    "customers": ("orders", "count_distinct", text("customer_id"), None),
    "new_customers": ("orders", "count_distinct", text("customer_id"), eq("new_customer", "1")),
    "returning_customers": ("orders", "count_distinct", text("customer_id"), eq("new_customer", "0")),
    "salespeople": ("orders", "count_distinct", text("salesperson"), None),
    "cash": ("bank", "last", col("balance"), None),
    "nps_responses": ("nps", "count", None, None),
    "promoters": ("nps", "count", None, lambda r: int(r["score"]) >= 9),
    "detractors": ("nps", "count", None, lambda r: int(r["score"]) <= 6),
    "social_reach": ("social", "sum", col("reach"), None),
    "social_engagements": ("social", "sum", col("engagements"), None),
    **{
        f"{n.lower()}_followers": ("social", "last", col("followers"), eq("network", n))
        for n in ("LinkedIn", "Instagram", "Facebook", "X")
    },
}


def metric(name: str, start: dt.date, end: dt.date, rows_filter: Any = None) -> float | None:
    source, agg, value, where = METRICS[name]
    rows = SOURCES[source]
    first, last = min(r["_day"] for r in rows), max(r["_day"] for r in rows)
    if end < first or start > last:
        return None
    sel = [
        r
        for r in rows
        if start <= r["_day"] <= end
        and (where is None or where(r))
        and (rows_filter is None or rows_filter(r))
    ]
    if agg == "count":
        return float(len(sel))
    values = [value(r) for r in sel]
    present = [v for v in values if v is not None]
    if agg == "sum":
        return float(sum(present))
    if agg == "count_distinct":
        return float(len(set(present)))
    if agg == "last":
        if not sel:
            return None
        best = max(sel, key=lambda r: (r["_day"], r["_pos"]))
        return value(best)
    raise AssertionError(agg)


class _Null(Exception):
    pass


def evaluate(formula: str, values: dict[str, float | None]) -> float | None:
    """Python's own arithmetic over the formula text; any null or division by zero → None."""
    scope = {}
    for name, v in values.items():
        scope[name] = v
    try:
        result = eval(formula, {"__builtins__": {}}, scope)  # the demo's own formulas, trusted
    except (ZeroDivisionError, TypeError):
        return None
    return None if result is None or not math.isfinite(result) else float(result)


CONFIG = load_config(DEMO, env={})


def kpis_for(start: dt.date, end: dt.date, rows_filter: Any = None) -> dict[str, float | None]:
    values = {m: metric(m, start, end, rows_filter) for m in METRICS}
    kpis: dict[str, float | None] = {}
    pending = dict(CONFIG.kpis)
    while pending:
        for name, kpi in list(pending.items()):
            refs = [w for w in _names(kpi.formula) if w not in values]
            if all(r in kpis for r in refs):
                kpis[name] = evaluate(kpi.formula, {**kpis, **values})
                del pending[name]
    return kpis


def _names(formula: str) -> list[str]:
    import re

    return re.findall(r"[a-z_][a-z0-9_]*", formula)


def month(label: str) -> tuple[dt.date, dt.date]:
    y, m = map(int, label.split("-"))
    nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
    return dt.date(y, m, 1), nxt - dt.timedelta(days=1)


def shift(label: str, n: int) -> str:
    y, m = map(int, label.split("-"))
    i = y * 12 + m - 1 + n
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    assert CONFIG.report.fiscal_year_start == 1
    return compute(CONFIG, Period.parse("2026-10", "month"), NOW).to_dict()


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, float | None]]:
    labels = {shift("2026-10", -n) for n in range(0, 25)}
    out = {label: kpis_for(*month(label)) for label in labels}
    out["ytd"] = kpis_for(dt.date(2026, 1, 1), dt.date(2026, 10, 31))
    return out


def test_header_and_quality(results):
    assert (results["report"], results["period"], results["period_start"], results["period_end"]) == (
        "marketing-monthly",
        "2026-10",
        "2026-10-01",
        "2026-10-31",
    )
    assert results["quality"]["passed"] is True
    for check in results["quality"]["checks"]:
        rows = SOURCES[check["source"]]
        if check["check"] == "min_rows":
            assert check["actual"] == sum(
                1 for r in rows if month("2026-10")[0] <= r["_day"] <= month("2026-10")[1]
            )
        else:
            assert check["actual"] == max(r["_day"] for r in rows).isoformat()


def test_every_kpi_field(results, reference):
    ref = reference
    for name, got in results["kpis"].items():
        value, prev, prior = ref["2026-10"][name], ref["2026-09"][name], ref["2025-10"][name]
        assert close(got["value"], value), (name, got["value"], value)
        assert close(got["previous"], prev), name
        assert close(got["prior_year"], prior), name
        assert close(got["change_vs_previous"], chg(value, prev)), name
        assert close(got["change_vs_prior_year"], chg(value, prior)), name
        assert close(got["ytd"], ref["ytd"][name]), name
        assert [p["period"] for p in got["series"]] == [shift("2026-10", -n) for n in range(11, -1, -1)]
        for point in got["series"]:
            assert close(point["value"], ref[point["period"]][name]), (name, point)


def test_every_objective(results, reference):
    ref = reference
    for obj, got in zip(CONFIG.objectives, results["objectives"], strict=True):
        t = obj.target
        direction = CONFIG.kpis[obj.kpi].direction

        def target_for(label: str, t=t, obj=obj) -> float | None:
            if t.value is not None:
                return t.value
            if t.by_period is not None:
                return t.by_period.get(label)
            base = ref[shift(label, -12 if t.change_vs_prior_year is not None else -1)][obj.kpi]
            g = t.change_vs_prior_year if t.change_vs_prior_year is not None else t.change_vs_previous
            return None if base is None else base * (1 + g)

        if obj.cumulative:
            targets = [target_for(f"2026-{m:02d}") for m in range(1, 11)]
            target = None if None in targets else sum(targets)
            value = ref["ytd"][obj.kpi]
        else:
            target, value = target_for("2026-10"), ref["2026-10"][obj.kpi]
        assert got["id"] == obj.id
        assert close(got["value"], value), obj.id
        assert close(got["target"], target), obj.id
        assert close(got["attainment"], ref_attainment(value, target, direction)), obj.id
        status = ref_status(value, target, direction, obj.thresholds.on_track, obj.thresholds.at_risk)
        assert got["status"] == status, obj.id
        # the demo's actions are one text per language: results.json holds the report's (French)
        wanted = [pick(a.do, "fr") for a in obj.actions if a.when in (status, "always")]
        assert [a["do"] for a in got["actions"]] == wanted, obj.id
    # The story the demo must tell.
    statuses = {o["status"] for o in results["objectives"]}
    assert {"on_track", "at_risk", "off_track"} <= statuses


def test_breakdowns(results):
    start, end = month("2026-10")
    for bd in CONFIG.breakdowns:
        sources = {METRICS[m][0] for m in _names(CONFIG.kpis[bd.kpi].formula) if m in METRICS}
        keys = {r[bd.by] or None for s in sources for r in SOURCES[s] if start <= r["_day"] <= end}
        by_key = {
            k: kpis_for(start, end, lambda r, k=k, c=bd.by: (r.get(c) or None) == k)[bd.kpi] for k in keys
        }
        rows = results["breakdowns"][f"{bd.kpi}_by_{bd.by}"]
        reverse = CONFIG.kpis[bd.kpi].direction != "down"
        ranked = sorted(by_key.items(), key=lambda kv: (-(kv[1]) if reverse else kv[1], str(kv[0])))
        if bd.top is not None and len(ranked) > bd.top:
            kept = ranked[: bd.top]
            rest = {k for k, _ in ranked[bd.top :]}
            other = kpis_for(start, end, lambda r, c=bd.by, rest=rest: (r.get(c) or None) in rest)[bd.kpi]
            expected = [*kept, ("other", other)]
        else:
            expected = ranked
        assert [(r["key"], round(r["value"], 9)) for r in rows] == [(k, round(v, 9)) for k, v in expected]


def test_funnel_and_portfolio(results, reference):
    start, end = month("2026-10")
    previous = None
    for stage, got in zip(CONFIG.funnel, results["funnel"], strict=True):
        value = metric(stage.metric, start, end)
        assert got["value"] == value
        assert close(got["step_rate"], None if previous in (None, 0) else value / previous)
        previous = value
    pf = CONFIG.portfolio
    keys = {
        r["campaign"] or None for s in ("spend", "orders") for r in SOURCES[s] if start <= r["_day"] <= end
    }
    expected = {}
    for k in keys:
        cost = metric(pf.cost, start, end, lambda r, k=k: (r.get("campaign") or None) == k)
        value = metric(pf.value, start, end, lambda r, k=k: (r.get("campaign") or None) == k)
        ratio = None if not cost else value / cost
        verdict = (
            "review"
            if ratio is None
            else "keep"
            if ratio >= pf.rules.keep
            else "improve"
            if ratio >= pf.rules.improve
            else "stop"
        )
        expected[k] = (cost, value, ratio, verdict)
    got = {r["key"]: (r["cost"], r["value"], r["ratio"], r["verdict"]) for r in results["portfolio"]}
    assert set(got) == set(expected)
    for k, (cost, value, ratio, verdict) in expected.items():
        assert close(got[k][0], cost), k
        assert close(got[k][1], value), k
        assert close(got[k][2], ratio), k
        assert got[k][3] == verdict, k
    assert "stop" in {v for *_, v in expected.values()}


def test_generator_is_deterministic(tmp_path):
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "config"
    copy.mkdir()
    shutil.copy(DEMO.parent / "generate_demo.py", copy)
    subprocess.run([sys.executable, str(copy / "generate_demo.py")], check=True, cwd="/")
    for path in sorted(DATA.glob("*.csv")):
        assert (copy / "data" / path.name).read_bytes() == path.read_bytes(), path.name


def test_cli_demo_run(tmp_path, capsys):
    from reporter.cli import main

    assert main(["validate", str(DEMO)]) == 0
    out = capsys.readouterr().out
    assert "valid — 8 sources, 41 metrics, 41 KPIs, 7 objectives" in out
    assert main(["run", str(DEMO), "--period", "2026-10", "--no-send", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "marketing-monthly" / "2026-10" / "results.json").is_file()
    assert (
        Path(tmp_path / "marketing-monthly" / "2026-10" / "marketing-monthly_2026-10.pdf").stat().st_size
        > 10_000
    )


# --- what the report says about the numbers (docs/insights.md) ------------------------------


def _robust_z(value: float, history: list[float]) -> float:
    m = statistics.median(history)
    return (value - m) / (1.4826 * statistics.median([abs(x - m) for x in history]))


def test_the_revenue_objective_is_paced_against_decembers_target(results, reference):
    """+15 % on last year, due in December: the goal is December 2025 × 1.15 (not October's
    target), and revenue has the numbers the seasonal projection needs."""
    ref = reference
    [pace] = [i for i in results["insights"] if i["type"] == "pacing" and i["objective"] == "grow-revenue"]
    assert pace["goal"] == pytest.approx(ref["2025-12"]["revenue"] * 1.15)
    october_target = next(o for o in results["objectives"] if o["id"] == "grow-revenue")["target"]
    assert pace["goal"] != pytest.approx(october_target)
    last3 = sum(ref[m]["revenue"] for m in ("2026-08", "2026-09", "2026-10"))
    before = sum(ref[m]["revenue"] for m in ("2025-08", "2025-09", "2025-10"))
    assert pace["method"] == "seasonal"
    assert pace["projected"] == pytest.approx(ref["2025-12"]["revenue"] * last3 / before)
    assert pace["on_pace"] is (pace["projected"] >= pace["goal"])
    # the traffic objective's target is {change_vs_previous}: December's is not known yet
    assert [i for i in results["insights"] if i.get("objective") == "traffic-momentum"] == []


def test_a_provisional_kpi_is_not_among_the_biggest_moves(results, reference):
    """The quote close rate settles over 2 months (settles_after): October's −10.8 points on
    last year are mostly quotes still open. By size it would be among the three biggest falls
    on last year; it is left out of the moves, which hold no provisional KPI."""
    assert CONFIG.kpis["close_rate"].settles_after == 2
    assert results["kpis"]["close_rate"]["provisional"] is True
    fall = reference["2026-10"]["close_rate"] - reference["2025-10"]["close_rate"]
    assert fall == pytest.approx(-0.10784, abs=1e-5)
    shown = results["moves"]["vs_prior_year"]["unfavourable"]
    assert len(shown) == 3

    def size(move: dict[str, Any]) -> float:  # docs/numbers.md: rates by points, others relative
        return abs(move["change_pp"] if move["format"] == "percent" else move["change"])

    provisional = {name for name, k in results["kpis"].items() if k["provisional"]}
    assert provisional == {"close_rate", "pipeline_amount"}  # both read the quotes still open
    for moves in results["moves"].values():
        for move in (*moves["favourable"], *moves["unfavourable"]):
            assert move["kpi"] not in provisional, move
    assert abs(fall) > min(size(m) for m in shown)  # it would rank, were it final


def test_octobers_spend_is_a_season_not_news(results, reference):
    ref = reference
    spend = [ref[shift("2026-10", -n)]["marketing_spend"] for n in range(12, 0, -1)]
    spend_last_year = [ref[shift("2025-10", -n)]["marketing_spend"] for n in range(12, 0, -1)]
    z = _robust_z(ref["2026-10"]["marketing_spend"], spend)
    z_last = _robust_z(ref["2025-10"]["marketing_spend"], spend_last_year)
    assert z >= 3.5
    assert z_last >= 3.5
    found = [i for i in results["insights"] if i.get("kpi") == "marketing_spend"]
    assert "unusual_change" not in [i["type"] for i in found]
    [season] = [i for i in found if i["type"] == "seasonal"]
    assert (season["z"], season["prior_year_z"]) == (pytest.approx(z), pytest.approx(z_last))
    assert season["prior_year_value"] == pytest.approx(ref["2025-10"]["marketing_spend"])


@pytest.mark.parametrize(
    ("locale", "sentence"),
    [
        (
            "fr_FR",
            "Consommation du budget marketing sort de l'ordinaire : 108,8 %, plus qu'en octobre 2025 "
            "(100,3 %) et que d'habitude (97,8 %).",
        ),
        (
            "en_US",
            "Marketing budget used is unusual this period: 108.8%, above 100.3% in October 2025 and a "
            "usual 97.8%.",
        ),
    ],
)
def test_octobers_budget_overrun_is_held_against_last_october(locale, sentence, reference):
    """October holds the trade fair every year: the budget used (108.8 %) is held against last
    October (100.3 %) as well as the year's median (97.8 %), by the same robust z with the same
    spread. It is 3.9 spreads above last October, so it is still unusual, and the sentence says
    both; the ROI, as low as last October, is no longer called unusual."""
    from reporter.run.stages import describe
    from tests.conftest import with_locale

    ref = reference

    def against(kpi: str) -> tuple[float, float, float]:
        history = [ref[shift("2026-10", -n)][kpi] for n in range(12, 0, -1)]
        m = statistics.median(history)
        mad = statistics.median([abs(x - m) for x in history])
        value, last = ref["2026-10"][kpi], ref["2025-10"][kpi]
        return (value - m) / (1.4826 * mad), (value - last) / (1.4826 * mad), m

    z, season_z, median = against("budget_consumed")
    assert (z, season_z) == (pytest.approx(5.035, abs=1e-3), pytest.approx(3.873, abs=1e-3))
    assert (round(ref["2025-10"]["budget_consumed"], 3), round(median, 3)) == (1.003, 0.978)
    roi_z, roi_season_z, _ = against("marketing_roi")
    assert abs(roi_z) >= 3.5 > abs(roi_season_z)  # unusual for the year, not for an October
    config = with_locale(CONFIG, locale)
    typed = describe(config, compute(config, Period.parse("2026-10", "month"), NOW))
    [found] = [i for i in typed.insights if i["type"] == "unusual_change" and i["kpi"] == "budget_consumed"]
    assert found["prior_year_value"] == pytest.approx(ref["2025-10"]["budget_consumed"])
    assert found["season_z"] == pytest.approx(season_z)
    assert found["text"].replace("\u00a0", " ") == sentence
    assert [
        i for i in typed.insights if i.get("kpi") == "marketing_roi" and i["type"] == "unusual_change"
    ] == []


def _reads(name: str) -> set[str]:
    """The metrics a KPI reads, from the YAML's formulas (names, recursively through KPIs)."""
    out: set[str] = set()
    for word in re.findall(r"[a-z_]+", CONFIG.kpis[name].formula):
        if word in CONFIG.metrics:
            out.add(word)
        elif word in CONFIG.kpis and word != name:
            out |= _reads(word)
    return out


@pytest.mark.parametrize("locale", ["fr_FR", "en_US"])
def test_no_two_takeaways_tell_the_same_event(locale, reference):
    """The summary's takeaways (and the digest's first three): no two read a metric in common.
    October's budget overspend (spend / budget 108.8 %, over its 100 % cap) and the trade fair's
    seasonal spend read the same spend: the overspend is the one told, first, with its target
    and the trade fair as its why (the spend's biggest contributor)."""
    from reporter.render.context import Formatter
    from reporter.render.html import build_context
    from reporter.run.stages import describe
    from tests.conftest import with_locale

    config = with_locale(CONFIG, locale)
    typed = describe(config, compute(config, Period.parse("2026-10", "month"), NOW))
    said = build_context(config, typed, Formatter.for_report(config.report))["takeaways"]
    assert len(said) == config.insights.max_summary
    by_text = {i["text"]: i for i in typed.insights}
    labels = {
        (k.label.get(locale[:2]) if isinstance(k.label, dict) else k.label) or name: name
        for name, k in config.kpis.items()
    }

    def kpi_of(text: str) -> tuple[str, bool]:
        """The takeaway's KPI, and whether it is an insight (else: a KPI over its cap, told by
        its value, target and previous value)."""
        insight = next((by_text[t] for t in by_text if text.startswith(t)), None)
        if insight is not None:
            return insight["kpi"], True
        return next(k for label, k in labels.items() if text.startswith(label)), False

    told = [kpi_of(text) for text in said]
    kpis = [k for k, _ in told]
    # no two insights read a metric in common; an objective's KPI over its cap is a fact of its
    # own (the CAC over its ceiling, while the budget's overspend reads the same spend)
    insights = [k for k, is_insight in told if is_insight]
    for a, b in itertools.combinations(insights, 2):
        assert not (_reads(a) & _reads(b)), (a, b, said)
    assert [k for k, is_insight in told if not is_insight] == ["cac"]
    assert kpis[0] == "budget_consumed"
    assert (
        reference["2026-10"]["budget_consumed"] > 1.0
    )  # over the cap of the budget-discipline objective ({value: 1.0}, lower is better)
    cap = {"fr_FR": "Au-dessus de sa cible de 100,0\u00a0%.", "en_US": "Above its target of 100.0%."}[locale]
    # the trade fair is held every October: told as recurring, with last October's spend
    fair = {
        "fr_FR": "Salon Paris Expo (+34\u202f460\xa0€\xa0; déjà en octobre 2025\xa0: 27\u202f150\xa0€)",
        "en_US": "Paris Expo trade fair (+\u2060€34,460; also in October 2025: €27,150)",
    }[locale]
    assert cap in said[0]
    assert fair in said[0]
    assert "marketing_spend" not in kpis  # the milder sentence on the same spend is the one left out


def _spend_and_new_customers(label: str) -> tuple[float, int]:
    """The month's marketing spend and its new customers (distinct customers of orders marked
    new), from the CSV rows: the two parts of the CAC."""
    start, end = month(label)
    spend = math.fsum(_num(r["amount"]) or 0.0 for r in SOURCES["spend"] if start <= r["_day"] <= end)
    new = {
        r["customer_id"] for r in SOURCES["orders"] if start <= r["_day"] <= end and r["new_customer"] == "1"
    }
    return spend, len(new)


def _euros(value: float, locale: str, sign: str = "") -> str:
    """A whole amount in euros as the report writes it: 1 810 €, €1,810 (a sign before it)."""
    digits = f"{round(abs(value)):,}"
    if locale == "fr_FR":
        return sign + digits.replace(",", "\u202f") + "\u00a0€"
    return sign + ("\u2060" if sign else "") + "€" + digits


@pytest.mark.parametrize("locale", ["fr_FR", "en_US"])
def test_the_cac_takeaway_says_which_of_its_parts_moved(locale):
    """October's CAC (marketing spend / new customers) is 1 810 €, over its 1 500 € ceiling,
    from 722 € in September: the spend more than doubled (the trade fair, which the budget's
    takeaway above already names) while the new customers fell by 4. Its takeaway says both, in
    one sentence, the spend marked as told above rather than explained twice."""
    from reporter.render.context import Formatter
    from reporter.render.html import build_context
    from reporter.run.stages import describe
    from tests.conftest import with_locale

    (spend, new), (spend_before, new_before) = (_spend_and_new_customers(p) for p in ("2026-10", "2026-09"))
    # by hand: 59 722,59 € / 33 = 1 809,78 €; 26 704,27 € / 37 = 721,74 €
    assert (round(spend, 2), new, round(spend_before, 2), new_before) == (59722.59, 33, 26704.27, 37)
    cac, cac_before = spend / new, spend_before / new_before
    assert cac > 1500 > cac_before

    config = with_locale(CONFIG, locale)
    typed = describe(config, compute(config, Period.parse("2026-10", "month"), NOW))
    said = build_context(config, typed, Formatter.for_report(config.report))["takeaways"]
    words = {
        "cac": _euros(cac, locale),
        "cap": _euros(1500, locale),
        "before": _euros(cac_before, locale),
        "spend": _euros(spend - spend_before, locale, "+"),
        "new": f"\u2212{new_before - new}",
    }
    expected = {
        "fr_FR": "Coût d'acquisition client (CAC)\u00a0: {cac}, au-dessus de sa cible de {cap} ({before} la "
        "période précédente)\u00a0: dépenses marketing {spend} (voir plus haut), nouveaux clients {new}.",
        "en_US": "Customer acquisition cost (CAC): {cac}, above its target of {cap} ({before} the previous "
        "period): marketing spend {spend} (see above), new customers {new}.",
    }[locale].format(**words)
    assert said[1] == expected
    # "see above": the budget's takeaway, first, told the spend's change and its trade fair
    assert _euros(spend - spend_before, locale, "+") in said[0]
    # the numbers it says are those of its ratio_parts insight
    [parts] = [i for i in typed.insights if i["type"] == "ratio_parts" and i["kpi"] == "cac"]
    assert (parts["value"], parts["previous"]) == (pytest.approx(cac), pytest.approx(cac_before))
    assert parts["change"] == pytest.approx(cac - cac_before)
    assert [(p["name"], p["role"]) for p in parts["parts"]] == [
        ("marketing_spend", "numerator"),
        ("new_customers", "denominator"),
    ]
    numerator, denominator = parts["parts"]
    assert (numerator["value"], numerator["previous"]) == (pytest.approx(spend), pytest.approx(spend_before))
    assert numerator["change"] == pytest.approx(spend - spend_before)
    assert (denominator["value"], denominator["previous"], denominator["change"]) == (33, 37, -4)


def _spend_by_campaign(label: str) -> dict[str, float]:
    start, end = month(label)
    out: dict[str, float] = {}
    for r in SOURCES["spend"]:
        if start <= r["_day"] <= end:
            out[r["campaign"]] = out.get(r["campaign"], 0.0) + (_num(r["amount"]) or 0.0)
    return out


@pytest.mark.parametrize("locale", ["fr_FR", "en_US"])
def test_a_campaign_held_every_october_is_recurring_not_new(locale):
    """Salon Paris Expo has no spend in September 2026 but has in October 2025 (and 2024): on
    the previous period it is ``returning``, with last October's spend as ``prior_year``, and
    its sentence says when it was there and how much, never "new". A campaign absent from both
    September and last October stays new (none in the demo's October: checked by hand below)."""
    from reporter.run.stages import describe
    from tests.conftest import with_locale

    now, before, year_ago = (_spend_by_campaign(p) for p in ("2026-10", "2026-09", "2025-10"))
    returning = sorted(k for k in now if k not in before and k in year_ago)
    assert returning == ["Salon Paris Expo"]
    assert [k for k in now if k not in before and k not in year_ago] == []  # nothing new
    config = with_locale(CONFIG, locale)
    typed = describe(config, compute(config, Period.parse("2026-10", "month"), NOW))
    [said] = [
        i
        for i in typed.insights
        if i["type"] == "contributors" and i["kpi"] == "marketing_spend" and i["vs"] == "previous"
    ]
    [fair] = [i for i in said["items"] if i.get("group")]
    assert fair["group"] == "returning"
    assert (fair["count"], fair["key"]) == (1, "Salon Paris Expo")
    assert fair["part"] == pytest.approx(now["Salon Paris Expo"])
    assert fair["prior_year"] == pytest.approx(year_ago["Salon Paris Expo"])
    assert (now["Salon Paris Expo"], year_ago["Salon Paris Expo"]) == (34460.0, 27150.0)
    words = {
        "fr_FR": "Salon Paris Expo (+34\u202f460\xa0€\xa0; déjà en octobre 2025\xa0: 27\u202f150\xa0€)",
        "en_US": "Paris Expo trade fair (+\u2060€34,460; also in October 2025: €27,150)",
    }[locale]
    assert words in said["text"], said["text"]
    assert not re.search(r"\bnew\b|nouve", said["text"]), said["text"]


@pytest.mark.parametrize(
    ("locale", "words", "wrong"),
    [
        ("fr_FR", "Salon Paris Expo (−27\u202f150\xa0€\xa0; hors saison, comme en novembre 2024)", "dispar"),
        ("en_US", "Paris Expo trade fair (−\u2060€27,150; off season, as in November 2024)", "gone"),
    ],
)
def test_a_campaign_held_every_october_is_off_season_in_november_not_gone(locale, words, wrong):
    """November 2025 against October 2025: Salon Paris Expo has no spend, as in November 2024
    after October 2024. The fair is expected to be absent: ``off_season``, never "gone"
    ("disparue"), and still the biggest part of the spend's fall (the parts add up)."""
    from reporter.run.stages import describe
    from tests.conftest import with_locale

    now, before, year_ago, before_year_ago = (
        _spend_by_campaign(p) for p in ("2025-11", "2025-10", "2024-11", "2024-10")
    )
    left = [k for k in before if k not in now]
    assert left == ["Salon Paris Expo"]
    assert "Salon Paris Expo" not in year_ago
    assert "Salon Paris Expo" in before_year_ago
    config = with_locale(CONFIG, locale)
    typed = describe(config, compute(config, Period.parse("2025-11", "month"), NOW))
    [said] = [
        i
        for i in typed.insights
        if i["type"] == "contributors" and i["kpi"] == "marketing_spend" and i["vs"] == "previous"
    ]
    assert said["change"] == pytest.approx(sum(now.values()) - sum(before.values()))
    [fair] = [i for i in said["items"] if i.get("group")]
    assert (fair["group"], fair["count"], fair["key"]) == ("off_season", 1, "Salon Paris Expo")
    assert fair["part"] == pytest.approx(-before["Salon Paris Expo"]) == -27150.0
    assert said["items"][0] is fair  # the biggest part
    assert words in said["text"], said["text"]
    assert wrong not in said["text"], said["text"]


def test_open_quotes_settle_after_two_months():
    """A month's open quotes (the pipeline of the leads created in it) stop changing once they
    are won or lost: in the demo's data only the last two months still hold open quotes, so the
    pipeline's last two months are provisional (``settles_after: 2``), as the close rate's."""
    open_months = sorted({r["created_at"][:7] for r in SOURCES["crm"] if r["stage"] == "quote"})
    last = max(r["_day"] for r in SOURCES["crm"]).isoformat()[:7]
    assert last == "2026-10"
    assert open_months == [shift(last, -1), last]
    assert CONFIG.kpis["pipeline_amount"].settles_after == len(open_months)
    assert CONFIG.kpis["close_rate"].settles_after == len(open_months)
