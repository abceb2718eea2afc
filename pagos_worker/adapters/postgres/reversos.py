"""`ReversoRepository` on PostgreSQL. A reversal's arrival is one transaction with its payment's row
locked (a reversal is rare next to a payment: no group commit); its outcome is another, fenced on
its claim number. Giving it back and renewing its key are the payments' own statements
(`reclamos`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pagos_worker import observability as metrics
from pagos_worker.adapters.postgres import reclamos
from pagos_worker.adapters.postgres.repository import campos_de_reclamo, pago_from_row
from pagos_worker.adapters.postgres.retry import retry_transient
from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.ports.repository import Liberacion
from pagos_worker.application.ports.reversos import Llegada, ReclamoDeReverso
from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.contract.wire import encode_event
from pagos_worker.domain.dinero import Dinero, Moneda
from pagos_worker.domain.reclamo import Lease, PoliticaAtencion
from pagos_worker.domain.reverso import (
    Admision,
    CodigoReversoFallido,
    EstadoReverso,
    MotivoReverso,
    Reverso,
)

_LEER = text("""
SELECT r.*, clock_timestamp() AS ahora, p.referencia_pago AS referencia_transfer,
    p.monto_reversado AS reversado_previo
FROM reversos r JOIN pagos p ON p.id_pago = r.id_pago
WHERE r.id_reverso = :id_reverso
FOR UPDATE OF r
""")
_PAGO = text("SELECT *, clock_timestamp() AS ahora FROM pagos WHERE id_pago = :id_pago FOR UPDATE")
_ANULAR_SIN_PAGO = text("""
INSERT INTO pagos (id_pago, estado, fecha_creacion, anulado_por)
VALUES (:id_pago, 'PENDIENTE', clock_timestamp(), :id_reverso)
ON CONFLICT (id_pago) DO NOTHING
""")
_OTRO_EN_CURSO = text(
    "SELECT EXISTS (SELECT 1 FROM reversos WHERE id_pago = :id_pago AND estado = 'PROCESANDO'"
    " AND id_reverso <> :id_reverso) AS hay"
)
# Claimed again under the next claim number, its earlier calls' end kept for the settle margin.
_RECLAMAR_DE_NUEVO = text("""
UPDATE reversos SET lease_owner = :owner, lease_expira = clock_timestamp() + make_interval(secs => :lease_s),
    intentos = intentos + 1, reclamo = reclamo + 1, fin_llamadas_previas = fin_llamadas,
    fin_llamadas = clock_timestamp() + make_interval(secs => :lease_s)
WHERE id_reverso = :id_reverso
RETURNING lease_expira, intentos, reclamo, fin_llamadas_previas, clock_timestamp() AS ahora
""")
# A new or waiting reversal as `Reverso.admitir` left it (the claim's columns only when it claimed).
_GUARDAR_ADMISION = text("""
INSERT INTO reversos AS r (id_reverso, id_pago, monto_pedido, motivo, descripcion, operador, estado, monto, moneda,
    codigo, mensaje_error, fecha_creacion, fecha_procesamiento, lease_owner, lease_expira, intentos, reclamo,
    clave_desde, fin_llamadas)
VALUES (:id_reverso, :id_pago, :monto_pedido, :motivo, :descripcion, :operador, :estado, :monto, :moneda, :codigo,
    :mensaje_error, clock_timestamp(), :fecha_procesamiento, :lease_owner,
    CASE WHEN :reclama THEN clock_timestamp() + make_interval(secs => :lease_s) END, :intentos,
    CASE WHEN :reclama THEN 1 ELSE 0 END, CASE WHEN :reclama THEN clock_timestamp() END,
    CASE WHEN :reclama THEN clock_timestamp() + make_interval(secs => :lease_s) END)
ON CONFLICT (id_reverso) DO UPDATE SET estado = EXCLUDED.estado, monto = EXCLUDED.monto, moneda = EXCLUDED.moneda,
    codigo = EXCLUDED.codigo, mensaje_error = EXCLUDED.mensaje_error,
    fecha_procesamiento = EXCLUDED.fecha_procesamiento, lease_owner = EXCLUDED.lease_owner,
    lease_expira = EXCLUDED.lease_expira, intentos = r.intentos + EXCLUDED.intentos,
    reclamo = r.reclamo + EXCLUDED.reclamo, clave_desde = COALESCE(r.clave_desde, EXCLUDED.clave_desde),
    fin_llamadas_previas = r.fin_llamadas, fin_llamadas = EXCLUDED.fin_llamadas
WHERE r.estado = 'PENDIENTE'
RETURNING *, clock_timestamp() AS ahora
""")
_FINALIZAR = text("""
UPDATE reversos SET estado = :estado, referencia_reverso = :referencia, codigo = :codigo,
    mensaje_error = :mensaje_error, fecha_procesamiento = :fecha, lease_owner = NULL, lease_expira = NULL,
    requiere_atencion = :requiere_atencion
WHERE id_reverso = :id_reverso AND estado = 'PROCESANDO' AND reclamo = :reclamo
RETURNING id_pago
""")
_REVERTIR_PAGO = text("""
UPDATE pagos SET monto_reversado = monto_reversado + :monto,
    estado = CASE WHEN monto_reversado + :monto = monto THEN 'REVERSADO' ELSE estado END
WHERE id_pago = :id_pago AND estado IN ('EXITOSO', 'REVERSADO')
RETURNING monto_reversado
""")
_OUTBOX = text("""
INSERT INTO outbox (event_id, event_type, id_pago, id_reverso, payload, publicador, traceparent, tracestate)
VALUES (:event_id, :event_type, :id_pago, :id_reverso, :payload, :publicador, :traceparent, :tracestate)
RETURNING id, creado_en
""")
# Held by no one for longer than the grace (a lease expired), not an operator's; or waiting with no
# delivery left to try it again (its command dead-lettered, or lost) though it could go on now: its
# payment final and no other reversal of it at the gateway (those that must still wait would fill
# every pass and hide the ones that can go on).
_STUCK = text("""
(SELECT * FROM reversos
 WHERE estado = 'PROCESANDO' AND lease_expira < clock_timestamp() - make_interval(secs => :gracia_s)
     AND NOT requiere_atencion
 ORDER BY lease_expira LIMIT :limite)
UNION ALL
(SELECT x.* FROM reversos x JOIN pagos p ON p.id_pago = x.id_pago
 WHERE x.estado = 'PENDIENTE' AND x.fecha_creacion < clock_timestamp() - make_interval(secs => :gracia_s)
     AND p.estado IN ('EXITOSO', 'FALLIDO', 'REVERSADO')
     AND NOT EXISTS (SELECT 1 FROM reversos o WHERE o.id_pago = x.id_pago AND o.estado = 'PROCESANDO')
 ORDER BY x.fecha_creacion LIMIT :limite)
""")
_GET = text("SELECT * FROM reversos WHERE id_reverso = :id_reverso")


class PostgresReversoRepository:
    def __init__(self, engine: AsyncEngine, *, publicador: str | None = None) -> None:
        """With `publicador`, the events written are that replica's to publish right after their
        commit (as `PostgresPagoRepository`'s)."""
        self._engine = engine
        self._publicador = publicador

    async def reclamar(self, pedido: Reverso, lease: Lease, traza: TraceContext | None = None) -> ReclamoDeReverso:
        lease_s = (lease.expira - pedido.fecha_creacion).total_seconds()

        async def una_vez() -> ReclamoDeReverso:
            async with self._engine.begin() as conn:
                return await self._reclamar(conn, pedido, lease, lease_s, traza)

        return await retry_transient(una_vez)

    async def _reclamar(
        self, conn: AsyncConnection, pedido: Reverso, lease: Lease, lease_s: float, traza: TraceContext | None
    ) -> ReclamoDeReverso:
        ids = {"id_reverso": pedido.id_reverso, "id_pago": pedido.id_pago}
        # The payment's row first, always (made, annulled and without terms, when it is not known):
        # every transaction of a reversal locks its payment's row, then the reversal's, so two
        # deliveries of one reversal, two reversals of one payment, and a reversal's outcome are
        # decided one after the other, in one order (no deadlock between them).
        pago_fila = (await conn.execute(_PAGO, ids)).mappings().first()
        if pago_fila is None:
            await conn.execute(_ANULAR_SIN_PAGO, ids)  # a payment inserted meanwhile wins: read again
            pago_fila = (await conn.execute(_PAGO, ids)).mappings().one()
        if (fila := (await conn.execute(_LEER, ids)).mappings().first()) is not None:
            guardado = reverso_from_row(fila)
            ahora: datetime = fila["ahora"]
            if not guardado.mismos_terminos(pedido):
                return ReclamoDeReverso(Llegada.CONFLICTO, guardado, ahora)
            if guardado.estado.es_final:
                return ReclamoDeReverso(Llegada.YA_PROCESADO, guardado, ahora)
            if guardado.estado is EstadoReverso.PROCESANDO:
                if guardado.requiere_atencion:
                    return ReclamoDeReverso(Llegada.REQUIERE_ATENCION, guardado, ahora)
                if guardado.lease is not None and guardado.lease.vigente(ahora):
                    return ReclamoDeReverso(Llegada.EN_CURSO, guardado, ahora)
                params = {"id_reverso": pedido.id_reverso, "owner": lease.owner, "lease_s": lease_s}
                nuevo = (await conn.execute(_RECLAMAR_DE_NUEVO, params)).mappings().one()
                guardado.lease = Lease(lease.owner, nuevo["lease_expira"])
                guardado.intentos, guardado.reclamo = nuevo["intentos"], nuevo["reclamo"]
                # The database's time after the lease began: what the holder counts its lease from.
                return ReclamoDeReverso(Llegada.RECLAMADO, guardado, nuevo["ahora"], nuevo["fin_llamadas_previas"])
            pedido = guardado  # waiting (PENDIENTE): decided again below
        ahora = pago_fila["ahora"]
        pago = None if pago_fila["id_afiliado"] is None else pago_from_row(pago_fila)
        otro = bool((await conn.execute(_OTRO_EN_CURSO, ids)).scalar())
        admision = pedido.admitir(pago, otro_en_curso=otro, lease=Lease(lease.owner, ahora), ahora=ahora)
        fila = (await conn.execute(_GUARDAR_ADMISION, _params_admision(pedido, admision, lease_s))).mappings().one()
        guardado = reverso_from_row(fila)
        guardado.referencia_transfer, guardado.reversado_previo = pedido.referencia_transfer, pedido.reversado_previo
        eventos = await self._eventos(conn, pedido, traza)
        llegada = Llegada(admision.value)
        return ReclamoDeReverso(llegada, guardado, fila["ahora"], fila["fin_llamadas_previas"], eventos)

    async def guardar_resultado(self, reverso: Reverso, traza: TraceContext | None = None) -> list[OutboxEvent] | None:
        async def una_vez() -> list[OutboxEvent] | None:
            async with self._engine.begin() as conn:
                params = {
                    "id_reverso": reverso.id_reverso,
                    "reclamo": reverso.reclamo,
                    "estado": reverso.estado.value,
                    "referencia": reverso.referencia_reverso,
                    "codigo": reverso.codigo.value if reverso.codigo else None,
                    "mensaje_error": reverso.mensaje_error,
                    "fecha": reverso.fecha_procesamiento,
                    "requiere_atencion": reverso.requiere_atencion,
                }
                await conn.execute(_PAGO, {"id_pago": reverso.id_pago})  # its payment's row first, as every one
                if (await conn.execute(_FINALIZAR, params)).first() is None:
                    return None
                if reverso.estado is EstadoReverso.EXITOSO:
                    assert reverso.importe is not None  # noqa: S101 - fixed at its claim
                    revertido = {"id_pago": reverso.id_pago, "monto": reverso.importe.monto}
                    total = (await conn.execute(_REVERTIR_PAGO, revertido)).scalar_one()  # ≤ the amount: a CHECK
                    if total != reverso.reversado_previo + reverso.importe.monto:  # one reversal at a time: never
                        raise TotalReversadoError(
                            f"{reverso.identidad}: el pago suma {total} revertido y el evento diría "
                            f"{reverso.reversado_previo + reverso.importe.monto}"
                        )
                return await self._eventos(conn, reverso, traza)

        eventos = await retry_transient(una_vez)
        if eventos is None:
            metrics.etiquetada(metrics.ESCRITURAS_OBSOLETAS, "reverso").inc()
        return eventos

    async def _eventos(self, conn: AsyncConnection, reverso: Reverso, traza: TraceContext | None) -> list[OutboxEvent]:
        traceparent, tracestate = (None, None) if traza is None else (traza.traceparent, traza.tracestate)
        escritos: list[OutboxEvent] = []
        for evento in reverso.eventos:
            payload = encode_event(evento)
            params = {
                "event_id": evento.event_id,
                "event_type": evento.tipo,
                "id_pago": reverso.id_pago,
                "id_reverso": reverso.id_reverso,
                "payload": payload.decode(),
                "publicador": self._publicador,
                "traceparent": traceparent,
                "tracestate": tracestate,
            }
            fila = (await conn.execute(_OUTBOX, params)).mappings().one()
            escritos.append(
                OutboxEvent(
                    fila["id"], evento.event_id, evento.tipo, reverso.id_pago, payload, fila["creado_en"],
                    traceparent, tracestate,
                )
            )  # fmt: skip
        return escritos

    async def renovar_clave(self, reverso: Reverso, politica: PoliticaAtencion) -> datetime | None:
        return await reclamos.renovar_clave(self._engine, reverso, politica)

    async def liberar(self, reverso: Reverso, como: Liberacion, politica: PoliticaAtencion) -> bool | None:
        return await reclamos.liberar(self._engine, reverso, como, politica)

    async def atascados(self, gracia: timedelta, limite: int) -> list[Reverso]:
        params = {"gracia_s": gracia.total_seconds(), "limite": limite}
        async with self._engine.connect() as conn:
            return [reverso_from_row(f) for f in (await conn.execute(_STUCK, params)).mappings()]

    async def obtener(self, id_reverso: UUID) -> Reverso | None:
        async with self._engine.connect() as conn:
            fila = (await conn.execute(_GET, {"id_reverso": id_reverso})).mappings().first()
        return None if fila is None else reverso_from_row(fila)


class TotalReversadoError(Exception):
    """What came back of the payment is not what the reversal's event would say: nothing is written
    (the transaction is rolled back), and the command fails as its own (counted, then dead-lettered
    as poison; the reversal is left PROCESANDO for the reconciler and an operator)."""


def _params_admision(reverso: Reverso, admision: Admision, lease_s: float) -> dict[str, Any]:
    reclama = admision is Admision.RECLAMADO
    return {
        "id_reverso": reverso.id_reverso,
        "id_pago": reverso.id_pago,
        "monto_pedido": reverso.monto_pedido,
        "motivo": reverso.motivo.value,
        "descripcion": reverso.descripcion,
        "operador": reverso.operador,
        "estado": reverso.estado.value,
        "monto": reverso.importe.monto if reverso.importe else None,
        "moneda": reverso.importe.moneda.value if reverso.importe else None,
        "codigo": reverso.codigo.value if reverso.codigo else None,
        "mensaje_error": reverso.mensaje_error,
        "fecha_procesamiento": reverso.fecha_procesamiento,
        "lease_owner": reverso.lease.owner if reclama and reverso.lease else None,
        "reclama": reclama,
        "lease_s": lease_s,
        "intentos": 1 if reclama else 0,
    }


def reverso_from_row(row: Any) -> Reverso:  # noqa: ANN401 - a SQLAlchemy row mapping
    importe = Dinero(row["monto"], Moneda(row["moneda"])) if row["monto"] is not None else None
    return Reverso(
        id_reverso=row["id_reverso"],
        id_pago=row["id_pago"],
        monto_pedido=row["monto_pedido"],
        motivo=MotivoReverso(row["motivo"]),
        descripcion=row["descripcion"],
        operador=row["operador"],
        estado=EstadoReverso(row["estado"]),
        importe=importe,
        referencia_reverso=row["referencia_reverso"],
        codigo=CodigoReversoFallido(row["codigo"]) if row["codigo"] else None,
        mensaje_error=row["mensaje_error"],
        fecha_procesamiento=row["fecha_procesamiento"],
        referencia_transfer=row.get("referencia_transfer"),
        reversado_previo=row.get("reversado_previo") or Decimal(0),
        **campos_de_reclamo(row),
    )
