"""`PresupuestoDeCuenta`: how one replica takes turns from the account's shared schedule."""

from __future__ import annotations

import asyncio
import time

import pytest

from pagos_worker.adapters.stripe.presupuesto import PresupuestoDeCuenta
from tests.fakes import FakeReservaDeTurnos


class Reloj:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_reserva_a_lo_sumo_un_horizonte_del_presupuesto_por_vez():
    reserva = FakeReservaDeTurnos()
    presupuesto = PresupuestoDeCuenta(reserva, rate=1000.0, burst=1, horizonte_s=0.05)
    await asyncio.gather(*(presupuesto.acquire() for _ in range(500)))
    assert max(reserva.lotes) == 50  # 50 ms of 1,000/s
    assert sum(reserva.lotes) == reserva.reservados >= 500


async def test_no_reserva_mas_alla_del_horizonte():
    """With many waiting, a replica books the account's next turns a little at a time, leaving the
    rest of the schedule to the other replicas."""
    reserva = FakeReservaDeTurnos()
    presupuesto = PresupuestoDeCuenta(reserva, rate=500.0, burst=1, horizonte_s=0.1)
    adelantos = []
    reservar = reserva.reservar

    async def midiendo(n, intervalo, tolerancia):
        desde, reservados = await reservar(n, intervalo, tolerancia)
        adelantos.append(desde + n * intervalo)  # how far ahead its last turn is
        return desde, reservados

    reserva.reservar = midiendo
    await asyncio.gather(*(presupuesto.acquire() for _ in range(300)))
    assert max(adelantos) <= 0.1 + 0.05 + 0.02  # a batch beyond the half horizon, and timer slack


async def test_tras_la_calma_solo_la_rafaga_sale_de_inmediato():
    reserva = FakeReservaDeTurnos()
    presupuesto = PresupuestoDeCuenta(reserva, rate=20.0, burst=5)
    inicio = time.monotonic()
    await asyncio.gather(*(presupuesto.acquire() for _ in range(5)))
    assert time.monotonic() - inicio < 0.04
    await presupuesto.acquire()  # the sixth waits its interval
    assert time.monotonic() - inicio >= 0.045


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


async def test_si_la_reserva_falla_todos_los_que_esperaban_fallan_a_la_vez():
    """While the store is down (a frozen connection: each try waits its timeout), the callers
    waiting behind a failed reservation fail with it at once, rather than each trying in turn."""
    reserva = FakeReservaDeTurnos()
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
    presupuesto = PresupuestoDeCuenta(reserva, rate=1000.0)
    inicio = time.monotonic()
    resultados = await asyncio.gather(*(presupuesto.acquire() for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, Exception) for r in resultados)
    assert intentos == 1
    assert time.monotonic() - inicio < 0.5  # not 20 x 0.2 s
    reserva.falla = None  # back: the next caller reserves again
    await presupuesto.acquire()
    assert intentos == 2


async def test_una_reserva_cancelada_no_pasa_un_error_viejo_al_siguiente():
    """A reservation failed earlier; the next one is cancelled midway (its caller went away): the
    caller waiting behind it reserves for itself, and is not handed the old error."""
    reserva = FakeReservaDeTurnos()
    presupuesto = PresupuestoDeCuenta(reserva, rate=1000.0)
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
