"""The workers table: who works on a job, their heartbeats, and taking back
the tasks of workers that died.

When a worker counts as dead is :mod:`engine.domain.liveness`'s policy: the
caller passes ``stale_before`` (one lease ago) and this module applies it.

:class:`WorkersMixin` is one part of :class:`engine.store.repo.Repository`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from engine.domain import liveness
from engine.domain.models import TaskStatus
from engine.domain.records import WorkerRecord, WorkerState
from engine.store.base import RepositoryBase, reconnecting
from engine.store.rows import WORKER_COLUMNS, worker_record
from engine.store.tables import tasks, workers


class WorkersMixin(RepositoryBase):
    """Worker rows, heartbeats and leases, dead workers' tasks."""

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
                sa.select(*WORKER_COLUMNS)
                .where(workers.c.job_id == job_id)
                .order_by(workers.c.started_at.desc())
            ).fetchall()
        return [worker_record(r) for r in rows]

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
        silent since ``stale_before`` (their host is lost; see
        :func:`engine.domain.liveness.silent_before`)."""
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
        record its result (``record`` checks the owner)."""
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
