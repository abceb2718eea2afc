"""The simulator's HTTP/1.1 server: an asyncio protocol of its own (docs/adr/0001 says why).

It speaks what API clients send (`http_mensajes`): keep-alive connections, pipelined requests
answered in order (at most `MAX_EN_COLA` read ahead: past that the connection stops being read
until answers go out), `Content-Length` or chunked bodies, `Expect: 100-continue`, and
`Connection: close`. A client that does not read its answers stops the reading too. A handler
goes on when its client goes away, as on a real gateway.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from typing import cast

import orjson
import structlog

from pagos_dev.simulador.http_mensajes import (
    MAX_CABECERAS,
    MAX_CUERPO,
    Incompleta,
    Peticion,
    PeticionInvalidaError,
    Respuesta,
    siguiente,
)
from pagos_dev.simulador.ids import nuevo_id

__all__ = ["MAX_CABECERAS", "MAX_CUERPO", "MAX_EN_COLA", "Peticion", "Respuesta", "ServidorHttp"]

log = structlog.get_logger(__name__)

MAX_EN_COLA = 64  # requests read ahead of their answers on one connection


Manejador = Callable[[Peticion], Awaitable[Respuesta]]


def _error(status: int, tipo: str, mensaje: str) -> Respuesta:
    cuerpo = orjson.dumps({"error": {"type": tipo, "message": mensaje}})
    return Respuesta(status, cuerpo, {"Request-Id": nuevo_id("req")})


class _Conexion(asyncio.Protocol):
    def __init__(self, servidor: ServidorHttp) -> None:
        self._servidor = servidor
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        # What to answer, in order: a request, or the error that ends the connection.
        self._cola: collections.deque[tuple[Peticion | Respuesta, bool]] = collections.deque()
        self._tarea: asyncio.Task[None] | None = None
        self._cerrando = False  # a `Connection: close` request or a bad one: read nothing more
        self._pausada = False  # reading paused: MAX_EN_COLA requests wait for their answers
        self._continuar_enviado = False
        self._escribible = asyncio.Event()
        self._escribible.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)  # TCP (uvloop's is not a subclass)
        self._servidor.conexiones.add(self)

    def connection_lost(self, _exc: Exception | None) -> None:
        self._servidor.conexiones.discard(self)
        self._transport = None
        self._escribible.set()

    def pause_writing(self) -> None:
        self._escribible.clear()

    def resume_writing(self) -> None:
        self._escribible.set()

    def data_received(self, data: bytes) -> None:
        if self._cerrando:
            return
        self._buffer += data
        self._leer()

    def _leer(self) -> None:
        try:
            while not self._cerrando and len(self._cola) < MAX_EN_COLA:
                leido = siguiente(self._buffer)
                if isinstance(leido, Incompleta):
                    self._quizas_continuar(espera=leido.espera_continuar)
                    break
                self._continuar_enviado = False
                self._encolar(leido)  # nothing after a `Connection: close` is read
        except PeticionInvalidaError as exc:
            self._encolar((_error(exc.status, "invalid_request_error", str(exc)), True))  # after what came before
        self._pausar_si_llena()

    def _quizas_continuar(self, *, espera: bool) -> None:
        # Only when nothing is pending: an interim answer must not overtake earlier ones.
        if espera and not self._continuar_enviado and not self._cola and self._tarea is None and self._transport:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._continuar_enviado = True

    def _pausar_si_llena(self) -> None:
        llena = len(self._cola) >= MAX_EN_COLA
        if self._transport is not None and llena != self._pausada:
            self._pausada = llena
            (self._transport.pause_reading if llena else self._transport.resume_reading)()

    def _encolar(self, item: tuple[Peticion | Respuesta, bool]) -> None:
        self._cola.append(item)
        if item[1]:
            self._cerrando = True
        if self._tarea is None:
            self._tarea = asyncio.get_running_loop().create_task(self._atender())
            self._servidor.tareas.add(self._tarea)
            self._tarea.add_done_callback(self._servidor.tareas.discard)

    async def _atender(self) -> None:
        try:
            while self._cola:
                item, cerrar = self._cola.popleft()
                if self._pausada:
                    self._leer()  # room again: what was left in the buffer, then the socket
                respuesta = item if isinstance(item, Respuesta) else await self._responder(item)
                if not self._escribible.is_set():
                    await self._escribible.wait()
                if self._transport is None or self._transport.is_closing():
                    continue  # the client went away; what was asked still happened
                self._transport.write(respuesta.bytes(cerrar=cerrar))
                if cerrar:
                    self._transport.close()
        finally:
            self._tarea = None
        if self._buffer and not self._cerrando:
            self._leer()  # a request whose `Expect: 100-continue` waited for the earlier answers

    async def _responder(self, peticion: Peticion) -> Respuesta:
        try:
            return await self._servidor.manejar(peticion)
        except Exception:
            log.exception("simulador.error", metodo=peticion.metodo, ruta=peticion.ruta[:100])
            return _error(500, "api_error", "An unknown error occurred")

    def abortar(self) -> None:
        if self._transport is not None:
            self._transport.abort()


_BACKLOG = 4096  # the kernel caps it at net.core.somaxconn


class ServidorHttp:
    def __init__(self, manejar: Manejador) -> None:
        self.manejar = manejar
        self.conexiones: set[_Conexion] = set()
        self.tareas: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def escuchar(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        # Every replica opens up to its gateway concurrency in connections at once (at start, or
        # when a burst finds its idle ones gone): with asyncio's default backlog of 100 the accept
        # queue overflows, and each connection it drops waits for the client's SYN retry, a second.
        self._server = await loop.create_server(lambda: _Conexion(self), host, port, backlog=_BACKLOG)

    async def cerrar(self, espera: float = 1.0) -> None:
        """Stop listening; requests in progress get `espera` seconds, then connections are cut."""
        if self._server is not None:
            self._server.close()
        if self.tareas:
            await asyncio.wait(set(self.tareas), timeout=espera)
        for tarea in set(self.tareas):
            tarea.cancel()
        for conexion in set(self.conexiones):
            conexion.abortar()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self.tareas, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
