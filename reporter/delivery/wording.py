"""What the console says about each delivery: what really happened, in words.

``sent`` (the SMTP server accepted it), ``written to outbox`` (no SMTP configured: an .eml file),
``already sent on <date> (ledger), skipped``, ``failed: <reason>``, ``not re-sent, review: …``.
"""

from __future__ import annotations

from typing import Any


def sent_on(ledger: Any, report: str, period: str, recipient: str, version: int) -> str | None:
    """The date (YYYY-MM-DD, UTC) the ledger recorded a delivery version as sent."""
    import datetime as dt

    import sqlalchemy as sa

    from reporter.delivery.ledger import deliveries

    query = sa.select(deliveries.c.updated).where(
        deliveries.c.report == report,
        deliveries.c.period == period,
        deliveries.c.recipient == recipient.lower(),
        deliveries.c.version == version,
    )
    with ledger.engine.connect() as conn:
        when = conn.execute(query).scalar()
    if when is None:
        return None
    if when.tzinfo is None:  # SQLite gives naive datetimes back; they were written in UTC
        when = when.replace(tzinfo=dt.UTC)
    return f"{when.astimezone(dt.UTC):%Y-%m-%d}"


def describe(outcome: Any) -> str:
    """One delivery outcome (``send.DeliveryOutcome``) as the words the console prints."""
    state = str(outcome.state)
    if state == "sent":
        return "written to outbox" if getattr(outcome, "channel", "") == "outbox" else "sent"
    if state == "skipped":
        if getattr(outcome, "error", None):  # being sent, or just claimed, by another run
            return f"skipped: {outcome.error}"
        when = getattr(outcome, "sent_on", None)
        return f"already sent on {when} (ledger), skipped" if when else "already sent (ledger), skipped"
    if state == "failed":
        return f"failed: {outcome.error or 'no reason recorded'}"
    if state == "review":
        return f"not re-sent, review: {outcome.error}"
    return state
