"""`pagos-worker`: run the service, apply the migrations, publish a command; and the operators'
commands (`pagos …`, `dlq …`: `entrypoints/operador_cli.py`).

Nothing here starts a server or a simulator in place of a missing setting: a role that needs one
that is not set refuses to start, names it, and exits with status 2. The embedded default for
development is `pagos-dev run` (`make run`), from the development tooling.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import uuid
from collections.abc import Coroutine, Sequence
from decimal import Decimal
from typing import Any

import structlog
from pydantic import ValidationError

from pagos_worker import logs
from pagos_worker.application.commands import ProcesarPago
from pagos_worker.application.operador import OperacionRechazadaError
from pagos_worker.application.ports.outbox import PlainMessage
from pagos_worker.application.ports.pasarela import PasarelaDePagos
from pagos_worker.application.queries import PagoNoEncontradoError
from pagos_worker.bootstrap import (
    CON_BROKER,
    RECUPERAN,
    ROLES,
    MigracionAbandonadaError,
    MigracionInvalidaError,
    aplicar_migraciones,
    bootstrap,
    herramientas_de_operador,
    publicador_de_comandos,
)
from pagos_worker.config import ConfiguracionInvalidaError, Settings
from pagos_worker.contract.wire import encode_command
from pagos_worker.domain.dinero import Dinero, Moneda
from pagos_worker.domain.errors import DominioError
from pagos_worker.entrypoints import conciliar_cli, operador_cli, operador_salida
from pagos_worker.entrypoints.limits import elevar_limite_de_descriptores
from pagos_worker.entrypoints.runner import run_with_uvloop
from pagos_worker.entrypoints.service import serve
from pagos_worker.logs import redact

log = structlog.get_logger(__name__)
EXIT_CONFIG = 2
EXIT_RECHAZADO = 1  # not found, refused, or could not be done: nothing changed


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"pagos-worker: cannot start: invalid settings:\n{_errores(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    # The operators' commands keep stdout for their tables and JSON: their logs go to stderr, and
    # only errors unless PAGOS_LOG_LEVEL asks for more (what they did is their own output, and a
    # resolution is recorded with the payment; a warning line per action was noise).
    operador = hasattr(args, "accion")
    nivel = "ERROR" if operador and "PAGOS_LOG_LEVEL" not in os.environ else settings.log_level
    logs.configure(
        settings.log_format,
        nivel,
        stream=sys.stderr if operador else None,
        secretos=logs.secretos_de(*settings.secretos()),
    )
    return _run_loop(args.func(settings, args))


def _errores(exc: ValidationError) -> str:
    """One line per invalid setting, named as the environment variable; never the value given."""
    lineas = []
    for error in exc.errors(include_input=False, include_url=False):
        campo = "".join(str(p) for p in error["loc"][:1])
        nombre = campo if campo.startswith("OTEL_") else f"PAGOS_{campo.upper()}" if campo else "settings"
        lineas.append(f"  {nombre}: {error['msg']}")
    return "\n".join(lineas)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pagos-worker", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the service against the PostgreSQL, broker and Stripe API configured")
    run.add_argument("--roles", default="worker,relay,api", help="comma-separated: worker, relay, api")
    run.add_argument("--no-migrate", action="store_true", help="do not apply migrations at start")
    run.set_defaults(func=_cmd_run)

    sub.add_parser("migrate", help="apply the Alembic migrations").set_defaults(func=_cmd_migrate)

    pub = sub.add_parser("publicar", help="publish ProcesarPago commands to the commands topic")
    pub.add_argument("--id-afiliado", default="afiliado_123")
    pub.add_argument("--monto", default="100.50")
    pub.add_argument("--moneda", default="USD", choices=[m.value for m in Moneda])
    pub.add_argument("--id-pago", type=uuid.UUID, help="default: a new random UUID per command")
    pub.add_argument("--count", type=int, default=1)
    pub.add_argument("--traceparent", help="a W3C traceparent for the commands' property of that name")
    pub.set_defaults(func=_cmd_publicar)
    operador_cli.registrar(sub, _cmd_operador)
    conciliar_cli.registrar(sub, _cmd_operador, operador_cli.Requisitos(pasarela=True))
    return parser


def _run_loop(coro: Coroutine[Any, Any, int]) -> int:
    try:
        return run_with_uvloop(coro)
    except KeyboardInterrupt:
        return 130


def parse_roles(texto: str) -> frozenset[str] | None:
    roles = frozenset(r.strip() for r in texto.split(",") if r.strip())
    return roles if roles and not roles - ROLES else None


async def _cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    roles = parse_roles(args.roles)
    if roles is None:
        print(f"--roles takes a comma-separated subset of {', '.join(sorted(ROLES))}", file=sys.stderr)
        return EXIT_CONFIG
    return await run_service(settings, roles, apply_migrations=not args.no_migrate)


async def run_service(
    settings: Settings,
    roles: frozenset[str],
    *,
    apply_migrations: bool,
    pasarela: PasarelaDePagos | None = None,
    notas: dict[str, str] | None = None,
) -> int:
    """Refuse to start (status 2, naming what is missing) unless every setting the roles need is
    set; else run them until SIGTERM/SIGINT. `pasarela` and `notas` come from the development
    tooling (a simulated gateway; where the embedded servers keep their data)."""
    if faltan := settings.faltantes(roles, pasarela_propia=pasarela is not None):
        print(
            f"pagos-worker: cannot start: missing settings: {', '.join(faltan)} "
            "(nothing is started in their place; for a local embedded setup use `make run`)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if roles & RECUPERAN:  # the gateway's connections
        limite, necesarios = elevar_limite_de_descriptores(settings.pasarela_concurrency, 2 * settings.db_pool_size)
        if limite < necesarios:
            print(
                f"pagos-worker: warning: open-file limit {limite} is below the ~{necesarios} that "
                f"PAGOS_PASARELA_CONCURRENCY={settings.pasarela_concurrency} needs; raise it or lower the concurrency",
                file=sys.stderr,
            )
    try:
        async with bootstrap(settings, roles, apply_migrations=apply_migrations, pasarela=pasarela) as servicio:
            _announce(settings, roles, notas or {})
            tune_gc()
            await serve(servicio)
    except ConfiguracionInvalidaError as exc:
        print(f"pagos-worker: cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def tune_gc() -> None:
    """What start-up built lives as long as the process: keep it out of every collection, and
    collect the young generation less often (a payment allocates hundreds of short-lived objects)."""
    if os.environ.get("PAGOS_GC_TUNING", "1") != "0":
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)


async def _cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    if settings.database_url is None:
        print("pagos-worker: cannot migrate: missing settings: PAGOS_DATABASE_URL", file=sys.stderr)
        return EXIT_CONFIG
    try:
        await aplicar_migraciones(settings)
    except MigracionAbandonadaError as exc:
        print(f"pagos-worker: migration gave up: {exc}", file=sys.stderr)
        return EXIT_RECHAZADO
    except MigracionInvalidaError as exc:
        print(f"pagos-worker: migration refused: {exc}", file=sys.stderr)
        return EXIT_RECHAZADO
    log.info("migraciones.aplicadas", database=redact(settings.database_url))
    return 0


async def _cmd_publicar(settings: Settings, args: argparse.Namespace) -> int:
    if settings.pulsar_url is None:
        print("pagos-worker: cannot publish: missing settings: PAGOS_PULSAR_URL", file=sys.stderr)
        return EXIT_CONFIG
    importe = Dinero(Decimal(args.monto), Moneda(args.moneda))
    propiedades = {"traceparent": args.traceparent} if args.traceparent else {}
    async with publicador_de_comandos(settings) as publicador:
        for _ in range(args.count):
            comando = ProcesarPago(args.id_pago or uuid.uuid4(), args.id_afiliado, importe)
            mensaje = PlainMessage(payload=encode_command(comando), key=str(comando.id_pago), properties=propiedades)
            await publicador.publicar([mensaje])
            print(comando.id_pago, flush=True)
    return 0


async def _cmd_operador(settings: Settings, args: argparse.Namespace) -> int:
    """An operator's command: its settings checked (status 2 naming what is missing), then its use
    case wired and run; not found or refused is status 1, with the reason, never a stack trace."""
    requisitos: operador_cli.Requisitos = args.requisitos
    if faltan := settings.faltantes_operador(
        postgres=requisitos.postgres, pulsar=requisitos.pulsar, pasarela=requisitos.pasarela
    ):
        operador_salida.error(f"no se puede ejecutar: faltan ajustes: {', '.join(faltan)}")
        return EXIT_CONFIG
    if hasattr(args, "operador") and not args.operador:
        operador_salida.error("¿quién actúa? indíquelo con --operador NOMBRE (aquí no hay $USER)")
        return EXIT_CONFIG
    try:
        async with herramientas_de_operador(
            settings, postgres=requisitos.postgres, pulsar=requisitos.pulsar, pasarela=requisitos.pasarela
        ) as op:
            return int(await args.accion(op, args))
    except ConfiguracionInvalidaError as exc:
        operador_salida.error(f"no se puede ejecutar: {exc}")
        return EXIT_CONFIG
    except (PagoNoEncontradoError, OperacionRechazadaError, DominioError) as exc:
        operador_salida.error(str(exc))
        return EXIT_RECHAZADO
    except Exception as exc:  # noqa: BLE001 - an outage: said in one line, never a stack trace
        log.debug("operador.error", error=repr(exc))
        detalle = "" if settings.log_level.upper() == "DEBUG" else " (PAGOS_LOG_LEVEL=DEBUG da el detalle)"
        operador_salida.error(f"no se pudo hacer: {type(exc).__name__}: {exc}{detalle}")
        return int(getattr(args, "codigo_de_falla", EXIT_RECHAZADO))


def _announce(s: Settings, roles: frozenset[str], notas: dict[str, str]) -> None:
    assert s.database_url is not None  # noqa: S101 - run_service checked it
    gateway = notas.get("gateway") or f"Stripe API at {s.stripe_api_base}"
    trazas = f"spans over OTLP/HTTP to {redact(s.otel_endpoint or '')}" if s.trazas_activas() else "off"
    lines = [
        f"pagos-worker running: roles {', '.join(sorted(roles))}",
        f"  PostgreSQL  {redact(s.database_url)}{notas.get('postgres', '')}",
        f"  Pulsar      {redact(s.pulsar_url or '')}{notas.get('pulsar', '')}"
        if roles & CON_BROKER
        else "  Pulsar      not used (the API reads PostgreSQL alone)",
        f"  gateway     {gateway}",
        *([f"  faults      {notas['fallas']}"] if "fallas" in notas else []),
        f"  commands    {s.commands_topic} (subscription {s.subscription})",
        f"  events      {s.events_topic}",
        f"  dead letter {s.dlq_topic}",
        f"  tracing     {trazas}",
    ]
    if "api" in roles:
        lines.append(
            f"  HTTP API    http://{s.http_host}:{s.http_port}  "
            "(GET /pagos/{id_pago}, /pagos/atencion, /pagos/outbox/estadisticas, /healthz, /readyz, /metrics, "
            "/openapi.json, /docs, /asyncapi.json)"
        )
    else:
        lines.append(f"  HTTP        http://{s.http_host}:{s.http_port}  (GET /healthz, /readyz, /metrics)")
    if "operadores" in notas:
        lines.append(f"  operators   {notas['operadores']}")
    lines.append("  stop with Ctrl-C or SIGTERM")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
