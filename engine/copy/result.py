"""A task's result, built from how it ended: copied (or moved), skipped,
failed for good, or taken over by another worker.

Pure: values in, a :class:`~engine.domain.models.TaskResult` out.
"""

from __future__ import annotations

import time
from dataclasses import replace

from engine.copy.attempt import AlreadyThere, Copied
from engine.domain import codes
from engine.domain.classify import skipped
from engine.domain.errors import S3Error
from engine.domain.models import CopyRecord, Task, TaskResult, TaskStatus

# a result the job table will not take: another worker holds the task now
LEASE_LOST = "LeaseLost"


def record_of(task: Task, done: Copied) -> CopyRecord:
    """What a copy made, as the job table records it."""
    return CopyRecord(
        etag=done.etag,
        bytes=done.bytes,
        src_etag=done.src_etag,
        src_version_id=done.src_version_id or task.src.version_id,
        dst_version_id=done.dst_version_id,
        http_status=done.http_status,
        method=done.method,
        part_count=done.part_count,
    )


def record_of_skip(task: Task, there: AlreadyThere) -> CopyRecord:
    """``--skip-existing`` found the object at the destination: the
    destination's object, recorded as the copy (with the skip's reason)."""
    return CopyRecord(
        etag=str(there.dst.get("ETag") or ""),
        bytes=int(there.dst.get("ContentLength", 0)),
        src_etag=there.src.get("ETag"),
        src_version_id=there.src.get("VersionId") or task.src.version_id,
        dst_version_id=there.dst.get("VersionId"),
        skip_code=there.code,
        skip_message=there.message,
    )


def finished(
    task: Task,
    started: float,
    attempts: int,
    done: CopyRecord,
    deleted: float | None = None,
    gone: bool = False,
) -> TaskResult:
    """Copied (or, a move, copied and the source deleted at ``deleted``;
    ``gone``: found already deleted)."""
    was_skipped = done.skip_code is not None
    return TaskResult(
        task_id=task.id,
        status=TaskStatus.SKIPPED if was_skipped else TaskStatus.SUCCEEDED,
        attempts=attempts,
        started_at=started,
        finished_at=time.time(),
        error_code=done.skip_code,
        error_message=f"{done.skip_message}; the source is deleted"
        if was_skipped
        else None,
        http_status=done.http_status,
        src_version_id=done.src_version_id,
        dst_version_id=done.dst_version_id,
        etag=done.etag,
        bytes=done.bytes,
        method=done.method,
        part_count=done.part_count,
        delete_state=None
        if deleted is None
        else (codes.GONE if gone else codes.DELETED),
        deleted_at=deleted,
        src_etag=done.src_etag,
    )


def failed(
    task: Task,
    started: float,
    attempts: int,
    err: S3Error,
    copied: CopyRecord | None,
) -> TaskResult:
    """Failed for good; a move whose copy was recorded keeps the copy's
    fields, and its source (``delete_state`` kept)."""
    message = f"{err.operation}: {err.message}" if err.operation else err.message
    base = TaskResult(
        task_id=task.id,
        status=TaskStatus.SKIPPED if skipped(err.code) else TaskStatus.FAILED,
        attempts=attempts,
        started_at=started,
        finished_at=time.time(),
        error_code=err.code,
        error_message=message,
        http_status=err.http_status,
    )
    if copied is None:
        return base
    where = "the destination already held it" if copied.skip_code else "copied"
    vanished = err.code == codes.SOURCE_VANISHED
    source = "the source was already gone" if vanished else "the source was not deleted"
    return replace(
        base,
        status=TaskStatus.FAILED,
        error_message=f"{message} ({where}; {source})",
        src_version_id=copied.src_version_id,
        dst_version_id=copied.dst_version_id,
        etag=copied.etag,
        bytes=copied.bytes,
        method=copied.method,
        part_count=copied.part_count,
        delete_state=codes.KEPT,  # not deleted by us, whatever became of it
        src_etag=copied.src_etag,
    )


def lost(task: Task, started: float, attempts: int) -> TaskResult:
    """The task was taken by another worker before its copy was recorded: a
    result the job table will not accept (its attempts still count)."""
    return TaskResult(
        task_id=task.id,
        status=TaskStatus.FAILED,
        attempts=attempts,
        started_at=started,
        finished_at=time.time(),
        error_code=LEASE_LOST,
        error_message="another worker took the task over; the source was not deleted",
    )


def unexpected_failure(task: Task, exc: Exception) -> TaskResult:
    """A failed result for an error bulkcopy did not expect (a bug): recorded, loud."""
    now = time.time()
    return TaskResult(
        task_id=task.id,
        status=TaskStatus.FAILED,
        attempts=1,
        started_at=now,
        finished_at=now,
        error_code="UnexpectedError",
        error_message=f"{type(exc).__name__}: {exc} (please report this as a bug)",
    )
