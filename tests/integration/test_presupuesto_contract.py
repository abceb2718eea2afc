"""The account budget's schedule (`ReservaDeTurnos`), run against the fake and PostgreSQL alike, and
`PresupuestoDeCuenta` on top of it: replicas that share the schedule share one rate."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

import pytest
from sqlalchemy import text

from pagos_worker.adapters.postgres.presupuesto import PostgresReservaDeTurnos
from pagos_worker.adapters.stripe.presupuesto import PresupuestoDeCuenta
from tests.fakes import FakeReservaDeTurnos


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
def nueva_reserva(request):
    """Makes a schedule for an account; the same name, the same schedule (as replicas see it)."""
    if request.param == "fake":
        cuentas: dict[str, FakeReservaDeTurnos] = {}
        return lambda cuenta: cuentas.setdefault(cuenta, FakeReservaDeTurnos())
    engine = request.getfixturevalue("engine")
    return lambda cuenta: PostgresReservaDeTurnos(engine, cuenta)


@pytest.fixture
def adelantar(request, nueva_reserva):
    """Puts an account's schedule `s` seconds ahead of now, as a step back of the clock would."""
    if "postgres" not in request.node.callspec.id:

        async def adelantar_fake(nombre, s):
            reserva = nueva_reserva(nombre)
            reserva.tat = time.monotonic() + s

        return adelantar_fake
    engine = request.getfixturevalue("engine")

    async def adelantar_pg(nombre, s):
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO presupuesto_pasarela (cuenta, tat, reservados) "
                    "VALUES (:c, extract(epoch FROM clock_timestamp()) + :s, 0)"
                ),
                {"c": nombre, "s": s},
            )

    return adelantar_pg


def cuenta() -> str:
    return f"stripe:test-{uuid.uuid4().hex[:8]}"


async def test_tras_la_calma_la_rafaga_empieza_ya(nueva_reserva):
    reserva = nueva_reserva(cuenta())
    desde, reservados = await reserva.reservar(3, 0.01, 0.04)
    assert desde == pytest.approx(-0.04, abs=0.005)  # the burst's turns are free already
    assert reservados == 3


class Desde:
    """A start given from when its statement ran: `esperado` seconds after the first reservation
    of the test, less however long ago that one may have run (at most since `inicio`)."""

    def __init__(self) -> None:
        self.inicio = time.monotonic()

    def es(self, desde: float, esperado: float) -> bool:
        return esperado - (time.monotonic() - self.inicio) - 0.005 <= desde <= esperado + 0.005


async def test_los_turnos_siguen_uno_tras_otro(nueva_reserva):
    reserva, reloj = nueva_reserva(cuenta()), Desde()
    await reserva.reservar(1, 1.0, 0.0)
    desde, reservados = await reserva.reservar(5, 1.0, 0.0)
    assert reloj.es(desde, 1.0)  # after the first one's interval
    desde, reservados = await reserva.reservar(2, 1.0, 0.0)
    assert reloj.es(desde, 6.0)
    assert reservados == 8


async def test_cada_cuenta_tiene_su_calendario(nueva_reserva):
    nombre = cuenta()
    reloj = Desde()
    await nueva_reserva(nombre).reservar(10, 1.0, 0.0)
    desde, reservados = await nueva_reserva(cuenta()).reservar(1, 1.0, 0.0)
    assert desde == pytest.approx(0.0, abs=0.005)  # a first reservation starts at its own instant
    assert reservados == 1
    desde, _ = await nueva_reserva(nombre).reservar(1, 1.0, 0.0)  # another replica, same account
    assert reloj.es(desde, 10.0)


async def test_reservas_a_la_vez_no_se_solapan(nueva_reserva):
    """Ten replicas reserve 4 turns of 100 ms at once: each gets a block of its own, 400 ms after the
    one before. A block's start is given from the instant its statement ran, somewhere between the
    gather's start and its own answer, so each is placed on this process's clock within that span."""
    nombre = cuenta()
    inicio = time.monotonic()

    async def una(reserva) -> tuple[float, float, int]:  # either schedule
        desde, reservados = await reserva.reservar(4, 0.1, 0.0)
        return inicio + desde, time.monotonic() + desde, reservados  # the block's start: at least, at most

    bloques = sorted(await asyncio.gather(*(una(nueva_reserva(nombre)) for _ in range(10))), key=lambda b: b[2])
    assert [r for _, _, r in bloques] == list(range(4, 44, 4))  # every block its own 4 turns, none shared
    for (antes_min, antes_max, _), (despues_min, despues_max, _) in itertools.pairwise(bloques):
        assert despues_max - antes_min >= 0.4 - 0.005  # never sooner than 4 turns after
        assert despues_min - antes_max <= 0.4 + 0.005  # nor later


async def test_tres_replicas_comparten_una_tasa(nueva_reserva):
    """Three replicas with 200 callers each: 600 requests at 400/s take ~1.5 s in all (not a
    third of it), the replicas take turns, and no 100 ms holds more than its share."""
    nombre, rate = cuenta(), 400.0
    replicas = [PresupuestoDeCuenta(nueva_reserva(nombre), rate, burst=1) for _ in range(3)]
    servidos: list[tuple[int, float]] = []

    async def llamar(i: int) -> None:
        await replicas[i].acquire()
        servidos.append((i, time.monotonic()))

    inicio = time.monotonic()
    await asyncio.gather(*(llamar(i) for i in range(3) for _ in range(200)))
    duracion = time.monotonic() - inicio
    assert 599 / rate * 0.95 <= duracion <= 599 / rate * 1.5  # the bench measures how close, unloaded
    for i in range(3):  # the replicas take turns: none waits for another to be done
        turnos = sorted(t for r, t in servidos if r == i)
        assert max(b - a for a, b in itertools.pairwise(turnos)) < 0.35
    for desde in (inicio + k * 0.1 for k in range(14)):
        en_ventana = sum(1 for _, t in servidos if desde <= t < desde + 0.1)
        assert en_ventana <= rate * 0.1 + 4, en_ventana
    assert max(r.uso() for r in replicas) == pytest.approx(1.0, abs=0.15)


async def test_un_calendario_muy_adelantado_no_hace_esperar_su_tamano(nueva_reserva, adelantar):
    """The database's clock stepped back an hour (or the row is wrong): the wait is capped, not an
    hour for every replica."""
    nombre = cuenta()
    await adelantar(nombre, 3600.0)
    desde, _ = await nueva_reserva(nombre).reservar(1, 0.01, 0.0)
    assert desde == pytest.approx(10.0, abs=0.1)
