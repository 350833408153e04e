"""Recipients who unsubscribed from a report: a run skips them until they subscribe again.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("report", sa.String(200), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("added", sa.DateTime(timezone=True), nullable=False),
        sa.Column("how", sa.Text, nullable=False),
        sa.Column("lifted", sa.DateTime(timezone=True)),
        sa.Column("lifted_how", sa.Text),
    )
    op.create_index("ix_suppressions_report", "suppressions", ["report"])


def downgrade() -> None:
    op.drop_index("ix_suppressions_report", table_name="suppressions")
    op.drop_table("suppressions")
