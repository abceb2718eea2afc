"""`PasarelaDePagos` on Stripe's HTTP API: a payout is a transfer to the affiliate's connected account.

Wire format as Stripe's: form-encoded bodies, amounts in minor units, lowercase currencies, a Bearer
secret key and a pinned Stripe-Version. The idempotency key is derived from the payment alone, so
every attempt for a payment — a retry here, after a crash, or from another replica — is the same
request to Stripe, which returns the first outcome instead of paying twice.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import aiohttp
import structlog
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from pagos_worker import observability as metrics
from pagos_worker.adapters.stripe.config import STRIPE_VERSION, StripeConfig
from pagos_worker.adapters.stripe.destinos import Destinos
from pagos_worker.adapters.stripe.errors import StripeError
from pagos_worker.adapters.stripe.resilience import (
    CircuitBreaker,
    CircuitoAbiertoError,
    EstadoCircuito,
    TokenBucket,
    backoff,
)
from pagos_worker.adapters.stripe.wire import formulario, json_o_nada, retry_after, transfer_del_pago
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


@dataclass(frozen=True, slots=True)
class _Consultar:
    """The key's answer will not change (a saved 500 replayed, `idempotency_error`): look it up."""

    motivo: str
    espera: float | None = None


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
        self._proxy: URL | None = None
        self._proxy_auth: aiohttp.BasicAuth | None = None
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
            # The egress proxy (HTTPS_PROXY / NO_PROXY) is read from the environment once, below, not
            # by `trust_env`: that also reads ~/.netrc in a worker thread on every request (38 % of a
            # worker's samples at 4,000 payments/s in a py-spy profile).
            trust_env=False,
            raise_for_status=False,
        )
        try:
            self._proxy, self._proxy_auth = get_env_proxy_for_url(self._url)
        except LookupError:  # none set, or NO_PROXY names Stripe's host
            self._proxy, self._proxy_auth = None, None
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.cerrar()

    async def cerrar(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @staticmethod
    def idempotency_key(pago: Pago) -> str:
        """One key per payment and key generation; the first generation keeps the historical form."""
        base = f"pagos-worker-transfer-{pago.id_pago}"
        return base if pago.generacion_clave == 1 else f"{base}:{pago.generacion_clave}"

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
            metrics.SIN_DESTINO.inc()
            log.error("stripe.sin_cuenta_destino", id_pago=str(pago.id_pago), id_afiliado=pago.id_afiliado)
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
            if isinstance(resultado, _Consultar):
                return await self._segun_consulta(pago, resultado.motivo)
            motivo, motivo_espera = resultado.motivo, resultado.espera
            log.warning("stripe.reintento", id_pago=str(pago.id_pago), intento=intento, motivo=motivo)
        intentos = self._config.max_intentos
        raise ResultadoIndeterminadoError(f"sin respuesta definitiva tras {intentos} intentos: {motivo}")

    async def _segun_consulta(self, pago: Pago, motivo: str) -> ResultadoPago:
        """The key's answer cannot change (a saved 500, or the key taken by other parameters): what
        Stripe holds for the payment settles it, and without a transfer the outcome stays unknown."""
        log.warning("stripe.consulta_tras_respuesta_guardada", id_pago=str(pago.id_pago), motivo=motivo)
        if (referencia := await self.buscar_transferencia(pago)) is not None:
            return ResultadoPago.exito(referencia)
        raise ResultadoIndeterminadoError(f"{motivo}; la pasarela no tiene transfer del pago")

    async def buscar_transferencia(self, pago: Pago) -> str | None:
        """The id of the transfer Stripe holds for this payment (`transfer_group` = its id), or None
        when it holds none. Raises `ResultadoIndeterminadoError` when Stripe cannot tell now."""
        params = {"transfer_group": str(pago.id_pago), "limit": "100"}
        motivo, motivo_espera = "", None
        for intento in range(1, self._config.max_intentos + 1):
            if intento > 1:
                await asyncio.sleep(self._espera(intento - 1, motivo_espera))
            try:
                self._breaker.permitir()
            except CircuitoAbiertoError as exc:
                raise ResultadoIndeterminadoError(str(exc)) from None
            respuesta = await self._enviar("GET", params=params)
            if isinstance(respuesta, _Reintentar):
                motivo, motivo_espera = respuesta.motivo, respuesta.espera
                continue
            status, crudo, headers = respuesta
            lista = json_o_nada(crudo)
            if status == 200 and isinstance(lista, dict) and isinstance(lista.get("data"), list):  # noqa: PLR2004
                self._breaker.exito()
                return transfer_del_pago(lista["data"], pago)
            error = self._clasificar_error(status, lista, headers)
            if isinstance(error, ResultadoPago | _Consultar):  # a list is never refused for a payment
                raise ResultadoIndeterminadoError(f"consulta de transfers: HTTP {status}")
            motivo, motivo_espera = error.motivo, error.espera
        raise ResultadoIndeterminadoError(f"consulta de transfers sin respuesta tras {intento} intentos: {motivo}")

    def _espera(self, reintento: int, pedida: float | None) -> float:
        if pedida is not None:
            return min(pedida, _RETRY_AFTER_MAXIMO_S)
        return backoff(reintento, base=self._config.backoff_base_s, maximo=self._config.backoff_max_s)

    async def _enviar(
        self, metodo: str, *, data: bytes | None = None, headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, bytes, Mapping[str, str]] | _Reintentar:  # fmt: skip
        """One request, within the concurrency and rate limits; no answer is `_Reintentar`."""
        if self._session is None:
            raise RuntimeError("StripePasarelaDePagos is used outside `async with`")
        async with self._limite:
            await self._bucket.acquire()
            try:
                async with self._session.request(
                    metodo,
                    self._url,
                    data=data,
                    params=params,
                    headers=headers,
                    allow_redirects=False,
                    proxy=self._proxy,
                    proxy_auth=self._proxy_auth,
                ) as resp:
                    metrics.etiquetada(metrics.RESPUESTAS, str(resp.status)).inc()
                    return resp.status, await resp.read(), resp.headers
            except (aiohttp.ClientError, TimeoutError) as exc:
                metrics.etiquetada(metrics.RESPUESTAS, "ninguna").inc()
                # No answer: it may or may not have reached Stripe; the same key makes a retry safe.
                self._breaker.fallo()
                return _Reintentar(f"sin respuesta ({type(exc).__name__})")

    async def _intentar(self, body: bytes, headers: dict[str, str]) -> ResultadoPago | _Reintentar | _Consultar:
        respuesta = await self._enviar("POST", data=body, headers=headers)
        if isinstance(respuesta, _Reintentar):
            return respuesta
        status, crudo, cabeceras = respuesta
        if 200 <= status < 300:  # noqa: PLR2004
            transfer = json_o_nada(crudo)
            if isinstance(transfer, dict) and isinstance(transfer.get("id"), str) and transfer["id"]:
                self._breaker.exito()
                return ResultadoPago.exito(transfer["id"])
            self._breaker.fallo()  # not Stripe's answer (a proxy's page?): nothing is known
            request_id = cabeceras.get("Request-Id")
            raise ResultadoIndeterminadoError(f"HTTP {status} sin id de transfer en la respuesta ({request_id})")
        return self._clasificar_error(status, json_o_nada(crudo), cabeceras)

    def _clasificar_error(
        self,
        status: int,
        respuesta: Any,  # noqa: ANN401 - any JSON value
        headers: Mapping[str, str],
    ) -> ResultadoPago | _Reintentar | _Consultar:
        # A replayed answer names the request that produced it: the same reference every time.
        request_id = headers.get("Original-Request") or headers.get("Request-Id")
        error = StripeError.parse(status, respuesta, request_id)
        should_retry = headers.get("Stripe-Should-Retry")
        if status >= 500:  # noqa: PLR2004 - indeterminate: the transfer may exist
            self._breaker.fallo()
            if headers.get("Idempotent-Replayed") == "true":
                return _Consultar(f"Stripe guardó {error} bajo la clave y lo repite")
            if should_retry == "false":  # saved under the key: a retry would replay it
                return _Consultar(f"{error}, sin reintento según Stripe")
            return _Reintentar(str(error), retry_after(headers))
        if 300 <= status < 400 or status in (401, 403, 404, 405):  # noqa: PLR2004
            # Our configuration is wrong (API base, key), not the payment: never FALLIDO.
            self._breaker.fallo()
            log.error("stripe.configuracion", status=status, error=str(error))
            raise ResultadoIndeterminadoError(f"configuración de Stripe: {error}")
        self._breaker.exito()  # the gateway answered: it is up
        if status in (409, 429) or should_retry == "true":
            return _Reintentar(str(error), retry_after(headers))
        if error.type == "idempotency_error":
            return _Consultar(str(error))
        if error.es_rechazo:
            return ResultadoPago.fallo(error.mensaje_error, referencia_pago=error.request_id)
        log.error("stripe.respuesta_no_reconocida", status=status, error=str(error))
        raise ResultadoIndeterminadoError(str(error))  # a malformed request of ours…
