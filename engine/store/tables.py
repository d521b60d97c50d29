"""SQLAlchemy table definitions; the migrations in ``migrations/`` build exactly these.

Timestamps are Unix seconds (floats): compact, portable between SQLite and
PostgreSQL, and cheap to compare on the claim path.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only aliases ROWID (fast inserts, implicit autoincrement) for INTEGER.
Id = BigInteger().with_variant(Integer(), "sqlite")

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("manifest", Text, nullable=False),
    Column("dst_bucket", Text, nullable=False),
    Column("dst_prefix", Text, nullable=False),
    Column("spec", Text, nullable=False),  # JSON: copy and client settings
    Column("total_tasks", BigInteger, nullable=False, server_default="0"),
    Column("invalid_rows", BigInteger, nullable=False, server_default="0"),
    Column("duplicate_rows", BigInteger, nullable=False, server_default="0"),
    Column("run_started_at", Float),
    Column("message", Text),
    # JSON: where the rows come from (manifest kind, location, filters, …)
    Column("source", Text),
    # the manifest's ETag or checksum when the job was submitted
    Column("manifest_identity", Text),
    # JSON: how far the ingest got (NULL once every row is in)
    Column("ingest_state", Text),
    Column("filtered_rows", BigInteger, nullable=False, server_default="0"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "job_id", String(40), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    ),
    Column("line", BigInteger, nullable=False),
    Column("src_bucket", Text, nullable=False),
    Column("src_key", Text, nullable=False),
    Column("src_version", Text, nullable=False, server_default=""),
    # 0: rows naming one object are merged into one task (at the end of the
    # ingest, see Repository.finish_ingest); a row's number keeps it apart:
    # malformed rows (so they never merge with each other or with a good row)
    # and rows naming their own dst_key (one source may go to several keys)
    Column("invalid_line", BigInteger, nullable=False, server_default="0"),
    Column("size", BigInteger),
    # NULL: the job's dst_prefix + src_key (most tasks), the rule of
    # engine.domain.keys.default_destination; every read fills it in with its
    # SQL form, engine.store.rows.dst_key_sql
    Column("dst_key", Text),
    Column("status", String(12), nullable=False),
    Column("owner", String(64)),
    Column("lease_until", Float),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error_code", Text),
    Column("error_message", Text),
    Column("http_status", Integer),
    Column("src_version_id", Text),
    Column("dst_version_id", Text),
    Column("etag", Text),
    Column("bytes", BigInteger),
    Column("started_at", Float),
    Column("finished_at", Float),
    # how it was copied: "copy" (CopyObject), "multipart" or "stream"
    Column("method", String(16)),
    Column("part_count", Integer),
    # an unfinished multipart copy: its upload, the source ETag it is pinned to
    # and its part size, so a resume continues it (see the parts table)
    Column("upload_id", Text),
    Column("src_etag", Text),
    Column("part_size", BigInteger),
    # JSON: per-object overrides from the manifest (storage class, metadata, …)
    Column("overrides", Text),
    # the source's LastModified (Unix seconds) when the manifest gives it
    Column("last_modified", Float),
    # versions of one key copied by this job that are newer than this one;
    # claims take the deepest first, one depth at a time (oldest version first)
    Column("depth", Integer, nullable=False, server_default="0"),
    # NULL: copy the object; "delete_marker": recreate a delete marker
    Column("kind", String(16)),
    # CRC-32 of src_key: finding duplicate rows sorts this, not the keys
    Column("key_hash", BigInteger),
    # a move (--delete-source): NULL (nothing to delete), "pending" (the copy
    # is recorded, the source delete still to do), "deleted", "gone", "kept"
    # (engine.copy.move)
    Column("delete_state", String(12)),
    Column("deleted_at", Float),
    Index("ix_tasks_job_status_depth_id", "job_id", "status", "depth", "id"),
)

parts = Table(
    "parts",
    metadata,
    Column("task_id", Id, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("part_number", Integer, primary_key=True),
    Column("upload_id", Text, nullable=False),
    Column("etag", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("checksum", Text),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "job_id", String(40), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    ),
    Column("hostname", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("stopped_at", Float),
    # results this worker recorded (added in the same commit as the results)
    Column("tasks_done", BigInteger, nullable=False, server_default="0"),
    Column("bytes_done", BigInteger, nullable=False, server_default="0"),
    # copying | paused | waiting (for other workers' tasks) | stopped
    Column("state", String(16)),
    # requests in flight it allows now (adaptive; written with the heartbeat)
    Column("concurrency", Integer),
    Index("ix_workers_job_id", "job_id"),
)
