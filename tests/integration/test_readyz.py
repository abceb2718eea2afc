"""/readyz tells a replica whose database connections stopped answering: a ping on a fresh
connection may still pass, but while claims or results wait with none committed it is not ready;
once the flush gives up on the frozen connection and commits on a new one, it is ready again.
And it asks what each role needs: a broker outage leaves the API ready (operators read the
outbox's figures then), and takes the worker out."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import make_url

from pagos_dev.embedded.pulsar import EmbeddedPulsar
from pagos_dev.embedded.tcp_proxy import ProxyCongelable
from pagos_worker.application.commands import ProcesarPago
from pagos_worker.bootstrap import Servicio, bootstrap
from pagos_worker.config import Settings
from pagos_worker.domain import Dinero, Moneda
from pagos_worker.entrypoints.http_api import create_operations_app
from tests.conftest import create_database, free_port
from tests.fakes import FakePasarelaDePagos

pytestmark = pytest.mark.integration


def comando() -> ProcesarPago:
    return ProcesarPago(uuid.uuid4(), "a", Dinero(Decimal("2.00"), Moneda.USD))


async def test_readyz_no_esta_listo_mientras_los_commits_no_avanzan(postgres_server, pulsar_url, topics):
    destino = make_url(await create_database(postgres_server))
    proxy = ProxyCongelable(destino.host or "127.0.0.1", destino.port or 5432)
    await proxy.start()
    settings = Settings(
        database_url=destino.set(port=proxy.port).render_as_string(hide_password=False),
        pulsar_url=pulsar_url,
        commands_topic=topics.commands,
        events_topic=topics.events,
        dlq_topic=topics.dlq,
        db_pool_size=2,
        db_flush_timeout_seconds=4,
        db_command_timeout_seconds=3,
        readiness_stall_seconds=1,
    )
    try:
        async with bootstrap(settings, frozenset({"worker", "api"}), pasarela=FakePasarelaDePagos()) as servicio:
            assert servicio.consumo is not None
            assert servicio.consultas is not None
            procesar, readiness = servicio.consumo.procesar, servicio.readiness
            assert (await procesar(comando())).estado == "EXITOSO"  # the kept connections are open
            assert (await readiness())["commits"] == "ok"
            proxy.congelar()
            pendiente = asyncio.create_task(procesar(comando()))
            await asyncio.sleep(1.5)
            assert (await readiness())["commits"].startswith("error: pagos esperando")
            assert (await asyncio.wait_for(pendiente, 15)).estado == "EXITOSO"  # on a new connection
            assert (await readiness())["commits"] == "ok"
    finally:
        await proxy.close()


async def readyz(servicio: Servicio) -> tuple[int, dict[str, str]]:
    """GET /readyz as the kubelet asks it: its status and the checks it reports."""
    async with TestClient(TestServer(create_operations_app(servicio.readiness))) as http:
        respuesta = await http.get("/readyz")
        return respuesta.status, (await respuesta.json())["checks"]


async def test_sin_broker_la_api_sigue_lista_y_el_worker_no(postgres_server, topics, tmp_path):
    broker = EmbeddedPulsar(tmp_path / "pulsar", port=free_port())  # this test's own: it is stopped
    await broker.start()
    settings = Settings(
        _env_file=None,
        database_url=await create_database(postgres_server),
        pulsar_url=broker.url,
        commands_topic=topics.commands,
        events_topic=topics.events,
        dlq_topic=topics.dlq,
        db_pool_size=2,
    )
    try:
        async with (
            bootstrap(settings, frozenset({"api"})) as api,
            bootstrap(settings, frozenset({"worker"}), pasarela=FakePasarelaDePagos()) as worker,
        ):
            assert await readyz(api) == (200, {"postgres": "ok"})  # the API never asks the broker
            assert await readyz(worker) == (200, {"postgres": "ok", "pulsar": "ok", "commits": "ok"})
            await broker.stop()
            assert await readyz(api) == (200, {"postgres": "ok"})
            status, checks = await readyz(worker)
            assert status == 503
            assert checks["pulsar"].startswith("error: ")
            assert checks["postgres"] == "ok"
    finally:
        await broker.close()
