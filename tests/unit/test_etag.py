"""engine.domain.etag: one ETag value type, whatever the store sent (pure)."""

from __future__ import annotations

from typing import Any

from engine.copy import move
from engine.domain import etag
from engine.domain.models import CopyRecord

MD5 = "9e107d9d372bb6826bd81d3542a419d6"


def test_bare_and_quoted_etags_are_the_same_value() -> None:
    assert etag.quoted(MD5) == f'"{MD5}"'
    assert etag.quoted(f'"{MD5}"') == f'"{MD5}"'
    assert etag.same(MD5, f'"{MD5}"')
    assert not etag.same("", "")
    assert not etag.same(MD5, f'"{MD5}-2"')
    assert etag.quoted("") == ""
    assert etag.quoted(None) == ""


def test_part_count_of_a_multipart_etag() -> None:
    assert etag.part_count(f'"{MD5}-12"') == 12
    assert etag.part_count(f"{MD5}-3") == 3
    assert etag.part_count(f'"{MD5}"') is None


def test_every_etag_of_an_answer_is_quoted() -> None:
    """Ceph RGW answers CopyObject (and others) with bare ETags: the call path
    quotes them all, wherever they sit in the answer."""
    answer: dict[str, Any] = {
        "ETag": MD5,
        "CopyObjectResult": {"ETag": MD5},
        "CopyPartResult": {"ETag": f'"{MD5}"'},
        "Parts": [{"PartNumber": 1, "ETag": MD5}],
        "Contents": [{"Key": "a", "ETag": MD5}],
        "Versions": [{"Key": "a", "ETag": MD5}],
    }
    etag.normalise_answer(answer)
    q = f'"{MD5}"'
    assert answer["ETag"] == q
    assert answer["CopyObjectResult"]["ETag"] == q
    assert answer["CopyPartResult"]["ETag"] == q
    assert answer["Parts"][0]["ETag"] == q
    assert answer["Contents"][0]["ETag"] == q
    assert answer["Versions"][0]["ETag"] == q


def test_a_move_recorded_with_a_bare_etag_still_verifies() -> None:
    """A copy recorded (by an older bulkcopy, from RGW) with a bare ETag is
    the same copy as the quoted one a HEAD now returns: the source is deleted,
    not failed with "the destination changed since the copy"."""
    copied = CopyRecord(
        etag=MD5, bytes=10, src_etag=MD5, src_version_id=None, dst_version_id=None
    )
    head = {"ETag": f'"{MD5}"', "ContentLength": 10}
    assert move.decide(copied, dict(head), dict(head)).action == "delete"
