"""Child processes for the embedded services: spawn, wait until ready, stop.

Children are started in their own session (a Ctrl-C in the terminal reaches only us, so we decide
the order of shutdown) and, on Linux, with a parent-death signal so that a SIGKILL of ours does not
leave them behind. A leftover from a crash on another platform is found through its pid file.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

_PR_SET_PDEATHSIG = 1


class EmbeddedServiceError(RuntimeError):
    """An embedded service could not be started."""


def free_port() -> int:
    """A TCP port free on loopback now (the embedded servers', the tests' and the cluster's)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent(sig: int) -> Callable[[], None]:
    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)

    return preexec


def spawn(
    args: Sequence[str],
    *,
    log_path: Path,
    cwd: Path | None = None,
    user: str | None = None,
    death_signal: int = signal.SIGTERM,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a long-lived child. Call it from the main thread: the parent-death signal fires
    when the thread that forked the child ends, not only when the process does."""
    log = log_path.open("ab")
    try:
        return subprocess.Popen(  # noqa: S603 - fixed argument lists built by this package
            list(args),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
            preexec_fn=_die_with_parent(death_signal) if sys.platform == "linux" else None,  # noqa: PLW1509
        )
    finally:
        log.close()


def port_is_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


async def wait_until(
    ready: Callable[[], bool],
    *,
    process: subprocess.Popen[bytes] | None,
    timeout: float,
    what: str,
    log_path: Path,
) -> None:
    """Poll `ready` until it holds; fail early, with the log's tail, if the process exits."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process is not None and process.poll() is not None:
            raise EmbeddedServiceError(f"{what} exited with {process.returncode}:\n{tail(log_path)}")
        if time.monotonic() > deadline:
            raise EmbeddedServiceError(f"{what} not ready after {timeout:.0f} s:\n{tail(log_path)}")
        await asyncio.sleep(0.05)


async def terminate(pid: int, sig: int, *, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Send `sig` to `pid` and wait for it to exit; SIGKILL it once `timeout` has passed.
    Pass the `Popen` of a child of ours: only waiting on it tells when a multi-threaded child is
    really gone (its main thread shows as a zombie while the others still run)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while (process.poll() is None) if process is not None else _alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        await asyncio.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def live_process(pid: int, name_contains: str) -> bool:
    """True when `pid` is a live process whose command line mentions `name_contains`."""
    try:
        proc = psutil.Process(pid)
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return name_contains in cmdline and proc.status() != psutil.STATUS_ZOMBIE


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
