"""The whole pipeline as separate processes on this machine, owned here so that they can be killed
and restarted: an embedded PostgreSQL and pulsar-lite, the Stripe simulator, and N replicas of
`pagos-worker run` sharing the commands subscription."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from pagos_worker.adapters.postgres.database import create_engine, migrate
from pagos_worker.embedded.postgres import EmbeddedPostgres
from pagos_worker.embedded.process import port_is_open, spawn, terminate, wait_until
from pagos_worker.embedded.pulsar import EmbeddedPulsar

AUTH = {"Authorization": "Bearer sk_test_cluster"}


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ClusterConfig:
    data_dir: Path
    workers: int = 2
    roles: str = "worker,relay,api"
    worker_env: Mapping[str, str] = field(default_factory=dict)
    simulador_env: Mapping[str, str] = field(default_factory=dict)
    topics: Mapping[str, str] = field(default_factory=dict)  # PAGOS_*_TOPIC overrides
    graceful_proxy: bool = True  # see embedded/pulsar_proxy.py: needed when workers get SIGKILLed


@dataclass
class _Worker:
    port: int
    process: subprocess.Popen[bytes] | None = None


class Cluster:
    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        d = config.data_dir
        self.postgres = EmbeddedPostgres(d / "postgres", port=free_port())
        self.pulsar = EmbeddedPulsar(d / "pulsar", port=free_port(), graceful_proxy=config.graceful_proxy)
        self.simulador_url = f"http://127.0.0.1:{free_port()}"
        self.database_url = self.postgres.url("pagos")
        self._simulador: subprocess.Popen[bytes] | None = None
        self.workers = [_Worker(free_port()) for _ in range(config.workers)]

    @property
    def pulsar_url(self) -> str:
        return self.pulsar.url

    def api_url(self, i: int = 0) -> str:
        return f"http://127.0.0.1:{self.workers[i].port}"

    async def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        await self.postgres.start()
        await self.postgres.create_database("pagos")
        engine = create_engine(self.database_url, pool_size=1)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
        await self.pulsar.start()
        await self._start_simulador()
        for i in range(len(self.workers)):
            await self.start_worker(i)

    async def stop(self) -> None:
        for i in range(len(self.workers)):
            await self.stop_worker(i)
        if self._simulador is not None:
            await terminate(self._simulador.pid, signal.SIGTERM, timeout=10, process=self._simulador)
        await self.pulsar.close()
        await self.postgres.stop()

    async def start_worker(self, i: int) -> None:
        worker = self.workers[i]
        env = {
            **os.environ,
            "PAGOS_DATABASE_URL": self.database_url,
            "PAGOS_PULSAR_URL": self.pulsar_url,
            "PAGOS_STRIPE_API_BASE": self.simulador_url,
            "PAGOS_STRIPE_SECRET_KEY": AUTH["Authorization"].removeprefix("Bearer "),
            "PAGOS_HTTP_PORT": str(worker.port),
            "PAGOS_PULSAR_CONSUMER_ID_OFFSET": str(i),  # pulsar-lite: distinct consumer ids per replica
            "PAGOS_LOG_FORMAT": "json",
            **self.config.topics,
            **self.config.worker_env,
        }
        command = [sys.executable, "-m", "pagos_worker", "run", "--roles", self.config.roles, "--no-migrate"]
        log = self.config.data_dir / f"worker-{i}.log"
        worker.process = spawn(command, log_path=log, env=env)
        if "api" in self.config.roles:
            await wait_until(
                lambda: port_is_open("127.0.0.1", worker.port), process=worker.process, timeout=60,
                what=f"worker {i}", log_path=log,
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
        await self.pulsar.stop()
        await self.pulsar.start()

    async def restart_postgres(self) -> None:
        """An immediate stop (what a crash looks like to the clients), then crash recovery."""
        await self.postgres.stop(immediate=True)
        await self.postgres.start()

    async def simulador(self, method: str, path: str, body: Any = None) -> Any:  # noqa: ANN401 - JSON
        async with (
            aiohttp.ClientSession(headers=AUTH) as http,
            http.request(method, f"{self.simulador_url}{path}", json=body) as resp,
        ):
            return await resp.json()

    async def ledger(self) -> list[dict[str, Any]]:
        """Every transfer the simulator made (its list API, all pages)."""
        transfers: list[dict[str, Any]] = []
        params = "limit=100"
        while True:
            pagina = await self.simulador("GET", f"/v1/transfers?{params}")
            transfers += pagina["data"]
            if not pagina["has_more"]:
                return transfers
            params = f"limit=100&starting_after={pagina['data'][-1]['id']}"

    async def _start_simulador(self) -> None:
        port = self.simulador_url.rsplit(":", 1)[1]
        command = [sys.executable, "-m", "pagos_worker", "simulador", "--port", port,
                   "--state-file", str(self.config.data_dir / "ledger.jsonl")]  # fmt: skip
        log = self.config.data_dir / "simulador.log"
        self._simulador = spawn(command, log_path=log, env={**os.environ, **self.config.simulador_env})
        await wait_until(
            lambda: port_is_open("127.0.0.1", int(port)), process=self._simulador, timeout=30,
            what="simulador", log_path=log,
        )  # fmt: skip


async def sleep_until(t0: float, offset: float) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, t0 + offset - loop.time()))
