"""The pipeline benchmark's broker: pulsar-lite, started by each scenario's cluster (the default), or
Apache Pulsar standalone (`--broker pulsar`), started once for the run with its JIT at full tier,
each scenario on topics of its own, which are deleted when it ends. Either way the broker's CPU
and RSS are counted under "broker", and where the broker's and the workers' CPU went is told by
thread (the JVM's compiler and collector threads apart from the ones that move messages; the
Pulsar client's native threads apart from the event loop)."""

from __future__ import annotations

import contextlib
import re
import sys
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import aiohttp
import psutil

from pagos_dev.embedded import pulsar_apache
from pagos_dev.embedded.pulsar_apache import EmbeddedApachePulsar
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

    def descripcion_broker(self) -> dict[str, Any]:
        """Which broker a scenario ran on, for its JSON result."""
        version = pulsar_apache.PULSAR_VERSION if self.broker == "pulsar" else _version("pulsar-lite")
        dado = self.pulsar_url is not None and self.broker_pid is None
        descripcion: dict[str, Any] = {"nombre": self.broker, "version": None if dado else version, "dado": dado}
        if self.broker == "pulsar" and not dado:
            descripcion["heap"] = HEAP_PULSAR
        return descripcion


def _version(distribucion: str) -> str | None:
    try:
        return metadata.version(distribucion)
    except metadata.PackageNotFoundError:
        return None


@contextlib.asynccontextmanager
async def broker_de_la_corrida(servidores: Servidores, base: Path) -> AsyncIterator[Servidores]:
    """Apache Pulsar standalone for every scenario of a run (started once: a JVM takes 15-20 s to
    start and longer to warm up), stopped at the end, also after a failure; for pulsar-lite or a
    given broker, `servidores` as they are (pulsar-lite is each scenario's cluster's own)."""
    if servidores.broker != "pulsar" or servidores.pulsar_url is not None:
        yield servidores
        return
    broker = EmbeddedApachePulsar(base / "pulsar-apache", heap=HEAP_PULSAR, quick=False)
    try:
        await broker.start()
        yield replace(servidores, pulsar_url=broker.url, broker_pid=broker.pid, broker_admin_url=broker.admin_url)
    finally:
        await broker.close()


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
