"""Moves (``--delete-source``) over HTTP: each source is deleted only after its
copy is recorded and verified; a failed delete keeps the source and says so;
a run stopped between the copy and the delete resumes to the delete."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from engine.cli.common import EXIT_OK, exit_code
from engine.domain import codes
from engine.domain.models import TaskStatus
from engine.store import Repository
from engine.usecases.report import bops_row, jsonl_record
from tests.helpers import (
    get_body,
    run_job,
    seed,
    submit_job,
    verify_job_now,
    write_manifest,
)
from tests.servers import S3Server

pytestmark = pytest.mark.integration


def _keys(server: S3Server, bucket: str) -> set[str]:
    out = server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"] for o in out}


def _move_job(
    s3: S3Server, tmp_path: Path, n: int = 6, **copy: Any
) -> tuple[Repository, Any, str, str, dict[str, bytes]]:
    src, dst = s3.new_bucket(), s3.new_bucket()
    keys = [f"dir/k{i}" for i in range(n)]
    bodies = seed(s3, src, keys)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(
        repo, manifest, s3, f"s3://{dst}/moved/", delete_source=True, **copy
    )
    return repo, job, src, dst, bodies


def test_a_move_copies_every_object_then_deletes_its_source(
    s3: S3Server, tmp_path: Path
) -> None:
    repo, job, src, dst, bodies = _move_job(s3, tmp_path)

    counts = run_job(repo, job, s3, preflight=False)

    assert counts.get(TaskStatus.SUCCEEDED) == len(bodies)
    assert counts.sources_deleted == len(bodies)
    assert exit_code(counts) == EXIT_OK
    assert _keys(s3, src) == set()
    for key, body in bodies.items():
        assert get_body(s3, dst, f"moved/{key}") == body
    rows = list(repo.iter_results(job.id))
    assert {r.delete_state for r in rows} == {codes.DELETED}
    assert all(r.deleted_at is not None and r.etag for r in rows)
    record = jsonl_record(job.id, rows[0])
    assert record["source_deleted"] is True
    assert bops_row(rows[0])[3] == "succeeded"


def versioned_move(
    moto: S3Server, tmp_path: Path
) -> tuple[Repository, Any, str, str, str]:
    """A move of the older of two versions of ``k`` (b"old", then b"new");
    returns the newer version's id last."""
    src, dst = moto.new_bucket(versioned=True), moto.new_bucket()
    c = moto.client()
    old = c.put_object(Bucket=src, Key="k", Body=b"old")["VersionId"]
    new = c.put_object(Bucket=src, Key="k", Body=b"new")["VersionId"]
    manifest = write_manifest(tmp_path / "m.csv", [(src, "k", old)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}", delete_source=True)
    return repo, job, src, dst, new


def test_a_move_of_a_versioned_source_deletes_exactly_the_version_copied(
    moto: S3Server, tmp_path: Path
) -> None:
    repo, job, src, dst, new = versioned_move(moto, tmp_path)
    c = moto.client()

    counts = run_job(repo, job, moto, preflight=False)

    assert counts.sources_deleted == 1
    assert get_body(moto, dst, "k") == b"old"
    left = c.list_object_versions(Bucket=src, Prefix="k")
    assert [v["VersionId"] for v in left.get("Versions", [])] == [new]
    assert not left.get("DeleteMarkers")  # a version deleted, no marker added


def test_a_move_into_itself_is_refused_and_deletes_nothing(
    moto: S3Server, tmp_path: Path
) -> None:
    bucket = moto.new_bucket()
    seed(moto, bucket, ["k"])
    manifest = write_manifest(tmp_path / "m.csv", [(bucket, "k", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{bucket}", delete_source=True)

    counts = run_job(repo, job, moto, preflight=False)

    assert counts.get(TaskStatus.FAILED) == 1
    assert counts.sources_deleted == 0
    (row,) = repo.iter_results(job.id)
    assert row.error_code == codes.SAME_OBJECT
    assert _keys(moto, bucket) == {"k"}


def test_a_delete_refused_keeps_the_source_and_records_the_copy(
    moto: S3Server, tmp_path: Path
) -> None:
    repo, job, src, dst, bodies = _move_job(moto, tmp_path, n=3)

    def refuse_deletes(client: Any) -> None:
        def deny(**_: Any) -> None:
            raise_denied()

        client.meta.events.register("before-call.s3.DeleteObject", deny)

    counts = run_job(repo, job, moto, preflight=False, on_client=refuse_deletes)

    assert counts.get(TaskStatus.FAILED) == 3
    assert counts.sources_deleted == 0
    assert _keys(moto, src) == set(bodies)
    for r in repo.iter_results(job.id):
        assert r.delete_state == codes.KEPT
        assert r.error_code == "AccessDenied"
        assert "the source was not deleted" in (r.error_message or "")
        assert r.etag  # the copy is recorded …
        assert get_body(moto, dst, r.dst_key) == bodies[r.src.key]  # … and there


def raise_denied() -> None:
    from botocore.exceptions import ClientError

    raise ClientError(
        {
            "Error": {"Code": "AccessDenied", "Message": "no s3:DeleteObject"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "DeleteObject",
    )


class Crash(BaseException):
    """The process dies here (nothing after it runs, no result is recorded)."""


def _crash_at(event: str) -> Any:
    def hook(client: Any) -> None:
        def boom(**_: Any) -> None:
            raise Crash()

        client.meta.events.register(event, boom)

    return hook


def _counting(calls: list[str]) -> Any:
    def hook(client: Any) -> None:
        def seen(model: Any, **_: Any) -> None:
            calls.append(model.name)

        client.meta.events.register("before-call.s3.*", seen)

    return hook


@pytest.mark.parametrize(
    ("crash_at", "deletes", "state"),
    [
        # copied and recorded, the delete never sent: it is sent on resume
        ("before-call.s3.DeleteObject", 3, codes.DELETED),
        # deleted, the result never recorded: the source is found gone
        ("after-call.s3.DeleteObject", 2, codes.GONE),
    ],
)
def test_a_crash_between_the_copy_and_the_delete_resumes_to_the_delete(
    moto: S3Server, tmp_path: Path, crash_at: str, deletes: int, state: str
) -> None:
    repo, job, src, dst, bodies = _move_job(moto, tmp_path, n=3)
    with pytest.raises(Crash):
        run_job(
            repo,
            job,
            moto,
            preflight=False,
            concurrency=1,
            on_client=_crash_at(crash_at),
            lease_seconds=0.5,
        )
    pending = [t for t in repo.iter_results(job.id) if t.delete_state == codes.PENDING]
    assert len(pending) == 1  # the first copy is recorded, its delete pending
    first = pending[0]
    time.sleep(0.6)  # the crashed run's leases run out

    calls: list[str] = []
    counts = run_job(repo, job, moto, preflight=False, on_client=_counting(calls))

    assert calls.count("CopyObject") == 2  # not the first one again
    assert calls.count("DeleteObject") == deletes
    assert counts.get(TaskStatus.SUCCEEDED) == 3
    assert counts.sources_deleted == 3
    assert _keys(moto, src) == set()
    rows = {r.src.key: r for r in repo.iter_results(job.id)}
    assert len(rows) == 3
    assert rows[first.src.key].etag == first.etag
    assert rows[first.src.key].delete_state == state
    for key, body in bodies.items():
        assert get_body(moto, dst, f"moved/{key}") == body


def test_verify_after_a_move_checks_each_copy_against_its_record(
    moto: S3Server, tmp_path: Path
) -> None:
    """`bulkcopy verify` of a move: the sources are gone, so each destination
    is checked against the copy recorded; a copy changed since fails."""

    repo, job, _src, dst, _bodies = _move_job(moto, tmp_path, n=3)
    assert run_job(repo, job, moto, preflight=False).sources_deleted == 3
    moto.client().put_object(Bucket=dst, Key="moved/dir/k1", Body=b"changed later")

    checked, failures = verify_job_now(moto, repo, job.id)

    assert checked == 3
    assert len(failures) == 1
    rows = {r.src.key: r for r in repo.iter_results(job.id)}
    assert rows["dir/k1"].status is TaskStatus.FAILED
    assert "changed since" in (rows["dir/k1"].error_message or "")
    assert rows["dir/k0"].status is TaskStatus.SUCCEEDED


def test_a_multipart_move_the_server_answers_with_empty_parts_deletes_nothing(
    rclone: S3Server, tmp_path: Path
) -> None:
    """rclone answers UploadPartCopy with an empty 200 (a 0-byte part): the
    copy is no copy, so the source stays (a real Go S3 server)."""
    import os

    mib = 1024 * 1024
    src, dst = rclone.new_bucket(), rclone.new_bucket()
    rclone.client().put_object(Bucket=src, Key="big", Body=os.urandom(11 * mib))
    seed(rclone, src, ["small"])
    manifest = write_manifest(
        tmp_path / "m.csv", [(src, "big", None), (src, "small", None)]
    )
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(
        repo,
        manifest,
        rclone,
        f"s3://{dst}",
        delete_source=True,
        multipart_threshold=5 * mib,
        part_size=5 * mib,
        preserve_tags=False,
    )

    counts = run_job(repo, job, rclone, preflight=False)

    assert counts.sources_deleted == 1
    rows = {r.src.key: r for r in repo.iter_results(job.id)}
    assert rows["small"].delete_state == codes.DELETED
    assert rows["big"].status is TaskStatus.FAILED
    assert rows["big"].delete_state is None  # never copied: nothing to delete
    assert _keys(rclone, src) == {"big"}


def test_a_source_overwritten_between_its_check_and_its_delete_is_kept(
    moto: S3Server, tmp_path: Path
) -> None:
    """An unversioned source rewritten by someone else after the check, just
    before the delete: the delete is conditional (If-Match: the ETag copied),
    the server refuses it, and the new object stays (SourceChanged)."""
    repo, job, src, _dst, _bodies = _move_job(moto, tmp_path, n=1)
    writer = moto.client()

    def overwrite_first(client: Any) -> None:
        def before_delete(params: Any, **_: Any) -> None:
            writer.put_object(Bucket=src, Key=params["Key"], Body=b"written meanwhile")

        client.meta.events.register(
            "before-parameter-build.s3.DeleteObject", before_delete
        )

    counts = run_job(repo, job, moto, preflight=False, on_client=overwrite_first)

    assert counts.sources_deleted == 0
    (row,) = repo.iter_results(job.id)
    assert (row.status, row.error_code) == (TaskStatus.FAILED, codes.SOURCE_CHANGED)
    assert row.delete_state == codes.KEPT
    assert get_body(moto, src, "dir/k0") == b"written meanwhile"


def test_verify_checks_the_moves_that_found_their_object_already_there(
    moto: S3Server, tmp_path: Path
) -> None:
    """--skip-existing same-etag in a move: the object already there is not
    copied, its source is deleted; `verify` checks that destination too."""

    src, dst = moto.new_bucket(), moto.new_bucket()
    bodies = seed(moto, src, ["a", "b"])
    c = moto.client()
    for key, body in bodies.items():
        c.put_object(Bucket=dst, Key=key, Body=body)  # already copied, say
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in bodies])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(
        repo,
        manifest,
        moto,
        f"s3://{dst}",
        delete_source=True,
        skip_existing="same-etag",
    )
    counts = run_job(repo, job, moto, preflight=False)
    assert (counts.up_to_date, counts.sources_deleted) == (2, 2)
    assert _keys(moto, src) == set()
    c.put_object(Bucket=dst, Key="b", Body=b"changed since")

    checked, failures = verify_job_now(moto, repo, job.id)

    assert (checked, len(failures)) == (2, 1)
    rows = {r.src.key: r for r in repo.iter_results(job.id)}
    assert rows["a"].status is TaskStatus.SKIPPED
    assert rows["b"].status is TaskStatus.FAILED
    assert rows["b"].error_code == "VerificationFailed"
