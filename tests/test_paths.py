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


# -- paths the YAML names --------------------------------------------------------------------

SECRET = "SECRET-MARKER-7f3a"


def _report(folder: Path, *, source: str = "orders.csv", extra: str = "", delivery: str = "") -> Path:
    _data(folder)
    path = folder / "r.yaml"
    path.write_text(
        f"""report: {{id: paths, title: Ventes, timezone: Europe/Paris, locale: fr_FR{extra}}}
sources:
  orders: {{type: csv, path: "{source}", date_column: date}}
metrics:
  revenue: {{source: orders, agg: sum, column: amount}}
kpis:
  revenue: {{label: Chiffre d'affaires, formula: revenue, format: currency}}
{delivery}""",
        encoding="utf-8",
    )
    return path


def _validate(capsys, *argv: str) -> tuple[int, list[str]]:
    from reporter.cli import main

    code = main(["validate", *argv])
    return code, capsys.readouterr().err.splitlines()


def _outside_csv(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    _data(outside)
    return outside / "orders.csv"


def test_a_data_file_outside_the_configuration_folder_is_a_validation_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REPORTER_ALLOW_DIRS", raising=False)
    secret = _outside_csv(tmp_path)
    path = _report(tmp_path / "config", source=str(secret))
    code, err = _validate(capsys, str(path))
    assert code == 2
    assert err == [
        f"{path}:3:29: sources.orders.path: {secret} is outside the configuration's folder and the output "
        f"folder; put it in {tmp_path / 'config'} or the output folder, or let the operator allow its "
        "folder with --allow-dir DIR (or REPORTER_ALLOW_DIRS)",
        "1 error: nothing was run or sent.",
    ]
    # the operator allows the folder: on the command line, or in the environment
    assert _validate(capsys, str(path), "--allow-dir", str(tmp_path / "outside"))[0] == 0
    monkeypatch.setenv("REPORTER_ALLOW_DIRS", f"/nonexistent{os.pathsep}{tmp_path / 'outside'}")
    assert _validate(capsys, str(path))[0] == 0


def test_a_symbolic_link_in_the_configuration_folder_does_not_lead_out(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    secret = _outside_csv(tmp_path)
    config = tmp_path / "config"
    config.mkdir()
    (config / "data.csv").symlink_to(secret)
    path = _report(config, source="data.csv")
    code, err = _validate(capsys, str(path))
    assert code == 2
    assert err[0].startswith(
        f"{path}:3:29: sources.orders.path: data.csv is outside the configuration's folder"
    )


def test_relative_paths_that_climb_out_are_refused_for_every_path_key(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outside = tmp_path / "outside"
    (outside / "tpl").mkdir(parents=True)
    (outside / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    (outside / "ca.pem").write_text("not a certificate")
    path = _report(
        tmp_path / "config",
        extra=", template: ../outside/tpl, logo: ../outside/logo.png, output_dir: ../elsewhere",
        delivery="""delivery:
  email:
    from: reporting@acme.test
    to: [ceo@acme.test]
    smtp: {host: 127.0.0.1, ca_file: ../outside/ca.pem}
  archive: {dir: ../somewhere}
""",
    )
    code, err = _validate(capsys, str(path))
    assert code == 2
    keys = [line.split(": ")[1] for line in err[:-1]]
    assert sorted(keys) == sorted(
        [
            "report.output_dir",
            "report.logo",  # the logo's own rule: the configuration's folder or the template's
            "report.template",
            "delivery.email.smtp.ca_file",
            "delivery.archive.dir",
        ]
    )
    # the output folder, once output_dir is refused, is ./output under the working directory
    (archive,) = [line for line in err if "delivery.archive.dir" in line]
    assert archive.endswith(
        f"delivery.archive.dir: ../somewhere is outside the output folder ({tmp_path / 'output'}); leave it "
        "out (the archive is then the output folder's archive/), or let the operator allow its folder "
        "with --allow-dir DIR (or REPORTER_ALLOW_DIRS)"
    )
    (output_dir,) = [line for line in err if "report.output_dir" in line]
    assert output_dir.endswith(
        f"report.output_dir: ../elsewhere is outside the configuration's folder; write a folder inside "
        f"{tmp_path / 'config'}, give --output on the command line, or let the operator allow its folder "
        "with --allow-dir DIR (or REPORTER_ALLOW_DIRS)"
    )


def test_the_archive_folder_may_be_in_the_output_folder_or_an_allowed_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _report(tmp_path / "config", delivery="delivery:\n  archive: {dir: ../out/archive}\n")
    assert _validate(capsys, str(path))[0] == 2  # ./output is the output folder: not ../out
    assert _validate(capsys, str(path), "--output", str(tmp_path / "out"))[0] == 0
    assert _validate(capsys, str(path), "--allow-dir", str(tmp_path / "out"))[0] == 0


def test_a_run_refuses_an_archive_outside_the_folder_it_writes(tmp_path):
    """Called as a library (no command line to say the output folder), the run checks the
    archive folder against the folder it writes to, before anything is written or sent."""
    path = _report(tmp_path / "config", delivery="delivery:\n  archive: {dir: ../archive}\n")
    config = load_config(path, env={})
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as exc:
        run_report(config, period="2026-10", now=NOW, output=out)
    assert str(exc.value.problems[0]) == (
        f"{path}: delivery.archive.dir: ../archive is outside the output folder ({out}); leave it out (the "
        "archive is then the output folder's archive/), or let the operator allow its folder with "
        "--allow-dir DIR (or REPORTER_ALLOW_DIRS)"
    )
    assert not out.exists()
    assert not (tmp_path / "archive").exists()


def test_the_default_archive_is_in_the_output_folder(tmp_path):
    path = _report(
        tmp_path / "config",
        delivery="delivery:\n  email: {from: reporting@acme.test, to: [ceo@acme.test]}\n",
    )
    out = tmp_path / "out"
    run_report(load_config(path, env={}), period="2026-10", now=NOW, output=out)
    assert (out / "archive" / "paths" / "2026-10" / "paths_2026-10_v1.pdf").is_file()
    assert not (tmp_path / "config" / "output").exists()


class _Web:
    """A loopback HTTP server that counts the requests it gets (none may come)."""

    def __enter__(self) -> _Web:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[str] = []
        web = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                web.requests.append(self.path)
                body = f"h1 {{ color: red }} /* {SECRET} */".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/css")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_email_inlines_no_stylesheet_from_a_file_or_a_url(tmp_path):
    """A template's e-mail that links a stylesheet outside its folder and one on a server:
    neither is read nor fetched; the message carries neither's content."""
    from reporter.assets import TEMPLATES

    evil = tmp_path / "outside" / "evil.css"
    evil.parent.mkdir()
    evil.write_text(f"h1 {{ color: red }} /* {SECRET} */ .x {{ font-family: '{SECRET}' }}")
    config = tmp_path / "config"
    (config / "tpl").mkdir(parents=True)
    with _Web() as web:
        html = (TEMPLATES / "executive" / "email.html").read_text(encoding="utf-8")
        links = (
            f'<link rel="stylesheet" href="{evil}">'
            f'<link rel="stylesheet" href="file://{evil}">'
            f'<link rel="stylesheet" href="{web.url("/remote.css")}">\n<style>'
        )
        (config / "tpl" / "email.html").write_text(html.replace("<style>", links, 1), encoding="utf-8")
        path = _report(
            config,
            extra=", template: ./tpl",
            delivery="delivery:\n  email: {from: reporting@acme.test, to: [ceo@acme.test]}\n",
        )
        out = tmp_path / "out"
        run_report(load_config(path, env={}), period="2026-10", now=NOW, output=out)
        assert web.requests == []
    message = (out / "paths" / "2026-10" / "email.eml").read_text(encoding="utf-8")
    sent = (out / "outbox" / "paths" / "2026-10" / "ceo@acme.test.eml").read_text(encoding="utf-8")
    assert SECRET not in message
    assert SECRET not in sent


def _preview(path: Path, out: Path, capsys) -> tuple[int, str]:
    from reporter.cli import main

    code = main(["preview", str(path), "--period", "2026-10", "--output", str(out)])
    return code, capsys.readouterr().err


def test_the_preview_reads_no_stylesheet_outside_the_template_folder(tmp_path, capsys):
    evil = tmp_path / "outside" / "evil.css"
    evil.parent.mkdir()
    evil.write_text(f"/* {SECRET} */")
    config = tmp_path / "config"
    (config / "tpl").mkdir(parents=True)
    (config / "tpl" / "report.css").symlink_to(evil)
    path = _report(config, extra=", template: ./tpl")
    out = tmp_path / "out"
    code, err = _preview(path, out, capsys)
    assert (code, err.strip()) == (
        1,
        f"reporter: error: template report.css: it leads outside its folder {config / 'tpl'}; "
        "nothing was written",
    )
    assert not any(SECRET in p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "reference",
    [
        'url("../../outside/secret.png")',
        "url(/etc/hostname)",
        '@import "../../outside/evil.css"',
        "url('{web}')",
    ],
)
def test_the_preview_css_refers_to_no_file_outside_and_no_url(tmp_path, capsys, reference):
    from reporter.assets import TEMPLATES

    config = tmp_path / "config"
    (config / "tpl").mkdir(parents=True)
    with _Web() as web:
        reference = reference.replace("{web}", web.url("/x.png"))
        css = (TEMPLATES / "executive" / "report.css").read_text(encoding="utf-8")
        rule = f"{reference};" if reference.startswith("@") else f".cover {{ background: {reference}; }}"
        (config / "tpl" / "report.css").write_text(f"{rule}\n{css}", encoding="utf-8")
        path = _report(config, extra=", template: ./tpl")
        out = tmp_path / "out"
        code, err = _preview(path, out, capsys)
        assert web.requests == []
    assert code == 1
    assert "is not a file of its folder" in err
    assert err.strip().endswith("the preview reads only the template folder and fetches no URL")
    assert not list(out.rglob("*.html"))


# -- a report id belongs to the file that first ran it ---------------------------------------


def _mail(port: int, to: str, title: str) -> str:
    return f"""  email:
    from: reporting@acme.test
    to: [{to}]
    subject: "{title} {{{{ period.label }}}}"
    subject_tally: false
    smtp: {{host: 127.0.0.1, port: {port}, security: none}}
"""


def test_a_borrowed_report_id_is_refused_and_the_owner_still_delivers(tmp_path, capsys):
    """The attacker's YAML, in another folder, declares the victim's id and recipient on the
    same output folder (so the same ledger): refused before anything is recorded or sent; the
    victim's next period is delivered as usual."""
    from reporter.cli import main

    out = tmp_path / "out"
    with Server(tmp_path) as server:
        victim = _yaml(tmp_path / "victim", "sales", _mail(server.port, "ceo@acme.test", "Sales"))
        attacker = _yaml(tmp_path / "attacker", "sales", _mail(server.port, "ceo@acme.test", "Forged"))
        assert main(["run", str(victim), "--period", "2026-09", "--output", str(out)]) == 0
        capsys.readouterr()

        assert main(["run", str(attacker), "--period", "2026-10", "--output", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.splitlines()[-1] == (
            f"reporter: FAILED: {attacker}: report.id 'sales' belongs to {victim} on this ledger: "
            "nothing was run or sent; give this report its own id, or, if this file replaces that one, "
            f"hand the id over with: reporter release {attacker}"
        )
        assert [r.message["Subject"] for r in server.handler.received] == ["Sales septembre 2026"]
        assert not (out / "sales" / "2026-10").exists()

        assert main(["run", str(victim), "--period", "2026-10", "--output", str(out)]) == 0
        assert [r.message["Subject"] for r in server.handler.received] == [
            "Sales septembre 2026",
            "Sales octobre 2026",
        ]
        capsys.readouterr()

        # The operator hands the id over (the attacker's file replaces the victim's): it is the
        # victim's turn to be refused.
        assert main(["release", str(attacker), "--output", str(out)]) == 0
        assert capsys.readouterr().out == (
            f"sales: now belongs to {attacker}; {victim} may no longer run it on this ledger\n"
        )
        assert main(["run", str(victim), "--period", "2026-11", "--output", str(out)]) == 1
        assert f"report.id 'sales' belongs to {attacker} on this ledger" in capsys.readouterr().err
        assert main(["release", str(attacker), "--output", str(out)]) == 0
        assert capsys.readouterr().out == f"sales: already belongs to {attacker}\n"


def test_an_edited_yaml_keeps_its_report_id(tmp_path, capsys):
    """The binding is the file's path: editing the YAML (another title, another recipient) keeps it."""
    from reporter.cli import main

    out = tmp_path / "out"
    with Server(tmp_path) as server:
        path = _yaml(tmp_path / "config", "sales", _mail(server.port, "ceo@acme.test", "Sales"))
        assert main(["run", str(path), "--period", "2026-09", "--output", str(out)]) == 0
        path.write_text(path.read_text().replace("ceo@acme.test", "cfo@acme.test").replace("Sales", "Ventes"))
        assert main(["run", str(path), "--period", "2026-10", "--output", str(out)]) == 0
        assert [r.message["Subject"] for r in server.handler.received] == [
            "Sales septembre 2026",
            "Ventes octobre 2026",
        ]


def test_release_without_a_ledger_says_so(tmp_path, capsys):
    from reporter.cli import main

    path = _yaml(tmp_path / "config", "sales", "  email: {from: reporting@acme.test, to: [ceo@acme.test]}\n")
    assert main(["release", str(path), "--output", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f"reporter: error: no ledger in {tmp_path / 'out'} (ledger.sqlite): no report id is bound there; "
        "see --output\n"
    )


def test_reproduce_does_not_judge_the_archive_folder_it_never_writes(tmp_path, capsys, monkeypatch):
    """A PDF archived in a folder the operator allowed then is reproduced without that
    permission: reproduce writes no archive, so the YAML's archive.dir is not judged."""
    from reporter.cli import main

    archive = tmp_path / "vault"
    path = _report(
        tmp_path / "config",
        delivery="delivery:\n  email: {from: reporting@acme.test, to: [ceo@acme.test]}\n"
        f"  archive: {{dir: {archive}}}\n",
    )
    out = tmp_path / "out"
    assert (
        main(["run", str(path), "--period", "2026-10", "--output", str(out), "--allow-dir", str(archive)])
        == 0
    )
    capsys.readouterr()
    archived = archive / "paths" / "2026-10" / "paths_2026-10_v1.pdf"
    again = ["--data", str(tmp_path / "config"), "--output", str(tmp_path / "again")]
    assert main(["reproduce", str(archived), *again]) == 0, capsys.readouterr().err
    assert (tmp_path / "again" / "reproduced" / archived.name).read_bytes() == archived.read_bytes()
