"""The public Olist marketing funnel (a sample under tests/fixtures/olist, see its LICENSE.md):
conversion by lead origin over a derived source that joins the leads with the closed deals,
checked month by month against a join of the two CSV files done here with the csv module, from
the files and from PostgreSQL tables (where the database does the join)."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import defaultdict
from pathlib import Path

import pytest

from reporter.compute.database import compute
from reporter.config import load_config
from reporter.periods import Period

OLIST = Path(__file__).resolve().parent / "fixtures" / "olist"
LEADS = OLIST / "olist_marketing_qualified_leads_dataset.csv"
DEALS = OLIST / "olist_closed_deals_dataset.csv"
CONVERSION = OLIST / "conversion.yaml"
NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
MONTHS = ["2017-12", "2018-01", "2018-02", "2018-03", "2018-04", "2018-05"]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _expected(month: str) -> tuple[float, dict[str | None, float], int]:
    """Conversion (leads with a closed deal / leads) of the leads first contacted in ``month``,
    overall and by origin (an empty origin under None), and that month's number of leads."""
    won = {deal["mql_id"] for deal in _rows(DEALS)}
    counts: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    for lead in _rows(LEADS):
        if lead["first_contact_date"][:7] != month:
            continue
        key = lead["origin"] or None
        counts[key][0] += 1
        counts[key][1] += lead["mql_id"] in won
    leads = sum(n for n, _ in counts.values())
    closed = sum(w for _, w in counts.values())
    return closed / leads, {k: w / n for k, (n, w) in counts.items()}, leads


def test_the_sample_is_what_its_licence_says():
    leads, deals = _rows(LEADS), _rows(DEALS)
    assert list(leads[0]) == ["mql_id", "first_contact_date", "landing_page_id", "origin"]
    assert list(deals[0])[:7] == [
        "mql_id", "seller_id", "sdr_id", "sr_id", "won_date", "business_segment", "lead_type",
    ]  # fmt: skip
    assert len(leads) == 1170
    assert len(deals) == 150
    assert {r["first_contact_date"][:7] for r in leads} == set(MONTHS)
    assert all(r["mql_id"][0] in "012" for r in leads)
    assert {d["mql_id"] for d in deals} <= {r["mql_id"] for r in leads}
    # the original formats: ISO dates, ISO timestamps with seconds
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", r["first_contact_date"]) for r in leads)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", d["won_date"]) for d in deals)


def _check(config, months: list[str]) -> None:
    for month in months:
        results = compute(config, Period.parse(month, "month"), NOW)
        rate, by_origin, leads = _expected(month)
        assert results.kpis["conversion"].value == pytest.approx(rate), month
        rows = {r.key: r.value for r in results.breakdowns["conversion_by_origin"]}
        assert rows == pytest.approx(by_origin), month
        assert results.kpis["leads"].value == leads, month


def test_olist_conversion_by_origin_from_the_files_equals_a_plain_python_join():
    config = load_config(CONVERSION, env={})
    _check(config, MONTHS)
    # a month with leads of an empty origin is among those checked
    assert any(None in _expected(m)[1] for m in MONTHS)


def test_olist_conversion_by_origin_joined_by_postgresql_equals_a_plain_python_join(tmp_path, pg_url):
    import uuid

    import sqlalchemy as sa

    tag = uuid.uuid4().hex[:8]
    leads_table, deals_table = f"olist_leads_{tag}", f"olist_deals_{tag}"
    leads, deals = _rows(LEADS), _rows(DEALS)
    engine = sa.create_engine(pg_url)
    dates = {"first_contact_date": "date", "won_date": "timestamp"}
    try:
        with engine.begin() as conn:
            for table, rows in ((leads_table, leads), (deals_table, deals)):
                columns = list(rows[0])
                conn.execute(
                    sa.text(
                        f"create table {table} ("
                        + ", ".join(f"{c} {dates.get(c, 'text')}" for c in columns)
                        + ")"
                    )
                )
                conn.execute(
                    sa.text(
                        f"insert into {table} values ("
                        + ", ".join(f"cast(:{c} as {dates.get(c, 'text')})" for c in columns)
                        + ")"
                    ),
                    [{c: (v or None) for c, v in row.items()} for row in rows],
                )
        text = CONVERSION.read_text(encoding="utf-8")
        for path, table in ((LEADS.name, leads_table), (DEALS.name, deals_table)):
            text = text.replace(
                f"    type: csv\n    path: {path}\n",
                f"    type: sql\n    connection: crm\n    table: {table}\n",
            )
        assert text.count("type: sql") == 2
        path = tmp_path / "conversion.yaml"
        path.write_text(text, encoding="utf-8")
        config = load_config(path, env={"REPORTER_CONNECTION_CRM": pg_url})

        statements: list[str] = []

        def seen(conn, cursor, statement, parameters, context, executemany):
            statements.append(" ".join(statement.split()))

        sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)
        try:
            _check(config, MONTHS)
        finally:
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
        # the database did the join: it received statements joining both tables and counting
        # over the join (the rate by origin among them), and never one reading rows of either
        # table (its columns are asked for with "WHERE 1 = 0", which reads none)
        joins = [s for s in statements if "LEFT JOIN" in s.upper()]
        assert all(leads_table in s and deals_table in s for s in joins)
        counted = [s for s in joins if s.upper().startswith("SELECT ") and "COUNT(*) FILTER" in s.upper()]
        assert any('"origin" AS __key' in s for s in counted)
        rows_read = [
            s for s in statements if s.upper().startswith("SELECT *") and not s.endswith("WHERE 1 = 0")
        ]
        assert rows_read == []
    finally:
        with engine.begin() as conn:
            for table in (leads_table, deals_table):
                conn.execute(sa.text(f"drop table if exists {table}"))
        engine.dispose()


def test_a_ratio_breakdown_shows_its_divisor_beside_the_rate(tmp_path, capsys):
    """Conversion by origin: each row shows the leads it is out of, in results.json and in the
    PDF's table, as the csv module counts them."""
    import io
    import json

    import pypdf

    from reporter.cli import main

    out = tmp_path / "out"
    assert main(["run", str(CONVERSION), "--period", "2018-05", "--no-send", "--output", str(out)]) == 0
    capsys.readouterr()
    folder = out / "olist-conversion" / "2018-05"
    rows = json.loads((folder / "results.json").read_text(encoding="utf-8"))["breakdowns"]
    rows = rows["conversion_by_origin"]
    leads: dict[str | None, int] = defaultdict(int)
    for lead in _rows(LEADS):
        if lead["first_contact_date"].startswith("2018-05"):
            leads[lead["origin"] or None] += 1
    assert {r["key"]: r["base"] for r in rows} == leads
    _, by_origin, _ = _expected("2018-05")
    assert {r["key"]: r["value"] for r in rows} == pytest.approx(by_origin)
    pdf = pypdf.PdfReader(io.BytesIO((folder / "olist-conversion_2018-05.pdf").read_bytes()))
    text = next(p.extract_text() for p in pdf.pages if "Conversion by origin" in p.extract_text())
    lines = text.splitlines()
    header = lines.index("Origin Conversion Leads")  # the divisor's column: the leads
    table = lines[header + 1 : header + 1 + len(rows)]
    assert table[:3] == ["(none) 33.3% 3", "referral 28.6% 14", "unknown 16.0% 25"]
    for line, row in zip(table, rows, strict=True):
        name = "(none)" if row["key"] is None else row["key"]
        assert line == f"{name} {round(100 * by_origin[row['key']], 1):.1f}% {leads[row['key']]}"


def test_preview_without_a_period_shows_the_latest_month_with_data_and_says_so(tmp_path, capsys, monkeypatch):
    from reporter.cli import main

    out = tmp_path / "out"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795507200")  # 2026-11-24: the last complete month is 2026-10
    assert main(["preview", str(CONVERSION), "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the leads end in May 2018, the deals in November 2018: the latest month both reach
    assert lines[0] == (
        "olist-conversion: no data in 2026-10, the last complete month; the latest month with data "
        f"is 2018-05: previewed instead (`reporter preview {CONVERSION} --period P` for another)"
    )
    html = out / "olist-conversion" / "2018-05" / "olist-conversion_2018-05.html"
    assert lines[1].startswith(f"olist-conversion: preview written to {html} ")
    assert sorted(p.name for p in (out / "olist-conversion").iterdir()) == ["2018-05"]
    # the page shows May 2018's numbers: the divisor's column beside the rate
    page = html.read_text(encoding="utf-8")
    assert '<th scope="col" class="num base">Leads</th>' in page
    assert '<td>referral</td><td class="num">28.6%</td><td class="num base">14</td>' in page
    # a period given, or a last complete month with data: previewed as asked, nothing said
    assert main(["preview", str(CONVERSION), "--output", str(out), "--period", "2018-03"]) == 0
    assert "no data" not in capsys.readouterr().out
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1529020800")  # 2018-06-15: the last complete month is 2018-05
    assert main(["preview", str(CONVERSION), "--output", str(tmp_path / "o2")]) == 0
    said = capsys.readouterr().out
    assert "no data" not in said
    assert (tmp_path / "o2" / "olist-conversion" / "2018-05").is_dir()


def test_the_joining_sources_page_shows_this_report_and_its_numbers():
    """docs/joining-sources.md shows conversion.yaml as it is here, and the numbers of May 2018
    it states are those of the csv module's join."""
    page = (OLIST.parent.parent.parent / "docs" / "joining-sources.md").read_text(encoding="utf-8")
    block = re.search(r"^`conversion\.yaml`:\n\n```yaml\n(.*?)```", page, flags=re.M | re.S)
    assert block is not None
    assert block.group(1) == CONVERSION.read_text(encoding="utf-8")
    rate, by_origin, leads = _expected("2018-05")
    won = {d["mql_id"]: d["won_date"] for d in _rows(DEALS)}
    may = [r for r in _rows(LEADS) if r["first_contact_date"].startswith("2018-05")]
    closed = [won[r["mql_id"]] for r in may if r["mql_id"] in won]
    counts = {o: sum(1 for r in may if r["origin"] == o) for o in ("referral", "unknown", "organic_search")}
    text = " ".join(page.split())
    assert (leads, len(closed), f"{100 * rate:.1f}") == (263, 34, "12.9")
    assert "May 2018 has 263 leads, 34 of which closed (some of them months later)" in text
    assert max(closed) >= "2018-07"  # months later indeed
    assert "a conversion of 12.9 %" in text

    def shown(origin: str) -> str:
        share, n = by_origin[origin], counts[origin]
        return f"{100 * share:.1f} % ({round(share * n)} of {n}"

    assert (
        f"By origin, referral converts best at {shown('referral')} leads), then unknown at "
        f"{shown('unknown')}) and organic_search at {shown('organic_search')});"
    ) in text
    best = sorted(by_origin.items(), key=lambda kv: -kv[1])
    assert [k for k, _ in best[:4]] == [None, "referral", "unknown", "organic_search"]  # None: 1 of 3
    assert sum(1 for r in may if not r["origin"]) == 3
    assert 'the three leads without an origin, shown as "(none)", top the table with 1 of 3' in text
