"""Glue shared by the commands: opening the repository, running a job, exit codes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import click
import structlog

from engine.cli.output import configure_logging
from engine.cli.render import Renderer
from engine.domain.backoff import RetryPolicy
from engine.domain.errors import UsageError
from engine.domain.failure_threshold import FailurePolicy
from engine.domain.models import JobCounts, JobStatus, TaskStatus
from engine.domain.records import JobRecord
from engine.domain.spec import ClientSettings, JobSpec
from engine.run import loop
from engine.run.jobclient import reading_client
from engine.run.loading import Loading
from engine.run.settings import MAX_CONCURRENCY, START_CONCURRENCY, RunSettings
from engine.run.signals import stop_on_signals
from engine.run.worker import Worker
from engine.store import Repository
from engine.usecases.report import errors_by_code
from engine.usecases.submit import finish_ingest

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_CANNOT_START = 3
EXIT_INTERRUPTED = 130

log = structlog.get_logger("bulkcopy")


def setup(log_format: str, verbose: int, quiet: bool) -> None:
    configure_logging(log_format, verbose, quiet)


def _reconnecting(what: str, error: BaseException, delay: float) -> None:
    log.warning(
        "database_reconnecting",
        during=what,
        retry_in_s=round(delay, 2),
        error=str(getattr(error, "orig", None) or error).strip(),
    )


def open_repo(db: str | None) -> Repository:
    return Repository(db, on_reconnect=_reconnecting)


def client_overrides(base: ClientSettings, **opts: Any) -> ClientSettings:
    """``base`` with the client options the user gave on the command line."""
    return base.merged(
        endpoint_url=opts.get("endpoint_url"),
        region=opts.get("region"),
        profile=opts.get("profile"),
        addressing_style=opts.get("addressing_style"),
        signature_version=opts.get("signature_version"),
        content_md5=opts.get("content_md5") or None,
        lean_copy=opts.get("lean_copy"),
    )


def source_overrides(base: ClientSettings | None, **opts: Any) -> ClientSettings | None:
    """The sources' client settings: ``base`` (the job's, ``None``: none of
    its own) with the ``--source-*`` options given; ``None`` when neither."""
    given = {
        name: opts.get(f"source_{name}")
        for name in ("endpoint_url", "region", "profile", "addressing_style")
    }
    if base is None and all(v is None for v in given.values()):
        return None
    return (base or ClientSettings()).merged(**given)


def exit_code(counts: JobCounts) -> int:
    """0 when every task succeeded (or was skipped because the destination
    already held it), 130 when some never ran, 1 when some failed or were
    skipped for another reason (not copied: a script must not take the job
    as done)."""
    if counts.remaining:
        return EXIT_INTERRUPTED
    if (
        counts.get(TaskStatus.FAILED)
        or counts.get(TaskStatus.SKIPPED) > counts.up_to_date
    ):
        return EXIT_SOME_FAILED
    return EXIT_OK


def client_opener(opts: dict[str, Any]) -> Callable[[JobSpec], Any]:
    """Opens a job's S3 client with the command line's client options, for
    the S3 calls of a submit (listing, manifest download)."""

    def open_(spec: JobSpec, *, list_buckets: tuple[str, ...] = ()) -> Any:
        return reading_client(
            spec,
            client_overrides(spec.client, **opts),
            source_overrides(spec.source_client, **opts),
            list_buckets=list_buckets,
        )

    return open_


def ingest_progress(location: str, every: float = 10.0) -> Callable[[int], None]:
    """Logs how many manifest rows a long submit has read, every ``every`` s."""
    last = time.monotonic()

    def progress(rows: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= every:
            last = now
            log.info("ingest_progress", manifest=location, rows_read=rows)

    return progress


def finish_submit(repo: Repository, job: JobRecord, opts: dict[str, Any]) -> JobRecord:
    """Finish reading the manifest of a job whose submit was interrupted."""
    if job.status is not JobStatus.INGESTING:
        return job
    log.info("ingest_resumed", job_id=job.id, manifest=job.manifest)
    return loop.run(
        finish_ingest(
            repo,
            job,
            open_client=client_opener(opts),
            on_batch=ingest_progress(job.manifest),
        )
    )


def run_settings(opts: dict[str, Any], **more: Any) -> RunSettings:
    """The worker settings the CLI's run options ask for."""
    extra = {"lease_seconds": opts["lease"]} if opts.get("lease") else {}
    return RunSettings(
        concurrency=opts["concurrency"],
        max_concurrency=opts.get("max_concurrency") or MAX_CONCURRENCY,
        part_concurrency=opts["part_concurrency"],
        retry=RetryPolicy(max_attempts=opts["max_attempts"]),
        preflight=not opts["no_preflight"],
        min_concurrency=opts.get("min_concurrency") or 1,
        max_rps=opts.get("max_rps"),
        # every request's end, for the requests and latency metrics
        request_events=bool(opts.get("metrics_port") or opts.get("metrics_textfile")),
        failure=FailurePolicy(
            fail_after=opts.get("fail_after", 1000),
            fail_ratio=opts.get("fail_ratio", 50.0) / 100,
            burst=opts.get("fail_burst", 100),
        ),
        **extra,
        **more,
    )


def make_worker(
    repo: Repository,
    job: JobRecord,
    opts: dict[str, Any],
    observer: Any,
    other_work: Callable[[str], bool] | None = None,
    loading: Loading | None = None,
    **settings: Any,
) -> Worker:
    """A worker for ``job`` with the CLI's run and client options."""
    spec = job.spec
    run = run_settings(opts, **settings)
    # a connection for each request in flight
    pool = max(10, run.ceiling)
    client = client_overrides(spec.client, **opts).merged(max_pool_connections=pool)
    source = source_overrides(spec.source_client, **opts)
    return Worker(
        repo,
        job,
        run,
        client,
        observer,
        other_work=other_work,
        loading=loading,
        source_overrides=(
            None if source is None else source.merged(max_pool_connections=pool)
        ),
    )


class MetricsSink:
    """``--metrics-port`` / ``--metrics-textfile``: the run's events also go
    to Prometheus metrics (:mod:`engine.run.metrics`), served or written."""

    EVERY = 10.0  # seconds between textfile writes

    def __init__(self, opts: dict[str, Any], observer: Any) -> None:
        self.observer = observer
        self.metrics: Any = None  # engine.run.metrics.Metrics
        self.textfile = opts.get("metrics_textfile")
        self._written = 0.0
        port = opts.get("metrics_port")
        if port is None and self.textfile is None:
            return
        from engine.run.metrics import Metrics  # prometheus_client, only when asked

        self.metrics = Metrics(concurrency=opts.get("concurrency") or START_CONCURRENCY)
        if port is not None:
            try:
                self.metrics.serve(port)
            except OSError as exc:
                raise UsageError(f"--metrics-port {port}: {exc.strerror}") from None
            log.info("metrics_serving", url=f"http://0.0.0.0:{port}/metrics")

    def __call__(self, event: Any) -> None:
        self.observer(event)
        if self.metrics is None:
            return
        self.metrics(event)
        if self.textfile and time.monotonic() - self._written >= self.EVERY:
            self.write()

    def write(self) -> None:
        if self.metrics is not None and self.textfile:
            self.metrics.write(self.textfile)
            self._written = time.monotonic()


def log_errors(repo: Repository, job_id: str, counts: JobCounts) -> None:
    """The run's end: the failed and skipped tasks by error code, one line."""
    if not (counts.get(TaskStatus.FAILED) or counts.get(TaskStatus.SKIPPED)):
        return
    log.warning("errors_by_code", job_id=job_id, **errors_by_code(repo, job_id))


Start = Callable[[Any, Callable[[Worker], Worker]], Awaitable[tuple[str, JobCounts]]]


def run_job(repo: Repository, job: JobRecord, opts: dict[str, Any]) -> int:
    """Run ``job`` in this process with the CLI's run options; return the exit code."""
    if job.status is JobStatus.CANCELLED:
        raise UsageError(
            f"job {job.id} was cancelled; copy what it left in a new job with: "
            f"bulkcopy retry {job.id} --pending"
        )
    job = finish_submit(repo, job, opts)

    async def start(
        observer: Any, adopt: Callable[[Worker], Worker]
    ) -> tuple[str, JobCounts]:
        worker = adopt(make_worker(repo, job, opts, observer))
        return job.id, await worker.run()

    return run_worker(repo, opts, start)


class _Stopper:
    """Where SIGINT / SIGTERM go: the run's worker, once there is one (a
    signal before it exists stops it as it starts)."""

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.stops = 0

    def adopt(self, worker: Worker) -> Worker:
        self.worker = worker
        for _ in range(self.stops):
            worker.request_stop()
        return worker

    def request_stop(self) -> None:
        self.stops += 1
        if self.worker is not None:
            self.worker.request_stop()


def run_worker(repo: Repository, opts: dict[str, Any], start: Start) -> int:
    """Run the worker ``start`` makes (with the observer to give it, and
    ``adopt`` to pass it through) under the CLI's progress, metrics and
    signal handling; log its end and return the exit code."""
    stopper = _Stopper()
    sinks: list[MetricsSink] = []

    async def go() -> tuple[str, JobCounts]:
        with Renderer(progress=opts.get("progress")) as renderer:
            sink = MetricsSink(opts, renderer)
            sinks.append(sink)
            with stop_on_signals(stopper):
                return await start(sink, stopper.adopt)

    try:
        job_id, counts = loop.run(go())
    finally:
        for sink in sinks:
            sink.write()
    log_errors(repo, job_id, counts)
    worker = stopper.worker
    if worker is not None and worker.failed is not None:
        click.echo(
            f"job {job_id} failed: {worker.failed}; {counts.remaining} tasks "
            f"not run. Fix the cause, then: bulkcopy resume {job_id}",
            err=True,
        )
        return EXIT_SOME_FAILED
    listing = repo.get_job(job_id).status is JobStatus.INGESTING
    code = EXIT_INTERRUPTED if listing else exit_code(counts)
    if code == EXIT_INTERRUPTED:
        left = "the rest of the listing" if listing else f"{counts.remaining} tasks"
        click.echo(
            f"stopped: {left} not finished; resume with: bulkcopy resume {job_id}",
            err=True,
        )
    return code
