"""payments whose outcome is unknown: last error and a needs-attention flag

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("pagos", sa.Column("ultimo_error", sa.Text(), nullable=True))
    op.add_column(
        "pagos", sa.Column("requiere_atencion", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.create_index(
        "ix_pagos_requiere_atencion", "pagos", ["fecha_creacion"], postgresql_where=sa.text("requiere_atencion")
    )


def downgrade() -> None:
    op.drop_index("ix_pagos_requiere_atencion", table_name="pagos")
    op.drop_column("pagos", "requiere_atencion")
    op.drop_column("pagos", "ultimo_error")
