"""The balances of the connected accounts in the simulator: what each transfer credits, the
`_sin_saldo` accounts that spend it at once, and `/_simulador/saldos` to read and set them."""

from __future__ import annotations

import pytest

from tests.simulador_helpers import form, pedir

pytestmark = pytest.mark.integration


async def crear_transfer(sim, destino: str = "acct_1", amount: str = "1000") -> None:
    assert (await pedir(sim, "POST", "/v1/transfers", data=form(destino, amount)))[0] == 200


async def test_el_endpoint_de_saldos(sim):
    await crear_transfer(sim, "acct_1")
    await crear_transfer(sim, "acct_2", "30")
    await crear_transfer(sim, "acct_test_afiliado_sin_saldo", "70")  # paid out at once: no balance
    async with sim.http.get(f"{sim.url}/_simulador/saldos") as resp:
        assert (await resp.json())["saldos"] == [{"cuenta": "acct_1", "moneda": "usd", "saldo": 1000},
                                                 {"cuenta": "acct_2", "moneda": "usd", "saldo": 30}]  # fmt: skip
    for malo in ({"cuenta": "acct_1", "moneda": "usd"}, {"cuenta": "x", "moneda": "usd", "saldo": 1},
                 {"cuenta": "acct_1", "moneda": "gbp", "saldo": 1}, {"cuenta": "acct_1", "moneda": "usd", "saldo": 1.5},
                 {"cuenta": "acct_1", "moneda": "usd", "saldo": True}, [1]):  # fmt: skip
        async with sim.http.post(f"{sim.url}/_simulador/saldos", json=malo) as resp:
            assert resp.status == 400, malo
    async with sim.http.post(f"{sim.url}/_simulador/saldos", data=b"{") as resp:
        assert resp.status == 400
    pedido = {"cuenta": "acct_2", "moneda": "eur", "saldo": 5}
    async with sim.http.post(f"{sim.url}/_simulador/saldos", json=pedido) as resp:
        assert (resp.status, await resp.json()) == (200, pedido)
    async with sim.http.get(f"{sim.url}/_simulador/saldos", params={"cuenta": "acct_2"}) as resp:
        assert (await resp.json())["saldos"] == [{"cuenta": "acct_2", "moneda": "eur", "saldo": 5},
                                                 {"cuenta": "acct_2", "moneda": "usd", "saldo": 30}]  # fmt: skip
