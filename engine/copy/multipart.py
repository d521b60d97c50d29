"""Multipart copy: CreateMultipartUpload → UploadPartCopy x N → Complete.

The upload is recorded (``PartLog.started``) before the first part, and each
finished part as it lands, so a resumed run continues the same upload and
copies only the parts that are missing.  Every part is pinned to the source
ETag seen when the copy began (``CopySourceIfMatch``); a source that changes
mid-copy ends the task with ``PreconditionFailed`` and the upload aborted.
Part concurrency is capped by a semaphore shared by every copy in the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

from engine.copy.confirm import source_tags
from engine.copy.request import Requests
from engine.domain import etag
from engine.domain.classify import Disposition, upload_gone
from engine.domain.errors import S3Error
from engine.domain.models import PartRecord, Task
from engine.domain.plan import (
    Part,
    layout_is_copyable,
    part_size_for,
    parts_from_layout,
    plan_parts,
)
from engine.domain.spec import CopyOptions
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
# which the next attempt's sweep of the destination key aborts
# (MultipartCopy._abort_strays)


class PartLog(Protocol):
    """Where a multipart copy records its upload and parts (the job table)."""

    def current(self, task: Task) -> Upload | None: ...
    async def creating(self, task: Task) -> None: ...
    async def started(self, task: Task, upload: Upload) -> None: ...
    async def part_done(self, task: Task, upload: Upload, part: PartRecord) -> None: ...
    async def recorded(self, task: Task, upload: Upload) -> list[PartRecord]: ...
    async def ended(self, task: Task) -> None: ...


@dataclass(frozen=True, slots=True)
class MultipartDone:
    etag: str
    dst_version_id: str | None
    src_version_id: str | None
    size: int
    part_count: int
    http_status: int


def source_changed(began: dict[str, Any], now: dict[str, Any]) -> str | None:
    """How the source's HEAD ``now`` differs from the one its copy ``began``
    with (ETag, size, last modified, version id); ``None``: the same object."""
    if not etag.same(began.get("ETag"), now.get("ETag")):
        return f"ETag {began.get('ETag')} is now {now.get('ETag')}"
    if began.get("ContentLength") != now.get("ContentLength"):
        return f"size {began.get('ContentLength')} is now {now.get('ContentLength')}"
    for name in ("LastModified", "VersionId"):
        if began.get(name) != now.get(name):
            return f"{name} {began.get(name)} is now {now.get(name)}"
    return None


def expected_etag(etags: list[str]) -> str:
    """The ETag S3 gives a completed multipart object with these part ETags."""
    digest = hashlib.md5(usedforsecurity=False)
    for value in etags:
        digest.update(bytes.fromhex(etag.bare(value)))
    return f'"{digest.hexdigest()}-{len(etags)}"'


class MultipartCopy:
    """Copies one large object part by part; one instance per attempt."""

    def __init__(
        self,
        client: Any,
        task: Task,
        dst_bucket: str,
        head: dict[str, Any],
        settings: CopyOptions,
        log: PartLog,
        part_slots: asyncio.Semaphore,
        stopping: asyncio.Event,
        requests: Requests | None = None,
    ) -> None:
        self.client = client
        self.requests = requests or Requests()
        self.task = task
        self.dst = {"Bucket": dst_bucket, "Key": task.dst_key}
        self.head = head
        self.size = int(head["ContentLength"])
        self.src_etag = str(head.get("ETag") or "")
        self.settings = settings
        self.log = log
        self.slots = part_slots
        self.stopping = stopping
        self.src_version_id: str | None = head.get("VersionId")
        # every part reads the version the HEAD saw, where the source has
        # versions: exact even on a store that ignores CopySourceIfMatch
        pinned = self.src_version_id if self.src_version_id != "null" else None
        self.copy_source = task.src.params(pinned)

    async def run(self) -> MultipartDone:
        layout = (
            await self._source_layout() if self.settings.match_source_parts else None
        )
        upload, done = await self._resume_or_start(layout)
        plan = layout or plan_parts(self.size, upload.part_size)
        todo = [p for p in plan if p.number not in done]
        try:
            async with asyncio.TaskGroup() as tg:
                for part in todo:
                    tg.create_task(self._copy_part(upload, part, done))
        except BaseExceptionGroup as group:
            err = _first(group)
            if isinstance(err, S3Error) and err.disposition is Disposition.FATAL:
                await self.abort(upload)
            raise err from None
        if len(done) < len(plan):  # stopping: parts in flight finished, rest later
            raise Interrupted()
        await self._source_unchanged(upload)
        return await self._complete(upload, [done[p.number] for p in plan])

    async def _source_unchanged(self, upload: Upload) -> None:
        """After the last part: the source is still the one the copy began
        from (ETag, last modified, version), else abort: the parts may mix two
        objects.  ``CopySourceIfMatch`` on each part should have refused them,
        but some stores ignore it (Ceph RGW 16, moto)."""
        now = await invoke(
            "HeadObject",
            self.client.head_object,
            **self.task.src.params(),
            **self.requests.head_source(),
        )
        why = source_changed(self.head, now)
        if why is None:
            return
        await self.abort(upload)
        raise S3Error(
            "PreconditionFailed",
            f"the source changed during its multipart copy ({why}); the upload "
            "is aborted",
            412,
            Disposition.FATAL,
            "UploadPartCopy",
        )

    async def _source_layout(self) -> list[Part] | None:
        """The source's own parts (``--match-source-parts``), if it has usable ones.

        Copying with the same part boundaries gives the destination the same
        multipart ETag as the source.  Single-part sources, and layouts S3
        would refuse for UploadPartCopy, fall back to the planner.
        """
        kwargs = {**self.task.src.params(), **self.requests.head_source()}
        # no If-Match here: the parts themselves are pinned (CopySourceIfMatch),
        # so a source that changes after this read still fails the copy
        first = await invoke(
            "HeadObject", self.client.head_object, **kwargs, PartNumber=1
        )
        count = int(first.get("PartsCount") or 0)
        if count <= 1:
            return None
        sizes = [int(first["ContentLength"])]
        for n in range(2, count + 1):
            h = await invoke(
                "HeadObject", self.client.head_object, **kwargs, PartNumber=n
            )
            sizes.append(int(h["ContentLength"]))
        if not layout_is_copyable(sizes, self.size):
            return None
        return parts_from_layout(sizes)

    async def _resume_or_start(
        self, layout: list[Part] | None
    ) -> tuple[Upload, dict[int, PartRecord]]:
        upload = self.log.current(self.task)
        if upload is not None:
            if not etag.same(upload.src_etag, self.src_etag):
                await self.abort(upload)
                raise S3Error(
                    "PreconditionFailed",
                    f"source changed since its multipart copy began "
                    f"(ETag {upload.src_etag} is now {self.src_etag})",
                    412,
                    Disposition.FATAL,
                    "UploadPartCopy",
                )
            try:
                listed = await self._list_parts(upload)
            except S3Error as err:
                if not upload_gone(err.code, "ListParts"):
                    raise
                await self.log.ended(self.task)  # gone (aborted, expired): start over
            else:
                recorded = await self.log.recorded(self.task, upload)
                done = {
                    p.number: p
                    for p in recorded
                    if etag.same(listed.get(p.number), p.etag)
                }
                return upload, done
        return await self._start(layout[0].size if layout else None), {}

    async def _abort_strays(self, keep: str | None = None) -> None:
        """Abort the uploads to this task's destination key but ``keep``.

        An upload bulkcopy created may be known to no one: a run killed
        between CreateMultipartUpload and recording its id (the task then
        says :data:`CREATING`), or a create whose answer was lost and that
        the SDK sent again (two uploads, one id returned).  S3 tells which
        uploads a key has, so the key is swept before each create and after
        a create answered on a retry, rather than each create's fate
        tracked.  An upload of the same key by someone else in the meantime
        goes too: this copy would overwrite what it writes anyway."""
        key = self.dst["Key"]
        listed = await invoke(
            "ListMultipartUploads",
            self.client.list_multipart_uploads,
            Bucket=self.dst["Bucket"],
            Prefix=key,
            **self.requests.destination(),
        )
        for stray in listed.get("Uploads", []):
            if stray.get("Key") != key or stray.get("UploadId") == keep:
                continue
            with contextlib.suppress(S3Error):
                await invoke(
                    "AbortMultipartUpload",
                    self.client.abort_multipart_upload,
                    **self.dst,
                    UploadId=stray["UploadId"],
                    **self.requests.destination(),
                )

    async def _start(self, part_size: int | None) -> Upload:
        overrides = self.task.overrides or {}
        tags = (
            await source_tags(self.client, self.task, self.requests)
            if self.settings.preserve_tags
            and not self.requests.replaces_tags(overrides)
            else None
        )
        args = self.requests.create_upload(
            self.head,
            tags,
            overrides,
            object_lock=self.settings.preserve_object_lock,
        )
        await self.log.creating(self.task)
        # uploads of this key left by an earlier attempt or run whose create
        # answer never came (the CREATING marker, or a lost answer in this run)
        await self._abort_strays()
        try:
            resp = await invoke(
                "CreateMultipartUpload",
                self.client.create_multipart_upload,
                **self.dst,
                **args,
            )
        except S3Error as err:
            if err.http_status is None or err.http_status >= 500 or err.sdk_retries:
                # the store may have created it and lost the answer
                with contextlib.suppress(S3Error):
                    await self._abort_strays()
            raise
        if resp.get("ResponseMetadata", {}).get("RetryAttempts"):
            # answered on a retry: an earlier send may have created one too
            await self._abort_strays(keep=resp["UploadId"])
        upload = Upload(
            upload_id=resp["UploadId"],
            src_etag=self.src_etag,
            part_size=part_size or part_size_for(self.size, self.settings.part_size),
        )
        await self.log.started(self.task, upload)
        return upload

    async def _list_parts(self, upload: Upload) -> dict[int, str]:
        found: dict[int, str] = {}
        marker = 0
        while True:
            resp = await invoke(
                "ListParts",
                self.client.list_parts,
                **self.dst,
                **self.requests.destination(),
                UploadId=upload.upload_id,
                PartNumberMarker=marker,
            )
            for p in resp.get("Parts", []):
                found[int(p["PartNumber"])] = p["ETag"]
            if not resp.get("IsTruncated"):
                return found
            marker = int(resp["NextPartNumberMarker"])

    async def _copy_part(
        self, upload: Upload, part: Part, done: dict[int, PartRecord]
    ) -> None:
        async with self.slots:
            if self.stopping.is_set():
                return  # the run is stopping: leave this part for the resume
            kwargs: dict[str, Any] = {
                **self.requests.copy_source(self.src_etag or None),
                **self.dst,
                "UploadId": upload.upload_id,
                "PartNumber": part.number,
                "CopySource": self.copy_source,
                "CopySourceRange": part.range,
            }
            resp = await invoke(
                "UploadPartCopy", self.client.upload_part_copy, **kwargs
            )
        result = resp.get("CopyPartResult") or {}
        etag = result.get("ETag")
        if not etag:
            status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = "MissingETag" if result else "EmptyResponse"
            raise S3Error(
                code,
                f"UploadPartCopy of part {part.number} answered without a part ETag",
                status,
                Disposition.RETRY,
                "UploadPartCopy",
            )
        if resp.get("CopySourceVersionId"):
            self.src_version_id = resp["CopySourceVersionId"]
        # kept as "ChecksumCRC32=<value>": Complete must repeat it under its name
        checksum = next(
            (f"{k}={result[k]}" for k in result if k.startswith("Checksum")), None
        )
        record = PartRecord(part.number, etag, part.size, checksum)
        await self.log.part_done(self.task, upload, record)
        done[part.number] = record

    async def _complete(self, upload: Upload, parts: list[PartRecord]) -> MultipartDone:
        body = [_part_entry(p) for p in parts]
        want = expected_etag([p.etag for p in parts])
        try:
            resp = await invoke(
                "CompleteMultipartUpload",
                self.client.complete_multipart_upload,
                **self.dst,
                **self.requests.destination(),
                **self.requests.destination_sse_c(),
                UploadId=upload.upload_id,
                MultipartUpload={"Parts": body},
            )
            if not resp.get("ETag"):
                raise S3Error(
                    "MissingETag",
                    "CompleteMultipartUpload answered without an ETag",
                    None,
                    Disposition.RETRY,
                    "CompleteMultipartUpload",
                )
        except S3Error as err:
            # S3 may have completed it and lost the answer: the destination says
            found = await self._completed_already(want)
            if found is not None:
                await self.log.ended(self.task)
                return found
            if upload_gone(err.code, "CompleteMultipartUpload"):
                await self.log.ended(self.task)  # next attempt starts over
            raise
        await self.log.ended(self.task)
        return MultipartDone(
            etag=resp["ETag"],
            dst_version_id=resp.get("VersionId"),
            src_version_id=self.src_version_id,
            size=self.size,
            part_count=len(parts),
            http_status=int(
                resp.get("ResponseMetadata", {}).get("HTTPStatusCode", 200)
            ),
        )

    async def _completed_already(self, want: str) -> MultipartDone | None:
        try:
            head = await invoke(
                "HeadObject",
                self.client.head_object,
                **self.dst,
                **self.requests.destination(),
                **self.requests.destination_sse_c(),
            )
        except S3Error:
            return None
        if head.get("ETag") != want or int(head.get("ContentLength", -1)) != self.size:
            return None
        return MultipartDone(
            etag=want,
            dst_version_id=head.get("VersionId"),
            src_version_id=self.src_version_id,
            size=self.size,
            part_count=etag.part_count(want) or 1,
            http_status=200,
        )

    async def abort(self, upload: Upload) -> None:
        await abort_upload(
            self.client,
            self.dst["Bucket"],
            self.task,
            upload,
            self.log,
            self.requests.destination(),
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


def _part_entry(part: PartRecord) -> dict[str, Any]:
    """One part in CompleteMultipartUpload's list, with its checksum if any."""
    entry: dict[str, Any] = {"PartNumber": part.number, "ETag": part.etag}
    name, sep, value = (part.checksum or "").partition("=")
    if sep and name.startswith("Checksum"):
        entry[name] = value
    return entry


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    """The error to act on from a failed group of part copies.

    ``Interrupted`` wins (the run is stopping), then a fatal S3 error (it
    decides whether to abort), then whatever came first.
    """
    flat: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        e = stack.pop()
        if isinstance(e, BaseExceptionGroup):
            stack.extend(e.exceptions)
        else:
            flat.append(e)
    for e in flat:
        if isinstance(e, Interrupted):
            return e
    for e in flat:
        if isinstance(e, S3Error) and e.disposition is Disposition.FATAL:
            return e
    return flat[0]
