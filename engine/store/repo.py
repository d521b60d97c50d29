"""Repository: every read and write of the job table goes through here.

Writes are batched: tasks are inserted in batches inside one transaction per
submit, claims take many tasks in one statement, and results are recorded in
group commits.  A claim sets ``owner`` and a lease; a result is only recorded
while the recorder still owns the task (fencing), so a worker that lost its
claim cannot overwrite the new owner's result.
"""

from __future__ import annotations

import functools
import json
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.domain import liveness
from engine.domain.codes import CREATING, REMOVED
from engine.domain.codes import DESTINATION_EXISTS as EXISTS
from engine.domain.codes import PENDING as DELETE_PENDING
from engine.domain.errors import DatabaseError, JobNotFound, ManifestError, UsageError
from engine.domain.models import (
    FINAL_STATUSES,
    CopyRecord,
    JobCounts,
    JobStatus,
    ObjectRef,
    PartRecord,
    Task,
    TaskResult,
    TaskStatus,
)
from engine.domain.records import (
    INGEST_COLUMNS,
    PLAIN_COLUMNS,
    IngestTotals,
    JobRecord,
    ResultRow,
    WorkerRecord,
    WorkerState,
)
from engine.store import db
from engine.store.reconnect import Reconnect, retryable
from engine.store.tables import jobs, parts, tasks, workers

P = ParamSpec("P")
R = TypeVar("R")


def new_job_id(now: float | None = None) -> str:
    """A job id that sorts by creation time and is short enough to type."""
    stamp = datetime.fromtimestamp(now or time.time(), UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


def _dst_key(stored: str | None, prefix: str, src_key: str) -> str:
    """A task's destination key: stored, or NULL for the job's prefix + the
    source key (most tasks: not storing it keeps rows small)."""
    return prefix + src_key if stored is None else stored


def _dst_key_sql(prefix: str) -> sa.ColumnElement[str]:
    """:func:`_dst_key` in SQL."""
    return sa.func.coalesce(
        tasks.c.dst_key, sa.literal(prefix, sa.Text) + tasks.c.src_key
    )


_TASK_COLUMNS = (
    tasks.c.id,
    tasks.c.src_bucket,
    tasks.c.src_key,
    tasks.c.src_version,
    tasks.c.dst_key,
    tasks.c.attempts,
    tasks.c.size,
    tasks.c.upload_id,
    tasks.c.src_etag,
    tasks.c.part_size,
    tasks.c.overrides,
    tasks.c.kind,
    # a move's recorded copy (delete_state "pending": only the delete is left)
    tasks.c.delete_state,
    tasks.c.etag,
    tasks.c.bytes,
    tasks.c.src_version_id,
    tasks.c.dst_version_id,
    tasks.c.http_status,
    tasks.c.method,
    tasks.c.part_count,
    tasks.c.error_code,
    tasks.c.error_message,
)


def _copy_record(r: Any) -> CopyRecord | None:
    """The recorded copy of a move whose source delete is still to do."""
    if r[12] != DELETE_PENDING:
        return None
    return CopyRecord(
        etag=r[13] or "",
        bytes=r[14],
        src_etag=r[8],
        src_version_id=r[15],
        dst_version_id=r[16],
        http_status=r[17],
        method=r[18],
        part_count=r[19],
        skip_code=r[20],
        skip_message=r[21],
    )


def _task(job_id: str, prefix: str, r: Any) -> Task:
    """A :class:`Task` from a row of ``_TASK_COLUMNS``."""
    return Task(
        id=r[0],
        job_id=job_id,
        src=ObjectRef(r[1], r[2], r[3] or None),
        dst_key=_dst_key(r[4], prefix, r[2]),
        attempts=r[5],
        size=r[6],
        upload_id=r[7],
        src_etag=r[8],
        part_size=r[9],
        overrides=json.loads(r[10]) if r[10] else None,
        kind=r[11],
        copied=_copy_record(r),
    )


def _refuse_collisions(
    conn: sa.Connection, job_id: str, manifest: str, prefix: str
) -> None:
    """Raise when two source objects of a job map to one destination key.

    Versions of one object share a key on purpose (their history is copied in
    order); distinct objects must not, or one copy would overwrite another.
    """
    source = tasks.c.src_bucket + "/" + tasks.c.src_key  # '/' is not in bucket names
    good = sa.and_(tasks.c.job_id == job_id, tasks.c.error_code.is_(None))
    dst_key = _dst_key_sql(prefix)
    clashing = conn.execute(
        sa.select(dst_key, sa.func.count(sa.distinct(source)))
        .where(good)
        .group_by(dst_key)
        .having(sa.func.count(sa.distinct(source)) > 1)
        .limit(6)
    ).fetchall()
    if not clashing:
        return
    key = clashing[0][0]
    sources = conn.execute(
        sa.select(tasks.c.line, tasks.c.src_bucket, tasks.c.src_key)
        .where(good, dst_key == key)
        .order_by(tasks.c.line)
        .limit(3)
    ).fetchall()
    listed = ", ".join(f"s3://{b}/{k} (line {n})" for n, b, k in sources)
    more = " (and more keys)" if len(clashing) > 5 else ""
    raise ManifestError(
        manifest,
        None,
        f"{len(clashing[:5])} destination key(s) would each receive more than one "
        f"source object{more}, e.g. {key!r} from {listed}; "
        "change --key-template / --strip-prefix or the manifest's dst_key",
    )


def _refuse_chains(
    conn: sa.Connection, job_id: str, manifest: str, prefix: str, bucket: str
) -> None:
    """Raise when an object would be copied onto another source object of the
    same job (the destination bucket is a source bucket): that source would be
    overwritten before, or instead of, being copied itself — and a move would
    then delete it.  An object copied onto itself (in place) is fine."""
    good = sa.and_(tasks.c.job_id == job_id, tasks.c.error_code.is_(None))
    if (
        conn.execute(
            sa.select(tasks.c.id).where(good, tasks.c.src_bucket == bucket).limit(1)
        ).first()
        is None
    ):
        return  # no source in the destination bucket: nothing to overwrite
    # the keys objects land on (each onto itself excepted), met with the
    # keys of the sources in that bucket: two sorted sets, not a join
    landing = _dst_key_sql(prefix)
    in_place = sa.and_(tasks.c.src_bucket == bucket, landing == tasks.c.src_key)
    key = conn.execute(
        sa.intersect(
            sa.select(landing).where(good, sa.not_(in_place)),
            sa.select(tasks.c.src_key).where(good, tasks.c.src_bucket == bucket),
        ).limit(1)
    ).scalar()
    if key is None:
        return
    line, src_bucket, src_key = conn.execute(
        sa.select(tasks.c.line, tasks.c.src_bucket, tasks.c.src_key)
        .where(good, landing == key, sa.not_(in_place))
        .order_by(tasks.c.line)
        .limit(1)
    ).one()
    other = conn.execute(
        sa.select(sa.func.min(tasks.c.line)).where(
            good, tasks.c.src_bucket == bucket, tasks.c.src_key == key
        )
    ).scalar()
    raise ManifestError(
        manifest,
        None,
        f"s3://{src_bucket}/{src_key} (line {line}) would be copied onto "
        f"s3://{bucket}/{key}, itself a source of this job (line {other}): it "
        "would be overwritten before it is copied; change --key-template / "
        "--strip-prefix / --to, or the manifest's dst_key",
    )


_OBJECT = (
    tasks.c.src_bucket,
    tasks.c.src_key,
    tasks.c.src_version,
    tasks.c.invalid_line,
)


def _merge_duplicates(conn: sa.Connection, job_id: str) -> int:
    """Delete every task but the first naming the same object (bucket, key,
    version; rows kept apart have their own ``invalid_line``).

    One sort of the key hashes says whether any key repeats (almost never,
    and cheap: integers); only the rows whose hash repeats are then compared
    column by column and the extra ones removed."""
    job = tasks.c.job_id == job_id
    repeated = (
        sa.select(tasks.c.key_hash)
        .where(job)
        .group_by(tasks.c.key_hash)
        .having(sa.func.count() > 1)
    )
    if conn.execute(repeated.limit(1)).first() is None:
        return 0
    suspects = sa.or_(
        tasks.c.key_hash.in_(repeated.scalar_subquery()), tasks.c.key_hash.is_(None)
    )
    numbered = (
        sa.select(
            tasks.c.id,
            sa.func.row_number()
            .over(partition_by=_OBJECT, order_by=tasks.c.id)
            .label("n"),
        )
        .where(job, suspects)
        .subquery()
    )
    res = conn.execute(
        tasks.delete().where(
            tasks.c.id.in_(sa.select(numbered.c.id).where(numbered.c.n > 1))
        )
    )
    return int(res.rowcount or 0)


_HELD_ANY = sa.text(
    "SELECT id FROM tasks WHERE id = ANY(CAST(:ids AS bigint[])) "
    "AND owner = :owner AND status = :running FOR UPDATE"
)


def _held(conn: sa.Connection, owner: str, ids: list[int]) -> set[int]:
    """Which of these tasks ``owner`` holds (running under its claim): the
    results it may record.  Locked until the transaction ends (PostgreSQL),
    so a concurrent take-back cannot slip in between."""
    if conn.dialect.name == "postgresql":  # one array parameter, not 1,000
        return {
            i
            for (i,) in conn.execute(
                _HELD_ANY, {"ids": ids, "owner": owner, "running": "running"}
            )
        }
    held: set[int] = set()
    for start in range(0, len(ids), 1000):
        held.update(
            i
            for (i,) in conn.execute(
                sa.select(tasks.c.id)
                .where(
                    tasks.c.id.in_(ids[start : start + 1000]),
                    tasks.c.owner == owner,
                    tasks.c.status == TaskStatus.RUNNING.value,
                )
                .with_for_update()
            )
        )
    return held


def _copy_rows(
    conn: sa.Connection,
    plain_columns: tuple[str, ...],
    plain: list[tuple[Any, ...]] | None,
    rows: list[tuple[Any, ...]],
) -> int:
    """Insert task rows with PostgreSQL's COPY on the transaction's connection."""
    driver: Any = conn.connection.driver_connection
    pending = TaskStatus.PENDING.value
    with driver.cursor() as cur:
        if plain:
            cols = ", ".join((*plain_columns, "status"))
            with cur.copy(f"COPY tasks ({cols}) FROM STDIN") as copy:
                for row in plain:
                    copy.write_row((*row, pending))
        if rows:
            with cur.copy(
                f"COPY tasks ({', '.join(INGEST_COLUMNS)}) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
    return len(plain or ()) + len(rows)


def _deepest(conn: sa.Connection, job_id: str, status: TaskStatus) -> int | None:
    depth: int | None = conn.execute(
        sa.select(sa.func.max(tasks.c.depth)).where(
            tasks.c.job_id == job_id, tasks.c.status == status.value
        )
    ).scalar_one()
    return depth


def _current_round(conn: sa.Connection, job_id: str) -> int | None:
    """The depth whose pending tasks may be claimed now, or ``None``: none
    pending, or a deeper task (an older version) is still running."""
    pending = _deepest(conn, job_id, TaskStatus.PENDING)
    if pending is None:
        return None
    running = _deepest(conn, job_id, TaskStatus.RUNNING)
    if running is not None and running > pending:
        return None
    return pending


def _number_versions(conn: sa.Connection, job_id: str, prefix: str) -> None:
    """Set each task's depth: how many newer versions of its destination key
    the job holds (newest 0).  Claims take the deepest first, so every key's
    versions are written oldest first.  Ties in LastModified keep manifest
    order (a listing gives the newest version first)."""
    conn.execute(
        sa.text(
            "UPDATE tasks SET depth = r.d FROM ("
            " SELECT id, row_number() OVER ("
            "  PARTITION BY coalesce(dst_key, :prefix || src_key)"
            "  ORDER BY last_modified DESC NULLS LAST, id ASC)"
            " - 1 AS d"
            " FROM tasks WHERE job_id = :job AND error_code IS NULL"
            ") AS r WHERE tasks.id = r.id AND r.d > 0"
        ),
        {"job": job_id, "prefix": prefix},
    )


def _job(row: sa.Row[Any]) -> JobRecord:
    m = row._mapping
    return JobRecord(
        id=m["id"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        status=JobStatus(m["status"]),
        manifest=m["manifest"],
        dst_bucket=m["dst_bucket"],
        dst_prefix=m["dst_prefix"],
        spec=json.loads(m["spec"]),
        total_tasks=m["total_tasks"],
        invalid_rows=m["invalid_rows"],
        duplicate_rows=m["duplicate_rows"],
        run_started_at=m["run_started_at"],
        message=m["message"],
        source=json.loads(m["source"]) if m["source"] else {},
        manifest_identity=m["manifest_identity"],
        ingest_state=json.loads(m["ingest_state"]) if m["ingest_state"] else None,
        filtered_rows=m["filtered_rows"],
        priority=m["priority"],
    )


_ACTIVE = (JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.STOPPED, JobStatus.FAILED)
# action: (statuses it applies to, status it sets)
_CONTROL: dict[str, tuple[tuple[JobStatus, ...], JobStatus]] = {
    "pause": (
        (JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.STOPPED),
        JobStatus.PAUSED,
    ),
    "resume": ((*_ACTIVE, JobStatus.PAUSED), JobStatus.RUNNING),
    "cancel": ((*_ACTIVE, JobStatus.PAUSED), JobStatus.CANCELLED),
}
_CONTROL_HINTS = {
    ("pause", JobStatus.INGESTING): " (its manifest is still being read)",
    ("cancel", JobStatus.INGESTING): (
        " (its manifest is still being read: stop the submit, then submit "
        "again with --restart or leave it)"
    ),
    ("resume", JobStatus.CANCELLED): (
        " (a cancelled job stays cancelled: `bulkcopy retry` copies what it left)"
    ),
}

_RECORD = (
    tasks.update()
    .where(
        tasks.c.id == sa.bindparam("b_id"),
        tasks.c.owner == sa.bindparam("b_owner"),
        tasks.c.status == TaskStatus.RUNNING.value,
    )
    .values(
        status=sa.bindparam("b_status"),
        owner=None,
        lease_until=None,
        attempts=tasks.c.attempts + sa.bindparam("b_attempts"),
        error_code=sa.bindparam("b_error_code"),
        error_message=sa.bindparam("b_error_message"),
        http_status=sa.bindparam("b_http_status"),
        src_version_id=sa.bindparam("b_src_version_id"),
        dst_version_id=sa.bindparam("b_dst_version_id"),
        etag=sa.bindparam("b_etag"),
        bytes=sa.bindparam("b_bytes"),
        started_at=sa.bindparam("b_started_at"),
        finished_at=sa.bindparam("b_finished_at"),
        method=sa.bindparam("b_method"),
        part_count=sa.bindparam("b_part_count"),
        delete_state=sa.bindparam("b_delete_state"),
        deleted_at=sa.bindparam("b_deleted_at"),
        src_etag=sa.bindparam("b_src_etag"),
    )
)

# a move's copy, recorded before its source is deleted (Repository.copied)
_COPIED = (
    tasks.update()
    .where(
        tasks.c.id == sa.bindparam("b_id"),
        tasks.c.owner == sa.bindparam("b_owner"),
        tasks.c.status == TaskStatus.RUNNING.value,
    )
    .values(
        delete_state=DELETE_PENDING,
        etag=sa.bindparam("b_etag"),
        bytes=sa.bindparam("b_bytes"),
        src_etag=sa.bindparam("b_src_etag"),
        src_version_id=sa.bindparam("b_src_version_id"),
        dst_version_id=sa.bindparam("b_dst_version_id"),
        http_status=sa.bindparam("b_http_status"),
        method=sa.bindparam("b_method"),
        part_count=sa.bindparam("b_part_count"),
        error_code=sa.bindparam("b_error_code"),
        error_message=sa.bindparam("b_error_message"),
    )
)


def reconnecting(
    method: Callable[Concatenate[Repository, P], R],
) -> Callable[Concatenate[Repository, P], R]:
    """Run the method again (on a new connection) when its connection was
    lost; for calls that are safe to repeat (reads, and writes fenced by
    owner and status)."""

    def wrapper(self: Repository, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._reconnecting(
            method.__name__, lambda: method(self, *args, **kwargs)
        )

    functools.update_wrapper(wrapper, method)
    return wrapper


class Repository:
    """The job database.  Thread-compatible; the engine calls it from one thread.

    Every call survives a lost connection (see :mod:`engine.store.reconnect`):
    ``on_reconnect(what, error, delay)`` hears of each retry.
    """

    def __init__(
        self,
        url: str | None = None,
        engine: Engine | None = None,
        *,
        reconnect: Reconnect | None = None,
        on_reconnect: Callable[[str, BaseException, float], None] | None = None,
    ) -> None:
        self.engine = engine if engine is not None else db.create(url)
        self.url = db.redact(str(self.engine.url))
        self.reconnect = reconnect or Reconnect()
        self.on_reconnect = on_reconnect
        self._prefixes: dict[str, str] = {}
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._ingest_sql = (
            f"INSERT INTO tasks ({', '.join(INGEST_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(INGEST_COLUMNS))})"
        )
        self._mark = mark
        self._plain_sql: dict[tuple[str, ...], str] = {}
        # PostgreSQL: batches of tasks go in with COPY (several times faster
        # than a multi-row INSERT)
        self._copy = self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        self.engine.dispose()

    # -- jobs ----------------------------------------------------------------

    def start_ingest(
        self,
        *,
        manifest: str,
        dst_bucket: str,
        dst_prefix: str,
        spec: dict[str, Any],
        source: dict[str, Any],
        identity: str | None,
        job_id: str | None = None,
        priority: int = 0,
    ) -> str:
        """Create a job in ``ingesting`` state, with no tasks yet; its id."""
        now = time.time()
        new_id = job_id or new_job_id(now)

        def create() -> str:
            with self._writing("create job in"), self.engine.begin() as conn:
                conn.execute(
                    jobs.insert().values(
                        id=new_id,
                        created_at=now,
                        updated_at=now,
                        status=JobStatus.INGESTING.value,
                        manifest=manifest,
                        dst_bucket=dst_bucket,
                        dst_prefix=dst_prefix,
                        spec=json.dumps(spec, sort_keys=True),
                        source=json.dumps(source, sort_keys=True),
                        manifest_identity=identity,
                        ingest_state=json.dumps({}),
                        priority=priority,
                    )
                )
            return new_id

        def created() -> str | None:
            with self.engine.connect() as conn:
                found = conn.execute(
                    sa.select(jobs.c.id).where(jobs.c.id == new_id)
                ).first()
            return None if found is None else new_id

        return self._reconnecting("create job in", create, created)

    def add_tasks(
        self,
        job_id: str,
        rows: list[tuple[Any, ...]],
        state: dict[str, Any],
        plain: list[tuple[Any, ...]] | None = None,
        plain_columns: tuple[str, ...] = PLAIN_COLUMNS,
    ) -> int:
        """Insert one batch of tasks and the ingest checkpoint after it, in
        one transaction; returns how many rows were inserted.

        Each row is a tuple in :data:`INGEST_COLUMNS` order, each of
        ``plain`` one of ``plain_columns`` (some of :data:`PLAIN_COLUMNS`;
        the others take their defaults), status pending.  Rows naming an object
        already in the job are merged by :meth:`finish_ingest`.
        """
        checkpoint = json.dumps(state)
        plain_sql = self._plain_insert(plain_columns)

        def insert() -> int:
            with self._writing("add tasks to"), self.engine.begin() as conn:
                inserted = 0
                if self._copy:
                    inserted = _copy_rows(conn, plain_columns, plain, rows)
                for sql, batch in ((plain_sql, plain), (self._ingest_sql, rows)):
                    if batch and not self._copy:
                        res = conn.exec_driver_sql(sql, batch)
                        inserted += int(res.rowcount or 0)
                conn.execute(
                    jobs.update()
                    .where(jobs.c.id == job_id)
                    .values(ingest_state=checkpoint, updated_at=time.time())
                )
            return inserted

        def inserted_before() -> int | None:
            # the checkpoint is written with the rows: there, they are in
            with self.engine.connect() as conn:
                stored = conn.execute(
                    sa.select(jobs.c.ingest_state).where(jobs.c.id == job_id)
                ).scalar_one_or_none()
            return len(rows) + len(plain or ()) if stored == checkpoint else None

        return self._reconnecting("add tasks to", insert, inserted_before)

    def finish_ingest(
        self,
        job_id: str,
        *,
        spec: dict[str, Any],
        totals: IngestTotals,
        check_collisions: bool,
        order_versions: bool,
        merge_duplicates: bool = True,
    ) -> JobRecord:
        """Every row is in: merge rows naming one object into one task (when
        the manifest can repeat itself), check collisions, number the versions
        of each key (``depth``), store the totals and make the job
        ``submitted``.

        Raises :class:`ManifestError` (and leaves the job as it was) when two
        source objects map to one destination key, or one would be copied
        onto another source object of the job.
        """

        def finish() -> JobRecord:
            with self._writing("finish job in"), self.engine.begin() as conn:
                manifest, prefix, bucket = conn.execute(
                    sa.select(
                        jobs.c.manifest, jobs.c.dst_prefix, jobs.c.dst_bucket
                    ).where(jobs.c.id == job_id)
                ).one()
                merged = _merge_duplicates(conn, job_id) if merge_duplicates else 0
                if check_collisions:
                    _refuse_collisions(conn, job_id, manifest, prefix)
                _refuse_chains(conn, job_id, manifest, prefix, bucket)
                if order_versions:
                    _number_versions(conn, job_id, prefix)
                if totals.inserted is None:
                    total = conn.execute(
                        sa.select(sa.func.count()).where(tasks.c.job_id == job_id)
                    ).scalar_one()
                else:
                    total = totals.inserted - merged
                conn.execute(
                    jobs.update()
                    .where(jobs.c.id == job_id)
                    .values(
                        status=JobStatus.SUBMITTED.value,
                        updated_at=time.time(),
                        spec=json.dumps(spec, sort_keys=True),
                        ingest_state=None,
                        total_tasks=total,
                        invalid_rows=totals.invalid,
                        duplicate_rows=totals.read - totals.filtered - total,
                        filtered_rows=totals.filtered,
                    )
                )
            return self.get_job(job_id)

        def finished() -> JobRecord | None:
            job = self.get_job(job_id)
            return None if job.status is JobStatus.INGESTING else job

        return self._reconnecting("finish job in", finish, finished)

    @reconnecting
    def drop_job(self, job_id: str) -> None:
        """Delete a job and everything recorded for it."""
        with self._writing("delete job from"), self.engine.begin() as conn:
            ids = sa.select(tasks.c.id).where(tasks.c.job_id == job_id)
            conn.execute(parts.delete().where(parts.c.task_id.in_(ids)))
            conn.execute(tasks.delete().where(tasks.c.job_id == job_id))
            conn.execute(workers.delete().where(workers.c.job_id == job_id))
            conn.execute(jobs.delete().where(jobs.c.id == job_id))

    @reconnecting
    def interrupted_ingest(
        self, manifest: str, dst_bucket: str, dst_prefix: str
    ) -> JobRecord | None:
        """The newest job still reading this manifest into this destination."""
        with self.engine.connect() as conn:
            row = conn.execute(
                jobs.select()
                .where(
                    jobs.c.status == JobStatus.INGESTING.value,
                    jobs.c.manifest == manifest,
                    jobs.c.dst_bucket == dst_bucket,
                    jobs.c.dst_prefix == dst_prefix,
                )
                .order_by(jobs.c.created_at.desc())
                .limit(1)
            ).first()
        return None if row is None else _job(row)

    def _plain_insert(self, columns: tuple[str, ...]) -> str:
        sql = self._plain_sql.get(columns)
        if sql is None:
            if not set(columns) <= set(PLAIN_COLUMNS):
                raise ValueError(f"not task columns: {columns}")
            sql = self._plain_sql[columns] = (
                f"INSERT INTO tasks ({', '.join(columns)}, status) "
                f"VALUES ({', '.join([self._mark] * len(columns))}, "
                f"'{TaskStatus.PENDING.value}')"
            )
        return sql

    @reconnecting
    def _prefix(self, job_id: str) -> str:
        """The job's destination prefix (never changes; read once)."""
        prefix = self._prefixes.get(job_id)
        if prefix is None:
            with self.engine.connect() as conn:
                prefix = conn.execute(
                    sa.select(jobs.c.dst_prefix).where(jobs.c.id == job_id)
                ).scalar_one_or_none()
            if prefix is None:
                raise JobNotFound(f"no job {job_id!r} in {self.url}")
            self._prefixes[job_id] = prefix
        return prefix

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            if retryable(exc):
                raise  # the caller's retry reconnects
            raise DatabaseError(f"cannot {what} {self.url}: {exc}") from exc

    def _reconnecting(
        self,
        what: str,
        call: Callable[[], R],
        resolve: Callable[[], R | None] | None = None,
    ) -> R:
        """``call()``, again on a new connection while the connection keeps
        being lost, for up to ``reconnect.give_up_after`` seconds.

        ``resolve`` (for writes that are not safe to repeat) runs before each
        new try: it re-reads what the failed try left and returns the answer
        when the try's COMMIT did go through, ``None`` when ``call`` must run
        again."""
        delays = self.reconnect.delays()
        failed = False
        while True:
            try:
                if failed and resolve is not None:
                    known = resolve()
                    if known is not None:
                        return known
                return call()
            except sa.exc.SQLAlchemyError as exc:
                if not retryable(exc):
                    raise
                delay = next(delays, None)
                if delay is None:
                    raise DatabaseError(
                        f"lost the connection to {self.url} and could not get it "
                        f"back in {self.reconnect.give_up_after:g}s ({what}): "
                        f"{getattr(exc, 'orig', None) or exc}"
                    ) from exc
                if self.on_reconnect is not None:
                    self.on_reconnect(what, exc, delay)
                failed = True
                time.sleep(delay)

    @reconnecting
    def get_job(self, job_id: str) -> JobRecord:
        """The job with this id, or the only job whose id starts with it."""
        with self.engine.connect() as conn:
            row = conn.execute(jobs.select().where(jobs.c.id == job_id)).first()
            if row is None and job_id:
                found = conn.execute(
                    jobs.select().where(jobs.c.id.startswith(job_id, autoescape=True))
                ).fetchmany(2)
                if len(found) == 1:
                    row = found[0]
        if row is None:
            raise JobNotFound(f"no job {job_id!r} in {self.url}")
        return _job(row)

    @reconnecting
    def list_jobs(self, limit: int = 50) -> list[JobRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                jobs.select().order_by(jobs.c.created_at.desc()).limit(limit)
            ).fetchall()
        return [_job(r) for r in rows]

    @reconnecting
    def set_job_status(
        self,
        job_id: str,
        status: JobStatus,
        message: str | None = None,
        run_started_at: float | None = None,
        *,
        only_from: tuple[JobStatus, ...] = (),
    ) -> bool:
        """Set the job's status (only when it is one of ``only_from``, if
        given: a worker must not undo an operator's pause or cancel); whether
        it was set."""
        values: dict[str, Any] = {
            "status": status.value,
            "updated_at": time.time(),
            "message": message,
        }
        if run_started_at is not None:
            values["run_started_at"] = run_started_at
        stmt = jobs.update().where(jobs.c.id == job_id).values(**values)
        if only_from:
            stmt = stmt.where(jobs.c.status.in_([s.value for s in only_from]))
        with self.engine.begin() as conn:
            return bool(conn.execute(stmt).rowcount)

    @reconnecting
    def job_status(self, job_id: str) -> JobStatus:
        """The job's status alone (workers poll it to see pause and cancel)."""
        with self.engine.connect() as conn:
            status = conn.execute(
                sa.select(jobs.c.status).where(jobs.c.id == job_id)
            ).scalar_one_or_none()
        if status is None:
            raise JobNotFound(f"no job {job_id!r} in {self.url}")
        return JobStatus(status)

    @reconnecting
    def control_job(self, job_id: str, action: str) -> tuple[JobStatus, JobStatus]:
        """``pause``, ``resume`` or ``cancel`` a job; its status before and after.

        Raises :class:`UsageError` when the job's status does not allow it.
        Workers see the change at their next poll (every second or so)."""
        job = self.get_job(job_id)
        if action not in _CONTROL:
            raise UsageError(f"unknown action {action!r}: pause, resume or cancel")
        allowed, target = _CONTROL[action]
        if job.status is target and action != "resume":
            return job.status, target
        if job.status not in allowed:
            raise UsageError(
                f"cannot {action} job {job.id}: it is {job.status.value}"
                + _CONTROL_HINTS.get((action, job.status), "")
            )
        if action == "resume" and job.status is not JobStatus.PAUSED:
            return job.status, job.status  # nothing paused: running it is enough
        with self.engine.begin() as conn:
            done = conn.execute(
                jobs.update()
                .where(
                    jobs.c.id == job.id,
                    jobs.c.status.in_([s.value for s in allowed]),
                )
                .values(status=target.value, updated_at=time.time())
            ).rowcount
        if not done:  # changed under us: say what it is now
            return self.control_job(job.id, action)
        return job.status, target

    @reconnecting
    def runnable_jobs(self, limit: int = 20) -> list[JobRecord]:
        """Jobs a worker may join (submitted or running), highest priority
        first, then oldest."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                jobs.select()
                .where(
                    jobs.c.status.in_(
                        [JobStatus.SUBMITTED.value, JobStatus.RUNNING.value]
                    )
                )
                .order_by(jobs.c.priority.desc(), jobs.c.created_at, jobs.c.id)
                .limit(limit)
            ).fetchall()
        return [_job(r) for r in rows]

    # -- workers and leases --------------------------------------------------

    @reconnecting
    def register_worker(
        self, worker_id: str, job_id: str, hostname: str, pid: int
    ) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(workers.c.id).where(workers.c.id == worker_id)
            ).first()
            if exists is None:  # (a retry after a lost COMMIT finds it there)
                conn.execute(
                    workers.insert().values(
                        id=worker_id,
                        job_id=job_id,
                        hostname=hostname,
                        pid=pid,
                        started_at=now,
                        heartbeat_at=now,
                        state=WorkerState.COPYING,
                    )
                )

    @reconnecting
    def set_worker_state(self, worker_id: str, state: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                workers.update()
                .where(workers.c.id == worker_id)
                .values(state=state, heartbeat_at=time.time())
            )

    @reconnecting
    def stop_worker(self, worker_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                workers.update()
                .where(workers.c.id == worker_id)
                .values(stopped_at=time.time(), state=WorkerState.STOPPED)
            )

    @reconnecting
    def workers_of(self, job_id: str) -> list[WorkerRecord]:
        """Every worker that joined the job, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    workers.c.id,
                    workers.c.hostname,
                    workers.c.pid,
                    workers.c.started_at,
                    workers.c.heartbeat_at,
                    workers.c.stopped_at,
                    workers.c.tasks_done,
                    workers.c.bytes_done,
                    workers.c.state,
                    workers.c.concurrency,
                )
                .where(workers.c.job_id == job_id)
                .order_by(workers.c.started_at.desc())
            ).fetchall()
        return [WorkerRecord(*tuple(r)) for r in rows]

    def dead_workers(
        self,
        job_id: str,
        hostname: str,
        pid: int,
        pid_alive: Callable[[int], bool],
        stale_before: float,
    ) -> list[str]:
        """Workers of the job that are gone though never stopped: on this host
        with no such process (or with our own pid: a restarted container), or
        silent since ``stale_before`` (their host is lost)."""
        dead = []
        for w in self.workers_of(job_id):
            if w.stopped_at is not None:
                continue
            here = w.hostname == hostname
            if (
                not liveness.heard_since(w, stale_before)
                or (here and w.pid == pid)
                or (here and not pid_alive(w.pid))
            ):
                dead.append(w.id)
        return dead

    @reconnecting
    def release_orphans(self, job_id: str, now: float, dead: Sequence[str] = ()) -> int:
        """Put back to ``pending`` every running task whose lease expired
        before ``now`` or whose owner is one of the ``dead`` workers (which are
        marked stopped).  Covers workers killed (``kill -9``, OOM, power loss)
        and hosts lost.  Returns how many tasks were released.

        A worker whose task was released and claimed by another can no longer
        record its result (:meth:`record` checks the owner)."""
        with self.engine.begin() as conn:
            cond = sa.and_(
                tasks.c.job_id == job_id,
                tasks.c.status == TaskStatus.RUNNING.value,
                sa.or_(
                    tasks.c.owner.is_(None),
                    tasks.c.lease_until < now,
                    tasks.c.owner.in_(list(dead)) if dead else sa.false(),
                ),
            )
            res = conn.execute(
                tasks.update()
                .where(cond)
                .values(status=TaskStatus.PENDING.value, owner=None, lease_until=None)
            )
            if dead:
                conn.execute(
                    workers.update()
                    .where(workers.c.id.in_(list(dead)), workers.c.stopped_at.is_(None))
                    .values(stopped_at=now, state=WorkerState.STOPPED)
                )
        return int(res.rowcount or 0)

    @reconnecting
    def heartbeat(
        self, worker_id: str, lease_until: float, concurrency: int | None = None
    ) -> int:
        """Extend the worker's heartbeat and the leases of the tasks it still
        holds (and note the requests in flight it allows now); how many it
        holds."""
        values: dict[str, Any] = {"heartbeat_at": time.time()}
        if concurrency is not None:
            values["concurrency"] = concurrency
        with self.engine.begin() as conn:
            conn.execute(
                workers.update().where(workers.c.id == worker_id).values(**values)
            )
            res = conn.execute(
                tasks.update()
                .where(
                    tasks.c.owner == worker_id,
                    tasks.c.status == TaskStatus.RUNNING.value,
                )
                .values(lease_until=lease_until)
            )
        return int(res.rowcount or 0)

    # -- the hot path: claim and record ---------------------------------------

    def claim(
        self,
        job_id: str,
        owner: str,
        limit: int,
        lease_until: float,
        *,
        ordered: bool = False,
    ) -> list[Task]:
        """Atomically take up to ``limit`` pending tasks, oldest first, under a
        lease (``owner``, expiry ``lease_until``).  On PostgreSQL concurrent
        claims skip each other's rows (``FOR UPDATE SKIP LOCKED``); SQLite runs
        one writer at a time.

        ``ordered`` (a job copying every version of its keys): only tasks of
        the current round, the deepest depth still pending, and none while a
        deeper task is still running; so an empty claim may mean "wait".

        If the connection drops while committing, the retry first looks for
        tasks already held under this very lease (the COMMIT went through)."""
        prefix = self._prefix(job_id)

        def take() -> list[Task]:
            with self.engine.begin() as conn:
                depth = _current_round(conn, job_id) if ordered else 0
                if depth is None:
                    return []
                sub = (
                    sa.select(tasks.c.id)
                    .where(
                        tasks.c.job_id == job_id,
                        tasks.c.status == TaskStatus.PENDING.value,
                        tasks.c.depth == depth,
                    )
                    # the claim index's order (the same as by id here): the
                    # plan walks that index whatever the statistics say,
                    # never the primary key past every finished task
                    .order_by(tasks.c.job_id, tasks.c.status, tasks.c.depth, tasks.c.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                    .scalar_subquery()
                )
                stmt = (
                    tasks.update()
                    .where(tasks.c.id.in_(sub))
                    .values(
                        status=TaskStatus.RUNNING.value,
                        owner=owner,
                        lease_until=lease_until,
                    )
                    .returning(*_TASK_COLUMNS)
                )
                rows = sorted(conn.execute(stmt).fetchall(), key=lambda r: r[0])
            return [_task(job_id, prefix, r) for r in rows]

        def already_taken() -> list[Task] | None:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(*_TASK_COLUMNS)
                    .where(
                        tasks.c.job_id == job_id,
                        tasks.c.status == TaskStatus.RUNNING.value,
                        tasks.c.owner == owner,
                        tasks.c.lease_until == lease_until,
                    )
                    .order_by(tasks.c.id)
                ).fetchall()
            return [_task(job_id, prefix, r) for r in rows] or None

        return self._reconnecting("claim tasks in", take, already_taken)

    @reconnecting
    def has_pending(self, job_id: str) -> bool:
        return self._any_task(job_id, (TaskStatus.PENDING,))

    @reconnecting
    def has_unfinished(self, job_id: str) -> bool:
        """Whether any task is still pending or running (perhaps elsewhere)."""
        return self._any_task(job_id, (TaskStatus.PENDING, TaskStatus.RUNNING))

    @reconnecting
    def held_elsewhere(self, job_id: str, owner: str) -> bool:
        """Whether tasks of the job are pending, or running under another
        owner's lease (a worker with nothing to claim waits for those)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(tasks.c.id)
                .where(
                    tasks.c.job_id == job_id,
                    tasks.c.status == TaskStatus.RUNNING.value,
                    tasks.c.owner != owner,
                )
                .limit(1)
            ).first()
        return found is not None or self._any_task(job_id, (TaskStatus.PENDING,))

    def _any_task(self, job_id: str, statuses: tuple[TaskStatus, ...]) -> bool:
        with self.engine.connect() as conn:
            return any(
                conn.execute(
                    sa.select(tasks.c.id)
                    .where(tasks.c.job_id == job_id, tasks.c.status == s.value)
                    .limit(1)
                ).first()
                is not None
                for s in statuses
            )

    def record(self, owner: str, results: list[TaskResult]) -> int:
        """Record final results in one commit; returns how many were accepted.

        A result is accepted only while ``owner`` still holds the task
        (fencing): one whose lease was lost and taken by another worker is not
        recorded, but its attempts are added to the task's (the copy was
        tried), so a task copied twice is reported once with every attempt.
        The owner's ``tasks_done`` / ``bytes_done`` grow in the same commit.

        If the connection drops while committing, the retry re-reads the
        tasks: those already final with this result's ``finished_at`` were
        recorded; only the rest are written again."""
        if not results:
            return 0
        accepted_before = 0
        pending = list(results)

        def write() -> int:
            return self._record(owner, pending)

        def reread() -> int | None:
            nonlocal pending, accepted_before
            state = self._task_states([r.task_id for r in pending])
            still, done = [], 0
            for r in pending:
                status, holder, finished_at = state.get(r.task_id, (None, None, None))
                if status == TaskStatus.RUNNING.value and holder == owner:
                    still.append(r)
                elif status == r.status.value and finished_at == r.finished_at:
                    done += 1
            pending, accepted_before = still, accepted_before + done
            return None if still else 0

        accepted = self._reconnecting("record results in", write, reread)
        return accepted_before + accepted

    def _task_states(self, ids: list[int]) -> dict[int, tuple[str, str | None, Any]]:
        """``status, owner, finished_at`` of these tasks."""
        out: dict[int, tuple[str, str | None, Any]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 1000):
                for i, status, holder, finished in conn.execute(
                    sa.select(
                        tasks.c.id, tasks.c.status, tasks.c.owner, tasks.c.finished_at
                    ).where(tasks.c.id.in_(ids[start : start + 1000]))
                ):
                    out[i] = (status, holder, finished)
        return out

    def _record(self, owner: str, results: list[TaskResult]) -> int:
        if not results:
            return 0
        params = [
            {
                "b_id": r.task_id,
                "b_owner": owner,
                "b_status": r.status.value,
                "b_attempts": r.attempts,
                "b_error_code": r.error_code,
                "b_error_message": r.error_message,
                "b_http_status": r.http_status,
                "b_src_version_id": r.src_version_id,
                "b_dst_version_id": r.dst_version_id,
                "b_etag": r.etag,
                "b_bytes": r.bytes,
                "b_started_at": r.started_at,
                "b_finished_at": r.finished_at,
                "b_method": r.method,
                "b_part_count": r.part_count,
                "b_delete_state": r.delete_state,
                "b_deleted_at": r.deleted_at,
                "b_src_etag": r.src_etag,
            }
            for r in results
        ]
        with self.engine.begin() as conn:
            held = _held(conn, owner, [r.task_id for r in results])
            mine = [p for p in params if p["b_id"] in held]
            accepted = int(conn.execute(_RECORD, mine).rowcount or 0) if mine else 0
            lost = [r for r in results if r.task_id not in held]
            if lost:
                # the copy was tried: its attempts count, its result does not
                conn.execute(
                    tasks.update()
                    .where(tasks.c.id == sa.bindparam("b_id"))
                    .values(attempts=tasks.c.attempts + sa.bindparam("b_attempts")),
                    [{"b_id": r.task_id, "b_attempts": r.attempts} for r in lost],
                )
            done_bytes = sum(
                r.bytes or 0
                for r in results
                if r.task_id in held and r.status is TaskStatus.SUCCEEDED
            )
            conn.execute(
                workers.update()
                .where(workers.c.id == owner)
                .values(
                    tasks_done=workers.c.tasks_done + accepted,
                    bytes_done=workers.c.bytes_done + done_bytes,
                )
            )
        return accepted

    # -- moves ------------------------------------------------------------------

    @reconnecting
    def copied(self, owner: str, records: list[tuple[int, CopyRecord]]) -> set[int]:
        """Record moves' copies before their sources are deleted, in one
        commit (``delete_state`` pending: a resumed run goes straight to the
        delete).  Returns the tasks ``owner`` still held: only their sources
        may be deleted."""
        if not records:
            return set()
        held: set[int] = set()
        with self.engine.begin() as conn:
            for i, params in (
                (
                    i,
                    {
                        "b_id": i,
                        "b_owner": owner,
                        "b_etag": c.etag,
                        "b_bytes": c.bytes,
                        "b_src_etag": c.src_etag,
                        "b_src_version_id": c.src_version_id,
                        "b_dst_version_id": c.dst_version_id,
                        "b_http_status": c.http_status,
                        "b_method": c.method,
                        "b_part_count": c.part_count,
                        "b_error_code": c.skip_code,
                        "b_error_message": c.skip_message,
                    },
                )
                for i, c in records
            ):
                # fenced row by row: a task taken back meanwhile is not ours
                if conn.execute(_COPIED, params).rowcount:
                    held.add(i)
        return held

    # -- multipart uploads ------------------------------------------------------

    @reconnecting
    def upload_started(
        self, task_id: int, owner: str, upload_id: str, src_etag: str, part_size: int
    ) -> bool:
        """Record a new multipart upload of a task before its first part.

        Forgets the parts of any earlier upload.  Returns ``False`` (and
        records nothing) if ``owner`` no longer holds the task.
        """
        with self.engine.begin() as conn:
            res = conn.execute(
                tasks.update()
                .where(tasks.c.id == task_id, tasks.c.owner == owner)
                .values(upload_id=upload_id, src_etag=src_etag, part_size=part_size)
            )
            if not res.rowcount:
                return False
            conn.execute(parts.delete().where(parts.c.task_id == task_id))
        return True

    @reconnecting
    def part_done(self, task_id: int, upload_id: str, part: PartRecord) -> None:
        """Record one finished part (idempotent)."""
        with self.engine.begin() as conn:
            conn.execute(
                parts.delete().where(
                    parts.c.task_id == task_id, parts.c.part_number == part.number
                )
            )
            conn.execute(
                parts.insert().values(
                    task_id=task_id,
                    part_number=part.number,
                    upload_id=upload_id,
                    etag=part.etag,
                    size=part.size,
                    checksum=part.checksum,
                )
            )

    @reconnecting
    def recorded_parts(self, task_id: int, upload_id: str) -> list[PartRecord]:
        """The finished parts recorded for this upload, by part number."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    parts.c.part_number, parts.c.etag, parts.c.size, parts.c.checksum
                )
                .where(parts.c.task_id == task_id, parts.c.upload_id == upload_id)
                .order_by(parts.c.part_number)
            ).fetchall()
        return [PartRecord(r[0], r[1], r[2], r[3]) for r in rows]

    @reconnecting
    def upload_ended(self, task_id: int) -> None:
        """The task's upload was completed or aborted: forget it and its parts."""
        with self.engine.begin() as conn:
            conn.execute(
                tasks.update().where(tasks.c.id == task_id).values(upload_id=None)
            )
            conn.execute(parts.delete().where(parts.c.task_id == task_id))

    @reconnecting
    def open_uploads(
        self, job_id: str, *, of_final_tasks: bool = False
    ) -> list[tuple[int, str, str]]:
        """``(task_id, dst_key, upload_id)`` of uploads recorded and not ended
        (``of_final_tasks``: only those of tasks that ended, whose abort
        failed: no resume will continue them)."""
        q = sa.select(
            tasks.c.id, tasks.c.dst_key, tasks.c.src_key, tasks.c.upload_id
        ).where(tasks.c.job_id == job_id, tasks.c.upload_id.is_not(None))
        if of_final_tasks:
            q = q.where(tasks.c.status.in_([s.value for s in FINAL_STATUSES]))
        with self.engine.connect() as conn:
            rows = conn.execute(q).fetchall()
        prefix = self._prefix(job_id)
        return [
            (r[0], _dst_key(r[1], prefix, r[2]), r[3])
            for r in rows
            if not r[3].startswith(CREATING)
        ]

    @reconnecting
    def fail_succeeded(self, failures: list[tuple[int, str, str]]) -> int:
        """Turn succeeded (or skipped) tasks into failures ``(task_id, code,
        message)``.

        Used by ``bulkcopy verify`` when a recorded copy turns out not to
        match its source.
        """
        if not failures:
            return 0
        stmt = (
            tasks.update()
            .where(
                tasks.c.id == sa.bindparam("b_id"),
                # skipped: a move's object the destination already held
                sa.or_(  # (no IN: an executemany cannot expand it)
                    tasks.c.status == TaskStatus.SUCCEEDED.value,
                    tasks.c.status == TaskStatus.SKIPPED.value,
                ),
            )
            .values(
                status=TaskStatus.FAILED.value,
                error_code=sa.bindparam("b_code"),
                error_message=sa.bindparam("b_message"),
            )
        )
        with self.engine.begin() as conn:
            res = conn.execute(
                stmt,
                [{"b_id": i, "b_code": c, "b_message": m} for i, c, m in failures],
            )
        return int(res.rowcount or 0)

    @reconnecting
    def release(self, owner: str, task_ids: list[int]) -> None:
        """Give claimed tasks that were never started back to the job."""
        if not task_ids:
            return
        with self.engine.begin() as conn:
            for start in range(0, len(task_ids), 500):
                conn.execute(
                    tasks.update()
                    .where(
                        tasks.c.id.in_(task_ids[start : start + 500]),
                        tasks.c.owner == owner,
                        tasks.c.status == TaskStatus.RUNNING.value,
                    )
                    .values(
                        status=TaskStatus.PENDING.value, owner=None, lease_until=None
                    )
                )

    # -- reading results -----------------------------------------------------

    @reconnecting
    def counts(self, job_id: str, *, sources_deleted: bool = False) -> JobCounts:
        """The job's tasks by status, bytes and times; ``sources_deleted``
        (a move's callers ask): how many sources are gone."""
        with self.engine.connect() as conn:
            by_status = {
                s: n
                for s, n in conn.execute(
                    sa.select(tasks.c.status, sa.func.count())
                    .where(tasks.c.job_id == job_id)
                    .group_by(tasks.c.status)
                )
            }
            deleted = 0
            if sources_deleted:  # a move's: not in the claim index, a scan
                deleted = int(
                    conn.execute(
                        sa.select(sa.func.count()).where(
                            tasks.c.job_id == job_id,
                            tasks.c.delete_state.in_(REMOVED),
                        )
                    ).scalar_one()
                )
            done_bytes, first, last = conn.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(tasks.c.bytes), 0),
                    sa.func.min(tasks.c.started_at),
                    sa.func.max(tasks.c.finished_at),
                ).where(
                    tasks.c.job_id == job_id,
                    tasks.c.status == TaskStatus.SUCCEEDED.value,
                )
            ).one()
            up_to_date = 0
            if by_status.get(TaskStatus.SKIPPED.value):
                up_to_date = int(
                    conn.execute(
                        sa.select(sa.func.count()).where(
                            tasks.c.job_id == job_id,
                            tasks.c.status == TaskStatus.SKIPPED.value,
                            tasks.c.error_code == EXISTS,
                        )
                    ).scalar_one()
                )
        return JobCounts(
            by_status=by_status,
            bytes_done=int(done_bytes),
            first_started_at=first,
            last_finished_at=last,
            up_to_date=up_to_date,
            sources_deleted=deleted,
        )

    @reconnecting
    def error_counts(
        self,
        job_id: str,
        limit: int = 10,
        status: TaskStatus = TaskStatus.FAILED,
    ) -> list[tuple[str, int]]:
        """The most frequent error codes among failed (or ``status``) tasks."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(tasks.c.error_code, sa.func.count().label("n"))
                .where(
                    tasks.c.job_id == job_id,
                    tasks.c.status == status.value,
                )
                .group_by(tasks.c.error_code)
                .order_by(sa.text("n DESC"))
                .limit(limit)
            ).fetchall()
        return [(code or "", int(n)) for code, n in rows]

    def iter_results(
        self,
        job_id: str,
        failed_only: bool = False,
        status: TaskStatus | None = None,
        *,
        statuses: tuple[TaskStatus, ...] = (),
        after_id: int = 0,
    ) -> Iterator[ResultRow]:
        """Stream every task of the job in manifest order, without loading them
        all (only those of ``statuses``, after task ``after_id``, when given)."""
        job = self.get_job(job_id)
        q = sa.select(tasks).where(tasks.c.job_id == job_id).order_by(tasks.c.id)
        if failed_only:
            status = TaskStatus.FAILED
        if status is not None:
            statuses = (*statuses, status)
        if statuses:
            q = q.where(tasks.c.status.in_([s.value for s in statuses]))
        if after_id:
            q = q.where(tasks.c.id > after_id)
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=2000).execute(q)
            for row in result:
                m = row._mapping
                yield ResultRow(
                    id=m["id"],
                    line=m["line"],
                    src=ObjectRef(
                        m["src_bucket"], m["src_key"], m["src_version"] or None
                    ),
                    dst_bucket=job.dst_bucket,
                    dst_key=_dst_key(m["dst_key"], job.dst_prefix, m["src_key"]),
                    status=TaskStatus(m["status"]),
                    attempts=m["attempts"],
                    error_code=m["error_code"],
                    error_message=m["error_message"],
                    http_status=m["http_status"],
                    src_version_id=m["src_version_id"],
                    dst_version_id=m["dst_version_id"],
                    etag=m["etag"],
                    bytes=m["bytes"],
                    started_at=m["started_at"],
                    finished_at=m["finished_at"],
                    method=m["method"],
                    part_count=m["part_count"],
                    overrides=json.loads(m["overrides"]) if m["overrides"] else None,
                    kind=m["kind"],
                    last_modified=m["last_modified"],
                    delete_state=m["delete_state"],
                    deleted_at=m["deleted_at"],
                    src_etag=m["src_etag"],
                )

    @reconnecting
    def first_tasks(self, job_id: str, limit: int) -> list[Task]:
        """The first few pending tasks, read without claiming (for pre-flight)."""
        prefix = self._prefix(job_id)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(*_TASK_COLUMNS)
                .where(
                    tasks.c.job_id == job_id, tasks.c.status == TaskStatus.PENDING.value
                )
                .order_by(tasks.c.id)
                .limit(limit)
            ).fetchall()
        return [_task(job_id, prefix, r) for r in rows]
