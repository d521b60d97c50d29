"""A worker's heartbeat: every ``heartbeat_every`` seconds it extends the
leases of the tasks it holds (and says its concurrency), and takes back the
tasks of workers known dead (gone from this host, or silent past the lease)
and of expired leases, so the last worker standing finishes the job."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from engine.domain import liveness
from engine.run import events
from engine.run.peers import pid_alive
from engine.run.settings import RunSettings
from engine.store import Repository

DbCall = Callable[..., Awaitable[Any]]

# worker ids of the Workers running in this process (never "dead" to us)
HERE: set[str] = set()


class Heartbeat:
    """The heartbeat of one worker of one job."""

    def __init__(
        self,
        call: DbCall,
        repo: Repository,
        job_id: str,
        worker_id: str,
        settings: RunSettings,
        limit: Callable[[], int | None],
        observer: events.Observer,
    ) -> None:
        self._call = call
        self.repo = repo
        self.job_id = job_id
        self.worker_id = worker_id
        self.settings = settings
        self.limit = limit  # the governor's current limit, while copying
        self.observer = observer

    async def release_orphans(self) -> int:
        """Take back tasks of workers known dead and of expired leases."""
        now = time.time()
        dead = await self._call(
            partial(
                self.repo.dead_workers,
                self.job_id,
                socket.gethostname(),
                os.getpid(),
                pid_alive,
                liveness.silent_before(now, self.settings.lease_seconds),
            )
        )
        dead = [d for d in dead if d not in HERE]
        released: int = await self._call(
            self.repo.release_orphans, self.job_id, now, dead
        )
        return released

    async def run(self) -> None:
        """Beat until cancelled (the pool's task group ends it)."""
        while True:
            await asyncio.sleep(self.settings.heartbeat_every)
            await self._call(
                self.repo.heartbeat,
                self.worker_id,
                time.time() + self.settings.lease_seconds,
                self.limit(),
            )
            released = await self.release_orphans()
            if released:
                self.observer(events.TasksTakenBack(self.job_id, released))
