"""Running a benchmark script as a user runs it, for the smoke tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from botocore.config import Config

from bench import endpoint

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
    """A client of a fakes3 endpoint (:func:`bench.endpoint.client`) that
    tries each call once: the tests see what fakes3 answered."""
    return endpoint.client(
        url, virtual=virtual, config=Config(retries={"total_max_attempts": 1})
    )
