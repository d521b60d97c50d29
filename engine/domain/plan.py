"""Pure planning decisions for a copy: part sizes and ranges.

No I/O here; everything is a plain function of its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

MIN_PART_SIZE = 5 * MiB  # every part but the last
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * TiB
MAX_COPY_OBJECT = 5 * GiB  # the largest object CopyObject accepts
DEFAULT_PART_SIZE = 128 * MiB
# a streamed part is held in memory while it is sent: smaller by default
DEFAULT_STREAM_PART_SIZE = 16 * MiB


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a multipart copy: its number and inclusive byte range."""

    number: int
    start: int
    end: int  # inclusive

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    @property
    def range(self) -> str:
        """The ``CopySourceRange`` header value."""
        return f"bytes={self.start}-{self.end}"


def part_size_for(size: int, requested: int | None = None) -> int:
    """The part size for an object of ``size`` bytes.

    At least 5 MiB, at most 5 GiB, and large enough that the object fits in
    10,000 parts; ``requested`` (``--part-size``) is honoured when that allows,
    otherwise raised to the smallest legal size.  Raises ``ValueError`` above
    the 5 TiB object limit.
    """
    if size > MAX_OBJECT_SIZE:
        raise ValueError(f"{size} bytes is over the 5 TiB S3 object limit")
    wanted = requested if requested is not None else DEFAULT_PART_SIZE
    smallest = -(-size // MAX_PARTS)  # ceil(size / 10,000) ...
    smallest = -(-smallest // MiB) * MiB  # ... rounded up to whole MiB
    return min(MAX_PART_SIZE, max(MIN_PART_SIZE, wanted, smallest))


def plan_parts(size: int, part_size: int) -> list[Part]:
    """Split ``size`` bytes into parts of ``part_size`` (the last one shorter)."""
    if size <= 0:
        return []
    if part_size < MIN_PART_SIZE and part_size < size:
        raise ValueError(f"part size {part_size} is under the 5 MiB minimum")
    if part_size > MAX_PART_SIZE:
        raise ValueError(f"part size {part_size} is over the 5 GiB maximum")
    count = -(-size // part_size)
    if count > MAX_PARTS:
        raise ValueError(f"{count} parts is over the 10,000-part limit")
    return [
        Part(n + 1, n * part_size, min(size, (n + 1) * part_size) - 1)
        for n in range(count)
    ]


def parts_from_layout(sizes: list[int]) -> list[Part]:
    """Parts that reproduce a source's own part layout (``--match-source-parts``)."""
    parts, start = [], 0
    for n, s in enumerate(sizes, 1):
        parts.append(Part(n, start, start + s - 1))
        start += s
    return parts


def layout_is_copyable(sizes: list[int], total: int) -> bool:
    """Whether part sizes can be reproduced with UploadPartCopy.

    They must add up to the object, number at most 10,000, be at most 5 GiB
    each, and at least 5 MiB each except the last.
    """
    return (
        0 < len(sizes) <= MAX_PARTS
        and sum(sizes) == total
        and all(0 < s <= MAX_PART_SIZE for s in sizes)
        and all(s >= MIN_PART_SIZE for s in sizes[:-1])
    )


def use_multipart(size: int | None, threshold: int) -> bool:
    """Whether an object of ``size`` bytes is copied part by part.

    Objects over ``threshold`` (at most 5 GiB, the CopyObject limit) are.
    An unknown size is tried with CopyObject.
    """
    return size is not None and size > min(threshold, MAX_COPY_OBJECT)


def stream_part_size(requested: int | None) -> int:
    """The part size a streamed copy asks for: ``--part-size``, else
    :data:`DEFAULT_STREAM_PART_SIZE` (raised per object by
    :func:`part_size_for` where 10,000 parts would not hold it)."""
    return requested if requested is not None else DEFAULT_STREAM_PART_SIZE


def stream_in_parts(size: int | None, threshold: int, requested: int | None) -> bool:
    """Whether a streamed object goes part by part: over the multipart
    threshold or over one part (a body is held whole while it is sent)."""
    return use_multipart(size, min(threshold, stream_part_size(requested)))
