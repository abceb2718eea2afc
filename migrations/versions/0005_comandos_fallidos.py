"""failures of command messages of their own, counted across replicas; poison commands recorded

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written only when a command fails for a reason of its own (never on the hot path): the
    # broker's redelivery count also counts outages and busy payments, which must not make a
    # command poison. A row whose message reached the limit is the operators' record of it.
    op.create_table(
        "comandos_fallidos",
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("id_pago", sa.Uuid(), nullable=True),
        sa.Column("fallos", sa.Integer(), nullable=False),
        sa.Column("ultimo_error", sa.Text(), nullable=False),
        sa.Column("primer_fallo", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ultimo_fallo", sa.DateTime(timezone=True), nullable=False),
        sa.Column("venenoso_desde", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("message_id", name="pk_comandos_fallidos"),
    )
    op.create_index(
        "ix_comandos_fallidos_id_pago",
        "comandos_fallidos",
        ["id_pago"],
        postgresql_where=sa.text("venenoso_desde IS NOT NULL"),
    )
    op.create_index(
        "ix_comandos_fallidos_venenoso_desde",
        "comandos_fallidos",
        ["venenoso_desde"],
        postgresql_where=sa.text("venenoso_desde IS NOT NULL"),
    )
    # Counts of messages that never became poison are deleted after a while (see fallos.py).
    op.create_index(
        "ix_comandos_fallidos_ultimo_fallo",
        "comandos_fallidos",
        ["ultimo_fallo"],
        postgresql_where=sa.text("venenoso_desde IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("comandos_fallidos")
