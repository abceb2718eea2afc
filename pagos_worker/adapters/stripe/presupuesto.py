"""The Stripe account's request budget, shared by every replica.

Stripe limits requests per account (100 a second in live mode by default, 25 in test mode), not
per process: a budget of each replica's own would let four replicas send four times the account's
and collect 429s. Here the replicas take turns from one schedule kept where they all are already
(`ReservaDeTurnos`: a row in PostgreSQL), a generic cell rate algorithm (GCRA): the account's next
free instant (`tat`) moves forward by one interval per request reserved, whoever reserves it.

A replica reserves a few turns at a time (what waits now, or what it used in the last horizon,
whichever is more, at most a horizon's worth of the budget) and hands them out in order; it does
not reserve again while its last turn is more than half a horizon ahead, so no replica books the
account's next minutes while the others wait. At 100 requests a second that is one short statement
for about ten requests, account-wide.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

HORIZONTE_S = 0.1  # how far ahead a replica reserves: one statement per this much of the budget
_VENTANA_USO_S = 10.0  # the budget use gauge: reservations of the last this many seconds


class PresupuestoNoDisponibleError(Exception):
    """The account's schedule could not be read: no turn, so no request may be sent."""


class ReservaDeTurnos(Protocol):
    async def reservar(self, n: int, intervalo_s: float, tolerancia_s: float) -> tuple[float, int]:
        """Reserve the account's next `n` turns, one interval apart; a burst of `tolerancia_s` /
        `intervalo_s` + 1 turns may start at once after a quiet spell. One atomic step shared by
        every replica. Returns when the first turn is, in seconds from now (negative: free
        already), and how many turns the account has had reserved in all, by every replica."""
        ...


class Presupuesto(Protocol):
    async def acquire(self) -> None:
        """Return when a request may be sent; raise when the budget cannot be read (nothing may be sent)."""
        ...


class PresupuestoDeCuenta:
    """At most `rate` requests a second for the account across every replica that shares
    `reserva`, `burst` at once after a quiet spell (plus, on one replica, the few turns of its last
    horizon that its callers reached late). Callers wait in arrival order, each until its turn."""

    def __init__(
        self,
        reserva: ReservaDeTurnos,
        rate: float,
        burst: int = 1,
        *,
        horizonte_s: float = HORIZONTE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._reserva = reserva
        self._rate = rate
        self._intervalo = 1.0 / rate
        self._tolerancia = (burst - 1) * self._intervalo
        self._horizonte = horizonte_s
        self._lote_max = max(1, math.ceil(rate * horizonte_s))
        self._clock = clock
        self._turnos: deque[float] = deque()  # this replica's reserved turns, local clock
        self._ultimo = -math.inf  # the last turn reserved
        self._esperando = 0
        self._tomados = 0  # turns handed out since the last reservation
        self._reservado_en = clock()
        self._lock = asyncio.Lock()
        self._intentos = 0  # reservations done, whether they failed or not
        self._falla: str | None = None  # why the last one failed, while it is the last
        self._muestras: deque[tuple[float, int]] = deque()  # (when, the account's turns reserved)

    async def acquire(self) -> None:
        self._esperando += 1
        try:
            turno = await self._siguiente()
        finally:
            self._esperando -= 1
        if (espera := turno - self._clock()) > 0:
            await asyncio.sleep(espera)

    async def _siguiente(self) -> float:
        while True:
            ahora = self._clock()
            # A turn nobody took in time is dropped, not saved up: saved, it would make a burst.
            while self._turnos and self._turnos[0] < ahora - self._horizonte:
                self._turnos.popleft()
            if self._turnos:
                self._tomados += 1
                return self._turnos.popleft()
            intentos = self._intentos
            async with self._lock:
                if self._turnos:
                    continue
                if self._falla is not None and self._intentos != intentos:
                    # The reservation this caller waited on failed: so does it, at once, instead of
                    # each waiting caller trying (and waiting) in turn while the store is down.
                    raise PresupuestoNoDisponibleError(self._falla) from None
                try:
                    await self._reponer()
                except Exception as exc:
                    self._falla = f"{type(exc).__name__}: {exc}"[:200]
                    self._intentos += 1
                    raise
                # Cancelled meanwhile: not counted, so whoever waited tries for itself.
                self._falla = None
                self._intentos += 1

    async def _reponer(self) -> None:
        if (adelanto := self._ultimo - self._clock() - self._horizonte / 2) > 0:
            await asyncio.sleep(adelanto)  # meanwhile the other replicas take their turns
        ahora = self._clock()
        usados = self._tomados * self._horizonte / max(ahora - self._reservado_en, self._horizonte)
        n = min(self._lote_max, max(self._esperando, math.ceil(usados)))
        desde_s, reservados = await self._reserva.reservar(n, self._intervalo, self._tolerancia)
        ahora = self._clock()
        primero = ahora + desde_s  # in the past after a quiet spell: the burst's turns are free now
        self._turnos.extend(max(ahora, primero + i * self._intervalo) for i in range(n))
        self._ultimo = primero + (n - 1) * self._intervalo
        self._tomados, self._reservado_en = 0, ahora
        if self._muestras and reservados < self._muestras[-1][1]:
            self._muestras.clear()  # the schedule started again (its table is emptied by a crash)
        self._muestras.append((ahora, reservados))
        while self._muestras[0][0] < ahora - _VENTANA_USO_S and len(self._muestras) > 2:  # noqa: PLR2004
            self._muestras.popleft()

    def uso(self) -> float:
        """The share of the account's budget reserved over the last seconds by every replica, as
        this replica last saw it; 0 when it reserved nothing lately (it cannot tell then)."""
        ahora = self._clock()
        if len(self._muestras) < 2 or self._muestras[-1][0] < ahora - _VENTANA_USO_S:  # noqa: PLR2004
            return 0.0
        (t0, r0), (t1, r1) = self._muestras[0], self._muestras[-1]
        return max(0.0, min(1.0, (r1 - r0) / max(t1 - t0, 1e-9) / self._rate))
