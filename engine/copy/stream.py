"""A streamed copy of one object: GetObject from the source's service,
PutObject to the destination's (``--transfer stream``).

For when no server-side copy can reach: another service, another identity.
The source was HEADed first (size, ETag, properties); the GET is pinned to
that version (``VersionId`` where it has one, ``If-Match`` on its ETag), the
body is held in the run's byte budget (:mod:`engine.copy.budget`) and sent
with its MD5 (``Content-MD5``) and the checksum the copy carries
(:mod:`engine.domain.digests`).  Before the copy counts, every check that can
be made is made (:func:`check_body`, :func:`check_answer`): the body's MD5
against the source's MD5 ETag, its checksum against the source's
whole-object checksum, the destination's ETag and checksum against ours.  A
mismatch is ``ChecksumMismatch``, retried, and never a success.

Objects above the multipart threshold (or the part size) are streamed part
by part by :class:`engine.copy.multipart.MultipartCopy`, which reads each
part here (:func:`read_range`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from functools import partial
from typing import Any

from engine.copy.context import CopyContext
from engine.copy.request import Requests
from engine.domain import etag
from engine.domain.classify import Disposition
from engine.domain.codes import CHECKSUM_MISMATCH
from engine.domain.content import md5_etag, whole_object_checksum
from engine.domain.digests import CRC_BYTES, Digests, combined, digest, sent_algorithm
from engine.domain.errors import S3Error
from engine.domain.models import PartRecord, Task
from engine.domain.plan import Part
from engine.s3.bodies import read_into
from engine.s3.call import invoke
from engine.s3.quirks import Quirks

# the checksum a body goes with when the copy carries none: botocore's own
# default (it would compute it otherwise; computed here, it is one pass with
# the MD5 and the lean path can send it)
SEND_ALGORITHM = "CRC32"
# a listed object's GET found it not as listed (another size: a store that
# ignores If-Match), or not readable now (archived): HEAD it and go on
NOT_AS_LISTED = frozenset({"UnexpectedBody", "IncompleteBody", "InvalidObjectState"})
# bodies this large are hashed on a thread (hashlib and zlib let go of the
# GIL), smaller ones on the loop (a thread costs more than their hash)
THREAD_HASH_BYTES = 1 << 20


def mismatch(message: str, operation: str) -> S3Error:
    return S3Error(CHECKSUM_MISMATCH, message, None, Disposition.RETRY, operation)


def stream_algorithm(requests: Requests, head: dict[str, Any]) -> str | None:
    """The checksum algorithm a streamed copy is sent with
    (:func:`engine.domain.digests.sent_algorithm`; the MD5 goes with every
    body anyway)."""
    return sent_algorithm(requests.options.checksum_algorithm, head)


def pinned_read(task: Task, head: dict[str, Any], requests: Requests) -> dict[str, Any]:
    """GetObject arguments for the version ``head`` saw: its version id where
    the source has versions, and ``If-Match`` on its ETag (a store that ignores
    one still honours the other; the bodies are checked anyway)."""
    version = head.get("VersionId")
    args = {
        **task.src.params(version if version and version != "null" else None),
        **requests.head_source(),
        "ChecksumMode": "ENABLED",  # its checksums too (botocore's default)
    }
    if head.get("ETag"):
        args["IfMatch"] = head["ETag"]
    return args


async def _get(client: Any, size: int, **kwargs: Any) -> dict[str, Any]:
    """GetObject, its body read whole into ``Body`` (a buffer of ``size``
    bytes, written once: by the lean path straight off the socket); a short
    body is ``IncompleteBody``, a long one ``UnexpectedBody``."""
    body = bytearray(size)
    lean = getattr(client, "get_object_into", None)  # engine.s3.lean.LeanClient
    read = (
        lean(body, **kwargs) if lean is not None else read_into(client, body, **kwargs)
    )
    resp: dict[str, Any]
    resp, got = await read
    if got > size:
        raise S3Error(
            "UnexpectedBody",
            f"GetObject sent more than the {size} bytes asked for "
            "(a store that ignores Range?)",
            None,
            Disposition.FATAL,
            "GetObject",
        )
    if got != size:
        raise S3Error(
            "IncompleteBody",
            f"GetObject sent {got} of {size} bytes",
            None,
            Disposition.RETRY,
            "GetObject",
        )
    resp["Body"] = body
    return resp


async def read_range(
    client: Any, args: dict[str, Any], first: int | None, size: int
) -> bytearray:
    """``size`` bytes of the source from ``first`` (``None``: the whole
    object) through the one call path; ``args``: :func:`pinned_read`'s."""
    extra = {} if first is None else {"Range": f"bytes={first}-{first + size - 1}"}
    resp = await invoke("GetObject", _get_body(client, size), **args, **extra)
    body: bytearray = resp["Body"]
    return body


def _get_body(client: Any, size: int) -> Any:
    async def call(**kwargs: Any) -> dict[str, Any]:
        return await _get(client, size, **kwargs)

    return call


def with_md5(
    head: dict[str, Any],
    algorithm: str | None,
    *,
    answers_checksums: bool | None,
    content_md5: bool,
) -> bool:
    """Whether a body goes with its MD5.  It is left out only where a CRC
    does all the MD5 would, at both ends: the source has a whole-object CRC
    in the ``algorithm`` sent (the body read is checked by it: on AWS, every
    object's CRC64NVME), the store has answered a body's checksum this run
    (it checks what it is sent; Ceph RGW answers none), and the job does not
    ask for ``Content-MD5`` (``--content-md5``).  An MD5 is made at ~0.6 GB/s,
    a CRC at 10 GB/s or more: the MD5 was half the CPU of a large stream."""
    return (
        content_md5
        or answers_checksums is not True
        or algorithm not in CRC_BYTES
        or whole_object_checksum(head, algorithm) is None
    )


async def hashed(
    body: bytearray, algorithm: str | None, *, md5: bool = True
) -> Digests:
    """:func:`~engine.domain.digests.digest` of ``body``; large ones on a thread."""
    if len(body) >= THREAD_HASH_BYTES:
        return await asyncio.to_thread(partial(digest, md5=md5), body, algorithm)
    return digest(body, algorithm, md5=md5)


def check_body(head: dict[str, Any], sums: Digests, operation: str) -> str:
    """The body read is the source's: its MD5 equals the source's MD5 ETag,
    its checksum the source's whole-object one (as far as the source tells).
    Returns what it was checked by."""
    by = []
    source_md5 = md5_etag(head)
    if source_md5 is not None and sums.md5_hex is not None:
        if not etag.same(source_md5, sums.md5_hex):
            raise mismatch(
                f"the body read has MD5 {sums.md5_hex}; the source's ETag is "
                f"{source_md5}",
                operation,
            )
        by.append("MD5")
    if sums.algorithm is not None:
        want = whole_object_checksum(head, sums.algorithm)
        if want is not None:
            if want != sums.checksum:
                raise mismatch(
                    f"the body read has {sums.algorithm} {sums.checksum}; the "
                    f"source's is {want}",
                    operation,
                )
            by.append(sums.algorithm)
    return " and ".join(by) or "size"


def resumed_algorithm(algorithm: str | None, parts: Iterable[PartRecord]) -> str | None:
    """The checksum algorithm of an upload resumed with ``parts`` recorded:
    the one its parts went with (an upload takes one; one begun by an earlier
    bulkcopy, or under another ``--checksum-algorithm``, may have none or
    another, and a store refuses a part sent otherwise), else ``algorithm``."""
    names = {p.sum[0] if p.sum else None for p in parts}
    return names.pop() if len(names) == 1 else algorithm


def check_parts(
    head: dict[str, Any], algorithm: str | None, parts: Sequence[PartRecord]
) -> str | None:
    """The parts streamed, in order, make the source's whole-object CRC
    (its ``FULL_OBJECT`` checksum, as S3 gives every object it has no other
    checksum for): their recorded CRCs are combined, so the parts sent by an
    earlier run count too.  Returns the algorithm it checked by, or ``None``
    where it cannot check (not a CRC, no whole-object value at the source, a
    part recorded without its CRC); a mismatch raises ``ChecksumMismatch``."""
    want = whole_crc(head, algorithm)
    sums = [p.sum for p in parts]
    if algorithm is None or want is None:
        return None
    if any(s is None or s[0] != algorithm for s in sums):
        return None
    got = combined(
        algorithm, [(s[1], p.size) for s, p in zip(sums, parts, strict=True) if s]
    )
    if got != want:
        raise mismatch(
            f"the parts streamed make {algorithm} {got}; the source's is {want}",
            "UploadPart",
        )
    return algorithm


def check_answer(
    answer: dict[str, Any],
    sums: Digests,
    operation: str,
    *,
    etag_is_md5: bool,
    body: bytearray | None = None,
) -> None:
    """The destination kept what was sent: any checksum it answered with is
    ours, and its ETag is our MD5 (where its ETags are MD5s: not SSE-KMS or
    SSE-C).  A ``body`` sent without its MD5 that the store did not answer
    with its checksum is hashed now, while it is at hand, so the ETag still
    tells; where the ETag cannot tell either, the copy is not counted
    (``ChecksumMismatch``: retried, by then with its MD5)."""
    theirs = answer.get(f"Checksum{sums.algorithm}") if sums.algorithm else None
    if theirs and theirs != sums.checksum:
        raise mismatch(
            f"{operation} answered {sums.algorithm} {theirs} for a body "
            f"with {sums.checksum}",
            operation,
        )
    md5 = sums.md5_hex
    got = answer.get("ETag")
    if md5 is None and not theirs:
        if body is None or not etag_is_md5 or not got:
            raise mismatch(
                f"{operation} answered neither the {sums.algorithm} sent nor an "
                "ETag that tells the body arrived whole",
                operation,
            )
        md5 = hashlib.md5(body).hexdigest()
    if etag_is_md5 and got and md5 and not etag.same(got, md5):
        raise mismatch(
            f"{operation} answered ETag {got} for a body with MD5 {md5}",
            operation,
        )


def learn_answer(quirks: Quirks, answer: dict[str, Any], sums: Digests) -> None:
    """What a body's answer shows of the store: whether it answers the
    checksum sent (:attr:`~engine.s3.quirks.Quirks.answers_checksums`).  One
    answer without it settles it for the run: every later body goes with its
    MD5 (a retry of the copy it failed included)."""
    if sums.algorithm is not None and quirks.answers_checksums is not False:
        quirks.answers_checksums = bool(answer.get(f"Checksum{sums.algorithm}"))


def checksums_unanswered(
    algorithm: str | None,
    sent: int,
    answered: int,
    listed: Iterable[dict[str, Any]] | None,
) -> bool:
    """Whether the store has shown it answers no checksum of ``algorithm``
    for this upload: ``sent`` parts went with it this run and none of them
    was ``answered`` with it; or, no part sent this run (all sent by an
    earlier one), the upload's parts as ListParts gave them (``listed``;
    ``None``: not resumed) carry none.  Ceph RGW keeps none; LocalStack
    lists an SSE-C upload's part checksums and then drops them from the
    object, which must still fail (:func:`engine.copy.confirm.confirm_copy`
    decides with the copy's HEAD)."""
    if not algorithm:
        return False
    if sent:
        return not answered
    if listed is None:
        return False
    return not any(part.get(f"Checksum{algorithm}") for part in listed)


def etags_are_md5(args: dict[str, Any]) -> bool:
    """Whether the destination's ETags will be MD5s of what is sent: not
    with SSE-KMS or SSE-C."""
    sse = str(args.get("ServerSideEncryption") or "")
    return not sse.startswith("aws:kms") and "SSECustomerKey" not in args


def checksum_args(
    args: dict[str, Any], algorithm: str | None, whole: str | None = None
) -> dict[str, Any]:
    """``args`` (CreateMultipartUpload's) with the stream's checksum
    algorithm: the one the parts are sent with; ``FULL_OBJECT`` when the
    copy is to carry the source's ``whole`` CRC (:func:`whole_crc`)."""
    out = without_algorithm(args)
    if algorithm is not None:
        out["ChecksumAlgorithm"] = algorithm
    if whole is not None:
        out["ChecksumType"] = "FULL_OBJECT"
    return out


def whole_crc(head: dict[str, Any], algorithm: str | None) -> str | None:
    """The source's whole-object (``FULL_OBJECT``) CRC in ``algorithm``, the
    one a multipart stream's parts must make (:func:`check_parts`) and its
    upload carries: created ``FULL_OBJECT`` and completed with that value,
    so the store checks it too and the copy's checksum is the source's."""
    if algorithm not in CRC_BYTES:
        return None
    return whole_object_checksum(head, algorithm)


def complete_args(algorithm: str | None, whole: str | None) -> dict[str, Any]:
    """CompleteMultipartUpload's arguments for an upload created to carry
    the source's ``whole`` CRC (none for any other upload)."""
    if whole is None or algorithm is None:
        return {}
    return {"ChecksumType": "FULL_OBJECT", f"Checksum{algorithm}": whole}


def without_algorithm(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k != "ChecksumAlgorithm"}


def held(ctx: CopyContext, size: int) -> AbstractAsyncContextManager[None]:
    """``size`` bytes of the run's byte budget, held for the block."""
    return nullcontext() if ctx.budget is None else ctx.budget.take(size)


async def read_listed(ctx: CopyContext, task: Task) -> dict[str, Any] | None:
    """GetObject of an object whose size (and ETag) the manifest gave, with
    no HEAD first: pinned to the listed ETag (``If-Match``) or version, its
    answer is the HEAD (size, ETag, version, metadata, checksums) and its
    ``Body`` the object.  ``None`` when the object is not as listed (412, or
    a body of another size from a store that ignores ``If-Match``) or cannot
    be read now (archived): the caller HEADs it and reads what is there.
    Hold the budget for ``task.size`` around it (:func:`held`)."""
    size = task.size or 0
    args = {
        **task.src.params(task.src.version_id),
        **ctx.requests.head_source(),
        "ChecksumMode": "ENABLED",
    }
    if task.src_etag:
        args["IfMatch"] = task.src_etag
    try:
        return await invoke("GetObject", _get_body(ctx.src, size), **args)
    except S3Error as err:
        if err.http_status == 412 or err.code in NOT_AS_LISTED:
            return None
        raise


async def put_streamed(
    ctx: CopyContext,
    task: Task,
    head: dict[str, Any],
    args: dict[str, Any],
    body: bytearray | None = None,
) -> tuple[dict[str, Any], str]:
    """PutObject the source (``body``, else read now pinned to ``head``)
    with ``args``; returns the answer and what the body was checked by.
    Hold the budget for the body around it (:func:`held`)."""
    size = int(head.get("ContentLength") or 0)
    alg = stream_algorithm(ctx.requests, head) or SEND_ALGORITHM
    send = without_algorithm(args)
    if body is None:
        body = await read_range(
            ctx.src, pinned_read(task, head, ctx.requests), None, size
        )
    md5 = with_md5(
        head,
        alg,
        answers_checksums=ctx.quirks.answers_checksums,
        content_md5=ctx.content_md5,
    )
    sums = await hashed(body, alg, md5=md5)
    by = check_body(head, sums, "GetObject")
    resp = await invoke(
        "PutObject",
        ctx.client.put_object,
        Bucket=ctx.dst_bucket,
        Key=task.dst_key,
        Body=body or b"",
        ContentLength=size,
        **send,
        **sums.send_args(),
    )
    learn_answer(ctx.quirks, resp, sums)
    check_answer(resp, sums, "PutObject", etag_is_md5=etags_are_md5(send), body=body)
    return resp, by


async def send_part(
    src: Any,
    client: Any,
    head: dict[str, Any],
    read: dict[str, Any],
    part: Part,
    upload: dict[str, Any],
    algorithm: str | None,
    *,
    content_md5: bool,
    etag_is_md5: bool,
    quirks: Quirks,
) -> tuple[dict[str, Any], Digests]:
    """Read one part of the source read by ``head`` (``read``:
    :func:`pinned_read`'s arguments) and send it with UploadPart (``upload``:
    the destination, the upload and part number), with the upload's
    ``algorithm`` checksum when it has one (a part's own CRC32 would not be
    named in Complete) and its MD5 unless a CRC stands in for it
    (:func:`with_md5`).  The answer is checked while the body is at hand,
    and the body is let go on return.  Hold the part's budget around it."""
    body = await read_range(src, read, part.start, part.size)
    md5 = with_md5(
        head,
        algorithm,
        answers_checksums=quirks.answers_checksums,
        content_md5=content_md5,
    )
    sums = await hashed(body, algorithm, md5=md5)
    resp = await invoke(
        "UploadPart",
        client.upload_part,
        **upload,
        Body=body,
        ContentLength=part.size,
        **sums.send_args(),
    )
    learn_answer(quirks, resp, sums)
    check_answer(resp, sums, "UploadPart", etag_is_md5=etag_is_md5, body=body)
    return resp, sums
