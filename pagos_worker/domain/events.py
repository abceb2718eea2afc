"""Domain events recorded by the `Pago` and `Reverso` aggregates and published through the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
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


@dataclass(frozen=True, slots=True, kw_only=True)
class EventoReverso:
    """Something that happened to a reversal of a payment (a `ReversarPago`): one event for each
    `id_reverso`, which the saga that asked for it correlates on."""

    event_id: UUID
    timestamp: datetime
    id_pago: UUID
    id_reverso: UUID
    motivo: str

    @property
    def tipo(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True, kw_only=True)
class PagoReversado(EventoReverso):
    """Money came back from the affiliate: `importe` is this reversal's, `monto_reversado_total`
    what came back of the payment so far, `referencia_reverso` the gateway's (a Stripe `trr_…`)."""

    importe: Dinero
    monto_reversado_total: Decimal
    referencia_reverso: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReversoFallido(EventoReverso):
    """The reversal could not be made: `codigo` says why (a stable code), `mensaje_error` in words."""

    codigo: str
    mensaje_error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PagoAnulado(EventoReverso):
    """Nothing was or will be paid: the payment failed, or was not known yet (it will fail without
    a gateway call when it comes). The compensation is complete."""


Evento = EventoPago | EventoReverso
