"""Who may call, and how often: API keys as Stripe takes them (Bearer, or HTTP Basic with the key
as the user name) and the account's rate limit.

The simulator is one account in test mode: any `sk_test_` or `rk_test_` key is one of its keys.
A live key is refused (no live mode here: a live key sent to a simulator is a misconfiguration)."""

from __future__ import annotations

import base64
import binascii
import functools
import math
import time

from pagos_dev.simulador import errores

PREFIJOS = ("sk_test_", "rk_test_")
_SIN_CLAVE = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, using "
    "Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication "
    "for details, or we can help at https://support.stripe.com/."
)
_LIMITE = "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."


@functools.lru_cache(maxsize=64)  # a client sends the same header on every request
def clave_api(authorization: str | None) -> str:
    """The API key the request carries; a 401 as Stripe's when there is none or it is not valid."""
    if not authorization:
        raise _no_autorizado(_SIN_CLAVE)
    esquema, _, credencial = authorization.strip().partition(" ")
    credencial = credencial.strip()
    if esquema.lower() == "bearer":
        clave = credencial
    elif esquema.lower() == "basic":
        try:
            clave = base64.b64decode(credencial, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            raise _no_autorizado("Invalid API Key provided: the Basic credentials are not valid base64") from None
    else:
        raise _no_autorizado(_SIN_CLAVE)
    if not clave:
        raise _no_autorizado(_SIN_CLAVE)
    if not clave.startswith(PREFIJOS) or len(clave) == len("sk_test_") or not clave.isascii():
        raise _no_autorizado(f"Invalid API Key provided: {_enmascarada(clave)}")
    return clave


def _enmascarada(clave: str) -> str:
    prefijo = clave[:8] if clave[:3] in {"sk_", "rk_", "pk_"} else ""
    return f"{prefijo}{'*' * 12}{clave[-4:] if len(clave) > 12 else ''}"  # noqa: PLR2004


def _no_autorizado(mensaje: str) -> errores.ErrorStripeError:
    return errores.ErrorStripeError(401, mensaje, cabeceras={"WWW-Authenticate": 'Basic realm="Stripe"'})


class LimiteDeCuenta:
    """A token bucket: `por_s` requests a second, a second's worth in a burst (0: no limit)."""

    def __init__(self, por_s: float) -> None:
        self.por_s = por_s
        self._fichas = por_s
        self._ultimo = time.monotonic()

    def cambiar(self, por_s: float) -> None:
        self.por_s = self._fichas = por_s

    def tomar(self) -> None:
        """One request's token; a 429 with Retry-After when there is none."""
        if not self.por_s:
            return
        ahora = time.monotonic()
        self._fichas = min(self.por_s, self._fichas + (ahora - self._ultimo) * self.por_s)
        self._ultimo = ahora
        if self._fichas >= 1:
            self._fichas -= 1
            return
        espera = math.ceil((1 - self._fichas) / self.por_s)
        cabeceras = {"Retry-After": str(max(1, espera))}
        raise errores.ErrorStripeError(429, _LIMITE, code="rate_limit", cabeceras=cabeceras)
