"""Which job a worker process works on next (``bulkcopy worker``).

A worker process runs one job at a time (a :class:`engine.run.worker.Worker`)
and moves on when that job has nothing left for it:

* with ``job_ids`` it works on those jobs, in that order, waiting while one is
  still being read from its manifest (``ingesting``); a paused job holds it
  until it is resumed or cancelled;
* without, it joins the runnable jobs (``submitted`` or ``running``) by
  priority, then age: first one with tasks to claim; failing that one whose
  last tasks other workers hold (it waits for their results, or their leases
  to expire, so the job always ends).  A job whose last tasks others hold is
  left for another job with tasks to claim.  With no job left it is done, or,
  with ``follow``, polls for new jobs.

The choice itself (:func:`choose`) is pure; :func:`work` does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.domain.models import JobCounts, JobStatus
from engine.domain.records import JobRecord
from engine.run import events
from engine.run.worker import Worker
from engine.store import Repository

# statuses of a named job (``--job``) a worker will run; others are over
NAMED_RUNNABLE = frozenset(
    {
        JobStatus.SUBMITTED,
        JobStatus.RUNNING,
        JobStatus.STOPPED,
        JobStatus.FAILED,
        JobStatus.PAUSED,
    }
)


@dataclass(frozen=True, slots=True)
class Plan:
    """What ``bulkcopy worker`` was told to do."""

    job_ids: tuple[str, ...] = ()  # only these jobs; empty: any runnable job
    max_jobs: int = 0  # leave after this many jobs (0: no limit)
    follow: bool = False  # when no job is runnable, poll for new ones
    poll: float = 5.0  # seconds between looks for work


@dataclass(frozen=True, slots=True)
class Candidate:
    """A job and what is left in it, as :func:`choose` weighs it."""

    job: JobRecord
    pending: bool  # tasks to claim
    unfinished: bool  # tasks pending or running (perhaps held by others)


@dataclass(frozen=True, slots=True)
class Choice:
    """Work on ``job``, or (``None``) wait and look again, or stop (``done``)."""

    job: JobRecord | None
    done: bool = False


def choose(plan: Plan, candidates: Sequence[Candidate], finished: int) -> Choice:
    """The next job for a worker that has finished ``finished`` jobs.

    ``candidates`` are in preference order: ``plan.job_ids`` order, or
    priority then age."""
    if plan.max_jobs and finished >= plan.max_jobs:
        return Choice(None, done=True)
    if plan.job_ids:
        for c in candidates:
            if c.job.status is JobStatus.INGESTING:
                return Choice(None)  # its submit is still reading: wait
            if c.job.status in NAMED_RUNNABLE and c.unfinished:
                return Choice(c.job)
        return Choice(None, done=True)
    for c in candidates:
        if c.pending:
            return Choice(c.job)
    for c in candidates:
        if c.unfinished:
            return Choice(c.job)  # its last tasks are held by others: wait
    return Choice(None, done=not plan.follow)


@dataclass
class Outcome:
    """What a worker process did: the jobs it ran, and whether it was stopped."""

    jobs: list[tuple[str, JobCounts]] = field(default_factory=list)
    stopped: bool = False


class Scheduler:
    """Runs :func:`choose`'s jobs one after another until there are none."""

    def __init__(
        self,
        repo: Repository,
        plan: Plan,
        make_worker: Callable[[JobRecord, Callable[[str], bool] | None], Worker],
        observer: events.Observer = events.ignore,
    ) -> None:
        self.repo = repo
        self.plan = plan
        self.make_worker = make_worker
        self.observer = observer
        self.current: Worker | None = None
        # jobs given up in this process (failure threshold): not run again
        self.given_up: set[str] = set()
        self._stop = asyncio.Event()
        self.stops_requested = 0

    def request_stop(self) -> None:
        """Stop after the current job's in-flight copies (twice: abort them)."""
        self.stops_requested += 1
        self._stop.set()
        if self.current is not None:
            self.current.request_stop()

    async def run(self) -> Outcome:
        outcome = Outcome()
        idle_said = False
        while not self._stop.is_set():
            candidates = await asyncio.to_thread(self._candidates)
            choice = choose(self.plan, candidates, len(outcome.jobs))
            if choice.done:
                break
            if choice.job is None:
                if not idle_said:
                    self.observer(events.WaitingForWork(self.plan.job_ids))
                    idle_said = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.plan.poll)
                continue
            idle_said = False
            # a job of ours runs dry while others hold its last tasks: wait
            # for them, unless another job has tasks to claim
            other_work = None if self.plan.job_ids else self._pending_elsewhere
            worker = self.make_worker(choice.job, other_work)
            self.current = worker
            for _ in range(self.stops_requested):
                worker.request_stop()
            try:
                counts = await worker.run()
            finally:
                self.current = None
            if worker.failed is not None:
                self.given_up.add(choice.job.id)
            outcome.jobs.append((choice.job.id, counts))
        outcome.stopped = self._stop.is_set()
        return outcome

    def _pending_elsewhere(self, job_id: str) -> bool:
        return any(
            self.repo.has_pending(j.id)
            for j in self.repo.runnable_jobs()
            if j.id != job_id
        )

    def _candidates(self) -> list[Candidate]:
        if self.plan.job_ids:
            jobs = [self.repo.get_job(j) for j in self.plan.job_ids]
        else:
            jobs = self.repo.runnable_jobs()
        out = []
        for job in jobs:
            if job.id in self.given_up:
                continue  # failed here: a person fixes the cause, then resumes
            pending = self.repo.has_pending(job.id)
            unfinished = pending or self.repo.has_unfinished(job.id)
            if (
                not unfinished
                and job.status in (JobStatus.RUNNING, JobStatus.SUBMITTED)
                and job.ingest_state is None
            ):
                # every task has its result, though no worker said so (its
                # last worker was killed after recording): it is complete
                self.repo.set_job_status(
                    job.id, JobStatus.COMPLETE, only_from=(job.status,)
                )
                continue
            out.append(Candidate(job, pending, unfinished))
        return out
