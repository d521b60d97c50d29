"""engine.copy.move: when a move may delete its source (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.copy import move
from engine.domain import codes
from engine.domain.models import CopyRecord

MD5 = '"9e107d9d372bb6826bd81d3542a419d6"'
OTHER = '"e4d909c290d0fb1ca068ffaddf22cbd0"'


def _copied(**kw: Any) -> CopyRecord:
    base: dict[str, Any] = {
        "etag": MD5,
        "bytes": 10,
        "src_etag": MD5,
        "src_version_id": None,
        "dst_version_id": None,
    }
    return CopyRecord(**{**base, **kw})


def _head(etag: str = MD5, size: int = 10, **kw: Any) -> dict[str, Any]:
    return {"ETag": etag, "ContentLength": size, **kw}


def test_equal_md5_etags_and_sizes_delete() -> None:
    d = move.decide(_copied(), _head(), _head())
    assert d.action == "delete"
    assert d.verified_by == "size and ETag"


def test_a_source_gone_after_a_delete_of_ours_counts_as_deleted() -> None:
    """A crash after the delete, or its answer lost: found gone, the copy
    still there: recorded (as gone), not deleted again."""
    d = move.decide(_copied(), None, _head(), deleted_before=True)
    assert d.action == "gone"


def test_a_source_that_vanished_by_itself_is_looked_at_again() -> None:
    """No delete of ours went out: a 404 is someone else's doing or the
    store's mistake; never recorded as our delete."""
    d = move.decide(_copied(), None, _head())
    assert (d.action, d.code, d.retry) == ("keep", codes.SOURCE_VANISHED, True)


@pytest.mark.parametrize("deleted_before", [True, False])
def test_a_missing_source_never_excuses_a_missing_copy(deleted_before: bool) -> None:
    d = move.decide(_copied(), None, None, deleted_before=deleted_before)
    assert (d.action, d.code) == ("keep", codes.VERIFICATION_FAILED)
    d = move.decide(_copied(), None, _head(OTHER), deleted_before=deleted_before)
    assert (d.action, d.code) == ("keep", codes.VERIFICATION_FAILED)


@pytest.mark.parametrize(
    ("src", "dst", "code", "why"),
    [
        # the copy vanished or was overwritten since it was made
        (_head(), None, codes.VERIFICATION_FAILED, "not at the destination"),
        (_head(), _head(OTHER), codes.VERIFICATION_FAILED, "destination changed"),
        # the sizes differ
        (_head(), _head(size=9), codes.VERIFICATION_FAILED, "size"),
        # the source was overwritten after the copy (unversioned bucket)
        (_head(OTHER), _head(), codes.SOURCE_CHANGED, "source changed"),
    ],
)
def test_anything_unproven_keeps_the_source(
    src: dict[str, Any], dst: dict[str, Any] | None, code: str, why: str
) -> None:
    d = move.decide(_copied(), src, dst)
    assert d.action == "keep"
    assert d.code == code
    assert why in d.reason
    assert "the source is kept" in d.reason


def test_the_recorded_size_must_match_too() -> None:
    d = move.decide(_copied(bytes=11), _head(), _head())
    assert (d.action, d.code) == ("keep", codes.VERIFICATION_FAILED)


def test_checksums_decide_where_etags_cannot_be_compared() -> None:
    # a multipart copy's checksum counts when it is of the whole object
    kms = {"ServerSideEncryption": "aws:kms", "ChecksumType": "FULL_OBJECT"}
    copied = _copied(etag='"x-2"', src_etag='"y"')
    src = _head('"y"', ChecksumCRC32="AAAA", **kms)
    same = _head('"x-2"', ChecksumCRC32="AAAA", **kms)
    other = _head('"x-2"', ChecksumCRC32="BBBB", **kms)
    assert move.decide(copied, src, same).verified_by == "size and CRC32 checksum"
    d = move.decide(copied, src, other)
    assert (d.action, d.code) == ("keep", codes.VERIFICATION_FAILED)


def test_a_pinned_copy_of_an_unchanged_source_is_vouched_by_its_size() -> None:
    # multipart into another part layout: ETags differ in kind, no checksums
    copied = _copied(etag='"m-3"', src_etag='"s-2"')
    d = move.decide(copied, _head('"s-2"'), _head('"m-3"'))
    assert (d.action, d.verified_by) == ("delete", "size and the pinned source ETag")


def test_an_unpinned_destination_that_was_already_there_needs_a_real_match() -> None:
    # --skip-existing found it: nothing was copied, so nothing was pinned
    copied = _copied(etag='"m-3"', src_etag='"s-2"', skip_code="DestinationExists")
    d = move.decide(copied, _head('"s-2"'), _head('"m-3"'))
    assert (d.action, d.code) == ("keep", codes.VERIFICATION_FAILED)


@pytest.mark.parametrize(
    ("task", "copied", "deleted"),
    [
        ("v1", "v2", "v1"),  # the manifest's version wins
        (None, "v2", "v2"),  # else the one the copy read
        (None, "null", None),  # unversioned: the key
        (None, None, None),
    ],
)
def test_the_version_deleted(
    task: str | None, copied: str | None, deleted: str | None
) -> None:
    assert move.version_to_delete(task, copied) == deleted


@pytest.mark.parametrize("copied", [None, "null"])
def test_a_versioned_buckets_object_without_a_version_is_its_null_version(
    copied: str | None,
) -> None:
    """Written before versioning was enabled: deleted as version null (by
    key, a delete marker would hide it and the data would stay)."""
    assert move.version_to_delete(None, copied, versioned=True) == "null"
    assert move.version_to_delete("v1", copied, versioned=True) == "v1"
