"""The pipeline benchmark (`pagos-dev bench pipeline`, `make bench`): the whole service on this
machine — worker replicas, the Stripe simulator over real HTTP, pulsar-lite, PostgreSQL — with a
payment counted as done when its event arrives on pagos-events.

Scenarios: `pasarela` (gateway-bound: 200 ms, limit 100), `cpu` (5 ms gateway, the most the machine
does), `latencia` (half the CPU-bound maximum, at a fixed rate), `escala` (the gateway-bound scenario
with 1 and 2 replicas), `lectura` (GET /pagos/{id} with 1,000,000 payments in the table while
payments flow), `semilla` (the seed's gateway: 2-8 s a payment, 10,000 in flight in one replica),
`presupuesto-N` (N replicas sharing the Stripe account's 100 requests/s, which the simulator
enforces with 429s, behind a gateway fast enough for ten times that) and `reversos` (as
`presupuesto-2`, with one command in five a `ReversarPago` of a payment published earlier; a
reversal is counted by its `id_reverso` when its one event arrives: `bench_reversos`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import os
import random
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import psutil

from pagos_dev.tools import bench_broker, bench_conciliacion, bench_reversos
from pagos_dev.tools.bench_broker import CpuPorHilo, Servidores, borrar_topicos, broker_de_la_corrida, rss_mb
from pagos_dev.tools.chaos import percentiles
from pagos_dev.tools.cluster import Cluster, ClusterConfig
from pagos_dev.tools.observador import Lector, Mensaje, Publicador, cliente
from pagos_worker.adapters.postgres.database import asyncpg_dsn


@dataclass(frozen=True)
class Escenario:
    nombre: str
    pagos: int
    latencia_ms: float  # the simulator's latency (its mean, when `latencia_simulador` says otherwise)
    concurrencia_pasarela: int  # per replica: the gateway bound is this / latency
    concurrencia_worker: int
    workers: int = 1
    rate: float | None = None  # offered commands/s; None: all published first, as fast as possible
    lectura: bool = False
    env: dict[str, str] = field(default_factory=dict)
    latencia_simulador: str | None = None  # e.g. uniform:2000:8000; None: fixed:latencia_ms
    presupuesto_cuenta: float | None = None  # the account's requests/s: the service's and the simulator's
    reversos: float = 0.0  # the share of the commands that are ReversarPago (`pagos` stays the payments)
    # How many commands after the last one about its payment a reversal comes (`bench_reversos`).
    distancia_reversos: tuple[int, int] = (400, 1200)

    @property
    def cota_pasarela(self) -> float:
        cota = self.workers * self.concurrencia_pasarela / (self.latencia_ms / 1000)
        return cota if self.presupuesto_cuenta is None else min(cota, self.presupuesto_cuenta)


# At a fixed rate the publisher sends what is due every 2 ms: at 2,000/s about four commands a wake-up
# instead of one: less of this shared machine for the publisher, fewer and larger broker entries.
_TICK_PUBLICADOR = 0.002

ESCENARIOS = {
    "pasarela": Escenario("pasarela", 12_000, 200, 100, 200),
    "cpu": Escenario("cpu", 400_000, 5, 200, 300, workers=2),
    "latencia": Escenario(
        "latencia",
        60_000,
        5,
        200,
        300,
        workers=2,
        rate=1000,
    ),
    "escala-1": Escenario("escala-1", 12_000, 200, 100, 200, workers=1),
    "escala-2": Escenario("escala-2", 24_000, 200, 100, 200, workers=2),
    "lectura": Escenario("lectura", 6_000, 20, 100, 200, rate=200, lectura=True),
    # The seed's own gateway: 2-8 s a payment. One replica holds 10,000 payments in flight, so the
    # bound is 10,000 / 5 s = 2,000/s; what it costs is memory and sockets, not CPU.
    "semilla": Escenario("semilla", 60_000, 5_000, 10_000, 10_000, latencia_simulador="uniform:2000:8000"),
    # Stripe's live budget, 100 requests/s per account, shared by 1, 2 or 4 replicas that could send
    # 1,000/s each (50 in flight at 50 ms): the account's budget is the bound, and the simulator
    # answers 429 beyond it. 60 s of budget each.
    **{
        f"presupuesto-{n}": Escenario(f"presupuesto-{n}", 6_000, 50, 50, 100, workers=n, presupuesto_cuenta=100)
        for n in (1, 2, 4)
    },
    # The budget shared by 2 replicas with 80 % payments and 20 % reversals (6,000 commands, about
    # 60 s of budget): a reversal takes its turns of the same budget as a payout does.
    "reversos": Escenario("reversos", 4_800, 50, 50, 100, workers=2, presupuesto_cuenta=100, reversos=0.2),
}
# Scenarios that are not a pipeline run (`correr_todos` hands them to their own module); asked for by name.
OTROS = frozenset({"conciliacion"})
# The account budget's targets: the request rate within ±3 % of the budget in every 10 s window
# after the first, 429s at most 0.5 % of the requests, at least 95 % of the budget used.
OBJETIVOS_PRESUPUESTO = {"desvio_max": 0.03, "fraccion_429": 0.005, "uso": 0.95}
_VENTANA_PRESUPUESTO_S = 10.0
EMBEBIDOS = Servidores()  # every server embedded, pulsar-lite the broker


def comandos(n: int, rng: random.Random) -> list[tuple[bytes, str | None]]:
    mensajes: list[tuple[bytes, str | None]] = []
    for _ in range(n):
        id_pago = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        cmd = {
            "id_pago": id_pago,
            "id_afiliado": f"afiliado_{rng.randrange(1000)}",
            "monto": f"{rng.randrange(100, 100_000) / 100:.2f}",
            "moneda": rng.choice(("USD", "EUR", "COP")),
        }
        mensajes.append((orjson.dumps(cmd), id_pago))
    return mensajes


class _Cpu:
    """CPU seconds used by a set of processes (and the children they reaped) between two reads."""

    def __init__(self, grupos: dict[str, list[int]]) -> None:
        self._grupos = dict(grupos)
        self._inicio = self._leer(self._grupos)

    def agregar(self, nombre: str, pids: list[int]) -> None:
        """Start counting these processes from now on as well."""
        self._grupos[nombre] = pids
        self._inicio.update(self._leer({nombre: pids}))

    def _leer(self, grupos: dict[str, list[int]]) -> dict[int, float]:
        total: dict[int, float] = {}
        for pids in grupos.values():
            for pid in pids:
                with _sin_proceso():
                    raiz = psutil.Process(pid)
                    for p in [raiz, *raiz.children(recursive=True)]:
                        with _sin_proceso():
                            t = p.cpu_times()
                            total[p.pid] = t.user + t.system + t.children_user + t.children_system
        return total

    def gastado(self) -> dict[str, float]:
        fin = self._leer(self._grupos)
        por_grupo = {}
        for nombre, pids in self._grupos.items():
            suma = 0.0
            for pid in pids:
                with _sin_proceso():
                    raiz = psutil.Process(pid)
                    for p in [raiz, *raiz.children(recursive=True)]:
                        suma += fin.get(p.pid, 0.0) - self._inicio.get(p.pid, 0.0)
            por_grupo[nombre] = round(suma, 2)
        return por_grupo


class _sin_proceso:  # noqa: N801 - a context manager used like a keyword
    def __enter__(self) -> None:
        return None

    def __exit__(self, tipo: type[BaseException] | None, *_: object) -> bool:
        return tipo is not None and issubclass(tipo, psutil.Error)


def _percentiles(valores: list[float], escala: float = 1000.0) -> dict[str, float]:
    if len(valores) < 2:  # noqa: PLR2004 - no distribution to speak of
        return {}
    return percentiles(valores, escala=escala, decimales=1)


_ultimo_progreso = [0.0]


def _progreso(nombre: str, hechos: int, total: int, rate: float) -> None:
    """A progress bar on a terminal; a line every 5 s otherwise (CI logs)."""
    lleno = int(30 * hechos / max(total, 1))
    barra = f"  {nombre:<9} [{'#' * lleno}{'.' * (30 - lleno)}] {hechos:>7}/{total}  {rate:7.0f}/s "
    if sys.stderr.isatty():
        sys.stderr.write("\r" + barra)
    elif time.monotonic() - _ultimo_progreso[0] >= 5 or hechos >= total:  # noqa: PLR2004
        _ultimo_progreso[0] = time.monotonic()
        sys.stderr.write(barra + "\n")
    sys.stderr.flush()


async def correr(escenario: Escenario, data_dir: Path, servidores: Servidores = EMBEBIDOS) -> dict[str, Any]:
    """One scenario on its own cluster; on Apache Pulsar (`servidores.broker`), the run's broker
    (`correr_todos` starts it once), or one of its own if none was given."""
    async with broker_de_la_corrida(servidores, data_dir) as servidores_de_la_corrida:
        return await _correr(escenario, data_dir, servidores_de_la_corrida)


async def _correr(escenario: Escenario, data_dir: Path, servidores: Servidores) -> dict[str, Any]:
    env = {
        "PAGOS_WORKER_CONCURRENCY": str(escenario.concurrencia_worker),
        "PAGOS_PASARELA_CONCURRENCY": str(escenario.concurrencia_pasarela),
        "PAGOS_STRIPE_RATE_LIMIT": "1000000",
        "PAGOS_STRIPE_RATE_BURST": "100000",
        **escenario.env,
    }
    simulador_env = {
        "PAGOS_SIMULADOR_LATENCY": escenario.latencia_simulador or f"fixed:{escenario.latencia_ms:g}",
        "PAGOS_SIMULADOR_DECLINE_RATE": "0.1",
    }
    if escenario.presupuesto_cuenta is not None:
        presupuesto = f"{escenario.presupuesto_cuenta:g}"
        env |= {"PAGOS_STRIPE_RATE_LIMIT": presupuesto, "PAGOS_STRIPE_RATE_BURST": "20"}
        simulador_env["PAGOS_SIMULADOR_ACCOUNT_RATE_LIMIT"] = presupuesto
    topicos = bench_broker.topicos(escenario.nombre, servidores)
    cluster = Cluster(
        ClusterConfig(
            data_dir,
            postgres_url=servidores.postgres_url,
            pulsar_url=servidores.pulsar_url,
            broker=servidores.broker,
            topics=topicos,
            workers=escenario.workers,
            worker_env=env,
            simulador_env=simulador_env,
            graceful_proxy=False,  # nobody is killed here
            ledger_en_archivo=False,
            # Reads go to an API-only process, as operators would run it: the workers' event loops
            # are busy with payments, and a status query should not wait behind them.
            api_aparte=escenario.lectura,
        )
    )
    try:
        await cluster.start()
        client = cliente(cluster.pulsar_url, data_dir / "observador-pulsar.log")
        try:
            eventos = Lector(client, topicos["PAGOS_EVENTS_TOPIC"], "bench-eventos")
            # Upstream services batch their sends (the Java client does by default): the broker
            # stores entries of many commands. At a fixed rate, what is due goes out every 2 ms.
            publicador = Publicador(
                client, topicos["PAGOS_COMMANDS_TOPIC"], batching=True, por_lote=True, tick=_TICK_PUBLICADOR
            )
            try:
                informe = await _medir(escenario, cluster, eventos, publicador, servidores.broker_pid)
            finally:
                eventos.cerrar()
                publicador.cerrar()
        finally:
            client.close()
    finally:
        await cluster.stop()  # also after a failed start: nothing is left running
    await borrar_topicos(servidores, topicos)
    return {**informe, "broker": servidores.descripcion_broker()}


async def _medir(
    escenario: Escenario, cluster: Cluster, eventos: Lector, publicador: Publicador, broker_pid: int | None
) -> dict[str, Any]:
    # No collections in this process while it measures: a full one (the reader's list of events
    # grows to hundreds of thousands) holds the GIL for ~100 ms, and the reader thread would stamp
    # the events that arrived meanwhile that much late.
    gc.disable()
    try:
        return await _medir_sin_gc(escenario, cluster, eventos, publicador, broker_pid)
    finally:
        gc.enable()


async def _medir_sin_gc(
    escenario: Escenario, cluster: Cluster, eventos: Lector, publicador: Publicador, broker_pid: int | None
) -> dict[str, Any]:
    mezcla = _comandos_de(escenario)
    mensajes, reversos = mezcla.mensajes, mezcla.reversos
    lectura: asyncio.Task[dict[str, Any]] | None = None
    if escenario.lectura:
        ids = await _precargar(cluster.database_url, 1_000_000)
    if escenario.rate is None:
        # Everything on the topic first, then the workers: the most they can do, undisturbed by a
        # publisher (whose own CPU is the upstream service's, never counted).
        for i in range(escenario.workers):
            await cluster.stop_worker(i)
        await asyncio.sleep(1)  # their PostgreSQL backends gone (a reaped child's CPU would count)
    # Counted from here: the broker's and PostgreSQL's CPU from before the commands arrive (storing
    # them is part of the payment's cost), the workers' from when they are ready (not their start-up).
    procesos = _procesos(cluster, broker_pid)
    cpu = _Cpu({k: v for k, v in procesos.items() if k != "workers"})
    hilos = {"broker": CpuPorHilo(procesos.get("broker", []))}
    if escenario.rate is None:
        publicador.empezar(mensajes, rate=1e9)
        await asyncio.to_thread(publicador.esperar)
        for i in range(escenario.workers):
            await cluster.start_worker(i)
    cpu.agregar("workers", _procesos(cluster, broker_pid)["workers"])
    hilos["workers"] = CpuPorHilo(_procesos(cluster, broker_pid)["workers"])
    inicio = time.monotonic()  # payments done before this instant (a worker up first) do not count
    if escenario.rate is not None:
        publicador.empezar(mensajes, rate=escenario.rate)
    if escenario.lectura:
        lectura = asyncio.create_task(_lectura_y_bucle(cluster.api_aparte_url, ids, cluster.config.data_dir))
    async with _peticiones_al_simulador(cluster, escenario.presupuesto_cuenta is not None) as peticiones:
        muestras = await _esperar_eventos(escenario, cluster, eventos, inicio, reversos, procesos.get("broker"))
        fin = time.monotonic()
    gastado = cpu.gastado()
    por_hilo = _por_hilo(hilos, gastado)
    sys.stderr.write("\n")
    informe = await _informe(
        escenario, cluster, eventos, publicador, inicio, fin, gastado, muestras, await lectura if lectura else None
    )
    informe["cpu_por_hilo_s"] = por_hilo
    if reversos:
        informe["reversos"] = await _informe_reversos(cluster, eventos, mezcla)
    if escenario.presupuesto_cuenta is not None:
        # What the budget served: the payments' rate where every command is a request; where
        # reversals share it (and some commands need none), the requests the account accepted.
        sostenido = None if reversos else informe["pagos_s_sostenido"]
        informe["presupuesto"] = _presupuesto(escenario.presupuesto_cuenta, peticiones, sostenido)
    return informe


def _por_hilo(hilos: dict[str, CpuPorHilo], gastado: dict[str, float]) -> dict[str, dict[str, float]]:
    """Where the broker's and the workers' CPU went, by thread family (a broker not counted: none)."""
    return {grupo: h.gastado(gastado[grupo]) for grupo, h in hilos.items() if grupo in gastado}


def _comandos_de(escenario: Escenario) -> bench_reversos.Mezcla:
    """The scenario's commands: its payments and, where it has them, reversals among them."""
    rng = random.Random(7)  # noqa: S311 - test data
    pagos = comandos(escenario.pagos, rng)
    if not escenario.reversos:
        solos: list[Mensaje] = list(pagos)
        return bench_reversos.Mezcla(solos, [], 0)
    return bench_reversos.mezclar(pagos, escenario.reversos, rng, escenario.distancia_reversos)


async def _informe_reversos(cluster: Cluster, eventos: Lector, mezcla: bench_reversos.Mezcla) -> dict[str, Any]:
    """What became of the reversals (`bench_reversos.recuento`), how many they were with an amount,
    how often one was held for its payment, and how many the simulator made (its PagoReversado)."""
    return {
        **bench_reversos.recuento(mezcla.reversos, eventos.eventos, (data for data, _ in eventos.mensajes)),
        "parciales": mezcla.parciales,
        "esperas": await _esperas(cluster),
        "en_el_simulador": (await cluster.simulador("GET", "/_simulador/estadisticas"))["reversos"],
    }


async def _esperas(cluster: Cluster) -> int:
    """How many times a reversal was held because its payment was not final yet, all replicas."""
    total = 0.0
    for i in range(len(cluster.workers)):
        total += await _contador(cluster.api_url(i), 'pagos_comandos_total{motivo="esperando_pago"}')
    return int(total)


async def _contador(api: str, serie: str) -> float:
    """One series of a process's Prometheus counters (0 if it has none yet)."""
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{api}/metrics") as resp:
            texto = await resp.text()
    except aiohttp.ClientError:
        return 0.0
    return sum(float(linea.rsplit(" ", 1)[1]) for linea in texto.splitlines() if linea.startswith(serie + " "))


@contextlib.asynccontextmanager
async def _peticiones_al_simulador(cluster: Cluster, activo: bool) -> AsyncIterator[list[tuple[float, int, int]]]:
    muestras: list[tuple[float, int, int]] = []
    if not activo:
        yield muestras
        return
    muestreo = asyncio.create_task(_muestrear_simulador(cluster, muestras))
    try:
        yield muestras
    finally:
        muestreo.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await muestreo


async def _muestrear_simulador(cluster: Cluster, muestras: list[tuple[float, int, int]]) -> None:
    """The simulator's count of API requests and of the account limit's 429s, every 0.25 s (until
    cancelled): the gateway's request rate in any window, as the account sees it."""
    while True:
        antes = time.monotonic()
        respuestas = (await cluster.simulador("GET", "/_simulador/estadisticas"))["respuestas"]
        t = (antes + time.monotonic()) / 2
        muestras.append((t, int(respuestas.get("peticiones", 0)), int(respuestas.get("429_limite_cuenta", 0))))
        await asyncio.sleep(0.25 - (time.monotonic() - antes) % 0.25)


def _presupuesto(limite: float, muestras: list[tuple[float, int, int]], sostenido: float | None) -> dict[str, Any]:
    """The request rate in each 10 s window from the first request until the backlog ran out (the
    last second with requests is left out: the last payments trickle), the 429s among them, and the
    sustained throughput against the budget: `sostenido` (a rate of commands that are one request
    each), or else the requests the account accepted (not 429) a second in the windows after the
    first. `cumple` judges each against `OBJETIVOS_PRESUPUESTO` (None: too few windows to judge)."""
    activas = [m for m in muestras if m[1] > 0]
    if len(activas) < 2:  # noqa: PLR2004
        return {"limite_s": limite, "ventanas_s": []}
    total = activas[-1][1]
    t0 = activas[0][0]
    hasta = next(t for t, n, _ in activas if n >= total) - 1.0

    def en(t: float, i: int = 1) -> float:  # count i (requests, 429s) at instant t, linear between samples
        for ma, mb in itertools.pairwise(activas):
            if ma[0] <= t <= mb[0]:
                return ma[i] + (mb[i] - ma[i]) * (t - ma[0]) / max(mb[0] - ma[0], 1e-9)
        return float(activas[-1][i])

    ventanas = []
    k = 0
    while t0 + (k + 1) * _VENTANA_PRESUPUESTO_S <= hasta:
        a, b = t0 + k * _VENTANA_PRESUPUESTO_S, t0 + (k + 1) * _VENTANA_PRESUPUESTO_S
        ventanas.append(round((en(b) - en(a)) / _VENTANA_PRESUPUESTO_S, 1))
        k += 1
    rechazadas = activas[-1][2]
    tras_la_primera = ventanas[1:]
    if sostenido is None and tras_la_primera:
        a, b = t0 + _VENTANA_PRESUPUESTO_S, t0 + len(ventanas) * _VENTANA_PRESUPUESTO_S
        sostenido = (en(b) - en(b, 2) - en(a) + en(a, 2)) / (b - a)
    pres: dict[str, Any] = {
        "limite_s": limite,
        "ventanas_s": ventanas,
        "desvio_max": round(max((abs(v / limite - 1) for v in tras_la_primera), default=0.0), 4),
        "peticiones": total,
        "429": rechazadas,
        "fraccion_429": round(rechazadas / max(total, 1), 5),
        "uso": None if sostenido is None else round(sostenido / limite, 3),
    }
    return pres | {"cumple": _cumple(pres)}


def _cumple(pres: dict[str, Any]) -> dict[str, bool | None]:
    """Each of the budget's targets met (True), missed (False) or not measured (None)."""
    objetivo = OBJETIVOS_PRESUPUESTO
    uso = pres.get("uso")
    return {
        "ritmo": pres["desvio_max"] <= objetivo["desvio_max"] if len(pres["ventanas_s"]) > 1 else None,
        "429": pres["fraccion_429"] <= objetivo["fraccion_429"],
        "uso": None if uso is None else uso >= objetivo["uso"],
    }


def _procesos(cluster: Cluster, broker_pid: int | None = None) -> dict[str, list[int]]:
    """The processes whose CPU is counted: everything on this machine, the run's Apache Pulsar
    (`broker_pid`) included (given servers are not)."""
    procesos = {
        "workers": [w.process.pid for w in cluster.workers if w.process is not None],
        "simulador": [cluster.simulador_pid],
    }
    if cluster.pulsar is not None:
        procesos["broker"] = [cluster.pulsar.pid]
    elif broker_pid is not None:
        procesos["broker"] = [broker_pid]
    if cluster.postgres is not None:
        procesos["postgres"] = [cluster.postgres.pid]
    if cluster.api is not None and cluster.api.process is not None:
        procesos["api"] = [cluster.api.process.pid]
    return procesos


async def _esperar_eventos(  # noqa: PLR0917 - what the wait samples
    escenario: Escenario,
    cluster: Cluster,
    eventos: Lector,
    inicio: float,
    reversos: list[str],
    broker: list[int] | None,
) -> dict[str, list[float]]:
    """Until every payment has its event, and every reversal in `reversos` its own (by id_reverso:
    a reversal's event is keyed by its payment's id too); samples the service's memory, the
    broker's (if counted) and the outbox backlog."""
    conn = await asyncpg.connect(asyncpg_dsn(cluster.database_url))
    muestras: dict[str, list[float]] = {"rss_mb": [], "rss_broker_mb": [], "outbox_pendientes": []}
    vistos: set[str] = set()
    por_ver = set(reversos)
    total = escenario.pagos + len(por_ver)
    leidos = 0
    try:
        while len(vistos) < escenario.pagos or por_ver:
            await asyncio.sleep(0.5)
            nuevos = eventos.eventos[leidos:]
            leidos += len(nuevos)
            vistos.update(e.id_pago for e in nuevos if e.id_reverso is None)
            por_ver.difference_update(e.id_reverso for e in nuevos if e.id_reverso is not None)
            hechos = len(vistos) + len(reversos) - len(por_ver)
            transcurrido = time.monotonic() - inicio
            _progreso(escenario.nombre, hechos, total, hechos / max(transcurrido, 1e-9))
            for w in cluster.workers:
                if w.process is not None:
                    with _sin_proceso():
                        muestras["rss_mb"].append(psutil.Process(w.process.pid).memory_info().rss / 2**20)
            for pid in broker or []:
                muestras["rss_broker_mb"].append(rss_mb(pid))
            muestras["outbox_pendientes"].append(
                await conn.fetchval("SELECT count(*) FROM outbox WHERE publicado_en IS NULL")
            )
            if transcurrido > max(600, 5 * total / 100):
                break
    finally:
        await conn.close()
    return muestras


async def _informe(  # noqa: PLR0917 - what one run measured
    escenario: Escenario,
    cluster: Cluster,
    eventos: Lector,
    publicador: Publicador,
    inicio: float,
    fin: float,
    cpu: dict[str, float],
    muestras: dict[str, list[float]],
    lectura: dict[str, Any] | None,
) -> dict[str, Any]:
    primero: dict[str, float] = {}
    for e in eventos.eventos:
        if e.id_reverso is None:  # a payment's event (a reversal's is keyed by id_pago as well)
            primero.setdefault(e.id_pago, e.recibido)
    tiempos = sorted(primero.values())
    hechos = len(tiempos)
    en_ventana = sum(1 for t in tiempos if t >= inicio)
    # Sustained rate: the middle 90% of completions (no ramp-up, no tail).
    a, b = tiempos[int(hechos * 0.05)], tiempos[int(hechos * 0.95) - 1]
    sostenido = (int(hechos * 0.95) - 1 - int(hechos * 0.05)) / max(b - a, 1e-9)
    latencias = []
    if escenario.rate is not None:
        enviado: dict[str | None, float] = {}
        # From when each command was due, not when the publisher got to it: a publisher falling
        # behind does not hide the delay.
        for (_, id_pago, *_), t in zip(publicador.mensajes, publicador.debidos, strict=False):
            enviado.setdefault(id_pago, t)
        latencias = [primero[i] - enviado[i] for i in primero if i in enviado]
    # The payments' cost: the API-only process of `lectura` serves the read load (shown apart).
    total_cpu = sum(v for k, v in cpu.items() if k != "api")
    return {
        "escenario": escenario.nombre,
        "pagos": escenario.pagos,
        "completados": hechos,
        "workers": escenario.workers,
        "duracion_s": round(fin - inicio, 1),
        "pagos_s": round(hechos / (fin - inicio), 1),
        "pagos_s_sostenido": round(sostenido, 1),
        "ventana_sostenida_s": round(b - a, 1),
        "cota_pasarela_s": round(escenario.cota_pasarela, 1),
        "eficiencia": round(sostenido / escenario.cota_pasarela, 3),
        "latencia_ms": _percentiles(latencias),
        "cpu_s": cpu,
        "cpu_ms_por_pago": round(total_cpu / max(en_ventana, 1) * 1000, 3),
        "cpu_ms_por_pago_por_proceso": {k: round(v / max(en_ventana, 1) * 1000, 3) for k, v in cpu.items()},
        "memoria_pico_mb": round(max(muestras["rss_mb"], default=0), 1),
        "broker_rss_pico_mb": round(max(muestras["rss_broker_mb"], default=0), 1) or None,
        "outbox_pendientes_max": int(max(muestras["outbox_pendientes"], default=0)),
        "relay_lag_ms": await _lag_relay(cluster.database_url),
        "pasarela_p99_ms": await _p99_pasarela(cluster),
        # How late worker 0's event loop ran its timers: a loop that is the bound shows it here.
        "bucle_retraso_p99_ms": await _cuantil_de_metrica(cluster.api_url(0), "event_loop_retraso_segundos", 0.99),
        "lectura": lectura,
        "maquina": {**_maquina(), "referencia_s": _referencia()},
    }


@functools.cache
def _maquina() -> dict[str, Any]:
    """What ran it: figures differ between machines of the same size (one CPU model did 1,827/s
    where another did 2,525/s with the same code)."""
    modelo = "?"
    with contextlib.suppress(OSError):
        for linea in Path("/proc/cpuinfo").read_text().splitlines():
            if linea.startswith("model name"):
                modelo = linea.split(":", 1)[1].strip()
                break
    return {"cpu": modelo, "nucleos": os.cpu_count(), "python": sys.version.split()[0]}


def _referencia() -> float:
    """Seconds for a fixed piece of pure-Python work, measured after the scenario (best of three): the
    machine's speed at that moment. On these shared machines it drifts — 0.11 s to 0.20 s within one
    afternoon — and every figure here moves with it."""
    mejor = float("inf")
    for _ in range(3):
        inicio = time.perf_counter()
        sum(i * i for i in range(2_000_000))
        mejor = min(mejor, time.perf_counter() - inicio)
    return round(mejor, 3)


async def _lag_relay(database_url: str) -> dict[str, float]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        fila = await conn.fetchrow("""
            SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY lag) AS p, max(lag) AS maximo
            FROM (SELECT EXTRACT(EPOCH FROM publicado_en - creado_en) * 1000 AS lag
                  FROM outbox WHERE publicado_en IS NOT NULL) l
        """)
    finally:
        await conn.close()
    if fila is None or fila["p"] is None:
        return {}
    p50, p95, p99 = (round(float(x), 1) for x in fila["p"])
    return {"p50": p50, "p95": p95, "p99": p99, "max": round(float(fila["maximo"]), 1)}


async def _p99_pasarela(cluster: Cluster) -> float | None:
    """The adapter's own p99 for a gateway call, read from worker 0's Prometheus histogram."""
    return await _cuantil_de_metrica(cluster.api_url(0), "pasarela_latencia_segundos", 0.99)


async def _cuantil_de_metrica(api: str, histograma: str, q: float) -> float | None:
    """A quantile (ms) of one of a process's Prometheus histograms, all its label sets together."""
    return _cuantil_de_histograma(await _cubos(api, histograma), q)


async def _cubos(api: str, histograma: str) -> dict[float, float]:
    """A process's Prometheus histogram as cumulative counts by upper bound, label sets summed."""
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{api}/metrics") as resp:
            texto = await resp.text()
    except aiohttp.ClientError:
        return {}
    cubos: dict[float, float] = {}
    for linea in texto.splitlines():
        if linea.startswith(f"{histograma}_bucket{{"):
            le = float(linea.split('le="')[1].split('"')[0])
            cubos[le] = cubos.get(le, 0.0) + float(linea.rsplit(" ", 1)[1])
    return cubos


def _cuantil_de_histograma(cubos: dict[float, float], q: float) -> float | None:
    """Prometheus's histogram_quantile: linear within the bucket the quantile falls in (ms)."""
    if not cubos.get(float("inf")):
        return None
    objetivo = q * cubos[float("inf")]
    anterior_le, anterior_n = 0.0, 0.0
    for le in sorted(cubos):
        if cubos[le] >= objetivo:
            if le == float("inf"):
                return round(anterior_le * 1000, 1)
            fraccion = (objetivo - anterior_n) / max(cubos[le] - anterior_n, 1e-9)
            return round((anterior_le + (le - anterior_le) * fraccion) * 1000, 1)
        anterior_le, anterior_n = le, cubos[le]
    return None


async def _precargar(database_url: str, n: int) -> list[str]:
    """`n` final payments straight into the table (and a sample of their ids to read)."""
    sys.stderr.write(f"  precargando {n} pagos...\n")
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(
            """
            INSERT INTO pagos (id_pago, id_afiliado, monto, moneda, estado, referencia_pago, fecha_creacion,
                               fecha_procesamiento, intentos)
            SELECT gen_random_uuid(), 'afiliado_' || (g % 1000), (g % 100000) / 100.0 + 1, 'USD', 'EXITOSO',
                   'tr_' || g, now(), now(), 1
            FROM generate_series(1, $1) AS g
            """,
            n,
        )
        # A table that has held its million rows for a while: vacuumed, analysed, checkpointed (not
        # measuring the autovacuum and checkpoint a fresh bulk load sets off).
        await conn.execute("VACUUM (ANALYZE) pagos")
        await conn.execute("CHECKPOINT")
        filas = await conn.fetch("SELECT id_pago::text FROM pagos TABLESAMPLE SYSTEM (2) LIMIT 20000")
    finally:
        await conn.close()
    return [f[0] for f in filas]


async def _lectura_y_bucle(api: str, ids: list[str], data_dir: Path) -> dict[str, Any]:
    """The read load's figures, and how late the API process's event loop ran its timers meanwhile
    (its p99 and p99.9, ms): a slow GET with a punctual loop waited elsewhere (PostgreSQL, the
    network, the load's own process)."""
    antes = await _cubos(api, "event_loop_retraso_segundos")
    resultado = await _lectura_en_otro_proceso(api, ids, data_dir)
    despues = await _cubos(api, "event_loop_retraso_segundos")
    durante = {le: n - antes.get(le, 0.0) for le, n in despues.items()}
    resultado["retraso_bucle_api_ms"] = {
        "p99": _cuantil_de_histograma(durante, 0.99),
        "p99.9": _cuantil_de_histograma(durante, 0.999),
    }
    return resultado


async def _lectura_en_otro_proceso(api: str, ids: list[str], data_dir: Path) -> dict[str, Any]:
    """The read load runs in a process of its own: its latencies are the API's, not those of this
    process's event loop, busy with the event reader and the publisher."""
    archivo = data_dir / "ids-lectura.json"
    archivo.write_bytes(orjson.dumps(ids))
    proceso = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pagos_dev.tools.bench", api, str(archivo), stdout=asyncio.subprocess.PIPE
    )
    salida, _ = await proceso.communicate()
    if proceso.returncode != 0:
        raise RuntimeError(f"the read load failed (exit {proceso.returncode})")
    resultado: dict[str, Any] = orjson.loads(salida)
    return resultado


async def _carga_de_lectura(api: str, ids: list[str], *, segundos: float, rate: float = 200) -> dict[str, Any]:
    """GET /pagos/{id} while payments flow: after a second of warm-up, at a fixed offered rate (each
    request timed from when it was due, so a stall is not hidden by requests not being sent), then as
    fast as 8 concurrent clients can go (the rate the API sustains)."""
    rng = random.Random(3)  # noqa: S311 - test data
    errores = 0

    async def una(http: aiohttp.ClientSession, desde: float) -> float:
        nonlocal errores
        async with http.get(f"{api}/pagos/{rng.choice(ids)}") as resp:
            await resp.read()
            errores += resp.status != 200  # noqa: PLR2004
        return time.perf_counter() - desde

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        # A second at the same rate first, not timed: this process's connections are opened then.
        calentamiento = []
        for _ in range(int(rate)):
            await asyncio.sleep(1 / rate)
            calentamiento.append(asyncio.create_task(una(http, time.perf_counter())))
        await asyncio.gather(*calentamiento)
        t0 = time.perf_counter()
        tareas = []
        tarde: list[float] = []  # how late this process sent each request: its own stalls
        for i in range(int(segundos * rate)):
            debido = t0 + i / rate
            if (espera := debido - time.perf_counter()) > 0:
                await asyncio.sleep(espera)
            tarde.append(time.perf_counter() - debido)
            tareas.append(asyncio.create_task(una(http, debido)))
        a_ritmo = await asyncio.gather(*tareas)

        saturado: list[float] = []
        fin = time.monotonic() + 8

        async def bucle() -> None:
            while time.monotonic() < fin:
                saturado.append(await una(http, time.perf_counter()))

        await asyncio.gather(*(bucle() for _ in range(8)))
    return {
        "peticiones_s": rate,
        "latencia_ms": _percentiles(a_ritmo),
        "envio_tarde_ms": _percentiles(tarde),
        "max_peticiones_s": round(len(saturado) / 8, 1),
        "latencia_saturado_ms": _percentiles(saturado),
        "errores": errores,
        "filas_en_pagos": 1_000_000,
    }


def tabla(resultados: list[dict[str, Any]]) -> str:
    cab = (
        f"{'escenario':<10} {'pagos/s':>8} {'cota':>6} {'efic.':>6} {'CPU ms/pago':>11} {'lat p50/p99 ms':>15} "
        f"{'relay p99':>9} {'RSS MB':>7} {'outbox max':>10} {'broker':>11}"
    )
    lineas = [cab, "-" * len(cab)]
    for r in resultados:
        if r["escenario"] == "conciliacion":
            lineas.append(bench_conciliacion.linea(r))
            continue
        lat = r["latencia_ms"]
        lat_txt = f"{lat['p50']}/{lat['p99']}" if lat else "-"
        lineas.append(
            f"{r['escenario']:<10} {r['pagos_s_sostenido']:>8} {r['cota_pasarela_s']:>6.0f} {r['eficiencia']:>6} "
            f"{r['cpu_ms_por_pago']:>11} {lat_txt:>15} {r['relay_lag_ms'].get('p99', '-'):>9} "
            f"{r['memoria_pico_mb']:>7} {r['outbox_pendientes_max']:>10} {r.get('broker', {}).get('nombre', '-'):>11}"
        )
        if rev := r.get("reversos"):
            lineas.append(_linea_reversos(r["completados"], rev))
        if pres := r.get("presupuesto"):
            lineas.append(_linea_presupuesto(pres))
        if r["lectura"]:
            lec = r["lectura"]
            lineas.append(
                f"           GET /pagos/{{id}} at {lec['peticiones_s']:g}/s: p50/p99 "
                f"{lec['latencia_ms'].get('p50')}/{lec['latencia_ms'].get('p99')} ms; "
                f"at most {lec['max_peticiones_s']}/s (8 clients); {lec['errores']} errores"
            )
    return "\n".join(lineas)


def _veredicto(cumple: bool | None, objetivo: str) -> str:
    return f"{'-' if cumple is None else 'ok' if cumple else 'FAIL'} {objetivo}"


def _linea_presupuesto(pres: dict[str, Any]) -> str:
    cumple = pres.get("cumple", {})
    uso = "-" if pres.get("uso") is None else f"{pres['uso']:.1%}"
    return (
        f"           account budget {pres['limite_s']:g}/s: requests/s per 10 s window {pres['ventanas_s']} "
        f"(most off {pres.get('desvio_max', 0):.1%} after the first: {_veredicto(cumple.get('ritmo'), '±3 %')}); "
        f"429s {pres.get('429', 0)} of {pres.get('peticiones', 0)} ({pres.get('fraccion_429', 0):.2%}: "
        f"{_veredicto(cumple.get('429'), '≤ 0.5 %')}); throughput {uso} of the budget "
        f"({_veredicto(cumple.get('uso'), '≥ 95 %')})"
    )


def _linea_reversos(pagos: int, rev: dict[str, Any]) -> str:
    desenlaces = ", ".join(f"{n} {tipo}" for tipo, n in rev["por_desenlace"].items())
    codigos = ", ".join(f"{c} {n}" for c, n in sorted(rev["fallidos_por_codigo"].items()))
    return (
        f"           {pagos} payments done; reversals {rev['con_evento']} of {rev['publicados']} "
        f"({rev['parciales']} partial): {desenlaces}{f' ({codigos})' if codigos else ''}; "
        f"{rev['perdidos']} without an event, {rev['con_varios_eventos']} with more than one, {rev['ajenos']} "
        f"not published ({_veredicto(rev['cumple'], 'one event each')}); held waiting for their payment "
        f"{rev['esperas']} times; {rev['en_el_simulador']} reversals in the simulator"
    )


async def correr_todos(
    nombres: list[str],
    salida: Path,
    base: Path,
    pagos: int | None = None,
    servidores: Servidores = EMBEBIDOS,
    *,
    rate_latencia: float | None = None,
) -> list[dict[str, Any]]:
    """Run the scenarios in order; `latencia` offers `rate_latencia`, or else half of what `cpu`
    sustained (if it ran). On Apache Pulsar (`servidores.broker`) one broker serves them all."""
    async with broker_de_la_corrida(servidores, base) as servidores_de_la_corrida:
        return await _correr_todos(nombres, salida, base, pagos, servidores_de_la_corrida, rate_latencia)


async def _correr_todos(  # noqa: PLR0917 - correr_todos's
    nombres: list[str],
    salida: Path,
    base: Path,
    pagos: int | None,
    servidores: Servidores,
    rate_latencia: float | None,
) -> list[dict[str, Any]]:
    resultados: list[dict[str, Any]] = []
    for nombre in nombres:
        if nombre == "conciliacion":  # not a pipeline run: two books seeded, then `conciliar` (its module)
            sys.stderr.write(f"conciliacion: {pagos or bench_conciliacion.PAGOS} pagos sembrados, conciliar\n")
            resultados.append(
                await bench_conciliacion.correr(
                    base / nombre, pagos or bench_conciliacion.PAGOS, servidores.postgres_url
                )
            )
            await asyncio.to_thread(_soltar_datos, base / nombre)
            await asyncio.to_thread(salida.write_bytes, orjson.dumps(resultados, option=orjson.OPT_INDENT_2))
            continue
        escenario = ESCENARIOS[nombre]
        if pagos is not None:
            escenario = replace(escenario, pagos=pagos)
        cpu = next((r for r in resultados if r["escenario"] == "cpu"), None)
        if nombre == "latencia" and rate_latencia is not None:
            escenario = replace(escenario, rate=rate_latencia)
        elif nombre == "latencia" and cpu is not None:
            escenario = replace(escenario, rate=round(cpu["pagos_s_sostenido"] / 2))
        reversos = bench_reversos.cantidad_de_reversos(escenario.pagos, escenario.reversos)
        sys.stderr.write(
            f"{nombre}: {escenario.pagos} pagos{f' y {reversos} reversos' if reversos else ''}, "
            f"pasarela {escenario.latencia_ms:g} ms, "
            f"{escenario.workers} worker(s), "
            f"{'todo publicado antes' if escenario.rate is None else f'{escenario.rate:g}/s'}, "
            f"broker {servidores.broker}\n"
        )
        resultados.append(await correr(escenario, base / nombre, servidores))
        await asyncio.to_thread(_soltar_datos, base / nombre)
        await asyncio.to_thread(salida.write_bytes, orjson.dumps(resultados, option=orjson.OPT_INDENT_2))
    return resultados


def _soltar_datos(data_dir: Path) -> None:
    """A scenario's databases go when it is done (its logs stay), and what is still dirty in the page
    cache is written out before the next one starts: each scenario starts on a quiet disk, not
    under the writeback of the gigabyte or more that `cpu` leaves."""
    shutil.rmtree(data_dir / "postgres" / "pgdata", ignore_errors=True)
    shutil.rmtree(data_dir / "pulsar" / "db", ignore_errors=True)
    os.sync()


if __name__ == "__main__":  # the read load's own process: python -m pagos_dev.tools.bench API IDS_FILE
    from pagos_worker.entrypoints.runner import run_with_uvloop

    _ids = orjson.loads(Path(sys.argv[2]).read_bytes())
    sys.stdout.write(orjson.dumps(run_with_uvloop(_carga_de_lectura(sys.argv[1], _ids, segundos=20))).decode())
