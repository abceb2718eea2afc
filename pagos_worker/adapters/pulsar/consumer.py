"""Commands from a Pulsar subscription, handed to the event loop with backpressure.

A receiving thread takes a slot before each message and the worker gives it back when the message
is settled, so no more than `capacity` commands are ever in flight in this replica.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import threading
from collections.abc import Callable
from typing import Any, cast

import pulsar
import structlog

from pagos_worker.application.ports.command_source import Delivery

log = structlog.get_logger(__name__)


class PulsarDelivery:
    """A delivery copied out of the client's message at once, keeping the message id (for the ack)
    instead of the message: the native message keeps its metadata, about 0.8 KB a command, for as
    long as its payment is in flight (thousands of them in a replica with a slow gateway)."""

    __slots__ = ("_key", "_properties", "data", "id", "publicado_ms", "redelivery_count", "topic")

    def __init__(self, msg: Any) -> None:  # noqa: ANN401 - the client's native Message
        self.id = msg.message_id()
        self.data: bytes = msg.data()
        self.redelivery_count: int = msg.redelivery_count()
        self.publicado_ms: int = msg.publish_timestamp()
        self._key: str = msg.partition_key()
        self._properties: dict[str, str] | None = msg.properties() or None  # almost always none
        self.topic: str = sys.intern(msg.topic_name())  # one string per topic, not per delivery

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._properties or {})

    @property
    def key(self) -> str | None:
        return self._key or None

    @property
    def message_id(self) -> str:
        return str(self.id)


class PulsarCommandSource:
    def __init__(self, consumer: pulsar.Consumer, *, capacity: int) -> None:
        self._consumer = consumer
        # The native consumer under the Python wrapper: no wrapper object per message, and acks
        # that do not wait for the client's answer (it groups them anyway; an ack that is lost
        # means a redelivery, which the claim absorbs).
        self._native = consumer._consumer  # noqa: SLF001
        self._capacity = capacity
        self._in_use = 0
        self._has_slot = threading.Event()  # set while fewer than `capacity` are in flight
        self._has_slot.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Deliveries wait here for the loop; one wake-up carries all that arrived meanwhile.
        self._ready: collections.deque[PulsarDelivery] = collections.deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def start(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Delivery], None]) -> None:
        self._thread = threading.Thread(
            target=self._receive_loop, args=(loop, deliver), name="pulsar-receive", daemon=True
        )
        self._thread.start()

    async def stop_receiving(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    def ack(self, delivery: Delivery) -> None:
        self._native.acknowledge_async(cast("PulsarDelivery", delivery).id, None)

    def nack(self, delivery: Delivery) -> None:
        self._native.negative_acknowledge(cast("PulsarDelivery", delivery).id)

    def release(self) -> None:
        """Give back the slot taken for a message once it has been settled."""
        with self._lock:
            self._in_use -= 1
            if self._in_use < self._capacity:
                self._has_slot.set()

    def _take_slot(self) -> bool:
        if not self._has_slot.wait(timeout=0.2):
            return False
        with self._lock:
            self._in_use += 1
            if self._in_use >= self._capacity:
                self._has_slot.clear()
        return True

    def _give_back_slot(self) -> None:
        self.release()

    async def close(self) -> None:
        await asyncio.to_thread(self._consumer.close)

    def is_connected(self) -> bool:
        return bool(self._consumer.is_connected())

    def _receive_loop(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Delivery], None]) -> None:
        while not self._stop.is_set():
            if not self._take_slot():
                continue
            try:
                msg = self._native.receive(200)
            except pulsar.Timeout:
                self._give_back_slot()
                continue
            except pulsar.AlreadyClosed:
                self._give_back_slot()
                return
            except Exception as exc:  # noqa: BLE001 - keep receiving; the client reconnects
                self._give_back_slot()
                log.warning("pulsar.receive_error", error=repr(exc))
                self._stop.wait(0.5)
                continue
            with self._lock:
                self._ready.append(PulsarDelivery(msg))
                if self._scheduled:
                    continue
                self._scheduled = True
            try:
                loop.call_soon_threadsafe(self._drain, deliver)
            except RuntimeError:  # loop closed: the messages are redelivered after we disconnect
                return

    def _drain(self, deliver: Callable[[Delivery], None]) -> None:
        with self._lock:
            ready = list(self._ready)
            self._ready.clear()
            self._scheduled = False
        for delivery in ready:
            try:
                deliver(delivery)
            except Exception:  # one failing must not strand the rest of the batch
                log.exception("pulsar.deliver_error")
                self.nack(delivery)  # redelivered later; its slot is free again
                self.release()
