"""One attempt at copying one object with CopyObject (objects up to 5 GiB)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import S3Error
from engine.models import Task
from engine.s3.call import invoke
from engine.s3.classify import Disposition

MAX_COPY_OBJECT = 5 * 1024**3


@dataclass(frozen=True, slots=True)
class SourceStat:
    """What a HEAD of the source told us."""

    size: int
    etag: str | None
    version_id: str | None


@dataclass(frozen=True, slots=True)
class CopyDone:
    """A successful CopyObject, as far as its response proves."""

    etag: str
    dst_version_id: str | None
    src_version_id: str | None
    bytes: int | None
    http_status: int


def copy_source(task: Task) -> dict[str, str]:
    src = {"Bucket": task.src.bucket, "Key": task.src.key}
    if task.src.version_id:
        src["VersionId"] = task.src.version_id
    return src


async def stat_source(client: Any, task: Task) -> SourceStat:
    """HEAD the source object (that exact version when pinned)."""
    kwargs: dict[str, Any] = {"Bucket": task.src.bucket, "Key": task.src.key}
    if task.src.version_id:
        kwargs["VersionId"] = task.src.version_id
    head = await invoke("HeadObject", client.head_object, **kwargs)
    return SourceStat(
        size=int(head.get("ContentLength", 0)),
        etag=head.get("ETag"),
        version_id=head.get("VersionId"),
    )


def check_copy_response(resp: dict[str, Any]) -> tuple[str, int]:
    """The ETag of a CopyObject answer, or an ``S3Error`` if it proves nothing.

    A 200 with an empty body or without an ETag is not a success: S3 may have
    failed mid-copy, or a proxy cut the answer short.
    """
    status = int(resp.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    result = resp.get("CopyObjectResult")
    if not result:
        raise S3Error(
            "EmptyResponse",
            "CopyObject answered without a result body",
            status,
            Disposition.RETRY,
            "CopyObject",
        )
    etag = result.get("ETag")
    if not etag:
        raise S3Error(
            "MissingETag",
            "CopyObject answered without an ETag",
            status,
            Disposition.RETRY,
            "CopyObject",
        )
    return etag, status


async def copy_once(
    client: Any, task: Task, dst_bucket: str, *, stat: bool
) -> CopyDone:
    """Copy ``task`` once: HEAD the source when asked, then CopyObject.

    With ``stat`` the copy is pinned to the ETag the HEAD saw
    (``CopySourceIfMatch``), so the recorded size is the size copied.
    """
    size = task.size
    src_etag: str | None = None
    if stat:
        st = await stat_source(client, task)
        size, src_etag = st.size, st.etag
    if size is not None and size > MAX_COPY_OBJECT:
        raise S3Error(
            "EntityTooLarge",
            f"source is {size} bytes, over the 5 GiB CopyObject limit "
            "(multipart copy comes with a later version)",
            None,
            Disposition.FATAL,
            "CopyObject",
        )
    kwargs: dict[str, Any] = {
        "Bucket": dst_bucket,
        "Key": task.dst_key,
        "CopySource": copy_source(task),
    }
    if src_etag:
        kwargs["CopySourceIfMatch"] = src_etag
    resp = await invoke("CopyObject", client.copy_object, **kwargs)
    etag, status = check_copy_response(resp)
    return CopyDone(
        etag=etag,
        dst_version_id=resp.get("VersionId"),
        src_version_id=resp.get("CopySourceVersionId"),
        bytes=size,
        http_status=status,
    )
