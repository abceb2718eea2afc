"""`pagos-dev`: the service on its embedded default, the embedded servers alone, the Stripe
simulator and drift planted in it, the chaos suite, the benchmarks, the contract's generated documents
and the pinned Go tools (kustomize, stripe-mock). Development tooling: never part of the service."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from pagos_dev import deriva, herramientas, perfiles
from pagos_dev.embedded.pulsar_apache import EmbeddedApachePulsar
from pagos_dev.embedded.servicios import embedded_services
from pagos_dev.pasarela_simulada import SimuladaPasarelaDePagos
from pagos_dev.settings import DevSettings
from pagos_dev.simulacion import Latencia
from pagos_dev.simulador.app import Simulador
from pagos_dev.simulador.fallas import Fallas
from pagos_dev.simulador.ledger import Ledger
from pagos_dev.simulador.servidor_aiohttp import ServidorAiohttp
from pagos_worker import logs
from pagos_worker.application.ports.pasarela import PasarelaDePagos
from pagos_worker.config import Settings
from pagos_worker.entrypoints.cli import EXIT_CONFIG, parse_roles, run_service, tune_gc
from pagos_worker.entrypoints.limits import elevar_limite_de_descriptores
from pagos_worker.entrypoints.runner import run_with_uvloop


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings, dev = Settings(), DevSettings()
    logs.configure(settings.log_format, settings.log_level, secretos=logs.secretos_de(*settings.secretos()))
    if getattr(args, "sync", False):
        return int(args.func(settings, dev, args))
    try:
        return int(run_with_uvloop(args.func(settings, dev, args)))
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pagos-dev", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="the service on its embedded default: PostgreSQL, pulsar-lite and the Stripe simulator under .data/"
    )
    run.add_argument("--roles", default="worker,relay,api", help="comma-separated: worker, relay, api")
    run.add_argument(
        "--fallas", choices=sorted(perfiles.PERFILES), metavar="PERFIL",
        help="a named fault profile of the simulator: "
        + "; ".join(f"{p.nombre}: {p.que}" for p in perfiles.PERFILES.values()),
    )  # fmt: skip
    _broker_option(run)
    run.set_defaults(func=_cmd_run)

    env = sub.add_parser(
        "env", help='the operator commands\' settings against make run, as export lines: eval "$(pagos-dev env)"'
    )
    env.set_defaults(func=_cmd_env, sync=True)

    infra = sub.add_parser("infra", help="start only the embedded PostgreSQL, broker and simulator")
    _broker_option(infra)
    infra.set_defaults(func=_cmd_infra)

    sim = sub.add_parser("simulador", help="run the Stripe-compatible gateway simulator")
    sim.add_argument("--host")
    sim.add_argument("--port", type=int)
    sim.add_argument("--state-file", type=Path, help="keep the ledger in this SQLite file (across restarts)")
    sim.add_argument("--http", choices=["propio", "aiohttp"], help="its HTTP server (aiohttp: to compare)")
    sim.set_defaults(func=_cmd_simulador)

    chaos = sub.add_parser("chaos", help="the chaos suite: faults while commands flow, then an audit")
    chaos.add_argument("--corta", action="store_true", help="the short form (as in make test)")
    chaos.add_argument("--repeticiones", type=int, default=1)
    chaos.add_argument("--salida", type=Path, default=Path("chaos-results"), help="where the JSON reports go")
    _broker_option(chaos)
    chaos.set_defaults(func=_cmd_chaos)

    contract = sub.add_parser(
        "contract",
        help="regenerate the contract's documents (AsyncAPI, JSON Schemas, OpenAPI) from its models, and "
        "deploy/prometheus/prometheusrule.yaml from the alert rules",
    )
    contract.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    contract.add_argument("--raiz", type=Path, default=Path(), help="the checkout (default: here)")
    contract.set_defaults(func=_cmd_contract, sync=True)

    deriva.registrar(sub)
    herramientas.registrar(sub)
    _bench(sub)
    return parser


def _broker_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker", choices=["pulsar-lite", "pulsar"], default="pulsar-lite",
        help="the embedded broker: pulsar-lite (default, no JVM) or Apache Pulsar standalone (Java 17 and Maven; "
        "the first start downloads it from Maven Central into ~/.cache/pagos-dev)",
    )  # fmt: skip


def _bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser("bench", help="benchmarks (figures, not tests)")
    bench_sub = bench.add_subparsers(required=True, metavar="BENCHMARK")
    adapter = bench_sub.add_parser("adapter", help="the Stripe adapter's CPU per call against the simulator")
    adapter.add_argument("--calls", type=int, default=5000)
    adapter.add_argument("--concurrency", type=int, default=50)
    adapter.set_defaults(func=_cmd_bench_adapter, sync=True)
    decode = bench_sub.add_parser("decode", help="commands decoded per second (valid, invalid, 99:1 mix)")
    decode.add_argument("--comandos", type=int, default=5000, help="commands per corpus")
    decode.add_argument("--repeticiones", type=int, default=30, help="rounds per corpus; the best one counts")
    decode.set_defaults(func=_cmd_bench_decode, sync=True)
    traza = bench_sub.add_parser("traza", help="what carrying W3C trace context costs a payment, piece by piece")
    traza.add_argument("--veces", type=int, default=20_000, help="calls per round")
    traza.add_argument("--repeticiones", type=int, default=15, help="rounds per piece; the best one counts")
    traza.set_defaults(func=_cmd_bench_traza, sync=True)
    carga = bench_sub.add_parser("simulador", help="the simulator alone under load: RSS, CPU per request, reads")
    carga.add_argument("--transfers", type=int, default=300_000)
    carga.add_argument("--rate", type=float, default=1000.0, help="requests/s")
    carga.add_argument("--conexiones", type=int, default=50)
    carga.add_argument("--http", choices=["propio", "aiohttp"], default="propio")
    carga.set_defaults(func=_cmd_bench_simulador, sync=True)
    pipeline = bench_sub.add_parser("pipeline", help="the whole pipeline: throughput, latency, CPU per payment")
    pipeline.add_argument(
        "escenarios", nargs="*",
        default=[
            "pasarela", "cpu", "latencia", "escala-1", "escala-2", "lectura", "semilla",
            "presupuesto-1", "presupuesto-2", "presupuesto-4", "reversos",
        ],
        help="pasarela, cpu, latencia, escala-1, escala-2, lectura, semilla, presupuesto-1, presupuesto-2, "
        "presupuesto-4, reversos (default: all, in that order); conciliacion (by name only: 1,000,000 payments "
        "reconciled, CPU heavy; --pagos for fewer)",
    )  # fmt: skip
    pipeline.add_argument(
        "--pagos", type=int,
        help="payments per scenario (default: each scenario's own; reversos adds one reversal for every 4)",
    )  # fmt: skip
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
        help="a Pulsar broker to use instead of pulsar-lite (topics of each scenario's own; --broker says which "
        "broker it is)",
    )  # fmt: skip
    pipeline.add_argument(
        "--broker", choices=["pulsar-lite", "pulsar"], default="pulsar-lite",
        help="pulsar-lite (default: each scenario starts its own) or Apache Pulsar standalone, started once for "
        "the run (Java 17 and Maven), each scenario on topics of its own; its JVM's CPU and RSS count as the broker's",
    )  # fmt: skip
    pipeline.set_defaults(func=_cmd_bench_pipeline)


async def _cmd_run(settings: Settings, dev: DevSettings, args: argparse.Namespace) -> int:
    roles = parse_roles(args.roles)
    if roles is None:
        print("--roles takes a comma-separated subset of worker, relay, api", file=sys.stderr)
        return EXIT_CONFIG
    perfil = perfiles.PERFILES[args.fallas] if args.fallas else None
    if perfil is not None:
        perfil.aplicar_al_entorno()
        settings, dev = perfil.al_servicio(settings), DevSettings()
    pasarela = _simulada(settings, dev) if dev.pasarela == "simulada" else None
    async with embedded_services(dev, settings, simulador=pasarela is None, broker=args.broker) as embedded:
        notas = embedded.notas()
        if pasarela is not None:
            notas["gateway"] = "SIMULATED in process (PAGOS_PASARELA=simulada; no HTTP, no real money)"
            notas["fallas"] = f"failures {dev.simulada_failure_rate:.0%} (PAGOS_SIMULADA_FAILURE_RATE)"
        elif embedded.simulador is not None:
            notas.update(perfiles.notas(dev, perfil))
        notas.setdefault("operadores", perfiles.notas(dev)["operadores"])
        return await run_service(embedded.settings, roles, apply_migrations=True, pasarela=pasarela, notas=notas)


def _simulada(settings: Settings, dev: DevSettings) -> PasarelaDePagos:
    return SimuladaPasarelaDePagos(
        latencia=Latencia.parse(dev.simulada_latency),
        tasa_fallos=dev.simulada_failure_rate,
        concurrencia=settings.pasarela_concurrency,
        semilla=dev.simulada_seed,
    )


def _cmd_env(settings: Settings, dev: DevSettings, _: argparse.Namespace) -> int:
    print("# the operator commands' settings against `make run` (pagos-dev run) with this environment")
    print("\n".join(perfiles.exports(dev, settings)), flush=True)
    return 0


async def _cmd_infra(settings: Settings, dev: DevSettings, args: argparse.Namespace) -> int:
    # Replicas started against this may be killed: the proxy keeps pulsar-lite redelivering then.
    async with embedded_services(dev, settings, graceful_proxy=True, broker=args.broker) as embedded:
        s = embedded.settings
        exports = [f"export PAGOS_DATABASE_URL={s.database_url}", f"export PAGOS_PULSAR_URL={s.pulsar_url}"]
        if isinstance(embedded.pulsar, EmbeddedApachePulsar):
            exports.insert(0, f"# Apache Pulsar standalone; admin REST API at {embedded.pulsar.admin_url}")
        if embedded.simulador is not None and s.stripe_secret_key is not None:
            exports += [
                f"export PAGOS_STRIPE_API_BASE={s.stripe_api_base}",
                f"export PAGOS_STRIPE_SECRET_KEY={s.stripe_secret_key.get_secret_value()}",  # the simulator's
                f"export PAGOS_STRIPE_DESTINATION_TEMPLATE='{s.stripe_destination_template}'",
            ]
        print("\n".join(exports), flush=True)
        await _until_signal()
    return 0


async def _cmd_simulador(_: Settings, dev: DevSettings, args: argparse.Namespace) -> int:
    host, port = args.host or dev.simulador_host, args.port or dev.simulador_port
    state_file = args.state_file or dev.simulador_state_file
    fallas = Fallas(
        latencia=dev.simulador_latency,
        tasa_rechazo=dev.simulador_decline_rate,
        tasa_500=dev.simulador_error_rate,
        tasa_429=dev.simulador_rate_limit_rate,
        tasa_timeout_tras_exito=dev.simulador_timeout_after_success_rate,
        tasa_500_guardado=dev.simulador_saved_error_rate,
        limite_cuenta_por_s=dev.simulador_account_rate_limit,
        retraso_listado_s=dev.simulador_list_lag_seconds,
        no_listado_s=dev.simulador_unlisted_seconds,
    )
    elevar_limite_de_descriptores(0, 0)  # as far as the hard limit goes: one socket per client connection
    ledger = Ledger(state_file, ttl_claves_s=dev.simulador_idempotency_ttl_s)
    simulador = Simulador(fallas, ledger, semilla=dev.simulador_seed)
    http = args.http or dev.simulador_http
    servidor = simulador.servidor() if http == "propio" else ServidorAiohttp(simulador.manejar)
    await servidor.escuchar(host, port)
    print(f"simulador listening on http://{host}:{port} (ledger: {ledger.archivo})", flush=True)
    tune_gc()
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


async def _cmd_chaos(_: Settings, __: DevSettings, args: argparse.Namespace) -> int:
    from pagos_dev.tools import chaos  # noqa: PLC0415 - only when asked for

    args.salida.mkdir(parents=True, exist_ok=True)
    fallidas = 0
    for n in range(1, args.repeticiones + 1):
        config = chaos.ChaosConfig.corta() if args.corta else chaos.ChaosConfig.completa()
        data_dir = Path(tempfile.mkdtemp(prefix="pagos-chaos-"))
        informe = await chaos.correr(config, data_dir, broker=args.broker)
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


async def _cmd_bench_pipeline(_: Settings, __: DevSettings, args: argparse.Namespace) -> int:
    from pagos_dev.tools import bench, bench_broker  # noqa: PLC0415 - only when asked for

    desconocidos = set(args.escenarios) - set(bench.ESCENARIOS) - bench.OTROS
    if desconocidos:
        print(f"escenarios desconocidos: {', '.join(sorted(desconocidos))}", file=sys.stderr)
        return 2
    args.salida.mkdir(parents=True, exist_ok=True)
    salida = args.salida / f"bench-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    with tempfile.TemporaryDirectory(prefix="pagos-bench-") as base:
        servidores = bench_broker.Servidores(args.postgres_url, args.pulsar_url, broker=args.broker)
        resultados = await bench.correr_todos(
            args.escenarios, salida, Path(base), args.pagos, servidores, rate_latencia=args.rate
        )
    print(bench.tabla(resultados))
    print(orjson.dumps(resultados).decode())
    print(f"\ninforme: {salida}", flush=True)
    return 0


def _cmd_bench_simulador(_: Settings, __: DevSettings, args: argparse.Namespace) -> int:
    from pagos_dev.tools import carga_simulador  # noqa: PLC0415 - only when asked for

    print(orjson.dumps(carga_simulador.main(args.transfers, args.rate, args.conexiones, args.http)).decode())
    return 0


def _cmd_bench_adapter(_: Settings, __: DevSettings, args: argparse.Namespace) -> int:
    from pagos_dev.tools import bench_adapter  # noqa: PLC0415 - only when asked for

    bench_adapter.main(args.calls, args.concurrency)
    return 0


def _cmd_bench_decode(_: Settings, __: DevSettings, args: argparse.Namespace) -> int:
    from pagos_dev.tools import bench_decode  # noqa: PLC0415 - only when asked for

    bench_decode.main(args.comandos, args.repeticiones)
    return 0


def _cmd_bench_traza(_: Settings, __: DevSettings, args: argparse.Namespace) -> int:
    from pagos_dev.tools import bench_traza  # noqa: PLC0415 - only when asked for

    bench_traza.main(args.veces, args.repeticiones)
    return 0


def _cmd_contract(_: Settings, __: DevSettings, args: argparse.Namespace) -> int:
    from pagos_dev.tools import contrato  # noqa: PLC0415 - only when asked for

    return contrato.main(args.raiz, comprobar=args.check)
