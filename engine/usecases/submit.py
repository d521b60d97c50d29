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
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import repeat
from typing import Any

from engine.domain.codes import INVALID_ROW
from engine.domain.errors import KeyConflict, ManifestError, UsageError
from engine.domain.keys import KeyMapping, default_destination, normalize_prefix
from engine.domain.models import Destination, JobStatus, TaskStatus
from engine.domain.records import IngestTotals, JobRecord, TaskRows, key_hash
from engine.domain.spec import JobSpec
from engine.manifest.inventory import load_inventory_manifest
from engine.manifest.rows import BATCH_ROWS, Rows
from engine.manifest.sources import Reader, Source, detect_kind
from engine.run import loop
from engine.store import Repository
from engine.usecases.estimate import Estimate

MAX_TRACKED_SOURCE_BUCKETS = 100

PENDING = TaskStatus.PENDING.value
FAILED = TaskStatus.FAILED.value


@dataclass(slots=True)
class _State:
    """What the ingest has done so far; stored with each batch."""

    position: dict[str, Any] = field(default_factory=dict)
    totals: IngestTotals = field(default_factory=IngestTotals)
    buckets: list[str] = field(default_factory=list)
    own_keys: bool = False  # some row names its own dst_key

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "totals": self.totals.to_dict(),
            "buckets": self.buckets,
            "own_keys": self.own_keys,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _State:
        return cls(
            position=dict(data.get("position", {})),
            totals=IngestTotals.from_dict(data.get("totals", {})),
            buckets=list(data.get("buckets", [])),
            own_keys=bool(data.get("own_keys")),
        )


OpenClient = Callable[[JobSpec], Any]  # -> async context manager of a client


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
    same manifest into the same destination) and return it."""
    mapping = replace(spec.keys, prefix=destination.prefix)
    spec = replace(spec, keys=mapping)
    prefix = normalize_prefix(destination.prefix)
    async with _reader(source, spec, open_client, repo) as reader:
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
        return await _ingest(repo, job, reader, on_batch)


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
    async with _reader(source, spec, open_client, repo) as reader:
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
async def _reader(
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
            job_rows = partial(_job_rows, repo, source)
        reader = Reader(source, job_results=job_rows)
        try:
            yield reader
        finally:
            reader.close()
        return
    if open_client is None:
        raise UsageError(f"{source.describe()} needs S3 access")
    async with open_client(spec) as (client, requests):
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
) -> JobRecord:
    source = reader.source
    spec = job.spec
    state = _State.from_dict(job.ingest_state or {})
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
            repo.add_tasks(
                job.id,
                task_rows.full,
                state.to_dict(),
                task_rows.plain,
                task_rows.plain_columns,
            )
            if on_batch is not None:
                on_batch(state.totals.read)
        final = replace(spec, source_buckets=tuple(state.buckets))
        return repo.finish_ingest(
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
    except KeyConflict as exc:
        repo.drop_job(job.id)
        raise KeyConflict(
            exc.source,
            f"{exc.reason}; {_key_conflict_hint(exc)}",
            collision=exc.collision,
        ) from None
    except (ManifestError, UsageError):
        repo.drop_job(job.id)  # a bad manifest leaves nothing behind
        raise


def _key_conflict_hint(exc: KeyConflict) -> str:
    """What to change when rows would overwrite each other at the destination."""
    if exc.collision:
        return "change --key-template / --strip-prefix or the manifest's dst_key"
    return "change --key-template / --strip-prefix / --to, or the manifest's dst_key"


Prepared = tuple[TaskRows, _State]


async def _prepared(
    reader: Reader, job: JobRecord, spec: JobSpec, state: _State
) -> AsyncIterator[Prepared]:
    """Each batch of the manifest as task rows, with the state after it.

    A big local manifest is read and prepared in a child process, so parsing
    runs on one core while this one writes to the database."""
    source = reader.source
    if reader.local and _worth_a_process(source):
        for prepared in _in_child(source, job, spec, state):
            yield prepared
        return
    prep = _Preparer(job.id, spec.keys, job.dst_prefix, source, state)
    async for rows in reader.batches(state.position or None):
        yield prep.prepare(rows), prep.state


class _Preparer:
    """Filters a batch, maps its keys, builds its task rows, and keeps the
    ingest's totals (the hot loop of a submit)."""

    def __init__(
        self,
        job_id: str,
        mapping: KeyMapping,
        prefix: str,
        source: Source,
        state: _State,
    ) -> None:
        self.source = source
        self.state = state
        self.build = _RowBuilder(job_id, mapping, prefix, source)
        self.buckets = dict.fromkeys(state.buckets)
        self.first = True

    def prepare(self, rows: Rows) -> TaskRows:
        source, state = self.source, self.state
        if self.first:
            source.filters.check(rows, source.location)
            self.first = False
        state.totals.read += len(rows)
        keep = source.filters.keep(rows)
        if keep is not None:
            state.totals.filtered += len(rows) - len(keep)
            rows = rows.take(keep)
        if not source.all_versions:
            rows.modified = None  # stored only to order versions
        task_rows, invalid, own = self.build.rows(rows, state.totals.read - len(rows))
        buckets = self.buckets
        if len(buckets) < MAX_TRACKED_SOURCE_BUCKETS:
            named = rows.buckets
            if rows.errors:
                named = [b for i, b in enumerate(named) if i not in rows.errors]
            for b in dict.fromkeys(named):  # first-seen order
                if len(buckets) < MAX_TRACKED_SOURCE_BUCKETS:
                    buckets.setdefault(b)
            state.buckets = list(buckets)
        state.totals.invalid += invalid
        state.own_keys = state.own_keys or own
        state.position = rows.position
        return task_rows


# local manifests at least this big are parsed in a child process
PROCESS_MIN_BYTES = 16 << 20
# batches the child has ready are written together, up to this many rows
COMMIT_ROWS = 50_000


def _worth_a_process(source: Source) -> bool:
    """Whether the manifest is big enough to pay for a reader process (and
    this platform can fork one)."""
    if "fork" not in mp.get_all_start_methods():
        return False
    try:
        if source.kind == "inventory":
            files = load_inventory_manifest(source.location).files
            size = sum(int(f.get("size") or 0) for f in files)
        else:
            size = os.path.getsize(source.location)
    except (OSError, ValueError, ManifestError):
        return False
    return size >= PROCESS_MIN_BYTES


def _in_child(
    source: Source, job: JobRecord, spec: JobSpec, state: _State
) -> Iterator[Prepared]:
    """Run the reader and preparer in a forked child; yield what it sends.

    The child sends each batch's rows with the state after it; an error it
    meets (a malformed manifest) is raised here, as if read here.
    """
    ctx = mp.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    args = (send, source, job.id, spec.keys, job.dst_prefix, state)
    child = ctx.Process(target=_child_main, args=args, daemon=True)
    child.start()
    send.close()

    def next_message() -> Any:
        try:
            return receive.recv()
        except EOFError:
            raise RuntimeError(
                f"the manifest reader process died (exit code {child.exitcode})"
            ) from None

    try:
        message = next_message()
        while True:
            kind = message[0]
            if kind == "batch":
                # what the child has already sent goes in one transaction (a
                # batch whose rows were all filtered out is committed alone:
                # commit points do not depend on the pipe's timing)
                rows, after = message[1], message[2]
                message = None
                while (
                    0 < len(rows.plain) + len(rows.full) < COMMIT_ROWS
                    and receive.poll()
                ):
                    message = next_message()
                    if message[0] != "batch" or not _joinable(rows, message[1]):
                        break
                    rows.plain += message[1].plain
                    rows.full += message[1].full
                    after, message = message[2], None
                yield rows, _State.from_dict(after)
                message = message or next_message()
            elif kind == "done":
                return
            elif kind == "manifest":
                raise ManifestError(*message[1])
            elif kind == "usage":
                raise UsageError(message[1])
            else:
                raise RuntimeError(f"the manifest reader failed: {message[1]}")
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()


def _joinable(rows: TaskRows, more: TaskRows) -> bool:
    """Whether ``more`` can go in the same statements as ``rows`` with the
    ids still in manifest order: both short rows of the same columns, or
    both full rows."""
    if rows.full or more.full:
        return not (rows.plain or more.plain)
    return rows.plain_columns == more.plain_columns


def _child_main(
    send: Any,
    source: Source,
    job_id: str,
    mapping: KeyMapping,
    prefix: str,
    state: _State,
) -> None:
    try:
        prep = _Preparer(job_id, mapping, prefix, source, state)
        for rows in Reader(source).local_batches(state.position or None):
            send.send(("batch", prep.prepare(rows), prep.state.to_dict()))
        send.send(("done",))
    except ManifestError as exc:
        send.send(("manifest", (exc.source, exc.line, exc.reason)))
    except UsageError as exc:
        send.send(("usage", str(exc)))
    except BaseException as exc:  # reported to the parent, which raises
        send.send(("crash", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()


class _RowBuilder:
    """Turns rows into task tuples (see :class:`TaskRows`): the hot loop."""

    def __init__(
        self, job_id: str, mapping: KeyMapping, prefix: str, source: Source
    ) -> None:
        self.job_id = job_id
        self.mapping = mapping
        self.prefix = prefix
        self.source = source
        # every key its prefix + source key: those are not stored (NULL)
        self.plain = mapping.injective

    def rows(self, rows: Rows, before: int) -> tuple[TaskRows, int, bool]:
        """The task rows of ``rows`` (``before`` rows of the manifest came
        earlier), how many are malformed, and whether any names its own key.

        A batch of plain rows (no error, override or delete marker: nearly
        all of them) is built in the short form; a batch with any of those in
        the full one, so ids keep the manifest's order either way."""
        job_id, prefix = self.job_id, self.prefix
        sizes: Iterator[Any] = iter(rows.sizes) if rows.sizes else repeat(None)
        modified: Iterator[Any] = iter(rows.modified) if rows.modified else repeat(None)
        dst: list[str | None]
        if self.plain:  # prefix + key is not stored (NULL) but in full rows
            extras = bool(rows.errors or rows.overrides or rows.kinds)
            dst = (
                [default_destination(prefix, k) for k in rows.keys]
                if extras
                else [None] * len(rows)
            )
        else:
            dst = list(self._mapped(rows))  # may add errors
            extras = bool(rows.errors or rows.overrides or rows.kinds)
        columns = zip(
            rows.lines,
            rows.buckets,
            rows.keys,
            rows.versions,
            sizes,
            dst,
            modified,
            strict=False,
        )
        if not extras:
            return self._plain(rows, dst), 0, False
        full = [
            (
                job_id,
                n,
                b,
                k,
                v or "",
                0,
                s,
                d,
                None,
                PENDING,
                None,
                None,
                None,
                m,
                None,
                key_hash(k),
            )
            for n, b, k, v, s, d, m in columns
        ]
        return self._extras(rows, full, before)

    def _plain(self, rows: Rows, dst: list[str | None]) -> TaskRows:
        """Rows in the short form, with only the columns that hold something
        in this batch (each parameter bound costs, and a CSV manifest has no
        sizes, dates or versions): the others take their defaults."""
        names = ["job_id", "line", "src_bucket", "src_key"]
        values: list[Iterable[Any]] = [
            repeat(self.job_id),
            rows.lines,
            rows.buckets,
            rows.keys,
        ]
        optional: list[tuple[str, list[Any] | None]] = [
            ("src_version", rows.versions),
            ("size", rows.sizes),
            ("dst_key", dst),
            ("last_modified", rows.modified),
        ]
        for name, column in optional:
            if column is not None and any(v is not None for v in column):
                names.append(name)
                values.append(
                    [v or "" for v in column] if name == "src_version" else column
                )
        names.append("key_hash")
        values.append([key_hash(k) for k in rows.keys])
        return TaskRows(
            plain=list(zip(*values, strict=False)), plain_columns=tuple(names)
        )

    def _mapped(self, rows: Rows) -> list[str]:
        out = []
        for i, key in enumerate(rows.keys):
            try:
                out.append(self.mapping.destination(rows.src(i)))
            except ValueError as exc:
                rows.errors.setdefault(i, str(exc))
                out.append(default_destination(self.prefix, key))
        return out

    def _extras(
        self, rows: Rows, out: list[tuple[Any, ...]], before: int
    ) -> tuple[TaskRows, int, bool]:
        own = False
        now = time.time()
        for i, kind in rows.kinds.items():
            t = list(out[i])
            t[14] = kind
            out[i] = tuple(t)
        for i, overrides in rows.overrides.items():
            t = list(out[i])
            t[8] = json.dumps(overrides)
            given = overrides.get("dst_key")
            if given:
                own = True
                t[7] = given
                t[5] = before + i + 1  # one source may go to several keys
            out[i] = tuple(t)
        for i, error in rows.errors.items():
            if rows.fatal == i or not self.source.skip_invalid:
                raise ManifestError(self.source.location, rows.lines[i], error)
            t = list(out[i])
            t[5] = before + i + 1  # never merged with another row
            t[9], t[10], t[11], t[12] = FAILED, INVALID_ROW, error, now
            t[2], t[3], t[7] = _clean(t[2]), _clean(t[3]), _clean(t[7])
            out[i] = tuple(t)
        return TaskRows(full=out), len(rows.errors), own


def _clean(value: str) -> str:
    """A malformed row's text as the database can store it (no lone surrogates)."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8", "replace")


async def dry_run(
    source: Source,
    spec: JobSpec,
    *,
    open_client: OpenClient | None = None,
    repo: Repository | None = None,
) -> Estimate:
    """Read ``source`` with its filters and count what a job would hold;
    nothing is written (duplicate rows are counted as objects)."""
    estimate = Estimate()
    async with _reader(source, spec, open_client, repo) as reader:
        first = True
        async for rows in reader.batches(None):
            if first:
                source.filters.check(rows, source.location)
                first = False
            estimate.rows += len(rows)
            keep = source.filters.keep(rows)
            if keep is not None:
                estimate.filtered += len(rows) - len(keep)
                rows = rows.take(keep)
            for i, error in rows.errors.items():
                if rows.fatal == i or not source.skip_invalid:
                    raise ManifestError(source.location, rows.lines[i], error)
            estimate.add(rows, spec.copy)
    return estimate


def job_source(job: JobRecord, statuses: tuple[TaskStatus, ...]) -> Source:
    """The source of a job re-running ``job``'s tasks of ``statuses`` (versions
    of a key still copied oldest first when ``job`` copied all versions)."""
    return Source(
        kind="job",
        location=f"job:{job.id}",
        statuses=tuple(s.value for s in statuses),
        all_versions=bool(job.source.get("all_versions")),
        delete_markers=bool(job.source.get("delete_markers")),
    )


def _job_rows(repo: Repository, source: Source, after_id: int) -> Iterator[Rows]:
    """The tasks of an earlier job to run again, in its order: same source
    objects and overrides (so the same destination keys); rows that were
    malformed in its manifest are not objects and are left out."""
    job_id = source.location.removeprefix("job:")
    statuses = tuple(TaskStatus(s) for s in source.statuses)
    rows = Rows(modified=[])
    for r in repo.iter_results(job_id, statuses=statuses, after_id=after_id):
        if r.error_code == INVALID_ROW:
            continue
        if r.overrides:
            rows.overrides[len(rows)] = r.overrides
        if r.kind:
            rows.kinds[len(rows)] = r.kind
        rows.add(r.line, r.src.bucket, r.src.key, r.src.version_id)
        rows.modified.append(r.last_modified)  # type: ignore[union-attr]
        if len(rows) >= BATCH_ROWS:
            rows.position = {"after_id": r.id}
            yield rows
            rows = Rows(modified=[])
        last = r.id
    if len(rows):
        rows.position = {"after_id": last}
        yield rows
