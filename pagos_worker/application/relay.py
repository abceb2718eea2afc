"""The outbox relay: publishes committed events to the broker, oldest first, at least once."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import structlog

from pagos_worker.application.ports.outbox import EventPublisher, Mensaje, OutboxStore
from pagos_worker.clock import utcnow

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
        retencion: timedelta = timedelta(days=7),
        limpieza_cada: float = 60.0,
        agrupar: float = 0.0,
        reloj: Callable[[], datetime] = utcnow,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._lote = lote
        self._intervalo = intervalo
        self._espera_maxima_error = espera_maxima_error
        self._retencion = retencion
        self._limpieza_cada = limpieza_cada
        self._agrupar = agrupar
        self._reloj = reloj

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

    async def limpiar(self, lote: int = 5000) -> int:
        """Delete events published longer ago than the retention, a batch (one short transaction)
        at a time; return how many."""
        antes_de = self._reloj() - self._retencion
        total = 0
        while (borrados := await self._outbox.borrar_publicados(antes_de, lote)) > 0:
            total += borrados
            if borrados < lote:
                break
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set, and delete what is past its retention meanwhile."""
        limpieza = asyncio.create_task(self._limpiar_periodicamente(stop))
        try:
            await self._publicar_hasta(stop)
        finally:
            limpieza.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await limpieza

    async def _limpiar_periodicamente(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if borrados := await self.limpiar():
                    log.info("relay.limpieza", eventos_borrados=borrados)
            except Exception as exc:  # noqa: BLE001 - next time
                log.warning("relay.limpieza_error", error=repr(exc))
            await _esperar(stop, self._limpieza_cada)

    async def _publicar_hasta(self, stop: asyncio.Event) -> None:
        """Wake on new commits, poll every `intervalo` as a fallback, and back off (with jitter)
        while the broker or the database is unavailable."""
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
                if self._agrupar > 0:
                    # Let the commits of the next few milliseconds join this lot: under load, lots
                    # of dozens instead of ones cost far less, for a few ms of added latency.
                    await asyncio.sleep(self._agrupar)


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
