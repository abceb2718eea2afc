"""Stripe's books read for a reconciliation, against the simulator over HTTP: the window's bounds,
every page, every reversal, requests counted within the share, and an outage past the bound."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
import pytest
from pydantic import SecretStr

from pagos_dev.simulador.fallas import Fallas
from pagos_worker.adapters.stripe.adapter import Destinos, StripeConfig, StripePasarelaDePagos
from pagos_worker.adapters.stripe.libro import StripeLibroDeLaPasarela
from pagos_worker.application.ports.conciliacion import PasarelaInalcanzableError
from tests.conftest import free_port
from tests.integration.test_stripe_adapter import SECRETO, adaptador, pago
from tests.simulador_helpers import simulador_en_marcha
from tests.simulador_sdk import Reloj

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {SECRETO}"}
T0 = datetime.fromtimestamp(1_700_000_000, UTC)


async def crear(http: aiohttp.ClientSession, url: str, grupo: str, amount: int = 1000) -> str:
    datos = {"amount": str(amount), "currency": "usd", "destination": "acct_x", "transfer_group": grupo}
    async with http.post(f"{url}/v1/transfers", data=datos) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["id"])


async def revertir(http: aiohttp.ClientSession, url: str, tr: str, amount: int, **metadata: str) -> str:
    datos = {"amount": str(amount), **{f"metadata[{k}]": v for k, v in metadata.items()}}
    async with http.post(f"{url}/v1/transfers/{tr}/reversals", data=datos) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["id"])


async def test_lee_la_ventana_entera_con_cada_reverso():
    reloj = Reloj()
    reloj.ahora = T0.timestamp()
    async with simulador_en_marcha(reloj=reloj) as sim, aiohttp.ClientSession(headers=AUTH) as http:
        antes = await crear(http, sim.url, "g-antes")  # one second before the window
        reloj.ahora += 1
        dentro = [await crear(http, sim.url, f"g{i}") for i in range(150)]  # two pages
        primero = dentro[0]  # created at the window's very start
        reverso_propio = await revertir(http, sim.url, primero, 10, id_reverso="r-propio")
        for _ in range(11):  # more than a transfer shows of its reversals
            await revertir(http, sim.url, primero, 1)
        reloj.ahora += 10
        despues = await crear(http, sim.url, "g-despues")  # at the window's end: outside
        desde, hasta = T0 + timedelta(seconds=1), T0 + timedelta(seconds=11)
        async with adaptador(sim.url) as pasarela:
            libro = StripeLibroDeLaPasarela(pasarela, cuota_por_s=1000.0)
            paginas = [p async for p in libro.transferencias(desde, hasta)]
            vistos = {t.referencia: t for p in paginas for t in p}
            assert set(vistos) == set(dentro)
            assert antes not in vistos
            assert despues not in vistos
            assert len(paginas) == 2
            t = vistos[primero]
            assert (t.transfer_group, t.unidades_menores, t.moneda, t.destino) == ("g0", 1000, "USD", "acct_x")
            assert t.revertido == 21
            assert len(t.reversos) == 12
            [propio] = [r for r in t.reversos if r.id_reverso is not None]
            assert (propio.referencia, propio.id_reverso, propio.unidades_menores) == (reverso_propio, "r-propio", 10)
            assert libro.peticiones == 3
            [del_pago] = await libro.del_pago_texto("g-antes")
            assert del_pago.referencia == antes


async def test_la_cuota_limita_las_peticiones():
    async with simulador_en_marcha() as sim, aiohttp.ClientSession(headers=AUTH) as http:
        for i in range(3):
            await crear(http, sim.url, f"g{i}")
        async with adaptador(sim.url) as pasarela:
            libro = StripeLibroDeLaPasarela(pasarela, cuota_por_s=5.0)
            inicio = time.monotonic()
            for _ in range(4):
                await libro.del_pago(uuid.uuid4())
            assert time.monotonic() - inicio >= 0.55
            assert libro.peticiones == 4


async def test_una_caida_mas_larga_que_la_cota_falla_la_corrida():
    async with adaptador(f"http://127.0.0.1:{free_port()}", timeout_s=0.5) as pasarela:
        libro = StripeLibroDeLaPasarela(pasarela, cuota_por_s=1000.0, espera_maxima_s=0.5)
        with pytest.raises(PasarelaInalcanzableError):
            async for _ in libro.transferencias(T0, T0 + timedelta(days=1)):
                pass


class Contador:
    """The account's budget, counted: every request of the reader must take a turn of it too."""

    def __init__(self) -> None:
        self.turnos = 0

    async def acquire(self) -> None:
        self.turnos += 1


async def test_cada_peticion_toma_un_turno_del_presupuesto_de_la_cuenta():
    async with simulador_en_marcha() as sim, aiohttp.ClientSession(headers=AUTH) as http:
        await crear(http, sim.url, "g1")
        cuenta = Contador()
        config = StripeConfig(api_base=sim.url, secret_key=SecretStr(SECRETO), timeout_s=2.0)
        async with StripePasarelaDePagos(config, Destinos(), cuenta) as pasarela:
            libro = StripeLibroDeLaPasarela(pasarela, cuota_por_s=1000.0)
            [[visto]] = [p async for p in libro.transferencias(T0, T0 + timedelta(days=36500))]
            await libro.del_pago_texto("g1")
        assert visto.transfer_group == "g1"
        assert cuenta.turnos == libro.peticiones == 2


async def test_los_429_se_esperan():
    async with simulador_en_marcha() as sim, aiohttp.ClientSession(headers=AUTH) as http:
        for i in range(3):
            await crear(http, sim.url, f"g{i}")
        async with http.post(f"{sim.url}/_simulador/fallas", data=orjson.dumps({"limite_cuenta_por_s": 2})) as r:
            assert r.status == 200
        async with adaptador(sim.url, max_intentos=1) as pasarela:
            libro = StripeLibroDeLaPasarela(pasarela, cuota_por_s=1000.0, espera_base_s=0.05, espera_maxima_s=30)
            grupos = [(await libro.del_pago_texto(f"g{i % 3}"))[0].transfer_group for i in range(6)]
        assert grupos == ["g0", "g1", "g2", "g0", "g1", "g2"]
        assert libro.peticiones > 6


async def test_por_tramos_lee_toda_la_ventana_con_varias_paginas_en_vuelo():
    """Read as stretches side by side, a window gives each of its transfers once, whatever stretch
    it falls in, with more than one page asked at a time (a lone reader makes one per round trip)."""
    reloj = {"t": 1_700_000_000.0}
    fallas = Fallas(latencia="fixed:0", tasa_rechazo=0)
    async with simulador_en_marcha(fallas, reloj=lambda: reloj["t"]) as sim, adaptador(sim.url) as pasarela:
        hechos = []
        for i in range(500):
            reloj["t"] = 1_700_000_000.0 + i * 5
            hechos.append((await pasarela.procesar_pago(pago())).referencia_pago)
        sim.simulador.fallas = sim.simulador.fallas.con({"latencia_listado_s": 0.4})
        libro = StripeLibroDeLaPasarela(pasarela, cuota_por_s=1000, tramos=8)
        desde, hasta = datetime.fromtimestamp(1_700_000_000, UTC), datetime.fromtimestamp(1_700_002_500, UTC)
        inicio = time.monotonic()
        leidos = [t.referencia async for pagina in libro.transferencias(desde, hasta) for t in pagina]
        duracion = time.monotonic() - inicio
    assert sorted(leidos) == sorted(hechos)
    assert libro.peticiones >= 8
    # One reader: 5 pages of 100 one after another, 2 s; 8 stretches of ~63, a page each side by side.
    assert duracion < 1.2


async def test_los_reversos_de_la_ventana_por_fecha_cada_pagina_con_el_grupo_de_su_transfer():
    reloj = Reloj()
    reloj.ahora = T0.timestamp() - 86_400  # transfers a day before the window
    async with simulador_en_marcha(reloj=reloj) as sim, aiohttp.ClientSession(headers=AUTH) as http:
        grupos = [f"g{i}" for i in range(120)]
        transfers = [await crear(http, sim.url, g) for g in grupos]
        reloj.ahora = T0.timestamp() - 1
        await revertir(http, sim.url, transfers[0], 1)  # just before the window
        reloj.ahora = T0.timestamp()
        for tr in transfers:  # two pages of balance transactions
            await revertir(http, sim.url, tr, 1)
        reloj.ahora = T0.timestamp() + 10
        await revertir(http, sim.url, await crear(http, sim.url, "g-despues"), 1)  # at the window's end
        async with adaptador(sim.url) as pasarela:
            libro = StripeLibroDeLaPasarela(pasarela, cuota_por_s=1000.0)
            paginas = [p async for p in libro.reversados_en(T0, T0 + timedelta(seconds=10))]
            assert sorted(g for p in paginas for g in p) == sorted(grupos)
            assert (len(paginas), libro.peticiones) == (2, 2)  # the transfer comes expanded: no more requests


class _EnVuelo:
    """Wraps the adapter's list calls: how many were in flight at once, at most."""

    def __init__(self, pasarela: StripePasarelaDePagos) -> None:
        self.ahora = self.maximo = 0
        for nombre in ("pagina", "pagina_de_saldo"):
            original = getattr(pasarela, nombre)

            async def contada(*args, _original=original, **kwargs):
                self.ahora += 1
                self.maximo = max(self.maximo, self.ahora)
                try:
                    return await _original(*args, **kwargs)
                finally:
                    self.ahora -= 1

            setattr(pasarela, nombre, contada)


async def test_los_reversos_por_fecha_y_las_busquedas_se_leen_por_tramos():
    """The window's reversals by date and the payments looked up one by one come after the
    transfers: read one request after another they left the share idle at Stripe's 200 ms a list
    (issue 26's bench: the last 800 requests at ~4/s). Both keep several requests in flight."""
    reloj = Reloj()
    reloj.ahora = T0.timestamp()
    async with simulador_en_marcha(reloj=reloj) as sim, aiohttp.ClientSession(headers=AUTH) as http:
        grupos = [str(uuid.uuid4()) for _ in range(300)]
        transfers = []
        for i, g in enumerate(grupos):
            reloj.ahora = T0.timestamp() + i * 0.05
            transfers.append(await crear(http, sim.url, g))
        for i, tr in enumerate(transfers):  # three pages of balance transactions over 15 s
            reloj.ahora = T0.timestamp() + i * 0.05
            await revertir(http, sim.url, tr, 1)
        sim.simulador.fallas = sim.simulador.fallas.con({"latencia_listado_s": 0.2})
        async with adaptador(sim.url) as pasarela:
            en_vuelo = _EnVuelo(pasarela)
            libro = StripeLibroDeLaPasarela(pasarela, cuota_por_s=1000.0, tramos=4)
            desde, hasta = T0, T0 + timedelta(seconds=20)
            reversados = [g async for p in libro.reversados_en(desde, hasta) for g in p]
            assert sorted(reversados) == sorted(grupos)
            assert en_vuelo.maximo > 1
            en_vuelo.maximo = 0
            ids = [uuid.UUID(g) for g in grupos[:12]] + [uuid.uuid4()]
            hallados = {i: v async for i, v in libro.de_los_pagos(ids)}
            assert set(hallados) == set(ids)
            assert [t.referencia for t in hallados[ids[0]]] == [transfers[0]]
            assert hallados[ids[-1]] == []
            assert 1 < en_vuelo.maximo <= 4  # side by side, never more than the stretches
