"""The jobs table: look a job up, list jobs, change a job's status.

:class:`JobsMixin` is one part of :class:`engine.store.repo.Repository`; the
rules of pause, resume and cancel are the domain's
(:mod:`engine.domain.control`), applied here in one guarded UPDATE.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.domain import control
from engine.domain.errors import JobControlRefused, JobNotFound
from engine.domain.models import JobStatus
from engine.domain.records import JobRecord
from engine.store.base import RepositoryBase, reconnecting
from engine.store.rows import job_record
from engine.store.tables import jobs, parts, tasks, workers


def new_job_id(now: float | None = None) -> str:
    """A job id that sorts by creation time and is short enough to type."""
    stamp = datetime.fromtimestamp(now or time.time(), UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


class JobsMixin(RepositoryBase):
    """Reading and changing jobs (not their tasks)."""

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
        return job_record(row)

    @reconnecting
    def list_jobs(self, limit: int = 50) -> list[JobRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                jobs.select().order_by(jobs.c.created_at.desc()).limit(limit)
            ).fetchall()
        return [job_record(r) for r in rows]

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
        return [job_record(r) for r in rows]

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
        return None if row is None else job_record(row)

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
    def control_job(self, job_id: str, action: str) -> tuple[JobStatus, JobStatus]:
        """``pause``, ``resume`` or ``cancel`` a job; its status before and after.

        Raises :class:`JobControlRefused` when the job's status does not allow
        it (:func:`engine.domain.control.rule`).  Workers see the change at
        their next poll (every second or so)."""
        job = self.get_job(job_id)
        allowed, target = control.rule(action)
        if job.status is target and action != "resume":
            return job.status, target
        if job.status not in allowed:
            raise JobControlRefused(job.id, action, job.status.value)
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
    def drop_job(self, job_id: str) -> None:
        """Delete a job and everything recorded for it."""
        with self._writing("delete job from"), self.engine.begin() as conn:
            ids = sa.select(tasks.c.id).where(tasks.c.job_id == job_id)
            conn.execute(parts.delete().where(parts.c.task_id.in_(ids)))
            conn.execute(tasks.delete().where(tasks.c.job_id == job_id))
            conn.execute(workers.delete().where(workers.c.job_id == job_id))
            conn.execute(jobs.delete().where(jobs.c.id == job_id))
