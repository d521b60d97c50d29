"""Carry one task to a final result: choose the method, retry, record.

One attempt HEADs the source (when asked, or when the size decides the
method), then copies with CopyObject or part by part.  Attempts repeat with
backoff on transient errors; this retry sits on top of the SDK's own, because
a throttling storm empties the shared client's retry budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from engine.copy import confirm
from engine.copy.check import verify_copy
from engine.copy.context import CopyContext
from engine.copy.delete import check_source, delete_source
from engine.copy.multipart import Interrupted, MultipartCopy, abort_upload
from engine.copy.properties import grant_args, not_restored
from engine.copy.single import copy_object, head_source, too_large
from engine.copy.skip import skip_reason
from engine.domain import codes
from engine.domain.backoff import RetryPolicy
from engine.domain.classify import Disposition, skipped
from engine.domain.codes import DESTINATION_EXISTS as EXISTS
from engine.domain.errors import S3Error
from engine.domain.models import CopyRecord, ObjectRef, Task, TaskResult, TaskStatus
from engine.domain.plan import MAX_COPY_OBJECT, use_multipart
from engine.manifest.rows import DELETE_MARKER
from engine.s3.call import invoke

OnRetry = Callable[[Task, int, S3Error, float], None]


__all__ = ["LEASE_LOST", "CopyContext", "Interrupted", "execute"]

# a result the job table will not take: another worker holds the task now
LEASE_LOST = "LeaseLost"


def _no_retry_hook(_t: Task, _a: int, _e: S3Error, _d: float) -> None:
    return None


# answers that mean the credentials ran out, not that the copy failed: the
# credentials are refreshed and the attempt does not count (at most this many
# times per task, in case the fresh ones are refused too)
EXPIRED_CREDENTIALS = frozenset({"ExpiredToken", "ExpiredTokenException"})
MAX_REFRESHES = 3


@dataclass(frozen=True, slots=True)
class Copied:
    etag: str
    dst_version_id: str | None
    src_version_id: str | None
    bytes: int | None
    http_status: int
    method: str
    part_count: int | None = None
    src_etag: str | None = None  # the source's ETag the copy was pinned to
    src_head: dict[str, Any] | None = None  # the HEAD it was pinned by


def _check_conditions(ctx: CopyContext, head: dict[str, Any]) -> None:
    """The ``--if-*`` conditions, against the source's HEAD."""
    why = ctx.requests.unmet_condition(head)
    if why is not None:
        raise S3Error("PreconditionFailed", why, 412, Disposition.FATAL, "CopyObject")


def _check_restored(head: dict[str, Any]) -> None:
    why = not_restored(head)
    if why is not None:
        raise S3Error("ObjectArchived", why, None, Disposition.FATAL, "HeadObject")


class AlreadyThere(S3Error):
    """``--skip-existing``: the destination already holds the object (a move
    still deletes the source: ``dst`` and ``src`` are the two HEADs)."""

    def __init__(self, message: str, src: dict[str, Any], dst: dict[str, Any]) -> None:
        super().__init__(EXISTS, message, None, Disposition.FATAL, "HeadObject")
        self.src = src
        self.dst = dst


async def _skip_if_there(ctx: CopyContext, task: Task, head: dict[str, Any]) -> None:
    """``--skip-existing``: HEAD the destination; raise :class:`AlreadyThere`
    when it already holds the object (:func:`engine.copy.skip.skip_reason`)."""
    try:
        dst = await invoke(
            "HeadObject",
            ctx.client.head_object,
            Bucket=ctx.dst_bucket,
            Key=task.dst_key,
            **ctx.requests.destination(),
            **ctx.requests.destination_sse_c(),  # an SSE-C copy reads with its key
        )
    except S3Error as err:
        if err.http_status != 404:
            raise
        return
    why = skip_reason(
        ctx.options.skip_existing, head, dst, strict=ctx.options.delete_source
    )
    if why is not None:
        raise AlreadyThere(
            f"{why} (--skip-existing {ctx.options.skip_existing})", head, dst
        )


async def _delete_marker(ctx: CopyContext, task: Task) -> Copied:
    """Recreate a source delete marker: DeleteObject on the destination key
    (a versioned destination gets a delete marker of its own)."""
    resp = await invoke(
        "DeleteObject",
        ctx.client.delete_object,
        Bucket=ctx.dst_bucket,
        Key=task.dst_key,
        **ctx.requests.destination(),
    )
    return Copied(
        etag="",
        dst_version_id=resp.get("VersionId"),
        src_version_id=task.src.version_id,
        bytes=0,
        http_status=int(resp.get("ResponseMetadata", {}).get("HTTPStatusCode", 204)),
        method=DELETE_MARKER,
    )


async def copy_once(ctx: CopyContext, task: Task) -> Copied:
    """One attempt at copying ``task``."""
    if task.kind == DELETE_MARKER:
        return await _delete_marker(ctx, task)
    threshold = ctx.options.multipart_threshold
    overrides = task.overrides or {}
    in_place = task.src.bucket == ctx.dst_bucket and task.src.key == task.dst_key
    moving = ctx.options.delete_source
    if moving and in_place:
        raise S3Error(
            codes.SAME_OBJECT,
            "the source is its own destination: moving it would delete it",
            None,
            Disposition.FATAL,
            "CopyObject",
        )
    req = ctx.requests
    head: dict[str, Any] | None = None
    size = task.size
    skip_policy = ctx.options.skip_existing
    if (
        ctx.options.stat_source
        or moving  # a move pins the copy to the source's ETag
        or task.upload_id
        or use_multipart(size, threshold)
        or req.needs_head(overrides, in_place=in_place)
        or skip_policy != "never"
    ):
        head = await head_source(ctx.client, task, req.head_source())
        size = int(head.get("ContentLength", 0))
        _check_conditions(ctx, head)
        _check_restored(head)
    if head is not None and skip_policy != "never" and not in_place:
        await _skip_if_there(ctx, task, head)
    if head is not None and use_multipart(size, threshold):
        return await _multipart(ctx, task, head)
    pinned = head.get("ETag") if head else None
    extra = {
        **req.copy_source(pinned),
        **req.copy_object(head, overrides, in_place=in_place),
    }
    try:
        resp, answer = await copy_object(ctx.client, task, ctx.dst_bucket, extra)
    except S3Error as err:
        if head is None and too_large(err):  # size was unknown: now we know
            head = await head_source(ctx.client, task, req.head_source())
            _check_conditions(ctx, head)
            _check_restored(head)
            if int(head.get("ContentLength", 0)) > MAX_COPY_OBJECT:
                return await _multipart(ctx, task, head)
        raise
    etag, status = answer
    copied = Copied(
        etag=etag,
        dst_version_id=resp.get("VersionId"),
        src_version_id=resp.get("CopySourceVersionId"),
        bytes=size,
        http_status=status,
        method="copy",
        src_etag=pinned,
        src_head=head,
    )
    if confirm.relies_on_store(extra):
        await _confirm(
            ctx,
            task,
            copied,
            head or {},
            carries_checksum=False,
            with_tags=confirm.replaces(extra),
        )
    await _carry_acl(ctx, task, copied)
    await _verify(ctx, task, copied)
    return copied


async def _confirm(
    ctx: CopyContext,
    task: Task,
    copied: Copied,
    head: dict[str, Any],
    *,
    carries_checksum: bool,
    with_tags: bool = True,
) -> None:
    """The copy holds what the job promised (:mod:`engine.copy.confirm`);
    ``with_tags``: its tags too (not for a CopyObject that copied them
    itself)."""
    tags = (
        await confirm.promised_tags(
            ctx.client,
            task,
            ctx.requests,
            preserve_tags=ctx.options.preserve_tags,
            src_version_id=copied.src_version_id,
        )
        if with_tags
        else None
    )
    promise = confirm.promise_for(
        ctx.requests,
        head,
        task.overrides or {},
        carries_checksum=carries_checksum,
        tags=tags,
    )
    await confirm.confirm_copy(
        ctx.client, task, ctx.dst_bucket, copied.dst_version_id, promise, ctx.requests
    )


async def _multipart(ctx: CopyContext, task: Task, head: dict[str, Any]) -> Copied:
    mp = MultipartCopy(
        ctx.client,
        task,
        ctx.dst_bucket,
        head,
        ctx.options,
        ctx.part_log,
        ctx.part_slots,
        ctx.stopping,
        ctx.requests,
    )
    done = await mp.run()
    copied = Copied(
        etag=done.etag,
        dst_version_id=done.dst_version_id,
        src_version_id=done.src_version_id,
        bytes=done.size,
        http_status=done.http_status,
        method="multipart",
        part_count=done.part_count,
        src_etag=head.get("ETag"),
        src_head=head,
    )
    await _confirm(ctx, task, copied, head, carries_checksum=True)
    await _carry_acl(ctx, task, copied)
    await _verify(ctx, task, copied)
    return copied


async def _carry_acl(ctx: CopyContext, task: Task, copied: Copied) -> None:
    """``--preserve acl``: the source's grants and owner, set on the copy."""
    if not ctx.options.preserve_acl:
        return
    try:
        acl = await invoke(
            "GetObjectAcl",
            ctx.client.get_object_acl,
            **task.src.params(),
            **ctx.requests.read_source(),
        )
    except S3Error as err:
        if err.code == "AccessDenied":
            raise S3Error(
                "AccessDenied",
                "cannot read the source's ACL to carry it over "
                "(s3:GetObjectAcl); grant it or copy without --preserve acl",
                err.http_status,
                Disposition.FATAL,
                "GetObjectAcl",
            ) from err
        raise
    dst: dict[str, Any] = {"Bucket": ctx.dst_bucket, "Key": task.dst_key}
    if copied.dst_version_id and copied.dst_version_id != "null":
        dst["VersionId"] = copied.dst_version_id
    await invoke(
        "PutObjectAcl",
        ctx.client.put_object_acl,
        **dst,
        **ctx.requests.destination(),
        **grant_args(acl.get("Grants", [])),
    )


async def _verify(ctx: CopyContext, task: Task, copied: Copied) -> None:
    if not ctx.options.verify:
        return
    src = task.src.params(copied.src_version_id)
    dst = ObjectRef(ctx.dst_bucket, task.dst_key).params(copied.dst_version_id)
    await verify_copy(
        ctx.client,
        src,
        dst,
        tags=ctx.options.preserve_tags,
        requests=ctx.requests,
        overrides=task.overrides or {},
        pinned_etag=copied.src_etag,
    )


def _record_of(task: Task, done: Copied) -> CopyRecord:
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


def _record_of_skip(task: Task, there: AlreadyThere) -> CopyRecord:
    return CopyRecord(
        etag=str(there.dst.get("ETag") or ""),
        bytes=int(there.dst.get("ContentLength", 0)),
        src_etag=there.src.get("ETag"),
        src_version_id=there.src.get("VersionId") or task.src.version_id,
        dst_version_id=there.dst.get("VersionId"),
        skip_code=there.code,
        skip_message=there.message,
    )


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
                    copied, pinned_by = _record_of_skip(task, there), there.src
                else:
                    if ctx.move_log is None:
                        return _finished(task, started, attempt, _record_of(task, done))
                    copied, pinned_by = _record_of(task, done), done.src_head
                if not await ctx.move_log.copied(task, copied):
                    return _lost(task, started, attempt)
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
            return _finished(
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
            return _failed(task, started, attempt, err, copied)


def _finished(
    task: Task,
    started: float,
    attempts: int,
    done: CopyRecord,
    deleted: float | None = None,
    gone: bool = False,
) -> TaskResult:
    """Copied (or, a move, copied and the source deleted at ``deleted``;
    ``gone``: found already deleted)."""
    skipped = done.skip_code is not None
    return TaskResult(
        task_id=task.id,
        status=TaskStatus.SKIPPED if skipped else TaskStatus.SUCCEEDED,
        attempts=attempts,
        started_at=started,
        finished_at=time.time(),
        error_code=done.skip_code,
        error_message=f"{done.skip_message}; the source is deleted"
        if skipped
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


def _failed(
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


def _lost(task: Task, started: float, attempts: int) -> TaskResult:
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
