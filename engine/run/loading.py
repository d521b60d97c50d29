"""A job whose tasks are still being added while it runs.

``bulkcopy copy --from`` copies what the listing has found so far while it
lists the rest (as s5cmd does): the worker's claims come back empty while
pages are still being read, and that means "wait for the next page", not
"the job is done".  The ingest says when a page is in (:meth:`added`) and
when the last one is (:meth:`finish`)."""

from __future__ import annotations

import asyncio
import contextlib


class Loading:
    """The ingest's side: :meth:`added` after each stored page, :meth:`finish`
    once every task is in.  The worker's side: :attr:`done`, :meth:`wait`."""

    def __init__(self) -> None:
        self._more = asyncio.Event()
        self.done = False
        self.total: int | None = None  # the job's tasks so far, when known
        self._told: tuple[int, bool] | None = None
        self._over_told = False

    def added(self, total: int | None) -> None:
        """Tasks were committed (the job has ``total``, when known): a
        waiting claim may try again."""
        self.total = total
        self._more.set()

    def finish(self) -> None:
        """Every task is in: an empty claim now means the job has none left."""
        self.done = True
        self._more.set()

    async def wait(self, at_most: float = 0.5) -> None:
        """Until tasks are added (or the ingest is done), ``at_most`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await self._more.wait()
        self._more.clear()

    def news(self) -> tuple[int, bool] | None:
        """The job's total so far and whether it is all, if either changed
        since the last call."""
        if self.total is None or (self.total, self.done) == self._told:
            return None
        self._told = (self.total, self.done)
        return self._told

    def just_over(self) -> bool:
        """Whether the ingest is done, true once: the first call after."""
        if not self.done or self._over_told:
            return False
        self._over_told = True
        return True
