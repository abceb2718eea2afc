"""The `OutboxStore` contract, run against the fake and against PostgreSQL alike: what a relay may
rely on, whichever store it is given (the port's docstrings, case by case)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from pagos_worker.application.ports.outbox import OutboxEvent
from pagos_worker.domain import Dinero, Lease, Moneda, Pago
from tests.fake_outbox import FakeOutboxStore

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
GRACIA = timedelta(seconds=30)


class FakeSubject:
    def __init__(self) -> None:
        self.store = FakeOutboxStore()
        self._ids = itertools.count(1)

    async def escribir(
        self, n: int, publicador: str | None = None, edad: timedelta = timedelta(0)
    ) -> list[OutboxEvent]:
        """`n` events committed one after another, `edad` ago, by `publicador` if it publishes them."""
        creado_en = datetime.now(UTC) - edad
        eventos = [
            OutboxEvent(next(self._ids), uuid.uuid4(), "PagoExitoso", uuid.uuid4(), b'{"n":%d}' % i, creado_en)
            for i in range(n)
        ]
        self.store.agregar(eventos, publicador=publicador)
        return eventos

    async def marcas(self) -> dict[int, datetime | None]:
        return self.store.marcas()


class PostgresSubject:
    """Events written as the service writes them: a payment's result through the repository."""

    def __init__(self, postgres) -> None:
        self._postgres = postgres
        self.store = postgres.outbox()
        self._repos = {}

    async def escribir(
        self, n: int, publicador: str | None = None, edad: timedelta = timedelta(0)
    ) -> list[OutboxEvent]:
        if publicador not in self._repos:
            self._repos[publicador] = self._postgres.repo(publicador=publicador, max_in_flight=1)
        repo = self._repos[publicador]
        eventos = []
        for i in range(n):  # one after another: the outbox order is then defined
            pago = Pago.crear(
                id_pago=uuid.uuid4(), id_afiliado=f"a{i}", importe=Dinero(Decimal(1), Moneda.EUR), ahora=T0
            )
            pago.iniciar_procesamiento(Lease("w", T0 + timedelta(minutes=1)), T0)
            pago = (await repo.reclamar(pago)).pago
            pago.marcar_exitoso(f"tr_{i}", T0)
            eventos.extend(await repo.guardar_resultado(pago))
        if edad:
            async with self._postgres.engine.begin() as conn:
                await conn.execute(
                    text("UPDATE outbox SET creado_en = creado_en - CAST(:edad AS interval) WHERE id = ANY(:ids)"),
                    {"edad": edad, "ids": [e.id for e in eventos]},
                )
            eventos = [dataclasses.replace(e, creado_en=e.creado_en - edad) for e in eventos]
        return eventos

    async def marcas(self) -> dict[int, datetime | None]:
        async with self._postgres.engine.connect() as conn:
            filas = await conn.execute(text("SELECT id, publicado_en FROM outbox ORDER BY id"))
            return {f.id: f.publicado_en for f in filas}


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
def subject(request):
    if request.param == "fake":
        return FakeSubject()
    return PostgresSubject(request.getfixturevalue("postgres"))


async def test_reserva_los_mas_antiguos_primero_hasta_el_limite(subject):
    escritos = await subject.escribir(5)
    async with subject.store.reservar_pendientes(3) as lote:
        assert list(lote.eventos) == escritos[:3]  # as committed: ids, event ids, payloads, creado_en
    async with subject.store.reservar_pendientes(10) as lote:
        assert list(lote.eventos) == escritos  # the first lot marked nothing: all still pending
        await lote.marcar_publicados(T0)
    async with subject.store.reservar_pendientes(10) as lote:
        assert list(lote.eventos) == []


async def test_dos_lotes_a_la_vez_nunca_comparten_un_evento(subject):
    escritos = await subject.escribir(5)
    store = subject.store
    async with store.reservar_pendientes(2) as primero, store.reservar_pendientes(10) as segundo:
        assert list(primero.eventos) == escritos[:2]
        assert list(segundo.eventos) == escritos[2:]  # skips what the other lot holds
        async with store.reservar_pendientes(10) as tercero:
            assert list(tercero.eventos) == []
    async with subject.store.reservar_pendientes(10) as lote:
        assert list(lote.eventos) == escritos  # released: nothing was marked


async def test_muchos_relays_a_la_vez_publican_cada_evento_una_sola_vez(subject):
    escritos = await subject.escribir(40)
    vistos: list[int] = []

    async def relay() -> None:
        for _ in range(len(escritos)):  # bounded: a store that never marks would feed it forever
            async with subject.store.reservar_pendientes(4) as lote:
                if not lote.eventos:
                    return
                vistos.extend(e.id for e in lote.eventos)
                await asyncio.sleep(0)  # the other relays reserve meanwhile
                await lote.marcar_publicados(T0)

    await asyncio.gather(*(relay() for _ in range(3)))
    assert sorted(vistos) == [e.id for e in escritos]
    assert set((await subject.marcas()).values()) == {T0}


async def _falla_tras_marcar(store) -> None:
    async with store.reservar_pendientes(10) as lote:
        await lote.marcar_publicados(T0)
        raise ConnectionError("broker away after the mark")


async def test_si_el_bloque_falla_nada_se_marca_y_los_eventos_vuelven(subject):
    escritos = await subject.escribir(3)
    with pytest.raises(ConnectionError):
        await _falla_tras_marcar(subject.store)
    assert set((await subject.marcas()).values()) == {None}
    async with subject.store.reservar_pendientes(10) as lote:
        assert list(lote.eventos) == escritos


async def test_las_marcas_valen_al_terminar_el_lote_con_el_instante_dado(subject):
    escritos = await subject.escribir(3)
    cuando = T0 + timedelta(microseconds=123_457)
    async with subject.store.reservar_pendientes(2) as lote:
        await lote.marcar_publicados(cuando)
        assert set((await subject.marcas()).values()) == {None}  # not yet: the lot has not ended
    assert await subject.marcas() == {escritos[0].id: cuando, escritos[1].id: cuando, escritos[2].id: None}


async def test_lo_de_quien_lo_publica_por_si_mismo_es_suyo_durante_la_gracia(subject):
    suyos = await subject.escribir(2, publicador="w1")
    de_nadie = await subject.escribir(1)
    async with subject.store.reservar_pendientes(10, gracia=GRACIA) as lote:
        assert list(lote.eventos) == de_nadie
    async with subject.store.reservar_pendientes(10, gracia=GRACIA, propio="w2") as lote:
        assert list(lote.eventos) == de_nadie  # another process's own are not this one's
    async with subject.store.reservar_pendientes(10, gracia=GRACIA, propio="w1") as lote:
        assert list(lote.eventos) == suyos + de_nadie  # w1's last flush takes its own at once


async def test_pasada_la_gracia_cualquier_relay_lo_toma(subject):
    viejos = await subject.escribir(2, publicador="w1", edad=GRACIA + timedelta(seconds=5))
    recientes = await subject.escribir(1, publicador="w1", edad=GRACIA - timedelta(seconds=5))
    async with subject.store.reservar_pendientes(10, gracia=GRACIA) as lote:
        assert list(lote.eventos) == viejos  # w1 died, or the broker was away: the relays' now
    async with subject.store.reservar_pendientes(10, gracia=timedelta(seconds=1)) as lote:
        assert list(lote.eventos) == viejos + recientes


async def test_marcar_fuera_de_un_lote_con_el_instante_de_cada_confirmacion(subject):
    escritos = await subject.escribir(3, publicador="w1")
    t1, t2 = T0, T0 + timedelta(milliseconds=5)
    await asyncio.gather(
        subject.store.marcar_publicados(escritos[:2], t1), subject.store.marcar_publicados(escritos[2:], t2)
    )
    assert await subject.marcas() == {escritos[0].id: t1, escritos[1].id: t1, escritos[2].id: t2}
    await subject.store.marcar_publicados(escritos[:1], T0 + timedelta(hours=1))  # published again
    assert (await subject.marcas())[escritos[0].id] == t1  # the first mark stays
    async with subject.store.reservar_pendientes(10, propio="w1") as lote:
        assert list(lote.eventos) == []


async def _esperando(store, timeout: float) -> tuple[asyncio.Task[None], float]:
    """A wait for new events under way (after any wake-up owed from before), and when it began."""
    await store.esperar_nuevos(0.01)  # PostgreSQL: connects, and wakes at once for what came meanwhile
    return asyncio.create_task(store.esperar_nuevos(timeout)), time.monotonic()


# A wait's timeout in the tests of a wake-up: a wait that ends before it was woken, whenever that
# was; how soon after the commit is latency, which the bench reports (`relay_lag_ms`).
SIN_DESPERTAR_S = 120.0


async def test_esperar_nuevos_despierta_poco_despues_de_un_commit(subject):
    espera, _ = await _esperando(subject.store, SIN_DESPERTAR_S)
    await subject.escribir(1)
    await asyncio.wait_for(espera, SIN_DESPERTAR_S / 2)  # woken: long before its own timeout


async def test_esperar_nuevos_sin_commits_espera_su_timeout(subject):
    espera, inicio = await _esperando(subject.store, 0.5)
    await asyncio.wait_for(espera, 30)  # not a hang
    assert time.monotonic() - inicio >= 0.5  # its timeout, not a wake-up


async def test_lo_que_publica_quien_lo_confirma_no_despierta_a_los_relays(subject):
    espera, inicio = await _esperando(subject.store, 0.8)
    await subject.escribir(1, publicador="w1")
    await espera
    assert time.monotonic() - inicio >= 0.75  # no wake-up: it waited out its timeout


async def test_borrar_publicados_solo_lo_publicado_antes_del_instante_hasta_el_limite(subject):
    viejos, recientes, pendientes = (await subject.escribir(2), await subject.escribir(2), await subject.escribir(2))
    await subject.store.marcar_publicados(viejos, T0 - timedelta(days=8))
    await subject.store.marcar_publicados(recientes, T0)
    antes_de = T0 - timedelta(days=7)
    assert await subject.store.borrar_publicados(antes_de, 1) == 1
    assert await subject.store.borrar_publicados(antes_de, 10) == 1
    assert await subject.store.borrar_publicados(antes_de, 10) == 0
    assert list(await subject.marcas()) == [e.id for e in recientes + pendientes]
