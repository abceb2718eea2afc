"""The reconciliation's differences as operators see them, read straight from PostgreSQL
(`PostgresPagoViews` serves them): those no operator has resolved yet (the attention list, read by
the partial index on them), and a payment's, with its row."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres.driver import PreparedStatement, fetch
from pagos_worker.application.queries import VistaDiferencia

COLUMNAS = """d.id, d.conciliacion, d.clase, d.id_pago, d.id_reverso, d.referencia,
       CAST(d.servicio AS text) AS servicio, CAST(d.pasarela AS text) AS pasarela, d.creada, d.resuelta_en,
       d.resuelta_por, d.nota"""
# A payment's unresolved ones for its status row (a LATERAL subquery on `p`): one JSON array, oldest first.
DEL_PAGO = """SELECT CAST(json_agg(d ORDER BY d.creada, d.id) AS text) AS diferencias
    FROM diferencias d WHERE d.id_pago = p.id_pago AND d.resuelta_en IS NULL"""
CUENTA = "SELECT count(*) FROM diferencias d WHERE d.resuelta_en IS NULL"
_SIN_RESOLVER = PreparedStatement(
    text(f"""
SELECT {COLUMNAS} FROM diferencias d
WHERE d.resuelta_en IS NULL AND (CAST(:antes AS timestamptz) IS NULL OR d.creada < CAST(:antes AS timestamptz))
ORDER BY d.creada, d.id LIMIT :limite
""")  # noqa: S608 - fixed columns
)


async def sin_resolver(engine: AsyncEngine, limite: int, antes: datetime | None) -> list[VistaDiferencia]:
    return [de_fila(row) for row in await fetch(engine, _SIN_RESOLVER, {"limite": limite, "antes": antes})]


def de_json(texto: str | None) -> tuple[VistaDiferencia, ...]:
    """`DEL_PAGO`'s array (NULL: none): its evidence as JSON objects, UUIDs and times as text."""
    return tuple(_de_json(valor) for valor in json.loads(texto or "[]"))


def _de_json(valor: dict[str, Any]) -> VistaDiferencia:
    def uuid_o_nada(clave: str) -> UUID | None:
        return None if valor[clave] is None else UUID(valor[clave])

    def fecha_o_nada(clave: str) -> datetime | None:
        return None if valor[clave] is None else datetime.fromisoformat(valor[clave])

    creada = fecha_o_nada("creada")
    assert creada is not None  # noqa: S101 - NOT NULL
    return VistaDiferencia(
        id=valor["id"],
        conciliacion=valor["conciliacion"],
        clase=valor["clase"],
        id_pago=uuid_o_nada("id_pago"),
        id_reverso=uuid_o_nada("id_reverso"),
        referencia=valor["referencia"],
        servicio=valor["servicio"],
        pasarela=valor["pasarela"],
        creada=creada,
        resuelta_en=fecha_o_nada("resuelta_en"),
        resuelta_por=valor["resuelta_por"],
        nota=valor["nota"],
    )


def _uuid(valor: Any) -> UUID | None:  # noqa: ANN401 - asyncpg's own UUID type when read raw
    return None if valor is None else UUID(bytes=valor.bytes)


def de_fila(row: Mapping[Any, Any]) -> VistaDiferencia:
    """A row of `COLUMNAS` (the evidence as JSON text)."""
    return VistaDiferencia(
        id=row["id"],
        conciliacion=row["conciliacion"],
        clase=row["clase"],
        id_pago=_uuid(row["id_pago"]),
        id_reverso=_uuid(row["id_reverso"]),
        referencia=row["referencia"],
        servicio=json.loads(row["servicio"]),
        pasarela=json.loads(row["pasarela"]),
        creada=row["creada"],
        resuelta_en=row["resuelta_en"],
        resuelta_por=row["resuelta_por"],
        nota=row["nota"],
    )
