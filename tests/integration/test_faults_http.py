"""Faults injected on the wire, by a proxy in front of moto, on both copy
paths (botocore and the lean one): none may pass for a success."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.domain.backoff import RetryPolicy
from engine.domain.models import TaskStatus
from engine.domain.plan import MiB
from engine.domain.records import JobRecord, ResultRow
from engine.run import events
from engine.run.worker import Worker
from engine.s3.lean import LeanClient
from engine.store import Repository
from tests.faultproxy import (
    AfterUpstream,
    CloseAfterResponse,
    Delay,
    Fault,
    FaultProxy,
    Request,
    Reset,
    Respond,
    Rewrite,
    Truncate,
)
from tests.faults import EMBEDDED_ERROR, NO_ETAG, SLOW_DOWN
from tests.helpers import (
    get_body,
    run_job,
    seed,
    submit_job,
    write_manifest,
)
from tests.servers import S3Server

pytestmark = pytest.mark.integration

THREE_TRIES = RetryPolicy(
    max_attempts=3, base_delay=0.001, throttle_base_delay=0.001, max_delay=0.01
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


class Job:
    """A job over ``keys`` seeded straight into moto, run through the proxy."""

    def __init__(self, moto: S3Server, tmp_path: Path, keys: list[str]) -> None:
        self.moto = moto
        self.src, self.dst = moto.new_bucket(), moto.new_bucket()
        self.bodies = seed(moto, self.src, keys)
        manifest = write_manifest(
            tmp_path / "m.csv", [(self.src, k, None) for k in keys]
        )
        self.repo = Repository(str(tmp_path / "db.sqlite"))
        self.job: JobRecord = submit_job(self.repo, manifest, moto, f"s3://{self.dst}")
        self.client: Any = None

    def run(self, proxy: FaultProxy, copy_path: str, **kw: Any) -> None:
        clients: list[Any] = []
        run_job(self.repo, self.job, proxy.server, on_client=clients.append, **kw)
        (self.client,) = clients
        # the parametrization cannot silently test botocore twice
        assert isinstance(self.client, LeanClient) == (copy_path == "lean")

    def rows(self) -> dict[str, ResultRow]:
        rows = list(self.repo.iter_results(self.job.id))
        by_key = {r.src.key: r for r in rows}
        assert len(by_key) == len(rows) == len(self.bodies)
        return by_key

    def copied(self, key: str) -> bool:
        return get_body(self.moto, self.dst, key) == self.bodies[key]

    def exists(self, key: str) -> bool:
        found = self.moto.client().list_objects_v2(Bucket=self.dst, Prefix=key)
        return any(o["Key"] == key for o in found.get("Contents", []))


def client_setting(**changes: Any) -> Callable[[Worker], None]:
    """A ``worker_hook`` changing the worker's client settings."""

    def hook(worker: Worker) -> None:
        worker.client_settings = dataclasses.replace(worker.client_settings, **changes)

    return hook


def on_copy(
    fault: Fault, keys: set[str] | None = None, first: int | None = None
) -> Callable[[Request], Fault | None]:
    """``fault`` for CopyObject of ``keys`` (all), its ``first`` n requests (all)."""

    def decide(req: Request) -> Fault | None:
        if req.operation != "CopyObject":
            return None
        if keys is not None and req.key not in keys:
            return None
        if first is not None and req.n > first:
            return None
        return fault

    return decide


ANSWERS = [
    (Respond(200, EMBEDDED_ERROR), "InternalError"),
    (Respond(200, b""), "EmptyResponse"),
    (Respond(200, NO_ETAG), "MissingETag"),
    (Respond(503, SLOW_DOWN), "SlowDown"),
]
ANSWER_IDS = ["error-in-200", "empty-200", "200-without-etag", "503-slowdown"]


@pytest.mark.parametrize(("fault", "code"), ANSWERS, ids=ANSWER_IDS)
def test_a_faulty_answer_that_persists_is_a_failure_never_a_success(
    moto: S3Server,
    proxy: FaultProxy,
    tmp_path: Path,
    copy_path: str,
    fault: Respond,
    code: str,
) -> None:
    """When every CopyObject answer is faulty, the task fails with the fault's code."""
    job = Job(moto, tmp_path, ["bad", "good"])
    proxy.decide = on_copy(fault, {"bad"})

    job.run(proxy, copy_path, retry=THREE_TRIES)

    rows = job.rows()
    assert rows["good"].status is TaskStatus.SUCCEEDED
    assert job.copied("good")
    bad = rows["bad"]
    assert bad.status is TaskStatus.FAILED
    assert bad.error_code == code
    assert bad.attempts == 3
    assert bad.etag is None
    assert proxy.seen["CopyObject", "bad"] == 3
    assert not job.exists("bad")


@pytest.mark.parametrize(("fault", "_code"), ANSWERS, ids=ANSWER_IDS)
def test_a_transient_faulty_answer_is_retried_to_success(
    moto: S3Server,
    proxy: FaultProxy,
    tmp_path: Path,
    copy_path: str,
    fault: Respond,
    _code: str,
) -> None:
    """A faulty answer to the first two attempts is retried; the third copies."""
    job = Job(moto, tmp_path, ["flaky"])
    proxy.decide = on_copy(fault, first=2)

    job.run(proxy, copy_path)

    row = job.rows()["flaky"]
    assert row.status is TaskStatus.SUCCEEDED
    assert row.attempts == 3
    assert row.etag
    assert job.copied("flaky")
    assert proxy.seen["CopyObject", "flaky"] == 3


DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
KEEP_ALIVE = b"          \n          \n"  # what S3 sends while a long copy runs


def _without_declaration(body: bytes) -> bytes:
    return re.sub(rb"^<\?xml[^>]*\?>\s*", b"", body)


def test_an_answer_padded_with_keep_alive_whitespace_and_chunked_is_a_copy(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """S3's long-copy form (declaration, whitespace, then the result), sent
    chunked in 3-byte pieces, is read as the copy it reports."""
    job = Job(moto, tmp_path, ["slow"])
    padded = Rewrite(
        lambda body: DECLARATION + KEEP_ALIVE + _without_declaration(body), chunk=3
    )
    proxy.decide = on_copy(padded)

    job.run(proxy, copy_path)

    row = job.rows()["slow"]
    assert row.status is TaskStatus.SUCCEEDED
    assert row.attempts == 1
    head = moto.client().head_object(Bucket=job.dst, Key="slow")
    assert row.etag == head["ETag"]
    assert job.copied("slow")


def test_an_error_after_keep_alive_whitespace_is_the_error(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """An error that ends a padded 200 is recorded with its code."""
    job = Job(moto, tmp_path, ["bad"])
    body = DECLARATION + KEEP_ALIVE + _without_declaration(EMBEDDED_ERROR)
    proxy.decide = on_copy(Respond(200, body))

    job.run(proxy, copy_path, retry=THREE_TRIES)

    row = job.rows()["bad"]
    assert row.status is TaskStatus.FAILED
    assert row.error_code == "InternalError"
    assert row.attempts == 3


@pytest.mark.parametrize(
    "body",
    [
        b"garbage",
        b"<CopyObjectResult><ETag>&quot;abc&quot;</ETag>",
        b"<html><body>hello</body></html>",
    ],
    ids=["not-xml", "cut-short", "html"],
)
def test_a_200_that_is_no_copy_result_is_never_a_success(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str, body: bytes
) -> None:
    """A 200 whose body is not a whole CopyObjectResult is retried, then failed."""
    job = Job(moto, tmp_path, ["bad"])
    proxy.decide = on_copy(Respond(200, body))

    job.run(proxy, copy_path, retry=THREE_TRIES)

    row = job.rows()["bad"]
    assert row.status is TaskStatus.FAILED
    assert row.attempts == 3
    assert row.etag is None
    assert not job.exists("bad")


def test_a_503_storm_ends_with_every_object_copied(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """Half of all CopyObject answers are 503 SlowDown; every object still arrives."""
    keys = [f"obj-{i:03d}" for i in range(80)]
    job = Job(moto, tmp_path, keys)
    rng = random.Random(1)
    storm = on_copy(Respond(503, SLOW_DOWN))
    proxy.decide = lambda req: storm(req) if rng.random() < 0.5 else None

    job.run(
        proxy,
        copy_path,
        retry=RetryPolicy(
            max_attempts=20, base_delay=0.001, throttle_base_delay=0.002, max_delay=0.01
        ),
    )

    assert proxy.faults["Respond"] > 20
    rows = job.rows()
    assert all(r.status is TaskStatus.SUCCEEDED for r in rows.values())
    assert sum(r.attempts for r in rows.values()) == 80 + proxy.injected
    assert proxy.requests["CopyObject"] == 80 + proxy.injected
    listed = moto.client().list_objects_v2(Bucket=job.dst)["KeyCount"]
    assert listed == 80


@pytest.mark.parametrize(
    "fault", [Reset(), Reset(rst=False), Truncate()], ids=["rst", "fin", "truncated"]
)
def test_dropped_connections_are_retried_then_recorded(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str, fault: Fault
) -> None:
    """A CopyObject whose connection is reset, closed unanswered or whose answer
    is cut short is retried; if that persists the task fails, never succeeds."""
    job = Job(moto, tmp_path, ["flaky", "dead"])
    dead, flaky = on_copy(fault, {"dead"}), on_copy(fault, {"flaky"}, first=1)
    proxy.decide = lambda req: dead(req) or flaky(req)

    job.run(proxy, copy_path, retry=THREE_TRIES)

    rows = job.rows()
    assert rows["flaky"].status is TaskStatus.SUCCEEDED
    # both HTTP clients resend an unanswered request once by themselves when
    # it went out on a reused connection: the engine may not see the reset
    assert rows["flaky"].attempts in (1, 2)
    assert proxy.seen["CopyObject", "flaky"] == 2
    assert job.copied("flaky")
    assert rows["dead"].status is TaskStatus.FAILED
    assert rows["dead"].error_code == "ConnectionError"
    assert rows["dead"].http_status is None
    assert rows["dead"].attempts == 3
    assert rows["dead"].etag is None
    assert proxy.seen["CopyObject", "dead"] >= 3


def test_an_answer_slower_than_the_read_timeout_is_retried_then_recorded(
    moto: S3Server,
    proxy: FaultProxy,
    tmp_path: Path,
    copy_path: str,
) -> None:
    """With a 1 s read timeout, a CopyObject answered after 2.5 s times out:
    retried, and recorded as ReadTimeout when every attempt is that slow.
    (A 0.3 s timeout was too tight: moto, sharing two cores with the rest of
    the suite, once took longer than that to answer the undelayed retry.)"""
    job = Job(moto, tmp_path, ["flaky", "dead"])
    dead, flaky = on_copy(Delay(2.5), {"dead"}), on_copy(Delay(2.5), {"flaky"}, 1)
    proxy.decide = lambda req: dead(req) or flaky(req)

    job.run(
        proxy,
        copy_path,
        retry=THREE_TRIES,
        worker_hook=client_setting(read_timeout=1.0),
    )

    rows = job.rows()
    assert rows["flaky"].status is TaskStatus.SUCCEEDED
    assert rows["flaky"].attempts == 2
    assert job.copied("flaky")
    assert rows["dead"].status is TaskStatus.FAILED
    assert rows["dead"].error_code == "ReadTimeout"
    assert rows["dead"].attempts == 3


def test_a_copy_done_upstream_but_answered_by_a_reset_is_retried_once(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """The server copied, the client saw a reset: the retry copies again and
    the task is recorded once, succeeded, with the object intact."""
    keys = ["a", "b", "c"]
    job = Job(moto, tmp_path, keys)
    proxy.decide = on_copy(AfterUpstream(Reset()), first=1)

    job.run(proxy, copy_path)

    rows = job.rows()  # one row per key
    for key in keys:
        assert rows[key].status is TaskStatus.SUCCEEDED
        # resent by the HTTP client (a reused connection) or by the engine
        assert rows[key].attempts in (1, 2)
        assert rows[key].etag
        assert job.copied(key)
        assert proxy.seen["CopyObject", key] == 2


def test_connections_closed_after_every_answer_cost_nothing(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """The server closes each keep-alive connection right after answering:
    with the SDK's default 3 attempts every object is copied at the first
    (task) attempt, preflight included."""
    keys = [f"k{i:02d}" for i in range(30)]
    job = Job(moto, tmp_path, keys)
    proxy.decide = lambda _req: CloseAfterResponse()

    job.run(
        proxy, copy_path, concurrency=4, worker_hook=client_setting(sdk_max_attempts=3)
    )

    rows = job.rows()
    assert all(r.status is TaskStatus.SUCCEEDED for r in rows.values())
    assert all(r.attempts == 1 for r in rows.values())
    assert all(job.copied(k) for k in keys)
    assert proxy.connections >= len(keys)


def test_connections_are_kept_alive_through_the_proxy(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """Without faults, both paths reuse their connections (the baseline for
    the test above)."""
    keys = [f"k{i:02d}" for i in range(30)]
    job = Job(moto, tmp_path, keys)

    job.run(proxy, copy_path, concurrency=4)

    assert all(r.status is TaskStatus.SUCCEEDED for r in job.rows().values())
    assert proxy.connections < len(keys)


def test_the_lean_path_sends_the_copies_when_asked(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """With BULKCOPY_LEAN_COPY=1 every CopyObject on the wire is the lean
    path's (no botocore User-Agent); without it every one is botocore's."""
    keys = ["a", "b", "c", "d"]
    job = Job(moto, tmp_path, keys)

    job.run(proxy, copy_path)

    agents = [r.user_agent for r, _ in proxy.log if r.operation == "CopyObject"]
    assert len(agents) == len(keys)
    by_botocore = ["botocore" in a.lower() for a in agents]
    if copy_path == "lean":
        assert job.client.lean_copies == len(keys)
        assert not any(by_botocore)
    else:
        assert all(by_botocore)
    assert all(job.copied(k) for k in keys)


REDIRECTS = [
    Respond(
        301,
        b"<Error><Code>PermanentRedirect</Code><Message>Use the right endpoint"
        b"</Message><Endpoint>127.0.0.1</Endpoint></Error>",
        {"x-amz-bucket-region": "us-east-1"},
    ),
    Respond(
        307,
        b"<Error><Code>TemporaryRedirect</Code><Message>Please re-send"
        b"</Message></Error>",
        {"x-amz-bucket-region": "us-east-1"},
    ),
    Respond(
        400,
        b"<Error><Code>AuthorizationHeaderMalformed</Code><Message>The region "
        b"is wrong</Message><Region>us-east-1</Region></Error>",
    ),
]


@pytest.mark.parametrize(
    "fault", REDIRECTS, ids=["301-permanent", "307-temporary", "400-wrong-region"]
)
def test_a_redirect_answered_once_still_copies(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str, fault: Respond
) -> None:
    """A redirect or wrong-region answer is followed (botocore) or handed to
    botocore (lean path): the object is copied, in one attempt."""
    job = Job(moto, tmp_path, ["moved"])
    proxy.decide = on_copy(fault, first=1)

    job.run(proxy, copy_path)

    row = job.rows()["moved"]
    assert row.status is TaskStatus.SUCCEEDED
    assert row.attempts == 1
    assert job.copied("moved")
    assert proxy.seen["CopyObject", "moved"] == 2
    if copy_path == "lean":
        assert job.client.lean_copies == 0


def test_the_proxy_names_every_operation_the_engine_sends(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """Preflight (HeadBucket twice, a multipart probe and the sweep of probes
    left open, a source HEAD), one HEAD and one CopyObject per object: each
    counted under its operation."""
    job = Job(moto, tmp_path, ["a", "b"])

    job.run(proxy, copy_path)

    assert dict(proxy.requests) == {
        "HeadBucket": 2,
        "CreateMultipartUpload": 1,
        "AbortMultipartUpload": 1,
        "ListMultipartUploads": 1,
        "HeadObject": 3,
        "CopyObject": 2,
    }
    assert proxy.injected == 0


def test_multipart_copy_survives_faults_on_parts_and_completion(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """A part copy done upstream but answered by a reset, and an error inside
    the 200 of CompleteMultipartUpload, still end with the whole object."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    body = os.urandom(11 * MiB)
    moto.client().put_object(Bucket=src, Key="big", Body=body)
    manifest = write_manifest(tmp_path / "m.csv", [(src, "big", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(
        repo,
        manifest,
        moto,
        f"s3://{dst}",
        multipart_threshold=5 * MiB,
        part_size=5 * MiB,
    )

    def decide(req: Request) -> Fault | None:
        if req.operation == "UploadPartCopy" and req.n == 2:
            return AfterUpstream(Reset())
        if req.operation == "CompleteMultipartUpload" and req.n == 1:
            return Respond(200, EMBEDDED_ERROR)
        return None

    proxy.decide = decide
    run_job(repo, job, proxy.server)

    [row] = list(repo.iter_results(job.id))
    assert row.status is TaskStatus.SUCCEEDED
    assert row.method == "multipart"
    assert row.part_count == 3
    assert get_body(moto, dst, "big") == body
    assert proxy.faults == {"AfterUpstream": 1, "Respond": 1}
    assert proxy.requests["CompleteMultipartUpload"] >= 2
    assert moto.client().list_multipart_uploads(Bucket=dst).get("Uploads", []) == []


def test_the_proxy_forwards_chunked_and_expect_continue_bodies(
    moto: S3Server, proxy: FaultProxy
) -> None:
    """A PutObject sent chunked, with ``Expect: 100-continue``, arrives whole."""
    bucket = moto.new_bucket()
    auth = {  # moto reads the access key, not the signature
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/"
        "s3/aws4_request, SignedHeaders=host, Signature=00",
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        "x-amz-date": "20260101T000000Z",
    }
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    try:
        conn.request(
            "PUT",
            f"/{bucket}/chunked",
            body=iter([b"hello ", b"chunked ", b"world"]),
            headers={"Expect": "100-continue", "Transfer-Encoding": "chunked", **auth},
            encode_chunked=True,
        )
        put = conn.getresponse()
        put.read()
        assert put.status == 200
        conn.request("HEAD", f"/{bucket}/chunked", headers=auth)
        head = conn.getresponse()
        head.read()
        assert head.status == 200
    finally:
        conn.close()

    assert get_body(moto, bucket, "chunked") == b"hello chunked world"
    assert proxy.requests == {"PutObject": 1, "HeadObject": 1}
    assert proxy.connections == 1


@pytest.mark.parametrize("operation", ["HeadBucket", "CreateMultipartUpload"])
def test_a_transient_error_in_preflight_is_retried(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str, operation: str
) -> None:
    """A throttled preflight call is retried like any other call: the job runs."""
    job = Job(moto, tmp_path, ["a"])
    proxy.decide = lambda req: (
        Respond(503, SLOW_DOWN) if req.operation == operation and req.n == 1 else None
    )

    job.run(proxy, copy_path)

    assert job.rows()["a"].status is TaskStatus.SUCCEEDED
    assert job.copied("a")


def test_throttling_lowers_the_requests_in_flight_then_they_climb_back(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """A storm of 503 SlowDown on the first 60 CopyObject answers: the
    adaptive limit halves (not below --min-concurrency), climbs back once
    answers succeed, and every object arrives."""
    keys = [f"obj-{i:03d}" for i in range(120)]
    job = Job(moto, tmp_path, keys)
    answered = {"n": 0}

    def storm(req: Request) -> Fault | None:
        if req.operation != "CopyObject":
            return None
        answered["n"] += 1
        return Respond(503, SLOW_DOWN) if answered["n"] <= 60 else None

    proxy.decide = storm
    seen: list[events.Event] = []

    job.run(
        proxy,
        copy_path,
        concurrency=16,
        min_concurrency=2,
        observer=seen.append,
        retry=RetryPolicy(
            max_attempts=30, base_delay=0.001, throttle_base_delay=0.002, max_delay=0.01
        ),
    )

    changes = [e for e in seen if isinstance(e, events.ConcurrencyChanged)]
    lowered = [e.limit for e in changes if e.why == "throttled"]
    assert lowered, "the limit never went down"
    assert min(lowered) >= 2
    assert lowered == sorted(lowered, reverse=True)
    assert any(e.why == "recovering" for e in changes)
    rows = job.rows()
    assert all(r.status is TaskStatus.SUCCEEDED for r in rows.values())
    assert all(job.copied(k) for k in keys)


def test_max_rps_spaces_the_requests(
    moto: S3Server, proxy: FaultProxy, tmp_path: Path, copy_path: str
) -> None:
    """--max-rps 20: 40 copies (one request each) take at least a second:
    a second's burst of 20, then one every 50 ms."""
    keys = [f"obj-{i:03d}" for i in range(40)]
    job = Job(moto, tmp_path, keys)
    started = time.monotonic()

    job.run(proxy, copy_path, concurrency=16, max_rps=20.0, preflight=False)

    assert time.monotonic() - started >= 0.95
    assert proxy.requests["CopyObject"] == 40
    assert all(r.status is TaskStatus.SUCCEEDED for r in job.rows().values())


EXPIRED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ExpiredToken</Code>'
    b"<Message>The provided token has expired.</Message></Error>"
)


@pytest.mark.parametrize("refreshable", [True, False], ids=["refreshable", "static"])
def test_expired_credentials_are_refreshed_and_the_copy_goes_on(
    moto: S3Server,
    proxy: FaultProxy,
    tmp_path: Path,
    copy_path: str,
    refreshable: bool,
) -> None:
    """The first CopyObject of each object answers 400 ExpiredToken.  With
    credentials that can be refreshed (roles, SSO), they are refreshed through
    the chain — once for the copies that saw it together — and the attempt
    does not count; static ones cannot be, and the answer is an ordinary
    retried failure."""
    keys = [f"obj-{i}" for i in range(6)]
    job = Job(moto, tmp_path, keys)
    proxy.decide = on_copy(Respond(400, EXPIRED), first=1)
    refreshed: list[int] = []
    seen: list[events.Event] = []

    def hook(worker: Worker) -> None:
        if not refreshable:
            return

        async def refresh() -> bool:  # the chain handing out fresh credentials
            refreshed.append(1)
            await asyncio.sleep(0.05)
            return True

        keep = worker.refresh.keep  # the client's refresh: ours instead
        worker.refresh.keep = lambda _real: keep(refresh)  # type: ignore[method-assign]

    job.run(proxy, copy_path, worker_hook=hook, observer=seen.append, concurrency=8)

    rows = job.rows()
    assert all(r.status is TaskStatus.SUCCEEDED for r in rows.values())
    assert all(job.copied(k) for k in keys)
    attempts = {r.attempts for r in rows.values()}
    if refreshable:
        assert attempts == {1}
        assert 1 <= len(refreshed) < len(keys)  # shared by copies that saw it
        assert any(isinstance(e, events.CredentialsRefreshed) for e in seen)
    else:
        assert attempts == {2}
        assert refreshed == []
