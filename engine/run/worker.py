"""The async worker pool: claim tasks in batches, copy them, record results in
group commits, and drain cleanly when asked to stop.

Structure (all inside one ``asyncio.TaskGroup``)::

    feeder ──claims──▶ queue ──▶ N copiers ──results──▶ buffer ──▶ flusher ──▶ DB
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
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from engine.copy.execute import (
    LEASE_LOST,
    CopyContext,
    Interrupted,
    abandon,
    execute,
)
from engine.copy.multipart import abort_by_id
from engine.copy.request import Requests
from engine.domain import liveness
from engine.domain.backoff import RetryPolicy
from engine.domain.errors import JobCannotStart, S3Error
from engine.domain.failure_threshold import FailureGuard, FailurePolicy
from engine.domain.models import (
    JobCounts,
    JobStatus,
    Task,
    TaskResult,
    TaskStatus,
)
from engine.domain.records import JobRecord, WorkerRecord, WorkerState
from engine.domain.spec import ClientSettings
from engine.run import events
from engine.run.governor import Governor
from engine.run.jobclient import OpenJobClient, open_job_client
from engine.run.ledgers import MoveLedger, PartLedger
from engine.run.preflight import check_destination, check_move, check_sources
from engine.s3.call import ON_REQUEST, PACER
from engine.s3.quirks import Quirks
from engine.store import Repository

T = TypeVar("T")

# how long a worker copying versions in order waits for a round to finish
ROUND_WAIT = 0.05


def is_live(worker: WorkerRecord, now: float, hostname: str | None = None) -> bool:
    """Whether a worker looks alive: its heartbeat is recent
    (:func:`engine.domain.liveness.beating`) and, when it runs on this host,
    its process is still there."""
    if not liveness.beating(worker, now):
        return False
    here = hostname or socket.gethostname()
    return worker.hostname != here or pid_alive(worker.pid)


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How a run behaves; unlike the job spec these may change between runs."""

    concurrency: int = 64
    part_concurrency: int = 16  # UploadPartCopy requests in flight, all objects
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    claim_batch: int = 0  # 0: twice the concurrency, at most 1000
    lease_seconds: float = liveness.LEASE_SECONDS
    flush_interval: float = 0.25
    flush_max: int = 1000
    preflight: bool = True
    # how often to look for pause / resume / cancel of the job
    control_interval: float = 1.0
    # how often to extend leases and take back dead workers' tasks (see
    # heartbeat_every)
    heartbeat_interval: float = liveness.HEARTBEAT_INTERVAL
    # with nothing left to claim, wait while other workers hold tasks of the
    # job (False: leave at once, as a worker that only helps out)
    wait_for_others: bool = True
    idle_poll: float = 1.0
    # a stop (signal) of the job's last worker marks the job ``stopped``
    # (``run``: the user stopped it); a pool worker's stop only means this
    # process goes away (a rolling update, a scale-down): the job stays
    # ``running`` for the other and next workers
    stop_marks_job: bool = True
    # when to give up on the job (engine.domain.failure_threshold)
    failure: FailurePolicy = field(default_factory=FailurePolicy)
    # adaptive concurrency: the fewest requests in flight it may go down to
    # (engine.run.governor); = concurrency: fixed
    min_concurrency: int = 1
    max_rps: float | None = None  # requests started per second, at most
    # emit a RequestDone event for every S3 request (metrics ask for it)
    request_events: bool = False

    @property
    def heartbeat_every(self) -> float:
        return liveness.heartbeat_every(self.heartbeat_interval, self.lease_seconds)

    @property
    def batch(self) -> int:
        return self.claim_batch or min(1000, max(16, 2 * self.concurrency))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def unexpected_failure(task: Task, exc: Exception) -> TaskResult:
    """A failed result for an error bulkcopy did not expect (a bug): recorded, loud."""
    now = time.time()
    return TaskResult(
        task_id=task.id,
        status=TaskStatus.FAILED,
        attempts=1,
        started_at=now,
        finished_at=now,
        error_code="UnexpectedError",
        error_message=f"{type(exc).__name__}: {exc} (please report this as a bug)",
    )


class Stoppable(Protocol):
    def request_stop(self) -> None: ...


# worker ids of the Workers running in this process (never "dead" to us)
_HERE: set[str] = set()


class Worker:
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
    ) -> None:
        self.repo = repo
        # how the run's S3 client is made (a test passes an in-memory one)
        self._open_client = open_client
        # asked when this job has nothing to claim but other workers still
        # hold tasks: does another job (not this id) have tasks to claim?
        self.other_work = other_work
        self.job = job
        self.spec = job.spec
        self.client_settings = client_overrides or self.spec.client
        self.run_settings = run
        self.observer = observer
        # called with the S3 client once it exists: the place to register
        # botocore event handlers (extra headers, fault injection in tests)
        self.on_client = on_client
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._db = ThreadPoolExecutor(1, thread_name_prefix="bulkcopy-db")
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
        self._flush_now = asyncio.Event()
        self.stops_requested = 0
        self.paused = False
        self.cancelled = False
        # why the job was given up (this run's failure threshold, or another
        # worker's: the job's status turned ``failed``)
        self.failed: str | None = None
        self._guard = FailureGuard(run.failure)
        self.governor: Governor | None = None  # while copying
        self._refresher: Callable[[], Awaitable[bool]] | None = None
        self._refreshing: asyncio.Future[bool] | None = None
        self.credential_refreshes = 0
        # where multipart copies record their uploads and parts, and a move
        # its copies before the deletes (engine.run.ledgers)
        self.part_ledger = PartLedger(self._call, repo, self.worker_id)
        self.move_ledger = MoveLedger(self._call, repo, self.worker_id)
        # what the store was found not to do, shared by every copier
        self.quirks = Quirks()
        self.versioned_sources: frozenset[str] = frozenset()  # a move's
        self.requests = Requests()  # the job's, once its client is open
        # every version of each key, oldest first: claims go round by round
        self.ordered = bool(job.source.get("all_versions"))
        self._state = WorkerState.COPYING

    # -- plumbing --------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, fn, *args)

    def request_stop(self) -> None:
        """First call: drain (finish in-flight copies).  Second: abort them."""
        self.stops_requested += 1
        if self.stops_requested == 1:
            self._stop.set()
            self._hold.set()
            self.observer(events.Draining(self.job.id, len(self._in_flight)))
        else:
            self._abort = True
            self.observer(events.Aborting(self.job.id, len(self._in_flight)))
            for t in list(self._in_flight.values()):
                t.cancel()

    async def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            await self._call(self.repo.set_worker_state, self.worker_id, state)

    async def _release_orphans(self) -> int:
        """Take back tasks of workers known dead and of expired leases."""
        now = time.time()
        dead = await self._call(
            partial(
                self.repo.dead_workers,
                self.job.id,
                socket.gethostname(),
                os.getpid(),
                pid_alive,
                liveness.silent_before(now, self.run_settings.lease_seconds),
            )
        )
        dead = [d for d in dead if d not in _HERE]
        return await self._call(self.repo.release_orphans, self.job.id, now, dead)

    # -- the run ----------------------------------------------------------------

    async def run(self) -> JobCounts:
        """Run the job; returns its counts after this run."""
        try:
            return await self._run()
        finally:
            self._db.shutdown(wait=True)

    async def _run(self) -> JobCounts:
        job = self.job
        released = await self._release_orphans()
        _HERE.add(self.worker_id)
        await self._call(
            self.repo.register_worker,
            self.worker_id,
            job.id,
            socket.gethostname(),
            os.getpid(),
        )
        try:
            status = await self._call(self.repo.job_status, job.id)
            if status is JobStatus.CANCELLED:
                self.cancelled = True
                counts = await self._call(self._counts)
                self.observer(events.RunFinished(job.id, counts, False))
                return counts
            async with self._open_client(
                self.spec,
                self.client_settings,
                copy_bucket=job.dst_bucket,
                head_buckets=(*self.spec.source_buckets, job.dst_bucket),
                on_credentials=self._keep_refresher,
            ) as (client, requests):
                self.requests = requests
                if self.on_client is not None:
                    self.on_client(client)
                if self.run_settings.preflight:
                    await self._preflight(client)
                if self.spec.copy.delete_source:  # a move: checked, always
                    await self._check_move(client)
                await self._call(
                    partial(
                        self.repo.set_job_status,
                        job.id,
                        JobStatus.RUNNING,
                        None,
                        time.time(),
                        only_from=_STARTABLE,
                    )
                )
                counts = await self._call(self._counts)
                self.observer(
                    events.RunStarted(job.id, self.worker_id, counts, released)
                )
                await self._pool(client)
                await self._abort_left_uploads(client)
        finally:
            _HERE.discard(self.worker_id)
            await self._call(self.repo.stop_worker, self.worker_id)
        counts = await self._call(self._counts)
        stopped = self._stop.is_set() and counts.remaining > 0 and not self.cancelled
        if self.failed is not None and counts.remaining > 0:
            await self._call(
                partial(
                    self.repo.set_job_status,
                    job.id,
                    JobStatus.FAILED,
                    self.failed,
                    only_from=(JobStatus.RUNNING, JobStatus.SUBMITTED),
                )
            )
        elif counts.remaining == 0:
            await self._call(
                partial(
                    self.repo.set_job_status,
                    job.id,
                    JobStatus.COMPLETE,
                    only_from=_FINISHABLE,
                )
            )
        elif (
            stopped
            and self.run_settings.stop_marks_job
            and not await self._others_live()
        ):
            # the last worker of the job was stopped: the job is
            await self._call(
                partial(
                    self.repo.set_job_status,
                    job.id,
                    JobStatus.STOPPED,
                    only_from=(JobStatus.RUNNING, JobStatus.SUBMITTED),
                )
            )
        self.observer(events.RunFinished(job.id, counts, stopped))
        return counts

    def _counts(self) -> JobCounts:
        return self.repo.counts(
            self.job.id, sources_deleted=self.spec.copy.delete_source
        )

    async def _others_live(self) -> bool:
        now = time.time()
        others = await self._call(self.repo.workers_of, self.job.id)
        return any(is_live(w, now) and w.id != self.worker_id for w in others)

    async def _preflight(self, client: Any) -> None:
        job = self.job
        policy = self.run_settings.retry

        async def checks() -> list[str]:
            warnings = await check_destination(
                client, job.dst_bucket, job.dst_prefix, self.requests, policy
            )
            first = await self._call(self.repo.first_tasks, job.id, 1)
            return warnings + await check_sources(
                client,
                list(self.spec.source_buckets),
                first[0] if first else None,
                self.requests,
                policy,
            )

        await self._checked(checks())

    async def _checked(self, checks: Awaitable[list[str]]) -> None:
        """Run start-up checks: a refusal marks the job failed (and is
        raised); warnings become events."""
        try:
            warnings = await checks
        except JobCannotStart as exc:
            await self._call(
                self.repo.set_job_status, self.job.id, JobStatus.FAILED, str(exc)
            )
            raise
        for w in warnings:
            self.observer(events.PreflightWarning(self.job.id, w))

    async def _check_move(self, client: Any) -> None:
        """A move deletes sources: learn which source buckets keep versions,
        and refuse to move every version into a bucket that does not."""

        async def checks() -> list[str]:
            self.versioned_sources, warnings = await check_move(
                client,
                self.job.dst_bucket,
                list(self.spec.source_buckets),
                all_versions=self.ordered,
                requests=self.requests,
                policy=self.run_settings.retry,
            )
            return warnings

        await self._checked(checks())

    async def _abort_left_uploads(self, client: Any) -> None:
        """Abort, once more, the uploads of ended tasks whose abort failed
        (this run's, or a killed run's); say what is still open."""
        left = await self._call(
            partial(self.repo.open_uploads, self.job.id, of_final_tasks=True)
        )
        still = 0
        for task_id, key, upload_id in left:
            bucket, access = self.job.dst_bucket, self.requests.destination()
            if await abort_by_id(client, bucket, key, upload_id, access):
                await self._call(self.repo.upload_ended, task_id)
            else:
                still += 1
        if still:
            where = f"s3://{self.job.dst_bucket}/{self.job.dst_prefix}"
            self.observer(
                events.UploadsLeft(
                    self.job.id, still, f"bulkcopy cleanup {where} --older-than 0s"
                )
            )

    async def _pool(self, client: Any) -> None:
        n = self.run_settings.concurrency
        self._part_slots = asyncio.Semaphore(self.run_settings.part_concurrency)
        self.governor = Governor(
            n,
            self.run_settings.min_concurrency,
            self.run_settings.max_rps,
            on_change=self._concurrency_changed,
        )
        # every S3 call of the copiers takes a slot (tasks inherit the context)
        token = PACER.set(self.governor)
        seen = ON_REQUEST.set(
            self._request_done if self.run_settings.request_events else None
        )
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._feeder(n))
                tg.create_task(self._flusher())
                background = [
                    tg.create_task(self._heartbeat()),
                    tg.create_task(self._control()),
                ]
                if self.spec.copy.delete_source:
                    background.append(tg.create_task(self.move_ledger.run()))
                copiers = [tg.create_task(self._copier(client)) for _ in range(n)]
                await asyncio.wait(copiers)
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
        await self._call(self.repo.release, self.worker_id, self._unstarted)
        self._unstarted = []

    async def _idle(self, seconds: float) -> None:
        """Sleep, but wake as soon as a stop is requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _feeder(self, n_copiers: int) -> None:
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
                claimed = await self._call(
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
                if claimed:
                    await self._set_state(WorkerState.COPYING)
                    continue
                if self.ordered and await self._call(
                    self.repo.has_pending, self.job.id
                ):
                    # versions in order: the next round starts once this
                    # one's results are recorded (here or by other workers)
                    self._flush_now.set()
                    await asyncio.sleep(ROUND_WAIT)
                    continue
                if await self._release_orphans():
                    continue
                if not self.run_settings.wait_for_others or not await self._call(
                    self.repo.held_elsewhere, self.job.id, self.worker_id
                ):
                    break
                if self.other_work is not None and await self._call(
                    self.other_work, self.job.id
                ):
                    break  # another job has tasks to claim: go there first
                # other workers hold the last tasks: wait for their results,
                # or for their leases to expire (then we take the tasks back)
                await self._set_state(WorkerState.WAITING)
                self._flush_now.set()
                await self._idle(self.run_settings.idle_poll)
        finally:
            for _ in range(n_copiers):
                self._queue.put_nowait(None)

    async def _control(self) -> None:
        """Follow the job's status: pause, resume and cancel by an operator
        (``bulkcopy pause|resume|cancel``) reach every worker this way."""
        while True:
            await asyncio.sleep(self.run_settings.control_interval)
            status = await self._call(self.repo.job_status, self.job.id)
            if status is JobStatus.CANCELLED and not self.cancelled:
                self.cancelled = True
                self.observer(events.JobCancelled(self.job.id, len(self._in_flight)))
                self._stop.set()
                self._hold.set()
                return
            if status is JobStatus.FAILED and self.failed is None:
                record = await self._call(self.repo.get_job, self.job.id)
                self._give_up(record.message or "the job was marked failed")
                return
            if status is JobStatus.PAUSED and not self.paused:
                self.paused = True
                self._hold.set()
                self.observer(events.JobPaused(self.job.id, len(self._in_flight)))
                await self._set_state(WorkerState.PAUSED)
            elif status is not JobStatus.PAUSED and self.paused:
                self.paused = False
                if not self._stop.is_set():
                    self._hold.clear()
                self.observer(events.JobResumed(self.job.id))
                await self._set_state(WorkerState.COPYING)

    # -- copiers ----------------------------------------------------------------

    async def _copier(self, client: Any) -> None:
        ctx = CopyContext(
            client=client,
            dst_bucket=self.job.dst_bucket,
            options=self.spec.copy,
            part_log=self.part_ledger,
            part_slots=self._part_slots,
            stopping=self._hold,
            requests=self.requests,
            refresh_credentials=self._refresh_credentials,
            move_log=self.move_ledger if self.spec.copy.delete_source else None,
            versioned_sources=self.versioned_sources,
            quirks=self.quirks,
        )
        policy = self.run_settings.retry
        while True:
            task = await self._queue.get()
            if task is None:
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

    def _keep_refresher(self, refresh: Callable[[], Awaitable[bool]]) -> None:
        self._refresher = refresh

    async def _refresh_credentials(self) -> bool:
        """An ExpiredToken answer: refresh the credentials once for every
        copy that saw it in the same moment (they share one refresh)."""
        if self._refresher is None:
            return False
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresher())
            self.credential_refreshes += 1
            self.observer(events.CredentialsRefreshed(self.job.id))
        try:
            return await asyncio.shield(self._refreshing)
        except Exception:  # the provider failed: the answer counts as usual
            return False

    def _request_done(self, operation: str, outcome: str, seconds: float) -> None:
        self.observer(events.RequestDone(self.job.id, operation, outcome, seconds))

    def _concurrency_changed(self, limit: int, why: str) -> None:
        self.observer(events.ConcurrencyChanged(self.job.id, limit, why))

    def _give_up(self, reason: str) -> None:
        """Stop this run because the job fails: finish the copies in flight,
        hand back the rest; the job is marked ``failed`` at the end."""
        self.failed = reason
        self.observer(events.JobFailing(self.job.id, reason, len(self._in_flight)))
        self._stop.set()
        self._hold.set()

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
                await self._call(self.repo.record, self.worker_id, batch)
            if self._unstarted and not self._stop.is_set():
                # paused: hand back what was claimed but not started
                given, self._unstarted = self._unstarted, []
                await self._call(self.repo.release, self.worker_id, given)
            if self._copiers_done.is_set() and not self._results:
                return

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.run_settings.heartbeat_every)
            await self._call(
                self.repo.heartbeat,
                self.worker_id,
                time.time() + self.run_settings.lease_seconds,
                self.governor.limit if self.governor is not None else None,
            )
            released = await self._release_orphans()
            if released:
                self.observer(events.TasksTakenBack(self.job.id, released))


# statuses a worker may move to running, and to complete
_STARTABLE = (
    JobStatus.SUBMITTED,
    JobStatus.RUNNING,
    JobStatus.STOPPED,
    JobStatus.FAILED,
)
_FINISHABLE = (*_STARTABLE, JobStatus.PAUSED)


@contextmanager
def stop_on_signals(worker: Stoppable) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``worker.request_stop`` while the block runs."""
    loop = asyncio.get_running_loop()
    sigs = (signal.SIGINT, signal.SIGTERM)
    for s in sigs:
        loop.add_signal_handler(s, worker.request_stop)
    try:
        yield
    finally:
        for s in sigs:
            loop.remove_signal_handler(s)
