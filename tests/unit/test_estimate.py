"""Dry-run estimate: objects, bytes, multipart copies, parts and S3 requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from engine.domain.errors import ManifestError, UsageError
from engine.domain.spec import CopyOptions, JobSpec
from engine.manifest.filters import Filters
from engine.manifest.rows import DELETE_MARKER, Rows
from engine.manifest.sources import Source
from engine.usecases.dry_run import dry_run
from engine.usecases.estimate import Estimate

WriteManifest = Callable[..., str]
MiB = 1024**2
GiB = 1024**3
TiB = 1024**4


def make_rows(
    sizes: list[int | None] | None,
    *,
    storage: list[str | None] | None = None,
    markers: tuple[int, ...] = (),
    errors: dict[int, str] | None = None,
) -> Rows:
    n = len(sizes) if sizes is not None else len(storage or [])
    rows = Rows(sizes=sizes, storage=storage)
    for i in range(n):
        rows.add(i + 1, "b", f"k{i}", error=(errors or {}).get(i))
    for i in markers:
        rows.kinds[i] = DELETE_MARKER
    return rows


def estimate(rows: Rows, copy: CopyOptions | None = None) -> Estimate:
    e = Estimate()
    e.add(rows, copy or CopyOptions())
    return e


# -- small objects ------------------------------------------------------------------


def test_small_object_is_a_head_and_a_copy() -> None:
    """With --stat-source (the default) one object costs HeadObject + CopyObject."""
    e = estimate(make_rows([10, 20, 0]))
    assert (e.objects, e.sized, e.bytes, e.multipart, e.parts) == (3, 3, 30, 0, 0)
    assert e.requests == 3 * 2


def test_no_stat_source_saves_the_head() -> None:
    """--no-stat-source: one CopyObject per small object."""
    e = estimate(make_rows([10, 20]), CopyOptions(stat_source=False))
    assert e.requests == 2


def test_verify_adds_a_head_of_each_copy() -> None:
    """--verify adds a HeadObject of the copy per object."""
    assert estimate(make_rows([10]), CopyOptions(verify=True)).requests == 3
    assert (
        estimate(make_rows([10]), CopyOptions(stat_source=False, verify=True)).requests
        == 2
    )


def test_an_object_of_exactly_the_threshold_is_one_copy_object() -> None:
    """The threshold is the largest CopyObject: only larger objects go multipart."""
    e = estimate(make_rows([5 * GiB]))
    assert (e.multipart, e.parts, e.requests, e.bytes) == (0, 0, 2, 5 * GiB)


# -- multipart objects ---------------------------------------------------------------


def test_six_gib_object_is_48_parts_of_128_mib() -> None:
    """6 GiB over the 5 GiB threshold: 48 parts; HEAD, Create, 48 parts,
    Complete and GetObjectTagging (tags are preserved by default)."""
    e = estimate(make_rows([6 * GiB]))
    assert (e.objects, e.multipart, e.parts, e.bytes) == (1, 1, 48, 6 * GiB)
    assert e.requests == 1 + 1 + 48 + 1 + 1


def test_no_preserve_tags_saves_the_get_object_tagging() -> None:
    """--no-preserve-tags: no GetObjectTagging for a multipart copy."""
    e = estimate(make_rows([6 * GiB]), CopyOptions(preserve_tags=False))
    assert e.requests == 1 + 1 + 48 + 1


def test_lower_threshold_and_part_size() -> None:
    """12 MiB with a 5 MiB threshold and 5 MiB parts: 3 parts (5, 5, 2 MiB)."""
    copy = CopyOptions(multipart_threshold=5 * MiB, part_size=5 * MiB)
    e = estimate(make_rows([5 * MiB, 12 * MiB]), copy)
    assert (e.objects, e.multipart, e.parts) == (2, 1, 3)
    assert e.requests == 2 + (1 + 1 + 3 + 1 + 1)


def test_just_over_the_threshold_is_one_part() -> None:
    """An object one byte over a 100 MiB threshold fits one 128 MiB part."""
    copy = CopyOptions(multipart_threshold=100 * MiB)
    e = estimate(make_rows([100 * MiB, 100 * MiB + 1]), copy)
    assert (e.multipart, e.parts) == (1, 1)
    assert e.requests == 2 + 5


@pytest.mark.parametrize(
    ("size", "part_size", "parts"),
    [
        # 5 TiB / 10,000 = 524.3 MiB, rounded up to 525 MiB parts: 9,987 parts
        pytest.param(5 * TiB, None, 9_987, id="5TiB-default"),
        # 1 TiB with --part-size 64MiB needs 105 MiB parts to stay under 10,000
        pytest.param(1 * TiB, 64 * MiB, 9_987, id="1TiB-raised"),
        # 1 TiB with the default 128 MiB: 8,192 parts
        pytest.param(1 * TiB, None, 8_192, id="1TiB-default"),
        pytest.param(10 * GiB, 1 * GiB, 10, id="10GiB-1GiB-parts"),
    ],
)
def test_part_size_is_raised_so_no_object_needs_more_than_10000_parts(
    size: int, part_size: int | None, parts: int
) -> None:
    """Very large objects are counted with the part size the copy would use."""
    e = estimate(make_rows([size]), CopyOptions(part_size=part_size))
    assert (e.multipart, e.parts) == (1, parts)
    assert e.requests == parts + 4


def test_multipart_copy_heads_its_source_even_without_stat_source() -> None:
    """--no-stat-source still costs a HeadObject per multipart copy."""
    e = estimate(make_rows([6 * GiB]), CopyOptions(stat_source=False))
    assert e.requests == 1 + 1 + 48 + 1 + 1


# -- unknown sizes, delete markers, archived objects, malformed rows -----------------


def test_objects_of_unknown_size_are_counted_as_copy_object() -> None:
    """No size (a plain CSV, an empty cell): counted as an object, its bytes not."""
    e = estimate(make_rows([None, 7, None]))
    assert (e.objects, e.sized, e.bytes, e.multipart) == (3, 1, 7, 0)
    assert e.requests == 3 * 2


def test_a_manifest_without_sizes_has_no_sized_objects() -> None:
    """A manifest with no size column counts objects only."""
    rows = Rows()
    for i in range(4):
        rows.add(i + 1, "b", f"k{i}")
    e = estimate(rows)
    assert (e.objects, e.sized, e.bytes, e.requests) == (4, 0, 0, 8)


def test_delete_markers_are_one_delete_each_and_not_objects() -> None:
    """A delete marker costs one DeleteObject, no HEAD; it is not an object copied."""
    e = estimate(make_rows([None, 10, None], markers=(0, 2)))
    assert (e.objects, e.delete_markers, e.sized, e.bytes) == (1, 2, 1, 10)
    assert e.requests == 2 + 2


def test_archived_objects_and_storage_classes_are_counted() -> None:
    """Objects in GLACIER, DEEP_ARCHIVE or an archive tier are counted as archived;
    storage classes are counted without their tier."""
    storage: list[str | None] = [
        "STANDARD",
        None,
        "GLACIER",
        "DEEP_ARCHIVE",
        "GLACIER_IR",
        "INTELLIGENT_TIERING",
        "INTELLIGENT_TIERING/ARCHIVE_ACCESS",
        "INTELLIGENT_TIERING/DEEP_ARCHIVE_ACCESS",
    ]
    e = estimate(make_rows([1] * len(storage), storage=storage))
    assert e.archived == 4
    assert e.to_dict()["by_storage_class"] == {
        "DEEP_ARCHIVE": 1,
        "GLACIER": 1,
        "GLACIER_IR": 1,
        "INTELLIGENT_TIERING": 3,
        "STANDARD": 2,
    }
    assert e.objects == len(storage)


def test_malformed_rows_are_counted_as_invalid_not_objects() -> None:
    """A row with an error adds to invalid, and to nothing else."""
    e = estimate(make_rows([1, None, 3], errors={1: "empty key"}))
    assert (e.invalid, e.objects, e.bytes, e.requests) == (1, 2, 4, 4)


def test_batches_add_up() -> None:
    """Counting two batches gives the sums of both."""
    e = Estimate()
    e.add(make_rows([6 * GiB, 1]), CopyOptions())
    e.add(make_rows([2, None], markers=(1,)), CopyOptions())
    assert e.to_dict() == {
        "rows": 0,
        "filtered": 0,
        "invalid": 0,
        "objects": 3,
        "delete_markers": 1,
        "objects_with_size": 3,
        "bytes": 6 * GiB + 3,
        "multipart": 1,
        "parts": 48,
        "archived": 0,
        "requests": 52 + 2 + 2 + 1,
        "transfer": "server",
        "by_storage_class": {},
    }


# -- dry_run: reading a manifest without writing --------------------------------------


def test_dry_run_counts_rows_filtered_and_duplicates_as_objects(
    write_manifest: WriteManifest,
) -> None:
    """A dry run reads every row; duplicates count as objects, filtered rows not."""
    path = write_manifest("b,logs/a\nb,logs/a\nb,img/b\nb,logs/c\n")
    source = Source("csv", path, filters=Filters(include_prefixes=("logs/",)))
    e = asyncio.run(dry_run(source, JobSpec()))
    assert (e.rows, e.filtered, e.objects, e.requests) == (4, 1, 3, 6)


def test_dry_run_refuses_a_malformed_row_unless_skip_invalid(
    write_manifest: WriteManifest,
) -> None:
    """A malformed row fails a dry run as it would fail the submit."""
    path = write_manifest("b,k1\nb,\nb,k3\n")
    with pytest.raises(ManifestError, match=r":2: empty key$"):
        asyncio.run(dry_run(Source("csv", path), JobSpec()))
    e = asyncio.run(dry_run(Source("csv", path, skip_invalid=True), JobSpec()))
    assert (e.rows, e.invalid, e.objects) == (3, 1, 2)


def test_dry_run_refuses_a_filter_the_manifest_cannot_serve(
    write_manifest: WriteManifest,
) -> None:
    """A size filter on a CSV without sizes fails the dry run, naming the option."""
    path = write_manifest("b,k1\n")
    source = Source("csv", path, filters=Filters(max_size=10))
    with pytest.raises(UsageError, match="--max-size"):
        asyncio.run(dry_run(source, JobSpec()))


def test_skip_existing_adds_a_head_of_each_destination() -> None:
    opts = CopyOptions(skip_existing="same-etag")
    assert estimate(make_rows([10]), opts).requests == 3


def test_a_move_heads_each_copy_and_deletes_each_source() -> None:
    # HEAD, CopyObject, then HEAD of the copy + DeleteObject
    opts = CopyOptions(stat_source=False, delete_source=True)
    assert estimate(make_rows([10]), opts).requests == 4


# -- streamed jobs (between stores) -------------------------------------------------


def test_a_streamed_job_counts_reads_and_writes() -> None:
    """--transfer stream: a listed small object is a GET and a PUT (its GET
    is its HEAD) and its tags' read; one of unknown size is HEADed first; a
    large one is HEAD, create, a GET and an UploadPart per 16 MiB part,
    complete and the copy's HEAD."""
    e = Estimate(streamed=True)
    e.add(make_rows([10, None, 40 * MiB]), CopyOptions(transfer="stream"))
    assert (e.objects, e.sized, e.bytes) == (3, 2, 10 + 40 * MiB)
    assert (e.multipart, e.parts) == (1, 3)
    assert e.requests == 3 + 4 + (4 + 2 * 3 + 1)
    assert e.to_dict()["transfer"] == "stream"
    untagged = Estimate(streamed=True)
    untagged.add(make_rows([10]), CopyOptions(transfer="stream", preserve_tags=False))
    assert untagged.requests == 2


def test_a_dry_run_with_a_source_client_estimates_a_stream(
    write_manifest: WriteManifest,
) -> None:
    from engine.domain.spec import ClientSettings

    path = write_manifest("b,k1\nb,k2\n")
    spec = JobSpec(source_client=ClientSettings(endpoint_url="http://other:9000"))
    e = asyncio.run(dry_run(Source("csv", path), spec))
    assert e.streamed
    assert e.requests == 2 * (3 + 1)  # HEAD, GET, tags, PUT: sizes unknown
    assert asyncio.run(dry_run(Source("csv", path), JobSpec())).streamed is False
