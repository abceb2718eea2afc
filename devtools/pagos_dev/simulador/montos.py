"""The currencies the simulator takes and the amounts it accepts in each, in minor units.

Stripe documents no maximum for transfers; for charges it documents up to eight digits (twelve
for IDR), which would refuse the service's own largest payout (1,000,000.00 USD is nine). The
simulator takes up to twelve digits in every currency, which covers what the service's contract
accepts (4,000,000,000.00 COP is 400,000,000,000), and refuses only what no Stripe amount can be.
USD, EUR and COP are two-decimal currencies for Stripe."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pagos_dev.simulador import errores


@dataclass(frozen=True, slots=True)
class Limites:
    minimo: int
    maximo: int
    decimales: int = 2


MONEDAS = {
    "usd": Limites(minimo=1, maximo=999_999_999_999),
    "eur": Limites(minimo=1, maximo=999_999_999_999),
    "cop": Limites(minimo=1, maximo=999_999_999_999),
}


def comprobar(amount: int, currency: str) -> None:
    limites = MONEDAS.get(currency)
    if limites is None:
        raise errores.invalido(f"Invalid currency: {currency[:20]}. Stripe currently supports these currencies: "
                               f"{', '.join(MONEDAS)}", "currency")  # fmt: skip
    if amount < limites.minimo:
        raise errores.invalido("Invalid positive integer", "amount", "parameter_invalid_integer")
    if amount > limites.maximo:
        mayor = f"{limites.maximo / 10**limites.decimales:,.{limites.decimales}f}"
        raise errores.invalido(f"Amount must be no more than {mayor} {currency}", "amount", "amount_too_large")


def texto(amount: int, currency: str) -> str:
    """An amount in minor units as a person reads it: `texto(150050, "usd")` is "1,500.50 usd"."""
    decimales = MONEDAS[currency].decimales if currency in MONEDAS else 2
    return f"{Decimal(amount).scaleb(-decimales):,.{decimales}f} {currency}"
