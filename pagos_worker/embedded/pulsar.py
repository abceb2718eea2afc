"""pulsar-lite: a Pulsar-protocol broker in one binary, run as a child of ours."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from pathlib import Path

from pagos_worker.embedded.process import (
    live_process,
    port_is_open,
    spawn,
    terminate,
    wait_until,
)


class EmbeddedPulsar:
    """One pulsar-lite broker storing its data under `data_dir`, listening on `host:port`."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int = 6650) -> None:
        self.data_dir = data_dir.resolve()
        self.host = host
        self.port = port
        self.log_path = self.data_dir / "pulsar-lite.log"
        self._pid_file = self.data_dir / "pulsar-lite.pid"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"pulsar://{self.host}:{self.port}"

    async def start(self) -> None:
        from pulsar_lite.binary_finder import find_pulsar_lite_binary  # noqa: PLC0415

        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._stop_leftover()
        args = [
            find_pulsar_lite_binary(),
            "--addr",
            f"{self.host}:{self.port}",
            "--db-path",
            str(self.data_dir / "db"),
            "--log-level",
            "warn",
        ]
        self._process = spawn(args, log_path=self.log_path, cwd=self.data_dir)
        self._pid_file.write_text(str(self._process.pid))
        await wait_until(
            lambda: port_is_open(self.host, self.port),
            process=self._process,
            timeout=30,
            what=f"pulsar-lite on {self.host}:{self.port}",
            log_path=self.log_path,
        )

    async def stop(self, *, immediate: bool = False) -> None:
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
