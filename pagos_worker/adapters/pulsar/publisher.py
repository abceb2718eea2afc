"""`EventPublisher` on a Pulsar producer: a whole lot sent at once, one answer from the client.

The messages of a lot are sent without a callback each and followed by one flush whose callback
says whether all of them were stored: the producer's queue is ordered, and a failure (a send
timeout, a closed producer) fails every message still pending, the last one included. A callback
per message cost the client's I/O thread the GIL (and a new Python thread state) for every message,
which the event loop then had to wait for. What a send can refuse at once (a full queue) is kept
from happening: no more than the queue holds is ever pending.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Sequence
from typing import Any

import _pulsar  # type: ignore[import-not-found]
import pulsar

from pagos_worker.application.ports.outbox import Mensaje

MAX_PENDIENTES = 10_000  # the producer's queue (max_pending_messages)


class PublicacionError(RuntimeError):
    """The broker did not store every message of a lot."""


class _Lote:
    """The flush's answer, on the client's thread; resolves `future` on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, n: int) -> None:
        self._loop = loop
        self.n = n
        self.future: asyncio.Future[None] = loop.create_future()

    def respuesta(self, resultado: Any) -> None:  # noqa: ANN401 - the client's Result
        # RuntimeError: the loop is gone (shutdown) and nobody waits any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._resolver, resultado)

    def _resolver(self, resultado: Any) -> None:  # noqa: ANN401 - the client's Result
        if self.future.done():
            return
        if resultado == pulsar.Result.Ok:
            self.future.set_result(None)
        else:
            self.future.set_exception(PublicacionError(f"{self.n} sin confirmar: {resultado}"))


def mensaje_pulsar(mensaje: Mensaje) -> Any:  # noqa: ANN401 - the client's Message
    builder = _pulsar.MessageBuilder()
    builder.content(mensaje.payload)
    for clave, valor in mensaje.properties.items():
        builder.property(clave, valor)
    if mensaje.key:
        builder.partition_key(mensaje.key)
    return builder.build()


class PulsarPublisher:
    def __init__(self, producer: pulsar.Producer) -> None:
        self._producer = producer
        self._nativo = producer._producer  # noqa: SLF001 - send without a Python callback per message
        self._pendientes = 0
        self._lotes: collections.deque[_Lote] = collections.deque()

    async def publicar(self, mensajes: Sequence[Mensaje]) -> None:
        for inicio in range(0, len(mensajes), MAX_PENDIENTES):
            await self._publicar(mensajes[inicio : inicio + MAX_PENDIENTES])

    async def _publicar(self, mensajes: Sequence[Mensaje]) -> None:
        if not mensajes:
            return
        while self._pendientes + len(mensajes) > MAX_PENDIENTES and self._lotes:
            with contextlib.suppress(PublicacionError):
                await asyncio.shield(self._lotes[0].future)
        lote = _Lote(asyncio.get_running_loop(), len(mensajes))
        self._pendientes += lote.n
        self._lotes.append(lote)
        lote.future.add_done_callback(lambda _: self._terminado(lote))
        try:
            for m in mensajes:
                self._nativo.send_async(mensaje_pulsar(m), None)
            self._nativo.flush_async(lote.respuesta)
        except Exception as exc:  # noqa: BLE001 - e.g. the producer is closed: the lot failed
            if not lote.future.done():
                lote.future.set_exception(PublicacionError(f"{lote.n} sin enviar: {exc!r}"))
        await lote.future

    def _terminado(self, lote: _Lote) -> None:
        self._pendientes -= lote.n
        with contextlib.suppress(ValueError):
            self._lotes.remove(lote)

    def is_connected(self) -> bool:
        return bool(self._producer.is_connected())

    async def close(self) -> None:
        await asyncio.to_thread(self._producer.close)
