"""Read models (`PagoViews`) straight from PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres.driver import PreparedStatement, fetch
from pagos_worker.application.queries import EstadisticasOutbox, VistaPago

_COLUMNAS = """id_pago, id_afiliado, monto, moneda, estado, referencia_pago, fecha_creacion,
       fecha_procesamiento, mensaje_error, intentos, requiere_atencion, ultimo_error"""
# The status query is the read side's hot path: one statement, one round trip (no BEGIN/ROLLBACK).
_ESTADO = PreparedStatement(text(f"SELECT {_COLUMNAS} FROM pagos WHERE id_pago = :id_pago"))  # noqa: S608 - fixed columns
_ATENCION = text(f"""
SELECT {_COLUMNAS} FROM pagos WHERE requiere_atencion ORDER BY fecha_creacion LIMIT :limite
""")  # noqa: S608 - fixed columns

_ESTADISTICAS = text("""
SELECT count(*) AS total,
       count(publicado_en) AS procesados,
       EXTRACT(EPOCH FROM clock_timestamp() - min(creado_en) FILTER (WHERE publicado_en IS NULL)) AS antiguedad
FROM outbox
""")


class PostgresPagoViews:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def estado_pago(self, id_pago: UUID) -> VistaPago | None:
        filas = await fetch(self._engine, _ESTADO, {"id_pago": id_pago})
        return _vista(filas[0]) if filas else None

    async def requieren_atencion(self, limite: int) -> list[VistaPago]:
        async with self._engine.connect() as conn:
            filas = await conn.execute(_ATENCION, {"limite": limite})
            return [_vista(f) for f in filas.mappings()]

    async def estadisticas_outbox(self) -> EstadisticasOutbox:
        async with self._engine.connect() as conn:
            f = (await conn.execute(_ESTADISTICAS)).one()
        return EstadisticasOutbox(
            total_eventos=f.total,
            eventos_procesados=f.procesados,
            eventos_pendientes=f.total - f.procesados,
            antiguedad_pendiente_mas_antiguo_s=None if f.antiguedad is None else round(float(f.antiguedad), 3),
        )

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))


def _vista(f: Mapping[Any, Any]) -> VistaPago:
    return VistaPago(
        id=UUID(bytes=f["id_pago"].bytes),  # asyncpg's own UUID type when read raw
        id_afiliado=f["id_afiliado"],
        monto=f["monto"],
        moneda=f["moneda"],
        estado=f["estado"],
        referencia_pago=f["referencia_pago"],
        fecha_creacion=f["fecha_creacion"],
        fecha_procesamiento=f["fecha_procesamiento"],
        mensaje_error=f["mensaje_error"],
        intentos=f["intentos"],
        requiere_atencion=f["requiere_atencion"],
        ultimo_error=f["ultimo_error"],
    )
