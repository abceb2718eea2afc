"""The Stripe account's request schedule (GCRA), one row per account mode, shared by every replica.

One statement per reservation, atomic under the row's lock: the account's next free instant moves
forward by `n` intervals, from now less the burst tolerance if the account was quiet. Instants are
the database's clock (epoch seconds), handed back relative to it: replicas' clocks never meet. The
next free instant is never taken as further ahead than `adelanto_max` (replicas book a tenth of a
second each, so it is never that far unless the database's clock stepped back or the row is
wrong): a step of the clock costs at most that wait, not its size.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker.adapters.postgres.driver import PreparedStatement, fetch

_RESERVAR = PreparedStatement(
    text("""
INSERT INTO presupuesto_pasarela AS p (cuenta, tat, reservados)
VALUES (
    CAST(:cuenta AS text),
    extract(epoch FROM clock_timestamp()) - CAST(:tolerancia AS float8)
        + CAST(:n AS integer) * CAST(:intervalo AS float8),
    CAST(:n AS integer)
)
ON CONFLICT (cuenta) DO UPDATE
    SET tat = least(
                  greatest(p.tat, EXCLUDED.tat - CAST(:n AS integer) * CAST(:intervalo AS float8)),
                  EXCLUDED.tat - CAST(:n AS integer) * CAST(:intervalo AS float8)
                      + CAST(:tolerancia AS float8) + CAST(:adelanto_max AS float8)
              ) + CAST(:n AS integer) * CAST(:intervalo AS float8),
        reservados = p.reservados + EXCLUDED.reservados
RETURNING tat - CAST(:n AS integer) * CAST(:intervalo AS float8) - extract(epoch FROM clock_timestamp()) AS desde_s,
          reservados
""")
)


class PostgresReservaDeTurnos:
    """`ReservaDeTurnos` on the `presupuesto_pasarela` table, for the account named `cuenta`.

    A reservation takes a few milliseconds; one that has no answer within `timeout_s`, a pooled
    connection included (a frozen connection, a server that stopped answering, an exhausted pool),
    fails rather than hold up every call behind it."""

    def __init__(
        self, engine: AsyncEngine, cuenta: str, *, timeout_s: float = 2.0, adelanto_max_s: float = 10.0
    ) -> None:
        self._engine = engine
        self._cuenta = cuenta
        self._timeout_s = timeout_s
        self._adelanto_max_s = adelanto_max_s

    async def reservar(self, n: int, intervalo_s: float, tolerancia_s: float) -> tuple[float, int]:
        params = {
            "cuenta": self._cuenta,
            "n": n,
            "intervalo": intervalo_s,
            "tolerancia": tolerancia_s,
            "adelanto_max": self._adelanto_max_s,
        }
        (fila,) = await fetch(self._engine, _RESERVAR, params, timeout=self._timeout_s)
        return float(fila["desde_s"]), int(fila["reservados"])
