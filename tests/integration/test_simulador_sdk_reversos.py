"""Transfer reversals driven by Stripe's official Python SDK, every answer (errors included)
checked against Stripe's OpenAPI description by the SDK's `requests` hook."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import stripe

from tests.stripe_spec import propiedades, requerir_spec

pytestmark = pytest.mark.integration


async def transfer(sdk, amount: int = 1000, destination: str = "acct_afiliado_1", **extra: Any) -> str:
    creado = await sdk(sdk.transfers.create, {"amount": amount, "currency": "usd", "destination": destination, **extra})
    return creado.id


async def saldos(sdk, cuenta: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as http, http.get(f"{sdk.sim.url}/_simulador/saldos?cuenta={cuenta}") as r:
        return {s["moneda"]: s["saldo"] for s in (await r.json())["saldos"]}


async def fijar_saldo(sdk, cuenta: str, saldo: int, moneda: str = "usd") -> None:
    pedido = {"cuenta": cuenta, "moneda": moneda, "saldo": saldo}
    async with aiohttp.ClientSession() as http, http.post(f"{sdk.sim.url}/_simulador/saldos", json=pedido) as r:
        assert (r.status, await r.json()) == (200, pedido)


async def test_revertir_una_parte_y_despues_el_resto(sdk):
    id_transfer = await transfer(sdk, 1000, transfer_group="p1")
    assert await saldos(sdk, "acct_afiliado_1") == {"usd": 1000}
    sdk.reloj.ahora += 60
    parte = await sdk(sdk.reversals.create, id_transfer, {"amount": 300, "metadata": {"motivo": "reembolso"},
                                                         "description": "Reembolso parcial"})  # fmt: skip
    assert (parte.object, parte.amount, parte.currency, parte.transfer) == (
        "transfer_reversal",
        300,
        "usd",
        id_transfer,
    )
    assert parte.id.startswith("trr_")
    assert (parte.metadata.to_dict(), parte.created, parte.source_refund) == (
        {"motivo": "reembolso"},
        1_700_000_060,
        None,
    )
    assert parte.balance_transaction.startswith("txn_")
    assert parte.destination_payment_refund.startswith("pyr_")
    a_medias = await sdk(sdk.transfers.retrieve, id_transfer)
    assert (a_medias.amount_reversed, a_medias.reversed) == (300, False)
    assert [r.id for r in a_medias.reversals.data] == [parte.id]
    assert (a_medias.reversals.total_count, a_medias.reversals.has_more) == (1, False)
    resto = await sdk(sdk.reversals.create, id_transfer)  # no amount: what is left
    assert resto.amount == 700
    revertido = await sdk(sdk.transfers.retrieve, id_transfer)
    assert (revertido.amount_reversed, revertido.reversed) == (1000, True)
    assert [r.id for r in revertido.reversals.data] == [resto.id, parte.id]  # newest first
    listado = await sdk(sdk.transfers.list, {"transfer_group": "p1"})
    assert listado.data[0].to_dict() == revertido.to_dict()
    assert await saldos(sdk, "acct_afiliado_1") == {"usd": 0}


async def test_un_reverso_tiene_cada_propiedad_de_la_spec_y_ninguna_mas(sdk):
    requerir_spec()
    reverso = await sdk(sdk.reversals.create, await transfer(sdk), {"amount": 1})
    assert set(reverso.to_dict()) == propiedades("transfer_reversal")


async def test_listar_y_obtener_paginando_en_los_dos_sentidos(sdk):
    id_transfer = await transfer(sdk, 1000)
    ids = [(await sdk(sdk.reversals.create, id_transfer, {"amount": 10 + i})).id for i in range(7)]  # oldest first
    todos = await sdk(sdk.reversals.list, id_transfer, {"limit": 100})
    assert ([r.id for r in todos.data], todos.has_more) == (ids[::-1], False)
    hacia_adelante = await sdk(lambda: [r.id for r in sdk.reversals.list(id_transfer, {"limit": 2}).auto_paging_iter()])
    assert hacia_adelante == ids[::-1]
    desde = {"limit": 2, "ending_before": ids[0]}
    hacia_atras = await sdk(lambda: [r.id for r in sdk.reversals.list(id_transfer, desde).auto_paging_iter()])
    assert hacia_atras == ids[1:]  # oldest to newest, as the SDK walks backwards
    despues = await sdk(sdk.reversals.list, id_transfer, {"limit": 2, "starting_after": ids[4]})
    assert ([r.id for r in despues.data], despues.has_more) == ([ids[3], ids[2]], True)
    antes = await sdk(sdk.reversals.list, id_transfer, {"limit": 2, "ending_before": ids[2]})
    assert ([r.id for r in antes.data], antes.has_more) == ([ids[4], ids[3]], True)
    uno = await sdk(sdk.reversals.retrieve, id_transfer, ids[3])
    assert (uno.id, uno.amount, uno.transfer) == (ids[3], 13, id_transfer)
    otro_transfer = await transfer(sdk)
    for malo in ({"limit": 0}, {"limit": 101}, {"starting_after": "trr_nope"}, {"starting_after": ids[0],
                                                                                 "ending_before": ids[1]}):  # fmt: skip
        with pytest.raises(stripe.InvalidRequestError):
            await sdk(sdk.reversals.list, id_transfer, malo)
    with pytest.raises(stripe.InvalidRequestError) as info:  # a cursor of another transfer's list
        await sdk(sdk.reversals.list, otro_transfer, {"starting_after": ids[0]})
    assert (info.value.http_status, info.value.code, info.value.param) == (400, "resource_missing", "starting_after")
    with pytest.raises(stripe.InvalidRequestError) as info:  # one of them, through another transfer
        await sdk(sdk.reversals.retrieve, otro_transfer, ids[0])
    assert (info.value.http_status, info.value.code) == (404, "resource_missing")
    assert "transfer_reversal" in info.value.user_message


async def test_el_transfer_muestra_sus_diez_reversos_mas_nuevos(sdk):
    id_transfer = await transfer(sdk, 1000)
    ids = [(await sdk(sdk.reversals.create, id_transfer, {"amount": 1})).id for _ in range(12)]
    reversals = (await sdk(sdk.transfers.retrieve, id_transfer)).reversals
    assert [r.id for r in reversals.data] == ids[::-1][:10]
    assert (reversals.has_more, reversals.total_count) == (True, 12)


async def test_repetir_con_la_clave_y_otra_vez_con_otros_parametros(sdk):
    crear = {"amount": 1000, "currency": "usd", "destination": "acct_1"}
    id_transfer = (await sdk(sdk.transfers.create, crear, {"idempotency_key": "t1"})).id
    primero = await sdk(sdk.reversals.create, id_transfer, {"amount": 100}, {"idempotency_key": "r1"})
    otra_vez = await sdk(sdk.reversals.create, id_transfer, {"amount": 100}, {"idempotency_key": "r1"})
    assert otra_vez.to_dict() == primero.to_dict()
    assert otra_vez.last_response.headers["Idempotent-Replayed"] == "true"
    assert otra_vez.last_response.headers["Original-Request"] == primero.last_response.headers["Request-Id"]
    assert (await sdk(sdk.transfers.retrieve, id_transfer)).amount_reversed == 100  # reversed once
    with pytest.raises(stripe.IdempotencyError) as info:
        await sdk(sdk.reversals.create, id_transfer, {"amount": 200}, {"idempotency_key": "r1"})
    assert info.value.http_status == 400
    with pytest.raises(stripe.IdempotencyError) as info:  # the key of a transfer's creation, on a reversal
        await sdk(sdk.reversals.create, id_transfer, {}, {"idempotency_key": "t1"})
    assert info.value.user_message == (
        "Keys for idempotent requests can only be used for the same endpoint they were first used for "
        f"('/v1/transfers/{id_transfer}/reversals' vs '/v1/transfers'). Try using a key other than 't1' if you "
        "meant to execute a different request."
    )
    assert (await sdk(sdk.transfers.retrieve, id_transfer)).amount_reversed == 100
    # A replay of the transfer's creation answers what it answered then, as Stripe saves it.
    repetido = await sdk(sdk.transfers.create, crear, {"idempotency_key": "t1"})
    assert (repetido.id, repetido.amount_reversed, repetido.reversals.total_count) == (id_transfer, 0, 0)
    assert repetido.last_response.headers["Idempotent-Replayed"] == "true"


async def test_revertir_mas_de_lo_que_queda(sdk):
    id_transfer = await transfer(sdk, 1000)
    with pytest.raises(stripe.InvalidRequestError) as info:
        await sdk(sdk.reversals.create, id_transfer, {"amount": 1001})
    assert (info.value.http_status, info.value.code, info.value.param) == (400, None, "amount")
    assert "(10.01 usd) is greater than the amount left to reverse on the transfer (10.00 usd)" in str(info.value)
    await sdk(sdk.reversals.create, id_transfer, {"amount": 400})
    with pytest.raises(stripe.InvalidRequestError, match=r"\(6.00 usd\)"):
        await sdk(sdk.reversals.create, id_transfer, {"amount": 601})
    await sdk(sdk.reversals.create, id_transfer)
    for params in ({}, {"amount": 1}):
        with pytest.raises(stripe.InvalidRequestError) as info:
            await sdk(sdk.reversals.create, id_transfer, params)
        assert (info.value.http_status, info.value.code) == (400, None)
        assert info.value.json_body["error"]["message"] == f"The transfer {id_transfer} is already fully reversed."
    assert (await sdk(sdk.transfers.retrieve, id_transfer)).amount_reversed == 1000


async def test_sin_saldo_en_la_cuenta_es_balance_insufficient(sdk):
    id_transfer = await transfer(sdk, 1000, "acct_test_afiliado_sin_saldo")  # made: a name, not a fault
    assert await saldos(sdk, "acct_test_afiliado_sin_saldo") == {}  # paid out at once
    with pytest.raises(stripe.InvalidRequestError) as info:
        await sdk(sdk.reversals.create, id_transfer, {"amount": 100})
    error = info.value.json_body["error"]
    assert (info.value.http_status, error["type"], error["code"]) == (
        400,
        "invalid_request_error",
        "balance_insufficient",
    )
    assert "acct_test_afiliado_sin_saldo" in error["message"]
    await fijar_saldo(sdk, "acct_test_afiliado_sin_saldo", 250)  # the affiliate got money back in
    assert (await sdk(sdk.reversals.create, id_transfer, {"amount": 250})).amount == 250
    with pytest.raises(stripe.InvalidRequestError, match=r"insufficient funds to cover this reversal of 0\.01 usd"):
        await sdk(sdk.reversals.create, id_transfer, {"amount": 1})
    assert (await sdk(sdk.transfers.retrieve, id_transfer)).amount_reversed == 250
    assert await saldos(sdk, "acct_test_afiliado_sin_saldo") == {"usd": 0}


async def test_el_saldo_es_por_cuenta_y_moneda(sdk):
    primero = await transfer(sdk, 1000, "acct_a")
    await transfer(sdk, 500, "acct_a")
    await sdk(sdk.transfers.create, {"amount": 300, "currency": "eur", "destination": "acct_a"})
    assert await saldos(sdk, "acct_a") == {"eur": 300, "usd": 1500}
    await fijar_saldo(sdk, "acct_a", 100)  # the rest paid out
    with pytest.raises(stripe.InvalidRequestError) as info:
        await sdk(sdk.reversals.create, primero, {"amount": 101})
    assert info.value.code == "balance_insufficient"
    await sdk(sdk.reversals.create, primero, {"amount": 100})
    assert await saldos(sdk, "acct_a") == {"eur": 300, "usd": 0}


async def test_un_transfer_que_no_existe_es_404(sdk):
    for llamada, args in ((sdk.reversals.create, ("tr_nope", {"amount": 1})), (sdk.reversals.list, ("tr_nope",)),
                          (sdk.reversals.retrieve, ("tr_nope", "trr_nope"))):  # fmt: skip
        with pytest.raises(stripe.InvalidRequestError) as info:
            await sdk(llamada, *args)
        assert (info.value.http_status, info.value.code) == (404, "resource_missing")
        assert "No such transfer: 'tr_nope'" in str(info.value)
    with pytest.raises(stripe.InvalidRequestError) as info:
        await sdk(sdk.reversals.retrieve, await transfer(sdk), "trr_nope")
    assert (info.value.http_status, info.value.json_body["error"]["message"]) == (
        404,
        "No such transfer_reversal: 'trr_nope'",
    )


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"amount": 0}, "parameter_invalid_integer", "amount"),
        ({"amount": -5}, "parameter_invalid_integer", "amount"),
        ({"ammount": 5}, "parameter_unknown", "ammount"),
        ({"expand": ["metadata"]}, None, "expand"),
    ],
)
async def test_lo_que_stripe_no_acepta_es_400_y_no_revierte_nada(sdk, params, code, param):
    id_transfer = await transfer(sdk)
    with pytest.raises(stripe.InvalidRequestError) as info:
        await sdk(sdk.reversals.create, id_transfer, params, {"idempotency_key": "v"})
    assert (info.value.http_status, info.value.code, info.value.param) == (400, code, param)
    assert (await sdk(sdk.reversals.create, id_transfer, {"amount": 5}, {"idempotency_key": "v"})).amount == 5


async def test_expandir_y_refund_application_fee(sdk):
    id_transfer = await transfer(sdk, 1000)
    campos = ["balance_transaction", "destination_payment_refund", "source_refund", "transfer"]
    reverso = await sdk(sdk.reversals.create, id_transfer, {"amount": 400, "refund_application_fee": True,
                                                           "expand": campos})  # fmt: skip
    assert (reverso.transfer.id, reverso.transfer.amount_reversed) == (id_transfer, 400)
    assert (reverso.balance_transaction.amount, reverso.balance_transaction.type) == (400, "transfer_refund")
    assert (reverso.destination_payment_refund.object, reverso.source_refund) == ("refund", None)
    listado = await sdk(sdk.reversals.list, id_transfer, {"expand": ["data.transfer"]})
    assert listado.data[0].transfer.reversed is False
    uno = await sdk(sdk.reversals.retrieve, id_transfer, reverso.id, {"expand": ["balance_transaction"]})
    assert uno.balance_transaction.source == reverso.id
    with pytest.raises(stripe.InvalidRequestError, match="Invalid boolean"):
        await sdk(sdk.reversals.create, id_transfer, {"refund_application_fee": "quizas"})
