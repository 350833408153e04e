"""The scheduler with a controlled clock: DST-correct fire times, catch-up from the ledger, one
sender per period, data-not-ready retries, and a real `reporter schedule` process."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from reporter.config import load_config
from reporter.config.model import Delivery, Email, Smtp
from reporter.delivery.ledger import Ledger, default_url
from reporter.run.schedule import LeaseStore, Scheduler, _aware, fires_between, leases, next_fire
from tests.conftest import DEMO, ROOT
from tests.smtp_server import Server

PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


class Clock:
    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


def scheduled(config, cron="0 7 2 * *", port=None, ledger=None):
    smtp = Smtp(host="127.0.0.1", port=port, security="none") if port else None
    delivery = Delivery(
        schedule=cron,
        email=Email(**{"from": "r@acme.test"}, to=["ceo@acme.test"], smtp=smtp),
        alerts_to=["ops@acme.test"],
        ledger="ledger" if ledger else None,
        archive=config.delivery.archive.model_copy(update={"pdfa": False}),
    )
    # a ledger's URL is the operator's connection
    connections = {"ledger": ledger} if ledger else {}
    return config.model_copy(update={"delivery": delivery, "connections": connections})


@pytest.fixture(scope="module")
def demo():
    return load_config(DEMO, env={})


def make(config, tmp_path, clock):
    s = Scheduler(DEMO, output=tmp_path, clock=clock, env={})
    s.configs = [config]
    return s


def executives(server):
    return [r for r in server.handler.received if r.rcpt_tos == ["ceo@acme.test"]]


def alerts(server):
    return [r for r in server.handler.received if r.rcpt_tos == ["ops@acme.test"]]


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York"])
@pytest.mark.parametrize(("start", "days"), [("2026-03-05", 30), ("2026-10-20", 20)])
def test_daily_fire_times_across_dst(demo, zone, start, days):
    config = demo.model_copy(
        update={
            "report": demo.report.model_copy(update={"timezone": zone}),
            "delivery": Delivery(schedule="30 2 * * *"),
        }
    )
    tz = ZoneInfo(zone)
    begin = dt.datetime.fromisoformat(start).replace(tzinfo=tz)
    fires = fires_between(config, begin, begin + dt.timedelta(days=days))
    local_days = [f.astimezone(tz).date() for f in fires]
    assert len(fires) == days  # one a day: none skipped on the spring day, none doubled in autumn
    assert len(set(local_days)) == days
    assert all(b > a for a, b in itertools.pairwise(fires))
    for f in fires:
        local = f.astimezone(tz)
        assert (local.hour, local.minute) in ((2, 30), (3, 30))  # 3:30 only where 2:30 does not exist


def test_monthly_fire_across_dst_change(demo):
    config = scheduled(demo)
    fire = next_fire(config, at("2026-10-02T06:00:00+00:00"))
    assert fire.astimezone(PARIS).isoformat() == "2026-11-02T07:00:00+01:00"  # CET, after the change
    assert (
        next_fire(config, at("2026-03-01T00:00:00+00:00")).astimezone(PARIS).isoformat()
        == "2026-03-02T07:00:00+01:00"
    )
    assert (
        next_fire(config, at("2026-04-01T00:00:00+00:00")).astimezone(PARIS).isoformat()
        == "2026-04-02T07:00:00+02:00"
    )


def test_down_across_the_fire_time_sends_once_after_restart(demo, tmp_path):
    with Server(tmp_path) as server:
        config = scheduled(demo, port=server.port)
        clock = Clock(at("2026-11-01T12:00:00+00:00"))
        assert make(config, tmp_path, clock).tick() == []  # first start: nothing to catch up
        clock.now = at("2026-11-02T09:00:00+00:00")  # restarted three hours after 07:00 Paris
        s = make(config, tmp_path, clock)
        assert s.tick() == ["marketing-monthly 2026-10: caught up, sent"]
        assert s.tick() == []
        # another scheduler process (say, restarted) logs the fire it finds already sent, once
        other = make(config, tmp_path, clock)
        assert other.tick() == ["marketing-monthly 2026-10: fired, already sent, skipped"]
        assert other.tick() == []
        clock.now += dt.timedelta(days=1)
        assert make(config, tmp_path, clock).tick() == []
    assert len(executives(server)) == 1


def test_down_for_three_periods_sends_one_and_reports_two(demo, tmp_path):
    with Server(tmp_path) as server:
        config = scheduled(demo, port=server.port)
        clock = Clock(at("2026-08-15T12:00:00+00:00"))
        make(config, tmp_path, clock).tick()
        clock.now = at("2026-11-03T12:00:00+00:00")
        decisions = make(config, tmp_path, clock).tick()
    missed = "not sent: older than catch_up=1"
    assert decisions == [
        f"marketing-monthly 2026-08: missed (fired 2026-09-02T07:00:00+02:00), {missed}",
        f"marketing-monthly 2026-09: missed (fired 2026-10-02T07:00:00+02:00), {missed}",
        "marketing-monthly 2026-10: caught up, sent",
    ]
    assert len(executives(server)) == 1


def test_a_lease_left_by_a_killed_process_expires(demo, tmp_path):
    with Server(tmp_path) as server:
        config = scheduled(demo, port=server.port)
        clock = Clock(at("2026-11-01T12:00:00+00:00"))
        make(config, tmp_path, clock).tick()
        clock.now = at("2026-11-02T06:00:30+00:00")
        ledger = Ledger(default_url(tmp_path))
        assert LeaseStore(ledger, "dead-host:4242").acquire("marketing-monthly", "2026-10", clock.now, 3600)
        s = make(config, tmp_path, clock)
        assert s.tick() == ["marketing-monthly 2026-10: held by another scheduler, skipped"]
        assert executives(server) == []
        clock.now += dt.timedelta(minutes=61)
        assert s.tick() == ["marketing-monthly 2026-10: caught up, sent"]
        assert s.tick() == []
        with ledger.engine.connect() as conn:
            assert conn.execute(sa.select(leases)).all() == []  # released
        ledger.close()
    assert len(executives(server)) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_scheduler_processes_on_one_ledger_send_once(demo, tmp_path, backend, request):
    if backend == "postgresql":
        url = request.getfixturevalue("empty_pg_ledger")
    else:
        url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    with Server(tmp_path) as server:
        script = textwrap.dedent(f"""
            import datetime as dt, sys
            sys.path.insert(0, {str(ROOT)!r})
            from reporter.config import load_config
            from reporter.config.model import Delivery, Email, Smtp
            from reporter.run.schedule import Scheduler
            from tests.test_schedule import scheduled
            config = scheduled(load_config(__import__('pathlib').Path({str(DEMO)!r}), env={{}}),
                               port={server.port}, ledger={url!r})
            now = dt.datetime(2026, 11, 2, 6, 0, 30, tzinfo=dt.UTC)
            s = Scheduler(None, output=__import__('pathlib').Path(sys.argv[1]), clock=lambda: now,
                          env={{}}, holder=sys.argv[2])
            s.configs = [config]
            # both have seen the report since October
            from reporter.run.schedule import schedules
            led = s.ledger(config)
            with led.engine.begin() as conn:
                if conn.execute(schedules.select()).first() is None:
                    try:
                        conn.execute(schedules.insert().values(report=config.report.id,
                                     first_seen=dt.datetime(2026, 10, 15, tzinfo=dt.UTC)))
                    except Exception:
                        pass
            led.close()
            print(s.tick())
        """)
        (tmp_path / "one.py").write_text(script)
        procs = [
            subprocess.Popen(
                [sys.executable, str(tmp_path / "one.py"), str(tmp_path / f"host{i}"), f"host-{i}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in (1, 2)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert len(executives(server)) == 1, outputs
    said = " ".join(out for out, _ in outputs)
    assert said.count(": fired, sent") + said.count(": caught up, sent") == 1, said
    assert ("held by another scheduler" in said) or ("already sent" in said), said


def test_data_not_ready_is_retried_then_given_up_with_one_alert(demo, tmp_path):
    with Server(tmp_path) as server:
        config = scheduled(demo, port=server.port)
        clock = Clock(at("2026-11-20T12:00:00+00:00"))
        s = make(config, tmp_path, clock)
        s.tick()
        clock.now = at("2026-12-02T06:00:10+00:00")  # fire for November; the data ends in October
        first = s.tick()
        assert first == [
            "marketing-monthly 2026-11: data not ready, held; retry at 2026-12-02T07:00:10+00:00"
        ]
        clock.now += dt.timedelta(minutes=30)
        assert s.tick() == []  # not before the retry time
        clock.now += dt.timedelta(minutes=31)
        assert s.tick()[0].startswith("marketing-monthly 2026-11: data not ready, held")
        clock.now = at("2026-12-05T06:00:10+00:00")  # three days after the fire time
        assert s.tick() == ["marketing-monthly 2026-11: data still not ready, gave up and alerted"]
        clock.now += dt.timedelta(hours=2)
        assert s.tick() == []
        assert executives(server) == []
        assert len(alerts(server)) == 1
        assert "gave up after 3d" in alerts(server)[0].message.get_content()


def test_reporter_schedule_process_end_to_end(tmp_path):
    with Server(tmp_path) as server:
        text = DEMO.read_text().replace("delivery:\n", "delivery:\n  ledger: shared-ledger\n", 1)
        # the ledger's database is the operator's: a connections file names it
        (tmp_path / "connections.yaml").write_text(f"shared-ledger: sqlite:///{tmp_path / 'l.sqlite'}\n")
        text = text.replace(
            "    from: Reporting",
            f"    smtp: {{host: 127.0.0.1, port: {server.port}, security: none}}\n    from: Reporting",
            1,
        )
        config_dir = tmp_path / "config"
        import shutil

        shutil.copytree(DEMO.parent / "data", config_dir / "data")
        (config_dir / "example.yaml").write_text(text)
        # the scheduler has been watching this report since October
        ledger = Ledger(f"sqlite:///{tmp_path / 'l.sqlite'}")
        from reporter.run.schedule import schedules

        with ledger.engine.begin() as conn:
            conn.execute(
                schedules.insert().values(
                    report="marketing-monthly", first_seen=dt.datetime(2026, 10, 15, tzinfo=dt.UTC)
                )
            )
        ledger.close()
        # The real command in its own process, its clock injected: it starts 3 s before 07:00 Paris
        # and runs at real speed from there.
        program = textwrap.dedent("""
            import datetime as dt, sys, time
            from reporter.cli import main
            origin, began = dt.datetime(2026, 11, 2, 5, 59, 57, tzinfo=dt.UTC), time.monotonic()
            clock = lambda: origin + dt.timedelta(seconds=time.monotonic() - began)
            sys.exit(main(sys.argv[1:], clock=clock))
        """)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                program,
                "schedule",
                str(config_dir / "example.yaml"),
                "--output",
                str(tmp_path / "out"),
                "--connections",
                str(tmp_path / "connections.yaml"),
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 90

        def received():
            return [r for r in server.handler.received if r.rcpt_tos == ["direction@hexagone-conseil.fr"]]

        while not received() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert len(received()) == 1, err
    assert "marketing-monthly 2026-10: fired, sent" in err
    assert "stopped" in err


def test_a_report_that_raises_does_not_stop_the_others(tmp_path):
    """A folder with a good report and one whose `where` validates but fails at run time: the
    good one is sent, the bad one is alerted once and retried at retry_every, no crash."""
    from tests.test_exactly_once import OPS, count, tiny

    with Server(tmp_path) as server:
        tiny(tmp_path, server.port, to=["good@acme.test"], name="good", archive="out/archive")
        tiny(tmp_path, server.port, to=["bad@acme.test"], name="bad", archive="out/archive")
        clock = Clock(at("2026-11-01T12:00:00+00:00"))
        s = Scheduler(tmp_path, output=tmp_path / "out", clock=clock, env={})
        s.load()
        assert [c.report.id for c in s.configs] == ["bad", "good"]
        # Validation now runs every expression over the data, so an expression that fails at run
        # time is put in place after it: the report the scheduler holds raises when it runs.
        bad = s.configs[0]
        metric = bad.metrics["revenue"].model_copy(update={"where": "error('boom') is null"})
        s.configs[0] = bad.model_copy(update={"metrics": {"revenue": metric}})
        assert s.tick() == []
        clock.now = at("2026-11-02T07:01:00+00:00")
        first = s.tick()
        assert first[1] == "good 2026-10: fired, sent"
        assert first[0].startswith("bad 2026-10: FAILED: ")
        assert "boom" in first[0]
        assert first[0].endswith("; retry at 2026-11-02T08:01:00+00:00")
        assert count(server) == {"good@acme.test": 1, OPS: 1}
        (alert,) = [r.message for r in server.handler.received if r.rcpt_tos == [OPS]]
        assert alert["Subject"].startswith("[reporter] bad 2026-10: run FAILED")
        clock.now += dt.timedelta(minutes=30)
        assert s.tick() == []  # not before retry_every
        clock.now += dt.timedelta(minutes=31)
        again = s.tick()
        assert len(again) == 1
        assert again[0].startswith("bad 2026-10: FAILED: ")
        assert count(server) == {"good@acme.test": 1, OPS: 1}  # retried, not alerted again
        with Ledger(default_url(tmp_path / "out")) as ledger:
            assert [r["outcome"] for r in ledger.runs_of("bad")] == ["failed", "failed"]
            assert [r["outcome"] for r in ledger.runs_of("good")] == ["ok"]


def test_a_report_whose_ledger_cannot_be_opened_is_alerted_and_the_others_go_on(tmp_path):
    from tests.test_exactly_once import OPS, count, tiny

    with Server(tmp_path) as server:
        tiny(tmp_path, server.port, to=["good@acme.test"], name="good", archive="out/archive")
        broken = tiny(tmp_path, server.port, to=["bad@acme.test"], name="bad", archive="out/archive")
        (tmp_path / "not-a-folder").write_text("x")
        broken.write_text(broken.read_text().replace("delivery:\n", "delivery:\n  ledger: bad-ledger\n"))
        clock = Clock(at("2026-11-01T12:00:00+00:00"))
        env = {"REPORTER_CONNECTION_BAD_LEDGER": f"sqlite:///{tmp_path}/not-a-folder/l.db"}
        s = Scheduler(tmp_path, output=tmp_path / "out", clock=clock, env=env)
        s.load()
        first = s.tick()
        assert first[0].startswith("bad: FAILED (OperationalError: ")
        assert first[0].endswith("; the other reports go on; retried at the next wake-up")
        clock.now = at("2026-11-02T07:01:00+00:00")
        second = s.tick()
        assert second[1] == "good 2026-10: fired, sent"
        assert second[0].startswith("bad: FAILED (OperationalError: ")
        assert count(server) == {"good@acme.test": 1, OPS: 1}  # alerted once
        (alert,) = [r.message for r in server.handler.received if r.rcpt_tos == [OPS]]
        assert alert["Subject"] == "[reporter] bad -: scheduler could not run this report"


def test_a_reload_with_errors_keeps_the_configuration_read_before(tmp_path, caplog):
    """SIGHUP re-reads the folder; a file with an error (here a typo in the subject) is refused
    with its message and the reports read before go on being scheduled; once fixed, it is read."""
    import logging
    import threading

    from tests.test_exactly_once import tiny

    tiny(tmp_path, 2525, to=["boss@acme.test"], name="good")
    s = Scheduler(tmp_path, output=tmp_path / "out", clock=Clock(at("2026-11-01T12:00:00+00:00")), env={})
    s.load()
    assert [c.report.id for c in s.configs] == ["good"]
    path = tmp_path / "good.yaml"
    text = path.read_text()
    path.write_text(text.replace("report: {id: good, title:", "report: {id: good2, title:"))
    tiny(tmp_path, 2525, to=["b@acme.test"], name="other")
    other = tmp_path / "other.yaml"
    sane = other.read_text()
    other.write_text(
        sane.replace(
            "    from: reporting@acme.test",
            '    subject: "{{ period.lable }}"\n    from: reporting@acme.test',
        )
    )
    with caplog.at_level(logging.ERROR, logger="reporter"):
        assert s.reread() is False
    assert [c.report.id for c in s.configs] == ["good"]  # as before the SIGHUP
    assert "has errors; the configuration read before is kept (1 report(s) scheduled)" in caplog.text
    assert "unknown name 'period.lable'" in caplog.text
    other.write_text(sane)
    assert s.reread() is True
    assert [c.report.id for c in s.configs] == ["good2", "other"]
    # a SIGHUP does not wait for the next wake-up (up to 5 minutes): the loop's sleep ends
    threading.Timer(0.2, s.reload.set).start()
    start = time.monotonic()
    s._wait(30.0)
    assert time.monotonic() - start < 2.0


# -- isolation: a schedule that fires rarely, a slow report -------------------------------------


def _with_schedule(path, cron, extra=""):
    path.write_text(path.read_text().replace('schedule: "0 7 2 * *"', f'schedule: "{cron}"{extra}'))


def test_a_29_february_schedule_fires_in_the_next_leap_year_and_the_others_go_on(
    tmp_path, monkeypatch, capsys
):
    """'0 7 29 2 *' used to stop every report with StopIteration (its next fire is more than 400
    days away), at start and after a SIGHUP. It fires on 29 February 2028; the other report is
    sent on time; `status` shows that date."""
    from reporter.cli import main
    from tests.test_exactly_once import OPS, count, tiny

    with Server(tmp_path) as server:
        tiny(tmp_path, server.port, to=["good@acme.test"], name="good", archive="out/archive")
        _with_schedule(
            tiny(tmp_path, server.port, to=["leap@acme.test"], name="leap", archive="out/archive"),
            "0 7 29 2 *",
        )
        clock = Clock(at("2026-11-01T12:00:00+00:00"))
        s = Scheduler(tmp_path, output=tmp_path / "out", clock=clock, env={})
        s.load()
        assert [c.report.id for c in s.configs] == ["good", "leap"]
        assert next_fire(s.configs[1], clock.now).isoformat() == "2028-02-29T07:00:00+00:00"
        assert s.tick() == []
        clock.now = at("2026-11-02T07:01:00+00:00")
        assert s.tick() == ["good 2026-10: fired, sent"]
        assert s.reread() is True  # SIGHUP
        assert s.next_wake() == at("2026-11-02T07:06:00+00:00")  # the 5-minute wake-up
        assert count(server) == {"good@acme.test": 1}
        assert OPS not in count(server)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(at("2026-12-06T12:00:00+00:00").timestamp())))
    assert main(["status", str(tmp_path / "leap.yaml"), "--output", str(tmp_path / "out")]) == 0
    assert "  schedule '0 7 29 2 *' (UTC): next run 2028-02-29 07:00 UTC = 2028-02-29 07:00 UTC" in (
        capsys.readouterr().out
    )


def test_a_schedule_that_never_fires_is_a_validation_error(tmp_path):
    from tests.test_exactly_once import cli, tiny

    path = tiny(tmp_path, 2525, name="never")
    _with_schedule(path, "0 7 31 2 *")
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "schedule:" in text)
    result = cli("validate", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        f"{path}:{line}:13: delivery.schedule: the cron expression '0 7 31 2 *' never fires: no date "
        'matches it; use a day that exists in that month, e.g. "0 7 28 2 *" (29 February fires in leap '
        "years only)"
    ) in result.stderr


LOOP = "{% for a in 'x' * 1000 %}"
SLOW_SUBJECT = LOOP * 3 + "{% endfor %}" * 3  # 10**9 steps: the render's 30 s limit would stop it


def test_a_slow_report_is_stopped_at_its_deadline_and_the_good_one_runs_on_time(tmp_path):
    """Each report runs in its own process: a report whose run takes long (here a subject whose
    loops would run for the render's 30 s) does not delay the other one, which is sent while it
    still runs; at its schedule_timeout it is stopped, recorded as failed, alerted once, and
    retried after retry_every."""
    from tests.test_exactly_once import OPS, count, tiny

    with Server(tmp_path) as server:
        tiny(tmp_path, server.port, to=["good@acme.test"], name="good", archive="out/archive")
        slow = tiny(tmp_path, server.port, to=["slow@acme.test"], name="a-slow", archive="out/archive")
        _with_schedule(slow, "0 7 2 * *", "\n  schedule_timeout: 8s")
        clock = Clock(at("2026-11-01T12:00:00+00:00"))
        s = Scheduler(tmp_path, output=tmp_path / "out", clock=clock, env={})
        s.load()
        assert [c.report.id for c in s.configs] == ["a-slow", "good"]
        email = s.configs[0].delivery.email.model_copy(update={"subject": SLOW_SUBJECT})
        delivery = s.configs[0].delivery.model_copy(update={"email": email})
        s.configs[0] = s.configs[0].model_copy(update={"delivery": delivery})
        assert s.tick() == []
        clock.now = at("2026-11-02T07:01:00+00:00")
        start = time.monotonic()
        assert s.tick(wait=False) == []  # both started; the loop does not wait for either
        assert time.monotonic() - start < 5
        assert sorted(s.workers) == ["a-slow", "good"]
        slow_pid = s.workers["a-slow"].process.pid
        finished: dict[str, tuple[str, float]] = {}
        while s.workers:
            assert time.monotonic() - start < 90
            for text in s.tick(wait=False):
                finished[text.split()[0]] = (text, time.monotonic() - start)
            time.sleep(0.1)
        assert finished["good"][0] == "good 2026-10: fired, sent"
        assert finished["a-slow"][0] == (
            "a-slow 2026-10: FAILED: stopped after 8s (delivery.schedule_timeout); nothing more is sent "
            "by this run; retry at 2026-11-02T08:01:00+00:00"
        )
        assert 8 <= finished["a-slow"][1] < 20  # its deadline, whatever the other one does
        with pytest.raises(ProcessLookupError):
            os.kill(slow_pid, 0)  # stopped, and reaped
        assert count(server) == {"good@acme.test": 1, OPS: 1}
        (alert,) = [r.message for r in server.handler.received if r.rcpt_tos == [OPS]]
        assert (
            alert["Subject"].strip()
            == "[reporter] a-slow 2026-10: run FAILED, nothing was sent to the recipients"
        )
        assert "stopped after 8s (delivery.schedule_timeout)" in alert.get_content()
        with Ledger(default_url(tmp_path / "out")) as ledger:
            (run,) = ledger.runs_of("a-slow")
            assert run["outcome"] == "failed"
            assert run["error"] == (
                "stopped after 8s (delivery.schedule_timeout); nothing more is sent by this run"
            )
            (run,) = ledger.runs_of("good")
            assert run["outcome"] == "ok"
            assert _aware(run["started"]) == clock.now  # started at the fire, beside the slow one
            assert conn_leases(ledger) == []  # both leases released
        clock.now += dt.timedelta(minutes=30)
        assert s.tick() == []  # not retried before retry_every


def conn_leases(ledger):
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(leases)).all()
