"""Port: where `Pago` aggregates and their events (the outbox) are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.domain.pago import Pago


@dataclass(frozen=True, slots=True)
class Reclamo:
    """The answer to a claim: the stored payment (None if it could not be read because another
    transaction is creating it right now), and whether this worker now holds it."""

    pago: Pago | None
    reclamado: bool


class PagoRepository(Protocol):
    """Each method is atomic on its own; implementations may group concurrent calls into one
    transaction (group commit) as long as each call keeps that atomicity."""

    async def reclamar(self, pago: Pago) -> Reclamo:
        """`pago` is a new payment already moved to PROCESANDO under this worker's lease.

        If its id is unknown, store it and return it claimed. Otherwise claim the stored payment
        (PROCESANDO under the new lease, one more attempt) only if it asks for the same payout and it
        is PENDIENTE or PROCESANDO with an expired lease and not flagged for attention (automatic
        retries are over for it: only an operator resumes it); else return it unchanged and
        unclaimed."""
        ...

    async def guardar_resultado(self, pago: Pago, traza: TraceContext | None = None) -> list[OutboxEvent] | None:
        """Store the final state of a payment and the events it recorded (the outbox), in one
        transaction, and return those events as committed (the outbox rows, in their wire form).
        The events carry `traza` (their `traceparent` and `tracestate`) to whoever publishes them.
        Write nothing and return None if the stored payment is no longer PROCESANDO (someone else
        already stored its outcome)."""
        ...

    async def renovar_clave(self, pago: Pago) -> bool:
        """Record the payment's new key generation (`Pago.renovar_clave`) on a payment this worker
        holds, before that key is used. False (nothing written) if another worker holds it by now or
        the stored generation is not the one before."""
        ...

    async def liberar(self, pago: Pago) -> None:
        """Store what `Pago.resultado_desconocido` or `Pago.no_intentado` recorded on a payment this
        worker holds: its lease, now expired (a redelivered command may resume it at once), its
        attempts, its last error and whether it needs attention. Nothing is written if another
        worker holds it by now."""
        ...

    async def atascados(self, lease_vencido_antes_de: datetime, limite: int) -> list[Pago]:
        """Payments in PROCESANDO whose lease expired before that instant and that are not flagged
        for attention, oldest lease first."""
        ...

    async def obtener(self, id_pago: UUID) -> Pago | None: ...
