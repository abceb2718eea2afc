"""A Stripe-compatible gateway simulator: the transfers API with Stripe's idempotency
semantics, its error shapes, latency and faults.

    POST /v1/transfers            create (form-encoded), Idempotency-Key honoured
    GET  /v1/transfers/{id}       one transfer
    GET  /v1/transfers            newest first: limit (1-100, default 10), starting_after
    GET  /_simulador/fallas       the fault settings; POST a JSON object to change some of them
    GET  /_simulador/estadisticas counters: transfers, requests by outcome
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import random
from typing import Any
from urllib.parse import parse_qsl

import orjson

from pagos_dev.simulacion import Latencia
from pagos_dev.simulador.fallas import Falla, Fallas, elegir
from pagos_dev.simulador.http import Peticion, Respuesta, ServidorHttp
from pagos_dev.simulador.ledger import Ledger, ResultadoIdempotente, nuevo_id

MONEDAS = frozenset({"usd", "eur", "cop"})
MAX_AMOUNT = 99_999_999_999


def _json(body: Any, status: int = 200) -> Respuesta:  # noqa: ANN401
    return Respuesta(status, orjson.dumps(body))


def _raw(body: bytes, status: int, headers: dict[str, str] | None = None) -> Respuesta:
    return Respuesta(status, body, headers or {})


def _error(tipo: str, mensaje: str, code: str | None = None, **extra: str) -> bytes:
    error: dict[str, Any] = {"type": tipo, "message": mensaje, **extra}
    if code:
        error["code"] = code
    return orjson.dumps({"error": error})


def _huella(form: dict[str, str]) -> str:
    """The parameters, whatever their order: a replay must ask for the same thing."""
    return hashlib.blake2b(orjson.dumps(sorted(form.items())), digest_size=16).hexdigest()


class Simulador:
    """The simulator's state and its requests; `servidor()` is its HTTP server."""

    def __init__(self, fallas: Fallas, ledger: Ledger, *, semilla: int | None = None) -> None:
        self.fallas = fallas
        self.ledger = ledger
        self._latencia = Latencia.parse(fallas.latencia)
        self._rng = random.Random(semilla)  # noqa: S311 - simulation
        self._en_curso: set[str] = set()
        self._intentos: collections.Counter[str] = collections.Counter()
        self.contadores: collections.Counter[str] = collections.Counter()

    def servidor(self) -> ServidorHttp:
        return ServidorHttp(self._despachar)

    async def _despachar(self, request: Peticion) -> Respuesta:
        path, method = request.ruta, request.metodo
        if path.startswith("/v1/"):
            if (prohibido := self._autenticar(request)) is not None:
                return prohibido
            if path == "/v1/transfers":
                return await self.crear(request) if method == "POST" else await self.listar(request)
            if path.startswith("/v1/transfers/") and method == "GET":
                return await self.obtener(path.removeprefix("/v1/transfers/"))
        elif path == "/_simulador/fallas":
            return await self.cambiar_fallas(request) if method == "POST" else self.ver_fallas()
        elif path == "/_simulador/estadisticas":
            return self.estadisticas()
        return _raw(_error("invalid_request_error", f"Unrecognized request URL ({method}: {path[:100]})"), 404)

    def _autenticar(self, request: Peticion) -> Respuesta | None:
        auth = request.cabeceras.get("authorization", "")
        if auth.startswith("Bearer sk_test_") and len(auth) > len("Bearer sk_test_"):
            return None
        self.contadores["401"] += 1
        return _raw(_error("invalid_request_error", "Invalid API Key provided. Use a Bearer sk_test_… key."), 401)

    async def crear(self, request: Peticion) -> Respuesta:
        form = dict(parse_qsl(request.cuerpo.decode(errors="replace"), keep_blank_values=True))
        if (invalido := _validar(form)) is not None:
            self.contadores["400_validacion"] += 1
            return _raw(invalido, 400)
        clave = request.cabeceras.get("idempotency-key")
        cabeceras = {"Request-Id": nuevo_id("req")}
        if clave is not None:
            if clave in self._en_curso:
                self.contadores["409"] += 1
                mensaje = "There is currently another in-progress request using this Idempotent Key."
                return _raw(_error("invalid_request_error", mensaje, "idempotency_key_in_use"), 409, cabeceras)
            if (previo := self.ledger.resultados.get(clave)) is not None:
                return self._replay(previo, form, cabeceras)
            self._intentos[clave] += 1
        falla, codigo = elegir(self.fallas, form["destination"], self._intentos[clave] if clave else 1, self._rng)
        if falla is Falla.LIMITE_429:
            self.contadores["429"] += 1
            cabeceras["Retry-After"] = f"{self.fallas.retry_after_s:g}"
            return _raw(_error("invalid_request_error", "Too many requests", "rate_limit"), 429, cabeceras)
        status, body = await self._procesar(form, falla, codigo, clave, cabeceras["Request-Id"])
        if falla is Falla.TIMEOUT_TRAS_EXITO:
            self.contadores["timeout_tras_exito"] += 1
            await asyncio.sleep(self.fallas.cuelgue_s)  # the client gives up long before this
        return _raw(body, status, cabeceras)

    async def _procesar(
        self, form: dict[str, str], falla: Falla, codigo: str | None, clave: str | None, request_id: str
    ) -> tuple[int, bytes]:
        if clave is not None:
            self._en_curso.add(clave)
        try:
            await asyncio.sleep(self._latencia.muestra(self._rng))
            if falla is Falla.ERROR_500:  # failed before doing anything: not saved, a retry may succeed
                self.contadores["500"] += 1
                return 500, _error("api_error", "An unknown error occurred")
            status, body = _ejecutar(form, falla, codigo, self.ledger)
            self.contadores[str(status)] += 1
            if clave is not None:
                self.ledger.guardar_resultado(clave, ResultadoIdempotente(_huella(form), status, body, request_id))
            return status, body
        finally:
            if clave is not None:
                self._en_curso.discard(clave)

    def _replay(self, previo: ResultadoIdempotente, form: dict[str, str], cabeceras: dict[str, str]) -> Respuesta:
        if previo.huella != _huella(form):
            self.contadores["400_idempotency_error"] += 1
            mensaje = (
                "Keys for idempotent requests can only be used with the same parameters they were first used with."
            )
            return _raw(_error("idempotency_error", mensaje), 400, cabeceras)
        self.contadores["replay"] += 1
        replay = {"Idempotent-Replayed": "true", "Original-Request": previo.request_id}
        return _raw(previo.body, previo.status, {**cabeceras, **replay})

    async def obtener(self, id_transfer: str) -> Respuesta:
        transfer = self.ledger.transfers.get(id_transfer)
        if transfer is None:
            mensaje = f"No such transfer: '{id_transfer[:64]}'"
            return _raw(_error("invalid_request_error", mensaje, "resource_missing", param="id"), 404)
        return _json(transfer.as_stripe())

    async def listar(self, request: Peticion) -> Respuesta:
        limit_texto = request.query.get("limit", "10")
        limit = int(limit_texto) if limit_texto.isdigit() else 0
        if not 1 <= limit <= 100:  # noqa: PLR2004
            mensaje = "limit must be an integer from 1 to 100"
            return _raw(_error("invalid_request_error", mensaje, "parameter_invalid_integer", param="limit"), 400)
        starting_after = request.query.get("starting_after")
        if starting_after is not None and starting_after not in self.ledger.transfers:
            mensaje = f"No such transfer: '{starting_after[:64]}'"
            return _raw(_error("invalid_request_error", mensaje, "resource_missing", param="starting_after"), 400)
        pagina, mas = self.ledger.listar(limit, starting_after)
        data = [t.as_stripe() for t in pagina]
        return _json({"object": "list", "url": "/v1/transfers", "has_more": mas, "data": data})

    def ver_fallas(self) -> Respuesta:
        return _json(_fallas_json(self.fallas))

    async def cambiar_fallas(self, request: Peticion) -> Respuesta:
        try:
            cambios = orjson.loads(request.cuerpo)
            if not isinstance(cambios, dict):
                return _json({"error": "se esperaba un objeto JSON"}, 400)
            self.fallas = self.fallas.con(cambios)
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        self._latencia = Latencia.parse(self.fallas.latencia)
        return _json(_fallas_json(self.fallas))

    def estadisticas(self) -> Respuesta:
        return _json({"transfers": len(self.ledger.transfers), "respuestas": dict(self.contadores)})

    def cerrar(self) -> None:
        self.ledger.cerrar()


def _fallas_json(fallas: Fallas) -> dict[str, Any]:
    return {name: getattr(fallas, name) for name in fallas.__dataclass_fields__}


def _validar(form: dict[str, str]) -> bytes | None:
    for campo in ("amount", "currency", "destination"):
        if not form.get(campo):
            return _error("invalid_request_error", f"Missing required param: {campo}.", "parameter_missing",
                          param=campo)  # fmt: skip
    amount = form["amount"]
    if not amount.isdigit() or not 0 < int(amount) <= MAX_AMOUNT:
        return _error("invalid_request_error", "Invalid positive integer", "parameter_invalid_integer",
                      param="amount")  # fmt: skip
    if form["currency"] not in MONEDAS:
        return _error("invalid_request_error", f"Invalid currency: {form['currency'][:8]}", "parameter_invalid",
                      param="currency")  # fmt: skip
    if not form["destination"].startswith("acct_"):
        return _error("invalid_request_error", "No such destination", "resource_missing", param="destination")
    return None


def _ejecutar(form: dict[str, str], falla: Falla, codigo: str | None, ledger: Ledger) -> tuple[int, bytes]:
    if falla is Falla.RECHAZO:
        mensaje = {
            "balance_insufficient": "You have insufficient funds in your Stripe account for this transfer.",
            "account_invalid": "The destination account is not valid.",
        }.get(codigo or "", "The transfer was declined.")
        return 400, _error("invalid_request_error", mensaje, codigo)
    metadata = {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[") and k.endswith("]")}
    transfer = ledger.crear_transfer(
        int(form["amount"]), form["currency"], form["destination"], form.get("description"), metadata
    )
    return 200, orjson.dumps(transfer.as_stripe())
