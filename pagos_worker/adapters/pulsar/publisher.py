"""`EventPublisher` on a Pulsar producer: a whole lot sent at once, one answer from the client.

Two ways to learn that a lot was stored:

- `por_lote` (events): the messages go without a callback each, followed by one flush whose answer
  covers them all — the producer's queue is ordered, so the last message confirmed means every one
  before it was. A callback per message cost the client's I/O thread the GIL (and a new Python
  thread state) for every message, which the event loop then had to wait for.
- per message (dead letters: rare, and possibly large): a callback for each, so a message the client
  refuses at once (too big) fails its lot instead of going unseen.

What the client can refuse at once without a callback to say so is a full queue; it is kept from
happening: no more messages are sent than the queue holds while any earlier one may still be in it.
A lot that did not come back confirmed keeps its place until its messages must have left the queue
(sent or timed out), and while the producer is not connected nothing is queued at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from typing import Any

import _pulsar  # type: ignore[import-not-found]
import pulsar

from pagos_worker.application.ports.outbox import Message

MAX_PENDIENTES = 10_000  # the producer's queue (max_pending_messages)


class PublishError(RuntimeError):
    """The broker did not store every message of a lot."""


class _Lote:
    """The client's answers for one lot, on its thread; resolves `future` on the loop once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, n: int, respuestas: int) -> None:
        self._loop = loop
        self.n = n
        self._faltan = respuestas
        self._error: str | None = None
        self._lock = threading.Lock()
        self.future: asyncio.Future[None] = loop.create_future()

    def respuesta(self, resultado: Any, *_: Any) -> None:  # noqa: ANN401 - the client's Result (and MessageId)
        with self._lock:
            if resultado != pulsar.Result.Ok and self._error is None:
                self._error = str(resultado)
            self._faltan -= 1
            if self._faltan:
                return
        # RuntimeError: the loop is gone (shutdown) and nobody waits any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self.resolver, self._error)

    def resolver(self, error: str | None) -> None:
        if self.future.done():
            return
        if error is None:
            self.future.set_result(None)
        else:
            self.future.set_exception(PublishError(f"{self.n} sin confirmar: {error}"))


def mensaje_pulsar(mensaje: Message) -> Any:  # noqa: ANN401 - the client's Message
    builder = _pulsar.MessageBuilder()
    builder.content(mensaje.payload)
    for clave, valor in mensaje.properties.items():
        builder.property(clave, valor)
    if mensaje.key:
        builder.partition_key(mensaje.key)
    return builder.build()


class PulsarPublisher:
    def __init__(self, producer: pulsar.Producer, *, send_timeout_seconds: float, por_lote: bool = True) -> None:
        self._producer = producer
        self._nativo = producer._producer  # noqa: SLF001 - sends without a Python callback per message
        self._por_lote = por_lote
        # A message not confirmed is out of the client's queue at most this long after it was sent.
        self._retener_s = send_timeout_seconds + 1.0
        self._pendientes = 0
        self._hay_sitio = asyncio.Event()

    async def publicar(self, mensajes: Sequence[Message]) -> None:
        for inicio in range(0, len(mensajes), MAX_PENDIENTES):
            await self._publicar(mensajes[inicio : inicio + MAX_PENDIENTES])

    async def _publicar(self, mensajes: Sequence[Message]) -> None:
        if not mensajes:
            return
        if not self._producer.is_connected():
            raise PublishError(f"{len(mensajes)} sin enviar: el productor no está conectado")
        while self._pendientes + len(mensajes) > MAX_PENDIENTES:
            self._hay_sitio.clear()
            await self._hay_sitio.wait()
        loop = asyncio.get_running_loop()
        n = len(mensajes)
        lote = _Lote(loop, n, 1 if self._por_lote else n)
        self._pendientes += n
        try:
            for m in mensajes:
                self._nativo.send_async(mensaje_pulsar(m), None if self._por_lote else lote.respuesta)
            if self._por_lote:
                self._nativo.flush_async(lote.respuesta)
        except Exception as exc:  # noqa: BLE001 - e.g. the producer is closed: the lot failed
            lote.resolver(f"{exc!r}")
        try:
            await lote.future
        except BaseException:
            # Some of its messages may still be in the client's queue: their place is kept until
            # they must have left it.
            loop.call_later(self._retener_s, self._liberar, n)
            raise
        self._liberar(n)

    def _liberar(self, n: int) -> None:
        self._pendientes -= n
        self._hay_sitio.set()

    def is_connected(self) -> bool:
        return bool(self._producer.is_connected())

    async def close(self) -> None:
        await asyncio.to_thread(self._producer.close)


def is_transient(exc: BaseException) -> bool:
    """A lot the broker did not store: an outage of the broker (or of the way to it), which heals."""
    return isinstance(exc, PublishError)
