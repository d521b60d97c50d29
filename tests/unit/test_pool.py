"""The worker pool over the job table (SQLite in tmp) and an in-memory S3:
claim → copy → record, within the concurrency limit, every task once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from engine.domain.backoff import RetryPolicy
from engine.domain.models import Destination, TaskStatus
from engine.domain.records import JobRecord
from engine.domain.spec import JobSpec
from engine.run import events, limits
from engine.run.settings import RunSettings
from engine.run.worker import Worker
from engine.store import Repository
from engine.usecases.submit import submit
from tests.helpers import write_manifest
from tests.memory_s3 import MemoryS3

FAST = RetryPolicy(max_attempts=3, base_delay=0.0, throttle_base_delay=0.0)


def _job(repo: Repository, tmp_path: Path, s3: MemoryS3, n: int) -> JobRecord:
    s3.bucket("dst")
    for i in range(n):
        s3.put("src", f"k{i:04d}", f"body {i}".encode())
    rows = [("src", f"k{i:04d}", None) for i in range(n)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    return submit(repo, str(manifest), Destination.parse("s3://dst/p/"), JobSpec())


def _run(repo: Repository, job: JobRecord, s3: MemoryS3, **settings: Any) -> Any:
    run = RunSettings(retry=FAST, flush_interval=0.01, **settings)
    worker = Worker(repo, repo.get_job(job.id), run, open_client=s3.opener())
    return asyncio.run(worker.run())


def test_every_task_is_copied_and_recorded_once(
    repo: Repository, tmp_path: Path
) -> None:
    """300 objects: 300 copies at the destination, 300 results, and the
    requests in flight never above the concurrency."""
    s3 = MemoryS3(latency=0.001)
    job = _job(repo, tmp_path, s3, 300)
    counts = _run(repo, job, s3, concurrency=16)
    assert counts.get(TaskStatus.SUCCEEDED) == 300
    assert sorted(s3.buckets["dst"]) == [f"p/k{i:04d}" for i in range(300)]
    assert s3.calls["CopyObject"] == 300
    assert 1 < s3.peak <= 16
    rows = list(repo.iter_results(job.id))
    assert len({r.id for r in rows}) == 300
    assert all(r.etag and r.bytes for r in rows)


def test_a_failing_object_fails_alone(repo: Repository, tmp_path: Path) -> None:
    """One source missing: its task fails with NoSuchKey, the others copy."""
    s3 = MemoryS3()
    job = _job(repo, tmp_path, s3, 20)
    del s3.buckets["src"]["k0007"]
    counts = _run(repo, job, s3, concurrency=4)
    assert (counts.get(TaskStatus.SUCCEEDED), counts.get(TaskStatus.FAILED)) == (19, 1)
    (failed,) = repo.iter_results(job.id, statuses=(TaskStatus.FAILED,))
    assert (failed.src.key, failed.http_status) == ("k0007", 404)


def test_a_second_run_copies_nothing_again(repo: Repository, tmp_path: Path) -> None:
    """A finished job run again makes no copy: each object is copied once."""
    s3 = MemoryS3()
    job = _job(repo, tmp_path, s3, 30)
    _run(repo, job, s3, concurrency=8)
    copies = s3.calls["CopyObject"]
    counts = _run(repo, job, s3, concurrency=8)
    assert counts.get(TaskStatus.SUCCEEDED) == 30
    assert s3.calls["CopyObject"] == copies == 30


def test_an_adaptive_pool_climbs_when_requests_are_slow(
    repo: Repository, tmp_path: Path
) -> None:
    """Far-away S3 (100 ms a request) and no --concurrency: the run starts at
    64 requests in flight and doubles them (more in flight, more done), with
    a copier for each; never over --max-concurrency."""
    s3 = MemoryS3(latency=0.1)
    job = _job(repo, tmp_path, s3, 1200)
    counts = _run(repo, job, s3, concurrency=None, max_concurrency=256)
    assert counts.get(TaskStatus.SUCCEEDED) == 1200
    assert 64 < s3.peak <= 256


def test_an_open_files_limit_too_low_lowers_the_ceiling_and_says_so(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Soft = hard = 300 open files: at most 300 - RESERVE requests in
    flight, and a warning naming `ulimit -n`; the copies go on."""
    import resource

    def refuse(_: int, __: tuple[int, int]) -> None:
        raise ValueError("not allowed")

    monkeypatch.setattr(resource, "getrlimit", lambda _: (300, 300))
    monkeypatch.setattr(resource, "setrlimit", refuse)
    s3 = MemoryS3(latency=0.002)
    job = _job(repo, tmp_path, s3, 200)
    seen: list[Any] = []
    run = RunSettings(retry=FAST, flush_interval=0.01, concurrency=1000)
    worker = Worker(
        repo, repo.get_job(job.id), run, observer=seen.append, open_client=s3.opener()
    )
    counts = asyncio.run(worker.run())
    assert counts.get(TaskStatus.SUCCEEDED) == 200
    assert s3.peak <= 300 - limits.RESERVE
    warned = [e for e in seen if isinstance(e, events.PreflightWarning)]
    assert any("ulimit -n" in e.message for e in warned)
