"""Deciding whether a copy matches its source, from two HEAD answers."""

from __future__ import annotations

from typing import Any

from engine.copy.check import compare
from engine.domain.content import same_content


def head(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"ContentLength": 10, "ETag": '"aaa"', "Metadata": {}}
    base.update(kw)
    return base


def test_identical_objects_match() -> None:
    """Same size, ETag, metadata, headers and tags: nothing differs."""
    tags = [{"Key": "a", "Value": "1"}]
    assert compare(head(ContentType="x"), head(ContentType="x"), tags, tags) == []


def test_size_etag_metadata_header_and_tag_differences_are_named() -> None:
    """Each kind of difference is reported by name."""
    diffs = compare(
        head(Metadata={"o": "1"}, ContentType="a"),
        head(ContentLength=11, ETag='"bbb"', Metadata={"o": "2"}, ContentType="b"),
        [{"Key": "t", "Value": "1"}],
        [],
    )
    text = "; ".join(diffs)
    for word in ("size", "ETag", "metadata", "ContentType", "tags"):
        assert word in text


def test_etags_of_different_methods_are_not_compared() -> None:
    """A single-part source copied in parts has another ETag but may be equal."""
    src, dst = head(ETag='"aaa"'), head(ETag='"bbb-3"')
    assert same_content(src, dst).same is None
    assert compare(src, dst) == []


def test_kms_etags_are_not_md5s() -> None:
    """SSE-KMS ETags are not content hashes, so they are not compared."""
    src = head(ServerSideEncryption="aws:kms")
    dst = head(ETag='"zzz"', ServerSideEncryption="aws:kms")
    assert compare(src, dst) == []


def test_multipart_etags_with_the_same_part_count_are_compared() -> None:
    """Same part count, different ETag: the content differs."""
    assert compare(head(ETag='"a-2"'), head(ETag='"b-2"')) != []


def test_checksums_decide_when_etags_cannot() -> None:
    """A whole-object checksum both carry is compared when the ETags are not
    comparable (a multipart copy's must say FULL_OBJECT: a composite checksum
    of parts differs for equal bodies)."""
    src = head(ETag='"aaa"', ChecksumCRC32="AAAA")
    full = {"ETag": '"x-2"', "ChecksumType": "FULL_OBJECT"}
    assert compare(src, head(**full, ChecksumCRC32="AAAA")) == []
    assert "checksum CRC32" in compare(src, head(**full, ChecksumCRC32="BBBB"))[0]
    assert compare(src, head(ETag='"x-2"', ChecksumCRC32="BBBB")) == []


class _Heads:
    """A client whose HEADs answer from a dict (no tags asked for)."""

    def __init__(self, heads: dict[str, dict[str, Any]]) -> None:
        self.heads = heads

    async def head_object(self, **kw: Any) -> dict[str, Any]:
        return dict(self.heads[kw["Bucket"]])


def test_a_source_replaced_since_its_copy_fails_verify() -> None:
    """A multipart copy has no comparable ETag and maybe no shared checksum:
    a source since replaced by other bytes of the same size still fails,
    by the ETag the copy was pinned to (recorded with the task)."""
    import asyncio

    import pytest

    from engine.copy.check import verify_copy
    from engine.domain.errors import S3Error

    client = _Heads({"src": head(ETag='"new-bytes"'), "dst": head(ETag='"copied-2"')})
    src = {"Bucket": "src", "Key": "k"}
    dst = {"Bucket": "dst", "Key": "k"}
    # without the pin, sizes are all there is to compare: "match"
    asyncio.run(verify_copy(client, src, dst, tags=False))
    with pytest.raises(S3Error, match="the source changed since it was copied"):
        asyncio.run(
            verify_copy(client, src, dst, tags=False, pinned_etag='"old-bytes"')
        )
    asyncio.run(verify_copy(client, src, dst, tags=False, pinned_etag="new-bytes"))
