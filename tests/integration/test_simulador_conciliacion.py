"""What the reconciliation (issue 26) reads from the simulator, through Stripe's official SDK and
checked against Stripe's spec: `GET /v1/transfers` over a `created` window, every page in both
directions (transfers made in the same second included), newest first by `created` whatever order
they were made in, each with its reversals (the 10 newest) and `amount_reversed`."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration

T0 = 1_700_000_000


async def _crear(sdk: Any, segundos: list[int], grupo: str = "g") -> list[str]:
    """One transfer per entry, made at T0 + that many seconds, in this order."""
    ids = []
    for n, s in enumerate(segundos):
        sdk.reloj.ahora = T0 + s
        datos = {"amount": 100 + n, "currency": "usd", "destination": "acct_1", "transfer_group": f"{grupo}{n}"}
        ids.append((await sdk(sdk.transfers.create, datos)).id)
    return ids


async def _paginar(sdk: Any, params: dict[str, Any]) -> list[str]:
    return await sdk(lambda: [t.id for t in sdk.transfers.list(params).auto_paging_iter()])


async def test_una_ventana_de_created_pagina_entera_en_los_dos_sentidos_con_empates(sdk):
    # Five in second 10, three in second 20, the edges of the window, and some outside it.
    segundos = [5, 9, 10, 10, 10, 10, 10, 15, 20, 20, 20, 21, 30]
    ids = await _crear(sdk, segundos)
    dentro = [i for i, s in zip(ids, segundos, strict=True) if 10 <= s < 21]
    ventana = {"gte": T0 + 10, "lt": T0 + 21}
    assert await _paginar(sdk, {"created": ventana, "limit": 2}) == dentro[::-1]  # newest first, ties by creation
    # Backwards from the oldest of the window's: the SDK walks towards the newest.
    mas_viejo = dentro[0]
    hacia_atras = await _paginar(sdk, {"created": ventana, "limit": 3, "ending_before": mas_viejo})
    assert hacia_atras == dentro[1:]
    # A cursor in the middle of a second's ties: the rest of that second on the next page, nothing twice.
    cursor = dentro[2]  # the third of second 10
    despues = await sdk(sdk.transfers.list, {"created": ventana, "limit": 2, "starting_after": cursor})
    assert ([t.id for t in despues.data], despues.has_more) == ([dentro[1], dentro[0]], False)
    antes = await sdk(sdk.transfers.list, {"created": ventana, "limit": 2, "ending_before": cursor})
    assert ([t.id for t in antes.data], antes.has_more) == ([dentro[4], dentro[3]], True)
    for operador, desde in (("gt", 10), ("gte", 10), ("lt", 10), ("lte", 10)):
        cumple = {"gt": lambda s, d: s > d, "gte": lambda s, d: s >= d, "lt": lambda s, d: s < d,
                  "lte": lambda s, d: s <= d}[operador]  # fmt: skip
        esperados = [i for i, s in zip(ids, segundos, strict=True) if cumple(s, desde)][::-1]
        assert await _paginar(sdk, {"created": {operador: T0 + desde}, "limit": 2}) == esperados, operador
    exactos = await _paginar(sdk, {"created": T0 + 20, "limit": 2})
    assert exactos == [ids[10], ids[9], ids[8]]
    assert await _paginar(sdk, {"created": {"gte": T0 + 100}}) == []


async def test_se_lista_por_created_aunque_se_crearan_en_otro_orden(sdk):
    """A test's clock set back (a transfer "made yesterday" after today's): Stripe lists by
    `created`, and so do the simulator's pages and cursors."""
    ids = await _crear(sdk, [20, 5, 30, 10, 20])
    por_created = [ids[2], ids[4], ids[0], ids[3], ids[1]]
    assert await _paginar(sdk, {"limit": 2}) == por_created
    assert await _paginar(sdk, {"limit": 2, "ending_before": ids[1]}) == por_created[::-1][1:]
    assert await _paginar(sdk, {"limit": 1, "created": {"lte": T0 + 20}}) == [ids[4], ids[0], ids[3], ids[1]]
    despues = await sdk(sdk.transfers.list, {"limit": 2, "starting_after": ids[4]})
    assert [t.id for t in despues.data] == [ids[0], ids[3]]


async def test_cada_transfer_listado_trae_sus_reversos(sdk):
    sdk.reloj.ahora = T0
    uno = (await sdk(sdk.transfers.create, {"amount": 1000, "currency": "usd", "destination": "acct_1"})).id
    otro = (await sdk(sdk.transfers.create, {"amount": 500, "currency": "eur", "destination": "acct_2"})).id
    sin = (await sdk(sdk.transfers.create, {"amount": 700, "currency": "usd", "destination": "acct_2"})).id
    reversos = [(await sdk(sdk.reversals.create, uno, {"amount": 10 + n})).id for n in range(12)]
    total = (await sdk(sdk.reversals.create, otro)).id  # the whole of it, "from the dashboard"
    listados = {t.id: t for t in (await sdk(sdk.transfers.list, {"created": {"gte": T0}, "limit": 100})).data}
    assert set(listados) == {uno, otro, sin}
    de_uno = listados[uno]
    assert (de_uno.amount_reversed, de_uno.reversed) == (sum(range(10, 22)), False)
    assert [r.id for r in de_uno.reversals.data] == reversos[::-1][:10]  # the 10 newest
    assert (de_uno.reversals.has_more, de_uno.reversals.total_count) == (True, 12)
    resto = await sdk(lambda: [r.id for r in sdk.reversals.list(uno, {"limit": 5}).auto_paging_iter()])
    assert resto == reversos[::-1]  # all of them through the reversals' own list
    de_otro = listados[otro]
    assert (de_otro.amount_reversed, de_otro.reversed, [r.id for r in de_otro.reversals.data]) == (500, True, [total])
    assert de_otro.reversals.data[0].metadata.to_dict() == {}  # not ours: no metadata[id_reverso]
    assert (listados[sin].amount_reversed, listados[sin].reversals.data, listados[sin].reversals.has_more) == (
        0, [], False,
    )  # fmt: skip


async def test_los_reversos_se_listan_por_created(sdk):
    sdk.reloj.ahora = T0
    id_transfer = (await sdk(sdk.transfers.create, {"amount": 1000, "currency": "usd", "destination": "acct_1"})).id
    ids = []
    for s in (30, 10, 30, 20):
        sdk.reloj.ahora = T0 + s
        ids.append((await sdk(sdk.reversals.create, id_transfer, {"amount": 1})).id)
    por_created = [ids[2], ids[0], ids[3], ids[1]]
    assert [r.id for r in (await sdk(sdk.transfers.retrieve, id_transfer)).reversals.data] == por_created
    pagina = await sdk(sdk.reversals.list, id_transfer, {"limit": 2, "ending_before": ids[1]})
    assert ([r.id for r in pagina.data], pagina.has_more) == ([ids[0], ids[3]], True)
    pagina = await sdk(sdk.reversals.list, id_transfer, {"limit": 2, "starting_after": ids[0]})
    assert ([r.id for r in pagina.data], pagina.has_more) == ([ids[3], ids[1]], False)
