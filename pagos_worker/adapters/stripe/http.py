"""The HTTP/1.1 client the Stripe adapter talks through: kept connections to one origin (TLS for
https), a request at a time on each, `Content-Length`, chunked and read-until-close bodies.

It does one thing — POST a form to Stripe and read the JSON that comes back — and does it for a
fraction of what a general client costs per request (aiohttp's client spent more CPU on a transfer
than the rest of the payment's work in the worker). No redirects, cookies, proxies or compression:
Stripe's API uses none of them. Every failure to get an answer is a `NoResponseError` (or the
`TimeoutError` of the caller's deadline); the adapter decides whether to try again, with the same
Idempotency-Key, so a request that did reach Stripe is never paid twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self, cast
from urllib.parse import urlsplit

MAX_CABECERAS = 64 * 1024
MAX_CUERPO = 16 * 1024 * 1024
_AGOTADA = object()  # the parse needs more bytes


_HEX = re.compile(rb"[0-9a-fA-F]{1,16}")


def _digitos(texto: str) -> bool:
    """Only ASCII digits: `str.isdigit` also takes "²", which `int` refuses."""
    return texto.isascii() and texto.isdigit()


class NoResponseError(Exception):
    """The connection failed, broke, or the server answered something that is not HTTP."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class _Conexion(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.cerrada = False
        self.libre_desde = 0.0
        self._buffer = bytearray()
        self._espera: asyncio.Future[HttpResponse] | None = None
        self._reutilizable = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # TCP (uvloop's is not a subclass)

    def connection_lost(self, exc: Exception | None) -> None:
        self.cerrada = True
        if self._espera is not None and not self._espera.done():
            respuesta: HttpResponse | object = _AGOTADA
            if exc is None:  # a clean end completes a read-until-close body; a reset never does
                with contextlib.suppress(NoResponseError):
                    respuesta = self._analizar(fin_de_datos=True)
            if isinstance(respuesta, HttpResponse):
                self._espera.set_result(respuesta)
            else:
                self._espera.set_exception(NoResponseError(f"la conexión se cerró ({exc or 'EOF'})"))

    def data_received(self, data: bytes) -> None:
        if self._espera is None or self._espera.done():  # nothing was asked: not a server to keep
            self.cerrar()
            return
        self._buffer += data
        try:
            respuesta = self._analizar(fin_de_datos=False)
        except NoResponseError as exc:
            self._espera.set_exception(exc)
            self.cerrar()
            return
        if isinstance(respuesta, HttpResponse):
            self._espera.set_result(respuesta)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost completes a read-until-close body

    async def pedir(self, peticion: bytes) -> tuple[HttpResponse, bool]:
        """The response, and whether the connection can take another request."""
        assert self.transport is not None  # noqa: S101 - connected before use
        self._espera = asyncio.get_running_loop().create_future()
        self._buffer.clear()
        self.transport.write(peticion)
        try:
            respuesta = await self._espera
        finally:
            self._espera = None
        return respuesta, self._reutilizable and not self.cerrada

    def cerrar(self) -> None:
        self.cerrada = True
        if self.transport is not None:
            self.transport.abort()

    def _analizar(self, *, fin_de_datos: bool) -> HttpResponse | object:
        buffer = self._buffer
        fin = buffer.find(b"\r\n\r\n")
        if fin < 0:
            if len(buffer) > MAX_CABECERAS:
                raise NoResponseError("headers de respuesta demasiado grandes")
            return _AGOTADA
        linea, *lineas = buffer[:fin].decode("latin-1").split("\r\n")
        partes = linea.split(" ", 2)
        if len(partes) < 2 or not partes[0].startswith("HTTP/1.") or not _digitos(partes[1]):  # noqa: PLR2004
            raise NoResponseError(f"respuesta que no es HTTP: {linea[:80]!r}")
        version, status = partes[0], int(partes[1])
        headers: dict[str, str] = {}
        for cabecera in lineas:
            nombre, _, valor = cabecera.partition(":")
            headers[nombre.strip().lower()] = valor.strip()
        body = _body(status, headers, buffer, fin + 4, fin_de_datos=fin_de_datos)
        if body is None:
            if len(buffer) > MAX_CABECERAS + MAX_CUERPO:
                raise NoResponseError("respuesta demasiado grande")
            return _AGOTADA
        conexion = headers.get("connection", "").lower()
        self._reutilizable = conexion != "close" and (version != "HTTP/1.0" or conexion == "keep-alive")
        return HttpResponse(status, headers, body)


def _body(status: int, headers: dict[str, str], buffer: bytearray, inicio: int, *, fin_de_datos: bool) -> bytes | None:
    """The response's body from `inicio`, or None while it is incomplete."""
    if status < 200:  # noqa: PLR2004 - nothing here asks for an interim response
        raise NoResponseError(f"respuesta provisional inesperada: {status}")
    if status in (204, 304):  # no body
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _chunked(buffer, inicio)
    if (largo_texto := headers.get("content-length")) is not None:
        if not _digitos(largo_texto) or int(largo_texto) > MAX_CUERPO:
            raise NoResponseError(f"Content-Length inválido: {largo_texto[:20]!r}")
        largo = int(largo_texto)
        return bytes(buffer[inicio : inicio + largo]) if len(buffer) >= inicio + largo else None
    headers["connection"] = "close"  # the body ends when the server closes the connection
    return bytes(buffer[inicio:]) if fin_de_datos else None


def _chunked(buffer: bytearray, posicion: int) -> bytes | None:
    """The decoded body, or None while it is incomplete."""
    partes: list[bytes] = []
    while True:
        fin_linea = buffer.find(b"\r\n", posicion)
        if fin_linea < 0:
            return None
        tamano_texto = bytes(buffer[posicion:fin_linea]).split(b";", 1)[0].strip()
        if not _HEX.fullmatch(tamano_texto):  # int(x, 16) would take "-6", "0x6" or "6_0"
            raise NoResponseError("chunk con tamaño inválido")
        tamano = int(tamano_texto, 16)
        if tamano > MAX_CUERPO:
            raise NoResponseError("chunk demasiado grande")
        inicio = fin_linea + 2
        if tamano == 0:  # then an empty line, or trailer lines and an empty line
            completo = buffer[inicio : inicio + 2] == b"\r\n" or buffer.find(b"\r\n\r\n", inicio) >= 0
            return b"".join(partes) if completo else None
        if len(buffer) < inicio + tamano + 2:
            return None
        partes.append(bytes(buffer[inicio : inicio + tamano]))
        posicion = inicio + tamano + 2


class HttpClient:
    """Connections to `base_url`'s origin, kept between requests while the server keeps them
    (and at most `inactividad_s` unused). Concurrency is the caller's to limit: one connection per
    request in flight."""

    def __init__(
        self, base_url: str, *, ssl_context: ssl.SSLContext | None = None, inactividad_s: float = 30.0
    ) -> None:
        partes = urlsplit(base_url)
        if partes.scheme not in ("http", "https") or not partes.hostname:
            raise ValueError(f"se esperaba una URL http(s)://host[:puerto]: {base_url!r}")
        self._host = partes.hostname
        self._tls = partes.scheme == "https"
        self._port = partes.port or (443 if self._tls else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if self._tls else None
        self._prefijo = partes.path.rstrip("/")
        por_defecto = 443 if self._tls else 80
        self._cabecera_host = self._host if self._port == por_defecto else f"{self._host}:{self._port}"
        self._inactividad_s = inactividad_s
        self._libres: list[_Conexion] = []
        self._todas: set[_Conexion] = set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.cerrar()

    async def post(self, ruta: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> HttpResponse:
        lineas = [
            f"POST {self._prefijo}{ruta} HTTP/1.1",
            f"Host: {self._cabecera_host}",
            f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        peticion = ("\r\n".join(lineas) + "\r\n\r\n").encode("latin-1") + body
        async with asyncio.timeout(timeout):
            conexion = self._libre() or await self._conectar()
            try:
                respuesta, reutilizable = await conexion.pedir(peticion)
            except BaseException:  # a timeout, a cancellation: the answer may still come; not here
                self._descartar(conexion)
                raise
        if reutilizable:
            conexion.libre_desde = time.monotonic()
            self._libres.append(conexion)
        else:
            self._descartar(conexion)
        return respuesta

    def _libre(self) -> _Conexion | None:
        limite = time.monotonic() - self._inactividad_s
        while self._libres:
            conexion = self._libres.pop()  # the most recently used: the least likely to be stale
            if not conexion.cerrada and conexion.libre_desde >= limite:
                return conexion
            self._descartar(conexion)
        return None

    async def _conectar(self) -> _Conexion:
        loop = asyncio.get_running_loop()
        try:
            _, conexion = await loop.create_connection(
                _Conexion, self._host, self._port, ssl=self._ssl, server_hostname=self._host if self._tls else None
            )
        except OSError as exc:  # refused, unreachable, TLS handshake (ssl.SSLError is an OSError)
            raise NoResponseError(f"no se pudo conectar a {self._cabecera_host}: {exc}") from exc
        self._todas.add(conexion)
        return conexion

    def _descartar(self, conexion: _Conexion) -> None:
        conexion.cerrar()
        self._todas.discard(conexion)

    async def cerrar(self) -> None:
        for conexion in list(self._todas):
            self._descartar(conexion)
        self._libres.clear()
        await asyncio.sleep(0)  # the transports' close callbacks
