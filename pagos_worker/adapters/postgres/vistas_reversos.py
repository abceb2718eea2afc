"""The reversals as operators see them, read straight from PostgreSQL (`PostgresPagoViews` serves
them): a payment's, with its row; those that need attention; one by its id."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres.driver import PreparedStatement, fetch
from pagos_worker.application.queries import FiltroAtencion, VistaReverso

# A reversal needs attention when it is flagged (refused for the affiliate's balance, or its outcome
# unknown too often), or still PROCESANDO past the attention age. Each arm of the OR has a partial
# index of its own (the flag's; the lease's or the one of those PROCESANDO): never a scan of them all.
NECESITA = """(x.requiere_atencion OR (x.lease_expira IS NOT NULL AND x.estado = 'PROCESANDO'
    AND x.fecha_creacion < clock_timestamp() - CAST(:edad AS interval)))"""
_CAUSA = """CASE WHEN x.codigo = 'saldo_insuficiente' THEN 'saldo_insuficiente'
    WHEN x.requiere_atencion THEN 'marcado' ELSE 'antiguo' END"""  # VistaReverso.causa
_COLUMNAS = f"""x.id_reverso, x.id_pago, x.monto_pedido, x.motivo, x.estado, x.fecha_creacion, x.monto, x.moneda,
       x.descripcion, x.operador, x.referencia_reverso, x.codigo, x.mensaje_error, x.fecha_procesamiento,
       {NECESITA} AS requiere_atencion, x.ultimo_error, x.requiere_atencion AS marcado"""
# A payment's reversals for its status row (a LATERAL subquery on `p`): one JSON array, newest first.
DEL_PAGO = f"""SELECT CAST(json_agg(t ORDER BY t.fecha_creacion DESC, t.id_reverso DESC) AS text) AS reversos
    FROM (SELECT {_COLUMNAS} FROM reversos x WHERE x.id_pago = p.id_pago) t"""  # noqa: S608 - fixed columns
_REQUIEREN_ATENCION = PreparedStatement(
    text(f"""
SELECT {_COLUMNAS} FROM reversos x
WHERE {NECESITA} AND (CAST(:antes AS timestamptz) IS NULL OR x.fecha_creacion < CAST(:antes AS timestamptz))
  AND (CAST(:causa AS text) IS NULL OR {_CAUSA} = CAST(:causa AS text))
ORDER BY x.fecha_creacion, x.id_reverso LIMIT :limite
""")  # noqa: S608 - fixed columns
)
_UNO = PreparedStatement(text(f"SELECT {_COLUMNAS} FROM reversos x WHERE x.id_reverso = :id_reverso"))  # noqa: S608


async def requieren_atencion(
    engine: AsyncEngine, edad: timedelta, limite: int, filtro: FiltroAtencion
) -> list[VistaReverso]:
    causa = None if filtro.causa is None else filtro.causa.value
    params = {"limite": limite, "edad": edad, "antes": filtro.creado_antes, "causa": causa}
    return [_de_fila(row) for row in await fetch(engine, _REQUIEREN_ATENCION, params)]


async def uno(engine: AsyncEngine, edad: timedelta, id_reverso: UUID) -> VistaReverso | None:
    rows = await fetch(engine, _UNO, {"id_reverso": id_reverso, "edad": edad})
    return _de_fila(rows[0]) if rows else None


def de_json(texto: str | None) -> tuple[VistaReverso, ...]:
    """`DEL_PAGO`'s array (NULL: none): UUIDs and times as text, amounts as numbers, read as Decimal."""
    return tuple(_de_fila(_tipados(valor)) for valor in json.loads(texto or "[]", parse_float=Decimal))


def _tipados(valor: dict[str, Any]) -> dict[str, Any]:
    procesado = valor["fecha_procesamiento"]
    return {
        **valor,
        "id_reverso": UUID(valor["id_reverso"]),
        "id_pago": UUID(valor["id_pago"]),
        "fecha_creacion": datetime.fromisoformat(valor["fecha_creacion"]),
        "fecha_procesamiento": None if procesado is None else datetime.fromisoformat(procesado),
    }


def _de_fila(row: Mapping[str, Any]) -> VistaReverso:
    return VistaReverso(
        id_reverso=UUID(bytes=row["id_reverso"].bytes),  # asyncpg's own UUID type, or the standard one
        id_pago=UUID(bytes=row["id_pago"].bytes),
        monto_pedido=row["monto_pedido"],
        motivo=row["motivo"],
        estado=row["estado"],
        fecha_creacion=row["fecha_creacion"],
        monto=row["monto"],
        moneda=row["moneda"],
        descripcion=row["descripcion"],
        operador=row["operador"],
        referencia_reverso=row["referencia_reverso"],
        codigo=row["codigo"],
        mensaje_error=row["mensaje_error"],
        fecha_procesamiento=row["fecha_procesamiento"],
        requiere_atencion=row["requiere_atencion"],
        ultimo_error=row["ultimo_error"],
        marcado=row["marcado"],
    )
