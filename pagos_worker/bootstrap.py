"""The composition root: the only place that turns `Settings` into adapters and wires handlers.

Wiring only: it starts nothing that the settings do not name (no embedded server, no simulator),
and it knows no entry point: it hands the wired application to them (`Servicio`), and they run it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker import observability as metrics
from pagos_worker.adapters.postgres import retry as postgres_retry
from pagos_worker.adapters.postgres.conciliacion import PostgresRegistroDeConciliaciones
from pagos_worker.adapters.postgres.database import (
    MIGRATION_APPLICATION_NAME,
    ConnectionLimits,
    EsquemaDesfasadoError,
    MigrationLimits,
    comprobar_esquema,
    create_engine,
    migrate,
    prewarm,
)
from pagos_worker.adapters.postgres.database import (
    MigracionAbandonadaError as MigracionAbandonadaError,  # noqa: PLC0414 - re-exported: the CLI reports it
)
from pagos_worker.adapters.postgres.database import (
    MigracionInvalidaError as MigracionInvalidaError,  # noqa: PLC0414 - re-exported: the CLI reports it
)
from pagos_worker.adapters.postgres.diferencias import PostgresDiferenciaRepository
from pagos_worker.adapters.postgres.fallos import PostgresFailureLog
from pagos_worker.adapters.postgres.operador import PostgresOperadorRepository
from pagos_worker.adapters.postgres.outbox import PostgresOutboxStore
from pagos_worker.adapters.postgres.presupuesto import PostgresReservaDeTurnos
from pagos_worker.adapters.postgres.reenvios import PostgresRedriveLog
from pagos_worker.adapters.postgres.repository import PostgresPagoRepository
from pagos_worker.adapters.postgres.reversos import PostgresReversoRepository
from pagos_worker.adapters.postgres.tables import ESQUEMA
from pagos_worker.adapters.postgres.views import PostgresPagoViews
from pagos_worker.adapters.pulsar import publisher as pulsar_publisher
from pagos_worker.adapters.pulsar.client import PulsarConnection, PulsarSecurity, registro_silencioso
from pagos_worker.adapters.pulsar.operador import PulsarCommandPublisher
from pagos_worker.adapters.stripe.adapter import Destinos, StripeConfig, StripePasarelaDePagos
from pagos_worker.adapters.stripe.config import StripeConfigError, es_clave_de_prueba
from pagos_worker.adapters.stripe.libro import StripeLibroDeLaPasarela
from pagos_worker.adapters.stripe.presupuesto import PresupuestoDeCuenta
from pagos_worker.application.conciliacion import ConciliarHandler, ResultadoConciliacion
from pagos_worker.application.conciliacion_programada import ConciliacionProgramada
from pagos_worker.application.despacho import Despacho
from pagos_worker.application.diferencias import ResolverDiferenciaHandler
from pagos_worker.application.dlq import ListarCartasMuertasHandler, ReenviarCartasMuertasHandler
from pagos_worker.application.eventos import LeerEventosHandler
from pagos_worker.application.handlers import ProcesarPagoHandler
from pagos_worker.application.operador import ReanudarPagoHandler, ResolverPagoHandler
from pagos_worker.application.pedir_reverso import PedirReversoHandler
from pagos_worker.application.ports.command_source import Clasificador, CommandSource
from pagos_worker.application.ports.fallos import FailureLog
from pagos_worker.application.ports.outbox import EventPublisher
from pagos_worker.application.ports.pasarela import PasarelaDePagos
from pagos_worker.application.ports.tracing import Tracer
from pagos_worker.application.queries import (
    ListarPagosQueRequierenAtencionHandler,
    ObtenerEstadisticasOutboxHandler,
    ObtenerEstadoPagoHandler,
)
from pagos_worker.application.reconciliador import Reconciliador
from pagos_worker.application.relay import ImmediatePublisher, OutboxRelay
from pagos_worker.application.reversos import ReversarPagoHandler
from pagos_worker.config import ConfiguracionInvalidaError, Settings
from pagos_worker.domain.conciliacion import DIFERENCIAS
from pagos_worker.domain.pago import PoliticaAtencion
from pagos_worker.logs import redact

if TYPE_CHECKING:  # the SDK itself is imported only where tracing is on (`trazado`)
    from opentelemetry.sdk.trace.export import SpanExporter

log = structlog.get_logger(__name__)

ROLES = frozenset({"worker", "relay", "api"})
CON_BROKER = frozenset({"worker", "relay"})  # the roles that talk to Pulsar; the API reads PostgreSQL alone
# The roles that recover payments (the reconciler, the scheduled reconciliation), and so hold a
# gateway: the worker, and the relay, so that a relay-only process keeps recovery going while the
# workers are paused or scaled to zero.
RECUPERAN = frozenset({"worker", "relay"})

# Each check of /readyz gives up after this long and reports an error: the probes' own timeouts are
# longer (deploy/kubernetes, a test compares them), so a slow dependency reads as "not ready" with
# its reason, never as a probe that timed out.
CHEQUEO_LISTO_S = 3.0


@dataclass(frozen=True)
class Consumo:
    """What the command consumer (the worker role's transport) is made of."""

    source: CommandSource
    procesar: Despacho
    dlq: EventPublisher
    es_transitorio: Clasificador
    fallos: FailureLog
    gate: Callable[[], Coroutine[Any, Any, None]]
    max_intentos: int
    espera_maxima: float  # the hold of a command that met an outage, at most


Readiness = Callable[[], Coroutine[Any, Any, dict[str, str]]]


@dataclass(frozen=True)
class Consultas:
    """What the HTTP API answers from."""

    estado: ObtenerEstadoPagoHandler
    estadisticas: ObtenerEstadisticasOutboxHandler
    atencion: ListarPagosQueRequierenAtencionHandler


@dataclass
class Servicio:
    """The wired roles of one process; those not asked for are None."""

    settings: Settings
    readiness: Readiness  # every process answers /healthz, /readyz and /metrics, whatever its roles
    consumo: Consumo | None = None
    reconciliador: Reconciliador | None = None
    relay: OutboxRelay | None = None
    publicacion: ImmediatePublisher | None = None
    consultas: Consultas | None = None
    # Seconds the worker's claims or results have waited with none committed (see /readyz).
    sin_commit: Callable[[], float] | None = None
    # Set when the shutdown begins (event-loop time): every close is given up on by then.
    cerrar_antes_de: float | None = None
    # Background loops that only report (metrics): run until stop, never hold up a shutdown.
    segundo_plano: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = field(default_factory=list)

    def cerrar(self, stack: AsyncExitStack, close: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Close with the stack, bounded: a connection that stopped answering must not hold the
        process (at most `CIERRE_SIN_PLAZO_S` each outside a shutdown)."""

        async def acotado() -> None:
            hasta = self.cerrar_antes_de
            plazo = CIERRE_SIN_PLAZO_S if hasta is None else max(0.1, hasta - asyncio.get_running_loop().time())
            try:
                await asyncio.wait_for(close(), plazo)
            except Exception as exc:  # noqa: BLE001 - closing anyway: the process is ending
                log.warning("cierre.incompleto", recurso=getattr(close, "__qualname__", "?"), error=repr(exc))

        stack.push_async_callback(acotado)


CIERRE_SIN_PLAZO_S = 5.0


def es_transitorio(exc: BaseException) -> bool:
    """An outage of what the worker stands on (PostgreSQL, the broker): it heals, so a command that
    met one is put back as often as needed, never counted as poison."""
    return postgres_retry.is_transient(exc) or pulsar_publisher.is_transient(exc)


async def build_pasarela(
    settings: Settings, stack: AsyncExitStack, engine: AsyncEngine, preparada: _StripePreparada | None = None
) -> PasarelaDePagos:
    return await _stripe(settings, stack, engine, preparada)


_StripePreparada = tuple[StripeConfig, Destinos]


def _stripe_preparada(settings: Settings) -> _StripePreparada:
    """The Stripe adapter's settings, read and checked without connecting to anything: a setting
    that cannot work (a wrong key) is named before the start touches PostgreSQL or the broker."""
    if settings.stripe_api_base is None or settings.stripe_secret_key is None:
        raise ConfiguracionInvalidaError("missing settings: PAGOS_STRIPE_API_BASE, PAGOS_STRIPE_SECRET_KEY")
    try:
        config = StripeConfig(
            api_base=settings.stripe_api_base,
            secret_key=settings.stripe_secret_key,
            timeout_s=settings.stripe_timeout_seconds,
            connect_timeout_s=settings.stripe_connect_timeout_seconds,
            read_timeout_s=settings.stripe_read_timeout_seconds,
            ca_bundle=settings.stripe_ca_bundle,
            max_intentos=settings.stripe_max_attempts,
            concurrencia=settings.pasarela_concurrency,
            rate=settings.stripe_rate_limit,
            burst=settings.stripe_rate_burst,
            breaker_umbral=settings.stripe_breaker_failures,
            breaker_abierto_s=settings.stripe_breaker_open_seconds,
        )
        plantilla = settings.stripe_destination_template
        if plantilla and not es_clave_de_prueba(settings.stripe_secret_key):
            raise ConfiguracionInvalidaError(
                "PAGOS_STRIPE_DESTINATION_TEMPLATE is for test mode only: with a live key, map each affiliate "
                "to its connected account in PAGOS_STRIPE_DESTINATIONS_FILE"
            )
        return config.validated(), Destinos.desde_archivo(settings.stripe_destinations_file, plantilla)
    except StripeConfigError as exc:
        raise ConfiguracionInvalidaError(str(exc)) from None


async def _stripe(
    settings: Settings, stack: AsyncExitStack, engine: AsyncEngine, preparada: _StripePreparada | None = None
) -> StripePasarelaDePagos:
    config, destinos = preparada or _stripe_preparada(settings)
    try:
        pasarela = await stack.enter_async_context(
            StripePasarelaDePagos(config, destinos, presupuesto_de_cuenta(settings, engine))
        )
        await pasarela.comprobar_acceso()
    except StripeConfigError as exc:
        raise ConfiguracionInvalidaError(str(exc)) from None
    return pasarela


def presupuesto_de_cuenta(settings: Settings, engine: AsyncEngine) -> PresupuestoDeCuenta:
    """The Stripe account's request budget, one for every replica on this database: live and test
    keys are separate accounts at Stripe, with budgets of their own."""
    assert settings.stripe_secret_key is not None  # noqa: S101 - build_pasarela checked it
    modo = "test" if es_clave_de_prueba(settings.stripe_secret_key) else "live"
    presupuesto = PresupuestoDeCuenta(
        PostgresReservaDeTurnos(engine, f"stripe:{modo}"), settings.stripe_rate_limit, settings.stripe_rate_burst
    )
    metrics.PRESUPUESTO_USO.set_function(presupuesto.uso)
    return presupuesto


# Stretches of a window read side by side: enough to keep a 20 requests/s share busy when Stripe
# takes a few hundred ms a page (one reader alone made 4.8/s there; the bench's measure).
TRAMOS_DE_CONCILIACION = 8


def conciliar_handler(settings: Settings, pasarela: StripePasarelaDePagos) -> ConciliarHandler:
    """The reconciliation on the service's PostgreSQL and the Stripe adapter's session and budget,
    within its share of the account's rate."""
    assert settings.database_url is not None  # noqa: S101 - every caller checked it
    libro = StripeLibroDeLaPasarela(
        pasarela,
        cuota_por_s=settings.conciliacion_budget_share * settings.stripe_rate_limit,
        espera_maxima_s=settings.conciliacion_max_wait_seconds,
        tramos=TRAMOS_DE_CONCILIACION,
    )
    registro = PostgresRegistroDeConciliaciones(settings.database_url, connection_limits(settings), pasarela.destinos)
    return ConciliarHandler(registro, libro, margen=timedelta(seconds=settings.settle_margin_seconds))


def _medir_conciliacion(r: ResultadoConciliacion) -> None:
    metrics.conciliacion_completa({c.value: r.conteos.get(c, 0) for c in DIFERENCIAS}, time.time())


def politica_de_atencion(settings: Settings) -> PoliticaAtencion:
    return PoliticaAtencion(
        max_intentos=settings.attention_after_attempts,
        max_antiguedad=timedelta(seconds=settings.attention_after_seconds),
        vida_clave=timedelta(seconds=settings.idempotency_key_max_age_seconds),
        margen_asentamiento=timedelta(seconds=settings.settle_margin_seconds),
    )


def pulsar_security(settings: Settings) -> PulsarSecurity:
    return PulsarSecurity(
        token=settings.pulsar_token,
        token_file=settings.pulsar_token_file,
        tls_trust_certs_file=settings.pulsar_tls_trust_certs_file,
        tls_validate_hostname=settings.pulsar_tls_validate_hostname,
    )


def connection_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        statement_timeout_s=settings.db_statement_timeout_seconds,
        command_timeout_s=settings.db_command_timeout_seconds,
        connect_timeout_s=settings.db_connect_timeout_seconds,
        pool_timeout_s=settings.db_pool_timeout_seconds,
        keepalive_idle_s=settings.db_keepalive_seconds,
    )


async def _esquema_al_dia(engine: AsyncEngine) -> None:
    """Start only on the schema this release was written for, or a later one: a release started
    before its migration would fail on its first statement, and dead-letter what it could not write.
    Brief outages (a failover at start) are waited out."""
    try:
        revision = await postgres_retry.retry_transient(lambda: comprobar_esquema(engine, ESQUEMA))
    except EsquemaDesfasadoError as exc:
        raise ConfiguracionInvalidaError(str(exc)) from None
    except (DBAPIError, OSError, TimeoutError) as exc:
        causa = getattr(exc, "orig", None) or exc
        raise ConfiguracionInvalidaError(
            f"the start-up schema check could not read PostgreSQL: {type(causa).__name__}: {causa}"
        ) from None
    log.info("postgres.esquema", revision=revision)


def migration_limits(settings: Settings) -> MigrationLimits:
    return MigrationLimits(
        lock_timeout_s=settings.migration_lock_timeout_seconds,
        statement_timeout_s=settings.migration_statement_timeout_seconds,
        wait_s=settings.migration_wait_seconds,
    )


def replica_id() -> str:
    """Lease owner: unique per process, readable by operators."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def aplicar_migraciones(settings: Settings) -> None:
    """Bring the database named by the settings to the newest schema (Alembic)."""
    if settings.database_url is None:
        raise ValueError("missing settings: PAGOS_DATABASE_URL")
    engine = create_engine(  # its own limits: MigrationLimits
        settings.database_url, pool_size=1, application_name=MIGRATION_APPLICATION_NAME, limits=None
    )
    try:
        await migrate(engine, settings.migrations_dir, migration_limits(settings))
    finally:
        await engine.dispose()


@asynccontextmanager
async def publicador_de_comandos(settings: Settings) -> AsyncIterator[EventPublisher]:
    """A publisher to the commands topic, with the service's own broker settings (operator tools)."""
    if settings.pulsar_url is None:
        raise ConfiguracionInvalidaError("missing settings: PAGOS_PULSAR_URL")
    pulsar = PulsarConnection(settings.pulsar_url, security=pulsar_security(settings))
    try:
        publisher = await pulsar.publisher(settings.commands_topic, per_lot=False)
        try:
            yield publisher
        finally:
            await publisher.close()
    finally:
        await pulsar.close()


@asynccontextmanager
async def bootstrap(
    settings: Settings,
    roles: frozenset[str] = ROLES,
    *,
    apply_migrations: bool = False,
    pasarela: PasarelaDePagos | None = None,
    exportador_de_trazas: SpanExporter | None = None,
) -> AsyncIterator[Servicio]:
    """Wire the `roles` asked for. `pasarela`: a gateway to pay through instead of the Stripe
    adapter the settings describe (tests and the development tooling give one).
    `exportador_de_trazas`: where spans go instead of the OTLP endpoint the settings name (tests)."""
    stripe = _antes_de_conectar(settings, roles, pasarela_propia=pasarela is not None)
    assert settings.database_url is not None  # noqa: S101 - checked by _antes_de_conectar
    async with AsyncExitStack() as stack:
        if apply_migrations:
            await aplicar_migraciones(settings)
        engine = create_engine(
            settings.database_url, pool_size=settings.db_pool_size, limits=connection_limits(settings)
        )
        # First: nothing subscribes to the commands (nor starts anything) on a schema behind the release.
        try:
            await _esquema_al_dia(engine)
        except BaseException:
            await engine.dispose()
            raise
        pulsar = None
        if roles & CON_BROKER:
            assert settings.pulsar_url is not None  # noqa: S101 - checked above
            pulsar = PulsarConnection(settings.pulsar_url, security=pulsar_security(settings))
        views = PostgresPagoViews(engine, atencion_tras=timedelta(seconds=settings.attention_after_seconds))
        servicio = Servicio(settings, _sin_preparar, segundo_plano=[metrics.medir_retraso_del_bucle])
        servicio.readiness = functools.partial(_preparado, servicio, views, pulsar)
        trazas = trazado(servicio, stack, exportador_de_trazas)  # closed last: the last spans go out
        servicio.cerrar(stack, engine.dispose)
        if pulsar is not None:
            servicio.cerrar(stack, pulsar.close)
        c = _Comun(servicio, stack, engine, pulsar, replica_id(), settings.database_url, trazas)
        if "relay" in roles:
            await _relay(c, inmediata="worker" in roles)
        if roles & RECUPERAN:
            propia = pasarela or await build_pasarela(settings, stack, engine, stripe)
            pagos = _pagos(c, propia)
            if "worker" in roles:
                await _worker(c, pagos)
            _recuperacion(c, pagos)
            _conciliacion_programada(c, propia)
        if "api" in roles:
            await _api(c, views)
        yield servicio


def _antes_de_conectar(settings: Settings, roles: frozenset[str], *, pasarela_propia: bool) -> _StripePreparada | None:
    """Settings that cannot work, named before anything connects: roles, missing settings, and the
    Stripe adapter's (a wrong key), which it returns checked for the roles that pay."""
    if unknown := roles - ROLES:
        raise ConfiguracionInvalidaError(f"unknown roles: {', '.join(sorted(unknown))}")
    if faltan := settings.faltantes(roles, pasarela_propia=pasarela_propia):
        raise ConfiguracionInvalidaError(f"missing settings: {', '.join(faltan)}")
    return _stripe_preparada(settings) if roles & RECUPERAN and not pasarela_propia else None


@dataclass(frozen=True)
class _Comun:
    """What every role is wired from."""

    servicio: Servicio
    stack: AsyncExitStack
    engine: AsyncEngine
    pulsar: PulsarConnection | None  # None without a role that talks to the broker
    owner: str
    database_url: str
    trazado: Trazado | None


@dataclass(frozen=True)
class Trazado:
    """Tracing, where it is configured: the commands' spans, and the wrappers that add the
    gateway's and the publication's spans to those ports."""

    tracer: Tracer
    pasarela: Callable[[PasarelaDePagos], PasarelaDePagos]
    eventos: Callable[[EventPublisher], EventPublisher]


def trazado(servicio: Servicio, stack: AsyncExitStack, exportador: SpanExporter | None = None) -> Trazado | None:
    """OpenTelemetry, if an OTLP endpoint is configured (or an `exportador` given); else None, and
    the SDK is never imported: a command's trace context is then only carried to its events."""
    settings = servicio.settings
    if exportador is None and not settings.trazas_activas():
        return None
    # Imported here, not at the top: without tracing configured the SDK is never loaded.
    from pagos_worker.adapters.otel import proveedor as otel  # noqa: PLC0415
    from pagos_worker.adapters.otel.pasarela import TracingPasarelaDePagos  # noqa: PLC0415
    from pagos_worker.adapters.otel.publisher import TracingEventPublisher  # noqa: PLC0415
    from pagos_worker.adapters.otel.tracer import OtelTracer  # noqa: PLC0415

    provider = otel.proveedor(exportador)
    servicio.cerrar(stack, functools.partial(otel.cerrar, provider))
    tracer = otel.tracer(provider)
    nombre = provider.resource.attributes.get("service.name")
    log.info("trazas.activas", endpoint=redact(settings.otel_endpoint or ""), servicio=nombre)
    return Trazado(
        OtelTracer(tracer, topic=settings.commands_topic, subscription=settings.subscription),
        lambda pasarela: TracingPasarelaDePagos(pasarela, tracer),
        lambda eventos: TracingEventPublisher(eventos, tracer, topic=settings.events_topic),
    )


def _broker(c: _Comun) -> PulsarConnection:
    assert c.pulsar is not None  # noqa: S101 - wired for every role in CON_BROKER
    return c.pulsar


async def _relay(c: _Comun, *, inmediata: bool) -> None:
    servicio, stack, pulsar, settings = c.servicio, c.stack, _broker(c), c.servicio.settings
    outbox = PostgresOutboxStore(c.engine, c.database_url, connection_limits(settings))
    servicio.cerrar(stack, outbox.close)
    # A send the broker has not confirmed fails before the relays may take its event over.
    envio_s = max(0.5, settings.relay_grace_seconds / 4)
    events = await pulsar.publisher(
        settings.events_topic, batching=settings.events_batching, send_timeout_seconds=envio_s
    )
    servicio.cerrar(stack, events.close)
    publicador: EventPublisher = c.trazado.eventos(events) if c.trazado else events
    if inmediata:
        # This process publishes the events it commits itself, at once (the relay backs it up), and
        # keeps trying through a short broker outage: the last attempt starts before half the grace
        # period and gives up a quarter later, well before a relay may take over.
        servicio.publicacion = ImmediatePublisher(
            outbox, publicador, reintentar_durante=timedelta(seconds=settings.relay_grace_seconds / 2)
        )
    servicio.relay = OutboxRelay(
        outbox,
        publicador,
        lote=settings.relay_batch,
        intervalo=settings.relay_poll_seconds,
        retencion=timedelta(seconds=settings.outbox_retention_seconds),
        limpieza_cada=settings.outbox_cleanup_interval_seconds,
        agrupar=settings.relay_coalesce_ms / 1000,
        gracia=timedelta(seconds=settings.relay_grace_seconds),
        propio=c.owner if inmediata else None,
    )
    servicio.segundo_plano.append(functools.partial(metrics.muestrear, outbox.pendientes))


@dataclass(frozen=True)
class _Pagos:
    """What pays and reverses, shared by the command consumer and the reconciler of one process."""

    repository: PostgresPagoRepository
    reversos: PostgresReversoRepository
    handler: Despacho
    pasarela: PasarelaDePagos  # traced, where tracing is on


def _pagos(c: _Comun, pasarela: PasarelaDePagos) -> _Pagos:
    servicio, stack, owner, settings = c.servicio, c.stack, c.owner, c.servicio.settings
    if c.trazado is not None:
        pasarela = c.trazado.pasarela(pasarela)
    # Events of a process that publishes its own (worker with relay) are marked as its; the others
    # are left to the relays, which a NOTIFY wakes at commit.
    publicador = owner if servicio.publicacion else None
    repository = PostgresPagoRepository(
        c.engine,
        max_batch=settings.db_batch_max,
        max_in_flight=settings.db_flushes_in_flight,
        linger=settings.db_flush_linger_ms / 1000,
        publicador=publicador,
        flush_timeout=settings.db_flush_timeout_seconds,
    )
    servicio.cerrar(stack, repository.close)
    servicio.sin_commit = repository.sin_commit
    reversos = PostgresReversoRepository(c.engine, publicador=publicador)
    comun: dict[str, Any] = {
        "owner": owner,
        "lease": timedelta(seconds=settings.lease_seconds),
        "atencion": politica_de_atencion(settings),
        "publicar": servicio.publicacion.encolar if servicio.publicacion else None,
        "tracer": c.trazado.tracer if c.trazado else None,
    }
    handler = Despacho(
        ProcesarPagoHandler(repository, pasarela, **comun), ReversarPagoHandler(reversos, pasarela, **comun)
    )
    return _Pagos(repository, reversos, handler, pasarela)


async def _worker(c: _Comun, pagos: _Pagos) -> None:
    servicio, stack, pulsar, settings = c.servicio, c.stack, _broker(c), c.servicio.settings
    # A confirmation per dead letter: one the client refuses at once (too big) must not pass unseen.
    dlq = await pulsar.publisher(settings.dlq_topic, per_lot=False)
    servicio.cerrar(stack, dlq.close)
    source = await pulsar.command_source(
        settings.commands_topic,
        settings.subscription,
        capacity=settings.worker_concurrency,
        nack_delay_seconds=settings.nack_delay_seconds,
        consumer_id_offset=settings.pulsar_consumer_id_offset,
    )
    servicio.cerrar(stack, source.close)
    # While the gateway's circuit is open, in-flight slots wait and intake pauses.
    servicio.consumo = Consumo(
        source,
        pagos.handler,
        dlq,
        es_transitorio,
        PostgresFailureLog(c.engine),
        pagos.pasarela.esperar_disponible,
        settings.poison_max_attempts,
        settings.retry_backoff_max_seconds,
    )


def _recuperacion(c: _Comun, pagos: _Pagos) -> None:
    """The reconciler: payments and reversals stuck past their lease, resumed with the same handling
    (an atomic claim: it and a live worker never both act on one)."""
    settings = c.servicio.settings
    c.servicio.reconciliador = Reconciliador(
        pagos.repository,
        pagos.handler,
        reversos=pagos.reversos,
        gracia=timedelta(seconds=settings.reconcile_grace_seconds),
        intervalo=settings.reconcile_interval_seconds,
        gate=pagos.pasarela.esperar_disponible,
        al_fallar=metrics.RECONCILIADOR_ERRORES.inc,
        es_transitorio=es_transitorio,
    )


def _conciliacion_programada(c: _Comun, pasarela: PasarelaDePagos) -> None:
    """The scheduled reconciliation of the recovering roles (one replica at a time: the run's advisory lock).
    Only against Stripe: a gateway given by the tooling has no books to compare with."""
    settings = c.servicio.settings
    if not isinstance(pasarela, StripePasarelaDePagos):
        log.info("conciliacion.sin_pasarela_stripe")
        return
    programada = ConciliacionProgramada(
        conciliar_handler(settings, pasarela),
        intervalo=settings.conciliacion_interval_seconds,
        retroceso=timedelta(seconds=settings.conciliacion_lookback_seconds),
        al_completar=_medir_conciliacion,
    )
    # Never holds a shutdown up: a run cut short stays EN_CURSO (or FALLIDA), and the next starts over.
    c.servicio.segundo_plano.append(programada.run)


async def _api(c: _Comun, views: PostgresPagoViews) -> None:
    servicio, engine, settings = c.servicio, c.engine, c.servicio.settings
    # The pool's connections opened now, not by the first status queries: each new one costs
    # ~50 ms (a backend, the driver's type set-up), and a burst of first queries paid it one after
    # another (the read benchmark's first ones took up to 100-200 ms).
    await prewarm(engine, settings.db_pool_size)
    servicio.segundo_plano.append(functools.partial(metrics.muestrear_atencion, views.contar_atencion))
    servicio.consultas = Consultas(
        ObtenerEstadoPagoHandler(views),
        ObtenerEstadisticasOutboxHandler(views),
        ListarPagosQueRequierenAtencionHandler(views),
    )


async def _sin_preparar() -> dict[str, str]:
    return {"arranque": "error: sin cablear"}


async def _preparado(servicio: Servicio, views: PostgresPagoViews, pulsar: PulsarConnection | None) -> dict[str, str]:
    """/readyz: what this process's roles need. PostgreSQL, always; the broker for a worker or a
    relay (an API alone never asks it, so a broker outage leaves the status API up); and, where
    payments are written, that the writes commit."""
    settings = servicio.settings
    commits = {}
    if servicio.sin_commit is not None:  # read first: the pings below may take their time
        commits["commits"] = _progreso(servicio.sin_commit(), settings.readiness_stall_seconds)
    sondas = {"postgres": views.ping()}
    if pulsar is not None:
        sondas["pulsar"] = pulsar.ping(settings.events_topic, CHEQUEO_LISTO_S)
    resultados = await asyncio.gather(*map(_check, sondas.values()))
    return {**dict(zip(sondas, resultados, strict=True)), **commits}


def _progreso(sin_commit: float, limite: float) -> str:
    """A ping on a fresh connection can pass while the worker's own connections hang: what counts
    is whether its claims and results commit."""
    if sin_commit < limite:
        return "ok"
    return f"error: pagos esperando {sin_commit:.0f} s sin ningún commit"


async def _check(probe: Coroutine[Any, Any, None]) -> str:
    try:
        await asyncio.wait_for(probe, CHEQUEO_LISTO_S)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"error: {type(exc).__name__}"
    return "ok"


@dataclass
class Operador:
    """What the operators' commands act through; the parts not asked for are None."""

    estado: ObtenerEstadoPagoHandler | None = None
    atencion: ListarPagosQueRequierenAtencionHandler | None = None
    resolver: ResolverPagoHandler | None = None
    reanudar: ReanudarPagoHandler | None = None
    reversar: PedirReversoHandler | None = None
    listar_dlq: ListarCartasMuertasHandler | None = None
    reenviar_dlq: ReenviarCartasMuertasHandler | None = None
    eventos: LeerEventosHandler | None = None
    conciliar: ConciliarHandler | None = None
    resolver_diferencia: ResolverDiferenciaHandler | None = None
    # The topics read, named when they hold nothing: a wrong topic must not pass for an empty one.
    dlq_topic: str = ""
    events_topic: str = ""


@asynccontextmanager
async def herramientas_de_operador(
    settings: Settings, *, postgres: bool = True, pulsar: bool = False, pasarela: bool = False
) -> AsyncIterator[Operador]:
    """The operators' use cases on the service's own PostgreSQL (all but `eventos`), broker
    (`pulsar`: to publish commands, read dead letters and events) and gateway (`pasarela`: to look
    payments up; it needs PostgreSQL, where the account's budget is)."""
    if faltan := settings.faltantes_operador(postgres=postgres or pasarela, pulsar=pulsar, pasarela=pasarela):
        raise ConfiguracionInvalidaError(f"missing settings: {', '.join(faltan)}")
    async with AsyncExitStack() as stack:
        operador = Operador(dlq_topic=settings.dlq_topic, events_topic=settings.events_topic)
        conexion = None
        if pulsar:
            assert settings.pulsar_url is not None  # noqa: S101 - checked above
            conexion = PulsarConnection(
                settings.pulsar_url,
                security=pulsar_security(settings),
                registro=registro_silencioso(depurar=settings.log_level.upper() == "DEBUG"),
            )
            stack.push_async_callback(conexion.close)
            operador.eventos = LeerEventosHandler(conexion.event_reader(settings.events_topic))
        if postgres or pasarela:
            await _operador_con_postgres(settings, stack, operador, conexion, pasarela=pasarela)
        yield operador


async def _operador_con_postgres(
    settings: Settings, stack: AsyncExitStack, operador: Operador, conexion: PulsarConnection | None, *, pasarela: bool
) -> None:
    assert settings.database_url is not None  # noqa: S101 - checked by the caller
    engine = create_engine(settings.database_url, pool_size=2, limits=connection_limits(settings))
    stack.push_async_callback(engine.dispose)
    views = PostgresPagoViews(engine, atencion_tras=timedelta(seconds=settings.attention_after_seconds))
    pagos = PostgresOperadorRepository(engine)
    operador.estado = ObtenerEstadoPagoHandler(views)
    operador.atencion = ListarPagosQueRequierenAtencionHandler(views)
    operador.resolver_diferencia = ResolverDiferenciaHandler(PostgresDiferenciaRepository(engine))
    if pasarela:
        stripe = await _stripe(settings, stack, engine)
        operador.conciliar = conciliar_handler(settings, stripe)
        operador.resolver = ResolverPagoHandler(
            pagos,
            stripe,
            lease=timedelta(seconds=settings.lease_seconds),
            margen_fallido=timedelta(seconds=settings.settle_margin_seconds),
        )
    if conexion is not None:
        comandos = await conexion.publisher(settings.commands_topic, per_lot=False)
        stack.push_async_callback(comandos.close)
        publicador = PulsarCommandPublisher(comandos)
        operador.reanudar = ReanudarPagoHandler(pagos, publicador)
        operador.reversar = PedirReversoHandler(views, publicador)
        cartas, reenvios = conexion.dead_letter_reader(settings.dlq_topic), PostgresRedriveLog(engine)
        operador.listar_dlq = ListarCartasMuertasHandler(cartas, reenvios)
        operador.reenviar_dlq = ReenviarCartasMuertasHandler(cartas, reenvios, comandos)
