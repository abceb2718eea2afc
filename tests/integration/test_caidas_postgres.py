"""PostgreSQL's real errors, classified: what an outage raises (a read-only failover, a statement or
lock timeout, a terminated backend, a full pool) is transient; what a statement of its own raises (a
constraint, a division by zero, bad SQL) is not."""

from __future__ import annotations

import time

import asyncpg
import pytest
from sqlalchemy import text

from pagos_worker.adapters.postgres.database import ConnectionLimits, asyncpg_dsn, create_engine
from pagos_worker.adapters.postgres.driver import connection_lost
from pagos_worker.adapters.postgres.retry import is_transient
from tests.conftest import create_database

pytestmark = pytest.mark.integration


async def error_de(engine, *sentencias: str) -> BaseException:
    """The exception the last statement raises, run after the others on one connection."""
    async with engine.connect() as conn:
        for sentencia in sentencias[:-1]:
            await conn.execute(text(sentencia))
        with pytest.raises(Exception) as info:
            await conn.execute(text(sentencias[-1]))
    return info.value


@pytest.fixture
async def url(postgres_server):
    return await create_database(postgres_server)


async def test_los_errores_de_una_caida_son_transitorios(url):
    limites = ConnectionLimits(statement_timeout_s=0.2, command_timeout_s=5, pool_timeout_s=0.2)
    engine = create_engine(url, pool_size=1, limits=limites)
    try:
        solo_lectura = await error_de(engine, "SET TRANSACTION READ ONLY", "CREATE TABLE t (x int)")
        assert getattr(solo_lectura.orig, "sqlstate", None) == "25006"
        cancelado = await error_de(engine, "SELECT pg_sleep(1)")
        assert getattr(cancelado.orig, "sqlstate", None) == "57014"
        # Another connection holds the table: a lock not available in time.
        async with engine.connect() as bloqueo:
            await bloqueo.execute(text("LOCK TABLE pagos IN ACCESS EXCLUSIVE MODE"))
            sin_lock = await error_de(engine, "SET lock_timeout = '50ms'", "SELECT count(*) FROM pagos")
            # And the pool (1 + 1 overflow) is now empty: waiting for a connection times out.
            async with engine.connect():
                inicio = time.monotonic()
                with pytest.raises(Exception) as pool:
                    async with engine.connect():
                        pass
                # The pool's 0.2 s, not SQLAlchemy's default 30 s; 10 s leaves a loaded machine room.
                assert time.monotonic() - inicio < 10
        assert getattr(sin_lock.orig, "sqlstate", None) == "55P03"
        terminado = await error_de(engine, "SELECT pg_terminate_backend(pg_backend_pid())")  # it ends itself
        for exc in (solo_lectura, cancelado, sin_lock, pool.value, terminado):
            assert is_transient(exc), repr(exc)
    finally:
        await engine.dispose()


async def test_los_errores_de_la_sentencia_no_son_transitorios(url):
    engine = create_engine(url, pool_size=1)
    try:
        errores = [
            await error_de(engine, "SELECT 1 / 0"),
            await error_de(engine, "SELEC 1"),
            await error_de(
                engine,
                "INSERT INTO pagos (id_pago, id_afiliado, monto, moneda, estado, fecha_creacion) "
                "VALUES (gen_random_uuid(), 'a', -1, 'USD', 'PENDIENTE', now())",
            ),
            await error_de(engine, "SELECT repeat('x', 200)::varchar(3)::text, 'x'::uuid"),
        ]
        assert [getattr(e.orig, "sqlstate", None) for e in errores] == ["22012", "42601", "23514", "22P02"]
        assert not any(is_transient(e) for e in errores)
    finally:
        await engine.dispose()


async def test_el_driver_crudo_tambien(url):
    """The hot path's statements run on asyncpg itself: its errors are classified alike, and a
    read-only session is a connection not to be used again (it would stay read-only)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("SET default_transaction_read_only = on")
        with pytest.raises(asyncpg.PostgresError) as solo_lectura:
            await conn.execute("CREATE TABLE t (x int)")
        await conn.execute("SET statement_timeout = '100ms'")
        with pytest.raises(asyncpg.PostgresError) as cancelado:
            await conn.execute("SELECT pg_sleep(1)")
        with pytest.raises(asyncpg.PostgresError) as division:
            await conn.execute("SELECT 1 / 0")
    finally:
        await conn.close()
    assert is_transient(solo_lectura.value)
    assert connection_lost(solo_lectura.value)
    assert is_transient(cancelado.value)
    assert not connection_lost(cancelado.value)  # cancelled cleanly: the connection is fine
    assert not is_transient(division.value)
