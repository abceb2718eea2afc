"""The pipeline benchmark's broker: pulsar-lite, started by each scenario's cluster (the default), or
Apache Pulsar standalone (`--broker pulsar`), started once for the run with its JIT at full tier
and warmed up before the first scenario (`calentar`), each scenario on topics of its own, which are
deleted when it ends. Either way the broker's CPU
and RSS are counted under "broker", and where the broker's and the workers' CPU went is told by
thread (the JVM's compiler and collector threads apart from the ones that move messages; the
Pulsar client's native threads apart from the event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import aiohttp
import psutil
import pulsar

from pagos_dev.embedded import pulsar_apache
from pagos_dev.embedded.pulsar_apache import EmbeddedApachePulsar
from pagos_dev.tools.observador import Mensaje, Publicador, cliente
from pagos_worker.config import CONTRACT_COMMANDS_TOPIC, CONTRACT_DLQ_TOPIC, CONTRACT_EVENTS_TOPIC

Broker = Literal["pulsar-lite", "pulsar"]

# Apache Pulsar's heap on a 2-core machine it shares with the service, PostgreSQL and the simulator:
# fixed (Xms = Xmx: no resizing), G1 (the JVM's default here, two GC threads). 1 GB gives the young
# generation room for a burst of 400,000 commands without a collection every few hundred ms; the
# broker's caches are small and off-heap (standalone.conf). Pulsar's own script defaults to 2 GB and
# 4 GB of direct memory, sized for a machine of its own.
HEAP_PULSAR = "1g"


@dataclass(frozen=True)
class Servidores:
    """Given servers to run against (None: the embedded ones, whose CPU is then counted too).

    `broker` is which broker: the embedded one to start, or what the one at `pulsar_url` is (Apache
    Pulsar needs no distinct consumer ids per replica: ADR 0005). `broker_pid` is a broker of this
    machine started for the run (Apache Pulsar, `broker_de_la_corrida`): its CPU and RSS are counted,
    and each scenario's topics are deleted at `broker_admin_url` when it ends."""

    postgres_url: str | None = None
    pulsar_url: str | None = None
    broker: Broker = "pulsar-lite"
    broker_pid: int | None = None
    broker_admin_url: str | None = None
    calentamiento: Calentamiento | None = None  # the run's broker's warm-up, before its first scenario

    def descripcion_broker(self) -> dict[str, Any]:
        """Which broker a scenario ran on, for its JSON result."""
        version = pulsar_apache.PULSAR_VERSION if self.broker == "pulsar" else _version("pulsar-lite")
        dado = self.pulsar_url is not None and self.broker_pid is None
        descripcion: dict[str, Any] = {"nombre": self.broker, "version": None if dado else version, "dado": dado}
        if self.broker == "pulsar" and not dado:
            descripcion["heap"] = HEAP_PULSAR
        if self.calentamiento is not None:
            descripcion["calentamiento"] = self.calentamiento.describir()
        return descripcion


def _version(distribucion: str) -> str | None:
    try:
        return metadata.version(distribucion)
    except metadata.PackageNotFoundError:
        return None


@contextlib.asynccontextmanager
async def broker_de_la_corrida(servidores: Servidores, base: Path) -> AsyncIterator[Servidores]:
    """Apache Pulsar standalone for every scenario of a run (started once: a JVM takes 15-20 s to
    start), warmed up (`calentar`) before the first, stopped at the end, also after a failure; for
    pulsar-lite or a given broker, `servidores` as they are (pulsar-lite is each scenario's cluster's
    own)."""
    if servidores.broker != "pulsar" or servidores.pulsar_url is not None:
        yield servidores
        return
    broker = EmbeddedApachePulsar(base / "pulsar-apache", heap=HEAP_PULSAR, quick=False)
    try:
        await broker.start()
        de_la_corrida = replace(
            servidores, pulsar_url=broker.url, broker_pid=broker.pid, broker_admin_url=broker.admin_url
        )
        calentamiento = await calentar(de_la_corrida, base / "calentamiento-pulsar.log")
        yield replace(de_la_corrida, calentamiento=calentamiento)
    finally:
        await broker.close()


# A JVM compiles its hot paths during its first minutes of traffic: started cold, Apache Pulsar's
# compiler threads (C2, C1) took 23-26 % of its CPU in the first scenario and 13-20 % in the next,
# a cost a broker that has run for days paid long ago, and one pulsar-lite (native code) never pays.
# Before the first scenario the run's broker carries rounds of commands, as the scenarios do, until
# its compilers took under `JIT_MAXIMO` of its CPU over the last `RONDAS_JUZGADAS` rounds (measured
# here: a cold broker gets there after 1.5-2 million messages, ~45 s; C2 still recompiles now and
# then afterwards), or for at most `SEGUNDOS_MAXIMOS`.
MENSAJES_POR_RONDA = 100_000
JIT_MAXIMO = 0.10
RONDAS_JUZGADAS = 3
SEGUNDOS_MAXIMOS = 150.0


@dataclass(frozen=True)
class Ronda:
    """One round of the warm-up: the broker's CPU in it, and its compilers' part of that (s)."""

    cpu_s: float
    jit_s: float


@dataclass(frozen=True)
class Calentamiento:
    """What the warm-up did: its rounds of `mensajes` commands each, and how long it took."""

    mensajes: int
    rondas: tuple[Ronda, ...]
    segundos: float

    def describir(self) -> dict[str, Any]:
        return {"mensajes": self.mensajes * len(self.rondas), "segundos": self.segundos,
                "jit_por_ronda": [round(r.jit_s / max(r.cpu_s, 1e-9), 3) for r in self.rondas]}  # fmt: skip


def basta_de_calentar(rondas: Sequence[Ronda], *, maximo: float = JIT_MAXIMO, juzgadas: int = RONDAS_JUZGADAS) -> bool:
    """Whether the broker is warm: over its last `juzgadas` rounds its compilers took under `maximo`
    of its CPU."""
    if len(rondas) < juzgadas:
        return False
    ultimas = rondas[-juzgadas:]
    return sum(r.jit_s for r in ultimas) < maximo * sum(r.cpu_s for r in ultimas)


async def calentar(
    servidores: Servidores, log: Path, *, mensajes: int = MENSAJES_POR_RONDA, segundos: float = SEGUNDOS_MAXIMOS
) -> Calentamiento:
    """Warm the run's broker up (see `JIT_MAXIMO`) on a topic of its own, deleted afterwards. Rounds
    alternate what the scenarios make the broker do: commands stored first and read back after the
    broker's cache let them go (`cpu`, `semilla`: all published before the workers start), and
    commands read as they arrive (the events, the fixed-rate scenarios); each is published in
    batches and acknowledged one by one, like the service's."""
    url, pid = servidores.pulsar_url, servidores.broker_pid
    if url is None or pid is None:
        raise ValueError("only the run's own broker is warmed up: its URL and its process are needed")
    topico = f"persistent://public/default/bench-calentamiento-{uuid.uuid4().hex[:8]}"
    inicio = time.monotonic()
    rondas: list[Ronda] = []
    client = cliente(url, log)
    try:
        compartida = pulsar.ConsumerType.Shared
        consumer = await asyncio.to_thread(
            client.subscribe, topico, "calentamiento", consumer_type=compartida, receiver_queue_size=1000
        )
        while not basta_de_calentar(rondas) and time.monotonic() - inicio < segundos:
            hilos, antes = CpuPorHilo([pid]), _cpu_s(pid)
            lote = _mensajes(mensajes)
            await asyncio.to_thread(_ronda, client, consumer, topico, lote, leer_despues=len(rondas) % 2 == 0)
            cpu = _cpu_s(pid) - antes
            jit = sum(s for familia, s in hilos.gastado(cpu, minimo=0).items() if "Compiler" in familia)
            rondas.append(Ronda(cpu, jit))
            parte = jit / max(cpu, 1e-9)
            sys.stderr.write(f"\r  Apache Pulsar warming up: round {len(rondas)}, its JIT {parte:.0%} of its CPU ")
        sys.stderr.write("\n")
        consumer.close()
    finally:
        client.close()
    await borrar_topicos(servidores, {"calentamiento": topico})
    return Calentamiento(mensajes, tuple(rondas), round(time.monotonic() - inicio, 1))


def _ronda(
    client: pulsar.Client, consumer: pulsar.Consumer, topico: str, lote: list[Mensaje], *, leer_despues: bool
) -> None:
    publicador = Publicador(client, topico, batching=True, por_lote=True)
    try:
        if leer_despues:
            publicador.empezar(lote, rate=1e9)
            publicador.esperar()
            time.sleep(1.5)  # past the managed-ledger cache's 1 s: read back from the bookie
            _consumir(consumer, len(lote))
        else:
            lector = threading.Thread(target=_consumir, args=(consumer, len(lote)), daemon=True)
            lector.start()
            publicador.empezar(lote, rate=1e9)
            publicador.esperar()
            lector.join()
    finally:
        publicador.cerrar()


def _mensajes(n: int) -> list[Mensaje]:
    """`n` messages the size of a command (~130 bytes), each keyed by its own id as commands are."""
    plantilla = '{"id_pago":"%s","id_afiliado":"afiliado_1","monto":"100.00","moneda":"USD"}'
    claves = [str(uuid.uuid4()) for _ in range(n)]
    return [((plantilla % clave).encode(), clave) for clave in claves]


def _consumir(consumer: pulsar.Consumer, n: int) -> None:
    for _ in range(n):
        consumer.acknowledge(consumer.receive(timeout_millis=60_000))


def _cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def topicos(nombre: str, servidores: Servidores) -> dict[str, str]:
    """The scenario's topics: the contract's on a broker of its own, or else (a shared broker) topics
    of this scenario's own, with nothing left over from another."""
    topicos = {
        "PAGOS_COMMANDS_TOPIC": CONTRACT_COMMANDS_TOPIC,
        "PAGOS_EVENTS_TOPIC": CONTRACT_EVENTS_TOPIC,
        "PAGOS_DLQ_TOPIC": CONTRACT_DLQ_TOPIC,
    }
    if servidores.pulsar_url is None:
        return topicos
    sufijo = f"-bench-{nombre}-{uuid.uuid4().hex[:8]}"
    return {k: v + sufijo for k, v in topicos.items()}


async def borrar_topicos(servidores: Servidores, topicos: Mapping[str, str]) -> None:
    """A scenario's topics off the run's Apache Pulsar (its ledgers go with them), as pulsar-lite's
    data directory goes after each scenario; a topic never created is no error, and one the broker
    would not delete is reported, not raised (the scenario's figures stand; the next has its own)."""
    if servidores.broker_admin_url is None:
        return
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        for topico in topicos.values():
            ruta = urllib.parse.quote(topico.replace("://", "/", 1))
            async with http.delete(f"{servidores.broker_admin_url}/admin/v2/{ruta}?force=true") as resp:
                if resp.status not in {204, 404}:
                    sys.stderr.write(f"  {topico} left on the broker: HTTP {resp.status} {await resp.text()}\n")


def rss_mb(pid: int) -> float:
    """A process's resident memory with its children's (MB)."""
    with contextlib.suppress(psutil.Error):
        raiz = psutil.Process(pid)
        total = 0
        for p in [raiz, *raiz.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total / 2**20
    return 0.0


# A number that tells siblings apart: after a separator ("#1", "-4-2") or at the end ("Thread0"); a
# number inside a word ("C2", "G1") names the thing.
_NUMERACION = re.compile(r"[-_#\s]+\d+(?=[-_#\s]|$)|\d+$")


def familia_de_hilo(nombre: str) -> str:
    """A thread's family: its name without the numbers that tell its siblings apart ("GC Thread#1",
    "pulsar-io-4-2", "C1 CompilerThread0" → "GC Thread", "pulsar-io", "C1 CompilerThread")."""
    return _NUMERACION.sub("", nombre.strip()) or nombre.strip()


class CpuPorHilo:
    """The CPU of some processes by thread family between two reads, all of them together: in the
    broker, what moves messages and what the JVM spends on itself (its JIT compilers, its collector);
    in the workers, the main thread (the event loop) and the rest (the Pulsar client's native threads,
    which keep the name "python", and the receiving thread). Threads that ended
    in between are counted by the process total only (`gastado` names the difference)."""

    def __init__(self, pids: Iterable[int]) -> None:
        self._pids = list(pids)
        self._inicio = self._leer()

    def _leer(self) -> dict[tuple[int, int], tuple[str, float]]:
        hilos: dict[tuple[int, int], tuple[str, float]] = {}
        for pid in self._pids:
            with contextlib.suppress(psutil.Error):
                for hilo in psutil.Process(pid).threads():
                    with contextlib.suppress(OSError):
                        familia = familia_de_hilo(Path(f"/proc/{pid}/task/{hilo.id}/comm").read_text())
                        if hilo.id == pid:  # the main thread (a worker's event loop): apart from its siblings
                            familia += " (principal)"
                        hilos[pid, hilo.id] = (familia, hilo.user_time + hilo.system_time)
        return hilos

    def gastado(self, total_s: float, *, minimo: float = 0.02) -> dict[str, float]:
        """CPU seconds by family, largest first; families under `minimo` of `total_s` (the processes'
        own count) as "otros", and what threads that ended took as "(terminados)"."""
        if not self._pids:
            return {}
        por_familia: dict[str, float] = {}
        for clave, (familia, segundos) in self._leer().items():
            por_familia[familia] = por_familia.get(familia, 0.0) + segundos - self._inicio.get(clave, ("", 0.0))[1]
        return agrupar(por_familia, total_s, minimo=minimo)


def agrupar(por_familia: Mapping[str, float], total_s: float, *, minimo: float = 0.02) -> dict[str, float]:
    """`por_familia` largest first, the small ones summed as "otros", the rest of `total_s` as
    "(terminados)" (seconds, two decimals)."""
    grupos: dict[str, float] = {}
    otros = 0.0
    for familia, segundos in sorted(por_familia.items(), key=lambda kv: -kv[1]):
        if segundos >= minimo * total_s and segundos > 0:
            grupos[familia] = round(segundos, 2)
        else:
            otros += max(segundos, 0.0)
    if otros:
        grupos["otros"] = round(otros, 2)
    if (terminados := total_s - sum(por_familia.values())) >= minimo * total_s and terminados > 0:
        grupos["(terminados)"] = round(terminados, 2)
    return grupos
