"""``bulkcopy verify``: check every copied object of a job against its source
(:mod:`engine.copy.check`) and record mismatches as failures."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.copy.check import verify_copy, verify_moved
from engine.copy.request import Requests
from engine.domain.codes import REMOVED, VERIFICATION_FAILED
from engine.domain.errors import S3Error
from engine.domain.models import ObjectRef, TaskStatus
from engine.domain.records import ResultRow
from engine.manifest.rows import DELETE_MARKER
from engine.s3.sse_keys import Keys
from engine.store import Repository


async def verify_job(
    client: Any,
    repo: Repository,
    job_id: str,
    concurrency: int = 32,
    keys: Keys | None = None,
    source_client: Any = None,
) -> tuple[int, list[tuple[int, str, str]]]:
    """Verify every succeeded task of a job; record mismatches as failures.

    A moved object (``--delete-source``) has no source left: its destination
    is checked against the copy recorded (ETag, size) — also one a move
    found already there (skipped, its source deleted).  Delete markers are
    not checked.

    Returns how many were checked and the failures ``(task_id, code, message)``.
    An object that cannot be read for checking (gone, no access) is a failure
    too: its copy cannot be vouched for.  ``source_client`` reads the sources
    when they are on another service (the job's source client).
    """
    job = repo.get_job(job_id)
    spec = job.spec
    requests = Requests(spec.object, keys or Keys())
    slots = asyncio.Semaphore(concurrency)
    failures: list[tuple[int, str, str]] = []
    checked = 0

    async def one(row: ResultRow) -> None:
        src = row.src.params(row.src_version_id)
        dst = ObjectRef(row.dst_bucket, row.dst_key).params(row.dst_version_id)
        async with slots:
            try:
                if row.delete_state in REMOVED:  # a move: no source to compare
                    await verify_moved(
                        client,
                        dst,
                        requests,
                        recorded_etag=row.etag,
                        recorded_bytes=row.bytes,
                    )
                    return
                await verify_copy(
                    client,
                    src,
                    dst,
                    tags=spec.copy.preserve_tags,
                    requests=requests,
                    overrides=row.overrides or {},
                    pinned_etag=row.src_etag,
                    source_client=source_client,
                )
            except S3Error as err:
                failures.append(
                    (
                        row.id,
                        VERIFICATION_FAILED,
                        f"{err.operation}: {err.code}: {err.message}"
                        if err.code != VERIFICATION_FAILED
                        else err.message,
                    )
                )

    batch: list[ResultRow] = []
    for row in repo.iter_results(
        job.id, statuses=(TaskStatus.SUCCEEDED, TaskStatus.SKIPPED)
    ):
        if row.kind == DELETE_MARKER:
            continue  # a delete marker has nothing to compare
        if row.status is TaskStatus.SKIPPED and row.delete_state not in REMOVED:
            continue  # not copied (an up-to-date destination: a move's is)
        batch.append(row)
        if len(batch) >= 1000:
            await asyncio.gather(*(one(r) for r in batch))
            checked += len(batch)
            batch = []
    await asyncio.gather(*(one(r) for r in batch))
    checked += len(batch)
    repo.fail_succeeded(failures)
    return checked, failures
