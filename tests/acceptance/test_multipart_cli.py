"""Large objects through the CLI: kill -9 mid-parts, resume, cleanup."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.acceptance.conftest import Cli
from tests.helpers import get_body, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.acceptance

MiB = 1024 * 1024


def test_kill_9_mid_parts_then_resume(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """A large copy killed between parts resumes its upload and lands intact."""
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    body = os.urandom(40 * MiB + 7)
    moto.client().put_object(Bucket=src, Key="big.bin", Body=body, Metadata={"k": "v"})
    manifest = write_manifest(tmp_path / "m.csv", [(src, "big.bin", None)])
    sub = cli(
        "submit",
        str(manifest),
        "--to",
        f"s3://{dst}",
        "--multipart-threshold",
        "5MiB",
        "--part-size",
        "5MiB",
    )
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip()

    proc = cli.popen("run", job_id, "--part-concurrency", "1")
    deadline = time.monotonic() + 60
    while cli.parts_recorded() < 2 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert 2 <= cli.parts_recorded() < 9
    assert len(moto.client().list_multipart_uploads(Bucket=dst).get("Uploads", [])) == 1

    res = cli("resume", job_id)
    assert res.returncode == 0, res.stderr
    assert get_body(moto, dst, "big.bin") == body
    head = moto.client().head_object(Bucket=dst, Key="big.bin")
    assert head["Metadata"] == {"k": "v"}
    assert head["ETag"].strip('"').endswith("-9")
    assert moto.client().list_multipart_uploads(Bucket=dst).get("Uploads", []) == []


def test_cleanup_aborts_only_stale_uploads(
    moto: S3Server, cli_for: Callable[[S3Server], Cli]
) -> None:
    """`cleanup` lists with --dry-run, and aborts uploads older than the cut-off."""
    cli = cli_for(moto)
    bucket = moto.new_bucket()
    c = moto.client()
    c.create_multipart_upload(Bucket=bucket, Key="jobs/a.bin")
    c.create_multipart_upload(Bucket=bucket, Key="other/b.bin")

    dry = cli("cleanup", f"s3://{bucket}/jobs/", "--older-than", "0s", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "jobs/a.bin" in dry.stdout
    assert "other/b.bin" not in dry.stdout
    assert len(c.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 2

    # (moto reports every upload as initiated in 2010, so the age cut-off itself
    # is tested in tests/unit/test_cleanup.py)
    res = cli("cleanup", f"s3://{bucket}/jobs/", "--older-than", "0s")
    assert res.returncode == 0, res.stderr
    left = [u["Key"] for u in c.list_multipart_uploads(Bucket=bucket)["Uploads"]]
    assert left == ["other/b.bin"]

    bad = cli("cleanup", f"s3://{bucket}", "--older-than", "soon")
    assert bad.returncode == 2
    assert "--older-than" in bad.stderr
