"""Commands from a Pulsar subscription, handed to the event loop with backpressure.

A receiving thread takes a slot before each message and the worker gives it back when the message
is settled, so no more than `capacity` commands are ever in flight in this replica.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from typing import Any, cast

import pulsar
import structlog

from pagos_worker.application.ports.command_source import Delivery

log = structlog.get_logger(__name__)


class PulsarDelivery:
    """A delivery read lazily from the client's message: what every message needs is read at once,
    the rest (only dead letters and logs want it) when asked for."""

    __slots__ = ("data", "publicado_ms", "raw", "redelivery_count")

    def __init__(self, msg: Any) -> None:  # noqa: ANN401 - the client's native Message
        self.raw = msg
        self.data: bytes = msg.data()
        self.redelivery_count: int = msg.redelivery_count()
        self.publicado_ms: int = msg.publish_timestamp()

    @property
    def properties(self) -> dict[str, str]:
        return dict(self.raw.properties())

    @property
    def key(self) -> str | None:
        return self.raw.partition_key() or None

    @property
    def message_id(self) -> str:
        return str(self.raw.message_id())

    @property
    def topic(self) -> str:
        return str(self.raw.topic_name())


class PulsarCommandSource:
    def __init__(self, consumer: pulsar.Consumer, *, capacity: int) -> None:
        self._consumer = consumer
        # The native consumer under the Python wrapper: no wrapper object per message, and acks
        # that do not wait for the client's answer (it groups them anyway; an ack that is lost
        # means a redelivery, which the claim absorbs).
        self._nativo = consumer._consumer  # noqa: SLF001
        self._capacity = capacity
        self._en_uso = 0
        self._hay_cupo = threading.Event()  # set while fewer than `capacity` are in flight
        self._hay_cupo.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Deliveries wait here for the loop; one wake-up carries all that arrived meanwhile.
        self._listas: collections.deque[PulsarDelivery] = collections.deque()
        self._lock = threading.Lock()
        self._programado = False

    def start(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Delivery], None]) -> None:
        self._thread = threading.Thread(
            target=self._receive_loop, args=(loop, deliver), name="pulsar-receive", daemon=True
        )
        self._thread.start()

    async def stop_receiving(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    def ack(self, entrega: Delivery) -> None:
        self._nativo.acknowledge_async(cast("PulsarDelivery", entrega).raw, None)

    def nack(self, entrega: Delivery) -> None:
        self._nativo.negative_acknowledge(cast("PulsarDelivery", entrega).raw)

    def release(self) -> None:
        """Give back the slot taken for a message once it has been settled."""
        with self._lock:
            self._en_uso -= 1
            if self._en_uso < self._capacity:
                self._hay_cupo.set()

    def _tomar_cupo(self) -> bool:
        if not self._hay_cupo.wait(timeout=0.2):
            return False
        with self._lock:
            self._en_uso += 1
            if self._en_uso >= self._capacity:
                self._hay_cupo.clear()
        return True

    def _devolver_cupo(self) -> None:
        self.release()

    async def close(self) -> None:
        await asyncio.to_thread(self._consumer.close)

    def is_connected(self) -> bool:
        return bool(self._consumer.is_connected())

    def _receive_loop(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Delivery], None]) -> None:
        while not self._stop.is_set():
            if not self._tomar_cupo():
                continue
            try:
                msg = self._nativo.receive(200)
            except pulsar.Timeout:
                self._devolver_cupo()
                continue
            except pulsar.AlreadyClosed:
                self._devolver_cupo()
                return
            except Exception as exc:  # noqa: BLE001 - keep receiving; the client reconnects
                self._devolver_cupo()
                log.warning("pulsar.receive_error", error=repr(exc))
                self._stop.wait(0.5)
                continue
            with self._lock:
                self._listas.append(PulsarDelivery(msg))
                if self._programado:
                    continue
                self._programado = True
            try:
                loop.call_soon_threadsafe(self._vaciar, deliver)
            except RuntimeError:  # loop closed: the messages are redelivered after we disconnect
                return

    def _vaciar(self, deliver: Callable[[Delivery], None]) -> None:
        with self._lock:
            listas = list(self._listas)
            self._listas.clear()
            self._programado = False
        for entrega in listas:
            try:
                deliver(entrega)
            except Exception:  # one failing must not strand the rest of the batch
                log.exception("pulsar.deliver_error")
                self.nack(entrega)  # redelivered later; its slot is free again
                self.release()
