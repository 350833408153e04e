"""``delivery.schedule`` and ``alerts.schedule``: the usual cron expressions are found valid
without APScheduler's parser (``reporter.config.cron``), which imports asyncio, and anything else
is APScheduler's to judge, with its own messages. The quick yes must never say yes where
APScheduler says no, or where the expression never fires."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys

import pytest
from apscheduler.triggers.cron import CronTrigger

from reporter.config import load_config
from reporter.config.cron import MONTHS, WEEKDAYS, surely_fires
from reporter.errors import ConfigError
from tests.conftest import ROOT
from tests.test_validate import write

USUAL = [
    "0 7 2 * *",
    "0 8 * * *",
    "*/15 8-18 * * mon-fri",
    "30 6 1 jan,apr,jul,oct *",
    "0 7 last * *",
    "0 9 * * 0",
    "0 0 1-7 * MON",
    "5/10 */2 28 2 *",
    "0 7 1,15 * *",
    "0 7 2 Feb-Nov sat-sun",
]


def _apscheduler_fires(expression: str) -> bool:
    """APScheduler's own answer: the expression is valid and has a fire time (as checks.py asks)."""
    try:
        cron = CronTrigger.from_crontab(expression, timezone=dt.UTC)
    except ValueError:
        return False
    return cron.get_next_fire_time(None, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) is not None


@pytest.mark.parametrize("expression", USUAL)
def test_the_usual_expressions_are_found_valid_without_apscheduler(expression):
    assert surely_fires(expression.split())
    assert _apscheduler_fires(expression)


BOUNDS = [(0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, MONTHS), (0, 6, WEEKDAYS)]


ODD = ["last", "LAST", "lastx", "L", "?", "", "1st", "\u0663", "07", "-1", "5-", "*/"]


def _item(rng: random.Random, low: int, high: int, names: tuple[str, ...]) -> str:
    """One item of a field: most near the field's bounds (within or just past them)."""

    def number() -> str:
        near = [rng.randint(low - 1, high + 1), low, high, 28, 29, 30, 31, rng.randint(0, 99)]
        return str(rng.choice(near))

    def step() -> str:
        return str(rng.choice([0, 1, 2, 3, 7, rng.randint(0, high - low + 2), high - low, high - low + 1]))

    def name() -> str:
        if not names:
            return number()
        return rng.choice([*names, *names, "xyz", "January", "MON", "Jan", "la", "mon", "sun", "dec"])

    shapes = [
        lambda: "*",
        lambda: f"*/{step()}",
        number,
        lambda: f"{number()}-{number()}",
        lambda: f"{number()}/{step()}",
        lambda: f"{number()}-{number()}/{step()}",
        name,
        lambda: f"{name()}-{name()}",
        lambda: rng.choice(ODD),
        lambda: f"{name()}/{step()}",
        lambda: ",".join(_item(rng, low, high, names) for _ in range(rng.randint(2, 3))),
        lambda: ",".join(_item(rng, low, high, names) for _ in range(rng.randint(2, 3))),
    ]
    return rng.choice(shapes)()


def test_the_quick_yes_is_never_given_where_apscheduler_refuses_or_never_fires():
    """Thousands of expressions, of every form APScheduler reads and many it refuses, near each
    field's bounds: whenever the quick check says yes, so does APScheduler (the check it stands
    for is not weakened)."""
    rng = random.Random(20261207)
    said_yes = 0
    for _ in range(6000):
        parts = [_item(rng, *b) if rng.random() < 0.5 else rng.choice(["*", "1", "7"]) for b in BOUNDS]
        expression = " ".join(p or "*" for p in parts)
        if surely_fires(expression.split()):
            said_yes += 1
            assert _apscheduler_fires(expression), expression
    assert said_yes > 500  # the quick check is not a no for everything


def test_a_usual_schedule_loads_without_importing_apscheduler_and_others_still_get_its_messages(tmp_path):
    """Which path ran, seen in a fresh process: the usual schedule (delivery and alerts) never
    imports APScheduler's parser nor asyncio; an invalid or never-firing one does, and says what
    it always said."""
    alerts = ["alerts:", '  schedule: "*/30 8-18 * * mon-fri"', "  rules:"]
    path = write(tmp_path, extra=[*alerts, "    - {kpi: revenue, when: unusual, to: [ops@acme.test]}"])
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from reporter.config import load_config\n"
        f"load_config(Path({str(path)!r}), env={{}})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('apscheduler') or m == 'asyncio')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []

    hint = '5 fields: minute hour day month weekday, e.g. "0 7 2 * *"'
    for schedule, message in [
        (
            "0 7 32 * *",
            "invalid cron expression '0 7 32 * *' (Error validating expression '32': the last value (32) "
            f"is higher than the maximum value (31)); {hint}",
        ),
        ("0 7 2 * xyz", f"invalid cron expression '0 7 2 * xyz' (Invalid weekday name \"xyz\"); {hint}"),
        ("*/0 7 2 * *", f"invalid cron expression '*/0 7 2 * *' (Increment must be higher than 0); {hint}"),
        (
            "0 7 31 2 *",
            "the cron expression '0 7 31 2 *' never fires: no date matches it; use a day that exists in "
            'that month, e.g. "0 7 28 2 *" (29 February fires in leap years only)',
        ),
    ]:
        path = write(tmp_path, {22: f'  schedule: "{schedule}"'})
        assert not surely_fires(schedule.split())  # APScheduler judges it
        with pytest.raises(ConfigError) as caught:
            load_config(path, env={})
        assert [f"{p.key}: {p.message}; {p.hint}" for p in caught.value.problems] == [
            f"delivery.schedule: {message}"
        ]
    # The days that only some months have are APScheduler's to judge too: 30 April exists.
    assert not surely_fires(["0", "7", "30", "4", "*"])
    load_config(write(tmp_path, {22: '  schedule: "0 7 30 4 *"'}), env={})
