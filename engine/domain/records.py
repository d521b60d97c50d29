"""What the job database holds, as plain records: jobs, results, workers and
the rows an ingest hands the store.

The store maps its rows onto these (``engine.store.rows``, by column name);
every layer above reads them.  No I/O here.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from engine.domain.models import JobStatus, ObjectRef, TaskStatus
from engine.domain.spec import JobSpec

# the columns of a row handed to Repository.add_tasks, in order
INGEST_COLUMNS = (
    "job_id",
    "line",
    "src_bucket",
    "src_key",
    "src_version",
    "invalid_line",
    "size",
    "dst_key",
    "overrides",
    "status",
    "error_code",
    "error_message",
    "finished_at",
    "last_modified",
    "kind",
    "key_hash",
)
# the short form of a pending task that is only an object to copy
PLAIN_COLUMNS = (
    "job_id",
    "line",
    "src_bucket",
    "src_key",
    "src_version",
    "size",
    "dst_key",
    "last_modified",
    "key_hash",
    # the listed ETag (a listing, an inventory): the copy is pinned to it
    # without a HEAD (full rows, with errors, overrides or delete markers in
    # their batch, leave it out: those objects are HEADed)
    "src_etag",
)


def key_hash(key: str) -> int:
    """``tasks.key_hash``: CRC-32 of the key (cheap to sort; equal keys have
    equal hashes, and the rare equal hashes are compared exactly)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass"))


@dataclass(slots=True)
class TaskRows:
    """Rows to insert: ``plain`` in :data:`PLAIN_COLUMNS` order (pending,
    nothing else set; binding half the parameters is what makes the insert
    fast), ``full`` in :data:`INGEST_COLUMNS` order."""

    plain: list[tuple[Any, ...]] = field(default_factory=list)
    full: list[tuple[Any, ...]] = field(default_factory=list)
    # the columns of ``plain``, a subsequence of PLAIN_COLUMNS
    plain_columns: tuple[str, ...] = PLAIN_COLUMNS


@dataclass(slots=True)
class IngestTotals:
    """What an ingest has read so far (kept in the job's checkpoint)."""

    read: int = 0  # manifest rows read
    filtered: int = 0  # left out by --include-prefix, --min-size, …
    invalid: int = 0  # malformed rows recorded as failed tasks
    inserted: int | None = None  # task rows written (None: unknown, count them)

    def to_dict(self) -> dict[str, int | None]:
        return {
            "read": self.read,
            "filtered": self.filtered,
            "invalid": self.invalid,
            "inserted": self.inserted,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestTotals:
        inserted = data.get("inserted")
        return cls(
            int(data.get("read", 0)),
            int(data.get("filtered", 0)),
            int(data.get("invalid", 0)),
            None if inserted is None and data else int(inserted or 0),
        )


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One row of the jobs table."""

    id: str
    created_at: float
    updated_at: float
    status: JobStatus
    manifest: str
    dst_bucket: str
    dst_prefix: str
    spec: JobSpec  # parsed once, where the row is read
    total_tasks: int
    invalid_rows: int
    duplicate_rows: int
    run_started_at: float | None
    message: str | None
    source: dict[str, Any] = field(default_factory=dict)
    manifest_identity: str | None = None
    ingest_state: dict[str, Any] | None = None  # set while ingesting
    filtered_rows: int = 0
    priority: int = 0  # workers without --job take higher first


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One task with its recorded result, as reports read it."""

    id: int
    line: int
    src: ObjectRef
    dst_bucket: str
    dst_key: str
    status: TaskStatus
    attempts: int
    error_code: str | None
    error_message: str | None
    http_status: int | None
    src_version_id: str | None
    dst_version_id: str | None
    etag: str | None
    bytes: int | None
    started_at: float | None
    finished_at: float | None
    method: str | None = None
    part_count: int | None = None
    overrides: dict[str, Any] | None = None
    kind: str | None = None
    last_modified: float | None = None
    # a move: "deleted" or "kept" (engine.copy.move); "pending" while the
    # source delete is still to do
    delete_state: str | None = None
    deleted_at: float | None = None
    # the source's ETag the copy was pinned to (None: not HEADed)
    src_etag: str | None = None


class WorkerState:
    """What a worker is doing (``workers.state``)."""

    COPYING = "copying"
    PAUSED = "paused"  # its job is paused: it waits for resume or cancel
    WAITING = "waiting"  # nothing to claim; other workers still hold tasks
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """One row of the workers table: a process working on a job."""

    id: str
    hostname: str
    pid: int
    started_at: float
    heartbeat_at: float
    stopped_at: float | None
    tasks_done: int
    bytes_done: int
    state: str | None
    concurrency: int | None = None  # requests in flight it allows now

    def live(self, stale_before: float) -> bool:
        return self.stopped_at is None and self.heartbeat_at >= stale_before
