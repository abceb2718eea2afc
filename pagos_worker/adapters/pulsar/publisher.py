"""`EventPublisher` on a Pulsar producer: a whole lot sent at once, one wake-up of the loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from typing import Any

import pulsar

from pagos_worker.application.ports.outbox import Mensaje


class PublicacionError(RuntimeError):
    """The broker did not store every message of a lot."""


class _Lote:
    """Counts the broker's answers on the client's thread; resolves `future` on the loop once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pendientes: int) -> None:
        self._loop = loop
        self._pendientes = pendientes
        self._errores: list[str] = []
        self._lock = threading.Lock()
        self.future: asyncio.Future[None] = loop.create_future()

    def respuesta(self, resultado: Any, _message_id: Any) -> None:  # noqa: ANN401 - client's callback
        with self._lock:
            if resultado != pulsar.Result.Ok:
                self._errores.append(str(resultado))
            self._pendientes -= 1
            terminado = self._pendientes == 0
        if terminado:
            # RuntimeError: the loop is gone (shutdown) and nobody waits any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._resolver)

    def _resolver(self) -> None:
        if self.future.done():
            return
        if self._errores:
            self.future.set_exception(PublicacionError(f"{len(self._errores)} sin publicar: {self._errores[0]}"))
        else:
            self.future.set_result(None)


class PulsarPublisher:
    def __init__(self, producer: pulsar.Producer) -> None:
        self._producer = producer

    async def publicar(self, mensajes: Sequence[Mensaje]) -> None:
        if not mensajes:
            return
        lote = _Lote(asyncio.get_running_loop(), len(mensajes))
        for m in mensajes:
            try:
                self._producer.send_async(m.payload, lote.respuesta, properties=dict(m.properties), partition_key=m.key)
            except Exception as exc:  # noqa: BLE001 - e.g. producer closed: this message failed
                lote.respuesta(exc, None)
        await lote.future

    def is_connected(self) -> bool:
        return bool(self._producer.is_connected())

    async def close(self) -> None:
        await asyncio.to_thread(self._producer.close)
