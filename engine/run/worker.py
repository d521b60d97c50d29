"""The async worker pool: claim tasks in batches, copy them, record results in
group commits, and drain cleanly when asked to stop.

Structure (all inside one ``asyncio.TaskGroup``)::

    feeder ──claims──▶ queue ──▶ copiers ──results──▶ buffer ──▶ flusher ──▶ DB
                       heartbeat ──leases, orphans──▶ DB
                       control ◀──job status (pause, resume, cancel)── DB

Any number of workers, in any number of processes and hosts, may run one job
at once: each claim carries a lease (owner, expiry) that the heartbeat
extends; tasks whose lease expired, or whose worker is known dead (its pid is
gone on this host), go back to ``pending`` and are claimed again; a result is
recorded only while its worker still holds the task.  A worker with nothing
left to claim waits while other workers still hold tasks of the job (their
leases may expire), so the last worker standing finishes the job.

Database calls run on one dedicated thread so the event loop never blocks on
the database.  A first stop request (SIGINT/SIGTERM) stops claiming, lets
in-flight copies finish and records them; a second cancels in-flight copies.
Claimed tasks that never started are handed back.  ``bulkcopy pause`` makes
every worker stop claiming and hand back what it has not started (a multipart
copy stops between parts, kept for later) until ``resume``; ``cancel`` makes
them finish what is in flight, abort unfinished multipart uploads and leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from engine.copy.budget import ByteBudget
from engine.copy.context import CopyContext
from engine.copy.execute import LEASE_LOST, abandon, execute
from engine.copy.request import Requests
from engine.copy.result import unexpected_failure
from engine.copy.upload import Interrupted
from engine.domain.errors import S3Error
from engine.domain.failure_threshold import FailureGuard
from engine.domain.models import (
    JobCounts,
    JobStatus,
    Task,
    TaskResult,
)
from engine.domain.plan import stream_part_size
from engine.domain.records import JobRecord, WorkerState
from engine.domain.spec import ClientSettings
from engine.run import events
from engine.run.control import WorkerControl
from engine.run.governor import Governor
from engine.run.heartbeat import HERE, Heartbeat
from engine.run.jobclient import (
    OpenJobClient,
    SharedRefresh,
    Source,
    open_job_client,
    open_run_clients,
)
from engine.run.ledgers import MoveLedger, PartLedger
from engine.run.limits import allowed_or_warning
from engine.run.loading import Loading
from engine.run.settings import RunSettings
from engine.run.startup import Startup
from engine.s3.call import ON_REQUEST, PACER
from engine.s3.quirks import Quirks
from engine.store import Repository

T = TypeVar("T")

# how long a worker copying versions in order waits for a round to finish
ROUND_WAIT = 0.05


class Worker(WorkerControl):
    """Runs one job in this process, alongside any other workers on it,
    until it has no task left to do (or is stopped, paused for good or
    cancelled)."""

    def __init__(
        self,
        repo: Repository,
        job: JobRecord,
        run: RunSettings,
        client_overrides: ClientSettings | None = None,
        observer: events.Observer = events.ignore,
        on_client: Callable[[Any], None] | None = None,
        other_work: Callable[[str], bool] | None = None,
        open_client: OpenJobClient = open_job_client,
        loading: Loading | None = None,
        source_overrides: ClientSettings | None = None,
    ) -> None:
        self.repo = repo
        # the job's tasks still being added (a listing copied as it is read)
        self.loading = loading
        # how the run's S3 client is made (a test passes an in-memory one)
        self._open_client = open_client
        # asked when this job has nothing to claim but other workers still
        # hold tasks: does another job (not this id) have tasks to claim?
        self.other_work = other_work
        self.job = job
        self.spec = job.spec
        self.client_settings = client_overrides or self.spec.client
        self.source_settings = source_overrides  # None: the job's, if any
        self.source: Source | None = None  # the sources' client, once open
        self.run_settings = run
        self.observer = observer
        # called with the S3 client once it exists: the place to register
        # botocore event handlers (extra headers, fault injection in tests)
        self.on_client = on_client
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._db = ThreadPoolExecutor(1, thread_name_prefix="bulkcopy-db")
        self._db_closed = False
        self._started_at = time.time()  # run_started_at of a job listed as it ran
        self._queue: asyncio.Queue[Task | None] = asyncio.Queue()
        self._results: list[TaskResult] = []
        self._unstarted: list[int] = []
        self._in_flight: dict[int, asyncio.Task[Any]] = {}
        self._stop = asyncio.Event()  # leave: stop claiming, drain, exit
        # start nothing new (set while stopping or paused); multipart copies
        # stop between parts
        self._hold = asyncio.Event()
        self._abort = False
        self._copiers_done = asyncio.Event()
        # the copiers of the pool: as many at work as the governor allows
        self._copiers: set[asyncio.Task[None]] = set()
        self._working = 0
        self._spawn: Callable[[], asyncio.Task[None]] | None = None
        self._fed = False  # the feeder is done: no copier is added
        self._flush_now = asyncio.Event()
        self.stops_requested = 0
        self.paused = False
        self.cancelled = False
        # why the job was given up (this run's failure threshold, or another
        # worker's: the job's status turned ``failed``)
        self.failed: str | None = None
        self._guard = FailureGuard(run.failure)
        self.governor: Governor | None = None  # while copying
        # one credentials refresh for every copy that saw ExpiredToken at once
        self.refresh = SharedRefresh(
            lambda: observer(events.CredentialsRefreshed(job.id))
        )
        # where multipart copies record their uploads and parts, and a move
        # its copies before the deletes (engine.run.ledgers)
        self.part_ledger = PartLedger(self.call, repo, self.worker_id)
        # leases extended, dead workers' tasks taken back (engine.run.heartbeat)
        self.heartbeat = Heartbeat(
            self.call,
            repo,
            job.id,
            self.worker_id,
            run,
            lambda: self.governor.limit if self.governor is not None else None,
            observer,
        )
        self.move_ledger = MoveLedger(self.call, repo, self.worker_id)
        # what the store was found not to do, shared by every copier
        self.quirks = Quirks()
        self.versioned_sources: frozenset[str] = frozenset()  # a move's
        self.requests = Requests()  # the job's, once its client is open
        # every version of each key, oldest first: claims go round by round
        self.ordered = bool(job.source.get("all_versions"))
        self._state = WorkerState.COPYING

    # -- plumbing --------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on the run's database thread, which a
        listing copied as it is read writes through too: on SQLite two
        writing threads of one process wait for each other's lock in its busy
        handler (up to 100 ms a try, the copies out of work meanwhile)."""
        if self._db_closed:  # the run has ended; a listing may finish its page
            return await asyncio.to_thread(fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        if kwargs:
            return await loop.run_in_executor(self._db, partial(fn, *args, **kwargs))
        return await loop.run_in_executor(self._db, fn, *args)

    # -- the run ----------------------------------------------------------------

    async def run(self) -> JobCounts:
        """Run the job; returns its counts after this run."""
        try:
            return await self._run()
        finally:
            self._db_closed = True
            # a listing's write queued behind the run's last one is not made
            # (resume lists that page again), and one under way is not
            # waited for: the loop stays free for signals (a database that
            # is down could hold it for minutes)
            self._db.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> JobCounts:
        job = self.job
        released = await self.heartbeat.release_orphans()
        HERE.add(self.worker_id)
        await self.call(
            self.repo.register_worker,
            self.worker_id,
            job.id,
            socket.gethostname(),
            os.getpid(),
        )
        try:
            status = await self.call(self.repo.job_status, job.id)
            if status is JobStatus.CANCELLED:
                self.cancelled = True
                counts = await self.call(self._counts)
                self.observer(events.RunFinished(job.id, counts, False))
                return counts
            async with open_run_clients(
                self._open_client,
                self.spec,
                (self.client_settings, self.source_settings),
                job.dst_bucket,
                self.refresh.keep,
            ) as (client, requests, self.source):
                self.requests = requests
                if self.on_client is not None:
                    self.on_client(client)
                startup = Startup(
                    self.call,
                    self.repo,
                    job,
                    requests,
                    self.run_settings.retry,
                    self.observer,
                )
                self.versioned_sources = await startup.begin(
                    client,
                    self.source.client,
                    preflight=self.run_settings.preflight,
                    all_versions=self.ordered,
                )
                counts = await self.call(self._counts)
                self.observer(
                    events.RunStarted(
                        job.id, self.worker_id, counts, released, self.source.transfer
                    )
                )
                await self._pool(client)
                await startup.abort_left_uploads(client)
        finally:
            HERE.discard(self.worker_id)
            await self.call(self.repo.stop_worker, self.worker_id)
        counts = await self.call(self._counts)
        stopped = await self._end_status(counts.remaining)
        self.observer(events.RunFinished(job.id, counts, stopped))
        return counts

    def _counts(self) -> JobCounts:
        return self.repo.counts(
            self.job.id, sources_deleted=self.spec.copy.delete_source
        )

    async def _pool(self, client: Any) -> None:
        # as many requests in flight as the settings and open files allow
        clients = 2 if self.source and self.source.client is not client else 1
        n, warning = allowed_or_warning(self.run_settings.ceiling, clients)
        if warning is not None:
            self.observer(events.PreflightWarning(self.job.id, warning))
        self._part_slots = asyncio.Semaphore(self.run_settings.part_concurrency)
        # streamed bodies held at once: a part for each part in flight
        self._budget = ByteBudget(
            stream_part_size(self.spec.copy.part_size)
            * self.run_settings.part_concurrency
        )
        self.governor = Governor(
            n,
            self.run_settings.min_concurrency,
            self.run_settings.max_rps,
            on_change=self._concurrency_changed,
            start=self.run_settings.start,
        )
        # every S3 call of the copiers takes a slot (tasks inherit the context)
        token = PACER.set(self.governor)
        seen = ON_REQUEST.set(
            self._request_done if self.run_settings.request_events else None
        )
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._feeder())
                tg.create_task(self._flusher())
                background = [
                    tg.create_task(self.heartbeat.run()),
                    tg.create_task(self._control()),
                ]
                if self.spec.copy.delete_source:
                    background.append(tg.create_task(self.move_ledger.run()))
                # a copier for each request the governor lets in flight: more
                # as its limit climbs, fewer as it comes down (_copier)
                self._spawn = lambda: tg.create_task(self._copier(client))
                self._add_copiers()
                while pending := [c for c in self._copiers if not c.done()]:
                    await asyncio.wait(pending)
                self._copiers_done.set()
                self._flush_now.set()
                for t in background:
                    t.cancel()
        except BaseExceptionGroup as group:
            # one failure (a database error, say) ends the run; show it, not the group
            raise group.exceptions[0] from group
        finally:
            PACER.reset(token)
            ON_REQUEST.reset(seen)
            self.observer(
                events.RunResources(
                    self.job.id,
                    self.governor.peak,
                    self.governor.peak_in_flight,
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                    tuple(self.quirks.found()),
                )
            )
        await self.call(self.repo.release, self.worker_id, self._unstarted)
        self._unstarted = []

    async def _idle(self, seconds: float) -> None:
        """Sleep, but wake as soon as a stop is requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    def _add_copiers(self) -> None:
        """As many copiers at work as the governor's limit (none once the
        feeder is done)."""
        if self._spawn is None or self.governor is None:
            return
        while self._working < self.governor.limit and not self._fed:
            self._working += 1
            self._copiers.add(self._spawn())

    async def _feeder(self) -> None:
        batch = self.run_settings.batch
        try:
            while not self._stop.is_set():
                if self.paused:
                    await self._idle(self.run_settings.idle_poll)
                    continue
                if self._queue.qsize() >= batch // 2:
                    await asyncio.sleep(0.01)
                    continue
                lease = time.time() + self.run_settings.lease_seconds
                claimed = await self.call(
                    partial(
                        self.repo.claim,
                        self.job.id,
                        self.worker_id,
                        batch,
                        lease,
                        ordered=self.ordered,
                    )
                )
                if self._hold.is_set():  # paused or stopped while claiming
                    self._unstarted.extend(t.id for t in claimed)
                    continue
                for t in claimed:
                    self._queue.put_nowait(t)
                loading = self.loading
                if loading is not None:
                    if (news := loading.news()) is not None:  # listing's progress
                        self.observer(events.TasksListed(self.job.id, *news))
                    if loading.just_over():
                        await self._listed()
                        if self.governor is not None:
                            self.governor.relearn()  # the listing's CPU is free
                if claimed:
                    await self._set_state(WorkerState.COPYING)
                    continue
                if loading is not None and not loading.done:
                    await loading.wait()  # the listing has more: its next page
                    continue
                if self.ordered and await self.call(self.repo.has_pending, self.job.id):
                    # versions in order: the next round starts once this
                    # one's results are recorded (here or by other workers)
                    self._flush_now.set()
                    await asyncio.sleep(ROUND_WAIT)
                    continue
                if await self.heartbeat.release_orphans():
                    continue
                if not self.run_settings.wait_for_others or not await self.call(
                    self.repo.held_elsewhere, self.job.id, self.worker_id
                ):
                    break
                if self.other_work is not None and await self.call(
                    self.other_work, self.job.id
                ):
                    break  # another job has tasks to claim: go there first
                # other workers hold the last tasks: wait for their results,
                # or for their leases to expire (then we take the tasks back)
                await self._set_state(WorkerState.WAITING)
                self._flush_now.set()
                await self._idle(self.run_settings.idle_poll)
        finally:
            self._fed = True
            self._queue.put_nowait(None)  # each copier passes it on, and leaves

    # -- copiers ----------------------------------------------------------------

    async def _copier(self, client: Any) -> None:
        source = self.source
        ctx = CopyContext(
            client=client,
            dst_bucket=self.job.dst_bucket,
            options=self.spec.copy,
            part_log=self.part_ledger,
            part_slots=self._part_slots,
            stopping=self._hold,
            requests=self.requests,
            refresh_credentials=self.refresh,
            move_log=self.move_ledger if self.spec.copy.delete_source else None,
            versioned_sources=self.versioned_sources,
            quirks=self.quirks,
            source_client=None if source is None else source.client,
            stream=source is not None and source.stream,
            budget=self._budget,
            content_md5=self.client_settings.content_md5,
        )
        policy = self.run_settings.retry
        while True:
            if self.governor is not None and self._working > self.governor.limit:
                self._working -= 1  # the limit came down: one copier fewer
                return
            task = await self._queue.get()
            if task is None:
                self._queue.put_nowait(None)  # for the next copier
                self._working -= 1
                return
            if self._hold.is_set():
                self._unstarted.append(task.id)
                continue
            job = asyncio.current_task()
            assert job is not None
            self._in_flight[task.id] = job
            try:
                result = await execute(ctx, task, policy, self._on_retry)
            except asyncio.CancelledError:
                if not self._abort:
                    raise
                self._unstarted.append(task.id)
                continue
            except Interrupted:  # a multipart copy kept for later
                if self.cancelled:  # … unless there is no later
                    await abandon(ctx, task)
                self._unstarted.append(task.id)
                continue
            except Exception as exc:
                result = unexpected_failure(task, exc)
            finally:
                self._in_flight.pop(task.id, None)
            self._results.append(result)
            if len(self._results) >= self.run_settings.flush_max:
                self._flush_now.set()
            if result.error_code == LEASE_LOST:
                continue  # another worker has it: not this run's result
            self.observer(events.TaskFinished(task, result))
            reason = self._guard.observe(
                result.status, result.error_code, result.http_status
            )
            if reason is not None and self.failed is None:
                self._give_up(reason)

    def _request_done(self, operation: str, outcome: str, seconds: float) -> None:
        self.observer(events.RequestDone(self.job.id, operation, outcome, seconds))

    def _concurrency_changed(self, limit: int, why: str) -> None:
        self._add_copiers()
        self.observer(events.ConcurrencyChanged(self.job.id, limit, why))

    def _on_retry(self, task: Task, attempt: int, err: S3Error, delay: float) -> None:
        self.observer(events.TaskRetrying(task, attempt, err.code, err.message, delay))

    async def _flusher(self) -> None:
        interval = self.run_settings.flush_interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), interval)
            self._flush_now.clear()
            if self._results:
                batch, self._results = self._results, []
                await self.call(self.repo.record, self.worker_id, batch)
            if self._unstarted and not self._stop.is_set():
                # paused: hand back what was claimed but not started
                given, self._unstarted = self._unstarted, []
                await self.call(self.repo.release, self.worker_id, given)
            if self._copiers_done.is_set() and not self._results:
                return
