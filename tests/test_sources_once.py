"""A run reads each small data file once: validation reads it into a DuckDB table (every row of a
file under ``guards.SAMPLE_ROWS``) and the run's sources stage takes those tables instead of
reading the files again (``compute.database._validated_tables``). A file changed since, a file
larger than the sample, or a report that also reads a database or a workbook: read again, as
before. The numbers are the same either way."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import pytest

from reporter.compute import database
from reporter.config import guards, load_config
from reporter.periods import Period
from reporter.run.stages import report_results
from tests.conftest import DEMO, ROOT
from tests.test_validate_reads import opens

NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
OCTOBER = Period.parse("2026-10", "month")


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path / "config" / DEMO.name


def _csvs(config_path: Path) -> list[Path]:
    config = load_config(config_path, env={})
    found = [config.resolve(s.path) for s in config.sources.values() if s.type == "csv" and s.path]
    guards.take({})  # validation above kept its tables: dropped, the test reads afresh below
    return found


def test_a_run_takes_validations_tables_and_reads_each_file_once(demo):
    files = _csvs(demo)
    assert len(files) >= 5
    taken = database.tables_taken
    with opens(*files) as counted:
        config = load_config(demo, env={})  # validation: each file read into a table
        results = report_results(config, OCTOBER, NOW)
    assert database.tables_taken == taken + 1  # the sources stage took them
    # one read by DuckDB at validation, one by the SHA-256 of the provenance; none by the run
    assert counted == dict.fromkeys((p.name for p in files), 2)
    with opens(*files) as again:
        guards.take({})
        fresh = report_results(config, OCTOBER, NOW)  # nothing kept: the run reads the files
    assert again == dict.fromkeys((p.name for p in files), 2)  # its own read and the SHA-256
    assert database.tables_taken == taken + 1
    assert fresh.to_json() == results.to_json()


def test_a_file_larger_than_the_sample_is_read_again_with_the_same_numbers(demo, monkeypatch):
    config = load_config(demo, env={})
    taken = database.tables_taken
    kept = report_results(config, OCTOBER, NOW)
    assert database.tables_taken == taken + 1
    monkeypatch.setattr(guards, "SAMPLE_ROWS", 5)  # every file now has more rows than the sample
    config = load_config(demo, env={})
    again = report_results(config, OCTOBER, NOW)
    assert database.tables_taken == taken + 1  # not taken: validation's tables lack rows
    assert again.to_json() == kept.to_json()


def test_a_file_changed_after_validation_is_read_as_it_is_now(demo):
    config = load_config(demo, env={})
    orders = next(config.resolve(s.path) for n, s in config.sources.items() if n == "orders")
    with orders.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    extra = dict(rows[-1])
    day = next(r for r in rows if r[config.sources["orders"].date_column].startswith("2026-10"))
    extra.update({k: v for k, v in day.items() if k == config.sources["orders"].date_column})
    with orders.open("a", encoding="utf-8", newline="") as f:
        csv.DictWriter(f, header, lineterminator="\n").writerow(extra)  # one more October order
    taken = database.tables_taken
    results = report_results(config, OCTOBER, NOW)
    assert database.tables_taken == taken  # the file changed: read again
    with orders.open(encoding="utf-8", newline="") as f:
        counted = sum(1 for _ in csv.DictReader(f))
    assert next(s for s in results.sources if s.name == "orders").rows == counted == len(rows) + 1


def test_the_taken_connection_reads_no_file(demo):
    import duckdb

    config = load_config(demo, env={})
    taken = database.tables_taken
    con, _ = database.open_database(config)
    try:
        assert database.tables_taken == taken + 1  # validation's connection, taken
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_csv('/etc/passwd')").fetchall()
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
        assert con.execute("SELECT count(*) FROM src_orders").fetchone()[0] > 0
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert not {t for t in tables if not t.startswith("src_")}  # validation's copies dropped
    finally:
        con.close()
