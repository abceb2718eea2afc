"""The two small HTTP/1.1 implementations of the project over real TCP: the Stripe adapter's client
(`HttpClient`, against aiohttp's server and against raw sockets that misbehave) and the simulator's
server (`ServidorHttp`, against raw sockets)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from pagos_dev.simulador.http import MAX_EN_COLA, Peticion, Respuesta, ServidorHttp
from pagos_worker.adapters.stripe.http import HttpClient, NoResponseError
from tests.conftest import free_port

pytestmark = pytest.mark.integration

Conexion = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def servidor_crudo(atender: Conexion) -> AsyncIterator[str]:
    """A server that writes whatever the test says, however wrong."""
    conexiones = []

    async def registrar(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conexiones.append(writer)
        try:
            await atender(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(registrar, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for w in conexiones:
            w.close()


async def leer_peticion(reader: asyncio.StreamReader) -> bytes:
    cabeza = await reader.readuntil(b"\r\n\r\n")
    largo = next(
        (int(linea.split(b":")[1]) for linea in cabeza.split(b"\r\n") if linea.lower().startswith(b"content-length")),
        0,
    )
    return cabeza + await reader.readexactly(largo)


@contextlib.asynccontextmanager
async def servidor_aiohttp(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def post(cliente: HttpClient, cuerpo: bytes = b"a=1", timeout: float = 5):
    return await cliente.post("/eco", cuerpo, {"X-Prueba": "si"}, timeout=timeout)


# --- the client ---------------------------------------------------------------------------------


async def test_el_cliente_mantiene_la_conexion_y_lee_cuerpos_con_longitud_y_chunked():
    puertos = set()

    async def eco(request: web.Request) -> web.StreamResponse:
        puertos.add(request.transport.get_extra_info("peername")[1])
        cuerpo = await request.read()
        if request.query.get("chunked"):
            resp = web.StreamResponse(headers={"X-Vista": request.headers["X-Prueba"]})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for parte in (b"{", b'"eco": "', cuerpo, b'"}'):
                await resp.write(parte)
            await resp.write_eof()
            return resp
        return web.json_response({"eco": cuerpo.decode()}, headers={"X-Vista": request.headers["X-Prueba"]})

    app = web.Application()
    app.router.add_post("/base/eco", eco)
    async with servidor_aiohttp(app) as url, HttpClient(url + "/base/") as cliente:
        respuestas = [await post(cliente, f"n={i}".encode()) for i in range(3)]
        chunked = await cliente.post("/eco?chunked=1", b"x=y", {"X-Prueba": "c"}, timeout=5)
    assert [r.status for r in respuestas] == [200, 200, 200]
    assert [r.body for r in respuestas] == [b'{"eco": "n=0"}', b'{"eco": "n=1"}', b'{"eco": "n=2"}']
    assert respuestas[0].headers["x-vista"] == "si"
    assert (chunked.body, chunked.headers["x-vista"]) == (b'{"eco": "x=y"}', "c")
    assert len(puertos) == 1  # one kept connection for all four


async def test_un_cuerpo_hasta_el_cierre_y_una_conexion_que_el_servidor_cerro_no_se_reutiliza():
    conexiones = 0

    async def atender(reader, writer):
        nonlocal conexiones
        conexiones += 1
        await leer_peticion(reader)
        writer.write(b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"hasta": "el cierre"}')
        await writer.drain()

    async with servidor_crudo(atender) as url, HttpClient(url) as cliente:
        uno, dos = await post(cliente), await post(cliente)
    assert uno.body == dos.body == b'{"hasta": "el cierre"}'
    assert conexiones == 2


async def test_una_conexion_cerrada_mientras_espera_se_descarta_sin_fallar_la_siguiente():
    async def atender(reader, writer):
        await leer_peticion(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()  # then closed by the server: an idle keep-alive connection it drops

    async with servidor_crudo(atender) as url, HttpClient(url) as cliente:
        await post(cliente)
        await asyncio.sleep(0.1)  # the FIN arrives while the connection is idle
        assert (await post(cliente)).status == 200


@pytest.mark.skipif(shutil.which("openssl") is None, reason="makes its certificate with openssl")
async def test_https_verifica_el_certificado_del_servidor(tmp_path):
    cert, clave = tmp_path / "cert.pem", tmp_path / "clave.pem"
    openssl = shutil.which("openssl") or "openssl"
    argumentos = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                  "-addext", "subjectAltName=DNS:localhost", "-keyout", str(clave), "-out", str(cert)]  # fmt: skip
    subprocess.run([openssl, *argumentos], check=True, capture_output=True)  # noqa: S603 - fixed arguments
    del_servidor = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    del_servidor.load_cert_chain(cert, clave)

    async def eco(request: web.Request) -> web.Response:
        return web.json_response({"tls": request.secure})

    app = web.Application()
    app.router.add_post("/eco", eco)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "localhost", port, ssl_context=del_servidor).start()
    try:
        url = f"https://localhost:{port}"
        async with (
            HttpClient(url, ssl_context=ssl.create_default_context(cafile=str(cert))) as confia,
            HttpClient(url) as desconfia,  # the system's CAs: a self-signed one is refused
        ):
            assert (await post(confia)).body == b'{"tls": true}'
            with pytest.raises(NoResponseError, match="CERTIFICATE_VERIFY_FAILED"):
                await post(desconfia)
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "respuesta",
    [
        b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"corto"',  # cut short
        b"SMTP ready\r\n\r\n",  # not HTTP
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk size
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-6\r\nabcdef",  # int() takes "-6"
        b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n{}",  # "\u00b2".isdigit() is True
        b"",  # closed without a word
    ],
)
async def test_lo_que_no_es_una_respuesta_completa_es_sin_respuesta(respuesta):
    async def atender(reader, writer):
        await leer_peticion(reader)
        writer.write(respuesta)
        await writer.drain()

    async with servidor_crudo(atender) as url, HttpClient(url) as cliente:
        with pytest.raises(NoResponseError):
            await post(cliente)


async def test_los_trailers_de_un_chunked_se_leen_enteros():
    async def atender(reader, writer):
        for _ in range(2):
            await leer_peticion(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: 1\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)  # the empty line that ends the trailers comes a little later
            writer.write(b"\r\n")
            await writer.drain()

    async with servidor_crudo(atender) as url, HttpClient(url) as cliente:
        assert (await post(cliente)).body == b"{}"
        assert (await post(cliente)).body == b"{}"  # the same connection, nothing left over


async def test_el_plazo_corta_la_espera_y_la_conexion_no_vuelve_al_pool():
    conexiones = 0

    async def atender(reader, writer):
        nonlocal conexiones
        conexiones += 1
        await leer_peticion(reader)
        if conexiones == 1:
            await asyncio.sleep(5)  # never answers in time
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        await reader.read()

    async with servidor_crudo(atender) as url, HttpClient(url) as cliente:
        with pytest.raises(TimeoutError):
            await post(cliente, timeout=0.2)
        assert (await post(cliente)).body == b"{}"  # a new connection: the late answer is not read
    assert conexiones == 2


async def test_sin_servidor_es_sin_respuesta():
    cliente = HttpClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(NoResponseError, match="no se pudo conectar"):
        await post(cliente)


def test_solo_urls_http():
    for mala in ("ftp://x", "http://", "nada"):
        with pytest.raises(ValueError, match="URL"):
            HttpClient(mala)


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
        await asyncio.sleep(0.2)
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
