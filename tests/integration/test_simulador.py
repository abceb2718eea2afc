"""The Stripe-compatible simulator over real HTTP: Stripe's shapes and idempotency semantics."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from pagos_dev.simulador.fallas import Fallas
from tests.fakes import hasta
from tests.simulador_helpers import AUTH, form, simulador_en_marcha

pytestmark = pytest.mark.integration


async def post(sim, data, key=None, headers=None):
    h = {**({"Idempotency-Key": key} if key else {}), **(headers or {})}
    async with sim.http.post(f"{sim.url}/v1/transfers", data=data, headers=h) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_crea_un_transfer_con_forma_de_stripe(sim):
    status, body, headers = await post(sim, form(), key="k1")
    assert status == 200
    assert body["object"] == "transfer"
    assert body["id"].startswith("tr_")
    assert (body["amount"], body["currency"], body["destination"]) == (1050, "usd", "acct_123")
    assert body["metadata"] == {"id_pago": "p1"}
    assert headers["Request-Id"].startswith("req_")
    assert "Idempotent-Replayed" not in headers


async def test_misma_clave_devuelve_la_primera_respuesta(sim):
    _, primero, _ = await post(sim, form(), key="k2")
    status, segundo, headers = await post(sim, form(), key="k2")
    assert status == 200
    assert segundo == primero
    assert headers["Idempotent-Replayed"] == "true"
    assert len(sim.simulador.ledger.transfers) == 1


async def test_un_rechazo_tambien_se_repite_igual(sim):
    s1, b1, _ = await post(sim, form(destination="acct_test_balance_insufficient"), key="k3")
    s2, b2, h2 = await post(sim, form(destination="acct_test_balance_insufficient"), key="k3")
    assert (s1, b1["error"]["code"]) == (400, "balance_insufficient")
    assert (s2, b2, h2["Idempotent-Replayed"]) == (s1, b1, "true")
    assert sim.simulador.ledger.transfers == {}


async def test_misma_clave_con_otros_parametros_es_idempotency_error(sim):
    await post(sim, form(), key="k4")
    status, body, _ = await post(sim, form(amount="999"), key="k4")
    assert status == 400
    assert body["error"]["type"] == "idempotency_error"
    assert len(sim.simulador.ledger.transfers) == 1


async def test_clave_en_curso_es_409():
    # In flight (its key taken) for 2 s: the second request, sent once it is, comes meanwhile.
    async with simulador_en_marcha(Fallas(latencia="fixed:2000", tasa_rechazo=0)) as s:
        async with aiohttp.ClientSession(headers=AUTH) as http:
            s.http = http
            primero = asyncio.create_task(post(s, form(), key="k5"))
            await hasta(lambda: "k5" in s.simulador._en_curso)
            status, body, _ = await post(s, form(), key="k5")
            assert (status, body["error"]["code"]) == (409, "idempotency_key_in_use")
            assert (await primero)[0] == 200
        assert len(s.simulador.ledger.transfers) == 1


@pytest.mark.parametrize("auth", [None, "Bearer sk_live_x", "Bearer sk_test_", "Basic abc"])
async def test_sin_clave_valida_es_401(sim, auth):
    headers = {"Authorization": auth} if auth else {}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim.url}/v1/transfers", data=form(), headers=headers) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["type"] == "invalid_request_error"
        async with http.get(f"{sim.url}/v1/transfers", headers=headers) as resp:
            assert resp.status == 401


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"currency": "usd", "destination": "acct_1"}, "amount"),
        (form(amount="-5"), "amount"),
        (form(amount="1.5"), "amount"),
        ({**form(), "currency": "gbp"}, "currency"),
        (form(destination="bank_1"), "destination"),
    ],
)
async def test_validacion_con_errores_de_stripe(sim, data, param):
    status, body, _ = await post(sim, data)
    assert status == 400
    assert body["error"]["param"] == param


async def test_listar_mas_nuevo_primero_y_paginar(sim):
    ids = [(await post(sim, form(**{"metadata[n]": str(i)}), key=f"l{i}"))[1]["id"] for i in range(5)]
    async with sim.http.get(f"{sim.url}/v1/transfers", params={"limit": "2"}) as resp:
        pagina = await resp.json()
    assert [t["id"] for t in pagina["data"]] == [ids[4], ids[3]]
    assert pagina["has_more"] is True
    assert pagina["data"][0]["metadata"] == {"id_pago": "p1", "n": "4"}
    async with sim.http.get(f"{sim.url}/v1/transfers", params={"limit": "10", "starting_after": ids[3]}) as resp:
        resto = await resp.json()
    assert [t["id"] for t in resto["data"]] == [ids[2], ids[1], ids[0]]
    assert resto["has_more"] is False
    for params in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"starting_after": "tr_nope"}):
        async with sim.http.get(f"{sim.url}/v1/transfers", params=params) as resp:
            assert resp.status == 400


async def test_obtener_un_transfer(sim):
    _, creado, _ = await post(sim, form())
    async with sim.http.get(f"{sim.url}/v1/transfers/{creado['id']}") as resp:
        assert await resp.json() == creado
    async with sim.http.get(f"{sim.url}/v1/transfers/tr_nope") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "resource_missing"


async def test_el_ledger_sobrevive_a_un_reinicio(tmp_path):
    archivo = tmp_path / "ledger.jsonl"
    async with simulador_en_marcha(archivo=archivo) as s, aiohttp.ClientSession(headers=AUTH) as http:
        s.http = http
        _, creado, _ = await post(s, form(), key="persistente")
    async with simulador_en_marcha(archivo=archivo) as s, aiohttp.ClientSession(headers=AUTH) as http:
        s.http = http
        assert list(s.simulador.ledger.transfers) == [creado["id"]]
        status, otra_vez, headers = await post(s, form(), key="persistente")
        assert (status, otra_vez["id"], headers["Idempotent-Replayed"]) == (200, creado["id"], "true")


async def test_las_fallas_se_cambian_en_marcha(sim):
    async with sim.http.post(f"{sim.url}/_simulador/fallas", json={"tasa_500": 1.0}) as resp:
        assert (await resp.json())["tasa_500"] == 1.0
    status, body, _ = await post(sim, form(), key="f1")
    assert (status, body["error"]["type"]) == (500, "api_error")
    async with sim.http.post(f"{sim.url}/_simulador/fallas", json={"tasa_500": 0}) as resp:
        assert resp.status == 200
    status, _, _ = await post(sim, form(), key="f1")  # a 500 is not saved: the retry executes
    assert status == 200
    for malo in ({"tasa_500": 2}, {"nada": 1}, [1], {"latencia": "x"}):
        async with sim.http.post(f"{sim.url}/_simulador/fallas", json=malo) as resp:
            assert resp.status == 400
    async with sim.http.get(f"{sim.url}/_simulador/estadisticas") as resp:
        assert (await resp.json())["transfers"] == 1
