"""the W3C trace context of each outbox event (traceparent, tracestate), carried to its publication

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # What a command's `traceparent` becomes on its event, whichever process publishes it: the
    # relays read it back from here. NULL: the command came with no (valid) trace context and no
    # tracer was configured. Text, not a bounded type: a trace header must never fail a commit.
    op.add_column("outbox", sa.Column("traceparent", sa.Text(), nullable=True))
    op.add_column("outbox", sa.Column("tracestate", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox", "tracestate")
    op.drop_column("outbox", "traceparent")
