"""Alembic migrations of the ledger (see reporter.delivery.ledger.migrate)."""
