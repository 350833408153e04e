"""Real times: when a run really started and finished (the run's own clock may be frozen for a
reproducible render), and when the server accepted each delivery (the SMTP server's reply to the
message, the webhook's 2xx answer, the outbox file written).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("wall_started", sa.DateTime(timezone=True)))
    op.add_column("runs", sa.Column("wall_finished", sa.DateTime(timezone=True)))
    op.add_column("deliveries", sa.Column("accepted", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("accepted")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("wall_finished")
        batch.drop_column("wall_started")
