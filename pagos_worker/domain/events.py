"""Domain events recorded by the `Pago` aggregate and published through the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from pagos_worker.domain.dinero import Dinero


@dataclass(frozen=True, slots=True, kw_only=True)
class EventoPago:
    """Something that happened to a payment. `event_id` identifies it for de-duplication."""

    event_id: UUID
    timestamp: datetime
    id_pago: UUID
    id_afiliado: str
    importe: Dinero
    referencia_pago: str | None

    @property
    def tipo(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True, kw_only=True)
class PagoExitoso(EventoPago):
    """The gateway paid the affiliate; `referencia_pago` is the gateway's reference."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PagoFallido(EventoPago):
    """The gateway gave a definitive refusal; `mensaje_error` says why, in Spanish."""

    mensaje_error: str
