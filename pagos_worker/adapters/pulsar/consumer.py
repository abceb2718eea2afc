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

# At capacity, slots are handed back to the receiving thread in lots of up to this many, or what
# came back within `_REFILL_WAIT_S`, whichever first (`_take_slot`): at 2,000 payments/s, about ten
# every 5 ms.
_REFILL_MAX = 50
_REFILL_WAIT_S = 0.005


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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Deliveries wait here for the loop; one wake-up carries all that arrived meanwhile.
        self._ready: collections.deque[PulsarDelivery] = collections.deque()
        self._lock = threading.Lock()
        self._slot_free = threading.Condition(self._lock)  # notified as slots come back (`release`)
        self._refill = max(1, min(capacity // 20, _REFILL_MAX))
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
            free = self._capacity - self._in_use
            if free in {1, self._refill}:  # the first one back wakes the thread; the refill ends its wait
                self._slot_free.notify()

    def _take_slot(self) -> bool:
        """A slot for the next message. At capacity, wait for one to come back and then up to
        `_REFILL_WAIT_S` for `_refill` of them, which the thread then takes one after the other
        without waiting: woken for each slot, it would take the GIL from the event loop once a
        payment (2,000 times a second with 10,000 payments in flight on a slow gateway)."""
        with self._lock:
            if self._in_use >= self._capacity:
                if not self._slot_free.wait_for(self._has_slot, timeout=0.2):
                    return False
                self._slot_free.wait_for(self._has_refill, timeout=_REFILL_WAIT_S)
            self._in_use += 1
        return True

    def _has_slot(self) -> bool:
        return self._in_use < self._capacity

    def _has_refill(self) -> bool:
        return self._capacity - self._in_use >= self._refill

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
                try:
                    self.nack(delivery)  # redelivered later
                finally:
                    self.release()  # its slot is free again, whatever the nack did
