"""`EventPublisher` on a Pulsar producer: a whole lot sent at once, one answer from the client.

Two ways to learn that a lot was stored:

- `per_lot` (events): the messages go without a callback each, followed by one flush whose answer
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

MAX_PENDING = 10_000  # the producer's queue (max_pending_messages)


class PublishError(RuntimeError):
    """The broker did not store every message of a lot."""


class _Lot:
    """The client's answers for one lot, on its thread; resolves `future` on the loop once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, n: int, answers: int) -> None:
        self._loop = loop
        self.n = n
        self._awaited = answers
        self._error: str | None = None
        self._lock = threading.Lock()
        self.future: asyncio.Future[None] = loop.create_future()

    def on_result(self, result: Any, *_: Any) -> None:  # noqa: ANN401 - the client's Result (and MessageId)
        with self._lock:
            if result != pulsar.Result.Ok and self._error is None:
                self._error = str(result)
            self._awaited -= 1
            if self._awaited:
                return
        # RuntimeError: the loop is gone (shutdown) and nobody waits any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self.resolve, self._error)

    def resolve(self, error: str | None) -> None:
        if self.future.done():
            return
        if error is None:
            self.future.set_result(None)
        else:
            self.future.set_exception(PublishError(f"{self.n} sin confirmar: {error}"))


def pulsar_message(message: Message) -> Any:  # noqa: ANN401 - the client's Message
    builder = _pulsar.MessageBuilder()
    builder.content(message.payload)
    for key, value in message.properties.items():
        builder.property(key, value)
    if message.key:
        builder.partition_key(message.key)
    return builder.build()


class PulsarPublisher:
    def __init__(self, producer: pulsar.Producer, *, send_timeout_seconds: float, per_lot: bool = True) -> None:
        self._producer = producer
        self._native = producer._producer  # noqa: SLF001 - sends without a Python callback per message
        self._per_lot = per_lot
        # A message not confirmed is out of the client's queue at most this long after it was sent.
        self._hold_s = send_timeout_seconds + 1.0
        self._pending = 0
        self._has_room = asyncio.Event()

    async def publicar(self, mensajes: Sequence[Message]) -> None:
        for start in range(0, len(mensajes), MAX_PENDING):
            await self._publish(mensajes[start : start + MAX_PENDING])

    async def _publish(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        if not self._producer.is_connected():
            raise PublishError(f"{len(messages)} sin enviar: el productor no está conectado")
        while self._pending + len(messages) > MAX_PENDING:
            self._has_room.clear()
            await self._has_room.wait()
        loop = asyncio.get_running_loop()
        n = len(messages)
        lot = _Lot(loop, n, 1 if self._per_lot else n)
        self._pending += n
        try:
            for m in messages:
                self._native.send_async(pulsar_message(m), None if self._per_lot else lot.on_result)
            if self._per_lot:
                self._native.flush_async(lot.on_result)
        except Exception as exc:  # noqa: BLE001 - e.g. the producer is closed: the lot failed
            lot.resolve(f"{exc!r}")
        try:
            await lot.future
        except BaseException:
            # Some of its messages may still be in the client's queue: their place is kept until
            # they must have left it.
            loop.call_later(self._hold_s, self._release, n)
            raise
        self._release(n)

    def _release(self, n: int) -> None:
        self._pending -= n
        self._has_room.set()

    def is_connected(self) -> bool:
        return bool(self._producer.is_connected())

    async def close(self) -> None:
        await asyncio.to_thread(self._producer.close)


def is_transient(exc: BaseException) -> bool:
    """A lot the broker did not store: an outage of the broker (or of the way to it), which heals."""
    return isinstance(exc, PublishError)
