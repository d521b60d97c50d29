"""The multipart ledger: each task's open upload and its finished parts, so a
resumed run copies only the parts that are missing.

An upload is recorded before its first part (``upload_started``, fenced by
ownership), each finished part as it ends (``part_done``), and forgotten
once completed or aborted (``upload_ended``).  ``open_uploads`` lists what
is left for the end-of-run sweep and ``bulkcopy cancel``.

:class:`UploadsMixin` is one part of :class:`engine.store.repo.Repository`.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.domain.codes import CREATING
from engine.domain.models import FINAL_STATUSES, PartRecord
from engine.store.base import RepositoryBase, reconnecting
from engine.store.rows import PART_COLUMNS, dst_key_sql, part_record
from engine.store.tables import parts, tasks


class UploadsMixin(RepositoryBase):
    """Recording multipart uploads and their parts."""

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
                sa.select(*PART_COLUMNS)
                .where(parts.c.task_id == task_id, parts.c.upload_id == upload_id)
                .order_by(parts.c.part_number)
            ).fetchall()
        return [part_record(r) for r in rows]

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
            tasks.c.id,
            dst_key_sql(self._prefix(job_id)).label("dst_key"),
            tasks.c.upload_id,
        ).where(tasks.c.job_id == job_id, tasks.c.upload_id.is_not(None))
        if of_final_tasks:
            q = q.where(tasks.c.status.in_([s.value for s in FINAL_STATUSES]))
        with self.engine.connect() as conn:
            rows = conn.execute(q).fetchall()
        return [
            (m["id"], m["dst_key"], m["upload_id"])
            for m in (r._mapping for r in rows)
            if not m["upload_id"].startswith(CREATING)
        ]
