"""Part sizing and byte ranges for multipart copies, against S3's hard limits."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.plan import (
    Part,
    layout_is_copyable,
    part_size_for,
    parts_from_layout,
    plan_parts,
    use_multipart,
)

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

# S3's limits, spelled out here rather than imported so a wrong constant fails.
MIN_PART = 5 * MiB
MAX_PART = 5 * GiB
MAX_PARTS = 10_000
MAX_OBJECT = 5 * TiB

# No example database, so failing examples are not saved under .hypothesis/.
PROPERTY = settings(database=None, deadline=None, max_examples=300)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def assert_legal_plan(parts: list[Part], size: int) -> None:
    """Fail unless ``parts`` is a plan S3 accepts for an object of ``size`` bytes."""
    assert 1 <= len(parts) <= MAX_PARTS
    assert [p.number for p in parts] == list(range(1, len(parts) + 1))
    assert parts[0].start == 0
    assert parts[-1].end == size - 1
    for before, after in pairwise(parts):
        assert after.start == before.end + 1
    assert sum(p.size for p in parts) == size
    assert all(1 <= p.size <= MAX_PART for p in parts)
    assert all(p.size >= MIN_PART for p in parts[:-1])
    assert all(p.range == f"bytes={p.start}-{p.end}" for p in parts)


# --- Part -------------------------------------------------------------------


def test_part_range_is_inclusive_at_both_ends() -> None:
    """A part's CopySourceRange is ``bytes=start-end`` with end inclusive."""
    part = Part(number=2, start=5 * MiB, end=10 * MiB - 1)
    assert part.range == "bytes=5242880-10485759"
    assert part.size == 5 * MiB


def test_a_one_byte_part_has_equal_start_and_end() -> None:
    """A one-byte part is ``bytes=n-n`` and has size 1."""
    part = Part(number=1, start=0, end=0)
    assert part.range == "bytes=0-0"
    assert part.size == 1


# --- plan_parts: edge sizes -------------------------------------------------


@pytest.mark.parametrize("part_size", [MIN_PART, 128 * MiB])
def test_an_empty_object_has_no_parts(part_size: int) -> None:
    """A 0-byte object is planned as no parts at all."""
    assert plan_parts(0, part_size) == []


def test_a_one_byte_object_is_one_one_byte_part() -> None:
    """A 1-byte object is a single part covering byte 0."""
    assert plan_parts(1, part_size_for(1)) == [Part(1, 0, 0)]


@pytest.mark.parametrize("size", [MIN_PART - 1, MIN_PART])
def test_up_to_one_part_size_is_a_single_part(size: int) -> None:
    """An object no larger than the part size fits in one part covering it all."""
    assert plan_parts(size, MIN_PART) == [Part(1, 0, size - 1)]


def test_one_byte_over_the_part_size_adds_a_one_byte_last_part() -> None:
    """5 MiB + 1 in 5 MiB parts is a full first part and a 1-byte second part."""
    parts = plan_parts(MIN_PART + 1, MIN_PART)
    assert parts == [Part(1, 0, MIN_PART - 1), Part(2, MIN_PART, MIN_PART)]
    assert parts[-1].size == 1
    assert parts[-1].range == f"bytes={MIN_PART}-{MIN_PART}"


@pytest.mark.parametrize(
    "size",
    [
        1,
        MIN_PART - 1,
        MIN_PART,
        MIN_PART + 1,
        MAX_PART,
        MAX_PART + 1,
        MAX_OBJECT - 1,
        MAX_OBJECT,
    ],
)
def test_planned_part_size_gives_a_legal_plan(size: int) -> None:
    """For edge sizes up to 5 TiB the chosen part size yields a plan S3 accepts."""
    part_size = part_size_for(size)
    assert MIN_PART <= part_size <= MAX_PART
    assert_legal_plan(plan_parts(size, part_size), size)


def test_five_gib_plus_one_ends_with_a_one_byte_part() -> None:
    """5 GiB + 1 at the default part size ends in a part holding only the last byte."""
    size = MAX_PART + 1
    parts = plan_parts(size, part_size_for(size))
    assert parts[-1] == Part(len(parts), size - 1, size - 1)


def test_five_tib_fits_in_ten_thousand_parts_of_at_most_five_gib() -> None:
    """The largest S3 object is planned in at most 10,000 parts, each within limits."""
    parts = plan_parts(MAX_OBJECT, part_size_for(MAX_OBJECT))
    assert len(parts) <= MAX_PARTS
    assert_legal_plan(parts, MAX_OBJECT)


@pytest.mark.parametrize("requested", [None, MIN_PART, MAX_PART])
def test_over_five_tib_is_refused(requested: int | None) -> None:
    """One byte over the 5 TiB object limit raises ValueError whatever is requested."""
    with pytest.raises(ValueError, match="5 TiB"):
        part_size_for(MAX_OBJECT + 1, requested)


def test_exactly_ten_thousand_parts_is_allowed() -> None:
    """An object of exactly 10,000 minimum-size parts is planned as 10,000 parts."""
    size = MAX_PARTS * MIN_PART
    assert part_size_for(size, MIN_PART) == MIN_PART
    parts = plan_parts(size, MIN_PART)
    assert len(parts) == MAX_PARTS
    assert_legal_plan(parts, size)


def test_plan_parts_refuses_more_than_ten_thousand_parts() -> None:
    """Splitting into 10,001 parts raises ValueError instead of planning them."""
    with pytest.raises(ValueError, match="10,000"):
        plan_parts(MAX_PARTS * MIN_PART + 1, MIN_PART)


def test_plan_parts_refuses_a_part_size_under_five_mib() -> None:
    """A part size under 5 MiB is refused when the object needs more than one part."""
    with pytest.raises(ValueError, match="5 MiB"):
        plan_parts(2 * MiB, MiB)


def test_plan_parts_allows_a_small_part_size_for_a_single_part() -> None:
    """A small part size is harmless when the object fits in that one part."""
    assert plan_parts(MiB, MiB) == [Part(1, 0, MiB - 1)]


# --- part_size_for: --part-size ---------------------------------------------


def test_default_part_size_is_used_when_nothing_is_requested() -> None:
    """Without --part-size a mid-size object gets the 128 MiB default."""
    assert part_size_for(10 * GiB) == 128 * MiB


@pytest.mark.parametrize(
    ("size", "requested"),
    [
        (GiB, MIN_PART),
        (GiB, 8 * MiB),
        (GiB, 8 * MiB + 3),
        (100 * GiB, 64 * MiB),
        (MAX_OBJECT, MAX_PART),
        (MAX_PARTS * MIN_PART, MIN_PART),
    ],
)
def test_a_legal_requested_part_size_is_honoured(size: int, requested: int) -> None:
    """A requested part size within limits that fits 10,000 parts is used as is."""
    assert part_size_for(size, requested) == requested


def test_a_requested_size_needing_too_many_parts_is_raised() -> None:
    """A part size that would need over 10,000 parts is raised to the smallest MiB."""
    size = 100 * GiB
    minimum = ceil_div(size, MAX_PARTS)
    part_size = part_size_for(size, MIN_PART)
    assert minimum <= part_size < minimum + MiB
    assert part_size % MiB == 0
    assert_legal_plan(plan_parts(size, part_size), size)


def test_a_requested_size_one_byte_over_ten_thousand_parts_is_raised() -> None:
    """One byte more than 10,000 parts of the requested size raises the part size."""
    size = MAX_PARTS * MIN_PART + 1
    part_size = part_size_for(size, MIN_PART)
    assert part_size > MIN_PART
    assert_legal_plan(plan_parts(size, part_size), size)


@pytest.mark.parametrize("requested", [0, 1, MiB, MIN_PART - 1])
def test_a_requested_size_under_five_mib_is_raised_to_five_mib(requested: int) -> None:
    """A requested part size under the 5 MiB minimum becomes 5 MiB."""
    assert part_size_for(GiB, requested) == MIN_PART


@pytest.mark.parametrize("requested", [MAX_PART + 1, 6 * GiB, TiB])
def test_a_requested_size_over_five_gib_is_capped(requested: int) -> None:
    """A requested part size over the 5 GiB maximum becomes 5 GiB."""
    assert part_size_for(TiB, requested) == MAX_PART


# --- properties -------------------------------------------------------------


@PROPERTY
@given(
    size=st.integers(min_value=1, max_value=MAX_OBJECT),
    requested=st.none() | st.integers(min_value=0, max_value=2 * MAX_PART),
)
def test_any_size_and_request_give_a_legal_plan(
    size: int, requested: int | None
) -> None:
    """Every size up to 5 TiB and any --part-size give contiguous, legal parts."""
    part_size = part_size_for(size, requested)
    assert MIN_PART <= part_size <= MAX_PART
    assert_legal_plan(plan_parts(size, part_size), size)


@PROPERTY
@given(
    size=st.integers(min_value=1, max_value=MAX_OBJECT),
    requested=st.integers(min_value=MIN_PART, max_value=MAX_PART),
)
def test_any_legal_request_is_honoured(size: int, requested: int) -> None:
    """A requested size within limits is used as is whenever 10,000 parts suffice."""
    part_size = part_size_for(size, requested)
    if ceil_div(size, requested) <= MAX_PARTS:
        assert part_size == requested
    else:
        assert part_size > requested


# --- parts_from_layout ------------------------------------------------------


def test_layout_parts_reproduce_the_source_sizes_in_order() -> None:
    """Parts from a source layout are numbered from 1 and keep each size in turn."""
    sizes = [8 * MiB, 8 * MiB, 3]
    parts = parts_from_layout(sizes)
    assert parts == [
        Part(1, 0, 8 * MiB - 1),
        Part(2, 8 * MiB, 16 * MiB - 1),
        Part(3, 16 * MiB, 16 * MiB + 2),
    ]
    assert [p.size for p in parts] == sizes
    assert_legal_plan(parts, sum(sizes))


def test_an_empty_layout_has_no_parts() -> None:
    """A layout with no parts plans nothing."""
    assert parts_from_layout([]) == []


@PROPERTY
@given(
    sizes=st.lists(
        st.integers(min_value=MIN_PART, max_value=MAX_PART), min_size=1, max_size=50
    ),
    last=st.integers(min_value=1, max_value=MAX_PART),
)
def test_any_layout_is_contiguous(sizes: list[int], last: int) -> None:
    """Any legal source layout becomes contiguous parts of the same sizes."""
    layout = [*sizes, last]
    parts = parts_from_layout(layout)
    assert [p.size for p in parts] == layout
    assert_legal_plan(parts, sum(layout))


# --- use_multipart ----------------------------------------------------------


def test_an_unknown_size_is_not_multipart() -> None:
    """An object whose size is not known is tried with CopyObject."""
    assert use_multipart(None, MIN_PART) is False


@pytest.mark.parametrize(
    ("size", "threshold", "expected"),
    [
        (0, MIN_PART, False),
        (MIN_PART, MIN_PART, False),
        (MIN_PART + 1, MIN_PART, True),
        (GiB, 2 * GiB, False),
        (MAX_PART, MAX_PART, False),
        (MAX_PART + 1, MAX_PART, True),
    ],
)
def test_objects_over_the_threshold_are_multipart(
    size: int, threshold: int, expected: bool
) -> None:
    """Objects larger than the threshold are multipart; at or below it they are not."""
    assert use_multipart(size, threshold) is expected


@pytest.mark.parametrize("threshold", [MAX_PART + 1, 10 * GiB, TiB])
def test_the_threshold_is_capped_at_the_copyobject_limit(threshold: int) -> None:
    """Over 5 GiB is multipart even when the threshold is larger; 5 GiB is not."""
    assert use_multipart(MAX_PART + 1, threshold) is True
    assert use_multipart(MAX_PART, threshold) is False


@pytest.mark.parametrize(
    ("sizes", "total", "ok"),
    [
        ([6 * MiB, 5 * MiB, 100], 11 * MiB + 100, True),
        ([5 * MiB, 5 * MiB], 10 * MiB, True),
        ([4 * MiB, 5 * MiB], 9 * MiB, False),  # a non-last part under 5 MiB
        ([6 * MiB, 100], 6 * MiB + 101, False),  # does not add up to the object
        ([5 * GiB + 1, 1], 5 * GiB + 2, False),  # a part over 5 GiB
        ([], 0, False),
        ([5 * MiB] * 10_001, 5 * MiB * 10_001, False),  # too many parts
    ],
)
def test_a_source_layout_is_reused_only_when_s3_would_accept_it(
    sizes: list[int], total: int, ok: bool
) -> None:
    """--match-source-parts falls back to the planner for layouts S3 would refuse."""
    assert layout_is_copyable(sizes, total) is ok
