"""One attempt at copying one object with CopyObject (objects up to 5 GiB)."""

from __future__ import annotations

from typing import Any

from engine.domain.classify import Disposition
from engine.domain.errors import S3Error
from engine.domain.models import Task
from engine.s3.call import invoke


async def head_source(
    client: Any, task: Task, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """HEAD the source object (that exact version when pinned), with its
    checksum (``ChecksumMode``: a multipart copy carries its algorithm).

    ``extra`` carries what the job's options add (SSE-C key, expected owner,
    requester pays).
    """
    return await invoke(
        "HeadObject",
        client.head_object,
        **task.src.params(),
        **(extra or {}),
        ChecksumMode="ENABLED",
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


def too_large(err: S3Error) -> bool:
    """CopyObject refused the source for being over 5 GiB."""
    return err.code == "InvalidRequest" and "maximum allowable size" in err.message


async def copy_object(
    client: Any, task: Task, dst_bucket: str, extra: dict[str, Any]
) -> tuple[dict[str, Any], tuple[str, int]]:
    """CopyObject with ``extra`` arguments (conditions, what the copy gets).

    Returns the answer and its checked ``(ETag, HTTP status)``.
    """
    kwargs: dict[str, Any] = {
        **extra,
        "Bucket": dst_bucket,
        "Key": task.dst_key,
        "CopySource": task.src.params(),
    }
    resp = await invoke("CopyObject", client.copy_object, **kwargs)
    return resp, check_copy_response(resp)
