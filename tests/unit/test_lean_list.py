"""The lean path's ListObjectsV2 (a submit's listing): the request botocore
sends, the page botocore answers (keys URL-encoded by the store, decoded as
botocore decodes them), botocore's errors; and the probe learns it only where
botocore would send the same."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.s3.lean import LeanClient, LeanCopier
from engine.s3.lean.answer import ListParser
from engine.s3.lean.probe import probe
from engine.s3.sigv4 import Credentials
from tests.unit.test_lean_copy import (
    NOW,
    TOKEN,
    _outcome,
    _reply,
    _utc_offset,
    assert_same_request,
    boto_client,
    http_server,
)
from tests.unit.test_lean_stream import _botocores

__all__ = ["http_server"]  # the fixture, shared with test_lean_copy


def list_copier(style: str, token: str | None = None, url: str = "") -> LeanCopier:
    async def creds() -> Credentials:
        return Credentials("AKID", "SECRET", token)

    model = boto_client(style).meta.service_model
    return LeanCopier(
        url or "http://s3.test:9000",
        "eu-west-3" if not url else "us-east-1",
        creds,
        addressing_style=style,
        list_parser=ListParser(model.operation_model("ListObjectsV2").output_shape),
        list_buckets={"src", "src-bucket"},
    )


LIST_CASES: list[dict[str, Any]] = [
    {"Bucket": "src"},
    {"Bucket": "src", "Prefix": "p/", "MaxKeys": 1000},
    {
        "Bucket": "src-bucket",
        "Prefix": "a b/é+&=?#%",
        "MaxKeys": 3,
        "ContinuationToken": "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=",
        "ExpectedBucketOwner": "111122223333",
        "RequestPayer": "requester",
    },
    {"Bucket": "src", "StartAfter": "x~y z+", "Delimiter": "/", "Prefix": ""},
]


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize("case", range(len(LIST_CASES)))
def test_list_requests_are_botocores_byte_for_byte(
    style: str, token: str | None, case: int
) -> None:
    """Same URL (the query in botocore's order, ``encoding-type=url`` added
    last), same headers and signature as botocore's."""
    kwargs = LIST_CASES[case]
    request = _botocores(
        style, token, "ListObjectsV2", lambda c: c.list_objects_v2(**kwargs)
    )
    copier = list_copier(style, token)
    assert copier.requests.handles_list(kwargs)
    host, raw = copier.requests.list_objects_v2(
        kwargs, Credentials("AKID", "SECRET", token), NOW.timestamp() - _utc_offset()
    )
    assert_same_request(host, raw, request)


def test_listings_it_does_not_know_go_to_botocore() -> None:
    """A bucket the probe did not learn, an encoding asked for by the caller
    (botocore then leaves the keys encoded), a parameter it does not
    serialize: botocore's."""
    copier = list_copier("path")
    assert copier.requests.handles_list({"Bucket": "src", "Prefix": "p"})
    assert not copier.requests.handles_list({"Bucket": "other"})
    assert not copier.requests.handles_list({"Bucket": "src", "EncodingType": "url"})
    assert not copier.requests.handles_list({"Bucket": "src", "FetchOwner": True})
    assert not copier.requests.handles_list(
        {"Bucket": "src", "ExpectedBucketOwner": "é"}
    )
    assert not LeanCopier(
        "http://s3.test:9000", "eu-west-3", list_copier("path").credentials
    ).requests.handles_list({"Bucket": "src"})  # no parser: nothing learnt


def _page(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"{body}</ListBucketResult>"
    ).encode()


_OBJECT = (
    "<Contents><Key>{key}</Key><LastModified>2026-11-21T04:05:06.000Z"
    "</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>"
    "<ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><ChecksumType>FULL_OBJECT"
    "</ChecksumType><Size>{size}</Size><Owner><ID>abc</ID><DisplayName>me"
    "</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents>"
)
LIST_ANSWERS = {
    "encoded-page": _reply(
        200,
        "OK",
        _page(
            "<Name>src</Name><Prefix>a+b%2F</Prefix><Delimiter>%2F</Delimiter>"
            "<StartAfter>a+b%2Fz</StartAfter><KeyCount>3</KeyCount>"
            "<MaxKeys>3</MaxKeys><EncodingType>url</EncodingType>"
            "<IsTruncated>true</IsTruncated><ContinuationToken>t1</ContinuationToken>"
            "<NextContinuationToken>t2/+=</NextContinuationToken>"
            + _OBJECT.format(key="a+b%2F%C3%BC+%2B%25+%26", size=5)
            + _OBJECT.format(key="a+b%2F%01ctrl", size=0)
            + "<CommonPrefixes><Prefix>a+b%2Fdir%2F</Prefix></CommonPrefixes>"
        ),
        "x-amz-request-charged: requester\r\n",
    ),
    # a store that ignores encoding-type (it says nothing of it): as sent
    "plain-page": _reply(
        200,
        "OK",
        _page(
            "<Name>src</Name><Prefix></Prefix><KeyCount>1</KeyCount>"
            "<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
            + _OBJECT.format(key="a+b %41", size=12345678901)
        ),
    ),
    "empty-listing": _reply(
        200,
        "OK",
        _page(
            "<Name>src</Name><Prefix>none/</Prefix><KeyCount>0</KeyCount>"
            "<MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType>"
            "<IsTruncated>false</IsTruncated>"
        ),
    ),
    "no-such-bucket": _reply(
        404,
        "Not Found",
        b"<Error><Code>NoSuchBucket</Code><Message>The specified bucket does "
        b"not exist</Message><BucketName>src</BucketName></Error>",
    ),
    "bad-token": _reply(
        400,
        "Bad Request",
        b"<Error><Code>InvalidArgument</Code><Message>The continuation token "
        b"provided is incorrect</Message></Error>",
    ),
    "embedded-200-error": _reply(
        200,
        "OK",
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError'
        b"</Code><Message>We encountered an internal error.</Message></Error>",
    ),
    "cut-short-200": _reply(200, "OK", _page(_OBJECT.format(key="k", size=1))[:150]),
    # a 200 with no page: botocore takes it for an empty last page (the
    # listing would end there); the lean path retries it as a 500
    "empty-200": _reply(200, "OK", b""),
    "whitespace-200": _reply(200, "OK", b"\n  \n"),
    "slow-down": _reply(
        503,
        "Slow Down",
        b"<Error><Code>SlowDown</Code><Message>Reduce</Message></Error>",
    ),
}


@pytest.mark.parametrize("answer", list(LIST_ANSWERS))
def test_list_answers_are_botocores(http_server: Any, answer: str) -> None:
    """The page (keys, prefixes, sizes, dates, owners, checksums, the next
    token), or the error, botocore answers to the same response."""
    http_server["reply"] = LIST_ANSWERS[answer]
    url = f"http://127.0.0.1:{http_server['port']}"
    kwargs = {"Bucket": "src", "MaxKeys": 3}
    boto = boto_client("path", endpoint=url)

    async def lean_call() -> dict[str, Any]:
        copier = list_copier("path", url=url)
        try:
            return await copier.list_objects_v2(**kwargs)
        finally:
            copier.close()

    expected = _outcome(lambda: boto.list_objects_v2(**kwargs))
    got = _outcome(lambda: asyncio.run(lean_call()))
    if answer in ("embedded-200-error", "cut-short-200"):
        # botocore makes both a 500 (retried, never a page); so do we
        assert expected[0] == got[0] == "error"
        assert expected[3] == got[3] == 500
        return
    if answer in ("empty-200", "whitespace-200"):
        # no page is not an empty last page: retried, never the listing's end
        assert got[0] == "error"
        assert got[3] == 500
        return
    assert got == expected
    if answer == "encoded-page":
        keys = [o["Key"] for o in got[1]["Contents"]]
        assert keys == ["a b/ü +% &", "a b/\x01ctrl"]


def test_a_page_it_cannot_read_goes_to_botocore_and_so_do_the_next(
    http_server: Any,
) -> None:
    """A page the lean path cannot read (not XML) is botocore's to answer,
    and so is every later page of that bucket: one request each, not two."""
    good = LIST_ANSWERS["plain-page"]
    bad = _reply(200, "OK", b"<not xml</ListBucketResult>")
    http_server["replies"] = [bad, good]
    http_server["reply"] = good
    url = f"http://127.0.0.1:{http_server['port']}"
    boto = boto_client("path", endpoint=url)

    class Botocore:  # the sync client, answering as botocore does
        async def list_objects_v2(self, **kw: Any) -> dict[str, Any]:
            return dict(boto.list_objects_v2(**kw))

    async def call() -> tuple[list[str], int]:
        copier = list_copier("path", url=url)
        client = LeanClient(Botocore(), copier)
        try:
            keys = []
            for _ in range(2):
                page = await client.list_objects_v2(Bucket="src")
                keys += [o["Key"] for o in page["Contents"]]
            return keys, client.lean["ListObjectsV2"]
        finally:
            copier.close()

    keys, lean = asyncio.run(call())
    assert keys == ["a+b %41", "a+b %41"]
    assert lean == 0
    assert http_server["requests"] == 3  # lean (unread), botocore, botocore


@pytest.mark.parametrize("style", ["path", "virtual"])
def test_the_probe_learns_a_listing_where_botocore_sends_the_same(style: str) -> None:
    """A client that only lists (a submit's): the lean path lists the
    buckets botocore would list the same way, and no other."""
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    async def creds() -> Credentials:
        return Credentials("AKID", "SECRET")

    async def learnt(extra_header: bool) -> frozenset[str] | None:
        session = get_session()
        async with session.create_client(
            "s3",
            endpoint_url="http://s3.test:9000",
            region_name="eu-west-3",
            aws_access_key_id="AKID",
            aws_secret_access_key="SECRET",
            config=AioConfig(s3={"addressing_style": style}),
        ) as client:
            if extra_header:

                def add(request: Any, **_: Any) -> None:
                    request.headers["x-extra"] = "1"

                client.meta.events.register("before-sign.s3.*", add)
            copier = await probe(client, None, creds, list_buckets=["src", "b.dots"])
            if copier is None:
                return None
            assert copier.requests.virtual is (style == "virtual")
            return copier.requests.list_buckets

    assert asyncio.run(learnt(False)) == {"src", "b.dots"}
    assert asyncio.run(learnt(True)) is None  # botocore sends more: its own
