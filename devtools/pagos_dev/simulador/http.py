"""The simulator's HTTP/1.1 server: an asyncio protocol of its own.

A gateway stand-in should cost the machine little next to the service it serves; aiohttp's server
(even its low-level one) cost more per request than everything the simulator does with it. This
one speaks the part of HTTP/1.1 that API clients use: keep-alive connections, `Content-Length`
bodies (a chunked body is refused with 411), requests of a connection answered in order, and
`Connection: close`. A handler goes on when its client goes away, as on a real gateway.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import cast
from urllib.parse import parse_qsl, unquote

import orjson
import structlog

log = structlog.get_logger(__name__)

MAX_CABECERAS = 16 * 1024
MAX_CUERPO = 1024 * 1024
_RAZONES = {s.value: s.phrase for s in HTTPStatus}


@dataclass(slots=True)
class Peticion:
    metodo: str
    ruta: str
    query: dict[str, str]
    cabeceras: dict[str, str]  # names in lower case
    cuerpo: bytes = b""


@dataclass(slots=True)
class Respuesta:
    status: int
    cuerpo: bytes
    cabeceras: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, valor: object, status: int = 200) -> Respuesta:
        return cls(status, orjson.dumps(valor))

    def bytes(self, *, cerrar: bool) -> bytes:
        cabeza = [f"HTTP/1.1 {self.status} {_RAZONES.get(self.status, 'Unknown')}"]
        cabeza.append("Content-Type: application/json")
        cabeza.append(f"Content-Length: {len(self.cuerpo)}")
        cabeza.extend(f"{k}: {v}" for k, v in self.cabeceras.items())
        if cerrar:
            cabeza.append("Connection: close")
        return ("\r\n".join(cabeza) + "\r\n\r\n").encode("latin-1") + self.cuerpo


Manejador = Callable[[Peticion], Awaitable[Respuesta]]


class _PeticionInvalidaError(Exception):
    def __init__(self, status: int, mensaje: str) -> None:
        super().__init__(mensaje)
        self.status = status


def _error(status: int, mensaje: str) -> Respuesta:
    return Respuesta.json({"error": {"type": "invalid_request_error", "message": mensaje}}, status)


class _Conexion(asyncio.Protocol):
    def __init__(self, servidor: ServidorHttp) -> None:
        self._servidor = servidor
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        # What to answer, in order: a request, or the error that ends the connection.
        self._cola: collections.deque[tuple[Peticion | Respuesta, bool]] = collections.deque()
        self._tarea: asyncio.Task[None] | None = None
        self._cerrando = False  # a `Connection: close` request or a bad one: read nothing more

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)  # TCP (uvloop's is not a subclass)
        self._servidor.conexiones.add(self)

    def connection_lost(self, _exc: Exception | None) -> None:
        self._servidor.conexiones.discard(self)
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._cerrando:
            return
        self._buffer += data
        try:
            while not self._cerrando and (peticion := self._siguiente()) is not None:
                self._encolar(peticion)  # nothing after a `Connection: close` is read
        except _PeticionInvalidaError as exc:
            self._encolar((_error(exc.status, str(exc)), True))  # after what came before it

    def _siguiente(self) -> tuple[Peticion, bool] | None:
        fin = self._buffer.find(b"\r\n\r\n")
        if fin < 0:
            if len(self._buffer) > MAX_CABECERAS:
                raise _PeticionInvalidaError(431, "Request header fields too large")
            return None
        linea, *lineas = self._buffer[:fin].decode("latin-1").split("\r\n")
        partes = linea.split(" ")
        if len(partes) != 3 or not partes[2].startswith("HTTP/1."):  # noqa: PLR2004
            raise _PeticionInvalidaError(400, "Malformed request line")
        metodo, destino, version = partes
        cabeceras: dict[str, str] = {}
        for cabecera in lineas:
            nombre, separador, valor = cabecera.partition(":")
            if not separador or not nombre or nombre != nombre.strip():
                raise _PeticionInvalidaError(400, "Malformed header")
            cabeceras[nombre.lower()] = valor.strip()
        if "transfer-encoding" in cabeceras:
            raise _PeticionInvalidaError(411, "A Content-Length body is required")
        largo_texto = cabeceras.get("content-length", "0")
        if not (largo_texto.isascii() and largo_texto.isdigit()):  # isdigit alone takes "²"
            raise _PeticionInvalidaError(400, "Invalid Content-Length")
        largo = int(largo_texto)
        if largo > MAX_CUERPO:
            raise _PeticionInvalidaError(413, "Request body too large")
        inicio = fin + 4
        if len(self._buffer) < inicio + largo:
            return None
        cuerpo = bytes(self._buffer[inicio : inicio + largo])
        del self._buffer[: inicio + largo]
        ruta, _, query = destino.partition("?")
        conexion = cabeceras.get("connection", "").lower()
        cerrar = conexion == "close" or (version == "HTTP/1.0" and conexion != "keep-alive")
        return Peticion(metodo, unquote(ruta), dict(parse_qsl(query)), cabeceras, cuerpo), cerrar

    def _encolar(self, item: tuple[Peticion | Respuesta, bool]) -> None:
        self._cola.append(item)
        if item[1]:
            self._cerrando = True
        self._arrancar()

    def _arrancar(self) -> None:
        if self._tarea is None:
            self._tarea = asyncio.get_running_loop().create_task(self._atender())
            self._servidor.tareas.add(self._tarea)
            self._tarea.add_done_callback(self._servidor.tareas.discard)

    async def _atender(self) -> None:
        try:
            while self._cola:
                item, cerrar = self._cola.popleft()
                respuesta = item if isinstance(item, Respuesta) else await self._responder(item)
                if self._transport is None or self._transport.is_closing():
                    continue  # the client went away; what was asked still happened
                self._transport.write(respuesta.bytes(cerrar=cerrar))
                if cerrar:
                    self._transport.close()
        finally:
            self._tarea = None

    async def _responder(self, peticion: Peticion) -> Respuesta:
        try:
            return await self._servidor.manejar(peticion)
        except Exception:
            log.exception("simulador.error", metodo=peticion.metodo, ruta=peticion.ruta[:100])
            return Respuesta.json({"error": {"type": "api_error", "message": "An unknown error occurred"}}, 500)

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
