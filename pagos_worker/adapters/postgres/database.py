"""Engine creation and migrations (Alembic, under an advisory lock so replicas may all try)."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from sqlalchemy import Connection, event, make_url, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from pagos_worker.adapters.postgres.driver import READ_ONLY_SQLSTATE

log = structlog.get_logger(__name__)

_MIGRATION_LOCK = 0x7061_676F  # "pago"
# What pg_stat_activity shows for a migration's connection (`migrate`, Alembic's CLI).
MIGRATION_APPLICATION_NAME = "pagos-worker-migrate"
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
    """`limits` None: no timeouts at all (migrations, which may rewrite a large table).

    Every connection is opened by asyncpg from the URL as a DSN (`asyncpg_dsn`), as the relays'
    LISTEN connection and the reconciliation's are: libpq's TLS parameters (`sslmode`,
    `sslrootcert`, `sslcert`, `sslkey`) mean the same on all of them. SQLAlchemy's own translation
    passes the URL's query as keyword arguments, which asyncpg takes only for `ssl`."""
    server_settings = {"application_name": application_name}
    connect_args: dict[str, Any] = {"server_settings": server_settings}
    extra: dict[str, Any] = {}
    if limits is not None:
        server_settings.update(limits.server_settings())
        connect_args |= {"command_timeout": limits.command_timeout_s, "timeout": limits.connect_timeout_s}
        extra["pool_timeout"] = limits.pool_timeout_s
    dsn = asyncpg_dsn(url)

    async def conectar() -> asyncpg.Connection:
        return await asyncpg.connect(dsn, **connect_args)

    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, async_creator=conectar, **extra
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


class EsquemaDesfasadoError(RuntimeError):
    """The database's schema is older than what this release needs, or there is none: the
    release's migrations have not run there."""


async def comprobar_esquema(engine: AsyncEngine, requerida: str) -> str:
    """The database's schema revision, if it is `requerida` or later (revisions are numbered:
    a later one is a later release's, additive, which an older release runs on during a rollout or
    after a rollback); else `EsquemaDesfasadoError`. Reads `alembic_version` only (the runtime's
    role may read it, never write it)."""
    async with engine.connect() as conn:
        if await conn.scalar(text("SELECT to_regclass('alembic_version') IS NULL")):
            revision = None
        else:
            revision = await conn.scalar(text("SELECT max(version_num) FROM alembic_version"))
    if revision is None or not revision.isdigit() or int(revision) < int(requerida):
        tiene = f"is at revision {revision}" if revision else "has no schema (no migration applied)"
        raise EsquemaDesfasadoError(
            f"the database {tiene}; this release needs revision {requerida} or later: "
            "run `pagos-worker migrate` first (the migration Job)"
        )
    return str(revision)


def asyncpg_dsn(url: str) -> str:
    """The same database as a plain libpq-style URL, which asyncpg parses for every connection of
    the service. `ssl=` (the keyword SQLAlchemy's documentation shows for asyncpg) is read as
    libpq's `sslmode=`: in a DSN asyncpg would send it to the server as a setting."""
    dsn = make_url(url).set(drivername="postgresql")
    query = dict(dsn.query)
    if "ssl" in query:
        if "sslmode" in query:
            raise ValueError("PAGOS_DATABASE_URL: give sslmode or ssl, not both")
        query["sslmode"] = query.pop("ssl")
        dsn = dsn.set(query=query)
    return dsn.render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class MigrationLimits:
    """How long a migration may hold the running release up. Every wait for a lock ends after
    `lock_timeout_s`: a migration queued behind a long transaction would otherwise make every
    statement of the release that touches that table queue behind it (PostgreSQL grants locks in
    order), so it gives up instead, changing nothing, and is run again. Shorter than the release's
    own statement timeout (5 s), so that what queued behind it meanwhile still finishes. Every
    statement of a migration's transaction ends after `statement_timeout_s`: one that rewrites or
    scans a large table under a lock is one to redesign (docs/deploy/migrations.md), not to wait
    for. A concurrent index build (`migraciones.indice_concurrente`) blocks no one and has neither.
    A run waits up to `wait_s` for another run to end (below the migration Job's deadline, 900 s),
    then gives up, changing nothing."""

    lock_timeout_s: float = 3.0
    statement_timeout_s: float = 60.0
    wait_s: float = 600.0
    poll_s: float = 1.0

    def sentencias(self, *, local: bool = False) -> list[str]:
        """The SETs for a session (or, `local`, for the transaction a caller holds open)."""
        alcance = "SET LOCAL" if local else "SET"
        return [
            f"{alcance} lock_timeout = {int(self.lock_timeout_s * 1000)}",
            f"{alcance} statement_timeout = {int(self.statement_timeout_s * 1000)}",
        ]


MIGRATION_LIMITS = MigrationLimits()
# SQLSTATEs of a migration that gave up waiting: lock_not_available (lock_timeout), query_canceled
# (statement_timeout, or an administrator's pg_cancel_backend), deadlock_detected (another session's
# locks and the migration's waited for each other: PostgreSQL ended the migration's transaction).
_ABANDONO = {
    "55P03": "waited longer than its lock timeout for a lock",
    "57014": "ran past its statement timeout (or was cancelled)",
    "40P01": "was ended by PostgreSQL to break a deadlock",
}
# The migration lock, and who holds it (a bigint key is classid: high half, objid: low half).
_TOMAR_CERROJO = text(
    "SELECT pg_try_advisory_lock(:key) AS tomado, (SELECT min(pid) FROM pg_locks WHERE locktype = 'advisory' "
    "AND granted AND classid::bigint = :key >> 32 AND objid::bigint = :key & 4294967295 AND objsubid = 1) AS pid"
)


class MigracionInvalidaError(RuntimeError):
    """A migration breaks a rule that `migrate` relies on (docs/deploy/migrations.md): refused
    before it changed anything; the migration's text is to fix."""


class MigracionAbandonadaError(RuntimeError):
    """A migration gave up: a lock held by another transaction for longer than the lock timeout, or
    a statement past its timeout. That migration's transaction changed nothing (a concurrent index
    build, the only operation of its migration, may be left invalid: the next run builds it again);
    the migrations before it are applied."""


async def migrate(
    engine: AsyncEngine, migrations_dir: Path | None = None, limits: MigrationLimits = MIGRATION_LIMITS
) -> None:
    """Apply the pending migrations, each in its own transaction (a concurrent index build runs
    between two), under a session advisory lock so that replicas may all try: a second run waits
    for the first, then finds nothing to do. Best on an engine without `ConnectionLimits`: the
    migration's own limits (`limits`) replace the service's on this connection."""
    script_location = str(migrations_dir or DEFAULT_MIGRATIONS_DIR)
    async with engine.connect() as conn:
        await _esperar_turno(conn, limits)
        try:
            await conn.run_sync(_upgrade, script_location, limits)
        except DBAPIError as exc:
            await conn.rollback()
            if (causa := _ABANDONO.get(str(getattr(exc.orig, "sqlstate", "")))) is None:
                raise
            raise MigracionAbandonadaError(
                f"a migration {causa} and was rolled back: the schema stays at revision {await _revision(conn)}. "
                f"Nothing of that migration's transaction was applied (a concurrent index build cut short "
                f"is left invalid, and built again by the next run); run `pagos-worker migrate` again "
                f"(a transaction holding a lock on what it changes: docs/deploy/migrations.md). "
                f"Statement: {_sentencia(exc)}"
            ) from exc
        finally:
            try:
                await conn.rollback()
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
                await conn.execute(text("RESET lock_timeout"))
                await conn.execute(text("RESET statement_timeout"))
                await conn.commit()
            except (DBAPIError, OSError) as exc:  # a connection that is gone took its lock with it
                log.warning("migraciones.sin_liberar", error=repr(exc))


async def _esperar_turno(conn: AsyncConnection, limits: MigrationLimits) -> None:
    """Take the migration lock, or give up after `limits.wait_s`. It is polled, each try a statement
    of its own (autocommit), with the waits in between outside any transaction: a run waiting in
    pg_advisory_lock would hold a snapshot, which another run's concurrent index build waits for,
    while that run holds the lock it waits for (a deadlock)."""
    nivel = await conn.get_isolation_level()
    await conn.execution_options(isolation_level="AUTOCOMMIT")
    try:
        limite = time.monotonic() + limits.wait_s
        while True:
            tomado, pid = (await conn.execute(_TOMAR_CERROJO, {"key": _MIGRATION_LOCK})).one()
            if tomado:
                return
            if time.monotonic() >= limite:
                raise MigracionAbandonadaError(
                    f"another `pagos-worker migrate` (held by pid {pid}) has held the migration lock for longer "
                    f"than {limits.wait_s:g} s (PAGOS_MIGRATION_WAIT_SECONDS); nothing was applied. Run it again "
                    "once that run has ended (pg_stat_activity, application_name pagos-worker-migrate)"
                )
            log.info("migraciones.esperando", mensaje=f"waiting for the migration lock (held by pid {pid})", pid=pid)
            await asyncio.sleep(limits.poll_s)
    finally:
        await conn.commit()  # SQLAlchemy's bookkeeping only: in autocommit there is no transaction
        await conn.execution_options(isolation_level=nivel)


async def _revision(conn: AsyncConnection) -> str:
    if await conn.scalar(text("SELECT to_regclass('alembic_version') IS NULL")):
        return "none (no migration applied)"
    return str(await conn.scalar(text("SELECT string_agg(version_num, ',') FROM alembic_version")) or "none")


def _sentencia(exc: DBAPIError, largo: int = 200) -> str:
    sentencia = " ".join(str(exc.statement or "").split())
    return sentencia[:largo] + ("…" if len(sentencia) > largo else "")


def _upgrade(connection: Connection, script_location: str, limits: MigrationLimits) -> None:
    # Imported here, not at the top: Alembic (with its DDL dialects and Mako) is ~10 MB resident,
    # and replicas run with --no-migrate (the migration is a Job of its own in deploy/).
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["connection"] = connection
    config.attributes["limits"] = limits  # migrations/env.py sets them on the connection
    command.upgrade(config, "head")
