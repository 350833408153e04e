"""Keys a report's YAML no longer holds since connections belong to the operator, and what to
write instead. Each one found is a located error whose hint is the line to write and the
operator's variable; the key is then dropped so that it is not reported a second time.

- ``sources.<name>.url`` → ``connection: <name>`` + ``REPORTER_CONNECTION_<NAME>``;
- ``delivery.ledger`` holding a URL → ``ledger: ledger`` + ``REPORTER_CONNECTION_LEDGER``;
- ``delivery.email.smtp.username`` / ``password_env`` (a login) → ``connection: smtp`` +
  ``REPORTER_CONNECTION_SMTP=smtp://USER:PASSWORD@HOST:PORT``;
- ``delivery.burst.address`` → ``connection: dask`` + ``REPORTER_CONNECTION_DASK``.
"""

from __future__ import annotations

from typing import Any

from reporter.config.connections import NAME, env_name

Path_ = tuple[str | int, ...]
SMTP_URL = "smtp://USER:PASSWORD@HOST:587"


def _operator(name: str, what: str) -> str:
    return (
        f"have the operator set {env_name(name)}={what} in the environment (or '{name}: {what}' in "
        "a --connections file)"
    )


URL = "<the URL, password included>"


def source_hint(source: str) -> str:
    return f"write 'connection: {source}' instead, and {_operator(source, URL)}"


LEDGER_HINT = f"write 'ledger: ledger' instead, and {_operator('ledger', URL)}"
SMTP_HINT = (
    "replace host, port, security, username and password_env with 'connection: smtp', and "
    f"{_operator('smtp', SMTP_URL)}"
)
DASK_HINT = f"write 'connection: dask' instead, and {_operator('dask', 'tcp://HOST:8786')}"


def hint_for(path: Path_) -> str | None:
    """The migration hint for a ``${NAME}`` found at ``path``, when it is a former connection
    field; None elsewhere."""
    parts = tuple(str(p) for p in path)
    if len(parts) == 3 and parts[0] == "sources" and parts[2] == "url":
        return source_hint(parts[1])
    if parts == ("delivery", "ledger"):
        return LEDGER_HINT
    if parts[:3] == ("delivery", "email", "smtp"):
        return SMTP_HINT
    if parts == ("delivery", "burst", "address"):
        return DASK_HINT
    return None


def reported_by_checks(path: Path_) -> bool:
    """A ``${NAME}`` at ``path`` is left to ``removed_keys``, which reports the key itself."""
    parts = tuple(str(p) for p in path)
    return (
        (len(parts) == 3 and parts[0] == "sources" and parts[2] == "url")
        or parts == ("delivery", "ledger")
        or parts in (("delivery", "email", "smtp", "username"), ("delivery", "email", "smtp", "password_env"))
        or parts == ("delivery", "burst", "address")
    )


def removed_keys(data: Any) -> list[tuple[Path_, str, str]]:
    """(key path, message, hint) for each key the YAML may no longer hold; each such key is
    removed from ``data`` (so the schema does not report it again)."""
    found: list[tuple[Path_, str, str]] = []
    if not isinstance(data, dict):
        return found
    sources = data.get("sources")
    if isinstance(sources, dict):
        for name, source in sources.items():
            if isinstance(source, dict) and "url" in source:
                del source["url"]
                found.append(
                    (
                        ("sources", name, "url"),
                        "a report names its database, it holds no URL: the URL and its password "
                        "are the operator's",
                        source_hint(str(name)),
                    )
                )
    delivery = data.get("delivery")
    if not isinstance(delivery, dict):
        return found
    ledger = delivery.get("ledger")
    if isinstance(ledger, str) and not NAME.match(ledger):
        del delivery["ledger"]
        found.append(
            (
                ("delivery", "ledger"),
                "a URL here: the ledger's database is the operator's, named as a connection",
                LEDGER_HINT,
            )
        )
    email = delivery.get("email")
    smtp = email.get("smtp") if isinstance(email, dict) else None
    if isinstance(smtp, dict):
        login = [key for key in ("username", "password_env") if key in smtp]
        for key in login:
            del smtp[key]
        if login:
            found.append(
                (
                    ("delivery", "email", "smtp", login[0]),
                    "an SMTP login is the operator's: it comes from a connection, not from the report",
                    SMTP_HINT,
                )
            )
    burst = delivery.get("burst")
    if isinstance(burst, dict) and "address" in burst:
        del burst["address"]
        found.append(
            (
                ("delivery", "burst", "address"),
                "the Dask scheduler is the operator's: its address comes from a connection, not from "
                "the report",
                DASK_HINT,
            )
        )
    return found
