"""Nothing left open: every multipart upload bulkcopy creates is completed,
aborted, or found and aborted later — including uploads created by a request
whose answer never came, and the start-up check's own.

Faults come from the HTTP fault proxy (tests/faultproxy.py) in front of the
store (moto; the sweeps also on rclone, Ceph RGW and LocalStack),
so the store really acts before the answer is lost."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.domain.models import TaskStatus
from engine.run import events
from engine.run.worker import Worker
from engine.store import Repository
from tests.faultproxy import AfterUpstream, Fault, FaultProxy, Request, Reset, Respond
from tests.helpers import get_body, run_job, submit_job, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
MP = {"multipart_threshold": 5 * MiB, "part_size": 5 * MiB}
PROBE = ".bulkcopy-preflight-"
ACCESS_DENIED = (
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
)


def _uploads(moto: S3Server, bucket: str) -> list[str]:
    listed = moto.client().list_multipart_uploads(Bucket=bucket)
    return [u["Key"] for u in listed.get("Uploads", [])]


def _sdk_attempts(n: int) -> Callable[[Worker], None]:
    def hook(worker: Worker) -> None:
        worker.client_settings = dataclasses.replace(
            worker.client_settings, sdk_max_attempts=n
        )

    return hook


def _first_create(fault: Fault, *, probe: bool) -> Callable[[Request], Fault | None]:
    """``fault`` for the first CreateMultipartUpload of a task's key
    (``probe``: of the start-up check's key)."""

    def decide(req: Request) -> Fault | None:
        if req.operation != "CreateMultipartUpload" or req.n != 1:
            return None
        return fault if (PROBE in (req.key or "")) is probe else None

    return decide


@pytest.mark.parametrize("store", ["moto", "rgw", "localstack"], indirect=True)
@pytest.mark.parametrize("sdk_attempts", [1, 3], ids=["engine-retry", "sdk-retry"])
def test_a_create_whose_answer_was_lost_leaves_no_upload_open(
    store: S3Server, tmp_path: Path, sdk_attempts: int
) -> None:
    """The store created the upload, the connection was reset before its
    answer; the create is sent again (by the SDK, or by the next attempt):
    the copy completes on the second upload and the first is aborted."""
    src, dst = store.new_bucket(), store.new_bucket()
    body = os.urandom(11 * MiB)
    store.client().put_object(Bucket=src, Key="big.bin", Body=body)
    manifest = write_manifest(tmp_path / "m.csv", [(src, "big.bin", None)])
    repo = Repository(str(tmp_path / "jobs.sqlite"))
    job = submit_job(repo, manifest, store, f"s3://{dst}/", **MP)

    with FaultProxy(store, _first_create(AfterUpstream(Reset()), probe=False)) as p:
        run_job(repo, job, p.server, worker_hook=_sdk_attempts(sdk_attempts))
        creates = p.seen["CreateMultipartUpload", "big.bin"]

    [row] = repo.iter_results(job.id)
    assert row.status is TaskStatus.SUCCEEDED, row.error_message
    assert creates == 2  # the store made two uploads
    assert get_body(store, dst, "big.bin") == body
    assert _uploads(store, dst) == []


def test_a_start_up_check_whose_create_answer_was_lost_leaves_nothing(
    store: S3Server, tmp_path: Path
) -> None:
    """The start-up check's own upload, created twice (its first answer
    lost), is aborted both times."""
    src, dst = store.new_bucket(), store.new_bucket()
    store.client().put_object(Bucket=src, Key="a", Body=b"a")
    manifest = write_manifest(tmp_path / "m.csv", [(src, "a", None)])
    repo = Repository(str(tmp_path / "jobs.sqlite"))
    job = submit_job(repo, manifest, store, f"s3://{dst}/p/")

    with FaultProxy(store, _first_create(AfterUpstream(Reset()), probe=True)) as p:
        run_job(repo, job, p.server, worker_hook=_sdk_attempts(3))
        creates = sum(
            n
            for (op, key), n in p.seen.items()
            if op == "CreateMultipartUpload" and PROBE in (key or "")
        )

    assert creates == 2
    assert [r.status for r in repo.iter_results(job.id)] == [TaskStatus.SUCCEEDED]
    assert _uploads(store, dst) == []


def test_an_earlier_runs_start_up_check_upload_is_aborted(
    store: S3Server, tmp_path: Path
) -> None:
    """A run killed between its check's create and abort left the upload:
    the next run's check aborts it (no record needed: its key says what it
    is)."""
    src, dst = store.new_bucket(), store.new_bucket()
    store.client().put_object(Bucket=src, Key="a", Body=b"a")
    left = f"p/{PROBE}0123456789abcdef"
    store.client().create_multipart_upload(Bucket=dst, Key=left)
    manifest = write_manifest(tmp_path / "m.csv", [(src, "a", None)])
    repo = Repository(str(tmp_path / "jobs.sqlite"))
    job = submit_job(repo, manifest, store, f"s3://{dst}/p/")

    run_job(repo, job, store)

    assert _uploads(store, dst) == []


def test_a_start_up_check_upload_that_cannot_be_aborted_is_reported(
    moto: S3Server, tmp_path: Path
) -> None:
    """An abort refused after its retries: the run goes on (the bucket is
    writable) and warns with the command that removes the upload."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    moto.client().put_object(Bucket=src, Key="a", Body=b"a")
    manifest = write_manifest(tmp_path / "m.csv", [(src, "a", None)])
    repo = Repository(str(tmp_path / "jobs.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}/p/")
    seen: list[Any] = []

    def refuse_abort(req: Request) -> Fault | None:
        if req.operation == "AbortMultipartUpload" and PROBE in (req.key or ""):
            return Respond(403, ACCESS_DENIED)
        return None

    with FaultProxy(moto, refuse_abort) as p:
        run_job(repo, job, p.server, observer=seen.append)

    warnings = [e.message for e in seen if isinstance(e, events.PreflightWarning)]
    assert len(warnings) == 1, warnings
    assert f"bulkcopy cleanup s3://{dst}/p/{PROBE} --older-than 0s" in warnings[0]
    assert [k.startswith(f"p/{PROBE}") for k in _uploads(moto, dst)] == [True]


def test_an_upload_whose_abort_failed_is_aborted_by_a_later_run(
    moto: S3Server, tmp_path: Path
) -> None:
    """A task failed for good and its upload's abort failed too: the upload
    stays on record; the run tries once more before it ends and says what is
    left (with the cleanup command), so does `status`; the next run aborts
    it."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    moto.client().put_object(Bucket=src, Key="big.bin", Body=os.urandom(11 * MiB))
    manifest = write_manifest(tmp_path / "m.csv", [(src, "big.bin", None)])
    db = str(tmp_path / "jobs.sqlite")
    repo = Repository(db)
    job = submit_job(repo, manifest, moto, f"s3://{dst}/", **MP)
    seen: list[Any] = []

    def refuse(req: Request) -> Fault | None:
        if req.operation == "UploadPartCopy":
            return Respond(403, ACCESS_DENIED)
        if req.operation == "AbortMultipartUpload" and req.key == "big.bin":
            return Respond(403, ACCESS_DENIED)
        return None

    with FaultProxy(moto, refuse) as p:
        run_job(repo, job, p.server, observer=seen.append)

    [row] = repo.iter_results(job.id)
    assert row.status is TaskStatus.FAILED
    assert _uploads(moto, dst) == ["big.bin"]
    [left] = [e for e in seen if isinstance(e, events.UploadsLeft)]
    assert left.count == 1
    assert left.command == f"bulkcopy cleanup s3://{dst}/ --older-than 0s"
    assert len(repo.open_uploads(job.id, of_final_tasks=True)) == 1
    status = subprocess.run(
        [sys.executable, "-m", "engine", "status", job.id, "--db", db, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(status.stdout)["uploads_left_open"] == 1

    run_job(repo, repo.get_job(job.id), moto)

    assert _uploads(moto, dst) == []
    assert repo.open_uploads(job.id) == []


def test_a_destination_that_cannot_be_reached_leaves_no_start_up_check_open(
    moto: S3Server, tmp_path: Path
) -> None:
    """The destination's HeadBucket and the start-up check's create go at
    once (one round trip): when the HEAD refuses the job (here: 503 after
    its retries) while the create went through, the check's upload is
    aborted before the job is refused."""
    from engine.domain.errors import JobCannotStart

    src, dst = moto.new_bucket(), moto.new_bucket()
    moto.client().put_object(Bucket=src, Key="a", Body=b"a")
    manifest = write_manifest(tmp_path / "m.csv", [(src, "a", None)])
    repo = Repository(str(tmp_path / "jobs.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}/p/")

    def unreachable(req: Request) -> Fault | None:
        if req.operation == "HeadBucket" and req.bucket == dst:
            return Respond(503, b"<Error><Code>ServiceUnavailable</Code></Error>")
        return None

    with FaultProxy(moto, unreachable) as p, pytest.raises(JobCannotStart) as err:
        run_job(repo, job, p.server)
    assert "cannot reach destination bucket" in str(err.value)
    assert p.requests["CreateMultipartUpload"] >= 1
    assert _uploads(moto, dst) == []
