"""The engine end to end over HTTP against real S3 server processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.domain.errors import JobCannotStart
from engine.domain.models import JobStatus, TaskStatus
from engine.store import Repository
from tests.helpers import (
    AWKWARD_KEYS,
    get_body,
    run_job,
    seed,
    submit_job,
    write_manifest,
)
from tests.servers import S3Server

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True, params=["botocore", "lean"])
def copy_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on botocore's CopyObject and on the lean path."""
    monkeypatch.setenv("BULKCOPY_LEAN_COPY", "1" if request.param == "lean" else "0")
    path: str = request.param
    return path


def test_copies_awkward_keys_byte_for_byte(s3: S3Server, tmp_path: Path) -> None:
    """Every manifest object, whatever its key, lands under the prefix intact."""
    keys = [k for k in AWKWARD_KEYS if s3.supports_key(k)]
    src, dst = s3.new_bucket(), s3.new_bucket()
    bodies = seed(s3, src, keys)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, s3, f"s3://{dst}/copy")

    counts = run_job(repo, job, s3)

    assert counts.get(TaskStatus.SUCCEEDED) == len(keys)
    assert counts.remaining == 0
    assert repo.get_job(job.id).status is JobStatus.COMPLETE
    for key, body in bodies.items():
        assert get_body(s3, dst, "copy/" + key) == body, key
    rows = list(repo.iter_results(job.id))
    assert sorted(r.src.key for r in rows) == sorted(keys)
    client = s3.client()
    for r in rows:
        # the copy's ETag as the server wrote it, quotes and all (the XML may
        # spell them &quot; or &#34;)
        assert r.etag == client.head_object(Bucket=dst, Key="copy/" + r.src.key)["ETag"]
        assert r.etag.startswith('"')
        assert r.bytes == len(bodies[r.src.key])
        assert r.http_status == 200
        assert r.attempts == 1
        assert r.started_at is not None
        assert r.finished_at is not None
        assert r.finished_at >= r.started_at


def test_versioned_source_copies_the_named_version(
    moto: S3Server, tmp_path: Path
) -> None:
    """A manifest version id copies that version, and both version ids are recorded."""
    src, dst = moto.new_bucket(versioned=True), moto.new_bucket(versioned=True)
    c = moto.client()
    old = c.put_object(Bucket=src, Key="doc.txt", Body=b"old")["VersionId"]
    c.put_object(Bucket=src, Key="doc.txt", Body=b"new")
    manifest = write_manifest(tmp_path / "m.csv", [(src, "doc.txt", old)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}")

    run_job(repo, job, moto)

    [row] = list(repo.iter_results(job.id))
    assert row.status is TaskStatus.SUCCEEDED
    assert row.src.version_id == old
    assert row.src_version_id == old
    assert row.dst_version_id
    assert get_body(moto, dst, "doc.txt", row.dst_version_id) == b"old"
    assert row.bytes == 3


def test_missing_source_object_fails_only_its_task(
    s3: S3Server, tmp_path: Path
) -> None:
    """A missing object is a failed task with NoSuchKey/404; the others succeed."""
    src, dst = s3.new_bucket(), s3.new_bucket()
    seed(s3, src, ["a", "c"])
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in "abc"])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, s3, f"s3://{dst}")

    counts = run_job(repo, job, s3)

    assert counts.get(TaskStatus.SUCCEEDED) == 2
    [failed] = list(repo.iter_results(job.id, failed_only=True))
    assert failed.src.key == "b"
    assert failed.error_code == "NoSuchKey"
    assert failed.http_status == 404
    assert failed.attempts == 1  # permanent: not retried


def test_missing_source_without_stat_fails_from_copyobject(
    s3: S3Server, tmp_path: Path
) -> None:
    """Without the HEAD, CopyObject's own NoSuchKey error is recorded."""
    src, dst = s3.new_bucket(), s3.new_bucket()
    seed(s3, src, ["a"])
    manifest = write_manifest(tmp_path / "m.csv", [(src, "a", None), (src, "zz", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, s3, f"s3://{dst}", stat_source=False)

    run_job(repo, job, s3)

    rows = {r.src.key: r for r in repo.iter_results(job.id)}
    assert rows["a"].status is TaskStatus.SUCCEEDED
    assert rows["a"].bytes is None  # unknown without the HEAD, never invented
    assert rows["zz"].status is TaskStatus.FAILED
    assert rows["zz"].error_code == "NoSuchKey"


def test_missing_destination_bucket_fails_before_any_task(
    s3: S3Server, tmp_path: Path
) -> None:
    """A missing destination bucket stops the job at pre-flight; no task is touched."""
    src = s3.new_bucket()
    seed(s3, src, ["a", "b"])
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in "ab"])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, s3, "s3://no-such-bucket-bulkcopy/x/")

    with pytest.raises(JobCannotStart, match="no-such-bucket-bulkcopy"):
        run_job(repo, job, s3)

    after = repo.get_job(job.id)
    assert after.status is JobStatus.FAILED
    assert "does not exist" in (after.message or "")
    assert repo.counts(job.id).get(TaskStatus.PENDING) == 2


def test_missing_source_bucket_fails_before_any_task(
    s3: S3Server, tmp_path: Path
) -> None:
    """A source bucket that does not exist stops the job at pre-flight."""
    dst = s3.new_bucket()
    manifest = write_manifest(tmp_path / "m.csv", [("no-such-src-bulkcopy", "a", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, s3, f"s3://{dst}")

    with pytest.raises(JobCannotStart, match="source bucket 'no-such-src-bulkcopy'"):
        run_job(repo, job, s3)
    assert repo.counts(job.id).get(TaskStatus.PENDING) == 1


def test_preflight_leaves_no_upload_or_object(s3: S3Server, tmp_path: Path) -> None:
    """The writability probe leaves nothing in the destination bucket."""
    src, dst = s3.new_bucket(), s3.new_bucket()
    seed(s3, src, ["a"])
    manifest = write_manifest(tmp_path / "m.csv", [(src, "a", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    run_job(repo, submit_job(repo, manifest, s3, f"s3://{dst}/p/"), s3)

    c = s3.client()
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=dst).get("Contents", [])]
    assert keys == ["p/a"]
    if s3.name == "moto":  # rclone serve s3 does not list multipart uploads
        assert not c.list_multipart_uploads(Bucket=dst).get("Uploads")


def test_stop_then_run_again_finishes_each_task_once(
    moto: S3Server, tmp_path: Path
) -> None:
    """A drained stop leaves the rest pending; running again finishes exactly those."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    keys = [f"k{i:03d}" for i in range(60)]
    seed(moto, src, keys)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}")
    finished: list[int] = []
    holder: dict[str, object] = {}

    def observer(event: object) -> None:
        from engine.run.events import TaskFinished

        if isinstance(event, TaskFinished):
            finished.append(event.task.id)
            if len(finished) == 10:
                holder["worker"].request_stop()  # type: ignore[attr-defined]

    counts = run_job(
        repo,
        job,
        moto,
        concurrency=2,
        observer=observer,
        worker_hook=lambda w: holder.update(worker=w),
    )
    assert repo.get_job(job.id).status is JobStatus.STOPPED
    first_run = counts.get(TaskStatus.SUCCEEDED)
    assert 10 <= first_run < 60
    assert counts.get(TaskStatus.RUNNING) == 0  # unstarted claims were handed back
    assert counts.get(TaskStatus.SUCCEEDED) == len(finished)

    finished.clear()
    counts = run_job(repo, job, moto, concurrency=4)
    assert counts.get(TaskStatus.SUCCEEDED) == 60
    assert repo.get_job(job.id).status is JobStatus.COMPLETE
    ids = [r.id for r in repo.iter_results(job.id)]
    assert len(ids) == len(set(ids)) == 60
