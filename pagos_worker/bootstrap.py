"""The composition root: the only place that turns `Settings` into adapters and wires handlers."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web

from pagos_worker import observability as metrics
from pagos_worker.adapters.pasarela_simulada import SimuladaPasarelaDePagos
from pagos_worker.adapters.postgres.database import create_engine, migrate, precalentar
from pagos_worker.adapters.postgres.outbox import PostgresOutboxStore
from pagos_worker.adapters.postgres.repository import PostgresPagoRepository
from pagos_worker.adapters.postgres.views import PostgresPagoViews
from pagos_worker.adapters.pulsar.client import PulsarConnection
from pagos_worker.adapters.simulacion import Latencia
from pagos_worker.adapters.stripe.adapter import Destinos, StripeConfig, StripePasarelaDePagos
from pagos_worker.application.handlers import ProcesarPagoHandler
from pagos_worker.application.ports.pasarela import PasarelaDePagos
from pagos_worker.application.queries import (
    ListarPagosQueRequierenAtencionHandler,
    ObtenerEstadisticasOutboxHandler,
    ObtenerEstadoPagoHandler,
)
from pagos_worker.application.reconciliador import Reconciliador
from pagos_worker.application.relay import OutboxRelay, PublicacionInmediata
from pagos_worker.config import Settings
from pagos_worker.domain.pago import PoliticaAtencion
from pagos_worker.embedded.postgres import EmbeddedPostgres
from pagos_worker.embedded.pulsar import EmbeddedPulsar
from pagos_worker.embedded.simulador import EmbeddedSimulador
from pagos_worker.entrypoints.http_api import create_app
from pagos_worker.entrypoints.worker import CommandWorker

ROLES = frozenset({"worker", "relay", "api"})
EMBEDDED_DATABASE = "pagos"


@dataclass
class Servicio:
    """The wired roles of one process; those not asked for are None."""

    settings: Settings
    worker: CommandWorker | None = None
    reconciliador: Reconciliador | None = None
    relay: OutboxRelay | None = None
    publicacion: PublicacionInmediata | None = None
    api: web.Application | None = None
    # Background loops that only report (metrics): run until stop, never hold up a shutdown.
    segundo_plano: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = field(default_factory=list)
    embedded: list[str] = field(default_factory=list)


@dataclass
class Embedded:
    """What `embedded_services` started, so that a chaos test can restart it."""

    settings: Settings
    postgres: EmbeddedPostgres | None = None
    pulsar: EmbeddedPulsar | None = None
    simulador: EmbeddedSimulador | None = None


@asynccontextmanager
async def embedded_services(settings: Settings, *, graceful_proxy: bool = False) -> AsyncIterator[Embedded]:
    """Start an embedded PostgreSQL, broker and Stripe simulator for each URL not configured; stop
    them on exit."""
    async with AsyncExitStack() as stack:
        database_url, pulsar_url, stripe_api_base = settings.database_url, settings.pulsar_url, settings.stripe_api_base
        postgres = pulsar = simulador = None
        if database_url is None:
            postgres = EmbeddedPostgres(settings.data_dir / "postgres", port=settings.embedded_postgres_port)
            await postgres.start()
            stack.push_async_callback(postgres.stop)
            await postgres.create_database(EMBEDDED_DATABASE)
            database_url = postgres.url(EMBEDDED_DATABASE)
        if pulsar_url is None:
            pulsar = EmbeddedPulsar(
                settings.data_dir / "pulsar", port=settings.embedded_pulsar_port, graceful_proxy=graceful_proxy
            )
            await pulsar.start()
            stack.push_async_callback(pulsar.close)
            pulsar_url = pulsar.url
        if stripe_api_base is None and settings.pasarela == "stripe":
            simulador = EmbeddedSimulador(
                settings.data_dir / "simulador", host=settings.simulador_host, port=settings.simulador_port
            )
            await simulador.start()
            stack.push_async_callback(simulador.stop)
            stripe_api_base = simulador.url
        urls = {"database_url": database_url, "pulsar_url": pulsar_url}
        if stripe_api_base is not None:
            urls["stripe_api_base"] = stripe_api_base
        yield Embedded(settings.with_urls(**urls), postgres, pulsar, simulador)


async def build_pasarela(settings: Settings, stack: AsyncExitStack) -> PasarelaDePagos:
    if settings.pasarela == "simulada":
        return SimuladaPasarelaDePagos(
            latencia=Latencia.parse(settings.simulada_latency),
            tasa_fallos=settings.simulada_failure_rate,
            concurrencia=settings.pasarela_concurrency,
            semilla=settings.simulada_seed,
        )
    if settings.stripe_api_base is None:
        raise ValueError("PAGOS_STRIPE_API_BASE is needed (or start embedded_services() first)")
    config = StripeConfig(
        api_base=settings.stripe_api_base,
        secret_key=settings.stripe_secret_key,
        timeout_s=settings.stripe_timeout_seconds,
        max_intentos=settings.stripe_max_attempts,
        concurrencia=settings.pasarela_concurrency,
        rate=settings.stripe_rate_limit,
        burst=settings.stripe_rate_burst,
        breaker_umbral=settings.stripe_breaker_failures,
        breaker_abierto_s=settings.stripe_breaker_open_seconds,
    )
    destinos = Destinos.desde_archivo(settings.stripe_destinations_file, settings.stripe_destination_template)
    return await stack.enter_async_context(StripePasarelaDePagos(config, destinos))


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
        servicio = Servicio(settings, segundo_plano=[metrics.medir_retraso_del_bucle])
        views = PostgresPagoViews(engine)

        owner = replica_id()
        gracia = timedelta(seconds=settings.relay_grace_seconds)
        outbox = events = None
        if "relay" in roles:
            outbox = PostgresOutboxStore(engine, settings.database_url)
            stack.push_async_callback(outbox.close)
            # A send the broker has not confirmed fails before the relays may take its event over.
            envio_s = max(0.5, settings.relay_grace_seconds / 4)
            events = await pulsar.publisher(
                settings.events_topic, batching=settings.events_batching, send_timeout_seconds=envio_s
            )
            stack.push_async_callback(events.close)
            if "worker" in roles:
                # This process publishes the events it commits itself, at once (the relay backs it up),
                # and keeps trying through a short broker outage: the last attempt starts before half
                # the grace period and gives up a quarter later, well before a relay may take over.
                servicio.publicacion = PublicacionInmediata(
                    outbox, events, reintentar_durante=timedelta(seconds=settings.relay_grace_seconds / 2)
                )

        if "worker" in roles:
            pasarela = await build_pasarela(settings, stack)
            repository = PostgresPagoRepository(
                engine,
                max_batch=settings.db_batch_max,
                max_in_flight=settings.db_flushes_in_flight,
                linger=settings.db_flush_linger_ms / 1000,
                publicador=owner if servicio.publicacion else None,
                al_confirmar=servicio.publicacion.encolar if servicio.publicacion else None,
            )
            stack.push_async_callback(repository.close)
            handler = ProcesarPagoHandler(
                repository,
                pasarela,
                owner=owner,
                lease=timedelta(seconds=settings.lease_seconds),
                atencion=PoliticaAtencion(
                    settings.attention_after_attempts, timedelta(seconds=settings.attention_after_seconds)
                ),
            )
            # While the gateway's circuit is open, in-flight slots wait and intake pauses.
            gate = pasarela.esperar_disponible if isinstance(pasarela, StripePasarelaDePagos) else None
            # A confirmation per dead letter: one the client refuses at once (too big) must not pass unseen.
            dlq = await pulsar.publisher(settings.dlq_topic, por_lote=False)
            stack.push_async_callback(dlq.close)
            source = await pulsar.command_source(
                settings.commands_topic,
                settings.subscription,
                capacity=settings.worker_concurrency,
                nack_delay_seconds=settings.nack_delay_seconds,
                consumer_id_offset=settings.pulsar_consumer_id_offset,
            )
            stack.push_async_callback(source.close)
            servicio.worker = CommandWorker(source, handler, dlq, gate=gate, max_intentos=settings.poison_max_attempts)
            servicio.reconciliador = Reconciliador(
                repository,
                handler,
                gracia=timedelta(seconds=settings.reconcile_grace_seconds),
                intervalo=settings.reconcile_interval_seconds,
                gate=gate,
            )

        if outbox is not None and events is not None:
            servicio.relay = OutboxRelay(
                outbox,
                events,
                lote=settings.relay_batch,
                intervalo=settings.relay_poll_seconds,
                retencion=timedelta(seconds=settings.outbox_retention_seconds),
                limpieza_cada=settings.outbox_cleanup_interval_seconds,
                agrupar=settings.relay_coalesce_ms / 1000,
                gracia=gracia,
                propio=owner if servicio.publicacion else None,
            )
            servicio.segundo_plano.append(functools.partial(metrics.muestrear, outbox.pendientes))

        if "api" in roles:
            # The pool's connections opened now, not by the first status queries: each new one
            # costs ~50 ms (a backend, the driver's type set-up), and a burst of first queries
            # paid it one after another (the read benchmark's first ones took up to 100-200 ms).
            await precalentar(engine, settings.db_pool_size)

            async def readiness() -> dict[str, str]:
                return {
                    "postgres": await _check(views.ping()),
                    "pulsar": await _check(pulsar.ping(settings.events_topic)),
                }

            servicio.api = create_app(
                ObtenerEstadoPagoHandler(views),
                ObtenerEstadisticasOutboxHandler(views),
                ListarPagosQueRequierenAtencionHandler(views),
                readiness,
            )
        yield servicio


async def _check(probe: Coroutine[Any, Any, None]) -> str:
    try:
        await asyncio.wait_for(probe, 3.0)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"error: {type(exc).__name__}"
    return "ok"
