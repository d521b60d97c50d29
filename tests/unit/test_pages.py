"""Listing pages read by bulkcopy's parser equal botocore's own reading."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
from aiobotocore.parsers import AioRestXMLParser
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.s3.lean.answer import timestamp
from engine.s3.pages import FastPageParser, errors_in_200

MODEL = botocore.session.get_session().get_service_model("s3")
NS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'

TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("&<>\"' \t"),
    max_size=12,
)
WHEN = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
)


def _el(name: str, value: Any) -> str:
    if value is None:
        return ""
    if value == "":
        return f"<{name}/>"
    return f"<{name}>{escape(str(value))}</{name}>"


@st.composite
def _object(draw: st.DrawFn, versions: bool) -> str:
    parts = [
        _el("Key", draw(TEXT)),
        _el("LastModified", draw(st.none() | WHEN)),
        _el("ETag", draw(st.none() | st.just('"d41d8cd98f00b204e9800998ecf8427e"'))),
        *(
            _el("ChecksumAlgorithm", a)
            for a in draw(
                st.lists(st.sampled_from(["CRC32", "SHA256", "CRC64NVME"]), max_size=2)
            )
        ),
        _el(
            "ChecksumType",
            draw(st.none() | st.sampled_from(["FULL_OBJECT", "COMPOSITE"])),
        ),
        _el("Size", draw(st.none() | st.integers(0, 5 * 2**40))),
        _el(
            "StorageClass",
            draw(st.none() | st.sampled_from(["STANDARD", "GLACIER", ""])),
        ),
        _el("Unmodelled", draw(st.none() | TEXT)),  # botocore skips it
    ]
    if draw(st.booleans()):
        parts.append(
            f"<Owner>{_el('DisplayName', draw(TEXT))}{_el('ID', draw(TEXT))}</Owner>"
        )
    if draw(st.booleans()):
        parts.append(
            "<RestoreStatus>"
            + _el("IsRestoreInProgress", draw(st.sampled_from(["true", "false"])))
            + _el("RestoreExpiryDate", draw(st.none() | WHEN))
            + "</RestoreStatus>"
        )
    if versions:
        parts += [
            _el("VersionId", draw(st.none() | TEXT)),
            _el("IsLatest", draw(st.none() | st.sampled_from(["true", "false"]))),
        ]
    order = draw(st.permutations(parts))
    return "".join(order)


@st.composite
def _page(draw: st.DrawFn, versions: bool) -> bytes:
    root = "ListVersionsResult" if versions else "ListBucketResult"
    item = "Version" if versions else "Contents"
    head = [
        _el("Name", draw(TEXT)),
        _el("Prefix", draw(st.none() | TEXT)),
        _el("Delimiter", draw(st.none() | TEXT)),
        _el("MaxKeys", draw(st.none() | st.integers(0, 1000))),
        _el("EncodingType", draw(st.none() | st.just("url"))),
        _el("IsTruncated", draw(st.none() | st.sampled_from(["true", "false"]))),
    ]
    if versions:
        head += [
            _el("KeyMarker", draw(st.none() | TEXT)),
            _el("NextKeyMarker", draw(st.none() | TEXT)),
            _el("NextVersionIdMarker", draw(st.none() | TEXT)),
        ]
    else:
        head += [
            _el("KeyCount", draw(st.none() | st.integers(0, 1000))),
            _el("ContinuationToken", draw(st.none() | TEXT)),
            _el("NextContinuationToken", draw(st.none() | TEXT)),
            _el("StartAfter", draw(st.none() | TEXT)),
        ]
    items = [
        f"<{item}>{o}</{item}>" for o in draw(st.lists(_object(versions), max_size=4))
    ]
    if versions:
        items += [
            f"<DeleteMarker>{_el('Key', draw(TEXT))}{_el('VersionId', draw(TEXT))}"
            f"{_el('IsLatest', 'true')}{_el('LastModified', draw(WHEN))}</DeleteMarker>"
            for _ in range(draw(st.integers(0, 2)))
        ]
    prefixes = [
        f"<CommonPrefixes>{_el('Prefix', p)}</CommonPrefixes>"
        for p in draw(st.lists(TEXT, max_size=2))
    ]
    ns = draw(st.sampled_from([NS, ""]))
    body = "".join(draw(st.permutations(head + items + prefixes)))
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}{ns}>{body}</{root}>'.encode()
    )


def _both(body: bytes, operation: str) -> tuple[Any, Any]:
    shape = MODEL.operation_model(operation).output_shape
    response = {"status_code": 200, "headers": {}, "body": body, "context": {}}

    async def parse(parser: Any) -> Any:
        return await parser.parse(dict(response), shape)

    theirs = asyncio.run(parse(AioRestXMLParser()))
    ours = asyncio.run(parse(FastPageParser(timestamp_parser=timestamp)))
    return ours, theirs


@settings(max_examples=300)
@given(_page(versions=False))
def test_a_list_objects_page_reads_as_botocore_reads_it(body: bytes) -> None:
    ours, theirs = _both(body, "ListObjectsV2")
    assert ours == theirs


@settings(max_examples=200)
@given(_page(versions=True))
def test_a_list_versions_page_reads_as_botocore_reads_it(body: bytes) -> None:
    ours, theirs = _both(body, "ListObjectVersions")
    assert ours == theirs


def test_other_answers_are_botocores() -> None:
    """A HeadBucket-like answer or an error body: botocore's parser, as is."""
    ours, theirs = _both(b"", "ListObjectsV2")
    assert ours == theirs
    body = b"<Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>"
    shape = MODEL.operation_model("ListObjectsV2").output_shape
    response = {"status_code": 404, "headers": {}, "body": body, "context": {}}
    got = asyncio.run(FastPageParser().parse(dict(response), shape))
    assert got["Error"]["Code"] == "NoSuchBucket"


def _op(name: str) -> Any:
    return MODEL.operation_model(name)


def test_an_error_inside_a_200_listing_is_a_500_as_botocore_makes_it() -> None:
    """botocore turns an S3 error inside a ``200 OK`` (or a body cut short)
    into a 500 to retry it; the listings' check does the same, and every
    other answer still gets botocore's own check."""
    error = b'<?xml version="1.0"?>\n<Error><Code>InternalError</Code></Error>'
    for op, body in (
        ("ListObjectsV2", error),
        ("ListObjectVersions", b"<ListBucketResult><Contents><Key>a</Ke"),
        ("CopyObject", error),  # botocore's check, delegated
    ):
        answer = {"status_code": 200, "body": body, "headers": {}, "context": {}}
        errors_in_200(_op(op), answer)
        assert answer["status_code"] == 500, op


def test_a_listing_page_is_parsed_once() -> None:
    """The check keeps the tree it parsed; the parser reads that one."""
    body = b"<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount></ListBucketResult>"
    answer = {"status_code": 200, "body": body, "headers": {}, "context": {}}
    errors_in_200(_op("ListObjectsV2"), answer)
    assert answer["status_code"] == 200
    [(kept_body, root)] = answer["context"].values()
    assert kept_body is body
    root.find("Name").text = "changed"  # type: ignore[union-attr]
    parsed = asyncio.run(
        FastPageParser().parse(answer, _op("ListObjectsV2").output_shape)
    )
    assert parsed["Name"] == "changed"
    assert parsed["KeyCount"] == 0
