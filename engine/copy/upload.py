"""A task's multipart upload on record: the upload, where it is recorded,
and the ways it ends early (aborted, or swept when no one knows of it).

:mod:`engine.copy.multipart` records the upload before its first part and
each part as it lands; this module aborts uploads (one task's, the run's
end-of-run sweep by id, the strays of a destination key) and never raises
an S3 error while doing so.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Protocol

from engine.domain.classify import upload_gone
from engine.domain.errors import S3Error
from engine.domain.models import PartRecord, Task
from engine.s3.call import invoke


class Interrupted(Exception):
    """The run is stopping: the copy was left to resume later (not a failure)."""


@dataclass(frozen=True, slots=True)
class Upload:
    """An upload in progress for one task."""

    upload_id: str
    src_etag: str
    part_size: int


# a task's recorded upload id while its CreateMultipartUpload is in flight: a
# process killed in that window leaves an upload the job table does not know,
# which the next attempt's sweep of the destination key aborts (abort_strays)


class PartLog(Protocol):
    """Where a multipart copy records its upload and parts (the job table)."""

    def current(self, task: Task) -> Upload | None: ...
    async def creating(self, task: Task) -> None: ...
    async def started(self, task: Task, upload: Upload) -> None: ...
    async def part_done(self, task: Task, upload: Upload, part: PartRecord) -> None: ...
    async def recorded(self, task: Task, upload: Upload) -> list[PartRecord]: ...
    async def ended(self, task: Task) -> None: ...


async def abort_strays(
    client: Any,
    bucket: str,
    key: str,
    extra: dict[str, Any] | None = None,
    keep: str | None = None,
) -> None:
    """Abort the uploads to ``key`` but ``keep``.

    An upload bulkcopy created may be known to no one: a run killed
    between CreateMultipartUpload and recording its id (the task then
    says :data:`~engine.domain.codes.CREATING`), or a create whose answer was
    lost and that the SDK sent again (two uploads, one id returned).  S3 tells
    which uploads a key has, so the key is swept before each create and after
    a create answered on a retry, rather than each create's fate tracked.  An
    upload of the same key by someone else in the meantime goes too: this
    copy would overwrite what it writes anyway.  Listing the uploads may
    fail (an ``S3Error``); aborting one that fails is left be."""
    listed = await invoke(
        "ListMultipartUploads",
        client.list_multipart_uploads,
        Bucket=bucket,
        Prefix=key,
        **(extra or {}),
    )
    for stray in listed.get("Uploads", []):
        if stray.get("Key") != key or stray.get("UploadId") == keep:
            continue
        with contextlib.suppress(S3Error):
            await invoke(
                "AbortMultipartUpload",
                client.abort_multipart_upload,
                Bucket=bucket,
                Key=key,
                UploadId=stray["UploadId"],
                **(extra or {}),
            )


async def abort_upload(
    client: Any,
    dst_bucket: str,
    task: Task,
    upload: Upload,
    log: PartLog,
    extra: dict[str, Any] | None = None,
) -> None:
    """Abort a task's upload and forget it; an S3 error here is not raised.

    An upload that cannot be aborted now stays on record: the run aborts
    the uploads of ended tasks once more before it finishes, and says which
    are left (``Worker._abort_left_uploads``).
    """
    if await abort_by_id(client, dst_bucket, task.dst_key, upload.upload_id, extra):
        await log.ended(task)


async def abort_by_id(
    client: Any,
    bucket: str,
    key: str,
    upload_id: str,
    extra: dict[str, Any] | None = None,
) -> bool:
    """AbortMultipartUpload; whether the upload is gone now (aborted, or
    found gone already).  An S3 error is not raised."""
    try:
        await invoke(
            "AbortMultipartUpload",
            client.abort_multipart_upload,
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            **(extra or {}),
        )
    except S3Error as err:
        return upload_gone(err.code, "AbortMultipartUpload")
    return True


async def list_parts(
    client: Any, dst: dict[str, str], extra: dict[str, Any], upload: Upload
) -> dict[int, dict[str, Any]]:
    """Part number -> the part as listed (``ETag``, ``Size``, any
    ``Checksum*``) of every part the store holds for ``upload`` of ``dst``
    (its ``Bucket`` and ``Key``), every page of ListParts."""
    found: dict[int, dict[str, Any]] = {}
    marker = 0
    while True:
        resp = await invoke(
            "ListParts",
            client.list_parts,
            **dst,
            **extra,
            UploadId=upload.upload_id,
            PartNumberMarker=marker,
        )
        for p in resp.get("Parts", []):
            found[int(p["PartNumber"])] = p
        if not resp.get("IsTruncated"):
            return found
        marker = int(resp["NextPartNumberMarker"])
