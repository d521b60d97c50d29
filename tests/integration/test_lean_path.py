"""The lean CopyObject path in a whole job (``BULKCOPY_LEAN_COPY=1``): used
when botocore's own request can be reproduced, botocore otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.domain.models import TaskStatus
from engine.s3.lean import LeanClient
from engine.store import Repository
from tests.helpers import get_body, run_job, seed, submit_job, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def lean_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULKCOPY_LEAN_COPY", "1")


def _job(s3: S3Server, tmp_path: Path, keys: list[str], **submit: Any) -> Any:
    src, dst = s3.new_bucket(), s3.new_bucket()
    bodies = seed(s3, src, keys)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, s3, f"s3://{dst}/c/", **submit)
    return repo, job, dst, bodies


def test_every_copy_of_a_plain_job_takes_the_lean_path(
    s3: S3Server, tmp_path: Path
) -> None:
    keys = [f"k{i:03d} é+%" for i in range(40)]
    repo, job, dst, bodies = _job(s3, tmp_path, keys, stat_source=False)
    clients: list[Any] = []

    counts = run_job(repo, job, s3, on_client=clients.append)

    assert counts.get(TaskStatus.SUCCEEDED) == len(keys)
    (client,) = clients
    assert isinstance(client, LeanClient)
    assert client.lean_copies == len(keys)
    for key, body in bodies.items():
        assert get_body(s3, dst, "c/" + key) == body
    for row in repo.iter_results(job.id):
        assert row.etag
        assert row.http_status == 200


def test_source_heads_take_the_lean_path_too(s3: S3Server, tmp_path: Path) -> None:
    """A job that HEADs its sources (the default, --stat-source) HEADs and
    copies every object the lean way; sizes and ETags land in the results."""
    keys = [f"h{i:03d} é+%" for i in range(30)]
    repo, job, dst, bodies = _job(s3, tmp_path, keys)
    clients: list[Any] = []

    counts = run_job(repo, job, s3, on_client=clients.append, preflight=False)

    assert counts.get(TaskStatus.SUCCEEDED) == len(keys)
    (client,) = clients
    assert isinstance(client, LeanClient)
    assert client.lean_heads == len(keys)
    assert client.lean_copies == len(keys)
    for row in repo.iter_results(job.id):
        assert row.bytes == len(bodies[row.src.key])
        assert get_body(s3, dst, "c/" + row.src.key) == bodies[row.src.key]
        src = s3.client().head_object(Bucket=row.src.bucket, Key=row.src.key)
        assert row.etag == src["ETag"]


def test_extra_headers_keep_botocore(moto: S3Server, tmp_path: Path) -> None:
    """Headers installed on the client (--header) are botocore's to send: the
    probe sees them and the lean path stays out."""
    repo, job, _dst, _bodies = _job(
        moto, tmp_path, ["a", "b"], headers={"x-amz-meta-extra": "1"}
    )
    clients: list[Any] = []

    counts = run_job(repo, job, moto, on_client=clients.append)

    assert counts.get(TaskStatus.SUCCEEDED) == 2
    assert not isinstance(clients[0], LeanClient)


def test_options_it_does_not_serialize_go_to_botocore(
    moto: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SSE-C destination (parameters the lean path does not take) is
    copied by botocore, through the same client."""
    import base64

    from engine.domain.options import ObjectOptions

    monkeypatch.setenv("BC_TEST_SSE_KEY", base64.b64encode(b"k" * 32).decode())
    repo, job, _dst, _ = _job(
        moto,
        tmp_path,
        ["a"],
        stat_source=False,
        object_options=ObjectOptions(sse_c_key="env:BC_TEST_SSE_KEY"),
    )
    clients: list[Any] = []

    counts = run_job(repo, job, moto, on_client=clients.append)

    assert counts.get(TaskStatus.SUCCEEDED) == 1
    assert isinstance(clients[0], LeanClient)
    assert clients[0].lean_copies == 0
