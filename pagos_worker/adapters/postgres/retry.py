"""Which PostgreSQL errors are outages (they heal: try again later) and which are this statement's
own (trying again gives the same answer), and retrying the former. Everything retried here is a
whole transaction."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from sqlalchemy import exc as sa_exc

T = TypeVar("T")
log = structlog.get_logger(__name__)

# By SQLSTATE class: connection exception (08), transaction rollback — serialization failures,
# deadlocks (40), insufficient resources — disk full, out of memory, too many connections (53),
# operator intervention — shutdown, statement timeout, cancel (57), system error — I/O (58).
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# And single codes of other classes: a read-only transaction (a standby, a failover under way;
# 25006) and a lock not available in time (55P03).
_TRANSIENT_CODES = frozenset({"25006", "55P03"})
# The driver's own words for a connection that is gone or cannot be used now (no SQLSTATE).
_TRANSIENT_NAMES = frozenset(
    {"ConnectionDoesNotExistError", "InterfaceError", "CannotConnectNowError", "ConnectionFailureError"}
)


def transient_sqlstate(sqlstate: str) -> bool:
    return sqlstate[:2] in _TRANSIENT_CLASSES or sqlstate in _TRANSIENT_CODES


def is_transient(exc: BaseException) -> bool:
    """True for an outage of PostgreSQL or of the way to it: lost connections, timeouts (the
    driver's, the server's statement timeout, the pool's), and the SQLSTATEs above."""
    if isinstance(exc, OSError | ConnectionError | TimeoutError | sa_exc.TimeoutError):
        return True  # sa_exc.TimeoutError: no connection came free in the pool in time
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if sqlstate is None:
            cause = exc.orig.__cause__ if exc.orig is not None else None
            return cause is not None and is_transient(cause)
        return transient_sqlstate(str(sqlstate))
    if (sqlstate := getattr(exc, "sqlstate", None)) is not None:  # asyncpg's own errors
        return transient_sqlstate(str(sqlstate))
    return type(exc).__name__ in _TRANSIENT_NAMES


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
