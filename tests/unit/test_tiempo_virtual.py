"""The virtual-time loop the timing tests rely on (tests/tiempo_virtual.py): its clock moves by the
waits the code asks for, exactly, and only when nothing is ready to run."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.tiempo_virtual import tiempo_virtual


@tiempo_virtual
async def test_las_esperas_pasan_exactas_y_sin_esperar_de_verdad():
    loop = asyncio.get_running_loop()
    inicio, real = loop.time(), time.monotonic()
    await asyncio.sleep(30)
    assert loop.time() - inicio == 30
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.Event().wait(), 5)
    assert loop.time() - inicio == 35
    assert time.monotonic() - real < 5  # no 35 s of real time


@tiempo_virtual
async def test_el_reloj_no_avanza_mientras_hay_algo_que_correr():
    loop = asyncio.get_running_loop()
    inicio = loop.time()
    vueltas = 0

    async def ocupada() -> None:
        nonlocal vueltas
        for _ in range(1000):
            vueltas += 1
            await asyncio.sleep(0)

    tarea = asyncio.create_task(ocupada())
    await asyncio.sleep(0.001)  # due only once everything ready has run
    assert (vueltas, tarea.done(), loop.time() - inicio) == (1000, True, pytest.approx(0.001))


@tiempo_virtual
async def test_los_temporizadores_salen_en_orden():
    orden: list[str] = []

    async def tras(segundos: float, nombre: str) -> None:
        await asyncio.sleep(segundos)
        orden.append(nombre)

    await asyncio.gather(tras(0.3, "c"), tras(0.1, "a"), tras(0.2, "b"))
    assert orden == ["a", "b", "c"]


@tiempo_virtual
async def test_un_hilo_despierta_al_bucle():
    assert await asyncio.to_thread(lambda: 42) == 42
