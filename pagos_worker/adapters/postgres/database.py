"""Engine creation and migrations (Alembic, under an advisory lock so replicas may all try)."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Connection, event, make_url, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pagos_worker.adapters.postgres.driver import READ_ONLY_SQLSTATE

log = structlog.get_logger(__name__)

_MIGRATION_LOCK = 0x7061_676F  # "pago"
DEFAULT_MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations"


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long anything on a connection of the service may take: nothing waits for PostgreSQL
    without an end. The server cancels a statement after `statement_timeout_s` (a clean, transient
    error; the connection stays usable); the client gives up on any answer after `command_timeout_s`
    (a connection that stopped answering: it is dropped); TCP keepalives — both ways — and a TCP
    user timeout find a peer that is gone (a host crash, a partition) on idle connections too."""

    statement_timeout_s: float = 5.0
    command_timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    pool_timeout_s: float = 10.0
    keepalive_idle_s: int = 10
    # A transaction left open by a client that went away holds its row locks until this.
    idle_in_transaction_timeout_s: float = 60.0

    @property
    def keepalive_interval_s(self) -> int:
        return max(1, self.keepalive_idle_s // 2)

    @property
    def user_timeout_ms(self) -> int:
        """Unacknowledged data for this long ends the connection: the idle wait and the probes."""
        return 1000 * (self.keepalive_idle_s + _KEEPALIVE_PROBES * self.keepalive_interval_s)

    def server_settings(self) -> dict[str, str]:
        return {
            "statement_timeout": str(int(self.statement_timeout_s * 1000)),
            "idle_in_transaction_session_timeout": str(int(self.idle_in_transaction_timeout_s * 1000)),
            "tcp_keepalives_idle": str(self.keepalive_idle_s),
            "tcp_keepalives_interval": str(self.keepalive_interval_s),
            "tcp_keepalives_count": str(_KEEPALIVE_PROBES),
            "tcp_user_timeout": str(self.user_timeout_ms),
        }


_KEEPALIVE_PROBES = 3
DEFAULT_LIMITS = ConnectionLimits()


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    application_name: str = "pagos-worker",
    limits: ConnectionLimits | None = DEFAULT_LIMITS,
) -> AsyncEngine:
    """`limits` None: no timeouts at all (migrations, which may rewrite a large table)."""
    server_settings = {"application_name": application_name}
    connect_args: dict[str, Any] = {"server_settings": server_settings}
    extra: dict[str, Any] = {}
    if limits is not None:
        server_settings.update(limits.server_settings())
        connect_args |= {"command_timeout": limits.command_timeout_s, "timeout": limits.connect_timeout_s}
        extra["pool_timeout"] = limits.pool_timeout_s
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, connect_args=connect_args, **extra
    )
    if limits is not None:
        event.listen(engine.sync_engine, "connect", lambda dbapi, _: keepalive(dbapi.driver_connection, limits))
    event.listen(engine.sync_engine, "handle_error", _read_only_is_lost)
    return engine


def _read_only_is_lost(context: ExceptionContext) -> None:
    """A connection whose transactions are read-only is not put back in the pool (see
    `driver.connection_lost`): its session would stay read-only after a failover."""
    if getattr(context.original_exception, "sqlstate", None) == READ_ONLY_SQLSTATE:
        context.is_disconnect = True


def keepalive(connection: Any, limits: ConnectionLimits) -> None:  # noqa: ANN401 - asyncpg's connection
    """TCP keepalives and a user timeout on the client's side of an asyncpg connection (asyncpg
    has no option for them): a server that vanished is noticed by the kernel, idle or not."""
    sock = connection._transport.get_extra_info("socket")  # noqa: SLF001
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket: no peer to lose
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", limits.keepalive_idle_s),
        ("TCP_KEEPINTVL", limits.keepalive_interval_s),
        ("TCP_KEEPCNT", _KEEPALIVE_PROBES),
        ("TCP_USER_TIMEOUT", limits.user_timeout_ms),
    ):
        if (option := getattr(socket, name, None)) is not None:  # Linux names; others keep defaults
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


async def prewarm(engine: AsyncEngine, connections: int, *, timeout: float = 5.0) -> None:
    """Open `connections` of the pool's connections together and give them back to it. Best effort,
    for at most `timeout`: with the database away they are opened later, on demand."""
    all_open = asyncio.Event()
    opened: set[asyncio.Task[None] | None] = set()

    async def open_one() -> None:
        async with engine.connect():  # held until all are open, or the pool would hand one out twice
            opened.add(asyncio.current_task())
            if len(opened) == connections:
                all_open.set()
            await all_open.wait()

    tasks = [asyncio.create_task(open_one()) for _ in range(connections)]
    try:
        await asyncio.wait(tasks, timeout=timeout)
    finally:  # also when this is cancelled: the open ones go back to the pool, the others stop trying
        all_open.set()
        for task in tasks:
            if task not in opened:
                task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    if failures := [r for r in results if isinstance(r, BaseException)]:
        log.warning("postgres.pool_sin_precalentar", abiertas=len(opened), de=connections, error=repr(failures[0]))


def asyncpg_dsn(url: str) -> str:
    """The same database as a plain libpq-style URL, for asyncpg's own connections (LISTEN)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def migrate(engine: AsyncEngine, migrations_dir: Path | None = None) -> None:
    """Best on an engine without `ConnectionLimits` (the client would still give up on a long
    statement after its command timeout); the server's statement timeout is lifted here."""
    script_location = str(migrations_dir or DEFAULT_MIGRATIONS_DIR)
    async with engine.connect() as conn:
        await conn.execute(text("SET LOCAL statement_timeout = 0"))
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await conn.run_sync(_upgrade, script_location)
        await conn.commit()


def _upgrade(connection: Connection, script_location: str) -> None:
    # Imported here, not at the top: Alembic (with its DDL dialects and Mako) is ~10 MB resident,
    # and replicas run with --no-migrate (the migration is a Job of its own in deploy/).
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
