"""Moves (``--delete-source``): whether a source may be deleted now.  Pure.

A move copies an object, records the copy (the task's ``delete_state``
becomes ``pending``: a crash from here on resumes to the delete), then HEADs
both ends and deletes the source — that exact version when it has one — only
when :func:`decide` says the copy is verified:

* the destination still holds the recorded copy (same ETag, same size);
* the source is still the version that was copied (its ETag is the one the
  copy was pinned to with ``x-amz-copy-source-if-match``);
* the content matches by the one rule of
  :func:`engine.domain.content.same_content` (ETags, else a shared checksum);
  when the two HEADs cannot tell, the size and the pinned source ETag (a
  server-side copy of an unchanged source, e.g. multipart into a different
  part layout).

Anything else keeps the source and fails the task with the reason: a source
is never deleted without a verified copy.  A source not found when the delete
comes is ``gone`` — recorded as deleted, the destination still holding the
copy — only when a delete of ours may have gone out before (an earlier run
recorded the copy and was killed, or the answer to our delete was lost);
otherwise (it vanished right after we copied it, or a flaky 404) the check is
retried and, if it persists, the task fails with ``SourceVanished``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from engine.domain import codes, etag
from engine.domain.content import same_content
from engine.domain.models import CopyRecord


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with the source: ``delete`` it, it is already ``gone``, or
    ``keep`` it (``code`` and ``reason`` say why); ``verified_by`` names the
    check that vouched for the copy."""

    action: Literal["delete", "gone", "keep"]
    verified_by: str = ""
    code: str | None = None
    reason: str = ""
    retry: bool = False  # keep for now, look again (a source not found)


def _keep(code: str, reason: str, *, retry: bool = False) -> Decision:
    return Decision(
        "keep", code=code, reason=f"{reason}; the source is kept", retry=retry
    )


def _size(head: dict[str, Any]) -> int | None:
    n = head.get("ContentLength")
    return int(n) if n is not None else None


def decide(
    copied: CopyRecord,
    src: dict[str, Any] | None,
    dst: dict[str, Any] | None,
    *,
    deleted_before: bool = False,
) -> Decision:
    """Whether the source may be deleted, from the recorded copy and the HEADs
    of the source (``None``: not found) and the destination (``None``: not
    found), both read with ``ChecksumMode=ENABLED``.  ``deleted_before``: a
    delete of this source may have been sent already (by an earlier run or
    attempt)."""
    if dst is None:
        return _keep(codes.VERIFICATION_FAILED, "the copy is not at the destination")
    dst_etag = str(dst.get("ETag") or "")
    if copied.etag and not etag.same(dst_etag, copied.etag):
        return _keep(
            codes.VERIFICATION_FAILED,
            f"the destination changed since the copy (ETag {dst_etag}, "
            f"copied {copied.etag})",
        )
    dst_size = _size(dst)
    if copied.bytes is not None and copied.bytes != dst_size:
        return _keep(
            codes.VERIFICATION_FAILED,
            f"size {dst_size} at the destination, {copied.bytes} recorded",
        )
    if src is None:
        if deleted_before:
            return Decision("gone", verified_by="the copy; the source already gone")
        return _keep(
            codes.SOURCE_VANISHED,
            "the source was not found for its delete, though nothing deleted it "
            "here (someone else did, or the store answered 404 by mistake)",
            retry=True,
        )
    src_size = _size(src)
    if src_size is None or src_size != dst_size:
        return _keep(
            codes.VERIFICATION_FAILED,
            f"size {src_size} at the source, {dst_size} copied",
        )
    src_etag = str(src.get("ETag") or "")
    if copied.src_etag and not etag.same(src_etag, copied.src_etag):
        return _keep(
            codes.SOURCE_CHANGED,
            f"the source changed since it was copied (ETag {src_etag}, "
            f"copied {copied.src_etag})",
        )
    verdict = same_content(src, dst)
    if verdict.same is False:
        return _keep(
            codes.VERIFICATION_FAILED,
            f"{verdict.difference} (source, copy)",
        )
    if verdict.same is True:
        return Decision("delete", verified_by=verdict.by)
    if copied.src_etag and not copied.skip_code:
        return Decision("delete", verified_by="size and the pinned source ETag")
    return _keep(
        codes.VERIFICATION_FAILED,
        "cannot verify the copy (no comparable ETag or checksum)",
    )


def version_to_delete(
    task_version: str | None, copied_version: str | None, versioned: bool = False
) -> str | None:
    """The source version a move deletes: the manifest's, else the one the
    copy read.  In a bucket that keeps versions (``versioned``) an object
    without one reported is its ``null`` version (written before versioning
    was enabled, or while suspended): deleted as such, not hidden behind a
    delete marker.  In one that does not, the key is deleted (``null`` is
    left out: some S3-compatible stores refuse it)."""
    version = task_version or copied_version
    if version in (None, "", "null"):
        return "null" if versioned else None
    return version
