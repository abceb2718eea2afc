"""The simulator's list lag: like Stripe's list endpoints (eventually consistent), `GET /v1/transfers`
may show a new transfer only some time after it was made, while `GET /v1/transfers/{id}` finds it at
once. Every transfer (`retraso_listado_s`, PAGOS_SIMULADOR_LIST_LAG_SECONDS), or those to an
`acct_test_…_unlisted` destination (`no_listado_s`, PAGOS_SIMULADOR_UNLISTED_SECONDS)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from pagos_dev.simulador.fallas import Fallas
from tests.simulador_helpers import AUTH, form, simulador_en_marcha

pytestmark = pytest.mark.integration


async def _post(sim: Any, destination: str, grupo: str, key: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {**AUTH, **({"Idempotency-Key": key} if key else {})}
    datos = form(destination=destination, transfer_group=grupo)
    async with sim.http.post(f"{sim.url}/v1/transfers", data=datos, headers=headers) as resp:
        return resp.status, await resp.json()


async def _listados(sim: Any, grupo: str) -> list[str]:
    async with sim.http.get(f"{sim.url}/v1/transfers", params={"transfer_group": grupo}, headers=AUTH) as resp:
        assert resp.status == 200
        return [t["id"] for t in (await resp.json())["data"]]


async def _hasta_listado(sim: Any, grupo: str, segundos: float = 60) -> float:
    inicio = time.monotonic()
    while not await _listados(sim, grupo):
        assert time.monotonic() - inicio < segundos, f"{grupo} never listed"
        await asyncio.sleep(0.1)
    return time.monotonic() - inicio


async def test_sin_retraso_un_transfer_se_lista_en_cuanto_existe(sim):
    grupo = str(uuid.uuid4())
    status, cuerpo = await _post(sim, "acct_1", grupo)
    assert status == 200
    assert await _listados(sim, grupo) == [cuerpo["id"]]


async def test_con_retraso_se_obtiene_por_id_pero_se_lista_despues():
    import aiohttp  # noqa: PLC0415

    fallas = Fallas(latencia="fixed:0", tasa_rechazo=0, retraso_listado_s=1.5)
    async with simulador_en_marcha(fallas) as sim, aiohttp.ClientSession() as http:
        sim.http = http  # type: ignore[attr-defined]
        grupo, otro = str(uuid.uuid4()), str(uuid.uuid4())
        status, cuerpo = await _post(sim, "acct_1", grupo)
        assert status == 200
        assert await _listados(sim, grupo) == []
        async with http.get(f"{sim.url}/v1/transfers/{cuerpo['id']}", headers=AUTH) as resp:
            assert resp.status == 200  # retrieval by id is not lagged
        await _post(sim, "acct_1", otro)
        await _hasta_listado(sim, grupo)
        assert await _listados(sim, grupo) == [cuerpo["id"]]
        await _hasta_listado(sim, otro)
        async with http.get(f"{sim.url}/v1/transfers", params={"limit": 10}, headers=AUTH) as resp:
            assert len((await resp.json())["data"]) == 2


async def test_un_destino_unlisted_hace_el_transfer_y_no_lo_lista_por_un_tiempo():
    import aiohttp  # noqa: PLC0415

    fallas = Fallas(latencia="fixed:0", tasa_rechazo=0, no_listado_s=1.5)
    async with simulador_en_marcha(fallas) as sim, aiohttp.ClientSession() as http:
        sim.http = http  # type: ignore[attr-defined]
        grupo, normal = str(uuid.uuid4()), str(uuid.uuid4())
        status, cuerpo = await _post(sim, "acct_test_error_500_saved_created_unlisted", grupo, key=grupo)
        assert status == 500  # the transfer was made, and answered as if it were not
        assert len(sim.simulador.ledger.transfers) == 1
        status, _ = await _post(sim, "acct_test_error_500_saved_created_unlisted", grupo, key=grupo)
        assert status == 500  # replayed
        assert await _listados(sim, grupo) == []
        status, _ = await _post(sim, "acct_2", normal)
        assert (status, len(await _listados(sim, normal))) == (200, 1)  # other destinations: no lag
        status, cuerpo = await _post(sim, "acct_test_unlisted", str(uuid.uuid4()))
        assert (status, cuerpo["destination"]) == (200, "acct_test_unlisted")  # made, not declined
        await _hasta_listado(sim, grupo)


async def test_una_lista_lenta_responde_tarde_y_completa():
    """`latencia_listado_s`: every list answered that late (the chaos suite's lookup slower than a
    lease); what it lists is unchanged, and retrieval by id is not delayed."""
    import aiohttp  # noqa: PLC0415

    fallas = Fallas(latencia="fixed:0", tasa_rechazo=0, latencia_listado_s=1.0)
    async with simulador_en_marcha(fallas) as sim, aiohttp.ClientSession() as http:
        sim.http = http  # type: ignore[attr-defined]
        grupo = str(uuid.uuid4())
        _, cuerpo = await _post(sim, "acct_1", grupo)
        inicio = time.monotonic()
        assert await _listados(sim, grupo) == [cuerpo["id"]]
        assert time.monotonic() - inicio >= 1.0  # a floor, not a speed: the delay was applied
    with pytest.raises(ValueError, match="latencia_listado_s"):
        Fallas(latencia_listado_s=-1)
