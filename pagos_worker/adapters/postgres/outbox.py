"""`OutboxStore` on PostgreSQL: skip-locked lots, LISTEN/NOTIFY to wake the relay, and grouped marks of the
events published right after their commit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pagos_worker import observability as metrics
from pagos_worker.adapters.postgres.database import ConnectionLimits, asyncpg_dsn, keepalive
from pagos_worker.adapters.postgres.driver import PinnedConnection, PreparedStatement
from pagos_worker.adapters.postgres.group_commit import GroupCommitter
from pagos_worker.adapters.postgres.retry import retry_transient
from pagos_worker.adapters.postgres.tables import OUTBOX_CHANNEL
from pagos_worker.application.ports.outbox import OutboxEvent

log = structlog.get_logger(__name__)

# An event its committing replica publishes itself is that replica's for `gracia`: the relays take it
# only if it is still pending after that (the replica died, or the broker was away), or at once in
# that replica's own last flush (`propio`).
_RESERVE = PreparedStatement(
    text("""
SELECT id, event_id, event_type, id_pago, payload, creado_en, traceparent, tracestate FROM outbox
WHERE publicado_en IS NULL
  AND (publicador IS NULL OR publicador = CAST(:propio AS text)
       OR creado_en < clock_timestamp() - CAST(:gracia AS interval))
ORDER BY id
LIMIT :limite
FOR UPDATE SKIP LOCKED
""")
)
_DELETE = text("""
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox WHERE publicado_en < :antes ORDER BY publicado_en LIMIT :limite
)
""")
_PENDING = text("""
SELECT count(*) AS n, EXTRACT(EPOCH FROM clock_timestamp() - min(creado_en)) AS antiguedad
FROM outbox WHERE publicado_en IS NULL
""")
# Published when the broker confirmed it (the client's time then), not when the mark is written.
_MARK = PreparedStatement(
    text("""
UPDATE outbox SET publicado_en = CAST(:cuando AS timestamptz)
WHERE id = ANY(CAST(:ids AS bigint[])) AND publicado_en IS NULL
""")
)
_MARK_MANY = PreparedStatement(
    text("""
UPDATE outbox AS o SET publicado_en = v.cuando
FROM unnest(CAST(:ids AS bigint[]), CAST(:cuandos AS timestamptz[])) AS v(id, cuando)
WHERE o.id = v.id AND o.publicado_en IS NULL
""")
)

# Well under the relay grace period (`PAGOS_RELAY_GRACE_SECONDS`, 5 s by default): an event is
# unmarked (and would be published again by a relay if this process died) for at most about this
# long after the broker confirmed it.
_MARK_LINGER = 0.05


class PostgresOutboxBatch:
    def __init__(self, driver: Any, events: Sequence[OutboxEvent]) -> None:  # noqa: ANN401 - asyncpg
        self._driver = driver
        self._events = events

    @property
    def eventos(self) -> Sequence[OutboxEvent]:
        return self._events

    async def marcar_publicados(self, cuando: datetime) -> None:
        params = {"ids": [e.id for e in self._events], "cuando": cuando}
        await self._driver.execute(_MARK.sql, *_MARK.arguments(params))
        _observe_lag((e, cuando) for e in self._events)


def _observe_lag(marks: Iterable[tuple[OutboxEvent, datetime]]) -> None:
    for event, when in marks:
        if event.creado_en is not None:
            metrics.OUTBOX_LAG.observe(max(0.0, (when - event.creado_en).total_seconds()))


class PostgresOutboxStore:
    def __init__(self, engine: AsyncEngine, database_url: str, limits: ConnectionLimits | None = None) -> None:
        """`limits`: TCP keepalives for the LISTEN connection, which is idle: a server gone away
        without a word is noticed, and the connection made again."""
        self._engine = engine
        self._connection = PinnedConnection(engine)  # a relay runs its lots one after another
        self._in_use = False
        self._listener = _NotifyListener(asyncpg_dsn(database_url), OUTBOX_CHANNEL, limits)
        # Marks of events published right after their commit: one statement for all that the broker
        # confirmed within `_MARK_LINGER` (or while the previous one ran), on a connection of their
        # own. Nothing waits on a mark but the publication's task; the events are already out.
        self._marks = GroupCommitter(self._mark_batch, max_batch=2000, max_in_flight=1, linger=_MARK_LINGER)
        # A plan for the table as it is at each mark (a few statements a second, so planning costs
        # little): a generic one made while the outbox was empty, even with only nested loops
        # allowed, walks every pending event for each mark (the pending index as the outer side).
        self._marks_connection = PinnedConnection(engine, {"plan_cache_mode": "force_custom_plan"})

    async def marcar_publicados(self, eventos: Sequence[OutboxEvent], cuando: datetime) -> None:
        await self._marks.submit_many([(e, cuando) for e in eventos])

    async def _mark_batch(self, marks: Sequence[tuple[OutboxEvent, datetime]]) -> list[None]:
        params = {"ids": [e.id for e, _ in marks], "cuandos": [when for _, when in marks]}
        await retry_transient(lambda: self._marks_connection.fetch(_MARK_MANY, params))
        _observe_lag(marks)
        return [None] * len(marks)

    @contextlib.asynccontextmanager
    async def reservar_pendientes(
        self, limite: int, *, gracia: timedelta = timedelta(0), propio: str | None = None
    ) -> AsyncIterator[PostgresOutboxBatch]:
        # The lot's rows stay locked until this transaction ends: other relays skip them. Lots come
        # one after another on the kept connection; a concurrent one (two relay loops in one
        # process) takes a connection of its own from the pool for its while.
        concurrent = self._in_use
        connection = PinnedConnection(self._engine) if concurrent else self._connection
        self._in_use = True
        try:
            async with connection.transaction() as driver:
                params = {"limite": limite, "gracia": gracia, "propio": propio}
                rows = await driver.fetch(_RESERVE.sql, *_RESERVE.arguments(params))
                yield PostgresOutboxBatch(
                    driver,
                    [
                        OutboxEvent(
                            id=row["id"],
                            event_id=row["event_id"],
                            event_type=row["event_type"],
                            id_pago=row["id_pago"],
                            payload=row["payload"].encode(),
                            creado_en=row["creado_en"],
                            traceparent=row["traceparent"],
                            tracestate=row["tracestate"],
                        )
                        for row in rows
                    ],
                )
        finally:
            if concurrent:
                await connection.close()
            else:
                self._in_use = False

    async def pendientes(self) -> tuple[int, float | None]:
        """How many events wait to be published, and the age of the oldest (seconds)."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(_PENDING)).one()
        return row.n, None if row.antiguedad is None else float(row.antiguedad)

    async def esperar_nuevos(self, timeout: float) -> None:
        await self._listener.wait(timeout)

    async def borrar_publicados(self, antes_de: datetime, limite: int) -> int:
        async with self._engine.begin() as conn:
            return (await conn.execute(_DELETE, {"antes": antes_de, "limite": limite})).rowcount

    async def close(self) -> None:
        await self._listener.close()
        await self._connection.close()
        await self._marks_connection.close()


class _NotifyListener:
    """One dedicated connection LISTENing on `channel`. If it is lost, waiting degrades to polling
    (the timeout) until it is back."""

    def __init__(self, dsn: str, channel: str, limits: ConnectionLimits | None) -> None:
        self._dsn = dsn
        self._channel = channel
        self._limits = limits
        self._conn: asyncpg.Connection[Any] | None = None
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        if self._conn is None or self._conn.is_closed():
            await self._connect()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()

    async def _connect(self) -> None:
        try:
            conn = await asyncpg.connect(self._dsn, timeout=5, command_timeout=10)
            if self._limits is not None:
                keepalive(conn, self._limits)
            await conn.add_listener(self._channel, self._notified)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("outbox.listen_no_disponible", error=repr(exc))
            return
        self._conn = conn
        # Whatever was committed while we were not listening: look once.
        self._event.set()

    def _notified(self, *_: object) -> None:
        self._event.set()

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
        self._conn = None
