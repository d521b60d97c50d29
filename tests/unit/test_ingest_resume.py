"""Resumable ingest: an interrupted submit ends with exactly its manifest's rows.

An interruption is simulated by the ``on_batch`` callback, which runs right
after a batch and its checkpoint are committed: raising there leaves the job
``ingesting`` with that checkpoint, as Ctrl-C or ``kill -9`` between two
batches would.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import io
import json
import multiprocessing as mp
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pytest
import sqlalchemy as sa
from pyarrow import parquet as pq

import engine.usecases.submit
from engine.domain.errors import ManifestError, UsageError
from engine.domain.keys import KeyMapping
from engine.domain.models import Destination, JobStatus, TaskResult, TaskStatus
from engine.domain.records import JobRecord
from engine.domain.spec import CopyOptions, JobSpec
from engine.manifest.filters import Filters
from engine.manifest.rows import Rows
from engine.manifest.sources import Reader, Source
from engine.store import Repository
from engine.store.tables import jobs, tasks
from engine.usecases.earlier_job import job_source
from engine.usecases.report import write_report
from engine.usecases.submit import finish_ingest, submit_source

WriteManifest = Callable[..., str]
DST = Destination("dst", "copy")
SMALL_BATCH = 7


class Crash(Exception):
    """Stands for whatever stopped the submit (not a manifest or usage error)."""


# -- helpers ---------------------------------------------------------------------


def run(
    repo: Repository,
    source: Source,
    spec: JobSpec | None = None,
    *,
    restart: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> JobRecord:
    return asyncio.run(
        submit_source(
            repo, source, DST, spec or JobSpec(), restart=restart, on_batch=on_batch
        )
    )


def stop_after(n: int, exc: type[BaseException] = Crash) -> Callable[[int], None]:
    """An ``on_batch`` that raises ``exc`` once ``n`` batches are committed."""
    seen = 0

    def on_batch(_rows: int) -> None:
        nonlocal seen
        seen += 1
        if seen >= n:
            raise exc(f"stopped after {n} batches")

    return on_batch


def interrupt(
    repo: Repository,
    source: Source,
    n: int,
    spec: JobSpec | None = None,
    exc: type[BaseException] = Crash,
) -> JobRecord:
    """Submit ``source``, stop it after ``n`` committed batches; the job left."""
    with pytest.raises(exc):
        run(repo, source, spec, on_batch=stop_after(n, exc))
    (job,) = [j for j in repo.list_jobs() if j.status is JobStatus.INGESTING]
    assert job.ingest_state
    assert job.ingest_state["position"]
    return job


def count_batches(repo: Repository, source: Source) -> tuple[JobRecord, int]:
    """Submit ``source`` uninterrupted; the job and how many batches it took."""
    calls: list[int] = []
    job = run(repo, source, on_batch=calls.append)
    return job, len(calls)


TASK_FIELDS = (
    tasks.c.line,
    tasks.c.src_bucket,
    tasks.c.src_key,
    tasks.c.src_version,
    tasks.c.dst_key,
    tasks.c.status,
    tasks.c.error_code,
    tasks.c.error_message,
    tasks.c.size,
    tasks.c.last_modified,
    tasks.c.overrides,
    tasks.c.kind,
    tasks.c.depth,
)


def task_rows(repo: Repository, job_id: str) -> list[tuple[Any, ...]]:
    """Every task of the job as a user sees it, in insertion (claim) order."""
    with repo.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(*TASK_FIELDS)
                .where(tasks.c.job_id == job_id)
                .order_by(tasks.c.id)
            )
        ]


def totals(job: JobRecord) -> tuple[int, int, int, int]:
    return (job.total_tasks, job.duplicate_rows, job.invalid_rows, job.filtered_rows)


def job_is_gone(repo: Repository, job_id: str) -> bool:
    with repo.engine.connect() as conn:
        n_jobs = conn.execute(
            sa.select(sa.func.count()).where(jobs.c.id == job_id)
        ).scalar()
        n_tasks = conn.execute(
            sa.select(sa.func.count()).where(tasks.c.job_id == job_id)
        ).scalar()
    return n_jobs == 0 and n_tasks == 0


def db_is_empty(repo: Repository) -> bool:
    with repo.engine.connect() as conn:
        n_jobs = conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar()
        n_tasks = conn.execute(sa.select(sa.func.count()).select_from(tasks)).scalar()
    return n_jobs == 0 and n_tasks == 0


@pytest.fixture
def ref_repo(tmp_path: Path) -> Any:
    """A second job database, for the uninterrupted reference submit."""
    repository = Repository(str(tmp_path / "reference.sqlite"))
    try:
        yield repository
    finally:
        repository.close()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    """CSV manifests read SMALL_BATCH rows per batch, so small files span many."""
    monkeypatch.setattr("engine.manifest.csv.BATCH_ROWS", SMALL_BATCH)
    monkeypatch.setattr("engine.manifest.inventory.BATCH_ROWS", 4)
    monkeypatch.setattr("engine.manifest.rows.BATCH_ROWS", SMALL_BATCH)
    monkeypatch.setattr(
        "engine.usecases.earlier_job.BATCH_ROWS", SMALL_BATCH
    )  # earlier jobs
    # one batch per transaction, so an interruption can fall after any of them
    monkeypatch.setattr("engine.usecases.ingest_process.COMMIT_ROWS", 1)
    return SMALL_BATCH


@pytest.fixture(params=["in-process", "child-process"])
def reader_path(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Manifests read in this process, or in the forked reader process that
    big local manifests get (forced here for small ones)."""
    used: list[bool] = []
    if request.param == "child-process":
        if "fork" not in mp.get_all_start_methods():
            pytest.skip("this platform cannot fork a reader process")
        monkeypatch.setattr("engine.usecases.ingest_process.PROCESS_MIN_BYTES", 0)
        real = engine.usecases.submit.in_child

        def counted(*args: Any) -> Any:
            used.append(True)
            return real(*args)

        monkeypatch.setattr("engine.usecases.submit.in_child", counted)
    yield str(request.param)
    assert bool(used) is (request.param == "child-process")


def assert_resumes_exactly(
    repo: Repository,
    ref_repo: Repository,
    source: Source,
    spec: JobSpec | None = None,
    *,
    every: bool = True,
) -> int:
    """Interrupting ``source`` after each possible batch (or, unless
    ``every``, after the first two, a middle one and the last two), then
    submitting it again, gives the tasks and totals of one uninterrupted submit."""
    ref, batches = count_batches(ref_repo, source)
    want_rows, want_totals = task_rows(ref_repo, ref.id), totals(ref)
    assert batches >= 3, "the manifest should span several batches"
    points = list(range(1, batches + 1))
    if not every:
        points = sorted({1, 2, batches // 2, batches - 1, batches})
    for n in points:
        stopped = interrupt(repo, source, n, spec)
        job = run(repo, source, spec)
        assert job.id == stopped.id, f"resume after {n} batches made a new job"
        assert job.status is JobStatus.SUBMITTED
        assert job.ingest_state is None
        assert task_rows(repo, job.id) == want_rows, f"after {n} batches"
        assert totals(job) == want_totals, f"after {n} batches"
        assert job.spec.source_buckets == ref.spec.source_buckets
        repo.drop_job(job.id)
        assert job_is_gone(repo, job.id)
    return batches


# -- CSV manifests ------------------------------------------------------------------


def csv_manifest(skip_invalid: bool) -> str:
    """~70 rows over two buckets: duplicates near and far (across batches), a
    quoted key, and (when ``skip_invalid``) malformed rows in several batches."""
    lines = []
    for i in range(64):
        if skip_invalid and i % 13 == 5:
            lines.append("b0,")  # empty key
        k = i % 45  # rows 45.. repeat rows 0..18
        lines.append(f"b{k % 2},dir/k{k:02d}+x%2B")
        if i % 10 == 3:
            lines.append(f"b{k % 2},dir/k{k:02d}+x%2B")  # an adjacent duplicate
    lines.insert(20, '"b1","dir/quoted, key"')
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("skip_invalid", [False, True])
def test_csv_ingest_resumed_after_any_batch_equals_one_uninterrupted_submit(
    reader_path: str,
    repo: Repository,
    ref_repo: Repository,
    write_manifest: WriteManifest,
    small_batches: int,
    skip_invalid: bool,
) -> None:
    """Stopped after any batch and submitted again: each row once, same totals."""
    path = write_manifest(csv_manifest(skip_invalid))
    source = Source("csv", path, skip_invalid=skip_invalid)
    assert_resumes_exactly(repo, ref_repo, source, every=reader_path == "in-process")
    ref = ref_repo.list_jobs()[0]
    assert ref.duplicate_rows == 19 + 7
    assert ref.invalid_rows == (5 if skip_invalid else 0)


def test_csv_with_header_and_dst_keys_resumes_exactly(
    reader_path: str,
    repo: Repository,
    ref_repo: Repository,
    write_manifest: WriteManifest,
    small_batches: int,
) -> None:
    """A manifest with a header and per-object dst_key overrides resumes exactly."""
    rows = ["bucket,key,version_id,dst_key"]
    for i in range(40):
        dst = f"renamed/{i}" if i % 3 == 0 else ""
        rows.append(f"b,k{i % 30},v{i % 2},{dst}")
    path = write_manifest("\n".join(rows) + "\n")
    assert_resumes_exactly(
        repo, ref_repo, Source("csv", path), every=reader_path == "in-process"
    )


def test_csv_larger_than_a_real_batch_resumes_exactly(
    reader_path: str,
    repo: Repository,
    ref_repo: Repository,
    write_manifest: WriteManifest,
) -> None:
    """With the real batch size: 25,000 rows, Ctrl-C after the first batch."""
    body = "".join(f"b,dir/k{i % 24_000:06d}\n" for i in range(25_000))
    path = write_manifest("bucket,key\n" + body)
    source = Source("csv", path)
    ref, batches = count_batches(ref_repo, source)
    stopped = interrupt(repo, source, 1, exc=KeyboardInterrupt)
    assert stopped.ingest_state is not None
    read = stopped.ingest_state["totals"]["read"]
    if reader_path == "in-process":
        assert (batches, read) == (3, 10_000)
    else:  # the forked reader's batches already in the pipe commit together
        assert 1 <= batches <= 3
        assert read in (10_000, 20_000, 25_000)
    job = run(repo, source)
    assert (job.id, totals(job)) == (stopped.id, (24_000, 1_000, 0, 0))
    assert task_rows(repo, job.id) == task_rows(ref_repo, ref.id)


def test_interrupted_ingest_keeps_its_batches_and_checkpoint(
    repo: Repository, write_manifest: WriteManifest, small_batches: int
) -> None:
    """After a stop, the committed batches and the position after them are stored."""
    path = write_manifest("".join(f"b,k{i}\n" for i in range(30)))
    job = interrupt(repo, Source("csv", path), 2)
    assert job.ingest_state is not None
    assert job.ingest_state["position"] == {"line": 2 * SMALL_BATCH}
    assert job.ingest_state["totals"]["read"] == 2 * SMALL_BATCH
    keys = [r[2] for r in task_rows(repo, job.id)]
    assert keys == [f"k{i}" for i in range(2 * SMALL_BATCH)]


def test_a_read_error_before_any_batch_leaves_a_resumable_ingest(
    repo: Repository,
    ref_repo: Repository,
    write_manifest: WriteManifest,
    small_batches: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader failing mid-batch keeps the job; the next submit reads it all."""
    path = write_manifest("".join(f"b,k{i % 20}\n" for i in range(30)))
    source = Source("csv", path)
    ref, _ = count_batches(ref_repo, source)

    class Failing(Reader):
        async def batches(self, position: dict[str, Any] | None) -> AsyncIterator[Rows]:
            raise Crash("connection reset")
            yield Rows()  # pragma: no cover - makes this an async generator

    monkeypatch.setattr("engine.usecases.submit.Reader", Failing)
    with pytest.raises(Crash):
        run(repo, source)
    (stopped,) = repo.list_jobs()
    assert stopped.status is JobStatus.INGESTING
    assert task_rows(repo, stopped.id) == []

    monkeypatch.setattr("engine.usecases.submit.Reader", Reader)
    job = run(repo, source)
    assert job.id == stopped.id
    assert (task_rows(repo, job.id), totals(job)) == (
        task_rows(ref_repo, ref.id),
        totals(ref),
    )


# -- S3 Inventory reports -----------------------------------------------------------

BASE = datetime(2026, 1, 1, tzinfo=UTC)
# bucket, key, version_id, is_latest, is_delete_marker, size, last_modified, class
InvRow = tuple[str, str, str, bool, bool, int | None, datetime, str | None]
INV_NAMES = [
    "bucket",
    "key",
    "version_id",
    "is_latest",
    "is_delete_marker",
    "size",
    "last_modified_date",
    "storage_class",
]
CSV_SCHEMA = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, StorageClass"
CSV_SCHEMA_DATED = (
    "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, "
    "StorageClass"
)
PARQUET_SCHEMA = (
    "message s3.inventory { required binary bucket (UTF8); required binary key "
    "(UTF8); optional binary version_id (UTF8); optional boolean is_latest; "
    "optional boolean is_delete_marker; optional int64 size; optional int64 "
    "last_modified_date (TIMESTAMP_MILLIS); optional binary storage_class (UTF8); }"
)


def inventory_files() -> list[list[InvRow]]:
    """Three data files: keys with two versions, some deleted (a delete marker
    is the latest), a null version, and one row repeated in a later file."""
    files: list[list[InvRow]] = []
    for f in range(3):
        rows: list[InvRow] = []
        for j in range(7):
            key = f"f{f}/k {j}+é"
            t = BASE + timedelta(days=10 * f + j)
            deleted = j % 4 == 0
            cls = "GLACIER" if j % 3 == 0 else "STANDARD"
            if deleted:
                marker = t + timedelta(hours=2)
                rows.append(("src", key, f"m{j}", True, True, None, marker, None))
            rows.append(("src", key, f"v{j}b", not deleted, False, 10 * j, t, cls))
            old = t - timedelta(hours=1)
            rows.append(("src", key, f"v{j}a", False, False, 10 * j + 1, old, cls))
        files.append(rows)
    files[1].append(("src", "f1/null", "", True, False, 7, BASE, "STANDARD"))
    files[2].append(files[0][3])  # a row (a latest version) listed twice
    return files


def _write_data(path: Path, fmt: str, rows: list[InvRow], dated: bool) -> None:
    if fmt == "CSV":
        text = io.StringIO()
        w = csv.writer(text, lineterminator="\n")
        for b, k, v, latest, marker, size, t, cls in rows:
            cells: list[Any] = [
                b,
                quote(k, safe="/"),
                v,
                str(latest).lower(),
                str(marker).lower(),
                "" if size is None else size,
            ]
            if dated:  # as S3 Inventory writes it
                cells.append(t.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
            w.writerow([*cells, cls or ""])
        path.write_bytes(gzip.compress(text.getvalue().encode()))
        return
    schema = pa.schema(
        [
            ("bucket", pa.string()),
            ("key", pa.string()),
            ("version_id", pa.string()),
            ("is_latest", pa.bool_()),
            ("is_delete_marker", pa.bool_()),
            ("size", pa.int64()),
            ("last_modified_date", pa.timestamp("ms", tz="UTC")),
            ("storage_class", pa.string()),
        ]
    )
    columns = {n: [r[i] for r in rows] for i, n in enumerate(INV_NAMES)}
    pq.write_table(pa.table(columns, schema=schema), str(path))


def make_inventory(
    tmp_path: Path, fmt: str, files: list[list[InvRow]], *, csv_dates: bool = False
) -> Path:
    """An S3 Inventory report laid out as S3 writes it: manifest.json, data/.

    CSV data files have no LastModifiedDate column unless ``csv_dates``
    (see test_csv_inventory_last_modified_date_as_s3_writes_it_is_read)."""
    root = tmp_path / "inv" / "src" / "daily"
    (root / "data").mkdir(parents=True)
    dated = root / "2026-02-01T01-00Z"
    dated.mkdir()
    ext = {"CSV": "csv.gz", "Parquet": "parquet"}[fmt]
    listed = []
    for i, rows in enumerate(files):
        data = root / "data" / f"part-{i}.{ext}"
        _write_data(data, fmt, rows, csv_dates)
        listed.append(
            {
                "key": f"src/daily/data/part-{i}.{ext}",
                "size": data.stat().st_size,
                "MD5checksum": hashlib.md5(data.read_bytes()).hexdigest(),
            }
        )
    manifest = {
        "sourceBucket": "src",
        "destinationBucket": "arn:aws:s3:::inv",
        "version": "2016-11-30",
        "fileFormat": fmt,
        "fileSchema": (CSV_SCHEMA_DATED if csv_dates else CSV_SCHEMA)
        if fmt == "CSV"
        else PARQUET_SCHEMA,
        "files": listed,
    }
    path = dated / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


@pytest.mark.parametrize(
    ("fmt", "all_versions", "filters"),
    [
        pytest.param("CSV", False, Filters(), id="csv.gz-latest"),
        pytest.param("Parquet", False, Filters(), id="parquet-latest"),
        pytest.param(
            "Parquet",
            False,
            Filters(min_size=5, max_size=50),
            id="parquet-filtered",
        ),
        pytest.param("Parquet", True, Filters(), id="parquet-all-versions"),
        pytest.param(
            "CSV", True, Filters(min_size=5), id="csv.gz-all-versions-filtered"
        ),
        pytest.param(
            "Parquet",
            True,
            Filters(modified_before=(BASE + timedelta(days=15)).timestamp()),
            id="parquet-all-versions-dated",
        ),
    ],
)
def test_inventory_ingest_resumed_after_any_batch_equals_one_uninterrupted_submit(
    reader_path: str,
    repo: Repository,
    ref_repo: Repository,
    tmp_path: Path,
    small_batches: int,
    fmt: str,
    all_versions: bool,
    filters: Filters,
) -> None:
    """An inventory report stopped after any batch (file and row position) and
    submitted again gives the tasks, versions' order and totals of one submit."""
    path = make_inventory(tmp_path, fmt, inventory_files())
    source = Source(
        "inventory",
        str(path),
        all_versions=all_versions,
        delete_markers=all_versions,
        filters=filters,
    )
    assert_resumes_exactly(repo, ref_repo, source, every=reader_path == "in-process")
    ref = ref_repo.list_jobs()[0]
    assert ref.duplicate_rows == 1
    assert (ref.filtered_rows > 0) is filters.active


def test_csv_inventory_last_modified_date_as_s3_writes_it_is_read(
    repo: Repository, tmp_path: Path
) -> None:
    """A CSV.gz inventory with LastModifiedDate ('…T02:00:00.000Z') is read,
    its dates usable by --modified-after/--modified-before."""
    path = make_inventory(tmp_path, "CSV", inventory_files(), csv_dates=True)
    cut = BASE + timedelta(days=15)
    source = Source(
        "inventory", str(path), filters=Filters(modified_after=cut.timestamp())
    )
    job = run(repo, source)
    kept = {r[2] for r in task_rows(repo, job.id)}  # src_key
    expected = {
        key
        for rows in inventory_files()
        for _b, key, _v, latest, marker, _size, when, _cls in rows
        if latest and not marker and when >= cut
    }
    assert kept == expected
    assert job.filtered_rows > 0


def test_inventory_position_is_a_file_and_a_row(
    repo: Repository, tmp_path: Path, small_batches: int
) -> None:
    """The checkpoint of an inventory names the data file and rows read of it."""
    path = make_inventory(tmp_path, "Parquet", inventory_files())
    job = interrupt(repo, Source("inventory", str(path)), 5)
    assert job.ingest_state is not None
    # part-0 has 2 deleted keys (3 rows) and 5 others (2 rows): 16 rows, 4 batches
    assert job.ingest_state["position"] == {"file": 1, "row": 4}


# -- completion reports and earlier jobs (retry) --------------------------------------


def finished_old_job(repo: Repository, manifest: str) -> str:
    """A job from ``manifest`` (malformed rows kept as failed tasks) whose copies
    of keys k<i> failed unless i % 3 == 0."""
    job = asyncio.run(
        submit_source(
            repo,
            Source("csv", manifest, skip_invalid=True),
            Destination("old"),
            JobSpec(),
        )
    )
    claimed = repo.claim(job.id, "w", 1000, 2e9)
    results = [
        TaskResult(
            t.id,
            TaskStatus.SUCCEEDED
            if int(t.src.key.removeprefix("k")) % 3 == 0
            else TaskStatus.FAILED,
            attempts=1,
            started_at=1.0,
            finished_at=2.0,
            error_code=None if int(t.src.key.removeprefix("k")) % 3 == 0 else "X",
        )
        for t in claimed
    ]
    assert repo.record("w", results) == len(claimed)
    return job.id


def old_manifest() -> str:
    rows = ["bucket,key,dst_key"]
    for i in range(45):
        if i % 11 == 4:
            rows.append("b,,")  # malformed: never an object to copy again
        rows.append(f"b{i % 2},k{i},{'' if i % 4 else f'own/{i}'}")
    return "\n".join(rows) + "\n"


def test_completion_report_ingest_resumes_exactly(
    reader_path: str,
    repo: Repository,
    ref_repo: Repository,
    write_manifest: WriteManifest,
    tmp_path: Path,
    small_batches: int,
) -> None:
    """A report of failures as MANIFEST, stopped after any batch, resumes exactly."""
    old_repo = Repository(str(tmp_path / "old.sqlite"))
    try:
        old = finished_old_job(old_repo, write_manifest(old_manifest()))
        directory = write_report(old_repo, old, tmp_path / "reports").directory
    finally:
        old_repo.close()
    source = Source("report", str(directory), statuses=("failed",), skip_invalid=True)
    assert_resumes_exactly(repo, ref_repo, source, every=reader_path == "in-process")
    ref = ref_repo.list_jobs()[0]
    assert ref.total_tasks == 30 + 4  # failed copies + malformed rows, reported
    assert ref.invalid_rows == 4


def test_retry_of_an_earlier_job_resumes_exactly(
    repo: Repository,
    ref_repo: Repository,
    write_manifest: WriteManifest,
    small_batches: int,
) -> None:
    """A retry (the failed tasks of an earlier job) stopped after any batch
    resumes with exactly those tasks, malformed rows left out, dst_keys kept."""
    manifest = write_manifest(old_manifest())
    old = repo.get_job(finished_old_job(repo, manifest))
    ref_old = ref_repo.get_job(finished_old_job(ref_repo, manifest))
    source = job_source(old, (TaskStatus.FAILED,))
    ref_source = job_source(ref_old, (TaskStatus.FAILED,))

    calls: list[int] = []
    ref = run(ref_repo, ref_source, on_batch=calls.append)
    assert len(calls) >= 3
    want = task_rows(ref_repo, ref.id)
    assert len(want) == 30
    assert {r[6] for r in want} == {None}  # no InvalidManifestRow among them
    assert [r[4] for r in want if r[4].startswith("own/")] == [
        f"own/{i}" for i in range(45) if i % 4 == 0 and i % 3
    ]
    for n in range(1, len(calls) + 1):
        stopped = interrupt(repo, source, n)
        job = run(repo, source)
        assert job.id == stopped.id
        assert task_rows(repo, job.id) == want, f"after {n} batches"
        assert totals(job) == totals(ref)
        repo.drop_job(job.id)


# -- the manifest changed, the options changed -----------------------------------------


def test_changed_manifest_is_refused_on_resume_and_restart_starts_over(
    reader_path: str,
    repo: Repository,
    write_manifest: WriteManifest,
    small_batches: int,
) -> None:
    """A manifest edited after the interruption cannot finish the old job;
    restart drops it and reads the new manifest from its first row."""
    path = write_manifest("".join(f"b,k{i}\n" for i in range(30)))
    source = Source("csv", path)
    stopped = interrupt(repo, source, 2)
    with open(path, "a") as fh:
        fh.write("b,new\n")

    with pytest.raises(ManifestError, match="changed since") as info:
        run(repo, source)
    assert stopped.id in str(info.value)
    assert "--restart" in str(info.value)
    assert [(j.id, j.status) for j in repo.list_jobs()] == [
        (stopped.id, JobStatus.INGESTING)
    ]

    job = run(repo, source, restart=True)
    assert job.id != stopped.id
    assert [j.id for j in repo.list_jobs()] == [job.id]
    assert totals(job) == (31, 0, 0, 0)
    keys = [r[2] for r in task_rows(repo, job.id)]
    assert keys == [f"k{i}" for i in range(30)] + ["new"]


def test_changed_inventory_manifest_is_refused_on_resume(
    repo: Repository, tmp_path: Path, small_batches: int
) -> None:
    """An inventory whose manifest.json changed is refused too."""
    path = make_inventory(tmp_path, "Parquet", inventory_files())
    source = Source("inventory", str(path))
    interrupt(repo, source, 2)
    data = json.loads(path.read_text())
    data["files"] = data["files"][:2]
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="changed since"):
        run(repo, source)


def test_restart_of_an_unchanged_manifest_reads_it_again(
    repo: Repository,
    ref_repo: Repository,
    write_manifest: WriteManifest,
    small_batches: int,
) -> None:
    """restart=True discards the interrupted job even when it could resume."""
    path = write_manifest("".join(f"b,k{i % 25}\n" for i in range(30)))
    source = Source("csv", path)
    ref, _ = count_batches(ref_repo, source)
    stopped = interrupt(repo, source, 3)
    job = run(repo, source, restart=True)
    assert job.id != stopped.id
    assert [j.id for j in repo.list_jobs()] == [job.id]
    assert (task_rows(repo, job.id), totals(job)) == (
        task_rows(ref_repo, ref.id),
        totals(ref),
    )


@pytest.mark.parametrize(
    ("change_source", "change_spec"),
    [
        pytest.param({"skip_invalid": True}, {}, id="skip-invalid"),
        pytest.param(
            {"filters": Filters(exclude_prefixes=("x",))}, {}, id="another-filter"
        ),
        pytest.param({}, {"copy": CopyOptions(stat_source=False)}, id="copy-option"),
        pytest.param(
            {}, {"keys": KeyMapping(template="{basename}")}, id="key-template"
        ),
    ],
)
def test_other_options_on_resume_are_a_usage_error(
    repo: Repository,
    ref_repo: Repository,
    write_manifest: WriteManifest,
    small_batches: int,
    change_source: dict[str, Any],
    change_spec: dict[str, Any],
) -> None:
    """Resuming with other options is refused and keeps the job; the original
    options then finish it exactly."""
    path = write_manifest("".join(f"b,d/k{i % 25}\n" for i in range(30)))
    source = Source("csv", path)
    ref, _ = count_batches(ref_repo, source)
    stopped = interrupt(repo, source, 2)

    with pytest.raises(UsageError, match="other options") as info:
        run(repo, replace(source, **change_source), replace(JobSpec(), **change_spec))
    assert stopped.id in str(info.value)
    assert repo.get_job(stopped.id).status is JobStatus.INGESTING

    job = run(repo, source)
    assert job.id == stopped.id
    assert (task_rows(repo, job.id), totals(job)) == (
        task_rows(ref_repo, ref.id),
        totals(ref),
    )


def test_resume_with_the_same_prefix_filters_finishes_the_job(
    repo: Repository,
    ref_repo: Repository,
    write_manifest: WriteManifest,
    small_batches: int,
) -> None:
    """Repeating a submit with --include/--exclude-prefix resumes it (the stored
    source reads back with lists where the options have tuples)."""
    path = write_manifest("".join(f"b,{'ab'[i % 2]}/k{i}\n" for i in range(30)))
    source = Source(
        "csv",
        path,
        filters=Filters(include_prefixes=("a/", "b/"), exclude_prefixes=("b/k1",)),
    )
    assert_resumes_exactly(repo, ref_repo, source)


def test_finish_ingest_of_a_job_with_a_storage_class_filter(
    repo: Repository, ref_repo: Repository, tmp_path: Path, small_batches: int
) -> None:
    """`bulkcopy run` finishes an interrupted ingest that filters storage classes."""
    path = make_inventory(tmp_path, "Parquet", inventory_files())
    source = Source(
        "inventory", str(path), filters=Filters(storage_classes=("STANDARD",))
    )
    ref = run(ref_repo, source)
    stopped = interrupt(repo, source, 2)
    job = asyncio.run(finish_ingest(repo, repo.get_job(stopped.id)))
    assert (job.id, job.status) == (stopped.id, JobStatus.SUBMITTED)
    assert task_rows(repo, job.id) == task_rows(ref_repo, ref.id)
    assert totals(job) == totals(ref)
    assert job.filtered_rows > 0


# -- a malformed row in a later batch ----------------------------------------------


def test_malformed_row_in_a_later_batch_leaves_no_job_and_no_tasks(
    reader_path: str,
    repo: Repository,
    write_manifest: WriteManifest,
    small_batches: int,
) -> None:
    """Batches committed before a bad row are removed with the job."""
    rows = [f"b,k{i}" for i in range(40)]
    rows.insert(33, "b,k\x00bad")
    path = write_manifest("\n".join(rows) + "\n")
    with pytest.raises(ManifestError, match=r":34: contains a NUL byte$"):
        run(repo, Source("csv", path))
    assert db_is_empty(repo)


def test_malformed_row_met_by_a_resumed_ingest_removes_the_whole_job(
    reader_path: str,
    repo: Repository,
    write_manifest: WriteManifest,
    small_batches: int,
) -> None:
    """A bad row after the interruption point also leaves nothing behind."""
    rows = [f"b,k{i}" for i in range(40)]
    rows.insert(33, "b,")
    path = write_manifest("\n".join(rows) + "\n")
    source = Source("csv", path)
    interrupt(repo, source, 2)
    with pytest.raises(ManifestError, match=r":34: empty key$"):
        run(repo, source)
    assert db_is_empty(repo)


def test_malformed_inventory_row_in_a_later_file_leaves_nothing(
    reader_path: str, repo: Repository, tmp_path: Path, small_batches: int
) -> None:
    """An inventory row without a key in its last data file fails the submit whole."""
    files = inventory_files()
    files[2][3] = ("src", "", "v", True, False, 1, BASE, "STANDARD")
    path = make_inventory(tmp_path, "Parquet", files)
    with pytest.raises(ManifestError, match=r"part-2\.parquet:4: empty bucket or key"):
        run(repo, Source("inventory", str(path)))
    assert db_is_empty(repo)


# -- finish_ingest: what `bulkcopy run` does for an ingesting job ----------------------


def test_finish_ingest_from_the_stored_job_equals_one_submit(
    reader_path: str,
    repo: Repository,
    ref_repo: Repository,
    write_manifest: WriteManifest,
    small_batches: int,
) -> None:
    """An ingesting job finishes from its stored source, spec and checkpoint."""
    path = write_manifest(csv_manifest(skip_invalid=True))
    source = Source("csv", path, skip_invalid=True)
    spec = JobSpec(copy=CopyOptions(stat_source=False, verify=True))
    ref = run(ref_repo, source, spec)
    stopped = interrupt(repo, source, 4, spec)

    job = asyncio.run(finish_ingest(repo, repo.get_job(stopped.id)))
    assert (job.id, job.status) == (stopped.id, JobStatus.SUBMITTED)
    assert task_rows(repo, job.id) == task_rows(ref_repo, ref.id)
    assert totals(job) == totals(ref)
    assert job.spec == ref.spec


def test_finish_ingest_of_an_inventory_with_all_versions(
    reader_path: str,
    repo: Repository,
    ref_repo: Repository,
    tmp_path: Path,
    small_batches: int,
) -> None:
    """Versions are numbered when a stored all-versions ingest is finished."""
    path = make_inventory(tmp_path, "Parquet", inventory_files())
    source = Source(
        "inventory",
        str(path),
        all_versions=True,
        delete_markers=True,
        filters=Filters(min_size=1),
    )
    ref = run(ref_repo, source)
    stopped = interrupt(repo, source, 3)
    job = asyncio.run(finish_ingest(repo, repo.get_job(stopped.id)))
    assert task_rows(repo, job.id) == task_rows(ref_repo, ref.id)
    assert totals(job) == totals(ref)
    assert max(r[-1] for r in task_rows(repo, job.id)) >= 1


def test_finish_ingest_of_a_submitted_job_returns_it_unchanged(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """A job whose ingest is complete is not read again."""
    path = write_manifest("b,k1\nb,k2\n")
    job = run(repo, Source("csv", path))
    with open(path, "a") as fh:
        fh.write("b,k3\n")
    again = asyncio.run(finish_ingest(repo, job))
    assert again == job
    assert len(task_rows(repo, job.id)) == 2


def test_finish_ingest_refuses_a_changed_manifest(
    repo: Repository, write_manifest: WriteManifest, small_batches: int
) -> None:
    """`run` of an ingesting job whose manifest changed is refused with the reason."""
    path = write_manifest("".join(f"b,k{i}\n" for i in range(30)))
    stopped = interrupt(repo, Source("csv", path), 1)
    Path(path).write_text("b,other\n")
    with pytest.raises(ManifestError, match="changed since"):
        asyncio.run(finish_ingest(repo, repo.get_job(stopped.id)))
    assert repo.get_job(stopped.id).status is JobStatus.INGESTING


def test_finish_ingest_drops_the_job_at_a_malformed_row(
    reader_path: str,
    repo: Repository,
    write_manifest: WriteManifest,
    small_batches: int,
) -> None:
    """A bad row met while finishing a stored ingest removes the job."""
    rows = [f"b,k{i}" for i in range(30)]
    rows[25] = "b,k,extra,column"
    path = write_manifest("\n".join(rows) + "\n")
    stopped = interrupt(repo, Source("csv", path), 1)
    with pytest.raises(ManifestError, match=r":26: expected 2 or 3 columns"):
        asyncio.run(finish_ingest(repo, repo.get_job(stopped.id)))
    assert db_is_empty(repo)


def test_finish_ingest_of_a_job_whose_manifest_is_gone_names_it(
    repo: Repository, write_manifest: WriteManifest, small_batches: int
) -> None:
    """An ingesting job whose manifest was removed fails with 'no such file',
    and stays ingesting (the manifest may come back)."""
    path = write_manifest("".join(f"b,k{i}\n" for i in range(20)))
    stopped = interrupt(repo, Source("csv", path), 1)
    Path(path).unlink()
    with pytest.raises(ManifestError, match="no such file") as info:
        asyncio.run(finish_ingest(repo, repo.get_job(stopped.id)))
    assert info.value.source == path
    assert repo.get_job(stopped.id).status is JobStatus.INGESTING


def test_ingest_submitted_with_a_relative_path_finishes_from_another_directory(
    repo: Repository,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    small_batches: int,
) -> None:
    """The sources module promises any later command can finish an ingest:
    `bulkcopy run JOB` from another directory finishes `submit m.csv`."""
    from engine.cli.submit import build_source

    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    (here / "m.csv").write_text("".join(f"b,k{i}\n" for i in range(20)))
    monkeypatch.chdir(here)
    stopped = interrupt(repo, build_source({"manifest": "m.csv"}), 1)
    monkeypatch.chdir(elsewhere)
    job = asyncio.run(finish_ingest(repo, repo.get_job(stopped.id)))
    assert (job.status, job.total_tasks) == (JobStatus.SUBMITTED, 20)
