"""The Stripe adapter's HTTP as aiohttp speaks it, against servers that answer what Stripe would not:
a wrong base (3xx, 404, 405), a 2xx without a transfer, a malformed-request 400; what every request
carries; TLS verified, and an egress proxy reached with CONNECT."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from pydantic import SecretStr

from pagos_worker import observability as metrics
from pagos_worker.adapters.stripe.adapter import STRIPE_VERSION, Destinos, StripeConfig, StripePasarelaDePagos
from pagos_worker.adapters.stripe.config import StripeConfigError
from pagos_worker.adapters.stripe.presupuesto import PresupuestoDeCuenta
from pagos_worker.adapters.stripe.resilience import CircuitState
from pagos_worker.application.ports.pasarela import (
    PasarelaNoDisponibleError,
    ResultadoIndeterminadoError,
    SinPruebaDePagoError,
    TransferenciaHallada,
)
from pagos_worker.domain import Dinero, Lease, Moneda, Pago
from tests.conftest import free_port
from tests.fakes import FakeReservaDeTurnos

pytestmark = pytest.mark.integration
CLAVE = "sk_test_http_no_debe_aparecer"


def pago() -> Pago:
    return Pago.crear(
        id_pago=uuid.uuid4(), id_afiliado="af_1", importe=Dinero(Decimal("12.34"), Moneda.EUR), ahora=datetime.now(UTC)
    )


def suyo(p: Pago, referencia: str, **cambios) -> dict:
    """A transfer as Stripe lists it that pays `p` exactly: its group, amount, currency and account."""
    return {"id": referencia, "object": "transfer", "transfer_group": str(p.id_pago), "created": 1_700_000_000,
            "amount": p.importe.unidades_menores, "currency": p.importe.moneda.value.lower(),
            "destination": f"acct_{p.id_afiliado}", "amount_reversed": 0, **cambios}  # fmt: skip


class Servidor:
    """An aiohttp server that answers every POST with what the test sets, and keeps each request."""

    def __init__(self) -> None:
        self.peticiones: list[tuple[dict[str, str], bytes]] = []
        self.respuesta: Callable[[], web.Response] = lambda: web.json_response({"id": "tr_1", "object": "transfer"})
        self.listado: list[dict] = []  # what GET /v1/transfers lists (newest first)
        self.listado_status = 200  # another: GET answers it with an error object
        self.listado_pagina: str | None = None  # set: GET answers 200 with this page, not a list
        self.consultas: list[dict[str, str]] = []
        self.por_pagina = 100  # Stripe's `limit` at most
        self.retraso_listado_s = 0.0  # each GET answered this late

    async def manejar(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            self.consultas.append(dict(request.query))
            await asyncio.sleep(self.retraso_listado_s)
            if self.listado_pagina is not None:
                return web.Response(text=self.listado_pagina, content_type="text/html", headers={"Request-Id": "req_x"})
            if self.listado_status != 200:
                error = {"error": {"type": "invalid_request_error", "message": f"no ({CLAVE[:8]}****)"}}
                return web.json_response(error, status=self.listado_status, headers={"Request-Id": "req_x"})
            grupo = request.query.get("transfer_group")
            data = [t for t in self.listado if grupo is None or t.get("transfer_group") == grupo]
            if desde := request.query.get("starting_after"):  # Stripe's cursor: the items after that id
                data = data[[t["id"] for t in data].index(desde) + 1 :]
            pagina, mas = data[: self.por_pagina], len(data) > self.por_pagina
            return web.json_response({"object": "list", "url": "/v1/transfers", "has_more": mas, "data": pagina})
        self.peticiones.append((dict(request.headers), await request.read()))
        respuesta = self.respuesta()  # a new one each time: a response is sent once
        return await respuesta if inspect.isawaitable(respuesta) else respuesta


@contextlib.asynccontextmanager
async def servidor(
    ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> AsyncIterator[tuple[Servidor, str]]:
    estado = Servidor()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", estado.manejar)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    try:
        yield estado, f"{'https' if ssl_context else 'http'}://{host}:{port}"
    finally:
        await runner.cleanup()


def config(url: str, **cambios) -> StripeConfig:
    cambios = {"timeout_s": 3, **cambios}
    return StripeConfig(api_base=url, secret_key=SecretStr(CLAVE), backoff_base_s=0.01, backoff_max_s=0.02, **cambios)


@contextlib.asynccontextmanager
async def adaptador(url: str, presupuesto=None, **cambios) -> AsyncIterator[StripePasarelaDePagos]:
    destinos = Destinos(template="acct_{id_afiliado}")
    async with StripePasarelaDePagos(config(url, **cambios), destinos, presupuesto) as pasarela:
        yield pasarela


async def test_cada_peticion_lleva_la_version_la_clave_la_idempotencia_y_el_grupo():
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        p = pago()
        assert (await pasarela.procesar_pago(p)).referencia_pago == "tr_1"
    [(cabeceras, cuerpo)] = estado.peticiones
    assert cabeceras["Stripe-Version"] == STRIPE_VERSION
    assert cabeceras["Authorization"] == f"Bearer {CLAVE}"
    assert cabeceras["Idempotency-Key"] == f"pagos-worker-transfer-{p.id_pago}"
    assert cabeceras["Content-Type"] == "application/x-www-form-urlencoded"
    transfer_form = dict(parse_qsl(cuerpo.decode()))
    assert transfer_form["transfer_group"] == transfer_form["metadata[id_pago]"] == str(p.id_pago)
    assert (transfer_form["amount"], transfer_form["currency"], transfer_form["destination"]) == (
        "1234",
        "eur",
        "acct_af_1",
    )


@pytest.mark.parametrize(
    "respuesta",
    [
        pytest.param(lambda: web.Response(status=301, headers={"Location": "https://elsewhere.example/"}), id="301"),
        pytest.param(lambda: web.Response(status=307, headers={"Location": "/v2/transfers"}), id="307"),
        pytest.param(lambda: web.json_response({"error": {"type": "invalid_request_error"}}, status=404), id="404"),
        pytest.param(lambda: web.Response(status=405, text="Method Not Allowed"), id="405"),
    ],
)
async def test_una_base_equivocada_es_configuracion_nunca_fallido(respuesta):
    """Not followed, not retried, never FALLIDO: the outcome is unknown and the circuit counts it."""
    async with servidor() as (estado, url), adaptador(url, breaker_umbral=2, max_intentos=3) as pasarela:
        estado.respuesta = respuesta
        for _ in range(2):
            with pytest.raises(ResultadoIndeterminadoError, match="configuración de Stripe"):
                await pasarela.procesar_pago(pago())
        assert len(estado.peticiones) == 2  # one request each: a redirect is not followed
        assert pasarela.circuit is CircuitState.OPEN


@pytest.mark.parametrize(
    "respuesta",
    [
        pytest.param(lambda: web.json_response({"object": "transfer"}), id="sin-id"),
        pytest.param(lambda: web.Response(text="<html>portal</html>", content_type="text/html"), id="html"),
        pytest.param(lambda: web.json_response({"id": ""}), id="id-vacio"),
    ],
)
async def test_un_2xx_sin_transfer_es_desconocido(respuesta):
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        estado.respuesta = respuesta
        with pytest.raises(ResultadoIndeterminadoError, match="sin id de transfer"):
            await pasarela.procesar_pago(pago())


async def test_una_peticion_mal_formada_no_es_un_rechazo_del_pago():
    error = {"error": {"type": "invalid_request_error", "code": "parameter_unknown", "param": "transfer_grup"}}
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        estado.respuesta = lambda: web.json_response(error, status=400)
        with pytest.raises(ResultadoIndeterminadoError, match="parameter_unknown"):
            await pasarela.procesar_pago(pago())


async def test_un_rechazo_de_stripe_si_es_fallido():
    error = {"error": {"type": "invalid_request_error", "code": "balance_insufficient", "message": "no funds"}}
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        estado.respuesta = lambda: web.json_response(error, status=400, headers={"Request-Id": "req_9"})
        resultado = await pasarela.procesar_pago(pago())
    assert (resultado.exitoso, resultado.mensaje_error, resultado.referencia_pago) == (
        False,
        "Fondos insuficientes",
        "req_9",
    )


@pytest.fixture(scope="module")
def certificado(tmp_path_factory):
    """A self-signed certificate for localhost (made with openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate to test TLS with")
    carpeta = tmp_path_factory.mktemp("tls")
    cert, clave = carpeta / "cert.pem", carpeta / "clave.pem"
    argumentos = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                  "-addext", "subjectAltName=DNS:localhost", "-keyout", str(clave), "-out", str(cert)]  # fmt: skip
    subprocess.run([openssl, *argumentos], check=True, capture_output=True)  # noqa: S603 - fixed arguments
    contexto = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    contexto.load_cert_chain(cert, clave)
    return cert, contexto


async def test_tls_se_verifica_siempre(certificado):
    cert, contexto = certificado
    async with servidor(contexto, host="localhost") as (estado, url):
        async with adaptador(url, max_intentos=1) as desconfia:  # the system's CAs refuse a self-signed one
            with pytest.raises(ResultadoIndeterminadoError, match="sin respuesta"):
                await desconfia.procesar_pago(pago())
        assert estado.peticiones == []
        async with adaptador(url, ca_bundle=cert) as confia:
            assert (await confia.procesar_pago(pago())).exitoso


@contextlib.asynccontextmanager
async def proxy_connect() -> AsyncIterator[tuple[list[str], str]]:
    """An egress proxy that only tunnels (CONNECT), as those in front of payment providers do."""
    tuneles: list[str] = []

    async def tubo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while datos := await reader.read(65536):
                writer.write(datos)
                await writer.drain()
        writer.close()

    async def atender(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cabeza = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        metodo, destino, _ = cabeza.split("\r\n", 1)[0].split(" ", 2)
        if metodo != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        tuneles.append(destino)
        host, _, port = destino.rpartition(":")
        r2, w2 = await asyncio.open_connection("127.0.0.1" if host == "localhost" else host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(tubo(reader, w2), tubo(r2, writer))

    server = await asyncio.start_server(atender, "127.0.0.1", 0)
    try:
        yield tuneles, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


async def test_un_proxy_de_salida_de_https_proxy(certificado, monkeypatch):
    cert, contexto = certificado
    async with servidor(contexto, host="localhost") as (estado, url), proxy_connect() as (tuneles, proxy):
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with adaptador(url, ca_bundle=cert) as pasarela:
            assert (await pasarela.procesar_pago(pago())).exitoso
            assert (await pasarela.procesar_pago(pago())).exitoso
        assert tuneles == [url.removeprefix("https://")]  # one tunnel, kept alive for both
        assert len(estado.peticiones) == 2
        monkeypatch.setenv("NO_PROXY", "localhost")
        async with adaptador(url, ca_bundle=cert) as directo:
            assert (await directo.procesar_pago(pago())).exitoso
        assert len(tuneles) == 1  # NO_PROXY: straight to the server


async def test_sin_cuenta_de_destino_falla_sin_llamar_a_la_pasarela():
    antes = metrics.SIN_DESTINO._value.get()
    async with servidor() as (estado, url):
        config_mapa = config(url)
        async with StripePasarelaDePagos(config_mapa, Destinos({"otro": "acct_otro"})) as pasarela:
            resultado = await pasarela.procesar_pago(pago())
    assert (resultado.exitoso, resultado.mensaje_error) == (False, "El afiliado no tiene cuenta de destino configurada")
    assert estado.peticiones == []
    assert metrics.SIN_DESTINO._value.get() == antes + 1


def error_500_repetido() -> web.Response:
    cuerpo = {"error": {"type": "api_error", "message": "An unknown error occurred"}}
    return web.json_response(cuerpo, status=500, headers={"Idempotent-Replayed": "true", "Original-Request": "req_1"})


async def test_un_500_repetido_se_consulta_y_el_transfer_hallado_lo_resuelve():
    p = pago()
    async with servidor() as (estado, url), adaptador(url, max_intentos=4) as pasarela:
        estado.respuesta = error_500_repetido
        estado.listado = [
            {"id": "tr_otro", "transfer_group": str(uuid.uuid4()), "created": 1},
            suyo(p, "tr_suyo"),
        ]
        resultado = await pasarela.procesar_pago(p)
    assert (resultado.exitoso, resultado.referencia_pago) == (True, "tr_suyo")
    assert len(estado.peticiones) == 1  # the same key would replay the same 500: not sent again
    assert estado.consultas == [{"transfer_group": str(p.id_pago), "limit": "100"}]


async def test_un_500_repetido_sin_transfer_queda_desconocido_sin_otro_post():
    async with servidor() as (estado, url), adaptador(url, max_intentos=4) as pasarela:
        estado.respuesta = error_500_repetido
        with pytest.raises(ResultadoIndeterminadoError, match="no tiene transfer"):
            await pasarela.procesar_pago(pago())
    assert len(estado.peticiones) == 1
    assert len(estado.consultas) == 1


async def test_idempotency_error_se_consulta():
    error = {"error": {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used..."}}
    p = pago()
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        estado.respuesta = lambda: web.json_response(error, status=400)
        estado.listado = [suyo(p, "tr_previo")]
        assert (await pasarela.procesar_pago(p)).referencia_pago == "tr_previo"


async def test_dos_transfers_no_prueban_nada_y_se_cuentan():
    """Paid twice: no lookup settles it with either; an operator decides (the payment is flagged)."""
    p = pago()
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        estado.listado = [suyo(p, "tr_b", created=20), suyo(p, "tr_a", created=10)]
        antes = metrics.TRANSFERS_MULTIPLES._value.get()
        with pytest.raises(SinPruebaDePagoError, match="2 transfers del pago: tr_a, tr_b"):
            await pasarela.buscar_transferencia(p)
        assert metrics.TRANSFERS_MULTIPLES._value.get() == antes + 1  # paid twice: counted, alerted
        assert await pasarela.buscar_transferencia(pago()) is None


async def test_la_consulta_lee_todas_las_paginas():
    """A second transfer on the next page is still a second transfer: every page is read."""
    p = pago()
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        estado.listado = [suyo(p, "tr_b", created=20), suyo(p, "tr_a", created=10)]
        estado.por_pagina = 1
        with pytest.raises(SinPruebaDePagoError, match="2 transfers"):
            await pasarela.buscar_transferencia(p)
        assert [c.get("starting_after") for c in estado.consultas] == [None, "tr_b"]
        estado.listado = [suyo(p, "tr_a")]
        assert await pasarela.buscar_transferencia(p) == "tr_a"


async def test_un_transfer_a_otra_cuenta_no_deja_pagado_el_pago():
    """A transfer in the payment's group to another account (made by hand, or by another system)
    is no proof that the affiliate was paid."""
    p = pago()
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        estado.listado = [suyo(p, "tr_x", destination="acct_de_otro")]
        with pytest.raises(SinPruebaDePagoError, match="va a acct_de_otro"):
            await pasarela.buscar_transferencia(p)


async def test_un_reintento_sin_cuenta_de_destino_es_desconocido_nunca_fallido():
    """The affiliate left the destinations file after a first attempt that may have paid."""
    p = pago()
    p.iniciar_procesamiento(Lease("w", datetime.now(UTC) + timedelta(minutes=1)), datetime.now(UTC))
    p.intentos = 2
    async with servidor() as (estado, url):
        pasarela = StripePasarelaDePagos(config(url), Destinos({"otro": "acct_otro"}))
        async with pasarela:
            with pytest.raises(ResultadoIndeterminadoError, match="ya no tiene cuenta de destino"):
                await pasarela.procesar_pago(p)
    assert estado.peticiones == []


async def test_las_transferencias_dicen_lo_que_stripe_muestra_de_ellas():
    """What the operator's resolver decides on: amount, currency, destination, time, and how much was
    reversed since (anything Stripe leaves out is None, never a made-up zero)."""
    p = pago()
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        estado.listado = [
            {"id": "tr_r", "transfer_group": str(p.id_pago), "created": 1_700_000_000, "amount": 2500,
             "currency": "usd", "destination": "acct_1", "amount_reversed": 1000},
            {"id": "tr_s", "transfer_group": str(p.id_pago), "created": 1_700_000_001},
        ]  # fmt: skip
        revertido, escueto = await pasarela.transferencias(p)
    assert revertido == TransferenciaHallada(
        "tr_r", 2500, "USD", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), "acct_1", revertido=1000
    )
    assert escueto == TransferenciaHallada("tr_s", creada=datetime(2023, 11, 14, 22, 13, 21, tzinfo=UTC))


@pytest.mark.parametrize(
    ("hallado", "dice"),
    [
        ({"amount": 1234, "currency": "eur", "amount_reversed": 1234}, "fue revertido en Stripe"),
        ({"amount": 1234, "currency": "eur", "amount_reversed": 1}, "fue revertido en Stripe"),
        ({"amount": 999, "currency": "eur", "amount_reversed": 0}, "paga 999 EUR"),
        ({"amount": 1234, "currency": "usd", "amount_reversed": 0}, "paga 1234 USD"),
    ],
)
async def test_un_transfer_que_no_deja_pagado_el_pago_no_lo_resuelve(hallado, dice):
    """Found by the worker's lookup, a transfer reversed since or of another amount is no proof of
    payment: the outcome stays unknown (an operator decides), never EXITOSO with it."""
    p = pago()
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        estado.listado = [suyo(p, "tr_x", **hallado)]
        with pytest.raises(SinPruebaDePagoError, match=dice):
            await pasarela.buscar_transferencia(p)
        estado.listado = [suyo(p, "tr_x")]
        assert await pasarela.buscar_transferencia(p) == "tr_x"


async def test_una_consulta_sin_respuesta_es_desconocida():
    async with adaptador(f"http://127.0.0.1:{free_port()}", max_intentos=2) as pasarela:
        with pytest.raises(ResultadoIndeterminadoError, match="consulta de transfers"):
            await pasarela.buscar_transferencia(pago())


async def test_cada_generacion_de_clave_es_otra_clave():
    p = pago()
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        await pasarela.procesar_pago(p)
        p.generacion_clave = 2
        await pasarela.procesar_pago(p)
    claves = [cabeceras["Idempotency-Key"] for cabeceras, _ in estado.peticiones]
    assert claves == [f"pagos-worker-transfer-{p.id_pago}", f"pagos-worker-transfer-{p.id_pago}:2"]


async def test_una_consulta_rechazada_por_el_circuito_abierto_no_es_un_intento():
    async with adaptador(f"http://127.0.0.1:{free_port()}", max_intentos=1, breaker_umbral=1) as pasarela:
        with pytest.raises(ResultadoIndeterminadoError):
            await pasarela.buscar_transferencia(pago())  # no answer: the circuit opens
        with pytest.raises(PasarelaNoDisponibleError, match="circuito abierto"):
            await pasarela.buscar_transferencia(pago())  # refused before asking anything


async def test_ningun_post_sobrevive_al_lease():
    """A replica that claims the payment once its lease expired must find no call of ours in flight:
    no attempt starts unless its whole timeout ends before the lease does."""
    async with servidor() as (estado, url), adaptador(url, timeout_s=1.0, max_intentos=10) as pasarela:

        async def cuelga():
            await asyncio.sleep(5)
            return web.json_response({})

        estado.respuesta = cuelga
        p = pago()
        p.lease = Lease("w1", datetime.now(UTC) + timedelta(seconds=2.5))
        with pytest.raises(ResultadoIndeterminadoError, match="el lease vence"):
            await pasarela.procesar_pago(p)
        # Each attempt lasts its whole 1 s timeout (the server never answers), so a third could
        # start 2 s in at the soonest and end after the lease: at most two, whatever the load (a
        # busy machine only makes them later, and fewer). Not the 10 the configuration allows.
        assert 1 <= len(estado.peticiones) <= 2
        # The last one ends with its timeout, no later than the lease: give a loaded machine's
        # late timer 1 s, far short of the 5 s a request left hanging would take.
        assert datetime.now(UTC) <= p.lease.expira + timedelta(seconds=1)


async def test_sin_presupuesto_de_la_cuenta_no_se_envia_nada():
    """The account's budget cannot be read (PostgreSQL is down): nothing is sent, and a first
    attempt says so as the gateway being unavailable (the payment is put back, not failed)."""
    reserva = FakeReservaDeTurnos()
    reserva.falla = ConnectionRefusedError("postgres")
    async with servidor() as (estado, url), adaptador(url, PresupuestoDeCuenta(reserva, 100.0)) as pasarela:
        with pytest.raises(PasarelaNoDisponibleError, match="presupuesto de la cuenta no disponible"):
            await pasarela.procesar_pago(pago())
        with pytest.raises(PasarelaNoDisponibleError, match="presupuesto"):
            await pasarela.buscar_transferencia(pago())
        assert estado.peticiones == estado.consultas == []
        reserva.falla = None  # back: the next payment goes out
        assert (await pasarela.procesar_pago(pago())).exitoso
    assert len(estado.peticiones) == 1
    assert reserva.reservados == 1


async def test_cada_peticion_toma_un_turno_del_presupuesto():
    """Payouts and lookups alike: every request the account sees is one turn of its budget."""
    reserva = FakeReservaDeTurnos()
    async with servidor() as (estado, url), adaptador(url, PresupuestoDeCuenta(reserva, 1000.0)) as pasarela:
        await pasarela.procesar_pago(pago())
        await pasarela.buscar_transferencia(pago())
    assert reserva.reservados == len(estado.peticiones) + len(estado.consultas) == 2


async def test_una_sonda_sin_turno_no_deja_el_circuito_esperando_para_siempre():
    """The circuit is half-open and the probe gets no budget turn (PostgreSQL is down): nothing is
    sent, and once the budget is back the next payment probes and closes the circuit."""
    reserva = FakeReservaDeTurnos()
    presupuesto = PresupuestoDeCuenta(reserva, 1000.0)
    async with (
        servidor() as (estado, url),
        adaptador(url, presupuesto, breaker_umbral=1, breaker_abierto_s=0.2, max_intentos=1) as pasarela,
    ):
        estado.respuesta = lambda: web.json_response({"error": {"type": "api_error"}}, status=500)
        with pytest.raises(ResultadoIndeterminadoError):
            await pasarela.procesar_pago(pago())
        assert pasarela.circuit is CircuitState.OPEN
        await asyncio.sleep(0.25)
        reserva.falla = ConnectionRefusedError("postgres")
        with pytest.raises(PasarelaNoDisponibleError, match="presupuesto"):
            await pasarela.procesar_pago(pago())  # the probe: not sent
        reserva.falla = None
        estado.respuesta = lambda: web.json_response({"id": "tr_2", "object": "transfer"})
        await asyncio.wait_for(pasarela.esperar_disponible(), 10)  # let go, not left waiting for ever
        assert (await pasarela.procesar_pago(pago())).referencia_pago == "tr_2"
        assert pasarela.circuit is CircuitState.CLOSED


@pytest.mark.parametrize(
    ("status", "ajuste", "dice"),
    [
        (401, "PAGOS_STRIPE_SECRET_KEY", "does not accept the key"),
        (403, "PAGOS_STRIPE_SECRET_KEY", "may not read transfers"),
        (404, "PAGOS_STRIPE_API_BASE", "not Stripe's API"),
        (302, "PAGOS_STRIPE_API_BASE", "not Stripe's API"),
    ],
)
async def test_al_arrancar_una_clave_o_base_que_no_sirven_lo_dicen(status, ajuste, dice):
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        estado.listado_status = status
        with pytest.raises(StripeConfigError) as info:
            await pasarela.comprobar_acceso()
    assert str(info.value).startswith(ajuste)
    assert dice in str(info.value)
    assert "req_x" in str(info.value)
    assert CLAVE not in str(info.value)
    assert estado.consultas == [{"limit": "1"}]


@pytest.mark.parametrize("status", [200, 500, 503])
async def test_al_arrancar_stripe_caido_no_impide_arrancar(status):
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        estado.listado_status = status
        await pasarela.comprobar_acceso()  # a 5xx is Stripe's trouble: a warning only


async def test_al_arrancar_sin_respuesta_de_stripe_no_impide_arrancar():
    async with adaptador(f"http://127.0.0.1:{free_port()}", timeout_s=0.5) as pasarela:
        await pasarela.comprobar_acceso()


async def test_al_arrancar_una_pagina_que_no_es_de_stripe_no_sirve():
    """A catch-all in front of the base (a proxy's page, a web server) answers 200 with anything."""
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        estado.listado_pagina = "<html>welcome</html>"
        with pytest.raises(StripeConfigError, match=r"PAGOS_STRIPE_API_BASE .*without a Stripe list"):
            await pasarela.comprobar_acceso()


async def test_una_consulta_mas_lenta_que_el_lease_acaba_como_intento_desconocido():
    """Stripe's lists slower than the lease: the lookup stops in time to leave room for the payout
    call, and it counts as an attempt (the payment ends in front of an operator, not in a loop)."""
    p = pago()
    p.iniciar_procesamiento(Lease("w", datetime.now(UTC), plazo=time.monotonic() + 4), datetime.now(UTC))
    async with servidor() as (estado, url), adaptador(url, timeout_s=1, max_intentos=10) as pasarela:
        estado.retraso_listado_s = 5  # every GET times out
        with pytest.raises(ResultadoIndeterminadoError, match="el lease vence") as error:
            await pasarela.buscar_transferencia(p)
    assert not isinstance(error.value, PasarelaNoDisponibleError)  # an attempt, not "nothing sent"
    assert 1 <= len(estado.consultas) <= 3  # it stopped with a timeout's room left, not after 10 tries
    assert estado.peticiones == []


async def test_la_consulta_distingue_los_reversos_propios_de_los_hechos_fuera():
    """What the service reversed itself is known (`monto_reversado`): a transfer reversed by exactly
    that much still proves the payment; any other amount was reversed elsewhere (the dashboard)."""
    p = pago()
    p.monto_reversado = Decimal("2.00")
    async with servidor() as (estado, url), adaptador(url) as pasarela:
        estado.listado = [suyo(p, "tr_x", amount_reversed=200)]
        assert await pasarela.buscar_transferencia(p) == "tr_x"
        estado.listado = [suyo(p, "tr_x", amount_reversed=300)]
        with pytest.raises(SinPruebaDePagoError, match="el servicio revirtió 200"):
            await pasarela.buscar_transferencia(p)
