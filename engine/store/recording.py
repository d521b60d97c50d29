"""The hot path's second half: recording results, fenced by ownership.

Results are recorded in group commits.  A result is only recorded while the
recorder still holds the task (``owner`` and ``running``): a worker that lost
its claim cannot overwrite the new owner's result, though its attempts
count.  A move's copy is recorded before its source is deleted
(:meth:`~RecordingMixin.copied`), and ``bulkcopy verify`` turns a copy that
does not match back into a failure (:meth:`~RecordingMixin.fail_succeeded`).

The columns a result sets are :class:`~engine.domain.models.TaskResult`'s
fields, and a move's copy :class:`~engine.domain.models.CopyRecord`'s
(:data:`engine.store.rows.COPY_RECORD_COLUMNS`): each statement and its
parameters are derived from those, not listed again.

:class:`RecordingMixin` is one part of :class:`engine.store.repo.Repository`.
"""

from __future__ import annotations

from dataclasses import fields
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from engine.domain.codes import PENDING as DELETE_PENDING
from engine.domain.models import CopyRecord, TaskResult, TaskStatus
from engine.store.base import RepositoryBase, reconnecting
from engine.store.rows import COPY_RECORD_COLUMNS
from engine.store.tables import tasks, workers

# the columns a result sets as they are, named as TaskResult's fields
# (task_id picks the row; attempts are added to the task's)
RESULT_COLUMNS = tuple(
    f.name for f in fields(TaskResult) if f.name not in ("task_id", "attempts")
)

_MINE = (
    tasks.c.id == sa.bindparam("b_id"),
    tasks.c.owner == sa.bindparam("b_owner"),
    tasks.c.status == TaskStatus.RUNNING.value,
)
_RECORD = (
    tasks.update()
    .where(*_MINE)
    .values(
        owner=None,
        lease_until=None,
        attempts=tasks.c.attempts + sa.bindparam("b_attempts"),
        **{name: sa.bindparam(f"b_{name}") for name in RESULT_COLUMNS},
    )
)
# a move's copy, recorded before its source is deleted (RecordingMixin.copied)
_COPIED = (
    tasks.update()
    .where(*_MINE)
    .values(
        delete_state=DELETE_PENDING,
        **{c: sa.bindparam(f"b_{c}") for c in COPY_RECORD_COLUMNS.values()},
    )
)


class _ManyRows:
    """One UPDATE run for many rows with the driver's own ``executemany``.

    SQLAlchemy builds each row's parameters in Python (~15 µs a row, a tenth
    of a small copy's CPU, in the run's busiest statement); here the
    statement is compiled once per dialect and the rows go to the driver as
    they are.  Its values are the driver's types already (floats from
    ``time.time()``, strings, ints), so no bind processing is skipped that
    would change them."""

    def __init__(self, stmt: sa.Update, dialect: sa.Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        # the statement's own literals (owner=None, ...) and every bind name
        self.defaults = {name: b.value for name, b in compiled.binds.items()}
        self.order = compiled.positiontup  # None: the driver takes names

    def run(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> int:
        d = self.defaults
        if self.order is None:
            params: list[Any] = [{**d, **r} for r in rows]
        else:
            # the values in the statement's order (a tuple: more than one bind)
            pick = itemgetter(*self.order)
            params = [pick({**d, **r}) for r in rows]
        return int(conn.exec_driver_sql(self.sql, params).rowcount or 0)


# each bind parameter a result fills, with the TaskResult field it holds
_RESULT_BINDS = tuple((f"b_{name}", name) for name in RESULT_COLUMNS)


def _result_params(owner: str, r: TaskResult) -> dict[str, Any]:
    params = {bind: getattr(r, name) for bind, name in _RESULT_BINDS}
    params.update(
        b_id=r.task_id, b_owner=owner, b_attempts=r.attempts, b_status=r.status.value
    )
    return params


def _copied_params(owner: str, task_id: int, c: CopyRecord) -> dict[str, Any]:
    params = {f"b_{col}": getattr(c, f) for f, col in COPY_RECORD_COLUMNS.items()}
    params.update(b_id=task_id, b_owner=owner)
    return params


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


class RecordingMixin(RepositoryBase):
    """Recording results (fenced), moves' copies and verify's failures."""

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

    def _record_many(self, conn: sa.Connection) -> _ManyRows:
        """The result UPDATE, compiled for this database (once)."""
        many = getattr(self, "_record_compiled", None)
        if many is None:
            many = self._record_compiled = _ManyRows(_RECORD, conn.dialect)
        return many

    def _task_states(self, ids: list[int]) -> dict[int, tuple[str, str | None, Any]]:
        """``status, owner, finished_at`` of these tasks."""
        out: dict[int, tuple[str, str | None, Any]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 1000):
                for row in conn.execute(
                    sa.select(
                        tasks.c.id, tasks.c.status, tasks.c.owner, tasks.c.finished_at
                    ).where(tasks.c.id.in_(ids[start : start + 1000]))
                ):
                    m = row._mapping
                    out[m["id"]] = (m["status"], m["owner"], m["finished_at"])
        return out

    def _record(self, owner: str, results: list[TaskResult]) -> int:
        if not results:
            return 0
        with self.engine.begin() as conn:
            held = _held(conn, owner, [r.task_id for r in results])
            mine = [_result_params(owner, r) for r in results if r.task_id in held]
            accepted = self._record_many(conn).run(conn, mine) if mine else 0
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
            for i, c in records:
                # fenced row by row: a task taken back meanwhile is not ours
                if conn.execute(_COPIED, _copied_params(owner, i, c)).rowcount:
                    held.add(i)
        return held

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
