"""Exactly once, even when racing or unsure; archived or failed, never silently neither.

Everything against a real SMTP server on 127.0.0.1 (tests/smtp_server.py), real `reporter`
processes where processes matter, and the real ledger; messages are counted at the server."""

from __future__ import annotations

import datetime as dt
import errno
import functools
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

import pytest

from reporter.cli import main
from reporter.config import load_config
from reporter.delivery.archive import MANIFEST, Files, verify_archive
from reporter.delivery.ledger import Ledger, default_url
from reporter.delivery.mailer import Mailer
from reporter.delivery.once import ExactlyOnce, Key
from reporter.delivery.send import EmailChannel
from reporter.errors import RunError
from reporter.render.digest import message_id
from reporter.run.pipeline import run_report
from tests.conftest import ROOT, write_csv
from tests.smtp_server import Server

NOW = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)
EPOCH = str(int(NOW.timestamp()))
PEOPLE = ["a@acme.test", "b@acme.test", "c@acme.test", "d@acme.test", "e@acme.test"]
OPS = "ops@acme.test"


def tiny(
    folder: Path,
    port: int,
    *,
    to=PEOPLE,
    data_timeout: float = 600,
    name="tiny",
    where=None,
    archive="archive",
) -> Path:
    """A small report (one CSV, one KPI, PDF/A with results.json inside) delivering to ``to``;
    its archive is ``folder/archive`` and, run with ``--output folder``, its ledger
    ``folder/ledger.sqlite`` (beside the archive, where ``verify`` looks). Run with another
    output folder, ``archive`` must name a folder inside it (``out/archive``)."""
    days = [dt.date(2025, 10, 1) + dt.timedelta(days=i) for i in range(396)]
    write_csv(folder / "orders.csv", ["date", "amount"], [[d.isoformat(), d.day * 10] for d in days])
    condition = f", where: {json.dumps(where)}" if where else ""
    text = textwrap.dedent(f"""\
        report: {{id: {name}, title: Tiny, timezone: UTC}}
        sources:
          orders: {{type: csv, path: orders.csv, date_column: date}}
        metrics:
          revenue: {{source: orders, agg: sum, column: amount{condition}}}
        kpis:
          revenue: {{label: Revenue, formula: revenue}}
        delivery:
          schedule: "0 7 2 * *"
          alerts_to: [{OPS}]
          email:
            from: reporting@acme.test
            to: [{", ".join(to)}]
            smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: 10, data_timeout: {data_timeout}}}
          archive: {{dir: {archive}}}
        """)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    env.pop("REPORTER_ARCHIVE_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "reporter", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def count(server: Server) -> dict[str, int]:
    seen: dict[str, int] = {}
    for r in server.handler.received:
        for address in r.rcpt_tos:
            seen[address] = seen.get(address, 0) + 1
    return seen


def alerts(server: Server) -> list:
    return [r.message for r in server.handler.received if r.rcpt_tos == [OPS]]


def states(folder: Path, report: str = "tiny") -> dict[str, tuple[int, str]]:
    with Ledger(default_url(folder)) as ledger:
        return {d.recipient: (d.version, d.state) for d in ledger.all(report)}


# --- racing -------------------------------------------------------------------------------


def _note(rcpt: str, msg_id: str) -> EmailMessage:
    """A small message to ``rcpt`` carrying the Message-ID its delivery version gets."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "reporting@acme.test", rcpt, "Tiny"
    message["Message-ID"] = msg_id
    message.set_content("the report")
    return message


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_runs_racing_on_one_ledger_send_each_message_once(tmp_path, backend, request):
    """Five runs (threads, each with its own ledger connection and run id) call
    ``deliver_once`` for the same five recipients at the same moment, five times over, on one
    ledger, through the real e-mail channel (a hundred losing attempts, as many as twenty rounds
    of two `reporter run` processes): each recipient receives exactly one message, the ledger
    says sent (version 1), and every other run sees it settled (skipped, not sent)."""
    rounds, racers = 5, 5
    url = default_url(tmp_path) if backend == "sqlite" else request.getfixturevalue("empty_pg_ledger")
    with Server(tmp_path) as server:
        config = load_config(tiny(tmp_path, server.port))
        assert config.delivery.email is not None
        with Ledger(url):
            pass  # the schema, made before the race (racing migrations: test_ledger_migrations)
        rounds_of = [[p.replace("@", f"{n}@") for p in PEOPLE] for n in range(rounds)]
        everyone = [rcpt for people in rounds_of for rcpt in people]
        barrier = threading.Barrier(racers)

        def race(i: int) -> list:
            """One racer: a run, whose every round starts with the others' at the barrier."""
            with Ledger(url) as ledger:
                mailer = Mailer(config.delivery.email.smtp, tmp_path / "outbox", base_dir=config.base_dir)
                channel = EmailChannel(config, mailer)
                run = ledger.start_run("tiny", "2026-10", NOW)
                once = ExactlyOnce(ledger, config, tmp_path, run, NOW)
                done = []
                for people in rounds_of:
                    barrier.wait(timeout=60)
                    for rcpt in people[i:] + people[:i]:  # each run in its own order
                        key = Key("tiny", "2026-10", rcpt)
                        done.append(once.deliver_once(channel, key, functools.partial(_note, rcpt)))
                ledger.finish_run(run, NOW, "ok")
                return done

        with ThreadPoolExecutor(racers) as pool:
            outcomes = [o for done in pool.map(race, range(racers)) for o in done]
        for rcpt in everyone:
            mine = [o for o in outcomes if o.recipient == rcpt]
            assert sorted(o.state for o in mine) == ["sent"] + ["skipped"] * (racers - 1), mine
            (sender,) = [o for o in mine if o.state == "sent"]
            assert sender.claimed
            assert sender.message_id == message_id("tiny", "2026-10", rcpt, 1)
        received = count(server)
        assert received == dict.fromkeys(everyone, 1)
        for rcpt in everyone:
            (got,) = server.handler.to(rcpt)
            assert got.message["Message-ID"] == message_id("tiny", "2026-10", rcpt, 1)
        with Ledger(url) as ledger:
            assert {d.recipient: (d.version, d.state) for d in ledger.all("tiny")} == dict.fromkeys(
                everyone, (1, "sent")
            )


def test_two_processes_racing_send_each_message_once(tmp_path):
    """Two `reporter run` of the same report and period, started together on one output folder
    (the race end to end; the ledger-level race above runs it many times over): each recipient
    receives exactly one message, the console says sent once and skipped once per recipient,
    and the archive verifies."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    with Server(tmp_path) as server:
        config = tiny(tmp_path, server.port)
        command = [sys.executable, "-m", "reporter", "run", str(config), "--period", "2026-10"]
        pair = [
            subprocess.Popen(
                [*command, "--output", str(tmp_path)],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=600) for p in pair]
        assert [p.returncode for p in pair] == [0, 0], outs
        assert count(server) == dict.fromkeys(PEOPLE, 1), outs
        assert states(tmp_path) == {p: (1, "sent") for p in PEOPLE}
        # one console line per recipient: "  address: sent" or "  address: …skipped…"
        said = [[line for line in out.splitlines() if line.startswith("  ")] for out, _ in outs]
        sent = [sum(line.endswith(": sent") for line in lines) for lines in said]
        skipped = sum("skipped" in line for lines in said for line in lines)
        assert (sum(sent), skipped) == (5, 5), said
        assert main(["verify", str(tmp_path / "archive")]) == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_claim_is_taken_once(tmp_path, backend, request):
    """The claim itself: the second INSERT of the same delivery version does not win."""
    url = default_url(tmp_path)
    if backend == "postgresql":
        url = request.getfixturevalue("empty_pg_ledger")
    with Ledger(url) as ledger:
        run = ledger.start_run("r", "2026-10", NOW)
        kw = dict(forced=False, reason=None, channel="smtp", run_id=run)
        assert ledger.claim("r", "2026-10", "A@acme.test", 1, "<m>", NOW, **kw) is True
        assert ledger.claim("r", "2026-10", "a@acme.test", 1, "<m>", NOW, **kw) is False
        # a failed version is taken back once, by one run
        ledger.record("r", "2026-10", "a@acme.test", 1, NOW, state="failed", error="451")
        assert ledger.claim("r", "2026-10", "a@acme.test", 1, "<m>", NOW, retry=True, **kw) is True
        assert ledger.claim("r", "2026-10", "a@acme.test", 1, "<m>", NOW, retry=True, **kw) is False


# --- unsure: no reply after the message's end ------------------------------------------------


def test_late_reply_goes_to_review_once_then_resolve(tmp_path, capsys):
    """The server stores each message but answers after the client stopped waiting: one
    message per recipient, all in review, never retried; `resolve --sent` settles one,
    `resolve --resend` sends exactly one more (same Message-ID)."""
    people = PEOPLE[:3]
    with Server(tmp_path) as server:
        server.handler.late_reply = 3.0
        config = tiny(tmp_path, server.port, to=people, data_timeout=0.5)
        done = cli("run", str(config), "--period", "2026-10", "--output", str(tmp_path), cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert [line.split(": ", 1)[1].split(":")[0] for line in done.stdout.splitlines()[1:]] == [
            "not re-sent, review"
        ] * 3
        assert done.stderr.splitlines()[-1] == (
            f"reporter: FAILED: tiny 2026-10: delivery to {', '.join(people)} unconfirmed, in review "
            "(the server may have accepted them; not re-sent): check whether each arrived, then run "
            f"'reporter resolve {config} 2026-10 ADDRESS --sent --output {tmp_path}' for each that did, "
            "or '--resend' for "
            "each that did not"
        )
        assert count(server) == {**dict.fromkeys(people, 1), OPS: 1}
        assert states(tmp_path) == {p: (1, "review") for p in people}
        (alert,) = alerts(server)
        assert (
            alert["Subject"]
            == "[reporter] tiny 2026-10: run FAILED: delivery unconfirmed for 3 of 3 recipients; "
            "review needed"
        )
        # a rerun does not retry them, and fails again
        again = cli("run", str(config), "--period", "2026-10", "--output", str(tmp_path), cwd=tmp_path)
        assert again.returncode == 1, again.stderr
        assert [line.split(": ", 1)[1].split(":")[0] for line in again.stdout.splitlines()[1:]] == [
            "not re-sent, review"
        ] * 3
        assert count(server) == {**dict.fromkeys(people, 1), OPS: 2}
        # the archive holds what may have been delivered
        assert main(["verify", str(tmp_path / "archive")]) == 0
        server.handler.late_reply = 0
        capsys.readouterr()
        assert main(["resolve", str(config), "2026-10", people[0], "--sent", "--output", str(tmp_path)]) == 0
        assert (
            capsys.readouterr().out == f"tiny 2026-10 {people[0]}: recorded as sent (v1); nothing was sent\n"
        )
        assert (
            main(["resolve", str(config), "2026-10", people[1], "--resend", "--output", str(tmp_path)]) == 0
        )
        out = capsys.readouterr().out
        assert out.startswith(f"tiny 2026-10 {people[1]}: re-sent with the same Message-ID <")
        assert count(server) == {people[0]: 1, people[1]: 2, people[2]: 1, OPS: 2}
        first, second = [
            r.message["Message-ID"] for r in server.handler.received if r.rcpt_tos == [people[1]]
        ]
        assert first == second
        assert states(tmp_path) == {people[0]: (1, "sent"), people[1]: (1, "sent"), people[2]: (1, "review")}
        # settled deliveries cannot be resolved again; the message says what to do instead
        assert (
            main(["resolve", str(config), "2026-10", people[1], "--resend", "--output", str(tmp_path)]) == 2
        )
        assert capsys.readouterr().err == (
            f"reporter: error: tiny 2026-10 {people[1]}: sent, not in review; to send it again: "
            f"reporter run {config} --period 2026-10 --force --reason TEXT --recipient {people[1]}\n"
        )
        assert count(server) == {people[0]: 1, people[1]: 2, people[2]: 1, OPS: 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["2026-10", "nobody@acme.test", "--sent"],
            "tiny 2026-10: no delivery to nobody@acme.test in the ledger",
        ),
        (["2026-13", "a@acme.test", "--sent"], "--period: "),
        (["2026-10", "a@acme.test"], "resolve: one of the arguments --sent --resend is required"),
        (
            ["2026-10", "a@acme.test", "--sent", "--resend"],
            "resolve: argument --resend: not allowed with",
        ),
    ],
)
def test_resolve_refuses_what_it_cannot_settle(tmp_path, capsys, args, message):
    config = tiny(tmp_path, 1)
    with Ledger(default_url(tmp_path)):
        pass  # an empty ledger
    assert main(["resolve", str(config), *args, "--output", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"reporter: error: {message}")


def test_resolve_resend_to_an_address_the_yaml_dropped_is_refused(tmp_path, capsys):
    config = tiny(tmp_path, 1)
    with Ledger(default_url(tmp_path)) as ledger:
        run = ledger.start_run("tiny", "2026-10", NOW)
        ledger.claim(
            "tiny",
            "2026-10",
            "gone@acme.test",
            1,
            "<m>",
            NOW,
            forced=False,
            reason=None,
            channel="smtp",
            run_id=run,
        )
        ledger.record("tiny", "2026-10", "gone@acme.test", 1, NOW, state="review", error="no reply")
    args = ["resolve", str(config), "2026-10", "gone@acme.test", "--output", str(tmp_path)]
    assert main([*args, "--resend"]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: tiny 2026-10 gone@acme.test: {config} no longer delivers to this address: "
        "cannot re-send it (--sent records it as delivered)\n"
    )
    assert states(tmp_path) == {"gone@acme.test": (1, "review")}
    assert main([*args, "--sent"]) == 0
    assert states(tmp_path) == {"gone@acme.test": (1, "sent")}


def test_resolve_without_a_ledger_says_where_it_looked(tmp_path, capsys):
    config = tiny(tmp_path, 1)
    assert main(["resolve", str(config), "2026-10", "a@acme.test", "--sent", "--output", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: no ledger in {tmp_path} (ledger.sqlite): "
        "nothing was sent from there; see --output\n"
    )


def test_force_with_recipient_resends_to_that_one_only(tmp_path, capsys):
    with Server(tmp_path) as server:
        config = tiny(tmp_path, server.port)
        assert main(["run", str(config), "--period", "2026-10", "--output", str(tmp_path)]) == 0
        assert count(server) == dict.fromkeys(PEOPLE, 1)
        args = [
            "run",
            str(config),
            "--period",
            "2026-10",
            "--output",
            str(tmp_path),
            "--force",
            "--reason",
            "again",
        ]
        assert main([*args, "--recipient", "C@acme.test"]) == 0
        assert count(server) == {**dict.fromkeys(PEOPLE, 1), "c@acme.test": 2}
        assert states(tmp_path)["c@acme.test"] == (2, "sent")
        assert main([*args, "--recipient", "a@acme.test", "--recipient", "e@acme.test"]) == 0
        assert count(server) == {
            **dict.fromkeys(PEOPLE, 1),
            "a@acme.test": 2,
            "c@acme.test": 2,
            "e@acme.test": 2,
        }
        capsys.readouterr()
        assert main([*args, "--recipient", "zed@acme.test"]) == 2
        assert capsys.readouterr().err == (
            "reporter: error: --recipient zed@acme.test: not a recipient of this report "
            "(delivery.email to, cc or recipients)\n"
        )
        assert main([*args[:-3], "--recipient", "a@acme.test"]) == 2
        assert capsys.readouterr().err == (
            "reporter: error: --recipient re-sends to some recipients only: use it with --force\n"
        )
        assert sum(count(server).values()) == 8
        # each forced re-send is archived as a new version with the chain and ledger intact
        assert main(["verify", str(tmp_path / "archive")]) == 0
        lines = (tmp_path / "archive" / MANIFEST).read_text().splitlines()
        pdfs = [json.loads(x) for x in lines if json.loads(x).get("kind") != "message"]
        assert [e["version"] for e in pdfs] == [1, 2, 3]


def test_a_rerun_of_a_delivered_period_sends_nothing_and_leaves_the_delivered_files(
    tmp_path, capsys, monkeypatch
):
    """A day later, the same command: the ledger says every recipient has the period, so the run
    renders nothing (a new render would carry another time and differ from what they received):
    the output folder keeps the delivered files byte for byte, the archive's manifest is
    unchanged, and one line says so. A recipient added since is sent the report as usual."""

    def files() -> dict[str, bytes]:
        return {
            str(p.relative_to(tmp_path)): p.read_bytes()
            for p in sorted(tmp_path.rglob("*"))
            if p.is_file() and not p.name.startswith("ledger.sqlite")
        }

    with Server(tmp_path) as server:
        config = tiny(tmp_path, server.port, to=PEOPLE[:2])
        run = ["run", str(config), "--period", "2026-10", "--output", str(tmp_path)]
        monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
        assert main(run) == 0
        delivered = files()
        folder = tmp_path / "tiny" / "2026-10"
        names = ["tiny_2026-10.pdf", "results.json", "email.eml"]
        assert {f"tiny/2026-10/{name}" for name in names} <= set(delivered)
        sent = next(p for p in server.handler.received[0].message.iter_attachments()).get_content()
        assert delivered["tiny/2026-10/tiny_2026-10.pdf"] == sent
        capsys.readouterr()
        monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int((NOW + dt.timedelta(days=1)).timestamp())))
        assert main(run) == 0
        archived = tmp_path / "archive" / "tiny" / "2026-10" / "tiny_2026-10_v1.pdf"
        assert capsys.readouterr().out == (
            f"tiny 2026-10: already delivered on 2026-11-02 (ledger), nothing sent; files left as "
            f"delivered in {folder}; the delivered PDF is archived as {archived} "
            "(--force --reason TEXT sends it again)\n"
        )
        assert files() == delivered  # the manifest and every delivered file, byte for byte
        assert count(server) == dict.fromkeys(PEOPLE[:2], 1)
        with Ledger(default_url(tmp_path)) as ledger:
            assert [r["outcome"] for r in ledger.runs_of("tiny")] == ["ok", "ok"]
        # a recipient added since: the run goes on as usual and sends to them only
        tiny(tmp_path, server.port, to=PEOPLE[:3])
        assert main(run) == 0
        assert capsys.readouterr().out.endswith(f"  {PEOPLE[2]}: sent\n")
        assert count(server) == dict.fromkeys(PEOPLE[:3], 1)


# --- archived or failed, never silently neither -----------------------------------------------

CRASH = """
import os, sys, datetime as dt
from pathlib import Path
sys.path.insert(0, {root!r})
from reporter.config import load_config
from reporter.delivery.archive import Files
from reporter.run.pipeline import run_report

class Crash(Files):
    def create_new(self, path, data):  # the archive's first write: the process dies here
        os._exit(9)

run_report(load_config(Path(sys.argv[1]), env={{}}), period="2026-10",
           now=dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC), output=Path(sys.argv[2]), files=Crash())
"""


def test_a_crash_between_the_last_send_and_the_archive_is_finished_by_the_rerun(tmp_path, capsys):
    with Server(tmp_path) as server:
        config = tiny(tmp_path, server.port)
        script = tmp_path / "crash.py"
        script.write_text(CRASH.format(root=str(ROOT)))
        died = subprocess.run(
            [sys.executable, str(script), str(config), str(tmp_path)], capture_output=True, timeout=300
        )
        assert died.returncode == 9, died.stderr
        assert count(server) == dict.fromkeys(PEOPLE, 1)
        assert not (tmp_path / "archive" / MANIFEST).exists()
        with Ledger(default_url(tmp_path)) as ledger:
            assert [r["outcome"] for r in ledger.runs_of("tiny")] == ["running"]  # killed: no chance to say
            assert [s["state"] for s in ledger.archive_steps_of("tiny")] == ["pending"]
        sent = next(p for p in server.handler.received[0].message.iter_attachments()).get_content()
        # the rerun: nothing to send, but the delivered PDF is archived
        capsys.readouterr()
        assert main(["run", str(config), "--period", "2026-10", "--output", str(tmp_path)]) == 0
        assert count(server) == dict.fromkeys(PEOPLE, 1)
        archived = tmp_path / "archive" / "tiny" / "2026-10" / "tiny_2026-10_v1.pdf"
        assert capsys.readouterr().out == (
            f"tiny 2026-10: already delivered on 2026-11-02 (ledger), nothing sent; files left as delivered "
            f"in {tmp_path}/tiny/2026-10; the delivered PDF is archived now as {archived} "
            "(--force --reason TEXT sends it again)\n"
        )
        assert archived.read_bytes() == sent  # exactly what was delivered
        assert main(["verify", str(tmp_path / "archive")]) == 0
        with Ledger(default_url(tmp_path)) as ledger:
            assert [(s["state"], s["version"]) for s in ledger.archive_steps_of("tiny")] == [("done", 1)]
        assert not list((tmp_path / ".unarchived").iterdir())
        # and a third run has nothing left to archive
        assert main(["run", str(config), "--period", "2026-10", "--output", str(tmp_path)]) == 0
        assert len((tmp_path / "archive" / MANIFEST).read_text().splitlines()) == 1


class ReadOnlyArchive(Files):
    """Every write under the archive fails as on a read-only mount (root ignores chmod)."""

    def __init__(self, archive: Path):
        self.archive = archive

    def _check(self, path: Path) -> None:
        if path.resolve().is_relative_to(self.archive.resolve()):
            raise OSError(errno.EROFS, "Read-only file system", str(path))

    def mkdir(self, folder: Path) -> None:
        self._check(folder)
        super().mkdir(folder)

    def create_new(self, path: Path, data: bytes) -> None:
        self._check(path)
        super().create_new(path, data)


def test_a_read_only_archive_fails_the_run_with_one_alert_and_the_next_run_archives(tmp_path, capsys):
    with Server(tmp_path) as server:
        config_path = tiny(tmp_path, server.port)
        config = load_config(config_path, env={})
        archive = tmp_path / "archive"
        with pytest.raises(RunError) as caught:
            run_report(config, period="2026-10", now=NOW, output=tmp_path, files=ReadOnlyArchive(archive))
        assert str(caught.value) == (
            f"tiny 2026-10: delivered but NOT archived in {archive}: Read-only file system: {archive}; "
            "fix the archive folder, then run again: the next run archives it"
        )
        assert count(server) == {**dict.fromkeys(PEOPLE, 1), OPS: 1}
        (alert,) = alerts(server)
        assert alert["Subject"] == "[reporter] tiny 2026-10: delivered but NOT archived"
        assert "Read-only file system" in alert.get_content()
        with Ledger(default_url(tmp_path)) as ledger:
            assert [r["outcome"] for r in ledger.runs_of("tiny")] == ["failed"]
            assert [s["state"] for s in ledger.archive_steps_of("tiny")] == ["failed"]
        assert main(["status", str(config_path), "--output", str(tmp_path)]) == 0
        assert (
            f"  archive 2026-10 (run 1): failed — Read-only file system: {archive}\n"
            in capsys.readouterr().out
        )
        # still read-only: the rerun fails again (exit 1), sends nothing, alerts again
        with pytest.raises(RunError, match="delivered but NOT archived"):
            run_report(config, period="2026-10", now=NOW, output=tmp_path, files=ReadOnlyArchive(archive))
        assert count(server) == {**dict.fromkeys(PEOPLE, 1), OPS: 2}
        # fixed: the rerun archives the delivered PDF and succeeds
        outcome = run_report(config, period="2026-10", now=NOW, output=tmp_path)
        assert archive / "tiny" / "2026-10" / "tiny_2026-10_v1.pdf" in outcome.files
        assert [d.state for d in outcome.deliveries] == ["skipped"] * 5
        assert verify_archive(archive, ledger=Ledger(default_url(tmp_path))) == []


def test_an_unwritable_archive_exits_1_with_one_alert(tmp_path):
    """For real, through the CLI: the archive folder lies under a regular file."""
    with Server(tmp_path) as server:
        config = tiny(tmp_path, server.port)
        (tmp_path / "blocker").write_text("not a folder")
        config.write_text(config.read_text().replace("dir: archive", "dir: blocker/archive"))
        done = cli("run", str(config), "--period", "2026-10", "--output", str(tmp_path), cwd=tmp_path)
        assert done.returncode == 1
        blocked = tmp_path / "blocker" / "archive"
        assert done.stderr.endswith(
            f"reporter: FAILED: tiny 2026-10: delivered but NOT archived in {blocked}: "
            f"Not a directory: {blocked}; fix the archive folder, then run again: "
            "the next run archives it\n"
        )
        assert count(server) == {**dict.fromkeys(PEOPLE, 1), OPS: 1}
        assert [a["Subject"] for a in alerts(server)] == [
            "[reporter] tiny 2026-10: delivered but NOT archived"
        ]


class FullDisk(Files):
    def write_together(self, contents: Mapping[Path, bytes], remove: Iterable[Path] = ()) -> None:
        for path in contents:
            if path.suffix == ".pdf":
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        super().write_together(contents, remove)


def test_any_exception_marks_the_run_failed_and_alerts(tmp_path):
    with Server(tmp_path) as server:
        config = load_config(tiny(tmp_path, server.port), env={})
        with pytest.raises(OSError, match="No space left on device"):
            run_report(config, period="2026-10", now=NOW, output=tmp_path, files=FullDisk())
        pdf = tmp_path / "tiny" / "2026-10" / "tiny_2026-10.pdf"
        assert not pdf.parent.exists()  # the files go in together: none without the PDF
        with Ledger(default_url(tmp_path)) as ledger:
            runs = ledger.runs_of("tiny")
            assert [(r["outcome"], r["error"]) for r in runs] == [
                ("failed", f"OSError: [Errno 28] No space left on device: '{pdf}'")
            ]
            assert ledger.all("tiny") == []
        assert count(server) == {OPS: 1}
        (alert,) = alerts(server)
        assert (
            alert["Subject"]
            == "[reporter] tiny 2026-10: run FAILED (unexpected error); the ledger shows what was sent"
        )
        assert f"OSError: [Errno 28] No space left on device: '{pdf}'" in alert.get_content()


def test_killed_while_waiting_for_the_reply_is_review_on_the_next_run(tmp_path):
    """kill -9 after the message's end, before the server's reply: the ledger says `pending`
    for a process that is gone; the next run does not re-send it, it puts it in review."""
    import signal
    import time

    with Server(tmp_path) as server:
        server.handler.late_reply = 20.0
        config = tiny(tmp_path, server.port, data_timeout=60)
        env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reporter",
                "run",
                str(config),
                "--period",
                "2026-10",
                "--output",
                str(tmp_path),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not server.handler.received and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert count(server) == {PEOPLE[0]: 1}
        assert states(tmp_path) == {PEOPLE[0]: (1, "pending")}
        server.handler.late_reply = 0
        with pytest.raises(RunError) as caught:
            run_report(load_config(config, env={}), period="2026-10", now=NOW, output=tmp_path)
        assert (
            [(d.recipient, d.state) for d in caught.value.outcome.deliveries]
            == [  # type: ignore[attr-defined]
                (PEOPLE[0], "review"),
                *[(p, "sent") for p in PEOPLE[1:]],
            ]
        )
        assert count(server) == {**dict.fromkeys(PEOPLE, 1), OPS: 1}
        (alert,) = alerts(server)
        assert (
            alert["Subject"]
            == "[reporter] tiny 2026-10: run FAILED: delivery unconfirmed for 1 of 5 recipients; "
            "review needed"
        )
        assert (
            f"  - {PEOPLE[0]}: check {PEOPLE[0]}'s mailbox, then run "
            f"'reporter resolve {config} 2026-10 {PEOPLE[0]} --sent --output {tmp_path}' if it arrived, "
            "or '--resend' if it did not\n"
        ) in alert.get_content().replace("\r\n", "\n")
        # a third run: still in review, still failing, not re-sent
        with pytest.raises(RunError):
            run_report(load_config(config, env={}), period="2026-10", now=NOW, output=tmp_path)
        assert count(server) == {**dict.fromkeys(PEOPLE, 1), OPS: 2}
        with Ledger(default_url(tmp_path)) as ledger:
            assert [r["outcome"] for r in ledger.runs_of("tiny")] == ["interrupted", "failed", "failed"]


def test_a_ctrl_c_python_dropped_still_stops_the_run_before_anything_is_written_or_sent(
    tmp_path, monkeypatch
):
    """A KeyboardInterrupt raised while a __del__ runs (WeasyPrint's font objects are collected
    mid-render) is printed and dropped by Python, and the run used to go on and send. The SIGINT
    handler also remembers it, and the run stops before it writes, sends or archives."""
    import gc
    import signal

    from reporter import errors

    dropped: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_value))

    class Collected:
        def __del__(self) -> None:
            errors.on_interrupt(signal.SIGINT, None)  # what a Ctrl-C does at that moment

    errors.INTERRUPTED.clear()
    Collected()
    gc.collect()
    assert [type(e) for e in dropped] == [KeyboardInterrupt]  # Python dropped it...
    assert errors.INTERRUPTED.is_set()  # ...the flag did not
    try:
        with Server(tmp_path) as server:
            config = load_config(tiny(tmp_path, server.port, archive="out/archive"), env={})
            with pytest.raises(KeyboardInterrupt):
                run_report(config, period="2026-10", now=NOW, output=tmp_path / "out")
            assert server.handler.received == []
    finally:
        errors.INTERRUPTED.clear()
    assert not (tmp_path / "out" / "tiny").exists()  # no results.json, no PDF
    assert not (tmp_path / "out" / "archive").exists()
    with Ledger(default_url(tmp_path / "out")) as ledger:
        assert [(r["outcome"], r["error"]) for r in ledger.runs_of("tiny")] == [("failed", "interrupted")]
        assert ledger.all("tiny") == []
