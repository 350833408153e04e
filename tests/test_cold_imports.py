"""What a fresh ``reporter run --no-send`` does not load (benchmarks/README.md, cold start): the
modules only other commands or a burst need stay out of the process until they are needed, and
the shortcuts that keep them out decide exactly as the modules they stand in for."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import zoneinfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reporter.config.cron import plainly_fires
from tests.conftest import ROOT

# Module (or state) → why a run of the demo must not pay for it at start.
DEFERRED = {
    "asyncio": "APScheduler's cron trigger loads it; the schedule is checked without it",
    "apscheduler": "only `reporter schedule` fires jobs",
    "multiprocessing": "only a burst on local worker processes needs a process pool",
    "concurrent.futures.process": "the same",
    "mimetypes tables read": "WeasyPrint reads them when it is imported; importing the archive need not",
    **{
        f"PIL.{kind}ImagePlugin": "a sparkline is a PNG: Pillow's PNG writer is all it needs"
        for kind in ("Bmp", "Gif", "Jpeg", "Ppm")
    },
}


def test_a_no_send_run_reads_its_configuration_without_the_deferred_modules():
    """Everything the run path imports (the modules benchmarks/stages.py wraps, the burst's) and
    the demo's YAML read and checked, as ``reporter run config/example.yaml`` does before it
    computes, then a sparkline drawn as the digest does: none of DEFERRED is loaded."""
    code = """
import json, mimetypes, sys
from pathlib import Path
import reporter.cli, reporter.run.pipeline, reporter.run.burst, reporter.render.html
import reporter.delivery.archive, reporter.delivery.send
from reporter.render.texts import load_checked
config, = load_checked(Path("config/example.yaml"))
assert config.delivery.schedule == "0 7 2 * *", config.delivery.schedule  # checked, not skipped
loaded = sorted({name.split(".")[0] for name in sys.modules} & {"asyncio", "apscheduler"})
loaded += [name for name in ("multiprocessing", "concurrent.futures.process") if name in sys.modules]
loaded += ["mimetypes tables read"] if mimetypes.inited else []
from reporter.render.digest import sparkline_png
assert sparkline_png([1.0, 2.0, 1.5], "#1f77b4").startswith(b"\\x89PNG")
plugins = [f"PIL.{kind}ImagePlugin" for kind in ("Bmp", "Gif", "Jpeg", "Ppm")]
loaded += [name for name in plugins if name in sys.modules]
print(json.dumps(loaded))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == [], {name: DEFERRED[name] for name in loaded}


def test_a_whole_no_send_run_of_the_demo_never_loads_the_scheduler_or_the_chat_client(tmp_path):
    """The run as a user starts it; ``-X importtime`` lists every module it loads (in any process
    of the run, since the variable is inherited), whatever way it exits."""
    done = subprocess.run(
        [sys.executable, "-m", "reporter", "run", "config/example.yaml", "--period", "2026-10", "--no-send",
         "--output", str(tmp_path)],
        cwd=ROOT, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "marketing-monthly" / "2026-10" / "email.eml").exists()
    imported = {
        line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
    }
    assert "reporter.run.pipeline" in imported  # the listing works
    unwanted = {"asyncio", "apscheduler", "reporter.delivery.chat"}
    assert sorted(name for name in imported if name in unwanted or name.split(".")[0] in unwanted) == []


def test_the_yaml_inside_the_pdf_is_still_typed_application_yaml():
    """The MIME type of ``.yaml`` is registered when the PDF is written (no longer at import)."""
    import pikepdf
    from weasyprint import HTML

    from reporter.delivery.archive import make_pdfa

    document = HTML(string="<html lang='en'><title>t</title><p>t</p></html>").render()
    now = dt.datetime(2026, 11, 2, 7, tzinfo=dt.UTC)
    pdf = make_pdfa(document, {"report.yaml": (b"a: 1\n", "Source")}, "id", now)
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert doc.attachments["report.yaml"].get_file().mime_type == "application/yaml"


# -- the schedule's shortcut against APScheduler ----------------------------------------------

_NUMBER = st.integers(min_value=0, max_value=70).map(str)
_ITEM = st.one_of(
    st.just("*"),
    st.builds(lambda s: f"*/{s}", _NUMBER),
    _NUMBER,
    st.builds(lambda a, b: f"{a}-{b}", _NUMBER, _NUMBER),
    st.builds(lambda a, b, s: f"{a}-{b}/{s}", _NUMBER, _NUMBER, _NUMBER),
    st.builds(lambda a, s: f"{a}/{s}", _NUMBER, _NUMBER),
)
_FIELD = st.lists(_ITEM, min_size=1, max_size=3).map(",".join)
# Days and months drawn where dates exist or just do not (30-31, February), so "never fires" comes up.
_DAY = st.one_of(_FIELD, st.sampled_from(["29", "30", "31", "30,31", "31", "1-31/30"]))
_MONTH = st.one_of(_FIELD, st.sampled_from(["2", "4", "2,4", "4-11/2", "2-2"]))


def _apscheduler_fires(schedule: str) -> bool:
    """What the check asked APScheduler before: accepted, and some date matches."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        cron = CronTrigger.from_crontab(schedule, timezone=zoneinfo.ZoneInfo("Europe/Paris"))
    except ValueError:
        return False
    return cron.get_next_fire_time(None, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) is not None


@settings(max_examples=400, deadline=None)
@given(_FIELD, _FIELD, _DAY, _MONTH, _FIELD)
@example("0", "7", "2", "*", "*")  # the demo's
@example("0", "7", "31", "2", "*")  # never fires
@example("0", "7", "29", "2", "*")  # leap years
@example("0", "7", "30,31", "2,4", "*")  # 30 April
@example("0-0/3", "*", "*", "*", "*")  # APScheduler measures 0-0's range to 59: accepted
@example("5-5/3", "*", "*", "*", "*")  # refused
@example("*/0", "*", "*", "*", "*")  # refused
@example("*/59", "*/23", "*/30", "*/11", "*/6")  # the largest steps
def test_plain_numeric_schedules_are_judged_as_apscheduler_judges_them(minute, hour, day, month, weekday):
    schedule = f"{minute} {hour} {day} {month} {weekday}"
    assert plainly_fires(schedule) is _apscheduler_fires(schedule), schedule


@pytest.mark.parametrize(
    "schedule",
    [
        "0 7 * * mon",  # names
        "0 7 L * *",  # last day
        "0 7 ٣ * *",  # a digit that is not ASCII
        "0 7 2 * * *",  # six fields
        "0 7 2,,3 * *",  # an empty item
        "0 7 " + "9" * 5000 + " * *",  # int() refuses it: APScheduler says so
        "",
    ],
)
def test_other_schedules_are_left_to_apscheduler(schedule):
    assert plainly_fires(schedule) is False
