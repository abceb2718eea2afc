"""The faults the simulator injects: by rate, or deterministically by destination account.

Deterministic triggers (the destination decides, so a test picks the affiliate):
    acct_test_<code>                 a definitive decline with that Stripe code, e.g.
                                     acct_test_balance_insufficient, acct_test_account_invalid
    acct_test_error_500              always a 500 (nothing is created)
    acct_test_error_500_once         a 500 on the first attempt of each idempotency key, then normal
    acct_test_rate_limited_once      a 429 with Retry-After on the first attempt of each key
    acct_test_timeout_after_success_once
                                     the first attempt creates the transfer and never answers
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from pagos_dev.simulacion import Latencia

CODIGOS_RECHAZO = ("balance_insufficient", "account_invalid", "transfers_not_allowed", "card_declined")
_DISPARADOR = "acct_test_"


class Falla(StrEnum):
    NINGUNA = "ninguna"
    RECHAZO = "rechazo"
    ERROR_500 = "error_500"
    LIMITE_429 = "limite_429"
    TIMEOUT_TRAS_EXITO = "timeout_tras_exito"


@dataclass(frozen=True, slots=True)
class Fallas:
    """Rates are per request, applied independently of each other; `latencia` as in `Latencia`."""

    latencia: str = "lognormal:60:300"
    tasa_rechazo: float = 0.10
    tasa_500: float = 0.0
    tasa_429: float = 0.0
    tasa_timeout_tras_exito: float = 0.0
    retry_after_s: float = 1.0
    cuelgue_s: float = 120.0  # how long a "timeout after success" holds its response

    def __post_init__(self) -> None:
        Latencia.parse(self.latencia)
        for f in fields(self):
            valor = getattr(self, f.name)
            if f.name.startswith("tasa_") and not 0 <= valor <= 1:
                raise ValueError(f"{f.name} debe estar entre 0 y 1")

    def con(self, cambios: dict[str, Any]) -> Fallas:
        conocidos = {f.name for f in fields(self)}
        if desconocidos := set(cambios) - conocidos:
            raise ValueError(f"campos desconocidos: {', '.join(sorted(desconocidos))}")
        return replace(self, **cambios)


def elegir(fallas: Fallas, destino: str, intento_de_la_clave: int, rng: random.Random) -> tuple[Falla, str | None]:
    """The fault for one request (and the decline code when it is a decline)."""
    if destino.startswith(_DISPARADOR):
        return _disparada(destino.removeprefix(_DISPARADOR), intento_de_la_clave)
    if rng.random() < fallas.tasa_429:
        return Falla.LIMITE_429, None
    if rng.random() < fallas.tasa_500:
        return Falla.ERROR_500, None
    if rng.random() < fallas.tasa_rechazo:
        return Falla.RECHAZO, rng.choice(CODIGOS_RECHAZO[:2])
    if rng.random() < fallas.tasa_timeout_tras_exito:
        return Falla.TIMEOUT_TRAS_EXITO, None
    return Falla.NINGUNA, None


def _disparada(nombre: str, intento: int) -> tuple[Falla, str | None]:
    primera = intento == 1
    unica = {
        "error_500_once": Falla.ERROR_500,
        "rate_limited_once": Falla.LIMITE_429,
        "timeout_after_success_once": Falla.TIMEOUT_TRAS_EXITO,
    }
    if nombre in unica:
        return (unica[nombre], None) if primera else (Falla.NINGUNA, None)
    if nombre == "error_500":
        return Falla.ERROR_500, None
    return Falla.RECHAZO, nombre
