"""pagos and outbox, with a NOTIFY on every outbox insert

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pagos",
        sa.Column("id_pago", sa.Uuid(), nullable=False),
        sa.Column("id_afiliado", sa.String(length=128), nullable=False),
        sa.Column("monto", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("moneda", sa.String(length=3), nullable=False),
        sa.Column("estado", sa.String(length=16), nullable=False),
        sa.Column("referencia_pago", sa.String(length=255), nullable=True),
        sa.Column("mensaje_error", sa.Text(), nullable=True),
        sa.Column("fecha_creacion", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fecha_procesamiento", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expira", sa.DateTime(timezone=True), nullable=True),
        sa.Column("intentos", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("estado IN ('PENDIENTE', 'PROCESANDO', 'EXITOSO', 'FALLIDO')", name="ck_pagos_estado"),
        sa.CheckConstraint("moneda IN ('USD', 'EUR', 'COP')", name="ck_pagos_moneda"),
        sa.CheckConstraint("monto > 0", name="ck_pagos_monto_positivo"),
        sa.PrimaryKeyConstraint("id_pago", name="pk_pagos"),
    )
    op.create_index(
        "ix_pagos_lease_expira_procesando",
        "pagos",
        ["lease_expira"],
        postgresql_where=sa.text("estado = 'PROCESANDO'"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("id_pago", sa.Uuid(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("creado_en", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("publicado_en", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["id_pago"], ["pagos.id_pago"], name="fk_outbox_id_pago_pagos"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
        sa.UniqueConstraint("id_pago", "event_type", name="uq_outbox_id_pago_event_type"),
    )
    op.create_index("ix_outbox_pendientes", "outbox", ["id"], postgresql_where=sa.text("publicado_en IS NULL"))
    op.create_index(
        "ix_outbox_publicado_en", "outbox", ["publicado_en"], postgresql_where=sa.text("publicado_en IS NOT NULL")
    )
    # One notification per inserting statement; PostgreSQL delivers it at commit, so the relay
    # wakes as soon as the events are visible.
    op.execute(
        """
        CREATE FUNCTION notificar_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('outbox_pagos', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notificar AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION notificar_outbox()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_notificar ON outbox")
    op.execute("DROP FUNCTION notificar_outbox()")
    op.drop_table("outbox")
    op.drop_table("pagos")
