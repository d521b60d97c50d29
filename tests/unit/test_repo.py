"""The repository: task state transitions, fencing, resume, reads, and the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from engine.domain.errors import DatabaseError, JobNotFound, SchemaTooNew
from engine.domain.models import ObjectRef, Task, TaskResult, TaskStatus
from engine.domain.records import IngestTotals, ResultRow
from engine.store import Repository, tables

LEASE = 2_000_000_000.0  # far in the future: leases never expire unless a test says so


def make_job(repo: Repository, n: int, job_id: str = "20260101-000000-aaaaaa") -> str:
    repo.start_ingest(
        manifest="m.csv",
        dst_bucket="dst",
        dst_prefix="p/",
        spec={},
        source={"kind": "csv", "location": "m.csv"},
        identity=None,
        job_id=job_id,
    )
    rows = [
        (
            job_id,
            i + 1,
            "src",
            f"k{i}",
            "",
            0,
            None,
            f"p/k{i}",
            None,
            "pending",
            None,
            None,
            None,
            None,
            None,
            None,
        )
        for i in range(n)
    ]
    repo.add_tasks(job_id, rows, {})
    return repo.finish_ingest(
        job_id,
        spec={},
        totals=IngestTotals(read=n),
        check_collisions=False,
        order_versions=False,
    ).id


def ok(task: Task, attempts: int = 1, size: int = 10) -> TaskResult:
    return TaskResult(
        task_id=task.id,
        status=TaskStatus.SUCCEEDED,
        attempts=attempts,
        started_at=100.0,
        finished_at=101.0,
        http_status=200,
        src_version_id="sv",
        dst_version_id="dv",
        etag='"etag"',
        bytes=size,
    )


def failed(task: Task, attempts: int = 1) -> TaskResult:
    return TaskResult(
        task_id=task.id,
        status=TaskStatus.FAILED,
        attempts=attempts,
        started_at=100.0,
        finished_at=102.0,
        error_code="NoSuchKey",
        error_message="CopyObject: The specified key does not exist.",
        http_status=404,
    )


def results(repo: Repository, job_id: str) -> dict[int, ResultRow]:
    return {r.id: r for r in repo.iter_results(job_id)}


def owners(repo: Repository) -> dict[int, str | None]:
    with repo.engine.connect() as conn:
        rows = conn.execute(sa.select(tables.tasks.c.id, tables.tasks.c.owner))
        return {i: o for i, o in rows}


# -- claim ----------------------------------------------------------------------


def test_claim_moves_pending_tasks_to_running_under_the_owner(
    repo: Repository,
) -> None:
    """Claimed tasks are running and owned by the claimer; the rest stay pending."""
    job = make_job(repo, 5)
    claimed = repo.claim(job, "w1", limit=3, lease_until=LEASE)
    assert len(claimed) == 3
    rows = results(repo, job)
    assert [rows[t.id].status for t in claimed] == [TaskStatus.RUNNING] * 3
    assert {owners(repo)[t.id] for t in claimed} == {"w1"}
    assert repo.counts(job).by_status == {"running": 3, "pending": 2}


def test_claim_returns_tasks_in_id_order_with_their_fields(repo: Repository) -> None:
    """A claim hands out the oldest tasks first, each with source and destination."""
    job = make_job(repo, 4)
    first = repo.claim(job, "w1", limit=2, lease_until=LEASE)
    second = repo.claim(job, "w1", limit=2, lease_until=LEASE)
    claimed = first + second
    assert [t.id for t in claimed] == sorted(t.id for t in claimed)
    assert [(t.src, t.dst_key) for t in claimed] == [
        (ObjectRef("src", f"k{i}"), f"p/k{i}") for i in range(4)
    ]
    assert {t.job_id for t in claimed} == {job}


def test_two_claims_never_return_the_same_task(repo: Repository) -> None:
    """Tasks claimed once are not claimed again, whoever asks."""
    job = make_job(repo, 5)
    first = repo.claim(job, "w1", limit=3, lease_until=LEASE)
    second = repo.claim(job, "w2", limit=3, lease_until=LEASE)
    third = repo.claim(job, "w3", limit=3, lease_until=LEASE)
    ids_1, ids_2 = {t.id for t in first}, {t.id for t in second}
    assert len(ids_2) == 2
    assert not ids_1 & ids_2
    assert third == []


def test_claim_only_takes_tasks_of_its_job(repo: Repository) -> None:
    """Claiming for one job leaves another job's tasks alone."""
    job_a = make_job(repo, 2, job_id="20260101-000000-aaaaaa")
    job_b = make_job(repo, 2, job_id="20260101-000000-bbbbbb")
    claimed = repo.claim(job_a, "w1", limit=10, lease_until=LEASE)
    assert {t.job_id for t in claimed} == {job_a}
    assert len(claimed) == 2
    assert repo.counts(job_b).by_status == {"pending": 2}


# -- record ---------------------------------------------------------------------


def test_record_by_owner_sets_the_final_result(repo: Repository) -> None:
    """The owner's results become final, with every recorded field and no owner."""
    job = make_job(repo, 2)
    t_ok, t_bad = repo.claim(job, "w1", limit=2, lease_until=LEASE)
    assert repo.record("w1", [ok(t_ok, size=42), failed(t_bad, attempts=3)]) == 2
    rows = results(repo, job)
    good, bad = rows[t_ok.id], rows[t_bad.id]
    assert (good.status, good.attempts, good.bytes, good.etag) == (
        TaskStatus.SUCCEEDED,
        1,
        42,
        '"etag"',
    )
    assert (good.src_version_id, good.dst_version_id, good.http_status) == (
        "sv",
        "dv",
        200,
    )
    assert (good.started_at, good.finished_at) == (100.0, 101.0)
    assert (bad.status, bad.attempts, bad.error_code, bad.http_status) == (
        TaskStatus.FAILED,
        3,
        "NoSuchKey",
        404,
    )
    assert bad.error_message == "CopyObject: The specified key does not exist."
    assert owners(repo) == {t_ok.id: None, t_bad.id: None}


def test_record_from_another_owner_is_rejected(repo: Repository) -> None:
    """A worker that does not hold the task cannot record its result (fencing);
    its attempt is still counted (the copy was tried)."""
    job = make_job(repo, 1)
    (task,) = repo.claim(job, "w1", limit=1, lease_until=LEASE)
    assert repo.record("w2", [ok(task)]) == 0
    row = results(repo, job)[task.id]
    assert (row.status, row.attempts, row.bytes) == (TaskStatus.RUNNING, 1, None)
    assert owners(repo)[task.id] == "w1"
    assert repo.record("w1", [ok(task)]) == 1


def test_record_after_the_task_was_reclaimed_is_rejected(repo: Repository) -> None:
    """A worker that lost its claim cannot overwrite the new owner's result."""
    job = make_job(repo, 1)
    (task,) = repo.claim(job, "w1", limit=1, lease_until=LEASE)
    repo.release_orphans(job, now=0.0, dead=["w1"])
    (again,) = repo.claim(job, "w2", limit=1, lease_until=LEASE)
    assert repo.record("w2", [ok(again, size=7)]) == 1
    assert repo.record("w1", [failed(task)]) == 0
    row = results(repo, job)[task.id]
    assert (row.status, row.bytes, row.error_code) == (TaskStatus.SUCCEEDED, 7, None)


def test_record_accepts_a_result_only_once(repo: Repository) -> None:
    """Recording a final result twice leaves the first one standing."""
    job = make_job(repo, 1)
    (task,) = repo.claim(job, "w1", limit=1, lease_until=LEASE)
    assert repo.record("w1", [ok(task)]) == 1
    assert repo.record("w1", [failed(task)]) == 0
    assert results(repo, job)[task.id].status is TaskStatus.SUCCEEDED


def test_record_accepts_only_the_tasks_the_owner_holds(repo: Repository) -> None:
    """In one batch, results for held tasks are accepted and the others ignored."""
    job = make_job(repo, 2)
    t1 = repo.claim(job, "w1", limit=1, lease_until=LEASE)[0]
    t2 = repo.claim(job, "w2", limit=1, lease_until=LEASE)[0]
    assert repo.record("w1", [ok(t1), ok(t2)]) == 1
    rows = results(repo, job)
    assert (rows[t1.id].status, rows[t2.id].status) == (
        TaskStatus.SUCCEEDED,
        TaskStatus.RUNNING,
    )


def test_attempts_add_up_across_runs(repo: Repository) -> None:
    """Attempts recorded add to those already stored for the task by earlier runs."""
    job = make_job(repo, 1)
    with repo.engine.begin() as conn:
        conn.execute(tables.tasks.update().values(attempts=3))
    (task,) = repo.claim(job, "w1", limit=1, lease_until=LEASE)
    assert task.attempts == 3
    assert repo.record("w1", [failed(task, attempts=2)]) == 1
    assert results(repo, job)[task.id].attempts == 5


def test_a_crashed_attempt_does_not_count(repo: Repository) -> None:
    """A claim lost in a crash records no attempt; the resumed run's attempts stand."""
    job = make_job(repo, 1)
    (task,) = repo.claim(job, "w1", limit=1, lease_until=LEASE)
    repo.release_orphans(job, now=0.0, dead=["w1"])
    (again,) = repo.claim(job, "w2", limit=1, lease_until=LEASE)
    assert again.attempts == 0
    assert repo.record("w2", [failed(again, attempts=2)]) == 1
    assert results(repo, job)[task.id].attempts == 2


def test_record_of_nothing_records_nothing(repo: Repository) -> None:
    """An empty batch of results is accepted as zero rows."""
    assert repo.record("w1", []) == 0


# -- release and resume ---------------------------------------------------------


def test_release_returns_unstarted_claimed_tasks_to_pending(repo: Repository) -> None:
    """Released tasks are pending again, unowned, and the next claim gets them."""
    job = make_job(repo, 3)
    claimed = repo.claim(job, "w1", limit=3, lease_until=LEASE)
    repo.release("w1", [t.id for t in claimed[1:]])
    assert repo.counts(job).by_status == {"running": 1, "pending": 2}
    assert owners(repo)[claimed[1].id] is None
    again = repo.claim(job, "w2", limit=3, lease_until=LEASE)
    assert [t.id for t in again] == [t.id for t in claimed[1:]]


def test_release_by_another_owner_changes_nothing(repo: Repository) -> None:
    """A worker cannot release tasks it does not hold."""
    job = make_job(repo, 1)
    (task,) = repo.claim(job, "w1", limit=1, lease_until=LEASE)
    repo.release("w2", [task.id])
    assert owners(repo)[task.id] == "w1"
    assert repo.counts(job).by_status == {"running": 1}


def test_release_leaves_final_results_alone(repo: Repository) -> None:
    """Releasing a task whose result is recorded does not make it pending again."""
    job = make_job(repo, 1)
    (task,) = repo.claim(job, "w1", limit=1, lease_until=LEASE)
    repo.record("w1", [ok(task)])
    repo.release("w1", [task.id])
    assert repo.counts(job).by_status == {"succeeded": 1}


def test_release_orphans_resumes_running_tasks_after_a_crash(
    repo: Repository,
) -> None:
    """After a crash, running tasks go back to pending and final results stay put."""
    job = make_job(repo, 4)
    claimed = repo.claim(job, "w1", limit=4, lease_until=LEASE)
    repo.record("w1", [ok(claimed[0], size=5), failed(claimed[1])])
    assert repo.release_orphans(job, now=1000.0, dead=["w1"]) == 2
    rows = results(repo, job)
    assert [rows[t.id].status for t in claimed] == [
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.PENDING,
        TaskStatus.PENDING,
    ]
    assert (rows[claimed[0].id].bytes, rows[claimed[1].id].error_code) == (
        5,
        "NoSuchKey",
    )
    assert [owners(repo)[t.id] for t in claimed[2:]] == [None, None]
    resumed = repo.claim(job, "w2", limit=10, lease_until=LEASE)
    assert [t.id for t in resumed] == [t.id for t in claimed[2:]]


def test_release_orphans_spares_live_workers_with_valid_leases(
    repo: Repository,
) -> None:
    """Tasks of a live worker whose lease holds stay running; dead workers' go back."""
    job = make_job(repo, 2)
    (live_task,) = repo.claim(job, "alive", limit=1, lease_until=LEASE)
    (dead_task,) = repo.claim(job, "dead", limit=1, lease_until=LEASE)
    assert repo.release_orphans(job, now=1000.0, dead=["dead"]) == 1
    rows = results(repo, job)
    assert rows[live_task.id].status is TaskStatus.RUNNING
    assert rows[dead_task.id].status is TaskStatus.PENDING


def test_release_orphans_takes_back_expired_leases(repo: Repository) -> None:
    """A live worker's task whose lease ran out is released too."""
    job = make_job(repo, 1)
    (task,) = repo.claim(job, "alive", limit=1, lease_until=500.0)
    assert repo.release_orphans(job, now=1000.0) == 1
    assert results(repo, job)[task.id].status is TaskStatus.PENDING


# -- reads ----------------------------------------------------------------------


def test_counts_by_status_and_bytes_of_succeeded_tasks(repo: Repository) -> None:
    """Counts group tasks by status and sum bytes over succeeded tasks only."""
    job = make_job(repo, 5)
    claimed = repo.claim(job, "w1", limit=4, lease_until=LEASE)
    repo.record(
        "w1", [ok(claimed[0], size=10), ok(claimed[1], size=32), failed(claimed[2])]
    )
    counts = repo.counts(job)
    assert counts.by_status == {"succeeded": 2, "failed": 1, "running": 1, "pending": 1}
    assert (counts.total, counts.finished, counts.remaining) == (5, 3, 2)
    assert counts.bytes_done == 42
    assert (counts.first_started_at, counts.last_finished_at) == (100.0, 101.0)


def test_counts_of_an_untouched_job(repo: Repository) -> None:
    """A job nobody has run has only pending tasks and zero bytes."""
    job = make_job(repo, 3)
    counts = repo.counts(job)
    assert (counts.by_status, counts.bytes_done) == ({"pending": 3}, 0)


def test_iter_results_failed_only(repo: Repository) -> None:
    """failed_only yields just the failed tasks, in manifest order."""
    job = make_job(repo, 4)
    claimed = repo.claim(job, "w1", limit=4, lease_until=LEASE)
    repo.record(
        "w1",
        [ok(claimed[0]), failed(claimed[1]), ok(claimed[2]), failed(claimed[3])],
    )
    rows = list(repo.iter_results(job, failed_only=True))
    assert [(r.line, r.status) for r in rows] == [
        (2, TaskStatus.FAILED),
        (4, TaskStatus.FAILED),
    ]
    assert {r.dst_bucket for r in rows} == {"dst"}
    assert len(list(repo.iter_results(job))) == 4


def test_get_job_by_unique_prefix(repo: Repository) -> None:
    """A job can be named by any prefix of its id that no other job shares."""
    make_job(repo, 1, job_id="20260101-000000-aaaaaa")
    make_job(repo, 1, job_id="20260101-000000-bbbbbb")
    assert repo.get_job("20260101-000000-a").id == "20260101-000000-aaaaaa"
    assert repo.get_job("20260101-000000-bbbbbb").id == "20260101-000000-bbbbbb"


def test_get_job_with_an_ambiguous_prefix_is_not_found(repo: Repository) -> None:
    """A prefix shared by two jobs names neither."""
    make_job(repo, 1, job_id="20260101-000000-aaaaaa")
    make_job(repo, 1, job_id="20260101-000000-bbbbbb")
    with pytest.raises(JobNotFound):
        repo.get_job("20260101")


@pytest.mark.parametrize("job_id", ["nope", "", "2026%", "2026_"])
def test_unknown_job_raises_job_not_found(repo: Repository, job_id: str) -> None:
    """An id (or pattern-like text) matching no job raises JobNotFound."""
    make_job(repo, 1)
    with pytest.raises(JobNotFound, match="no job"):
        repo.get_job(job_id)


def test_unknown_job_is_not_found_for_iter_results(repo: Repository) -> None:
    """Reading the results of a job that does not exist raises JobNotFound."""
    with pytest.raises(JobNotFound):
        list(repo.iter_results("nope"))


# -- schema -----------------------------------------------------------------------


def test_database_from_a_newer_bulkcopy_is_refused(db_path: str) -> None:
    """A schema revision this version does not know raises SchemaTooNew, clearly."""
    Repository(db_path).close()
    engine = sa.create_engine(f"sqlite:///{db_path}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SchemaTooNew) as info:
        Repository(db_path)
    message = str(info.value)
    assert "'9999'" in message
    assert "newer than this bulkcopy" in message
    assert "upgrade bulkcopy" in message
    assert isinstance(info.value, DatabaseError)


def test_head_revision_is_the_newest_migration() -> None:
    """``HEAD_REVISION`` (what lets a current database open without loading
    Alembic) names the last migration; a new migration must move it."""
    from alembic.script import ScriptDirectory

    from engine.store import db

    script = ScriptDirectory.from_config(
        db.alembic_config(sa.create_engine("sqlite://"))
    )
    assert script.get_current_head() == db.HEAD_REVISION


def test_an_older_schema_is_migrated_on_open(db_path: str) -> None:
    """A database left at an older revision is brought to head when opened."""
    from engine.store import db

    Repository(db_path).close()
    engine = sa.create_engine(f"sqlite:///{db_path}")
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_workers_job_id"))
        conn.execute(sa.text("ALTER TABLE workers DROP COLUMN state"))
        conn.execute(sa.text("ALTER TABLE workers DROP COLUMN bytes_done"))
        conn.execute(sa.text("ALTER TABLE workers DROP COLUMN tasks_done"))
        conn.execute(sa.text("ALTER TABLE workers DROP COLUMN concurrency"))
        conn.execute(sa.text("ALTER TABLE tasks DROP COLUMN delete_state"))
        conn.execute(sa.text("ALTER TABLE tasks DROP COLUMN deleted_at"))
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0004'"))
    engine.dispose()
    Repository(db_path).close()
    engine = sa.create_engine(f"sqlite:///{db_path}")
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            == db.HEAD_REVISION
        )
        columns = {c["name"] for c in sa.inspect(conn).get_columns("workers")}
        task_columns = {c["name"] for c in sa.inspect(conn).get_columns("tasks")}
    engine.dispose()
    assert {"state", "tasks_done", "bytes_done", "concurrency"} <= columns
    assert {"delete_state", "deleted_at"} <= task_columns


def test_reopening_a_migrated_database_keeps_its_jobs(db_path: str) -> None:
    """Opening an up-to-date database again neither migrates nor loses anything."""
    first = Repository(db_path)
    job = make_job(first, 2)
    first.close()
    second = Repository(db_path)
    try:
        assert second.get_job(job).total_tasks == 2
    finally:
        second.close()


def _schema_diff(engine: sa.Engine) -> tuple[str | None, list[Any]]:
    """The database's revision, and how its schema differs from the models."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        return context.get_current_revision(), compare_metadata(
            context, tables.metadata
        )


def test_migrated_schema_equals_the_models(db_path: str) -> None:
    """The schema the migrations build on SQLite is exactly the SQLAlchemy models."""
    from alembic import command

    from engine.store import db

    engine = sa.create_engine(f"sqlite:///{db_path}")
    command.upgrade(db.alembic_config(engine), "head")
    assert _schema_diff(engine) == (db.HEAD_REVISION, [])
    engine.dispose()


def test_a_new_database_is_created_at_head_as_the_migrations_build_it(
    db_path: str, tmp_path: Path
) -> None:
    """A new SQLite file gets the models' schema at once, stamped at head:
    the same tables, columns, defaults and indexes as the migrations build,
    and a later migration starts from there."""
    from alembic import command

    from engine.store import db

    Repository(db_path).close()
    created = sa.create_engine(f"sqlite:///{db_path}")
    assert _schema_diff(created) == (db.HEAD_REVISION, [])
    migrated = sa.create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    command.upgrade(db.alembic_config(migrated), "head")

    def shape(engine: sa.Engine) -> dict[str, Any]:
        inspector = sa.inspect(engine)
        return {
            t: (
                sorted(
                    (c["name"], str(c["type"]), c["nullable"], c["default"])
                    for c in inspector.get_columns(t)
                ),
                sorted(
                    (i["name"], tuple(i["column_names"]), i["unique"])
                    for i in inspector.get_indexes(t)
                ),
                inspector.get_pk_constraint(t)["constrained_columns"],
                sorted(str(f["referred_table"]) for f in inspector.get_foreign_keys(t)),
            )
            for t in inspector.get_table_names()
        }

    assert shape(created) == shape(migrated)
    created.dispose()
    migrated.dispose()
