"""The hot path's first half: claiming tasks under a lease, and giving them
back.

A claim takes many pending tasks in one statement and sets ``owner`` and
``lease_until`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent
claims skip each other's rows).  A job copying every version of its keys
claims one round (``depth``) at a time, oldest versions first.  Leases are
extended by the worker's heartbeat and taken back by
:meth:`~engine.store.workers.WorkersMixin.release_orphans`; the lease's
length is :mod:`engine.domain.liveness`'s.

:class:`ClaimsMixin` is one part of :class:`engine.store.repo.Repository`.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.domain.models import Task, TaskStatus
from engine.store.base import RepositoryBase, reconnecting
from engine.store.rows import task, task_columns, task_reader
from engine.store.tables import tasks


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


class ClaimsMixin(RepositoryBase):
    """Claiming tasks, and what is left to claim."""

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
        columns = task_columns(self._prefix(job_id))

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
                    .returning(*columns)
                )
                result = conn.execute(stmt)
                read = task_reader(tuple(result.keys()), job_id)
                taken = [read(r) for r in result]
            return sorted(taken, key=lambda t: t.id)

        def already_taken() -> list[Task] | None:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(*columns)
                    .where(
                        tasks.c.job_id == job_id,
                        tasks.c.status == TaskStatus.RUNNING.value,
                        tasks.c.owner == owner,
                        tasks.c.lease_until == lease_until,
                    )
                    .order_by(tasks.c.id)
                ).fetchall()
            return [task(r, job_id) for r in rows] or None

        return self._reconnecting("claim tasks in", take, already_taken)

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

    @reconnecting
    def first_tasks(self, job_id: str, limit: int) -> list[Task]:
        """The first few pending tasks, read without claiming (for pre-flight)."""
        columns = task_columns(self._prefix(job_id))
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(*columns)
                .where(
                    tasks.c.job_id == job_id, tasks.c.status == TaskStatus.PENDING.value
                )
                .order_by(tasks.c.id)
                .limit(limit)
            ).fetchall()
        return [task(r, job_id) for r in rows]

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
