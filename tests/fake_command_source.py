"""A fake `CommandSource` that keeps a Pulsar subscription's rules, checked by the command source
contract suite (tests/integration/test_command_source_contract.py)."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import time
from collections.abc import Callable, Mapping, Sequence

from pagos_worker.application.ports.command_source import Delivery

TOPIC = "persistent://t/comandos"


@dataclasses.dataclass(frozen=True)
class FakeDelivery:
    data: bytes
    properties: dict[str, str]
    key: str | None
    message_id: str
    redelivery_count: int
    topic: str
    publicado_ms: int = 0


class FakeCommandSource:
    """One consumer of a subscription, in memory. Every message is delivered, at most `capacity` out
    at once until their slots are released; an acked one never again; a nacked one again after
    `nack_delay` seconds (Pulsar's client default: 60), one count higher; and those neither acked
    nor nacked again when the consumer closes (`close`; `start` again is the next consumer)."""

    def __init__(
        self,
        payloads: Sequence[bytes] = (),
        *,
        redelivery_count: int = 0,
        capacity: int = 10_000,
        nack_delay: float = 60.0,
        topic: str = TOPIC,
    ) -> None:
        self._capacity = capacity
        self._nack_delay = nack_delay
        self._topic = topic
        self._ids = itertools.count()
        self._cola: collections.deque[FakeDelivery] = collections.deque()
        self._fuera: dict[str, FakeDelivery] = {}  # delivered and not settled, by message id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Callable[[Delivery], None] | None = None
        self.publicados = 0  # messages stored on the topic so far
        self.acked: list[bytes] = []
        self.nacked: list[bytes] = []
        self.slots_in_use = 0
        for i, data in enumerate(payloads):
            self.publicar(data, key=f"k{i}", properties={"origen": "test"}, redelivery_count=redelivery_count)

    def publicar(
        self,
        data: bytes,
        *,
        key: str | None = None,
        properties: Mapping[str, str] | None = None,
        redelivery_count: int = 0,
    ) -> None:
        """A message stored on the subscription's topic."""
        self.publicados += 1
        ahora_ms = int(time.time() * 1000)
        self._cola.append(
            FakeDelivery(
                data, dict(properties or {}), key, f"{next(self._ids)}:0", redelivery_count, self._topic, ahora_ms
            )
        )
        self._bombear()

    def start(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Delivery], None]) -> None:
        self._loop, self._deliver = loop, deliver
        self._bombear()

    async def stop_receiving(self) -> None:
        self._deliver = None

    def ack(self, entrega: Delivery) -> None:
        self.acked.append(entrega.data)
        self._fuera.pop(entrega.message_id, None)

    def nack(self, entrega: Delivery) -> None:
        self.nacked.append(entrega.data)
        if (fuera := self._fuera.pop(entrega.message_id, None)) is not None and self._loop is not None:
            otra_vez = dataclasses.replace(fuera, redelivery_count=fuera.redelivery_count + 1)
            self._loop.call_later(self._nack_delay, self._devolver, otra_vez)

    def release(self) -> None:
        self.slots_in_use -= 1
        self._bombear()

    async def close(self) -> None:
        """The consumer goes: what it was given and did not settle goes back, first in line."""
        self._deliver = None
        vuelven = [dataclasses.replace(e, redelivery_count=e.redelivery_count + 1) for e in self._fuera.values()]
        self._cola.extendleft(reversed(vuelven))
        self._fuera.clear()
        self.slots_in_use = 0

    def _devolver(self, entrega: FakeDelivery) -> None:
        self._cola.append(entrega)
        self._bombear()

    def _bombear(self) -> None:
        while self._deliver is not None and self._loop is not None and self._cola:
            if self.slots_in_use >= self._capacity:
                return
            entrega = self._cola.popleft()
            self.slots_in_use += 1
            self._fuera[entrega.message_id] = entrega
            self._loop.call_soon(self._entregar, entrega)

    def _entregar(self, entrega: FakeDelivery) -> None:
        if self._fuera.get(entrega.message_id) is not entrega:
            return  # the consumer closed meanwhile: it went back to the subscription
        if self._deliver is None:  # stopped meanwhile: unsettled until the consumer closes
            self.slots_in_use -= 1
            return
        self._deliver(entrega)
