"""payments settled by an operator (resoluciones), and dead letters re-driven (reenvios)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One per payment at most: written in the same statement as the final state and its outbox row
    # (`pagos-worker pagos resolver`), so a payment settled by hand always says who, when and why.
    op.create_table(
        "resoluciones",
        sa.Column("id_pago", sa.Uuid(), nullable=False),
        sa.Column("operador", sa.Text(), nullable=False),
        sa.Column("resuelto_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("motivo", sa.Text(), nullable=False),
        sa.Column("estado", sa.String(length=16), nullable=False),
        sa.Column("transferencias", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint("estado IN ('EXITOSO', 'FALLIDO')", name="ck_resoluciones_estado"),
        sa.ForeignKeyConstraint(["id_pago"], ["pagos.id_pago"], name="fk_resoluciones_id_pago_pagos"),
        sa.PrimaryKeyConstraint("id_pago", name="pk_resoluciones"),
    )
    # What `pagos-worker dlq reenviar` sent back to the commands topic, by the dead letter's origin
    # (the first dead letter of its command): a later run skips it unless told otherwise.
    op.create_table(
        "reenvios",
        sa.Column("origen", sa.Text(), nullable=False),
        sa.Column("carta", sa.Text(), nullable=False),
        sa.Column("id_pago", sa.Uuid(), nullable=True),
        sa.Column("motivo", sa.Text(), nullable=False),
        sa.Column("operador", sa.Text(), nullable=False),
        sa.Column("reenviado_en", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lote", sa.Uuid(), nullable=False),
        sa.Column("veces", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("origen", name="pk_reenvios"),
    )


def downgrade() -> None:
    op.drop_table("reenvios")
    op.drop_table("resoluciones")
