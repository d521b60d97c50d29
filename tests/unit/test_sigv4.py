"""The lean SigV4 signer signs exactly what botocore signs, byte for byte."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.s3.sigv4 import (
    EMPTY_SHA256,
    Credentials,
    Signer,
    copy_source,
    encode_path,
    encode_query,
)

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+token/with+slashes=="
AWKWARD_KEYS = [
    "plain.txt",
    "dir/sub dir/file name.txt",
    "a+b=c&d?e#f",
    "100%/%2F/percent",
    "tilde~/under_score/dash-dot.",
    "//leading//double//",
    "unicode/é€😀/ключ",
    "spaces  and\ttab",
    "!'()*@$,;:[]",
]


def botocore_authorization(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    region: str,
    token: str | None,
    when: dt.datetime,
) -> tuple[str, dict[str, str]]:
    """botocore's Authorization for the request, and every header it sent."""
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=b"")
    auth = S3SigV4Auth(BotoCredentials(AKID, SECRET, token), "s3", region)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        auth.add_auth(request)
    sent = {k.lower(): v for k, v in request.headers.items()}
    return sent.pop("authorization"), sent


def ours(
    *,
    method: str,
    host: str,
    path: str,
    query: str,
    headers: dict[str, str],
    region: str,
    token: str | None,
    when: dt.datetime,
    signer: Signer | None = None,
) -> str:
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    signed = {k.lower(): v for k, v in headers.items()}
    signed.update(
        {"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": EMPTY_SHA256}
    )
    if token:
        signed["x-amz-security-token"] = token
    return (signer or Signer(region)).authorization(
        method=method,
        path=path,
        query=query,
        headers=signed,
        payload_hash=EMPTY_SHA256,
        credentials=Credentials(AKID, SECRET, token),
        amz_date=amz_date,
    )


def compare(
    *,
    key: str,
    bucket: str = "dst-bucket",
    src_key: str = "src/key.txt",
    version: str | None = None,
    query: list[tuple[str, str]] | None = None,
    extra: dict[str, str] | None = None,
    token: str | None = None,
    region: str = "us-east-1",
    host: str = "127.0.0.1:9000",
    scheme: str = "http",
    virtual: bool = False,
    when: dt.datetime = dt.datetime(2026, 11, 21, 4, 5, 6),
    signer: Signer | None = None,
) -> None:
    path = "/" + encode_path(key) if virtual else f"/{bucket}/{encode_path(key)}"
    if virtual:
        host = f"{bucket}.{host}"
    q = encode_query(query or [])
    url = f"{scheme}://{host}{path}" + (f"?{q}" if q else "")
    headers = {"x-amz-copy-source": copy_source("src-bucket", src_key, version)}
    headers.update(extra or {})
    expected, sent = botocore_authorization(
        method="PUT", url=url, headers=headers, region=region, token=token, when=when
    )
    got = ours(
        method="PUT",
        host=host,
        path=path,
        query=q,
        headers=headers,
        region=region,
        token=token,
        when=when,
        signer=signer,
    )
    assert got == expected
    assert sent["x-amz-content-sha256"] == EMPTY_SHA256


@pytest.mark.parametrize("key", AWKWARD_KEYS)
@pytest.mark.parametrize("token", [None, TOKEN])
def test_copy_object_signatures_match_botocore(key: str, token: str | None) -> None:
    compare(key=key, src_key=key, token=token)


@pytest.mark.parametrize("virtual", [False, True])
@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("region", ["us-east-1", "eu-west-3", "us-gov-west-1"])
def test_hosts_schemes_and_regions(virtual: bool, scheme: str, region: str) -> None:
    host = f"s3.{region}.amazonaws.com" if scheme == "https" else "localhost:4566"
    compare(key="a b/c", virtual=virtual, scheme=scheme, region=region, host=host)


def test_versioned_source_and_upload_part_copy_query() -> None:
    compare(
        key="big/object.bin",
        src_key="big/object.bin",
        version="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo",
        query=[("uploadId", "VXBsb2FkIElE+/=~x"), ("partNumber", "17")],
        extra={"x-amz-copy-source-range": "bytes=0-5242879"},
    )


def test_signed_extra_headers_and_white_space() -> None:
    """Every header sent is signed (values with runs of spaces collapsed);
    User-Agent never is."""
    compare(
        key="k",
        extra={
            "x-amz-metadata-directive": "REPLACE",
            "x-amz-meta-owner": "  team   a  ",
            "x-amz-tagging": "a=1&b=two%20words",
            "x-amz-storage-class": "STANDARD_IA",
            "x-amz-copy-source-if-match": '"9b2cf535f27731c974343645a3985328"',
            "Content-Type": "text/plain; charset=utf-8",
            "User-Agent": "bulkcopy/0.1",
        },
        token=TOKEN,
    )


def test_the_day_changes_the_key_and_the_cache_follows() -> None:
    """One signer across midnight signs both days right (keys cached per day)."""
    signer = Signer("us-east-1")
    for when in (
        dt.datetime(2026, 11, 21, 23, 59, 59),
        dt.datetime(2026, 11, 22, 0, 0, 0),
        dt.datetime(2026, 11, 21, 23, 59, 58),
    ):
        compare(key="k", when=when, signer=signer)


def test_rotated_secrets_get_their_own_keys() -> None:
    signer = Signer("us-east-1")
    first = signer.signing_key("secret-1", "20261121")
    assert signer.signing_key("secret-2", "20261121") != first
    assert signer.signing_key("secret-1", "20261121") == first


def test_copy_source_matches_botocore_handler() -> None:
    """``copy_source`` is what botocore puts in x-amz-copy-source for a dict."""
    from botocore.handlers import handle_copy_source_param

    for key in AWKWARD_KEYS:
        for version in (None, "v1+/="):
            params: dict[str, Any] = {
                "CopySource": {"Bucket": "b", "Key": key}
                | ({"VersionId": version} if version else {})
            }
            handle_copy_source_param(params)
            assert copy_source("b", key, version) == params["CopySource"]


@settings(max_examples=200, deadline=None)
@given(
    key=st.text(
        st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60
    ),
    token=st.none()
    | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1),
    meta=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
)
def test_any_key_signs_like_botocore(key: str, token: str | None, meta: str) -> None:
    compare(key=key, src_key=key, token=token, extra={"x-amz-meta-note": meta})
