"""Confirm that a copy holds what the job promised it would carry.

The store is not trusted to honour every header that asks for a property:
Ceph RGW ignores ``Tagging`` on CreateMultipartUpload and ``TaggingDirective``
on CopyObject (its tags follow ``MetadataDirective``), and stores differ on
``ChecksumAlgorithm``.  So a copy that relied on such a header is checked on
the destination before its task counts as ``succeeded``:

* a multipart copy, always (its properties were all set on the create);
* a CopyObject that replaced metadata or tags, or asked for a checksum
  algorithm (:func:`relies_on_store`); a plain ``COPY``/``COPY`` CopyObject
  is the store's own copy and is not HEADed again (the hot path);
* a move, before its source is deleted (``engine.copy.delete``).

Tags found wrong are set with PutObjectTagging and read back; anything else
wrong (metadata, content headers, the checksum algorithm) fails the task with
``VerificationFailed``: the copy cannot be fixed without copying again.
The comparisons are pure (:func:`unmet_properties`, :func:`tag_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.copy.properties import CONTENT_HEADERS
from engine.copy.request import Requests
from engine.domain.classify import Disposition
from engine.domain.content import CHECKSUM_ALGORITHMS
from engine.domain.digests import sent_algorithm
from engine.domain.errors import S3Error
from engine.domain.models import ObjectRef, Task
from engine.s3.call import invoke
from engine.s3.quirks import Quirks, refuses_condition

VERIFICATION_FAILED = "VerificationFailed"


@dataclass(frozen=True, slots=True)
class Promise:
    """What a copy should carry: ``properties`` (``Metadata`` and the content
    headers, as its HEAD reads them), the ``checksum_algorithm`` it should
    have (``None``: none promised), and its ``tags`` (``None``: not promised)."""

    properties: dict[str, Any]
    checksum_algorithm: str | None = None
    tags: dict[str, str] | None = None


def checksum_algorithm(head: dict[str, Any]) -> str | None:
    """The checksum algorithm an object's HEAD (``ChecksumMode=ENABLED``) shows."""
    for alg in CHECKSUM_ALGORITHMS:
        if head.get(f"Checksum{alg}"):
            return alg
    return None


def promise_for(
    requests: Requests,
    src_head: dict[str, Any],
    overrides: dict[str, Any],
    *,
    carries_checksum: bool,
    tags: dict[str, str] | None,
    streamed: bool = False,
    keeps_checksums: bool = True,
) -> Promise:
    """What a copy of the source read by ``src_head`` should carry, with the
    job's options and the task's ``overrides`` applied.  ``carries_checksum``:
    the copy was asked to keep the source's checksum algorithm (a multipart
    copy sets it on the create); ``streamed``: it was sent with the algorithm
    :func:`~engine.domain.digests.sent_algorithm` picks.  A store found to
    keep no checksums (``keeps_checksums``) is promised only the algorithm
    ``--checksum-algorithm`` asked for, none carried from the source."""
    want = requests.expected(src_head, overrides)
    properties = {"Metadata": dict(want.get("Metadata") or {})}
    for name in CONTENT_HEADERS:
        if want.get(name) not in (None, ""):
            properties[name] = want[name]
    asked = requests.options.checksum_algorithm
    if asked or not carries_checksum or not keeps_checksums:
        alg = asked
    elif streamed:
        alg = sent_algorithm(None, src_head)
    else:
        alg = checksum_algorithm(src_head)
    return Promise(properties, alg, tags)


def property_names(promise: Promise) -> frozenset[str]:
    """The properties the promise names (``Metadata`` when it promises any,
    each content header it promises): what a HEAD alone shows of a copy."""
    return frozenset(
        name
        for name, value in promise.properties.items()
        if value or name != "Metadata"
    )


def shown_by_answer(promise: Promise, answer: dict[str, Any]) -> bool:
    """Whether a PutObject's ``answer`` shows what a HEAD would check beyond
    its properties: the checksum algorithm promised (none, or the answer
    carries it)."""
    alg = promise.checksum_algorithm
    return alg is None or bool(answer.get(f"Checksum{alg}"))


def relies_on_store(copy_args: dict[str, Any]) -> bool:
    """Whether a CopyObject asked the store for something some stores ignore
    (replaced metadata or tags, a checksum algorithm): then its outcome is
    confirmed."""
    return replaces(copy_args) or "ChecksumAlgorithm" in copy_args


def replaces(copy_args: dict[str, Any]) -> bool:
    """Whether a CopyObject replaces metadata or tags: then its tags are at
    the store's mercy (RGW ties them to MetadataDirective) and are read back."""
    return (
        copy_args.get("MetadataDirective") == "REPLACE"
        or copy_args.get("TaggingDirective") == "REPLACE"
    )


def tag_dict(tag_set: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_set}


def _lower_keys(metadata: dict[str, str]) -> dict[str, str]:
    # user metadata names are HTTP header names: case does not matter
    return {k.lower(): v for k, v in metadata.items()}


def unmet_properties(promise: Promise, dst: dict[str, Any]) -> list[str]:
    """What the destination's HEAD lacks of the promise (empty: all kept)."""
    want = promise.properties
    diffs: list[str] = []
    meta = _lower_keys(want.get("Metadata") or {})
    have = _lower_keys(dst.get("Metadata") or {})
    # every promised key with its value; a store may add its own (rclone
    # adds mtime)
    if any(have.get(k) != v for k, v in meta.items()):
        diffs.append(f"metadata {have}, promised {meta}")
    for name in CONTENT_HEADERS:
        if not want.get(name):
            continue  # none promised (ContentType: the store's default)
        if want.get(name) != dst.get(name):
            diffs.append(f"{name} {dst.get(name)!r}, promised {want.get(name)!r}")
    alg = promise.checksum_algorithm
    if alg and not dst.get(f"Checksum{alg}"):
        found = checksum_algorithm(dst)
        diffs.append(
            f"checksum algorithm {found or 'none'}, promised {alg} "
            "(the store ignored ChecksumAlgorithm)"
        )
    return diffs


def _failed(message: str, operation: str = "Verify") -> S3Error:
    return S3Error(VERIFICATION_FAILED, message, None, Disposition.FATAL, operation)


async def source_tags(
    client: Any, task: Task, requests: Requests, version_id: str | None = None
) -> list[dict[str, str]]:
    """The source's tags (to carry them), with a clear error when refused."""
    version = version_id if version_id != "null" else None
    kwargs = {**task.src.params(version), **requests.read_source()}
    try:
        resp = await invoke("GetObjectTagging", client.get_object_tagging, **kwargs)
    except S3Error as err:
        if err.code == "AccessDenied":
            raise S3Error(
                "AccessDenied",
                "cannot read the source's tags to carry them over "
                "(s3:GetObjectTagging); grant it or copy without tags "
                "(--no-preserve-tags)",
                err.http_status,
                Disposition.FATAL,
                "GetObjectTagging",
            ) from err
        if refuses_condition(err.code, err.http_status):  # 501: no tags here
            raise S3Error(
                err.code,
                "the store does not implement object tags (GetObjectTagging "
                f"answered {err.http_status or err.code}); copy without them "
                "(--no-preserve-tags)",
                err.http_status,
                Disposition.FATAL,
                "GetObjectTagging",
            ) from err
        raise
    tag_set: list[dict[str, str]] = resp.get("TagSet", [])
    return tag_set


async def promised_tags(
    client: Any,
    task: Task,
    requests: Requests,
    *,
    preserve_tags: bool,
    src_version_id: str | None = None,
) -> dict[str, str] | None:
    """The tags the copy should have, ``None`` when the job promises none."""
    overrides = task.overrides or {}
    if requests.replaces_tags(overrides):
        return requests.expected_tags([], overrides)
    if not preserve_tags:
        return None
    tags = await source_tags(client, task, requests, src_version_id)
    return requests.expected_tags(tags, overrides)


def _version(version_id: str | None) -> dict[str, str]:
    return {"VersionId": version_id} if version_id and version_id != "null" else {}


async def confirm_copy(
    client: Any,
    task: Task,
    dst_bucket: str,
    dst_version_id: str | None,
    promise: Promise,
    requests: Requests,
    dst_head: dict[str, Any] | None = None,
    *,
    quirks: Quirks | None = None,
    put_answer: dict[str, Any] | None = None,
    checksums_unanswered: bool = False,
) -> None:
    """Check the copy against ``promise`` (HEAD it unless ``dst_head`` is
    given); set tags the store left off; raise ``VerificationFailed`` for
    anything that cannot be set afterwards.

    ``checksums_unanswered``: the copy's bodies were streamed with their
    checksum values (``x-amz-checksum-*``) and the store answered none of
    them with a checksum.  Then a checksum algorithm carried from the source
    (not asked for with ``--checksum-algorithm``) that the copy lacks, on a
    store that shows no checksum at all, is the store's gap, not the copy's:
    Ceph RGW keeps none.  It is learned
    (:attr:`~engine.s3.quirks.Quirks.keeps_checksums`) and the copy counts,
    checked by its MD5 and size.  Any other copy that lacks it still fails:
    a store may drop one kind of checksum and keep the rest (LocalStack
    answers a part's checksum, then drops it from an SSE-C multipart
    upload).

    ``put_answer``: the answer of the streamed PutObject that made the copy,
    which sent every property itself.  It is not HEADed when the answer shows
    the checksum promised and every property it promises (metadata, each
    content header) has been seen kept on an earlier copy's HEAD this run
    (:attr:`~engine.s3.quirks.Quirks.put_kept`); one HEAD that finds a
    property dropped has every later copy HEADed
    (``put_keeps_properties = False``).  Its tags, when
    promised, are read back all the same; a move's check before its delete
    HEADs both ends anyway (:mod:`engine.copy.delete`)."""
    dst = {**ObjectRef(dst_bucket, task.dst_key).params(), **_version(dst_version_id)}
    if put_answer is not None and quirks is not None:
        names = property_names(promise)
        known = quirks.put_keeps_properties is not False and names <= quirks.put_kept
        if known and shown_by_answer(promise, put_answer):
            if promise.tags is not None:
                await confirm_tags(client, dst, promise.tags, requests)
            return
        dst_head = await _head(client, dst, requests)
        as_sent = replace(promise, checksum_algorithm=None)
        if unmet_properties(as_sent, dst_head):
            quirks.put_keeps_properties = False  # for good, whatever came before
        elif names:
            quirks.put_kept |= names
            if quirks.put_keeps_properties is None:
                quirks.put_keeps_properties = True
    if dst_head is None:
        dst_head = await _head(client, dst, requests)
    carried = promise.checksum_algorithm and not requests.options.checksum_algorithm
    none_kept = checksum_algorithm(dst_head) is None
    if checksums_unanswered and carried and quirks is not None and none_kept:
        quirks.keeps_checksums = False
        promise = replace(promise, checksum_algorithm=None)
    diffs = unmet_properties(promise, dst_head)
    if diffs:
        raise _failed("the copy lacks what was promised: " + "; ".join(diffs))
    if promise.tags is None:
        return
    await confirm_tags(client, dst, promise.tags, requests)


async def _head(client: Any, dst: dict[str, Any], requests: Requests) -> dict[str, Any]:
    """The copy's HEAD, with its checksums."""
    head: dict[str, Any] = await invoke(
        "HeadObject",
        client.head_object,
        **dst,
        **requests.destination(),
        **requests.destination_sse_c(),
        ChecksumMode="ENABLED",
    )
    return head


async def _read_tags(
    client: Any, dst: dict[str, Any], requests: Requests
) -> dict[str, str]:
    resp = await invoke(
        "GetObjectTagging", client.get_object_tagging, **dst, **requests.destination()
    )
    return tag_dict(resp.get("TagSet", []))


async def confirm_tags(
    client: Any, dst: dict[str, Any], want: dict[str, str], requests: Requests
) -> None:
    """The copy's tags are ``want``; set them if the store left them off."""
    if await _read_tags(client, dst, requests) == want:
        return
    await invoke(
        "PutObjectTagging",
        client.put_object_tagging,
        **dst,
        **requests.destination(),
        Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in want.items()]},
    )
    have = await _read_tags(client, dst, requests)
    if have != want:
        raise _failed(f"tags {have}, promised {want}, and they cannot be set")
