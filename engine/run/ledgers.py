"""The worker's two ledgers in the job table: where multipart copies record
their uploads and parts (:class:`PartLedger`, the copy layer's ``PartLog``)
and where a move records its copy before the source is deleted
(:class:`MoveLedger`, the ``MoveLog``; one commit for all copies waiting).

Both call the repository through the worker's database thread (``call``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from engine.copy.upload import Upload
from engine.domain.codes import CREATING
from engine.domain.models import CopyRecord, PartRecord, Task
from engine.store import Repository

DbCall = Callable[..., Awaitable[Any]]


class PartLedger:
    """A multipart copy's upload and finished parts, recorded so a resume
    copies only what is missing (:class:`engine.copy.multipart.PartLog`)."""

    def __init__(self, call: DbCall, repo: Repository, worker_id: str) -> None:
        self._call = call
        self._repo = repo
        self._worker_id = worker_id
        self._uploads: dict[int, Upload | None] = {}  # None: ended this run

    def current(self, task: Task) -> Upload | None:
        if task.id in self._uploads:
            return self._uploads[task.id]
        if task.upload_id and task.src_etag is not None and task.part_size:
            return Upload(task.upload_id, task.src_etag, task.part_size)
        return None

    async def creating(self, task: Task) -> None:
        await self._call(
            self._repo.upload_started,
            task.id,
            self._worker_id,
            f"{CREATING}{time.time():.0f}",
            "",
            0,
        )

    async def started(self, task: Task, upload: Upload) -> None:
        await self._call(
            self._repo.upload_started,
            task.id,
            self._worker_id,
            upload.upload_id,
            upload.src_etag,
            upload.part_size,
        )
        self._uploads[task.id] = upload

    async def part_done(self, task: Task, upload: Upload, part: PartRecord) -> None:
        await self._call(self._repo.part_done, task.id, upload.upload_id, part)

    async def recorded(self, task: Task, upload: Upload) -> list[PartRecord]:
        parts: list[PartRecord] = await self._call(
            self._repo.recorded_parts, task.id, upload.upload_id
        )
        return parts

    async def ended(self, task: Task) -> None:
        await self._call(self._repo.upload_ended, task.id)
        self._uploads[task.id] = None


class MoveLedger:
    """A move's copies, recorded before their sources are deleted
    (:class:`engine.copy.context.MoveLog`): the copiers wait, :meth:`run`
    commits all that are waiting at once."""

    def __init__(self, call: DbCall, repo: Repository, worker_id: str) -> None:
        self._call = call
        self._repo = repo
        self._worker_id = worker_id
        self._copies: list[tuple[int, CopyRecord, asyncio.Future[bool]]] = []
        self._waiting = asyncio.Event()

    async def copied(self, task: Task, record: CopyRecord) -> bool:
        """Record the copy; ``False`` when this worker no longer holds the
        task: do not delete."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._copies.append((task.id, record, done))
        self._waiting.set()
        return await done

    async def run(self) -> None:
        """Runs beside the copiers of a move (in the pool's task group)."""
        while True:
            await self._waiting.wait()
            self._waiting.clear()
            batch, self._copies = self._copies, []
            try:
                held: set[int] = await self._call(
                    self._repo.copied,
                    self._worker_id,
                    [(i, r) for i, r, _ in batch],
                )
            except Exception as exc:  # the copiers waiting see it
                for _, _, done in batch:
                    if not done.done():  # (a copier cancelled meanwhile)
                        done.set_exception(exc)
                continue
            for i, _, done in batch:
                if not done.done():
                    done.set_result(i in held)
