"""Exactly once and a recorded archive: who holds each run (a crashed run's deliveries go to
review), the archive as a step of the run, and the hash of every manifest line written.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_holders",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
    )
    op.create_table(
        "archive_steps",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("report", sa.String(200), nullable=False),
        sa.Column("period", sa.String(20), nullable=False),
        sa.Column("pdf", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("archive", sa.Text),
        sa.Column("version", sa.Integer),
        sa.Column("reason", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "manifest_lines",
        sa.Column("archive", sa.String(1000), primary_key=True),
        sa.Column("line", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("report", sa.String(200), nullable=False),
        sa.Column("period", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
    )


def downgrade() -> None:
    for table in ("manifest_lines", "archive_steps", "run_holders"):
        op.drop_table(table)
