"""The simulator's own small HTTP/1.1 server (`ServidorHttp`) over real TCP, against raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pagos_dev.simulador.http import MAX_EN_COLA, Peticion, Respuesta, ServidorHttp
from tests.conftest import free_port
from tests.fakes import hasta

pytestmark = pytest.mark.integration

Conexion = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# --- the simulator's server ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def servidor_propio(
    manejar: Callable[[Peticion], Awaitable[Respuesta]] | None = None,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    async def eco(p: Peticion) -> Respuesta:
        if p.ruta == "/lento":
            await asyncio.sleep(0.2)
        if p.ruta == "/bug":
            raise RuntimeError("un bug")
        return Respuesta.json({"metodo": p.metodo, "ruta": p.ruta, "query": p.query, "cuerpo": p.cuerpo.decode(),
                               "x": p.cabeceras.get("x-prueba")})  # fmt: skip

    servidor = ServidorHttp(manejar or eco)
    port = free_port()
    await servidor.escuchar("127.0.0.1", port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        await servidor.cerrar(espera=0.5)


async def leer_respuesta(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    cabeza = (await reader.readuntil(b"\r\n\r\n")).decode()
    linea, *lineas = cabeza.strip().split("\r\n")
    cabeceras = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lineas)}
    return int(linea.split()[1]), cabeceras, await reader.readexactly(int(cabeceras["content-length"]))


async def test_el_servidor_responde_en_orden_las_peticiones_encadenadas():
    async with servidor_propio() as (reader, writer):
        writer.write(
            b"POST /lento?a=1 HTTP/1.1\r\nHost: x\r\nX-Prueba: uno\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /r%C3%A1pido HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        primero, segundo = await leer_respuesta(reader), await leer_respuesta(reader)
    assert primero[0] == 200
    assert primero[2] == b'{"metodo":"POST","ruta":"/lento","query":{"a":"1"},"cuerpo":"abc","x":"uno"}'
    assert b'"ruta":"/r\xc3\xa1pido"' in segundo[2]


@pytest.mark.parametrize(
    ("peticion", "status"),
    [
        (b"HOLA\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
        (b"GET / HTTP/1.1\r\nSin dos puntos\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 20_000, 431),
    ],
)
async def test_una_peticion_mala_es_un_4xx_en_json_y_cierra_la_conexion(peticion, status):
    async with servidor_propio() as (reader, writer):
        writer.write(peticion)
        recibido, cabeceras, cuerpo = await leer_respuesta(reader)
        assert recibido == status
        assert cabeceras["connection"] == "close"
        assert cuerpo.startswith(b'{"error":{"type":"invalid_request_error"')
        assert await reader.read() == b""  # closed


async def test_nada_despues_de_connection_close_se_atiende():
    vistas = []

    async def manejar(p: Peticion) -> Respuesta:
        vistas.append(p.ruta)
        return Respuesta.json({})

    async with servidor_propio(manejar) as (reader, writer):
        writer.write(b"GET /fin HTTP/1.1\r\nConnection: close\r\n\r\nPOST /pagar HTTP/1.1\r\n\r\n")
        assert (await leer_respuesta(reader))[1]["connection"] == "close"
        assert await reader.read() == b""
        await asyncio.sleep(0.05)
        assert vistas == ["/fin"]  # /pagar was never read, so never run


async def test_connection_close_y_un_bug_del_manejador():
    async with servidor_propio() as (reader, writer):
        writer.write(b"GET /bug HTTP/1.1\r\n\r\nGET /fin HTTP/1.1\r\nConnection: close\r\n\r\n")
        bug, fin = await leer_respuesta(reader), await leer_respuesta(reader)
        assert (bug[0], b"api_error" in bug[2]) == (500, True)
        assert (fin[0], fin[1]["connection"]) == (200, "close")
        assert await reader.read() == b""


async def test_cuerpo_chunked_con_trailers_y_expect_100_continue():
    async with servidor_propio() as (reader, writer):
        writer.write(
            b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: 1\r\n\r\n"
        )
        assert (await leer_respuesta(reader))[2].endswith(b'"cuerpo":"abcde","x":null}')
        writer.write(b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"xyz")
        status, _, cuerpo = await leer_respuesta(reader)
        assert (status, b'"cuerpo":"xyz"' in cuerpo) == (200, True)


async def test_las_peticiones_encadenadas_esperando_respuesta_estan_acotadas():
    suelta = asyncio.Event()
    vistas = []

    async def manejar(p: Peticion) -> Respuesta:
        vistas.append(p.ruta)
        await suelta.wait()
        return Respuesta.json({})

    servidor = ServidorHttp(manejar)
    port = free_port()
    await servidor.escuchar("127.0.0.1", port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /x HTTP/1.1\r\n\r\n" * (MAX_EN_COLA * 4))
        await hasta(lambda: any(c._pausada for c in servidor.conexiones))  # it stopped reading
        [conexion] = servidor.conexiones
        assert len(conexion._cola) <= MAX_EN_COLA
        assert conexion._pausada
        suelta.set()
        for _ in range(MAX_EN_COLA * 4):
            assert (await leer_respuesta(reader))[0] == 200
        assert len(vistas) == MAX_EN_COLA * 4
    finally:
        writer.close()
        await servidor.cerrar(espera=0.5)
