"""Loading a job's tasks: create the job, insert its rows batch by batch
(with the reader's checkpoint), then finish it in one transaction: merge
duplicate rows, refuse rows that would overwrite each other, number the
versions of each key.

:class:`IngestMixin` is one part of :class:`engine.store.repo.Repository`.
Which checks a job needs is the submit's decision
(:mod:`engine.usecases.submit`); what to tell the user when one fails is
too: the store raises :class:`~engine.domain.errors.KeyConflict` with the
facts.
"""

from __future__ import annotations

import json
import time
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from engine.domain.errors import KeyConflict
from engine.domain.models import JobStatus, TaskStatus
from engine.domain.records import (
    INGEST_COLUMNS,
    PLAIN_COLUMNS,
    IngestTotals,
    JobRecord,
)
from engine.store.jobs import JobsMixin, new_job_id
from engine.store.rows import dst_key_sql
from engine.store.tables import jobs, tasks


def _good(job_id: str) -> sa.ColumnElement[bool]:
    """The job's rows that are objects (not malformed rows)."""
    return sa.and_(tasks.c.job_id == job_id, tasks.c.error_code.is_(None))


def _refuse_collisions(
    conn: sa.Connection, job_id: str, manifest: str, prefix: str
) -> None:
    """Raise when two source objects of a job map to one destination key.

    Versions of one object share a key on purpose (their history is copied in
    order); distinct objects must not, or one copy would overwrite another.
    """
    source = tasks.c.src_bucket + "/" + tasks.c.src_key  # '/' is not in bucket names
    good = _good(job_id)
    dst_key = dst_key_sql(prefix)
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
    raise KeyConflict(
        manifest,
        f"{len(clashing[:5])} destination key(s) would each receive more than one "
        f"source object{more}, e.g. {key!r} from {listed}",
        collision=True,
    )


def _refuse_chains(
    conn: sa.Connection, job_id: str, manifest: str, prefix: str, bucket: str
) -> None:
    """Raise when an object would be copied onto another source object of the
    same job (the destination bucket is a source bucket): that source would be
    overwritten before, or instead of, being copied itself — and a move would
    then delete it.  An object copied onto itself (in place) is fine."""
    good = _good(job_id)
    if (
        conn.execute(
            sa.select(tasks.c.id).where(good, tasks.c.src_bucket == bucket).limit(1)
        ).first()
        is None
    ):
        return  # no source in the destination bucket: nothing to overwrite
    # the keys objects land on (each onto itself excepted), met with the
    # keys of the sources in that bucket: two sorted sets, not a join
    landing = dst_key_sql(prefix)
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
    raise KeyConflict(
        manifest,
        f"s3://{src_bucket}/{src_key} (line {line}) would be copied onto "
        f"s3://{bucket}/{key}, itself a source of this job (line {other}): it "
        "would be overwritten before it is copied",
        collision=False,
    )


# what names one object: rows kept apart have their own ``invalid_line``
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


def _number_versions(conn: sa.Connection, job_id: str, prefix: str) -> None:
    """Set each task's depth: how many newer versions of its destination key
    the job holds (newest 0).  Claims take the deepest first, so every key's
    versions are written oldest first.  Ties in LastModified keep manifest
    order (a listing gives the newest version first)."""
    newer = (
        sa.select(
            tasks.c.id,
            (
                sa.func.row_number().over(
                    partition_by=dst_key_sql(prefix),
                    order_by=(tasks.c.last_modified.desc().nulls_last(), tasks.c.id),
                )
                - 1
            ).label("d"),
        )
        .where(_good(job_id))
        .subquery("r")
    )
    conn.execute(
        tasks.update()
        .where(tasks.c.id == newer.c.id, newer.c.d > 0)
        .values(depth=newer.c.d)
    )


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


class IngestMixin(JobsMixin):
    """Creating a job and loading its tasks."""

    @cached_property
    def _mark(self) -> str:
        return "?" if self.engine.dialect.paramstyle == "qmark" else "%s"

    @cached_property
    def _copy(self) -> bool:
        """PostgreSQL: batches of tasks go in with COPY (several times faster
        than a multi-row INSERT)."""
        return self.engine.dialect.name == "postgresql"

    @cached_property
    def _plain_sql(self) -> dict[tuple[str, ...], str]:
        return {}

    def _insert_sql(self, columns: tuple[str, ...], status: bool) -> str:
        values = ", ".join([self._mark] * len(columns))
        if not status:
            return f"INSERT INTO tasks ({', '.join(columns)}) VALUES ({values})"
        return (
            f"INSERT INTO tasks ({', '.join(columns)}, status) "
            f"VALUES ({values}, '{TaskStatus.PENDING.value}')"
        )

    def _plain_insert(self, columns: tuple[str, ...]) -> str:
        sql = self._plain_sql.get(columns)
        if sql is None:
            if not set(columns) <= set(PLAIN_COLUMNS):
                raise ValueError(f"not task columns: {columns}")
            sql = self._plain_sql[columns] = self._insert_sql(columns, status=True)
        return sql

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
        full_sql = self._insert_sql(INGEST_COLUMNS, status=False)

        def insert() -> int:
            with self._writing("add tasks to"), self.engine.begin() as conn:
                inserted = 0
                if self._copy:
                    inserted = _copy_rows(conn, plain_columns, plain, rows)
                for sql, batch in ((plain_sql, plain), (full_sql, rows)):
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

        Raises :class:`KeyConflict` (and leaves the job as it was) when two
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
