"""A relay-only process (the Kubernetes `pagos-worker-relay` Deployment) with no worker running at all:
it resumes a payment stuck after a worker died and publishes its event. Pausing the workers, or
scaling them to zero, stops intake and nothing else."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pagos_worker.adapters.postgres.database import create_engine
from pagos_worker.adapters.postgres.repository import PostgresPagoRepository
from pagos_worker.bootstrap import bootstrap
from pagos_worker.config import Settings
from pagos_worker.domain import Dinero, EstadoPago, Lease, Moneda, Pago
from tests import pulsar_helpers
from tests.conftest import create_database, envejecer_pago
from tests.fakes import FakePasarelaDePagos

pytestmark = pytest.mark.integration


async def atascar(database_url: str) -> uuid.UUID:
    """A payment a worker claimed ten minutes ago and never finished (it died)."""
    engine = create_engine(database_url, pool_size=1)
    repo = PostgresPagoRepository(engine)
    try:
        ahora = datetime.now(UTC)
        pago = Pago.crear(id_pago=uuid.uuid4(), id_afiliado="afiliado_9", importe=Dinero(Decimal("7.00"), Moneda.USD),
                          ahora=ahora - timedelta(minutes=10))  # fmt: skip
        pago.iniciar_procesamiento(Lease("worker-muerto", ahora - timedelta(minutes=9)), ahora - timedelta(minutes=10))
        await repo.reclamar(pago)
        await envejecer_pago(engine, pago.id_pago, timedelta(minutes=10))
        return pago.id_pago
    finally:
        await repo.close()
        await engine.dispose()


async def test_sin_workers_el_relay_recupera_y_publica(postgres_server, pulsar_url, topics):
    settings = Settings(
        _env_file=None,
        database_url=await create_database(postgres_server),
        pulsar_url=pulsar_url,
        commands_topic=topics.commands,
        events_topic=topics.events,
        dlq_topic=topics.dlq,
        db_pool_size=2,
        reconcile_grace_seconds=60,
        reconcile_interval_seconds=0.5,
    )
    id_pago = await atascar(settings.database_url or "")
    observer = pulsar_helpers.client(pulsar_url)
    pasarela = FakePasarelaDePagos()
    try:
        eventos = pulsar_helpers.subscribe(observer, topics.events)
        async with bootstrap(settings, frozenset({"relay"}), pasarela=pasarela) as servicio:
            assert servicio.consumo is None, "no worker: nothing takes commands"
            assert servicio.reconciliador is not None
            assert servicio.relay is not None
            stop = asyncio.Event()
            tareas = [asyncio.create_task(r.run(stop)) for r in (servicio.reconciliador, servicio.relay)]
            try:
                [evento] = await asyncio.to_thread(pulsar_helpers.receive, eventos, 1, 20)
            finally:
                stop.set()
                await asyncio.gather(*tareas)
        cuerpo = json.loads(evento.data())
        assert (cuerpo["data"]["id_pago"], cuerpo["event_type"]) == (str(id_pago), "PagoExitoso")
        assert pasarela.llamadas == [id_pago]
    finally:
        observer.close()
    engine = create_engine(settings.database_url or "", pool_size=1)
    try:
        assert (await PostgresPagoRepository(engine).obtener(id_pago)).estado is EstadoPago.EXITOSO
    finally:
        await engine.dispose()
