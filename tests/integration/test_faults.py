"""Faults S3 really produces, injected into real runs: none may pass for a success."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from engine.domain.backoff import RetryPolicy
from engine.domain.models import TaskStatus
from engine.store import Repository
from tests.faults import EMBEDDED_ERROR, NO_ETAG, SLOW_DOWN, Injector, storm
from tests.helpers import (
    FAST_RETRY,
    get_body,
    run_job,
    seed,
    submit_job,
    write_manifest,
)
from tests.servers import S3Server

pytestmark = pytest.mark.integration


def _job(
    moto: S3Server, tmp_path: Path, keys: list[str]
) -> tuple[Repository, str, str]:
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, keys)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}")
    return repo, job.id, dst


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ((200, EMBEDDED_ERROR), "InternalError"),
        ((200, b""), "EmptyResponse"),
        ((200, NO_ETAG), "MissingETag"),
        ((503, SLOW_DOWN), "SlowDown"),
    ],
    ids=["error-in-200", "empty-200", "200-without-etag", "503-slowdown"],
)
def test_a_fault_that_persists_is_a_failure_never_a_success(
    moto: S3Server, tmp_path: Path, fault: tuple[int, bytes], code: str
) -> None:
    """When every CopyObject answer is faulty, the task fails with the fault's code."""
    repo, job_id, _dst = _job(moto, tmp_path, ["bad", "good"])
    inj = Injector("CopyObject", lambda key, _n: fault if key == "bad" else None)

    run_job(
        repo,
        repo.get_job(job_id),
        moto,
        on_client=inj.install,
        retry=RetryPolicy(
            max_attempts=3, base_delay=0.001, throttle_base_delay=0.001, max_delay=0.01
        ),
    )

    rows = {r.src.key: r for r in repo.iter_results(job_id)}
    assert rows["good"].status is TaskStatus.SUCCEEDED
    bad = rows["bad"]
    assert bad.status is TaskStatus.FAILED
    assert bad.error_code == code
    assert bad.attempts == 3
    assert bad.etag is None
    assert inj.seen["bad"] == 3


@pytest.mark.parametrize(
    "fault",
    [(200, EMBEDDED_ERROR), (200, b""), (200, NO_ETAG), (503, SLOW_DOWN)],
    ids=["error-in-200", "empty-200", "200-without-etag", "503-slowdown"],
)
def test_a_transient_fault_is_retried_to_success(
    moto: S3Server, tmp_path: Path, fault: tuple[int, bytes]
) -> None:
    """A fault on the first two attempts is retried; the third copies the object."""
    repo, job_id, dst = _job(moto, tmp_path, ["flaky"])
    inj = Injector("CopyObject", lambda _key, n: fault if n <= 2 else None)

    run_job(repo, repo.get_job(job_id), moto, on_client=inj.install)

    [row] = list(repo.iter_results(job_id))
    assert row.status is TaskStatus.SUCCEEDED
    assert row.attempts == 3
    assert get_body(moto, dst, "flaky") == b"body of 'flaky'"


def test_a_503_storm_ends_with_every_object_copied(
    moto: S3Server, tmp_path: Path
) -> None:
    """Half of all CopyObject answers are 503 SlowDown; every object still arrives."""
    keys = [f"obj-{i:03d}" for i in range(80)]
    repo, job_id, dst = _job(moto, tmp_path, keys)
    inj = Injector("CopyObject", storm(0.5, (503, SLOW_DOWN)))

    counts = run_job(
        repo,
        repo.get_job(job_id),
        moto,
        on_client=inj.install,
        retry=RetryPolicy(
            max_attempts=20, base_delay=0.001, throttle_base_delay=0.002, max_delay=0.01
        ),
    )

    assert inj.injected > 20
    assert counts.get(TaskStatus.SUCCEEDED) == 80
    rows = list(repo.iter_results(job_id))
    assert sum(r.attempts for r in rows) == 80 + inj.injected
    listed = moto.client().list_objects_v2(Bucket=dst)["KeyCount"]
    assert listed == 80


def test_head_errors_go_through_the_same_classification(
    moto: S3Server, tmp_path: Path
) -> None:
    """A 500 on the source HEAD is retried like any other transient error."""
    repo, job_id, _dst = _job(moto, tmp_path, ["x"])
    inj = Injector("HeadObject", lambda _key, n: (500, b"") if n == 1 else None)

    run_job(
        repo,
        repo.get_job(job_id),
        moto,
        on_client=inj.install,
        retry=FAST_RETRY,
        preflight=False,
    )

    [row] = list(repo.iter_results(job_id))
    assert row.status is TaskStatus.SUCCEEDED
    assert row.attempts == 2


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConnectionClosedError(endpoint_url="http://s3"), "ConnectionError"),
        (ReadTimeoutError(endpoint_url="http://s3"), "ReadTimeout"),
    ],
    ids=["connection-reset", "read-timeout"],
)
def test_dropped_connections_are_retried_then_recorded(
    moto: S3Server, tmp_path: Path, exc: Exception, code: str
) -> None:
    """A reset or timed-out CopyObject is retried; if it persists the task fails."""
    repo, job_id, dst = _job(moto, tmp_path, ["flaky", "dead"])

    def drop(request: Any, **_: Any) -> None:
        key = request.url.split("?", 1)[0].rsplit("/", 1)[-1]
        seen[key] = seen.get(key, 0) + 1
        if key == "dead" or seen[key] == 1:
            raise exc

    seen: dict[str, int] = {}
    run_job(
        repo,
        repo.get_job(job_id),
        moto,
        on_client=lambda c: c.meta.events.register("before-send.s3.CopyObject", drop),
        retry=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01),
    )

    rows = {r.src.key: r for r in repo.iter_results(job_id)}
    assert rows["flaky"].status is TaskStatus.SUCCEEDED
    assert rows["flaky"].attempts == 2
    assert get_body(moto, dst, "flaky") == b"body of 'flaky'"
    assert rows["dead"].status is TaskStatus.FAILED
    assert rows["dead"].error_code == code
    assert rows["dead"].http_status is None
    assert rows["dead"].attempts == 3
