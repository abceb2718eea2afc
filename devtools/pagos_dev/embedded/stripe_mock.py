"""stripe-mock, Stripe's own mock server, as a child of ours (the binary: `pagos_dev.herramientas`).

It answers every route of Stripe's OpenAPI description, refuses parameters the description does not
allow (400) and answers fixtures of the right shape; it keeps nothing (a transfer made is not there
to read back) and is locked to its description's API version, so it runs without
`-strict-version-check`: the service pins an older `Stripe-Version`. HTTP on loopback only: given
`-http-addr` alone, stripe-mock also opens HTTPS on every interface at 12112, so HTTPS is bound to a
loopback port of the system's choosing too.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

from pagos_dev.embedded.process import EmbeddedServiceError, port_is_open, spawn, terminate, wait_until

_ESCUCHA = re.compile(rb"Listening for HTTP at address: (?P<host>[^\s]+):(?P<port>\d+)")


class EmbeddedStripeMock:
    """One stripe-mock on `host:port` (0: a free port it picks, read from its log once it listens)."""

    def __init__(self, binario: Path, data_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.binario = binario
        self.data_dir = data_dir.resolve()
        self.host = host
        self.port = port
        self.log_path = self.data_dir / "stripe-mock.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise EmbeddedServiceError("stripe-mock is not listening yet")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.write_bytes(b"")  # the port is read from this run's lines only
        args = [str(self.binario), "-http-addr", f"{self.host}:{self.port}", "-https-addr", f"{self.host}:0"]
        self._process = spawn(args, log_path=self.log_path)
        await wait_until(
            self._escuchando, process=self._process, timeout=30, what="stripe-mock", log_path=self.log_path
        )

    def _escuchando(self) -> bool:
        """Its own line says where it listens (a port taken by another process makes it exit instead)."""
        if (hallado := _ESCUCHA.search(self.log_path.read_bytes())) is None:
            return False
        self.port = int(hallado["port"])
        return port_is_open(self.host, self.port)

    async def stop(self) -> None:
        if self._process is not None:
            await terminate(self._process.pid, signal.SIGTERM, timeout=5, process=self._process)
        self._process = None
