"""Port: the payment gateway (Stripe in production)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pagos_worker.domain.pago import Pago
from pagos_worker.domain.reverso import Reverso


@dataclass(frozen=True, slots=True)
class ResultadoPago:
    """A definitive answer from the gateway: paid (with its reference) or refused (with why)."""

    exitoso: bool
    referencia_pago: str | None = None
    mensaje_error: str | None = None
    # A refusal's code: the gateway's own for a payment; for a reversal, the domain's
    # (`CodigoReversoFallido`), which the adapter decides from the gateway's.
    codigo: str | None = None

    @classmethod
    def exito(cls, referencia_pago: str) -> ResultadoPago:
        return cls(exitoso=True, referencia_pago=referencia_pago)

    @classmethod
    def fallo(cls, mensaje_error: str, referencia_pago: str | None = None, codigo: str | None = None) -> ResultadoPago:
        return cls(exitoso=False, referencia_pago=referencia_pago, mensaje_error=mensaje_error, codigo=codigo)


class ResultadoIndeterminadoError(Exception):
    """The gateway gave no definitive answer (timeouts, 5xx, retries exhausted, circuit open).

    The payment may or may not have been made: it must NOT be reported as failed. It is retried
    later with the same idempotency key, which makes the gateway return the first outcome."""


class ClaveAgotadaError(ResultadoIndeterminadoError):
    """The key's answer cannot change (the gateway replays a saved 500, or the key is taken by
    other parameters) and the gateway holds no payout for the payment yet: retries under that key
    can never succeed. The next key generation is due, once a lookup after the settle margin finds
    nothing."""


class SinPruebaDePagoError(ResultadoIndeterminadoError):
    """The gateway holds something for the payment that does not prove it paid: a transfer to
    another account, of another amount or currency, reversed since, or more than one. Retrying
    cannot change that: an operator decides (the payment is flagged at once)."""


class PasarelaNoDisponibleError(ResultadoIndeterminadoError):
    """The adapter refused the call before sending anything (its circuit breaker is open): the
    gateway never saw this payment, so this was no attempt. Retried later like any unknown outcome."""


class PasarelaDePagos(Protocol):
    """Pays a payment out through an external gateway.

    Contract: idempotent per payment. Every call for the same `id_pago` uses the same gateway
    idempotency key, so calling again (from a retry, another replica, or after a crash) returns the
    first outcome instead of paying twice. Concurrency and rate limits live inside the adapter.
    Raises `ResultadoIndeterminadoError` when the outcome is unknown, and its subclass
    `PasarelaNoDisponibleError` when nothing was sent at all."""

    async def procesar_pago(self, pago: Pago) -> ResultadoPago: ...

    async def buscar_transferencia(self, pago: Pago) -> str | None:
        """The reference of the payout the gateway already holds for this payment (whatever key made
        it), or None when it holds none. Only a proof settles it: one transfer, to the affiliate's
        account, of the payment's amount and currency, not reversed; anything else raises
        `SinPruebaDePagoError`. Raises `ResultadoIndeterminadoError` if it cannot tell."""
        ...

    async def revertir(self, reverso: Reverso) -> ResultadoPago:
        """Take the reversal's amount back from its payment's transfer (`Reverso.referencia_transfer`),
        idempotent per reversal and key generation (never the payment's key). A refusal carries the
        domain's code (`CodigoReversoFallido`); raises like `procesar_pago` when the outcome is unknown."""
        ...

    async def buscar_reverso(self, reverso: Reverso) -> str | None:
        """The reference of the reversal the gateway already holds for this one (matched on its id in
        the reversal's metadata, every page of the transfer's reversals), or None when it holds none.
        Only its own amount and currency prove it; anything else (two of them, another amount)
        raises `SinPruebaDePagoError`. Raises `ResultadoIndeterminadoError` if it cannot tell."""
        ...

    async def esperar_disponible(self) -> None:
        """Return once a payment may be tried: at once, unless the adapter has a circuit breaker
        and it is open (then the caller holds its slot, and intake pauses, until it may probe)."""
        ...


@dataclass(frozen=True, slots=True)
class TransferenciaHallada:
    """A payout the gateway holds for a payment, as it showed it: its reference, amount (minor
    units) and currency, when it was made, where it went, and how much of it was reversed since
    (None where the gateway did not say)."""

    referencia: str
    unidades_menores: int | None = None
    moneda: str | None = None
    creada: datetime | None = None
    destino: str | None = None
    revertido: int | None = None  # minor units reversed (Stripe's `amount_reversed`)

    def coincide_con(self, pago: Pago) -> bool:
        """Whether it pays exactly this payment's amount in its currency."""
        return self.unidades_menores == pago.importe.unidades_menores and (self.moneda or "").upper() == (
            pago.importe.moneda.value
        )


class ConsultaDeTransferencias(Protocol):
    """What an operator asks the gateway about one payment (`transfer_group` = its id_pago)."""

    def destino(self, pago: Pago) -> str | None:
        """The affiliate's account the payment must go to (None: none is configured for it)."""
        ...

    async def transferencias(self, pago: Pago) -> list[TransferenciaHallada]:
        """Every payout the gateway holds for this payment, oldest first (more than one is a payment
        paid twice). Raises `ResultadoIndeterminadoError` when the gateway cannot tell now."""
        ...
