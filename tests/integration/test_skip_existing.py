"""--skip-existing over HTTP: a second run copies only what is new or
changed; the rest is recorded as skipped (DestinationExists), not failed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.cli.common import EXIT_OK, exit_code
from engine.domain.models import TaskStatus
from engine.store import Repository
from tests.helpers import get_body, run_job, seed, submit_job, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.integration


def _second_run(
    s3: S3Server, tmp_path: Path, policy: str
) -> tuple[Repository, str, str, str]:
    """A first job copies 10 objects; then 2 sources change content (same
    size), 1 changes size, 2 copies are deleted; a second job with
    ``policy`` runs over the same manifest."""
    src, dst = s3.new_bucket(), s3.new_bucket()
    keys = [f"k{i}" for i in range(10)]
    seed(s3, src, keys)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    repo = Repository(str(tmp_path / "db.sqlite"))
    first = submit_job(repo, manifest, s3, f"s3://{dst}")
    assert run_job(repo, first, s3, preflight=False).get(TaskStatus.SUCCEEDED) == 10
    c = s3.client()
    time.sleep(1.1)  # LastModified has one-second resolution
    c.put_object(Bucket=src, Key="k0", Body=b"body of 'XX'")  # same size
    c.put_object(Bucket=src, Key="k1", Body=b"body of 'YY'")
    c.put_object(Bucket=src, Key="k2", Body=b"a longer body than before")
    c.delete_object(Bucket=dst, Key="k3")
    c.delete_object(Bucket=dst, Key="k4")
    second = submit_job(
        repo, manifest, s3, f"s3://{dst}", stat_source=False, skip_existing=policy
    )
    return repo, second.id, src, dst


def _outcome(repo: Repository, job_id: str) -> dict[str, str]:
    out = {}
    for r in repo.iter_results(job_id):
        out[r.src.key] = r.status.value
        if r.status is TaskStatus.SKIPPED:
            assert r.error_code == "DestinationExists"
            assert r.error_message is not None
            assert "--skip-existing" in r.error_message
    return out


COPIED = "succeeded"
SKIPPED = "skipped"


@pytest.mark.parametrize(
    ("policy", "changed_same_size"),
    [("same-etag", COPIED), ("same-size", SKIPPED), ("newer", COPIED)],
)
def test_a_second_run_copies_only_what_is_new_or_changed(
    s3: S3Server, tmp_path: Path, policy: str, changed_same_size: str
) -> None:
    repo, job_id, _src, dst = _second_run(s3, tmp_path, policy)

    counts = run_job(repo, repo.get_job(job_id), s3, preflight=False)

    outcome = _outcome(repo, job_id)
    assert outcome["k0"] == outcome["k1"] == changed_same_size
    assert outcome["k2"] == COPIED  # another size (and newer)
    assert outcome["k3"] == outcome["k4"] == COPIED  # gone from the destination
    assert all(outcome[f"k{i}"] == SKIPPED for i in range(5, 10))
    skipped = sum(v == SKIPPED for v in outcome.values())
    assert counts.get(TaskStatus.SKIPPED) == counts.up_to_date == skipped
    assert exit_code(counts) == EXIT_OK  # skips of this kind are no failure
    assert get_body(s3, dst, "k2") == b"a longer body than before"
    if changed_same_size == COPIED:
        assert get_body(s3, dst, "k0") == b"body of 'XX'"


def test_never_copies_everything_again(s3: S3Server, tmp_path: Path) -> None:
    repo, job_id, _src, _dst = _second_run(s3, tmp_path, "never")

    counts = run_job(repo, repo.get_job(job_id), s3, preflight=False)

    assert counts.get(TaskStatus.SUCCEEDED) == 10
