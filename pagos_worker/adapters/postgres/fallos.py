"""`FailureLog` on PostgreSQL: a row per message that failed for a reason of its own.

Written only on such failures, never on the hot path. Counts of messages that did not become
poison are deleted after `retencion`, a few at a time by the statement that counts the next failure
(so the table holds about what was written in that period, with no loop of its own); the records
of poison commands are kept for operators.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres.driver import PreparedStatement, fetch
from pagos_worker.application.ports.fallos import FalloDeComando

_COUNT = PreparedStatement(
    text("""
WITH caducados AS (
    DELETE FROM comandos_fallidos WHERE message_id IN (
        SELECT message_id FROM comandos_fallidos
        WHERE venenoso_desde IS NULL AND ultimo_fallo < clock_timestamp() - CAST(:retencion AS interval)
        ORDER BY ultimo_fallo LIMIT 20
    ) AND message_id <> CAST(:message_id AS text)
)
INSERT INTO comandos_fallidos AS f
    (message_id, id_pago, fallos, ultimo_error, primer_fallo, ultimo_fallo, venenoso_desde)
VALUES (
    CAST(:message_id AS text), CAST(:id_pago AS uuid), 1, CAST(:error AS text), clock_timestamp(),
    clock_timestamp(), CASE WHEN CAST(:limite AS integer) <= 1 THEN clock_timestamp() END
)
ON CONFLICT (message_id) DO UPDATE
    SET fallos = f.fallos + 1,
        id_pago = coalesce(EXCLUDED.id_pago, f.id_pago),
        ultimo_error = EXCLUDED.ultimo_error,
        ultimo_fallo = EXCLUDED.ultimo_fallo,
        venenoso_desde = CASE WHEN f.fallos + 1 >= CAST(:limite AS integer)
                              THEN coalesce(f.venenoso_desde, EXCLUDED.ultimo_fallo)
                              ELSE f.venenoso_desde END
RETURNING fallos
""")
)

_MAX_ERROR = 2000


class PostgresFailureLog:
    def __init__(self, engine: AsyncEngine, *, retencion: timedelta = timedelta(days=7)) -> None:
        self._engine = engine
        self._retencion = retencion

    async def contar_fallo(self, fallo: FalloDeComando, *, limite: int) -> int:
        params = {
            "message_id": fallo.message_id,
            "id_pago": fallo.id_pago,
            "error": storable_text(fallo.error)[:_MAX_ERROR],
            "limite": limite,
            "retencion": self._retencion,
        }
        rows = await fetch(self._engine, _COUNT, params)
        return int(rows[0]["fallos"])


def storable_text(texto: str) -> str:
    """What PostgreSQL's text takes: no NUL, no lone surrogate (an error message may quote the
    payload that caused it; recording it must not fail for the same reason)."""
    return texto.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
