"""Many workers on one job behave the same on SQLite and PostgreSQL.

In-process :class:`Worker` s, each with its own repository (its own
connection pool), copy one job against fakes3 (a real HTTP S3 endpoint in a
thread, counting copies per key) on each backend in turn: every object is
copied exactly once, pause stops every worker and resume finishes the job,
cancel sends them home, and a worker that lost its lease cannot record.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.fakes3 import FakeS3
from engine.domain.failure_threshold import FailurePolicy
from engine.domain.models import Destination, JobStatus, TaskResult, TaskStatus
from engine.domain.records import JobRecord, WorkerState
from engine.domain.spec import ClientSettings, CopyOptions, JobSpec
from engine.run.settings import RunSettings
from engine.run.worker import Worker
from engine.store import Repository
from engine.usecases.submit import submit
from tests.helpers import FAST_RETRY, write_manifest

pytestmark = pytest.mark.integration

SIZE = 1024
LEASE = 2_000_000_000.0


def fake_client(fake: FakeS3) -> ClientSettings:
    return ClientSettings(
        endpoint_url=fake.url,
        addressing_style="path",
        sdk_max_attempts=1,
        max_pool_connections=16,
    )


@pytest.fixture
def fake() -> Iterator[FakeS3]:
    """fakes3 with 20 ms per request (pauses are observable), counting copies."""
    with FakeS3(latency_ms=20, count_copies=True, log=io.StringIO()) as server:
        server.create_bucket("src")
        server.create_bucket("dst")
        yield server


def submit_objects(db_url: str, fake: FakeS3, tmp_path: Path, n: int) -> JobRecord:
    """A job copying ``src/obj/000000`` … (``n`` objects) to ``dst``."""
    fake.seed_prefix("src", "obj/", n, SIZE)
    manifest = write_manifest(
        tmp_path / "m.csv", [("src", f"obj/{i:06d}", None) for i in range(n)]
    )
    repo = Repository(db_url)
    try:
        spec = JobSpec(client=fake_client(fake), copy=CopyOptions())
        return submit(repo, str(manifest), Destination("dst"), spec)
    finally:
        repo.close()


class Crew:
    """Workers on one job, each with its own repository, plus one repository
    for the test to watch and steer the job with."""

    def __init__(self, db_url: str, fake: FakeS3, job: JobRecord) -> None:
        self.db_url = db_url
        self.fake = fake
        self.job = job
        self.repo = Repository(db_url)
        self._repos: list[Repository] = []

    def worker(self, concurrency: int = 4, **overrides: Any) -> Worker:
        repo = Repository(self.db_url)
        self._repos.append(repo)
        settings = RunSettings(
            concurrency=concurrency,
            claim_batch=8,
            retry=FAST_RETRY,
            control_interval=0.1,
            heartbeat_interval=0.2,
            idle_poll=0.05,
            flush_interval=0.05,
            **overrides,
        )
        return Worker(repo, repo.get_job(self.job.id), settings, fake_client(self.fake))

    def close(self) -> None:
        for r in [self.repo, *self._repos]:
            r.close()

    # watching -------------------------------------------------------------

    def by_status(self) -> dict[str, int]:
        return self.repo.counts(self.job.id).by_status

    def requests(self) -> dict[str, int]:
        """S3 requests fakes3 answered so far, by operation."""
        requests: dict[str, int] = self.fake.snapshot()["requests"]
        return requests

    def copy_requests(self) -> int:
        return self.requests().get("CopyObject", 0)

    async def until(
        self, check: Callable[[], bool], what: str, within: float = 10.0
    ) -> None:
        """Poll ``check`` (a blocking database read) until it holds."""
        deadline = time.monotonic() + within
        while not await asyncio.to_thread(check):
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} after {within}s: {self.by_status()}")
            await asyncio.sleep(0.02)


@pytest.fixture
def crew_of(
    db_url: str, fake: FakeS3, tmp_path: Path
) -> Iterator[Callable[[int], Crew]]:
    crews: list[Crew] = []

    def make(n_objects: int) -> Crew:
        crew = Crew(db_url, fake, submit_objects(db_url, fake, tmp_path, n_objects))
        crews.append(crew)
        return crew

    yield make
    for crew in crews:
        crew.close()


def run_all(
    workers: list[Worker], steer: Callable[[], Awaitable[None]] | None = None
) -> float:
    """Run the workers (and ``steer``) concurrently; the workers' run time."""

    async def main() -> float:
        t0 = time.monotonic()
        runs = [asyncio.create_task(w.run()) for w in workers]
        if steer is not None:
            await steer()
        await asyncio.wait_for(asyncio.gather(*runs), 30)
        return time.monotonic() - t0

    return asyncio.run(main())


def assert_copied_once(crew: Crew, n: int) -> None:
    """Every object copied exactly once, every task succeeded at first try."""
    copies = crew.fake.snapshot()["copies"]
    assert copies["repeated"] == {}
    assert copies["objects"] == n
    assert crew.copy_requests() == n
    rows = list(crew.repo.iter_results(crew.job.id))
    assert len(rows) == len({r.id for r in rows}) == n
    assert {(r.status, r.attempts) for r in rows} == {(TaskStatus.SUCCEEDED, 1)}
    assert crew.repo.job_status(crew.job.id) is JobStatus.COMPLETE


def test_three_workers_copy_every_object_exactly_once(
    crew_of: Callable[[int], Crew],
) -> None:
    """Three workers on one job of 300 objects: each object is copied once,
    each task succeeds at its first attempt, and the workers' counters add up
    to the job."""
    crew = crew_of(300)
    workers = [crew.worker(concurrency=8) for _ in range(3)]

    run_all(workers)

    assert_copied_once(crew, 300)
    recorded = crew.repo.workers_of(crew.job.id)
    assert {w.id for w in recorded} == {w.worker_id for w in workers}
    assert sum(w.tasks_done for w in recorded) == 300
    assert sum(w.bytes_done for w in recorded) == 300 * SIZE
    assert sum(1 for w in recorded if w.tasks_done) >= 2, recorded
    assert {(w.state, w.stopped_at is not None) for w in recorded} == {
        (WorkerState.STOPPED, True)
    }
    assert crew.repo.counts(crew.job.id).bytes_done == 300 * SIZE


def test_pause_stops_every_worker_and_resume_finishes_the_job(
    crew_of: Callable[[int], Crew],
) -> None:
    """Paused while two workers copy: within a few seconds no task is
    running, both workers say ``paused`` and for 1.5 s no CopyObject (nor any
    S3 request) arrives; resumed: the job completes with every object copied
    once."""
    crew = crew_of(300)
    workers = [crew.worker(), crew.worker()]
    job = crew.job.id
    seen: dict[str, Any] = {}

    async def steer() -> None:
        await crew.until(lambda: crew.by_status().get("succeeded", 0) >= 40, "started")
        await asyncio.to_thread(crew.repo.control_job, job, "pause")
        await crew.until(lambda: "running" not in crew.by_status(), "drained", 5)
        await crew.until(
            lambda: (
                {w.state for w in crew.repo.workers_of(job)} == {WorkerState.PAUSED}
            ),
            "paused",
            5,
        )
        before = crew.requests()
        await asyncio.sleep(1.5)
        seen["requests"] = (before, crew.requests())
        seen["status"] = await asyncio.to_thread(crew.by_status)
        seen["paused"] = [w.paused for w in workers]
        await asyncio.to_thread(crew.repo.control_job, job, "resume")

    run_all(workers, steer)

    before, after = seen["requests"]
    assert after == before  # not a CopyObject, nor any other S3 request
    assert before["CopyObject"] >= 40
    assert seen["paused"] == [True, True]
    assert "running" not in seen["status"]
    assert 40 <= seen["status"].get("succeeded", 0) < 300
    assert seen["status"].get("pending", 0) == 300 - seen["status"]["succeeded"]
    assert_copied_once(crew, 300)
    assert [w.paused for w in workers] == [False, False]


def test_cancel_sends_every_worker_home(crew_of: Callable[[int], Crew]) -> None:
    """Cancelled while two workers copy: they finish what is in flight and
    return; the job is cancelled, nothing is left running, what was never
    started is still pending, and what was copied is recorded once."""
    crew = crew_of(300)
    workers = [crew.worker(), crew.worker()]
    job = crew.job.id
    cancelled_at: list[float] = []

    async def steer() -> None:
        await crew.until(lambda: crew.by_status().get("succeeded", 0) >= 40, "started")
        await asyncio.to_thread(crew.repo.control_job, job, "cancel")
        cancelled_at.append(time.monotonic())

    async def main() -> float:
        runs = [asyncio.create_task(w.run()) for w in workers]
        await steer()
        await asyncio.wait_for(asyncio.gather(*runs), 30)
        return time.monotonic() - cancelled_at[0]

    took = asyncio.run(main())

    assert took < 5, f"workers took {took:.1f}s to leave"
    assert all(w.cancelled for w in workers)
    assert crew.repo.job_status(job) is JobStatus.CANCELLED
    status = crew.by_status()
    assert set(status) == {"succeeded", "pending"}, status
    rows = list(crew.repo.iter_results(job))
    done = [r for r in rows if r.status is TaskStatus.SUCCEEDED]
    left = [r for r in rows if r.status is TaskStatus.PENDING]
    assert len(done) + len(left) == 300
    assert {r.attempts for r in done} == {1}
    assert {(r.attempts, r.started_at, r.finished_at) for r in left} == {
        (0, None, None)
    }
    copies = crew.fake.snapshot()["copies"]
    assert copies["repeated"] == {}
    assert copies["objects"] == crew.copy_requests() == len(done)
    recorded = crew.repo.workers_of(job)
    assert {w.state for w in recorded} == {WorkerState.STOPPED}
    assert sum(w.tasks_done for w in recorded) == len(done)


def test_a_worker_that_lost_its_lease_cannot_record(
    crew_of: Callable[[int], Crew],
) -> None:
    """A ghost claimed tasks and went quiet past its lease: a worker takes
    them back and finishes the job; the ghost's late results are refused,
    each task is reported once, and its attempts include the ghost's."""
    crew = crew_of(60)
    job = crew.job.id
    repo = crew.repo
    repo.register_worker("ghost", job, "lost-host", 1)
    taken = repo.claim(job, "ghost", limit=3, lease_until=LEASE)
    expired = time.time() - 5
    repo.heartbeat("ghost", expired)  # its heartbeat is fresh: only the lease ran out

    run_all([crew.worker()])

    assert_copied_once(crew, 60)
    now = time.time()
    late = [
        TaskResult(
            task_id=t.id,
            status=TaskStatus.FAILED,
            attempts=2,
            started_at=now - 1,
            finished_at=now,
            error_code="SlowDown",
            error_message="too late",
        )
        for t in taken
    ]
    assert repo.record("ghost", late) == 0
    rows = {r.id: r for r in repo.iter_results(job)}
    assert len(rows) == 60
    for t in taken:
        assert (rows[t.id].status, rows[t.id].error_code) == (
            TaskStatus.SUCCEEDED,
            None,
        )
        assert rows[t.id].attempts == 1 + 2
    assert {r.attempts for i, r in rows.items() if i not in {t.id for t in taken}} == {
        1
    }
    ghost = next(w for w in repo.workers_of(job) if w.id == "ghost")
    assert (ghost.tasks_done, ghost.bytes_done, ghost.stopped_at) == (0, 0, None)


def test_a_job_given_up_by_one_worker_stops_every_worker(
    db_url: str, fake: FakeS3, tmp_path: Path
) -> None:
    """One worker's failure threshold trips (a burst of NoSuchKey): it marks
    the job failed; the other worker, whose own threshold never trips, sees
    it and leaves too; what was not started stays pending for a resume."""
    fake.seed_prefix("src", "obj/", 40, SIZE)
    rows = [("src", f"obj/{i:06d}", None) for i in range(40)]
    rows += [("src", f"gone/{i:06d}", None) for i in range(400)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    repo = Repository(db_url)
    spec = JobSpec(client=fake_client(fake), copy=CopyOptions(stat_source=False))
    job = submit(repo, str(manifest), Destination("dst"), spec)
    repo.close()
    crew = Crew(db_url, fake, job)
    try:
        strict = crew.worker(failure=FailurePolicy(fail_after=0, burst=5))
        lenient = crew.worker(failure=FailurePolicy(fail_after=0, burst=0))

        run_all([strict, lenient])

        assert (
            strict.failed == "5 tasks in a row failed with NoSuchKey (--fail-burst 5)"
        )
        assert lenient.failed == strict.failed  # read from the job
        record = crew.repo.get_job(job.id)
        assert record.status is JobStatus.FAILED
        assert record.message == strict.failed
        status = crew.by_status()
        assert status.get("pending", 0) > 200, status
        assert status.get("running", 0) == 0, status
        assert {w.state for w in crew.repo.workers_of(job.id)} == {WorkerState.STOPPED}
    finally:
        crew.close()
