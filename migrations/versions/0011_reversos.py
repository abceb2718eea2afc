"""reversals (ReversarPago): the reversos table, what came back of each payment, REVERSADO

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ESTADOS_PAGO = "'PENDIENTE', 'PROCESANDO', 'EXITOSO', 'FALLIDO', 'REVERSADO'"


def upgrade() -> None:
    # One transaction (env.py): pagos is locked from the first ALTER to the commit. The columns are
    # catalogue changes (a constant default or none, NOT NULL dropped: no rewrite); the CHECK
    # constraints are validated here, one scan of pagos each under that lock (measured on 2 vCPUs:
    # the whole migration holds pagos 0.7 s at 200,000 payments, about 8 s at 2,000,000). Left NOT
    # VALID, alembic could no longer compare the schema with tables.py (its reflection of a NOT
    # VALID constraint fails). Workers are stopped for this migration anyway (CHANGELOG). The lock
    # is waited for only briefly (env.py's lock timeout): a migration queued behind a long
    # transaction must not stall the running release.
    # What came back of a payment so far; its whole amount makes it REVERSADO.
    op.add_column("pagos", sa.Column("monto_reversado", sa.Numeric(14, 2), nullable=False, server_default="0"))
    # A reversal that came before its payment leaves the payment's row with no terms yet, annulled
    # by it: when its ProcesarPago comes, it fails without a gateway call. The row is what makes the
    # two serialize (the primary key): neither can miss the other.
    op.add_column("pagos", sa.Column("anulado_por", sa.Uuid(), nullable=True))
    for columna in ("id_afiliado", "monto", "moneda"):
        op.alter_column("pagos", columna, nullable=True)
    # Migration 0001 named it under the metadata's naming convention: ck_<table>_<name>.
    op.execute("ALTER TABLE pagos DROP CONSTRAINT ck_pagos_ck_pagos_estado")
    op.execute(f"ALTER TABLE pagos ADD CONSTRAINT ck_pagos_estado CHECK (estado IN ({_ESTADOS_PAGO})) NOT VALID")
    op.execute(
        "ALTER TABLE pagos ADD CONSTRAINT ck_pagos_terminos CHECK ((id_afiliado IS NOT NULL AND monto IS NOT NULL "
        "AND moneda IS NOT NULL) OR (anulado_por IS NOT NULL AND estado = 'PENDIENTE')) NOT VALID"
    )
    op.execute(
        "ALTER TABLE pagos ADD CONSTRAINT ck_pagos_reversado CHECK (monto_reversado >= 0 "
        "AND monto_reversado <= monto) NOT VALID"
    )
    for nombre in ("estado", "terminos", "reversado"):
        op.execute(f"ALTER TABLE pagos VALIDATE CONSTRAINT ck_pagos_{nombre}")

    op.create_table(
        "reversos",
        sa.Column("id_reverso", sa.Uuid(), nullable=False),
        sa.Column("id_pago", sa.Uuid(), nullable=False),
        sa.Column("monto_pedido", sa.Numeric(14, 2), nullable=True),
        sa.Column("motivo", sa.String(32), nullable=False),
        sa.Column("descripcion", sa.Text(), nullable=True),
        sa.Column("operador", sa.Text(), nullable=True),
        sa.Column("estado", sa.String(16), nullable=False),
        sa.Column("monto", sa.Numeric(14, 2), nullable=True),
        sa.Column("moneda", sa.String(3), nullable=True),
        sa.Column("referencia_reverso", sa.String(255), nullable=True),
        sa.Column("codigo", sa.String(32), nullable=True),
        sa.Column("mensaje_error", sa.Text(), nullable=True),
        sa.Column("fecha_creacion", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fecha_procesamiento", sa.DateTime(timezone=True), nullable=True),
        # The claim's columns, as the payments': one mechanism (see migrations 0004, 0006, 0010).
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_expira", sa.DateTime(timezone=True), nullable=True),
        sa.Column("intentos", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ultimo_error", sa.Text(), nullable=True),
        sa.Column("requiere_atencion", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("clave_generacion", sa.SmallInteger(), nullable=False, server_default="1"),
        sa.Column("clave_desde", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clave_agotada", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("reclamo", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("fin_llamadas", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fin_llamadas_previas", sa.DateTime(timezone=True), nullable=True),
        # Named under the metadata's naming convention (ck_reversos_<name>, pk_reversos, fk_…).
        sa.CheckConstraint("estado IN ('PENDIENTE', 'PROCESANDO', 'EXITOSO', 'FALLIDO', 'ANULADO')", name="estado"),
        sa.CheckConstraint("monto_pedido > 0", name="monto_pedido"),
        sa.CheckConstraint("monto > 0", name="monto"),
        sa.ForeignKeyConstraint(["id_pago"], ["pagos.id_pago"]),
        sa.PrimaryKeyConstraint("id_reverso"),
    )
    op.create_index("ix_reversos_id_pago", "reversos", ["id_pago"])
    # One reversal of a payment at the gateway at a time: the sum reversed never passes the amount.
    op.create_index(
        "uq_reversos_en_curso",
        "reversos",
        ["id_pago"],
        unique=True,
        postgresql_where=sa.text("estado = 'PROCESANDO'"),
    )
    op.create_index(
        "ix_reversos_lease_expira", "reversos", ["lease_expira"], postgresql_where=sa.text("lease_expira IS NOT NULL")
    )
    # The reconciler's look at reversals left waiting (their command lost).
    op.create_index(
        "ix_reversos_pendientes", "reversos", ["fecha_creacion"], postgresql_where=sa.text("estado = 'PENDIENTE'")
    )
    op.create_index(
        "ix_reversos_requiere_atencion",
        "reversos",
        ["fecha_creacion"],
        postgresql_where=sa.text("requiere_atencion"),
    )

    # The outbox's events of a reversal name it: one event per reversal (a payment may have many),
    # still one of each payment's own types per payment.
    op.add_column("outbox", sa.Column("id_reverso", sa.Uuid(), nullable=True))
    op.execute("ALTER TABLE outbox DROP CONSTRAINT uq_outbox_id_pago_event_type")
    op.create_index(
        "uq_outbox_id_pago_event_type",
        "outbox",
        ["id_pago", "event_type"],
        unique=True,
        postgresql_where=sa.text("id_reverso IS NULL"),
    )
    op.create_index(
        "uq_outbox_id_reverso",
        "outbox",
        ["id_reverso"],
        unique=True,
        postgresql_where=sa.text("id_reverso IS NOT NULL"),
    )


def downgrade() -> None:
    # Refused while anything of reversals exists: undoing it would lose money's history (a
    # published PagoAnulado whose payment could then be paid; REVERSADO turned back to EXITOSO).
    hay = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM reversos) OR EXISTS (SELECT 1 FROM pagos WHERE anulado_por IS NOT NULL)"
            )
        )
        .scalar()
    )
    if hay:
        raise RuntimeError(
            "migration 0011 cannot be undone: reversals are recorded (reversos, payments annulled by them); "
            "roll the release forward instead"
        )
    op.drop_index("uq_outbox_id_reverso", table_name="outbox")
    op.drop_index("uq_outbox_id_pago_event_type", table_name="outbox")
    op.create_unique_constraint("uq_outbox_id_pago_event_type", "outbox", ["id_pago", "event_type"])
    op.drop_column("outbox", "id_reverso")
    op.drop_table("reversos")
    for nombre in ("reversado", "terminos", "estado"):
        op.execute(f"ALTER TABLE pagos DROP CONSTRAINT ck_pagos_{nombre}")
    op.execute(
        "ALTER TABLE pagos ADD CONSTRAINT ck_pagos_ck_pagos_estado "
        "CHECK (estado IN ('PENDIENTE', 'PROCESANDO', 'EXITOSO', 'FALLIDO'))"
    )
    for columna in ("id_afiliado", "monto", "moneda"):
        op.alter_column("pagos", columna, nullable=False)
    op.drop_column("pagos", "anulado_por")
    op.drop_column("pagos", "monto_reversado")
