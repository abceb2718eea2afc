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


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(Exception):
    """The gateway failed repeatedly; calls are refused until the circuit is probed again."""


class CircuitBreaker:
    """Opens after `umbral` consecutive transient failures. While open, calls are refused and
    `esperar_disponible` blocks; after `abierto_s` one probe call is let through: success closes
    the circuit, failure opens it again."""

    def __init__(self, umbral: int, abierto_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = umbral
        self._open_s = abierto_s
        self._clock = clock
        self._failures = 0
        self._open_until = 0.0
        self._state = CircuitState.CLOSED
        self._probing = False
        self._sonda = 0  # the number of the last probe let through
        self._closed = asyncio.Event()
        self._closed.set()

    @property
    def state(self) -> CircuitState:
        return self._state

    def allow(self) -> int:
        """Raise `CircuitOpenError` unless a call may go to the gateway now. Not 0 when the call is
        the half-open circuit's probe (the probe's number): its caller owes a verdict (`success`,
        `failure`) or, if it sent nothing after all, `release` with that number."""
        if self._state is CircuitState.CLOSED:
            return 0
        if self._state is CircuitState.OPEN and self._clock() >= self._open_until:
            self._state = CircuitState.HALF_OPEN
        if self._state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            self._sonda += 1
            return self._sonda
        raise CircuitOpenError("la pasarela no responde: circuito abierto")

    def release(self, sonda: int) -> None:
        """Probe `sonda` was not sent (no turn of the budget, no lease left, cancelled): the next call
        probes instead. Without this the circuit would wait for a verdict that never comes. A probe
        whose turn is over (another one's verdict came meanwhile, and a later probe is out) is not
        the current one: releasing it changes nothing."""
        if sonda == self._sonda and self._state is CircuitState.HALF_OPEN and self._probing:
            self._probing = False
            self._state = CircuitState.OPEN
            self._open_until = self._clock()

    def success(self) -> None:
        self._failures = 0
        self._probing = False
        if self._state is not CircuitState.CLOSED:
            self._state = CircuitState.CLOSED
            self._closed.set()

    def failure(self) -> None:
        self._failures += 1
        self._probing = False
        if self._state is CircuitState.HALF_OPEN or self._failures >= self._threshold:
            self._state = CircuitState.OPEN
            self._open_until = self._clock() + self._open_s
            self._closed.clear()

    async def esperar_disponible(self) -> None:
        """Block while the circuit is open, until it closes or a probe may be tried."""
        while not self._closed.is_set():
            if self._state is CircuitState.OPEN:
                restante = self._open_until - self._clock()
                if restante <= 0:
                    return
            else:  # half-open: someone is probing; wait for the verdict (or for it to be released)
                restante = min(self._open_s, _VERDICT_POLL_S)
            try:
                await asyncio.wait_for(self._closed.wait(), timeout=restante)
            except TimeoutError:
                if self._state is CircuitState.OPEN:
                    return


_VERDICT_POLL_S = 1.0


def backoff(attempt: int, *, base: float, maximo: float) -> float:
    """Exponential backoff with full jitter for attempt `attempt` (1 = first retry)."""
    return random.uniform(0, min(maximo, base * 2 ** (attempt - 1)))  # noqa: S311 - jitter, not security
