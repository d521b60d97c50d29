"""A big local manifest is parsed in a child process: same job, same errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import sqlalchemy as sa

import engine.usecases.ingest_process
import engine.usecases.submit
from engine.domain.errors import ManifestError, UsageError
from engine.domain.models import Destination
from engine.domain.spec import JobSpec
from engine.store import Repository
from engine.store.tables import tasks
from engine.usecases.submit import submit

WriteManifest = Callable[..., str]


def rows_of(repo: Repository, job_id: str) -> list[tuple[object, ...]]:
    with repo.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(
                    tasks.c.line,
                    tasks.c.src_bucket,
                    tasks.c.src_key,
                    tasks.c.dst_key,
                    tasks.c.status,
                    tasks.c.error_message,
                )
                .where(tasks.c.job_id == job_id)
                .order_by(tasks.c.line)
            )
        ]


@pytest.fixture
def child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every local manifest goes through the reader process."""
    monkeypatch.setattr(engine.usecases.ingest_process, "PROCESS_MIN_BYTES", 0)


MANIFEST = (
    "".join(f"b{i % 3},dir/k%20{i}\n" for i in range(25_000))
    + "b0,dir/k%200\n"  # a duplicate of the first row
    + "b1,\n"  # malformed (recorded with --skip-invalid)
    + "".join(f"b0,tail/{i}\n" for i in range(10))
)


def test_reader_process_builds_the_same_job_as_reading_here(
    tmp_path_factory: pytest.TempPathFactory,
    write_manifest: WriteManifest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_manifest(MANIFEST)
    jobs = []
    for limit in (1 << 60, 0):  # read here, then in a child process
        monkeypatch.setattr(engine.usecases.ingest_process, "PROCESS_MIN_BYTES", limit)
        repo = Repository(str(tmp_path_factory.mktemp("db") / "db.sqlite"))
        job = submit(repo, path, Destination("dst", "p/"), JobSpec(), skip_invalid=True)
        jobs.append((job, rows_of(repo, job.id)))
        repo.close()
    (here, here_rows), (child, child_rows) = jobs
    assert child_rows == here_rows
    assert len(child_rows) == 25_000 + 1 + 10
    assert (
        (child.total_tasks, child.duplicate_rows, child.invalid_rows)
        == (
            here.total_tasks,
            here.duplicate_rows,
            here.invalid_rows,
        )
        == (25_011, 1, 1)
    )
    assert child.spec.source_buckets == ("b0", "b1", "b2")


@pytest.mark.usefixtures("child_process")
def test_malformed_row_read_in_the_child_fails_the_submit_here(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """The child's ManifestError is raised in the parent with file and line,
    after batches were committed: the job is removed."""
    path = write_manifest("".join(f"b,k{i}\n" for i in range(15_000)) + "b,\n")
    with pytest.raises(ManifestError) as info:
        submit(repo, path, Destination("dst"), JobSpec())
    assert (info.value.source, info.value.line, info.value.reason) == (
        path,
        15_001,
        "empty key",
    )
    assert repo.list_jobs() == []


@pytest.mark.usefixtures("child_process")
def test_usage_error_in_the_child_is_a_usage_error_here(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """A filter the manifest cannot serve (no sizes in a CSV) is refused."""
    from engine.manifest.filters import Filters
    from engine.manifest.sources import Source
    from engine.usecases.submit import submit_source

    path = write_manifest("b,k1\n")
    source = Source("csv", path, filters=Filters(min_size=1))
    run = submit_source(repo, source, Destination("dst"), JobSpec())
    with pytest.raises(UsageError, match="--min-size"):
        asyncio.run(run)
    assert repo.list_jobs() == []
