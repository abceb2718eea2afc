"""Read models (`PagoViews`) straight from PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres import vistas_diferencias, vistas_reversos
from pagos_worker.adapters.postgres.driver import PreparedStatement, fetch
from pagos_worker.adapters.postgres.operador import transferencia_de_json
from pagos_worker.application.ports.operador import Resolucion
from pagos_worker.application.queries import (
    CausaAtencion,
    EstadisticasOutbox,
    FiltroAtencion,
    VistaComandoVenenoso,
    VistaDiferencia,
    VistaPago,
    VistaReverso,
)
from pagos_worker.domain.pago import EstadoPago

# A payment needs attention when the worker flagged it, or when it is still PROCESANDO past the
# attention age, whatever kept it there (a gateway that never answered, a bug, a lost command).
# A payment has a lease exactly while it is PROCESANDO: the partial index on lease_expira finds them.
_NECESITA = """(p.lease_expira IS NOT NULL AND p.estado = 'PROCESANDO'
    AND (p.requiere_atencion OR p.fecha_creacion < clock_timestamp() - CAST(:edad AS interval)))"""
_VENENOSO = "message_id, id_pago, fallos, ultimo_error, primer_fallo, venenoso_desde"
_COLUMNS = f"""p.id_pago, p.id_afiliado, p.monto, p.moneda, p.estado, p.referencia_pago, p.fecha_creacion,
       p.fecha_procesamiento, p.mensaje_error, p.intentos, {_NECESITA} AS requiere_atencion, p.ultimo_error,
       v.message_id AS v_message_id, v.fallos AS v_fallos, v.ultimo_error AS v_ultimo_error,
       v.primer_fallo AS v_primer_fallo, v.venenoso_desde AS v_venenoso_desde, p.requiere_atencion AS marcado,
       r.operador AS r_operador, r.resuelto_en AS r_resuelto_en, r.motivo AS r_motivo, r.estado AS r_estado,
       CAST(r.transferencias AS text) AS r_transferencias, p.monto_reversado, rv.reversos, df.diferencias"""
# The payment's reversals and unresolved differences ride in the same row (`vistas_*.DEL_PAGO`).
_CON_VENENOSO = f"""pagos p LEFT JOIN LATERAL (
    SELECT {_VENENOSO} FROM comandos_fallidos c
    WHERE c.id_pago = p.id_pago AND c.venenoso_desde IS NOT NULL ORDER BY c.venenoso_desde DESC LIMIT 1
) v ON true LEFT JOIN resoluciones r ON r.id_pago = p.id_pago
LEFT JOIN LATERAL ({vistas_reversos.DEL_PAGO}) rv ON true
LEFT JOIN LATERAL ({vistas_diferencias.DEL_PAGO}) df ON true"""  # noqa: S608 - fixed columns
# The status query is the read side's hot path: one statement, one round trip (no BEGIN/ROLLBACK).
# A row without terms (annulled by a reversal before its payment came) is no payment yet.
_STATUS = PreparedStatement(
    text(f"SELECT {_COLUMNS} FROM {_CON_VENENOSO} WHERE p.id_pago = :id_pago AND p.id_afiliado IS NOT NULL")  # noqa: S608
)
_NEEDING_ATTENTION = PreparedStatement(
    text(f"SELECT {_COLUMNS} FROM {_CON_VENENOSO} WHERE {_NECESITA} ORDER BY p.fecha_creacion LIMIT :limite")  # noqa: S608
)
# The operators' list, filtered: older than a time, and of one cause (flagged, or only old).
_NEEDING_ATTENTION_FILTERED = PreparedStatement(
    text(f"""
SELECT {_COLUMNS} FROM {_CON_VENENOSO}
WHERE {_NECESITA} AND (CAST(:antes AS timestamptz) IS NULL OR p.fecha_creacion < CAST(:antes AS timestamptz))
  AND (CAST(:marcado AS boolean) IS NULL OR p.requiere_atencion = CAST(:marcado AS boolean))
ORDER BY p.fecha_creacion LIMIT :limite
""")  # noqa: S608 - fixed columns
)
_COUNT_NEEDING_ATTENTION = PreparedStatement(
    text(f"""
SELECT (SELECT count(*) FROM pagos p WHERE {_NECESITA}) AS pagos,
    (SELECT count(*) FROM reversos x WHERE {vistas_reversos.NECESITA}) AS reversos,
    ({vistas_diferencias.CUENTA}) AS diferencias
""")  # noqa: S608 - fixed text
)
_ANNULLED_BY = PreparedStatement(
    text("SELECT anulado_por FROM pagos WHERE id_pago = :id_pago AND id_afiliado IS NULL AND anulado_por IS NOT NULL")
)
_POISON = PreparedStatement(
    text(f"""
SELECT {_VENENOSO} FROM comandos_fallidos WHERE venenoso_desde IS NOT NULL ORDER BY venenoso_desde DESC LIMIT :limite
""")  # noqa: S608 - fixed columns
)
_POISON_OF = PreparedStatement(
    text(f"""
SELECT {_VENENOSO} FROM comandos_fallidos WHERE id_pago = :id_pago AND venenoso_desde IS NOT NULL
ORDER BY venenoso_desde DESC LIMIT 1
""")  # noqa: S608 - fixed columns
)

_OUTBOX_STATS = text("""
SELECT count(*) AS total,
       count(publicado_en) AS procesados,
       EXTRACT(EPOCH FROM clock_timestamp() - min(creado_en) FILTER (WHERE publicado_en IS NULL)) AS antiguedad
FROM outbox
""")


class PostgresPagoViews:
    def __init__(self, engine: AsyncEngine, *, atencion_tras: timedelta = timedelta(hours=1)) -> None:
        """`atencion_tras`: the attention age (`PoliticaAtencion.max_antiguedad`)."""
        self._engine = engine
        self._edad = atencion_tras

    async def estado_pago(self, id_pago: UUID) -> VistaPago | None:
        rows = await fetch(self._engine, _STATUS, {"id_pago": id_pago, "edad": self._edad})
        return _vista_pago_from_row(rows[0]) if rows else None

    async def requieren_atencion(self, limite: int, filtro: FiltroAtencion | None = None) -> list[VistaPago]:
        if filtro is None:
            rows = await fetch(self._engine, _NEEDING_ATTENTION, {"limite": limite, "edad": self._edad})
        else:
            marcado = None if filtro.causa is None else filtro.causa is CausaAtencion.MARCADO
            params = {"limite": limite, "edad": self._edad, "antes": filtro.creado_antes, "marcado": marcado}
            rows = await fetch(self._engine, _NEEDING_ATTENTION_FILTERED, params)
        return [_vista_pago_from_row(row) for row in rows]

    async def contar_requieren_atencion(self) -> int:
        return sum(await self.contar_atencion())

    async def contar_atencion(self) -> tuple[int, int, int]:
        """How many payments, reversals and unresolved differences wait for an operator (three
        indexed counts)."""
        rows = await fetch(self._engine, _COUNT_NEEDING_ATTENTION, {"edad": self._edad})
        return int(rows[0]["pagos"]), int(rows[0]["reversos"]), int(rows[0]["diferencias"])

    async def diferencias_sin_resolver(
        self, limite: int, creadas_antes: datetime | None = None
    ) -> list[VistaDiferencia]:
        return await vistas_diferencias.sin_resolver(self._engine, limite, creadas_antes)

    async def reversos_requieren_atencion(
        self, limite: int, filtro: FiltroAtencion | None = None
    ) -> list[VistaReverso]:
        return await vistas_reversos.requieren_atencion(self._engine, self._edad, limite, filtro or FiltroAtencion())

    async def reverso(self, id_reverso: UUID) -> VistaReverso | None:
        return await vistas_reversos.uno(self._engine, self._edad, id_reverso)

    async def anulado_por(self, id_pago: UUID) -> UUID | None:
        rows = await fetch(self._engine, _ANNULLED_BY, {"id_pago": id_pago})
        return _uuid(rows[0]["anulado_por"]) if rows else None

    async def comandos_venenosos(self, limite: int) -> list[VistaComandoVenenoso]:
        rows = await fetch(self._engine, _POISON, {"limite": limite})
        return [_venenoso_from_row(row) for row in rows]

    async def comando_venenoso(self, id_pago: UUID) -> VistaComandoVenenoso | None:
        rows = await fetch(self._engine, _POISON_OF, {"id_pago": id_pago})
        return _venenoso_from_row(rows[0]) if rows else None

    async def estadisticas_outbox(self) -> EstadisticasOutbox:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_OUTBOX_STATS)).one()
        return EstadisticasOutbox(
            total_eventos=row.total,
            eventos_procesados=row.procesados,
            eventos_pendientes=row.total - row.procesados,
            antiguedad_pendiente_mas_antiguo_s=None if row.antiguedad is None else round(float(row.antiguedad), 3),
        )

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))


def _uuid(valor: Any) -> UUID | None:  # noqa: ANN401 - asyncpg's own UUID type when read raw
    return None if valor is None else UUID(bytes=valor.bytes)


def _venenoso_from_row(row: Mapping[Any, Any], prefijo: str = "") -> VistaComandoVenenoso:
    return VistaComandoVenenoso(
        message_id=row[f"{prefijo}message_id"],
        id_pago=_uuid(row["id_pago"]),
        fallos=row[f"{prefijo}fallos"],
        ultimo_error=row[f"{prefijo}ultimo_error"],
        primer_fallo=row[f"{prefijo}primer_fallo"],
        venenoso_desde=row[f"{prefijo}venenoso_desde"],
    )


def _vista_pago_from_row(row: Mapping[Any, Any]) -> VistaPago:
    return VistaPago(
        id=UUID(bytes=row["id_pago"].bytes),
        id_afiliado=row["id_afiliado"],
        monto=row["monto"],
        moneda=row["moneda"],
        estado=row["estado"],
        referencia_pago=row["referencia_pago"],
        fecha_creacion=row["fecha_creacion"],
        fecha_procesamiento=row["fecha_procesamiento"],
        mensaje_error=row["mensaje_error"],
        intentos=row["intentos"],
        requiere_atencion=row["requiere_atencion"],
        ultimo_error=row["ultimo_error"],
        comando_venenoso=None if row["v_message_id"] is None else _venenoso_from_row(row, "v_"),
        resolucion=None if row["r_operador"] is None else _resolucion_from_row(row),
        marcado=row["marcado"],
        monto_reversado=row["monto_reversado"],
        reversos=vistas_reversos.de_json(row["reversos"]),
        diferencias=vistas_diferencias.de_json(row["diferencias"]),
    )


def _resolucion_from_row(row: Mapping[Any, Any]) -> Resolucion:
    return Resolucion(
        operador=row["r_operador"],
        fecha=row["r_resuelto_en"],
        motivo=row["r_motivo"],
        estado=EstadoPago(row["r_estado"]),
        transferencias=tuple(transferencia_de_json(t) for t in json.loads(row["r_transferencias"])),
    )
