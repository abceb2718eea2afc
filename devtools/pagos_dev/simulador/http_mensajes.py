"""HTTP/1.1 messages: requests read off a connection's buffer (what the official SDKs, curl and
the service send: `Content-Length` or chunked bodies, `Expect: 100-continue`) and responses."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote

import orjson

MAX_CABECERAS = 16 * 1024
MAX_CUERPO = 1024 * 1024
_RAZONES = {s.value: s.phrase for s in HTTPStatus}


@dataclass(slots=True)
class Peticion:
    metodo: str
    ruta: str
    consulta: str  # the query string as sent (repeated names such as `expand[]` kept)
    cabeceras: dict[str, str]  # names in lower case
    cuerpo: bytes = b""

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.consulta))


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
        cabeza.append(f"Date: {_fecha(int(time.time()))}")  # as every origin server with a clock (RFC 9110)
        cabeza.extend(f"{k}: {v}" for k, v in self.cabeceras.items())
        if cerrar:
            cabeza.append("Connection: close")
        return ("\r\n".join(cabeza) + "\r\n\r\n").encode("latin-1") + self.cuerpo


@functools.lru_cache(maxsize=1)
def _fecha(segundo: int) -> str:
    """The Date header's value, made once a second."""
    return formatdate(segundo, usegmt=True)


class PeticionInvalidaError(Exception):
    def __init__(self, status: int, mensaje: str) -> None:
        super().__init__(mensaje)
        self.status = status


class Incompleta(NamedTuple):
    """Not all of the request has arrived; `espera_continuar`: its head asks for a 100 first."""

    espera_continuar: bool


def siguiente(buffer: bytearray) -> tuple[Peticion, bool] | Incompleta:
    """The first whole request in `buffer` (removed from it) and whether the connection closes after it."""
    fin = buffer.find(b"\r\n\r\n")
    if fin < 0:
        if len(buffer) > MAX_CABECERAS:
            raise PeticionInvalidaError(431, "Request header fields too large")
        return Incompleta(espera_continuar=False)
    metodo, destino, version, cabeceras = _cabeza(bytes(buffer[:fin]))
    inicio = fin + 4
    if "chunked" in cabeceras.get("transfer-encoding", "").lower():
        leido = _chunked(buffer, inicio)
    else:
        leido = _con_longitud(buffer, inicio, cabeceras.get("content-length", "0"))
    if leido is None:
        return Incompleta(espera_continuar=cabeceras.get("expect", "").lower() == "100-continue")
    cuerpo, consumido = leido
    del buffer[:consumido]
    ruta, _, consulta = destino.partition("?")
    conexion = cabeceras.get("connection", "").lower()
    cerrar = conexion == "close" or (version == "HTTP/1.0" and conexion != "keep-alive")
    return Peticion(metodo, unquote(ruta), consulta, cabeceras, cuerpo), cerrar


def _cabeza(cabeza: bytes) -> tuple[str, str, str, dict[str, str]]:
    linea, *lineas = cabeza.decode("latin-1").split("\r\n")
    partes = linea.split(" ")
    if len(partes) != 3 or not partes[2].startswith("HTTP/1."):  # noqa: PLR2004
        raise PeticionInvalidaError(400, "Malformed request line")
    cabeceras: dict[str, str] = {}
    for cabecera in lineas:
        nombre, separador, valor = cabecera.partition(":")
        if not separador or not nombre or nombre != nombre.strip():
            raise PeticionInvalidaError(400, "Malformed header")
        cabeceras[nombre.lower()] = valor.strip()
    return partes[0], partes[1], partes[2], cabeceras


def _con_longitud(buffer: bytearray, inicio: int, largo_texto: str) -> tuple[bytes, int] | None:
    if not (largo_texto.isascii() and largo_texto.isdigit()):  # isdigit alone takes "²"
        raise PeticionInvalidaError(400, "Invalid Content-Length")
    largo = int(largo_texto)
    if largo > MAX_CUERPO:
        raise PeticionInvalidaError(413, "Request body too large")
    if len(buffer) < inicio + largo:
        return None
    return bytes(buffer[inicio : inicio + largo]), inicio + largo


def _chunked(buffer: bytearray, inicio: int) -> tuple[bytes, int] | None:
    partes: list[bytes] = []
    total, pos = 0, inicio
    while True:
        fin_linea = buffer.find(b"\r\n", pos)
        if fin_linea < 0:
            _sin_terminar(len(buffer) - pos)
            return None
        tamano_texto = bytes(buffer[pos:fin_linea]).split(b";", 1)[0].strip()
        if not tamano_texto or any(c not in b"0123456789abcdefABCDEF" for c in tamano_texto):
            raise PeticionInvalidaError(400, "Invalid chunk size")
        tamano = int(tamano_texto, 16)
        total += tamano
        if total > MAX_CUERPO:
            raise PeticionInvalidaError(413, "Request body too large")
        pos = fin_linea + 2
        if tamano == 0:  # trailers, if any, up to an empty line
            if buffer[pos : pos + 2] == b"\r\n":
                return b"".join(partes), pos + 2
            fin_trailers = buffer.find(b"\r\n\r\n", pos)
            if fin_trailers < 0:
                _sin_terminar(len(buffer) - pos)
                return None
            return b"".join(partes), fin_trailers + 4
        if len(buffer) < pos + tamano + 2:
            return None
        if buffer[pos + tamano : pos + tamano + 2] != b"\r\n":
            raise PeticionInvalidaError(400, "Invalid chunk")
        partes.append(bytes(buffer[pos : pos + tamano]))
        pos += tamano + 2


def _sin_terminar(pendiente: int) -> None:
    """A chunk line or trailers still coming: refused once longer than any header could be."""
    if pendiente > MAX_CABECERAS:
        raise PeticionInvalidaError(400, "Invalid chunk")
