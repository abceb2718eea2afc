"""pulsar-lite: a Pulsar-protocol broker in one binary, run as a child of ours."""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

from pagos_dev.embedded.process import (
    EmbeddedServiceError,
    live_process,
    port_is_open,
    spawn,
    terminate,
    wait_until,
)


class EmbeddedPulsar:
    """One pulsar-lite broker storing its data under `data_dir`, reachable at `host:port`.

    With `graceful_proxy`, clients reach it through `pulsar_proxy` (the broker itself listens on an
    internal port): needed wherever client processes may be SIGKILLed while the broker lives on
    (several replicas, the chaos suite), harmless elsewhere."""

    def __init__(
        self, data_dir: Path, host: str = "127.0.0.1", port: int = 6650, *, graceful_proxy: bool = False
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.host = host
        self.port = port
        self.log_path = self.data_dir / "pulsar-lite.log"
        self._pid_file = self.data_dir / "pulsar-lite.pid"
        self._process: subprocess.Popen[bytes] | None = None
        self._proxy: subprocess.Popen[bytes] | None = None
        self._broker_port = _free_port_like(port) if graceful_proxy else port

    @property
    def url(self) -> str:
        return f"pulsar://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise EmbeddedServiceError("pulsar-lite is not running")
        return self._process.pid

    async def start(self) -> None:
        await self._start_broker()
        if self._broker_port != self.port and (self._proxy is None or self._proxy.poll() is not None):
            args = [sys.executable, "-m", "pagos_dev.embedded.pulsar_proxy", str(self.port), str(self._broker_port)]
            self._proxy = spawn(args, log_path=self.data_dir / "pulsar-proxy.log")
            await wait_until(
                lambda: port_is_open(self.host, self.port), process=self._proxy, timeout=30,
                what=f"pulsar proxy on {self.host}:{self.port}", log_path=self.data_dir / "pulsar-proxy.log",
            )  # fmt: skip

    async def close(self) -> None:
        """Stop the broker and its proxy."""
        await self.stop()
        if self._proxy is not None:
            await terminate(self._proxy.pid, signal.SIGTERM, timeout=5, process=self._proxy)
            self._proxy = None

    async def _start_broker(self) -> None:
        from pulsar_lite.binary_finder import find_pulsar_lite_binary  # noqa: PLC0415

        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._stop_leftover()
        args = [
            find_pulsar_lite_binary(),
            "--addr",
            f"{self.host}:{self._broker_port}",
            "--db-path",
            str(self.data_dir / "db"),
            "--log-level",
            "warn",
        ]
        self._process = spawn(args, log_path=self.log_path, cwd=self.data_dir)
        self._pid_file.write_text(str(self._process.pid))
        await wait_until(
            lambda: port_is_open(self.host, self._broker_port),
            process=self._process,
            timeout=30,
            what=f"pulsar-lite on {self.host}:{self._broker_port}",
            log_path=self.log_path,
        )

    async def stop(self, *, immediate: bool = False) -> None:
        """Stop the broker (its proxy, if any, stays: clients reconnect through it once it is back)."""
        if self._process is not None:
            sig = signal.SIGKILL if immediate else signal.SIGTERM
            await terminate(self._process.pid, sig, timeout=10, process=self._process)
        self._process = None
        self._pid_file.unlink(missing_ok=True)

    async def _stop_leftover(self) -> None:
        """A broker left by a crash of ours still holds the port and the RocksDB lock."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(self._pid_file.read_text())
            if live_process(pid, "pulsar-lite"):
                await terminate(pid, signal.SIGTERM, timeout=10)
        self._pid_file.unlink(missing_ok=True)


def _free_port_like(port: int) -> int:
    """A free port with as many digits as `port` (the proxy rewrites addresses in place)."""
    low, high = 10 ** (len(str(port)) - 1), min(10 ** len(str(port)) - 1, 65535)
    for candidate in random.sample(range(max(low, 1024), high + 1), k=min(200, high - max(low, 1024) + 1)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    raise EmbeddedServiceError(f"no free port of {len(str(port))} digits for the broker behind the proxy")
