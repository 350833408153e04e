"""Who holds a run, well enough to tell later that its process is gone: the machine's boot id
and the process's start time beside its pid (a reused pid is not taken for the run).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run_holders") as batch:
        batch.add_column(sa.Column("boot_id", sa.String(64)))
        batch.add_column(sa.Column("started_ticks", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("run_holders") as batch:
        batch.drop_column("started_ticks")
        batch.drop_column("boot_id")
