"""Port: where `Pago` aggregates and their events (the outbox) are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.domain.pago import Pago, PoliticaAtencion


@dataclass(frozen=True, slots=True)
class Reclamo:
    """The answer to a claim: the stored payment (None if it could not be read because another
    transaction is creating it right now), whether this worker now holds it, the database's time
    of the claim, and by when the gateway calls of earlier claims had ended at the latest (None:
    there were none)."""

    pago: Pago | None
    reclamado: bool
    ahora: datetime | None = None
    fin_llamadas_previas: datetime | None = None
    # The reversal that annulled the payment before it came (its row has no terms yet): the
    # payment then fails without a gateway call (`PagoRepository.cerrar_anulado`).
    anulado_por: UUID | None = None


class Liberacion(StrEnum):
    """What a holder did at the gateway before it gives a payment back."""

    LLAMO = "llamo"  # a payout call was (or may have been) sent
    NO_LLAMO = "no_llamo"  # nothing was sent: the claim's attempt is given back
    ESPERA = "espera"  # nothing was sent, and the payment waits for the settle margin to pass


class PagoRepository(Protocol):
    """Each method is atomic on its own; implementations may group concurrent calls into one
    transaction (group commit) as long as each call keeps that atomicity.

    One clock and one fence: every time that decides who may act (a lease's expiry, a payment's
    age, a key's age, the settle margin) is the store's own, written and compared there; the
    caller's clock only gives durations. Every write of a claim is conditioned on its number
    (`Pago.reclamo`): a holder whose claim was taken since writes nothing."""

    async def reclamar(self, pago: Pago) -> Reclamo:
        """`pago` is a new payment already moved to PROCESANDO under this worker's lease; the
        lease's length is `lease.expira - fecha_creacion` (the caller's times give only that).

        If its id is unknown, store it created now (the store's time) and return it claimed.
        Otherwise claim the stored payment (PROCESANDO under the new lease and a new claim number,
        one more attempt) only if it asks for the same payout and it is PENDIENTE or PROCESANDO
        with a lease expired by the store's clock and not flagged for attention (automatic retries
        are over for it: only an operator resumes it); else return it unchanged and unclaimed."""
        ...

    async def guardar_resultado(self, pago: Pago, traza: TraceContext | None = None) -> list[OutboxEvent] | None:
        """Store the final state of a payment and the events it recorded (the outbox), in one
        transaction, and return those events as committed (the outbox rows, in their wire form).
        The events carry `traza` (their `traceparent` and `tracestate`) to whoever publishes them.
        Write nothing and return None unless the stored payment is still PROCESANDO under this
        very claim (`pago.reclamo`): a stale holder's outcome is never saved, never published."""
        ...

    async def renovar_clave(self, pago: Pago, politica: PoliticaAtencion) -> datetime | None:
        """Record the payment's next key generation on a payment held under this claim, before
        that key is used, and return since when it holds (the store's time). Only if the stored
        generation is the one before, the current key may no longer be sent (spent, or at least
        `politica.vida_clave` old) and the earlier claims' calls ended at least
        `politica.margen_asentamiento` ago; else None, nothing written."""
        ...

    async def liberar(self, pago: Pago, como: Liberacion, politica: PoliticaAtencion) -> bool | None:
        """Give back a payment held under this claim, with what `Pago.resultado_desconocido` or
        `Pago.no_intentado` recorded (attempts, last error, whether its key is spent, the
        attention flag): its lease ends now (ESPERA: once the earlier calls are
        `politica.margen_asentamiento` old), and its calls ended now (LLAMO) or when the earlier
        claims' did. Past `politica.max_antiguedad` by the store's clock it is flagged too. Returns
        whether it is flagged now; None (nothing written) if the claim is no longer this one."""
        ...

    async def cerrar_anulado(self, pago: Pago, traza: TraceContext | None = None) -> list[OutboxEvent] | None:
        """A payment annulled by a reversal before it came (`Reclamo.anulado_por`), now FALLIDO
        with its terms and its one event, stored with that event in one transaction; returns the
        event as committed. Only while the stored row is still the annulled one without terms;
        else None, nothing written."""
        ...

    async def atascados(self, gracia: timedelta, limite: int) -> list[Pago]:
        """Payments in PROCESANDO whose lease expired more than `gracia` ago (the store's clock)
        and that are not flagged for attention, oldest lease first."""
        ...

    async def obtener(self, id_pago: UUID) -> Pago | None: ...
