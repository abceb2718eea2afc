"""`PasarelaDePagos` on Stripe's HTTP API: a payout is a transfer to the affiliate's connected account.

Wire format as Stripe's: form-encoded bodies, amounts in minor units, lowercase currencies, a Bearer
secret key and a pinned Stripe-Version. The idempotency key is derived from the payment alone, so
every attempt for a payment — a retry here, after a crash, or from another replica — is the same
request to Stripe, which returns the first outcome instead of paying twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote_plus

import orjson
import structlog
from pydantic import SecretStr

from pagos_worker import observability as metrics
from pagos_worker.adapters.stripe.errors import StripeError
from pagos_worker.adapters.stripe.http import HttpClient, NoResponseError
from pagos_worker.adapters.stripe.resilience import (
    CircuitBreaker,
    CircuitoAbiertoError,
    EstadoCircuito,
    TokenBucket,
    backoff,
)
from pagos_worker.application.ports.pasarela import ResultadoIndeterminadoError, ResultadoPago
from pagos_worker.domain.pago import Pago

log = structlog.get_logger(__name__)

STRIPE_VERSION = "2024-06-20"
_RETRY_AFTER_MAXIMO_S = 30.0


@dataclass(frozen=True, slots=True)
class StripeConfig:
    api_base: str
    secret_key: SecretStr
    timeout_s: float = 10.0
    max_intentos: int = 4
    backoff_base_s: float = 0.2
    backoff_max_s: float = 3.0
    concurrencia: int = 100
    rate: float = 100.0
    burst: int = 20
    breaker_umbral: int = 5
    breaker_abierto_s: float = 10.0


class Destinos:
    """Which connected account (`acct_…`) pays each affiliate: an explicit mapping first, then a
    template such as `acct_{id_afiliado}`; None when neither applies."""

    def __init__(self, mapa: Mapping[str, str] | None = None, plantilla: str | None = "acct_{id_afiliado}") -> None:
        self._mapa = dict(mapa or {})
        self._plantilla = plantilla or None

    @classmethod
    def desde_archivo(cls, archivo: Path | None, plantilla: str | None) -> Destinos:
        mapa = json.loads(archivo.read_text()) if archivo else {}
        if not isinstance(mapa, dict) or not all(isinstance(v, str) for v in mapa.values()):
            raise ValueError(f"{archivo}: se esperaba un objeto JSON {{id_afiliado: acct_…}}")
        return cls(mapa, plantilla)

    def para(self, id_afiliado: str) -> str | None:
        if id_afiliado in self._mapa:
            return self._mapa[id_afiliado]
        return self._plantilla.format(id_afiliado=id_afiliado) if self._plantilla else None


@dataclass(frozen=True, slots=True)
class _Reintentar:
    motivo: str
    espera: float | None = None  # what the gateway asked for (Retry-After), if anything


class StripePasarelaDePagos:
    """Use as `async with`, or call `cerrar()`: it keeps connections to the gateway open."""

    def __init__(self, config: StripeConfig, destinos: Destinos) -> None:
        self._http = HttpClient(config.api_base)
        self._config = config
        self._destinos = destinos
        self._limite = asyncio.Semaphore(config.concurrencia)
        self._bucket = TokenBucket(config.rate, config.burst)
        self._breaker = CircuitBreaker(config.breaker_umbral, config.breaker_abierto_s)
        self._auth = {
            "Authorization": f"Bearer {config.secret_key.get_secret_value()}",
            "Stripe-Version": STRIPE_VERSION,
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "User-Agent": "pagos-worker",
        }
        metrics.CIRCUITO.set_function(lambda: float(self._breaker.estado is not EstadoCircuito.CERRADO))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.cerrar()

    async def cerrar(self) -> None:
        await self._http.cerrar()

    @staticmethod
    def idempotency_key(pago: Pago) -> str:
        return f"pagos-worker-transfer-{pago.id_pago}"

    @property
    def circuito(self) -> EstadoCircuito:
        return self._breaker.estado

    async def esperar_disponible(self) -> None:
        """Block while the circuit is open (the worker calls this before taking a payment)."""
        await self._breaker.esperar_disponible()

    async def procesar_pago(self, pago: Pago) -> ResultadoPago:
        inicio = time.perf_counter()
        resultado = "indeterminado"
        try:
            respuesta = await self._procesar(pago)
            resultado = "exitoso" if respuesta.exitoso else "rechazado"
            return respuesta
        finally:
            metrics.etiquetada(metrics.PASARELA, resultado).observe(time.perf_counter() - inicio)

    async def _procesar(self, pago: Pago) -> ResultadoPago:
        destino = self._destinos.para(pago.id_afiliado)
        if destino is None:
            return ResultadoPago.fallo("El afiliado no tiene cuenta de destino configurada")
        body = formulario(pago, destino)  # encoded once: every attempt sends the very same bytes
        headers = {**self._auth, "Idempotency-Key": self.idempotency_key(pago)}
        motivo, motivo_espera = "", None
        for intento in range(1, self._config.max_intentos + 1):
            if intento > 1:
                await asyncio.sleep(self._espera(intento - 1, motivo_espera))
            try:
                self._breaker.permitir()
            except CircuitoAbiertoError as exc:
                raise ResultadoIndeterminadoError(str(exc)) from None
            resultado = await self._intentar(body, headers)
            if isinstance(resultado, ResultadoPago):
                return resultado
            motivo, motivo_espera = resultado.motivo, resultado.espera
            log.warning("stripe.reintento", id_pago=str(pago.id_pago), intento=intento, motivo=motivo)
        intentos = self._config.max_intentos
        raise ResultadoIndeterminadoError(f"sin respuesta definitiva tras {intentos} intentos: {motivo}")

    def _espera(self, reintento: int, pedida: float | None) -> float:
        if pedida is not None:
            return min(pedida, _RETRY_AFTER_MAXIMO_S)
        return backoff(reintento, base=self._config.backoff_base_s, maximo=self._config.backoff_max_s)

    async def _intentar(self, body: bytes, headers: dict[str, str]) -> ResultadoPago | _Reintentar:
        async with self._limite:
            await self._bucket.acquire()
            try:
                resp = await self._http.post("/v1/transfers", body, headers, timeout=self._config.timeout_s)
                respuesta = orjson.loads(resp.body) if resp.body else None
            except (NoResponseError, TimeoutError, orjson.JSONDecodeError) as exc:
                self._breaker.fallo()
                return _Reintentar(f"sin respuesta ({type(exc).__name__})")
        return self._clasificar(resp.status, respuesta, resp.headers)

    def _clasificar(self, status: int, respuesta: Any, headers: Mapping[str, str]) -> ResultadoPago | _Reintentar:  # noqa: ANN401
        if 200 <= status < 300 and isinstance(respuesta, dict) and isinstance(respuesta.get("id"), str):  # noqa: PLR2004
            self._breaker.exito()
            return ResultadoPago.exito(respuesta["id"])
        # A replayed answer names the request that produced it: the same reference every time.
        error = StripeError.parse(status, respuesta, headers.get("original-request") or headers.get("request-id"))
        should_retry = headers.get("stripe-should-retry")
        if status >= 500:  # noqa: PLR2004 - indeterminate: the transfer may exist; retry with the same key
            self._breaker.fallo()
            if should_retry == "false":
                raise ResultadoIndeterminadoError(str(error))
            return _Reintentar(str(error), _retry_after(headers))
        self._breaker.exito()  # the gateway answered: it is up
        if status in (409, 429) or should_retry == "true":
            return _Reintentar(str(error), _retry_after(headers))
        if status in (401, 403) or error.type == "idempotency_error":
            # Our configuration is wrong, not the payment: never report these as FALLIDO.
            log.error("stripe.configuracion", error=str(error))
            raise ResultadoIndeterminadoError(str(error))
        return ResultadoPago.fallo(error.mensaje_error, referencia_pago=error.request_id)


def formulario(pago: Pago, destino: str) -> bytes:
    """The transfer as Stripe's form encoding — what `urlencode` makes of it, for a fraction of its
    cost: the keys are fixed and only the free-text values need quoting."""
    afiliado = quote_plus(pago.id_afiliado)
    return (
        f"amount={pago.importe.unidades_menores}&currency={pago.importe.moneda.value.lower()}"
        f"&destination={quote_plus(destino)}&description=Pago+a+afiliado+{afiliado}"
        f"&metadata%5Bid_pago%5D={pago.id_pago}&metadata%5Bid_afiliado%5D={afiliado}"
    ).encode()


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        return None
