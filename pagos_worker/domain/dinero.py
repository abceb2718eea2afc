"""Money as value objects: `Moneda` and `Dinero`. Amounts are `Decimal`, never floats."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from pagos_worker.domain.errors import DineroInvalidoError, MonedaNoSoportadaError


class Moneda(StrEnum):
    """Supported currencies. Stripe treats all three as two-decimal currencies."""

    USD = "USD"
    EUR = "EUR"
    COP = "COP"

    @classmethod
    def de_codigo(cls, codigo: str) -> Moneda:
        try:
            return cls(codigo)
        except ValueError:
            soportadas = ", ".join(m.value for m in cls)
            raise MonedaNoSoportadaError(f"moneda no soportada: {codigo!r} (soportadas: {soportadas})") from None

    @property
    def decimales(self) -> int:
        return 2

    @property
    def maximo(self) -> Decimal:
        """The largest single payout accepted, roughly one million US dollars."""
        return _MAXIMOS[self]


_MAXIMOS = {
    Moneda.USD: Decimal("1000000.00"),
    Moneda.EUR: Decimal("1000000.00"),
    Moneda.COP: Decimal("4000000000.00"),
}


@dataclass(frozen=True, slots=True)
class Dinero:
    """A positive amount in one currency, held at the currency's minor-unit precision."""

    monto: Decimal
    moneda: Moneda

    def __post_init__(self) -> None:
        monto = self.monto
        if not isinstance(monto, Decimal) or not monto.is_finite():
            raise DineroInvalidoError("monto_invalido", f"el monto debe ser un número decimal finito: {monto!r}")
        if monto <= 0:
            raise DineroInvalidoError("monto_no_positivo", f"el monto debe ser mayor que cero: {monto}")
        if monto > self.moneda.maximo:
            raise DineroInvalidoError(
                "monto_demasiado_grande", f"el monto supera el máximo de {self.moneda.maximo} {self.moneda}"
            )
        escala = Decimal(1).scaleb(-self.moneda.decimales)
        try:
            exacto = monto.quantize(escala)
        except InvalidOperation:  # pragma: no cover - bounded by the maximum above
            raise DineroInvalidoError("monto_invalido", f"monto fuera de rango: {monto}") from None
        if exacto != monto:
            raise DineroInvalidoError(
                "demasiados_decimales",
                f"{self.moneda} admite como máximo {self.moneda.decimales} decimales: {monto}",
            )
        object.__setattr__(self, "monto", exacto)

    @classmethod
    def de_unidades_menores(cls, unidades: int, moneda: Moneda) -> Dinero:
        return cls(Decimal(unidades).scaleb(-moneda.decimales), moneda)

    @property
    def unidades_menores(self) -> int:
        """The amount in the currency's minor units (cents), as gateways want it."""
        return int(self.monto.scaleb(self.moneda.decimales))

    def __str__(self) -> str:
        return f"{self.monto} {self.moneda}"
