"""The job database behaves the same on SQLite and PostgreSQL.

Every test here that takes ``db_url`` runs twice: against an SQLite file and
against a fresh PostgreSQL database.  They check what many workers rely on:
the schema, claims under leases, lease take-back, fencing (exactly-once
results), job control, and riding out lost connections.  The pure decisions
of ``engine.store.reconnect`` are tested without a database at the end.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from engine.cli.control import refusal_message
from engine.domain.errors import DatabaseError, JobControlRefused, UsageError
from engine.domain.models import CopyRecord, JobStatus, Task, TaskResult, TaskStatus
from engine.domain.records import IngestTotals, WorkerState
from engine.run.peers import pid_alive
from engine.store import Repository, tables
from engine.store.reconnect import Reconnect, retryable
from tests.postgres import PostgresServer

LEASE = 2_000_000_000.0  # far in the future: leases never expire unless a test says so
NO_SUCH_PID = 2**22 + 12345  # above Linux's pid_max: never a live process
FAST = Reconnect(give_up_after=1, first_delay=0.01)


# -- helpers ---------------------------------------------------------------------------


def make_job(
    repo: Repository,
    n: int,
    job_id: str = "20260101-000000-aaaaaa",
    *,
    priority: int = 0,
) -> str:
    """A submitted job of ``n`` pending tasks ``src/k0`` … (manifest order)."""
    repo.start_ingest(
        manifest="m.csv",
        dst_bucket="dst",
        dst_prefix="p/",
        spec={},
        source={"kind": "csv", "location": "m.csv"},
        identity=None,
        job_id=job_id,
        priority=priority,
    )
    rows = [
        (job_id, i + 1, "src", f"k{i}", "", 0, None, None, None, "pending")
        + (None,) * 6
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


def ok(
    task: Task, attempts: int = 1, size: int = 10, finished_at: float = 101.0
) -> TaskResult:
    return TaskResult(
        task_id=task.id,
        status=TaskStatus.SUCCEEDED,
        attempts=attempts,
        started_at=100.0,
        finished_at=finished_at,
        http_status=200,
        etag='"etag"',
        bytes=size,
    )


def failed(task: Task, attempts: int = 1, finished_at: float = 102.0) -> TaskResult:
    return TaskResult(
        task_id=task.id,
        status=TaskStatus.FAILED,
        attempts=attempts,
        started_at=100.0,
        finished_at=finished_at,
        error_code="NoSuchKey",
        error_message="CopyObject: The specified key does not exist.",
        http_status=404,
    )


@dataclass(frozen=True)
class Row:
    status: str
    owner: str | None
    lease_until: float | None
    attempts: int


def task_rows(repo: Repository) -> dict[int, Row]:
    """Every task's status, owner, lease and attempts, straight from the table."""
    t = tables.tasks
    with repo.engine.connect() as conn:
        return {
            i: Row(s, o, lease, a)
            for i, s, o, lease, a in conn.execute(
                sa.select(t.c.id, t.c.status, t.c.owner, t.c.lease_until, t.c.attempts)
            )
        }


def set_lease(repo: Repository, task_ids: list[int], lease_until: float) -> None:
    with repo.engine.begin() as conn:
        conn.execute(
            tables.tasks.update()
            .where(tables.tasks.c.id.in_(task_ids))
            .values(lease_until=lease_until)
        )


def set_worker(repo: Repository, worker_id: str, **values: Any) -> None:
    with repo.engine.begin() as conn:
        conn.execute(
            tables.workers.update()
            .where(tables.workers.c.id == worker_id)
            .values(**values)
        )


def counters(repo: Repository, job_id: str) -> dict[str, tuple[int, int]]:
    """``(tasks_done, bytes_done)`` of each worker of the job."""
    return {w.id: (w.tasks_done, w.bytes_done) for w in repo.workers_of(job_id)}


@pytest.fixture
def repo(db_url: str) -> Iterator[Repository]:
    """A migrated, empty job database on each backend in turn."""
    repository = Repository(db_url)
    try:
        yield repository
    finally:
        repository.close()


# -- schema ----------------------------------------------------------------------------


def _bare(default: str | None) -> str | None:
    """A server default as text without SQLite's wrapping: ``('')`` → ``''`` → ````."""
    if default is None:
        return None
    text = default.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
    return text


def _compare_default(
    context: Any,
    inspected_column: Any,
    metadata_column: Any,
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """SQLite reflects ``DEFAULT ''`` as ``('')`` and ``DEFAULT 0`` as ``'0'``:
    compare the bare values there; PostgreSQL uses alembic's own comparison."""
    if context.dialect.name != "sqlite":
        return None
    return _bare(inspected_default) != _bare(rendered_metadata_default)


def test_migrated_schema_equals_the_models(repo: Repository) -> None:
    """The migrations build exactly the SQLAlchemy models, types and server
    defaults included, on both backends."""
    with repo.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "compare_server_default": _compare_default},
        )
        assert context.get_current_revision() is not None
        diff = compare_metadata(context, tables.metadata)
    assert diff == []


# -- claims ----------------------------------------------------------------------------


def test_concurrent_claims_hand_out_every_task_exactly_once(db_url: str) -> None:
    """Claims racing from several threads, each with its own connection pool,
    never return a task twice and together take every task."""
    n_tasks, n_threads = 400, 4
    setup = Repository(db_url)
    job = make_job(setup, n_tasks)
    repos = [Repository(db_url) for _ in range(n_threads)]
    taken: dict[str, list[int]] = {f"w{i}": [] for i in range(n_threads)}
    errors: list[BaseException] = []
    start = threading.Barrier(n_threads)

    def claimer(repo: Repository, owner: str) -> None:
        try:
            start.wait()
            while claimed := repo.claim(job, owner, limit=7, lease_until=LEASE):
                assert [t.id for t in claimed] == sorted(t.id for t in claimed)
                taken[owner].extend(t.id for t in claimed)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=claimer, args=(r, owner))
        for r, owner in zip(repos, taken, strict=True)
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        every = [i for ids in taken.values() for i in ids]
        assert len(every) == len(set(every)) == n_tasks
        rows = task_rows(setup)
        assert set(every) == set(rows)
        assert all(rows[i].owner == owner for owner, ids in taken.items() for i in ids)
        assert setup.counts(job).by_status == {"running": n_tasks}
    finally:
        for r in [setup, *repos]:
            r.close()


def test_claims_take_the_oldest_tasks_first(repo: Repository) -> None:
    """A claim takes the lowest task ids still pending, a released task included."""
    job = make_job(repo, 6)
    first = repo.claim(job, "w1", limit=3, lease_until=LEASE)
    everything = sorted(task_rows(repo))
    assert [t.id for t in first] == everything[:3]
    assert [t.src.key for t in first] == ["k0", "k1", "k2"]
    repo.release("w1", [first[1].id])
    second = repo.claim(job, "w2", limit=2, lease_until=LEASE)
    assert [t.id for t in second] == [first[1].id, everything[3]]


def test_a_claim_sets_owner_and_lease(repo: Repository) -> None:
    """Claimed rows are running under the claimer with the claim's lease; the
    others stay pending with neither."""
    job = make_job(repo, 3)
    claimed = repo.claim(job, "w1", limit=2, lease_until=LEASE + 1.5)
    rows = task_rows(repo)
    for t in claimed:
        assert rows[t.id] == Row("running", "w1", LEASE + 1.5, 0)
    (rest,) = set(rows) - {t.id for t in claimed}
    assert rows[rest] == Row("pending", None, None, 0)
    assert all(t.job_id == job and t.dst_key == "p/" + t.src.key for t in claimed)


# -- leases ----------------------------------------------------------------------------


def test_heartbeat_extends_only_the_owners_running_tasks(repo: Repository) -> None:
    """A heartbeat moves the worker's heartbeat and the leases of the tasks it
    still runs; finished tasks and other workers' tasks are left alone."""
    job = make_job(repo, 4)
    repo.register_worker("w1", job, "h", 1)
    repo.register_worker("w2", job, "h", 2)
    set_worker(repo, "w1", heartbeat_at=10.0)
    set_worker(repo, "w2", heartbeat_at=10.0)
    done, running = repo.claim(job, "w1", limit=2, lease_until=LEASE)
    others = repo.claim(job, "w2", limit=2, lease_until=LEASE)
    repo.record("w1", [ok(done)])

    assert repo.heartbeat("w1", LEASE + 60) == 1

    rows = task_rows(repo)
    assert rows[running.id].lease_until == LEASE + 60
    assert (rows[done.id].status, rows[done.id].lease_until) == ("succeeded", None)
    assert [rows[t.id].lease_until for t in others] == [LEASE, LEASE]
    beats = {w.id: w.heartbeat_at for w in repo.workers_of(job)}
    assert beats["w1"] > time.time() - 60
    assert beats["w2"] == 10.0


def test_heartbeat_notes_the_concurrency_the_worker_allows_now(
    repo: Repository,
) -> None:
    """``status`` shows how far throttling brought each worker down: the
    heartbeat writes it; a heartbeat without it keeps the last one."""
    job = make_job(repo, 1)
    repo.register_worker("w1", job, "h", 1)
    assert repo.workers_of(job)[0].concurrency is None
    repo.heartbeat("w1", LEASE, concurrency=7)
    assert repo.workers_of(job)[0].concurrency == 7
    repo.heartbeat("w1", LEASE)
    assert repo.workers_of(job)[0].concurrency == 7


def test_release_orphans_takes_back_expired_leases_only(repo: Repository) -> None:
    """A lease that ran out puts its task back to pending; a live owner's task
    under a valid lease keeps its owner and lease."""
    job = make_job(repo, 2)
    (expired,) = repo.claim(job, "slow", limit=1, lease_until=LEASE)
    (valid,) = repo.claim(job, "fine", limit=1, lease_until=LEASE)
    now = time.time()
    set_lease(repo, [expired.id], now - 10)

    assert repo.release_orphans(job, now) == 1

    rows = task_rows(repo)
    assert rows[expired.id] == Row("pending", None, None, 0)
    assert rows[valid.id] == Row("running", "fine", LEASE, 0)
    (again,) = repo.claim(job, "other", limit=5, lease_until=LEASE)
    assert again.id == expired.id


def test_release_orphans_takes_back_a_dead_owners_tasks(repo: Repository) -> None:
    """Tasks of a worker known dead go back to pending even under a valid
    lease, and the worker is marked stopped; a live worker keeps its tasks."""
    job = make_job(repo, 3)
    repo.register_worker("dead", job, "h", 1)
    repo.register_worker("alive", job, "h", 2)
    lost = repo.claim(job, "dead", limit=2, lease_until=LEASE)
    (kept,) = repo.claim(job, "alive", limit=2, lease_until=LEASE)
    now = time.time()

    assert repo.release_orphans(job, now, dead=["dead"]) == 2

    rows = task_rows(repo)
    assert [rows[t.id] for t in lost] == [Row("pending", None, None, 0)] * 2
    assert rows[kept.id] == Row("running", "alive", LEASE, 0)
    workers = {w.id: w for w in repo.workers_of(job)}
    assert (workers["dead"].stopped_at, workers["dead"].state) == (
        now,
        WorkerState.STOPPED,
    )
    assert (workers["alive"].stopped_at, workers["alive"].state) == (
        None,
        WorkerState.COPYING,
    )


def test_dead_workers_are_gone_processes_and_silent_hosts(repo: Repository) -> None:
    """Dead: on this host with no such pid, or with the caller's own pid (a
    restarted container), or silent for too long anywhere.  A live process
    here, a fresh heartbeat elsewhere and stopped workers are not."""
    job = make_job(repo, 1)
    here, me = socket.gethostname(), os.getpid()
    now = time.time()
    workers = {
        "no-such-pid": (here, NO_SUCH_PID, now),
        "my-pid": (here, me, now),
        "silent": ("elsewhere", 7, now - 600),
        "live-here": (here, os.getppid(), now),
        "live-elsewhere": ("elsewhere", NO_SUCH_PID, now),
        "stopped": (here, NO_SUCH_PID, now - 600),
    }
    for worker_id, (host, pid, beat) in workers.items():
        repo.register_worker(worker_id, job, host, pid)
        set_worker(repo, worker_id, heartbeat_at=beat)
    repo.stop_worker("stopped")
    assert pid_alive(os.getppid())
    assert not pid_alive(NO_SUCH_PID)

    dead = repo.dead_workers(job, here, me, pid_alive, stale_before=now - 120)

    assert sorted(dead) == ["my-pid", "no-such-pid", "silent"]


# -- fencing and exactly-once ----------------------------------------------------------


def test_a_worker_that_lost_its_lease_cannot_record(repo: Repository) -> None:
    """After a lease expires and another worker takes the task, the old
    owner's result is refused, the new owner's stands, the task is reported
    once, and its attempts add the lost worker's (that copy was tried)."""
    job = make_job(repo, 1)
    repo.register_worker("old", job, "h", 1)
    repo.register_worker("new", job, "h", 2)
    (task,) = repo.claim(job, "old", limit=1, lease_until=LEASE)
    set_lease(repo, [task.id], 1000.0)
    assert repo.release_orphans(job, time.time()) == 1
    (again,) = repo.claim(job, "new", limit=1, lease_until=LEASE)
    assert again.id == task.id

    assert repo.record("new", [ok(again, attempts=1, size=7, finished_at=201.0)]) == 1
    assert repo.record("old", [failed(task, attempts=2, finished_at=202.0)]) == 0

    (row,) = list(repo.iter_results(job))
    assert (row.id, row.status, row.bytes, row.error_code) == (
        task.id,
        TaskStatus.SUCCEEDED,
        7,
        None,
    )
    assert row.finished_at == 201.0
    assert row.attempts == 1 + 2
    assert task_rows(repo)[task.id].owner is None
    assert counters(repo, job) == {"new": (1, 7), "old": (0, 0)}


def test_a_moves_copy_is_recorded_only_by_its_owner_and_claimed_back(
    repo: Repository,
) -> None:
    """A move records its copy before deleting the source: only while the
    worker holds the task (the delete is skipped otherwise); a task taken
    back after a crash comes with the recorded copy (straight to the
    delete), and the final result records the delete."""
    job = make_job(repo, 2)
    repo.register_worker("old", job, "h", 1)
    repo.register_worker("new", job, "h", 2)
    a, b = repo.claim(job, "old", limit=2, lease_until=LEASE)
    record = CopyRecord(
        etag='"e"',
        bytes=5,
        src_etag='"s"',
        src_version_id="v1",
        dst_version_id="d1",
        http_status=200,
        method="copy",
    )
    assert repo.copied("old", [(a.id, record)]) == {a.id}
    assert repo.copied("new", [(b.id, record)]) == set()  # not its task
    set_lease(repo, [a.id, b.id], 1000.0)  # "old" crashed
    assert repo.release_orphans(job, time.time()) == 2

    again = {t.id: t for t in repo.claim(job, "new", limit=2, lease_until=LEASE)}

    assert again[a.id].copied == record
    assert again[b.id].copied is None
    done = TaskResult(
        task_id=a.id,
        status=TaskStatus.SUCCEEDED,
        attempts=1,
        started_at=100.0,
        finished_at=101.0,
        etag='"e"',
        bytes=5,
        delete_state="deleted",
        deleted_at=101.0,
    )
    assert repo.record("new", [done]) == 1
    row = next(r for r in repo.iter_results(job) if r.id == a.id)
    assert (row.delete_state, row.deleted_at, row.etag) == ("deleted", 101.0, '"e"')


def test_a_late_result_before_the_new_owner_records_is_refused(
    repo: Repository,
) -> None:
    """The lost owner's result is refused while the new owner still runs the
    task, and the new owner's result is then accepted with both attempts."""
    job = make_job(repo, 1)
    (task,) = repo.claim(job, "old", limit=1, lease_until=LEASE)
    repo.release_orphans(job, time.time(), dead=["old"])
    (again,) = repo.claim(job, "new", limit=1, lease_until=LEASE)

    assert repo.record("old", [ok(task, attempts=3, finished_at=150.0)]) == 0
    assert task_rows(repo)[task.id] == Row("running", "new", LEASE, 3)
    assert repo.record("new", [ok(again, attempts=1, finished_at=160.0)]) == 1

    (row,) = list(repo.iter_results(job))
    assert (row.status, row.attempts, row.finished_at) == (
        TaskStatus.SUCCEEDED,
        4,
        160.0,
    )


def test_a_lost_result_is_refused_whatever_its_timestamps(repo: Repository) -> None:
    """Fencing must not depend on the result's timestamps: a lost worker's
    result with the very same finished_at as the new owner's is still lost."""
    job = make_job(repo, 1)
    repo.register_worker("old", job, "h", 1)
    repo.register_worker("new", job, "h", 2)
    (task,) = repo.claim(job, "old", limit=1, lease_until=LEASE)
    repo.release_orphans(job, time.time(), dead=["old"])
    (again,) = repo.claim(job, "new", limit=1, lease_until=LEASE)
    assert repo.record("new", [ok(again, attempts=1, size=7)]) == 1

    assert repo.record("old", [ok(task, attempts=2, size=10)]) == 0

    (row,) = list(repo.iter_results(job))
    assert (row.attempts, counters(repo, job)) == (3, {"new": (1, 7), "old": (0, 0)})


def test_recording_twice_keeps_the_first_result(repo: Repository) -> None:
    """A second result for a task already final is refused: the first result
    stands and the task counts once for its worker."""
    job = make_job(repo, 2)
    repo.register_worker("w1", job, "h", 1)
    t_ok, t_bad = repo.claim(job, "w1", limit=2, lease_until=LEASE)
    assert repo.record("w1", [ok(t_ok, size=10), failed(t_bad)]) == 2

    assert repo.record("w1", [failed(t_ok, finished_at=300.0)]) == 0
    assert repo.record("w1", [ok(t_bad, size=5, finished_at=301.0)]) == 0

    rows = {r.id: r for r in repo.iter_results(job)}
    assert (rows[t_ok.id].status, rows[t_ok.id].bytes, rows[t_ok.id].finished_at) == (
        TaskStatus.SUCCEEDED,
        10,
        101.0,
    )
    assert (rows[t_bad.id].status, rows[t_bad.id].error_code) == (
        TaskStatus.FAILED,
        "NoSuchKey",
    )
    assert counters(repo, job) == {"w1": (2, 10)}


def test_recording_the_same_result_twice_counts_its_bytes_once(
    repo: Repository,
) -> None:
    """The worker counters agree with the results: a result recorded again
    (refused) adds neither a task nor bytes."""
    job = make_job(repo, 1)
    repo.register_worker("w1", job, "h", 1)
    (task,) = repo.claim(job, "w1", limit=1, lease_until=LEASE)
    assert repo.record("w1", [ok(task, size=10)]) == 1

    assert repo.record("w1", [ok(task, size=10)]) == 0

    assert counters(repo, job) == {"w1": (1, 10)}


# -- job control -----------------------------------------------------------------------


def test_control_transitions(repo: Repository) -> None:
    """pause from submitted or running, resume from paused, cancel from
    running or paused: each returns the status before and after."""
    a = make_job(repo, 1, job_id="20260101-000000-aaaaaa")
    b = make_job(repo, 1, job_id="20260101-000000-bbbbbb")

    assert repo.control_job(a, "pause") == (JobStatus.SUBMITTED, JobStatus.PAUSED)
    assert repo.job_status(a) is JobStatus.PAUSED
    assert repo.control_job(a, "pause") == (JobStatus.PAUSED, JobStatus.PAUSED)
    assert repo.control_job(a, "resume") == (JobStatus.PAUSED, JobStatus.RUNNING)
    assert repo.job_status(a) is JobStatus.RUNNING
    assert repo.control_job(a, "resume") == (JobStatus.RUNNING, JobStatus.RUNNING)
    assert repo.control_job(a, "pause") == (JobStatus.RUNNING, JobStatus.PAUSED)
    assert repo.control_job(a, "cancel") == (JobStatus.PAUSED, JobStatus.CANCELLED)
    assert repo.job_status(a) is JobStatus.CANCELLED

    repo.set_job_status(b, JobStatus.RUNNING)
    assert repo.control_job(b, "cancel") == (JobStatus.RUNNING, JobStatus.CANCELLED)
    assert repo.job_status(b) is JobStatus.CANCELLED


def test_control_refuses_what_the_status_does_not_allow(repo: Repository) -> None:
    """Pausing a complete job or resuming a cancelled one raises UsageError
    naming the job, its status and, where it helps, what to do instead."""
    done = make_job(repo, 1, job_id="20260101-000000-aaaaaa")
    gone = make_job(repo, 1, job_id="20260101-000000-bbbbbb")
    repo.set_job_status(done, JobStatus.COMPLETE)
    repo.control_job(gone, "cancel")

    with pytest.raises(UsageError, match=f"cannot pause job {done}: it is complete"):
        repo.control_job(done, "pause")
    with pytest.raises(JobControlRefused) as info:
        repo.control_job(gone, "resume")
    assert (info.value.job_id, info.value.action, info.value.status) == (
        gone,
        "resume",
        "cancelled",
    )
    message = refusal_message(info.value)  # the CLI's wording of it
    assert f"cannot resume job {gone}: it is cancelled" in message
    assert "a cancelled job stays cancelled" in message
    assert "bulkcopy retry" in message
    assert (repo.job_status(done), repo.job_status(gone)) == (
        JobStatus.COMPLETE,
        JobStatus.CANCELLED,
    )


def test_runnable_jobs_by_priority_then_age(repo: Repository) -> None:
    """Submitted and running jobs, highest priority first, then oldest;
    paused, cancelled and complete jobs are left out."""
    made = {
        "old": (0, 100.0),
        "urgent": (5, 400.0),
        "young": (0, 300.0),
        "middle-running": (0, 200.0),
        "urgent-older": (5, 150.0),
        "paused": (9, 50.0),
        "cancelled": (9, 60.0),
        "complete": (9, 70.0),
    }
    ids = {}
    for i, (name, (priority, created)) in enumerate(made.items()):
        ids[name] = make_job(
            repo, 1, job_id=f"20260101-000000-{i:06d}", priority=priority
        )
        with repo.engine.begin() as conn:
            conn.execute(
                tables.jobs.update()
                .where(tables.jobs.c.id == ids[name])
                .values(created_at=created)
            )
    repo.set_job_status(ids["middle-running"], JobStatus.RUNNING)
    repo.control_job(ids["paused"], "pause")
    repo.control_job(ids["cancelled"], "cancel")
    repo.set_job_status(ids["complete"], JobStatus.COMPLETE)

    order = [j.id for j in repo.runnable_jobs()]

    names = {v: k for k, v in ids.items()}
    assert [names[i] for i in order] == [
        "urgent-older",
        "urgent",
        "old",
        "middle-running",
        "young",
    ]
    assert [j.id for j in repo.runnable_jobs(limit=2)] == order[:2]


def test_worker_counters_grow_with_each_record(repo: Repository) -> None:
    """tasks_done counts accepted results, bytes_done the bytes of succeeded
    ones, in the same commit as the results; workers_of lists newest first."""
    job = make_job(repo, 5)
    repo.register_worker("first", job, "h", 1)
    repo.register_worker("second", job, "h", 2)
    set_worker(repo, "first", started_at=10.0)
    set_worker(repo, "second", started_at=20.0)
    a = repo.claim(job, "first", limit=3, lease_until=LEASE)
    b = repo.claim(job, "second", limit=2, lease_until=LEASE)

    assert repo.record("first", [ok(a[0], size=10), ok(a[1], size=32)]) == 2
    assert counters(repo, job) == {"first": (2, 42), "second": (0, 0)}
    assert repo.record("first", [failed(a[2])]) == 1
    assert repo.record("second", [ok(b[0], size=1), ok(b[1], size=2)]) == 2

    workers = repo.workers_of(job)
    assert [w.id for w in workers] == ["second", "first"]
    assert counters(repo, job) == {"first": (3, 42), "second": (2, 3)}
    assert {w.state for w in workers} == {WorkerState.COPYING}


# -- lost connections ------------------------------------------------------------------


@dataclass
class CommitFault:
    """Makes the repository's COMMITs fail as if the connection dropped:
    ``after``: the COMMIT reached the database and then the answer was lost;
    otherwise it never got there.  ``times`` failures, then commits work."""

    repo: Repository
    after: bool
    times: int = 1
    error: Callable[[], BaseException] = field(
        default=lambda: sa.exc.OperationalError(
            "COMMIT",
            None,
            psycopg.OperationalError("server closed the connection unexpectedly"),
            connection_invalidated=True,
        )
    )
    commits: int = 0  # COMMITs that went through
    failures: int = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        dialect = self.repo.engine.dialect
        real = dialect.do_commit

        def do_commit(dbapi_connection: Any) -> None:
            if self.failures < self.times:
                self.failures += 1
                if self.after:
                    real(dbapi_connection)
                    self.commits += 1
                else:
                    dbapi_connection.rollback()
                raise self.error()
            real(dbapi_connection)
            self.commits += 1

        # the dialect is the engine's own: no other repository sees this
        monkeypatch.setattr(dialect, "do_commit", do_commit)


@pytest.fixture
def heard() -> list[tuple[str, BaseException, float]]:
    return []


@pytest.fixture
def frail(
    db_url: str, heard: list[tuple[str, BaseException, float]]
) -> Iterator[Repository]:
    """A repository that retries quickly and reports each retry in ``heard``."""
    repository = Repository(
        db_url,
        reconnect=FAST,
        on_reconnect=lambda what, exc, delay: heard.append((what, exc, delay)),
    )
    try:
        yield repository
    finally:
        repository.close()


@pytest.mark.parametrize("after", [True, False], ids=["after-commit", "before-commit"])
def test_a_claim_survives_a_lost_commit(
    frail: Repository,
    heard: list[tuple[str, BaseException, float]],
    monkeypatch: pytest.MonkeyPatch,
    after: bool,
) -> None:
    """Whether or not the COMMIT of a claim went through before the connection
    dropped, the claim returns its tasks once: none is left running under an
    owner that does not know it holds it, none is taken twice."""
    job = make_job(frail, 6)
    fault = CommitFault(frail, after=after)
    fault.install(monkeypatch)

    claimed = frail.claim(job, "w1", limit=4, lease_until=LEASE)

    assert fault.failures == 1
    assert fault.commits == 1  # the first try's (after) or the retry's (before)
    assert [t.src.key for t in claimed] == ["k0", "k1", "k2", "k3"]
    assert [w for w, _, _ in heard] == ["claim tasks in"]
    assert heard[0][2] == FAST.first_delay
    rows = task_rows(frail)
    running = {i for i, r in rows.items() if r.status == "running"}
    assert running == {t.id for t in claimed}
    assert {rows[i].owner for i in running} == {"w1"}
    rest = frail.claim(job, "w1", limit=10, lease_until=LEASE + 1)
    assert [t.src.key for t in rest] == ["k4", "k5"]


@pytest.mark.parametrize("after", [True, False], ids=["after-commit", "before-commit"])
def test_a_record_survives_a_lost_commit(
    frail: Repository,
    heard: list[tuple[str, BaseException, float]],
    monkeypatch: pytest.MonkeyPatch,
    after: bool,
) -> None:
    """Results whose COMMIT may or may not have gone through count as
    accepted exactly once: attempts and worker counters are not doubled."""
    job = make_job(frail, 3)
    frail.register_worker("w1", job, "h", 1)
    claimed = frail.claim(job, "w1", limit=3, lease_until=LEASE)
    batch = [ok(claimed[0], size=10), ok(claimed[1], size=32), failed(claimed[2], 2)]
    fault = CommitFault(frail, after=after)
    fault.install(monkeypatch)

    assert frail.record("w1", batch) == 3

    assert fault.failures == 1
    assert [w for w, _, _ in heard] == ["record results in"]
    rows = {r.id: r for r in frail.iter_results(job)}
    assert [(rows[t.id].status, rows[t.id].attempts) for t in claimed] == [
        (TaskStatus.SUCCEEDED, 1),
        (TaskStatus.SUCCEEDED, 1),
        (TaskStatus.FAILED, 2),
    ]
    assert counters(frail, job) == {"w1": (3, 42)}
    assert frail.counts(job).bytes_done == 42


def test_a_record_after_a_lost_commit_writes_only_what_is_missing(
    frail: Repository,
    heard: list[tuple[str, BaseException, float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch that lost its COMMIT's answer, part of which another worker
    had taken over meanwhile, is resolved by re-reading: what went through
    counts once, the rest is written again (and fenced)."""
    job = make_job(frail, 2)
    frail.register_worker("w1", job, "h", 1)
    mine, theirs = frail.claim(job, "w1", limit=2, lease_until=LEASE)
    # w1 loses ``theirs``: its lease runs out and another worker takes it
    set_lease(frail, [theirs.id], 1000.0)
    frail.release_orphans(job, time.time())
    (taken,) = frail.claim(job, "w2", limit=1, lease_until=LEASE)
    assert taken.id == theirs.id
    fault = CommitFault(frail, after=True)
    fault.install(monkeypatch)

    accepted = frail.record(
        "w1", [ok(mine, size=10), ok(theirs, attempts=2, finished_at=110.0)]
    )

    assert accepted == 1
    assert [w for w, _, _ in heard] == ["record results in"]
    rows = task_rows(frail)
    assert rows[mine.id] == Row("succeeded", None, None, 1)
    assert rows[theirs.id] == Row("running", "w2", LEASE, 2)
    assert counters(frail, job) == {"w1": (1, 10)}


def test_a_plain_call_is_retried_after_a_lost_connection(
    frail: Repository,
    heard: list[tuple[str, BaseException, float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calls that are safe to repeat (here: pause, heartbeat) run again on a
    new connection, as often as the connection is lost, and succeed."""
    job = make_job(frail, 2)
    frail.register_worker("w1", job, "h", 1)
    frail.claim(job, "w1", limit=2, lease_until=LEASE)
    fault = CommitFault(frail, after=False, times=2)
    fault.install(monkeypatch)

    # lost twice in a row: two retries, the second after a longer pause
    assert frail.control_job(job, "pause") == (JobStatus.SUBMITTED, JobStatus.PAUSED)
    fault.failures, fault.times = 0, 1
    assert frail.heartbeat("w1", LEASE + 5) == 2

    assert [(w, d) for w, _, d in heard] == [
        ("control_job", 0.01),
        ("control_job", 0.02),
        ("heartbeat", 0.01),
    ]
    assert frail.job_status(job) is JobStatus.PAUSED
    assert {r.lease_until for r in task_rows(frail).values()} == {LEASE + 5}


def test_other_database_errors_are_not_retried(
    frail: Repository,
    heard: list[tuple[str, BaseException, float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error that is not a lost connection (a constraint, a bug) surfaces
    at once: it is never retried."""
    job = make_job(frail, 2)
    # a real one: a second job with the same id
    with pytest.raises(DatabaseError, match="cannot create job in") as info:
        make_job(frail, 1, job_id=job)
    assert isinstance(info.value.__cause__, sa.exc.IntegrityError)
    # and one at COMMIT
    fault = CommitFault(
        frail,
        after=False,
        times=5,
        error=lambda: sa.exc.IntegrityError(
            "COMMIT", None, psycopg.errors.UniqueViolation("duplicate key value")
        ),
    )
    fault.install(monkeypatch)
    with pytest.raises(sa.exc.IntegrityError):
        frail.claim(job, "w1", limit=2, lease_until=LEASE)

    assert fault.failures == 1
    assert heard == []
    assert frail.counts(job).by_status == {"pending": 2}


def test_giving_up_names_the_database(
    frail: Repository,
    heard: list[tuple[str, BaseException, float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection that stays lost past ``give_up_after`` ends in a
    DatabaseError naming the database and what was being done; the job table
    is as it was."""
    job = make_job(frail, 2)
    frail.reconnect = Reconnect(give_up_after=0.2, first_delay=0.01)
    fault = CommitFault(frail, after=False, times=1000)
    fault.install(monkeypatch)

    t0 = time.monotonic()
    with pytest.raises(DatabaseError) as info:
        frail.claim(job, "w1", limit=2, lease_until=LEASE)
    elapsed = time.monotonic() - t0

    delays = list(frail.reconnect.delays())
    assert [d for _, _, d in heard] == delays
    assert fault.failures == len(delays) + 1
    assert elapsed < 2
    message = str(info.value)
    assert frail.url in message
    database = frail.engine.url.database
    assert database
    assert os.path.basename(database) in message
    assert "lost the connection to" in message
    assert "claim tasks in" in message
    assert "server closed the connection unexpectedly" in message
    assert isinstance(info.value.__cause__, sa.exc.OperationalError)
    monkeypatch.undo()
    assert frail.counts(job).by_status == {"pending": 2}


def test_postgres_connections_killed_between_calls(
    postgres: PostgresServer, pg_url: str
) -> None:
    """A server restart or an admin's pg_terminate_backend kills every pooled
    connection: the next calls still work (pool_pre_ping, then retry)."""
    heard: list[str] = []
    repo = Repository(
        pg_url, reconnect=FAST, on_reconnect=lambda what, *_: heard.append(what)
    )
    try:
        job = make_job(repo, 6)
        repo.register_worker("w1", job, "h", 1)
        first = repo.claim(job, "w1", limit=3, lease_until=LEASE)
        assert postgres.terminate_connections(pg_url) >= 1

        assert repo.record("w1", [ok(t) for t in first]) == 3
        postgres.terminate_connections(pg_url)
        second = repo.claim(job, "w1", limit=10, lease_until=LEASE)
        postgres.terminate_connections(pg_url)
        assert repo.record("w1", [ok(t, size=1) for t in second]) == 3
        postgres.terminate_connections(pg_url)

        assert repo.counts(job).by_status == {"succeeded": 6}
        assert counters(repo, job) == {"w1": (6, 33)}
        assert all(r.attempts == 1 for r in repo.iter_results(job))
    finally:
        repo.close()


def test_postgres_connection_killed_during_a_claim(
    postgres: PostgresServer, pg_url: str
) -> None:
    """The connection dies under the claim's UPDATE (a real
    pg_terminate_backend of that very backend): the claim is retried on a new
    connection and hands out its tasks once."""
    heard: list[tuple[str, BaseException]] = []
    repo = Repository(
        pg_url,
        reconnect=FAST,
        on_reconnect=lambda what, exc, _: heard.append((what, exc)),
    )
    killed: list[int] = []

    def kill_own_backend(conn: sa.Connection, _c: Any, statement: str, *_: Any) -> None:
        if not killed and statement.lstrip().upper().startswith("UPDATE TASKS"):
            pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
            killed.append(pid)
            postgres.execute(f"SELECT pg_terminate_backend({int(pid)}, 5000)")

    try:
        job = make_job(repo, 5)
        sa.event.listen(repo.engine, "before_cursor_execute", kill_own_backend)
        claimed = repo.claim(job, "w1", limit=3, lease_until=LEASE)
        sa.event.remove(repo.engine, "before_cursor_execute", kill_own_backend)

        assert len(killed) == 1
        assert [w for w, _ in heard] == ["claim tasks in"]
        assert retryable(heard[0][1])
        assert [t.src.key for t in claimed] == ["k0", "k1", "k2"]
        assert repo.counts(job).by_status == {"running": 3, "pending": 2}
    finally:
        repo.close()


# -- reconnect decisions (no database) -------------------------------------------------


def wrapped(orig: BaseException) -> sa.exc.DBAPIError:
    """``orig`` as SQLAlchemy hands it over: wrapped in the matching class."""
    err = sa.exc.DBAPIError.instance("SELECT 1", None, orig, psycopg.Error)
    assert isinstance(err, sa.exc.DBAPIError)
    return err


class PgCodeError(Exception):
    """A psycopg2-like error: its SQLSTATE in ``pgcode``."""

    def __init__(self, message: str, pgcode: str | None) -> None:
        super().__init__(message)
        self.pgcode = pgcode


@pytest.mark.parametrize(
    "orig",
    [
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.ConnectionFailure("connection failure"),
        psycopg.errors.SqlclientUnableToEstablishSqlconnection("no connection"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.OperationalError("SSL SYSCALL error: EOF detected"),
        psycopg.OperationalError("consuming input failed: Connection RESET by peer"),
        psycopg.OperationalError("the database system is shutting down"),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(e)[:24],
)
def test_lost_connections_and_rolled_back_transactions_are_retryable(
    orig: BaseException,
) -> None:
    """SQLSTATE 08xxx (connection exception), 40001 / 40P01 (rolled back by
    the server), and a connection-lost message are worth another try."""
    assert retryable(wrapped(orig))


@pytest.mark.parametrize("code", ["08000", "08003", "08006", "40001", "40P01"])
def test_retryable_reads_psycopg2_pgcode(code: str) -> None:
    """The SQLSTATE is read from ``pgcode`` too, whatever the error class."""
    err = sa.exc.DatabaseError("SELECT 1", None, PgCodeError("boom", code))
    assert retryable(err)


def test_an_invalidated_connection_is_retryable_whatever_the_message() -> None:
    err = sa.exc.DBAPIError(
        "COMMIT", None, Exception("??"), connection_invalidated=True
    )
    assert retryable(err)
    assert not retryable(sa.exc.DBAPIError("COMMIT", None, Exception("??")))


@pytest.mark.parametrize(
    "err",
    [
        wrapped(psycopg.errors.UniqueViolation("duplicate key value")),
        wrapped(psycopg.errors.SyntaxError("syntax error at or near")),
        wrapped(psycopg.errors.QueryCanceled("canceling statement")),
        wrapped(psycopg.OperationalError("database is locked")),
        # a marker outside an OperationalError is not a lost connection
        sa.exc.ProgrammingError(
            "SELECT 1",
            None,
            PgCodeError("connection refused", None),
        ),
        sa.exc.IntegrityError("INSERT", None, PgCodeError("dup", "23505")),
    ],
    ids=["unique", "syntax", "cancel", "locked", "marker-not-operational", "23505"],
)
def test_other_database_errors_are_not_retryable(err: sa.exc.DBAPIError) -> None:
    assert not retryable(err)


@pytest.mark.parametrize(
    "err",
    [
        ConnectionResetError("connection reset"),
        ValueError("server closed the connection"),
        sa.exc.TimeoutError("QueuePool limit reached"),
        sa.exc.NoResultFound("no row"),
        psycopg.OperationalError("server closed the connection"),  # not wrapped
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_that_are_not_dbapi_errors_are_not_retryable(
    err: BaseException,
) -> None:
    """Only errors SQLAlchemy raised for the driver are judged."""
    assert not retryable(err)


def test_delays_double_up_to_the_cap_within_the_budget() -> None:
    """Pauses double from ``first_delay`` up to ``max_delay``; they stop
    before their sum would pass ``give_up_after``."""
    assert list(Reconnect(give_up_after=1, first_delay=0.2).delays()) == [0.2, 0.4]
    delays = list(Reconnect().delays())
    assert delays[:6] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0]
    assert set(delays[5:]) == {5.0}
    assert sum(delays) <= 120 < sum(delays) + 5.0
    capped = list(Reconnect(give_up_after=10, first_delay=1, max_delay=1.5).delays())
    assert capped == [1, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]


def test_delays_of_a_budget_too_small_are_none() -> None:
    assert list(Reconnect(give_up_after=0).delays()) == []
    assert list(Reconnect(give_up_after=0.1, first_delay=0.2).delays()) == []
    assert list(Reconnect(give_up_after=0.2, first_delay=0.2).delays()) == [0.2]


def test_each_call_gets_a_fresh_set_of_delays() -> None:
    policy = Reconnect(give_up_after=1, first_delay=0.01)
    first = policy.delays()
    next(first)
    next(first)
    assert next(policy.delays()) == 0.01
    assert list(first) == [0.04, 0.08, 0.16, 0.32]
