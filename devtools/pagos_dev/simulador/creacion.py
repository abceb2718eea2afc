"""The `POST`s that make something (a transfer, a reversal: an `Operacion`) with Stripe's
idempotency and the faults asked for. A result is saved under its key once the endpoint started
executing (declines and 500s included) and replayed with `Idempotent-Replayed: true`; validation
failures and a request meeting one in flight with its key (409) save nothing; the same key with
other parameters (or on another endpoint) is an `idempotency_error`; keys live
`Ledger.ttl_claves_s`, whatever they made. The faults (`fallas`) are the operation's account's."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import random
from collections.abc import Callable
from typing import Protocol

import orjson

from pagos_dev.simulacion import Latencia
from pagos_dev.simulador import errores
from pagos_dev.simulador.claves import ResultadoIdempotente
from pagos_dev.simulador.fallas import Falla, Fallas, elegir
from pagos_dev.simulador.ledger import Ledger

MAX_CLAVE = 255
_INTENTOS_RECORDADOS = 10_000  # keys whose attempts the `*_once` triggers count (bounded)
_OTRA_CLAVE = "Keys for idempotent requests can only be used with the same parameters they were first used with."
_OTRA_RUTA = (  # Stripe's words, this request's endpoint first
    "Keys for idempotent requests can only be used for the same endpoint they were first used for ('{}' vs '{}'). "
    "Try using a key other than '{}' if you meant to execute a different request."
)
_EN_CURSO = (
    "There is currently another in-progress request using this Idempotent Key (that probably means you "
    "submitted twice, and the other request is still going through): {}. Please try again later."
)


def huella(pares: list[tuple[str, str]]) -> str:
    """The parameters, whatever their order: a replay must ask for the same thing."""
    return hashlib.blake2b(orjson.dumps(sorted(pares)), digest_size=16).hexdigest()


class Operacion(Protocol):
    """What one `POST` makes once its endpoint runs, for `Creador`."""

    @property
    def destino(self) -> str:
        """The connected account involved: its name may ask for a fault (`fallas`)."""
        ...

    def rechazo(self, codigo: str | None) -> tuple[int, bytes] | None:
        """The answer to a decline a fault asks for; None where the operation has no declines."""
        ...

    def hacer(self) -> tuple[int, bytes, int | None]:
        """Its effect (no await between its checks and its writes) and its answer: status, body,
        and the place of the transfer that body is (the key then points at it instead of a copy)."""
        ...


class Creador:
    def __init__(self, ledger: Ledger, fallas: Callable[[], Fallas], contadores: collections.Counter[str],
                 rng: random.Random) -> None:  # fmt: skip
        self.ledger = ledger
        self.en_curso: set[str] = set()
        self._fallas = fallas
        self._contadores = contadores
        self._rng = rng
        self._intentos: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._guardados = 0
        self.latencia = Latencia.parse(fallas().latencia)

    async def crear(self, operacion: Operacion, pares: list[tuple[str, str]], ruta: str, clave: str | None,
                    cabeceras: dict[str, str]) -> tuple[int, bytes]:  # fmt: skip
        """Runs `operacion`, or replays what its key saved; `pares`: the request's parameters,
        `ruta`: its endpoint's path."""
        if clave is None:
            return await self._ejecutar(operacion, None, None, cabeceras)
        if len(clave) > MAX_CLAVE:
            raise errores.invalido(f"Idempotency-Key must be at most {MAX_CLAVE} characters long.", "Idempotency-Key")
        if clave in self.en_curso:
            self._contadores["409"] += 1
            raise errores.ErrorStripeError(409, _EN_CURSO.format(clave[:100]), code="idempotency_key_in_use",
                                           cabeceras={"Stripe-Should-Retry": "true"})  # fmt: skip
        pedido = ResultadoIdempotente(huella(pares), 0, b"", cabeceras["Request-Id"], ruta)
        if (previo := self.ledger.resultado(clave)) is not None:
            return self._replay(previo, pedido, clave, cabeceras)
        return await self._ejecutar(operacion, clave, pedido, cabeceras)

    def _replay(self, previo: ResultadoIdempotente, pedido: ResultadoIdempotente, clave: str,
                cabeceras: dict[str, str]) -> tuple[int, bytes]:  # fmt: skip
        if previo.ruta != pedido.ruta or previo.huella != pedido.huella:
            self._contadores["400_idempotency_error"] += 1
            otra = (
                _OTRA_RUTA.format(pedido.ruta, previo.ruta, clave[:100]) if previo.ruta != pedido.ruta else _OTRA_CLAVE
            )
            raise errores.ErrorStripeError(400, otra, tipo="idempotency_error")
        self._contadores["replay"] += 1
        cabeceras.update({"Idempotent-Replayed": "true", "Original-Request": previo.request_id})
        if previo.status >= 500:  # noqa: PLR2004
            cabeceras["Stripe-Should-Retry"] = "false"
        return previo.status, previo.body

    async def _ejecutar(self, operacion: Operacion, clave: str | None, pedido: ResultadoIdempotente | None,
                        cabeceras: dict[str, str]) -> tuple[int, bytes]:  # fmt: skip
        """`pedido`: what the request saves under its key, but for the status and body it gets."""
        fallas = self._fallas()
        destino = operacion.destino
        falla, codigo = elegir(fallas, destino, self._intento(clave, destino), self._rng)
        if falla is Falla.ERROR_500_GUARDADO and not destino.startswith("acct_test_"):
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
            status, body, seq_transfer = self._resultado(operacion, falla, codigo)
            self._contadores["500_guardado" if status >= 500 else str(status)] += 1  # noqa: PLR2004
            if clave is not None and pedido is not None:
                resultado = ResultadoIdempotente(pedido.huella, status, body, pedido.request_id, pedido.ruta)
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

    @staticmethod
    def _resultado(operacion: Operacion, falla: Falla, codigo: str | None) -> tuple[int, bytes, int | None]:
        if falla is Falla.RECHAZO and (rechazo := operacion.rechazo(codigo)) is not None:
            return *rechazo, None
        if falla is Falla.ERROR_500_GUARDADO:
            return 500, errores.error_interno().cuerpo(), None
        status, cuerpo, seq = operacion.hacer()
        if falla is Falla.ERROR_500_GUARDADO_CREADO:  # made, and answered as if it were not
            return 500, errores.error_interno().cuerpo(), None
        return status, cuerpo, seq

    def _intento(self, clave: str | None, destino: str) -> int:
        """Which attempt of its key this is, counted only where a trigger asks (`acct_test_…_once`)."""
        if clave is None or not destino.startswith("acct_test_"):
            return 1
        intento = self._intentos.pop(clave, 0) + 1
        self._intentos[clave] = intento
        if len(self._intentos) > _INTENTOS_RECORDADOS:
            self._intentos.popitem(last=False)
        return intento
