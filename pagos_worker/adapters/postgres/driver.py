"""The hot path's statements, run straight on the asyncpg connection that SQLAlchemy's pool hands
out: one round trip each. Every one is a single statement, hence a transaction by itself, so the
BEGIN and COMMIT round trips (and SQLAlchemy's per-execution machinery) are not needed there."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import asyncpg
from sqlalchemy import TextClause
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


class PreparedStatement:
    """A `text()` statement compiled once to asyncpg's positional form."""

    def __init__(self, statement: TextClause) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        self.sql = str(compiled)
        self._order = list(compiled.positiontup or ())

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self._order]


async def fetch(
    engine: AsyncEngine, statement: PreparedStatement, params: Mapping[str, Any], *, timeout: float | None = None
) -> list[Any]:
    """`timeout`: for the connection from the pool and the answer together; past it, `TimeoutError`
    (and a connection that did not answer is dropped). Unset: the pool's and the command timeout."""
    inicio = time.monotonic()
    async with asyncio.timeout(timeout):  # only the checkout may be cancelled by it: see below
        conn = await engine.connect()
    try:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None  # noqa: S101 - a checked-out connection always has one
        # The statement is bounded by asyncpg's own timeout, which cancels it on the server and
        # keeps the connection sane; a task cancelled mid-statement could leave it unusable.
        restante = None if timeout is None else max(0.001, timeout - (time.monotonic() - inicio))
        try:
            return list(await driver.fetch(statement.sql, *statement.arguments(params), timeout=restante))
        except Exception as exc:
            if connection_lost(exc):
                await conn.invalidate()  # never back to the pool
            raise
    finally:
        await conn.close()


class PinnedConnection:
    """One connection of the engine's pool kept checked out by a hot-path user that runs its
    statements one after another (a group-commit flush slot, the relay): a checkout costs more
    client CPU here than the statement it would serve. A lost connection is given back invalidated
    and a new one is checked out on the next use.

    `session_settings` hold for as long as it is kept (reset when it goes back to the pool)."""

    def __init__(self, engine: AsyncEngine, session_settings: Mapping[str, str] | None = None) -> None:
        self._engine = engine
        self._session_settings = dict(session_settings or {})
        self._conn: AsyncConnection | None = None
        self._driver: Any = None

    async def fetch(
        self, statement: PreparedStatement, params: Mapping[str, Any], *, timeout: float | None = None
    ) -> list[Any]:
        """`timeout`: no answer within it and the connection is dropped (a new one next time);
        unset, the connection's command timeout applies."""
        driver = await self._open()
        try:
            return list(await driver.fetch(statement.sql, *statement.arguments(params), timeout=timeout))
        except Exception as exc:
            if connection_lost(exc):
                await self._discard()
            raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        driver = await self._open()
        try:
            async with driver.transaction():
                yield driver
        except Exception as exc:
            if connection_lost(exc):
                await self._discard()
            raise

    async def close(self) -> None:
        if self._conn is not None:
            try:
                if self._session_settings:  # back to the pool as it came, without plans made under them
                    await self._driver.execute("RESET ALL; DISCARD PLANS")
            except Exception:  # noqa: BLE001 - not back to the pool with our settings, then
                with contextlib.suppress(Exception):
                    await self._conn.invalidate()
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = self._driver = None

    async def _open(self) -> Any:  # noqa: ANN401 - asyncpg's connection
        if self._conn is None:
            conn = await self._engine.connect()
            driver: Any = None
            try:
                driver = (await conn.get_raw_connection()).driver_connection
                assert driver is not None  # noqa: S101 - a checked-out connection always has one
                # Within a short timeout, a pooled connection that stopped answering (a partition
                # that froze the pool's idle connections too) is found at once, not after a flush
                # or the command timeout: the setting is the ping. Rare: only when (re)opening.
                for name, value in self._session_settings.items():
                    await driver.execute("SELECT set_config($1, $2, false)", name, value, timeout=_SETUP_TIMEOUT_S)
                if self._session_settings:  # plans cached while this connection served others are made again
                    await driver.execute("DISCARD PLANS", timeout=_SETUP_TIMEOUT_S)
                else:
                    await driver.fetchval("SELECT 1", timeout=_SETUP_TIMEOUT_S)
            except BaseException as exc:
                if connection_lost(exc):  # never back to the pool; aborted first, as in _discard
                    with contextlib.suppress(Exception):
                        driver.terminate()
                    with contextlib.suppress(Exception):
                        await conn.invalidate()
                await conn.close()
                raise
            self._conn, self._driver = conn, driver
        return self._driver

    async def _discard(self) -> None:
        if self._conn is not None:
            # Abort the socket first: a connection that stopped answering would hold up a polite
            # goodbye (SQLAlchemy tries one, for up to 2 s, when it invalidates).
            with contextlib.suppress(Exception):
                self._driver.terminate()
            with contextlib.suppress(Exception):
                await self._conn.invalidate()
                await self._conn.close()
        self._conn = self._driver = None


def connection_lost(exc: BaseException) -> bool:
    """Whether the connection that raised `exc` must not be used again. A read-only transaction
    (25006) counts: the connection reached a standby, or its session began read-only during a
    failover and would stay so after it."""
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        return sqlstate.startswith(("08", "57P")) or sqlstate == READ_ONLY_SQLSTATE
    return True  # OSError, InterfaceError, timeouts: the connection cannot be trusted


READ_ONLY_SQLSTATE = "25006"
_SETUP_TIMEOUT_S = 2.0
