"""Connections: the operator's names for the databases, the SMTP server and the Dask scheduler.

A report's YAML never holds a URL, a host with a login or a secret: it *names* a connection
(``connection: warehouse``), and the operator defines that name outside the report:

- the environment variable ``REPORTER_CONNECTION_<NAME>`` (the name upper-cased, ``-`` → ``_``)
  holding a URL, or
- a connections file (``--connections FILE``, or ``REPORTER_CONNECTIONS=FILE``): a YAML mapping
  from name to URL. The environment wins over the file.

What a URL may be, by use:

- a SQL source or the ledger: a SQLAlchemy database URL (``postgresql+psycopg://``,
  ``sqlite:///``, ``duckdb:///``...); the ledger: SQLite or PostgreSQL;
- SMTP: ``smtp://[USER:PASSWORD@]HOST[:PORT][?security=starttls|none]`` (port 587 and starttls by
  default) or ``smtps://…`` (implicit TLS, port 465);
- Dask: ``tcp://HOST:PORT`` or ``tls://HOST:PORT``.

A user or password with special characters is written percent-encoded (``@`` as ``%40``, ``/``
as ``%2F``, ``:`` as ``%3A``, ``%`` as ``%25``, ``#`` as ``%23``). No message here quotes a URL:
it names the connection and where it was defined. Every URL read is remembered for redaction.

The database a SQL source names is opened read-only (``read_only_engine``): DuckDB with external
access off and its configuration locked, SQLite in ``mode=ro`` with an authorizer that allows
reading only, PostgreSQL in read-only transactions.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from reporter.errors import UsageError
from reporter.security import remember_secret, remember_url

ENV_PREFIX = "REPORTER_CONNECTION_"
FILE_ENV = "REPORTER_CONNECTIONS"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ENCODING_HINT = (
    "write special characters of the user or password percent-encoded: @ as %40, / as %2F, "
    ": as %3A, % as %25, # as %23"
)
LEDGER_BACKENDS = ("sqlite", "postgresql")
_NOT_DATABASES = ("smtp", "smtps", "tcp", "tls", "http", "https", "file", "inproc", "ucx", "ws", "wss")


@dataclass(frozen=True)
class Connection:
    """One connection the operator defined: its name, its URL and where it was defined (the
    environment variable or the file), for messages that never quote the URL."""

    name: str
    url: str
    origin: str

    def __repr__(self) -> str:
        return f"Connection({self.name!r}, defined by {self.origin})"

    @property
    def scheme(self) -> str:
        return self.url.split(":", 1)[0].lower() if ":" in self.url else ""

    @property
    def backend(self) -> str:
        """The database's kind: ``postgresql`` of ``postgresql+psycopg://…``."""
        return self.scheme.split("+", 1)[0]


@dataclass(frozen=True)
class SmtpTarget:
    """What an ``smtp://`` or ``smtps://`` connection says."""

    host: str
    port: int
    security: str  # starttls | ssl | none
    username: str | None
    password: str | None


_lock = threading.Lock()
_file: tuple[Path, dict[str, Connection]] | None = None


def env_name(name: str) -> str:
    """``REPORTER_CONNECTION_SALES_DB`` for the connection ``sales-db``."""
    return ENV_PREFIX + name.upper().replace("-", "_")


def use_file(path: Path | None) -> None:
    """Read the operator's connections file (``--connections``), or forget it (None). A file
    that cannot be read or holds something else than name: URL lines is a usage error."""
    global _file
    if path is None:
        with _lock:
            _file = None
        return
    found = _read_file(path)
    with _lock:
        _file = (path, found)


def _read_file(path: Path) -> dict[str, Connection]:
    import yaml

    where = f"--connections {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{where}: is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UsageError(
            f"{where}{line}: not valid YAML; write one 'name: URL' per line, e.g. "
            "warehouse: postgresql+psycopg://reporting@db/sales"
        ) from None
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise UsageError(
            f"{where}: expected a mapping of names to URLs, e.g. warehouse: postgresql+psycopg://reporting@db/sales"
        )
    found: dict[str, Connection] = {}
    for key, value in node.value:
        line = key.start_mark.line + 1
        name = str(key.value) if isinstance(key, yaml.ScalarNode) else ""
        if not NAME.match(name):
            raise UsageError(
                f"{path}:{line}: '{name[:40]}' is not a connection name; use lowercase letters, digits, "
                "- and _, e.g. warehouse"
            )
        if name in found:
            raise UsageError(f"{path}:{line}: {name}: defined twice")
        if not isinstance(value, yaml.ScalarNode) or value.tag != "tag:yaml.org,2002:str" or not value.value:
            raise UsageError(f"{path}:{line}: {name}: expected a URL (text), e.g. {name}: scheme://host/...")
        url = str(value.value).strip()
        remember_url(url)
        found[name] = Connection(name, url, str(path))
    return found


def _env_connections(env: Mapping[str, str]) -> dict[str, Connection]:
    found = {}
    for key, value in env.items():
        if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX) and value.strip():
            name = key[len(ENV_PREFIX) :].lower()
            remember_url(value.strip())
            found[name] = Connection(name, value.strip(), key)
    return found


def lookup(name: str, env: Mapping[str, str] | None = None) -> Connection | None:
    """The connection ``name`` as the operator defined it (the environment first, then the
    file), or None."""
    environ = os.environ if env is None else env
    value = environ.get(env_name(name), "").strip()
    if value:
        remember_url(value)
        return Connection(name, value, env_name(name))
    with _lock:
        held = _file
    if held is not None:
        found = held[1].get(name)
        if found is None and "_" in name:  # sales_db and sales-db are one name, as in the environment
            found = held[1].get(name.replace("_", "-"))
        if found is None and "-" in name:
            found = held[1].get(name.replace("-", "_"))
        return found
    return None


def defined(env: Mapping[str, str] | None = None) -> list[str]:
    """The names of every connection the operator defined (for "did you mean")."""
    environ = os.environ if env is None else env
    with _lock:
        held = _file
    names = set(_env_connections(environ))
    if held is not None:
        names.update(held[1])
    return sorted(names)


def where_to_define(name: str) -> str:
    """The operator's two ways to define ``name``, for a hint."""
    return (
        f"the operator defines it: {env_name(name)}=URL in the environment, or '{name}: URL' in the "
        "--connections file"
    )


# -- what a connection may be used for ----------------------------------------------------------


def problem_for(connection: Connection, use: str) -> str | None:
    """Why ``connection`` cannot serve ``use`` (``database``, ``ledger``, ``smtp``, ``dask``), or
    None. The message names the connection and its origin, never the URL."""
    label = f"connection '{connection.name}' ({connection.origin})"
    if use in ("database", "ledger"):
        return _database_problem(connection, label, ledger=use == "ledger")
    if use == "smtp":
        try:
            smtp_target(connection)
        except ValueError as exc:
            return f"{label} {exc}"
        return None
    if use == "dask":
        return _dask_problem(connection, label)
    raise AssertionError(use)


def _database_problem(connection: Connection, label: str, *, ledger: bool) -> str | None:
    scheme = connection.scheme
    if not re.match(r"^[a-z][a-z0-9+.\-]*$", scheme) or scheme in _NOT_DATABASES:
        shown = f"an {scheme}:// URL" if scheme else "not a URL"
        return f"{label} is {shown}, not a database URL (e.g. postgresql+psycopg://user@host/db)"
    # an unencoded @ or # in a password makes another URL, with another host, that parses
    unencoded = "#" in connection.url or connection.url.split("?", 1)[0].count("@") > 1
    try:
        from sqlalchemy.engine import make_url

        make_url(connection.url)
    except Exception:  # sqlalchemy raises ArgumentError or ValueError on what it cannot read
        unencoded = True
    if unencoded:
        return f"{label} is not a database URL SQLAlchemy can read; {ENCODING_HINT}"
    if ledger and connection.backend not in LEDGER_BACKENDS:
        return f"{label} is a {connection.backend} database; the ledger is SQLite or PostgreSQL"
    return None


def _dask_problem(connection: Connection, label: str) -> str | None:
    wrong = f"{label} is not a Dask scheduler address (tcp://HOST:PORT or tls://HOST:PORT)"
    if connection.scheme not in ("tcp", "tls"):
        return wrong
    try:
        parts = urlsplit(connection.url)
        port = parts.port
    except ValueError:
        return wrong
    if not parts.hostname or port is None or parts.path not in ("", "/"):
        return wrong
    if parts.username is not None or parts.password is not None:
        return f"{label}: a Dask address carries no user or password (TLS certificates authenticate)"
    return None


def smtp_target(connection: Connection) -> SmtpTarget:
    """The SMTP server, port, security and login an ``smtp://`` / ``smtps://`` URL says;
    ValueError (a message without the URL) when it says something else."""
    if connection.scheme not in ("smtp", "smtps"):
        raise ValueError(
            "is not an SMTP URL (smtp://USER:PASSWORD@HOST:587 or smtps://USER:PASSWORD@HOST:465)"
        )
    try:
        parts = urlsplit(connection.url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise ValueError(f"is not an SMTP URL reporter can read; {ENCODING_HINT}") from None
    if not host or parts.path not in ("", "/") or parts.fragment:
        raise ValueError(f"is not an SMTP URL reporter can read; {ENCODING_HINT}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"security"})
    if unknown:
        raise ValueError(f"has an unknown option '{unknown[0]}' (only ?security=starttls|none)")
    if connection.scheme == "smtps":
        if "security" in options and options["security"] != "ssl":
            raise ValueError("is smtps:// (implicit TLS): leave out ?security")
        security = "ssl"
    else:
        security = options.get("security", "starttls")
        if security not in ("starttls", "none"):
            raise ValueError(f"has security={security[:20]}; use starttls or none (or smtps:// for TLS)")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise ValueError("has a password but no user")
    if password is not None and security == "none":
        raise ValueError("would send its password unencrypted (security=none); use starttls or smtps://")
    remember_secret(password)
    return SmtpTarget(
        host=host,
        port=port or (465 if security == "ssl" else 587),
        security=security,
        username=username,
        password=password,
    )


# -- a SQL source's query: one read statement -----------------------------------------------------

_SQLGLOT_DIALECTS = {"postgresql": "postgres", "sqlite": "sqlite", "duckdb": "duckdb", "mysql": "mysql"}
_QUERY_STARTS = frozenset({"SELECT", "WITH", "L_PAREN", "VALUES", "FROM"})


def query_problem(query: str, backend: str = "") -> str | None:
    """Why ``query`` is not one read statement (a SELECT, WITH … SELECT, VALUES), or None. A
    second statement after ``;`` (``COMMIT; SET …``) is refused before any database sees it."""
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import TokenError

    dialect = Dialect.get_or_raise(_SQLGLOT_DIALECTS.get(backend, ""))
    try:
        tokens = dialect.tokenize(query)
    except TokenError:
        return "the query cannot be read as SQL (an unclosed quote or comment?)"
    kinds = [t.token_type.name for t in tokens]
    while kinds and kinds[-1] == "SEMICOLON":
        kinds.pop()
    if not kinds:
        return "the query is empty"
    if "SEMICOLON" in kinds:
        return "the query holds more than one statement"
    if kinds[0] not in _QUERY_STARTS:
        return "the query must be one SELECT (or WITH … SELECT): the database is only read"
    return None


def table_sql(table: str, backend: str = "") -> str:
    """``table`` (``name`` or ``schema.name``) as SQL, each part quoted when it needs to be, so
    that a ``table:`` value is a table's name and nothing more (``t; drop …`` is one odd name)."""
    from sqlglot import exp

    return exp.to_table(table).sql(dialect=_SQLGLOT_DIALECTS.get(backend, ""))
