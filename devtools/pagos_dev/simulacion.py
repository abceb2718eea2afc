"""What a simulated gateway looks like: its latency distribution and its refusals."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from uuid import UUID

# The seed's refusals, in the words affiliates' operators see.
MENSAJES_RECHAZO = (
    "Fondos insuficientes",
    "Tarjeta rechazada",
    "Cuenta de destino no válida",
    "Transferencia rechazada por el banco",
)

_Z99 = 2.3263478740408408  # standard normal quantile at 0.99


@dataclass(frozen=True, slots=True)
class Latencia:
    """`fixed:MS`, `uniform:MIN_MS:MAX_MS` or `lognormal:P50_MS:P99_MS` (the seed's profile is
    `uniform:2000:8000`)."""

    tipo: str
    a_ms: float
    b_ms: float

    @classmethod
    def parse(cls, spec: str) -> Latencia:
        tipo, _, resto = spec.strip().partition(":")
        try:
            valores = [float(v) for v in resto.split(":")] if resto else []
        except ValueError:
            raise ValueError(f"latencia no válida: {spec!r}") from None
        if tipo == "fixed" and len(valores) == 1 and valores[0] >= 0:
            return cls(tipo, valores[0], valores[0])
        if tipo in {"uniform", "lognormal"} and len(valores) == 2 and 0 < valores[0] <= valores[1]:  # noqa: PLR2004
            return cls(tipo, valores[0], valores[1])
        raise ValueError(f"latencia no válida: {spec!r} (fixed:MS | uniform:MIN:MAX | lognormal:P50:P99)")

    def muestra(self, rng: random.Random) -> float:
        """One latency, in seconds."""
        if self.tipo == "uniform":
            ms = rng.uniform(self.a_ms, self.b_ms)
        elif self.tipo == "lognormal":
            sigma = math.log(self.b_ms / self.a_ms) / _Z99
            ms = rng.lognormvariate(math.log(self.a_ms), sigma)
        else:
            ms = self.a_ms
        return ms / 1000

    @property
    def media_ms(self) -> float:
        if self.tipo == "uniform":
            return (self.a_ms + self.b_ms) / 2
        if self.tipo == "lognormal":
            sigma = math.log(self.b_ms / self.a_ms) / _Z99
            return self.a_ms * math.exp(sigma * sigma / 2)
        return self.a_ms


def sorteo(semilla: int, id_pago: UUID) -> float:
    """A number in [0, 1) fixed by the seed and the payment: the same payment always draws the same."""
    digest = hashlib.blake2b(id_pago.bytes, key=semilla.to_bytes(8, "big", signed=True), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def rechazo(semilla: int, id_pago: UUID, tasa_fallos: float) -> str | None:
    """The refusal this payment gets at this failure rate, or None if it is paid."""
    u = sorteo(semilla, id_pago)
    if u >= tasa_fallos:
        return None
    return MENSAJES_RECHAZO[int(u / tasa_fallos * len(MENSAJES_RECHAZO)) % len(MENSAJES_RECHAZO)]
