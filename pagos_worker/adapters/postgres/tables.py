"""The schema, as SQLAlchemy Core tables. Alembic's target metadata; migrations create it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

# The Alembic revision these tables are (migrations/versions/): a process starts only on a database
# at this revision or a later one (`database.comprobar_esquema`); a test keeps it the head.
ESQUEMA = "0012"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _columnas_de_reclamo() -> list[Column[object]]:
    """The claim's columns, the same for every item that calls the gateway (payments, reversals):
    who holds it and until when, its attempts, why it is unknown and whether an operator must look,
    its key generation, and the fence (migrations 0004, 0006, 0010, 0011)."""
    return [
        Column("lease_owner", String(128)),
        Column("lease_expira", DateTime(timezone=True)),
        Column("intentos", Integer, nullable=False, server_default=text("0")),
        # An outcome the gateway could not give: the last reason, and whether an operator must look.
        Column("ultimo_error", Text),
        Column("requiere_atencion", Boolean, nullable=False, server_default=text("false")),
        Column("clave_generacion", SmallInteger, nullable=False, server_default=text("1")),
        Column("clave_desde", DateTime(timezone=True)),
        # Fenced claims (migration 0010): the claim number, and by when the gateway calls had ended.
        Column("reclamo", BigInteger, nullable=False, server_default=text("0")),
        Column("fin_llamadas", DateTime(timezone=True)),
        Column("fin_llamadas_previas", DateTime(timezone=True)),
        Column("clave_agotada", Boolean, nullable=False, server_default=text("false")),
    ]


pagos = Table(
    "pagos",
    metadata,
    Column("id_pago", Uuid, primary_key=True),
    # NULL only while a reversal that came first annulled it (`anulado_por`): see migration 0011.
    Column("id_afiliado", String(128)),
    Column("monto", Numeric(14, 2)),
    Column("moneda", String(3)),
    Column("estado", String(16), nullable=False),
    Column("referencia_pago", String(255)),
    Column("mensaje_error", Text),
    Column("fecha_creacion", DateTime(timezone=True), nullable=False),
    Column("fecha_procesamiento", DateTime(timezone=True)),
    *_columnas_de_reclamo(),
    # Reversals (migration 0011): what came back so far, and the reversal that annulled it unpaid.
    Column("monto_reversado", Numeric(14, 2), nullable=False, server_default=text("0")),
    Column("anulado_por", Uuid),
    CheckConstraint("estado IN ('PENDIENTE', 'PROCESANDO', 'EXITOSO', 'FALLIDO', 'REVERSADO')", name="estado"),
    CheckConstraint("moneda IN ('USD', 'EUR', 'COP')", name="moneda"),
    CheckConstraint("monto > 0", name="monto_positivo"),
    CheckConstraint(
        "(id_afiliado IS NOT NULL AND monto IS NOT NULL AND moneda IS NOT NULL) "
        "OR (anulado_por IS NOT NULL AND estado = 'PENDIENTE')",
        name="terminos",
    ),
    CheckConstraint("monto_reversado >= 0 AND monto_reversado <= monto", name="reversado"),
)

# The reconciler looks for payments whose lease has expired; operators for those needing attention.
Index("ix_pagos_lease_expira", pagos.c.lease_expira, postgresql_where=text("lease_expira IS NOT NULL"))
Index("ix_pagos_requiere_atencion", pagos.c.fecha_creacion, postgresql_where=text("requiere_atencion"))

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("event_type", String(64), nullable=False),
    Column("id_pago", Uuid, ForeignKey("pagos.id_pago"), nullable=False),
    Column("payload", Text, nullable=False),
    Column("creado_en", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("publicado_en", DateTime(timezone=True)),
    # The replica publishing it right after its commit (NULL: left to the relays); see migration 0003.
    Column("publicador", String(128)),
    # The W3C trace context the event carries on (its command's, or its span's): see migration 0008.
    Column("traceparent", Text),
    Column("tracestate", Text),
    # A reversal's event names it (migration 0011): one event per reversal, and still one of each of
    # a payment's own types per payment, whatever happens upstream.
    Column("id_reverso", Uuid),
)
Index(
    "uq_outbox_id_pago_event_type",
    outbox.c.id_pago,
    outbox.c.event_type,
    unique=True,
    postgresql_where=text("id_reverso IS NULL"),
)
Index("uq_outbox_id_reverso", outbox.c.id_reverso, unique=True, postgresql_where=text("id_reverso IS NOT NULL"))

# The relay scans only what is pending; retention deletes by publication time.
Index("ix_outbox_pendientes", outbox.c.id, postgresql_where=text("publicado_en IS NULL"))
Index("ix_outbox_publicado_en", outbox.c.publicado_en, postgresql_where=text("publicado_en IS NOT NULL"))

# Failures of command messages that were their own (never an outage), counted per message across
# replicas and restarts; a message that reached the poison limit stays recorded for operators
# (`venenoso_desde`): found by payment and in the attention list. See migration 0005.
comandos_fallidos = Table(
    "comandos_fallidos",
    metadata,
    Column("message_id", Text, primary_key=True),
    Column("id_pago", Uuid),
    Column("fallos", Integer, nullable=False),
    Column("ultimo_error", Text, nullable=False),
    Column("primer_fallo", DateTime(timezone=True), nullable=False),
    Column("ultimo_fallo", DateTime(timezone=True), nullable=False),
    Column("venenoso_desde", DateTime(timezone=True)),
)
Index(
    "ix_comandos_fallidos_id_pago",
    comandos_fallidos.c.id_pago,
    postgresql_where=text("venenoso_desde IS NOT NULL"),
)
Index(
    "ix_comandos_fallidos_venenoso_desde",
    comandos_fallidos.c.venenoso_desde,
    postgresql_where=text("venenoso_desde IS NOT NULL"),
)
Index(
    "ix_comandos_fallidos_ultimo_fallo",
    comandos_fallidos.c.ultimo_fallo,
    postgresql_where=text("venenoso_desde IS NULL"),
)

# The Stripe account's request schedule shared by every replica (GCRA), one row per account mode.
# See migration 0009 and `adapters.stripe.presupuesto`.
presupuesto_pasarela = Table(
    "presupuesto_pasarela",
    metadata,
    Column("cuenta", Text, primary_key=True),
    Column("tat", Float(precision=53), nullable=False),
    Column("reservados", BigInteger, nullable=False),
    prefixes=["UNLOGGED"],
)

# A payment settled by hand (`pagos-worker pagos resolver`): written with its final state and its
# outbox row, in one statement. `transferencias`: what the gateway showed. See migration 0007.
resoluciones = Table(
    "resoluciones",
    metadata,
    Column("id_pago", Uuid, ForeignKey("pagos.id_pago"), primary_key=True),
    Column("operador", Text, nullable=False),
    Column("resuelto_en", DateTime(timezone=True), nullable=False),
    Column("motivo", Text, nullable=False),
    Column("estado", String(16), nullable=False),
    Column("transferencias", JSONB, nullable=False),
    CheckConstraint("estado IN ('EXITOSO', 'FALLIDO')", name="estado"),
)

# Dead letters re-driven to the commands topic (`pagos-worker dlq reenviar`), by their origin.
reenvios = Table(
    "reenvios",
    metadata,
    Column("origen", Text, primary_key=True),
    Column("carta", Text, nullable=False),
    Column("id_pago", Uuid),
    Column("motivo", Text, nullable=False),
    Column("operador", Text, nullable=False),
    Column("reenviado_en", DateTime(timezone=True), nullable=False),
    Column("lote", Uuid, nullable=False),
    Column("veces", Integer, nullable=False),
)

# Reversals of payouts (`ReversarPago`), with the same claim columns as the payments: one mechanism.
# At most one of a payment's at the gateway at a time. See migration 0011.
reversos = Table(
    "reversos",
    metadata,
    Column("id_reverso", Uuid, primary_key=True),
    Column("id_pago", Uuid, ForeignKey("pagos.id_pago"), nullable=False),
    Column("monto_pedido", Numeric(14, 2)),
    Column("motivo", String(32), nullable=False),
    Column("descripcion", Text),
    Column("operador", Text),
    Column("estado", String(16), nullable=False),
    Column("monto", Numeric(14, 2)),
    Column("moneda", String(3)),
    Column("referencia_reverso", String(255)),
    Column("codigo", String(32)),
    Column("mensaje_error", Text),
    Column("fecha_creacion", DateTime(timezone=True), nullable=False),
    Column("fecha_procesamiento", DateTime(timezone=True)),
    *_columnas_de_reclamo(),
    CheckConstraint("estado IN ('PENDIENTE', 'PROCESANDO', 'EXITOSO', 'FALLIDO', 'ANULADO')", name="estado"),
    CheckConstraint("monto_pedido > 0", name="monto_pedido"),
    CheckConstraint("monto > 0", name="monto"),
)
Index("ix_reversos_id_pago", reversos.c.id_pago)
Index("uq_reversos_en_curso", reversos.c.id_pago, unique=True, postgresql_where=text("estado = 'PROCESANDO'"))
Index("ix_reversos_lease_expira", reversos.c.lease_expira, postgresql_where=text("lease_expira IS NOT NULL"))
Index("ix_reversos_requiere_atencion", reversos.c.fecha_creacion, postgresql_where=text("requiere_atencion"))
Index("ix_reversos_pendientes", reversos.c.fecha_creacion, postgresql_where=text("estado = 'PENDIENTE'"))

# Reconciliation against Stripe (`pagos-worker conciliar`, the scheduled pass): one row per run, and
# one per difference found, with both sides' evidence, until an operator resolves it. A run is
# written EN_CURSO when it starts, and its differences with COMPLETA in one transaction at its end.
# See migration 0012.
_CLASES_DIFERENCIA = (
    "'exitoso_sin_transferencia', 'transferencia_sin_exito', 'transferencias_multiples', 'importe_distinto', "
    "'destino_distinto', 'reverso_externo', 'reverso_sin_registro', 'reverso_faltante'"
)
conciliaciones = Table(
    "conciliaciones",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("desde", DateTime(timezone=True), nullable=False),
    Column("hasta", DateTime(timezone=True), nullable=False),
    Column("origen", Text, nullable=False),
    Column("estado", Text, nullable=False),
    Column("iniciada", DateTime(timezone=True), nullable=False),
    Column("terminada", DateTime(timezone=True)),
    Column("peticiones", Integer, nullable=False, server_default=text("0")),
    Column("conteos", JSONB),
    Column("error", Text),
    CheckConstraint("origen IN ('cli', 'programada')", name="origen"),
    CheckConstraint("estado IN ('EN_CURSO', 'COMPLETA', 'FALLIDA')", name="estado"),
    CheckConstraint("desde < hasta", name="ventana"),
)
Index("ix_conciliaciones_completas", conciliaciones.c.terminada, postgresql_where=text("estado = 'COMPLETA'"))
diferencias = Table(
    "diferencias",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("conciliacion", BigInteger, ForeignKey("conciliaciones.id"), nullable=False),
    Column("clase", Text, nullable=False),
    Column("id_pago", Uuid),
    Column("id_reverso", Uuid),
    Column("referencia", Text),
    Column("servicio", JSONB, nullable=False),
    Column("pasarela", JSONB, nullable=False),
    Column("creada", DateTime(timezone=True), nullable=False),
    Column("resuelta_en", DateTime(timezone=True)),
    Column("resuelta_por", Text),
    Column("nota", Text),
    CheckConstraint(f"clase IN ({_CLASES_DIFERENCIA})", name="clase"),
)
Index("ix_diferencias_sin_resolver", diferencias.c.creada, postgresql_where=text("resuelta_en IS NULL"))
Index("ix_diferencias_id_pago", diferencias.c.id_pago)
Index("ix_diferencias_conciliacion", diferencias.c.conciliacion)

OUTBOX_CHANNEL = "outbox_pagos"
