"""`PasarelaDePagos` simulated in process: latency, refusals, and a concurrency limit."""

from __future__ import annotations

import asyncio
import random
from uuid import UUID

from pagos_dev.simulacion import Latencia, rechazo, sorteo
from pagos_worker.application.ports.pasarela import ResultadoPago
from pagos_worker.domain.pago import Pago
from pagos_worker.domain.reverso import Reverso


class SimuladaPasarelaDePagos:
    """Deterministic per payment, as a gateway with idempotency keys is: the same `id_pago` always
    gets the same outcome and reference, on every replica that shares the seed."""

    def __init__(self, *, latencia: Latencia, tasa_fallos: float, concurrencia: int, semilla: int = 0) -> None:
        self._latencia = latencia
        self._tasa_fallos = tasa_fallos
        self._semilla = semilla
        self._limite = asyncio.Semaphore(concurrencia)
        self._rng = random.Random(semilla)  # noqa: S311 - simulation, not security
        self._pagados: dict[UUID, str] = {}
        self._revertidos: dict[UUID, str] = {}

    async def buscar_transferencia(self, pago: Pago) -> str | None:
        """What this process paid for it (a replica that did not pay it says None, and the same
        seed then gives it the same outcome)."""
        return self._pagados.get(pago.id_pago)

    async def esperar_disponible(self) -> None:
        """No circuit breaker here: always available."""

    async def revertir(self, reverso: Reverso) -> ResultadoPago:
        """Every reversal goes through, after the same latency as a payout (no balances here: the
        HTTP simulator models those)."""
        async with self._limite:
            await asyncio.sleep(self._latencia.muestra(self._rng))
        referencia = f"simrev_{int(sorteo(self._semilla, reverso.id_reverso) * 2**64):016x}"
        self._revertidos[reverso.id_reverso] = referencia
        return ResultadoPago.exito(referencia)

    async def buscar_reverso(self, reverso: Reverso) -> str | None:
        return self._revertidos.get(reverso.id_reverso)

    async def procesar_pago(self, pago: Pago) -> ResultadoPago:
        async with self._limite:
            await asyncio.sleep(self._latencia.muestra(self._rng))
        mensaje = rechazo(self._semilla, pago.id_pago, self._tasa_fallos)
        if mensaje is not None:
            return ResultadoPago.fallo(mensaje)
        referencia = f"sim_{int(sorteo(self._semilla, pago.id_pago) * 2**64):016x}"
        self._pagados[pago.id_pago] = referencia
        return ResultadoPago.exito(referencia)
