"""The simulator as Stripe documents it, over plain HTTP (aiohttp and curl): authentication both
ways, Request-Id on every answer, unknown parameters, saved 500s, keys' time to live, amounts.
Every body is checked against Stripe's OpenAPI description."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess

import aiohttp
import pytest

from pagos_dev.simulador.fallas import Fallas
from tests.fakes import hasta
from tests.simulador_helpers import AUTH, form, pedir, simulador_en_marcha
from tests.stripe_spec import validar_respuesta

pytestmark = pytest.mark.integration


async def test_request_id_en_cada_respuesta_errores_incluidos(sim):
    fallas = Fallas(latencia="fixed:2000", tasa_rechazo=0)  # "r" in flight for 2 s: the second comes meanwhile
    async with simulador_en_marcha(fallas) as lento, aiohttp.ClientSession(headers=AUTH) as http:
        lento.http = http
        primero = asyncio.create_task(
            pedir(lento, "POST", "/v1/transfers", data=form(), headers={"Idempotency-Key": "r"})
        )
        await hasta(lambda: "r" in lento.simulador._en_curso)
        assert (await pedir(lento, "POST", "/v1/transfers", data=form(), headers={"Idempotency-Key": "r"}))[0] == 409
        assert (await primero)[0] == 200
    async with aiohttp.ClientSession() as sin_clave:
        assert (await pedir(sim, "GET", "/v1/transfers", http=sin_clave))[0] == 401
    assert (await pedir(sim, "GET", "/v1/transfers/tr_nope"))[0] == 404
    assert (await pedir(sim, "POST", "/v1/transfers", data=form(amount="x")))[0] == 400
    assert (await pedir(sim, "POST", "/v1/transfers", data=form("acct_test_error_500")))[0] == 500
    async with sim.http.delete(f"{sim.url}/v1/transfers") as resp:  # not in the spec: a 404 of Stripe's shape
        assert (resp.status, resp.headers["Request-Id"][:4]) == (404, "req_")
    for ruta in ("/_simulador/fallas", "/_simulador/estadisticas", "/nada"):
        async with sim.http.get(sim.url + ruta) as resp:
            assert resp.headers["Request-Id"].startswith("req_")
    reader, writer = await asyncio.open_connection(*sim.url.removeprefix("http://").split(":"))
    writer.write(b"HOLA\r\n\r\n")
    assert b"\r\nRequest-Id: req_" in await reader.read()
    writer.close()


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer sk_test_bearer",
        "bearer rk_test_restringida",
        "Basic " + base64.b64encode(b"sk_test_basic:").decode(),
        "Basic " + base64.b64encode(b"rk_test_basic:ignorada").decode(),
    ],
)
async def test_autenticacion_como_la_acepta_stripe(sim, authorization):
    async with aiohttp.ClientSession(headers={"Authorization": authorization}) as http:
        assert (await pedir(sim, "POST", "/v1/transfers", data=form(), http=http))[0] == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer sk_live_x", "Bearer pk_test_x", "Basic " + base64.b64encode(b":sk_test_x").decode(), "Basic %%%"],
)
async def test_sin_clave_valida_es_401_con_forma_de_stripe(sim, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    async with aiohttp.ClientSession(headers=headers) as http:
        status, cuerpo, cabeceras = await pedir(sim, "GET", "/v1/transfers", http=http)
    assert (status, cuerpo["error"]["type"]) == (401, "invalid_request_error")
    assert cabeceras["WWW-Authenticate"] == 'Basic realm="Stripe"'


@pytest.mark.parametrize(
    ("data", "param"),
    [
        (form(amuont="5"), "amuont"),
        (form(**{"metadata": "x", "metadata[a]": "b"}), "metadata"),
        (form(created="1"), "created"),
        (form(**{"expand[]": "metadata"}), "expand"),
        (form(source_transaction="ch_1"), "source_transaction"),
    ],
)
async def test_lo_que_stripe_no_acepta_es_400_y_no_crea_nada(sim, data, param):
    status, cuerpo, _ = await pedir(sim, "POST", "/v1/transfers", data=data, headers={"Idempotency-Key": "u"})
    assert (status, cuerpo["error"]["param"]) == (400, param)
    assert sim.simulador.ledger.cantidad == 0
    assert (await pedir(sim, "POST", "/v1/transfers", data=form(), headers={"Idempotency-Key": "u"}))[0] == 200


async def test_parametros_desconocidos_en_las_lecturas(sim):
    for ruta, params in (("/v1/transfers", {"limt": "1"}), ("/v1/transfers", {"created[after]": "1"})):
        status, cuerpo, _ = await pedir(sim, "GET", ruta, params=params)
        assert (status, cuerpo["error"]["code"]) == (400, "parameter_unknown")
        assert cuerpo["error"]["param"] == next(iter(params))


async def test_lo_que_envia_el_adaptador_del_servicio(sim):
    cuerpo = (
        "amount=400000000000&currency=cop&destination=acct_afiliado_1&description=Pago+p1"
        "&metadata%5Bid_pago%5D=p1&metadata%5Bid_afiliado%5D=afiliado_1&transfer_group=p1"
    )
    headers = {"Stripe-Version": "2024-06-20", "Idempotency-Key": "pagos-worker-transfer-p1",
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    status, creado, cabeceras = await pedir(sim, "POST", "/v1/transfers", data=cuerpo.encode(), headers=headers)
    assert (status, creado["amount"], creado["transfer_group"]) == (200, 400_000_000_000, "p1")
    assert creado["metadata"] == {"id_pago": "p1", "id_afiliado": "afiliado_1"}
    assert cabeceras["Stripe-Version"] == "2024-06-20"
    status, lista, _ = await pedir(sim, "GET", "/v1/transfers", params={"transfer_group": "p1"})
    assert [t["id"] for t in lista["data"]] == [creado["id"]]


async def test_multipart_y_expand_como_lo_escribe_curl(sim):
    datos = aiohttp.FormData(form(**{"expand[]": "destination"}), default_to_multipart=True)
    status, creado, _ = await pedir(sim, "POST", "/v1/transfers", data=datos)
    assert (status, creado["destination"]["object"]) == (200, "account")


@pytest.mark.parametrize(
    ("amount", "code"), [("0", "parameter_invalid_integer"), ("1000000000000", "amount_too_large")]
)
async def test_montos_fuera_de_limites(sim, amount, code):
    status, cuerpo, _ = await pedir(sim, "POST", "/v1/transfers", data={**form(amount=amount), "currency": "cop"})
    assert (status, cuerpo["error"]["code"], cuerpo["error"]["param"]) == (400, code, "amount")


@pytest.mark.parametrize(("destino", "creado"), [("acct_test_error_500_saved", False),
                                                  ("acct_test_error_500_saved_created", True)])  # fmt: skip
async def test_un_500_guardado_se_repite_con_la_clave(sim, destino, creado):
    clave = {"Idempotency-Key": "g1"}
    s1, b1, h1 = await pedir(sim, "POST", "/v1/transfers", data=form(destino), headers=clave)
    s2, b2, h2 = await pedir(sim, "POST", "/v1/transfers", data=form(destino), headers=clave)
    assert (s1, b1["error"]["type"], h1["Stripe-Should-Retry"]) == (500, "api_error", "false")
    assert (s2, b2, h2["Idempotent-Replayed"], h2["Stripe-Should-Retry"]) == (500, b1, "true", "false")
    assert h2["Original-Request"] == h1["Request-Id"]
    assert sim.simulador.ledger.cantidad == int(creado)


async def test_500_guardados_por_tasa_la_mitad_con_transfer(sim):
    async with sim.http.post(f"{sim.url}/_simulador/fallas", json={"tasa_500_guardado": 1.0}) as resp:
        assert resp.status == 200
    for i in range(6):
        headers = {"Idempotency-Key": f"t{i}"}
        assert (await pedir(sim, "POST", "/v1/transfers", data=form(), headers=headers))[0] == 500
        status, _, cabeceras = await pedir(sim, "POST", "/v1/transfers", data=form(), headers=headers)
        assert (status, cabeceras["Idempotent-Replayed"]) == (500, "true")
    assert sim.simulador.ledger.cantidad == 3
    assert sim.simulador.contadores["500_guardado"] == 6


async def test_las_claves_caducan_y_se_podan():
    async with simulador_en_marcha(ttl_claves_s=0.3) as s, aiohttp.ClientSession(headers=AUTH) as http:
        s.http = http
        clave = {"Idempotency-Key": "caduca"}
        _, primero, _ = await pedir(s, "POST", "/v1/transfers", data=form(), headers=clave)
        assert (await pedir(s, "POST", "/v1/transfers", data=form(amount="7"), headers=clave))[0] == 400
        await asyncio.sleep(0.4)
        status, segundo, cabeceras = await pedir(s, "POST", "/v1/transfers", data=form(amount="7"), headers=clave)
        assert (status, "Idempotent-Replayed" in cabeceras) == (200, False)
        assert segundo["id"] != primero["id"]
        await asyncio.sleep(0.4)
        await pedir(s, "GET", "/v1/transfers")  # a request after the pruning interval prunes
        assert s.simulador.ledger.podar() == 0  # nothing left to prune: the request did


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
async def test_curl_basic_form_multipart_y_chunked(sim):
    # curl waits for a 100 Continue before sending a body it announced with `Expect` (asked for,
    # or its own for a larger body), 1 s by default: 60 s here, longer than the test waits, so a
    # simulator that never answers it fails the test instead of costing a second.
    base = ["curl", "-s", "--expect100-timeout", "60", "-u", "sk_test_curl:", f"{sim.url}/v1/transfers"]
    pedidos = [
        ["-d", "amount=100", "-d", "currency=usd", "-d", "destination=acct_1", "-d", "expand[]=balance_transaction"],
        ["-F", "amount=100", "-F", "currency=usd", "-F", "destination=acct_1", "-F", "metadata[a]=" + "x" * 400],
        ["-H", "Transfer-Encoding: chunked", "--data-binary", "amount=100&currency=eur&destination=acct_2"],
        ["-H", "Expect: 100-continue", "-d", "amount=100&currency=usd&destination=acct_1"],
        ["-d", "amount=100&currency=usd&destination=acct_1&metadata[n]=" + "y" * 450, "-d", "description=" + "z" * 900],
    ]
    for extra in pedidos:
        proceso = await asyncio.create_subprocess_exec(*base, *extra, "-D", "-", stdout=subprocess.PIPE)
        try:
            salida, _ = await asyncio.wait_for(proceso.communicate(), 30)
        finally:
            if proceso.returncode is None:
                proceso.kill()
                await proceso.wait()
        cabeza, _, cuerpo = salida.replace(b"HTTP/1.1 100 Continue\r\n\r\n", b"").partition(b"\r\n\r\n")
        assert cabeza.startswith(b"HTTP/1.1 200"), salida[:300]
        validar_respuesta("POST", "/v1/transfers", 200, cuerpo)
    assert sim.simulador.ledger.cantidad == len(pedidos)
