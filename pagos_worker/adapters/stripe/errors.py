"""Stripe's error JSON, parsed into types, and what a payout refusal is called in Spanish."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# What operators and affiliates read for Stripe's decline codes (the seed's words where it has them).
MENSAJES = {
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


@dataclass(frozen=True, slots=True)
class StripeError:
    status: int
    type: str
    code: str | None
    message: str
    request_id: str | None = None

    @classmethod
    def parse(cls, status: int, body: Any, request_id: str | None) -> StripeError:  # noqa: ANN401 - JSON
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(status, "api_error", None, f"HTTP {status} sin cuerpo de error de Stripe", request_id)
        return cls(
            status=status,
            type=str(error.get("type") or "api_error"),
            code=str(error["code"]) if error.get("code") else None,
            message=str(error.get("message") or ""),
            request_id=request_id,
        )

    @property
    def mensaje_error(self) -> str:
        """The Spanish message a refused payment carries."""
        if self.code in MENSAJES:
            return MENSAJES[self.code]
        return f"Pago rechazado por la pasarela ({self.code or self.type})"

    def __str__(self) -> str:
        return f"Stripe {self.status} {self.type}/{self.code}: {self.message} ({self.request_id})"
