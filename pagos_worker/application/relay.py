"""The outbox relay: publishes committed events to the broker, oldest first, at least once; and the
immediate publication of a worker's own events right after their commit, which the relay backs up."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog

from pagos_worker.application.ports.outbox import EventPublisher, OutboxEvent, OutboxStore
from pagos_worker.clock import utcnow

log = structlog.get_logger(__name__)


class ImmediatePublisher:
    """Publishes the events a worker has just committed at once, from the process that committed
    them, instead of leaving them for a relay to find: no wake-up, no query, no waiting to gather a
    lot (the group commit already made one). The outbox stays the record: what is not published here
    (the broker away, the process killed) a relay publishes once the grace period has passed, and a
    publication whose mark is lost is repeated with the same `event_id` — at least once, as ever."""

    def __init__(
        self,
        outbox: OutboxStore,
        publisher: EventPublisher,
        *,
        reintentar_durante: timedelta = timedelta(0),
        reloj: Callable[[], datetime] = utcnow,
    ) -> None:
        """`reintentar_durante`: a failed publication is tried again (with backoff) while its events
        are younger than this — a broker restart of a second or two should not cost the grace
        period; keep it under the grace period less the publisher's send timeout, so that a relay
        never takes over events this process is still publishing."""
        self._outbox = outbox
        self._publisher = publisher
        self._reintentar_durante = reintentar_durante
        self._reloj = reloj
        self._tareas: set[asyncio.Task[None]] = set()
        self._juntos: list[OutboxEvent] = []

    @property
    def en_curso(self) -> int:
        return len(self._tareas) + bool(self._juntos)

    def encolar(self, eventos: Sequence[OutboxEvent]) -> None:
        """Called on the event loop with events just committed; returns at once. What is queued in
        one turn of the loop goes out as one lot: the payments of a group commit resume together,
        so their events leave together, as the commit wrote them."""
        if not eventos:
            return
        if not self._juntos:
            asyncio.get_running_loop().call_soon(self._lanzar)
        self._juntos.extend(eventos)

    def _lanzar(self) -> None:
        eventos, self._juntos = self._juntos, []
        if not eventos:
            return  # `drenar` launched them already
        # The lot is many payments': its task runs in a context of its own, not in that of the
        # payment that happened to come first (whose trace id its log lines would carry).
        tarea = asyncio.get_running_loop().create_task(self._publicar(eventos), context=contextvars.Context())
        self._tareas.add(tarea)
        tarea.add_done_callback(self._tareas.discard)

    async def _publicar(self, eventos: Sequence[OutboxEvent]) -> None:
        creados = [e.creado_en for e in eventos if e.creado_en is not None]
        limite = min(creados, default=self._reloj()) + self._reintentar_durante
        intento = 0
        while True:
            try:
                await self._publisher.publicar(eventos)
                break
            except Exception as exc:  # noqa: BLE001 - tried again, then left to the relays
                intento += 1
                espera = min(1.0, 0.1 * 2 ** (intento - 1)) * random.uniform(0.5, 1.0)  # noqa: S311
                if self._reloj() + timedelta(seconds=espera) >= limite:
                    log.warning("publicacion_inmediata.error", eventos=len(eventos), intentos=intento, error=repr(exc))
                    return
                await asyncio.sleep(espera)
        try:
            await self._outbox.marcar_publicados(eventos, self._reloj())
        except Exception as exc:  # noqa: BLE001 - published, not marked: a relay publishes them again
            log.warning("publicacion_inmediata.sin_marcar", eventos=len(eventos), error=repr(exc))

    async def drenar(self, timeout: float) -> None:
        """Wait (up to `timeout` s) for what is being published; on shutdown, after the last commit."""
        if self._juntos:
            self._lanzar()
        if self._tareas:
            await asyncio.wait(set(self._tareas), timeout=timeout)


class OutboxRelay:
    """Safe to run in several processes at once: each lot is reserved (skip-locked) by one relay.

    Events a process publishes itself (`ImmediatePublisher`, owner `propio`) are left to it for
    `gracia`; the relay of that same process takes its own leftovers at once only in `vaciar`."""

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
        gracia: timedelta = timedelta(seconds=5),
        propio: str | None = None,
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
        self._gracia = gracia
        self._propio = propio
        self._reloj = reloj

    async def publicar_pendientes(self, *, propios: bool = False) -> int:
        """Publish one lot of pending events; return how many were published. `propios`: this
        process's own too, however young (when nothing of it publishes them any more)."""
        propio = self._propio if propios else None
        async with self._outbox.reservar_pendientes(self._lote, gracia=self._gracia, propio=propio) as lote:
            if not lote.eventos:
                return 0
            await self._publisher.publicar(lote.eventos)
            await lote.marcar_publicados(self._reloj())
            return len(lote.eventos)

    async def vaciar(self) -> int:
        """Publish until nothing is pending (used on shutdown, after this process's last commit)."""
        total = 0
        while publicados := await self.publicar_pendientes(propios=True):
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
