"""What a report's YAML may name on disk: recipients never become paths, every path it names stays
in the configuration folder, the output folder or a folder the operator allows, and a report id
belongs to the configuration file that first used it."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from reporter.config import load_config
from reporter.errors import ConfigError
from reporter.run.pipeline import run_report
from tests.conftest import write_csv
from tests.smtp_server import Server

NOW = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)


def _data(folder: Path) -> None:
    rows = []
    day = dt.date(2026, 9, 1)
    while day <= dt.date(2026, 10, 31):
        rows += [[day.isoformat(), "Alice", 10], [day.isoformat(), "Bob", 20]]
        day += dt.timedelta(days=1)
    write_csv(folder / "orders.csv", ["date", "salesperson", "amount"], rows)


def _yaml(folder: Path, report_id: str, delivery: str, name: str = "r.yaml") -> Path:
    _data(folder)
    path = folder / name
    path.write_text(
        f"""report: {{id: {report_id}, title: Ventes, timezone: Europe/Paris, locale: fr_FR}}
sources:
  orders: {{type: csv, path: orders.csv, date_column: date}}
metrics:
  revenue: {{source: orders, agg: sum, column: amount}}
kpis:
  revenue: {{label: Chiffre d'affaires, formula: revenue, format: currency}}
delivery:
{delivery}""",
        encoding="utf-8",
    )
    return path


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


# -- recipients are not paths ---------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["../../x@acme.test", "a@acme.test/../../victim/2026-10", "x/../../y@acme.test", "a..b@acme.test"],
)
def test_an_address_that_climbs_folders_is_refused_at_validation(tmp_path, address):
    path = _yaml(
        tmp_path,
        "burst",
        f"""  email:
    from: reporting@acme.test
    recipients:
      - {{email: "{address}", filter: {{salesperson: Alice}}}}
""",
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    assert [str(p) for p in exc.value.problems] == [
        f"{path}:12:17: delivery.email.recipients[0].email: '{address}' is not a valid email address; "
        "write name@example.com or Name <name@example.com>"
    ]


def test_a_recipient_names_a_folder_and_never_a_path():
    from reporter.files import recipient_name

    assert recipient_name("Alice@Acme.fr") == "alice@acme.fr"
    hostile = recipient_name("/tmp/evil@acme.test")
    assert hostile.startswith("tmp_evil@acme.test-")
    assert len(hostile) == len("tmp_evil@acme.test-") + 10
    assert "/" not in hostile
    # two addresses that reduce to the same characters keep apart by their hash
    assert recipient_name("a/b@acme.test") != recipient_name("a_b@acme.test")
    assert recipient_name("a/b@acme.test") != recipient_name("a|b@acme.test")
    assert not recipient_name(".hidden@acme.test").startswith(".")


def test_a_valid_address_with_slashes_writes_only_inside_the_output_folder(tmp_path):
    """``/<somewhere>/evil@acme.test`` is a valid address (``/`` is allowed before the @): its
    burst report, results and e-mail land in the run's folder, nowhere else, and it still gets
    its report; the other recipient's files are untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    hostile = f"{outside}/evil@acme.test"
    config_dir = tmp_path / "config"
    out = tmp_path / "out"
    with Server(tmp_path) as server:
        path = _yaml(
            config_dir,
            "burst",
            f"""  email:
    from: reporting@acme.test
    smtp: {{host: 127.0.0.1, port: {server.port}, security: none}}
    recipients:
      - {{email: "{hostile}", filter: {{salesperson: Alice}}}}
      - {{email: bob@acme.test, filter: {{salesperson: Bob}}}}
""",
        )
        config = load_config(path, env={})
        outcome = run_report(config, period="2026-10", now=NOW, output=out, sleep=lambda s: None)
        assert sorted(d.state for d in outcome.deliveries) == ["sent", "sent"]
        assert sorted(r.rcpt_tos[0] for r in server.handler.received) == sorted([hostile, "bob@acme.test"])
    assert list(outside.iterdir()) == []
    from reporter.files import recipient_name

    name = recipient_name(hostile)
    files = _files(out / "burst" / "2026-10" / "recipients")
    assert files == {
        f"{name}/results.json",
        f"{name}/burst_2026-10.pdf",
        f"{name}/email.eml",
        "bob@acme.test/results.json",
        "bob@acme.test/burst_2026-10.pdf",
        "bob@acme.test/email.eml",
    }
    alice = json.loads((out / "burst" / "2026-10" / "recipients" / name / "results.json").read_text())
    assert alice["filter"] == {"salesperson": "Alice"}
    assert alice["kpis"]["revenue"]["value"] == 310


def test_an_outbox_message_is_named_by_the_recipient_never_a_path(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    hostile = f"{outside}/evil@acme.test"
    path = _yaml(
        tmp_path / "config",
        "plain",
        f"""  email:
    from: reporting@acme.test
    to: ["{hostile}", ceo@acme.test]
""",
    )
    out = tmp_path / "out"
    outcome = run_report(load_config(path, env={}), period="2026-10", now=NOW, output=out)
    assert sorted(d.state for d in outcome.deliveries) == ["sent", "sent"]
    assert list(outside.iterdir()) == []
    from reporter.files import recipient_name

    assert _files(out / "outbox") == {
        f"plain/2026-10/{recipient_name(hostile)}.eml",
        "plain/2026-10/ceo@acme.test.eml",
    }


def test_a_symbolic_link_in_the_output_folder_cannot_lead_a_write_outside(tmp_path, capsys):
    """The run's recipients folder replaced by a link to another folder: nothing is written
    there, the run fails with one line naming the file."""
    outside = tmp_path / "outside"
    outside.mkdir()
    config_dir = tmp_path / "config"
    path = _yaml(
        config_dir,
        "burst",
        """  email:
    from: reporting@acme.test
    recipients:
      - {email: bob@acme.test, filter: {salesperson: Bob}}
""",
    )
    out = tmp_path / "out"
    (out / "burst" / "2026-10").mkdir(parents=True)
    os.symlink(outside, out / "burst" / "2026-10" / "recipients")
    from reporter.cli import main

    assert main(["run", str(path), "--period", "2026-10", "--output", str(out)]) == 1
    folder = out / "burst" / "2026-10"
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"reporter: error: cannot use {folder / 'recipients' / 'bob@acme.test' / 'results.json'}"
        f": not written: it leads outside the output folder {folder}"
    )
    assert list(outside.iterdir()) == []
