"""Read models (`PagoViews`) straight from PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres.driver import PreparedStatement, fetch
from pagos_worker.application.queries import EstadisticasOutbox, VistaPago

_COLUMNS = """id_pago, id_afiliado, monto, moneda, estado, referencia_pago, fecha_creacion,
       fecha_procesamiento, mensaje_error, intentos, requiere_atencion, ultimo_error"""
# The status query is the read side's hot path: one statement, one round trip (no BEGIN/ROLLBACK).
_STATUS = PreparedStatement(text(f"SELECT {_COLUMNS} FROM pagos WHERE id_pago = :id_pago"))  # noqa: S608 - fixed columns
_NEEDING_ATTENTION = text(f"""
SELECT {_COLUMNS} FROM pagos WHERE requiere_atencion ORDER BY fecha_creacion LIMIT :limite
""")  # noqa: S608 - fixed columns

_OUTBOX_STATS = text("""
SELECT count(*) AS total,
       count(publicado_en) AS procesados,
       EXTRACT(EPOCH FROM clock_timestamp() - min(creado_en) FILTER (WHERE publicado_en IS NULL)) AS antiguedad
FROM outbox
""")


class PostgresPagoViews:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def estado_pago(self, id_pago: UUID) -> VistaPago | None:
        rows = await fetch(self._engine, _STATUS, {"id_pago": id_pago})
        return _vista_pago_from_row(rows[0]) if rows else None

    async def requieren_atencion(self, limite: int) -> list[VistaPago]:
        async with self._engine.connect() as conn:
            result = await conn.execute(_NEEDING_ATTENTION, {"limite": limite})
            return [_vista_pago_from_row(row) for row in result.mappings()]

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


def _vista_pago_from_row(row: Mapping[Any, Any]) -> VistaPago:
    return VistaPago(
        id=UUID(bytes=row["id_pago"].bytes),  # asyncpg's own UUID type when read raw
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
    )
