"""the expired-lease index keyed on having a lease, not on being PROCESANDO

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Same rows (a payment has a lease exactly while it is PROCESANDO), but a statement that picks
    # payments by id "AND estado = 'PROCESANDO'" (the result write, the lease release) can no longer
    # be planned over this index: between vacuums it holds every claim ever made, and the planner,
    # told that PROCESANDO rows are few, read them all to write a handful of results. The reconciler's
    # "lease_expira < :antes" implies "lease_expira IS NOT NULL" and still uses it. A plain CREATE
    # INDEX: it blocks writes to pagos while it reads the table once.
    op.create_index(
        "ix_pagos_lease_expira", "pagos", ["lease_expira"], postgresql_where=sa.text("lease_expira IS NOT NULL")
    )
    op.drop_index("ix_pagos_lease_expira_procesando", table_name="pagos")


def downgrade() -> None:
    op.create_index(
        "ix_pagos_lease_expira_procesando", "pagos", ["lease_expira"], postgresql_where=sa.text("estado = 'PROCESANDO'")
    )
    op.drop_index("ix_pagos_lease_expira", table_name="pagos")
