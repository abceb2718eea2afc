"""`pagos-worker`: run the service, migrate, start the embedded services, publish a command."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
import time
import uuid
from collections.abc import Coroutine, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import structlog

from pagos_worker import logs
from pagos_worker.adapters.postgres.database import create_engine, migrate, redact
from pagos_worker.adapters.simulador.app import Simulador
from pagos_worker.adapters.simulador.fallas import Fallas
from pagos_worker.adapters.simulador.ledger import Ledger
from pagos_worker.adapters.wire import encode_command
from pagos_worker.application.commands import ProcesarPago
from pagos_worker.bootstrap import ROLES, Embedded, bootstrap, embedded_services
from pagos_worker.config import Settings
from pagos_worker.domain.dinero import Dinero, Moneda
from pagos_worker.entrypoints.runner import run_with_uvloop
from pagos_worker.entrypoints.service import serve

log = structlog.get_logger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_format, settings.log_level)
    if getattr(args, "sync", False):
        return int(args.func(settings, args))
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

    sim = sub.add_parser("simulador", help="run the Stripe-compatible gateway simulator")
    sim.add_argument("--host")
    sim.add_argument("--port", type=int)
    sim.add_argument("--state-file", type=Path, help="keep the ledger in this JSON-lines file")
    sim.set_defaults(func=_cmd_simulador)

    chaos = sub.add_parser("chaos", help="the chaos suite: faults while commands flow, then an audit")
    chaos.add_argument("--corta", action="store_true", help="the short form (as in make test)")
    chaos.add_argument("--repeticiones", type=int, default=1)
    chaos.add_argument("--salida", type=Path, default=Path("chaos-results"), help="where the JSON reports go")
    chaos.set_defaults(func=_cmd_chaos)

    bench = sub.add_parser("bench", help="benchmarks (figures, not tests)")
    bench_sub = bench.add_subparsers(required=True, metavar="BENCHMARK")
    adapter = bench_sub.add_parser("adapter", help="the Stripe adapter's CPU per call against the simulator")
    adapter.add_argument("--calls", type=int, default=5000)
    adapter.add_argument("--concurrency", type=int, default=50)
    adapter.set_defaults(func=_cmd_bench_adapter, sync=True)
    pipeline = bench_sub.add_parser("pipeline", help="the whole pipeline: throughput, latency, CPU per payment")
    pipeline.add_argument(
        "escenarios", nargs="*", default=["pasarela", "cpu", "latencia", "escala-1", "escala-2", "lectura"],
        help="pasarela, cpu, latencia, escala-1, escala-2, lectura (default: all, in that order)",
    )  # fmt: skip
    pipeline.add_argument("--pagos", type=int, help="payments per scenario (default: each scenario's own)")
    pipeline.add_argument(
        "--rate", type=float,
        help="commands/s offered in latencia (default: half of what cpu sustained in this run, else 1000)",
    )  # fmt: skip
    pipeline.add_argument("--salida", type=Path, default=Path("bench-results"))
    pipeline.add_argument(
        "--postgres-url", default=os.environ.get("PAGOS_BENCH_POSTGRES_URL"),
        help="a PostgreSQL server to use instead of the embedded one (a database is created per scenario)",
    )  # fmt: skip
    pipeline.add_argument(
        "--pulsar-url", default=os.environ.get("PAGOS_BENCH_PULSAR_URL"),
        help="a Pulsar broker to use instead of pulsar-lite (topics of each scenario's own)",
    )  # fmt: skip
    pipeline.set_defaults(func=_cmd_bench_pipeline)

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
        return run_with_uvloop(coro)
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
        _tune_gc()
        await serve(servicio)
    return 0


def _tune_gc() -> None:
    """What start-up built lives as long as the process: keep it out of every collection, and
    collect the young generation less often (a payment allocates hundreds of short-lived objects)."""
    if os.environ.get("PAGOS_GC_TUNING", "1") != "0":
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)


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
    # Replicas started against this may be killed: the proxy keeps pulsar-lite redelivering then.
    async with embedded_services(settings, graceful_proxy=True) as embedded:
        s = embedded.settings
        exports = [f"export PAGOS_DATABASE_URL={s.database_url}", f"export PAGOS_PULSAR_URL={s.pulsar_url}"]
        if s.stripe_api_base:
            exports.append(f"export PAGOS_STRIPE_API_BASE={s.stripe_api_base}")
        print("\n".join(exports), flush=True)
        await _until_signal()
    return 0


async def _cmd_simulador(settings: Settings, args: argparse.Namespace) -> int:
    host, port = args.host or settings.simulador_host, args.port or settings.simulador_port
    state_file = args.state_file or settings.simulador_state_file
    fallas = Fallas(
        latencia=settings.simulador_latency,
        tasa_rechazo=settings.simulador_decline_rate,
        tasa_500=settings.simulador_error_rate,
        tasa_429=settings.simulador_rate_limit_rate,
        tasa_timeout_tras_exito=settings.simulador_timeout_after_success_rate,
    )
    simulador = Simulador(fallas, Ledger(state_file), semilla=settings.simulador_seed)
    servidor = simulador.servidor()
    await servidor.escuchar(host, port)
    print(f"simulador listening on http://{host}:{port} (ledger: {state_file or 'in memory'})", flush=True)
    _tune_gc()
    try:
        await _until_signal()
    finally:
        await servidor.cerrar(espera=1)  # requests left hanging ("timeout after success") must not hold it up
        simulador.cerrar()
    return 0


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _cmd_chaos(_: Settings, args: argparse.Namespace) -> int:
    import tempfile  # noqa: PLC0415

    from pagos_worker.tools import chaos  # noqa: PLC0415 - only when asked for

    args.salida.mkdir(parents=True, exist_ok=True)
    fallidas = 0
    for n in range(1, args.repeticiones + 1):
        config = chaos.ChaosConfig.corta() if args.corta else chaos.ChaosConfig.completa()
        data_dir = Path(tempfile.mkdtemp(prefix="pagos-chaos-"))
        informe = await chaos.correr(config, data_dir)
        malas = chaos.violaciones(informe)
        informe["violaciones"] = malas
        archivo = args.salida / f"chaos-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{n}.json"
        archivo.write_bytes(orjson.dumps(informe, option=orjson.OPT_INDENT_2))
        print(f"\nrepetición {n}/{args.repeticiones}\n{chaos.tabla(informe)}\n")
        print(orjson.dumps(informe).decode())
        print(f"\ninforme: {archivo}; logs: {data_dir}")
        print("TODO EN ORDEN" if not malas else "VIOLACIONES:\n  " + "\n  ".join(malas), flush=True)
        fallidas += bool(malas)
    return 1 if fallidas else 0


async def _cmd_bench_pipeline(_: Settings, args: argparse.Namespace) -> int:
    import tempfile  # noqa: PLC0415

    from pagos_worker.tools import bench  # noqa: PLC0415 - only when asked for

    desconocidos = set(args.escenarios) - set(bench.ESCENARIOS)
    if desconocidos:
        print(f"escenarios desconocidos: {', '.join(sorted(desconocidos))}", file=sys.stderr)
        return 2
    args.salida.mkdir(parents=True, exist_ok=True)
    salida = args.salida / f"bench-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    with tempfile.TemporaryDirectory(prefix="pagos-bench-") as base:
        servidores = bench.Servidores(args.postgres_url, args.pulsar_url)
        resultados = await bench.correr_todos(
            args.escenarios, salida, Path(base), args.pagos, servidores, rate_latencia=args.rate
        )
    print(bench.tabla(resultados))
    print(orjson.dumps(resultados).decode())
    print(f"\ninforme: {salida}", flush=True)
    return 0


def _cmd_bench_adapter(_: Settings, args: argparse.Namespace) -> int:
    from pagos_worker.tools import bench_adapter  # noqa: PLC0415 - only when asked for

    bench_adapter.main(args.calls, args.concurrency)
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


def _gateway(embedded: Embedded) -> str:
    s = embedded.settings
    if s.pasarela == "simulada":
        return "simulated in process (PAGOS_PASARELA=simulada)"
    if embedded.simulador is not None:
        return f"Stripe API at {s.stripe_api_base} (embedded simulator; payouts: GET {s.stripe_api_base}/v1/transfers)"
    return f"Stripe API at {s.stripe_api_base}"


def _announce(embedded: Embedded, roles: frozenset[str]) -> None:
    s = embedded.settings
    assert s.database_url is not None  # noqa: S101
    pg = f" (embedded, data in {embedded.postgres.data_dir})" if embedded.postgres else ""
    broker = f" (embedded pulsar-lite, data in {embedded.pulsar.data_dir})" if embedded.pulsar else ""
    lines = [
        f"pagos-worker running: roles {', '.join(sorted(roles))}",
        f"  PostgreSQL  {redact(s.database_url)}{pg}",
        f"  Pulsar      {s.pulsar_url}{broker}",
        f"  gateway     {_gateway(embedded)}",
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
