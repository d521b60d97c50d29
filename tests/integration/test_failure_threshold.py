"""A run gives up on a job that fails (threshold or burst), and a resume
after the cause is fixed carries on."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.domain.failure_threshold import FailurePolicy
from engine.domain.models import JobStatus, TaskStatus
from engine.run import events
from engine.store import Repository
from tests.helpers import get_body, run_job, seed, submit_job, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.integration


def _job(
    moto: S3Server, tmp_path: Path, keys: list[str], present: list[str]
) -> tuple[Repository, str, str, str]:
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, present)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}", stat_source=False)
    return repo, job.id, src, dst


def test_a_burst_of_one_permanent_error_fails_the_job_and_resume_carries_on(
    moto: S3Server, tmp_path: Path
) -> None:
    good = [f"a{i:02d}" for i in range(5)]
    missing = [f"m{i:02d}" for i in range(30)]
    repo, job_id, src, dst = _job(moto, tmp_path, good + missing, good)
    seen: list[events.Event] = []

    counts = run_job(
        repo,
        repo.get_job(job_id),
        moto,
        concurrency=1,  # results in manifest order
        preflight=False,
        observer=seen.append,
        failure=FailurePolicy(fail_after=0, burst=4),
    )

    job = repo.get_job(job_id)
    assert job.status is JobStatus.FAILED
    assert job.message == "4 tasks in a row failed with NoSuchKey (--fail-burst 4)"
    assert counts.get(TaskStatus.SUCCEEDED) == 5
    assert counts.get(TaskStatus.FAILED) == 4
    assert counts.remaining == 26  # handed back, not run
    assert [e.reason for e in seen if isinstance(e, events.JobFailing)] == [job.message]

    # the cause is fixed: the missing objects appear; resume carries on
    seed(moto, src, missing)
    counts = run_job(repo, repo.get_job(job_id), moto, concurrency=4, preflight=False)

    assert repo.get_job(job_id).status is JobStatus.COMPLETE
    assert counts.get(TaskStatus.SUCCEEDED) == 31
    assert counts.get(TaskStatus.FAILED) == 4  # recorded before: `retry` redoes them
    rows = {r.src.key: r for r in repo.iter_results(job_id)}
    assert len(rows) == 35
    assert get_body(moto, dst, "m29") == b"body of 'm29'"


def test_more_than_the_ratio_failed_after_fail_after_tasks(
    moto: S3Server, tmp_path: Path
) -> None:
    # two of every three objects are missing (NoSuchKey, no burst rule here)
    keys = [f"k{i:02d}" for i in range(60)]
    present = keys[::3]
    repo, job_id, _src, _dst = _job(moto, tmp_path, keys, present)

    counts = run_job(
        repo,
        repo.get_job(job_id),
        moto,
        concurrency=1,
        preflight=False,
        failure=FailurePolicy(fail_after=12, fail_ratio=0.5, burst=0),
    )

    job = repo.get_job(job_id)
    assert job.status is JobStatus.FAILED
    assert job.message is not None
    assert "8 of the 12 tasks" in job.message
    assert counts.finished == 12
    assert counts.remaining == 48


def test_a_job_under_the_threshold_completes(moto: S3Server, tmp_path: Path) -> None:
    keys = [f"k{i:02d}" for i in range(30)]
    repo, job_id, _src, _dst = _job(moto, tmp_path, keys, keys[:20])

    counts = run_job(
        repo,
        repo.get_job(job_id),
        moto,
        preflight=False,
        failure=FailurePolicy(fail_after=10, fail_ratio=0.5, burst=20),
    )

    assert repo.get_job(job_id).status is JobStatus.COMPLETE
    assert counts.get(TaskStatus.FAILED) == 10
    assert counts.remaining == 0
