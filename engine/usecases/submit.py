"""Submit: read a manifest into a job, batch by batch, resumably.

A job is created ``ingesting``; each batch of rows goes in with the reader's
checkpoint in one transaction, so a killed submit loses at most the batch it
was writing and the same command (or ``run``/``resume`` of the job) carries
on after the last stored batch.  The manifest's identity is checked first: a
manifest that changed under an interrupted ingest is refused.  When every row
is in, collisions are checked, versions numbered, and the job becomes
``submitted``.

A malformed row (unless ``--skip-invalid``) or a collision fails the submit
with the file and line, and removes the job: nothing of it stays behind.

A listing can also be copied while it is read (:func:`submit_and_run`):
each page's tasks are claimed as soon as they are stored, as s5cmd copies
what it has listed, instead of after the last page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from typing import Any, Protocol

from engine.domain.errors import KeyConflict, ManifestError, UsageError
from engine.domain.keys import normalize_prefix
from engine.domain.models import Destination, JobCounts, JobStatus
from engine.domain.records import JobRecord
from engine.domain.spec import JobSpec
from engine.manifest.listing import parse_location
from engine.manifest.sources import Reader, Source, detect_kind
from engine.run import loop
from engine.run.loading import Loading
from engine.store import Repository
from engine.usecases import earlier_job
from engine.usecases.ingest_process import in_child, worth_a_process
from engine.usecases.ingest_rows import IngestState, Prepared, Preparer

# (spec, list_buckets=...) -> async context manager of a client
OpenClient = Callable[..., Any]


def _comparable(data: dict[str, Any]) -> Any:
    """``data`` as it reads back from the database (tuples become lists),
    without what the ingest itself fills in."""
    stored = {k: v for k, v in data.items() if k != "source_buckets"}
    return json.loads(json.dumps(stored, sort_keys=True))


def submit(
    repo: Repository,
    manifest: str,
    destination: Destination,
    spec: JobSpec,
    *,
    skip_invalid: bool = False,
) -> JobRecord:
    """Create a job from the local manifest file ``manifest`` (a CSV, an
    inventory manifest.json or a completion report), all at once."""
    source = Source(detect_kind(manifest), manifest, skip_invalid=skip_invalid)
    return loop.run(submit_source(repo, source, destination, spec))


async def submit_source(
    repo: Repository,
    source: Source,
    destination: Destination,
    spec: JobSpec,
    *,
    restart: bool = False,
    priority: int = 0,
    open_client: OpenClient | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> JobRecord:
    """Create a job from ``source`` (or finish the interrupted ingest of the
    same manifest into the same destination) and return it.  A spec that
    cannot make a job is refused here (:meth:`JobSpec.validate`), before
    anything is written."""
    async with _started(
        repo, source, destination, spec, restart, priority, open_client
    ) as (job, reader):
        return await _ingest(repo, job, reader, on_batch)


class Runner(Protocol):
    """What runs a job while its listing is read (a worker)."""

    async def run(self) -> JobCounts: ...

    def stop_claiming(self) -> None: ...

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` on the run's database thread."""


def copies_while_listing(
    source: Source, destination: Destination, spec: JobSpec
) -> bool:
    """Whether ``source`` can be copied while it is read: a listing of the
    latest versions (no order to keep between versions) whose objects cannot
    collide at the destination (one bucket, a one-to-one key mapping) nor be
    overwritten by another copy of the job (another bucket).  Anything else
    is checked as a whole once every row is in, before a copy is made."""
    return (
        source.kind == "listing"
        and not source.all_versions
        and spec.keys.injective
        and parse_location(source.location)[0] != destination.bucket
    )


async def submit_and_run(
    repo: Repository,
    source: Source,
    destination: Destination,
    spec: JobSpec,
    make_runner: Callable[[JobRecord, Loading], Runner],
    *,
    restart: bool = False,
    priority: int = 0,
    open_client: OpenClient | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[JobRecord, JobCounts]:
    """Submit a listing (:func:`copies_while_listing`) and run the job at
    once: the runner claims each page's tasks as soon as they are stored.
    Returns the job as it is after the run (``ingesting`` still if the run
    was stopped before the listing ended: ``resume`` lists the rest) and
    the run's counts.

    A listing that fails stops the run (what is in flight is recorded) and
    keeps the job, as a submit does, to be resumed where the listing
    stopped; a bad manifest's job is removed, as a failed submit's is, only
    if nothing was copied: every copy made stays in a report."""
    async with _started(
        repo, source, destination, spec, restart, priority, open_client
    ) as (job, reader):
        loading = Loading()
        # the listing's bucket is the job's only source (the preflight and
        # a move's checks read it before the ingest has recorded it)
        bucket = parse_location(source.location)[0]
        runner = make_runner(
            replace(job, spec=replace(job.spec, source_buckets=(bucket,))), loading
        )
        run = asyncio.create_task(runner.run())

        ingest = asyncio.create_task(
            _ingest(repo, job, reader, on_batch, streaming=loading, call=runner.call)
        )
        await asyncio.wait((run, ingest), return_when=asyncio.FIRST_COMPLETED)
        failure = None
        if ingest.done() and not ingest.cancelled():
            failure = ingest.exception()
        if failure is None and (run.done() or not ingest.done() or ingest.cancelled()):
            # the run ended first (stopped, cancelled, failed), or as the
            # listing did: the job stays as the run left it (ingesting:
            # resume lists the rest), never marked running with no run
            if not ingest.done():
                ingest.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ingest
            counts = await run  # a run that broke (a bucket missing) raises here
            return repo.get_job(job.id), counts
        if failure is not None:
            runner.stop_claiming()
            with contextlib.suppress(Exception):  # the listing's error is the story
                await run
            bad_manifest = isinstance(failure, (ManifestError, UsageError, KeyConflict))
            if bad_manifest and repo.counts(job.id).finished == 0:
                repo.drop_job(job.id)  # as a failed submit: nothing stays behind
            raise failure
        # the run marks the job running once it sees this (in order with its
        # own last status), unless it is stopped first
        loading.finish()
        counts = await run
        return repo.get_job(job.id), counts


@asynccontextmanager
async def _started(
    repo: Repository,
    source: Source,
    destination: Destination,
    spec: JobSpec,
    restart: bool,
    priority: int,
    open_client: OpenClient | None,
) -> AsyncIterator[tuple[JobRecord, Reader]]:
    """The job ``source`` goes into (new, or the interrupted ingest of the
    same manifest into the same destination), and the reader of ``source``."""
    spec.validate()
    mapping = replace(spec.keys, prefix=destination.prefix)
    spec = replace(spec, keys=mapping)
    prefix = normalize_prefix(destination.prefix)
    async with open_reader(source, spec, open_client, repo) as reader:
        identity = await reader.identity()
        job = repo.interrupted_ingest(source.location, destination.bucket, prefix)
        if job is not None and restart:
            repo.drop_job(job.id)
            job = None
        if job is not None:
            _check_resumable(job, source, spec, identity)
        else:
            job_id = repo.start_ingest(
                manifest=source.location,
                dst_bucket=destination.bucket,
                dst_prefix=prefix,
                spec=spec.to_dict(),
                source=source.to_dict(),
                identity=identity,
                priority=priority,
            )
            job = repo.get_job(job_id)
        yield job, reader


async def finish_ingest(
    repo: Repository,
    job: JobRecord,
    *,
    open_client: OpenClient | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> JobRecord:
    """Read the rest of the manifest of a job whose ingest was interrupted."""
    if job.status is not JobStatus.INGESTING:
        return job
    source = Source.from_dict(job.source)
    spec = job.spec
    async with open_reader(source, spec, open_client, repo) as reader:
        identity = await reader.identity()
        _check_resumable(job, source, spec, identity)
        return await _ingest(repo, job, reader, on_batch)


def _check_resumable(
    job: JobRecord, source: Source, spec: JobSpec, identity: str | None
) -> None:
    if job.manifest_identity != identity:
        raise ManifestError(
            source.location,
            None,
            f"changed since job {job.id} started reading it "
            f"({job.manifest_identity} then, {identity} now); the job cannot be "
            "finished from it: submit again with --restart to start over",
        )
    if _comparable(job.source) != _comparable(source.to_dict()) or _comparable(
        job.spec.to_dict()
    ) != _comparable(spec.to_dict()):
        raise UsageError(
            f"job {job.id} was reading {source.location} into this destination "
            "with other options when it was interrupted; repeat its submit "
            "command as it was to finish it, or add --restart to start over"
        )


@asynccontextmanager
async def open_reader(
    source: Source,
    spec: JobSpec,
    open_client: OpenClient | None,
    repo: Repository | None = None,
) -> AsyncIterator[Reader]:
    if not source.needs_s3:
        job_rows = None
        if source.kind == "job":
            if repo is None:
                raise UsageError("an earlier job's results need its database")
            job_rows = partial(earlier_job.job_rows, repo, source)
        reader = Reader(source, job_results=job_rows)
        try:
            yield reader
        finally:
            reader.close()
        return
    if open_client is None:
        raise UsageError(f"{source.describe()} needs S3 access")
    # a listing's pages on the lean path, where it can take them (versions
    # are listed by botocore)
    listing = source.kind == "listing" and not source.all_versions
    lists = (parse_location(source.location)[0],) if listing else ()
    async with open_client(spec, list_buckets=lists) as (client, requests):
        reader = Reader(source, client, list_args=requests.read_source())
        try:
            yield reader
        finally:
            reader.close()


async def _ingest(
    repo: Repository,
    job: JobRecord,
    reader: Reader,
    on_batch: Callable[[int], None] | None,
    *,
    streaming: Loading | None = None,
    call: Callable[..., Awaitable[Any]] | None = None,
) -> JobRecord:
    """Every batch of ``reader`` into ``job``; the job, ``submitted``.

    ``streaming``: a run copies the tasks meanwhile (told of each batch), so
    the database is written through ``call``, the run's own database thread
    (the event loop carries the run's copies, and one thread of writes keeps
    SQLite's lock uncontended), and a failure does not remove the job
    (:func:`submit_and_run` decides)."""
    source = reader.source
    call = call or _now
    spec = job.spec
    state = IngestState.from_dict(job.ingest_state or {})
    try:
        async for task_rows, after in _prepared(reader, job, spec, state):
            # the rows written so far are counted here (a reader process
            # only knows its own), so the total needs no count at the end
            written = state.totals.inserted
            state = after
            state.totals.inserted = (
                None
                if written is None
                else written + len(task_rows.plain) + len(task_rows.full)
            )
            await call(
                repo.add_tasks,
                job.id,
                task_rows.full,
                state.to_dict(),
                task_rows.plain,
                task_rows.plain_columns,
            )
            if streaming is not None:
                streaming.added(state.totals.inserted)
            if on_batch is not None:
                on_batch(state.totals.read)
        final = replace(spec, source_buckets=tuple(state.buckets))
        done: JobRecord = await call(
            repo.finish_ingest,
            job.id,
            spec=final.to_dict(),
            totals=state.totals,
            check_collisions=state.own_keys
            or len(state.buckets) > 1
            or not spec.keys.injective,
            order_versions=source.all_versions,
            # a listing names each object (version) once, an earlier job's
            # tasks are distinct; files may repeat a row
            merge_duplicates=source.kind not in ("listing", "job"),
        )
        return done
    except KeyConflict as exc:
        if streaming is None:
            repo.drop_job(job.id)
        raise KeyConflict(
            exc.source,
            f"{exc.reason}; {_key_conflict_hint(exc)}",
            collision=exc.collision,
        ) from None
    except (ManifestError, UsageError):
        if streaming is None:
            repo.drop_job(job.id)  # a bad manifest leaves nothing behind
        raise


async def _now(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


def _key_conflict_hint(exc: KeyConflict) -> str:
    """What to change when rows would overwrite each other at the destination."""
    if exc.collision:
        return "change --key-template / --strip-prefix or the manifest's dst_key"
    return "change --key-template / --strip-prefix / --to, or the manifest's dst_key"


async def _prepared(
    reader: Reader, job: JobRecord, spec: JobSpec, state: IngestState
) -> AsyncIterator[Prepared]:
    """Each batch of the manifest as task rows, with the state after it.

    A big local manifest is read and prepared in a child process, so parsing
    runs on one core while this one writes to the database."""
    source = reader.source
    if reader.local and worth_a_process(source):
        for prepared in in_child(source, job, spec, state):
            yield prepared
        return
    prep = Preparer(job.id, spec.keys, job.dst_prefix, source, state)
    async for rows in reader.batches(state.position or None):
        yield prep.prepare(rows), prep.state
