"""Retrying what PostgreSQL says may succeed if tried again: lost connections, a restarting
server, deadlocks and serialization failures. Everything retried here is a whole transaction."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")
log = structlog.get_logger(__name__)

_TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03", "53300"}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OSError | ConnectionError | asyncio.TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if sqlstate is None:
            cause = exc.orig.__cause__ if exc.orig is not None else None
            return cause is not None and is_transient(cause)
        return str(sqlstate) in _TRANSIENT_SQLSTATES or str(sqlstate).startswith("08")
    if (sqlstate := getattr(exc, "sqlstate", None)) is not None:  # asyncpg's own errors
        return str(sqlstate) in _TRANSIENT_SQLSTATES or str(sqlstate).startswith("08")
    name = type(exc).__name__
    return name in {"ConnectionDoesNotExistError", "InterfaceError", "CannotConnectNowError"}


async def retry_transient(operation: Callable[[], Awaitable[T]], *, attempts: int = 8, max_delay: float = 2.0) -> T:
    """Run `operation`; on a transient error try again with jittered exponential backoff
    (about 8 s in all by default, enough for a PostgreSQL restart)."""
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = min(max_delay, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)  # noqa: S311
            log.warning("postgres.reintento", error=type(exc).__name__, intento=attempt, espera_s=round(delay, 3))
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
