"""Alert rules keep their state in the ledger: what the latest evaluation found, what the latest
message announced, and until when a rule is snoozed (``reporter alerts``).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("report", sa.String(200), primary_key=True),
        sa.Column("rule", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("detail", sa.String(40), nullable=False),
        sa.Column("changed", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evaluated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified", sa.String(20), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True)),
        sa.Column("snoozed_until", sa.Date),
        sa.Column("error", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("alert_rules")
