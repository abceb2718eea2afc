"""Outages never dead-letter a well-formed command: PostgreSQL turned read-only (what a failover to a
standby looks like: `default_transaction_read_only` for the database and every backend terminated)
while commands flow through the broker, with a poison limit of 2. Every command is paid once the
database is writable again; nothing reaches the DLQ and no failure is counted."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy import make_url

from pagos_worker.adapters.postgres.database import ConnectionLimits, asyncpg_dsn, create_engine
from pagos_worker.adapters.postgres.fallos import PostgresFailureLog
from pagos_worker.adapters.postgres.repository import PostgresPagoRepository
from pagos_worker.adapters.pulsar.client import PulsarConnection
from pagos_worker.application.handlers import ProcesarPagoHandler
from pagos_worker.bootstrap import es_transitorio
from pagos_worker.entrypoints.worker import CommandWorker
from tests import pulsar_helpers
from tests.conftest import create_database
from tests.fakes import FakePasarelaDePagos

pytestmark = pytest.mark.integration


async def solo_lectura(server_url: str, database: str, activar: bool) -> None:
    """Failover, as the database's clients see it: every session ends, and the new ones cannot write
    (on) — or the primary is back (off; sessions begun read-only stay so until they end)."""
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(
            f'ALTER DATABASE "{database}" SET default_transaction_read_only = {"on" if activar else "off"}'
        )
        if activar:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
    finally:
        await conn.close()


async def test_postgres_de_solo_lectura_no_lleva_ningun_comando_a_la_dlq(postgres_server, pulsar_url, topics):
    url = await create_database(postgres_server)
    database = make_url(url).database
    engine = create_engine(url, pool_size=4, limits=ConnectionLimits(statement_timeout_s=2, command_timeout_s=4))
    repo = PostgresPagoRepository(engine, max_in_flight=1, flush_timeout=3)
    handler = ProcesarPagoHandler(repo, FakePasarelaDePagos(), owner="w1", lease=timedelta(seconds=2))
    observer = pulsar_helpers.client(pulsar_url)
    dlq_consumer = pulsar_helpers.subscribe(observer, topics.dlq)
    producer = observer.create_producer(topics.commands, batching_enabled=False)
    conn = PulsarConnection(pulsar_url)
    source = await conn.command_source(topics.commands, "pagos-worker", capacity=20, nack_delay_seconds=0.2)
    dlq = await conn.publisher(topics.dlq)
    worker = CommandWorker(
        source, handler, dlq, es_transitorio=es_transitorio, fallos=PostgresFailureLog(engine),
        max_intentos=2, espera_maxima=1.0,
    )  # fmt: skip
    stop = asyncio.Event()
    tarea = asyncio.create_task(worker.run(stop, drain_timeout=5))
    ids = [uuid.uuid4() for _ in range(150)]

    def publicar() -> None:  # 150 commands over about 10 s
        for id_pago in ids:
            cmd = {"id_pago": str(id_pago), "id_afiliado": "a", "monto": "3.00", "moneda": "COP"}
            producer.send_async(json.dumps(cmd).encode(), None, partition_key=str(id_pago))
            time.sleep(0.065)
        producer.flush()

    try:
        envio = asyncio.create_task(asyncio.to_thread(publicar))
        await asyncio.sleep(2)
        await solo_lectura(postgres_server, database, activar=True)
        await asyncio.sleep(10)  # longer than a flush retries on its own (~8 s): commands are put back
        await solo_lectura(postgres_server, database, activar=False)
        await envio
        admin = await asyncpg.connect(asyncpg_dsn(url))
        try:
            for _ in range(120):
                finales = await admin.fetchval(
                    "SELECT count(*) FROM pagos WHERE estado IN ('EXITOSO', 'FALLIDO') AND id_pago = ANY($1::uuid[])",
                    ids,
                )
                if finales == len(ids):
                    break
                await asyncio.sleep(0.5)
            contados = await admin.fetchval("SELECT count(*) FROM comandos_fallidos")
        finally:
            await admin.close()
        assert finales == len(ids)
        assert contados == 0  # an outage is never a failure of the command's own
        assert await asyncio.to_thread(pulsar_helpers.receive, dlq_consumer, 1, 2) == []
    finally:
        stop.set()
        await tarea
        for closable in (source, dlq, conn):
            await closable.close()
        observer.close()
        await repo.close()
        await engine.dispose()
