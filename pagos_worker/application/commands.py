"""Commands: what upstream services ask this service to do."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.domain.dinero import Dinero
from pagos_worker.domain.reverso import MotivoReverso


@dataclass(frozen=True, slots=True)
class ProcesarPago:
    """Pay `importe` out to the affiliate. `id_pago` is chosen by the publisher and is the
    idempotency key: the same `id_pago` is never paid twice. `traza`: the W3C trace context that
    came with it (its message's `traceparent`), carried on to its events."""

    id_pago: UUID
    id_afiliado: str
    importe: Dinero
    traza: TraceContext | None = None


@dataclass(frozen=True, slots=True)
class ReversarPago:
    """Take (part of) a payout back: `monto`, or everything not reversed yet (None). `id_reverso`
    is chosen by the publisher and is the reversal's identity and idempotency key: the same
    `id_reverso` is never reversed twice. `operador`: who asked for it by hand, if anyone."""

    id_reverso: UUID
    id_pago: UUID
    monto: Decimal | None
    motivo: MotivoReverso
    descripcion: str | None = None
    operador: str | None = None
    traza: TraceContext | None = None


Comando = ProcesarPago | ReversarPago
