# ruff: noqa: E501  (the expected messages are long lines, kept whole to be read as printed)
"""Connections belong to the operator (docs/security.md, "Operator and author").

A report's YAML names a connection; its URL, password and host come from the operator
(``REPORTER_CONNECTION_<NAME>`` or ``--connections FILE``). The attacks a YAML author made with
URLs in the YAML (reading /etc/passwd or a secret through a SQL source, writing files with COPY,
ATTACH, VACUUM INTO or a created database, sending a secret to a host of their choosing) are
each run through the real CLI: refused, with nothing read, written or dialled. The databases
the operator names are opened read-only, tested on real DuckDB, SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import os
import socket
import sqlite3
import threading
from pathlib import Path

import duckdb
import pytest

from reporter.cli import main
from tests.conftest import write_csv
from tests.smtp_server import Server

SECRET = "s3cr3t-ENV-MARKER"
FILE_MARKER = "root:x:0:0:PASSWD-MARKER"
MIGRATE = "have the operator set"

YAML = """\
report: {id: conn, title: Sales, timezone: UTC}
sources:
  sales: {type: csv, path: sales.csv, date_column: date}
SOURCE
metrics:
  revenue: {source: sales, agg: sum, column: amount}
METRIC
kpis:
  revenue: {formula: revenue, format: currency}
delivery:
  email:
    from: Reports <reports@acme.test>
    to: [boss@acme.test]
SMTP
"""


class Recorder:
    """A listening socket on loopback that records every connection and every byte it gets,
    speaking just enough SMTP (a greeting, AUTH offered) for a client to send its login."""

    def __init__(self, greeting: bool = False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.greeting = greeting
        self.connections = 0
        self.data = b""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(2)
                try:
                    if self.greeting:
                        conn.sendall(b"220 recorder ESMTP\r\n")
                    while chunk := conn.recv(65536):
                        self.data += chunk
                        line = chunk.upper()
                        if not self.greeting:
                            break
                        if line.startswith((b"EHLO", b"HELO")):
                            conn.sendall(b"250-recorder\r\n250 AUTH PLAIN LOGIN\r\n")
                        elif line.startswith(b"AUTH"):
                            conn.sendall(b"535 5.7.8 no\r\n")
                        elif line.startswith(b"QUIT"):
                            conn.sendall(b"221 bye\r\n")
                            break
                        else:
                            conn.sendall(b"250 OK\r\n")
                except OSError:
                    pass


def files_under(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def setup_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    write_csv(work / "sales.csv", ["date", "amount"], [["2026-10-01", 5], ["2026-10-31", 7]])
    (tmp_path / "passwd").write_text(FILE_MARKER + "\n")  # a /etc/passwd-like file outside
    monkeypatch.chdir(work)
    monkeypatch.setenv("DB_SECRET", SECRET)
    return work


def write_yaml(work: Path, source: str = "", metric: str = "", smtp: str = "") -> Path:
    text = YAML.replace("SOURCE\n", source).replace("METRIC\n", metric).replace("SMTP\n", smtp)
    (work / "report.yaml").write_text(text, encoding="utf-8")
    return work / "report.yaml"


COMMANDS = {
    "run": ["run", "report.yaml", "--period", "2026-10", "--output", "out"],
    "validate": ["validate", "report.yaml"],
    "status": ["status", "report.yaml", "--output", "out"],
}


def run(capsys: pytest.CaptureFixture[str], command: str) -> tuple[int, str]:
    code = main(COMMANDS[command])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def assert_nothing_leaked(tmp_path: Path, text: str) -> None:
    """Neither the file's content nor the environment's secret in the output streams, nor in
    any file written (PDF text, results.json, email, logs, ledger)."""
    from pypdf import PdfReader

    for marker in (FILE_MARKER, SECRET, base64.b64encode(f"\0reporting\0{SECRET}".encode()).decode()):
        assert marker not in text
    for path, data in files_under(tmp_path / "work").items():
        for marker in (FILE_MARKER, SECRET):
            assert marker.encode() not in data, path
            if path.suffix == ".pdf":
                pages = "".join(page.extract_text() for page in PdfReader(path).pages)
                assert marker not in pages, path


# -- 1. a URL in the YAML: each attack of the issue, refused before anything is opened -------------

PASSWD = "PASSWD"  # replaced by the path of the /etc/passwd-like file
OUT = "OUTSIDE"  # replaced by a folder outside the output folder

ATTACKS = {
    "read a file through DuckDB": (
        "  db: {type: sql, url: 'duckdb:///:memory:', date_column: d, pushdown: false,\n"
        "       query: \"select DATE '2026-10-01' as d, * from read_csv('PASSWD', header=false, sep='|')\"}\n",
        "  leak: {source: db, agg: max, column: column0}\n",
    ),
    "read a secret from the environment (getenv, then ${…} in a query's URL)": (
        "  db: {type: sql, url: 'sqlite:///${DB_SECRET}.db', date_column: d, pushdown: false,\n"
        "       query: \"select '2026-10-01' as d\"}\n",
        "",
    ),
    "COPY … TO a file outside": (
        "  db: {type: sql, url: 'duckdb:///:memory:', date_column: d, pushdown: false,\n"
        "       query: \"copy (select 'x' as a) to 'OUTSIDE/copied.csv'\"}\n",
        "",
    ),
    "a DuckDB file created outside": (
        "  db: {type: sql, url: 'duckdb:///OUTSIDE/created.duckdb', date_column: d, pushdown: false,\n"
        "       query: \"select DATE '2026-10-01' as d\"}\n",
        "",
    ),
    "SQLite ATTACH outside": (
        "  db: {type: sql, url: 'sqlite:///OUTSIDE/../work/sales.sqlite', date_column: d, pushdown: false,\n"
        "       query: \"attach 'OUTSIDE/attached.db' as a\"}\n",
        "",
    ),
    "SQLite VACUUM INTO outside": (
        "  db: {type: sql, url: 'sqlite:///OUTSIDE/../work/sales.sqlite', date_column: d, pushdown: false,\n"
        "       query: \"vacuum into 'OUTSIDE/vacuumed.db'\"}\n",
        "",
    ),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_a_url_in_the_yaml_is_refused_and_nothing_is_read_or_written(tmp_path, monkeypatch, capsys, name):
    work = setup_work(tmp_path, monkeypatch)
    outside = tmp_path / "outside"
    outside.mkdir()
    source, metric = ATTACKS[name]
    source = source.replace(PASSWD, str(tmp_path / "passwd")).replace(OUT, str(outside))
    sqlite3.connect(work / "sales.sqlite").close()
    write_yaml(work, source, metric)
    before = files_under(tmp_path)
    code, text = run(capsys, "run")
    assert code == 2, text
    assert (
        "report.yaml:4:19: sources.db.url: a report names its database, it holds no URL: the URL and its "
        "password are the operator's; write 'connection: db' instead, and have the operator set "
        "REPORTER_CONNECTION_DB=<the URL, password included> in the environment (or 'db: <the URL, "
        "password included>' in a --connections file)"
    ) in text
    assert list(outside.iterdir()) == []  # no COPY, no created database, no ATTACH or VACUUM INTO
    assert not list(tmp_path.rglob(f"*{SECRET}*"))  # no SQLite file named after the secret
    assert files_under(tmp_path) == before
    assert_nothing_leaked(tmp_path, text)


# -- 2. no connection to a host the YAML chose --------------------------------------------------------


def test_a_postgresql_url_with_the_secret_as_user_is_never_dialled(tmp_path, monkeypatch, capsys):
    work = setup_work(tmp_path, monkeypatch)
    with Recorder() as pg:
        url = (
            f"postgresql+psycopg://${{DB_SECRET}}@127.0.0.1:{pg.port}/sales"
            "?application_name=${DB_SECRET}&connect_timeout=2"
        )
        write_yaml(work, f"  db: {{type: sql, url: '{url}', table: orders, date_column: d}}\n")
        code, text = run(capsys, "run")
    assert code == 2, text
    assert "sources.db.url: a report names its database, it holds no URL" in text
    assert (pg.connections, pg.data) == (0, b"")
    assert_nothing_leaked(tmp_path, text)


def test_an_smtp_login_to_a_host_the_yaml_chose_is_never_sent(tmp_path, monkeypatch, capsys):
    work = setup_work(tmp_path, monkeypatch)
    with Recorder(greeting=True) as smtp:
        write_yaml(
            work,
            smtp=f"    smtp: {{host: 127.0.0.1, port: {smtp.port}, security: none, username: reporting, "
            "password_env: DB_SECRET, timeout: 2}\n",
        )
        code, text = run(capsys, "run")
    column = (work / "report.yaml").read_text().splitlines()[11].index("username") + 1
    assert code == 2, text
    assert text.splitlines()[0] == (
        f"report.yaml:12:{column}: delivery.email.smtp.username: an SMTP login is the operator's: it comes from a "
        "connection, not from the report; replace host, port, security, username and password_env with "
        "'connection: smtp', and have the operator set REPORTER_CONNECTION_SMTP=smtp://USER:PASSWORD@HOST:587 "
        "in the environment (or 'smtp: smtp://USER:PASSWORD@HOST:587' in a --connections file)"
    )
    assert (smtp.connections, smtp.data) == (0, b"")
    assert_nothing_leaked(tmp_path, text)


def test_a_relay_named_by_host_gets_no_login(tmp_path, monkeypatch, capsys):
    """What the YAML may still do: name a relay without a login. It is dialled, and no AUTH is
    ever sent to it, whatever the environment holds."""
    work = setup_work(tmp_path, monkeypatch)
    with Server(tmp_path) as server:
        write_yaml(work, smtp=f"    smtp: {{host: 127.0.0.1, port: {server.port}, security: none}}\n")
        code, text = run(capsys, "run")
    assert code == 0, text
    assert [r.rcpt_tos for r in server.handler.received] == [["boss@acme.test"]]
    assert_nothing_leaked(tmp_path, text)


# -- 3. the operator's connections: special characters, the file, read-only databases ----------------

SPECIAL = "p@ss/w:o%rd#1"


def test_a_password_with_special_characters_works_percent_encoded(tmp_path, monkeypatch, capsys):
    from urllib.parse import quote

    work = setup_work(tmp_path, monkeypatch)
    with Server(tmp_path, tls=True, auth=("reporting", SPECIAL)) as server:
        write_yaml(work, smtp=f"    smtp: {{connection: mail, ca_file: {server.cert}}}\n")
        monkeypatch.setenv("REPORTER_ALLOW_DIRS", str(Path(server.cert).parent))  # the operator's CA
        monkeypatch.setenv(
            "REPORTER_CONNECTION_MAIL", f"smtp://reporting:{quote(SPECIAL, safe='')}@127.0.0.1:{server.port}"
        )
        code, text = run(capsys, "run")
        assert code == 0, text
        assert [r.rcpt_tos for r in server.handler.received] == [["boss@acme.test"]]
        code, text = run(capsys, "status")
    assert code == 0, text
    assert SPECIAL not in text
    assert quote(SPECIAL, safe="") not in text


@pytest.mark.parametrize("command", ["validate", "status", "run"])
def test_a_password_with_special_characters_not_encoded_is_one_clear_line(
    tmp_path, monkeypatch, capsys, command
):
    work = setup_work(tmp_path, monkeypatch)
    write_yaml(work, smtp="    smtp: {connection: mail}\n")
    monkeypatch.setenv("REPORTER_CONNECTION_MAIL", f"smtp://reporting:{SPECIAL}@127.0.0.1:2525")
    code, text = run(capsys, command)
    assert code == 2
    assert text.splitlines() == [
        "report.yaml:12:24: delivery.email.smtp.connection: connection 'mail' (REPORTER_CONNECTION_MAIL) is "
        "not an SMTP URL reporter can read; write special characters of the user or password "
        "percent-encoded: @ as %40, / as %2F, : as %3A, % as %25, # as %23; the operator corrects the "
        "connection's URL",
        "1 error: nothing was run or sent.",
    ]
    assert "w:o%rd" not in text


def test_the_connections_file_and_the_environment(tmp_path, monkeypatch, capsys):
    work = setup_work(tmp_path, monkeypatch)
    con = sqlite3.connect(work / "orders.sqlite")
    con.execute("CREATE TABLE orders (d TEXT, amount REAL)")
    con.execute("INSERT INTO orders VALUES ('2026-10-01', 3), ('2026-10-31', 4)")
    con.commit()
    con.close()
    write_yaml(
        work,
        "  orders: {type: sql, connection: sales-db, table: orders, date_column: d}\n",
        "  orders: {source: orders, agg: sum, column: amount}\n",
    )
    assert main(["validate", "report.yaml"]) == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        "report.yaml:4:35: sources.orders.connection: connection 'sales-db' is not defined; the operator "
        "defines it: REPORTER_CONNECTION_SALES_DB=URL in the environment, or 'sales-db: URL' in the "
        "--connections file"
    )
    (tmp_path / "connections.yaml").write_text(f"sales-db: sqlite:///{work / 'orders.sqlite'}\n")
    assert main(["validate", "report.yaml", "--connections", str(tmp_path / "connections.yaml")]) == 0
    capsys.readouterr()
    monkeypatch.setenv("REPORTER_CONNECTIONS", str(tmp_path / "connections.yaml"))
    assert main(["run", "report.yaml", "--period", "2026-10", "--output", "out", "--no-send"]) == 0
    capsys.readouterr()
    # the environment wins over the file
    monkeypatch.setenv("REPORTER_CONNECTION_SALES_DB", "smtp://mail.acme.test")
    assert main(["validate", "report.yaml"]) == 2
    assert "connection 'sales-db' (REPORTER_CONNECTION_SALES_DB) is an smtp:// URL, not a database URL" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("warehouse: [a, b]\n", "F:1: warehouse: expected a URL (text), e.g. warehouse: scheme://host/..."),
        (
            "Ware House: x://y\n",
            "F:1: 'Ware House' is not a connection name; use lowercase letters, digits, - and _, e.g. warehouse",
        ),
        ("a: x://y\na: x://z\n", "F:2: a: defined twice"),
        (
            "- a\n",
            "--connections F: expected a mapping of names to URLs, e.g. warehouse: postgresql+psycopg://reporting@db/sales",
        ),
        (
            "a: [\n",
            "--connections F:2: not valid YAML; write one 'name: URL' per line, e.g. warehouse: postgresql+psycopg://reporting@db/sales",
        ),
    ],
)
def test_a_bad_connections_file_is_a_usage_error(tmp_path, monkeypatch, capsys, content, message):
    work = setup_work(tmp_path, monkeypatch)
    write_yaml(work)
    (tmp_path / "c.yaml").write_text(content)
    assert main(["validate", "report.yaml", "--connections", str(tmp_path / "c.yaml")]) == 2
    assert capsys.readouterr().err.replace(str(tmp_path / "c.yaml"), "F").splitlines() == [
        f"reporter: error: {message}"
    ]


def test_a_query_is_one_read_statement(tmp_path, monkeypatch, capsys):
    work = setup_work(tmp_path, monkeypatch)
    sqlite3.connect(work / "o.sqlite").close()
    monkeypatch.setenv("REPORTER_CONNECTION_DB", f"sqlite:///{work / 'o.sqlite'}")
    for query, message in [
        ("select 1 as d; attach 'x.db' as x", "the query holds more than one statement"),
        ("vacuum into 'x.db'", "the query must be one SELECT (or WITH … SELECT): the database is only read"),
    ]:
        write_yaml(work, f'  db: {{type: sql, connection: db, query: "{query}", date_column: d}}\n')
        assert main(["validate", "report.yaml"]) == 2
        assert capsys.readouterr().err.splitlines()[0] == (
            f"report.yaml:4:42: sources.db.query: {message}; write one SELECT (or WITH … SELECT), without "
            "';' between statements"
        )
    assert sorted(p.name for p in work.iterdir()) == ["o.sqlite", "report.yaml", "sales.csv"]


def test_an_operator_duckdb_database_reads_no_file_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """Even through the operator's own DuckDB database, the YAML's query cannot read a file:
    the run fails with one line, the file's content appears nowhere."""
    work = setup_work(tmp_path, monkeypatch)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE TABLE t AS SELECT DATE '2026-10-01' AS d")
    con.close()
    monkeypatch.setenv("REPORTER_CONNECTION_DB", f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    query = f"select DATE '2026-10-01' as d, * from read_csv('{tmp_path / 'passwd'}', header=false, sep='|')"
    write_yaml(
        work,
        f'  db: {{type: sql, connection: db, query: "{query}", date_column: d, pushdown: false}}\n',
        "  leak: {source: db, agg: max, column: column0}\n",
    )
    code, text = run(capsys, "run")
    assert code == 1
    assert "Permission Error: Cannot access file" in text
    assert "file system operations are disabled by configuration" in text
    assert_nothing_leaked(tmp_path, text)


# -- the read-only engines themselves ------------------------------------------------------------------


def _refused(engine, statement: str) -> bool:
    import sqlalchemy as sa

    try:
        with engine.connect() as conn:
            conn.execute(sa.text(statement)).fetchall()
    except sa.exc.DBAPIError:
        return True
    return False


def test_duckdb_is_opened_read_only_without_external_access(tmp_path):
    from reporter.readonly import read_only_engine

    (tmp_path / "passwd").write_text(FILE_MARKER + "\n")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE t AS SELECT 1 AS a")
    con.close()
    engine = read_only_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    assert not _refused(engine, "SELECT * FROM t")
    for statement in (
        f"SELECT * FROM read_csv('{tmp_path / 'passwd'}')",
        f"COPY (SELECT 1) TO '{tmp_path / 'copied.csv'}'",
        f"ATTACH '{tmp_path / 'attached.duckdb'}' AS a",
        "SET enable_external_access = true",
        "CREATE TABLE u (a INT)",
    ):
        assert _refused(engine, statement), statement
    engine.dispose()
    # a database that does not exist is not created
    missing = read_only_engine(f"duckdb:///{tmp_path / 'created.duckdb'}")
    assert _refused(missing, "SELECT 1")
    missing.dispose()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwd", "w.duckdb"]


def test_sqlite_is_opened_read_only_with_an_authorizer(tmp_path):
    from reporter.readonly import read_only_engine

    con = sqlite3.connect(tmp_path / "s.sqlite")
    con.execute("CREATE TABLE t (a)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    con.close()
    engine = read_only_engine(f"sqlite:///{tmp_path / 's.sqlite'}")
    assert not _refused(engine, "SELECT * FROM t")
    for statement in (
        f"ATTACH '{tmp_path / 'attached.db'}' AS a",
        f"VACUUM INTO '{tmp_path / 'vacuumed.db'}'",
        "INSERT INTO t VALUES (2)",
        "PRAGMA writable_schema = 1",
        "SELECT load_extension('x')",
    ):
        assert _refused(engine, statement), statement
    engine.dispose()
    missing = read_only_engine(f"sqlite:///{tmp_path / 'created.sqlite'}")
    assert _refused(missing, "SELECT 1")
    missing.dispose()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite"]


def test_postgresql_runs_read_only_transactions():
    url = os.environ.get("REPORTER_TEST_PG_URL")
    if not url:
        pytest.skip("no PostgreSQL here; .ci/run starts one and sets REPORTER_TEST_PG_URL")
    from reporter.readonly import read_only_engine

    engine = read_only_engine(url)
    assert not _refused(engine, "SELECT 1")
    assert _refused(engine, "CREATE TABLE conn_read_only_probe (a int)")
    # a session setting turned off by one query does not open the next transaction for writing
    assert not _refused(engine, "SELECT set_config('default_transaction_read_only', 'off', false)")
    assert _refused(engine, "CREATE TABLE conn_read_only_probe (a int)")
    engine.dispose()


# -- 4. no oracle: validation says the same whether a variable is set or not ----------------------------


def test_validation_does_not_say_whether_a_variable_is_set(tmp_path, monkeypatch, capsys):
    work = setup_work(tmp_path, monkeypatch)
    monkeypatch.delenv("REPORTER_TEST_NOT_SET", raising=False)
    said = []
    for name in ("DB_SECRET", "REPORTER_TEST_NOT_SET"):
        write_yaml(work, smtp=f"    subject: 'Sales ${{{name}}}'\n")
        assert main(["validate", "report.yaml"]) == 2
        said.append(capsys.readouterr().err.replace(name, "NAME"))
    assert said[0] == said[1]
    assert said[0].splitlines()[0] == (
        "report.yaml:12:14: delivery.email.subject: ${NAME}: a report reads no environment variable; write "
        "the value itself (write $${ for a literal ${); databases, the ledger, SMTP logins and the Dask "
        "scheduler are named with 'connection: NAME', which the operator defines"
    )


def test_a_ledger_connection_that_breaks_or_cannot_be_opened_is_one_line(tmp_path, monkeypatch, capsys):
    """``status`` and ``run`` with the ledger on a connection: a password with an unencoded @ or
    # (which would make another host) is a configuration error; a database that cannot be
    opened is a failed run naming the connection, never an internal error or the URL."""
    work = setup_work(tmp_path, monkeypatch)
    text = YAML.replace("SOURCE\n", "").replace("METRIC\n", "").replace("SMTP\n", "")
    (work / "report.yaml").write_text(text.replace("delivery:\n", "delivery:\n  ledger: ledger\n"))
    monkeypatch.setenv("REPORTER_CONNECTION_LEDGER", f"postgresql+psycopg://u:{SPECIAL}@127.0.0.1:1/x")
    for command in ("status", "run"):
        code, said = run(capsys, command)
        assert (code, said.splitlines()) == (
            2,
            [
                "report.yaml:9:11: delivery.ledger: connection 'ledger' (REPORTER_CONNECTION_LEDGER) is not a "
                "database URL SQLAlchemy can read; write special characters of the user or password "
                "percent-encoded: @ as %40, / as %2F, : as %3A, % as %25, # as %23; the operator corrects the "
                "connection's URL",
                "1 error: nothing was run or sent.",
            ],
        )
    monkeypatch.setenv("REPORTER_CONNECTION_LEDGER", f"sqlite:///{tmp_path / 'no-such-folder' / 'l.sqlite'}")
    code, said = run(capsys, "status")
    assert (code, said.splitlines()[-1]) == (
        1,
        "  the ledger (connection 'ledger') cannot be read: unable to open database file",
    )
    code, said = run(capsys, "run")
    assert (code, said.splitlines()[-1]) == (
        1,
        "reporter: FAILED: conn 2026-10: the ledger (connection 'ledger') could not be opened: unable to open "
        "database file; nothing was sent; run again once the ledger is back",
    )
    assert "internal error" not in said


def test_a_table_name_is_a_name_and_nothing_more(tmp_path, monkeypatch, capsys):
    """``table:`` read whole (pushdown: false) is quoted as one name: a second statement
    hidden in it is not run."""
    work = setup_work(tmp_path, monkeypatch)
    con = sqlite3.connect(work / "o.sqlite")
    con.execute("CREATE TABLE orders (d TEXT, amount REAL)")
    con.execute("INSERT INTO orders VALUES ('2026-10-01', 3)")
    con.commit()
    con.close()
    monkeypatch.setenv("REPORTER_CONNECTION_DB", f"sqlite:///{work / 'o.sqlite'}")
    table = f"orders; attach '{tmp_path / 'attached.db'}' as a"
    write_yaml(
        work, f'  db: {{type: sql, connection: db, table: "{table}", date_column: d, pushdown: false}}\n'
    )
    code, text = run(capsys, "run")
    assert code == 1
    assert "no such table: orders; attach" in text
    assert not (tmp_path / "attached.db").exists()
