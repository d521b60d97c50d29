"""Check that a copied object matches its source: size, content, metadata, tags.

``compare`` is pure; ``verify_copy`` makes the calls.  Content is compared by
the one rule of :func:`engine.domain.content.same_content` (ETags, else a
checksum both carry, read with ``ChecksumMode=ENABLED``); when the two HEADs
cannot tell, size is all that is compared, and the source ETag the copy was
pinned to says whether the source was replaced since.  Used by a copy's
``--verify`` and by ``bulkcopy verify``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from engine.copy.properties import CONTENT_HEADERS
from engine.copy.request import Requests
from engine.domain import etag
from engine.domain.classify import Disposition
from engine.domain.codes import VERIFICATION_FAILED
from engine.domain.content import same_content
from engine.domain.errors import S3Error
from engine.s3.call import invoke


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
    verdict = same_content(src, dst, sizes=False)
    if verdict.same is False:
        diffs.append(verdict.difference)
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
    source_client: Any = None,
) -> None:
    """HEAD both ends (and read tags); raise ``VerificationFailed`` on a mismatch.

    ``source_client`` reads the source when it is not ``client`` (another
    service or identity).

    ``pinned_etag``: the source's ETag the copy was made from, as recorded;
    a source whose ETag is no longer that was replaced since (by other bytes
    of the same size, maybe: a multipart copy has no comparable ETag and
    often no shared checksum to tell).

    ``src`` and ``dst`` are ``Bucket``/``Key``[/``VersionId``] dicts.  What the
    job's options (``requests``) or the task's ``overrides`` changed on
    purpose is expected to differ from the source, and checked against them.
    """
    req = requests or Requests()
    reader = client if source_client is None else source_client
    overrides = overrides or {}
    src, dst = _without_null_version(src), _without_null_version(dst)
    dst_access = {**req.destination(), **req.destination_sse_c()}
    src_head, dst_head = await asyncio.gather(
        invoke(
            "HeadObject",
            reader.head_object,
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
                reader.get_object_tagging,
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
    client: Any,
    dst: dict[str, Any],
    requests: Requests,
    *,
    recorded_etag: str | None,
    recorded_bytes: int | None,
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
    if recorded_etag and not etag.same(head.get("ETag"), recorded_etag):
        diffs.append(f"ETag {head.get('ETag')}, recorded {recorded_etag}")
    if recorded_bytes is not None and head.get("ContentLength") != recorded_bytes:
        diffs.append(f"size {head.get('ContentLength')}, recorded {recorded_bytes}")
    if diffs:
        raise S3Error(
            VERIFICATION_FAILED,
            "the move's copy changed since (its source is deleted): "
            + "; ".join(diffs),
            None,
            Disposition.FATAL,
            "Verify",
        )
