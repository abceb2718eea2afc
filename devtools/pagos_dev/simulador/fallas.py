"""The faults the simulator injects: by rate, or deterministically by destination account.

Deterministic triggers (the destination decides, so a test picks the affiliate):
    acct_test_<code>                 a definitive decline with that Stripe code, e.g.
                                     acct_test_balance_insufficient, acct_test_account_invalid
    acct_test_error_500              always a 500 before the endpoint runs (nothing created or saved)
    acct_test_error_500_once         such a 500 on the first attempt of each idempotency key, then normal
    acct_test_error_500_saved        a 500 saved under the key (replayed on retries), nothing created
    acct_test_error_500_saved_created
                                     a 500 saved under the key, and the transfer made all the same
    acct_test_rate_limited_once      a 429 with Retry-After on the first attempt of each key
    acct_test_timeout_after_success_once
                                     the first attempt creates the transfer and never answers
    acct_test_<any of these>_unlisted, acct_test_unlisted
                                     as without the suffix (plain: no fault), and a transfer made is
                                     left out of `GET /v1/transfers` for `no_listado_s` (60 s)
    acct_test_<name>_sin_saldo       as without the suffix when that names a fault (a trigger above or
                                     a code of `CODIGOS_RECHAZO`), no fault otherwise, as for
                                     acct_test_afiliado_sin_saldo; the account's balance is spent at
                                     once (`saldos`), so a reversal from it is `balance_insufficient`

Reversals (`POST /v1/transfers/{id}/reversals`) take the faults of their transfer's destination,
declines aside: a reversal's own refusals come from the balances.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from pagos_dev.simulacion import Latencia

CODIGOS_RECHAZO = ("balance_insufficient", "account_invalid", "transfers_not_allowed", "card_declined")
_DISPARADOR = "acct_test_"
NO_LISTADO = "_unlisted"
SIN_SALDO = "_sin_saldo"  # an account whose balance is spent at once (`saldos`)


class Falla(StrEnum):
    NINGUNA = "ninguna"
    RECHAZO = "rechazo"
    ERROR_500 = "error_500"  # before the endpoint runs: nothing saved, a retry executes
    ERROR_500_GUARDADO = "error_500_guardado"  # saved under the key and replayed, as Stripe does
    ERROR_500_GUARDADO_CREADO = "error_500_guardado_creado"  # and the transfer was made
    LIMITE_429 = "limite_429"
    TIMEOUT_TRAS_EXITO = "timeout_tras_exito"


@dataclass(frozen=True, slots=True)
class Fallas:
    """Rates are per request, applied independently of each other; `latencia` as in `Latencia`.
    `tasa_500_guardado`: the share of executions answered with a 500 saved under the key (every
    retry replays it); the transfer is made for every second one of them. `limite_cuenta_por_s`:
    requests a second the account takes before a 429 (0: no limit)."""

    latencia: str = "lognormal:60:300"
    tasa_rechazo: float = 0.10
    tasa_500: float = 0.0
    tasa_429: float = 0.0
    tasa_timeout_tras_exito: float = 0.0
    tasa_500_guardado: float = 0.0
    limite_cuenta_por_s: float = 0.0
    retraso_listado_s: float = 0.0  # every transfer is listed this long after it was made (Stripe's lag)
    no_listado_s: float = 60.0  # the lag of a transfer to an `acct_test_…_unlisted` destination
    latencia_listado_s: float = 0.0  # every `GET /v1/transfers` answered this late (a list slower than a lease)
    retry_after_s: float = 1.0
    cuelgue_s: float = 120.0  # how long a "timeout after success" holds its response

    def __post_init__(self) -> None:
        Latencia.parse(self.latencia)
        for f in fields(self):
            valor = getattr(self, f.name)
            if f.name.startswith("tasa_") and not 0 <= valor <= 1:
                raise ValueError(f"{f.name} debe estar entre 0 y 1")
        for nombre in ("limite_cuenta_por_s", "retraso_listado_s", "no_listado_s", "latencia_listado_s"):
            if getattr(self, nombre) < 0:
                raise ValueError(f"{nombre} no puede ser negativo")

    def retraso_de_listado(self, destino: str) -> float:
        """How long after it is made a transfer to `destino` is left out of the lists."""
        destino = destino.removesuffix(SIN_SALDO)
        if destino.startswith(_DISPARADOR) and (destino.endswith(NO_LISTADO) or destino == _DISPARADOR + "unlisted"):
            return max(self.no_listado_s, self.retraso_listado_s)
        return self.retraso_listado_s

    def con(self, cambios: dict[str, Any]) -> Fallas:
        conocidos = {f.name for f in fields(self)}
        if desconocidos := set(cambios) - conocidos:
            raise ValueError(f"campos desconocidos: {', '.join(sorted(desconocidos))}")
        return replace(self, **cambios)


def elegir(fallas: Fallas, destino: str, intento_de_la_clave: int, rng: random.Random) -> tuple[Falla, str | None]:
    """The fault for one request (and the decline code when it is a decline)."""
    if destino.startswith(_DISPARADOR):
        return _disparada(destino.removeprefix(_DISPARADOR), intento_de_la_clave)
    por_tasa = (
        (Falla.LIMITE_429, fallas.tasa_429),
        (Falla.ERROR_500, fallas.tasa_500),
        (Falla.ERROR_500_GUARDADO, fallas.tasa_500_guardado),
        (Falla.RECHAZO, fallas.tasa_rechazo),
        (Falla.TIMEOUT_TRAS_EXITO, fallas.tasa_timeout_tras_exito),
    )
    for falla, tasa in por_tasa:
        # The saved 500s draw nothing when off: a seed gives the same faults as before they existed.
        if (tasa or falla is not Falla.ERROR_500_GUARDADO) and rng.random() < tasa:
            return falla, rng.choice(CODIGOS_RECHAZO[:2]) if falla is Falla.RECHAZO else None
    return Falla.NINGUNA, None


def _disparada(nombre: str, intento: int) -> tuple[Falla, str | None]:
    sin_saldo = nombre.endswith(SIN_SALDO) or nombre == SIN_SALDO[1:]
    nombre = nombre.removesuffix(SIN_SALDO).removesuffix(NO_LISTADO)
    if nombre in {"", "unlisted", SIN_SALDO[1:]}:
        return Falla.NINGUNA, None
    primera = intento == 1
    unica = {
        "error_500_once": Falla.ERROR_500,
        "rate_limited_once": Falla.LIMITE_429,
        "timeout_after_success_once": Falla.TIMEOUT_TRAS_EXITO,
    }
    if nombre in unica:
        return (unica[nombre], None) if primera else (Falla.NINGUNA, None)
    siempre = {
        "error_500": Falla.ERROR_500,
        "error_500_saved": Falla.ERROR_500_GUARDADO,
        "error_500_saved_created": Falla.ERROR_500_GUARDADO_CREADO,
    }
    if nombre in siempre:
        return siempre[nombre], None
    if sin_saldo and nombre not in CODIGOS_RECHAZO:  # the affiliate's name, not a decline code
        return Falla.NINGUNA, None
    return Falla.RECHAZO, nombre
