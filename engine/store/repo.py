"""Repository: every read and write of the job table goes through here.

Writes are batched: tasks are inserted in batches inside one transaction per
submit, claims take many tasks in one statement, and results are recorded in
group commits.  A claim sets ``owner`` and a lease; a result is only recorded
while the recorder still owns the task (fencing), so a worker that lost its
claim cannot overwrite the new owner's result.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.errors import DatabaseError, JobNotFound, ManifestError
from engine.models import (
    JobCounts,
    JobStatus,
    ObjectRef,
    PartRecord,
    Task,
    TaskResult,
    TaskStatus,
)
from engine.store import db
from engine.store.tables import jobs, parts, tasks, workers

INSERT_BATCH = 5000
INVALID_ROW = "InvalidManifestRow"


@dataclass(frozen=True, slots=True)
class NewTask:
    """One task to insert at submit: a manifest row and where it goes."""

    line: int
    src: ObjectRef
    dst_key: str
    size: int | None = None
    error: str | None = None
    overrides: dict[str, Any] | None = None

    @property
    def kept_apart(self) -> bool:
        """Never merged with another row naming the same object: a malformed
        row, or one that names its own destination key."""
        return self.error is not None or bool((self.overrides or {}).get("dst_key"))


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
    spec: dict[str, Any]
    total_tasks: int
    invalid_rows: int
    duplicate_rows: int
    run_started_at: float | None
    message: str | None


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


def new_job_id(now: float | None = None) -> str:
    """A job id that sorts by creation time and is short enough to type."""
    stamp = datetime.fromtimestamp(now or time.time(), UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


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
)


def _task(job_id: str, r: Any) -> Task:
    """A :class:`Task` from a row of ``_TASK_COLUMNS``."""
    return Task(
        id=r[0],
        job_id=job_id,
        src=ObjectRef(r[1], r[2], r[3] or None),
        dst_key=r[4],
        attempts=r[5],
        size=r[6],
        upload_id=r[7],
        src_etag=r[8],
        part_size=r[9],
        overrides=json.loads(r[10]) if r[10] else None,
    )


def _refuse_collisions(conn: sa.Connection, job_id: str, manifest: str) -> None:
    """Raise when two source objects of a job map to one destination key.

    Versions of one object share a key on purpose (their history is copied in
    order); distinct objects must not, or one copy would overwrite another.
    """
    source = tasks.c.src_bucket + "/" + tasks.c.src_key  # '/' is not in bucket names
    good = sa.and_(tasks.c.job_id == job_id, tasks.c.error_code.is_(None))
    clashing = conn.execute(
        sa.select(tasks.c.dst_key, sa.func.count(sa.distinct(source)))
        .where(good)
        .group_by(tasks.c.dst_key)
        .having(sa.func.count(sa.distinct(source)) > 1)
        .limit(6)
    ).fetchall()
    if not clashing:
        return
    key = clashing[0][0]
    sources = conn.execute(
        sa.select(tasks.c.line, tasks.c.src_bucket, tasks.c.src_key)
        .where(good, tasks.c.dst_key == key)
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
    )


class Repository:
    """The job database.  Thread-compatible; the engine calls it from one thread."""

    def __init__(self, url: str | None = None, engine: Engine | None = None) -> None:
        self.engine = engine if engine is not None else db.create(url)
        self.url = db.redact(str(self.engine.url))
        self._insert = self._dialect_insert()

    def close(self) -> None:
        self.engine.dispose()

    def _dialect_insert(self) -> Callable[..., Any]:
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert

    # -- jobs ----------------------------------------------------------------

    def create_job(
        self,
        *,
        manifest: str,
        dst_bucket: str,
        dst_prefix: str,
        spec: Callable[[], dict[str, Any]],
        new_tasks: Iterable[NewTask],
        job_id: str | None = None,
        check_collisions: Callable[[], bool] = lambda: False,
    ) -> JobRecord:
        """Create a job and its tasks in one transaction.

        When ``check_collisions()`` says so (called once every task is read),
        two source objects mapped to one destination key refuse the submit.

        ``spec`` is called once every task is read, so it can report what the
        manifest contained.  Rows are inserted in batches; duplicates (same
        bucket, key, version)
        collapse into one task.  Anything ``new_tasks`` raises (a malformed
        manifest) rolls the whole submit back: no job, no tasks.
        """
        now = time.time()
        job_id = job_id or new_job_id(now)
        stmt = self._insert(tasks).on_conflict_do_nothing()
        rows_read = 0
        invalid = 0
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    jobs.insert().values(
                        id=job_id,
                        created_at=now,
                        updated_at=now,
                        status=JobStatus.SUBMITTED.value,
                        manifest=manifest,
                        dst_bucket=dst_bucket,
                        dst_prefix=dst_prefix,
                        spec="{}",
                    )
                )
                it = iter(new_tasks)
                while batch := list(islice(it, INSERT_BATCH)):
                    rows = []
                    for t in batch:
                        rows_read += 1
                        row = {
                            "job_id": job_id,
                            "line": t.line,
                            "src_bucket": t.src.bucket,
                            "src_key": t.src.key,
                            "src_version": t.src.version_id or "",
                            "invalid_line": t.line if t.kept_apart else 0,
                            "size": t.size,
                            "dst_key": t.dst_key,
                            "overrides": json.dumps(t.overrides)
                            if t.overrides
                            else None,
                            "status": TaskStatus.PENDING.value,
                            "attempts": 0,
                            "error_code": None,
                            "error_message": None,
                            "finished_at": None,
                        }
                        if t.error is not None:
                            invalid += 1
                            row.update(
                                status=TaskStatus.FAILED.value,
                                error_code=INVALID_ROW,
                                error_message=t.error,
                                finished_at=now,
                            )
                        rows.append(row)
                    conn.execute(stmt, rows)
                total = conn.execute(
                    sa.select(sa.func.count()).where(tasks.c.job_id == job_id)
                ).scalar_one()
                if check_collisions():
                    _refuse_collisions(conn, job_id, manifest)
                conn.execute(
                    jobs.update()
                    .where(jobs.c.id == job_id)
                    .values(
                        spec=json.dumps(spec(), sort_keys=True),
                        total_tasks=total,
                        invalid_rows=invalid,
                        duplicate_rows=rows_read - total,
                    )
                )
        except sa.exc.SQLAlchemyError as exc:
            raise DatabaseError(f"cannot write job to {self.url}: {exc}") from exc
        return self.get_job(job_id)

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

    def list_jobs(self, limit: int = 50) -> list[JobRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                jobs.select().order_by(jobs.c.created_at.desc()).limit(limit)
            ).fetchall()
        return [_job(r) for r in rows]

    def set_job_status(
        self,
        job_id: str,
        status: JobStatus,
        message: str | None = None,
        run_started_at: float | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": status.value,
            "updated_at": time.time(),
            "message": message,
        }
        if run_started_at is not None:
            values["run_started_at"] = run_started_at
        with self.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))

    # -- workers and leases --------------------------------------------------

    def register_worker(
        self, worker_id: str, job_id: str, hostname: str, pid: int
    ) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                workers.insert().values(
                    id=worker_id,
                    job_id=job_id,
                    hostname=hostname,
                    pid=pid,
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    def stop_worker(self, worker_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                workers.update()
                .where(workers.c.id == worker_id)
                .values(stopped_at=time.time())
            )

    def live_workers(
        self,
        job_id: str,
        hostname: str,
        pid_alive: Callable[[int], bool],
        stale_before: float,
    ) -> list[str]:
        """Workers of this job that still look alive (recent heartbeat, live pid)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    workers.c.id,
                    workers.c.hostname,
                    workers.c.pid,
                    workers.c.heartbeat_at,
                ).where(workers.c.job_id == job_id, workers.c.stopped_at.is_(None))
            ).fetchall()
        alive = []
        for wid, host, pid, beat in rows:
            if beat < stale_before:
                continue
            if host == hostname and not pid_alive(pid):
                continue
            alive.append(wid)
        return alive

    def release_orphans(self, job_id: str, live: list[str], now: float) -> int:
        """Put back to ``pending`` every running task not held by a live worker.

        Covers workers that crashed (``kill -9``, power loss) and leases that
        expired.  Returns how many tasks were released.
        """
        with self.engine.begin() as conn:
            cond = sa.and_(
                tasks.c.job_id == job_id,
                tasks.c.status == TaskStatus.RUNNING.value,
                sa.or_(
                    tasks.c.owner.is_(None),
                    tasks.c.owner.not_in(live) if live else sa.true(),
                    tasks.c.lease_until < now,
                ),
            )
            res = conn.execute(
                tasks.update()
                .where(cond)
                .values(status=TaskStatus.PENDING.value, owner=None, lease_until=None)
            )
            conn.execute(
                workers.update()
                .where(
                    workers.c.job_id == job_id,
                    workers.c.stopped_at.is_(None),
                    workers.c.id.not_in(live) if live else sa.true(),
                )
                .values(stopped_at=now)
            )
        return int(res.rowcount or 0)

    def heartbeat(self, worker_id: str, lease_until: float) -> None:
        """Extend the worker's heartbeat and the leases of the tasks it holds."""
        with self.engine.begin() as conn:
            conn.execute(
                workers.update()
                .where(workers.c.id == worker_id)
                .values(heartbeat_at=time.time())
            )
            conn.execute(
                tasks.update()
                .where(
                    tasks.c.owner == worker_id,
                    tasks.c.status == TaskStatus.RUNNING.value,
                )
                .values(lease_until=lease_until)
            )

    # -- the hot path: claim and record ---------------------------------------

    def claim(
        self, job_id: str, owner: str, limit: int, lease_until: float
    ) -> list[Task]:
        """Atomically take up to ``limit`` pending tasks, oldest first."""
        sub = (
            sa.select(tasks.c.id)
            .where(tasks.c.job_id == job_id, tasks.c.status == TaskStatus.PENDING.value)
            .order_by(tasks.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        stmt = (
            tasks.update()
            .where(tasks.c.id.in_(sub))
            .values(
                status=TaskStatus.RUNNING.value, owner=owner, lease_until=lease_until
            )
            .returning(*_TASK_COLUMNS)
        )
        with self.engine.begin() as conn:
            rows = sorted(conn.execute(stmt).fetchall(), key=lambda r: r[0])
        return [_task(job_id, r) for r in rows]

    def record(self, owner: str, results: list[TaskResult]) -> int:
        """Record final results in one commit; returns how many were accepted.

        A result is accepted only while ``owner`` still holds the task.
        """
        if not results:
            return 0
        stmt = (
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
            )
        )
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
            }
            for r in results
        ]
        with self.engine.begin() as conn:
            res = conn.execute(stmt, params)
        return int(res.rowcount or 0)

    # -- multipart uploads ------------------------------------------------------

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

    def upload_ended(self, task_id: int) -> None:
        """The task's upload was completed or aborted: forget it and its parts."""
        with self.engine.begin() as conn:
            conn.execute(
                tasks.update().where(tasks.c.id == task_id).values(upload_id=None)
            )
            conn.execute(parts.delete().where(parts.c.task_id == task_id))

    def open_uploads(self, job_id: str) -> list[tuple[int, str, str]]:
        """``(task_id, dst_key, upload_id)`` of uploads recorded and not ended."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(tasks.c.id, tasks.c.dst_key, tasks.c.upload_id).where(
                    tasks.c.job_id == job_id, tasks.c.upload_id.is_not(None)
                )
            ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def fail_succeeded(self, failures: list[tuple[int, str, str]]) -> int:
        """Turn succeeded tasks into failures ``(task_id, code, message)``.

        Used by ``bulkcopy verify`` when a recorded copy turns out not to
        match its source.
        """
        if not failures:
            return 0
        stmt = (
            tasks.update()
            .where(
                tasks.c.id == sa.bindparam("b_id"),
                tasks.c.status == TaskStatus.SUCCEEDED.value,
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

    def counts(self, job_id: str) -> JobCounts:
        with self.engine.connect() as conn:
            by_status = {
                s: n
                for s, n in conn.execute(
                    sa.select(tasks.c.status, sa.func.count())
                    .where(tasks.c.job_id == job_id)
                    .group_by(tasks.c.status)
                )
            }
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
        return JobCounts(
            by_status=by_status,
            bytes_done=int(done_bytes),
            first_started_at=first,
            last_finished_at=last,
        )

    def error_counts(self, job_id: str, limit: int = 10) -> list[tuple[str, int]]:
        """The most frequent error codes among failed tasks."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(tasks.c.error_code, sa.func.count().label("n"))
                .where(
                    tasks.c.job_id == job_id,
                    tasks.c.status == TaskStatus.FAILED.value,
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
    ) -> Iterator[ResultRow]:
        """Stream every task of the job in manifest order, without loading them all."""
        job = self.get_job(job_id)
        q = sa.select(tasks).where(tasks.c.job_id == job_id).order_by(tasks.c.id)
        if failed_only:
            status = TaskStatus.FAILED
        if status is not None:
            q = q.where(tasks.c.status == status.value)
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
                    dst_key=m["dst_key"],
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
                )

    def first_tasks(self, job_id: str, limit: int) -> list[Task]:
        """The first few pending tasks, read without claiming (for pre-flight)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(*_TASK_COLUMNS)
                .where(
                    tasks.c.job_id == job_id, tasks.c.status == TaskStatus.PENDING.value
                )
                .order_by(tasks.c.id)
                .limit(limit)
            ).fetchall()
        return [_task(job_id, r) for r in rows]
