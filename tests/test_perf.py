"""What keeps a fresh ``reporter run`` fast (benchmarks/README.md): the template's cut-down
fonts still hold every character a report prints, and the renderer is imported in the
background while the run reads its data."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest
from fontTools.ttLib import TTFont

from reporter.errors import SourceError
from reporter.periods import Period
from tests.conftest import ROOT

FONTS = ROOT / "templates" / "executive" / "fonts"


def _cmap(name: str) -> set[int]:
    return set(TTFont(FONTS / name).getBestCmap())


def _catalogue_text() -> str:
    """Every translated message of the shipped locales, and the templates' own text."""
    parts = []
    for po in (ROOT / "templates" / "locale").glob("*.po"):
        parts += re.findall(r'^msg(?:id|str)(?:\[\d\])?\s+"(.*)"$', po.read_text(encoding="utf-8"), re.M)
    for page in (ROOT / "templates" / "executive").glob("*.html"):
        parts.append(page.read_text(encoding="utf-8"))
    return "".join(parts)


def test_the_fonts_are_the_cut_down_ones_and_hold_every_catalogue_character():
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        font = TTFont(FONTS / name)
        assert len(font.getGlyphOrder()) < 3000, f"{name}: the full font is back (tools/subset_fonts.py)"
        assert "MATH" not in font
        cmap = _cmap(name)
        missing = sorted({c for c in _catalogue_text() if ord(c) >= 0x20 and ord(c) not in cmap})
        assert missing == []
        # the number formats of the shipped locales: (narrow) no-break spaces, minus, per mille, €
        assert {0x00A0, 0x202F, 0x2212, 0x2030, 0x20AC, 0x2026, 0x2013, 0x2014, 0x2192} <= cmap


def test_the_demo_pdf_embeds_only_the_report_font(demo_pdfs):
    """A character missing from the template's fonts would be drawn from a system font, which
    would then be embedded as a fourth font."""
    import pikepdf

    for locale, pdf in demo_pdfs.items():
        names = set()
        with pikepdf.open(io.BytesIO(pdf)) as doc:
            for page in doc.pages:
                for font in page.Resources.get("/Font", {}).values():
                    names.add(str(font.BaseFont).split("+", 1)[1])
        assert names == {"Report-Sans", "Report-Sans-Bold", "Report-Sans-Oblique"}, locale


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def test_the_renderer_is_imported_by_a_background_thread():
    out = _python(
        "import sys, threading\n"
        "from reporter.render import warmup\n"
        "assert 'weasyprint' not in sys.modules\n"
        "thread = warmup.start()\n"
        "assert warmup.start() is thread\n"  # once per process
        "thread.join()\n"
        "print(thread.name, thread.daemon, 'weasyprint' in sys.modules, 'fontTools.subset' in sys.modules)"
    )
    assert out == "reporter-import-renderer True True True"


def test_a_fork_waits_for_the_background_imports():
    out = _python(
        "import os\n"
        "from reporter.render import warmup\n"
        "thread = warmup.start()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    import weasyprint\n"
        "    os._exit(0)\n"
        "alive = thread.is_alive()\n"
        "print(alive, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))"
    )
    assert out == "False 0"


@pytest.mark.parametrize(("child", "started"), [("1", "1 False"), ("0", "0 True")])
def test_reporter_run_starts_the_import_before_reading_the_configuration(tmp_path, child, started):
    """By the render server forked as the run starts, else by a thread of the run's own."""
    out = _python(
        "import os\n"
        f"os.environ['REPORTER_RENDER_CHILD'] = {child!r}\n"
        "from reporter import cli\n"
        "from reporter.render import forked, warmup\n"
        f"code = cli.main(['run', {str(tmp_path / 'missing.yaml')!r}])\n"
        "print(code, forked.servers, warmup._started is not None)"
    )
    assert out.splitlines()[-1] == f"2 {started}"


SMALL = """
report: {id: t, title: T, timezone: Europe/Paris, locale: en_US}
sources:
  sales: {type: csv, path: sales.csv, date_column: date}
metrics:
  amount: {source: sales, agg: sum, column: amount}
kpis:
  amount: {formula: amount}
"""


def test_the_run_reads_each_file_header_once_and_again_when_the_file_changed(tmp_path, make_config):
    import duckdb

    from reporter.compute.database import open_database
    from reporter.config import sql
    from tests.conftest import write_csv

    path = write_csv(tmp_path / "sales.csv", ["date", "amount"], [("2026-10-01", 5.0), ("2026-10-02", 7.0)])
    config = make_config(SMALL)  # validation reads the header
    key = sql.file_reader_sql(config.sources["sales"], path.resolve())
    version, found = sql._DESCRIBED[key]
    assert [c for c, _ in found] == ["date", "amount"]
    # Which path ran: the sources stage takes validation's answer instead of sniffing again
    # (an answer planted for this very file version is what it sees).
    sql._DESCRIBED[key] = (version, [("day", "DATE"), ("amount", "DOUBLE")])
    from reporter.config import guards

    guards.take({})  # validation's tables dropped (tests/test_sources_once.py): the file is read
    with pytest.raises(SourceError, match="date column 'date' not found; columns are: day, amount"):
        open_database(config)
    # A changed file is read again.
    write_csv(path, ["date", "amount", "region"], [("2026-10-01", 5.0, "A"), ("2026-10-02", 7.0, "B")])
    con = duckdb.connect()
    columns = [c for c, _ in sql.describe_file(con, config.sources["sales"], path)]
    assert columns == ["date", "amount", "region"]
    with pytest.raises(duckdb.IOException, match="No files found"):  # a file gone: DuckDB's error
        sql.describe_file(con, config.sources["sales"], tmp_path / "gone.csv")
    con.close()
    con, infos = open_database(config)
    con.close()
    assert infos["sales"].rows == 2


# ----------------------------------------------------------------------------- record look-back


def test_a_record_past_the_computed_periods_reads_only_the_periods_it_still_needs():
    """The plan: a run unbroken over the 24 computed periods asks for the 12 nearest older
    periods, not the whole look-back; after those, more only for the periods it skipped."""
    from reporter.compute import insights
    from reporter.config.model import Config

    config = Config.model_validate(
        {
            "report": {"id": "t", "title": "T", "timezone": "Europe/Paris", "locale": "en_US"},
            "sources": {"s": {"type": "csv", "path": "s.csv", "date_column": "d"}},
            "metrics": {"m": {"source": "s", "agg": "sum", "column": "x"}},
            "kpis": {"k": {"formula": "m"}, "flat": {"formula": "m"}},
        }
    )
    period = Period.parse("2026-10", "month")
    values = {period.shift(-i): {"k": 100.0 - i, "flat": 5.0} for i in range(1, 25)}
    values[period] = {"k": 200.0, "flat": 5.0}
    older, reaching = insights.record_history_needed(config, period, values)
    assert reaching == ["k"]  # "flat" equals its previous value: no record
    assert older == [period.shift(-i) for i in range(36, 24, -1)]
    # two of those have no value: two more, the nearest first
    values |= {p: {"k": 10.0, "flat": None} for p in older}
    values[period.shift(-30)] = values[period.shift(-33)] = {"k": None, "flat": None}
    older, reaching = insights.record_history_needed(config, period, values)
    assert (older, reaching) == ([period.shift(-38), period.shift(-37)], ["k"])
    values |= {p: {"k": 10.0, "flat": None} for p in older}
    assert insights.record_history_needed(config, period, values) == ([], [])


def test_a_record_over_a_long_history_with_gaps_counts_36_periods_with_data(tmp_path, make_config):
    from tests.test_insights import build, month, of

    p = "2026-10"
    values: dict[str, float | None] = {month(p, -i): float(20 + i % 7) for i in range(60, 0, -1)}
    values[p] = 90.0
    for gap in (-30, -33, -41):
        values[month(p, gap)] = None  # months without rows: skipped, not counted
    rows = [(f"{m}-15", "A", 1.0, 1.0, v) for m, v in values.items() if v is not None]
    results, as_dicts = build(tmp_path, make_config, rows)
    by_month: dict[str, list[float]] = {}
    for r in as_dicts:
        by_month.setdefault(r["date"][:7], []).append(r["score"])
    count = 0
    for i in range(1, 73):
        month_values = by_month.get(month(p, -i))
        if not month_values:
            continue
        if sum(month_values) / len(month_values) < 90.0:
            count += 1
            if count == 36:
                break
        else:
            break
    assert count == 36
    [found] = of(results, "record", kpi="score")
    assert (found["kind"], found["periods"]) == ("high", count)
