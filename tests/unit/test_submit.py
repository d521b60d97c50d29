"""Submit: a manifest becomes one job with one task per distinct object, or nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.domain.codes import INVALID_ROW
from engine.domain.errors import ManifestError
from engine.domain.models import Destination, ObjectRef, TaskStatus
from engine.domain.records import JobRecord
from engine.domain.spec import JobSpec
from engine.store import Repository
from engine.store.tables import tasks
from engine.usecases.submit import submit

WriteManifest = Callable[..., str]


def do_submit(
    repo: Repository,
    manifest: str,
    prefix: str = "",
    *,
    skip_invalid: bool = False,
) -> JobRecord:
    return submit(
        repo, manifest, Destination("dst", prefix), JobSpec(), skip_invalid=skip_invalid
    )


def task_count(repo: Repository) -> int:
    with repo.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(tasks)).scalar())


def test_malformed_row_fails_submit_with_file_and_line(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """A malformed row raises ManifestError reading 'path:line: reason'."""
    path = write_manifest("b,k1\nb,k2\nb,\nb,k4\n")
    with pytest.raises(ManifestError) as info:
        do_submit(repo, path)
    assert str(info.value) == f"{path}:3: empty key"
    assert (info.value.source, info.value.line) == (path, 3)


def test_malformed_row_leaves_no_job_and_no_tasks(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """A refused submit writes nothing, even rows read before the bad one."""
    good = "".join(f"b,k{i}\n" for i in range(12_000))  # spans several batches
    path = write_manifest(good + "b,k\x00bad\n")
    with pytest.raises(ManifestError, match=r":12001: contains a NUL byte$"):
        do_submit(repo, path)
    assert repo.list_jobs() == []
    assert task_count(repo) == 0


def test_missing_manifest_fails_submit_and_writes_nothing(
    repo: Repository, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A manifest path that does not exist is a ManifestError naming the file."""
    path = str(tmp_path_factory.mktemp("empty") / "nope.csv")
    with pytest.raises(ManifestError, match="no such file"):
        do_submit(repo, path)
    assert repo.list_jobs() == []


def test_skip_invalid_records_bad_row_as_failed_task(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """With skip_invalid a bad row is a failed task with its reason; good rows pend."""
    path = write_manifest("b,k1\nb,\nb,k3\n")
    job = do_submit(repo, path, skip_invalid=True)
    rows = list(repo.iter_results(job.id))
    assert [(r.line, r.status) for r in rows] == [
        (1, TaskStatus.PENDING),
        (2, TaskStatus.FAILED),
        (3, TaskStatus.PENDING),
    ]
    bad = rows[1]
    assert (bad.error_code, bad.error_message) == (INVALID_ROW, "empty key")
    assert INVALID_ROW == "InvalidManifestRow"
    assert (job.total_tasks, job.invalid_rows) == (3, 1)


def test_skip_invalid_keeps_every_bad_row(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """Two bad rows that look alike are still two failed tasks, one per line."""
    path = write_manifest("b,k1\nb,\nb,k3\nb,\n")
    job = do_submit(repo, path, skip_invalid=True)
    failed = list(repo.iter_results(job.id, failed_only=True))
    assert [r.line for r in failed] == [2, 4]
    assert (job.total_tasks, job.invalid_rows, job.duplicate_rows) == (4, 2, 0)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("b,k1\nb,k1,\n", id="bad-after-good"),
        pytest.param("b,k1,\nb,k1\n", id="good-after-bad"),
    ],
)
def test_skip_invalid_never_merges_a_bad_row_with_a_good_one(
    repo: Repository, write_manifest: WriteManifest, content: str
) -> None:
    """A bad row is its own failed task; a good row with the same key still copies."""
    path = write_manifest(content)
    job = do_submit(repo, path, skip_invalid=True)
    rows = list(repo.iter_results(job.id))
    by_status = {r.status: r.src for r in rows}
    assert len(rows) == 2
    assert by_status[TaskStatus.PENDING] == ObjectRef("b", "k1")
    assert TaskStatus.FAILED in by_status


def test_duplicate_rows_collapse_into_one_task(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """The same object listed twice is copied once and counted as a duplicate."""
    path = write_manifest("b,k1\nb,k2\nb,k1\nb,a+b\nb,a%20b\nb,k1\n")
    job = do_submit(repo, path)
    rows = list(repo.iter_results(job.id))
    assert [(r.line, r.src.key) for r in rows] == [(1, "k1"), (2, "k2"), (4, "a b")]
    assert (job.total_tasks, job.duplicate_rows) == (3, 3)


def test_versions_of_one_key_are_distinct_tasks(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """Two versions of the same key are two tasks, not duplicates."""
    path = write_manifest("b,k,v1\nb,k,v2\nb,k,v1\n")
    job = do_submit(repo, path)
    rows = list(repo.iter_results(job.id))
    assert [r.src for r in rows] == [
        ObjectRef("b", "k", "v1"),
        ObjectRef("b", "k", "v2"),
    ]
    assert (job.total_tasks, job.duplicate_rows) == (2, 1)


@pytest.mark.parametrize(
    ("prefix", "stored_prefix", "dst_key"),
    [
        ("a/b", "a/b/", "a/b/dir/x y+z"),
        ("a/b/", "a/b/", "a/b/dir/x y+z"),
        ("", "", "dir/x y+z"),
    ],
)
def test_destination_key_is_normalized_prefix_plus_source_key(
    repo: Repository,
    write_manifest: WriteManifest,
    prefix: str,
    stored_prefix: str,
    dst_key: str,
) -> None:
    """A prefix is a folder whether or not it ends in '/'; the decoded key follows."""
    path = write_manifest("b,dir/x+y%2Bz\n")
    job = do_submit(repo, path, prefix)
    assert job.dst_prefix == stored_prefix
    assert [r.dst_key for r in repo.iter_results(job.id)] == [dst_key]


def test_destination_key_keeps_leading_slash_and_spaces(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """Leading slashes and edge spaces of a source key survive into the destination."""
    path = write_manifest("b,/abs+\nb,+lead\n")
    job = do_submit(repo, path, "p")
    assert [r.dst_key for r in repo.iter_results(job.id)] == ["p//abs ", "p/ lead"]


def test_spec_lists_distinct_source_buckets(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """The job spec names each source bucket once, in first-seen order."""
    path = write_manifest("b1,k1\nb2,k2\nb1,k3\nb3,k4\nb2,k5\n")
    job = do_submit(repo, path)
    assert job.spec.source_buckets == ("b1", "b2", "b3")


def test_spec_source_buckets_ignore_invalid_rows(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """A bucket named only by a bad row is not a source bucket of the job."""
    path = write_manifest("b1,k1\nbad,\n")
    job = do_submit(repo, path, skip_invalid=True)
    assert job.spec.source_buckets == ("b1",)


def test_job_records_manifest_and_destination(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """The submitted job remembers its manifest and destination and starts submitted."""
    path = write_manifest("b,k\n")
    job = do_submit(repo, path, "p")
    assert (job.manifest, job.dst_bucket, job.status.value) == (
        path,
        "dst",
        "submitted",
    )
    assert repo.get_job(job.id) == job


def test_large_manifest_is_inserted_fully(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """Every row of a manifest larger than one insert batch becomes a task."""
    n = 30_000
    path = write_manifest(
        "bucket,key\n" + "".join(f"b,dir/k{i:06d}\n" for i in range(n))
    )
    job = do_submit(repo, path)
    assert (job.total_tasks, job.duplicate_rows, job.invalid_rows) == (n, 0, 0)
    assert repo.counts(job.id).get(TaskStatus.PENDING) == n
    rows = list(repo.iter_results(job.id))
    assert (rows[0].line, rows[0].src.key) == (2, "dir/k000000")
    assert (rows[-1].line, rows[-1].src.key) == (n + 1, f"dir/k{n - 1:06d}")


def test_unterminated_quote_fails_the_submit_even_with_skip_invalid(
    tmp_path: Path,
) -> None:
    """An unclosed quote hides every later row, so it is never skipped quietly."""
    path = tmp_path / "m.csv"
    path.write_text('b,k1\nb,"k2\nb,k3\nb,k4\n')
    repo = Repository(str(tmp_path / "db.sqlite"))

    with pytest.raises(ManifestError, match=r"m\.csv:2: .*unterminated quoted field"):
        submit(repo, str(path), Destination("dst"), JobSpec(), skip_invalid=True)
    assert repo.list_jobs() == []


def test_keys_whose_hashes_collide_are_not_merged(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """Duplicates are found by sorting a CRC-32 of the key; two different keys
    with the same CRC-32 stay two tasks, a real repeat still merges."""
    import zlib

    assert zlib.crc32(b"k97872") == zlib.crc32(b"k15860000")
    path = write_manifest("b,k97872\nb,k15860000\nb,other\nb,k97872\n")
    job = do_submit(repo, path)
    assert (job.total_tasks, job.duplicate_rows) == (3, 1)
    with repo.engine.connect() as conn:
        keys = sorted(
            conn.execute(
                sa.select(tasks.c.src_key).where(tasks.c.job_id == job.id)
            ).scalars()
        )
    assert keys == ["k15860000", "k97872", "other"]


def _submit_into(repo: Repository, manifest: str, bucket: str, prefix: str) -> Any:
    return submit(repo, manifest, Destination(bucket, prefix), JobSpec())


def test_an_object_copied_onto_another_source_of_the_job_is_refused(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """Into the source bucket, `x` would land on `copy/x`, itself a source:
    that object would be overwritten before it is copied (and a move would
    delete it). Refused with both lines; nothing stays behind."""
    path = write_manifest("b,x\nb,other\nb,copy/x\n")
    with pytest.raises(ManifestError) as info:
        _submit_into(repo, path, "b", "copy/")
    message = str(info.value)
    assert "s3://b/x (line 1) would be copied onto s3://b/copy/x" in message
    assert "(line 3)" in message
    assert repo.list_jobs() == []


def test_copies_within_one_bucket_that_overwrite_no_source_are_fine(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    path = write_manifest("b,x\nb,y\n")
    # in place (each object onto itself), and into a prefix no source is in
    assert _submit_into(repo, path, "b", "").total_tasks == 2
    assert _submit_into(repo, path, "b", "moved/").total_tasks == 2
    # another bucket: whatever the keys
    assert _submit_into(repo, path, "dst", "").total_tasks == 2
