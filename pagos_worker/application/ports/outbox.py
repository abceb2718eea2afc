"""Ports of the outbox relay: the stored events waiting to be published, and the broker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID


class Message(Protocol):
    """What a publisher sends: payload bytes, routing key and string properties."""

    @property
    def payload(self) -> bytes: ...
    @property
    def key(self) -> str: ...
    @property
    def properties(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event committed with its payment (an outbox row), in its wire form: it is the message the
    broker gets — keyed by payment, with its type and id as properties, and the W3C trace context
    of its command (`traceparent`, `tracestate`) when there was one."""

    id: int
    event_id: UUID
    event_type: str
    id_pago: UUID
    payload: bytes
    creado_en: datetime | None = None  # when it was committed
    traceparent: str | None = None
    tracestate: str | None = None

    @property
    def key(self) -> str:
        return str(self.id_pago)

    @property
    def properties(self) -> Mapping[str, str]:
        propiedades = {"event_type": self.event_type, "event_id": str(self.event_id)}
        if self.traceparent is not None:
            propiedades["traceparent"] = self.traceparent
            if self.tracestate is not None:
                propiedades["tracestate"] = self.tracestate
        return propiedades


@dataclass(frozen=True, slots=True)
class PlainMessage:
    """Any other message (a dead letter)."""

    payload: bytes
    key: str
    properties: Mapping[str, str]


class OutboxBatch(Protocol):
    """Pending events reserved by one relay: no other relay sees them until this lot ends."""

    @property
    def eventos(self) -> Sequence[OutboxEvent]: ...

    async def marcar_publicados(self, cuando: datetime) -> None:
        """Record every event of the lot as published at `cuando`, when the broker confirmed them
        (takes effect when the lot ends cleanly)."""
        ...


class OutboxStore(Protocol):
    def reservar_pendientes(
        self, limite: int, *, gracia: timedelta = timedelta(0), propio: str | None = None
    ) -> AbstractAsyncContextManager[OutboxBatch]:
        """Reserve up to `limite` pending events, oldest first, skipping those another relay holds.
        Events the committing process publishes itself (`ImmediatePublisher`) are left to it for
        `gracia`, unless that process is `propio`. If the block raises, the reservation is released
        and nothing is marked."""
        ...

    async def marcar_publicados(self, eventos: Sequence[OutboxEvent], cuando: datetime) -> None:
        """Record as published at `cuando` events that were published outside a lot (right after
        their commit)."""
        ...

    async def esperar_nuevos(self, timeout: float) -> None:
        """Return soon after new events are committed, or after `timeout` seconds."""
        ...

    async def borrar_publicados(self, antes_de: datetime, limite: int) -> int:
        """Delete up to `limite` events published before `antes_de`; return how many."""
        ...


class EventPublisher(Protocol):
    async def publicar(self, mensajes: Sequence[Message]) -> None:
        """Publish in order; return once the broker has stored every message. Raise if any was not
        (some of the others may have been: delivery is at least once, consumers de-duplicate by
        `event_id`)."""
        ...
