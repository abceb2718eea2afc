"""Ports of the outbox relay: the stored events waiting to be published, and the broker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
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

    async def marcar_publicados(self) -> None:
        """Record every event of the lot as published (takes effect when the lot ends cleanly)."""
        ...


class OutboxStore(Protocol):
    def reservar_pendientes(self, limite: int) -> AbstractAsyncContextManager[LoteOutbox]:
        """Reserve up to `limite` pending events, oldest first, skipping those another relay holds.
        If the block raises, the reservation is released and nothing is marked."""
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
