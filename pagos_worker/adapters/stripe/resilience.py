"""Client-side rate limit, circuit breaker and backoff for the gateway adapter.

They live here, in the adapter that owns them, and nowhere else: one place for each policy.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from enum import StrEnum


class TokenBucket:
    """At most `rate` acquisitions a second on average, `burst` at once. Callers are served in
    arrival order: each reserves the next free instant and sleeps until it (GCRA)."""

    def __init__(self, rate: float, burst: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._tat = 0.0  # theoretical arrival time of the next request

    def reserve(self) -> float:
        """Reserve a slot; return how long to wait for it (0 when it is free now)."""
        now = self._clock()
        tat = max(self._tat, now)
        self._tat = tat + self._interval
        return max(0.0, tat - self._tolerance - now)

    async def acquire(self) -> None:
        if (wait := self.reserve()) > 0:
            await asyncio.sleep(wait)


class EstadoCircuito(StrEnum):
    CERRADO = "cerrado"
    ABIERTO = "abierto"
    SEMIABIERTO = "semiabierto"


class CircuitoAbiertoError(Exception):
    """The gateway failed repeatedly; calls are refused until the circuit is probed again."""


class CircuitBreaker:
    """Opens after `umbral` consecutive transient failures. While open, calls are refused and
    `esperar_disponible` blocks; after `abierto_s` one probe call is let through: success closes
    the circuit, failure opens it again."""

    def __init__(self, umbral: int, abierto_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._umbral = umbral
        self._abierto_s = abierto_s
        self._clock = clock
        self._fallos = 0
        self._abierto_hasta = 0.0
        self._estado = EstadoCircuito.CERRADO
        self._sonda_en_curso = False
        self._cerrado = asyncio.Event()
        self._cerrado.set()

    @property
    def estado(self) -> EstadoCircuito:
        return self._estado

    def permitir(self) -> None:
        """Raise `CircuitoAbiertoError` unless a call may go to the gateway now."""
        if self._estado is EstadoCircuito.CERRADO:
            return
        if self._estado is EstadoCircuito.ABIERTO and self._clock() >= self._abierto_hasta:
            self._estado = EstadoCircuito.SEMIABIERTO
        if self._estado is EstadoCircuito.SEMIABIERTO and not self._sonda_en_curso:
            self._sonda_en_curso = True
            return
        raise CircuitoAbiertoError("la pasarela no responde: circuito abierto")

    def exito(self) -> None:
        self._fallos = 0
        self._sonda_en_curso = False
        if self._estado is not EstadoCircuito.CERRADO:
            self._estado = EstadoCircuito.CERRADO
            self._cerrado.set()

    def fallo(self) -> None:
        self._fallos += 1
        self._sonda_en_curso = False
        if self._estado is EstadoCircuito.SEMIABIERTO or self._fallos >= self._umbral:
            self._estado = EstadoCircuito.ABIERTO
            self._abierto_hasta = self._clock() + self._abierto_s
            self._cerrado.clear()

    async def esperar_disponible(self) -> None:
        """Block while the circuit is open, until it closes or a probe may be tried."""
        while not self._cerrado.is_set():
            if self._estado is EstadoCircuito.ABIERTO:
                restante = self._abierto_hasta - self._clock()
                if restante <= 0:
                    return
            else:  # half-open: someone is probing; wait for the verdict
                restante = self._abierto_s
            try:
                await asyncio.wait_for(self._cerrado.wait(), timeout=restante)
            except TimeoutError:
                if self._estado is EstadoCircuito.ABIERTO:
                    return


def backoff(intento: int, *, base: float, maximo: float) -> float:
    """Exponential backoff with full jitter for attempt `intento` (1 = first retry)."""
    return random.uniform(0, min(maximo, base * 2 ** (intento - 1)))  # noqa: S311 - jitter, not security
