"""The API's pool is opened at start-up, not by its first status queries."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from pagos_worker.adapters.postgres.database import create_engine, prewarm
from tests.conftest import free_port

pytestmark = pytest.mark.integration


async def test_abre_todas_las_conexiones_del_pool(database_url):
    engine = create_engine(database_url, pool_size=4, application_name="prueba-precalentar")
    try:
        await prewarm(engine, 4)
        assert engine.sync_engine.pool.checkedin() == 4
        async with engine.connect() as conn:
            backends = await conn.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'prueba-precalentar'")
            )
        assert backends == 4  # four distinct backends, one of them answering this
    finally:
        await engine.dispose()


async def test_sin_base_de_datos_no_detiene_el_arranque():
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nada", pool_size=3)
    try:
        # Refused at once: a warning, no exception, and no hang (within its 2 s timeout idle; the
        # bound is what a loaded machine may take beyond it).
        await asyncio.wait_for(prewarm(engine, 3, timeout=2), 20)
        assert engine.sync_engine.pool.checkedout() == 0
    finally:
        await engine.dispose()
