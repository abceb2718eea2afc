"""`DiferenciaRepository` on PostgreSQL: closing a recorded difference is one statement, fenced on
it being still unresolved, timed by the database's clock."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres.retry import retry_transient
from pagos_worker.adapters.postgres.vistas_diferencias import COLUMNAS, de_fila
from pagos_worker.application.queries import VistaDiferencia

_RESOLVER = text(f"""
UPDATE diferencias d SET resuelta_en = clock_timestamp(), resuelta_por = :operador, nota = :nota
WHERE d.id = :id AND d.resuelta_en IS NULL
RETURNING {COLUMNAS}
""")  # noqa: S608 - fixed columns; every value is bound
_OBTENER = text(f"SELECT {COLUMNAS} FROM diferencias d WHERE d.id = :id")  # noqa: S608 - fixed columns


class PostgresDiferenciaRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def resolver(self, id_diferencia: int, *, operador: str, nota: str) -> VistaDiferencia | None:
        return await self._una(_RESOLVER, {"id": id_diferencia, "operador": operador, "nota": nota})

    async def obtener(self, id_diferencia: int) -> VistaDiferencia | None:
        return await self._una(_OBTENER, {"id": id_diferencia})

    async def _una(self, sentencia: Any, params: dict[str, Any]) -> VistaDiferencia | None:  # noqa: ANN401 - text()
        async def una_vez() -> VistaDiferencia | None:
            async with self._engine.begin() as conn:
                fila = (await conn.execute(sentencia, params)).mappings().first()
            return None if fila is None else de_fila(fila)

        return await retry_transient(una_vez)
