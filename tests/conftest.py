"""Shared fixtures: a builder for small reports over CSV rows, PostgreSQL for the SQL tests."""

from __future__ import annotations

import csv
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from reporter.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "example.yaml"


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]], delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    return path


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[[str], Config]:
    """Write YAML (dedented) next to the data in tmp_path and load it."""

    def make(text: str, name: str = "report.yaml") -> Config:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return load_config(path, env={})

    return make


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/* from the current output instead of comparing",
    )


@pytest.fixture
def pg_url() -> str:
    """The PostgreSQL that .ci/run starts (REPORTER_TEST_PG_URL); required in CI, skipped
    on a machine without it."""
    import os

    url = os.environ.get("REPORTER_TEST_PG_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL: .ci/run sets REPORTER_TEST_PG_URL")
        pytest.skip("no PostgreSQL here; .ci/run starts one and sets REPORTER_TEST_PG_URL")
    return url


@pytest.fixture
def empty_pg_ledger(pg_url: str) -> str:
    """The PostgreSQL URL with no ledger in it (every ledger table and Alembic's revision dropped)."""
    import sqlalchemy as sa

    from reporter.delivery.ledger import metadata

    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    return pg_url
