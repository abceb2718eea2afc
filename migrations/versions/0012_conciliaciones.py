"""reconciliation against Stripe: its runs and the differences they found

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CLASES = (
    "'exitoso_sin_transferencia', 'transferencia_sin_exito', 'transferencias_multiples', 'importe_distinto', "
    "'destino_distinto', 'reverso_externo', 'reverso_sin_registro', 'reverso_faltante'"
)


def upgrade() -> None:
    # New tables only: no lock on what the running release uses.
    op.create_table(
        "conciliaciones",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("desde", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hasta", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origen", sa.Text(), nullable=False),
        sa.Column("estado", sa.Text(), nullable=False),
        sa.Column("iniciada", sa.DateTime(timezone=True), nullable=False),
        sa.Column("terminada", sa.DateTime(timezone=True), nullable=True),
        sa.Column("peticiones", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("conteos", postgresql.JSONB(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        # Named under the metadata's naming convention (ck_conciliaciones_<name>, pk_conciliaciones).
        sa.CheckConstraint("origen IN ('cli', 'programada')", name="origen"),
        sa.CheckConstraint("estado IN ('EN_CURSO', 'COMPLETA', 'FALLIDA')", name="estado"),
        sa.CheckConstraint("desde < hasta", name="ventana"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_conciliaciones_completas",
        "conciliaciones",
        ["terminada"],
        postgresql_where=sa.text("estado = 'COMPLETA'"),
    )
    op.create_table(
        "diferencias",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("conciliacion", sa.BigInteger(), nullable=False),
        sa.Column("clase", sa.Text(), nullable=False),
        sa.Column("id_pago", sa.Uuid(), nullable=True),
        sa.Column("id_reverso", sa.Uuid(), nullable=True),
        sa.Column("referencia", sa.Text(), nullable=True),
        sa.Column("servicio", postgresql.JSONB(), nullable=False),
        sa.Column("pasarela", postgresql.JSONB(), nullable=False),
        sa.Column("creada", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resuelta_en", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resuelta_por", sa.Text(), nullable=True),
        sa.Column("nota", sa.Text(), nullable=True),
        sa.CheckConstraint(f"clase IN ({_CLASES})", name="clase"),
        sa.ForeignKeyConstraint(["conciliacion"], ["conciliaciones.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    # The attention list reads the unresolved ones; `pagos ver` a payment's.
    op.create_index(
        "ix_diferencias_sin_resolver", "diferencias", ["creada"], postgresql_where=sa.text("resuelta_en IS NULL")
    )
    op.create_index("ix_diferencias_id_pago", "diferencias", ["id_pago"])
    op.create_index("ix_diferencias_conciliacion", "diferencias", ["conciliacion"])


def downgrade() -> None:
    op.drop_table("diferencias")
    op.drop_table("conciliaciones")
