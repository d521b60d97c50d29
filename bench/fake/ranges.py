"""Byte ranges: ``x-amz-copy-source-range`` (strict) and ``Range`` (lenient)."""

from __future__ import annotations

from bench.fake.errors import S3Error


def copy_source_range(value: str, size: int) -> tuple[int, int]:
    """``bytes=a-b`` as ``(a, b)``, inside an object of ``size`` bytes."""
    spec = value.strip()
    first_text, sep, last_text = spec.removeprefix("bytes=").partition("-")
    if not spec.startswith("bytes=") or not sep:
        raise S3Error(
            "InvalidArgument",
            "The x-amz-copy-source-range value must be of the form bytes=first-last "
            "where first and last are the zero-based offsets of the first and last "
            "bytes to copy",
            400,
        )
    try:
        first, last = int(first_text), int(last_text)
    except ValueError:
        raise S3Error(
            "InvalidArgument",
            f"The x-amz-copy-source-range value is not valid: {value}",
            400,
        ) from None
    if first < 0 or first > last or last >= size:
        raise S3Error(
            "InvalidRange",
            f"The requested range is not satisfiable (bytes={first}-{last} of an "
            f"object of {size} bytes)",
            416,
        )
    return first, last


def read_range(value: str, size: int) -> tuple[int, int] | None:
    """An HTTP ``Range`` header as ``(first, last)``; ``None`` means the whole
    object (S3 ignores ranges it cannot parse)."""
    spec = value.strip()
    if not spec.startswith("bytes=") or "," in spec:
        return None
    first_text, _, last_text = spec[6:].partition("-")
    try:
        if not first_text:  # suffix: the last N bytes
            n = int(last_text)
            if n <= 0:
                raise ValueError
            return max(0, size - n), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first >= size or first > last:
        raise S3Error("InvalidRange", "The requested range is not satisfiable", 416)
    return first, min(last, size - 1)
