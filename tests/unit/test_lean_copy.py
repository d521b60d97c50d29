"""The lean CopyObject sends what botocore sends and answers what botocore
answers (the same dict, the same ClientError)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from engine.domain.backoff import RetryPolicy
from engine.domain.errors import S3Error
from engine.s3.lean import Fallback, HeadParser, LeanClient, LeanCopier
from engine.s3.sigv4 import Credentials

NOW = dt.datetime(2026, 11, 21, 4, 5, 6)
TOKEN = "FwoGZXIvYXdzE+token/=="


class Canned:
    """Stands in for botocore's HTTP layer: records the request, answers a
    canned response."""

    def __init__(self, status: int = 200, body: bytes = b"", headers: Any = None):
        self.status, self.body, self.headers = status, body, headers or {}
        self.requests: list[Any] = []

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.requests.append(request)
        raw = mock.Mock()
        raw.stream.return_value = [self.body]
        return AWSResponse(request.url, self.status, self.headers, raw)


def boto_client(
    style: str, token: str | None = None, endpoint: str = "http://s3.test:9000"
) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="eu-west-3",
        aws_access_key_id="AKID",
        aws_secret_access_key="SECRET",
        aws_session_token=token,
        config=Config(
            s3={"addressing_style": style},
            retries={"mode": "standard", "total_max_attempts": 1},
        ),
    )
    return client


def lean_copier(style: str, token: str | None = None) -> LeanCopier:
    async def creds() -> Credentials:
        return Credentials("AKID", "SECRET", token)

    return LeanCopier("http://s3.test:9000", "eu-west-3", creds, addressing_style=style)


CASES: list[dict[str, Any]] = [
    {"Bucket": "dst", "Key": "a.txt", "CopySource": {"Bucket": "src", "Key": "a.txt"}},
    {
        "Bucket": "dst-bucket",
        "Key": "dir/with space/ü+&=?#%.bin",
        "CopySource": {"Bucket": "src", "Key": "x y/ü+&=?#%", "VersionId": "v+/1="},
        "CopySourceIfMatch": '"0123456789abcdef0123456789abcdef"',
        "MetadataDirective": "REPLACE",
        "Metadata": {"owner": "team a", "Project": "b"},
        "ContentType": "text/plain; charset=utf-8",
        "CacheControl": "max-age=60",
        "ContentDisposition": 'attachment; filename="a.txt"',
        "ContentEncoding": "gzip",
        "ContentLanguage": "en",
        "TaggingDirective": "REPLACE",
        "Tagging": "a=1&b=two%20words",
        "StorageClass": "STANDARD_IA",
        "ACL": "bucket-owner-full-control",
        "ExpectedBucketOwner": "111122223333",
        "ExpectedSourceBucketOwner": "444455556666",
        "RequestPayer": "requester",
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "arn:aws:kms:eu-west-3:111122223333:key/abc",
    },
    {
        "Bucket": "dst",
        "Key": "k",
        "CopySource": {"Bucket": "src", "Key": "k"},
        "CopySourceIfNoneMatch": "*",
        "ServerSideEncryption": "AES256",
        "ChecksumAlgorithm": "SHA256",
    },
]


def _sent_by_botocore(style: str, token: str | None, kwargs: dict[str, Any]) -> Any:
    client = boto_client(style, token)
    canned = Canned(
        body=b"<CopyObjectResult><ETag>&quot;e&quot;</ETag></CopyObjectResult>"
    )
    client.meta.events.register("before-send.s3.CopyObject", canned)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        client.copy_object(**kwargs)
    (request,) = canned.requests
    return request


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_requests_are_botocores_byte_for_byte(
    style: str, token: str | None, case: int
) -> None:
    """Same URL, same headers (Authorization included) as botocore sends,
    leaving out what only identifies the SDK (User-Agent, amz-sdk-*)."""
    kwargs = CASES[case]
    request = _sent_by_botocore(style, token, kwargs)
    copier = lean_copier(style, token)
    assert copier.requests.handles(kwargs)
    host, raw = copier.requests.copy_object(
        kwargs, Credentials("AKID", "SECRET", token), NOW.timestamp() - _utc_offset()
    )
    assert_same_request(host, raw, request)


def assert_same_request(host: str, raw: bytes, request: Any) -> None:
    """The serialized request and botocore's: same method, URL and headers
    (Authorization included), leaving out what only names the SDK and the
    Content-Length of an empty body."""
    head = raw.decode().split("\r\n\r\n")[0].split("\r\n")
    method, target, _ = head[0].split(" ")
    ours = {k.lower(): v for k, v in (line.split(": ", 1) for line in head[1:])}
    theirs = {
        k.lower(): (v.decode() if isinstance(v, bytes) else v)
        for k, v in request.headers.items()
        if k.lower() != "user-agent" and not k.lower().startswith("amz-sdk-")
    }
    theirs.setdefault("host", host)
    ours.pop("content-length", None)
    theirs.pop("content-length", None)
    assert method == request.method
    assert f"http://{host}{target}" == request.url
    assert ours == theirs


def _utc_offset() -> float:
    return dt.datetime.now().astimezone().utcoffset().total_seconds()  # type: ignore[union-attr]


def test_what_it_does_not_know_goes_to_botocore() -> None:
    copier = lean_copier("path")
    base = {"Bucket": "b", "Key": "k", "CopySource": {"Bucket": "s", "Key": "k"}}
    assert copier.requests.handles(base)
    assert not copier.requests.handles({**base, "SSECustomerKey": b"x" * 32})
    assert not copier.requests.handles({**base, "CopySource": "s/k"})
    assert not copier.requests.handles({**base, "Metadata": {"note": "é"}})
    assert not copier.requests.handles({**base, "ContentType": "a\r\nx-evil: 1"})
    assert not lean_copier("virtual").requests.handles({**base, "Bucket": "Not_DNS"})
    assert not LeanCopier(
        "http://host/base/path", "us-east-1", mock.AsyncMock()
    ).requests.handles(base)


# -- answers ----------------------------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[Any]:
    """A server answering every request with the response in ``.reply``."""
    state: dict[str, Any] = {}
    loop = asyncio.new_event_loop()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                state["requests"] = state.get("requests", 0) + 1
                queued = state.get("replies")
                writer.write(queued.pop(0) if queued else state["reply"])
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = loop.run_until_complete(asyncio.start_server(serve, "127.0.0.1", 0))
    state["port"] = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield state

    async def shutdown() -> None:
        server.close()
        me = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not me]
        for t in others:
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def _reply(status: int, reason: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
        f"x-amz-request-id: REQ1\r\nx-amz-id-2: HOST1\r\n{extra}\r\n"
    ).encode() + body


SUCCESS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<LastModified>2026-11-21T04:05:06.000Z</LastModified>"
    b"<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag></CopyObjectResult>"
)
EMBEDDED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message>"
    b"<RequestId>R</RequestId><HostId>H</HostId></Error>"
)
ANSWERS = {
    "success": _reply(
        200,
        "OK",
        SUCCESS,
        "x-amz-version-id: dv1\r\nx-amz-copy-source-version-id: sv1\r\n",
    ),
    "embedded-200-error": _reply(200, "OK", EMBEDDED),
    # Go's encoding/xml (rclone, MinIO) writes quotes as character references
    "success-char-refs": _reply(
        200,
        "OK",
        b"<CopyObjectResult><LastModified>2026-11-21T04:05:06.000Z</LastModified>"
        b"<ETag>&#34;9b2cf535f27731c974343645a3985328&#x22;</ETag></CopyObjectResult>",
    ),
    "cut-short-200": _reply(200, "OK", SUCCESS[:60]),
    "empty-200": _reply(200, "OK", b""),
    "no-such-key": _reply(
        404,
        "Not Found",
        b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist."
        b"</Message></Error>",
    ),
    "slow-down": _reply(
        503,
        "Slow Down",
        b"<Error><Code>SlowDown</Code><Message>Reduce</Message></Error>",
    ),
    "503-no-body": _reply(503, "Service Unavailable", b""),
    "precondition": _reply(
        412,
        "Precondition Failed",
        b"<Error><Code>PreconditionFailed</Code><Message>At least one of the "
        b"pre-conditions you specified did not hold</Message></Error>",
    ),
}


def _outcome(call: Any) -> Any:
    try:
        resp = call()
    except ClientError as exc:
        meta = exc.response["ResponseMetadata"]
        return (
            "error",
            exc.response["Error"].get("Code"),
            exc.response["Error"].get("Message"),
            meta["HTTPStatusCode"],
        )
    resp = dict(resp)
    meta = resp.pop("ResponseMetadata")
    return ("ok", resp, meta["HTTPStatusCode"], meta["RequestId"], meta["HostId"])


@pytest.mark.parametrize("answer", list(ANSWERS))
def test_answers_are_botocores(http_server: Any, answer: str) -> None:
    http_server["reply"] = ANSWERS[answer]
    url = f"http://127.0.0.1:{http_server['port']}"
    kwargs = CASES[0]
    boto = boto_client("path", endpoint=url)

    async def creds() -> Credentials:
        return Credentials("AKID", "SECRET")

    async def lean_call() -> dict[str, Any]:
        copier = LeanCopier(url, "us-east-1", creds)
        try:
            return await copier.copy_object(**kwargs)
        finally:
            copier.close()

    expected = _outcome(lambda: boto.copy_object(**kwargs))
    got = _outcome(lambda: asyncio.run(lean_call()))
    if answer == "embedded-200-error":
        # botocore turns it into a 500 and keeps S3's code and message
        assert expected[0] == "error"
        assert expected[3] == 500
    if answer == "cut-short-200":
        # botocore: a 500 whose body it cannot parse; the same for us
        assert expected[0] == got[0] == "error"
        assert expected[3] == got[3] == 500
        return
    assert got == expected


def test_redirects_and_clock_skew_go_to_botocore(http_server: Any) -> None:
    url = f"http://127.0.0.1:{http_server['port']}"

    async def creds() -> Credentials:
        return Credentials("AKID", "SECRET")

    async def call() -> None:
        copier = LeanCopier(url, "us-east-1", creds)
        try:
            await copier.copy_object(**CASES[0])
        finally:
            copier.close()

    for reply in (
        _reply(
            301, "Moved Permanently", b"<Error><Code>PermanentRedirect</Code></Error>"
        ),
        _reply(307, "Temporary Redirect", b"", "Location: http://x/\r\n"),
        _reply(403, "Forbidden", b"<Error><Code>RequestTimeTooSkewed</Code></Error>"),
        _reply(
            400,
            "Bad Request",
            b"<Error><Code>AuthorizationHeaderMalformed</Code></Error>",
        ),
    ):
        http_server["reply"] = reply
        with pytest.raises(Fallback):
            asyncio.run(call())


@pytest.mark.parametrize(
    ("env", "scheme", "refused"),
    [
        ({}, "https", False),
        ({"AWS_CA_BUNDLE": "/etc/ca.pem"}, "https", True),
        ({"AWS_CA_BUNDLE": "/etc/ca.pem"}, "http", False),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "https", True),
        ({"HTTP_PROXY": "http://proxy:3128"}, "http", True),
        ({"HTTP_PROXY": "http://proxy:3128", "NO_PROXY": "s3.test"}, "http", False),
    ],
)
def test_proxies_and_ca_bundles_keep_botocore(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], scheme: str, refused: bool
) -> None:
    """botocore's transport honours proxies and custom CA bundles; the lean
    path's does not, so the probe leaves such endpoints to botocore."""
    from engine.s3.lean.probe import _needs_botocore_transport

    for name in (
        "AWS_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _needs_botocore_transport(scheme, "s3.test") is refused


@pytest.mark.parametrize(
    ("sdk_attempts", "replies", "requests", "outcome"),
    [
        (3, ["slow-down", "slow-down", "success"], 3, ("ok", 2)),
        (3, ["slow-down"] * 3, 3, ("error", "SlowDown", 2, "ClientError")),
        (3, ["embedded-200-error", "success"], 2, ("ok", 1)),
        (1, ["503-no-body", "success"], 1, ("error", "503", 0, "ClientError")),
        (3, ["no-such-key", "success"], 1, ("error", "NoSuchKey", 0, "ClientError")),
        (
            3,
            ["precondition", "success"],
            1,
            ("error", "PreconditionFailed", 0, "ClientError"),
        ),
    ],
    ids=[
        "throttled-twice",
        "throttled-throughout",
        "error-in-200-once",
        "one-attempt-only",
        "missing-source-not-retried",
        "precondition-not-retried",
    ],
)
def test_lean_copies_retry_as_botocores_standard_mode(
    http_server: Any,
    sdk_attempts: int,
    replies: list[str],
    requests: int,
    outcome: tuple[Any, ...],
) -> None:
    """The lean path makes as many requests as botocore's standard retry mode
    with ``total_max_attempts`` would (retryable answers only) and reports
    them (``RetryAttempts``; ``sdk_retries`` of the one ``S3Error`` it raises),
    so the task-level retries above see the same."""
    http_server["replies"] = [ANSWERS[r] for r in replies]
    http_server["reply"] = ANSWERS["success"]
    url = f"http://127.0.0.1:{http_server['port']}"

    async def creds() -> Credentials:
        return Credentials("AKID", "SECRET")

    class Unused:
        async def copy_object(self, **_: Any) -> dict[str, Any]:
            raise AssertionError("went to botocore")

    async def call() -> Any:
        copier = LeanCopier(url, "us-east-1", creds)
        client = LeanClient(Unused(), copier, sdk_max_attempts=sdk_attempts)
        client._sdk = RetryPolicy(sdk_attempts, 0.0, 0.0, 0.0)  # no waiting here
        try:
            answer = await client.copy_object(**CASES[0])
        except S3Error as err:  # classified once, by the lean path itself
            cause = type(err.__cause__).__name__
            return ("error", err.code, err.sdk_retries, cause)
        finally:
            copier.close()
        return ("ok", answer["ResponseMetadata"]["RetryAttempts"])

    assert asyncio.run(call()) == outcome
    assert http_server["requests"] == requests


@pytest.mark.parametrize(
    ("flag", "env", "lean"),
    [
        (None, None, True),  # the default
        (False, None, False),  # --no-lean-copy
        (True, None, True),  # --lean-copy
        (None, "0", False),
        (True, "0", False),  # the environment decides when set
        (False, "1", True),
        (None, "", True),
    ],
)
def test_which_path_copies_take(
    monkeypatch: pytest.MonkeyPatch, flag: bool | None, env: str | None, lean: bool
) -> None:
    from engine.cli.common import client_overrides
    from engine.domain.spec import ClientSettings
    from engine.run.jobclient import lean_wanted

    if env is None:
        monkeypatch.delenv("BULKCOPY_LEAN_COPY", raising=False)
    else:
        monkeypatch.setenv("BULKCOPY_LEAN_COPY", env)
    settings = client_overrides(ClientSettings(), lean_copy=flag)
    assert lean_wanted(settings) is lean
    # stored with the job: a later run without the flag keeps the choice
    assert ClientSettings.from_dict(settings.to_dict()) == settings


# -- HeadObject (a source's HEAD before its copy) ----------------------------------

HEAD_CASES: list[dict[str, Any]] = [
    {"Bucket": "src", "Key": "a.txt"},
    {
        "Bucket": "src-bucket",
        "Key": "dir/with space/ü+&=?#%.bin",
        "VersionId": "v+/1= x",
    },
    {
        "Bucket": "src",
        "Key": "k",
        "ExpectedBucketOwner": "111122223333",
        "RequestPayer": "requester",
    },
    # a move's check before the delete reads the checksums too
    {"Bucket": "src", "Key": "k", "VersionId": "v1", "ChecksumMode": "ENABLED"},
]


def _head_copier(style: str, token: str | None = None, url: str = "") -> LeanCopier:
    async def creds() -> Credentials:
        return Credentials("AKID", "SECRET", token)

    output = (
        boto_client(style).meta.service_model.operation_model("HeadObject").output_shape
    )
    return LeanCopier(
        url or "http://s3.test:9000",
        "eu-west-3",
        creds,
        addressing_style=style,
        head_buckets={"src", "src-bucket"},
        head_parser=HeadParser(output),
    )


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize("case", range(len(HEAD_CASES)))
def test_head_requests_are_botocores_byte_for_byte(
    style: str, token: str | None, case: int
) -> None:
    kwargs = HEAD_CASES[case]
    client = boto_client(style, token)
    canned = Canned(headers={"Content-Length": "3"})
    client.meta.events.register("before-send.s3.HeadObject", canned)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        client.head_object(**kwargs)
    (request,) = canned.requests
    copier = _head_copier(style, token)
    assert copier.requests.handles_head(kwargs)
    host, raw = copier.requests.head_object(
        kwargs, Credentials("AKID", "SECRET", token), NOW.timestamp() - _utc_offset()
    )
    assert raw.startswith(b"HEAD ")
    assert b"content-length" not in raw.lower()
    assert_same_request(host, raw, request)


def test_heads_it_does_not_know_go_to_botocore() -> None:
    copier = _head_copier("path")
    assert copier.requests.handles_head({"Bucket": "src", "Key": "k"})
    assert not copier.requests.handles_head({"Bucket": "elsewhere", "Key": "k"})
    assert not copier.requests.handles_head(
        {"Bucket": "src", "Key": "k", "PartNumber": 1}
    )
    assert not copier.requests.handles_head(
        {"Bucket": "src", "Key": "k", "SSECustomerKey": b"x" * 32}
    )
    assert not copier.requests.handles_head(
        {"Bucket": "src", "Key": "k", "IfMatch": '"e"'}
    )


def _head_reply(status: int, reason: str, extra: str = "", length: int = 0) -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Length: {length}\r\n{extra}\r\n"
    ).encode()


HEAD_ANSWERS = {
    "plain": _head_reply(
        200,
        "OK",
        'x-amz-request-id: R1\r\nx-amz-id-2: H1\r\nETag: "0123"\r\n'
        "Last-Modified: Sat, 21 Nov 2026 04:05:06 GMT\r\n"
        "Content-Type: text/plain\r\nAccept-Ranges: bytes\r\n",
        length=1234,
    ),
    "everything": _head_reply(
        200,
        "OK",
        'x-amz-request-id: R2\r\nx-amz-id-2: H2\r\nETag: "abc-3"\r\n'
        "Last-Modified: Tue, 03 Feb 2026 10:00:00 GMT\r\n"
        "x-amz-version-id: v1\r\nx-amz-meta-Owner: Team A\r\n"
        "x-amz-meta-project: b, c\r\nCache-Control: max-age=60\r\n"
        'Content-Disposition: attachment; filename="a.txt"\r\n'
        "Content-Encoding: gzip\r\nContent-Language: en\r\n"
        "Expires: Wed, 21 Oct 2026 07:28:00 GMT\r\n"
        "x-amz-storage-class: GLACIER\r\n"
        'x-amz-restore: ongoing-request="false", '
        'expiry-date="Fri, 23 Dec 2026 00:00:00 GMT"\r\n'
        "x-amz-server-side-encryption: aws:kms\r\n"
        "x-amz-server-side-encryption-aws-kms-key-id: arn:aws:kms:k\r\n"
        "x-amz-server-side-encryption-bucket-key-enabled: true\r\n"
        "x-amz-checksum-crc32: AAAAAA==\r\nx-amz-checksum-type: COMPOSITE\r\n"
        "x-amz-mp-parts-count: 3\r\nx-amz-tagging-count: 2\r\n"
        "x-amz-object-lock-mode: GOVERNANCE\r\n"
        "x-amz-object-lock-retain-until-date: 2027-01-01T00:00:00.000Z\r\n"
        "x-amz-object-lock-legal-hold: ON\r\nx-amz-replication-status: COMPLETED\r\n"
        "x-amz-website-redirect-location: /other\r\nx-amz-delete-marker: false\r\n",
        length=5,
    ),
    "expires-not-a-date": _head_reply(
        200,
        "OK",
        'x-amz-request-id: R3\r\nETag: "e"\r\nExpires: soon\r\n',
        length=1,
    ),
    "no-request-id": _head_reply(200, "OK", 'ETag: "e"\r\n', length=1),
    "not-found": _head_reply(404, "Not Found", "x-amz-request-id: R4\r\n"),
    "forbidden": _head_reply(403, "Forbidden", "x-amz-request-id: R5\r\n"),
    "slow-down": _head_reply(503, "Slow Down", "x-amz-request-id: R6\r\n"),
    "server-error": _head_reply(500, "Internal Server Error"),
}


@pytest.mark.parametrize("answer", list(HEAD_ANSWERS))
def test_head_answers_are_botocores(http_server: Any, answer: str) -> None:
    """The same dict (every member botocore's model reads from headers, the
    metadata as the server spelt it, ExpiresString) or the same error."""
    http_server["reply"] = HEAD_ANSWERS[answer]
    url = f"http://127.0.0.1:{http_server['port']}"
    kwargs = {"Bucket": "src", "Key": "k", "VersionId": "v1"}
    boto = boto_client("path", endpoint=url)

    async def lean_call() -> dict[str, Any]:
        copier = _head_copier("path", url=url)
        try:
            return await copier.head_object(**kwargs)
        finally:
            copier.close()

    expected = _head_outcome(lambda: boto.head_object(**kwargs))
    got = _head_outcome(lambda: asyncio.run(lean_call()))
    assert got == expected


def _head_outcome(call: Any) -> Any:
    """What the engine reads of an answer: the parsed members, or the error
    with its status (botocore's retry bookkeeping, ``MaxAttemptsReached``,
    and the request ids of errors are left out)."""
    try:
        resp = call()
    except ClientError as exc:
        meta = exc.response["ResponseMetadata"]
        return ("error", exc.response["Error"], meta["HTTPStatusCode"])
    resp = dict(resp)
    meta = dict(resp.pop("ResponseMetadata"))
    meta.pop("HTTPHeaders")
    meta.pop("MaxAttemptsReached", None)
    return ("ok", resp, meta)


def test_head_redirects_go_to_botocore(http_server: Any) -> None:
    url = f"http://127.0.0.1:{http_server['port']}"

    async def call() -> None:
        copier = _head_copier("path", url=url)
        try:
            await copier.head_object(Bucket="src", Key="k")
        finally:
            copier.close()

    for reply in (
        _head_reply(301, "Moved Permanently", "x-amz-bucket-region: eu-west-1\r\n"),
        _head_reply(307, "Temporary Redirect", "Location: http://x/\r\n"),
        _head_reply(400, "Bad Request", "x-amz-bucket-region: eu-west-1\r\n"),
    ):
        http_server["reply"] = reply
        with pytest.raises(Fallback):
            asyncio.run(call())


# -- DeleteObject (a move's source delete) ------------------------------------------

DELETE_CASES: list[dict[str, Any]] = [
    {"Bucket": "src", "Key": "a.txt"},
    {
        "Bucket": "src-bucket",
        "Key": "dir/with space/ü+&=?#%.bin",
        "VersionId": "v+/1= x",
    },
    {"Bucket": "src", "Key": "k", "VersionId": "null"},
    {
        "Bucket": "src",
        "Key": "k",
        "IfMatch": '"9e107d9d372bb6826bd81d3542a419d6"',
        "ExpectedBucketOwner": "111122223333",
        "RequestPayer": "requester",
    },
]


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize("case", range(len(DELETE_CASES)))
def test_delete_requests_are_botocores_byte_for_byte(
    style: str, token: str | None, case: int
) -> None:
    kwargs = DELETE_CASES[case]
    client = boto_client(style, token)
    canned = Canned(status=204)
    client.meta.events.register("before-send.s3.DeleteObject", canned)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        client.delete_object(**kwargs)
    (request,) = canned.requests
    copier = _head_copier(style, token)
    assert copier.requests.handles_delete(kwargs)
    host, raw = copier.requests.delete_object(
        kwargs, Credentials("AKID", "SECRET", token), NOW.timestamp() - _utc_offset()
    )
    assert raw.startswith(b"DELETE ")
    assert_same_request(host, raw, request)


def test_deletes_it_does_not_know_go_to_botocore() -> None:
    copier = _head_copier("path")
    assert copier.requests.handles_delete({"Bucket": "src", "Key": "k"})
    assert not copier.requests.handles_delete({"Bucket": "elsewhere", "Key": "k"})
    assert not copier.requests.handles_delete(
        {"Bucket": "src", "Key": "k", "MFA": "x 1"}
    )
    assert not copier.requests.handles_delete(
        {"Bucket": "src", "Key": "k", "BypassGovernanceRetention": True}
    )
    assert not copier.requests.handles_delete(
        {"Bucket": "src", "Key": "k", "IfMatch": "é"}
    )


def _delete_reply(status: int, reason: str, extra: str = "", body: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body.encode())}\r\n"
        f"{extra}\r\n{body}"
    ).encode()


def _error_body(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>R9</RequestId><HostId>H9</HostId></Error>"
    )


DELETE_ANSWERS = {
    "deleted": b"HTTP/1.1 204 No Content\r\nx-amz-request-id: R1\r\n"
    b"x-amz-id-2: H1\r\n\r\n",
    "version-deleted": b"HTTP/1.1 204 No Content\r\nx-amz-request-id: R2\r\n"
    b"x-amz-version-id: v1\r\nx-amz-request-charged: requester\r\n\r\n",
    "marker-added": b"HTTP/1.1 204 No Content\r\nx-amz-request-id: R3\r\n"
    b"x-amz-delete-marker: true\r\nx-amz-version-id: m1\r\n\r\n",
    "precondition-failed": _delete_reply(
        412,
        "Precondition Failed",
        "x-amz-request-id: R4\r\n",
        _error_body("PreconditionFailed", "At least one of the preconditions failed"),
    ),
    "no-such-key": _delete_reply(
        404, "Not Found", "", _error_body("NoSuchKey", "The key does not exist")
    ),
    "access-denied": _delete_reply(
        403, "Forbidden", "", _error_body("AccessDenied", "Access Denied")
    ),
    "slow-down": _delete_reply(503, "Slow Down", "", _error_body("SlowDown", "Reduce")),
    "bare-500": _delete_reply(500, "Internal Server Error"),
}


@pytest.mark.parametrize("answer", list(DELETE_ANSWERS))
def test_delete_answers_are_botocores(http_server: Any, answer: str) -> None:
    """The same dict (DeleteMarker, VersionId, RequestCharged) or the same
    error (code, message, status)."""
    http_server["reply"] = DELETE_ANSWERS[answer]
    url = f"http://127.0.0.1:{http_server['port']}"
    kwargs = {"Bucket": "src", "Key": "k", "VersionId": "v1"}
    boto = boto_client("path", endpoint=url)

    async def lean_call() -> dict[str, Any]:
        copier = _head_copier("path", url=url)
        try:
            return await copier.delete_object(**kwargs)
        finally:
            copier.close()

    expected = _head_outcome(lambda: boto.delete_object(**kwargs))
    got = _head_outcome(lambda: asyncio.run(lean_call()))
    assert got == expected
