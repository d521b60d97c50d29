"""Show engine events: a rich progress bar on a terminal, log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from engine.domain.models import TaskStatus
from engine.run import events
from engine.usecases.report import human_bytes

log = structlog.get_logger("bulkcopy")


class Renderer:
    """Observer that turns events into progress and structured log lines."""

    def __init__(self, *, progress: bool | None = None, every: float = 10.0) -> None:
        self.interactive = sys.stderr.isatty() if progress is None else progress
        self.every = every
        self._progress: Progress | None = None
        self._bar: Any = None
        self.total = 0
        self.done = 0
        self.failed = 0
        self.bytes = 0
        # the adaptive limit of requests in flight, once it moved (0: never)
        self.concurrency = 0
        self._run_done = 0
        self._t0 = time.monotonic()
        self._last_log = self._t0

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop_progress()

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _start_progress(self) -> None:
        self._progress = Progress(
            TextColumn("[bold]copying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[bytes]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("[red]{task.fields[failed]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar = self._progress.add_task(
            "copy", total=self.total, completed=self.done, bytes="", rate="", failed=""
        )
        self._progress.start()

    def rate(self) -> float:
        elapsed = time.monotonic() - self._t0
        return self._run_done / elapsed if elapsed > 0 else 0.0

    def __call__(self, event: events.Event) -> None:
        match event:
            case events.RunStarted(job_id=job_id, counts=counts, released=released):
                self.total = counts.total
                self.done = counts.finished
                self.failed = counts.get(TaskStatus.FAILED)
                self.bytes = counts.bytes_done
                self._t0 = self._last_log = time.monotonic()
                log.info(
                    "run_started",
                    job_id=job_id,
                    worker=event.worker_id,
                    tasks=counts.total,
                    already_done=counts.finished,
                    released_from_crashed_run=released,
                    transfer=event.transfer,
                )
                if self.interactive:
                    self._start_progress()
            case events.TasksListed(total=total, listed=listed):
                self.total = max(self.total, total)
                if self._progress is not None:
                    self._progress.update(self._bar, total=self.total)
                if listed:
                    log.info("listing_done", job_id=event.job_id, tasks=total)
            case events.PreflightWarning(job_id=job_id, message=message):
                log.warning("preflight_warning", job_id=job_id, detail=message)
            case events.UploadsLeft(job_id=job_id, count=count, command=command):
                log.warning(
                    "uploads_left_open",
                    job_id=job_id,
                    uploads=count,
                    detail=f"{count} multipart upload(s) of failed tasks could "
                    f"not be aborted; remove them with: {command}",
                )
            case events.TaskRetrying():
                log.debug(
                    "task_retry",
                    task=event.task.id,
                    key=event.task.src.key,
                    attempt=event.attempt,
                    code=event.code,
                    delay=round(event.delay, 3),
                )
            case events.TaskFinished(task=task, result=result):
                self.done += 1
                self._run_done += 1
                self.bytes += result.bytes or 0
                if result.status is TaskStatus.FAILED:
                    self.failed += 1
                    log.warning(
                        "copy_failed",
                        task=task.id,
                        source=task.src.uri(),
                        code=result.error_code,
                        http_status=result.http_status,
                        attempts=result.attempts,
                        detail=result.error_message,
                    )
                elif result.status is TaskStatus.SKIPPED:
                    log.info(
                        "copy_skipped",
                        task=task.id,
                        source=task.src.uri(),
                        code=result.error_code,
                        detail=result.error_message,
                    )
                self._tick()
            case events.Draining(in_flight=n):
                log.warning(
                    "stopping",
                    detail="finishing requests in flight; "
                    "interrupt again to stop at once",
                    in_flight=n,
                )
            case events.Aborting(in_flight=n):
                log.warning("aborting", in_flight=n)
            case events.JobPaused(job_id=job_id, in_flight=n):
                log.warning(
                    "job_paused",
                    job_id=job_id,
                    detail="paused by `bulkcopy pause`: finishing requests in "
                    "flight, then waiting for `bulkcopy resume`",
                    in_flight=n,
                )
            case events.JobResumed(job_id=job_id):
                log.info("job_resumed", job_id=job_id)
            case events.JobCancelled(job_id=job_id, in_flight=n):
                log.warning(
                    "job_cancelled",
                    job_id=job_id,
                    detail="cancelled by `bulkcopy cancel`: finishing requests "
                    "in flight, then leaving",
                    in_flight=n,
                )
            case events.CredentialsRefreshed(job_id=job_id):
                log.info(
                    "credentials_refreshed",
                    job_id=job_id,
                    detail="S3 said ExpiredToken: credentials refreshed through "
                    "the chain; the copies go on (not counted as attempts)",
                )
            case events.ConcurrencyChanged(job_id=job_id, limit=limit, why=why):
                self.concurrency = limit
                if why == "throttled":
                    log.warning(
                        "concurrency_lowered",
                        job_id=job_id,
                        concurrency=limit,
                        detail="S3 is throttling (SlowDown/503): fewer requests "
                        "in flight",
                    )
                elif why == "settled":
                    log.info(
                        "concurrency_settled",
                        job_id=job_id,
                        concurrency=limit,
                        detail="more requests in flight no longer brought more "
                        "copies a second: back to the best level found",
                    )
                else:
                    log.debug(
                        "concurrency_raised", job_id=job_id, concurrency=limit, why=why
                    )
            case events.RunResources(
                job_id=job_id,
                peak_limit=limit,
                peak_in_flight=most,
                peak_rss_mb=rss,
                store_lacks=lacks,
            ):
                log.info(
                    "run_resources",
                    job_id=job_id,
                    peak_concurrency=limit,
                    peak_in_flight=most,
                    peak_rss_mb=round(rss, 1),
                )
                if lacks:
                    log.info(
                        "store_quirks",
                        job_id=job_id,
                        ignores=list(lacks),
                        detail="the store ignores these; bulkcopy checked "
                        "another way (a HEAD before each listed copy, the "
                        "source looked at again before its delete)",
                    )
            case events.JobFailing(job_id=job_id, reason=reason, in_flight=n):
                log.error(
                    "job_failing",
                    job_id=job_id,
                    reason=reason,
                    detail="giving up on the job: finishing requests in flight, "
                    f"then leaving; fix the cause, then: bulkcopy resume {job_id}",
                    in_flight=n,
                )
            case events.TasksTakenBack(job_id=job_id, tasks=n):
                log.warning(
                    "tasks_taken_back",
                    job_id=job_id,
                    tasks=n,
                    detail="their worker died or its lease expired; "
                    "they will be copied again",
                )
            case events.WaitingForWork(job_ids=job_ids):
                log.info(
                    "waiting_for_work",
                    jobs=list(job_ids) or "any",
                    detail="no job to work on yet",
                )
            case events.RunFinished(job_id=job_id, counts=counts, stopped=stopped):
                self._stop_progress()
                log.info(
                    "run_finished",
                    job_id=job_id,
                    stopped=stopped,
                    succeeded=counts.get(TaskStatus.SUCCEEDED),
                    failed=counts.get(TaskStatus.FAILED),
                    skipped=counts.get(TaskStatus.SKIPPED),
                    remaining=counts.remaining,
                    bytes=counts.bytes_done,
                    **(
                        {"sources_deleted": counts.sources_deleted}
                        if counts.sources_deleted
                        else {}
                    ),
                )

    def _tick(self) -> None:
        now = time.monotonic()
        if self._progress is not None:
            self._progress.update(
                self._bar,
                completed=self.done,
                bytes=human_bytes(self.bytes),
                rate=f"{self.rate():.0f} obj/s",
                failed=f"{self.failed} failed" if self.failed else "",
            )
        elif now - self._last_log >= self.every:
            self._last_log = now
            rate = self.rate()
            remaining = self.total - self.done
            log.info(
                "progress",
                done=self.done,
                total=self.total,
                failed=self.failed,
                bytes=self.bytes,
                rate=round(rate, 1),
                eta_s=round(remaining / rate) if rate else None,
                **({"concurrency": self.concurrency} if self.concurrency else {}),
            )
