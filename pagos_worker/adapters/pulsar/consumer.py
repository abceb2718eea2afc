"""Commands from a Pulsar subscription, handed to the event loop with backpressure.

A receiving thread takes a slot before each message and the worker gives it back when the message
is settled, so no more than `capacity` commands are ever in flight in this replica.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulsar
import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Entrega:
    """One delivery of a command message."""

    data: bytes
    properties: dict[str, str]
    key: str | None
    message_id: str
    redelivery_count: int
    topic: str
    raw: Any
    publicado_ms: int = 0  # when the publisher's broker stored it (ms since the epoch)


class PulsarCommandSource:
    def __init__(self, consumer: pulsar.Consumer, *, capacity: int) -> None:
        self._consumer = consumer
        self._slots = threading.Semaphore(capacity)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Entrega], None]) -> None:
        self._thread = threading.Thread(
            target=self._receive_loop, args=(loop, deliver), name="pulsar-receive", daemon=True
        )
        self._thread.start()

    async def stop_receiving(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    def ack(self, entrega: Entrega) -> None:
        self._consumer.acknowledge(entrega.raw)

    def nack(self, entrega: Entrega) -> None:
        self._consumer.negative_acknowledge(entrega.raw)

    def release(self) -> None:
        """Give back the slot taken for a message once it has been settled."""
        self._slots.release()

    async def close(self) -> None:
        await asyncio.to_thread(self._consumer.close)

    def is_connected(self) -> bool:
        return bool(self._consumer.is_connected())

    def _receive_loop(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Entrega], None]) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.2):
                continue
            try:
                msg = self._consumer.receive(timeout_millis=200)
            except pulsar.Timeout:
                self._slots.release()
                continue
            except pulsar.AlreadyClosed:
                self._slots.release()
                return
            except Exception as exc:  # noqa: BLE001 - keep receiving; the client reconnects
                self._slots.release()
                log.warning("pulsar.receive_error", error=repr(exc))
                self._stop.wait(0.5)
                continue
            try:
                loop.call_soon_threadsafe(deliver, _entrega(msg))
            except RuntimeError:  # loop closed: the message is redelivered after we disconnect
                return


def _entrega(msg: pulsar.Message) -> Entrega:
    return Entrega(
        data=msg.data(),
        properties=dict(msg.properties()),
        key=msg.partition_key() or None,
        message_id=str(msg.message_id()),
        redelivery_count=msg.redelivery_count(),
        topic=msg.topic_name(),
        raw=msg,
        publicado_ms=msg.publish_timestamp(),
    )
