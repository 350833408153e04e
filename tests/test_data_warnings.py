"""validate's warnings that read the data (docs/commands.md, "Warnings from the data"): each
fires on a small report written here, with its exact text and file:line; none on the demo or the
starters; validate still exits 0; data that cannot be read skips them with one note."""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap
from pathlib import Path

import pytest

from reporter import cli
from reporter.config import load_config
from reporter.config.model import Config
from reporter.errors import Problem
from tests.conftest import write_csv

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 5, 8, 0, tzinfo=dt.UTC)  # a run now reports October 2026
CHANNELS = ["Web", "Web", "Shop", "Web", "Partner"]


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(NOW.timestamp())))


def shop(folder: Path, *, values: str = "", target: str = "{value: 100}", spend: str = "") -> Path:
    """Sales every day of 2026 up to 31 October (channel Web, Shop, Partner, and Phone on every
    37th day), spend on the 1st of each month (declared ``spend``, default daily), a breakdown of
    revenue by channel with ``values`` (YAML lines), an objective on revenue with ``target``."""
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(304)]
    rows = [[d.isoformat(), "Phone" if i % 37 == 0 else CHANNELS[i % 5], 10] for i, d in enumerate(days)]
    write_csv(folder / "sales.csv", ["date", "channel", "amount"], rows)
    write_csv(folder / "spend.csv", ["date", "amount"], [[f"2026-{m:02d}-01", 100] for m in range(1, 11)])
    path = folder / "shop.yaml"
    path.write_text(
        textwrap.dedent(f"""\
            report: {{id: shop, title: Shop, company: Shop Ltd, locale: en_GB, timezone: UTC}}
            sources:
              sales: {{type: csv, path: sales.csv, date_column: date}}
              spend: {{type: csv, path: spend.csv, date_column: date{spend}}}
            metrics:
              revenue: {{source: sales, agg: sum, column: amount}}
              cost: {{source: spend, agg: sum, column: amount}}
            kpis:
              revenue: {{label: Revenue, formula: revenue, format: currency, direction: up}}
              cost: {{label: Cost, formula: cost, format: currency, direction: down}}
            objectives:
              - id: grow
                title: Grow
                kpi: revenue
                target: {target}
                owner: Sales
                due: 2026-12-31
                actions: [{{when: off_track, do: Call}}]
            breakdowns:
              - kpi: revenue
                by: channel
                label: Channel
            """)
        + textwrap.indent(textwrap.dedent(values), "    "),
        encoding="utf-8",
    )
    return path


# Every label matches a value, every value has a label, the spend source says it is monthly:
# the report gives no warning at all.
QUIET_VALUES = """\
    values:
      Web: Website
      Shop: Store
      Partner: Partners
      Phone: Telephone
"""


def data_warnings(config: Config, now: dt.datetime) -> list[Problem]:
    from reporter.compute.datacheck import data_warnings  # here: the older code has none

    return data_warnings(config, now)


def warnings(path: Path) -> list[str]:
    return [str(p) for p in data_warnings(load_config(path), NOW)]


def test_a_report_that_fits_its_data_gets_no_warning(tmp_path: Path) -> None:
    path = shop(tmp_path, values=QUIET_VALUES, spend=", frequency: monthly")
    assert warnings(path) == []


def test_a_values_label_no_row_has_and_values_without_a_label(tmp_path: Path) -> None:
    values = """\
        values:
          Web: Website
          Shopp: Store
          Fax: Fax
    """
    path = shop(tmp_path, values=values, spend=", frequency: monthly")
    assert warnings(path) == [
        f"{path}:25:7: breakdowns[0].values.Shopp: warning: no row has channel 'Shopp' in the 13 months "
        "up to 2026-10; did you mean 'Shop'? (a label must match its value exactly)",
        f"{path}:26:7: breakdowns[0].values.Fax: warning: no row has channel 'Fax' in the 13 months up to "
        "2026-10; a label must match its value exactly, case and spaces included",
        f"{path}:23:5: breakdowns[0].values: warning: 3 values have no label in the 13 months up to "
        "2026-10 and will show as written: 'Shop' (59 rows), 'Partner' (58 rows), 'Phone' (9 rows); "
        "add a label under values for each that needs one",
    ]
    # the row counts, counted here from the rows written
    days = range(304)
    assert sum(1 for i in days if i % 37 != 0 and CHANNELS[i % 5] == "Shop") == 59
    assert sum(1 for i in days if i % 37 != 0 and CHANNELS[i % 5] == "Partner") == 58
    assert sum(1 for i in days if i % 37 == 0) == 9


def test_more_than_five_values_without_a_label_name_the_five_with_most_rows(tmp_path: Path) -> None:
    path = shop(tmp_path, values="values: {Web: Website}\n", spend=", frequency: monthly")
    names = ["Web", "A", "B", "C", "D", "E", "F", "G"]
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(304)]
    write_csv(
        tmp_path / "sales.csv",
        ["date", "channel", "amount"],
        [[d, names[i % 8], 1] for i, d in enumerate(days)],
    )
    [said] = warnings(path)
    assert said == (
        f"{path}:23:5: breakdowns[0].values: warning: 7 values have no label in the 13 months up to 2026-10 "
        "and will show as written: 'A' (38 rows), 'B' (38 rows), 'C' (38 rows), 'D' (38 rows), "
        "'E' (38 rows), …; "
        "add a label under values for each that needs one"
    )
    assert sum(1 for i in range(304) if i % 8 == 1) == 38


def test_a_growth_target_whose_base_period_has_no_data(tmp_path: Path) -> None:
    path = shop(
        tmp_path, values=QUIET_VALUES, spend=", frequency: monthly", target="{change_vs_prior_year: 0.1}"
    )
    assert warnings(path) == [
        f"{path}:15:14: objectives[0].target.change_vs_prior_year: warning: the KPI 'revenue' has no value "
        "in 2025-10, the base of this target (source 'sales' has data from 2026-01-01 to 2026-10-31): a run "
        "for 2026-10 shows no target; give a target that needs no earlier data: {value: …} or "
        "{by_period: {2026-10: …}}"
    ]
    # September has data: a target on the previous month is fine
    path = shop(
        tmp_path, values=QUIET_VALUES, spend=", frequency: monthly", target="{change_vs_previous: 0.1}"
    )
    assert warnings(path) == []


def test_a_source_sparser_than_its_frequency(tmp_path: Path) -> None:
    path = shop(tmp_path, values=QUIET_VALUES)  # spend: a row on the 1st of each month, "daily"
    assert warnings(path) == [
        f"{path}:4:3: sources.spend: warning: the data has about one row per month; with frequency daily the "
        "completeness gate waits for a row on each month's last day; declare `frequency: monthly` under "
        "sources.spend"
    ]
    path = shop(tmp_path, values=QUIET_VALUES, spend=", frequency: weekly")
    assert warnings(path) == [
        f"{path}:4:58: sources.spend.frequency: warning: the data has about one row per month; "
        "with frequency weekly the completeness gate waits for a row in each month's last week; "
        "declare `frequency: monthly` under sources.spend"
    ]
    # without the gate, frequency decides nothing that matters here
    path.write_text(path.read_text() + "quality: {require_complete_period: false}\n", encoding="utf-8")
    assert warnings(path) == []


def test_sources_that_share_no_period(tmp_path: Path) -> None:
    path = shop(tmp_path, values=QUIET_VALUES, spend=", frequency: monthly")
    write_csv(tmp_path / "spend.csv", ["date", "amount"], [[f"2025-{m:02d}-01", 100] for m in range(1, 13)])
    assert warnings(path) == [
        f"{path}:3:3: sources.sales: warning: no month has data in every source: source 'sales' starts on "
        "2026-01-01, after the end of source 'spend' (complete up to 2025-12); point each source at data of "
        "the same periods"
    ]


def test_validate_prints_the_warnings_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = shop(
        tmp_path, values="values: {Web: Website, Shop: Store, Partner: Partners, Phone: Tel, Fax: Fax}\n"
    )
    assert cli.main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: valid — 2 sources, 2 metrics, 2 KPIs, 1 objective, 1 breakdown, 0 funnel stages\n"
    assert err == (
        f"{path}:23:72: breakdowns[0].values.Fax: warning: no row has channel 'Fax' in the 13 months up to "
        "2026-10; a label must match its value exactly, case and spaces included\n"
        f"{path}:4:3: sources.spend: warning: the data has about one row per month; with frequency daily the "
        "completeness gate waits for a row on each month's last day; declare `frequency: monthly` under "
        "sources.spend\n"
    )


def test_data_that_cannot_be_read_skips_the_checks_with_one_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A derived source's cast that the data does not fit: validate describes the query over empty
    tables (it is valid), the run reads the rows and fails; validate notes it and exits 0."""
    path = shop(tmp_path, values=QUIET_VALUES)
    text = path.read_text().replace(
        "metrics:\n",
        "  coded: {type: derived, from: [sales], date_column: date,\n"
        "          sql: 'select date, cast(channel as integer) as code from sales'}\n"
        "metrics:\n  codes: {source: coded, agg: sum, column: code}\n",
    )
    path.write_text(text, encoding="utf-8")
    assert cli.main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{path}: valid — 3 sources")
    assert err == (
        f"{path}: note: the checks that read the data were skipped: source 'coded': the query failed: "
        "Conversion Error: Could not convert string 'Phone' to INT32 when casting from source column "
        "channel\n"
    )


def test_a_database_source_is_left_out_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """validate does not connect to databases: the checks over the files still run."""
    import sqlite3

    db = tmp_path / "shop.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("create table visits (day text, n integer)")
        con.execute("insert into visits values ('2026-10-01', 3)")
    con.close()
    monkeypatch.setenv("REPORTER_CONNECTION_SHOPDB", f"sqlite:///{db}")
    path = shop(
        tmp_path, values="values: {Web: Website, Shop: Store, Partner: Partners, Phone: Tel, Fax: Fax}\n"
    )
    text = path.read_text().replace(
        "metrics:\n",
        "  visits: {type: sql, connection: shopdb, table: visits, date_column: day}\n"
        "metrics:\n  visits: {source: visits, agg: sum, column: n}\n",
    )
    path.write_text(text.replace("date_column: date}\n", "date_column: date, frequency: monthly}\n", 2))
    assert warnings(path) == [
        f"{path}: note: the checks that read the data leave out 'visits': validate does not connect to "
        "databases",
        f"{path}:25:72: breakdowns[0].values.Fax: warning: no row has channel 'Fax' in the 13 months up to "
        "2026-10; a label must match its value exactly, case and spaces included",
    ]


def test_the_demo_gets_no_data_warning(tmp_path: Path) -> None:
    demo = load_config(ROOT / "config" / "example.yaml")
    assert data_warnings(demo, NOW) == []  # no note either: every check ran
    # and the checks do read it: a label the demo's data does not have is found
    shutil.copytree(ROOT / "config", tmp_path / "config")
    path = tmp_path / "config" / "example.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("      Salon: {fr: Salon, en: Trade fair}", "      Salons: Salons"), encoding="utf-8"
    )
    assert [p.key for p in data_warnings(load_config(path), NOW)] == [
        "breakdowns[2].values.Salons",
        "breakdowns[2].values",
    ]


@pytest.mark.parametrize("kind", ["marketing", "sales", "newsletter"])
def test_the_starters_get_no_data_warning(tmp_path: Path, kind: str) -> None:
    from reporter.init import init_report

    init_report(tmp_path / kind, kind, now=NOW)
    assert data_warnings(load_config(tmp_path / kind / "report.yaml"), NOW) == []


def test_the_gate_suggests_a_frequency_only_for_a_sparse_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """spend has a row on the 1st of each month up to 1 October: October is short for it."""
    path = shop(tmp_path, values=QUIET_VALUES)
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "--no-send", "--output", str(out)]) == 1
    assert capsys.readouterr().err == (
        "reporter: FAILED: shop 2026-10: quality gate failed, nothing sent:\n"
        "  - source 'spend' has data up to 2026-10-01; the period ends 2026-10-31\n"
        f"  results in {out}/shop/2026-10/results.json\n"
        f"  the latest complete month in the data is 2026-09: `reporter run {path} --period 2026-09`\n"
        "  source 'spend' has about one row per month: declare it with `frequency: monthly` under "
        "sources.spend\n"
        "  to run on incomplete data: `quality.require_complete_period: false`\n"
    )


def test_the_gate_suggests_no_period_a_source_has_no_data_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sales from 2026-01-01 to 2026-10-31, spend up to 2025-12: the latest month both complete is
    December 2025, when sales had no data yet; it is not suggested."""
    path = shop(tmp_path, values=QUIET_VALUES, spend=", frequency: monthly")
    write_csv(tmp_path / "spend.csv", ["date", "amount"], [[f"2025-{m:02d}-01", 100] for m in range(1, 13)])
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "--no-send", "--output", str(out)]) == 1
    assert capsys.readouterr().err == (
        "reporter: FAILED: shop 2026-10: quality gate failed, nothing sent:\n"
        "  - source 'spend' has data up to 2025-12-01; the period ends 2026-10-31 "
        "(monthly data: needs 2026-10-01)\n"
        "  - source 'spend' has 0 row(s) in 2026-10; at least 1 required\n"
        f"  results in {out}/shop/2026-10/results.json\n"
        "  no month has data in every source: source 'sales' starts on 2026-01-01, after the end of source "
        "'spend' (complete up to 2025-12)\n"
        "  to run on incomplete data: `quality.require_complete_period: false`\n"
    )


def test_a_label_is_matched_as_the_report_shows_the_value(tmp_path: Path) -> None:
    """A true/false column: the report looks its labels up as 'True' and 'False' (Python's text of
    the value read), so 'true' matches no row."""
    path = shop(tmp_path, values="values: {'True': Returning, 'true': New}\n", spend=", frequency: monthly")
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(304)]
    write_csv(
        tmp_path / "sales.csv",
        ["date", "channel", "amount"],
        [[d, i % 3 == 0, 1] for i, d in enumerate(days)],
    )
    assert warnings(path) == [
        f"{path}:23:33: breakdowns[0].values.true: warning: no row has channel 'true' in the 13 months up to "
        "2026-10; a label must match its value exactly, case and spaces included",
        f"{path}:23:5: breakdowns[0].values: warning: 1 value has no label in the 13 months up to 2026-10 "
        "and will show as written: 'False' (202 rows); add a label under values for each that needs one",
    ]
    assert sum(1 for i in range(304) if i % 3 != 0) == 202


def test_a_cumulative_growth_target_needs_the_base_of_every_period_of_the_year(tmp_path: Path) -> None:
    """Sales from March 2025: October 2025 is there, January and February 2025 are not, and the
    year-to-date target of 2026 adds up January's and February's targets too."""
    path = shop(
        tmp_path,
        values="values: {Web: Website}\n",
        spend=", frequency: monthly",
        target="{change_vs_prior_year: 0.1}",
    )
    path.write_text(path.read_text().replace("    owner: Sales", "    cumulative: true\n    owner: Sales"))
    days = [dt.date(2025, 3, 1) + dt.timedelta(days=i) for i in range(610)]  # up to 2026-10-31
    write_csv(tmp_path / "sales.csv", ["date", "channel", "amount"], [[d, "Web", 1] for d in days])
    assert warnings(path) == [
        f"{path}:15:14: objectives[0].target.change_vs_prior_year: warning: the KPI 'revenue' has no value "
        "in 2025-01, the base of this target for 2026-01 (source 'sales' has data from 2025-03-01 to "
        "2026-10-31): a run for 2026-10 shows no target; a cumulative target adds up the target of every "
        "month of the year to date; give a target that needs no earlier data: {value: …}"
    ]
    path.write_text(path.read_text().replace("cumulative: true", "cumulative: false"), encoding="utf-8")
    assert warnings(path) == []  # October 2025 has data


def test_historical_data_is_checked_in_its_latest_period_with_one_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data that stopped long before the run's period (an archive, a public data set) is checked
    in the latest period with data, the one `reporter preview` shows; one note says which, and
    only when there is something to say."""
    later = dt.datetime(2028, 3, 5, 8, 0, tzinfo=dt.UTC)  # a run now reports February 2028
    values = """\
        values:
          Web: Website
          Shopp: Store
          Partner: Partners
          Phone: Telephone
    """
    path = shop(tmp_path, values=values, spend=", frequency: monthly", target="{change_vs_prior_year: 0.1}")
    found = [str(p) for p in data_warnings(load_config(path), later)]
    assert found == [
        f"{path}: note: no data in 2028-02, the last complete month: the checks that read the data looked "
        "at 2026-10, the latest month with data",
        f"{path}:25:7: breakdowns[0].values.Shopp: warning: no row has channel 'Shopp' in the 13 months "
        "up to 2026-10; did you mean 'Shop'? (a label must match its value exactly)",
        f"{path}:23:5: breakdowns[0].values: warning: 1 value has no label in the 13 months up to "
        "2026-10 and will show as written: 'Shop' (59 rows); add a label under values for each that "
        "needs one",
        f"{path}:15:14: objectives[0].target.change_vs_prior_year: warning: the KPI 'revenue' has no value "
        "in 2025-10, the base of this target (source 'sales' has data from 2026-01-01 to 2026-10-31): a run "
        "for 2026-10 shows no target; give a target that needs no earlier data: {value: …} or "
        "{by_period: {2026-10: …}}",
    ]
    # the same through validate, with the clock of the machine
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(later.timestamp())))
    assert cli.main(["validate", str(path)]) == 0
    # validate also says that the objective, due at the end of 2026, is past due in 2028
    past_due = (
        f"{path}:17:10: objectives[0].due: warning: 2026-12-31 is before the end of 2028-02, the period a "
        "run reports now: the report marks the objective past due; set its new due date, or remove the "
        "objective once it is over"
    )
    assert capsys.readouterr().err.splitlines() == [past_due, *found]
    # nothing to warn about in that period: no note either
    quiet = shop(tmp_path, values=QUIET_VALUES, spend=", frequency: monthly")
    assert data_warnings(load_config(quiet), later) == []
