"""The simulator driven by Stripe's official Python SDK, every answer checked against Stripe's
OpenAPI description (a `requests` hook validates each body the SDK receives)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import stripe

from pagos_dev.simulador.fallas import Fallas
from tests.fakes import hasta
from tests.simulador_helpers import simulador_en_marcha
from tests.simulador_sdk import Sdk
from tests.stripe_spec import propiedades, requerir_spec

pytestmark = pytest.mark.integration


def params(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {"amount": 1000 + n, "currency": "usd", "destination": f"acct_{n % 2}",
            "metadata": {"id_pago": f"p{n}"}, **extra}  # fmt: skip


async def test_crear_repetir_y_otra_vez_con_otros_parametros(sdk):
    creado = await sdk(sdk.transfers.create, params(transfer_group="p0"), {"idempotency_key": "k1"})
    assert (creado.amount, creado.transfer_group, creado.reversals.url) == (
        1000,
        "p0",
        f"/v1/transfers/{creado.id}/reversals",
    )
    assert creado.last_response.headers["Request-Id"].startswith("req_")
    otra_vez = await sdk(sdk.transfers.create, params(transfer_group="p0"), {"idempotency_key": "k1"})
    assert otra_vez.id == creado.id
    assert otra_vez.last_response.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError) as info:
        await sdk(sdk.transfers.create, params(amount=5), {"idempotency_key": "k1"})
    assert info.value.http_status == 400
    assert info.value.request_id.startswith("req_")
    assert len(sdk.sim.simulador.ledger.transfers) == 1


async def test_un_transfer_tiene_cada_propiedad_de_la_spec_y_ninguna_mas(sdk):
    requerir_spec()
    creado = await sdk(sdk.transfers.create, params())
    assert set(creado.to_dict()) == propiedades("transfer")
    # `total_count` as in Stripe's own example of a transfer (not in the spec's TransferReversalList)
    assert set(creado.reversals.to_dict()) == {"object", "data", "has_more", "total_count", "url"}


async def test_obtener_y_expandir(sdk):
    creado = await sdk(sdk.transfers.create, params())
    assert (await sdk(sdk.transfers.retrieve, creado.id)).to_dict() == creado.to_dict()
    campos = ["balance_transaction", "destination", "destination_payment", "reversals", "source_transaction"]
    expandido = await sdk(sdk.transfers.retrieve, creado.id, {"expand": campos})
    assert expandido.destination.id == creado.destination
    assert expandido.balance_transaction.amount == -creado.amount
    assert expandido.destination_payment.object == "charge"
    with pytest.raises(stripe.InvalidRequestError) as info:
        await sdk(sdk.transfers.retrieve, "tr_nope")
    assert (info.value.http_status, info.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        await sdk(sdk.transfers.retrieve, creado.id, {"expand": ["metadata"]})


async def crear_varios(sdk, n: int) -> list[str]:
    ids = []
    for i in range(n):
        sdk.reloj.ahora = 1_700_000_000 + 10 * i
        ids.append((await sdk(sdk.transfers.create, params(i, transfer_group=f"g{i % 3}"))).id)
    return ids  # oldest first


async def test_listar_con_cada_filtro(sdk):
    ids = await crear_varios(sdk, 7)
    todos = await sdk(sdk.transfers.list, {"limit": 100})
    assert [t.id for t in todos.data] == ids[::-1]
    assert todos.has_more is False
    por_destino = await sdk(sdk.transfers.list, {"destination": "acct_1"})
    assert [t.id for t in por_destino.data] == [ids[5], ids[3], ids[1]]
    por_grupo = await sdk(sdk.transfers.list, {"transfer_group": "g0"})
    assert [t.id for t in por_grupo.data] == [ids[6], ids[3], ids[0]]
    t2 = 1_700_000_020
    casos = {
        "gt": ids[3:], "gte": ids[2:], "lt": ids[:2], "lte": ids[:3],
    }  # fmt: skip
    for operador, esperados in casos.items():
        pagina = await sdk(sdk.transfers.list, {"created": {operador: t2}})
        assert [t.id for t in pagina.data] == esperados[::-1], operador
    exacto = await sdk(sdk.transfers.list, {"created": t2})
    assert [t.id for t in exacto.data] == [ids[2]]
    rango = await sdk(sdk.transfers.list, {"created": {"gte": t2, "lt": t2 + 30}, "destination": "acct_0"})
    assert [t.id for t in rango.data] == [ids[4], ids[2]]
    expandida = await sdk(sdk.transfers.list, {"limit": 2, "expand": ["data.destination"]})
    assert expandida.data[0].destination.object == "account"


async def test_auto_paging_iter_en_los_dos_sentidos(sdk):
    ids = await crear_varios(sdk, 7)
    hacia_adelante = await sdk(lambda: [t.id for t in sdk.transfers.list({"limit": 2}).auto_paging_iter()])
    assert hacia_adelante == ids[::-1]
    desde = sdk.transfers.list
    hacia_atras = await sdk(lambda: [t.id for t in desde({"limit": 2, "ending_before": ids[0]}).auto_paging_iter()])
    assert hacia_atras == ids[1:]  # oldest to newest, as the SDK walks backwards
    despues = await sdk(sdk.transfers.list, {"limit": 2, "starting_after": ids[4]})
    assert ([t.id for t in despues.data], despues.has_more) == ([ids[3], ids[2]], True)
    antes = await sdk(sdk.transfers.list, {"limit": 2, "ending_before": ids[2]})
    assert ([t.id for t in antes.data], antes.has_more) == ([ids[4], ids[3]], True)
    for malo in ({"limit": 0}, {"limit": 101}, {"starting_after": "tr_nope"}, {"starting_after": ids[0],
                                                                                "ending_before": ids[1]}):  # fmt: skip
        with pytest.raises(stripe.InvalidRequestError):
            await sdk(sdk.transfers.list, malo)


@pytest.mark.parametrize(
    ("cambios", "clase", "code", "param"),
    [
        ({"amount": -5}, stripe.InvalidRequestError, "parameter_invalid_integer", "amount"),
        ({"currency": "gbp"}, stripe.InvalidRequestError, None, "currency"),
        ({"amount": 10**12}, stripe.InvalidRequestError, "amount_too_large", "amount"),
        ({"ammount": 5}, stripe.InvalidRequestError, "parameter_unknown", "ammount"),
        ({"metadata": {"k" * 41: "v"}}, stripe.InvalidRequestError, None, f"metadata[{'k' * 41}]"),
        ({"destination": "acct_test_balance_insufficient"}, stripe.InvalidRequestError, "balance_insufficient", None),
        ({"destination": "acct_test_error_500"}, stripe.APIError, None, None),
        ({"destination": "acct_test_rate_limited_once"}, stripe.RateLimitError, "rate_limit", None),
    ],
)
async def test_cada_error_con_su_clase_de_excepcion(sdk, cambios, clase, code, param):
    with pytest.raises(clase) as info:
        await sdk(sdk.transfers.create, {**params(), **cambios}, {"idempotency_key": "e1"})
    assert type(info.value) is clase
    error = info.value.json_body["error"]
    assert (error.get("code"), error.get("param")) == (code, param)
    assert info.value.request_id.startswith("req_")
    assert len(sdk.sim.simulador.ledger.transfers) == 0


async def test_409_con_la_clave_en_curso(sdk):
    # In flight (its key taken) for 2 s: the second request, sent once it is, comes meanwhile.
    async with simulador_en_marcha(Fallas(latencia="fixed:2000", tasa_rechazo=0)) as sim:
        cliente = Sdk(sim.url)
        primero = asyncio.create_task(cliente(cliente.transfers.create, params(), {"idempotency_key": "c"}))
        await hasta(lambda: "c" in sim.simulador._en_curso)
        with pytest.raises(stripe.APIError) as info:
            await cliente(cliente.transfers.create, params(), {"idempotency_key": "c"})
        assert (info.value.http_status, info.value.json_body["error"]["code"]) == (409, "idempotency_key_in_use")
        assert info.value.headers["Stripe-Should-Retry"] == "true"
        creado = await primero
        otra_vez = await cliente(cliente.transfers.create, params(), {"idempotency_key": "c"})  # the 409 saved nothing
        assert (otra_vez.id, otra_vez.last_response.headers["Idempotent-Replayed"]) == (creado.id, "true")


async def test_limite_de_la_cuenta(sdk):
    async with simulador_en_marcha(Fallas(latencia="fixed:0", tasa_rechazo=0, limite_cuenta_por_s=2)) as sim:
        cliente = Sdk(sim.url)
        for _ in range(2):
            await cliente(cliente.transfers.list)
        with pytest.raises(stripe.RateLimitError) as info:
            await cliente(cliente.transfers.list)
        assert info.value.http_status == 429
        assert int(info.value.headers["Retry-After"]) >= 1
        async with aiohttp.ClientSession() as http, http.get(f"{sim.url}/_simulador/estadisticas") as resp:
            respuestas = (await resp.json())["respuestas"]  # what the budget bench reads
        assert (respuestas["peticiones"], respuestas["429_limite_cuenta"]) == (3, 1)


@pytest.mark.parametrize("clave", ["sk_live_x", "pk_test_x", "sk_test_", "nada"])
async def test_claves_que_no_valen_son_authentication_error(sdk, clave):
    with pytest.raises(stripe.AuthenticationError) as info:
        await sdk(Sdk(sdk.sim.url, clave).transfers.list)
    assert info.value.http_status == 401
    assert clave not in str(info.value) or len(clave) < 9  # masked


async def test_una_clave_restringida_vale(sdk):
    assert (await sdk(Sdk(sdk.sim.url, "rk_test_restringida").transfers.list)).data == []
