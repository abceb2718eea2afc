"""`PasarelaDePagos` on Stripe's HTTP API: a payout is a transfer to the affiliate's connected account.

Wire format as Stripe's: form-encoded bodies, amounts in minor units, lowercase currencies, a Bearer
secret key and a pinned Stripe-Version. The idempotency key is derived from the payment alone, so
every attempt for a payment — a retry here, after a crash, or from another replica — is the same
request to Stripe, which returns the first outcome instead of paying twice.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote_plus

import aiohttp
import orjson
import structlog
from yarl import URL

from pagos_worker import observability as metrics
from pagos_worker.adapters.stripe.config import STRIPE_VERSION, StripeConfig
from pagos_worker.adapters.stripe.errors import StripeError
from pagos_worker.adapters.stripe.resilience import (
    CircuitBreaker,
    CircuitoAbiertoError,
    EstadoCircuito,
    TokenBucket,
    backoff,
)
from pagos_worker.application.ports.pasarela import (
    PasarelaNoDisponibleError,
    ResultadoIndeterminadoError,
    ResultadoPago,
)
from pagos_worker.domain.pago import Pago

log = structlog.get_logger(__name__)

__all__ = ["STRIPE_VERSION", "Destinos", "StripeConfig", "StripePasarelaDePagos", "formulario"]

_RETRY_AFTER_MAXIMO_S = 30.0
_KEEPALIVE_S = 30.0  # idle connections kept this long (Stripe keeps them longer)


class Destinos:
    """Which connected account (`acct_…`) pays each affiliate: an explicit mapping first, then a
    template such as `acct_{id_afiliado}`; None when neither applies."""

    def __init__(self, mapa: Mapping[str, str] | None = None, plantilla: str | None = None) -> None:
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
    """Use as `async with`: it holds one aiohttp session (keep-alive connections, at most
    `concurrencia` of them) for the life of the process."""

    def __init__(self, config: StripeConfig, destinos: Destinos) -> None:
        self._config = config = config.validada()  # a bad key or base stops the start, here
        self._destinos = destinos
        self._url = URL(f"{config.api_base}/v1/transfers")
        self._session: aiohttp.ClientSession | None = None
        self._limite = asyncio.Semaphore(config.concurrencia)
        self._bucket = TokenBucket(config.rate, config.burst)
        self._breaker = CircuitBreaker(config.breaker_umbral, config.breaker_abierto_s)
        metrics.CIRCUITO.set_function(lambda: float(self._breaker.estado is not EstadoCircuito.CERRADO))

    async def __aenter__(self) -> Self:
        config = self._config
        # TLS is always verified: against the system's trust store, or the CA bundle configured.
        tls: ssl.SSLContext | bool = ssl.create_default_context(cafile=config.ca_bundle) if config.ca_bundle else True
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=config.concurrencia, keepalive_timeout=_KEEPALIVE_S, ttl_dns_cache=300, ssl=tls
            ),
            timeout=aiohttp.ClientTimeout(
                total=config.timeout_s, connect=config.connect_timeout_s, sock_read=config.read_timeout_s
            ),
            headers={
                "Authorization": f"Bearer {config.secret_key.get_secret_value()}",
                "Stripe-Version": STRIPE_VERSION,
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "User-Agent": config.user_agent,
            },
            trust_env=True,  # HTTPS_PROXY / NO_PROXY: egress proxies in front of payment providers
            raise_for_status=False,
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.cerrar()

    async def cerrar(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

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
        headers = {"Idempotency-Key": self.idempotency_key(pago)}
        motivo, motivo_espera = "", None
        for intento in range(1, self._config.max_intentos + 1):
            if intento > 1:
                await asyncio.sleep(self._espera(intento - 1, motivo_espera))
            try:
                self._breaker.permitir()
            except CircuitoAbiertoError as exc:  # refused before the first send: no attempt was made
                raise (PasarelaNoDisponibleError if intento == 1 else ResultadoIndeterminadoError)(str(exc)) from None
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
        if self._session is None:
            raise RuntimeError("StripePasarelaDePagos is used outside `async with`")
        async with self._limite:
            await self._bucket.acquire()
            try:
                async with self._session.post(self._url, data=body, headers=headers, allow_redirects=False) as resp:
                    status, respuesta, cabeceras = resp.status, await resp.read(), resp.headers
            except (aiohttp.ClientError, TimeoutError) as exc:
                # No answer: it may or may not have reached Stripe; the same key makes a retry safe.
                self._breaker.fallo()
                return _Reintentar(f"sin respuesta ({type(exc).__name__})")
        return self._clasificar(status, respuesta, cabeceras)

    def _clasificar(self, status: int, crudo: bytes, headers: Mapping[str, str]) -> ResultadoPago | _Reintentar:
        respuesta = _json(crudo)
        # A replayed answer names the request that produced it: the same reference every time.
        request_id = headers.get("Original-Request") or headers.get("Request-Id")
        if 200 <= status < 300:  # noqa: PLR2004
            if isinstance(respuesta, dict) and isinstance(respuesta.get("id"), str) and respuesta["id"]:
                self._breaker.exito()
                return ResultadoPago.exito(respuesta["id"])
            self._breaker.fallo()  # not Stripe's answer (a proxy's page?): nothing is known
            raise ResultadoIndeterminadoError(f"HTTP {status} sin id de transfer en la respuesta ({request_id})")
        error = StripeError.parse(status, respuesta, request_id)
        should_retry = headers.get("Stripe-Should-Retry")
        if status >= 500:  # noqa: PLR2004 - indeterminate: the transfer may exist; retry with the same key
            self._breaker.fallo()
            if should_retry == "false":
                raise ResultadoIndeterminadoError(str(error))
            return _Reintentar(str(error), _retry_after(headers))
        if 300 <= status < 400 or status in (401, 403, 404, 405):  # noqa: PLR2004
            # Our configuration is wrong (API base, key), not the payment: never FALLIDO.
            self._breaker.fallo()
            log.error("stripe.configuracion", status=status, error=str(error))
            raise ResultadoIndeterminadoError(f"configuración de Stripe: {error}")
        self._breaker.exito()  # the gateway answered: it is up
        if status in (409, 429) or should_retry == "true":
            return _Reintentar(str(error), _retry_after(headers))
        if error.es_rechazo:
            return ResultadoPago.fallo(error.mensaje_error, referencia_pago=error.request_id)
        log.error("stripe.respuesta_no_reconocida", status=status, error=str(error))
        raise ResultadoIndeterminadoError(str(error))  # idempotency_error, a malformed request…


def _json(crudo: bytes) -> Any:  # noqa: ANN401 - any JSON value, or None
    try:
        return orjson.loads(crudo) if crudo else None
    except orjson.JSONDecodeError:
        return None


def formulario(pago: Pago, destino: str) -> bytes:
    """The transfer as Stripe's form encoding — what `urlencode` makes of it, for a fraction of its
    cost: the keys are fixed and only the free-text values need quoting."""
    afiliado = quote_plus(pago.id_afiliado)
    return (
        f"amount={pago.importe.unidades_menores}&currency={pago.importe.moneda.value.lower()}"
        f"&destination={quote_plus(destino)}&description=Pago+a+afiliado+{afiliado}"
        f"&transfer_group={pago.id_pago}"
        f"&metadata%5Bid_pago%5D={pago.id_pago}&metadata%5Bid_afiliado%5D={afiliado}"
    ).encode()


def _retry_after(headers: Mapping[str, str]) -> float | None:  # Retry-After in seconds, if any
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        return None
