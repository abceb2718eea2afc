"""Transfer reversals over plain HTTP: the parameters Stripe's spec lists, the faults a transfer's
creation takes (saved 500s, first-attempt faults, latency, keys in flight), keys' time to live,
the counters, a restart and a ledger from before reversals. Every body is checked against the spec."""

from __future__ import annotations

import asyncio
import sqlite3

import aiohttp
import pytest

from pagos_dev.simulador import lecturas
from pagos_dev.simulador.creacion_reverso import REVERTIR
from pagos_dev.simulador.creacion_transfer import CREAR
from pagos_dev.simulador.fallas import Fallas
from pagos_dev.simulador.transfer import Transfer
from tests.fakes import hasta
from tests.simulador_helpers import AUTH, form, pedir, simulador_en_marcha
from tests.stripe_spec import parametros_de_la_peticion

pytestmark = pytest.mark.integration


async def crear_transfer(sim, destino: str = "acct_1", amount: str = "1000") -> str:
    """A transfer to `destino`, whatever first-attempt fault its name asks for (one retry, same key)."""
    clave = {"Idempotency-Key": f"crear-{destino}-{amount}"}
    for _ in range(2):
        try:
            async with asyncio.timeout(1):
                status, cuerpo, _ = await pedir(sim, "POST", "/v1/transfers", data=form(destino, amount), headers=clave)
        except TimeoutError:  # a success without answer: the retry replays it
            continue
        if status == 200:
            return str(cuerpo["id"])
    raise AssertionError(f"no transfer to {destino}")


async def revertir(sim, id_transfer: str, clave: str | None = None, **data: str):
    headers = {"Idempotency-Key": clave} if clave else {}
    return await pedir(sim, "POST", f"/v1/transfers/{id_transfer}/reversals", data=data, headers=headers)


async def revertido(sim, id_transfer: str) -> int:
    return int((await pedir(sim, "GET", f"/v1/transfers/{id_transfer}"))[1]["amount_reversed"])


@pytest.mark.parametrize(
    ("metodo", "plantilla", "esquema"),
    [
        ("POST", "/v1/transfers/{id}/reversals", REVERTIR),
        ("GET", "/v1/transfers/{id}/reversals", lecturas.REVERSALS),
        ("GET", "/v1/transfers/{transfer}/reversals/{id}", lecturas.REVERSAL),
        ("POST", "/v1/transfers", CREAR),
        ("GET", "/v1/transfers", lecturas.LISTAR),
        ("GET", "/v1/transfers/{transfer}", lecturas.OBTENER),
    ],
)
def test_los_parametros_que_toma_son_los_de_la_spec(metodo, plantilla, esquema):
    assert {nombre: tipo.value for nombre, tipo in esquema.items()} == parametros_de_la_peticion(metodo, plantilla)


@pytest.mark.parametrize("ruta", ["/v1/transfers/tr_nope/reversals", "/v1/transfers/tr_nope/reversals/trr_x"])
async def test_cada_error_con_la_forma_de_stripe(sim, ruta):
    status, cuerpo, _ = await pedir(sim, "GET", ruta)
    assert (status, cuerpo["error"]["type"], cuerpo["error"]["code"]) == (
        404,
        "invalid_request_error",
        "resource_missing",
    )
    status, cuerpo, _ = await revertir(sim, "tr_nope", "k", amount="5")
    assert (status, cuerpo["error"]["code"], cuerpo["error"]["param"]) == (404, "resource_missing", "id")
    status, cuerpo, _ = await revertir(sim, await crear_transfer(sim), amount="x")
    assert (status, cuerpo["error"]["code"], cuerpo["error"]["param"]) == (400, "parameter_invalid_integer", "amount")
    async with sim.http.delete(f"{sim.url}/v1/transfers/tr_x/reversals") as resp:  # not in the spec: Stripe's 404
        assert (resp.status, (await resp.json())["error"]["type"]) == (404, "invalid_request_error")


async def test_500_guardados_por_tasa_la_mitad_revierte(sim):
    id_transfer = await crear_transfer(sim)
    async with sim.http.post(f"{sim.url}/_simulador/fallas", json={"tasa_500_guardado": 1.0}) as resp:
        assert resp.status == 200
    for i in range(4):  # every second saved 500 reverses all the same
        s1, b1, h1 = await revertir(sim, id_transfer, f"g{i}", amount="100")
        s2, b2, h2 = await revertir(sim, id_transfer, f"g{i}", amount="100")
        assert (s1, b1["error"]["type"], h1["Stripe-Should-Retry"]) == (500, "api_error", "false")
        assert (s2, b2, h2["Idempotent-Replayed"], h2["Original-Request"]) == (500, b1, "true", h1["Request-Id"])
    assert await revertido(sim, id_transfer) == 200
    assert sim.simulador.contadores["500_guardado"] == 4


@pytest.mark.parametrize(("destino", "hecho"), [("acct_test_error_500_saved", False),
                                                 ("acct_test_error_500_saved_created", True)])  # fmt: skip
async def test_un_500_guardado_se_repite_con_la_clave(sim, destino, hecho):
    id_transfer = await _transfer_creado_con_500(sim, destino)  # its reversals take its destination's fault
    s1, b1, h1 = await revertir(sim, id_transfer, "d1", amount="100")
    s2, b2, h2 = await revertir(sim, id_transfer, "d1", amount="100")
    assert (s1, b1["error"]["type"], h1["Stripe-Should-Retry"]) == (500, "api_error", "false")
    assert (s2, b2, h2["Idempotent-Replayed"], h2["Original-Request"]) == (500, b1, "true", h1["Request-Id"])
    assert await revertido(sim, id_transfer) == 100 * hecho


async def _transfer_creado_con_500(sim, destino: str) -> str:
    """A transfer to `destino`, made although its creation answered a 500 (`_created`); to
    `acct_test_error_500_saved` none is ever made: the test writes one into the ledger."""
    if destino.endswith("_created"):
        assert (await pedir(sim, "POST", "/v1/transfers", data=form(destino)))[0] == 500
        return next(iter(sim.simulador.ledger.transfers))
    sim.simulador.ledger.crear_transfer(Transfer("tr_a_mano", 1000, "usd", destino, None, {}, 1_700_000_000))
    return "tr_a_mano"


@pytest.mark.parametrize(
    ("destino", "primero"),
    [("acct_test_error_500_once", 500), ("acct_test_rate_limited_once", 429),
     ("acct_test_timeout_after_success_once", None)],
)  # fmt: skip
async def test_las_fallas_del_primer_intento_de_cada_clave(destino, primero):
    fallas = Fallas(latencia="fixed:0", tasa_rechazo=0, cuelgue_s=3)
    async with simulador_en_marcha(fallas) as sim, aiohttp.ClientSession(headers=AUTH) as http:
        sim.http = http
        id_transfer = await crear_transfer(sim, destino)
        try:
            async with asyncio.timeout(1):
                status = (await revertir(sim, id_transfer, "r", amount="300"))[0]
        except TimeoutError:  # reversed, and never answered
            status = None
        assert status == primero
        assert await revertido(sim, id_transfer) == (300 if primero is None else 0)
        status, cuerpo, cabeceras = await revertir(sim, id_transfer, "r", amount="300")
        assert (status, cuerpo["amount"], "Idempotent-Replayed" in cabeceras) == (200, 300, primero is None)
        assert await revertido(sim, id_transfer) == 300


async def test_latencia_y_clave_en_curso():
    async with (
        simulador_en_marcha(Fallas(latencia="fixed:500", tasa_rechazo=0)) as sim,
        aiohttp.ClientSession(headers=AUTH) as http,
    ):
        sim.http = http
        id_transfer = await crear_transfer(sim)
        inicio = asyncio.get_running_loop().time()
        primero = asyncio.create_task(revertir(sim, id_transfer, "c", amount="100"))
        await hasta(lambda: "c" in sim.simulador._en_curso)
        status, cuerpo, cabeceras = await revertir(sim, id_transfer, "c", amount="100")
        assert (status, cuerpo["error"]["code"], cabeceras["Stripe-Should-Retry"]) == (
            409,
            "idempotency_key_in_use",
            "true",
        )
        assert (await primero)[0] == 200
        assert asyncio.get_running_loop().time() - inicio >= 0.5
        assert await revertido(sim, id_transfer) == 100


async def test_las_estadisticas_cuentan_los_reversos(sim):
    id_transfer = await crear_transfer(sim)
    await revertir(sim, id_transfer, amount="100")
    await revertir(sim, id_transfer, amount="5000")  # more than is left: refused
    async with sim.http.get(f"{sim.url}/_simulador/estadisticas") as resp:
        estadisticas = await resp.json()
    assert (estadisticas["transfers"], estadisticas["reversos"]) == (1, 1)
    assert (estadisticas["respuestas"]["200"], estadisticas["respuestas"]["400"]) == (2, 1)


async def test_las_claves_de_los_reversos_caducan_y_los_saldos_en_cero_se_podan():
    async with simulador_en_marcha(ttl_claves_s=0.3) as s, aiohttp.ClientSession(headers=AUTH) as http:
        s.http = http
        id_transfer = await crear_transfer(s)
        assert (await revertir(s, id_transfer, "caduca", amount="100"))[0] == 200
        assert (await revertir(s, id_transfer, "caduca", amount="900"))[1]["error"]["type"] == "idempotency_error"
        await asyncio.sleep(0.4)
        status, cuerpo, cabeceras = await revertir(s, id_transfer, "caduca", amount="900")  # a new reversal
        assert (status, cuerpo["amount"], "Idempotent-Replayed" in cabeceras) == (200, 900, False)
        assert s.simulador.ledger.saldos.todos("acct_1") == [{"cuenta": "acct_1", "moneda": "usd", "saldo": 0}]
        await asyncio.sleep(0.4)
        await pedir(s, "GET", "/v1/transfers")  # a request after the pruning interval prunes
        assert s.simulador.ledger.podar() == 0  # nothing left to prune: the request did
        assert s.simulador.ledger.saldos.todos("acct_1") == []
        assert await revertido(s, id_transfer) == 1000


async def test_reversos_y_saldos_sobreviven_a_un_reinicio(tmp_path):
    archivo = tmp_path / "ledger.sqlite3"
    async with simulador_en_marcha(archivo=archivo) as s, aiohttp.ClientSession(headers=AUTH) as http:
        s.http = http
        id_transfer = await crear_transfer(s)
        _, reverso, _ = await revertir(s, id_transfer, "persistente", amount="100")
    async with simulador_en_marcha(archivo=archivo) as s, aiohttp.ClientSession(headers=AUTH) as http:
        s.http = http
        assert await revertido(s, id_transfer) == 100
        status, otra_vez, cabeceras = await revertir(s, id_transfer, "persistente", amount="100")
        assert (status, otra_vez, cabeceras["Idempotent-Replayed"]) == (200, reverso, "true")
        _, lista, _ = await pedir(s, "GET", f"/v1/transfers/{id_transfer}/reversals")
        assert [r["id"] for r in lista["data"]] == [reverso["id"]]
        assert s.simulador.ledger.saldos.saldo("acct_1", "usd") == 900


async def test_un_ledger_de_antes_de_los_reversos_los_admite(tmp_path):
    archivo = tmp_path / "ledger.sqlite3"
    async with simulador_en_marcha(archivo=archivo) as s, aiohttp.ClientSession(headers=AUTH) as http:
        s.http = http
        for destino, amount in (("acct_1", "1000"), ("acct_1", "500"), ("acct_2", "70"), ("acct_x_sin_saldo", "9")):
            id_transfer = await crear_transfer(s, destino, amount)
    with sqlite3.connect(archivo) as db:  # as the simulator left it before this change
        db.executescript("DROP TABLE saldos; DROP TABLE reversos; DROP TABLE cuerpos_actuales;"
                         " ALTER TABLE idempotencia DROP COLUMN ruta;")  # fmt: skip
    async with simulador_en_marcha(archivo=archivo) as s, aiohttp.ClientSession(headers=AUTH) as http:
        s.http = http
        assert s.simulador.ledger.saldos.todos() == [  # what the transfers credited
            {"cuenta": "acct_1", "moneda": "usd", "saldo": 1500},
            {"cuenta": "acct_2", "moneda": "usd", "saldo": 70},
        ]
        status, _, cabeceras = await pedir(s, "POST", "/v1/transfers", data=form("acct_x_sin_saldo", "9"),
                                           headers={"Idempotency-Key": "crear-acct_x_sin_saldo-9"})  # fmt: skip
        assert (status, cabeceras["Idempotent-Replayed"]) == (200, "true")
        status, cuerpo, _ = await revertir(s, id_transfer, "crear-acct_x_sin_saldo-9")
        assert (status, cuerpo["error"]["type"]) == (400, "idempotency_error")
        status, cuerpo, _ = await revertir(s, id_transfer, "otra")
        assert (status, cuerpo["error"]["code"]) == (400, "balance_insufficient")
