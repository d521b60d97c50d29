"""Frozen values that flow through bulkcopy: objects, tasks, results, statuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TaskStatus(StrEnum):
    """Where one task is in its life.

    ``pending`` → ``running`` (claimed by a worker, under a lease) →
    ``succeeded`` | ``failed`` | ``skipped``.  A ``running`` task whose worker
    died goes back to ``pending``.  ``skipped`` is final and carries its reason
    (e.g. an archived object that was not restored): nothing was copied, and
    nothing went wrong.
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED}
)


class JobStatus(StrEnum):
    """Where one job is in its life.

    ``ingesting`` (its manifest is being read; an interrupted ingest resumes)
    → ``submitted`` → ``running`` → ``complete`` (every task has a final result,
    some may have failed); ``stopped`` when interrupted before that; ``failed``
    when the pre-flight checks refused to start it.  ``stopped`` and ``failed``
    jobs can be run again.

    ``paused`` (``bulkcopy pause``): every worker stops claiming, finishes what
    it started and waits; ``bulkcopy resume`` makes it ``running`` again.
    ``cancelled`` (``bulkcopy cancel``) is final: workers finish the copies in
    flight, abort unfinished multipart uploads and leave; tasks never started
    stay ``pending`` (``bulkcopy retry`` can copy them in a new job).
    """

    INGESTING = "ingesting"
    SUBMITTED = "submitted"
    RUNNING = "running"
    STOPPED = "stopped"
    COMPLETE = "complete"
    FAILED = "failed"
    PAUSED = "paused"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One S3 object: bucket, key and, when pinned, a version id."""

    bucket: str
    key: str
    version_id: str | None = None

    def params(self, version_id: str | None = None) -> dict[str, str]:
        """``Bucket``, ``Key`` and (when known) ``VersionId`` for an S3 call.

        ``version_id`` is used when the reference itself names no version.
        """
        out = {"Bucket": self.bucket, "Key": self.key}
        version = self.version_id or version_id
        if version:
            out["VersionId"] = version
        return out

    def uri(self) -> str:
        v = f"?versionId={self.version_id}" if self.version_id else ""
        return f"s3://{self.bucket}/{self.key}{v}"


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One row read from a manifest.

    ``error`` is set when the row is malformed; ``src`` then holds whatever
    could be recovered (possibly empty strings) so the row can still be
    recorded as a failed task with ``--skip-invalid``.
    """

    line: int
    src: ObjectRef
    error: str | None = None
    size: int | None = None
    # per-object overrides from named manifest columns (dst_key, storage_class, …)
    overrides: dict[str, Any] | None = None
    # the rest of the manifest cannot be read safely (an unterminated quote):
    # fails the submit even with --skip-invalid
    fatal: bool = False


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a job copies to: a bucket and a key prefix (possibly empty)."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, uri: str) -> Destination:
        """Parse ``s3://bucket[/prefix]``; the prefix is kept exactly as given."""
        from engine.domain.errors import UsageError

        if not uri.startswith("s3://"):
            raise UsageError(f"--to must be an s3:// URI, got {uri!r}")
        rest = uri[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise UsageError(f"--to has no bucket: {uri!r}")
        return cls(bucket=bucket, prefix=prefix)

    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class Task:
    """A claimed unit of work: copy ``src`` to ``dst_key`` in the job's bucket."""

    id: int
    job_id: str
    src: ObjectRef
    dst_key: str
    attempts: int = 0
    size: int | None = None
    # set when an earlier run started a multipart copy of this task
    upload_id: str | None = None
    src_etag: str | None = None
    part_size: int | None = None
    # per-object overrides from the manifest (storage class, metadata, …)
    overrides: dict[str, Any] | None = None
    # None: copy the object; "delete_marker": recreate a delete marker
    kind: str | None = None
    # a move whose copy an earlier run recorded: only the source delete is left
    copied: CopyRecord | None = None


@dataclass(frozen=True, slots=True)
class CopyRecord:
    """A move's copy, recorded before its source is deleted (``--delete-source``).

    What the delete checks against: the destination still holds this copy
    (``etag``, ``bytes``), the source is still the version copied
    (``src_etag``).  ``skip_code``/``skip_message``: the destination already
    held the object (``--skip-existing``), nothing was copied.
    """

    etag: str
    bytes: int | None
    src_etag: str | None
    src_version_id: str | None
    dst_version_id: str | None
    http_status: int | None = None
    method: str | None = None
    part_count: int | None = None
    skip_code: str | None = None
    skip_message: str | None = None


@dataclass(frozen=True, slots=True)
class TaskResult:
    """The recorded end of one task (or of one failed row from the manifest)."""

    task_id: int
    status: TaskStatus
    attempts: int
    started_at: float
    finished_at: float
    error_code: str | None = None
    error_message: str | None = None
    http_status: int | None = None
    src_version_id: str | None = None
    dst_version_id: str | None = None
    etag: str | None = None
    bytes: int | None = None
    method: str | None = None  # "copy", "multipart" or "stream"
    part_count: int | None = None
    # a move: "deleted" (the source is gone) or "kept" (error_* say why)
    delete_state: str | None = None
    deleted_at: float | None = None
    # the source's ETag the copy was pinned to (its HEAD): verify compares it
    src_etag: str | None = None


@dataclass(frozen=True, slots=True)
class PartRecord:
    """One finished part of a multipart copy, as recorded."""

    number: int
    etag: str
    size: int
    # as CompleteMultipartUpload names it: "ChecksumCRC32=<base64>"
    checksum: str | None = None

    @property
    def sum(self) -> tuple[str, str] | None:
        """The part's checksum as ``(algorithm, value)``: ``("CRC32", …)``."""
        name, sep, value = (self.checksum or "").partition("=")
        if not sep or not name.startswith("Checksum"):
            return None
        return name.removeprefix("Checksum"), value


@dataclass(frozen=True, slots=True)
class JobCounts:
    """Counts and totals of one job, read from the job table."""

    by_status: dict[str, int] = field(default_factory=dict)
    bytes_done: int = 0
    # skipped because the destination already held the object
    # (--skip-existing): counted, not a failure
    up_to_date: int = 0
    # a move (--delete-source): sources deleted after their verified copy
    sources_deleted: int = 0
    first_started_at: float | None = None
    last_finished_at: float | None = None

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def get(self, status: TaskStatus) -> int:
        return self.by_status.get(status.value, 0)

    @property
    def finished(self) -> int:
        return sum(self.get(s) for s in FINAL_STATUSES)

    @property
    def remaining(self) -> int:
        return self.total - self.finished
