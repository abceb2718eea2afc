"""Ports of the outbox relay: the stored events waiting to be published, and the broker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True, slots=True)
class EventoPendiente:
    """An outbox row: an event committed with its payment and not yet published."""

    id: int
    event_id: UUID
    event_type: str
    id_pago: UUID
    payload: bytes
    creado_en: datetime | None = None  # when it was committed


@dataclass(frozen=True, slots=True)
class Mensaje:
    """A message to publish: payload bytes, routing key and string properties."""

    payload: bytes
    key: str
    properties: Mapping[str, str]


class LoteOutbox(Protocol):
    """Pending events reserved by one relay: no other relay sees them until this lot ends."""

    @property
    def eventos(self) -> Sequence[EventoPendiente]: ...

    async def marcar_publicados(self, cuando: datetime) -> None:
        """Record every event of the lot as published at `cuando`, when the broker confirmed them
        (takes effect when the lot ends cleanly)."""
        ...


class OutboxStore(Protocol):
    def reservar_pendientes(
        self, limite: int, *, gracia: timedelta = timedelta(0), propio: str | None = None
    ) -> AbstractAsyncContextManager[LoteOutbox]:
        """Reserve up to `limite` pending events, oldest first, skipping those another relay holds.
        Events the committing process publishes itself (`PublicacionInmediata`) are left to it for
        `gracia`, unless that process is `propio`. If the block raises, the reservation is released
        and nothing is marked."""
        ...

    async def marcar_publicados(self, eventos: Sequence[EventoPendiente], cuando: datetime) -> None:
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
    async def publicar(self, mensajes: Sequence[Mensaje]) -> None:
        """Publish in order; return once the broker has stored every message. Raise if any was not
        (some of the others may have been: delivery is at least once, consumers de-duplicate by
        `event_id`)."""
        ...
