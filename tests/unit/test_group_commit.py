import asyncio

import pytest

from pagos_worker.adapters.postgres.group_commit import GroupCommitter
from tests.tiempo_virtual import tiempo_virtual


class Flusher:
    def __init__(self, delay: float = 0.01, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.fail_on = fail_on
        self.concurrent = 0
        self.max_concurrent = 0

    async def __call__(self, items):
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            self.batches.append(list(items))
            await asyncio.sleep(self.delay)
            if self.fail_on is not None and self.fail_on in items:
                raise RuntimeError("boom")
            return [i * 10 for i in items]
        finally:
            self.concurrent -= 1


async def test_un_item_solo_se_escribe_enseguida():
    flusher = Flusher()
    committer = GroupCommitter(flusher, max_batch=50)
    assert await committer.submit(1) == 10
    assert flusher.batches == [[1]]


async def test_las_llamadas_concurrentes_se_agrupan_y_cada_una_recibe_lo_suyo():
    flusher = Flusher()
    committer = GroupCommitter(flusher, max_batch=50, max_in_flight=1)
    results = await asyncio.gather(*(committer.submit(i) for i in range(200)))
    assert results == [i * 10 for i in range(200)]
    assert sorted(i for batch in flusher.batches for i in batch) == list(range(200))
    assert len(flusher.batches) <= 6  # 1 alone, then full batches of 50
    assert max(len(b) for b in flusher.batches) == 50
    assert flusher.max_concurrent == 1


async def test_respeta_el_maximo_de_flushes_a_la_vez():
    flusher = Flusher()
    committer = GroupCommitter(flusher, max_batch=5, max_in_flight=3)
    await asyncio.gather(*(committer.submit(i) for i in range(60)))
    assert flusher.max_concurrent == 3


async def test_un_error_llega_a_todos_los_del_lote_y_no_a_los_demas():
    flusher = Flusher(fail_on=3)
    committer = GroupCommitter(flusher, max_batch=10, max_in_flight=1)
    first = asyncio.create_task(committer.submit(100))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(committer.submit(i)) for i in range(5)]
    assert await first == 1000
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await committer.submit(7) == 70  # the committer keeps working


async def test_flush_que_devuelve_de_menos_es_un_error():
    async def bad(items):
        return []

    committer = GroupCommitter(bad, max_batch=10)
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        await committer.submit(1)


def test_parametros_invalidos():
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommitter(Flusher(), max_batch=0)
    with pytest.raises(ValueError, match="linger"):
        GroupCommitter(Flusher(), max_batch=5, linger=-1)


async def test_submit_many_va_en_un_solo_lote():
    flusher = Flusher()
    committer = GroupCommitter(flusher, max_batch=50, max_in_flight=1)
    assert await committer.submit_many([1, 2, 3]) == [10, 20, 30]
    assert flusher.batches == [[1, 2, 3]]


async def test_submit_many_respeta_el_maximo_del_lote():
    flusher = Flusher(delay=0)
    committer = GroupCommitter(flusher, max_batch=2, max_in_flight=1)
    assert await committer.submit_many([1, 2, 3, 4, 5]) == [10, 20, 30, 40, 50]
    assert flusher.batches == [[1, 2], [3, 4], [5]]


@tiempo_virtual
async def test_con_linger_espera_a_los_que_llegan_despues():
    flusher = Flusher(delay=0)
    committer = GroupCommitter(flusher, max_batch=50, max_in_flight=1, linger=0.2)
    loop = asyncio.get_running_loop()
    inicio = loop.time()
    first = asyncio.create_task(committer.submit(1))
    await asyncio.sleep(0.1)
    assert flusher.batches == []  # still lingering
    second = asyncio.create_task(committer.submit(2))
    assert (await first, await second) == (10, 20)
    assert flusher.batches == [[1, 2]]
    # From the first item (0.2 s), not from the last one (0.3 s).
    assert loop.time() - inicio == pytest.approx(0.2)


@tiempo_virtual
async def test_con_linger_un_lote_lleno_no_espera():
    flusher = Flusher(delay=0)
    committer = GroupCommitter(flusher, max_batch=3, max_in_flight=1, linger=10)
    loop = asyncio.get_running_loop()
    inicio = loop.time()
    assert await committer.submit_many([1, 2, 3]) == [10, 20, 30]
    assert loop.time() == inicio  # not its 10 s linger
    assert flusher.batches == [[1, 2, 3]]


@tiempo_virtual
async def test_con_linger_el_lote_siguiente_espera_desde_que_termina_el_anterior():
    flusher = Flusher(delay=0.1)
    committer = GroupCommitter(flusher, max_batch=50, max_in_flight=1, linger=0.1)
    loop = asyncio.get_running_loop()
    first = asyncio.create_task(committer.submit(1))
    await asyncio.sleep(0.15)  # the first batch lingered 0.1 s and is being written (0.1 s)
    second = asyncio.create_task(committer.submit(2))
    await first
    fin_primero = loop.time()
    await asyncio.sleep(0.03)
    third = asyncio.create_task(committer.submit(3))
    assert (await second, await third) == (20, 30)
    assert flusher.batches == [[1], [2, 3]]
    # Its linger, then its own write; without the linger only the write (0.1 s).
    assert loop.time() - fin_primero == pytest.approx(0.1 + 0.1)


async def test_un_error_propio_de_un_item_se_aisla_y_el_resto_del_lote_se_escribe():
    flusher = Flusher(fail_on=3)
    committer = GroupCommitter(flusher, max_batch=10, max_in_flight=1, aislar=lambda exc: True)
    first = asyncio.create_task(committer.submit(100))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(committer.submit(i)) for i in range(5)]
    assert await first == 1000
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert results[:3] == [0, 10, 20]
    assert isinstance(results[3], RuntimeError)
    assert results[4] == 40
    assert flusher.batches[1:] == [[0, 1, 2, 3, 4], [0], [1], [2], [3], [4]]  # the batch, then one by one


async def test_una_caida_no_se_aisla():
    flusher = Flusher(fail_on=3)
    committer = GroupCommitter(flusher, max_batch=10, max_in_flight=1, aislar=lambda exc: False)
    results = await asyncio.gather(*(committer.submit(i) for i in range(5)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results[1:])
    assert len(flusher.batches) == 2  # no item-by-item retry: an outage would fail them all anyway


@tiempo_virtual
async def test_sin_progreso_mide_la_espera_sin_ningun_commit():
    bloqueado = asyncio.Event()

    async def flush(items):
        await bloqueado.wait()
        return list(items)

    committer = GroupCommitter(flush, max_batch=10, max_in_flight=1)
    assert committer.sin_progreso() == 0.0  # idle
    tarea = asyncio.create_task(committer.submit(1))
    await asyncio.sleep(0.2)
    assert committer.sin_progreso() == pytest.approx(0.2)  # waiting, nothing committed
    bloqueado.set()
    await tarea
    assert committer.sin_progreso() == 0.0
