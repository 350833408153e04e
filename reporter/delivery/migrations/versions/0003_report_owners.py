"""A report id belongs to one configuration file: the first that ran it on this ledger; another
file declaring the same id is refused until an operator releases it (``reporter release``).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_owners",
        sa.Column("report", sa.String(200), primary_key=True),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("bound", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("report_owners")
