"""Read models: what ``status`` and the reports read of a job's tasks.

Counts by status (:meth:`~ReadsMixin.counts`), the most frequent errors
(:meth:`~ReadsMixin.error_counts`) and every task with its result, streamed
in manifest order (:meth:`~ReadsMixin.iter_results`, rows mapped by
:func:`engine.store.rows.result_row`).

:class:`ReadsMixin` is one part of :class:`engine.store.repo.Repository`.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from engine.domain.codes import DESTINATION_EXISTS, REMOVED
from engine.domain.models import JobCounts, TaskStatus
from engine.domain.records import ResultRow
from engine.store.base import reconnecting
from engine.store.jobs import JobsMixin
from engine.store.rows import result_columns, result_row
from engine.store.tables import tasks


class ReadsMixin(JobsMixin):
    """Counting and listing a job's results."""

    @reconnecting
    def counts(self, job_id: str, *, sources_deleted: bool = False) -> JobCounts:
        """The job's tasks by status, bytes and times; ``sources_deleted``
        (a move's callers ask): how many sources are gone."""
        job = tasks.c.job_id == job_id
        with self.engine.connect() as conn:
            by_status = {
                r.status: r.n
                for r in conn.execute(
                    sa.select(tasks.c.status, sa.func.count().label("n"))
                    .where(job)
                    .group_by(tasks.c.status)
                )
            }
            deleted = 0
            if sources_deleted:  # a move's: not in the claim index, a scan
                deleted = int(
                    conn.execute(
                        sa.select(sa.func.count()).where(
                            job, tasks.c.delete_state.in_(REMOVED)
                        )
                    ).scalar_one()
                )
            done = (
                conn.execute(
                    sa.select(
                        sa.func.coalesce(sa.func.sum(tasks.c.bytes), 0).label("bytes"),
                        sa.func.min(tasks.c.started_at).label("first"),
                        sa.func.max(tasks.c.finished_at).label("last"),
                    ).where(job, tasks.c.status == TaskStatus.SUCCEEDED.value)
                )
                .one()
                ._mapping
            )
            up_to_date = 0
            if by_status.get(TaskStatus.SKIPPED.value):
                up_to_date = int(
                    conn.execute(
                        sa.select(sa.func.count()).where(
                            job,
                            tasks.c.status == TaskStatus.SKIPPED.value,
                            tasks.c.error_code == DESTINATION_EXISTS,
                        )
                    ).scalar_one()
                )
        return JobCounts(
            by_status=by_status,
            bytes_done=int(done["bytes"]),
            first_started_at=done["first"],
            last_finished_at=done["last"],
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
        n = sa.func.count().label("n")
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(tasks.c.error_code, n)
                .where(tasks.c.job_id == job_id, tasks.c.status == status.value)
                .group_by(tasks.c.error_code)
                .order_by(n.desc())
                .limit(limit)
            ).fetchall()
        return [(r.error_code or "", int(r.n)) for r in rows]

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
        q = (
            sa.select(*result_columns(job.dst_prefix))
            .where(tasks.c.job_id == job_id)
            .order_by(tasks.c.id)
        )
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
                yield result_row(row, job.dst_bucket)
