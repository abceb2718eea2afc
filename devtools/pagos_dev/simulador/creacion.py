"""`POST /v1/transfers` with Stripe's idempotency: a result is saved under its key once the
endpoint started executing (declines and 500s included) and replayed with `Idempotent-Replayed:
true`; validation failures and a request meeting one in flight with its key (409) save nothing;
the same key with other parameters is an `idempotency_error`; keys live `Ledger.ttl_claves_s`."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import random
import time
from collections.abc import Callable
from typing import Any

import orjson

from pagos_dev.simulacion import Latencia
from pagos_dev.simulador import errores, montos
from pagos_dev.simulador.claves import ResultadoIdempotente
from pagos_dev.simulador.fallas import Falla, Fallas, elegir
from pagos_dev.simulador.ids import nuevo_id_ordenado
from pagos_dev.simulador.ledger import Ledger
from pagos_dev.simulador.transfer import Transfer

MAX_CLAVE = 255
_INTENTOS_RECORDADOS = 10_000  # keys whose attempts the `*_once` triggers count (bounded)
_RECHAZOS = {
    "balance_insufficient": "You have insufficient funds in your Stripe account for this transfer.",
    "account_invalid": "The destination account is not valid.",
}
_OTRA_CLAVE = "Keys for idempotent requests can only be used with the same parameters they were first used with."
_EN_CURSO = (
    "There is currently another in-progress request using this Idempotent Key (that probably means you "
    "submitted twice, and the other request is still going through): {}. Please try again later."
)


def huella(pares: list[tuple[str, str]]) -> str:
    """The parameters, whatever their order: a replay must ask for the same thing."""
    return hashlib.blake2b(orjson.dumps(sorted(pares)), digest_size=16).hexdigest()


class Creador:
    def __init__(self, ledger: Ledger, fallas: Callable[[], Fallas], contadores: collections.Counter[str],
                 rng: random.Random, reloj: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.ledger = ledger
        self.en_curso: set[str] = set()
        self._fallas = fallas
        self._contadores = contadores
        self._rng = rng
        self._reloj = reloj  # `created` of new transfers
        self._intentos: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._guardados = 0
        self.latencia = Latencia.parse(fallas().latencia)

    async def crear(self, params: dict[str, Any], pares: list[tuple[str, str]], clave: str | None,
                    cabeceras: dict[str, str]) -> tuple[int, bytes]:  # fmt: skip
        if clave is None:
            return await self._ejecutar(params, None, None, cabeceras)
        if len(clave) > MAX_CLAVE:
            raise errores.invalido(f"Idempotency-Key must be at most {MAX_CLAVE} characters long.", "Idempotency-Key")
        if clave in self.en_curso:
            self._contadores["409"] += 1
            raise errores.ErrorStripeError(409, _EN_CURSO.format(clave[:100]), code="idempotency_key_in_use",
                                           cabeceras={"Stripe-Should-Retry": "true"})  # fmt: skip
        huella_actual = huella(pares)
        if (previo := self.ledger.resultado(clave)) is not None:
            return self._replay(previo, huella_actual, cabeceras)
        return await self._ejecutar(params, clave, huella_actual, cabeceras)

    def _replay(self, previo: ResultadoIdempotente, huella_actual: str, cabeceras: dict[str, str]) -> tuple[int, bytes]:
        if previo.huella != huella_actual:
            self._contadores["400_idempotency_error"] += 1
            raise errores.ErrorStripeError(400, _OTRA_CLAVE, tipo="idempotency_error")
        self._contadores["replay"] += 1
        cabeceras.update({"Idempotent-Replayed": "true", "Original-Request": previo.request_id})
        if previo.status >= 500:  # noqa: PLR2004
            cabeceras["Stripe-Should-Retry"] = "false"
        return previo.status, previo.body

    async def _ejecutar(self, params: dict[str, Any], clave: str | None, huella_actual: str | None,
                        cabeceras: dict[str, str]) -> tuple[int, bytes]:  # fmt: skip
        fallas = self._fallas()
        falla, codigo = elegir(fallas, params["destination"], self._intento(clave, params["destination"]), self._rng)
        if falla is Falla.ERROR_500_GUARDADO and not params["destination"].startswith("acct_test_"):
            self._guardados += 1  # by rate: every second one makes its transfer
            falla = Falla.ERROR_500_GUARDADO_CREADO if self._guardados % 2 == 0 else falla
        if falla is Falla.LIMITE_429:
            self._contadores["429"] += 1
            raise errores.ErrorStripeError(429, "Too many requests", code="rate_limit",
                                           cabeceras={"Retry-After": f"{fallas.retry_after_s:g}"})  # fmt: skip
        if clave is not None:
            self.en_curso.add(clave)
        try:
            await asyncio.sleep(self.latencia.muestra(self._rng))
            if falla is Falla.ERROR_500:  # before the endpoint ran: nothing saved, a retry executes
                self._contadores["500"] += 1
                raise errores.error_interno({"Stripe-Should-Retry": "true"})
            status, body, seq_transfer = self._resultado(params, falla, codigo)
            self._contadores["500_guardado" if status >= 500 else str(status)] += 1  # noqa: PLR2004
            if clave is not None and huella_actual is not None:
                resultado = ResultadoIdempotente(huella_actual, status, body, cabeceras["Request-Id"])
                self.ledger.guardar_resultado(clave, resultado, seq_transfer)
            await self.ledger.escrito()
        finally:
            if clave is not None:
                self.en_curso.discard(clave)
        if status >= 500:  # noqa: PLR2004
            cabeceras["Stripe-Should-Retry"] = "false"  # a retry would replay it
        if falla is Falla.TIMEOUT_TRAS_EXITO:
            self._contadores["timeout_tras_exito"] += 1
            await asyncio.sleep(fallas.cuelgue_s)  # the client gives up long before this
        return status, body

    def _resultado(self, params: dict[str, Any], falla: Falla, codigo: str | None) -> tuple[int, bytes, int | None]:
        if falla is Falla.RECHAZO:
            mensaje = _RECHAZOS.get(codigo or "", "The transfer was declined.")
            return 400, errores.invalido(mensaje, code=codigo).cuerpo(), None
        if falla is Falla.ERROR_500_GUARDADO:
            return 500, errores.error_interno().cuerpo(), None
        transfer = Transfer(
            nuevo_id_ordenado("tr"), params["amount"], params["currency"], params["destination"],
            params.get("description"), params.get("metadata", {}), int(self._reloj()),
            params.get("transfer_group"), params.get("source_type", "card"),
        )  # fmt: skip
        cuerpo, seq = self.ledger.crear_transfer(
            transfer, listado_tras_s=self._fallas().retraso_de_listado(transfer.destination)
        )
        if falla is Falla.ERROR_500_GUARDADO_CREADO:  # made, and answered as if it were not
            return 500, errores.error_interno().cuerpo(), None
        return 200, cuerpo, seq

    def _intento(self, clave: str | None, destino: str) -> int:
        """Which attempt of its key this is, counted only where a trigger asks (`acct_test_…_once`)."""
        if clave is None or not destino.startswith("acct_test_"):
            return 1
        intento = self._intentos.pop(clave, 0) + 1
        self._intentos[clave] = intento
        if len(self._intentos) > _INTENTOS_RECORDADOS:
            self._intentos.popitem(last=False)
        return intento


def validar(params: dict[str, Any]) -> None:
    """What Stripe checks before the endpoint runs: a failure saves nothing under the key."""
    for campo in ("amount", "currency", "destination"):
        if campo not in params:
            raise errores.falta(campo)
        if params[campo] == "":
            raise errores.vacio(campo)
    montos.comprobar(params["amount"], params["currency"])
    if not params["destination"].startswith("acct_"):
        raise errores.no_existe("destination", params["destination"], "destination", status=400)
    if "source_transaction" in params:
        raise errores.no_existe("charge", params["source_transaction"], "source_transaction", status=400)
    if params.get("source_type", "card") not in {"bank_account", "card", "fpx"}:
        raise errores.invalido("Invalid source_type: must be one of bank_account, card or fpx", "source_type")
