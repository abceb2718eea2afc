"""Every wait on PostgreSQL has an end: the service's connections carry a statement timeout, a
command timeout and TCP keepalives, and a group-commit flush on a connection that stopped answering
drops it and commits the batch on a new one."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import make_url, text

from pagos_dev.embedded.tcp_proxy import ProxyCongelable
from pagos_worker.adapters.postgres.database import ConnectionLimits, create_engine, prewarm
from pagos_worker.adapters.postgres.repository import PostgresPagoRepository
from pagos_worker.domain import Dinero, Lease, Moneda, Pago

pytestmark = pytest.mark.integration


async def test_las_conexiones_del_servicio_llevan_sus_limites(database_url):
    limites = ConnectionLimits(statement_timeout_s=3, keepalive_idle_s=7)
    engine = create_engine(database_url, pool_size=1, limits=limites)
    try:
        async with engine.connect() as conn:
            valores = {
                nombre: await conn.scalar(text(f"SHOW {nombre}"))
                for nombre in ("statement_timeout", "tcp_keepalives_idle", "idle_in_transaction_session_timeout")
            }
            driver = (await conn.get_raw_connection()).driver_connection
            sock = driver._transport.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
            assert driver._config.command_timeout == limites.command_timeout_s
        assert valores == {
            "statement_timeout": "3s",
            "tcp_keepalives_idle": "7",
            "idle_in_transaction_session_timeout": "1min",
        }
    finally:
        await engine.dispose()


def pago_nuevo() -> Pago:
    ahora = datetime.now(UTC)
    pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="a", importe=Dinero(Decimal("1.00"), Moneda.USD), ahora=ahora)
    pago.iniciar_procesamiento(Lease("w", ahora + timedelta(seconds=30)), ahora)
    return pago


async def test_un_flush_sin_respuesta_suelta_su_conexion_y_se_reintenta(database_url):
    """Connections that stop answering (through a proxy that stops forwarding): the flush gives up
    after its timeout and drops its connection; the pool's idle one, frozen too, is found by a short
    ping, not after the 10 s command timeout; the batch commits on a new connection."""
    destino = make_url(database_url)
    proxy = ProxyCongelable(destino.host or "127.0.0.1", destino.port or 5432)
    await proxy.start()
    engine = create_engine(destino.set(port=proxy.port).render_as_string(hide_password=False), pool_size=2)
    repo = PostgresPagoRepository(engine, max_in_flight=1, flush_timeout=1.0)
    try:
        await prewarm(engine, 2)  # an idle connection in the pool
        assert (await repo.reclamar(pago_nuevo())).reclamado  # the kept connection is open
        assert engine.sync_engine.pool.checkedin() == 1
        assert proxy.congelar() == 2
        inicio = time.monotonic()
        reclamo = await asyncio.wait_for(repo.reclamar(pago_nuevo()), 20)
        tardo = time.monotonic() - inicio
        assert reclamo.reclamado
        # The flush timeout, the ping of the idle one, a new one: about 1.5 s idle. Not the 10 s
        # command timeout on the frozen idle connection (11 s at least); below that, a loaded
        # machine may take what it takes.
        assert 1.0 <= tardo < 10, tardo
    finally:
        await repo.close()
        await engine.dispose()
        await proxy.close()
