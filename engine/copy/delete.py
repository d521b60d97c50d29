"""A move's second half (``--delete-source``): check both ends, then delete
the source.  The decision is :func:`engine.copy.move.decide` (pure); this
module makes the calls.  :func:`engine.copy.execute.execute` runs it once the
copy is recorded (:class:`engine.copy.context.MoveLog`)."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.copy import confirm, move
from engine.copy.context import CopyContext
from engine.domain import codes, etag
from engine.domain.classify import Disposition
from engine.domain.errors import S3Error
from engine.domain.models import CopyRecord, ObjectRef, Task
from engine.domain.transfer import CARRIES_CHECKSUM, STREAM
from engine.manifest.rows import DELETE_MARKER
from engine.s3.call import invoke
from engine.s3.quirks import refuses_condition


async def _head_or_none(
    client: Any, params: dict[str, Any], extra: dict[str, Any]
) -> dict[str, Any] | None:
    try:
        return await invoke(
            "HeadObject",
            client.head_object,
            **params,
            **extra,
            ChecksumMode="ENABLED",
        )
    except S3Error as err:
        if err.http_status == 404 and err.code != "NoSuchBucket":
            return None
        raise


async def check_source(
    ctx: CopyContext,
    task: Task,
    copied: CopyRecord,
    *,
    deleted_before: bool,
    pinned_by: dict[str, Any] | None = None,
) -> move.Decision:
    """A move's check before the delete: HEAD both ends and decide
    (:func:`engine.copy.move.decide`); raises (the source kept) when the copy
    is not vouched for.

    ``pinned_by``: the source's HEAD the copy was made from moments ago (in
    this attempt).  When the delete itself is bound to that version (by
    version id, or ``If-Match`` on its ETag) the source is not HEADed again:
    the copy is compared with that HEAD, and a source changed since makes the
    delete fail, not succeed."""
    if task.kind == DELETE_MARKER:  # a marker has no content to compare
        return move.Decision("delete", verified_by="a delete marker")
    dst = ObjectRef(ctx.dst_bucket, task.dst_key).params()
    if copied.dst_version_id and copied.dst_version_id != "null":
        dst["VersionId"] = copied.dst_version_id
    dst_access = {**ctx.requests.destination(), **ctx.requests.destination_sse_c()}
    src_head: dict[str, Any] | None
    dst_head: dict[str, Any] | None
    if pinned_by is not None and _bound(ctx, task, copied):
        src_head = pinned_by
        dst_head = await _head_or_none(ctx.client, dst, dst_access)
    else:
        src_head, dst_head = await asyncio.gather(
            _head_or_none(
                ctx.src,
                _source_to_delete(ctx, task, copied),
                ctx.requests.head_source(),
            ),
            _head_or_none(ctx.client, dst, dst_access),
        )
    decision = move.decide(copied, src_head, dst_head, deleted_before=deleted_before)
    if decision.action == "delete" and src_head and dst_head and not copied.skip_code:
        _check_promise(ctx, task, copied, src_head, dst_head)
    if decision.action == "keep":
        raise S3Error(
            decision.code or codes.VERIFICATION_FAILED,
            decision.reason,
            404 if decision.code == codes.SOURCE_VANISHED else None,
            Disposition.RETRY if decision.retry else Disposition.FATAL,
            "HeadObject" if decision.code == codes.SOURCE_VANISHED else "Verify",
        )
    return decision


def _check_promise(
    ctx: CopyContext,
    task: Task,
    copied: CopyRecord,
    src_head: dict[str, Any],
    dst_head: dict[str, Any],
) -> None:
    """Before a source is deleted: its copy carries the metadata, content
    headers and (a multipart copy) checksum algorithm the job promised, read
    from the two HEADs already made; else the source is kept.  Tags are
    confirmed by the copy itself where it relied on the store for them
    (:mod:`engine.copy.confirm`), before the copy is recorded."""
    promise = confirm.promise_for(
        ctx.requests,
        src_head,
        task.overrides or {},
        carries_checksum=copied.method in CARRIES_CHECKSUM,
        tags=None,
        streamed=copied.method == STREAM,
        keeps_checksums=ctx.quirks.keeps_checksums,
    )
    diffs = confirm.unmet_properties(promise, dst_head)
    if diffs:
        raise S3Error(
            codes.VERIFICATION_FAILED,
            "the copy lacks what was promised: "
            + "; ".join(diffs)
            + "; the source is kept",
            None,
            Disposition.FATAL,
            "Verify",
        )


def _source_to_delete(
    ctx: CopyContext, task: Task, copied: CopyRecord
) -> dict[str, Any]:
    src = {"Bucket": task.src.bucket, "Key": task.src.key}
    version = move.version_to_delete(
        task.src.version_id,
        copied.src_version_id,
        versioned=task.src.bucket in ctx.versioned_sources,
    )
    if version:
        src["VersionId"] = version
    return src


def _bound(ctx: CopyContext, task: Task, copied: CopyRecord) -> bool:
    """Whether the delete can only take the version that was copied: by its
    version id, or by key with ``If-Match`` on the ETag copied."""
    if "VersionId" in _source_to_delete(ctx, task, copied):
        return True
    return bool(copied.src_etag) and _can_send_if_match(ctx)


def _can_send_if_match(ctx: CopyContext) -> bool:
    """Whether the store takes DeleteObject's ``IfMatch`` (as far as this run
    knows) and this botocore knows it (2024 on)."""
    if not ctx.quirks.conditional_delete:
        return False
    try:
        model = ctx.src.meta.service_model.operation_model("DeleteObject")
    except Exception:  # not a botocore client (a test's fake)
        return False
    return "IfMatch" in model.input_shape.members


async def delete_source(ctx: CopyContext, task: Task, copied: CopyRecord) -> bool:
    """DeleteObject of the source version the copy was made from; ``False``
    when the source turned out to be gone already.

    A source deleted by key (unversioned) is deleted only if it still has the
    ETag copied (``If-Match``: S3 since 2025, Ceph; a store that ignores the
    header, or a botocore too old to send it, deletes anyway — the window
    between the check and the delete is then open): one overwritten after
    the check is kept (``SourceChanged``).  A delete by version needs no
    condition (and S3 would hold it against the current version)."""
    src = _source_to_delete(ctx, task, copied)
    condition = (
        {"IfMatch": etag.quoted(copied.src_etag)}
        if "VersionId" not in src
        and copied.src_etag
        and task.kind != DELETE_MARKER
        and _can_send_if_match(ctx)
        else {}
    )
    try:
        await invoke(
            "DeleteObject",
            ctx.src.delete_object,
            **src,
            **condition,
            **ctx.requests.read_source(),
        )
    except S3Error as err:
        if condition and err.http_status == 412:
            raise S3Error(
                codes.SOURCE_CHANGED,
                f"the source changed since it was checked (its ETag is no longer "
                f"{copied.src_etag}); the source is kept",
                412,
                Disposition.FATAL,
                "DeleteObject",
            ) from err
        if condition and err.http_status == 404 and err.code != "NoSuchBucket":
            # If-Match on a key not there (S3 is strongly consistent): gone,
            # most often by our own delete resent after its answer was lost
            # (a resend below the SDK's count); the copy was verified just now
            return False
        if condition and refuses_condition(err.code, err.http_status):
            # the store does not take If-Match on DELETE (LocalStack: 501,
            # nothing deleted): look at the source once more, then delete
            ctx.quirks.conditional_delete = False
            await check_source(ctx, task, copied, deleted_before=False)
            return await delete_source(ctx, task, copied)
        raise
    return True
