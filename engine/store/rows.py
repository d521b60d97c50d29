"""Rows of the job database as records, every column read by its name.

One mapping function per record type (:func:`job_record`, :func:`task`,
:func:`copy_record`, :func:`result_row`, :func:`worker_record`,
:func:`part_record`), each beside the columns it selects, which are derived
from the record's fields where the names agree.  And the one SQL form of a
task's destination key, :func:`dst_key_sql`, which every query reading or
comparing destination keys uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

import sqlalchemy as sa

from engine.domain.codes import PENDING as DELETE_PENDING
from engine.domain.models import (
    CopyRecord,
    JobStatus,
    ObjectRef,
    PartRecord,
    Task,
    TaskStatus,
)
from engine.domain.records import JobRecord, ResultRow, WorkerRecord
from engine.domain.spec import JobSpec
from engine.store.tables import parts, tasks, workers

Row = sa.Row[*tuple[Any, ...]]  # any row: columns are read by name


def dst_key_sql(prefix: str) -> sa.ColumnElement[str]:
    """A task's destination key in SQL: ``tasks.dst_key``, or when that is
    NULL the job's ``prefix`` followed by the source key.

    The SQL form of :func:`engine.domain.keys.default_destination`; every
    query that reads, groups or compares destination keys uses this one
    expression (labelled ``dst_key`` where it is selected), so no row mapping
    fills the key in again in Python.
    """
    return sa.func.coalesce(
        tasks.c.dst_key, sa.literal(prefix, sa.Text) + tasks.c.src_key
    )


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None


# -- jobs ----------------------------------------------------------------------------


def job_record(row: Row) -> JobRecord:
    """A :class:`JobRecord` from a row of ``jobs.select()``."""
    m = row._mapping
    return JobRecord(
        id=m["id"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        status=JobStatus(m["status"]),
        manifest=m["manifest"],
        dst_bucket=m["dst_bucket"],
        dst_prefix=m["dst_prefix"],
        spec=JobSpec.from_dict(json.loads(m["spec"])),
        total_tasks=m["total_tasks"],
        invalid_rows=m["invalid_rows"],
        duplicate_rows=m["duplicate_rows"],
        run_started_at=m["run_started_at"],
        message=m["message"],
        source=_json(m["source"]) or {},
        manifest_identity=m["manifest_identity"],
        ingest_state=_json(m["ingest_state"]),
        filtered_rows=m["filtered_rows"],
        priority=m["priority"],
    )


# -- tasks to copy ---------------------------------------------------------------------

# CopyRecord's fields named otherwise in the tasks table (the others: the same)
COPY_RECORD_COLUMNS = {
    f.name: {"skip_code": "error_code", "skip_message": "error_message"}.get(
        f.name, f.name
    )
    for f in fields(CopyRecord)
}


def task_columns(prefix: str) -> tuple[sa.ColumnElement[Any], ...]:
    """What a claim returns of each task (for :func:`task`)."""
    copied = [tasks.c[c] for c in COPY_RECORD_COLUMNS.values()]
    return (
        tasks.c.id,
        tasks.c.src_bucket,
        tasks.c.src_key,
        tasks.c.src_version,
        dst_key_sql(prefix).label("dst_key"),
        tasks.c.attempts,
        tasks.c.size,
        tasks.c.upload_id,
        tasks.c.part_size,
        tasks.c.overrides,
        tasks.c.kind,
        # a move's recorded copy (delete_state "pending": only the delete is left)
        tasks.c.delete_state,
        *copied,
    )


def copy_record(row: Row) -> CopyRecord | None:
    """The recorded copy of a move whose source delete is still to do."""
    m = row._mapping
    if m["delete_state"] != DELETE_PENDING:
        return None
    values = {name: m[column] for name, column in COPY_RECORD_COLUMNS.items()}
    values["etag"] = values["etag"] or ""
    return CopyRecord(**values)


def task(row: Row, job_id: str) -> Task:
    """A :class:`Task` from a row of :func:`task_columns`."""
    return task_reader(row._fields, job_id)(row)


# the columns task_reader reads, in the order it unpacks their places
_TASK_READS = (
    "id", "src_bucket", "src_key", "src_version", "dst_key", "attempts", "size",
    "upload_id", "src_etag", "part_size", "overrides", "kind", "delete_state",
)  # fmt: skip


def task_reader(names: Sequence[str], job_id: str) -> Callable[[Row], Task]:
    """:func:`task` for many rows of one result (the columns ``names``):
    each column's place is looked up once, not on every row (a claim turns
    a thousand rows into tasks)."""
    at = {name: i for i, name in enumerate(names)}
    (i_id, i_bucket, i_key, i_version, i_dst, i_attempts, i_size, i_upload, i_etag,
     i_part, i_overrides, i_kind, i_delete) = (at[n] for n in _TASK_READS)  # fmt: skip

    def read(row: Row) -> Task:
        return Task(
            id=row[i_id],
            job_id=job_id,
            src=ObjectRef(row[i_bucket], row[i_key], row[i_version] or None),
            dst_key=row[i_dst],
            attempts=row[i_attempts],
            size=row[i_size],
            upload_id=row[i_upload],
            src_etag=row[i_etag],
            part_size=row[i_part],
            overrides=_json(row[i_overrides]),
            kind=row[i_kind],
            copied=copy_record(row) if row[i_delete] == DELETE_PENDING else None,
        )

    return read


# -- results ---------------------------------------------------------------------------

# ResultRow's fields that are not one column of the same name
_RESULT_DERIVED = ("src", "dst_bucket", "dst_key", "status", "overrides")
_RESULT_PLAIN = tuple(
    f.name for f in fields(ResultRow) if f.name not in _RESULT_DERIVED
)


def result_columns(prefix: str) -> tuple[sa.ColumnElement[Any], ...]:
    """What :func:`result_row` reads: the columns of :class:`ResultRow`'s
    fields, the source's and the destination key."""
    return (
        *(tasks.c[name] for name in _RESULT_PLAIN),
        tasks.c.src_bucket,
        tasks.c.src_key,
        tasks.c.src_version,
        tasks.c.status,
        tasks.c.overrides,
        dst_key_sql(prefix).label("dst_key"),
    )


def result_row(row: Row, dst_bucket: str) -> ResultRow:
    """A :class:`ResultRow` from a row of :func:`result_columns`."""
    m = row._mapping
    return ResultRow(
        src=ObjectRef(m["src_bucket"], m["src_key"], m["src_version"] or None),
        dst_bucket=dst_bucket,
        dst_key=m["dst_key"],
        status=TaskStatus(m["status"]),
        overrides=_json(m["overrides"]),
        **{name: m[name] for name in _RESULT_PLAIN},
    )


# -- workers and parts -----------------------------------------------------------------

WORKER_COLUMNS = tuple(workers.c[f.name] for f in fields(WorkerRecord))


def worker_record(row: Row) -> WorkerRecord:
    """A :class:`WorkerRecord` from a row of :data:`WORKER_COLUMNS`."""
    m = row._mapping
    return WorkerRecord(**{f.name: m[f.name] for f in fields(WorkerRecord)})


PART_COLUMNS = (parts.c.part_number, parts.c.etag, parts.c.size, parts.c.checksum)


def part_record(row: Row) -> PartRecord:
    """A :class:`PartRecord` from a row of :data:`PART_COLUMNS`."""
    m = row._mapping
    return PartRecord(
        number=m["part_number"], etag=m["etag"], size=m["size"], checksum=m["checksum"]
    )
