"""Ports of the operators' commands: the payments as an operator acts on them, commands to publish,
and the dead-letter topic with the record of what was re-driven from it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from pagos_worker.application.commands import Comando
from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.ports.pasarela import TransferenciaHallada
from pagos_worker.domain.pago import EstadoPago, Pago
from pagos_worker.domain.reverso import Reverso


@dataclass(frozen=True, slots=True)
class Resolucion:
    """A payment settled by hand: who, when (UTC), why, the outcome, and what the gateway showed."""

    operador: str
    fecha: datetime
    motivo: str
    estado: EstadoPago
    transferencias: tuple[TransferenciaHallada, ...]


@dataclass(frozen=True, slots=True)
class ResolucionGuardada:
    """What a resolution wrote besides the payment: its event (the outbox row) and the ids of the
    reconciliation's differences it closed (see `OperadorRepository.guardar_resolucion`)."""

    eventos: list[OutboxEvent]
    diferencias_resueltas: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PagoLeido:
    """A payment as the store holds it, read at `ahora` (the store's clock, the one every decision
    on it is made with), and by when its gateway calls had ended at the latest (None: none made)."""

    pago: Pago
    ahora: datetime
    fin_llamadas: datetime | None


class OperadorRepository(Protocol):
    """The payments store as operators act on it. Every write is fenced like the worker's own: it
    takes effect only on the very row it was decided on (state, lease, claim number, key
    generation), and every time it compares is the store's own."""

    async def obtener(self, id_pago: UUID) -> PagoLeido | None: ...

    async def tomar(self, pago: Pago, leido: PagoLeido, lease: timedelta, margen: timedelta | None) -> int | None:
        """Hold `pago` for the operator (PROCESANDO, the owner of the lease `Pago.tomar_a_mano` set)
        for `lease` from now by the store's clock, under a new claim number, which it returns.
        Only if the stored row is still as `leido`, no live lease holds it, and with `margen`, its
        calls ended at least that long ago; else nothing is written and None. Its calls' end is
        left as it was: an operator's lookup pays nothing."""
        ...

    async def soltar(self, pago: Pago) -> None:
        """End the operator's lease now, if the payment is still held under its claim number."""
        ...

    async def guardar_resolucion(self, pago: Pago, resolucion: Resolucion) -> ResolucionGuardada | None:
        """In one transaction: the final state `pago` reached, its event (the outbox) and the
        resolution; only while the stored payment is PROCESANDO under the operator's claim
        (`pago.reclamo`) and the same key generation. None (nothing written) if it is not: the
        lease was lost to a worker, or someone settled it first.
        Settled EXITOSO, the same transaction closes the reconciliation's unresolved
        `transferencia_sin_exito` differences of the payment for the very transfer it was settled
        with (`pago.referencia_pago`), by `resolucion.operador`: the resolution explains them.
        No other difference is touched."""
        ...

    async def obtener_reverso(self, id_reverso: UUID) -> tuple[Reverso, datetime] | None:
        """A reversal as stored, and the store's time it was read at."""
        ...

    async def reanudar_reverso(self, reverso: Reverso) -> bool:
        """Clear a reversal's attention flag, only if it is still flagged in the state, under the claim
        number and key generation it was read with, and no live lease holds it (the store's clock)."""
        ...

    async def reanudar(self, pago: Pago, leido: PagoLeido) -> bool:
        """Store the flag `Pago.reanudar` cleared, only if the stored row is still as `leido` and no
        live lease holds it (the store's clock)."""
        ...


class CommandPublisher(Protocol):
    async def publicar(self, comandos: Sequence[Comando]) -> None:
        """Publish commands to the commands topic as upstream services do (keyed by `id_pago`; a
        `ReversarPago` with its `tipo_comando` and, if any, `operador`); return once the broker
        stored them."""
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
