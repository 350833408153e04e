"""Shared fixtures: a builder for small reports over CSV rows, PostgreSQL for the SQL tests."""

from __future__ import annotations

import csv
import datetime as dt
import os
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from reporter.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
# Compiled templates (reporter.render.html.CompiledTemplates) go to a folder of this test session,
# not to the user's ~/.cache; the processes the tests start inherit it.
os.environ.setdefault("REPORTER_CACHE_DIR", tempfile.mkdtemp(prefix="reporter-tests-cache-"))
DEMO = ROOT / "config" / "example.yaml"
DEMO_NOW = dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_secret_carried_over() -> Any:
    """Each test starts with no secret to mask: one a test remembered (a password "wrong") would
    otherwise mask that word in a later test's messages (a folder named after its test)."""
    from reporter.security import forget_secrets

    forget_secrets()
    yield
    forget_secrets()


def with_locale(config: Config, locale: str) -> Config:
    return config.model_copy(update={"report": config.report.model_copy(update={"locale": locale})})


@pytest.fixture(scope="session")
def demo_report() -> tuple[Config, Any]:
    """The demo's configuration and its October 2026 results, computed once for the session."""
    from reporter.compute.database import compute
    from reporter.periods import Period

    config = load_config(DEMO, env={})
    return config, compute(config, Period.parse("2026-10", "month"), DEMO_NOW)


@pytest.fixture(scope="session")
def demo_pdfs(demo_report: tuple[Config, Any]) -> dict[str, bytes]:
    """The demo's PDF in French and in English, rendered once for the session, each from its own
    copy of the results with the insights' sentences written in its language (as a run does)."""
    from copy import deepcopy

    from reporter.run.stages import describe, render_pdf

    config, results = demo_report
    pdfs = {}
    for loc in ("fr_FR", "en_US"):
        localised = with_locale(config, loc)
        pdfs[loc] = render_pdf(localised, describe(localised, deepcopy(results)))
    return pdfs


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
