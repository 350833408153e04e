"""Bursting: each recipient gets a report computed on their own rows only."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from reporter.config import load_config
from reporter.errors import ConfigError
from reporter.run.pipeline import run_report
from tests.conftest import write_csv
from tests.smtp_server import Server

NOW = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)
SELLERS = [f"Seller {i:02d}" for i in range(20)]


def make(tmp_path, port):
    rng = random.Random(3)
    orders = []
    day = dt.date(2025, 9, 1)
    while day <= dt.date(2026, 10, 31):
        for seller in SELLERS:
            if rng.random() < 0.5:
                orders.append([day.isoformat(), seller, round(rng.uniform(10, 500), 2)])
        day += dt.timedelta(days=1)
    write_csv(tmp_path / "orders.csv", ["date", "salesperson", "amount"], orders)
    web = [
        [d.isoformat(), rng.randint(100, 900)]
        for d in (dt.date(2025, 9, 1) + dt.timedelta(days=i) for i in range(426))
    ]
    write_csv(tmp_path / "web.csv", ["date", "sessions"], web)
    recipients = "\n".join(
        f"      - {{email: s{i:02d}@acme.test, filter: {{salesperson: '{s}'}}}}"
        for i, s in enumerate(SELLERS)
    )
    (tmp_path / "r.yaml").write_text(f"""
report: {{id: burst, title: Ventes, timezone: Europe/Paris, locale: fr_FR}}
sources:
  orders: {{type: csv, path: orders.csv, date_column: date}}
  web: {{type: csv, path: web.csv, date_column: date, shared: true}}
metrics:
  revenue: {{source: orders, agg: sum, column: amount}}
  orders: {{source: orders, agg: count}}
  sessions: {{source: web, agg: sum, column: sessions}}
kpis:
  revenue: {{label: Chiffre d'affaires, formula: revenue, format: currency}}
  per_session: {{label: CA par visite, formula: revenue / sessions, format: currency}}
objectives:
  - {{id: rev, title: CA, kpi: revenue, target: {{value: 3000}}, owner: Direction, due: 2026-12-31}}
delivery:
  email:
    from: reporting@acme.test
    smtp: {{host: 127.0.0.1, port: {port}, security: none}}
    recipients:
{recipients}
""")
    return load_config(tmp_path / "r.yaml", env={}), orders, web


def test_twenty_recipients_each_get_their_own_numbers(tmp_path):
    with Server(tmp_path) as server:
        config, orders, web = make(tmp_path, server.port)
        outcome = run_report(config, period="2026-10", now=NOW, output=tmp_path / "out", sleep=lambda s: None)
        assert sorted(d.state for d in outcome.deliveries) == ["sent"] * 20
        assert sorted(r.rcpt_tos[0] for r in server.handler.received) == [
            f"s{i:02d}@acme.test" for i in range(20)
        ]
        sessions = sum(n for d, n in web if d.startswith("2026-10"))
        for i in (3, 17):  # two recipients, checked against the rows themselves
            mine = sum(a for d, s, a in orders if s == SELLERS[i] and d.startswith("2026-10"))
            folder = tmp_path / "out" / "burst" / "2026-10" / "recipients" / f"s{i:02d}@acme.test"
            data = json.loads((folder / "results.json").read_text())
            assert data["filter"] == {"salesperson": SELLERS[i]}
            assert data["kpis"]["revenue"]["value"] == pytest.approx(mine)
            assert data["kpis"]["per_session"]["value"] == pytest.approx(mine / sessions)  # web is shared
            (msg,) = [r.message for r in server.handler.received if r.rcpt_tos == [f"s{i:02d}@acme.test"]]
            pdf = next(p for p in msg.iter_attachments()).get_content()
            assert pdf == (folder / "burst_2026-10.pdf").read_bytes()
            text = msg.get_body(("plain",)).get_content()
            assert SELLERS[i] in text
            others = [s for s in SELLERS if s != SELLERS[i]]
            assert not any(s in text for s in others)
        # a second run sends nothing more
        again = run_report(config, period="2026-10", now=NOW, output=tmp_path / "out", sleep=lambda s: None)
        assert sorted(d.state for d in again.deliveries) == ["skipped"] * 20
        assert len(server.handler.received) == 20


def test_a_filter_column_missing_from_an_unshared_source_is_a_config_error(tmp_path):
    make(tmp_path, 25)
    text = (tmp_path / "r.yaml").read_text().replace(", shared: true", "")
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "r.yaml", env={})
    messages = [p.message for p in exc.value.problems]
    assert messages == ["column 'salesperson' is not in source(s) web"] * 20

    assert [p.hint for p in exc.value.problems] == [
        "mark sources that every recipient shares with shared: true"
    ] * 20


def test_a_filter_column_in_no_source_is_named_as_a_likely_typo(tmp_path):
    """A filter on 'sales_person' (the column is 'salesperson') used to get the hint "mark
    sources that every recipient shares with shared: true", which cannot fix a typo."""
    make(tmp_path, 25)
    text = (tmp_path / "r.yaml").read_text()
    (tmp_path / "r.yaml").write_text(text.replace("{salesperson: 'Seller 03'", "{sales_person: 'Seller 03'"))
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "r.yaml", env={})
    (problem,) = exc.value.problems
    assert (problem.key, problem.message, problem.hint) == (
        "delivery.email.recipients[3].filter.sales_person",
        "column 'sales_person' is not in source(s) orders",
        "did you mean 'salesperson'?",
    )


def test_burst_workers_are_capped_at_the_machines_cores(tmp_path, monkeypatch, caplog):
    """`burst: {workers: 25}` used to start 25 processes on a 2-core machine. A run starts at
    most one per core, or REPORTER_MAX_WORKERS (the operator's, not the YAML's): counted here as
    the live worker processes, sampled while the recipients render."""
    import logging
    import multiprocessing
    import threading

    monkeypatch.setenv("REPORTER_MAX_WORKERS", "2")
    with Server(tmp_path) as server:
        make(tmp_path, server.port)
        path = tmp_path / "r.yaml"
        path.write_text(path.read_text() + "  burst: {workers: 25}\n")
        config = load_config(path, env={})
        seen: set[int] = set()
        peak = 0
        done = threading.Event()

        def sample():
            nonlocal peak
            while not done.is_set():
                alive = multiprocessing.active_children()
                seen.update(p.pid for p in alive)
                peak = max(peak, len(alive))
                done.wait(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with caplog.at_level(logging.INFO, logger="reporter.burst"):
                outcome = run_report(
                    config,
                    period="2026-10",
                    now=NOW,
                    output=tmp_path / "out",
                    sleep=lambda s: None,
                    recipients=["s00@acme.test", "s01@acme.test", "s02@acme.test", "s03@acme.test"],
                )
        finally:
            done.set()
            sampler.join()
        assert sorted(d.state for d in outcome.deliveries) == ["sent"] * 4
    assert peak == 2
    assert len(seen) == 2
    assert (
        "burst: 4 recipient(s) on 2 worker process(es) (at most 2 on this machine: REPORTER_MAX_WORKERS, "
        "or one per core)"
    ) in caplog.messages


def test_more_burst_workers_than_the_machine_allows_is_a_validation_warning(tmp_path, monkeypatch):
    from reporter.config.burst import cores
    from reporter.config.lint import silent_defaults

    monkeypatch.delenv("REPORTER_MAX_WORKERS", raising=False)
    make(tmp_path, 25)
    path = tmp_path / "r.yaml"
    path.write_text(path.read_text() + "  burst: {workers: 38}\n")
    warnings = [str(w) for w in silent_defaults(path) if w.key.startswith("delivery")]
    assert warnings == [
        f"{path}:40:20: delivery.burst.workers: warning: 38 worker processes asked for; this machine starts "
        f"at most {cores()} (one per core); the operator may allow more with the environment variable "
        "REPORTER_MAX_WORKERS"
    ]
    monkeypatch.setenv("REPORTER_MAX_WORKERS", "64")
    assert [w for w in silent_defaults(path) if w.key.startswith("delivery")] == []


def test_the_report_and_each_slice_go_through_the_same_stages(tmp_path, monkeypatch):
    """The report and each recipient's slice are the same ``Run`` through the same stages,
    compute → gate → render → deliver → archive: each stage a ``Run`` method, recorded here per
    audience (the slices rendered in this process: ``burst: {workers: 1}``). Before, deliver and
    archive were the pipeline's steps, sequenced once for the report and again for the slices."""
    from reporter.run.stages import Run

    names = ("compute", "gate", "render", "deliver", "archive")
    seen: dict[str | None, list[str]] = {}

    def recording(name, method):
        def stage(self, *args, **kwargs):
            seen.setdefault(self.audience.email, []).append(name)
            return method(self, *args, **kwargs)

        return stage

    for name in names:
        if hasattr(Run, name):  # a stage that is not a Run's is not recorded (and the test fails)
            monkeypatch.setattr(Run, name, recording(name, getattr(Run, name)))
    with Server(tmp_path) as server:
        make(tmp_path, server.port)
        path = tmp_path / "r.yaml"
        head, tail = path.read_text().split("    recipients:\n")
        two = "".join(tail.splitlines(keepends=True)[:2])
        path.write_text(f"{head}    to: [boss@acme.test]\n    recipients:\n{two}  burst: {{workers: 1}}\n")
        config = load_config(path, env={})
        assert [r.email for r in config.delivery.email.recipients] == ["s00@acme.test", "s01@acme.test"]
        outcome = run_report(config, period="2026-10", now=NOW, output=tmp_path / "out", sleep=lambda s: None)
    assert [(d.recipient, d.state) for d in outcome.deliveries] == [
        ("boss@acme.test", "sent"),
        ("s00@acme.test", "sent"),
        ("s01@acme.test", "sent"),
    ]
    assert seen == {who: list(names) for who in (None, "s00@acme.test", "s01@acme.test")}
    (archived,) = (tmp_path / "out" / "archive").rglob("*.pdf")  # the report's, once for the run
    assert (
        archived.read_bytes() == (tmp_path / "out" / "burst" / "2026-10" / "burst_2026-10.pdf").read_bytes()
    )
