"""The whole pipeline as separate processes on this machine, owned here so that they can be killed
and restarted: an embedded PostgreSQL and broker (pulsar-lite, or Apache Pulsar standalone with
`broker="pulsar"`; or given servers), the Stripe simulator, and N replicas of `pagos-worker run`
sharing the commands subscription."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import asyncpg
from sqlalchemy import make_url

from pagos_dev.embedded.postgres import EmbeddedPostgres
from pagos_dev.embedded.process import free_port, port_is_open, spawn, terminate, wait_until
from pagos_dev.embedded.pulsar import EmbeddedPulsar
from pagos_dev.embedded.pulsar_apache import EmbeddedApachePulsar
from pagos_dev.embedded.tcp_proxy import ProxyCongelable
from pagos_worker.adapters.postgres.database import asyncpg_dsn, create_engine, migrate

AUTH = {"Authorization": "Bearer sk_test_cluster"}


@dataclass
class ClusterConfig:
    data_dir: Path
    workers: int = 2
    roles: str = "worker,relay,api"
    worker_env: Mapping[str, str] = field(default_factory=dict)
    simulador_env: Mapping[str, str] = field(default_factory=dict)
    topics: Mapping[str, str] = field(default_factory=dict)  # PAGOS_*_TOPIC overrides
    # The embedded broker: pulsar-lite, or Apache Pulsar standalone (a JVM; Java 17 and Maven); with
    # `pulsar_url`, what the broker there is (pulsar-lite's replicas need distinct consumer ids).
    broker: Literal["pulsar-lite", "pulsar"] = "pulsar-lite"
    # pulsar-lite only (see embedded/pulsar_proxy.py): needed when workers get SIGKILLed
    graceful_proxy: bool = True
    ledger_en_archivo: bool = True  # the simulator keeps its ledger in a file (audits after restarts)
    api_aparte: bool = False  # one more process serving only the HTTP API (as operators would deploy it)
    # The service's processes reach PostgreSQL through a proxy of this process that can freeze their
    # connections (`congelar_conexiones_postgres`); the embedded server only.
    postgres_por_proxy: bool = False
    # Worker replicas whose host clock is off by these seconds (index: seconds; negative: behind):
    # only the database's clock may decide who acts (`pagos_dev.reloj_desfasado`).
    relojes_desfasados: Mapping[int, float] = field(default_factory=dict)
    # Given servers instead of the embedded ones: a new database is created on the PostgreSQL
    # server for each cluster; with a given broker, pass `topics` of the cluster's own.
    postgres_url: str | None = None
    pulsar_url: str | None = None


@dataclass
class _Worker:
    port: int
    process: subprocess.Popen[bytes] | None = None


class Cluster:
    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        d = config.data_dir
        self.postgres = None if config.postgres_url else EmbeddedPostgres(d / "postgres", port=free_port())
        self.pulsar: EmbeddedPulsar | EmbeddedApachePulsar | None = None
        if config.pulsar_url is None and config.broker == "pulsar":
            self.pulsar = EmbeddedApachePulsar(d / "pulsar-apache", quick=True)
        elif config.pulsar_url is None:
            self.pulsar = EmbeddedPulsar(d / "pulsar", port=free_port(), graceful_proxy=config.graceful_proxy)
        self.simulador_url = f"http://127.0.0.1:{free_port()}"
        if self.postgres is None:
            self._database = f"pagos_cluster_{uuid.uuid4().hex[:10]}"
            url = make_url(str(config.postgres_url)).set(database=self._database)
            self.database_url = url.render_as_string(hide_password=False)
        else:
            self._database = "pagos"
            self.database_url = self.postgres.url("pagos")
        self._simulador: subprocess.Popen[bytes] | None = None
        self.proxy_postgres: ProxyCongelable | None = None
        self._database_url_servicio = self.database_url
        self.workers = [_Worker(free_port()) for _ in range(config.workers)]
        self.api = _Worker(free_port()) if config.api_aparte else None

    @property
    def simulador_pid(self) -> int:
        if self._simulador is None:
            raise RuntimeError("the simulator is not running")
        return self._simulador.pid

    @property
    def pulsar_url(self) -> str:
        return self.pulsar.url if self.pulsar is not None else str(self.config.pulsar_url)

    def api_url(self, i: int = 0) -> str:
        return f"http://127.0.0.1:{self.workers[i].port}"

    @property
    def api_aparte_url(self) -> str:
        if self.api is None:
            raise RuntimeError("this cluster has no API-only process (ClusterConfig.api_aparte)")
        return f"http://127.0.0.1:{self.api.port}"

    async def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        if self.postgres is not None:
            await self.postgres.start()
            await self.postgres.create_database(self._database)
            if self.config.postgres_por_proxy:
                self.proxy_postgres = ProxyCongelable(self.postgres.host, self.postgres.port)
                await self.proxy_postgres.start()
                url = make_url(self.database_url).set(port=self.proxy_postgres.port)
                self._database_url_servicio = url.render_as_string(hide_password=False)
        else:
            conn = await asyncpg.connect(asyncpg_dsn(str(self.config.postgres_url)))
            try:
                await conn.execute(f'CREATE DATABASE "{self._database}"')
            finally:
                await conn.close()
        engine = create_engine(self.database_url, pool_size=1, limits=None)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
        if self.pulsar is not None:
            await self.pulsar.start()
        await self._start_simulador()
        for i in range(len(self.workers)):
            await self.start_worker(i)
        if self.api is not None:
            await self._spawn(self.api, "api", "api", consumer_id_offset=len(self.workers))

    async def stop(self) -> None:
        for i in range(len(self.workers)):
            await self.stop_worker(i)
        if self.api is not None and self.api.process is not None:
            await terminate(self.api.process.pid, signal.SIGTERM, timeout=30, process=self.api.process)
        if self._simulador is not None:
            await terminate(self._simulador.pid, signal.SIGTERM, timeout=10, process=self._simulador)
        if self.pulsar is not None:
            await self.pulsar.close()
        if self.proxy_postgres is not None:
            await self.proxy_postgres.close()
        if self.postgres is not None:
            await self.postgres.stop()
        else:  # a given server: leave nothing behind on it
            conn = await asyncpg.connect(asyncpg_dsn(str(self.config.postgres_url)))
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self._database}" WITH (FORCE)')
            finally:
                await conn.close()

    async def start_worker(self, i: int) -> None:
        desfase = self.config.relojes_desfasados.get(i)
        await self._spawn(self.workers[i], f"worker-{i}", self.config.roles, consumer_id_offset=i, desfase=desfase)

    def comando_servicio(self, *args: str, desfase: float | None = None) -> list[str]:
        """`pagos-worker ARGS` as a command line, on a host clock `desfase` seconds off if given."""
        if desfase is None:
            return [sys.executable, "-m", "pagos_worker", *args]
        return [sys.executable, "-m", "pagos_dev.reloj_desfasado", str(desfase), *args]

    def entorno_servicio(self) -> dict[str, str]:
        """The settings every process of the service gets here (an operator's command too)."""
        return {
            **os.environ,
            "PAGOS_DATABASE_URL": self._database_url_servicio,
            "PAGOS_PULSAR_URL": self.pulsar_url,
            "PAGOS_STRIPE_API_BASE": self.simulador_url,
            "PAGOS_STRIPE_SECRET_KEY": AUTH["Authorization"].removeprefix("Bearer "),
            "PAGOS_STRIPE_DESTINATION_TEMPLATE": "acct_{id_afiliado}",
            "PAGOS_LOG_FORMAT": "json",
            **self.config.topics,
            **self.config.worker_env,
        }

    def entorno_replica(self, port: int, consumer_id_offset: int) -> dict[str, str]:
        """A replica's settings: the service's, its HTTP port and, on pulsar-lite, consumer ids of its
        own (Apache Pulsar, embedded or given, needs none: ADR 0005)."""
        env = {**self.entorno_servicio(), "PAGOS_HTTP_PORT": str(port)}
        if self.config.broker == "pulsar-lite":
            env["PAGOS_PULSAR_CONSUMER_ID_OFFSET"] = str(consumer_id_offset)
        return env

    async def _spawn(
        self, worker: _Worker, nombre: str, roles: str, *, consumer_id_offset: int, desfase: float | None = None
    ) -> None:
        env = self.entorno_replica(worker.port, consumer_id_offset)
        command = self.comando_servicio("run", "--roles", roles, "--no-migrate", desfase=desfase)
        log = self.config.data_dir / f"{nombre}.log"
        worker.process = spawn(command, log_path=log, env=env)
        if "api" in roles:
            await wait_until(
                lambda: port_is_open("127.0.0.1", worker.port), process=worker.process, timeout=60,
                what=nombre, log_path=log,
            )  # fmt: skip

    async def kill_worker(self, i: int) -> None:
        """SIGKILL: no drain, no goodbye, as a crash or an OOM kill would."""
        process = self.workers[i].process
        if process is not None:
            await terminate(process.pid, signal.SIGKILL, timeout=5, process=process)
        self.workers[i].process = None

    async def stop_worker(self, i: int) -> None:
        process = self.workers[i].process
        if process is not None:
            await terminate(process.pid, signal.SIGTERM, timeout=30, process=process)
        self.workers[i].process = None

    def worker_alive(self, i: int) -> bool:
        process = self.workers[i].process
        return process is not None and process.poll() is None

    async def restart_broker(self) -> None:
        if self.pulsar is None:
            raise RuntimeError("the broker is not embedded: it cannot be restarted from here")
        await self.pulsar.stop()
        await self.pulsar.start()

    async def restart_postgres(self) -> None:
        """An immediate stop (what a crash looks like to the clients), then crash recovery."""
        if self.postgres is None:
            raise RuntimeError("PostgreSQL is not embedded: it cannot be restarted from here")
        await self.postgres.stop(immediate=True)
        await self.postgres.start()

    async def postgres_solo_lectura(self, *, activar: bool) -> None:
        """A failover as the clients see it: every session of the database ends and the new ones
        cannot write (on); or the primary is back (off: new sessions write again)."""
        server = self.postgres.url("postgres") if self.postgres is not None else str(self.config.postgres_url)
        conn = await asyncpg.connect(asyncpg_dsn(server))
        try:
            valor = "on" if activar else "off"
            await conn.execute(f'ALTER DATABASE "{self._database}" SET default_transaction_read_only = {valor}')
            if activar:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                    self._database,
                )
        finally:
            await conn.close()

    def congelar_conexiones_postgres(self) -> int:
        """Freeze every connection the service has open to PostgreSQL now (they stay open and
        silent, as through a partition); new ones go through. Returns how many were frozen."""
        if self.proxy_postgres is None:
            raise RuntimeError("the cluster was not started with postgres_por_proxy")
        return self.proxy_postgres.congelar()

    async def simulador(self, method: str, path: str, body: Any = None, espera_s: float = 30) -> Any:  # noqa: ANN401 - JSON
        """One request to the simulator; while it is being restarted (a fault running beside
        another), tried again for up to `espera_s`."""
        limite = asyncio.get_running_loop().time() + espera_s
        while True:
            try:
                async with (
                    aiohttp.ClientSession(headers=AUTH) as http,
                    http.request(method, f"{self.simulador_url}{path}", json=body) as resp,
                ):
                    return await resp.json()
            except aiohttp.ClientConnectionError:
                if asyncio.get_running_loop().time() >= limite:
                    raise
                await asyncio.sleep(0.2)

    async def operador(self, *args: str, desfase: float | None = None, timeout: float = 120) -> int:
        """An operator's command (`pagos-worker ARGS`) against this cluster, its host clock `desfase`
        seconds off if given; its output goes to `operador.log`. Returns its exit code."""
        codigo, _ = await self._operador(args, desfase=desfase, timeout=timeout, con_salida=False)
        return codigo

    async def operador_con_salida(self, *args: str, timeout: float = 300) -> tuple[int, bytes]:
        """As `operador`, but what the command writes on stdout is handed back (a `--json` result)
        instead of going to `operador.log` (its stderr still does)."""
        return await self._operador(args, desfase=None, timeout=timeout, con_salida=True)

    async def _operador(
        self, args: tuple[str, ...], *, desfase: float | None, timeout: float, con_salida: bool
    ) -> tuple[int, bytes]:
        with (self.config.data_dir / "operador.log").open("ab") as log:
            proceso = await asyncio.create_subprocess_exec(
                *self.comando_servicio(*args, desfase=desfase), env=self.entorno_servicio(),
                stdout=subprocess.PIPE if con_salida else log, stderr=log, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                salida, _ = await asyncio.wait_for(proceso.communicate(), timeout)
            except TimeoutError:
                proceso.kill()
                await proceso.wait()
                raise
            # Waited for by communicate(): never None here (-1 would say otherwise, never success).
            return (-1 if proceso.returncode is None else proceso.returncode), salida or b""

    async def ledger(self) -> list[dict[str, Any]]:
        """Every transfer the simulator made (its list API, all pages)."""
        return await self.lista("/v1/transfers")

    async def lista(self, ruta: str) -> list[dict[str, Any]]:
        """Every object of one of the simulator's lists (`ruta`: `/v1/transfers`, a transfer's
        reversals…), all pages."""
        objetos: list[dict[str, Any]] = []
        params = "limit=100"
        while True:
            pagina = await self.simulador("GET", f"{ruta}?{params}")
            objetos += pagina["data"]
            if not pagina["has_more"]:
                return objetos
            params = f"limit=100&starting_after={pagina['data'][-1]['id']}"

    async def restart_simulador(self, pausa: float = 1.0) -> None:
        """SIGKILL the simulator (Stripe unreachable) and start it again on its ledger, kept on disk."""
        if self._simulador is not None:
            await terminate(self._simulador.pid, signal.SIGKILL, timeout=10, process=self._simulador)
        await asyncio.sleep(pausa)
        await self._start_simulador()

    async def stop_simulador(self) -> None:
        """SIGTERM: the simulator commits and closes its ledger (a tool may then write the file)."""
        if self._simulador is not None:
            await terminate(self._simulador.pid, signal.SIGTERM, timeout=10, process=self._simulador)
        self._simulador = None

    async def start_simulador(self) -> None:
        """Start it again on its ledger (after `stop_simulador`)."""
        await self._start_simulador()

    async def _start_simulador(self) -> None:
        port = self.simulador_url.rsplit(":", 1)[1]
        command = [sys.executable, "-m", "pagos_dev", "simulador", "--port", port]
        if self.config.ledger_en_archivo:
            command += ["--state-file", str(self.config.data_dir / "ledger.sqlite3")]
        log = self.config.data_dir / "simulador.log"
        self._simulador = spawn(command, log_path=log, env={**os.environ, **self.config.simulador_env})
        await wait_until(
            lambda: port_is_open("127.0.0.1", int(port)), process=self._simulador, timeout=30,
            what="simulador", log_path=log,
        )  # fmt: skip


async def sleep_until(t0: float, offset: float) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, t0 + offset - loop.time()))
