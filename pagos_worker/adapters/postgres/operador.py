"""`OperadorRepository` and `RedriveLog` on PostgreSQL: what the operators' commands write.

Every write to a payment is one statement fenced like the worker's own (`repository.py`): taking it
only if the row is still as it was read (state, lease, claim number, attempts, flag, key generation)
and no lease lives by the database's clock; settling it only while it is PROCESANDO under the
operator's claim number and key generation, with its outbox row and its resolution in the same
statement; so a worker and an operator never both settle a payment.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker import observability as metrics
from pagos_worker.adapters.postgres.repository import pago_from_row
from pagos_worker.adapters.postgres.retry import retry_transient
from pagos_worker.adapters.postgres.reversos import reverso_from_row
from pagos_worker.application.ports.operador import PagoLeido, Resolucion, ResolucionGuardada
from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.ports.pasarela import TransferenciaHallada
from pagos_worker.contract.wire import encode_event
from pagos_worker.domain.pago import Pago
from pagos_worker.domain.reverso import Reverso

# A row without terms (annulled by a reversal before its command came) is no payment yet.
_GET = text("SELECT *, clock_timestamp() AS ahora FROM pagos WHERE id_pago = :id_pago AND id_afiliado IS NOT NULL")

# The row as it was read: nobody (worker, reconciler, another operator) has touched it since.
_COMO_SE_LEYO = """id_pago = :id_pago AND estado = :estado_leido AND intentos = :intentos_leidos
    AND requiere_atencion = :atencion_leida AND clave_generacion = :generacion AND reclamo = :reclamo_leido
    AND lease_owner IS NOT DISTINCT FROM CAST(:owner_leido AS text)
    AND lease_expira IS NOT DISTINCT FROM CAST(:expira_leida AS timestamptz)"""

# No live lease, by the database's clock; with a margin, the calls ended at least that long ago.
_TOMAR = text(f"""
UPDATE pagos SET estado = :estado, lease_owner = :owner, reclamo = reclamo + 1,
    lease_expira = clock_timestamp() + make_interval(secs => :lease_s)
WHERE {_COMO_SE_LEYO}
    AND (lease_expira IS NULL OR lease_expira <= clock_timestamp())
    AND (CAST(:margen_s AS float8) IS NULL
         OR COALESCE(fin_llamadas, lease_expira) IS NULL
         OR COALESCE(fin_llamadas, lease_expira) + make_interval(secs => :margen_s) <= clock_timestamp())
RETURNING reclamo
""")  # noqa: S608 - fixed text; every value is bound

_SOLTAR = text("""
UPDATE pagos SET lease_expira = clock_timestamp()
WHERE id_pago = :id_pago AND estado = 'PROCESANDO' AND reclamo = :reclamo
RETURNING id_pago
""")

_REANUDAR = text(f"""
UPDATE pagos SET requiere_atencion = :atencion
WHERE {_COMO_SE_LEYO} AND requiere_atencion AND (lease_expira IS NULL OR lease_expira <= clock_timestamp())
RETURNING id_pago
""")  # noqa: S608 - fixed text; every value is bound

_GET_REVERSO = text("SELECT *, clock_timestamp() AS ahora FROM reversos WHERE id_reverso = :id_reverso")
_REANUDAR_REVERSO = text("""
UPDATE reversos SET requiere_atencion = false
WHERE id_reverso = :id_reverso AND requiere_atencion AND estado = :estado AND reclamo = :reclamo
    AND clave_generacion = :generacion AND (lease_expira IS NULL OR lease_expira <= clock_timestamp())
RETURNING id_reverso
""")

_RESOLVER = text("""
WITH finalizado AS (
    UPDATE pagos
    SET estado = :estado, referencia_pago = :referencia, mensaje_error = :mensaje, fecha_procesamiento = :fecha,
        lease_owner = NULL, lease_expira = NULL, requiere_atencion = false
    WHERE id_pago = :id_pago AND estado = 'PROCESANDO' AND reclamo = :reclamo AND clave_generacion = :generacion
    RETURNING id_pago
),
resolucion AS (
    INSERT INTO resoluciones (id_pago, operador, resuelto_en, motivo, estado, transferencias)
    SELECT id_pago, :operador, :resuelto_en, :motivo, :estado, CAST(CAST(:transferencias AS text) AS jsonb)
    FROM finalizado
),
-- A transfer the reconciliation found for the payment while it was not paid, now the one it was
-- settled EXITOSO with: explained by this resolution, closed with it (the partial index's rows).
diferencia AS (
    UPDATE diferencias d SET resuelta_en = clock_timestamp(), resuelta_por = :operador, nota = :nota_diferencia
    FROM finalizado f
    WHERE d.id_pago = f.id_pago AND d.resuelta_en IS NULL AND d.clase = 'transferencia_sin_exito'
        AND CAST(:estado AS text) = 'EXITOSO' AND d.referencia = CAST(:referencia AS text)
    RETURNING d.id
)
INSERT INTO outbox (event_id, event_type, id_pago, payload, publicador)
SELECT :event_id, :event_type, id_pago, :payload, NULL FROM finalizado
RETURNING id, event_id, creado_en, (SELECT array_agg(id ORDER BY id) FROM diferencia) AS diferencias
""")


class PostgresOperadorRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def obtener(self, id_pago: UUID) -> PagoLeido | None:
        rows = await self._run(_GET, {"id_pago": id_pago})
        if not rows:
            return None
        [row] = rows
        # A row a replica of the release before 0010 claimed has no `fin_llamadas`: its lease bounds its calls.
        return PagoLeido(pago_from_row(row), row["ahora"], row["fin_llamadas"] or row["lease_expira"])

    async def tomar(self, pago: Pago, leido: PagoLeido, lease: timedelta, margen: timedelta | None) -> int | None:
        assert pago.lease is not None  # noqa: S101 - Pago.tomar_a_mano set it
        params = {
            **_como_se_leyo(leido.pago),
            "estado": pago.estado.value,
            "owner": pago.lease.owner,
            "lease_s": lease.total_seconds(),
            "margen_s": None if margen is None else margen.total_seconds(),
        }
        rows = await self._run(_TOMAR, params)
        return int(rows[0]["reclamo"]) if rows else None

    async def soltar(self, pago: Pago) -> None:
        if not await self._run(_SOLTAR, {"id_pago": pago.id_pago, "reclamo": pago.reclamo}):
            metrics.etiquetada(metrics.ESCRITURAS_OBSOLETAS, "operador").inc()

    async def obtener_reverso(self, id_reverso: UUID) -> tuple[Reverso, datetime] | None:
        async with self._engine.connect() as conn:
            fila = (await conn.execute(_GET_REVERSO, {"id_reverso": id_reverso})).mappings().first()
        return None if fila is None else (reverso_from_row(fila), fila["ahora"])

    async def reanudar_reverso(self, reverso: Reverso) -> bool:
        params = {
            "id_reverso": reverso.id_reverso,
            "estado": reverso.estado.value,
            "reclamo": reverso.reclamo,
            "generacion": reverso.generacion_clave,
        }
        return bool(await self._run(_REANUDAR_REVERSO, params))

    async def reanudar(self, pago: Pago, leido: PagoLeido) -> bool:
        params = {**_como_se_leyo(leido.pago), "atencion": pago.requiere_atencion}
        return bool(await self._run(_REANUDAR, params))

    async def guardar_resolucion(self, pago: Pago, resolucion: Resolucion) -> ResolucionGuardada | None:
        [evento] = pago.eventos  # the one event of its final state
        payload = encode_event(evento)
        params = {
            "id_pago": pago.id_pago,
            "estado": pago.estado.value,
            "referencia": pago.referencia_pago,
            "mensaje": pago.mensaje_error,
            "fecha": pago.fecha_procesamiento,
            "reclamo": pago.reclamo,
            "generacion": pago.generacion_clave,
            "operador": resolucion.operador,
            "resuelto_en": resolucion.fecha,
            "motivo": resolucion.motivo,
            "transferencias": json.dumps([transferencia_json(t) for t in resolucion.transferencias]),
            "event_id": evento.event_id,
            "event_type": evento.tipo,
            "payload": payload.decode(),
            "nota_diferencia": (
                f"resuelta con el pago (pagos resolver): EXITOSO con el transfer {pago.referencia_pago}; "
                f"{resolucion.motivo}"
            ),
        }
        rows = await self._run(_RESOLVER, params)
        if not rows:
            metrics.etiquetada(metrics.ESCRITURAS_OBSOLETAS, "operador").inc()
            return None
        [row] = rows
        evento_guardado = OutboxEvent(row["id"], row["event_id"], evento.tipo, pago.id_pago, payload, row["creado_en"])
        return ResolucionGuardada([evento_guardado], tuple(row["diferencias"] or ()))

    async def _run(self, statement: Any, params: dict[str, Any]) -> list[Any]:  # noqa: ANN401 - a text() clause
        async def una_vez() -> list[Any]:
            async with self._engine.begin() as conn:
                return list((await conn.execute(statement, params)).mappings().all())

        return await retry_transient(una_vez)


def _como_se_leyo(leido: Pago) -> dict[str, Any]:
    return {
        "id_pago": leido.id_pago,
        "estado_leido": leido.estado.value,
        "intentos_leidos": leido.intentos,
        "atencion_leida": leido.requiere_atencion,
        "generacion": leido.generacion_clave,
        "reclamo_leido": leido.reclamo,
        "owner_leido": leido.lease.owner if leido.lease else None,
        "expira_leida": leido.lease.expira if leido.lease else None,
    }


def transferencia_json(t: TransferenciaHallada) -> dict[str, Any]:
    return {
        "referencia": t.referencia,
        "unidades_menores": t.unidades_menores,
        "moneda": t.moneda,
        "creada": t.creada.isoformat() if t.creada else None,
        "destino": t.destino,
    }


def transferencia_de_json(valor: dict[str, Any]) -> TransferenciaHallada:
    creada = valor.get("creada")
    return TransferenciaHallada(
        referencia=str(valor["referencia"]),
        unidades_menores=valor.get("unidades_menores"),
        moneda=valor.get("moneda"),
        creada=datetime.fromisoformat(creada) if creada else None,
        destino=valor.get("destino"),
    )
