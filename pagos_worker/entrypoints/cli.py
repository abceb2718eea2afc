"""`pagos-worker`: run the service, migrate, start the embedded services, publish a command."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import uuid
from collections.abc import Coroutine, Sequence
from decimal import Decimal
from typing import Any

import structlog

from pagos_worker import logs
from pagos_worker.adapters.postgres.database import create_engine, migrate, redact
from pagos_worker.adapters.wire import encode_command
from pagos_worker.application.commands import ProcesarPago
from pagos_worker.bootstrap import ROLES, Embedded, bootstrap, embedded_services
from pagos_worker.config import Settings
from pagos_worker.domain.dinero import Dinero, Moneda
from pagos_worker.entrypoints.service import serve

log = structlog.get_logger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_format, settings.log_level)
    return _run_loop(args.func(settings, args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pagos-worker", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the service (embedded PostgreSQL and broker unless URLs are set)")
    run.add_argument("--roles", default="worker,relay,api", help="comma-separated: worker, relay, api")
    run.add_argument("--no-migrate", action="store_true", help="do not apply migrations at start")
    run.set_defaults(func=_cmd_run)

    sub.add_parser("migrate", help="apply the Alembic migrations").set_defaults(func=_cmd_migrate)
    sub.add_parser("infra", help="start only the embedded PostgreSQL and broker").set_defaults(func=_cmd_infra)

    pub = sub.add_parser("publicar", help="publish ProcesarPago commands to the commands topic")
    pub.add_argument("--id-afiliado", default="afiliado_123")
    pub.add_argument("--monto", default="100.50")
    pub.add_argument("--moneda", default="USD", choices=[m.value for m in Moneda])
    pub.add_argument("--id-pago", type=uuid.UUID, help="default: a new random UUID per command")
    pub.add_argument("--count", type=int, default=1)
    pub.set_defaults(func=_cmd_publicar)
    return parser


def _run_loop(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        try:
            return runner.run(coro)
        except KeyboardInterrupt:
            return 130


async def _cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    roles = frozenset(r.strip() for r in args.roles.split(",") if r.strip())
    if not roles or roles - ROLES:
        print(f"--roles takes a comma-separated subset of {', '.join(sorted(ROLES))}", file=sys.stderr)
        return 2
    async with (
        embedded_services(settings) as embedded,
        bootstrap(embedded.settings, roles, apply_migrations=not args.no_migrate) as servicio,
    ):
        _announce(embedded, roles)
        await serve(servicio)
    return 0


async def _cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    async with embedded_services(settings) as embedded:
        assert embedded.settings.database_url is not None  # noqa: S101 - set by embedded_services
        engine = create_engine(embedded.settings.database_url, pool_size=1)
        try:
            await migrate(engine, settings.migrations_dir)
        finally:
            await engine.dispose()
    log.info("migraciones.aplicadas", database=redact(embedded.settings.database_url))
    return 0


async def _cmd_infra(settings: Settings, _: argparse.Namespace) -> int:
    async with embedded_services(settings) as embedded:
        s = embedded.settings
        print(f"export PAGOS_DATABASE_URL={s.database_url}\nexport PAGOS_PULSAR_URL={s.pulsar_url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    return 0


async def _cmd_publicar(settings: Settings, args: argparse.Namespace) -> int:
    import pulsar  # noqa: PLC0415

    url = settings.pulsar_url or f"pulsar://127.0.0.1:{settings.embedded_pulsar_port}"
    client = pulsar.Client(url, operation_timeout_seconds=10, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    try:
        producer = await asyncio.to_thread(client.create_producer, settings.commands_topic)
        importe = Dinero(Decimal(args.monto), Moneda(args.moneda))
        for _ in range(args.count):
            comando = ProcesarPago(args.id_pago or uuid.uuid4(), args.id_afiliado, importe)
            await asyncio.to_thread(producer.send, encode_command(comando), partition_key=str(comando.id_pago))
            print(comando.id_pago, flush=True)
    finally:
        await asyncio.to_thread(client.close)
    return 0


def _announce(embedded: Embedded, roles: frozenset[str]) -> None:
    s = embedded.settings
    assert s.database_url is not None  # noqa: S101
    pg = f" (embedded, data in {embedded.postgres.data_dir})" if embedded.postgres else ""
    broker = f" (embedded pulsar-lite, data in {embedded.pulsar.data_dir})" if embedded.pulsar else ""
    lines = [
        f"pagos-worker running: roles {', '.join(sorted(roles))}",
        f"  PostgreSQL  {redact(s.database_url)}{pg}",
        f"  Pulsar      {s.pulsar_url}{broker}",
        f"  commands    {s.commands_topic} (subscription {s.subscription})",
        f"  events      {s.events_topic}",
        f"  dead letter {s.dlq_topic}",
    ]
    if "api" in roles:
        lines.append(
            f"  HTTP API    http://{s.http_host}:{s.http_port}  "
            "(GET /pagos/{id_pago}, /pagos/outbox/estadisticas, /healthz, /readyz, /openapi.json)"
        )
    lines.append("  stop with Ctrl-C or SIGTERM")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
