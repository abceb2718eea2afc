"""Commands: what upstream services ask this service to do."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from pagos_worker.application.ports.tracing import TraceContext
from pagos_worker.domain.dinero import Dinero


@dataclass(frozen=True, slots=True)
class ProcesarPago:
    """Pay `importe` out to the affiliate. `id_pago` is chosen by the publisher and is the
    idempotency key: the same `id_pago` is never paid twice. `traza`: the W3C trace context that
    came with it (its message's `traceparent`), carried on to its events."""

    id_pago: UUID
    id_afiliado: str
    importe: Dinero
    traza: TraceContext | None = None
