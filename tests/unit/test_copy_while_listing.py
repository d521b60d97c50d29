"""``copy --from``: each page of the listing is copied as soon as it is stored
(engine.usecases.submit.submit_and_run), over the job table (SQLite in tmp)
and an in-memory S3 whose ListObjectsV2 is slow."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from engine.domain.backoff import RetryPolicy
from engine.domain.errors import JobCannotStart
from engine.domain.keys import KeyMapping
from engine.domain.models import Destination, JobCounts, JobStatus, TaskStatus
from engine.domain.records import JobRecord
from engine.domain.spec import JobSpec
from engine.manifest.sources import Source
from engine.run import events
from engine.run.loading import Loading
from engine.run.settings import RunSettings
from engine.run.worker import Worker
from engine.store import Repository
from engine.usecases.submit import copies_while_listing, finish_ingest, submit_and_run
from tests.memory_s3 import MemoryS3

FAST = RetryPolicy(max_attempts=3, base_delay=0.0, throttle_base_delay=0.0)
LISTING = Source("listing", "s3://src/p/")
DESTINATION = Destination.parse("s3://dst/copy/")
N = 2100  # three pages: 1,000, 1,000, 100


def _store(slow_list: float = 0.3) -> MemoryS3:
    s3 = MemoryS3(latency=0.001, delays={"ListObjectsV2": slow_list})
    s3.bucket("dst")
    for i in range(N):
        s3.put("src", f"p/{i:05d}", f"body {i}".encode())
    return s3


def _settings() -> RunSettings:
    return RunSettings(retry=FAST, flush_interval=0.01, concurrency=32)


def _copy(
    repo: Repository,
    s3: MemoryS3,
    observer: Any = events.ignore,
    started: list[Worker] | None = None,
) -> tuple[JobRecord, JobCounts]:
    def runner(job: JobRecord, loading: Loading) -> Worker:
        worker = Worker(
            repo,
            job,
            _settings(),
            observer=observer,
            open_client=s3.opener(),
            loading=loading,
        )
        if started is not None:
            started.append(worker)
        return worker

    return asyncio.run(
        submit_and_run(
            repo,
            LISTING,
            DESTINATION,
            JobSpec(),
            runner,
            open_client=s3.opener(),
        )
    )


def _resume(repo: Repository, s3: MemoryS3, job_id: str) -> JobCounts:
    """What ``bulkcopy resume`` does: finish the listing, then run."""
    job = asyncio.run(
        finish_ingest(repo, repo.get_job(job_id), open_client=s3.opener())
    )
    worker = Worker(repo, job, _settings(), open_client=s3.opener())
    return asyncio.run(worker.run())


def _each_copied_once(repo: Repository, s3: MemoryS3, job_id: str) -> None:
    rows = list(repo.iter_results(job_id))
    assert len(rows) == N
    assert {r.status for r in rows} == {TaskStatus.SUCCEEDED}
    assert len({r.src.key for r in rows}) == N
    assert sorted(s3.buckets["dst"]) == [f"copy/p/{i:05d}" for i in range(N)]


def test_copies_start_before_the_listing_ends(repo: Repository) -> None:
    """The first page's objects are copied while the later pages are still
    being listed; every object ends copied and recorded once, the job
    complete with the listing's total."""
    s3 = _store()
    job, counts = _copy(repo, s3)
    first_copy = s3.log.index("CopyObject")
    last_page = len(s3.log) - 1 - s3.log[::-1].index("ListObjectsV2")
    assert s3.calls["ListObjectsV2"] == 3
    assert first_copy < last_page
    assert counts.get(TaskStatus.SUCCEEDED) == N
    assert counts.remaining == 0
    assert job.status is JobStatus.COMPLETE
    assert job.total_tasks == N
    assert job.run_started_at is not None  # status's rate and ETA need it
    _each_copied_once(repo, s3, job.id)


def test_the_listing_and_the_copies_write_from_one_thread(repo: Repository) -> None:
    """The listing's pages are stored on the run's own database thread, the
    one its claims and results go through: on SQLite two writing threads
    wait for each other's lock in SQLite's busy handler, which sleeps up to
    100 ms a try (runs stalled 0.2-0.4 s, copies out of work, while a
    page's rows waited for a batch of results to commit)."""
    s3 = _store()
    threads: dict[str, set[int]] = {}
    for name in ("add_tasks", "finish_ingest", "claim", "record"):
        method = getattr(repo, name)

        def on_thread(*args: Any, _m: Any = method, _n: str = name, **kw: Any) -> Any:
            threads.setdefault(_n, set()).add(threading.get_ident())
            return _m(*args, **kw)

        setattr(repo, name, on_thread)
    job, counts = _copy(repo, s3)
    assert counts.get(TaskStatus.SUCCEEDED) == N
    assert set(threads) == {"add_tasks", "finish_ingest", "claim", "record"}
    assert len(set.union(*threads.values())) == 1
    assert threading.get_ident() not in threads["add_tasks"]  # not the loop's
    _each_copied_once(repo, s3, job.id)


def test_the_database_thread_still_answers_after_the_run(repo: Repository) -> None:
    """A listing still storing its page when the run ends (stopped, or
    refused at the start) is answered, not refused by a thread shut down."""
    started: list[Worker] = []
    job, _ = _copy(repo, _store(), started=started)
    assert asyncio.run(started[0].call(repo.get_job, job.id)).id == job.id


def test_a_start_refused_while_listing_keeps_the_job_to_list_the_rest(
    repo: Repository,
) -> None:
    """The destination bucket is missing: the start-up check refuses the run
    (the job cannot start), the listing stops with it, and the job stays
    ingesting, not failed — so once the bucket exists, resume lists the rest
    before it copies and every object is copied (a failed job's resume would
    copy only what was listed)."""
    s3 = _store()
    del s3.buckets["dst"]
    with pytest.raises(JobCannotStart, match="destination bucket 'dst'"):
        _copy(repo, s3)
    (job,) = repo.list_jobs()
    assert job.status is JobStatus.INGESTING
    assert s3.calls["ListObjectsV2"] < 3  # stopped with the run
    s3.bucket("dst")
    assert _resume(repo, s3, job.id).remaining == 0
    _each_copied_once(repo, s3, job.id)


def test_the_progress_total_grows_with_the_listing(repo: Repository) -> None:
    """The run is told of each stored page (TasksListed), ending with the
    listing's total, marked as the last."""
    s3 = _store()
    seen: list[events.Event] = []
    _copy(repo, s3, observer=seen.append)
    listed = [e for e in seen if isinstance(e, events.TasksListed)]
    totals = [e.total for e in listed]
    assert totals == sorted(totals)
    assert totals[-1] == N
    assert listed[-1].listed
    assert not listed[0].listed


def test_a_listing_that_fails_after_copies_keeps_the_job(repo: Repository) -> None:
    """The second page is refused: the copies of the first are recorded and
    kept (the job stays to be resumed, not removed with them), the listing's
    error is raised; resuming lists the rest and copies each object once."""
    s3 = _store()
    s3.fail("ListObjectsV2", None, s3.error("ListObjectsV2", "AccessDenied", 403))
    with pytest.raises(JobCannotStart, match="cannot list"):
        _copy(repo, s3)
    (job,) = repo.list_jobs()
    assert job.status is JobStatus.INGESTING
    copied = repo.counts(job.id).get(TaskStatus.SUCCEEDED)
    assert 0 < copied <= 1000
    counts = _resume(repo, s3, job.id)
    assert counts.remaining == 0
    assert repo.get_job(job.id).status is JobStatus.COMPLETE
    _each_copied_once(repo, s3, job.id)


def test_a_listing_refused_at_once_copies_nothing(repo: Repository) -> None:
    """The first page is refused: the error is raised, nothing is copied, and
    the job waits to be resumed (as a submit's interrupted listing does)."""
    s3 = _store()
    s3.fail("ListObjectsV2", s3.error("ListObjectsV2", "AccessDenied", 403))
    with pytest.raises(JobCannotStart, match="cannot list"):
        _copy(repo, s3)
    assert "CopyObject" not in s3.calls
    (job,) = repo.list_jobs()
    assert job.status is JobStatus.INGESTING
    assert _resume(repo, s3, job.id).remaining == 0
    _each_copied_once(repo, s3, job.id)


def test_a_run_stopped_while_listing_resumes_to_every_object_once(
    repo: Repository,
) -> None:
    """Ctrl-C while the listing goes on: the copies in flight are recorded,
    the job stays ingesting; resume lists the rest and copies every object
    once (none twice, none left)."""
    s3 = _store(slow_list=0.5)
    started: list[Worker] = []

    def stop_after_some(event: events.Event) -> None:
        if isinstance(event, events.TaskFinished) and started[0].stops_requested == 0:
            started[0].request_stop()

    job, counts = _copy(repo, s3, observer=stop_after_some, started=started)
    assert job.status is JobStatus.INGESTING
    assert 0 < counts.get(TaskStatus.SUCCEEDED) < N
    assert s3.calls["ListObjectsV2"] < 3  # the listing was stopped with the run
    assert _resume(repo, s3, job.id).remaining == 0
    _each_copied_once(repo, s3, job.id)


class _EndsAsTheListingEnds:
    """A run that comes to its last status (stopped, say) while the job is
    still being listed, and ends just after the listing does."""

    def __init__(self, repo: Repository, job: JobRecord) -> None:
        self.repo, self.job = repo, job
        self.listed = asyncio.Event()

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        answer = fn(*args, **kwargs)
        if fn == self.repo.finish_ingest:
            self.listed.set()
        return answer

    def stop_claiming(self) -> None:
        pass

    async def run(self) -> JobCounts:
        await self.listed.wait()
        await asyncio.sleep(0.05)  # the listing's end is seen before the run's
        return self.repo.counts(self.job.id)


def test_a_listing_that_ends_as_the_run_ends_does_not_mark_the_job_running(
    repo: Repository,
) -> None:
    """Ctrl-C as the listing stores its last pages: the run writes the job's
    last status while the job is still listed (so it stays ingesting), then
    the listing ends; the job is not marked running with no run left (it is
    submitted: resume copies the rest)."""
    s3 = _store(slow_list=0.05)
    job, _ = asyncio.run(
        submit_and_run(
            repo,
            LISTING,
            DESTINATION,
            JobSpec(),
            lambda job, _loading: _EndsAsTheListingEnds(repo, job),
            open_client=s3.opener(),
        )
    )
    assert job.status is JobStatus.SUBMITTED
    assert _resume(repo, s3, job.id).remaining == 0
    _each_copied_once(repo, s3, job.id)


@pytest.mark.parametrize(
    ("source", "destination", "keys", "streams"),
    [
        (LISTING, DESTINATION, KeyMapping(), True),
        # a copy into the listed bucket could overwrite an object not yet
        # copied: checked over the whole listing first
        (LISTING, Destination.parse("s3://src/backup/"), KeyMapping(), False),
        # versions go in order, numbered once every one is listed
        (
            Source("listing", "s3://src/p/", all_versions=True),
            DESTINATION,
            KeyMapping(),
            False,
        ),
        # two keys may map to one: collisions are checked over the whole job
        (LISTING, DESTINATION, KeyMapping(template="{basename}"), False),
        # a file may repeat a row: duplicates merged once it is all read
        (Source("csv", "m.csv"), DESTINATION, KeyMapping(), False),
    ],
)
def test_what_is_copied_while_listed(
    source: Source, destination: Destination, keys: KeyMapping, streams: bool
) -> None:
    assert copies_while_listing(source, destination, JobSpec(keys=keys)) is streams
