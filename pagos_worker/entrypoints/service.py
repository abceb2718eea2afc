"""Runs the wired roles in one event loop until SIGTERM/SIGINT, then shuts down in order:
stop intake, drain in-flight payments, flush the relay, close the HTTP side — all within the
deadlines of `apagado` (`shutdown_timeout` + 5 s at most)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import structlog
from aiohttp import web

from pagos_worker.bootstrap import Servicio
from pagos_worker.entrypoints import apagado
from pagos_worker.entrypoints.http_api import create_app, create_operations_app
from pagos_worker.entrypoints.worker import CommandWorker

log = structlog.get_logger(__name__)

HTTP_SHUTDOWN_SECONDS = 0.5  # requests still running when the HTTP side closes get this long


async def serve(servicio: Servicio, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    with _stop_on_signals(stop):
        runner = await _start_http(servicio)
        try:
            await _run_roles(servicio, stop)
        finally:
            await runner.cleanup()


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def command_worker(servicio: Servicio) -> CommandWorker | None:
    """The worker role's transport, from what bootstrap wired for it."""
    if (c := servicio.consumo) is None:
        return None
    return CommandWorker(
        c.source,
        c.procesar,
        c.dlq,
        es_transitorio=c.es_transitorio,
        fallos=c.fallos,
        gate=c.gate,
        max_intentos=c.max_intentos,
        espera_maxima=c.espera_maxima,
    )


async def _start_http(servicio: Servicio) -> web.AppRunner:
    """The API's routes with the api role; /healthz, /readyz and /metrics on every process."""
    tokens = servicio.settings.tokens_http()
    if (c := servicio.consultas) is None:
        app = create_operations_app(servicio.readiness, tokens)
    else:
        app = create_app(c.estado, c.estadisticas, c.atencion, servicio.readiness, tokens)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=HTTP_SHUTDOWN_SECONDS)
    await runner.setup()
    await web.TCPSite(runner, servicio.settings.http_host, servicio.settings.http_port).start()
    return runner


async def _run_roles(servicio: Servicio, stop: asyncio.Event) -> None:
    relay_stop = asyncio.Event()
    tasks: dict[str, asyncio.Task[None]] = {}
    drain = servicio.settings.shutdown_timeout_seconds
    if (worker := command_worker(servicio)) is not None:
        tasks["worker"] = asyncio.create_task(worker.run(stop, drain_timeout=drain))
    if servicio.reconciliador is not None:
        tasks["reconciliador"] = asyncio.create_task(servicio.reconciliador.run(stop))
    if servicio.relay is not None:
        tasks["relay"] = asyncio.create_task(servicio.relay.run(relay_stop))

    reporters = [asyncio.create_task(loop(stop)) for loop in servicio.segundo_plano]
    # A role that ends by itself (a bug, or an outage it cannot survive) stops the whole process.
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopping, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
    failed = [name for name, task in tasks.items() if task in done]
    stop.set()
    plazos = apagado.Plazos.desde_ahora(drain)
    servicio.cerrar_antes_de = plazos.cierre  # bootstrap's closes keep to it
    apagado.vigilar(drain + apagado.VIGILANTE_S)
    log.info("servicio.deteniendo", roles_caidos=failed, plazo_s=drain + apagado.MARGEN_S)
    await apagado.esperar_o_cancelar(reporters, 0.5)  # a sample stuck on the database is let go

    # Order matters: payments finish (and commit their events) before the relay's last flush. The
    # worker cancels what did not finish within the drain; the reconciler stops between payments,
    # and a payment of it still at the gateway then is cancelled (its lease expires; it is resumed).
    roles = [tasks[t] for t in ("worker", "reconciliador") if t in tasks]
    await apagado.esperar_o_cancelar(roles, plazos.restante(plazos.drenaje) + 0.2)
    relay_stop.set()
    if servicio.publicacion is not None:
        await servicio.publicacion.drenar(plazos.restante(plazos.relay))
    if servicio.relay is not None:
        await apagado.esperar_o_cancelar([tasks["relay"]], plazos.restante(plazos.relay))
        try:
            publicados = await asyncio.wait_for(servicio.relay.vaciar(), plazos.restante(plazos.relay))
            log.info("relay.vaciado", eventos=publicados)
        except Exception as exc:  # noqa: BLE001 - what is left is published after the next start
            log.warning("relay.no_vaciado", error=repr(exc))
    for name in failed:
        if (error := tasks[name].exception()) is not None:
            raise error
