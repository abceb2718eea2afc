"""The event loop's lag histogram: a loop blocked for a while shows it."""

from __future__ import annotations

import asyncio
import time

from pagos_worker import observability as metrics
from pagos_worker.logs import redact


def _muestras() -> tuple[float, float]:
    """(samples, samples of at most 50 ms) of the lag histogram so far."""
    total = hasta_50 = 0.0
    for metrica in metrics.RETRASO_DEL_BUCLE.collect():
        for m in metrica.samples:
            if m.name.endswith("_count"):
                total = m.value
            if m.name.endswith("_bucket") and m.labels["le"] == "0.05":
                hasta_50 = m.value
    return total, hasta_50


async def test_un_bucle_bloqueado_se_ve_en_el_retraso():
    total_antes, hasta_50_antes = _muestras()
    stop = asyncio.Event()
    tarea = asyncio.create_task(metrics.medir_retraso_del_bucle(stop, intervalo=0.01))
    await asyncio.sleep(0.05)
    time.sleep(0.12)  # the loop is blocked: the sampler's timer fires ~120 ms late
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(tarea, 1)
    total, hasta_50 = _muestras()
    assert total - total_antes >= 3
    # At least one sample above 50 ms: the one that waited out the blocking call.
    assert (total - total_antes) - (hasta_50 - hasta_50_antes) >= 1


def test_redact_oculta_la_clave_de_una_url():
    assert redact("postgresql+asyncpg://pagos:s3cr3t@db:5432/pagos") == "postgresql+asyncpg://pagos:***@db:5432/pagos"
    assert redact("pulsar+ssl://broker:6651") == "pulsar+ssl://broker:6651"
    assert "s3cr3t" not in redact("postgresql://:s3cr3t@db/pagos")
