"""Moves (``--delete-source``) with faults injected on the wire, by a proxy in
front of moto, on both copy paths (botocore and the lean one): a source is
deleted only after its copy is verified, a delete that fails transiently is
retried without copying again, one that fails for good keeps the source and
says so, and a copy that cannot be vouched for never costs its source."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.cli.common import EXIT_OK, exit_code
from engine.domain import codes
from engine.domain.backoff import RetryPolicy
from engine.domain.models import JobCounts, TaskStatus
from engine.domain.records import ResultRow
from engine.s3.lean import LeanClient
from engine.usecases.report import jsonl_record
from tests.faultproxy import AfterUpstream, Fault, FaultProxy, Request, Reset, Respond
from tests.faults import EMBEDDED_ERROR, SLOW_DOWN
from tests.helpers import get_body, run_job
from tests.integration.test_move import _keys, _move_job, versioned_move
from tests.servers import S3Server

pytestmark = pytest.mark.integration

THREE_TRIES = RetryPolicy(
    max_attempts=3, base_delay=0.001, throttle_base_delay=0.001, max_delay=0.01
)

ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
    b"<RequestId>FAKE</RequestId></Error>"
)


@pytest.fixture(autouse=True, params=["botocore", "lean"])
def copy_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on botocore's CopyObject and on the lean path."""
    monkeypatch.setenv("BULKCOPY_LEAN_COPY", "1" if request.param == "lean" else "0")
    path: str = request.param
    return path


@pytest.fixture
def proxy(moto: S3Server) -> Iterator[FaultProxy]:
    """A fault proxy in front of moto, passing everything until told otherwise."""
    with FaultProxy(moto) as p:
        yield p


class MoveJob:
    """A move of ``n`` small objects seeded straight into moto (keys
    ``dir/k<i>``, moved under ``moved/``), run through the proxy."""

    def __init__(self, moto: S3Server, tmp_path: Path, n: int = 3) -> None:
        self.moto = moto
        self.repo, self.job, self.src, self.dst, self.bodies = _move_job(
            moto, tmp_path, n=n
        )
        self.client: Any = None

    def run(self, proxy: FaultProxy, copy_path: str, **kw: Any) -> JobCounts:
        clients: list[Any] = []
        counts = run_job(
            self.repo, self.job, proxy.server, on_client=clients.append, **kw
        )
        (self.client,) = clients
        # the parametrization cannot silently test botocore twice
        assert isinstance(self.client, LeanClient) == (copy_path == "lean")
        if copy_path == "lean" and counts.sources_deleted:
            assert self.client.lean_heads  # the check's HEADs went the lean way
        return counts

    def rows(self) -> dict[str, ResultRow]:
        """The report's rows by source key: exactly one per object."""
        rows = list(self.repo.iter_results(self.job.id))
        by_key = {r.src.key: r for r in rows}
        assert len(by_key) == len(rows) == len(self.bodies)
        return by_key

    def sources_left(self) -> set[str]:
        return _keys(self.moto, self.src)

    def source_intact(self, key: str) -> bool:
        return get_body(self.moto, self.src, key) == self.bodies[key]

    def moved(self, key: str) -> bool:
        """The destination holds the source's body."""
        return get_body(self.moto, self.dst, f"moved/{key}") == self.bodies[key]


def on(
    operation: str,
    fault: Fault,
    *,
    bucket: str | None = None,
    keys: set[str] | None = None,
    first: int | None = None,
) -> Callable[[Request], Fault | None]:
    """``fault`` for ``operation`` (on ``bucket`` and ``keys``: any), its
    ``first`` n requests per key (all)."""

    def decide(req: Request) -> Fault | None:
        if req.operation != operation:
            return None
        if bucket is not None and req.bucket != bucket:
            return None
        if keys is not None and req.key not in keys:
            return None
        if first is not None and req.n > first:
            return None
        return fault

    return decide


def test_a_throttled_delete_is_retried_without_copying_again(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """The first two DeleteObject of two sources answer 503 SlowDown: the
    task retries the delete alone (its copy is recorded), and every source is
    moved."""
    job = MoveJob(moto, tmp_path, n=4)
    throttled = {"dir/k0", "dir/k1"}
    proxy.decide = on("DeleteObject", Respond(503, SLOW_DOWN), keys=throttled, first=2)

    counts = job.run(proxy, copy_path)
    if copy_path == "lean":  # the deletes too
        assert job.client.lean_deletes == len(job.bodies)

    assert counts.get(TaskStatus.SUCCEEDED) == 4
    assert counts.sources_deleted == 4
    assert exit_code(counts) == EXIT_OK
    assert job.sources_left() == set()
    assert proxy.faults == {"Respond": 4}
    rows = job.rows()
    for key in job.bodies:
        row = rows[key]
        assert job.moved(key)
        assert row.status is TaskStatus.SUCCEEDED
        assert row.delete_state == codes.DELETED
        assert row.deleted_at is not None
        assert row.etag
        assert row.attempts == (3 if key in throttled else 1)
        assert proxy.seen["DeleteObject", key] == (3 if key in throttled else 1)
        # the retries went straight to the delete: one copy per object
        assert proxy.seen["CopyObject", f"moved/{key}"] == 1
        assert jsonl_record(job.job.id, row)["source_deleted"] is True


@pytest.mark.parametrize("fault", [Reset(), Reset(rst=False)], ids=["rst", "fin"])
def test_a_delete_done_upstream_but_answered_by_a_reset_is_recorded_once(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str, fault: Fault
) -> None:
    """The server deleted the source, the client saw its connection drop: the
    delete is sent again (the key already gone) and the move recorded once."""
    job = MoveJob(moto, tmp_path, n=3)
    proxy.decide = on("DeleteObject", AfterUpstream(fault), first=1)

    counts = job.run(proxy, copy_path)

    assert counts.get(TaskStatus.SUCCEEDED) == 3
    assert counts.sources_deleted == 3
    assert exit_code(counts) == EXIT_OK
    assert proxy.faults == {"AfterUpstream": 3}
    assert job.sources_left() == set()
    rows = job.rows()  # one row per object
    for key in job.bodies:
        row = rows[key]
        assert row.status is TaskStatus.SUCCEEDED
        # deleted; or gone: the resent delete's If-Match found no key (404)
        assert row.delete_state in codes.REMOVED
        assert row.deleted_at is not None
        assert row.error_code is None
        assert row.etag
        # resent by the HTTP client (a reused connection: the second delete
        # of a key already gone), or retried by the engine, whose HEAD finds
        # the source gone and sends no second delete
        assert row.attempts in (1, 2)
        assert proxy.seen["DeleteObject", key] == (2 if row.attempts == 1 else 1)
        assert proxy.seen["CopyObject", f"moved/{key}"] == 1
        assert job.moved(key)


def test_a_delete_whose_every_answer_is_lost_finds_the_source_gone(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """Every DeleteObject is done upstream but answered by a reset, the HTTP
    client's own resend included: the engine's retry HEADs the source, finds
    it gone, and records the move (no third delete, no second copy)."""
    job = MoveJob(moto, tmp_path, n=3)
    proxy.decide = on("DeleteObject", AfterUpstream(Reset()))

    counts = job.run(proxy, copy_path)

    assert counts.get(TaskStatus.SUCCEEDED) == 3
    assert counts.sources_deleted == 3
    assert exit_code(counts) == EXIT_OK
    assert job.sources_left() == set()
    rows = job.rows()  # one row per object
    for key in job.bodies:
        row = rows[key]
        assert row.status is TaskStatus.SUCCEEDED
        assert row.delete_state == codes.GONE
        assert row.deleted_at is not None
        assert row.error_code is None
        assert row.etag
        assert row.attempts == 2  # the delete's answer lost, then found gone
        assert proxy.seen["DeleteObject", key] in (1, 2)  # the client's resend
        assert proxy.seen["CopyObject", f"moved/{key}"] == 1
        assert job.moved(key)


def test_a_versioned_source_whose_delete_answers_are_lost_is_found_gone(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """A move of one version of a versioned source, every DeleteObject of it
    done upstream but answered by a reset: the retry HEADs that version, finds
    it gone, and records the move; the newer version stays, no marker added."""
    repo, job, src, dst, new = versioned_move(moto, tmp_path)
    c = moto.client()
    (old,) = {r.src.version_id for r in repo.iter_results(job.id)}
    proxy.decide = on("DeleteObject", AfterUpstream(Reset()))

    clients: list[Any] = []
    counts = run_job(repo, job, proxy.server, on_client=clients.append)

    (client,) = clients
    assert isinstance(client, LeanClient) == (copy_path == "lean")
    assert counts.sources_deleted == 1
    (row,) = repo.iter_results(job.id)
    assert row.status is TaskStatus.SUCCEEDED
    assert row.delete_state == codes.GONE
    assert row.attempts == 2
    deletes = [r for r, _ in proxy.log if r.operation == "DeleteObject"]
    assert deletes
    assert all(r.query.get("versionId") == old for r in deletes)
    assert get_body(moto, dst, "k") == b"old"
    left = c.list_object_versions(Bucket=src, Prefix="k")
    assert [v["VersionId"] for v in left.get("Versions", [])] == [new]
    assert not left.get("DeleteMarkers")


def test_a_delete_throttled_past_the_last_attempt_keeps_the_source(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """Every DeleteObject answers 503 SlowDown: the delete is retried until
    the attempts run out (the copy made once), then the task fails with the
    copy recorded and the source kept."""
    job = MoveJob(moto, tmp_path, n=2)
    proxy.decide = on("DeleteObject", Respond(503, SLOW_DOWN))

    counts = job.run(proxy, copy_path, retry=THREE_TRIES)

    assert counts.get(TaskStatus.FAILED) == 2
    assert counts.sources_deleted == 0
    assert job.sources_left() == set(job.bodies)
    rows = job.rows()
    for key in job.bodies:
        row = rows[key]
        assert row.status is TaskStatus.FAILED
        assert row.error_code == "SlowDown"
        assert "the source was not deleted" in (row.error_message or "")
        assert row.delete_state == codes.KEPT
        assert row.attempts == 3
        assert proxy.seen["DeleteObject", key] == 3
        assert proxy.seen["CopyObject", f"moved/{key}"] == 1
        assert row.etag
        assert job.moved(key)
        assert job.source_intact(key)


def test_a_delete_refused_on_the_wire_keeps_every_source(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """Every DeleteObject answers 403 AccessDenied: each task fails at once,
    its copy recorded and in place, its source kept and said to be."""
    job = MoveJob(moto, tmp_path, n=3)
    proxy.decide = on("DeleteObject", Respond(403, ACCESS_DENIED))

    counts = job.run(proxy, copy_path)

    assert counts.get(TaskStatus.FAILED) == 3
    assert counts.sources_deleted == 0
    assert exit_code(counts) != EXIT_OK
    assert job.sources_left() == set(job.bodies)
    rows = job.rows()
    for key in job.bodies:
        row = rows[key]
        assert row.status is TaskStatus.FAILED
        assert row.error_code == "AccessDenied"
        assert row.http_status == 403
        assert "the source was not deleted" in (row.error_message or "")
        assert row.delete_state == codes.KEPT
        assert row.deleted_at is None
        assert row.attempts == 1  # refused: not retried
        assert proxy.seen["DeleteObject", key] == 1
        assert row.etag  # the copy is recorded …
        assert job.moved(key)  # … and there
        assert job.source_intact(key)
        assert jsonl_record(job.job.id, row)["source_deleted"] is False


def test_a_copy_the_destination_says_is_missing_keeps_its_source(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """Every HEAD of the destination answers 404 (the copy seems gone): no
    DeleteObject is sent, and each task fails as not verified, source kept."""
    job = MoveJob(moto, tmp_path, n=3)
    proxy.decide = on("HeadObject", Respond(404), bucket=job.dst)

    counts = job.run(proxy, copy_path)

    assert counts.get(TaskStatus.FAILED) == 3
    assert counts.sources_deleted == 0
    assert proxy.requests["DeleteObject"] == 0
    # the source HEADs (before the copy, and to verify it) passed
    assert all(r.bucket == job.dst for r, f in proxy.log if f is not None)
    assert proxy.faults["Respond"] >= 3
    assert job.sources_left() == set(job.bodies)
    rows = job.rows()
    for key in job.bodies:
        row = rows[key]
        assert row.status is TaskStatus.FAILED
        assert row.error_code == codes.VERIFICATION_FAILED
        assert "not at the destination" in (row.error_message or "")
        assert "the source was not deleted" in (row.error_message or "")
        assert row.delete_state == codes.KEPT
        assert row.deleted_at is None
        assert row.etag  # copied and recorded, just not vouched for
        assert proxy.seen["HeadObject", f"moved/{key}"] >= 1
        assert job.source_intact(key)
        assert job.moved(key)  # the proxy lied: the copy is really there


@pytest.mark.parametrize(
    "fault",
    [Respond(200, EMBEDDED_ERROR), AfterUpstream(Respond(200, EMBEDDED_ERROR))],
    ids=["not-copied", "copied-upstream"],
)
def test_a_copy_answered_by_an_error_in_a_200_deletes_nothing(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str, fault: Fault
) -> None:
    """Every CopyObject answers an error inside a 200 (whether or not the
    server really copied): the tasks fail after their attempts, and no source
    is deleted, nor even a delete sent."""
    job = MoveJob(moto, tmp_path, n=3)
    proxy.decide = on("CopyObject", fault)

    counts = job.run(proxy, copy_path, retry=THREE_TRIES)

    assert counts.get(TaskStatus.FAILED) == 3
    assert counts.sources_deleted == 0
    assert proxy.requests["DeleteObject"] == 0
    assert job.sources_left() == set(job.bodies)
    rows = job.rows()
    for key in job.bodies:
        row = rows[key]
        assert row.status is TaskStatus.FAILED
        assert row.error_code == "InternalError"
        assert row.attempts == 3
        assert proxy.seen["CopyObject", f"moved/{key}"] == 3
        assert row.etag is None  # no copy recorded …
        assert row.delete_state != codes.DELETED  # … so no delete
        assert row.deleted_at is None
        assert jsonl_record(job.job.id, row)["source_deleted"] is not True
        assert job.source_intact(key)


def _source_head_after_the_copy(
    src: str, fault: Fault, *, times: int | None = None
) -> Callable[[Request], Fault | None]:
    """``fault`` for the HEADs of a source after its first (the one before
    the copy): the check before the delete; ``times`` of them (all)."""

    def decide(req: Request) -> Fault | None:
        if req.operation != "HeadObject" or req.bucket != src or req.n < 2:
            return None
        if times is not None and req.n > 1 + times:
            return None
        return fault

    return decide


def test_a_source_reported_missing_once_is_looked_at_again_and_deleted(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """The first delete is throttled (not done), then the source's HEAD of
    the next check answers 404 once, though nothing of ours deleted it: not
    taken for a delete; the attempt after finds it and really deletes it."""
    job = MoveJob(moto, tmp_path, n=2)
    throttled = on("DeleteObject", Respond(503, SLOW_DOWN), first=1)
    src_404 = _source_head_after_the_copy(job.src, Respond(404, b""), times=1)
    proxy.decide = lambda req: throttled(req) or src_404(req)

    counts = job.run(proxy, copy_path, preflight=False)  # its HEADs

    assert counts.sources_deleted == 2
    assert job.sources_left() == set()  # really deleted, not just said to be
    rows = job.rows()
    for key in job.bodies:
        assert rows[key].delete_state == codes.DELETED
        assert rows[key].attempts == 3
        assert proxy.seen["DeleteObject", key] == 2
        assert proxy.seen["CopyObject", f"moved/{key}"] == 1
        assert job.moved(key)


def test_a_source_always_reported_missing_is_never_recorded_as_deleted(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """The first delete is throttled (not done), and every later HEAD of the
    source answers 404: the task fails with SourceVanished, no other delete
    is sent, the source is still there."""
    job = MoveJob(moto, tmp_path, n=2)
    throttled = on("DeleteObject", Respond(503, SLOW_DOWN), first=1)
    src_404 = _source_head_after_the_copy(job.src, Respond(404, b""))
    proxy.decide = lambda req: throttled(req) or src_404(req)

    counts = job.run(proxy, copy_path, retry=THREE_TRIES, preflight=False)

    assert counts.sources_deleted == 0
    assert job.sources_left() == set(job.bodies)
    for key, row in job.rows().items():
        assert row.status is TaskStatus.FAILED
        assert row.error_code == codes.SOURCE_VANISHED
        assert "the source was already gone" in (row.error_message or "")
        assert row.delete_state == codes.KEPT
        assert jsonl_record(job.job.id, row)["source_deleted"] is False
        assert proxy.seen["DeleteObject", key] == 1


def test_both_ends_reported_missing_is_a_failed_verification(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """Source and copy both answer 404 before the delete: the copy cannot be
    vouched for, whatever became of the source."""
    job = MoveJob(moto, tmp_path, n=2)
    src_404 = _source_head_after_the_copy(job.src, Respond(404, b""))
    dst_404 = on("HeadObject", Respond(404, b""), bucket=job.dst)
    proxy.decide = lambda req: src_404(req) or dst_404(req)

    counts = job.run(proxy, copy_path, retry=THREE_TRIES, preflight=False)

    assert counts.sources_deleted == 0
    assert proxy.requests["DeleteObject"] == 0
    for row in job.rows().values():
        assert row.error_code == codes.VERIFICATION_FAILED
        assert row.delete_state == codes.KEPT
