"""The platform's balance transactions at the simulator: a `transfer_refund` for every reversal,
listed by date (what a reconciliation reads to find reversals of older transfers), paged both
ways, with the reversal and its transfer expanded; a transfer's and a reversal's `txn_` found by
id. Every body is checked against Stripe's OpenAPI description (plain HTTP and the official SDK)."""

from __future__ import annotations

import aiohttp
import pytest

from pagos_dev.simulador import movimientos
from tests.simulador_helpers import AUTH, form, pedir
from tests.stripe_spec import parametros_de_la_peticion, validar_esquema

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("plantilla", "esquema"),
    [
        ("/v1/balance_transactions", movimientos.LISTAR),
        ("/v1/balance_transactions/{id}", movimientos.OBTENER_MOVIMIENTO),
    ],
)
def test_los_parametros_que_toma_son_los_de_la_spec(plantilla, esquema):
    assert {nombre: tipo.value for nombre, tipo in esquema.items()} == parametros_de_la_peticion("GET", plantilla)


async def _escena(sdk, http):
    sdk.sim.http = http
    sdk.reloj.ahora = 1_700_000_000
    _, tr, _ = await pedir(sdk.sim, "POST", "/v1/transfers", data=form("acct_1", "1000", transfer_group="p1"))
    reversos = []
    for i in range(3):  # at 1_700_000_100, _200, _300
        sdk.reloj.ahora += 100
        _, r, _ = await pedir(sdk.sim, "POST", f"/v1/transfers/{tr['id']}/reversals", data={"amount": str(100 + i)})
        reversos.append(r)
    return tr, reversos


async def test_un_transfer_refund_por_reverso_por_fecha_y_en_ambas_direcciones(sdk):
    async with aiohttp.ClientSession(headers=AUTH) as http:
        tr, (r1, r2, r3) = await _escena(sdk, http)
        params = {"type": "transfer_refund", "created[gte]": "1700000200", "created[lt]": "1700000400",
                  "limit": "1", "expand[]": "data.source.transfer"}  # fmt: skip
        _, primera, _ = await pedir(sdk.sim, "GET", "/v1/balance_transactions", params=params)
        assert primera["has_more"] is True
        [m3] = primera["data"]
        validar_esquema("balance_transaction", m3)
        assert (m3["id"], m3["amount"], m3["net"], m3["fee"], m3["type"], m3["status"], m3["created"]) == (
            r3["balance_transaction"],
            102,
            102,
            0,
            "transfer_refund",
            "available",
            1_700_000_300,
        )
        assert (m3["source"]["id"], m3["source"]["transfer"]["transfer_group"]) == (r3["id"], "p1")
        _, segunda, _ = await pedir(sdk.sim, "GET", "/v1/balance_transactions",
                                    params={**params, "starting_after": m3["id"]})  # fmt: skip
        assert ([m["source"]["id"] for m in segunda["data"]], segunda["has_more"]) == ([r2["id"]], False)
        _, atras, _ = await pedir(sdk.sim, "GET", "/v1/balance_transactions",
                                  params={"limit": "10", "ending_before": r1["balance_transaction"]})  # fmt: skip
        assert [m["source"] for m in atras["data"]] == [r3["id"], r2["id"]]  # not expanded: the id
        _, otro, _ = await pedir(sdk.sim, "GET", "/v1/balance_transactions", params={"type": "charge"})
        assert otro["data"] == []
        _, del_transfer, _ = await pedir(sdk.sim, "GET", f"/v1/balance_transactions/{tr['balance_transaction']}")
        assert (del_transfer["amount"], del_transfer["type"], del_transfer["source"]) == (-1000, "transfer", tr["id"])
        assert (await pedir(sdk.sim, "GET", "/v1/balance_transactions/txn_nope"))[0] == 404
        assert (await pedir(sdk.sim, "GET", "/v1/balance_transactions", params={"expand[]": "data.payout"}))[0] == 400


async def test_con_el_sdk_oficial(sdk):
    async with aiohttp.ClientSession(headers=AUTH) as http:
        _, (_, _, r3) = await _escena(sdk, http)
    pagina = await sdk(
        sdk.cliente.v1.balance_transactions.list,
        {"type": "transfer_refund", "created": {"gte": 1_700_000_300}, "expand": ["data.source"]},
    )
    [m] = pagina.data
    assert (m.id, m.source.id, m.source.transfer) == (r3["balance_transaction"], r3["id"], r3["transfer"])
    uno = await sdk(sdk.cliente.v1.balance_transactions.retrieve, m.id)
    assert (uno.amount, uno.source) == (102, r3["id"])
