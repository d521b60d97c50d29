"""Settings for S3-compatible stores, over HTTP against a real server process:
Content-MD5 on request bodies (IBM COS protected buckets), SigV2 signing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from engine.domain.backoff import RetryPolicy
from engine.domain.models import Destination, TaskStatus
from engine.domain.spec import CopyOptions, JobSpec
from engine.run.settings import RunSettings
from engine.run.worker import Worker
from engine.store import Repository
from engine.usecases.submit import submit
from tests.helpers import client_settings, get_body, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
PATIENT = RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=2.0)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _run(repo: Repository, job_id: str, spec: JobSpec, seen: list[Any]) -> Any:
    def capture(request: Any, **_: Any) -> None:
        seen.append(request)

    worker = Worker(
        repo,
        repo.get_job(job_id),
        # patient retries: these tests check how requests are signed, and a
        # loaded server's hiccup must not exhaust five attempts in 10 ms
        RunSettings(concurrency=4, part_concurrency=4, retry=PATIENT),
        spec.client,
        on_client=lambda c: c.meta.events.register("before-send.s3", capture),
    )
    counts = asyncio.run(worker.run())
    failed = [
        (r.src.key, r.error_code, r.error_message)
        for r in repo.iter_results(job_id, statuses=(TaskStatus.FAILED,))
    ]
    assert not failed, failed
    return counts


def test_content_md5_is_sent_on_complete_and_accepted(
    moto: S3Server, tmp_path: Path
) -> None:
    """--content-md5: CompleteMultipartUpload carries the MD5 of its body."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    body = os.urandom(11 * MiB)
    moto.client().put_object(Bucket=src, Key="big.bin", Body=body)
    manifest = write_manifest(tmp_path / "m.csv", [(src, "big.bin", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    spec = JobSpec(
        client=replace(client_settings(moto), content_md5=True),
        copy=CopyOptions(multipart_threshold=5 * MiB, part_size=5 * MiB),
    )
    job = submit(repo, str(manifest), Destination.parse(f"s3://{dst}/"), spec)
    seen: list[Any] = []

    counts = _run(repo, job.id, spec, seen)

    assert counts.get(TaskStatus.SUCCEEDED) == 1
    assert get_body(moto, dst, "big.bin") == body
    completes = [r for r in seen if r.method == "POST" and "uploadId=" in r.url]
    assert completes, "no CompleteMultipartUpload seen"
    for request in completes:
        want = base64.b64encode(hashlib.md5(request.body).digest()).decode()
        assert _text(request.headers["Content-MD5"]) == want
        signed = _text(request.headers["Authorization"]).split("SignedHeaders=")[1]
        assert "content-md5" in signed.split(",")[0].split(";")


def test_without_content_md5_none_is_added(moto: S3Server, tmp_path: Path) -> None:
    """The default leaves botocore's own choice alone (no Content-MD5 of ours)."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    moto.client().put_object(Bucket=src, Key="big.bin", Body=os.urandom(6 * MiB))
    manifest = write_manifest(tmp_path / "m.csv", [(src, "big.bin", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    spec = JobSpec(
        client=client_settings(moto),
        copy=CopyOptions(multipart_threshold=5 * MiB, part_size=5 * MiB),
    )
    job = submit(repo, str(manifest), Destination.parse(f"s3://{dst}/"), spec)
    seen: list[Any] = []

    assert _run(repo, job.id, spec, seen).get(TaskStatus.SUCCEEDED) == 1
    completes = [r for r in seen if r.method == "POST" and "uploadId=" in r.url]
    assert completes
    assert all("Content-MD5" not in r.headers for r in completes)


def test_signature_v2_signs_requests_and_copies(moto: S3Server, tmp_path: Path) -> None:
    """--signature-version s3: requests carry a V2 `AWS KEY:SIG` authorization."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    moto.client().put_object(Bucket=src, Key="a.txt", Body=b"hello")
    manifest = write_manifest(tmp_path / "m.csv", [(src, "a.txt", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    spec = JobSpec(client=replace(client_settings(moto), signature_version="s3"))
    job = submit(repo, str(manifest), Destination.parse(f"s3://{dst}/"), spec)
    seen: list[Any] = []

    assert _run(repo, job.id, spec, seen).get(TaskStatus.SUCCEEDED) == 1
    assert get_body(moto, dst, "a.txt") == b"hello"
    auth = [_text(r.headers["Authorization"]) for r in seen]
    assert auth
    assert all(a.startswith("AWS ") for a in auth)
