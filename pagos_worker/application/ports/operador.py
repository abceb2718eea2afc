"""Ports of the operators' commands: the payments as an operator acts on them, commands to publish,
and the dead-letter topic with the record of what was re-driven from it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from pagos_worker.application.commands import ProcesarPago
from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.ports.pasarela import TransferenciaHallada
from pagos_worker.domain.pago import EstadoPago, Lease, Pago


@dataclass(frozen=True, slots=True)
class Resolucion:
    """A payment settled by hand: who, when (UTC), why, the outcome, and what the gateway showed."""

    operador: str
    fecha: datetime
    motivo: str
    estado: EstadoPago
    transferencias: tuple[TransferenciaHallada, ...]


class OperadorRepository(Protocol):
    """The payments store as operators act on it. Every write is fenced like the worker's own: it
    takes effect only on the very row it was decided on (state, lease, key generation)."""

    async def obtener(self, id_pago: UUID) -> Pago | None: ...

    async def tomar(self, pago: Pago, leido: Pago) -> bool:
        """Store the lease that `Pago.tomar_a_mano` put on `pago`, only if the stored row is still
        `leido` (same state, lease and key generation): else nothing is written and False."""
        ...

    async def soltar(self, pago: Pago) -> None:
        """Store the lease `Pago.soltar` ended, if the payment is still held by that lease's owner."""
        ...

    async def guardar_resolucion(self, pago: Pago, resolucion: Resolucion, lease: Lease) -> list[OutboxEvent] | None:
        """In one transaction: the final state `pago` reached, its event (the outbox) and the
        resolution; only while the stored payment is PROCESANDO under `lease` (the operator's) and
        the same key generation. None (nothing written) if it is not: the lease was lost to a
        worker, or someone settled it first."""
        ...

    async def reanudar(self, pago: Pago, leido: Pago, ahora: datetime) -> bool:
        """Store the flag `Pago.reanudar` cleared, only if the stored row is still `leido` and no live
        lease holds it at `ahora`."""
        ...


class CommandPublisher(Protocol):
    async def publicar(self, comandos: Sequence[ProcesarPago]) -> None:
        """Publish `ProcesarPago` commands to the commands topic; return once the broker stored them."""
        ...


@dataclass(frozen=True, slots=True)
class CartaMuerta:
    """A message on the dead-letter topic: the refused command's bytes, key and properties (with
    `motivo`, `detalle`, `topic_origen`, `message_id_origen`), its message id and publication time."""

    message_id: str
    payload: bytes
    key: str
    properties: Mapping[str, str]
    publicada: datetime


class DeadLetterReader(Protocol):
    def leer(self, desde: datetime | None = None) -> AsyncIterator[CartaMuerta]:
        """Every dead letter the topic keeps (published at or after `desde`), oldest first, each
        once, up to the end of the topic; without acknowledging or consuming anything."""
        ...


@dataclass(frozen=True, slots=True)
class Reenvio:
    """A dead letter re-driven to the commands topic: `origen` is the first dead letter of its
    command (a letter that came back after a re-drive keeps its origin)."""

    origen: str
    carta: str
    id_pago: UUID | None
    motivo: str
    operador: str
    fecha: datetime
    lote: UUID
    veces: int = 1


class RedriveLog(Protocol):
    """The record of re-driven dead letters (kept with the payments): what a later run skips."""

    async def reenviados(self, origenes: Sequence[str]) -> dict[str, Reenvio]:
        """The record of each of these origins that was re-driven before."""
        ...

    async def registrar(self, reenvios: Sequence[Reenvio]) -> None:
        """Record these re-drives (once more for an origin already recorded: `veces` grows)."""
        ...

    def exclusivo(self) -> AbstractAsyncContextManager[bool]:
        """Held while one re-drive runs (across machines): True, or False at once if another run
        holds it."""
        ...
