"""The lean path's streamed-copy calls (GetObject into the caller's buffer,
GetObjectTagging, PutObject of a body in memory) send what botocore sends and
answer what botocore answers."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.config import Config

from engine.domain.digests import checksum
from engine.s3.lean import HeadParser, LeanClient, LeanCopier
from engine.s3.sigv4 import UNSIGNED_PAYLOAD, Credentials
from tests.unit.test_lean_copy import (
    NOW,
    TOKEN,
    Canned,
    _error_body,
    _head_outcome,
    _utc_offset,
    assert_same_request,
    boto_client,
    http_server,
)

__all__ = ["http_server"]  # the fixture, shared with test_lean_copy

BODY = bytearray(b"hello, streamed world\n" * 3)
MD5 = "Xl1CPpO6ltD3YVv4ZtVd4A=="  # not checked by the requests themselves


def stream_copier(
    style: str, token: str | None = None, url: str = "http://s3.test:9000"
) -> LeanCopier:
    async def creds() -> Credentials:
        return Credentials("AKID", "SECRET", token)

    model = boto_client(style).meta.service_model

    def parser(op: str) -> HeadParser:
        return HeadParser(model.operation_model(op).output_shape)

    return LeanCopier(
        url,
        "eu-west-3",
        creds,
        addressing_style=style,
        bucket="dst",
        head_buckets={"src", "src-bucket"},
        head_parser=parser("HeadObject"),
        get_parser=parser("GetObject"),
        put_parser=parser("PutObject"),
        part_parser=parser("UploadPart"),
    )


def _botocores(style: str, token: str | None, op: str, call: Any, url: str = "") -> Any:
    client = boto_client(style, token, **({"endpoint": url} if url else {}))
    canned = Canned(headers={"Content-Length": "0"})
    client.meta.events.register(f"before-send.s3.{op}", canned)
    with (
        mock.patch("botocore.auth.get_current_datetime", return_value=NOW),
        contextlib.suppress(Exception),  # the canned answer need not parse
    ):
        call(client)
    (request,) = canned.requests
    return request


WHEN = NOW.timestamp()

GET_CASES: list[dict[str, Any]] = [
    {"Bucket": "src", "Key": "a.txt", "ChecksumMode": "ENABLED"},
    {
        "Bucket": "src-bucket",
        "Key": "dir/with space/ü+&=?#%.bin",
        "VersionId": "v+/1= x",
        "IfMatch": '"9e107d9d372bb6826bd81d3542a419d6"',
        "Range": "bytes=16777216-33554431",
        "ChecksumMode": "ENABLED",
        "ExpectedBucketOwner": "111122223333",
        "RequestPayer": "requester",
    },
]


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize("case", range(len(GET_CASES)))
def test_get_requests_are_botocores_byte_for_byte(
    style: str, token: str | None, case: int
) -> None:
    kwargs = GET_CASES[case]
    request = _botocores(style, token, "GetObject", lambda c: c.get_object(**kwargs))
    copier = stream_copier(style, token)
    assert copier.requests.handles_get(kwargs)
    host, raw = copier.requests.get_object(
        kwargs, Credentials("AKID", "SECRET", token), WHEN - _utc_offset()
    )
    assert raw.startswith(b"GET ")
    assert_same_request(host, raw, request)


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize("version", [None, "v+/1= x"])
def test_tagging_requests_are_botocores_byte_for_byte(
    style: str, version: str | None
) -> None:
    kwargs: dict[str, Any] = {"Bucket": "src", "Key": "a b/ü.txt"}
    if version:
        kwargs["VersionId"] = version
    request = _botocores(
        style, TOKEN, "GetObjectTagging", lambda c: c.get_object_tagging(**kwargs)
    )
    copier = stream_copier(style, TOKEN)
    assert copier.requests.handles_tagging(kwargs)
    host, raw = copier.requests.get_object_tagging(
        kwargs, Credentials("AKID", "SECRET", TOKEN), WHEN - _utc_offset()
    )
    assert_same_request(host, raw, request)


PUT_CASES: list[dict[str, Any]] = [
    {"Bucket": "dst", "Key": "a.txt", "ChecksumCRC32": "AAAAAA=="},
    {
        "Bucket": "dst",
        "Key": "dir/with space/ü+&=?#%.bin",
        "ContentLength": len(BODY),
        "ChecksumAlgorithm": "SHA256",
        "ChecksumSHA256": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
        "Metadata": {"owner": "team a", "Project": "b"},
        "ContentType": "text/plain; charset=utf-8",
        "CacheControl": "max-age=60",
        "ContentDisposition": 'attachment; filename="a.txt"',
        "ContentEncoding": "gzip",
        "ContentLanguage": "en",
        "Tagging": "a=1&b=two%20words",
        "StorageClass": "STANDARD_IA",
        "ACL": "bucket-owner-full-control",
        "ExpectedBucketOwner": "111122223333",
        "RequestPayer": "requester",
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "arn:aws:kms:eu-west-3:111122223333:key/abc",
    },
    {"Bucket": "dst", "Key": "k", "ChecksumAlgorithm": "SHA1", "ChecksumSHA1": "x="},
    # the CRCs botocore computes only with the AWS CRT: given, it sends them
    {
        "Bucket": "dst",
        "Key": "c",
        "ChecksumAlgorithm": "CRC32C",
        "ChecksumCRC32C": "c=",
    },
    {"Bucket": "dst", "Key": "n", "ChecksumCRC64NVME": "rosUhgp5mIg="},
]


def _unsigned_botocores(
    style: str, token: str | None, op: str, call: Any, url: str
) -> Any:
    """The request botocore sends when told not to sign payloads (over TLS
    it does not anyway, for a body with its MD5)."""
    client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="eu-west-3",
        aws_access_key_id="AKID",
        aws_secret_access_key="SECRET",
        aws_session_token=token,
        config=Config(
            s3={"addressing_style": style, "payload_signing_enabled": False},
            retries={"mode": "standard", "total_max_attempts": 1},
        ),
    )
    canned = Canned(headers={"Content-Length": "0"})
    client.meta.events.register(f"before-send.s3.{op}", canned)
    with (
        mock.patch("botocore.auth.get_current_datetime", return_value=NOW),
        contextlib.suppress(Exception),
    ):
        call(client)
    (request,) = canned.requests
    request.headers.pop("Expect", None)  # unsigned; small bodies go at once
    request.url = request.url.replace("https://", "http://")
    return request


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize("case", range(len(PUT_CASES)))
@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("md5", [MD5, None])
def test_put_requests_are_botocores_byte_for_byte(
    style: str, token: str | None, case: int, scheme: str, md5: str | None
) -> None:
    """The same headers as botocore's, with ``UNSIGNED-PAYLOAD`` in the
    signature (the body bound by its signed MD5 and checksum), as botocore
    signs a body with its MD5 over TLS, and over plain HTTP when told not to
    sign payloads; only ``Expect: 100-continue`` is left out."""
    kwargs = {**PUT_CASES[case], "Body": BODY}
    if md5 is not None:  # else a CRC stands in for it (engine.copy.stream)
        kwargs["ContentMD5"] = md5
    url = f"{scheme}://s3.test:9000"
    request = _unsigned_botocores(
        style, token, "PutObject", lambda c: c.put_object(**kwargs), url
    )
    copier = stream_copier(style, token, url)
    assert copier.requests.handles_put(kwargs)
    host, raw = copier.requests.put_object(
        kwargs,
        Credentials("AKID", "SECRET", token),
        WHEN - _utc_offset(),
        UNSIGNED_PAYLOAD,
    )
    assert raw.startswith(b"PUT ")
    assert f"content-length: {len(BODY)}\r\n".encode() in raw
    assert_same_request(host, raw, request)


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize(
    ("algorithm", "value"),
    [(None, "AAAAAA=="), ("CRC32", "AAAAAA=="), ("CRC64NVME", "rosUhgp5mIg=")],
)
def test_upload_part_requests_are_botocores_byte_for_byte(
    style: str, algorithm: str | None, value: str
) -> None:
    kwargs: dict[str, Any] = {
        "Bucket": "dst",
        "Key": "big/ü x.bin",
        "UploadId": "2~abc+/=def",
        "PartNumber": 7,
        "Body": BODY,
        "ContentLength": len(BODY),
        "ContentMD5": MD5,
        f"Checksum{algorithm or 'CRC32'}": value,
        "ExpectedBucketOwner": "111122223333",
    }
    if algorithm:
        kwargs["ChecksumAlgorithm"] = algorithm
    url = "http://s3.test:9000"
    request = _unsigned_botocores(
        style, TOKEN, "UploadPart", lambda c: c.upload_part(**kwargs), url
    )
    copier = stream_copier(style, TOKEN, url)
    assert copier.requests.handles_upload_part(kwargs)
    assert not copier.requests.handles_upload_part({**kwargs, "SSECustomerKey": "k"})
    # a part of an upload with no checksum algorithm: its MD5 alone
    md5_alone = {k: v for k, v in kwargs.items() if not k.startswith("Checksum")}
    assert copier.requests.handles_upload_part(md5_alone)
    # … or its checksum alone, where a CRC stands in for the MD5
    no_md5 = {k: v for k, v in kwargs.items() if k != "ContentMD5"}
    assert copier.requests.handles_upload_part(no_md5)
    bare = {k: v for k, v in no_md5.items() if not k.startswith("Checksum")}
    assert not copier.requests.handles_upload_part(bare)
    assert not copier.requests.handles_put(
        {k: v for k, v in md5_alone.items() if k not in ("UploadId", "PartNumber")}
    )
    host, raw = copier.requests.upload_part(
        kwargs,
        Credentials("AKID", "SECRET", TOKEN),
        WHEN - _utc_offset(),
        UNSIGNED_PAYLOAD,
    )
    assert_same_request(host, raw, request)


def test_puts_it_does_not_know_go_to_botocore() -> None:
    requests = stream_copier("path").requests
    base = {"Bucket": "dst", "Key": "k", "Body": BODY, "ContentMD5": MD5}
    ok = {**base, "ChecksumCRC32": "AAAAAA=="}
    assert requests.handles_put(ok)
    refused = [
        base,  # no checksum: botocore would compute one
        {**ok, "ChecksumSHA1": "x="},  # two
        {**ok, "ChecksumAlgorithm": "SHA256"},  # not the one given
        {**ok, "ChecksumAlgorithm": "CRC32C"},
        {**ok, "Bucket": "other"},  # not the probed bucket
        {**ok, "ContentLength": len(BODY) + 1},
        {**ok, "Body": iter([b"x"])},  # not in memory
        {**ok, "SSECustomerKey": b"k" * 32},
        {**ok, "Metadata": {"k": "é"}},
    ]
    for kwargs in refused:
        assert not requests.handles_put(kwargs), kwargs
    get = {"Bucket": "src", "Key": "k", "ChecksumMode": "ENABLED"}
    assert requests.handles_get(get)
    assert not requests.handles_get({**get, "Bucket": "elsewhere"})
    assert not requests.handles_get({**get, "PartNumber": 1})
    # botocore would ask for checksums itself, or not, as configured
    assert not requests.handles_get({"Bucket": "src", "Key": "k"})


def _reply(status: int, reason: str, extra: str = "", body: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


GET_ANSWERS = {
    "whole": _reply(
        200,
        "OK",
        'x-amz-request-id: R1\r\nETag: "e1"\r\nx-amz-version-id: v1\r\n'
        "Last-Modified: Sat, 21 Nov 2026 04:05:06 GMT\r\nx-amz-meta-Owner: A\r\n"
        f"x-amz-tagging-count: 2\r\nx-amz-checksum-crc32: {checksum(BODY, 'CRC32')}\r\n"
        "Content-Type: text/plain\r\n",
        bytes(BODY),
    ),
    "range": _reply(
        206,
        "Partial Content",
        'x-amz-request-id: R2\r\nETag: "e-3"\r\n'
        f"Content-Range: bytes 0-{len(BODY) - 1}/99999\r\n",
        bytes(BODY),
    ),
    "changed": _reply(
        412,
        "Precondition Failed",
        "x-amz-request-id: R3\r\n",
        _error_body("PreconditionFailed", "At least one").encode(),
    ),
    "no-such-key": _reply(
        404, "Not Found", "", _error_body("NoSuchKey", "gone").encode()
    ),
}


@pytest.mark.parametrize("answer", list(GET_ANSWERS))
def test_get_answers_are_botocores_and_the_body_lands_in_the_buffer(
    http_server: Any, answer: str
) -> None:
    http_server["reply"] = GET_ANSWERS[answer]
    url = f"http://127.0.0.1:{http_server['port']}"
    kwargs = {"Bucket": "src", "Key": "k", "IfMatch": '"e1"', "ChecksumMode": "ENABLED"}
    boto = boto_client("path", endpoint=url)
    sink = bytearray(len(BODY))

    def botocores() -> dict[str, Any]:
        resp = boto.get_object(**kwargs)
        assert resp.pop("Body").read() == bytes(BODY)
        # botocore checks a whole body against its checksum as it reads it
        # and says so here; the lean path leaves the check to the stream,
        # which hashes the body anyway (engine.copy.stream.check_body)
        resp["ResponseMetadata"].pop("ChecksumAlgorithm", None)
        return resp

    async def lean_call() -> dict[str, Any]:
        copier = stream_copier("path", url=url)
        try:
            resp, got = await copier.get_object_into(sink, **kwargs)
        finally:
            copier.close()
        assert (got, sink) == (len(BODY), BODY)
        return resp

    expected = _head_outcome(botocores)
    assert _head_outcome(lambda: asyncio.run(lean_call())) == expected


def test_a_body_longer_than_asked_is_counted_not_kept(http_server: Any) -> None:
    """A store that ignores Range sends the whole object: the count says so
    (the caller fails the read) and the buffer is left alone."""
    http_server["reply"] = GET_ANSWERS["whole"]
    url = f"http://127.0.0.1:{http_server['port']}"
    sink = bytearray(5)

    async def call() -> int:
        copier = stream_copier("path", url=url)
        try:
            _, got = await copier.get_object_into(
                sink, Bucket="src", Key="k", ChecksumMode="ENABLED"
            )
        finally:
            copier.close()
        return got

    assert asyncio.run(call()) == len(BODY)
    assert sink == bytearray(5)


TAGGING = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Tagging xmlns="http://s3.amazonaws.'
    b'com/doc/2006-03-01/"><TagSet><Tag><Key>a &amp; b</Key><Value>&#34;x&#34;'
    b"</Value></Tag><Tag><Key>empty</Key><Value/></Tag><Tag><Key>k</Key>"
    b"<Value></Value></Tag></TagSet></Tagging>"
)


def test_tags_written_another_way_are_left_to_botocore(http_server: Any) -> None:
    """A tag the lean parse would not see (elements in another order) is not
    dropped: the call is handed to botocore."""
    from engine.s3.lean import Fallback

    http_server["reply"] = _reply(
        200,
        "OK",
        "",
        b"<Tagging><TagSet><Tag><Value>v</Value><Key>k</Key></Tag></TagSet></Tagging>",
    )
    url = f"http://127.0.0.1:{http_server['port']}"

    async def lean_call() -> dict[str, Any]:
        copier = stream_copier("path", url=url)
        try:
            return await copier.get_object_tagging(Bucket="src", Key="k")
        finally:
            copier.close()

    with pytest.raises(Fallback):
        asyncio.run(lean_call())


@pytest.mark.parametrize(
    "reply",
    [
        _reply(200, "OK", "x-amz-version-id: v1\r\n", TAGGING),
        _reply(200, "OK", "", b"<Tagging><TagSet></TagSet></Tagging>"),
        _reply(403, "Forbidden", "", _error_body("AccessDenied", "no").encode()),
    ],
)
def test_tagging_answers_are_botocores(http_server: Any, reply: bytes) -> None:
    http_server["reply"] = reply
    url = f"http://127.0.0.1:{http_server['port']}"
    kwargs = {"Bucket": "src", "Key": "k"}
    boto = boto_client("path", endpoint=url)

    async def lean_call() -> dict[str, Any]:
        copier = stream_copier("path", url=url)
        try:
            return await copier.get_object_tagging(**kwargs)
        finally:
            copier.close()

    expected = _head_outcome(lambda: boto.get_object_tagging(**kwargs))
    assert _head_outcome(lambda: asyncio.run(lean_call())) == expected


@pytest.mark.parametrize(
    "reply",
    [
        _reply(
            200,
            "OK",
            'x-amz-request-id: R1\r\nETag: "5d41402abc4b2a76b9719d911017c592"\r\n'
            "x-amz-version-id: v9\r\nx-amz-checksum-crc32: AAAAAA==\r\n"
            "x-amz-server-side-encryption: AES256\r\n",
        ),
        _reply(400, "Bad Request", "", _error_body("BadDigest", "md5").encode()),
    ],
)
def test_put_answers_are_botocores(http_server: Any, reply: bytes) -> None:
    http_server["reply"] = reply
    url = f"http://127.0.0.1:{http_server['port']}"
    kwargs = {
        "Bucket": "dst",
        "Key": "k",
        "Body": bytes(BODY),
        "ContentMD5": MD5,
        "ChecksumCRC32": "AAAAAA==",
    }
    boto = boto_client("path", endpoint=url)

    async def lean_call() -> dict[str, Any]:
        copier = stream_copier("path", url=url)
        try:
            return await copier.put_object(**kwargs)
        finally:
            copier.close()

    expected = _head_outcome(lambda: boto.put_object(**kwargs))
    assert _head_outcome(lambda: asyncio.run(lean_call())) == expected


def test_the_client_takes_the_lean_path_and_hands_the_rest_to_botocore() -> None:
    """Calls the lean path makes are counted; one it cannot make (another
    bucket) is botocore's."""
    botocore = mock.AsyncMock()
    botocore.put_object.return_value = {"ETag": '"e"'}
    copier = stream_copier("path")
    copier.put_object = mock.AsyncMock(  # type: ignore[method-assign]
        return_value={"ETag": '"e"', "ResponseMetadata": {}}
    )
    client = LeanClient(botocore, copier)
    args = {"Key": "k", "Body": BODY, "ContentMD5": MD5, "ChecksumCRC32": "AAAAAA=="}
    asyncio.run(client.put_object(Bucket="dst", **args))
    asyncio.run(client.put_object(Bucket="other", **args))
    assert (client.lean["PutObject"], botocore.put_object.await_count) == (1, 1)
