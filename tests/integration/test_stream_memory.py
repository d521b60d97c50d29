"""A stream holds parts, never whole objects (issue 20): the peak RSS of a
``bulkcopy copy --transfer stream`` of an object many times its budget stays
under 150 MB + part size times parts in flight, as the README promises.

Two fakes3 endpoints in this process (bench/fakes3.py: fast, virtual
objects, the ETag of the zeros GetObject serves) and the CLI in a child
process, its peak RSS read by a parent of its own (``RUSAGE_CHILDREN``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.fakes3 import FakeS3

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MIB = 1024**2
PART, IN_FLIGHT = 8 * MIB, 2
SIZE = 160 * MIB  # ten times the budget
BOUND_MB = 150 + PART * IN_FLIGHT / 1e6

# runs the command given and prints its peak RSS (kB) as the last line
PEAK_RSS = (
    "import resource, subprocess, sys; "
    "rc = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
    "sys.exit(rc)"
)


def test_a_stream_of_an_object_ten_times_its_budget_stays_in_bounds(
    tmp_path: Path,
) -> None:
    with (
        FakeS3(content_etags=True) as src,
        FakeS3(content_etags=True) as dst,
    ):
        src.seed_object("src", "big.bin", SIZE)
        dst.create_bucket("dst")
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        command = [
            *(sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "engine"),
            *("copy", "--from", "s3://src/", "--to", "s3://dst/copy/"),
            *("--db", str(tmp_path / "job.db"), "--transfer", "stream"),
            *("--endpoint-url", dst.url, "--addressing-style", "path"),
            *("--source-endpoint-url", src.url, "--source-addressing-style", "path"),
            *("--part-size", "8MiB", "--multipart-threshold", "8MiB"),
            *("--part-concurrency", str(IN_FLIGHT), "--no-progress", "-q"),
        ]
        proc = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        peak_mb = int(proc.stdout.split()[-1]) * 1024 / 1e6
        seen = dst.snapshot()
    assert seen["requests"].get("UploadPart") == SIZE // PART  # streamed in parts
    assert seen["requests"].get("CompleteMultipartUpload") == 1
    assert seen["bytes_received"] >= SIZE
    assert peak_mb <= BOUND_MB, f"peak RSS {peak_mb:.0f} MB > {BOUND_MB:.0f} MB"
