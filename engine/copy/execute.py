"""Carry one task to a final result: attempt, retry, record.

Each attempt (:func:`engine.copy.attempt.copy_once`) HEADs the source when
asked, or when the size decides the method, then copies with CopyObject or
part by part.  Attempts repeat with backoff on transient errors; this retry
sits on top of the SDK's own, because a throttling storm empties the shared
client's retry budget.  How the task ended becomes its result
(:mod:`engine.copy.result`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from engine.copy.attempt import AlreadyThere, copy_once
from engine.copy.context import CopyContext
from engine.copy.delete import check_source, delete_source
from engine.copy.result import (
    LEASE_LOST,
    failed,
    finished,
    lost,
    record_of,
    record_of_skip,
)
from engine.copy.upload import Interrupted, abort_upload
from engine.domain.backoff import RetryPolicy
from engine.domain.classify import Disposition
from engine.domain.errors import S3Error
from engine.domain.models import Task, TaskResult

OnRetry = Callable[[Task, int, S3Error, float], None]


__all__ = ["LEASE_LOST", "abandon", "execute"]


def _no_retry_hook(_t: Task, _a: int, _e: S3Error, _d: float) -> None:
    return None


# answers that mean the credentials ran out, not that the copy failed: the
# credentials are refreshed and the attempt does not count (at most this many
# times per task, in case the fresh ones are refused too)
EXPIRED_CREDENTIALS = frozenset({"ExpiredToken", "ExpiredTokenException"})
MAX_REFRESHES = 3


async def abandon(ctx: CopyContext, task: Task) -> None:
    """A task failed for good: abort the multipart upload it may have left."""
    upload = ctx.part_log.current(task)
    if upload is not None:
        await abort_upload(
            ctx.client,
            ctx.dst_bucket,
            task,
            upload,
            ctx.part_log,
            ctx.requests.destination(),
        )


async def execute(
    ctx: CopyContext,
    task: Task,
    policy: RetryPolicy,
    on_retry: OnRetry = _no_retry_hook,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> TaskResult:
    """Copy ``task`` until it succeeds, fails for good, or runs out of attempts.

    A move (``--delete-source``) records the copy through ``ctx.move_log``
    and then deletes the source (:func:`delete_source`); a task whose copy an
    earlier run recorded (``task.copied``) goes straight to the delete.  The
    attempts of both halves add up.

    Raises :class:`Interrupted` when the run stops in the middle of a
    multipart copy; the upload is kept for the next run.
    """
    started = time.time()
    attempt = 0
    refreshes = 0
    copied = task.copied
    # a delete of the source may have gone out: an earlier run recorded the
    # copy (and was stopped or killed), or an answer of ours was lost
    deleted_before = copied is not None
    while True:
        attempt += 1
        # the source's HEAD the copy was just made from (this attempt only)
        pinned_by: dict[str, Any] | None = None
        try:
            if copied is None:
                try:
                    done = await copy_once(ctx, task)
                except AlreadyThere as there:
                    if ctx.move_log is None:
                        raise
                    copied, pinned_by = record_of_skip(task, there), there.src
                else:
                    if ctx.move_log is None:
                        return finished(task, started, attempt, record_of(task, done))
                    copied, pinned_by = record_of(task, done), done.src_head
                if not await ctx.move_log.copied(task, copied):
                    return lost(task, started, attempt)
            decision = await check_source(
                ctx, task, copied, deleted_before=deleted_before, pinned_by=pinned_by
            )
            gone = decision.action == "gone"
            if not gone:
                try:
                    gone = not await delete_source(ctx, task, copied)
                except S3Error as err:
                    # no answer, or the SDK sent it more than once: a delete
                    # of ours may have been carried out
                    if err.http_status is None or err.sdk_retries:
                        deleted_before = True
                    raise
            return finished(
                task, started, attempt, copied, deleted=time.time(), gone=gone
            )
        except S3Error as err:
            if (
                err.code in EXPIRED_CREDENTIALS
                and ctx.refresh_credentials is not None
                and refreshes < MAX_REFRESHES
                and await ctx.refresh_credentials()
            ):
                refreshes += 1
                attempt -= 1  # the credentials' fault, not the copy's
                continue
            # stopping in the middle of a multipart copy: keep it for the resume
            if (
                ctx.stopping.is_set()
                and err.disposition is not Disposition.FATAL
                and ctx.part_log.current(task) is not None
            ):
                raise Interrupted() from err
            if policy.should_retry(attempt, err.disposition):
                delay = policy.delay(attempt, err.disposition)
                on_retry(task, attempt, err, delay)
                await sleep(delay)
                continue
            await abandon(ctx, task)
            return failed(task, started, attempt, err, copied)
