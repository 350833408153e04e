"""``reporter init``: every starter validates and runs as written; ``--source`` sniffs a CSV into
a stanza that validates; nothing is ever overwritten."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from pathlib import Path

import pytest

from reporter import cli
from reporter.config import load_config
from reporter.config.schema import json_schema
from reporter.init import KINDS, init_report, sniff

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "config" / "data" / "web_traffic.csv"
EPOCH = "1795507200"  # 2026-11-24 08:00 UTC: the last complete month is 2026-10
NOW = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


def _results(out: Path, report: str, period: str) -> dict:
    return json.loads((out / report / period / "results.json").read_text(encoding="utf-8"))


@pytest.mark.usefixtures("fixed_clock")
@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_validates_and_runs_as_written(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dt.datetime.fromtimestamp(int(EPOCH), tz=dt.UTC) == NOW
    folder = tmp_path / "starter"
    assert cli.main(["init", str(folder), "--kind", kind]) == 0
    out = capsys.readouterr().out
    assert f"a {kind} starter with sample data for 2024-11 to 2026-10; next:\n" in out
    assert f"wrote {folder / 'report.yaml'}\n" in out
    assert cli.main(["validate", str(folder)]) == 0
    assert capsys.readouterr().out.startswith(f"{folder / 'report.yaml'}: valid — ")
    # The default period (the clock's last complete month) and a fixed older one.
    output = tmp_path / "out"
    assert cli.main(["run", str(folder / "report.yaml"), "--no-send", "--output", str(output)]) == 0
    assert (
        cli.main(
            ["run", str(folder / "report.yaml"), "--no-send", "--output", str(output), "--period", "2025-06"]
        )
        == 0
    )
    report = f"{kind}-monthly"
    for period in ("2026-10", "2025-06"):
        results = _results(output, report, period)
        assert results["quality"]["passed"] is True
        assert (output / report / period / f"{report}_{period}.pdf").read_bytes().startswith(b"%PDF-")
    text = (folder / "report.yaml").read_text(encoding="utf-8")
    assert "@" not in text.replace("@example.com", "")  # every placeholder replaced
    assert "due: 2000-12-31" not in text
    assert text.count("due: 2026-12-31") == len(load_config(folder / "report.yaml").objectives)
    # Every objective has a status and every KPI a value in the default period.
    results = _results(output, report, "2026-10")
    assert all(k["value"] is not None for k in results["kpis"].values())
    assert {o["status"] for o in results["objectives"]} <= {"on_track", "at_risk", "off_track"}


def test_starter_numbers_match_the_sample_files(tmp_path: Path) -> None:
    """The marketing KPIs recomputed from the CSVs with the csv module."""
    init_report(tmp_path / "m", "marketing", now=NOW)
    with (tmp_path / "m" / "data" / "leads.csv").open(encoding="utf-8") as handle:
        leads = [r for r in csv.DictReader(handle) if r["created_at"].startswith("2026-10")]
    with (tmp_path / "m" / "data" / "spend.csv").open(encoding="utf-8") as handle:
        spend = sum(float(r["amount"]) for r in csv.DictReader(handle) if r["month"] == "2026-10-01")
    won = [r for r in leads if r["won"] == "1"]
    from reporter.compute.database import compute
    from reporter.periods import Period

    config = load_config(tmp_path / "m" / "report.yaml")
    results = compute(config, Period.parse("2026-10", "month"), NOW)
    kpis = {n: k.value for n, k in results.kpis.items()}
    assert kpis["leads"] == len(leads)
    assert kpis["mql_rate"] == pytest.approx(sum(r["mql"] == "1" for r in leads) / len(leads))
    assert kpis["cac"] == pytest.approx(spend / len(won))
    margin = sum(float(r["amount"]) * float(r["margin_rate"]) for r in won)
    assert kpis["roi"] == pytest.approx((margin - spend) / spend)
    assert results.quality.passed


def test_sample_data_is_deterministic_per_month(tmp_path: Path) -> None:
    init_report(tmp_path / "a", "sales", now=NOW)
    init_report(tmp_path / "b", "sales", now=NOW)
    init_report(tmp_path / "c", "sales", now=NOW + dt.timedelta(days=31))  # one month later
    for name in ("deals.csv", "costs.csv", "bank.csv"):
        a = (tmp_path / "a" / "data" / name).read_bytes()
        assert a == (tmp_path / "b" / "data" / name).read_bytes()

    # A month's rows do not depend on when init ran: 2025-06 is in both windows.
    def june(folder: str) -> list[str]:
        lines = (tmp_path / folder / "data" / "deals.csv").read_text(encoding="utf-8").splitlines()
        return [line for line in lines if line.startswith("2025-06")]

    assert june("a")
    assert june("a") == june("c")
    c = (tmp_path / "c" / "data" / "deals.csv").read_text(encoding="utf-8").splitlines()
    assert c[1].startswith("2024-12-01,")
    assert c[-1].startswith("2026-11-30,")


def test_every_yaml_starts_with_the_modeline_and_the_schema_is_written(tmp_path: Path) -> None:
    written = init_report(tmp_path / "a", "newsletter", now=NOW)
    yamls = [p for p in written.files if p.suffix == ".yaml"]
    yamls += [p for p in init_report(tmp_path / "b", now=NOW, source=WEB).files if p.suffix == ".yaml"]
    assert [p.name for p in yamls] == ["report.yaml", "web-traffic.yaml"]
    for path in yamls:
        assert path.read_text(encoding="utf-8").splitlines()[0] == (
            "# yaml-language-server: $schema=reporter.schema.json"
        )
    for folder in ("a", "b"):
        schema = json.loads((tmp_path / folder / "reporter.schema.json").read_text(encoding="utf-8"))
        assert schema == json_schema()
    assert {"report", "sources", "metrics", "kpis"} <= set(schema["properties"])


def test_source_latin1_semicolon_decimal_comma(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    found = sniff(WEB)
    assert (found.delimiter, found.decimal, found.encoding) == (";", ",", "latin-1")
    assert (found.date_column, found.date_format) == ("date", "%d/%m/%Y")
    assert found.null_values == ["", "n/a"]
    assert found.numeric == [
        "sessions",
        "nouveaux_visiteurs",
        "visiteurs_recurrents",
        "rebonds",
        "pages_vues",
        "duree_moyenne",
    ]
    folder = tmp_path / "mine"
    assert cli.main(["init", str(folder), "--source", str(WEB)]) == 0
    yaml = folder / "web-traffic.yaml"
    allow = f" --allow-dir {WEB.resolve().parent}"
    assert capsys.readouterr().out == (
        f"wrote {yaml}\nwrote {folder / 'reporter.schema.json'}\n"
        "a report over web_traffic.csv (dates from 2023-11 to 2026-10): rows, sum of sessions, "
        "sum of nouveaux_visiteurs, sum of visiteurs_recurrents, sum of rebonds, sum of pages_vues, "
        "sum of duree_moyenne; by canal; next:\n"
        f"  reporter validate {yaml}{allow}\n"
        f"  reporter preview {yaml}{allow}\n"
        f"  reporter run {yaml} --period 2026-10 --no-send{allow}\n"
    )
    # only the report over the file (and the schema): no starter, no sample data
    assert sorted(p.name for p in folder.iterdir()) == ["reporter.schema.json", "web-traffic.yaml"]
    # the CSV is outside the report's folder: read only from a folder the operator allows
    assert cli.main(["validate", str(yaml)]) == 2
    relative = Path(os.path.relpath(WEB.resolve(), folder.resolve())).as_posix()
    assert f"sources.web_traffic.path: {relative} is outside" in capsys.readouterr().err
    assert cli.main(["validate", str(yaml), "--allow-dir", str(WEB.parent)]) == 0
    assert capsys.readouterr().out.endswith(
        "web-traffic.yaml: valid — 1 source, 7 metrics, 7 KPIs, 0 objectives, 1 breakdown, 0 funnel stages\n"
    )
    text = yaml.read_text(encoding="utf-8")
    assert f'    path: "{relative}"   # outside this folder: validate and run with --allow-dir\n' in text
    assert '  - {kpi: sessions, by: "canal", label: "Canal"}\n' in text
    monkeypatch.setenv("REPORTER_ALLOW_DIRS", str(WEB.parent))
    config = load_config(folder / "web-traffic.yaml")
    source = config.sources["web_traffic"]
    assert source.path is not None
    assert (config.base_dir / source.path).resolve() == WEB.resolve()  # relative to the YAML
    assert source.csv is not None
    assert (source.csv.delimiter, source.csv.decimal, source.csv.encoding) == (";", ",", "latin-1")
    assert source.csv.date_format == "%d/%m/%Y"
    # The decimal comma column sums to what the file says (read independently).
    from reporter.compute.database import compute
    from reporter.periods import Period

    results = compute(config, Period.parse("2026-10", "month"), NOW)
    kpis = {n: k.value for n, k in results.kpis.items()}
    with WEB.open(encoding="latin-1", newline="") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter=";") if r["date"].endswith("/10/2026")]
    assert kpis["sessions"] == sum(int(r["sessions"]) for r in rows)
    durations = [
        float(r["duree_moyenne"].replace(",", ".")) for r in rows if r["duree_moyenne"] not in ("", "n/a")
    ]
    assert kpis["duree_moyenne"] == pytest.approx(sum(durations))
    assert kpis["rows"] == len(rows)


def test_source_plain_csv(tmp_path: Path) -> None:
    data = tmp_path / "mine" / "exports" / "Ventes 2026.csv"
    data.parent.mkdir(parents=True)
    lines = ["day,region,orders,amount,notes"]
    for i in range(60):
        day = dt.date(2026, 9, 1) + dt.timedelta(days=i)
        lines.append(f"{day.isoformat()},{'North' if i % 2 else 'South'},{i % 7},{i * 10.25:.2f},ok {i}")
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = sniff(data)
    assert (found.delimiter, found.decimal, found.encoding) == (",", ".", "utf-8")
    assert (found.date_column, found.date_format) == ("day", "%Y-%m-%d")
    assert found.numeric == ["orders", "amount"]
    written = init_report(tmp_path / "mine", "marketing", now=NOW, source=data)
    # the data ends on 2026-10-30: the month to run is the one before (the gate wants the 31st)
    assert (written.first, written.last, written.complete) == ("2026-09", "2026-10", "2026-09")
    text = (tmp_path / "mine" / "ventes-2026.yaml").read_text(encoding="utf-8")
    # a row per day and region, no identifier: the breakdown cuts the first sum, not the rows
    assert '  - {kpi: orders, by: "region", label: "Region"}\n' in text
    assert '    path: "exports/Ventes 2026.csv"\n' in text  # inside the folder: relative
    config = load_config(tmp_path / "mine" / "ventes-2026.yaml")
    assert list(config.metrics) == ["rows", "orders", "amount"]
    assert config.kpis["amount"].label == "Amount"
    from reporter.compute.database import compute
    from reporter.periods import Period

    results = compute(config, Period.parse("2026-10", "month"), NOW)
    kpis = {n: k.value for n, k in results.kpis.items()}
    assert kpis["amount"] == pytest.approx(sum(i * 10.25 for i in range(30, 60)))
    assert results.quality.passed is False  # the data stops on 2026-10-30: the gate says so


def test_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "report.yaml").write_text("mine\n", encoding="utf-8")
    assert cli.main(["init", str(folder), "--kind", "sales"]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: init: {folder / 'report.yaml'} already exists; nothing was written "
        "(choose another folder or move these files away)\n"
    )
    assert (folder / "report.yaml").read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in folder.iterdir()) == ["report.yaml"]  # no data/, no schema
    # A second init over a complete starter names every file it would replace.
    other = tmp_path / "s"
    init_report(other, "newsletter", now=NOW)
    before = {p: p.read_bytes() for p in other.rglob("*") if p.is_file()}
    assert cli.main(["init", str(other), "--kind", "newsletter"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"reporter: error: init: {other / 'report.yaml'}, {other / 'data' / 'campaigns.csv'}, "
    )
    assert err.endswith(
        " already exist; nothing was written (choose another folder or move these files away)\n"
    )
    assert {p: p.read_bytes() for p in other.rglob("*") if p.is_file()} == before


def test_bad_kind_and_bad_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["init", str(tmp_path), "--kind", "finance"]) == 2
    assert capsys.readouterr().err == (
        "reporter: error: init: argument --kind: invalid choice: 'finance' "
        "(choose from 'marketing', 'sales', 'newsletter'); see 'reporter init --help'\n"
    )
    afile = tmp_path / "a-file"
    afile.write_text("", encoding="utf-8")
    assert cli.main(["init", str(afile)]) == 2
    assert capsys.readouterr().err == f"reporter: error: init: {afile} exists and is not a folder\n"
    assert cli.main(["init", str(tmp_path / "x"), "--source", str(tmp_path / "nope.csv")]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: init: --source {tmp_path / 'nope.csv'}: file not found\n"
    )
    undated = tmp_path / "undated.csv"
    undated.write_text("name,value\na,1\nb,2\n", encoding="utf-8")
    assert cli.main(["init", str(tmp_path / "y"), "--source", str(undated)]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: init: --source {undated}: no column reads as a date (name (VARCHAR), "
        "value (BIGINT)); every source needs a date_column: export the file with a date column, "
        "or write the stanza by hand\n"
    )
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "y").exists()


def test_default_period_with_the_real_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a fixed clock, init's data reaches the month that a plain `run` picks."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert cli.main(["init", str(tmp_path / "n"), "--kind", "newsletter"]) == 0
    out = tmp_path / "out"
    assert cli.main(["run", str(tmp_path / "n" / "report.yaml"), "--no-send", "--output", str(out)]) == 0
    (period,) = [p.name for p in (out / "newsletter-monthly").iterdir()]
    assert _results(out, "newsletter-monthly", period)["quality"]["passed"] is True


OLIST_LEADS = ROOT / "tests" / "fixtures" / "olist" / "olist_marketing_qualified_leads_dataset.csv"


def test_source_on_the_olist_leads_validates_and_runs_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of events (one row per lead, no measure): the report counts rows and distinct ids
    per month and breaks the rows down by origin; its PDF shows what the csv module counts."""
    import io
    import shutil

    import pypdf

    exports = tmp_path / "exports"
    exports.mkdir()
    leads = exports / OLIST_LEADS.name
    shutil.copyfile(OLIST_LEADS, leads)
    folder = tmp_path / "report"
    assert cli.main(["init", str(folder), "--source", str(leads)]) == 0
    yaml = folder / "olist-marketing-qualified-leads-dataset.yaml"
    allow = f" --allow-dir {exports.resolve()}"
    assert capsys.readouterr().out == (
        f"wrote {yaml}\nwrote {folder / 'reporter.schema.json'}\n"
        "a report over olist_marketing_qualified_leads_dataset.csv (dates from 2017-12 to 2018-05): "
        "rows, distinct mql_id, distinct landing_page_id; by origin; next:\n"
        f"  reporter validate {yaml}{allow}\n"
        f"  reporter preview {yaml}{allow}\n"
        f"  reporter run {yaml} --period 2018-05 --no-send{allow}\n"
    )
    assert sorted(p.name for p in folder.iterdir()) == [yaml.name, "reporter.schema.json"]
    text = yaml.read_text(encoding="utf-8")
    assert '    path: "../exports/olist_marketing_qualified_leads_dataset.csv"   # outside' in text
    with monkeypatch.context() as env:
        env.setenv("REPORTER_ALLOW_DIRS", str(exports))
        config = load_config(yaml)
    # ids are counted distinct, never summed; the rows are broken down by origin
    assert {n: (m.agg, m.column) for n, m in config.metrics.items()} == {
        "rows": ("count", None),
        "distinct_mql_id": ("count_distinct", "mql_id"),
        "distinct_landing_page_id": ("count_distinct", "landing_page_id"),
    }
    assert [(b.kpi, b.by) for b in config.breakdowns] == [("rows", "origin")]

    # validates as written: exit 0, not one warning
    assert cli.main(["validate", str(yaml), "--allow-dir", str(exports)]) == 0
    out, err = capsys.readouterr()
    assert out == (
        f"{yaml}: valid — 1 source, 3 metrics, 3 KPIs, 0 objectives, 1 breakdown, 0 funnel stages\n"
    )
    assert err == ""
    # runs as written, on the period init printed
    output = tmp_path / "out"
    args = ["run", str(yaml), "--period", "2018-05", "--no-send", "--allow-dir", str(exports)]
    assert cli.main([*args, "--output", str(output)]) == 0
    capsys.readouterr()
    folder = output / "olist-marketing-qualified-leads-dataset" / "2018-05"
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert {r["base"] for r in results["breakdowns"]["rows_by_origin"]} == {None}  # not a ratio
    pdf = folder / "olist-marketing-qualified-leads-dataset_2018-05.pdf"
    pages = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.read_bytes())).pages]
    # the counts of May 2018, by the csv module
    with OLIST_LEADS.open(encoding="utf-8", newline="") as handle:
        may = [r for r in csv.DictReader(handle) if r["first_contact_date"].startswith("2018-05")]
    rows, ids, pages_ = len(may), len({r["mql_id"] for r in may}), len({r["landing_page_id"] for r in may})
    assert (rows, ids, pages_) == (263, 263, 62)
    indicators = next(p for p in pages if "Indicators" in p and "Distinct mql id" in p)
    assert f"Rows {rows} " in indicators
    assert f"Distinct mql id {ids} " in indicators
    assert f"Distinct landing page id {pages_} " in indicators
    by_origin: dict[str, int] = {}
    for r in may:
        by_origin[r["origin"] or "(none)"] = by_origin.get(r["origin"] or "(none)", 0) + 1
    analyses = next(p for p in pages if "Rows by origin" in p)
    table = analyses[analyses.index("Origin Rows\n") :].splitlines()[1:]  # no divisor column
    shown = dict(line.rsplit(" ", 1) for line in table[: len(by_origin)])
    assert {k: int(v) for k, v in shown.items()} == by_origin


def test_what_each_column_becomes(tmp_path: Path) -> None:
    """Identifiers are counted distinct, never summed; numbers are summed; text with a few
    values is broken down by; free text and text with many values are left out."""
    from reporter.init import classify

    data = tmp_path / "events.csv"
    lines = [
        "when,order_number,customerId,zip_prefix,code_insee,visitor,session_uuid,amount,sessions,"
        "region,notes,is_new,city,ref_text"
    ]
    for i in range(120):
        day = dt.date(2026, 9, 1) + dt.timedelta(days=i % 60)
        lines.append(
            f"{day.isoformat()},{1000 + i},C{i % 37},{10000 + (i % 9) * 11},0{1000 + i % 13},"
            f"{(i % 40) * 7919:016x},{i:08x}-0000-4000-8000-{i:012x},{i * 1.5:.2f},{(i * 7919) % 1009},"
            f"{['North', 'South', 'East'][i % 3]},note number {i},{'true' if i % 2 else 'false'},"
            f"City{i % 70},R{i}"
        )
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = sniff(data)
    roles = classify(found)
    assert roles.ids == [
        "order_number",  # named like one (and numbering the rows)
        "customerId",  # named like one
        "zip_prefix",  # a numeric code, named like one
        "code_insee",  # leading zeros
        "visitor",  # every value a hash
        "session_uuid",  # every value a UUID
        "ref_text",  # one value per row, more than 50 of them
    ]
    assert roles.measures == ["amount", "sessions"]  # sessions: unique per row, not a numbering
    # every row has its own order number: a row is a thing, and the breakdowns count rows
    assert (roles.row_key, roles.main) == ("order_number", None)
    assert roles.categories == ["region", "is_new"]  # notes: free text; city: 70 values
    assert len(set((i * 7919) % 1009 for i in range(120))) == 120  # sessions is unique indeed


def test_kind_and_source_are_exclusive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["init", str(tmp_path / "r"), "--kind", "sales", "--source", str(OLIST_LEADS)]) == 2
    assert capsys.readouterr().err == (
        "reporter: error: init: --kind writes a starter with sample data, --source a report over "
        "your file: choose one\n"
    )
    assert not (tmp_path / "r").exists()


def _orders(path: Path) -> list[list[object]]:
    """A French order log like a shop's export: order numbers handed out with gaps, a customer
    number among ~200, a store among 4 codes, a quantity, an amount."""
    import random

    rng = random.Random(22)
    rows: list[list[object]] = []
    number = 100000
    for i in range(600):
        number += rng.randint(1, 4)
        day = dt.date(2026, 7, 1) + dt.timedelta(days=i // 5)
        rows.append(
            [number, day.isoformat(), rng.randint(1000, 1200), rng.choice([12, 15, 31, 44]),
             rng.randint(1, 9), f"{rng.uniform(10, 900):.2f}"]
        )  # fmt: skip
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["numero_commande", "date", "num_client", "magasin", "quantite", "montant"])
        writer.writerows(rows)
    return rows


def test_order_numbers_customers_and_stores_are_never_summed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Order numbers with gaps are counted distinct (a numbering), so are customer numbers
    (their name says so, in French); store codes are broken down by, and init says why."""
    folder = tmp_path / "r4"
    data = folder / "exports" / "cmd.csv"
    data.parent.mkdir(parents=True)
    rows = _orders(data)
    assert cli.main(["init", str(folder), "--source", str(data)]) == 0
    yaml = folder / "cmd.yaml"
    assert capsys.readouterr().out.splitlines()[2:5] == [
        "a report over cmd.csv (dates from 2026-07 to 2026-10): rows, distinct numero_commande, "
        "distinct num_client, sum of quantite, sum of montant; by magasin",
        "  magasin: broken down by, not summed: its name says its values (12, 15, 31, 44) are "
        "codes, not quantities; if they are quantities, add a metric with agg: sum",
        "next:",
    ]
    config = load_config(yaml)
    assert {n: (m.agg, m.column) for n, m in config.metrics.items()} == {
        "rows": ("count", None),
        "distinct_numero_commande": ("count_distinct", "numero_commande"),
        "distinct_num_client": ("count_distinct", "num_client"),
        "quantite": ("sum", "quantite"),
        "montant": ("sum", "montant"),
    }
    assert [(b.kpi, b.by) for b in config.breakdowns] == [("rows", "magasin")]
    from reporter.compute.database import compute
    from reporter.periods import Period

    results = compute(config, Period.parse("2026-09", "month"), NOW)
    september = [r for r in rows if str(r[1]).startswith("2026-09")]
    assert results.kpis["distinct_num_client"].value == len({r[2] for r in september})
    assert results.kpis["quantite"].value == sum(int(r[4]) for r in september)  # type: ignore[call-overload]


def test_codes_without_a_telling_name(tmp_path: Path) -> None:
    """Whole numbers that repeat, few and far apart (12, 15, 31, 44), or as many digits each
    (1000-1200), are codes whatever the column's name; a small quantity (1-9) and a column
    named like an amount are measures; a unique column that is not a numbering is one too."""
    import random

    from reporter.init import classify

    rng = random.Random(5)
    data = tmp_path / "log.csv"
    lines = ["jour,site,holder,units,prix,score"]
    for i in range(600):
        day = dt.date(2026, 9, 1) + dt.timedelta(days=i % 30)
        lines.append(
            f"{day.isoformat()},{rng.choice([12, 15, 31, 44])},{rng.randint(1000, 1200)},"
            f"{rng.randint(1, 9)},{rng.choice([100, 250, 400])},{(i * 7919) % 1009}"
        )
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    roles = classify(sniff(data))
    assert roles.categories == ["site"]
    assert roles.ids == ["holder"]
    assert roles.measures == ["units", "prix", "score"]
    assert roles.notes == {
        "site": "its 4 values (12, 15, 31, 44) look like codes, not quantities",
        "holder": "its values (1000, 1002, 1003, 1004, …) look like codes, not quantities: 4 digits each",
    }


@pytest.mark.parametrize(
    ("name", "identifier"),
    [
        ("numero_commande", True),
        ("N° facture", True),
        ("num_client", True),
        ("Kundennummer", True),
        ("Nr Kunde", True),
        ("numero_pedido", True),
        ("codigo_tienda", True),
        ("n_fattura", True),
        ("BestellNr", True),
        ("numero_articoli", False),  # a count of items
        ("nombre_clients", False),
        ("montant_client", False),
        ("n_items", False),
        ("Anzahl", False),
    ],
)
def test_identifier_names_in_other_languages(name: str, identifier: bool) -> None:
    from reporter.init import _named_like_an_id

    assert _named_like_an_id(name) is identifier


def test_amounts_with_thousands_separators_and_currency_are_summed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ "2 867,56 €" (a narrow no-break space between the thousands) is read as a number by a
    derived source init writes; percentages are left out, said in one line."""
    folder = tmp_path / "rep"
    data = folder / "ventes.csv"
    folder.mkdir()
    lines = ["N° facture;Date;Montant TTC;Taux;Catégorie"]
    amounts: dict[str, float] = {}
    for i in range(200):
        day = dt.date(2026, 8, 1) + dt.timedelta(days=i // 3)
        cents = 50000 + (i * 7919) % 900000
        euros, rest = divmod(cents, 100)
        shown = f"{euros:,}".replace(",", "\u202f") + f",{rest:02d} €"
        lines.append(f"F{i:05d};{day:%d/%m/%Y};{shown};{i % 20},5 %;{['Audit', 'Formation'][i % 2]}")
        amounts[day.isoformat()[:7]] = amounts.get(day.isoformat()[:7], 0) + cents / 100
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert cli.main(["init", str(folder), "--source", str(data)]) == 0
    assert capsys.readouterr().out.splitlines()[2:6] == [
        "a report over ventes.csv (dates from 2026-08 to 2026-10): rows, distinct N° facture, "
        "sum of Montant TTC; by Catégorie",
        '  Montant TTC: written like "1\u202f054,33 €": read as numbers by the derived source ventes '
        "(the csv options have no thousands separator)",
        '  Taux: left out: its values are percentages ("0,5 %"), which reporter reads only as text; '
        "export them as plain numbers (0.125 for 12.5 %) to use them",
        "next:",
    ]
    yaml = folder / "ventes.yaml"
    text = yaml.read_text(encoding="utf-8")
    assert '      decimal: ","' in text
    assert cli.main(["validate", str(yaml)]) == 0
    capsys.readouterr()
    config = load_config(yaml)
    assert config.metrics["montant_ttc"].source == "ventes"
    assert config.sources["ventes"].type == "derived"
    from reporter.compute.database import compute
    from reporter.periods import Period

    results = compute(config, Period.parse("2026-09", "month"), NOW)
    assert results.kpis["montant_ttc"].value == pytest.approx(amounts["2026-09"])


def test_source_declares_the_frequency_its_dates_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Olist closed deals end most months in their last week, not on their last day: init
    declares `frequency: weekly`, so the first validate has nothing to warn about, and the month
    to run is the one the weekly gate calls complete."""
    import shutil

    folder = tmp_path / "deals"
    folder.mkdir()
    deals = folder / "olist_closed_deals_dataset.csv"
    shutil.copyfile(OLIST_LEADS.parent / "olist_closed_deals_dataset.csv", deals)
    assert cli.main(["init", str(folder), "--source", str(deals)]) == 0
    yaml = folder / "olist-closed-deals-dataset.yaml"
    out = capsys.readouterr().out
    assert out.endswith(f"  reporter run {yaml} --period 2018-10 --no-send\n")  # ends 2018-11-14
    text = yaml.read_text(encoding="utf-8")
    assert (
        "    frequency: weekly          # what the dates show: most months end in their last week\n" in text
    )
    assert load_config(yaml).sources["olist_closed_deals_dataset"].frequency == "weekly"
    assert cli.main(["validate", str(yaml)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{yaml}: valid — 1 source, 7 metrics")
    assert err == ""


def test_source_with_a_row_every_day_keeps_daily(tmp_path: Path) -> None:
    data = tmp_path / "daily.csv"
    lines = ["date,orders"] + [f"{dt.date(2026, 1, 1) + dt.timedelta(days=i)},{i % 5}" for i in range(200)]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    init_report(tmp_path / "r", now=NOW, source=data)
    text = (tmp_path / "r" / "daily.yaml").read_text(encoding="utf-8")
    assert "    # frequency: daily  " in text


def test_a_second_source_in_the_same_folder_keeps_the_schema_already_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One folder, one report per CSV: the second `init --source` used to stop on the schema
    file the first one wrote ("reporter.schema.json already exists; nothing was written"),
    though it held the very bytes it would write. A schema that differs is still in the way."""
    folder = tmp_path / "reports"
    assert cli.main(["init", str(folder), "--source", str(WEB)]) == 0
    schema = (folder / "reporter.schema.json").read_bytes()
    capsys.readouterr()
    assert cli.main(["init", str(folder), "--source", str(OLIST_LEADS)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {folder / 'olist-marketing-qualified-leads-dataset.yaml'}\na report over ")
    assert (folder / "reporter.schema.json").read_bytes() == schema
    assert sorted(p.name for p in folder.iterdir()) == [
        "olist-marketing-qualified-leads-dataset.yaml",
        "reporter.schema.json",
        "web-traffic.yaml",
    ]
    other = tmp_path / "edited"
    other.mkdir()
    (other / "reporter.schema.json").write_text("{}\n", encoding="utf-8")
    assert cli.main(["init", str(other), "--source", str(WEB)]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: init: {other / 'reporter.schema.json'} already exists; nothing was written "
        "(choose another folder or move these files away)\n"
    )


def _french_export(path: Path) -> None:
    """A French accounting export: `;`, decimal comma, dd/mm/yyyy, latin-1 (é in a header and
    in the values), daily from 1 July to 31 October 2026."""
    lines = ["date;canal;montant;quantité"]
    for i in range(123 * 2):
        day = dt.date(2026, 7, 1) + dt.timedelta(days=i // 2)
        canal = ["Boutique", "Téléphone", "Web"][i % 3]
        lines.append(f"{day:%d/%m/%Y};{canal};{100 + i},{i % 100:02d};{i % 4}")
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))


@pytest.mark.usefixtures("fixed_clock")
def test_source_that_looks_french_gets_a_french_starter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """French column names and a decimal comma: locale fr_FR, Europe/Paris, a French title and
    French labels; the report it runs speaks French (its month in the PDF: "octobre 2026")."""
    import io

    import pypdf

    folder = tmp_path / "ventes"
    folder.mkdir()
    data = folder / "ventes_magasin.csv"
    _french_export(data)
    assert cli.main(["init", str(folder), "--source", str(data)]) == 0
    yaml = folder / "ventes-magasin.yaml"
    text = yaml.read_text(encoding="utf-8")
    assert (
        "report:\n"
        "  id: ventes-magasin\n"
        '  title: "Rapport ventes magasin"\n'
        "  locale: fr_FR                # the file looks French: French column names (canal, montant, "
        "quantité), a decimal comma\n"
        "  timezone: Europe/Paris       # a month is a month in this timezone\n"
        "  grain: month                 # month | quarter | week\n"
    ) in text
    assert "      encoding: latin-1\n" in text
    config = load_config(yaml)
    assert (config.report.locale, config.report.timezone) == ("fr_FR", "Europe/Paris")
    assert {n: k.label for n, k in config.kpis.items()} == {
        "rows": "Lignes",
        "montant": "Montant",
        "quantite": "Quantité",
    }
    capsys.readouterr()
    assert cli.main(["validate", str(yaml)]) == 0
    assert capsys.readouterr().err == ""  # no label without a French text
    out = tmp_path / "out"
    assert cli.main(["run", str(yaml), "--no-send", "--output", str(out), "--period", "2026-10"]) == 0
    pdf = (out / "ventes-magasin" / "2026-10" / "ventes-magasin_2026-10.pdf").read_bytes()
    words = " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "octobre 2026" in words
    assert "Lignes" in words


@pytest.mark.parametrize(
    ("header", "row", "french"),
    [
        # no French word, but a decimal comma and the day first: French
        ("day;channel;amount", "{d:%d/%m/%Y};Web;12,50", True),
        # the day first with a decimal point (a British export): not French
        ("day,channel,amount", "{d:%d/%m/%Y},Web,12.50", False),
        # a decimal comma with ISO dates, English names: not French
        ("day;channel;amount", "{d:%Y-%m-%d};Web;12,50", False),
        # Spanish names ("canal" is Spanish too), a decimal comma, the day first: not French
        ("fecha;canal;importe", "{d:%d/%m/%Y};Web;12,50", False),
    ],
)
def test_source_french_only_when_it_looks_french(tmp_path: Path, header: str, row: str, french: bool) -> None:
    data = tmp_path / "r" / "export.csv"
    data.parent.mkdir()
    days = [dt.date(2026, 7, 1) + dt.timedelta(days=i) for i in range(90)]
    data.write_text("\n".join([header, *(row.format(d=d) for d in days)]) + "\n", encoding="utf-8")
    init_report(tmp_path / "r", now=NOW, source=data)
    config = load_config(tmp_path / "r" / "export.yaml")
    shown = (config.report.title, config.report.locale, config.report.timezone, config.kpis["rows"].label)
    if french:
        assert shown == ("Rapport export", "fr_FR", "Europe/Paris", "Lignes")
    else:
        assert shown == ("Export report", "en_US", "UTC", "Rows")
