"""`RedriveLog` on PostgreSQL: the dead letters re-driven, by origin, and one re-drive at a time."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres.retry import retry_transient
from pagos_worker.application.ports.operador import Reenvio

_REENVIADOS = text("""
SELECT origen, carta, id_pago, motivo, operador, reenviado_en AS fecha, lote, veces FROM reenvios
WHERE origen = ANY(CAST(:origenes AS text[]))
""")

_REGISTRAR = text("""
INSERT INTO reenvios AS r (origen, carta, id_pago, motivo, operador, reenviado_en, lote, veces)
SELECT * FROM unnest(
    CAST(:origenes AS text[]), CAST(:cartas AS text[]), CAST(:ids AS uuid[]), CAST(:motivos AS text[]),
    CAST(:operadores AS text[]), CAST(:fechas AS timestamptz[]), CAST(:lotes AS uuid[]), CAST(:veces AS int[])
)
ON CONFLICT (origen) DO UPDATE
    SET carta = EXCLUDED.carta, id_pago = EXCLUDED.id_pago, motivo = EXCLUDED.motivo, operador = EXCLUDED.operador,
        reenviado_en = EXCLUDED.reenviado_en, lote = EXCLUDED.lote, veces = r.veces + 1
""")

# A session-level advisory lock, held on its own connection for the whole run: two operators (or
# two terminals) never re-drive at once, whatever machine they run on.
_CERROJO = 0x7061676F73_01  # "pagos" + 1
_TOMAR_CERROJO = text("SELECT pg_try_advisory_lock(:k)")
_SOLTAR_CERROJO = text("SELECT pg_advisory_unlock(:k)")


class PostgresRedriveLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def reenviados(self, origenes: Sequence[str]) -> dict[str, Reenvio]:
        if not origenes:
            return {}

        async def leer() -> dict[str, Reenvio]:
            async with self._engine.connect() as conn:
                rows = (await conn.execute(_REENVIADOS, {"origenes": list(origenes)})).mappings().all()
            return {row["origen"]: Reenvio(**row) for row in rows}

        return await retry_transient(leer)

    async def registrar(self, reenvios: Sequence[Reenvio]) -> None:
        params = {
            "origenes": [r.origen for r in reenvios],
            "cartas": [r.carta for r in reenvios],
            "ids": [r.id_pago for r in reenvios],
            "motivos": [r.motivo for r in reenvios],
            "operadores": [r.operador for r in reenvios],
            "fechas": [r.fecha for r in reenvios],
            "lotes": [r.lote for r in reenvios],
            "veces": [r.veces for r in reenvios],
        }

        async def escribir() -> None:
            async with self._engine.begin() as conn:
                await conn.execute(_REGISTRAR, params)

        await retry_transient(escribir)

    @contextlib.asynccontextmanager
    async def exclusivo(self) -> AsyncIterator[bool]:
        async with self._engine.connect() as conn:
            mio = bool(await conn.scalar(_TOMAR_CERROJO, {"k": _CERROJO}))
            await conn.commit()
            try:
                yield mio
            finally:
                if mio:
                    try:
                        await conn.scalar(_SOLTAR_CERROJO, {"k": _CERROJO})
                        await conn.commit()
                    except Exception:  # noqa: BLE001 - never back to the pool holding it: the lock goes with it
                        await conn.invalidate()
