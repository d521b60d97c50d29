"""Prometheus metrics of a run, built from the engine's events.

:class:`Metrics` is an observer (``engine.run.events``): it counts what the
events say, in a registry of its own, served over HTTP (``--metrics-port``)
for a scrape or written to a node-exporter textfile (``--metrics-textfile``)
for cron jobs and other short runs.

    bulkcopy_tasks_total{job,status}        finished tasks
    bulkcopy_bytes_copied_total{job}        bytes of the succeeded tasks
    bulkcopy_retries_total{job,code}        failed attempts that were retried
    bulkcopy_throttles_total{job}           of those, throttling (SlowDown, 503)
    bulkcopy_errors_total{job,status,code}  failed and skipped tasks by code
    bulkcopy_task_duration_seconds{job}     first attempt to result (histogram)
    bulkcopy_concurrency{job}               requests allowed in flight (adaptive)
    bulkcopy_job_tasks{job,status}          the job's tasks (all workers) by
                                            status, at run start and end
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
    write_to_textfile,
)

from engine.domain.classify import Disposition, classify
from engine.domain.codes import REMOVED
from engine.domain.models import TaskStatus
from engine.run import events

# copies take milliseconds (small objects) to hours (5 TB multipart)
BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    1800,
    7200,
)

# one S3 request: milliseconds, or minutes for a large UploadPartCopy
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)


class Metrics:
    """A run's metrics; call it with each event."""

    def __init__(self, concurrency: int = 0) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.tasks = Counter(
            "bulkcopy_tasks", "Finished tasks by status.", ["job", "status"], registry=r
        )
        self.bytes = Counter(
            "bulkcopy_bytes_copied", "Bytes of succeeded tasks.", ["job"], registry=r
        )
        self.retries = Counter(
            "bulkcopy_retries",
            "Failed attempts that were retried, by error code.",
            ["job", "code"],
            registry=r,
        )
        self.requests = Counter(
            "bulkcopy_requests",
            "S3 requests by operation and outcome (ok, or the error code).",
            ["job", "operation", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "bulkcopy_request_duration_seconds",
            "S3 request latency by operation (the SDK's retries included).",
            ["job", "operation"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.deleted = Counter(
            "bulkcopy_sources_deleted",
            "Sources a move deleted after their verified copy.",
            ["job"],
            registry=r,
        )
        self.throttles = Counter(
            "bulkcopy_throttles",
            "Retried attempts the service throttled (SlowDown, 503, ...).",
            ["job"],
            registry=r,
        )
        self.errors = Counter(
            "bulkcopy_errors",
            "Failed and skipped tasks by error code.",
            ["job", "status", "code"],
            registry=r,
        )
        self.duration = Histogram(
            "bulkcopy_task_duration_seconds",
            "From a task's first attempt to its result.",
            ["job"],
            buckets=BUCKETS,
            registry=r,
        )
        self.concurrency = Gauge(
            "bulkcopy_concurrency", "Copies allowed in flight.", ["job"], registry=r
        )
        self.job_tasks = Gauge(
            "bulkcopy_job_tasks",
            "The job's tasks by status (all workers), at run start and end.",
            ["job", "status"],
            registry=r,
        )
        self._concurrency = concurrency

    def __call__(self, event: events.Event) -> None:
        match event:
            case events.RunStarted(job_id=job, counts=counts):
                self.concurrency.labels(job).set(self._concurrency)
                self._job_counts(job, counts)
            case events.TaskRetrying(task=task, code=code):
                self.retries.labels(task.job_id, code).inc()
                if classify(code, None) is Disposition.THROTTLE:
                    self.throttles.labels(task.job_id).inc()
            case events.TaskFinished(task=task, result=result):
                job = task.job_id
                self.tasks.labels(job, result.status.value).inc()
                if result.status is TaskStatus.SUCCEEDED:
                    self.bytes.labels(job).inc(result.bytes or 0)
                elif result.error_code:
                    self.errors.labels(
                        job, result.status.value, result.error_code
                    ).inc()
                if result.delete_state in REMOVED:
                    self.deleted.labels(job).inc()
                self.duration.labels(job).observe(
                    max(0.0, result.finished_at - result.started_at)
                )
            case events.RequestDone(
                job_id=job, operation=op, outcome=outcome, seconds=seconds
            ):
                self.requests.labels(job, op, outcome).inc()
                self.latency.labels(job, op).observe(seconds)
            case events.ConcurrencyChanged(job_id=job, limit=limit):
                self.concurrency.labels(job).set(limit)
            case events.RunFinished(job_id=job, counts=counts):
                self._job_counts(job, counts)
            case _:
                pass

    def _job_counts(self, job: str, counts: object) -> None:
        by_status = getattr(counts, "by_status", {})
        for status in TaskStatus:
            self.job_tasks.labels(job, status.value).set(by_status.get(status.value, 0))

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` on ``port`` (a thread of this process)."""
        start_http_server(port, addr=addr, registry=self.registry)

    def write(self, path: str | Path) -> None:
        """Write the metrics to ``path`` atomically (node exporter textfile)."""
        write_to_textfile(str(path), self.registry)
