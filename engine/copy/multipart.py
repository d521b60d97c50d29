"""Multipart copy: CreateMultipartUpload → UploadPartCopy x N → Complete.

The upload is recorded (``PartLog.started``) before the first part, and each
finished part as it lands, so a resumed run continues the same upload and
copies only the parts that are missing.  Every part is pinned to the source
ETag seen when the copy began (``CopySourceIfMatch``); a source that changes
mid-copy ends the task with ``PreconditionFailed`` and the upload aborted.
Part concurrency is capped by a semaphore shared by every copy in the process.
The upload's record and its aborts are :mod:`engine.copy.upload`'s; the pure
pieces (the ETag to expect, Complete's part list) :mod:`engine.copy.parts`'.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from engine.copy.budget import ByteBudget
from engine.copy.confirm import source_tags
from engine.copy.parts import expected_etag, first_failure, part_entry, source_changed
from engine.copy.request import Requests
from engine.copy.stream import (
    check_parts,
    checksum_args,
    checksums_unanswered,
    complete_args,
    etags_are_md5,
    pinned_read,
    resumed_algorithm,
    send_part,
    stream_algorithm,
    whole_crc,
)
from engine.copy.upload import (
    Interrupted,
    PartLog,
    Upload,
    abort_strays,
    abort_upload,
    list_parts,
)
from engine.domain import etag
from engine.domain.classify import Disposition, upload_gone
from engine.domain.codes import CHECKSUM_MISMATCH
from engine.domain.content import encrypted_etag
from engine.domain.errors import S3Error
from engine.domain.models import PartRecord, Task
from engine.domain.plan import (
    Part,
    layout_is_copyable,
    part_size_for,
    parts_from_layout,
    plan_parts,
    stream_part_size,
)
from engine.domain.spec import CopyOptions
from engine.s3.call import invoke
from engine.s3.quirks import Quirks


@dataclass(frozen=True, slots=True)
class MultipartDone:
    """What a finished multipart copy made."""

    etag: str
    dst_version_id: str | None
    src_version_id: str | None
    size: int
    part_count: int
    http_status: int


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
        *,
        source_client: Any = None,
        stream: bool = False,
        budget: ByteBudget | None = None,
        quirks: Quirks | None = None,
        content_md5: bool = False,
    ) -> None:
        self.client = client
        # reads the source (its HEADs, tags and, streamed, its bytes)
        self.src = client if source_client is None else source_client
        # each part read with GetObject and sent with UploadPart
        # (engine.copy.stream), not copied with UploadPartCopy
        self.stream = stream
        self.budget = budget
        self.quirks = quirks or Quirks()
        self.content_md5 = content_md5
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
        self.requested_part_size = (
            stream_part_size(settings.part_size) if stream else settings.part_size
        )
        self.algorithm = stream_algorithm(self.requests, head) if stream else None
        # streamed parts sent this run, and those the store answered with
        # their checksum (engine.copy.confirm: a store that keeps none)
        self.parts_sent = 0
        self.parts_answered = 0
        self.listed: list[dict[str, Any]] | None = None  # a resumed upload's parts
        # the source's FULL_OBJECT CRC the upload this attempt created carries
        # (an upload resumed from an earlier run completes as it was created)
        self.whole: str | None = None
        overrides = task.overrides or {}
        self.etags_are_md5 = etags_are_md5(
            self.requests.create_upload(head, None, overrides, object_lock=False)
        )

    @property
    def checksums_unanswered(self) -> bool:
        """The store answers no checksum of this upload's algorithm
        (:func:`~engine.copy.stream.checksums_unanswered`)."""
        return checksums_unanswered(
            self.algorithm, self.parts_sent, self.parts_answered, self.listed
        )

    async def run(self) -> MultipartDone:
        layout = (
            await self._source_layout() if self.settings.match_source_parts else None
        )
        upload, done = await self._resume_or_start(layout)
        if self.stream and done:  # the algorithm its recorded parts went with
            self.algorithm = resumed_algorithm(self.algorithm, done.values())
        plan = layout or plan_parts(self.size, upload.part_size)
        todo = [p for p in plan if p.number not in done]
        try:
            async with asyncio.TaskGroup() as tg:
                for part in todo:
                    tg.create_task(self._copy_part(upload, part, done))
        except BaseExceptionGroup as group:
            err = first_failure(group)
            if isinstance(err, S3Error) and err.disposition is Disposition.FATAL:
                await self.abort(upload)
            raise err from None
        if len(done) < len(plan):  # stopping: parts in flight finished, rest later
            raise Interrupted()
        await self._source_unchanged(upload)
        parts = [done[p.number] for p in plan]
        if self.stream:
            await self._same_as_source(upload, parts, layout is not None)
        return await self._complete(upload, parts)

    async def _same_as_source(
        self, upload: Upload, parts: list[PartRecord], layout: bool
    ) -> None:
        """The parts streamed make the source's whole-object CRC
        (:func:`~engine.copy.stream.check_parts`) and, streamed in the
        source's own ``layout``, its multipart ETag (the MD5 of the parts'
        MD5s); else the bytes read are not the source's: the upload is
        aborted and the task tried again."""
        try:
            check_parts(self.head, self.algorithm, parts)
        except S3Error:
            await self.abort(upload)
            raise
        if not layout or not self.etags_are_md5 or encrypted_etag(self.head):
            return
        want = expected_etag([p.etag for p in parts])
        if etag.same(want, self.src_etag):
            return
        await self.abort(upload)
        raise S3Error(
            CHECKSUM_MISMATCH,
            f"the parts streamed make ETag {want}; the source's is {self.src_etag}",
            None,
            Disposition.RETRY,
            "UploadPart",
        )

    async def _source_unchanged(self, upload: Upload) -> None:
        """After the last part: the source is still the one the copy began
        from (ETag, last modified, version), else abort: the parts may mix two
        objects.  ``CopySourceIfMatch`` on each part should have refused them,
        but some stores ignore it (Ceph RGW 16, moto)."""
        now = await invoke(
            "HeadObject",
            self.src.head_object,
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
        first = await invoke("HeadObject", self.src.head_object, **kwargs, PartNumber=1)
        count = int(first.get("PartsCount") or 0)
        if count <= 1:
            return None
        sizes = [int(first["ContentLength"])]
        for n in range(2, count + 1):
            h = await invoke("HeadObject", self.src.head_object, **kwargs, PartNumber=n)
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
                extra = self.requests.destination()
                listed = await list_parts(self.client, self.dst, extra, upload)
            except S3Error as err:
                if not upload_gone(err.code, "ListParts"):
                    raise
                await self.log.ended(self.task)  # gone (aborted, expired): start over
            else:
                recorded = await self.log.recorded(self.task, upload)
                self.listed = list(listed.values())
                done = {
                    p.number: p
                    for p in recorded
                    if etag.same(listed.get(p.number, {}).get("ETag"), p.etag)
                }
                return upload, done
        return await self._start(layout[0].size if layout else None), {}

    async def _abort_strays(self, keep: str | None = None) -> None:
        """Abort the uploads to this task's destination key but ``keep``
        (:func:`~engine.copy.upload.abort_strays`)."""
        bucket, key = self.dst["Bucket"], self.dst["Key"]
        extra = self.requests.destination()
        await abort_strays(self.client, bucket, key, extra, keep=keep)

    async def _start(self, part_size: int | None) -> Upload:
        overrides = self.task.overrides or {}
        tags = (
            await source_tags(self.src, self.task, self.requests)
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
        if self.stream:  # the parts' algorithm, and the whole the copy carries
            self.whole = whole_crc(self.head, self.algorithm)
            args = checksum_args(args, self.algorithm, self.whole)
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
            part_size=part_size or part_size_for(self.size, self.requested_part_size),
        )
        await self.log.started(self.task, upload)
        return upload

    async def _copy_part(
        self, upload: Upload, part: Part, done: dict[int, PartRecord]
    ) -> None:
        if self.stream:
            await self._stream_part(upload, part, done)
            return
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

    async def _stream_part(
        self, upload: Upload, part: Part, done: dict[int, PartRecord]
    ) -> None:
        """Stream one part (:func:`~engine.copy.stream.send_part`) and
        record it."""
        async with self.slots:
            if self.stopping.is_set():
                return  # the run is stopping: leave this part for the resume
            budget = self.budget
            async with budget.take(part.size) if budget else contextlib.nullcontext():
                resp, sums = await send_part(
                    self.src,
                    self.client,
                    self.head,
                    pinned_read(self.task, self.head, self.requests),
                    part,
                    {
                        **self.dst,
                        **self.requests.destination(),
                        **self.requests.destination_sse_c(),
                        "UploadId": upload.upload_id,
                        "PartNumber": part.number,
                    },
                    self.algorithm,
                    content_md5=self.content_md5,
                    etag_is_md5=self.etags_are_md5,
                    quirks=self.quirks,
                )
        alg = self.algorithm
        self.parts_sent += 1
        self.parts_answered += bool(alg and resp.get(f"Checksum{alg}"))
        etag = resp.get("ETag")
        if not etag:
            raise S3Error(
                "MissingETag",
                f"UploadPart of part {part.number} answered without an ETag",
                resp.get("ResponseMetadata", {}).get("HTTPStatusCode"),
                Disposition.RETRY,
                "UploadPart",
            )
        # named again in Complete when the upload has an algorithm (a part's
        # checksum sent to an upload without one is not the upload's)
        checksum = (
            f"Checksum{sums.algorithm}={sums.checksum}"
            if sums.checksum and self.algorithm
            else None
        )
        record = PartRecord(part.number, etag, part.size, checksum)
        await self.log.part_done(self.task, upload, record)
        done[part.number] = record

    async def _complete(self, upload: Upload, parts: list[PartRecord]) -> MultipartDone:
        body = [part_entry(p) for p in parts]
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
                **complete_args(self.algorithm, self.whole),
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
