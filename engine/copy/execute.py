"""Carry one task to a final result: attempts, backoff between them, the record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from engine.copy.single import copy_once
from engine.errors import S3Error
from engine.models import Task, TaskResult, TaskStatus
from engine.retry import RetryPolicy
from engine.spec import CopyOptions

OnRetry = Callable[[Task, int, S3Error, float], None]


def _no_retry_hook(_t: Task, _a: int, _e: S3Error, _d: float) -> None:
    return None


async def execute(
    client: Any,
    task: Task,
    dst_bucket: str,
    options: CopyOptions,
    policy: RetryPolicy,
    on_retry: OnRetry = _no_retry_hook,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> TaskResult:
    """Copy ``task`` until it succeeds, fails for good, or runs out of attempts.

    This retry sits on top of the SDK's own: a throttling storm empties the
    shared client's retry budget, and a task must not fail because of that.
    """
    started = time.time()
    attempt = 0
    while True:
        attempt += 1
        try:
            done = await copy_once(client, task, dst_bucket, stat=options.stat_source)
        except S3Error as err:
            if policy.should_retry(attempt, err.disposition):
                delay = policy.delay(attempt, err.disposition)
                on_retry(task, attempt, err, delay)
                await sleep(delay)
                continue
            return TaskResult(
                task_id=task.id,
                status=TaskStatus.FAILED,
                attempts=attempt,
                started_at=started,
                finished_at=time.time(),
                error_code=err.code,
                error_message=f"{err.operation}: {err.message}"
                if err.operation
                else err.message,
                http_status=err.http_status,
            )
        return TaskResult(
            task_id=task.id,
            status=TaskStatus.SUCCEEDED,
            attempts=attempt,
            started_at=started,
            finished_at=time.time(),
            http_status=done.http_status,
            src_version_id=done.src_version_id,
            dst_version_id=done.dst_version_id,
            etag=done.etag,
            bytes=done.bytes,
        )
