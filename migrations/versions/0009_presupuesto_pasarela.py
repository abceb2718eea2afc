"""the Stripe account's request schedule, shared by every replica

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Stripe limits requests per account, not per process: the replicas take turns from one
    # schedule (GCRA). `tat`: the account's next free instant, epoch seconds of the database's
    # clock; `reservados`: every turn reserved so far (the budget use gauge reads its rate).
    # One row per account mode (live, test), updated about ten times a second at full budget.
    # UNLOGGED: no WAL and no wait for a disk flush per reservation; after a crash or a failover the
    # table starts empty, and the next reservation starts a new schedule (a burst at most).
    op.create_table(
        "presupuesto_pasarela",
        sa.Column("cuenta", sa.Text(), primary_key=True),
        sa.Column("tat", sa.Float(precision=53), nullable=False),
        sa.Column("reservados", sa.BigInteger(), nullable=False),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("presupuesto_pasarela")
