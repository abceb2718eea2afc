"""A Stripe-compatible gateway simulator: the transfers API as `../shared/stripe/spec3.json`
describes it, with Stripe's authentication, idempotency, error shapes and rate limit, plus the
latency and faults a test asks for, and tooling of its own (`/_simulador/…`, no API key).

    POST /v1/transfers                   create (`creacion_transfer`), Idempotency-Key honoured
    GET  /v1/transfers/{id}              one transfer (`lecturas`): `amount_reversed`, `reversed`, and
                                         its 10 newest reversals (`has_more`, `total_count`)
    GET  /v1/transfers                   newest first by `created` (creation order within a second),
                                         paged both ways (`starting_after`, `ending_before`), filtered
                                         by `created` (an integer, or `created[gt|gte|lt|lte]`),
                                         `destination`, `transfer_group`
    POST /v1/transfers/{id}/reversals    reverse it, wholly or in part (`creacion_reverso`): idempotent
                                         and faulty as a transfer's creation; the destination's
                                         balance must cover it
    GET  /v1/transfers/{id}/reversals    its reversals, newest first, paged both ways
    GET  /v1/transfers/{transfer}/reversals/{id}
                                         one of them
    GET  /_simulador/fallas              the fault settings; POST a JSON object to change some of them
    GET  /_simulador/saldos              the connected accounts' balances (`?cuenta=` for one); POST
                                         {"cuenta": "acct_…", "moneda": "usd", "saldo": 0} sets one
    DELETE /_simulador/transfers/{id}    drift for the reconciliation's tests (`pagos-dev deriva
                                         borrar`): the transfer and its reversals gone from the
                                         ledger, as if never made, its destination's balance with
                                         them; a replay of the key that made it answers a 404
                                         `resource_missing` (`Idempotent-Replayed`), neither the
                                         transfer again nor a new one (`Ledger.borrar`)
    GET  /_simulador/estadisticas        counters: transfers, reversals, API requests, answers by outcome

The other drift, a transfer made outside the service under some `transfer_group` and a reversal
"from the dashboard" (no `metadata[id_reverso]`), is Stripe's API itself: `pagos-dev deriva
transfer|reverso` call it.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import Callable
from typing import Any

import orjson

from pagos_dev.simulacion import Latencia
from pagos_dev.simulador import (
    acceso,
    creacion,
    creacion_reverso,
    creacion_transfer,
    errores,
    formularios,
    herramientas,
    lecturas,
    movimientos,
    parametros,
    reverso,
    transfer,
)
from pagos_dev.simulador.creacion_reverso import REVERTIR, CrearReverso
from pagos_dev.simulador.creacion_transfer import CREAR, CrearTransfer
from pagos_dev.simulador.errores import ErrorStripeError
from pagos_dev.simulador.fallas import Fallas
from pagos_dev.simulador.http import Peticion, Respuesta, ServidorHttp
from pagos_dev.simulador.ids import nuevo_id
from pagos_dev.simulador.ledger import Ledger

VERSION_API = "2023-08-16"  # the spec's
_TRANSFERS = "/_simulador/transfers/"


class Simulador:
    """The simulator's state and its requests; `servidor()` is its HTTP server."""

    def __init__(
        self, fallas: Fallas, ledger: Ledger, *, semilla: int | None = None, reloj: Callable[[], float] = time.time
    ) -> None:
        self.fallas = fallas
        self.ledger = ledger
        self.contadores: collections.Counter[str] = collections.Counter()
        rng = random.Random(semilla)  # noqa: S311 - simulation
        self._reloj = reloj  # `created` of what it makes
        self._creador = creacion.Creador(ledger, lambda: self.fallas, self.contadores, rng)
        self._en_curso = self._creador.en_curso  # keys in flight (a shutdown test watches them)
        self._limite = acceso.LimiteDeCuenta(fallas.limite_cuenta_por_s)
        self._poda_cada = max(0.05, min(60.0, ledger.claves.ttl_claves_s / 4))
        self._proxima_poda = time.monotonic() + self._poda_cada

    def servidor(self) -> ServidorHttp:
        return ServidorHttp(self.manejar)

    async def manejar(self, request: Peticion) -> Respuesta:
        cabeceras = {"Request-Id": nuevo_id("req")}
        if request.ruta.startswith("/v1/"):
            self.contadores["peticiones"] += 1  # every API request, answered however
            cabeceras["Stripe-Version"] = request.cabeceras.get("stripe-version", VERSION_API)[:40]
            try:
                status, cuerpo = await self._api(request, cabeceras)
            except ErrorStripeError as exc:
                if exc.status == 401:  # noqa: PLR2004
                    self.contadores["401"] += 1
                status, cuerpo = exc.status, exc.cuerpo()
                cabeceras.update(exc.cabeceras)
            return Respuesta(status, cuerpo, cabeceras)
        respuesta = await self._herramienta(request)
        respuesta.cabeceras.update(cabeceras)
        return respuesta

    async def _herramienta(self, request: Peticion) -> Respuesta:
        """The simulator's own endpoints (`/_simulador/…`)."""
        ruta, post = request.ruta, request.metodo == "POST"
        if ruta == "/_simulador/fallas":
            return self._cambiar_fallas(request) if post else self._ver_fallas()
        if ruta == "/_simulador/saldos" and post:
            return await herramientas.fijar_saldo(self.ledger, request)
        if ruta == "/_simulador/saldos":
            return herramientas.ver_saldos(self.ledger, request)
        if ruta.startswith(_TRANSFERS) and request.metodo == "DELETE" and "/" not in ruta.removeprefix(_TRANSFERS):
            return await herramientas.borrar_transfer(self.ledger, ruta.removeprefix(_TRANSFERS))
        if ruta == "/_simulador/estadisticas":
            return Respuesta.json({"transfers": self.ledger.cantidad, "reversos": self.ledger.reversos.cantidad,
                                   "respuestas": dict(self.contadores)})  # fmt: skip
        return Respuesta(404, _no_reconocida(request).cuerpo())

    async def _api(self, request: Peticion, cabeceras: dict[str, str]) -> tuple[int, bytes]:
        acceso.clave_api(request.cabeceras.get("authorization"))
        try:
            self._limite.tomar()
        except ErrorStripeError:
            self.contadores["429_limite_cuenta"] += 1
            raise
        self._quizas_podar()
        if request.ruta.startswith("/v1/balance_transactions") and request.metodo == "GET":
            return 200, self._movimientos(request)
        return await self._transfers(request, cabeceras)

    async def _transfers(self, request: Peticion, cabeceras: dict[str, str]) -> tuple[int, bytes]:
        ruta, metodo = request.ruta, request.metodo
        if ruta == "/v1/transfers" and metodo == "POST":
            return await self._crear(request, cabeceras)
        if ruta == "/v1/transfers" and metodo == "GET":
            if self.fallas.latencia_listado_s:  # a list slower than a worker's lease (the chaos suite)
                await asyncio.sleep(self.fallas.latencia_listado_s)
            return 200, lecturas.listar(self.ledger, _params(request, lecturas.LISTAR))
        id_transfer, _, sub = ruta.removeprefix("/v1/transfers/").partition("/")
        if not ruta.startswith("/v1/transfers/") or not id_transfer:
            raise _no_reconocida(request)
        reversals, _, id_reverso = sub.partition("/")
        if metodo == "GET" and not sub:
            return 200, lecturas.obtener(self.ledger, id_transfer, _params(request, lecturas.OBTENER))
        if metodo == "GET" and sub == "reversals":
            return 200, lecturas.reversals(self.ledger, id_transfer, _params(request, lecturas.REVERSALS))
        if metodo == "GET" and reversals == "reversals" and id_reverso and "/" not in id_reverso:
            params = _params(request, lecturas.REVERSAL)
            return 200, lecturas.reversal(self.ledger, id_transfer, id_reverso, params)
        if metodo == "POST" and sub == "reversals":
            return await self._revertir(request, cabeceras, id_transfer)
        raise _no_reconocida(request)

    def _movimientos(self, request: Peticion) -> bytes:
        if request.ruta == "/v1/balance_transactions":
            return movimientos.listar(self.ledger, _params(request, movimientos.LISTAR))
        id_txn = request.ruta.removeprefix("/v1/balance_transactions/")
        if request.ruta == id_txn or not id_txn or "/" in id_txn:
            raise _no_reconocida(request)
        return movimientos.obtener(self.ledger, id_txn, _params(request, movimientos.OBTENER_MOVIMIENTO))

    async def _crear(self, request: Peticion, cabeceras: dict[str, str]) -> tuple[int, bytes]:
        pares, params = self._formulario(request, CREAR, transfer.EXPANDIBLES, creacion_transfer.validar)
        operacion = CrearTransfer(params, self.ledger, lambda: self.fallas, self._reloj)
        clave = _clave(request, cabeceras)
        status, cuerpo = await self._creador.crear(operacion, pares, request.ruta, clave, cabeceras)
        if (campos := params.get("expand")) and status == 200:  # noqa: PLR2004
            cuerpo = orjson.dumps(transfer.expandir(orjson.loads(cuerpo), campos))
        return status, cuerpo

    async def _revertir(self, request: Peticion, cabeceras: dict[str, str], id_transfer: str) -> tuple[int, bytes]:
        pares, params = self._formulario(request, REVERTIR, reverso.EXPANDIBLES, creacion_reverso.validar)
        if (lugar := self.ledger.destino_de(id_transfer)) is None:
            raise errores.no_existe("transfer", id_transfer, "id")
        operacion = CrearReverso(id_transfer, *lugar, params, self.ledger, self._reloj)
        clave = _clave(request, cabeceras)
        status, cuerpo = await self._creador.crear(operacion, pares, request.ruta, clave, cabeceras)
        if (expand := params.get("expand")) and status == 200:  # noqa: PLR2004
            cuerpo = lecturas.expandir_reverso(self.ledger, cuerpo, expand)
        return status, cuerpo

    def _formulario(
        self, request: Peticion, esquema: dict[str, parametros.Tipo], expandibles: frozenset[str],
        validar: Callable[[dict[str, Any]], None],
    ) -> tuple[list[tuple[str, str]], dict[str, Any]]:  # fmt: skip
        """The request's pairs (query and body) and its parameters, checked before the endpoint
        runs: `expand` holds the fields to expand."""
        pares = formularios.urlencoded(request.consulta)
        pares += formularios.pares(request.cuerpo, request.cabeceras.get("content-type", ""))
        try:
            params = parametros.leer(pares, esquema)
            if "expand" in params:
                params["expand"] = transfer.campos_a_expandir(params["expand"], en_lista=False, expandibles=expandibles)
            validar(params)
        except ErrorStripeError:
            self.contadores["400_validacion"] += 1
            raise
        return pares, params

    def _quizas_podar(self) -> None:
        if (ahora := time.monotonic()) >= self._proxima_poda:
            self._proxima_poda = ahora + self._poda_cada
            self.ledger.podar()

    def _ver_fallas(self) -> Respuesta:
        return Respuesta.json(_fallas_json(self.fallas))

    def _cambiar_fallas(self, request: Peticion) -> Respuesta:
        try:
            cambios = orjson.loads(request.cuerpo)
            if not isinstance(cambios, dict):
                return Respuesta.json({"error": "se esperaba un objeto JSON"}, 400)
            self.fallas = self.fallas.con(cambios)
        except (ValueError, TypeError) as exc:
            return Respuesta.json({"error": str(exc)}, 400)
        self._creador.latencia = Latencia.parse(self.fallas.latencia)
        self._limite.cambiar(self.fallas.limite_cuenta_por_s)
        return self._ver_fallas()

    def cerrar(self) -> None:
        self.ledger.cerrar()


def _params(request: Peticion, esquema: dict[str, parametros.Tipo]) -> dict[str, Any]:
    return parametros.leer(formularios.urlencoded(request.consulta), esquema)


def _clave(request: Peticion, cabeceras: dict[str, str]) -> str | None:
    """The request's idempotency key, echoed in the answer as Stripe does."""
    clave = request.cabeceras.get("idempotency-key")
    if clave is not None:
        cabeceras["Idempotency-Key"] = clave[:255]
    return clave


def _no_reconocida(request: Peticion) -> ErrorStripeError:
    mensaje = f"Unrecognized request URL ({request.metodo}: {request.ruta[:100]}). Please see https://stripe.com/docs"
    return ErrorStripeError(404, mensaje + " or we can help at https://support.stripe.com/.")


def _fallas_json(fallas: Fallas) -> dict[str, Any]:
    return {name: getattr(fallas, name) for name in fallas.__dataclass_fields__}
