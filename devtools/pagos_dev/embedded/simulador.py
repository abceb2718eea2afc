"""The Stripe-compatible simulator as a child process (`pagos-dev simulador`)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from pagos_dev.embedded.process import port_is_open, spawn, terminate, wait_until


class EmbeddedSimulador:
    """Its ledger is kept in `data_dir/ledger.sqlite3`, so `GET /v1/transfers` survives restarts.
    Fault and latency settings come from the PAGOS_SIMULADOR_* environment it inherits."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int = 12111) -> None:
        self.data_dir = data_dir.resolve()
        self.host = host
        self.port = port
        self.log_path = self.data_dir / "simulador.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "pagos_dev", "simulador", "--host", self.host, "--port", str(self.port),
                "--state-file", str(self.data_dir / "ledger.sqlite3")]  # fmt: skip
        self._process = spawn(args, log_path=self.log_path)
        await wait_until(
            lambda: port_is_open(self.host, self.port),
            process=self._process,
            timeout=30,
            what=f"simulador on {self.url}",
            log_path=self.log_path,
        )

    async def stop(self) -> None:
        if self._process is not None:
            await terminate(self._process.pid, signal.SIGTERM, timeout=10, process=self._process)
        self._process = None
