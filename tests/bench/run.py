"""Running a benchmark script as a user runs it, for the smoke tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]


def run_bench(
    script: str, *args: str, out: Path, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``python bench/<script> ARGS --json OUT`` from the checkout; its
    process (exit 0 asserted, with its output on failure) and the JSON it
    wrote."""
    proc = subprocess.run(
        [sys.executable, f"bench/{script}", *args, "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(out.read_text())
    return proc, result


def client_for(url: str, *, virtual: bool = False) -> Any:
    """A boto3 client of a fakes3 endpoint (test keys; path-style, or
    virtual-host through fakes3 as an HTTP proxy), one attempt a call."""
    config = Config(
        s3={"addressing_style": "virtual" if virtual else "path"},
        retries={"total_max_attempts": 1},
    )
    if virtual:  # BUCKET.localhost through fakes3 as an HTTP proxy: no DNS needed
        config = config.merge(Config(proxies={"http": url}))
        url = "http://localhost:" + url.rsplit(":", 1)[1]
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=config,
    )
