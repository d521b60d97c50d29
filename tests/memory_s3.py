"""An S3 client in memory, for unit tests of the copy steps and the pool.

:class:`MemoryS3` answers the calls bulkcopy's copy layer makes (HEAD,
CopyObject, the multipart calls, tags, deletes) as S3 does — quoted MD5
ETags, multipart ETags of the parts' MD5s, ``x-amz-copy-source-if-match``
honoured, errors as botocore's ``ClientError`` — with no process and no
network, so ``execute()`` and the worker pool run in milliseconds.  Faults
are queued per operation (:meth:`MemoryS3.fail`); every call is counted, and
the most requests ever in flight at once is kept (``peak``).

It is a fake, not the truth: the integration tests run the same promises
against real servers.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from engine.copy.request import Requests
from engine.domain.spec import JobSpec
from engine.run.jobclient import job_requests


def _error(operation: str, code: str, status: int, message: str = "") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message or code},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


@dataclass
class Stored:
    """One object version."""

    body: bytes
    etag: str  # quoted
    version_id: str
    metadata: dict[str, str] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(default_factory=list)
    content_type: str = "binary/octet-stream"

    def head(self) -> dict[str, Any]:
        return {
            "ContentLength": len(self.body),
            "ETag": self.etag,
            "VersionId": self.version_id,
            "Metadata": dict(self.metadata),
            "ContentType": self.content_type,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }


@dataclass
class _Upload:
    bucket: str
    key: str
    parts: dict[int, tuple[bytes, str]] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(default_factory=list)
    content_type: str = "binary/octet-stream"


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _parse_tagging(value: str) -> list[dict[str, str]]:
    from urllib.parse import parse_qsl

    return [{"Key": k, "Value": v} for k, v in parse_qsl(value)]


class MemoryS3:
    """The fake client (``async`` methods named as aiobotocore's)."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        copy_conditions: bool = True,
        delays: dict[str, float] | None = None,
    ) -> None:
        # copy_conditions=False: x-amz-copy-source-if-match is ignored (Ceph
        # RGW 16, moto)
        self.copy_conditions = copy_conditions
        # an operation's own latency (say a slow ListObjectsV2), else latency
        self.delays = delays or {}
        self.log: list[str] = []  # every call's operation, in the order made
        self.buckets: dict[str, dict[str, Stored]] = {}
        self.uploads: dict[str, _Upload] = {}
        self.calls: dict[str, int] = {}
        self.latency = latency
        self.in_flight = 0
        self.peak = 0
        self._faults: dict[str, list[ClientError | Exception | None]] = {}
        self._ids = itertools.count(1)

    # -- the test's side ------------------------------------------------------

    def bucket(self, name: str) -> str:
        self.buckets.setdefault(name, {})
        return name

    def put(self, bucket: str, key: str, body: bytes, **kw: Any) -> Stored:
        """Store an object (as PutObject would) and return it."""
        obj = Stored(body, f'"{_md5(body)}"', f"v{next(self._ids)}", **kw)
        self.buckets.setdefault(bucket, {})[key] = obj
        return obj

    def opener(self) -> Any:
        """An ``open_client`` for a worker or a submit: this store, with the
        job's requests."""

        @asynccontextmanager
        async def open_client(
            spec: JobSpec, *_: Any, **__: Any
        ) -> AsyncIterator[tuple[Any, Requests]]:
            yield self, job_requests(spec)

        return open_client

    def get(self, bucket: str, key: str) -> Stored | None:
        return self.buckets.get(bucket, {}).get(key)

    def fail(self, operation: str, *errors: ClientError | Exception | None) -> None:
        """The next calls of ``operation`` raise these, in order (``None``:
        that call succeeds)."""
        self._faults.setdefault(operation, []).extend(errors)

    @staticmethod
    def error(operation: str, code: str, status: int) -> ClientError:
        return _error(operation, code, status)

    # -- plumbing ---------------------------------------------------------------

    async def _enter(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delays.get(operation, self.latency))
        finally:
            self.in_flight -= 1
        self.log.append(operation)
        queued = self._faults.get(operation)
        if queued:
            fault = queued.pop(0)
            if fault is not None:
                raise fault

    def _object(self, operation: str, bucket: str, key: str) -> Stored:
        if bucket not in self.buckets:
            raise _error(operation, "NoSuchBucket", 404)
        obj = self.buckets[bucket].get(key)
        if obj is None:
            raise _error(
                operation, "NoSuchKey" if operation != "HeadObject" else "404", 404
            )
        return obj

    def _source(
        self, operation: str, source: dict[str, Any], kw: dict[str, Any]
    ) -> Stored:
        obj = self._object(operation, source["Bucket"], source["Key"])
        want = kw.get("CopySourceIfMatch") if self.copy_conditions else None
        if want is not None and want.strip('"') != obj.etag.strip('"'):
            raise _error(operation, "PreconditionFailed", 412)
        return obj

    # -- the calls ----------------------------------------------------------------

    async def head_bucket(self, Bucket: str, **_: Any) -> dict[str, Any]:
        await self._enter("HeadBucket")
        if Bucket not in self.buckets:
            raise _error("HeadBucket", "404", 404)
        return {"ResponseMetadata": {"HTTPStatusCode": 200}}

    async def list_objects_v2(
        self,
        Bucket: str,
        Prefix: str = "",
        MaxKeys: int = 1000,
        ContinuationToken: str | None = None,
        StartAfter: str = "",
        **_: Any,
    ) -> dict[str, Any]:
        """Keys in order, ``MaxKeys`` a page; the token is the last key."""
        await self._enter("ListObjectsV2")
        if Bucket not in self.buckets:
            raise _error("ListObjectsV2", "NoSuchBucket", 404)
        after = ContinuationToken or StartAfter
        keys = sorted(
            k for k in self.buckets[Bucket] if k.startswith(Prefix) and k > after
        )
        page, more = keys[:MaxKeys], len(keys) > MaxKeys
        contents = [
            {
                "Key": k,
                "Size": len(self.buckets[Bucket][k].body),
                "ETag": self.buckets[Bucket][k].etag,
                "StorageClass": "STANDARD",
            }
            for k in page
        ]
        return {
            "Contents": contents,
            "IsTruncated": more,
            **({"NextContinuationToken": page[-1]} if more else {}),
            "KeyCount": len(page),
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    async def get_bucket_versioning(self, Bucket: str, **_: Any) -> dict[str, Any]:
        await self._enter("GetBucketVersioning")
        return {"ResponseMetadata": {"HTTPStatusCode": 200}}

    async def head_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        await self._enter("HeadObject")
        return self._object("HeadObject", Bucket, Key).head()

    async def copy_object(
        self, Bucket: str, Key: str, CopySource: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        await self._enter("CopyObject")
        src = self._source("CopyObject", CopySource, kw)
        if len(src.body) > 5 * 1024**3:
            raise _error("CopyObject", "InvalidRequest", 400)
        replace = kw.get("MetadataDirective") == "REPLACE"
        tags = (
            _parse_tagging(kw.get("Tagging", ""))
            if kw.get("TaggingDirective") == "REPLACE"
            else list(src.tags)
        )
        obj = self.put(
            Bucket,
            Key,
            src.body,
            metadata=dict(kw.get("Metadata", {})) if replace else dict(src.metadata),
            tags=tags,
            content_type=kw.get("ContentType", src.content_type)
            if replace
            else src.content_type,
        )
        return {
            "CopyObjectResult": {"ETag": obj.etag},
            "VersionId": obj.version_id,
            "CopySourceVersionId": src.version_id,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    async def create_multipart_upload(
        self, Bucket: str, Key: str, **kw: Any
    ) -> dict[str, Any]:
        await self._enter("CreateMultipartUpload")
        self.bucket(Bucket)
        upload_id = f"u{next(self._ids)}"
        self.uploads[upload_id] = _Upload(
            Bucket,
            Key,
            metadata=dict(kw.get("Metadata", {})),
            tags=_parse_tagging(kw.get("Tagging", "")),
            content_type=kw.get("ContentType", "binary/octet-stream"),
        )
        return {"UploadId": upload_id, "ResponseMetadata": {"HTTPStatusCode": 200}}

    def _upload(self, operation: str, upload_id: str) -> _Upload:
        upload = self.uploads.get(upload_id)
        if upload is None:
            raise _error(operation, "NoSuchUpload", 404)
        return upload

    async def upload_part_copy(
        self,
        Bucket: str,
        Key: str,
        UploadId: str,
        PartNumber: int,
        CopySource: dict[str, Any],
        CopySourceRange: str = "",
        **kw: Any,
    ) -> dict[str, Any]:
        await self._enter("UploadPartCopy")
        src = self._source("UploadPartCopy", CopySource, kw)
        upload = self._upload("UploadPartCopy", UploadId)
        first, last = (
            int(x) for x in CopySourceRange.removeprefix("bytes=").split("-")
        )
        data = src.body[first : last + 1]
        etag = f'"{_md5(data)}"'
        upload.parts[PartNumber] = (data, etag)
        return {
            "CopyPartResult": {"ETag": etag},
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    async def list_parts(
        self, Bucket: str, Key: str, UploadId: str, **_: Any
    ) -> dict[str, Any]:
        await self._enter("ListParts")
        upload = self._upload("ListParts", UploadId)
        parts = [
            {"PartNumber": n, "ETag": etag, "Size": len(data)}
            for n, (data, etag) in sorted(upload.parts.items())
        ]
        return {
            "Parts": parts,
            "IsTruncated": False,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    async def complete_multipart_upload(
        self,
        Bucket: str,
        Key: str,
        UploadId: str,
        MultipartUpload: dict[str, Any],
        **_: Any,
    ) -> dict[str, Any]:
        await self._enter("CompleteMultipartUpload")
        upload = self._upload("CompleteMultipartUpload", UploadId)
        numbers = [p["PartNumber"] for p in MultipartUpload["Parts"]]
        body = b"".join(upload.parts[n][0] for n in numbers)
        digest = hashlib.md5(
            b"".join(bytes.fromhex(upload.parts[n][1].strip('"')) for n in numbers),
            usedforsecurity=False,
        ).hexdigest()
        obj = Stored(
            body,
            f'"{digest}-{len(numbers)}"',
            f"v{next(self._ids)}",
            metadata=upload.metadata,
            tags=upload.tags,
            content_type=upload.content_type,
        )
        self.buckets.setdefault(Bucket, {})[Key] = obj
        del self.uploads[UploadId]
        return {
            "ETag": obj.etag,
            "VersionId": obj.version_id,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    async def abort_multipart_upload(
        self, Bucket: str, Key: str, UploadId: str, **_: Any
    ) -> dict[str, Any]:
        await self._enter("AbortMultipartUpload")
        self._upload("AbortMultipartUpload", UploadId)
        del self.uploads[UploadId]
        return {"ResponseMetadata": {"HTTPStatusCode": 204}}

    async def list_multipart_uploads(
        self, Bucket: str, Prefix: str = "", **_: Any
    ) -> dict[str, Any]:
        await self._enter("ListMultipartUploads")
        found = [
            {"Key": u.key, "UploadId": i, "Initiated": None}
            for i, u in self.uploads.items()
            if u.bucket == Bucket and u.key.startswith(Prefix)
        ]
        return {
            "Uploads": found,
            "IsTruncated": False,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    async def get_object_tagging(
        self, Bucket: str, Key: str, **_: Any
    ) -> dict[str, Any]:
        await self._enter("GetObjectTagging")
        obj = self._object("GetObjectTagging", Bucket, Key)
        return {"TagSet": list(obj.tags), "ResponseMetadata": {"HTTPStatusCode": 200}}

    async def put_object_tagging(
        self, Bucket: str, Key: str, Tagging: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        await self._enter("PutObjectTagging")
        obj = self._object("PutObjectTagging", Bucket, Key)
        obj.tags = list(Tagging.get("TagSet", []))
        return {"ResponseMetadata": {"HTTPStatusCode": 200}}

    async def delete_object(self, Bucket: str, Key: str, **kw: Any) -> dict[str, Any]:
        await self._enter("DeleteObject")
        obj = self.get(Bucket, Key)
        want = kw.get("IfMatch")
        if (
            obj is not None
            and want is not None
            and want.strip('"') != obj.etag.strip('"')
        ):
            raise _error("DeleteObject", "PreconditionFailed", 412)
        self.buckets.get(Bucket, {}).pop(Key, None)
        return {"ResponseMetadata": {"HTTPStatusCode": 204}}
