"""The one "same object?" rule that skip, move and verify share."""

from __future__ import annotations

from typing import Any

from engine.copy.check import compare
from engine.copy.move import decide
from engine.copy.skip import skip_reason
from engine.domain.content import same_content
from engine.domain.models import CopyRecord


def head(etag: str, size: int = 5, **more: Any) -> dict[str, Any]:
    return {"ContentLength": size, "ETag": etag, **more}


def test_single_part_etags_decide_first() -> None:
    """Two MD5 ETags decide, whatever checksums say."""
    assert same_content(head('"a"'), head("a")).same is True
    assert same_content(head('"a"'), head('"b"')).same is False


def test_a_whole_object_checksum_decides_when_etags_cannot() -> None:
    """Strongest shared checksum first; a composite one is not compared."""
    a = head('"a-2"', ChecksumSHA256="s", ChecksumCRC32="c", ChecksumType="FULL_OBJECT")
    b = head('"b"', ChecksumSHA256="s", ChecksumCRC32="X")
    assert same_content(a, b).by == "size and SHA256 checksum"
    assert same_content(head('"a-2"', ChecksumCRC32="c-2"), head('"b"')).same is None


def test_multipart_etags_decide_only_with_one_part_count() -> None:
    """Equal multipart ETags of one part count: same; another count: cannot tell."""
    assert same_content(head('"m-3"'), head('"m-3"')).same is True
    assert same_content(head('"m-3"'), head('"n-3"')).same is False
    assert same_content(head('"m-3"'), head('"n-4"')).same is None


def test_skip_move_and_verify_agree_on_each_pair() -> None:
    """For every pair of HEADs, a skip, a move's check and verify reach the
    same verdict on the content (the defect of three rules: they did not)."""
    pairs = [
        (head('"a"'), head('"a"')),
        (head('"a"'), head('"b"')),
        (head('"m-2"'), head('"m-2"')),
        (head('"m-2"'), head('"n-2"')),
        (
            head('"a"', ChecksumCRC32="c"),
            head('"m-2"', ChecksumCRC32="c", ChecksumType="FULL_OBJECT"),
        ),
        (
            head('"a"', ChecksumCRC32="c"),
            head('"m-2"', ChecksumCRC32="d", ChecksumType="FULL_OBJECT"),
        ),
    ]
    for src, dst in pairs:
        verdict = same_content(src, dst).same
        skipped = skip_reason("same-etag", src, dst, strict=True) is not None
        copied = CopyRecord(dst["ETag"], 5, None, None, None)
        moved = decide(copied, src, dst).action == "delete"
        verified = compare(src, dst) == []
        assert skipped is (verdict is True), (src, dst)
        assert moved is (verdict is True), (src, dst)
        assert verified is (verdict is not False), (src, dst)
