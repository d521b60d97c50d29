"""A run's checks before its first copy — the destination writable, the
sources readable, a move's buckets fit for it (:mod:`engine.run.preflight`
makes the calls) — and its sweep after the last: the uploads of ended tasks
whose abort failed are aborted once more, and those still open reported."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from engine.copy.request import Requests
from engine.copy.upload import abort_by_id
from engine.domain import control
from engine.domain.backoff import RetryPolicy
from engine.domain.errors import JobCannotStart
from engine.domain.models import JobStatus
from engine.domain.records import JobRecord
from engine.run import events
from engine.run.preflight import check_destination, check_move, check_sources
from engine.store import Repository

DbCall = Callable[..., Awaitable[Any]]


class Startup:
    """The start-up checks and the end-of-run sweep of one run of a job."""

    def __init__(
        self,
        call: DbCall,
        repo: Repository,
        job: JobRecord,
        requests: Requests,
        policy: RetryPolicy,
        observer: events.Observer,
    ) -> None:
        self._call = call
        self.repo = repo
        self.job = job
        self.requests = requests
        self.policy = policy
        self.observer = observer

    async def begin(
        self, client: Any, source: Any, *, preflight: bool, all_versions: bool
    ) -> frozenset[str]:
        """Check what the run needs (``preflight``: the buckets; a move: its
        buckets' versioning, always) with the destination's ``client`` and
        the sources' ``source``, then mark the job running.  Returns the
        source buckets that keep versions (a move's)."""
        if preflight:
            await self.preflight(client, source)
        versioned: frozenset[str] = frozenset()
        if self.job.spec.copy.delete_source:
            versioned = await self.check_move(
                client, all_versions=all_versions, source=source
            )
        await self._call(
            partial(
                self.repo.set_job_status,
                self.job.id,
                JobStatus.RUNNING,
                None,
                time.time(),
                only_from=control.STARTABLE,
            )
        )
        return versioned

    async def preflight(self, client: Any, source: Any = None) -> None:
        """The destination can be written (and swept of an earlier check's
        upload), the sources read (with ``source`` when it is not
        ``client``)."""
        job = self.job
        policy = self.policy

        async def sources() -> list[str]:
            first = await self._call(self.repo.first_tasks, job.id, 1)
            return await check_sources(
                client if source is None else source,
                list(self.job.spec.source_buckets),
                first[0] if first else None,
                self.requests,
                policy,
            )

        async def checks() -> list[str]:
            # both sides at once (their round trips are the start's wait);
            # a refusal of the destination is the one told when both refuse
            answers = await asyncio.gather(
                check_destination(
                    client, job.dst_bucket, job.dst_prefix, self.requests, policy
                ),
                sources(),
                return_exceptions=True,
            )
            warnings: list[str] = []
            for answer in answers:
                if isinstance(answer, BaseException):
                    raise answer
                warnings += answer
            return warnings

        await self._checked(checks())

    async def _checked(self, checks: Awaitable[list[str]]) -> None:
        """Run start-up checks: a refusal marks the job failed (and is
        raised); warnings become events.  A job still being listed stays
        ``ingesting`` (``copy --from`` checks while it lists): its resume
        must list the rest before it copies."""
        try:
            warnings = await checks
        except JobCannotStart as exc:
            await self._call(
                partial(
                    self.repo.set_job_status,
                    self.job.id,
                    JobStatus.FAILED,
                    str(exc),
                    only_from=control.STARTABLE,
                )
            )
            raise
        for w in warnings:
            self.observer(events.PreflightWarning(self.job.id, w))

    async def check_move(
        self, client: Any, *, all_versions: bool, source: Any = None
    ) -> frozenset[str]:
        """A move deletes sources: learn which source buckets keep versions
        (returned), and refuse to move every version into a bucket that does
        not."""
        versioned: frozenset[str] = frozenset()

        async def checks() -> list[str]:
            nonlocal versioned
            versioned, warnings = await check_move(
                client,
                self.job.dst_bucket,
                list(self.job.spec.source_buckets),
                all_versions=all_versions,
                requests=self.requests,
                policy=self.policy,
                source_client=source,
            )
            return warnings

        await self._checked(checks())
        return versioned

    async def abort_left_uploads(self, client: Any) -> None:
        """Abort, once more, the uploads of ended tasks whose abort failed
        (this run's, or a killed run's); say what is still open."""
        left = await self._call(
            partial(self.repo.open_uploads, self.job.id, of_final_tasks=True)
        )
        still = 0
        for task_id, key, upload_id in left:
            bucket, access = self.job.dst_bucket, self.requests.destination()
            if await abort_by_id(client, bucket, key, upload_id, access):
                await self._call(self.repo.upload_ended, task_id)
            else:
                still += 1
        if still:
            where = f"s3://{self.job.dst_bucket}/{self.job.dst_prefix}"
            self.observer(
                events.UploadsLeft(
                    self.job.id, still, f"bulkcopy cleanup {where} --older-than 0s"
                )
            )
