import asyncio

import pytest

from pagos_worker.adapters.postgres.group_commit import GroupCommitter


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
