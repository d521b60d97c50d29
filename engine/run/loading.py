"""A job whose tasks are still being added while it runs.

``bulkcopy copy --from`` copies what the listing has found so far while it
lists the rest (as s5cmd does): the worker's claims come back empty while
pages are still being read, and that means "wait for the next page", not
"the job is done".  The ingest says when a page is in (:meth:`added`) and
when the last one is (:meth:`finish`)."""

from __future__ import annotations

import asyncio


class Loading:
    """The ingest's side: :meth:`added` after each stored page, :meth:`finish`
    once every task is in.  The worker's side: :attr:`done`, :meth:`wait`."""

    def __init__(self) -> None:
        self._more = asyncio.Event()
        self.done = False
        self.total: int | None = None  # the job's tasks so far, when known

    def added(self, total: int | None) -> None:
        """Tasks were committed (the job has ``total``, when known): a
        waiting claim may try again."""
        self.total = total
        self._more.set()

    def finish(self) -> None:
        """Every task is in: an empty claim now means the job has none left."""
        self.done = True
        self._more.set()

    async def wait(self) -> None:
        """Until tasks are added (or the ingest is done); the caller bounds
        the wait (``asyncio.timeout``)."""
        await self._more.wait()
        self._more.clear()
