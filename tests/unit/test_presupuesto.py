"""`PresupuestoDeCuenta`: how one replica takes turns from the account's shared schedule."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from pagos_worker.adapters.stripe.presupuesto import PresupuestoDeCuenta
from tests.fakes import FakeReservaDeTurnos
from tests.tiempo_virtual import reloj as reloj_del_bucle
from tests.tiempo_virtual import tiempo_virtual


class Reloj:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@tiempo_virtual
async def test_reserva_a_lo_sumo_un_horizonte_del_presupuesto_por_vez():
    reserva = FakeReservaDeTurnos(reloj_del_bucle())
    presupuesto = PresupuestoDeCuenta(reserva, rate=1000.0, burst=1, horizonte_s=0.05, clock=reloj_del_bucle())
    await asyncio.gather(*(presupuesto.acquire() for _ in range(500)))
    assert max(reserva.lotes) == 50  # 50 ms of 1,000/s
    assert sum(reserva.lotes) == reserva.reservados >= 500


@tiempo_virtual
async def test_no_reserva_mas_alla_del_horizonte():
    """With many waiting, a replica books the account's next turns a little at a time, leaving the
    rest of the schedule to the other replicas."""
    reserva = FakeReservaDeTurnos(reloj_del_bucle())
    presupuesto = PresupuestoDeCuenta(reserva, rate=500.0, burst=1, horizonte_s=0.1, clock=reloj_del_bucle())
    adelantos = []
    reservar = reserva.reservar

    async def midiendo(n, intervalo, tolerancia):
        desde, reservados = await reservar(n, intervalo, tolerancia)
        adelantos.append(desde + n * intervalo)  # how far ahead its last turn is
        return desde, reservados

    reserva.reservar = midiendo
    await asyncio.gather(*(presupuesto.acquire() for _ in range(300)))
    # It books again once its last turn is half a horizon away: a batch (one horizon) beyond that,
    # and the turn in between.
    assert max(adelantos) <= 0.1 + 0.05 + 1 / 500 + 1e-9


@tiempo_virtual
async def test_tras_la_calma_solo_la_rafaga_sale_de_inmediato():
    reloj = reloj_del_bucle()
    reserva = FakeReservaDeTurnos(reloj)
    presupuesto = PresupuestoDeCuenta(reserva, rate=20.0, burst=5, clock=reloj)
    inicio = reloj()
    await asyncio.gather(*(presupuesto.acquire() for _ in range(5)))
    assert reloj() == inicio  # the burst: no wait at all
    await presupuesto.acquire()  # the sixth waits its interval
    assert reloj() - inicio == pytest.approx(1 / 20)


@tiempo_virtual
async def test_tres_replicas_comparten_una_tasa():
    """Three replicas with 200 callers each on one schedule: 600 requests at 400/s take the
    schedule's 599 intervals (not a third of that), the replicas take turns, and no 100 ms holds
    more than its share. On virtual time these are the algorithm's figures, whatever the machine's
    load; `test_presupuesto_contract.py` checks the same sharing over PostgreSQL, and the bench
    (`presupuesto-*`) reports how close to them a real clock gets."""
    reloj, rate, horizonte = reloj_del_bucle(), 400.0, 0.1
    reserva = FakeReservaDeTurnos(reloj)
    replicas = [PresupuestoDeCuenta(reserva, rate, burst=1, horizonte_s=horizonte, clock=reloj) for _ in range(3)]
    servidos: list[tuple[int, float]] = []

    async def llamar(i: int) -> None:
        await replicas[i].acquire()
        servidos.append((i, reloj()))

    inicio = reloj()
    await asyncio.gather(*(llamar(i) for i in range(3) for _ in range(200)))
    assert reloj() - inicio == pytest.approx(599 / rate)  # back to back: no turn wasted, none shared
    assert reserva.reservados == 600
    for i in range(3):  # the replicas take turns: each waits at most for the other two's batches
        turnos = sorted(t for r, t in servidos if r == i)
        assert max(b - a for a, b in itertools.pairwise(turnos)) <= 2 * horizonte + 1 / rate + 1e-9
    instantes = sorted(t for _, t in servidos)
    for desde in instantes:  # every 100 ms window, from each turn on
        assert sum(1 for t in instantes if desde <= t < desde + 0.1) <= rate * 0.1 + 1
    assert [r.uso() for r in replicas] == pytest.approx([1.0] * 3)  # the account's whole budget, seen by each


async def test_un_turno_no_tomado_a_tiempo_no_se_guarda():
    """Turns reserved for callers that went away are dropped once past: saved up, they would let a
    later crowd through at once, above the rate."""
    reloj = Reloj()
    reserva = FakeReservaDeTurnos(reloj)
    presupuesto = PresupuestoDeCuenta(reserva, rate=100.0, burst=1, clock=reloj)
    presupuesto._turnos.extend([reloj.t + 0.01 * i for i in range(10)])
    reloj.t += 5.0
    await presupuesto.acquire()
    assert reserva.reservados == 1  # a new turn from the schedule, not the stale ones
    assert not presupuesto._turnos


async def test_el_uso_es_lo_reservado_por_la_cuenta_y_cero_si_no_sabe():
    reloj = Reloj()
    reserva = FakeReservaDeTurnos(reloj)
    presupuesto = PresupuestoDeCuenta(reserva, rate=100.0, burst=100, clock=reloj)
    assert presupuesto.uso() == 0.0
    for _ in range(10):  # 50 turns a second reserved by the account (this replica's and others')
        reserva.reservados += 49
        await presupuesto.acquire()
        reloj.t += 1.0
    assert presupuesto.uso() == pytest.approx(0.5, abs=0.01)
    reloj.t += 11.0  # nothing reserved by this replica lately: it cannot tell
    assert presupuesto.uso() == 0.0


async def test_un_error_al_reservar_llega_al_que_espera_y_el_siguiente_reintenta():
    reserva = FakeReservaDeTurnos()
    reserva.falla = ConnectionResetError("postgres")
    presupuesto = PresupuestoDeCuenta(reserva, rate=100.0)
    with pytest.raises(ConnectionResetError):
        await presupuesto.acquire()
    reserva.falla = None
    await presupuesto.acquire()
    assert reserva.reservados == 1


def test_parametros():
    with pytest.raises(ValueError, match="rate"):
        PresupuestoDeCuenta(FakeReservaDeTurnos(), rate=0)


@tiempo_virtual
async def test_si_la_reserva_falla_todos_los_que_esperaban_fallan_a_la_vez():
    """While the store is down (a frozen connection: each try waits its timeout), the callers
    waiting behind a failed reservation fail with it at once, rather than each trying in turn."""
    reserva = FakeReservaDeTurnos(reloj_del_bucle())
    intentos = 0
    reservar = reserva.reservar

    async def colgada(n, intervalo, tolerancia):
        nonlocal intentos
        intentos += 1
        if reserva.falla is not None:
            await asyncio.sleep(0.2)  # its timeout
            raise TimeoutError
        return await reservar(n, intervalo, tolerancia)

    reserva.reservar = colgada
    reserva.falla = TimeoutError()
    reloj = reloj_del_bucle()
    presupuesto = PresupuestoDeCuenta(reserva, rate=1000.0, clock=reloj)
    inicio = reloj()
    resultados = await asyncio.gather(*(presupuesto.acquire() for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, Exception) for r in resultados)
    assert intentos == 1
    assert reloj() - inicio == pytest.approx(0.2)  # one timeout for all, not 20 x 0.2 s
    reserva.falla = None  # back: the next caller reserves again
    await presupuesto.acquire()
    assert intentos == 2


@tiempo_virtual
async def test_una_reserva_cancelada_no_pasa_un_error_viejo_al_siguiente():
    """A reservation failed earlier; the next one is cancelled midway (its caller went away): the
    caller waiting behind it reserves for itself, and is not handed the old error."""
    reserva = FakeReservaDeTurnos(reloj_del_bucle())
    presupuesto = PresupuestoDeCuenta(reserva, rate=1000.0, clock=reloj_del_bucle())
    reserva.falla = OSError("db down")
    with pytest.raises(OSError, match="db down"):
        await presupuesto.acquire()
    reserva.falla = None
    reservar = reserva.reservar
    lenta = asyncio.Event()

    async def lenta_la_primera(n, intervalo, tolerancia):
        if not lenta.is_set():
            lenta.set()
            await asyncio.sleep(10)
        return await reservar(n, intervalo, tolerancia)

    reserva.reservar = lenta_la_primera
    a = asyncio.create_task(presupuesto.acquire())
    await lenta.wait()
    b = asyncio.create_task(presupuesto.acquire())
    await asyncio.sleep(0.01)
    a.cancel()
    await asyncio.wait_for(b, 2)  # served, not failed with "db down"
    assert reserva.reservados >= 1


async def test_el_uso_no_es_negativo_si_el_calendario_vuelve_a_empezar():
    reloj = Reloj()
    reserva = FakeReservaDeTurnos(reloj)
    presupuesto = PresupuestoDeCuenta(reserva, rate=100.0, burst=100, clock=reloj)
    reserva.reservados = 5000
    for _ in range(3):
        await presupuesto.acquire()
        reloj.t += 1.0
    reserva.reservados = 0  # the table emptied by a crash: the counter starts again
    for _ in range(3):
        await presupuesto.acquire()
        reloj.t += 1.0
    assert 0.0 <= presupuesto.uso() <= 1.0
