"""Check that a copied object matches its source: size, content, metadata, tags.

``compare`` is pure; ``verify_copy`` makes the calls.  Content is compared by
ETag where the two ETags mean the same thing (both single-part MD5s, or both
multipart with the same part count), else by a checksum both carry
(``ChecksumMode=ENABLED``); when neither applies, size is all that is compared.
"""

from __future__ import annotations

import asyncio
from typing import Any

from engine import etag
from engine.copy.move import REMOVED
from engine.copy.properties import (
    CHECKSUM_ALGORITHMS,
    CONTENT_HEADERS,
    whole_object_checksum,
)
from engine.copy.request import Requests
from engine.errors import S3Error
from engine.manifest.rows import DELETE_MARKER
from engine.models import ObjectRef, TaskStatus
from engine.s3.call import invoke
from engine.s3.classify import Disposition
from engine.secrets import Keys
from engine.spec import JobSpec
from engine.store.repo import Repository, ResultRow

VERIFICATION_FAILED = "VerificationFailed"


def _etag_is_md5(head: dict[str, Any]) -> bool:
    return head.get("ServerSideEncryption") not in ("aws:kms", "aws:kms:dsse") and not (
        head.get("SSECustomerAlgorithm")
    )


def etags_comparable(src: dict[str, Any], dst: dict[str, Any]) -> bool:
    """Whether equal content implies equal ETags for these two objects."""
    a, b = str(src.get("ETag", "")).strip('"'), str(dst.get("ETag", "")).strip('"')
    if not a or not b or not (_etag_is_md5(src) and _etag_is_md5(dst)):
        return False
    parts_a = a.split("-")[1] if "-" in a else None
    parts_b = b.split("-")[1] if "-" in b else None
    return parts_a == parts_b


def compare(
    src: dict[str, Any],
    dst: dict[str, Any],
    src_tags: list[dict[str, str]] | None = None,
    dst_tags: list[dict[str, str]] | None = None,
) -> list[str]:
    """What differs between a source and its copy (empty when they match)."""
    diffs: list[str] = []
    if src.get("ContentLength") != dst.get("ContentLength"):
        diffs.append(f"size {src.get('ContentLength')} != {dst.get('ContentLength')}")
    if etags_comparable(src, dst):
        if src.get("ETag") != dst.get("ETag"):
            diffs.append(f"ETag {src.get('ETag')} != {dst.get('ETag')}")
    else:
        for alg in CHECKSUM_ALGORITHMS:
            a = whole_object_checksum(src, alg)
            b = whole_object_checksum(dst, alg)
            if a and b:
                if a != b:
                    diffs.append(f"checksum {alg} {a} != {b}")
                break
    if (src.get("Metadata") or {}) != (dst.get("Metadata") or {}):
        diffs.append(
            f"metadata {src.get('Metadata') or {}} != {dst.get('Metadata') or {}}"
        )
    for name in CONTENT_HEADERS:
        if src.get(name) != dst.get(name):
            diffs.append(f"{name} {src.get(name)!r} != {dst.get(name)!r}")
    if src_tags is not None and dst_tags is not None:
        a_tags = {t["Key"]: t["Value"] for t in src_tags}
        b_tags = {t["Key"]: t["Value"] for t in dst_tags}
        if a_tags != b_tags:
            diffs.append(f"tags {a_tags} != {b_tags}")
    return diffs


def _without_null_version(ref: dict[str, Any]) -> dict[str, Any]:
    # unversioned buckets report the version "null"; some servers refuse it back
    if ref.get("VersionId") == "null":
        return {k: v for k, v in ref.items() if k != "VersionId"}
    return ref


async def verify_copy(
    client: Any,
    src: dict[str, Any],
    dst: dict[str, Any],
    *,
    tags: bool = True,
    requests: Requests | None = None,
    overrides: dict[str, Any] | None = None,
    pinned_etag: str | None = None,
) -> None:
    """HEAD both ends (and read tags); raise ``VerificationFailed`` on a mismatch.

    ``pinned_etag``: the source's ETag the copy was made from, as recorded;
    a source whose ETag is no longer that was replaced since (by other bytes
    of the same size, maybe: a multipart copy has no comparable ETag and
    often no shared checksum to tell).

    ``src`` and ``dst`` are ``Bucket``/``Key``[/``VersionId``] dicts.  What the
    job's options (``requests``) or the task's ``overrides`` changed on
    purpose is expected to differ from the source, and checked against them.
    """
    req = requests or Requests()
    overrides = overrides or {}
    src, dst = _without_null_version(src), _without_null_version(dst)
    dst_access = {**req.destination(), **req.destination_sse_c()}
    src_head, dst_head = await asyncio.gather(
        invoke(
            "HeadObject",
            client.head_object,
            **src,
            **req.head_source(),
            ChecksumMode="ENABLED",
        ),
        invoke(
            "HeadObject",
            client.head_object,
            **dst,
            **dst_access,
            ChecksumMode="ENABLED",
        ),
    )
    want = req.expected(src_head, overrides)
    if "ContentType" not in want:  # REPLACE without one: the server's default
        want["ContentType"] = dst_head.get("ContentType")
    src_tags = dst_tags = None
    if tags or req.replaces_tags(overrides):
        s, d = await asyncio.gather(
            invoke(
                "GetObjectTagging",
                client.get_object_tagging,
                **src,
                **req.read_source(),
            ),
            invoke(
                "GetObjectTagging",
                client.get_object_tagging,
                **dst,
                **req.destination(),
            ),
        )
        wanted = req.expected_tags(s.get("TagSet", []), overrides)
        src_tags = [{"Key": k, "Value": v} for k, v in wanted.items()]
        dst_tags = d.get("TagSet", [])
    diffs = compare(want, dst_head, src_tags, dst_tags)
    if pinned_etag and not etag.same(src_head.get("ETag"), pinned_etag):
        diffs.insert(
            0,
            f"the source changed since it was copied (ETag {src_head.get('ETag')}, "
            f"copied {etag.quoted(pinned_etag)})",
        )
    if diffs:
        raise S3Error(
            VERIFICATION_FAILED,
            "copy differs from source: " + "; ".join(diffs),
            None,
            Disposition.FATAL,
            "Verify",
        )


async def verify_moved(
    client: Any, row: ResultRow, dst: dict[str, Any], requests: Requests
) -> None:
    """A moved object (its source deleted): the destination must still be the
    copy recorded (ETag and size)."""
    head = await invoke(
        "HeadObject",
        client.head_object,
        **_without_null_version(dst),
        **requests.destination(),
        **requests.destination_sse_c(),
    )
    diffs = []
    if row.etag and not etag.same(head.get("ETag"), row.etag):
        diffs.append(f"ETag {head.get('ETag')}, recorded {row.etag}")
    if row.bytes is not None and head.get("ContentLength") != row.bytes:
        diffs.append(f"size {head.get('ContentLength')}, recorded {row.bytes}")
    if diffs:
        raise S3Error(
            VERIFICATION_FAILED,
            "the move's copy changed since (its source is deleted): "
            + "; ".join(diffs),
            None,
            Disposition.FATAL,
            "Verify",
        )


async def verify_job(
    client: Any,
    repo: Repository,
    job_id: str,
    concurrency: int = 32,
    keys: Keys | None = None,
) -> tuple[int, list[tuple[int, str, str]]]:
    """Verify every succeeded task of a job; record mismatches as failures.

    A moved object (``--delete-source``) has no source left: its destination
    is checked against the copy recorded (ETag, size) — also one a move
    found already there (skipped, its source deleted).  Delete markers are
    not checked.

    Returns how many were checked and the failures ``(task_id, code, message)``.
    An object that cannot be read for checking (gone, no access) is a failure
    too: its copy cannot be vouched for.
    """
    job = repo.get_job(job_id)
    spec = JobSpec.from_dict(job.spec)
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
                    await verify_moved(client, row, dst, requests)
                    return
                await verify_copy(
                    client,
                    src,
                    dst,
                    tags=spec.copy.preserve_tags,
                    requests=requests,
                    overrides=row.overrides or {},
                    pinned_etag=row.src_etag,
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
