"""Port: where `Reverso` aggregates are stored, with their payment and their events (the outbox)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.ports.repository import Liberacion
from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.domain.reclamo import Lease, PoliticaAtencion
from pagos_worker.domain.reverso import Reverso


class Llegada(StrEnum):
    """What a reversal's delivery found and decided, in one transaction with its payment."""

    RECLAMADO = "reclamado"  # held by this worker now: to the gateway
    ESPERA = "espera"  # recorded; its payment is not final, or another reversal of it is in flight
    ANULADO = "anulado"  # final now: nothing was paid (its event is committed)
    FALLIDO = "fallido"  # final now without a gateway call: more than is left, … (its event is committed)
    YA_PROCESADO = "ya_procesado"  # final before: a duplicate
    EN_CURSO = "en_curso"  # another worker's live lease holds it
    REQUIERE_ATENCION = "requiere_atencion"  # its automatic retries are over: an operator's
    CONFLICTO = "conflicto"  # the id_reverso is known with other terms


@dataclass(frozen=True, slots=True)
class ReclamoDeReverso:
    """The answer to a reversal's claim: what it decided, the reversal as stored now (held by this
    worker when RECLAMADO), the database's time of the decision, by when the calls of earlier
    claims had ended at the latest, and the events committed by the decision itself."""

    llegada: Llegada
    reverso: Reverso | None
    ahora: datetime
    fin_llamadas_previas: datetime | None = None
    eventos: list[OutboxEvent] = field(default_factory=list)


class ReversoRepository(Protocol):
    """As `PagoRepository`: one clock (the store's) and one fence (the claim number) for every
    write; each method atomic."""

    async def reclamar(self, pedido: Reverso, lease: Lease, traza: TraceContext | None = None) -> ReclamoDeReverso:
        """`pedido`: the reversal as its command asks for it (PENDIENTE); `lease`'s length is
        `lease.expira - pedido.fecha_creacion`. In one transaction, with its payment's row locked
        (made, without terms and annulled, when the payment is not known): a known id_reverso with
        other terms is a CONFLICTO, a final one YA_PROCESADO; a PROCESANDO one is claimed again
        once its lease expired (store's clock) unless flagged; a new or PENDIENTE one is decided by
        `Reverso.admitir` against the payment, and stored with the events that decision recorded."""
        ...

    async def guardar_resultado(self, reverso: Reverso, traza: TraceContext | None = None) -> list[OutboxEvent] | None:
        """Store the reversal's final state, what came back of its payment (EXITOSO: the amount
        added, REVERSADO when it is all) and its event, in one transaction; None (nothing written)
        unless it is still PROCESANDO under this very claim."""
        ...

    async def renovar_clave(self, reverso: Reverso, politica: PoliticaAtencion) -> datetime | None:
        """As `PagoRepository.renovar_clave`."""
        ...

    async def liberar(self, reverso: Reverso, como: Liberacion, politica: PoliticaAtencion) -> bool | None:
        """As `PagoRepository.liberar`."""
        ...

    async def atascados(self, gracia: timedelta, limite: int) -> list[Reverso]:
        """Reversals in PROCESANDO whose lease expired more than `gracia` ago, not flagged; and
        reversals PENDIENTE (waiting for their payment) recorded more than `gracia` ago."""
        ...

    async def obtener(self, id_reverso: UUID) -> Reverso | None: ...
