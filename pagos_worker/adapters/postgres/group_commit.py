"""Group commit: concurrent single-item calls coalesced into few transactions.

With many payments in flight, writing each in its own transaction makes the database's commit
rate the ceiling. Calls that arrive while a flush is running wait for the next one, so batches grow
with load. Without a `linger` an idle system flushes each call at once; with one, every batch short
of full waits that long for company — a few milliseconds of latency for far fewer transactions,
and far fewer wake-ups of every process involved, at moderate load.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitter(Generic[T, R]):
    """`flush(items)` must return one result per item, in order, or raise (every caller gets the error).

    `linger` (seconds): a batch smaller than `max_batch` is started that long after it could have
    been (nothing of it in flight), with whatever arrived meanwhile: under moderate load, fewer and
    larger transactions instead of one flush right after another, each of a few items; a full batch
    never waits.

    `aislar(exc)`: whether a batch that failed with `exc` is tried again one item at a time (each in
    a flush of its own, on the same slot), so that one bad item — a data error of its own — fails
    alone and the rest commit. Otherwise (an outage) every caller of the batch gets the error."""

    def __init__(
        self,
        flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int,
        max_in_flight: int = 2,
        linger: float = 0.0,
        aislar: Callable[[Exception], bool] | None = None,
    ) -> None:
        if max_batch < 1 or max_in_flight < 1 or linger < 0:
            raise ValueError("max_batch and max_in_flight must be at least 1, linger not negative")
        self._flush = flush
        self._aislar = aislar
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._linger = linger
        self._timer: asyncio.TimerHandle | None = None
        self._lingered = False  # the pending items have waited their `linger`
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._desde = 0.0  # loop time of the last commit, or of going from idle to busy if later

    def sin_progreso(self) -> float:
        """Seconds that items have been waiting with no flush committing any (0 while idle): a
        database that stopped answering shows here while pings on fresh connections still pass."""
        if not self._pending and not self._in_flight:
            return 0.0
        return asyncio.get_running_loop().time() - self._desde

    def _occupy(self) -> None:
        if not self._pending and not self._in_flight:
            self._desde = asyncio.get_running_loop().time()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._occupy()
        self._pending.append((item, future))
        self._start_flushes()
        return await future

    async def submit_many(self, items: Sequence[T]) -> list[R]:
        """Several items at once: they go in the same batch (as far as `max_batch` allows)."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[R]] = [loop.create_future() for _ in items]
        self._occupy()
        self._pending.extend(zip(items, futures, strict=True))
        self._start_flushes()
        return list(await asyncio.gather(*futures))

    def _start_flushes(self) -> None:
        while self._pending and self._in_flight < self._max_in_flight:
            if self._linger and not self._lingered and len(self._pending) < self._max_batch:
                if self._timer is None:
                    self._timer = asyncio.get_running_loop().call_later(
                        self._linger, self._lingered_enough, context=contextvars.Context()
                    )
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._lingered = False
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            self._in_flight += 1
            # A flush serves many callers: it runs in a context of its own, not in that of the one
            # that happened to start it (whose trace id its log lines would otherwise carry).
            task = asyncio.create_task(self._run(batch), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _lingered_enough(self) -> None:
        self._timer = None
        self._lingered = True
        self._start_flushes()

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller, or to the bad one
            if len(batch) > 1 and self._aislar is not None and self._aislar(exc):
                log.warning("group_commit.uno_a_uno", items=len(batch), error=repr(exc))
                await self._one_by_one(batch)
            else:
                _fail(batch, exc)
        else:
            self._desde = asyncio.get_running_loop().time()
            if len(results) != len(batch):
                _fail(batch, RuntimeError(f"flush returned {len(results)} results for {len(batch)} items"))
            for (_, future), result in zip(batch, results, strict=False):
                if not future.done():
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            self._start_flushes()

    async def _one_by_one(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        for item, future in batch:
            try:
                [result] = await self._flush([item])
            except asyncio.CancelledError:
                for _, f in batch:
                    f.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - this item's own
                if not future.done():
                    future.set_exception(exc)
            else:
                self._desde = asyncio.get_running_loop().time()
                if not future.done():
                    future.set_result(result)


def _fail(batch: list[tuple[T, asyncio.Future[R]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
