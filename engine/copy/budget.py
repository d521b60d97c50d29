"""How many bytes of streamed bodies a process holds at once.

A streamed copy reads each object, or each part, into memory before it sends
it on (:mod:`engine.copy.stream`); the budget makes the reads wait their turn,
first come first served, so a run holds at most ``limit`` bytes of bodies
whatever the number of copies in flight.  A body larger than the whole
budget is let in alone.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ByteBudget:
    """At most ``limit`` bytes taken at once (:meth:`take`)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.used = 0
        self.peak = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, n: int) -> bool:
        return self.used == 0 or self.used + n <= self.limit

    def _admit(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            n, waiter = self._waiting.popleft()
            if waiter.done():  # given up while waiting
                continue
            self._add(n)
            waiter.set_result(None)

    def _add(self, n: int) -> None:
        self.used += n
        self.peak = max(self.peak, self.used)

    @asynccontextmanager
    async def take(self, n: int) -> AsyncIterator[None]:
        """Hold ``n`` bytes for the block; wait until they fit."""
        if not self._waiting and self._fits(n):
            self._add(n)
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append((n, waiter))
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self.used -= n  # admitted as it was cancelled: give back
                    self._admit()
                else:
                    waiter.cancel()
                    self._admit()
                raise
        try:
            yield
        finally:
            self.used -= n
            self._admit()
