"""Alembic's environment for the ledger: the connection comes from ``Ledger`` (never a URL in a
file), inside the transaction that ``migrate`` opened."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
