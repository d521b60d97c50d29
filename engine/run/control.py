"""How a worker is controlled: a stop request (a signal: the first drains,
the second aborts), and the job's status followed while it runs — ``bulkcopy
pause``, ``resume`` and ``cancel`` reach every worker this way, and so does
another worker giving the job up (its failure threshold).

:class:`WorkerControl` is one part of :class:`engine.run.worker.Worker`: the
fields it uses are the worker's (set in its ``__init__``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from engine.domain import control
from engine.domain.models import JobStatus
from engine.domain.records import JobRecord, WorkerState
from engine.run import events
from engine.run.peers import is_live
from engine.run.settings import RunSettings
from engine.store import Repository


class WorkerControl:
    """Stop, pause, resume, cancel and give up, for the worker."""

    repo: Repository
    job: JobRecord
    worker_id: str
    run_settings: RunSettings
    observer: events.Observer
    stops_requested: int
    paused: bool
    cancelled: bool
    failed: str | None
    _stop: asyncio.Event
    _hold: asyncio.Event
    _abort: bool
    _state: str
    _in_flight: dict[int, asyncio.Task[Any]]
    call: Callable[..., Awaitable[Any]]
    _started_at: float

    async def _end_status(self, remaining: int) -> bool:
        """The job's status as this run leaves it (``remaining``: tasks
        without a result); whether the run was stopped short."""
        stopped = self._stop.is_set() and remaining > 0 and not self.cancelled
        last_stopped = (
            stopped
            and self.run_settings.stop_marks_job
            and self.failed is None
            and not await self._others_live()
        )
        end = control.run_end(remaining, self.failed is not None, last_stopped)
        if end is not None:
            status, only_from = end
            message = self.failed if status is JobStatus.FAILED else None
            await self.call(
                partial(
                    self.repo.set_job_status,
                    self.job.id,
                    status,
                    message,
                    only_from=only_from,
                )
            )
        return stopped

    async def _listed(self) -> None:
        """The listing this run copies from is all in: the job, which the
        start could not mark running while it was listed, is marked so by
        the run itself, in order with its own last status (a run stopped
        before it sees this leaves the job as its end says)."""
        await self.call(
            partial(
                self.repo.set_job_status,
                self.job.id,
                JobStatus.RUNNING,
                None,
                self._started_at,
                only_from=(JobStatus.SUBMITTED,),
            )
        )

    async def _others_live(self) -> bool:
        now = time.time()
        others = await self.call(self.repo.workers_of, self.job.id)
        return any(is_live(w, now) and w.id != self.worker_id for w in others)

    def stop_claiming(self) -> None:
        """Leave once the copies in flight are recorded, quietly: the run's
        caller has a reason of its own (the listing feeding it failed)."""
        self._stop.set()
        self._hold.set()

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
            await self.call(self.repo.set_worker_state, self.worker_id, state)

    async def _control(self) -> None:
        """Follow the job's status: pause, resume and cancel by an operator
        (``bulkcopy pause|resume|cancel``) reach every worker this way."""
        while True:
            await asyncio.sleep(self.run_settings.control_interval)
            status = await self.call(self.repo.job_status, self.job.id)
            if status is JobStatus.CANCELLED and not self.cancelled:
                self.cancelled = True
                self.observer(events.JobCancelled(self.job.id, len(self._in_flight)))
                self._stop.set()
                self._hold.set()
                return
            if status is JobStatus.FAILED and self.failed is None:
                record = await self.call(self.repo.get_job, self.job.id)
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

    def _give_up(self, reason: str) -> None:
        """Stop this run because the job fails: finish the copies in flight,
        hand back the rest; the job is marked ``failed`` at the end."""
        self.failed = reason
        self.observer(events.JobFailing(self.job.id, reason, len(self._in_flight)))
        self._stop.set()
        self._hold.set()
