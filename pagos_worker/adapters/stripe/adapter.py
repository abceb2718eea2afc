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
from datetime import UTC, datetime
from typing import Any, Self

import aiohttp
import structlog
from aiohttp.helpers import get_env_proxy_for_url
from multidict import istr
from yarl import URL

from pagos_worker import observability as metrics
from pagos_worker.adapters.stripe.config import STRIPE_VERSION, StripeConfig, StripeConfigError
from pagos_worker.adapters.stripe.destinos import Destinos
from pagos_worker.adapters.stripe.errors import StripeError
from pagos_worker.adapters.stripe.presupuesto import Presupuesto
from pagos_worker.adapters.stripe.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    TokenBucket,
    backoff,
)
from pagos_worker.adapters.stripe.wire import (
    json_or_none,
    retry_after,
    reversal_form,
    reversals_of,
    transfer_form,
    transfers_of,
)
from pagos_worker.application.ports.pasarela import (
    ClaveAgotadaError,
    PasarelaNoDisponibleError,
    ResultadoIndeterminadoError,
    ResultadoPago,
    SinPruebaDePagoError,
    TransferenciaHallada,
)
from pagos_worker.clock import utcnow
from pagos_worker.domain.pago import Pago
from pagos_worker.domain.reclamo import Reclamable
from pagos_worker.domain.reverso import CodigoReversoFallido, Reverso

log = structlog.get_logger(__name__)

__all__ = ["STRIPE_VERSION", "Destinos", "StripeConfig", "StripePasarelaDePagos", "transfer_form"]

_RETRY_AFTER_MAX_S = 30.0
# The header's name made case-insensitive once: given as a plain str, aiohttp's header dicts make
# an `istr` of it for each request (~0.2 KB a request in flight).
_IDEMPOTENCY_KEY = istr("Idempotency-Key")
_KEEPALIVE_S = 30.0  # idle connections kept this long (Stripe keeps them longer)
_PAGINAS_MAX = 10  # a payment's transfers, 100 a page: more than a thousand is no payment of ours
# Stripe's codes for a connected account whose balance cannot cover a reversal.
_SIN_SALDO = frozenset({"balance_insufficient", "insufficient_funds"})
_CODIGO_SALDO = CodigoReversoFallido.SALDO_INSUFICIENTE
_SALDO_INSUFICIENTE = "El saldo de la cuenta del afiliado no cubre el reverso"


def _plazo(pago: Reclamable, reserva: float = 0.0) -> float | None:
    """The holder's deadline on this host's monotonic clock, less `reserva` seconds: the lease's own
    (`Lease.plazo`), or what its end leaves on the wall clock for a lease read, not taken."""
    if pago.lease is None:
        return None
    if pago.lease.plazo is not None:
        return pago.lease.plazo - reserva
    return time.monotonic() + (pago.lease.expira - utcnow()).total_seconds() - reserva


def _hallada(t: dict[str, Any]) -> TransferenciaHallada:
    """A listed transfer as Stripe showed it; what it left out, or gave in another type, is None."""
    return TransferenciaHallada(
        referencia=str(t["id"]),
        unidades_menores=t["amount"] if isinstance(t.get("amount"), int) else None,
        moneda=str(t["currency"]).upper() if isinstance(t.get("currency"), str) else None,
        creada=datetime.fromtimestamp(t["created"], UTC) if isinstance(t.get("created"), int) else None,
        destino=t["destination"] if isinstance(t.get("destination"), str) else None,
        revertido=t["amount_reversed"] if isinstance(t.get("amount_reversed"), int) else None,
    )


@dataclass(frozen=True, slots=True)
class _NoEnviado:
    """Not sent: the attempt could still be running when the payment's lease expires, or the
    account's budget could not be read."""

    reason: str
    por_plazo: bool = False  # the lease's end, not the gateway, left no room for it


@dataclass(frozen=True, slots=True)
class _LookUp:
    """The key's answer will not change (a saved 500 replayed, `idempotency_error`): look it up."""

    reason: str
    delay: float | None = None


@dataclass(frozen=True, slots=True)
class _Retry:
    reason: str
    delay: float | None = None  # what the gateway asked for (Retry-After), if anything


class StripePasarelaDePagos:
    """Use as `async with`: it holds one aiohttp session (keep-alive connections, at most
    `concurrencia` of them) for the life of the process."""

    def __init__(self, config: StripeConfig, destinos: Destinos, presupuesto: Presupuesto | None = None) -> None:
        """`presupuesto`: the account's request budget shared by every replica; without it, this
        process's own (`config.rate`), right only where one process is all that calls Stripe."""
        self._config = config = config.validated()  # a bad key or base stops the start, here
        self._destinos = destinos
        self._url = URL(f"{config.api_base}/v1/transfers")
        self._session: aiohttp.ClientSession | None = None
        self._proxy: URL | None = None
        self._proxy_auth: aiohttp.BasicAuth | None = None
        self._limite = asyncio.Semaphore(config.concurrencia)
        self._presupuesto: Presupuesto = presupuesto or TokenBucket(config.rate, config.burst)
        self._breaker = CircuitBreaker(config.breaker_umbral, config.breaker_abierto_s)
        metrics.CIRCUITO.set_function(lambda: float(self._breaker.state is not CircuitState.CLOSED))

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

    async def comprobar_acceso(self) -> None:
        """At start, one `GET /v1/transfers?limit=1`. A key Stripe refuses (401), a key that may not
        read transfers (403: a restricted key without it would fail every lookup before a retry),
        or a base that is not Stripe's API (3xx, 404, 405) stops the start here, with a
        `StripeConfigError` naming the setting, instead of failing payment by payment. No answer,
        or a 5xx, is Stripe's trouble and not the configuration's: a warning, and the start goes on."""
        answer = await self._send("GET", params={"limit": "1"})
        if isinstance(answer, _Retry | _NoEnviado):
            log.warning("stripe.comprobacion_sin_respuesta", motivo=answer.reason)
            return
        status, raw, headers = answer
        request_id = headers.get("Request-Id", "sin Request-Id")
        if status == 401:  # noqa: PLR2004
            raise StripeConfigError(f"PAGOS_STRIPE_SECRET_KEY: Stripe does not accept the key (HTTP 401, {request_id})")
        if status == 403:  # noqa: PLR2004
            raise StripeConfigError(
                f"PAGOS_STRIPE_SECRET_KEY: the key may not read transfers (HTTP 403, {request_id}); a restricted "
                "key needs read and write access to transfers"
            )
        if 300 <= status < 400 or status in (404, 405):  # noqa: PLR2004
            raise StripeConfigError(
                f"PAGOS_STRIPE_API_BASE {self._config.api_base}: GET /v1/transfers answered HTTP {status} "
                f"({request_id}): not Stripe's API"
            )
        if status != 200:  # noqa: PLR2004
            log.warning("stripe.comprobacion_sin_respuesta", motivo=f"HTTP {status}", request_id=request_id)
            return
        listing = json_or_none(raw)
        if not (isinstance(listing, dict) and listing.get("object") == "list"):  # a page of something else
            raise StripeConfigError(
                f"PAGOS_STRIPE_API_BASE {self._config.api_base}: GET /v1/transfers answered HTTP 200 without "
                f"a Stripe list ({request_id}): not Stripe's API"
            )

    @staticmethod
    def idempotency_key(pago: Pago) -> str:
        """One key per payment and key generation; the first generation keeps the historical form."""
        base = f"pagos-worker-transfer-{pago.id_pago}"
        return base if pago.generacion_clave == 1 else f"{base}:{pago.generacion_clave}"

    @property
    def circuit(self) -> CircuitState:
        return self._breaker.state

    async def esperar_disponible(self) -> None:
        """Block while the circuit is open (the worker calls this before taking a payment)."""
        await self._breaker.esperar_disponible()

    async def procesar_pago(self, pago: Pago) -> ResultadoPago:
        # One frame for the whole call, its metric included: a frame held through the gateway call
        # is ~0.3 KB a payment, and a replica with a slow gateway has thousands there at once.
        started = time.perf_counter()
        answer: ResultadoPago | None = None  # None when it raises: the outcome is unknown
        try:
            destination = self._destinos.para(pago.id_afiliado)
            if destination is None:
                metrics.SIN_DESTINO.inc()
                log.error("stripe.sin_cuenta_destino", id_pago=str(pago.id_pago), id_afiliado=pago.id_afiliado)
                if pago.es_reintento():  # an earlier attempt, with the account it had then, may have paid
                    raise ResultadoIndeterminadoError(
                        f"el afiliado {pago.id_afiliado!r} ya no tiene cuenta de destino configurada y un intento "
                        "anterior pudo pagar: un operador decide"
                    )
                answer = ResultadoPago.fallo("El afiliado no tiene cuenta de destino configurada")
                return answer
            body = transfer_form(pago, destination)  # encoded once: every attempt sends the very same bytes
            headers: dict[str, str] = {_IDEMPOTENCY_KEY: self.idempotency_key(pago)}
            outcome = await self._post(self._url, body, headers, _plazo(pago), pago.ids)
            answer = await self._settled_by_lookup(pago, outcome.reason) if isinstance(outcome, _LookUp) else outcome
            return answer
        finally:
            label = "indeterminado" if answer is None else "exitoso" if answer.exitoso else "rechazado"
            metrics.etiquetada(metrics.PASARELA, label).observe(time.perf_counter() - started)

    async def _post(
        self, url: URL, body: bytes, headers: dict[str, str], plazo: float | None, ids: dict[str, str],
        *, sin_codigo_es_rechazo: bool = False,
    ) -> ResultadoPago | _LookUp:  # fmt: skip
        """One idempotent POST with the retry policy: its definitive answer, or `_LookUp` when the
        key's answer cannot change. Raises `PasarelaNoDisponibleError` when nothing was sent, and
        `ResultadoIndeterminadoError` when the outcome is unknown. `sin_codigo_es_rechazo`: a 400
        error object without a code is a refusal (Stripe refuses a reversal of more than is left,
        or of a transfer reversed already, so), not a malformed request of ours."""
        reason, asked_delay = "", None
        for attempt in range(1, self._config.max_intentos + 1):
            sonda = await self._permiso_de_intento(attempt, asked_delay)
            try:
                outcome = self._attempt_outcome(  # no local keeps the answer through a retry's wait
                    await self._send("POST", data=body, headers=headers, plazo=plazo, url=url),
                    sin_codigo_es_rechazo=sin_codigo_es_rechazo,
                )
            finally:
                if sonda:  # the verdict is in by now, unless nothing was sent (or it was cancelled)
                    self._breaker.release(sonda)
            if isinstance(outcome, ResultadoPago | _LookUp):
                return outcome
            if isinstance(outcome, _NoEnviado):
                # No POST may outlive the lease: a replica that claims the item after it expires
                # must find no call of ours still in flight (it may renew the key and call). Nor is
                # one sent without a turn of the account's budget.
                # Out of lease, it counts as an attempt: a gateway slower than the lease (its
                # budget's or its lookups' waits) ends in front of an operator, not in a loop.
                no_intento = attempt == 1 and not outcome.por_plazo
                error = PasarelaNoDisponibleError if no_intento else ResultadoIndeterminadoError
                raise error(f"{outcome.reason} ({reason or 'primer intento'})")
            reason, asked_delay = outcome.reason, outcome.delay
            log.warning("stripe.reintento", **ids, intento=attempt, motivo=reason)
        attempts = self._config.max_intentos
        raise ResultadoIndeterminadoError(f"sin respuesta definitiva tras {attempts} intentos: {reason}")

    @staticmethod
    def idempotency_key_reverso(reverso: Reverso) -> str:
        """One key per reversal and key generation, never a payment's."""
        base = f"pagos-worker-reversal-{reverso.id_reverso}"
        return base if reverso.generacion_clave == 1 else f"{base}:{reverso.generacion_clave}"

    def _url_reversos(self, reverso: Reverso) -> URL:
        if not reverso.referencia_transfer:
            raise ResultadoIndeterminadoError(f"{reverso.identidad}: su pago no tiene transfer que revertir")
        return self._url / reverso.referencia_transfer / "reversals"

    async def revertir(self, reverso: Reverso) -> ResultadoPago:
        started = time.perf_counter()
        answer: ResultadoPago | None = None
        try:
            headers: dict[str, str] = {_IDEMPOTENCY_KEY: self.idempotency_key_reverso(reverso)}
            url = self._url_reversos(reverso)
            outcome = await self._post(
                url, reversal_form(reverso), headers, _plazo(reverso), reverso.ids, sin_codigo_es_rechazo=True
            )
            if isinstance(outcome, _LookUp):
                log.warning("stripe.consulta_tras_respuesta_guardada", **reverso.ids, motivo=outcome.reason)
                if (referencia := await self._buscar_tras_envio(reverso, outcome.reason)) is None:
                    raise ClaveAgotadaError(f"{outcome.reason}; la pasarela no tiene el reverso")
                answer = ResultadoPago.exito(referencia)
            elif outcome.exitoso:
                answer = outcome
            else:  # the domain's code for the refusal, from Stripe's
                saldo = outcome.codigo in _SIN_SALDO
                codigo = (
                    CodigoReversoFallido.SALDO_INSUFICIENTE if saldo else CodigoReversoFallido.RECHAZADO_POR_LA_PASARELA
                )
                mensaje = _SALDO_INSUFICIENTE if saldo else (outcome.mensaje_error or "Reverso rechazado")
                answer = ResultadoPago.fallo(mensaje, outcome.referencia_pago, codigo.value)
            return answer
        finally:
            label = "indeterminado" if answer is None else "exitoso" if answer.exitoso else "rechazado"
            metrics.etiquetada(metrics.PASARELA_REVERSOS, label).observe(time.perf_counter() - started)

    async def _buscar_tras_envio(self, reverso: Reverso, reason: str) -> str | None:
        try:
            return await self.buscar_reverso(reverso)
        except PasarelaNoDisponibleError as exc:  # a POST was sent already: this was an attempt
            raise ResultadoIndeterminadoError(f"{reason}; {exc}") from None

    async def buscar_reverso(self, reverso: Reverso) -> str | None:
        url = self._url_reversos(reverso)
        plazo = _plazo(reverso, reserva=self._config.timeout_s)
        propios = reversals_of(await self._listar({"limit": "100"}, plazo, url), reverso)
        if not propios:
            return None
        referencias = ", ".join(str(r.get("id")) for r in propios)
        if len(propios) > 1:
            raise SinPruebaDePagoError(
                f"la pasarela tiene {len(propios)} reversos de {reverso.identidad}: {referencias}"
            )
        [hallado] = propios
        assert reverso.importe is not None  # noqa: S101 - fixed when it was claimed
        importe = reverso.importe
        if hallado.get("amount") != importe.unidades_menores or str(hallado.get("currency")).upper() != importe.moneda:
            raise SinPruebaDePagoError(
                f"el reverso {referencias} devuelve {hallado.get('amount')} {hallado.get('currency')} (unidades "
                f"menores) y {reverso.identidad} es de {importe}"
            )
        return str(hallado["id"])

    async def _settled_by_lookup(self, pago: Pago, reason: str) -> ResultadoPago:
        """The key's answer cannot change (a saved 500, or the key taken by other parameters): what
        Stripe holds for the payment settles it, and without a transfer the key is spent."""
        log.warning("stripe.consulta_tras_respuesta_guardada", id_pago=str(pago.id_pago), motivo=reason)
        try:
            reference = await self.buscar_transferencia(pago)
        except PasarelaNoDisponibleError as exc:  # a POST was sent already: this was an attempt
            raise ResultadoIndeterminadoError(f"{reason}; {exc}") from None
        if reference is not None:
            return ResultadoPago.exito(reference)
        raise ClaveAgotadaError(f"{reason}; la pasarela no tiene transfer del pago")

    async def buscar_transferencia(self, pago: Pago) -> str | None:
        """The id of the transfer Stripe holds for this payment (`transfer_group` = its id, every
        page read), or None when it holds none. Only a proof settles the payment: one transfer, to
        the affiliate's account, of its amount and currency, not reversed; anything else raises
        `SinPruebaDePagoError` (an operator decides, as `pagos resolver` refuses those too).
        Raises `ResultadoIndeterminadoError` when Stripe cannot tell now, and
        `PasarelaNoDisponibleError` when the open circuit refused before any request was sent."""
        halladas = await self.transferencias(pago, _plazo(pago, reserva=self._config.timeout_s))
        if not halladas:
            return None
        id_pago = str(pago.id_pago)
        if len(halladas) > 1:
            metrics.TRANSFERS_MULTIPLES.inc()
            referencias = [t.referencia for t in halladas]
            log.error("stripe.transfers_multiples", id_pago=id_pago, transfers=referencias)
            raise SinPruebaDePagoError(
                f"la pasarela tiene {len(halladas)} transfers del pago: {', '.join(referencias)}"
            )
        [hallada] = halladas
        # Our own reversals are known (what came back of the payment, `monto_reversado`); any other
        # amount reversed was reversed elsewhere (the Stripe dashboard): it proves nothing.
        propio = int(pago.monto_reversado.scaleb(pago.importe.moneda.decimales))
        if (hallada.revertido or 0) != propio:
            raise SinPruebaDePagoError(
                f"el transfer {hallada.referencia} del pago fue revertido en Stripe "
                f"({hallada.revertido} unidades menores; el servicio revirtió {propio}): no lo deja pagado"
            )
        if not hallada.coincide_con(pago):
            raise SinPruebaDePagoError(
                f"el transfer {hallada.referencia} paga {hallada.unidades_menores} {hallada.moneda} (unidades "
                f"menores) y el pago es de {pago.importe}"
            )
        if (destino := self.destino(pago)) is None or hallada.destino != destino:
            raise SinPruebaDePagoError(
                f"el transfer {hallada.referencia} va a {hallada.destino} y la cuenta del afiliado "
                f"{pago.id_afiliado!r} es {destino or 'desconocida (no configurada)'}"
            )
        return hallada.referencia

    @property
    def destinos(self) -> Destinos:
        return self._destinos

    def destino(self, pago: Pago) -> str | None:
        return self._destinos.para(pago.id_afiliado)

    async def transferencias(self, pago: Pago, plazo: float | None = None) -> list[TransferenciaHallada]:
        """Every transfer Stripe holds for this payment, oldest first, as it shows them (for an
        operator: more than one is a payment paid twice, and is not settled here); with `plazo` (a
        `time.monotonic()` deadline), no request is sent that could end after it."""
        listados = await self._listar({"transfer_group": str(pago.id_pago), "limit": "100"}, plazo)
        return [_hallada(t) for t in transfers_of(listados, pago)]

    async def _listar(self, params: dict[str, str], plazo: float | None = None, url: URL | None = None) -> list[Any]:
        """A list of Stripe's (the transfers, or with `url` a transfer's reversals), every page;
        with `plazo` (a `time.monotonic()` deadline), no request is sent that could end after it."""
        listados: list[Any] = []
        for _ in range(_PAGINAS_MAX):
            listing = await self._pagina(params, plazo, url)
            data = listing["data"]
            listados.extend(data)
            if listing.get("has_more") is not True:
                return listados
            ultimo = data[-1] if data else None
            if not (isinstance(ultimo, dict) and isinstance(ultimo.get("id"), str)):
                raise ResultadoIndeterminadoError("consulta de transfers: has_more sin un id desde el que seguir")
            params = {**params, "starting_after": ultimo["id"]}
        raise ResultadoIndeterminadoError(f"consulta de transfers: más de {_PAGINAS_MAX} páginas para un pago")

    async def pagina(
        self, params: dict[str, str], ruta: str = "", *, delante: Presupuesto | None = None
    ) -> dict[str, Any]:
        """One page of a list under /v1/transfers (`ruta`: what follows it, e.g. `/tr_…/reversals`),
        with the retry policy; `delante`: a budget each request also takes a turn of, before the
        account's (a reader's share of it). Raises `ResultadoIndeterminadoError` when no page came."""
        return await self._pagina(params, None, URL(f"{self._url}{ruta}") if ruta else None, delante=delante)

    async def pagina_de_saldo(self, params: dict[str, str], *, delante: Presupuesto | None = None) -> dict[str, Any]:
        """One page of the platform's balance transactions (`GET /v1/balance_transactions`), as `pagina`."""
        return await self._pagina(params, None, self._url.parent / "balance_transactions", delante=delante)

    async def _pagina(
        self, params: dict[str, str], plazo: float | None, url: URL | None = None, *, delante: Presupuesto | None = None
    ) -> dict[str, Any]:
        """One page of a transfers' list (a dict whose `data` is a list), with the retry policy."""
        reason, asked_delay = "", None
        for attempt in range(1, self._config.max_intentos + 1):
            sonda = await self._permiso_de_intento(attempt, asked_delay)
            try:
                answer = await self._send("GET", params=params, plazo=plazo, url=url, delante=delante)
                if isinstance(answer, _NoEnviado) and answer.por_plazo:  # out of time, not of leave
                    # A retry that cannot look up and still pay within its lease counts as an attempt:
                    # a gateway slower than the lease ends in front of an operator, not in a loop.
                    raise ResultadoIndeterminadoError(f"consulta de transfers: {answer.reason}")
                if isinstance(answer, _Retry):
                    reason, asked_delay = answer.reason, answer.delay
                    continue
                if isinstance(answer, _NoEnviado):  # nothing was asked this time
                    raise (PasarelaNoDisponibleError if attempt == 1 else ResultadoIndeterminadoError)(answer.reason)
                status, raw, headers = answer
                listing = json_or_none(raw)
                if status == 200 and isinstance(listing, dict) and isinstance(listing.get("data"), list):  # noqa: PLR2004
                    self._breaker.success()
                    return listing
                error = self._classify_error(status, listing, headers)
                if isinstance(error, ResultadoPago | _LookUp):  # a list is never refused for a payment
                    raise ResultadoIndeterminadoError(f"consulta de transfers: HTTP {status}")
                reason, asked_delay = error.reason, error.delay
            finally:
                if sonda:  # the verdict is in by now, unless nothing was sent (or it was cancelled)
                    self._breaker.release(sonda)
        raise ResultadoIndeterminadoError(f"consulta de transfers sin respuesta tras {attempt} intentos: {reason}")

    async def _permiso_de_intento(self, attempt: int, asked_delay: float | None) -> int:
        """Wait out a retry's delay, then the circuit's leave for attempt `attempt`: the probe's
        number (0: not a probe), which its caller releases if nothing was sent. Refused by an open
        circuit, a first attempt asked nothing (the gateway is unavailable); a later one leaves the
        earlier ones' outcome unknown. Returns before the request: its frame is not held through it."""
        if attempt > 1:
            await asyncio.sleep(self._retry_delay(attempt - 1, asked_delay))
        try:
            return self._breaker.allow()
        except CircuitOpenError as exc:
            raise (PasarelaNoDisponibleError if attempt == 1 else ResultadoIndeterminadoError)(str(exc)) from None

    def _retry_delay(self, retry: int, asked: float | None) -> float:
        if asked is not None:
            return min(asked, _RETRY_AFTER_MAX_S)
        return backoff(retry, base=self._config.backoff_base_s, maximo=self._config.backoff_max_s)

    async def _send(
        self, method: str, *, data: bytes | None = None, headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None, plazo: float | None = None, url: URL | None = None,
        delante: Presupuesto | None = None,
    ) -> tuple[int, bytes, Mapping[str, str]] | _Retry | _NoEnviado:  # fmt: skip
        """One request, within the concurrency and rate limits; no answer is `_Retry`. With `plazo`
        (a `time.monotonic()` deadline: the lease's end), nothing is sent unless the whole attempt
        (its total timeout) ends before. `delante` is waited for first, holding no connection slot."""
        if self._session is None:
            raise RuntimeError("StripePasarelaDePagos is used outside `async with`")
        if delante is not None:
            await delante.acquire()
        async with self._limite:
            try:
                await self._presupuesto.acquire()
            except Exception as exc:  # noqa: BLE001 - whatever it was, nothing is sent without a turn
                log.warning("stripe.presupuesto_no_disponible", error=type(exc).__name__)
                return _NoEnviado(f"presupuesto de la cuenta no disponible ({type(exc).__name__})")
            if plazo is not None and time.monotonic() + self._config.timeout_s > plazo:
                return _NoEnviado("el lease vence antes de que el intento pueda terminar", por_plazo=True)
            try:
                # `async with await`: the response as the context, not the request's context
                # manager, whose __aenter__ frame would be held through the whole call.
                async with await self._session.request(
                    method,
                    url or self._url,
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
                self._breaker.failure()
                return _Retry(f"sin respuesta ({type(exc).__name__})")

    def _attempt_outcome(
        self, answer: tuple[int, bytes, Mapping[str, str]] | _Retry | _NoEnviado, *, sin_codigo_es_rechazo: bool = False
    ) -> ResultadoPago | _Retry | _LookUp | _NoEnviado:
        """What one POST's answer means for the payment. Not a coroutine of its own around `_send`:
        a frame held through the call is ~0.3 KB a payment, and thousands may be at the gateway."""
        if isinstance(answer, _Retry | _NoEnviado):
            return answer
        status, raw, response_headers = answer
        if 200 <= status < 300:  # noqa: PLR2004
            transfer = json_or_none(raw)
            if isinstance(transfer, dict) and isinstance(transfer.get("id"), str) and transfer["id"]:
                self._breaker.success()
                return ResultadoPago.exito(transfer["id"])
            self._breaker.failure()  # not Stripe's answer (a proxy's page?): nothing is known
            request_id = response_headers.get("Request-Id")
            raise ResultadoIndeterminadoError(f"HTTP {status} sin id de transfer en la respuesta ({request_id})")
        return self._classify_error(status, json_or_none(raw), response_headers, sin_codigo_es_rechazo)

    def _classify_error(  # noqa: PLR0911 - one answer per class of Stripe's answers
        self,
        status: int,
        answer: Any,  # noqa: ANN401 - any JSON value
        headers: Mapping[str, str],
        sin_codigo_es_rechazo: bool = False,  # see _post
    ) -> ResultadoPago | _Retry | _LookUp:
        # A replayed answer names the request that produced it: the same reference every time.
        request_id = headers.get("Original-Request") or headers.get("Request-Id")
        error = StripeError.parse(status, answer, request_id)
        should_retry = headers.get("Stripe-Should-Retry")
        if status >= 500:  # noqa: PLR2004 - indeterminate: the transfer may exist
            self._breaker.failure()
            if headers.get("Idempotent-Replayed") == "true":
                return _LookUp(f"Stripe guardó {error} bajo la clave y lo repite")
            if should_retry == "false":  # saved under the key: a retry would replay it
                return _LookUp(f"{error}, sin reintento según Stripe")
            return _Retry(str(error), retry_after(headers))
        if 300 <= status < 400 or status in (401, 403, 404, 405):  # noqa: PLR2004
            # Our configuration is wrong (API base, key), not the payment: never FALLIDO.
            self._breaker.failure()
            log.error("stripe.configuracion", status=status, error=str(error))
            raise ResultadoIndeterminadoError(f"configuración de Stripe: {error}")
        self._breaker.success()  # the gateway answered: it is up
        if status in (409, 429) or should_retry == "true":
            return _Retry(str(error), retry_after(headers))
        if error.type == "idempotency_error":
            return _LookUp(str(error))
        if error.is_refusal:
            return ResultadoPago.fallo(error.mensaje_error, referencia_pago=error.request_id, codigo=error.code)
        if sin_codigo_es_rechazo and error.is_refusal_sin_codigo:
            return ResultadoPago.fallo(f"Rechazado por la pasarela: {error.message[:300]}", error.request_id)
        log.error("stripe.respuesta_no_reconocida", status=status, error=str(error))
        raise ResultadoIndeterminadoError(str(error))  # a malformed request of ours…
