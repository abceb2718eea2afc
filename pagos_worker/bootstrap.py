"""The composition root: the only place that turns `Settings` into adapters and wires handlers."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web

from pagos_worker.adapters.pasarela_simulada import SimuladaPasarelaDePagos
from pagos_worker.adapters.postgres.database import create_engine, migrate
from pagos_worker.adapters.postgres.outbox import PostgresOutboxStore
from pagos_worker.adapters.postgres.repository import PostgresPagoRepository
from pagos_worker.adapters.postgres.views import PostgresPagoViews
from pagos_worker.adapters.pulsar.client import PulsarConnection
from pagos_worker.adapters.simulacion import Latencia
from pagos_worker.application.handlers import ProcesarPagoHandler
from pagos_worker.application.ports.pasarela import PasarelaDePagos
from pagos_worker.application.queries import ObtenerEstadisticasOutboxHandler, ObtenerEstadoPagoHandler
from pagos_worker.application.relay import OutboxRelay
from pagos_worker.config import Settings
from pagos_worker.embedded.postgres import EmbeddedPostgres
from pagos_worker.embedded.pulsar import EmbeddedPulsar
from pagos_worker.entrypoints.http_api import create_app
from pagos_worker.entrypoints.worker import CommandWorker

ROLES = frozenset({"worker", "relay", "api"})
EMBEDDED_DATABASE = "pagos"


@dataclass
class Servicio:
    """The wired roles of one process; those not asked for are None."""

    settings: Settings
    worker: CommandWorker | None = None
    relay: OutboxRelay | None = None
    api: web.Application | None = None
    embedded: list[str] = field(default_factory=list)


@dataclass
class Embedded:
    """What `embedded_services` started, so that a chaos test can restart it."""

    settings: Settings
    postgres: EmbeddedPostgres | None = None
    pulsar: EmbeddedPulsar | None = None


@asynccontextmanager
async def embedded_services(settings: Settings) -> AsyncIterator[Embedded]:
    """Start an embedded PostgreSQL and/or broker for each URL not configured; stop them on exit."""
    async with AsyncExitStack() as stack:
        database_url, pulsar_url = settings.database_url, settings.pulsar_url
        postgres = pulsar = None
        if database_url is None:
            postgres = EmbeddedPostgres(settings.data_dir / "postgres", port=settings.embedded_postgres_port)
            await postgres.start()
            stack.push_async_callback(postgres.stop)
            await postgres.create_database(EMBEDDED_DATABASE)
            database_url = postgres.url(EMBEDDED_DATABASE)
        if pulsar_url is None:
            pulsar = EmbeddedPulsar(settings.data_dir / "pulsar", port=settings.embedded_pulsar_port)
            await pulsar.start()
            stack.push_async_callback(pulsar.stop)
            pulsar_url = pulsar.url
        yield Embedded(settings.with_urls(database_url=database_url, pulsar_url=pulsar_url), postgres, pulsar)


def build_pasarela(settings: Settings) -> PasarelaDePagos:
    return SimuladaPasarelaDePagos(
        latencia=Latencia.parse(settings.simulada_latency),
        tasa_fallos=settings.simulada_failure_rate,
        concurrencia=settings.pasarela_concurrency,
        semilla=settings.simulada_seed,
    )


def replica_id() -> str:
    """Lease owner: unique per process, readable by operators."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def bootstrap(
    settings: Settings, roles: frozenset[str] = ROLES, *, apply_migrations: bool = False
) -> AsyncIterator[Servicio]:
    if settings.database_url is None or settings.pulsar_url is None:
        raise ValueError("bootstrap needs both URLs: start embedded_services() first")
    unknown = roles - ROLES
    if unknown:
        raise ValueError(f"unknown roles: {', '.join(sorted(unknown))}")
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        stack.push_async_callback(engine.dispose)
        if apply_migrations:
            await migrate(engine, settings.migrations_dir)
        pulsar = PulsarConnection(settings.pulsar_url)
        stack.push_async_callback(pulsar.close)
        servicio = Servicio(settings)
        views = PostgresPagoViews(engine)

        if "worker" in roles:
            handler = ProcesarPagoHandler(
                PostgresPagoRepository(engine, max_batch=settings.db_batch_max),
                build_pasarela(settings),
                owner=replica_id(),
                lease=timedelta(seconds=settings.lease_seconds),
            )
            dlq = await pulsar.publisher(settings.dlq_topic)
            stack.push_async_callback(dlq.close)
            source = await pulsar.command_source(
                settings.commands_topic,
                settings.subscription,
                capacity=settings.worker_concurrency,
                nack_delay_seconds=settings.nack_delay_seconds,
            )
            stack.push_async_callback(source.close)
            servicio.worker = CommandWorker(source, handler, dlq)

        if "relay" in roles:
            outbox = PostgresOutboxStore(engine, settings.database_url)
            stack.push_async_callback(outbox.close)
            events = await pulsar.publisher(settings.events_topic)
            stack.push_async_callback(events.close)
            servicio.relay = OutboxRelay(
                outbox, events, lote=settings.relay_batch, intervalo=settings.relay_poll_seconds
            )

        if "api" in roles:

            async def readiness() -> dict[str, str]:
                return {
                    "postgres": await _check(views.ping()),
                    "pulsar": await _check(pulsar.ping(settings.events_topic)),
                }

            servicio.api = create_app(
                ObtenerEstadoPagoHandler(views), ObtenerEstadisticasOutboxHandler(views), readiness
            )
        yield servicio


async def _check(probe: Coroutine[Any, Any, None]) -> str:
    try:
        await asyncio.wait_for(probe, 3.0)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"error: {type(exc).__name__}"
    return "ok"
