"""Group commit: concurrent single-item calls coalesced into few transactions.

With many payments in flight, writing each in its own transaction makes the database's commit
rate the ceiling. Calls that arrive while a flush is running wait for the next one, so batches grow
with load and an idle system still flushes each call at once (no timer, no added latency).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitter(Generic[T, R]):
    """`flush(items)` must return one result per item, in order, or raise (every caller gets the error)."""

    def __init__(
        self, flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]], *, max_batch: int, max_in_flight: int = 2
    ) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._flush = flush
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._start_flushes()
        return await future

    def _start_flushes(self) -> None:
        while self._pending and self._in_flight < self._max_in_flight:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            self._in_flight += 1
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            _fail(batch, exc)
        else:
            if len(results) != len(batch):
                _fail(batch, RuntimeError(f"flush returned {len(results)} results for {len(batch)} items"))
            for (_, future), result in zip(batch, results, strict=False):
                if not future.done():
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            self._start_flushes()


def _fail(batch: list[tuple[T, asyncio.Future[R]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
