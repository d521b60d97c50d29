"""engine.copy.confirm and the store defences around it: what a copy must be
checked for, decided without a network (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.copy import confirm
from engine.copy.parts import source_changed
from engine.copy.request import Requests
from engine.domain.classify import upload_gone
from engine.domain.content import whole_object_checksum
from engine.domain.options import ObjectOptions

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _head(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ETag": '"9e107d9d372bb6826bd81d3542a419d6"',
        "ContentLength": 10,
        "LastModified": WHEN,
        "ContentType": "text/plain",
        "Metadata": {"a": "1"},
    }
    return {**base, **kw}


def test_only_copies_that_asked_the_store_for_something_are_confirmed() -> None:
    """A plain COPY/COPY CopyObject is the store's own copy (the hot path
    makes no extra request); REPLACE directives and a checksum algorithm are
    what some stores ignore (Ceph RGW ignores TaggingDirective)."""
    assert not confirm.relies_on_store({"StorageClass": "STANDARD_IA"})
    assert confirm.relies_on_store({"TaggingDirective": "REPLACE"})
    assert confirm.relies_on_store({"MetadataDirective": "REPLACE"})
    assert confirm.relies_on_store({"ChecksumAlgorithm": "SHA256"})


def test_a_multipart_copy_promises_the_sources_checksum_algorithm() -> None:
    """The source's HEAD (ChecksumMode=ENABLED) names its algorithm; a
    multipart copy must come out with it (LocalStack's did not: the HEAD was
    made without ChecksumMode)."""
    src = _head(ChecksumSHA256="abc=")
    promise = confirm.promise_for(Requests(), src, {}, carries_checksum=True, tags=None)
    assert promise.checksum_algorithm == "SHA256"
    assert confirm.unmet_properties(promise, _head(ChecksumCRC64NVME="x")) == [
        "checksum algorithm CRC64NVME, promised SHA256 (the store ignored "
        "ChecksumAlgorithm)"
    ]
    assert confirm.unmet_properties(promise, _head(ChecksumSHA256="def=")) == []


def test_metadata_and_headers_promised_must_all_be_there() -> None:
    """Every promised metadata key (any case) and content header; a key the
    store adds of its own (rclone's mtime) takes nothing away."""
    promise = confirm.promise_for(
        Requests(), _head(), {}, carries_checksum=False, tags=None
    )
    assert confirm.unmet_properties(promise, _head(Metadata={"A": "1", "x": "y"})) == []
    lost = confirm.unmet_properties(promise, _head(Metadata={}))
    assert lost == ["metadata {}, promised {'a': '1'}"]
    wrong = confirm.unmet_properties(promise, _head(ContentType="binary/octet-stream"))
    assert wrong == ["ContentType 'binary/octet-stream', promised 'text/plain'"]


def test_replaced_metadata_is_what_is_promised() -> None:
    requests = Requests(
        ObjectOptions(metadata_directive="REPLACE", metadata={"stage": "copied"})
    )
    promise = confirm.promise_for(
        requests, _head(), {}, carries_checksum=False, tags=None
    )
    assert promise.properties["Metadata"] == {"stage": "copied"}
    assert confirm.unmet_properties(promise, _head()) != []


def test_a_source_changed_during_its_multipart_copy_is_told_apart() -> None:
    """After the last part the source is HEADed again: any change of ETag,
    size, time or version means the parts may mix two objects."""
    began = _head(VersionId="v1")
    assert source_changed(began, dict(began)) is None
    assert (
        source_changed(
            began, _head(VersionId="v1", ETag="9e107d9d372bb6826bd81d3542a419d6")
        )
        is None
    )
    assert "ETag" in (source_changed(began, _head(VersionId="v1", ETag='"x-2"')) or "")
    assert "size" in (
        source_changed(began, _head(VersionId="v1", ContentLength=9)) or ""
    )
    later = datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)
    assert "LastModified" in (
        source_changed(began, _head(VersionId="v1", LastModified=later)) or ""
    )
    assert "VersionId" in (source_changed(began, _head(VersionId="v2")) or "")


def test_which_answers_mean_the_upload_is_gone() -> None:
    """Ceph RGW answers ListParts of an aborted upload with NoSuchKey; from
    UploadPartCopy the same code is about the source."""
    assert upload_gone("NoSuchUpload", "UploadPartCopy")
    assert upload_gone("NoSuchKey", "ListParts")
    assert upload_gone("NoSuchKey", "CompleteMultipartUpload")
    assert not upload_gone("NoSuchKey", "UploadPartCopy")
    assert not upload_gone("AccessDenied", "ListParts")


def test_only_whole_object_checksums_are_compared() -> None:
    """A multipart object's checksum is of its parts unless its type says
    FULL_OBJECT: equal bodies in other layouts would look different."""
    assert whole_object_checksum({"ChecksumCRC32": "a"}, "CRC32") == "a"
    assert whole_object_checksum({"ChecksumCRC32": "a-3"}, "CRC32") is None
    composite = {"ChecksumCRC32": "a", "ChecksumType": "COMPOSITE"}
    assert whole_object_checksum(composite, "CRC32") is None
    full = {"ChecksumCRC32": "a", "ChecksumType": "FULL_OBJECT", "ETag": '"x-2"'}
    assert whole_object_checksum(full, "CRC32") == "a"
    untold = {"ChecksumCRC32": "a", "ETag": '"x-2"'}  # moto: type not told
    assert whole_object_checksum(untold, "CRC32") is None


def test_a_store_without_tags_is_told_to_copy_without_them() -> None:
    """A 501 to GetObjectTagging of the source fails at once, saying which
    option copies without tags."""
    import asyncio

    import pytest

    from engine.domain.classify import Disposition
    from engine.domain.errors import S3Error
    from engine.domain.models import ObjectRef, Task

    class NoTags:
        async def get_object_tagging(self, **_: Any) -> dict[str, Any]:
            raise S3Error(
                "NotImplemented", "not implemented", 501, Disposition.FATAL, "x"
            )

    task = Task(id=1, job_id="j", src=ObjectRef("b", "k"), dst_key="k")
    with pytest.raises(S3Error, match="--no-preserve-tags") as err:
        asyncio.run(confirm.source_tags(NoTags(), task, Requests()))
    assert err.value.disposition is Disposition.FATAL


# -- a streamed PutObject's copy: HEADed until the store is known to keep it --


class Destination:
    """The destination's answers: its HEAD (``head``) and tags; records the
    calls made."""

    def __init__(self, head: dict[str, Any], tags: dict[str, str]) -> None:
        self.head = head
        self.tags = tags
        self.calls: list[str] = []

    async def head_object(self, **_: Any) -> dict[str, Any]:
        self.calls.append("HeadObject")
        return self.head

    async def get_object_tagging(self, **_: Any) -> dict[str, Any]:
        self.calls.append("GetObjectTagging")
        return {"TagSet": [{"Key": k, "Value": v} for k, v in self.tags.items()]}


def _confirm_put(
    dst: Destination,
    promise: confirm.Promise,
    quirks: Any,
    answer: dict[str, Any] | None = None,
) -> None:
    import asyncio

    from engine.domain.models import ObjectRef, Task

    task = Task(id=1, job_id="j", src=ObjectRef("b", "k"), dst_key="k")
    asyncio.run(
        confirm.confirm_copy(
            dst,
            task,
            "dst",
            None,
            promise,
            Requests(),
            quirks=quirks,
            put_answer=answer or {},
        )
    )


KEPT = {"Metadata": {"owner": "a"}, "ContentType": "text/plain"}


def test_the_first_put_carrying_properties_is_headed_and_teaches_the_rest() -> None:
    from engine.s3.quirks import Quirks

    quirks = Quirks()
    promise = confirm.Promise({"Metadata": {"owner": "a"}, "ContentType": "text/plain"})
    first = Destination(KEPT, {})
    _confirm_put(first, promise, quirks)
    assert first.calls == ["HeadObject"]
    assert quirks.put_keeps_properties is True
    later = Destination({}, {})  # not asked: a HEAD would fail the copy
    _confirm_put(later, promise, quirks)
    assert later.calls == []


def test_what_the_answer_cannot_show_is_still_read_back() -> None:
    from engine.s3.quirks import Quirks

    quirks = Quirks(put_keeps_properties=True)
    sha = confirm.Promise({"Metadata": {}}, checksum_algorithm="SHA256")
    shown = Destination({}, {})
    _confirm_put(shown, sha, quirks, {"ChecksumSHA256": "x"})
    assert shown.calls == []
    unshown = Destination({"ChecksumSHA256": "x"}, {})
    _confirm_put(unshown, sha, quirks, {"ETag": '"e"'})
    assert unshown.calls == ["HeadObject"]
    tagged = Destination({}, {"a": "1"})
    _confirm_put(tagged, confirm.Promise({"Metadata": {}}, tags={"a": "1"}), quirks)
    assert tagged.calls == ["GetObjectTagging"]


def test_a_store_found_dropping_properties_is_headed_from_then_on() -> None:
    import pytest

    from engine.domain.errors import S3Error
    from engine.s3.quirks import Quirks

    quirks = Quirks()
    promise = confirm.Promise({"Metadata": {"owner": "a"}})
    with pytest.raises(S3Error, match="metadata") as err:
        _confirm_put(Destination({"Metadata": {}}, {}), promise, quirks)
    assert err.value.code == confirm.VERIFICATION_FAILED
    assert quirks.put_keeps_properties is False
    again = Destination({"Metadata": {"owner": "a"}}, {})
    _confirm_put(again, promise, quirks)
    assert again.calls == ["HeadObject"]
    assert "PutObject metadata and content headers" in quirks.found()


def test_a_store_that_keeps_no_checksums_is_not_promised_the_sources() -> None:
    """A checksum algorithm carried from the source, on a streamed copy that
    shows no checksum at all, teaches the run that the store keeps none (the
    copy counts); a server-side copy lacking it, or an algorithm asked for
    with --checksum-algorithm, still fails."""
    import asyncio

    import pytest

    from engine.domain.errors import S3Error
    from engine.domain.models import ObjectRef, Task
    from engine.domain.options import ObjectOptions
    from engine.s3.quirks import Quirks

    task = Task(id=1, job_id="j", src=ObjectRef("b", "k"), dst_key="k")
    src_head = {"ChecksumCRC32": "AAAAAA==", "ChecksumSHA1": "x"}
    carried = confirm.promise_for(
        Requests(), src_head, {}, carries_checksum=True, tags=None, streamed=True
    )
    assert carried.checksum_algorithm == "CRC32"
    # a server-side copy that lacks it fails: a store may drop one kind
    with pytest.raises(S3Error, match="promised CRC32"):
        asyncio.run(
            confirm.confirm_copy(
                Destination({}, {}),
                task,
                "dst",
                None,
                carried,
                Requests(),
                quirks=Quirks(),
            )
        )
    quirks = Quirks()
    asyncio.run(
        confirm.confirm_copy(
            Destination({}, {}),
            task,
            "dst",
            None,
            carried,
            Requests(),
            quirks=quirks,
            checksums_unanswered=True,
        )
    )
    assert quirks.keeps_checksums is False
    assert "x-amz-checksum-* (no checksums kept)" in quirks.found()
    later = confirm.promise_for(
        Requests(),
        src_head,
        {},
        carries_checksum=True,
        tags=None,
        keeps_checksums=quirks.keeps_checksums,
    )
    assert later.checksum_algorithm is None

    asked = Requests(ObjectOptions(checksum_algorithm="SHA256"))
    promised = confirm.promise_for(
        asked, src_head, {}, carries_checksum=True, tags=None, keeps_checksums=False
    )
    assert promised.checksum_algorithm == "SHA256"
    with pytest.raises(S3Error, match="promised SHA256"):
        asyncio.run(
            confirm.confirm_copy(
                Destination({}, {}),
                task,
                "dst",
                None,
                promised,
                asked,
                quirks=Quirks(),
                checksums_unanswered=True,
            )
        )


def test_only_properties_seen_kept_spare_a_head_and_a_later_drop_ends_it() -> None:
    """A copy promising a property no earlier HEAD has seen kept is HEADed;
    a HEAD that finds one dropped ends the trust for good, even after others
    taught it (copies HEADed at the same time at a run's start)."""
    import pytest

    from engine.domain.errors import S3Error
    from engine.s3.quirks import Quirks

    quirks = Quirks()
    _confirm_put(Destination(KEPT, {}), confirm.Promise(dict(KEPT)), quirks)
    assert quirks.put_kept == {"Metadata", "ContentType"}
    cache = {"Metadata": {}, "CacheControl": "max-age=60"}
    unseen = Destination(cache, {})
    _confirm_put(unseen, confirm.Promise(dict(cache)), quirks)
    assert unseen.calls == ["HeadObject"]
    # a copy HEADed (it promises a header not seen yet) finds metadata gone
    more = {**KEPT, "ContentLanguage": "en"}
    dropped = Destination({"ContentLanguage": "en", "ContentType": "text/plain"}, {})
    with pytest.raises(S3Error, match="metadata"):
        _confirm_put(dropped, confirm.Promise(dict(more)), quirks)
    assert quirks.put_keeps_properties is False
    again = Destination(KEPT, {})
    _confirm_put(again, confirm.Promise(dict(KEPT)), quirks)
    assert again.calls == ["HeadObject"]
