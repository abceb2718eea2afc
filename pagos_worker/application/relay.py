"""The outbox relay: publishes committed events to the broker, oldest first, at least once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from typing import Any

import structlog

from pagos_worker.application.ports.outbox import EventPublisher, Mensaje, OutboxStore

log = structlog.get_logger(__name__)


class OutboxRelay:
    """Safe to run in several processes at once: each lot is reserved (skip-locked) by one relay."""

    def __init__(
        self,
        outbox: OutboxStore,
        publisher: EventPublisher,
        *,
        lote: int = 500,
        intervalo: float = 1.0,
        espera_maxima_error: float = 10.0,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._lote = lote
        self._intervalo = intervalo
        self._espera_maxima_error = espera_maxima_error

    async def publicar_pendientes(self) -> int:
        """Publish one lot of pending events; return how many were published."""
        async with self._outbox.reservar_pendientes(self._lote) as lote:
            if not lote.eventos:
                return 0
            await self._publisher.publicar(
                [
                    Mensaje(
                        payload=e.payload,
                        key=str(e.id_pago),
                        properties={"event_type": e.event_type, "event_id": str(e.event_id)},
                    )
                    for e in lote.eventos
                ]
            )
            await lote.marcar_publicados()
            return len(lote.eventos)

    async def vaciar(self) -> int:
        """Publish until nothing is pending (used on shutdown)."""
        total = 0
        while publicados := await self.publicar_pendientes():
            total += publicados
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set: wake on new commits, poll every `intervalo` as a fallback,
        and back off (with jitter) while the broker or the database is unavailable."""
        fallos = 0
        while not stop.is_set():
            try:
                publicados = await self.publicar_pendientes()
                fallos = 0
            except Exception as exc:  # noqa: BLE001 - any failure: retry the same lot later
                fallos += 1
                espera = min(self._espera_maxima_error, 0.1 * 2**fallos) * random.uniform(0.5, 1.0)  # noqa: S311
                log.warning("relay.error", error=repr(exc), reintento_en_s=round(espera, 2), fallos=fallos)
                await _esperar(stop, espera)
                continue
            if publicados < self._lote:
                await _primero(stop, self._outbox.esperar_nuevos(self._intervalo))


async def _esperar(stop: asyncio.Event, segundos: float) -> None:
    await _primero(stop, asyncio.sleep(segundos))


async def _primero(stop: asyncio.Event, espera: Coroutine[Any, Any, None]) -> None:
    """Wait for `espera` or for `stop`, whichever comes first."""
    tarea = asyncio.create_task(espera)
    parada = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({tarea, parada}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (tarea, parada):
            t.cancel()
