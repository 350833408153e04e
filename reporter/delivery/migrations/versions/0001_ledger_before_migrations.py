"""The ledger as reporter wrote it before migrations existed (runs, deliveries, leases,
schedules). A ledger of that time has these tables and no alembic_version: it is stamped at this
revision and upgraded from here.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("report", sa.String(200), nullable=False),
        sa.Column("period", sa.String(20), nullable=False),
        sa.Column("started", WHEN, nullable=False),
        sa.Column("finished", WHEN),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("trigger", sa.String(50), nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("report", sa.String(200), primary_key=True),
        sa.Column("period", sa.String(20), primary_key=True),
        sa.Column("recipient", sa.String(320), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("updated", WHEN, nullable=False),
        sa.Column("run_id", sa.Integer),
    )
    op.create_table(
        "leases",
        sa.Column("report", sa.String(200), primary_key=True),
        sa.Column("period", sa.String(20), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires", WHEN, nullable=False),
    )
    op.create_table(
        "schedules",
        sa.Column("report", sa.String(200), primary_key=True),
        sa.Column("first_seen", WHEN, nullable=False),
    )


def downgrade() -> None:
    for table in ("schedules", "leases", "deliveries", "runs"):
        op.drop_table(table)
