"""Group commit: concurrent requests' rows share one PostgreSQL transaction.

Requests hand their validated items to one writer task and await their own future. The
writer commits whatever has accumulated and only then answers each request, so nothing is
acknowledged before it is durable, and the cost of a transaction (its round trips and its
WAL flush) is shared by every row in it. `apply` writes a batch atomically on its own: one
statement (intake's: reports and their outbox rows in one writable CTE, one round trip with
no BEGIN and COMMIT), or its own transaction block. A lone item on an idle writer is committed at
once; a bounded wait (or `max_rows`) applies only while rows are already queuing, so no
load sees no added latency.

A failed commit fails every item in it; a transient failure (the database is away) is
raised into each waiter, which the app answers with 503. Any other failure is one item's
fault: the batch is split until that item is alone, so its neighbours still commit.

`apply` may decline items it did not store although the commit succeeded (an item whose
idempotency key another request holds) by returning their indexes; `write` tells its
caller whether its item was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Generic, TypeVar

from gridline.common.pg import Connection, Pool, is_transient

T = TypeVar("T")


class WriterStopped(ConnectionError):
    """The writer stopped before the item was committed: not accepted, try again (503)."""


@dataclass(slots=True)
class _Waiter(Generic[T]):
    item: T
    done: asyncio.Future[bool]


class GroupCommit(Generic[T]):
    def __init__(
        self,
        pool: Pool,
        apply: Callable[[Connection, list[T]], Awaitable[Collection[int] | None]],
        *,
        wait: float,
        max_rows: int,
        observe: Callable[[int], object] = lambda _: None,
    ) -> None:
        self._pool = pool
        self._apply = apply
        self._wait = wait
        self._max_rows = max_rows
        self._observe = observe  # rows per transaction
        self._queue: deque[_Waiter[T]] = deque()
        self._in_flight: list[_Waiter[T]] = []
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()

    async def write(self, item: T) -> bool:
        """Return once `item`'s transaction is committed: True if it was stored, False if
        `apply` declined it; raise what made its transaction fail."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiter(item, done))
        self._arrived.set()
        if len(self._queue) >= self._max_rows:
            self._full.set()
        # A request cancelled here (client gone) cancels only its own future: the writer
        # skips it if its item was not taken yet, and commits it with the others if it was.
        return await done

    async def run(self) -> None:
        """The writer: runs for the service's lifetime (Runtime.background)."""
        try:
            while True:
                await self._arrived.wait()
                if self._wait > 0 and 1 < len(self._queue) < self._max_rows:
                    # Rows are queuing, so requests are concurrent: gather a few more.
                    self._full.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._wait):
                            await self._full.wait()
                take = min(len(self._queue), self._max_rows)
                self._in_flight = [self._queue.popleft() for _ in range(take)]
                if not self._queue:
                    self._arrived.clear()
                await self._commit(self._in_flight)
                self._in_flight = []
        finally:
            stopped = WriterStopped("intake stopped before the report was stored")
            for waiter in (*self._in_flight, *self._queue):
                if not waiter.done.done():
                    waiter.done.set_exception(stopped)
            self._in_flight, self._queue = [], deque()

    async def _commit(self, batch: list[_Waiter[T]]) -> None:
        # Requests cancelled before their item was stored are not stored at all.
        live = [w for w in batch if not w.done.done()]
        if not live:
            return
        self._observe(len(live))
        try:
            async with self._pool.acquire() as conn:
                declined = set(await self._apply(conn, [w.item for w in live]) or ())
        except Exception as exc:
            if is_transient(exc) or len(live) == 1:
                for w in live:
                    if not w.done.done():
                        w.done.set_exception(exc)
                return
            half = len(live) // 2
            await self._commit(live[:half])
            await self._commit(live[half:])
            return
        for i, w in enumerate(live):
            if not w.done.done():
                w.done.set_result(i not in declined)
