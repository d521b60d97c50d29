"""One attempt at copying a task: the steps, in order.

HEAD the source when asked (or when the size decides the method), check the
``--if-*`` conditions, that it is restored, and ``--skip-existing``; then copy
with CopyObject or part by part (:mod:`engine.copy.multipart`); then confirm
what the store promised, carry the ACL over and verify, as the job asks.  A
source delete marker is recreated instead.  Retrying is the caller's
(:mod:`engine.copy.execute`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.copy import confirm, pin
from engine.copy.check import verify_copy
from engine.copy.context import CopyContext
from engine.copy.multipart import MultipartCopy
from engine.copy.properties import grant_args, not_restored
from engine.copy.single import copy_object, head_source, too_large
from engine.copy.skip import skip_reason
from engine.copy.stream import held, put_streamed, read_listed
from engine.domain import codes, etag
from engine.domain.classify import Disposition
from engine.domain.codes import DESTINATION_EXISTS as EXISTS
from engine.domain.errors import S3Error
from engine.domain.models import ObjectRef, Task
from engine.domain.plan import MAX_COPY_OBJECT, stream_in_parts, use_multipart
from engine.domain.transfer import STREAM
from engine.manifest.rows import DELETE_MARKER
from engine.s3.call import invoke

# a CopyObject's answer and its checked (ETag, HTTP status)
CopyAnswer = tuple[dict[str, Any], tuple[str, int]]


@dataclass(frozen=True, slots=True)
class Copied:
    """What one attempt copied."""

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


def listed_etag(task: Task) -> str | None:
    """The source's ETag the manifest gave with its size (a listing, an
    inventory), when the copy can be pinned to it instead of a HEAD's; not
    for a multipart copy under way (its ``src_etag`` is the upload's)."""
    if task.size is None or not task.src_etag or task.upload_id:
        return None
    return task.src_etag


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
    if ctx.stream:
        return await _streamed(ctx, task, in_place=in_place)
    head: dict[str, Any] | None = None
    size = task.size
    skip_policy = ctx.options.skip_existing
    # the manifest said the size and the ETag (a listing, an inventory): the
    # copy is pinned to that ETag and its size recorded without a HEAD, on a
    # store that holds copies to their pin (engine.copy.pin)
    listed = None if req.has_conditions() else listed_etag(task)
    probing = listed is not None and not task.src.version_id and ctx.options.stat_source
    if probing and ctx.quirks.copy_source_if_match is False:
        listed, probing = None, False
    if (
        (ctx.options.stat_source and listed is None)
        or moving  # a move pins the copy to the source's ETag
        or task.upload_id
        or use_multipart(size, threshold)
        or req.needs_head(overrides, in_place=in_place)
        or skip_policy != "never"
    ):
        head = await head_source(ctx.src, task, req.head_source())
        size = int(head.get("ContentLength", 0))
        _check_conditions(ctx, head)
        _check_restored(head)
    if head is not None and skip_policy != "never" and not in_place:
        await _skip_if_there(ctx, task, head)
    if head is not None and use_multipart(size, threshold):
        return await _multipart(ctx, task, head)
    pinned = head.get("ETag") if head else listed
    extra = {
        **req.copy_source(pinned),
        **req.copy_object(head, overrides, in_place=in_place),
    }
    if head is None and probing:
        probe = {**extra, **req.copy_source(pin.NEVER)}
        learned = await pin.learn(
            ctx.quirks, lambda: copy_object(ctx.client, task, ctx.dst_bucket, probe)
        )
        if not learned.honoured:  # the store copies whatever is there
            return await _unpinned(ctx, task, extra, learned.copied)
    try:
        resp, answer = await copy_object(ctx.client, task, ctx.dst_bucket, extra)
    except S3Error as err:
        if head is None and listed is not None and err.http_status == 412:
            # changed since it was listed: copy what is there now, as a
            # HEAD first would have
            return await copy_once(ctx, replace(task, src_etag=None))
        if head is None and too_large(err):  # size was unknown: now we know
            head = await head_source(ctx.src, task, req.head_source())
            _check_conditions(ctx, head)
            _check_restored(head)
            if int(head.get("ContentLength", 0)) > MAX_COPY_OBJECT:
                return await _multipart(ctx, task, head)
        raise
    return await _copied(
        ctx, task, extra, resp, answer, head=head, pinned=pinned, size=size
    )


async def _streamed(ctx: CopyContext, task: Task, *, in_place: bool) -> Copied:
    """Stream the object (:mod:`engine.copy.stream`): a listed object small
    enough for one PutObject is read at once (its GET is its HEAD); any other
    is HEADed first (its size, the version and ETag the reads are pinned to,
    what it carries), and streamed part by part above one part's size."""
    opts = ctx.options
    size = task.size
    if (
        size is not None
        and not task.upload_id
        and opts.skip_existing == "never"
        and not stream_in_parts(size, opts.multipart_threshold, opts.part_size)
    ):
        async with held(ctx, size):  # the body's bytes, until it is sent
            read = await read_listed(ctx, task)
            if read is not None:
                _check_conditions(ctx, read)
                sent = await _send(ctx, task, read, read.pop("Body"))
        if read is not None:
            return await _sent(ctx, task, read, *sent)
        task = replace(task, src_etag=None, size=None)  # not as listed: HEAD it
    head = await head_source(ctx.src, task, ctx.requests.head_source())
    size = int(head.get("ContentLength", 0))
    _check_conditions(ctx, head)
    _check_restored(head)
    if opts.skip_existing != "never" and not in_place:
        await _skip_if_there(ctx, task, head)
    if stream_in_parts(size, opts.multipart_threshold, opts.part_size):
        return await _multipart(ctx, task, head)
    async with held(ctx, size):
        sent = await _send(ctx, task, head, None)
    return await _sent(ctx, task, head, *sent)


PutAnswer = tuple[dict[str, Any], list[dict[str, str]] | None]


async def _send(
    ctx: CopyContext, task: Task, head: dict[str, Any], body: bytearray | None
) -> PutAnswer:
    """One PutObject of the source read by ``head`` (``body``, else read
    now) with its properties and tags; its answer and the tags read."""
    opts = ctx.options
    overrides = task.overrides or {}
    tags = (
        await confirm.source_tags(ctx.src, task, ctx.requests, head.get("VersionId"))
        if opts.preserve_tags and not ctx.requests.replaces_tags(overrides)
        else None
    )
    args = ctx.requests.create_upload(
        head, tags, overrides, object_lock=opts.preserve_object_lock
    )
    resp, _checked_by = await put_streamed(ctx, task, head, args, body)
    return resp, tags


async def _sent(
    ctx: CopyContext,
    task: Task,
    head: dict[str, Any],
    resp: dict[str, Any],
    tags: list[dict[str, str]] | None,
) -> Copied:
    """A streamed PutObject answered (its bytes given back to the budget):
    confirmed, its ACL carried, verified."""
    overrides = task.overrides or {}
    copied = Copied(
        etag=str(resp.get("ETag") or ""),
        dst_version_id=resp.get("VersionId"),
        src_version_id=head.get("VersionId"),
        bytes=int(head.get("ContentLength", 0)),
        http_status=int(resp.get("ResponseMetadata", {}).get("HTTPStatusCode", 200)),
        method=STREAM,
        src_etag=head.get("ETag"),
        src_head=head,
    )
    # the tags it should have were read above: not again; none promised, a
    # new object has none to read back
    promised = (
        ctx.requests.expected_tags(tags or [], overrides)
        if tags is not None or ctx.requests.replaces_tags(overrides)
        else None
    )
    await _confirm(
        ctx,
        task,
        copied,
        head,
        carries_checksum=True,
        with_tags=bool(promised),
        tags=promised or None,
        put_answer=resp,
        checksums_unanswered=not confirm.checksum_algorithm(resp),
    )
    await _carry_acl(ctx, task, copied)
    await _verify(ctx, task, copied)
    return copied


async def _unpinned(
    ctx: CopyContext, task: Task, extra: dict[str, Any], probed: CopyAnswer | None
) -> Copied:
    """The store copies whatever is there despite a pin (engine.copy.pin):
    HEAD the source and copy it as it is now; ``probed``: the copy the probe
    made anyway, kept when the source still has the listed ETag."""
    unlisted = replace(task, src_etag=None)
    if probed is None:
        return await copy_once(ctx, unlisted)
    head = await head_source(ctx.src, task, ctx.requests.head_source())
    if not etag.same(head.get("ETag"), task.src_etag):
        return await copy_once(ctx, unlisted)  # changed since listed: again
    _check_restored(head)
    resp, answer = probed
    size = int(head.get("ContentLength", 0))
    return await _copied(
        ctx, task, extra, resp, answer, head=head, pinned=head.get("ETag"), size=size
    )


async def _copied(
    ctx: CopyContext,
    task: Task,
    extra: dict[str, Any],
    resp: dict[str, Any],
    answer: tuple[str, int],
    *,
    head: dict[str, Any] | None,
    pinned: str | None,
    size: int | None,
) -> Copied:
    """A CopyObject answered: confirmed, its ACL carried, verified, as asked."""
    etag_, status = answer
    copied = Copied(
        etag=etag_,
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
    tags: dict[str, str] | None = None,
    put_answer: dict[str, Any] | None = None,
    checksums_unanswered: bool = False,
) -> None:
    """The copy holds what the job promised (:mod:`engine.copy.confirm`);
    ``with_tags``: its tags too (not for a CopyObject that copied them
    itself); ``tags``: the tags promised, when the caller knows them;
    ``put_answer``: a streamed PutObject's answer; ``checksums_unanswered``:
    the store answered the streamed bodies, sent with their checksums,
    without any (:func:`engine.copy.confirm.confirm_copy`)."""
    if tags is None and with_tags:
        tags = await confirm.promised_tags(
            ctx.src,
            task,
            ctx.requests,
            preserve_tags=ctx.options.preserve_tags,
            src_version_id=copied.src_version_id,
        )
    promise = confirm.promise_for(
        ctx.requests,
        head,
        task.overrides or {},
        carries_checksum=carries_checksum,
        tags=tags,
        streamed=ctx.stream,
        keeps_checksums=ctx.quirks.keeps_checksums,
    )
    await confirm.confirm_copy(
        ctx.client,
        task,
        ctx.dst_bucket,
        copied.dst_version_id,
        promise,
        ctx.requests,
        quirks=ctx.quirks,
        put_answer=put_answer,
        checksums_unanswered=ctx.stream and checksums_unanswered,
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
        source_client=ctx.source_client,
        stream=ctx.stream,
        budget=ctx.budget,
        quirks=ctx.quirks,
        content_md5=ctx.content_md5,
    )
    done = await mp.run()
    copied = Copied(
        etag=done.etag,
        dst_version_id=done.dst_version_id,
        src_version_id=done.src_version_id,
        bytes=done.size,
        http_status=done.http_status,
        method=STREAM if ctx.stream else "multipart",
        part_count=done.part_count,
        src_etag=head.get("ETag"),
        src_head=head,
    )
    await _confirm(
        ctx,
        task,
        copied,
        head,
        carries_checksum=True,
        checksums_unanswered=mp.checksums_unanswered,
    )
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
            ctx.src.get_object_acl,
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
        source_client=ctx.src,
    )
