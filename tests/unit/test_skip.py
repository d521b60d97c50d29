"""--skip-existing: when the destination already holds the source's object."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from engine.copy.skip import skip_reason
from engine.domain.content import md5_etag
from engine.domain.spec import SKIP_POLICIES as POLICIES

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def head(
    size: int = 10, etag: str = '"aa"', when: dt.datetime = T0, **more: Any
) -> dict[str, Any]:
    return {"ContentLength": size, "ETag": etag, "LastModified": when, **more}


@pytest.mark.parametrize("policy", POLICIES)
def test_a_missing_destination_is_always_copied(policy: str) -> None:
    assert skip_reason(policy, head(), None) is None


def test_never_copies_even_an_identical_object() -> None:
    assert skip_reason("never", head(), head()) is None


@pytest.mark.parametrize(
    ("src", "dst", "skip"),
    [
        (head(), head(), True),
        (head(etag='"aa"'), head(etag='"bb"'), False),  # same size, new content
        (head(size=10), head(size=11), False),
        # a multipart ETag on either side: the size decides
        (head(etag='"aa-3"'), head(etag='"bb"'), True),
        (head(etag='"aa"'), head(etag='"cc-2"', size=11), False),
        # KMS / SSE-C ETags are no MD5 of the body: the size decides
        (head(ServerSideEncryption="aws:kms"), head(etag='"zz"'), True),
        (head(), head(etag='"zz"', SSECustomerAlgorithm="AES256"), True),
    ],
)
def test_same_etag(src: dict[str, Any], dst: dict[str, Any], skip: bool) -> None:
    reason = skip_reason("same-etag", src, dst)
    assert (reason is not None) is skip
    if reason is not None and md5_etag(src) and md5_etag(dst):
        assert '"aa"' in reason


def test_same_size_ignores_the_etag() -> None:
    assert skip_reason("same-size", head(etag='"a"'), head(etag='"b"')) is not None
    assert skip_reason("same-size", head(size=1), head(size=2)) is None


def test_newer_compares_last_modified() -> None:
    assert skip_reason("newer", head(when=T0), head(when=T1)) is not None
    assert skip_reason("newer", head(when=T0), head(when=T0)) is not None
    assert skip_reason("newer", head(when=T1), head(when=T0)) is None
    assert skip_reason("newer", head(when=T1), {"ContentLength": 10}) is None


def test_an_unknown_policy_is_an_error() -> None:
    with pytest.raises(ValueError, match="sometimes"):
        skip_reason("sometimes", head(), head())


def test_a_move_skips_only_what_an_etag_or_checksum_vouches_for() -> None:
    """A move deletes the source of a skipped object: the size alone is no
    proof.  Equal multipart ETags of one part count vouch (same parts, same
    bytes); multipart ETags of different part counts, or KMS ETags, do not."""
    same = {"ContentLength": 5, "ETag": '"abc"'}
    multipart = {"ContentLength": 5, "ETag": '"abc-2"'}
    relaid = {"ContentLength": 5, "ETag": '"def-3"'}
    kms = {**same, "ServerSideEncryption": "aws:kms"}
    assert skip_reason("same-etag", same, dict(same), strict=True) is not None
    assert skip_reason("same-etag", same, dict(same)) is not None
    assert skip_reason("same-etag", multipart, dict(multipart), strict=True)
    assert skip_reason("same-etag", multipart, relaid) is not None
    assert skip_reason("same-etag", multipart, relaid, strict=True) is None
    assert skip_reason("same-etag", kms, dict(kms), strict=True) is None
    checked = {**relaid, "ChecksumSHA256": "x", "ChecksumType": "FULL_OBJECT"}
    summed = {**multipart, "ChecksumSHA256": "x", "ChecksumType": "FULL_OBJECT"}
    assert skip_reason("same-etag", summed, checked, strict=True) is not None
    with pytest.raises(ValueError, match="cannot vouch"):
        skip_reason("same-size", same, dict(same), strict=True)
