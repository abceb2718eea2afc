"""The Stripe adapter against stripe-mock, Stripe's own mock (pinned in pagos_dev/herramientas.py),
over HTTP, and the simulator's answers compared with stripe-mock's, field by field.

One walk through every request the adapter makes (the start-up check, a payout, its lookup, a
reversal, its lookup, a reconciliation's window, a payment's transfers and the reversals by date,
each list's next page) runs against each server behind a recording proxy. stripe-mock checks every
parameter against Stripe's OpenAPI description (400 for any it does not allow) and answers
fixtures: the adapter must read them. It keeps nothing (the transfer it "made" is not in the list
that follows), so what the adapter finds there is compared with the fixtures it was given, not with
what it sent. The simulator's answers to the same requests must have the fixtures' shape: the same
fields, of the same JSON types, recursively. Skipped, saying so, only where Go is absent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from pagos_dev.embedded.stripe_mock import EmbeddedStripeMock
from pagos_worker.adapters.stripe.adapter import STRIPE_VERSION, StripePasarelaDePagos
from pagos_worker.adapters.stripe.libro import StripeLibroDeLaPasarela
from pagos_worker.application.ports.conciliacion import PasarelaInalcanzableError, ReversoVisto, TransferenciaVista
from pagos_worker.application.ports.pasarela import ResultadoPago, TransferenciaHallada
from tests.integration.test_stripe_adapter import adaptador, pago
from tests.integration.test_stripe_reversos import reverso_de
from tests.simulador_helpers import simulador_en_marcha
from tests.stripe_mock_helpers import Grabadora, Operacion, diferencias, grabadora, sin_excepciones

pytestmark = [pytest.mark.integration, pytest.mark.stripe_mock]
CLAVE = "sk_test_pagosworker"  # stripe-mock takes a test key of three parts: sk, test, the rest
AUTH = {"Authorization": f"Bearer {CLAVE}"}
_VENTANA = {"created[gte]", "created[lt]", "limit"}
_SALDO = {"type", "created[gte]", "created[lt]", "limit", "expand[]"}
_TRANSFER = {"amount", "currency", "destination", "description", "transfer_group", "metadata[id_pago]",
             "metadata[id_afiliado]"}  # fmt: skip
_REVERSAL = {"amount", "description", "metadata[id_reverso]", "metadata[id_pago]", "metadata[motivo]"}


def _op(metodo: str, ruta: str, *nombres: str | set[str]) -> Operacion:
    return metodo, ruta, frozenset(n for grupo in nombres for n in ([grupo] if isinstance(grupo, str) else grupo))


# Every request the adapter makes: StripePasarelaDePagos and StripeLibroDeLaPasarela.
PETICIONES = {
    "comprobar_acceso": _op("GET", "/v1/transfers", "limit"),
    "procesar_pago": _op("POST", "/v1/transfers", _TRANSFER),
    "transferencias del pago": _op("GET", "/v1/transfers", "transfer_group", "limit"),
    "transferencias del pago, siguiente": _op("GET", "/v1/transfers", "transfer_group", "limit", "starting_after"),
    "revertir": _op("POST", "/v1/transfers/{transfer}/reversals", _REVERSAL),
    "reversos del transfer": _op("GET", "/v1/transfers/{transfer}/reversals", "limit"),
    "reversos del transfer, siguiente": _op("GET", "/v1/transfers/{transfer}/reversals", "limit", "starting_after"),
    "ventana": _op("GET", "/v1/transfers", _VENTANA),
    "ventana, siguiente": _op("GET", "/v1/transfers", _VENTANA, "starting_after"),
    "reversados en la ventana": _op("GET", "/v1/balance_transactions", _SALDO),
    "reversados en la ventana, siguiente": _op("GET", "/v1/balance_transactions", _SALDO, "starting_after"),
}
# stripe-mock returns one type for a polymorphic field: an `application_fee` as a balance
# transaction's `source`, which has no `transfer` to expand (a 500 "Expansion not supported", after
# the parameters were validated). What stands for its answer is built from its own objects.
EXPANSION_POLIMORFICA = PETICIONES["reversados en la ventana"]

# Where the simulator answers other than stripe-mock, on purpose.
EXCEPCIONES = {
    "reversals.total_count": "a transfer's list of reversals carries `total_count` as in Stripe's API reference "
    "example of a transfer; the spec and stripe-mock's fixture leave it out, and the service never reads it "
    "(test_cada_excepcion_hace_falta_y_el_servicio_no_lee_lo_que_el_simulador_anade)",
}


@dataclass
class Recorrido:
    grabadora: Grabadora
    log: str  # stripe-mock's lines of the walk (empty for the simulator)
    pago: ResultadoPago
    halladas: list[TransferenciaHallada]
    reverso: ResultadoPago
    reverso_hallado: str | None
    ventana: list[TransferenciaVista]
    del_grupo: list[TransferenciaVista]
    reversados: list[str] | None  # None: the reconciliation could not read them


async def _recorrer(url: str, log: Path | None = None) -> Recorrido:
    """Every request of the adapter's, through a recording proxy (which makes every list longer
    than a page: the adapter asks for the next one itself)."""
    inicio = len(log.read_text()) if log is not None else 0
    async with grabadora(url, mas_paginas=True) as g, adaptador(g.url, secret=CLAVE, max_intentos=2) as pasarela:
        await pasarela.comprobar_acceso()
        p = pago()
        pagado = await pasarela.procesar_pago(p)
        halladas = await pasarela.transferencias(p)
        reverso = reverso_de(p, pagado.referencia_pago, "40.00")
        revertido = await pasarela.revertir(reverso)
        hallado = await pasarela.buscar_reverso(reverso)
        libro = _libro(pasarela)
        desde, hasta = datetime.now(UTC) - timedelta(minutes=5), datetime.now(UTC) + timedelta(minutes=5)
        ventana = [v async for pagina in libro.transferencias(desde, hasta) for v in pagina]
        del_grupo = await libro.del_pago_texto(str(p.id_pago))
        try:  # last: stripe-mock's 500s open the adapter's circuit
            reversados: list[str] | None = [g async for pagina in libro.reversados_en(desde, hasta) for g in pagina]
        except PasarelaInalcanzableError:
            reversados = None
        lineas = log.read_text()[inicio:] if log is not None else ""
        return Recorrido(g, lineas, pagado, halladas, revertido, hallado, ventana, del_grupo, reversados)


def _libro(pasarela: StripePasarelaDePagos) -> StripeLibroDeLaPasarela:
    return StripeLibroDeLaPasarela(pasarela, cuota_por_s=1000.0, espera_maxima_s=0.3, espera_base_s=0.01,
                                   espera_tope_s=0.05)  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stripe_mock(herramienta_go, tmp_path_factory) -> AsyncIterator[EmbeddedStripeMock]:
    mock = EmbeddedStripeMock(herramienta_go("stripe-mock"), tmp_path_factory.mktemp("stripe-mock"))
    await mock.start()
    try:
        yield mock
    finally:
        await mock.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def contra_stripe_mock(stripe_mock) -> Recorrido:
    return await _recorrer(stripe_mock.url, stripe_mock.log_path)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def contra_el_simulador() -> Recorrido:
    async with simulador_en_marcha() as sim, aiohttp.ClientSession(headers=AUTH) as http:
        datos = {"amount": "100", "currency": "usd", "destination": "acct_1"}
        async with http.post(f"{sim.url}/v1/transfers", data=datos) as r:  # the start-up check lists one
            assert r.status == 200
        return await _recorrer(sim.url)


# --- stripe-mock accepts every request, and the adapter reads its answers ---------------------------


def test_stripe_mock_acepta_cada_peticion_del_adaptador(contra_stripe_mock):
    g = contra_stripe_mock.grabadora
    hechas = {i.operacion for i in g.intercambios}
    # The next page of the reversals by date is never asked for: stripe-mock gave no first page.
    assert hechas == set(PETICIONES.values()) - {PETICIONES["reversados en la ventana, siguiente"]}
    for i in g.intercambios:
        assert i.cabeceras_peticion["Stripe-Version"] == STRIPE_VERSION
        if i.metodo == "POST":
            assert i.cabeceras["Idempotency-Key"] == i.cabeceras_peticion["Idempotency-Key"]
        if i.operacion == EXPANSION_POLIMORFICA:
            assert i.status == 500, i.cuerpo
        else:
            assert i.status == 200, (i.operacion, i.cuerpo)
    # Its only 500s are that expansion, which it could not make: never a parameter it refused.
    log = contra_stripe_mock.log
    assert log.count("Couldn't generate response: Expansion not supported") == log.count("status=500") > 0
    assert "status=400" not in log
    assert "status=404" not in log


async def test_la_siguiente_pagina_de_los_reversados_tambien_la_acepta(contra_stripe_mock, stripe_mock):
    """The request the reconciliation would send for the next page of reversals by date (it got
    no first one here): refused only for the expansion stripe-mock cannot make."""
    [primera, *_] = contra_stripe_mock.grabadora.de(EXPANSION_POLIMORFICA)
    siguiente = f"/v1/balance_transactions?{primera.consulta_cruda}&starting_after=txn_1"
    antes = stripe_mock.log_path.read_text().count("Expansion not supported")
    async with aiohttp.ClientSession(headers=AUTH) as http:
        async with http.get(stripe_mock.url + siguiente) as r:
            assert r.status == 500
        assert stripe_mock.log_path.read_text().count("Expansion not supported") == antes + 1
        # The same parameters with the reversal expanded, not its transfer: a page.
        async with http.get(stripe_mock.url + siguiente.replace("data.source.transfer", "data.source")) as r:
            assert (r.status, (await r.json())["object"]) == (200, "list")


def test_el_adaptador_lee_las_respuestas_de_stripe_mock(contra_stripe_mock):
    r, g = contra_stripe_mock, contra_stripe_mock.grabadora
    [creado] = g.de(PETICIONES["procesar_pago"])
    assert r.pago.exitoso
    assert r.pago.referencia_pago == creado.cuerpo["id"]
    # stateless: what it lists is its fixture, whose transfer_group is not the payment's
    listados = _datos(g, "transferencias del pago")
    assert listados
    assert r.halladas == []
    [revertido] = g.de(PETICIONES["revertir"])
    assert r.reverso.exitoso
    assert r.reverso.referencia_pago == revertido.cuerpo["id"]
    assert _datos(g, "reversos del transfer")
    assert r.reverso_hallado is None  # its fixture reversal carries no metadata[id_reverso]
    # A reconciliation reads every field of every transfer of every page, and of its reversals.
    assert r.ventana == [_vista(t) for t in _datos(g, "ventana")]
    assert len(r.ventana) == 2
    assert all(None not in (v.unidades_menores, v.moneda, v.destino, v.creada, v.revertido) for v in r.ventana)
    assert all(v.reversos for v in r.ventana)
    assert r.del_grupo == [_vista(t) for t in listados[-2:]]  # the reconciliation's own two pages
    assert r.reversados is None  # the expansion it cannot make: see EXPANSION_POLIMORFICA


def _datos(g: Grabadora, nombre: str) -> list[dict[str, Any]]:
    """The transfers (or reversals) stripe-mock listed for that request and its next page."""
    pedidas = g.de(PETICIONES[nombre]) + g.de(PETICIONES[f"{nombre}, siguiente"])
    return [t for i in sorted(pedidas, key=g.intercambios.index) for t in i.cuerpo["data"]]


def _vista(t: dict[str, Any]) -> TransferenciaVista:
    """A transfer as the reconciliation should read it, field by field from Stripe's JSON."""
    return TransferenciaVista(
        referencia=t["id"], transfer_group=t["transfer_group"], unidades_menores=t["amount"],
        moneda=t["currency"].upper(), destino=t["destination"], creada=datetime.fromtimestamp(t["created"], UTC),
        revertido=t["amount_reversed"],
        reversos=tuple(
            ReversoVisto(rv["id"], rv["amount"], rv["currency"].upper(), (rv["metadata"] or {}).get("id_reverso"),
                         datetime.fromtimestamp(rv["created"], UTC))
            for rv in t["reversals"]["data"]
        ),
    )  # fmt: skip


# --- the simulator answers the same requests with stripe-mock's shapes -------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def saldo_de_referencia(stripe_mock) -> dict[str, Any]:
    """What stands for stripe-mock's answer to the reversals by date: its page of balance
    transactions, each `source` its own transfer reversal with its own transfer expanded."""
    async with aiohttp.ClientSession(headers=AUTH) as http:

        async def leer(ruta: str) -> Any:
            async with http.get(stripe_mock.url + ruta) as r:
                assert r.status == 200
                return await r.json()

        pagina = await leer("/v1/balance_transactions?type=transfer_refund&limit=100")
        reverso = await leer("/v1/transfers/tr_1/reversals/trr_1")
        transfer = await leer("/v1/transfers/tr_1")
    return {**pagina, "data": [{**m, "source": {**reverso, "transfer": transfer}} for m in pagina["data"]]}


@pytest.mark.parametrize("nombre", PETICIONES)
def test_el_simulador_responde_con_la_forma_de_stripe_mock(nombre, contra_el_simulador, contra_stripe_mock,
                                                          saldo_de_referencia):  # fmt: skip
    op = PETICIONES[nombre]
    simulador = contra_el_simulador.grabadora.de(op)
    assert simulador, f"the adapter did not send {nombre} to the simulator"
    if op[1] == "/v1/balance_transactions":
        referencia = saldo_de_referencia
    else:
        referencia = contra_stripe_mock.grabadora.de(op)[0].cuerpo
    for i in simulador:
        assert i.status == 200, i.cuerpo
        assert sin_excepciones(diferencias(i.cuerpo, referencia), EXCEPCIONES) == []
    if "starting_after" not in op[2] and "data" in referencia:  # (the next pages: the simulator's are empty)
        assert all(i.cuerpo["data"] for i in simulador), "its items were compared too"


def test_el_simulador_da_las_cabeceras_de_stripe_mock(contra_el_simulador, contra_stripe_mock):
    propias = {"stripe-mock-version", "content-length", "transfer-encoding"}  # the mock's own, and framing
    simulador = {i.operacion: i for i in contra_el_simulador.grabadora.intercambios}
    for mock in contra_stripe_mock.grabadora.intercambios:
        sim = simulador[mock.operacion]
        assert {k.lower() for k in mock.cabeceras} - propias <= {k.lower() for k in sim.cabeceras}, mock.operacion
        assert sim.cabeceras["Request-Id"].startswith("req_")


def test_el_recorrido_por_el_simulador_halla_lo_que_hizo(contra_el_simulador):
    r = contra_el_simulador
    assert r.pago.exitoso
    assert [h.referencia for h in r.halladas] == [r.pago.referencia_pago]
    assert r.reverso_hallado == r.reverso.referencia_pago
    [vista] = [v for v in r.ventana if v.referencia == r.pago.referencia_pago]
    assert [rv.referencia for rv in vista.reversos] == [r.reverso.referencia_pago]
    assert r.del_grupo == [vista]
    assert r.reversados == [vista.transfer_group]


def test_cada_excepcion_hace_falta_y_el_servicio_no_lee_lo_que_el_simulador_anade(
    contra_el_simulador, contra_stripe_mock
):
    encontradas = [
        d
        for mock in contra_stripe_mock.grabadora.intercambios
        if mock.status == 200
        for sim in contra_el_simulador.grabadora.de(mock.operacion)
        for d in diferencias(sim.cuerpo, mock.cuerpo)
    ]
    for excepcion in EXCEPCIONES:
        assert any(d.split(":", 1)[0].endswith(excepcion) for d in encontradas), f"{excepcion}: no longer needed"
    raiz = Path(__file__).resolve().parents[2] / "pagos_worker"
    for excepcion in EXCEPCIONES:
        campo = excepcion.rsplit(".", 1)[-1]
        assert not [p for p in raiz.rglob("*.py") if campo in p.read_text()], campo


# --- the simulator's other reads, and what both refuse ------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def otras_lecturas(stripe_mock) -> list[tuple[str, Any, Any]]:
    """(request, the simulator's answer, stripe-mock's) for the reads the adapter does not make."""
    async with simulador_en_marcha() as sim, aiohttp.ClientSession(headers=AUTH) as http:

        async def crear(ruta: str, datos: dict[str, str]) -> dict[str, Any]:
            async with http.post(sim.url + ruta, data=datos) as r:
                assert r.status == 200, await r.text()
                return dict(await r.json())

        viejo = await crear("/v1/transfers", {"amount": "100", "currency": "usd", "destination": "acct_1"})
        nuevo = await crear("/v1/transfers", {"amount": "200", "currency": "eur", "destination": "acct_2"})
        rv = await crear(f"/v1/transfers/{nuevo['id']}/reversals", {"amount": "50", "metadata[id_reverso]": "r"})
        rutas = [
            f"/v1/transfers/{nuevo['id']}",
            f"/v1/transfers/{nuevo['id']}/reversals/{rv['id']}",
            f"/v1/balance_transactions/{rv['balance_transaction']}",
            f"/v1/balance_transactions/{nuevo['balance_transaction']}",
            f"/v1/transfers?limit=10&ending_before={viejo['id']}",
            "/v1/transfers?limit=10&destination=acct_1",
            f"/v1/transfers?created={viejo['created']}",
            f"/v1/transfers/{nuevo['id']}/reversals?limit=10&ending_before={rv['id']}",
        ]
        salida = []
        for ruta in rutas:
            respuestas = []
            for base in (sim.url, stripe_mock.url):
                async with http.get(base + ruta) as r:
                    assert r.status == 200, (base, ruta, await r.text())
                    respuestas.append(await r.json())
            salida.append((ruta, *respuestas))
        return salida


def test_las_otras_lecturas_del_simulador_con_la_forma_de_stripe_mock(otras_lecturas):
    for ruta, simulador, mock in otras_lecturas:
        assert sin_excepciones(diferencias(simulador, mock), EXCEPCIONES) == [], ruta


RECHAZADAS = [
    ("GET", "/v1/transfers?foo=1", None, 400),
    ("GET", "/v1/transfers?limit=abc", None, 400),
    ("GET", "/v1/transfers?created[gte]=ayer", None, 400),
    ("POST", "/v1/transfers", {"amount": "1", "currency": "usd"}, 400),
    ("POST", "/v1/transfers", {"amount": "uno", "currency": "usd", "destination": "acct_1"}, 400),
    ("POST", "/v1/transfers", {"amount": "1", "currency": "usd", "destination": "acct_1", "foo": "1"}, 400),
    ("POST", "/v1/transfers/{tr}/reversals", {"foo": "1"}, 400),
    ("POST", "/v1/transfers/{tr}/reversals", {"amount": "uno"}, 400),
    ("GET", "/v1/transferencias", None, 404),
]


@pytest.mark.parametrize(("metodo", "ruta", "datos", "status"), RECHAZADAS, ids=lambda v: str(v)[:40])
async def test_ambos_rechazan_lo_que_stripe_no_acepta(metodo, ruta, datos, status, stripe_mock):
    async with simulador_en_marcha() as sim, aiohttp.ClientSession(headers=AUTH) as http:
        async with http.post(sim.url + "/v1/transfers", data={"amount": "100", "currency": "usd",
                                                               "destination": "acct_1"}) as r:  # fmt: skip
            ruta = ruta.replace("{tr}", (await r.json())["id"])
        errores = []
        for base in (sim.url, stripe_mock.url):
            async with http.request(metodo, base + ruta, data=datos) as r:
                assert r.status == status, (base, await r.text())
                errores.append((await r.json())["error"])
        simulador, mock = errores
        assert set(mock) <= set(simulador)
        assert simulador["type"] == mock["type"] == "invalid_request_error"
