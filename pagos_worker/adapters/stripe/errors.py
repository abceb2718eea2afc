"""Stripe's error JSON, parsed into types, and what a payout refusal is called in Spanish."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# What operators and affiliates read for Stripe's decline codes (the seed's words where it has them).
MESSAGES = {
    "balance_insufficient": "Fondos insuficientes",
    "insufficient_funds": "Fondos insuficientes",
    "card_declined": "Tarjeta rechazada",
    "account_invalid": "Cuenta de destino no válida",
    "resource_missing": "Cuenta de destino no válida",
    "no_account": "Cuenta de destino no válida",
    "transfers_not_allowed": "La cuenta de destino no admite transferencias",
    "account_closed": "La cuenta de destino está cerrada",
    "amount_too_large": "Monto superior al permitido por la pasarela",
    "amount_too_small": "Monto inferior al mínimo de la pasarela",
    "currency_not_supported": "Moneda no admitida por la cuenta de destino",
}


# Codes that say our request was malformed (a bug or a version mismatch), not that Stripe refused it.
_MALFORMED_REQUEST_CODES = ("parameter_", "url_invalid", "api_key_", "secret_key_required", "parameters_exclusive")


@dataclass(frozen=True, slots=True)
class StripeError:
    status: int
    type: str
    code: str | None
    message: str
    request_id: str | None = None
    has_error_object: bool = True
    param: str | None = None  # the body was Stripe's error object (not a proxy's page, not empty)

    @classmethod
    def parse(cls, status: int, body: Any, request_id: str | None) -> StripeError:  # noqa: ANN401 - JSON
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(
                status,
                "api_error",
                None,
                f"HTTP {status} sin cuerpo de error de Stripe",
                request_id,
                has_error_object=False,
            )
        return cls(
            status=status,
            type=str(error.get("type") or "api_error"),
            code=str(error["code"]) if error.get("code") else None,
            message=str(error.get("message") or ""),
            request_id=request_id,
            param=str(error["param"]) if error.get("param") else None,
        )

    @property
    def is_refusal(self) -> bool:
        """Stripe refused this transfer for good (a 400/402 error object with its type and code,
        e.g. `balance_insufficient`): the payment failed. A malformed request of ours is not a
        refusal of the payment (`parameter_unknown`, …): fixed and retried, it may go through."""
        return (
            self.status in (400, 402)
            and self.has_error_object
            and bool(self.type and self.code)
            and self.type != "idempotency_error"
            and not self.code.startswith(_MALFORMED_REQUEST_CODES)  # type: ignore[union-attr]
        )

    @property
    def is_refusal_sin_codigo(self) -> bool:
        """Stripe's refusal of a reversal of more than the transfer has left (`param` amount), or of
        a transfer reversed already: a 400 `invalid_request_error` without a code (Stripe gives none
        there). Any other code-less 400 may be a malformed request of ours: not a refusal."""
        return (
            self.status == 400  # noqa: PLR2004
            and self.has_error_object
            and self.type == "invalid_request_error"
            and self.code is None
            and (self.param == "amount" or ("already" in self.message.lower() and "reversed" in self.message.lower()))
        )

    @property
    def mensaje_error(self) -> str:
        """The Spanish message a refused payment carries."""
        if self.code in MESSAGES:
            return MESSAGES[self.code]
        return f"Pago rechazado por la pasarela ({self.code or self.type})"

    def __str__(self) -> str:
        return f"Stripe {self.status} {self.type}/{self.code}: {self.message} ({self.request_id})"
